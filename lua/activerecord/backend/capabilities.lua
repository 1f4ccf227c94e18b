-- Capability categories (like the original guide's CapabilityCategory): the
-- flat names a backend detects, grouped so users can ask broad questions
-- (`db:supports("json")`) or precise ones (`db:supports("json_table")`).
local errors = require("activerecord.errors")

local M = {}

-- category -> its capability names; the first name is the category's own
-- meaning when asked as `supports(category)`.
M.categories = {
  json = { "json", "native_json", "json_table", "json_arrow_operators", "json_extended_metadata",
    "json_path_ranges" },
  cte = { "cte", "recursive_cte" },
  window_functions = { "window_functions" },
  set_operations = { "set_operations", "intersect", "except" },
  returning = { "returning", "delete_returning" },
  upsert = { "upsert", "upsert_alias" },
  locking = { "locking", "for_share", "nowait", "skip_locked" },
  full_text = { "full_text" },
  check_constraints = { "check_constraints" },
  transactions = { "savepoints", "read_only_transactions" },
  bulk = { "bulk_array_binding" },
  sequences = { "sequences" },
  schema = { "invisible_columns", "descending_indexes", "system_versioning", "uuid_type", "lob_defaults",
    "rename_column" },
  query = { "lateral", "max_execution_time", "explain_json", "grouping_function" },
}

-- Groups a flat name -> boolean table by category.
function M.group(flat)
  local grouped = {}
  for category, names in pairs(M.categories) do
    local t = {}
    for _, name in ipairs(names) do t[name] = flat[name] == true end
    grouped[category] = t
  end
  return grouped
end

-- A flat capability name, or a category name (meaning its first entry).
function M.supports(flat, name)
  if flat[name] ~= nil then return flat[name] == true end
  local names = M.categories[name]
  if names then return flat[names[1]] == true end
  errors.raise("ConfigError", ("unknown capability '%s'"):format(tostring(name)))
end

return M
