-- Error objects (design §4): one shape for the C core and the Lua layers.
-- An error is a table {kind, code, sqlstate, message, sql, ...} whose
-- metatable gives a one-line tostring; `pcall` catches it like any error.
local core = require("activerecord.backend.mysql.core")

local M = {}

M.Error = core.Error

-- Every kind the library raises, for `errors.is(err, errors.kinds.X)`.
M.kinds = {
  ConnectionError = "ConnectionError", ConnectionLost = "ConnectionLost",
  IntegrityError = "IntegrityError", DataError = "DataError",
  DeadlockError = "DeadlockError", LockTimeoutError = "LockTimeoutError",
  QueryTimeout = "QueryTimeout", QueryError = "QueryError",
  CapabilityError = "CapabilityError", ValidationError = "ValidationError",
  RecordNotFound = "RecordNotFound", StaleObjectError = "StaleObjectError",
  ConfigError = "ConfigError", TransactionError = "TransactionError",
}

-- Builds an error object; `fields` adds keys (e.g. `errors` for validation).
function M.new(kind, message, fields)
  assert(M.kinds[kind], "unknown error kind: " .. tostring(kind))
  return core.error(kind, message, fields)
end

-- Raises a new error object (level-less: the object carries its own text).
function M.raise(kind, message, fields)
  error(M.new(kind, message, fields), 0)
end

-- True when `err` is one of our error objects (of `kind`, if given).
function M.is(err, kind)
  if type(err) ~= "table" or getmetatable(err) ~= core.Error then return false end
  return kind == nil or err.kind == kind
end

-- Maps a server/client errno to its kind (the C core's one table).
M.kind_of = core.error_kind

return M
