--- Error objects (design section 4): one shape for the C core and the Lua layers.
--
-- An error is a table `{ kind, code, sqlstate, message, sql, ... }` whose
-- metatable gives a one-line `tostring`; `pcall` catches it like any error.
-- `sql` is the statement text, never the parameter values. Backend-neutral:
-- the metatable is defined here and a backend's C core adopts it when it
-- loads, so its errors and these are one kind of object.
-- @module activerecord.errors

local M = {}

local function text(v)
  local t = type(v)
  if t == "string" or t == "number" then return v end
  return nil
end

--- The metatable of every error object.
-- `tostring(err)`: `"IntegrityError 1062 (23000): Duplicate entry ..."`.
-- @table Error
M.Error = {
  __name = "activerecord.Error",
  __tostring = function(err)
    local s = text(err.kind) or "Error"
    local code = err.code
    if math.type(code) == "integer" and code ~= 0 then s = s .. " " .. code end
    local state = text(err.sqlstate)
    if state then s = s .. " (" .. state .. ")" end
    return s .. ": " .. (text(err.message) or "unknown error")
  end,
}
local Error = M.Error

--- Every kind the library raises, for `errors.is(err, errors.kinds.X)`:
-- `ConnectionError`, `ConnectionLost`, `IntegrityError`, `DataError`,
-- `DeadlockError`, `LockTimeoutError`, `QueryTimeout`, `QueryError`,
-- `CapabilityError`, `ValidationError`, `RecordNotFound`, `StaleObjectError`,
-- `ConfigError`, `TransactionError`, `MigrationError` (a migration's
-- operation failed: fields `file`, `version`, `operation`, `sql`, `cause`),
-- `CallbackError` (`after_commit`/`after_rollback` handlers failed after the
-- data was committed: fields `committed = true`, `cause` (the first
-- handler's error), `causes` (every one)), `ReadOnlyRecord` (a save, update
-- or delete of a record loaded by a `readonly()` query; field `model`).
-- @table kinds
M.kinds = {
  ConnectionError = "ConnectionError", ConnectionLost = "ConnectionLost",
  IntegrityError = "IntegrityError", DataError = "DataError",
  DeadlockError = "DeadlockError", LockTimeoutError = "LockTimeoutError",
  QueryTimeout = "QueryTimeout", QueryError = "QueryError",
  CapabilityError = "CapabilityError", ValidationError = "ValidationError",
  RecordNotFound = "RecordNotFound", StaleObjectError = "StaleObjectError",
  ConfigError = "ConfigError", TransactionError = "TransactionError",
  MigrationError = "MigrationError", CallbackError = "CallbackError",
  ReadOnlyRecord = "ReadOnlyRecord",
}

--- Builds an error object without raising it.
-- @tparam string kind one of `kinds`
-- @tparam string message the text `tostring(err)` shows
-- @tparam[opt] table fields extra keys copied onto the error (e.g. `errors` for validation)
-- @treturn Error the error object
-- @raise an assertion error for a kind not in `kinds`
function M.new(kind, message, fields)
  assert(M.kinds[kind], "unknown error kind: " .. tostring(kind))
  if message == "" then message = nil end
  local err = setmetatable({ kind = kind, code = 0, message = message or "unknown error" }, Error)
  if type(fields) == "table" then
    for k, v in pairs(fields) do rawset(err, k, v) end
  end
  return err
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
  if type(err) ~= "table" or getmetatable(err) ~= Error then return false end
  return kind == nil or err.kind == kind
end

--- Maps a server or client errno to its kind (the backend's one table; a
-- backend installs it when it loads).
-- @function kind_of
-- @tparam integer code the errno (e.g. 1062)
-- @treturn string the kind (e.g. `"IntegrityError"`)
-- @raise `ConfigError` when no backend has been loaded yet
function M.kind_of(code)
  M.raise("ConfigError", "errors.kind_of(" .. tostring(code) .. "): errnos are mapped by a backend, "
    .. "and none is loaded (require \"activerecord.backend.mysql\" or call ar.connect first)")
end

return M
