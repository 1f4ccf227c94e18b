-- The wording of the dialect's errors: how a user's value is shown in a
-- message, and the QueryError / ConfigError (naming table and column) the
-- dialect's parts raise.
local errors = require("activerecord.errors")

local M = {}

-- Shortened, escaped rendering of user input for error messages.
function M.show(value)
  if type(value) ~= "string" then return tostring(value) end
  if #value > 80 then value = value:sub(1, 77) .. "..." end
  return (string.format("%q", value):gsub("\\\n", "\\n"))
end

function M.query_error(message, fields)
  errors.raise("QueryError", message, fields)
end

function M.config_error(table_name, column, message)
  local where = column and string.format("table %q, column %q", tostring(table_name), column)
    or string.format("table %q", tostring(table_name))
  errors.raise("ConfigError", where .. ": " .. message, { table = table_name, column = column })
end

return M
