--- Error objects (design section 4): one shape for the C core and the Lua layers.
--
-- An error is a table `{ kind, code, sqlstate, message, sql, ... }` whose
-- metatable gives a one-line `tostring`; `pcall` catches it like any error.
-- `sql` is the statement text, never the parameter values.
-- @module activerecord.errors
local core = require("activerecord.backend.mysql.core")

local M = {}

--- The metatable of every error object (from the C core).
-- @table Error
M.Error = core.Error

--- Every kind the library raises, for `errors.is(err, errors.kinds.X)`:
-- `ConnectionError`, `ConnectionLost`, `IntegrityError`, `DataError`,
-- `DeadlockError`, `LockTimeoutError`, `QueryTimeout`, `QueryError`,
-- `CapabilityError`, `ValidationError`, `RecordNotFound`, `StaleObjectError`,
-- `ConfigError`, `TransactionError`.
-- @table kinds
M.kinds = {
  ConnectionError = "ConnectionError", ConnectionLost = "ConnectionLost",
  IntegrityError = "IntegrityError", DataError = "DataError",
  DeadlockError = "DeadlockError", LockTimeoutError = "LockTimeoutError",
  QueryTimeout = "QueryTimeout", QueryError = "QueryError",
  CapabilityError = "CapabilityError", ValidationError = "ValidationError",
  RecordNotFound = "RecordNotFound", StaleObjectError = "StaleObjectError",
  ConfigError = "ConfigError", TransactionError = "TransactionError",
}

--- Builds an error object without raising it.
-- @tparam string kind one of `kinds`
-- @tparam string message the text `tostring(err)` shows
-- @tparam[opt] table fields extra keys copied onto the error (e.g. `errors` for validation)
-- @treturn Error the error object
-- @raise an assertion error for a kind not in `kinds`
function M.new(kind, message, fields)
  assert(M.kinds[kind], "unknown error kind: " .. tostring(kind))
  return core.error(kind, message, fields)
end

--- Raises a new error object (level-less: the object carries its own text).
-- @tparam string kind one of `kinds`
-- @tparam string message the text
-- @tparam[opt] table fields extra keys
-- @raise always: the error object of `kind`
function M.raise(kind, message, fields)
  error(M.new(kind, message, fields), 0)
end

--- Tests whether a value is one of this library's error objects.
-- @param err any value (typically what `pcall` returned)
-- @tparam[opt] string kind when given, the error must also be of this kind
-- @treturn boolean true for an error object (of `kind`, if given)
-- @usage local ok, err = pcall(user.save, user)
-- if ar.errors.is(err, "IntegrityError") then ... end
function M.is(err, kind)
  if type(err) ~= "table" or getmetatable(err) ~= core.Error then return false end
  return kind == nil or err.kind == kind
end

--- Maps a server or client errno to its kind (the C core's one table).
-- @function kind_of
-- @tparam integer code the errno (e.g. 1062)
-- @treturn string the kind (e.g. `"IntegrityError"`)
M.kind_of = core.error_kind

return M
