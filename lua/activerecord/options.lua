--- One check and one wording for option tables, everywhere: an unknown key
-- is a `ConfigError` that names it and lists the accepted keys, e.g.
-- `for_update: unknown option 'wait' (accepted: nowait, skip_locked)`.
-- @module activerecord.options
local errors = require("activerecord.errors")

local M = {}

-- accepted set -> "a, b, c" (sorted), made once per set
local lists = setmetatable({}, { __mode = "k" })

local function accepted_list(accepted)
  local s = lists[accepted]
  if not s then
    local names = {}
    for k in pairs(accepted) do names[#names + 1] = tostring(k) end
    table.sort(names)
    s = table.concat(names, ", ")
    lists[accepted] = s
  end
  return s
end
M.accepted_list = accepted_list

--- The message for the first key of `opts` that `accepted` lacks, or nil.
-- @tparam table opts the options given
-- @tparam table accepted a set: accepted key -> any non-nil value
-- @treturn ?string the message (`unknown option 'k' (accepted: ...)`)
-- @return the unknown key
function M.unknown(opts, accepted)
  for k in pairs(opts) do
    if accepted[k] == nil then
      return ("unknown option '%s' (accepted: %s)"):format(tostring(k), accepted_list(accepted)), k
    end
  end
  return nil
end

--- Raises a `ConfigError` (with `option` = the key) for an unknown key.
-- @tparam table opts the options given
-- @tparam table accepted a set: accepted key -> any non-nil value
-- @tparam string what who takes them, the message's prefix (`"for_update"`)
-- @return opts
function M.check(opts, accepted, what)
  local msg, key = M.unknown(opts, accepted)
  if msg then errors.raise("ConfigError", what .. ": " .. msg, { option = key }) end
  return opts
end

return M
