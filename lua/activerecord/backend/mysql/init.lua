--- The MySQL/MariaDB backend: the interface of `activerecord.backend.base` on
-- top of the C core, with a pool, transactions that nest by savepoints,
-- retries, reconnects, statement logging and capability checks. This file
-- makes the Backend object (connect, compile, server and capabilities,
-- lifetime); the statement path is execute.lua, transactions transaction.lua.
--
-- Connection affinity: a transaction pins one connection to the coroutine
-- that runs it; every statement that coroutine issues inside the
-- transaction uses it, and no other coroutine ever gets it.
-- @module activerecord.backend.mysql
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local config = require("activerecord.backend.mysql.config")
local Pool = require("activerecord.backend.mysql.pool")
local caps = require("activerecord.backend.capabilities")

local Backend = {}
Backend.__index = Backend

-- the statement path, transactions, introspection and the advisory lock:
-- methods of the same object
for _, part in ipairs({ "execute", "transaction", "introspect", "advisory_lock" }) do
  for name, fn in pairs(require("activerecord.backend.mysql." .. part).methods) do Backend[name] = fn end
end

local M = { Backend = Backend }

--- Creates a backend (what `ar.connect` calls).
-- @tparam table user_opts the options of `activerecord.connect`
-- @treturn Backend the backend, with one connection already opened
-- @raise `ConfigError` for a bad option; `ConnectionError` when the first
--   connection fails
function M.new(user_opts)
  local connect_opts, opts = config.normalize(user_opts)
  local self = setmetatable({
    opts = opts,
    connect_opts = connect_opts,
    log = opts.log,
    log_params = opts.log_params,
    slow_query_seconds = opts.slow_query_seconds,
    read_timeout = connect_opts.read_timeout,
    tx = setmetatable({}, { __mode = "k" }), -- coroutine -> transaction state
    ntx = 0, -- entries set in `tx` (an entry collected with its coroutine is not subtracted)
    _schema_version = 0, -- incremented by each schema cache reset (introspect.lua)
  }, Backend)
  self.pool = Pool.new(function() return core.connect(connect_opts) end, opts.pool)
  -- connect once now: bad credentials fail here, and the server's flavor
  -- and version fix the dialect and capabilities for this backend
  local conn = self.pool:checkout()
  local ok, err = pcall(function()
    self._server = conn:server()
    self._capabilities = conn:capabilities()
  end)
  self.pool:checkin(conn, not ok)
  if not ok then error(err, 0) end
  self.compiler = require("activerecord.backend.mysql.compiler")
  local Dialect = require("activerecord.backend.mysql.dialect")
  self.dialect = Dialect.new{ flavor = self._server.flavor, version = self._server.version,
                              capabilities = self._capabilities }
  return self
end

--- A connected backend: a pool of connections to one server.
-- Fields: `dialect` (SQL generation for this server), `compiler`.
-- @type Backend

-- The JSON kinds JSON_TYPE names for a number, on MySQL and MariaDB.
local JSON_NUMBER_TYPES = "('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')"

--- The rows of a table whose JSON column holds `value` at `path`, matched
-- by JSON kind as well as value (the original guide's helper, done
-- safely): a boolean matches only JSON `true`/`false`, a number only a
-- JSON number of the same value (`1` matches `1` and `1.0`, never `"1"`),
-- a string only a JSON string, `ar.null` only a JSON `null` (not a missing
-- key). Table and column are validated identifiers, the path is checked
-- against the JSON path grammar and bound, the value is bound.
-- @tparam string table_name the table
-- @tparam string column the JSON column
-- @tparam string path a JSON path such as `"$.editor"`
-- @param value a string, number, boolean or `ar.null`
-- @treturn {table,...} the rows
-- @raise `QueryError` for a bad identifier, JSON path or value (a table,
--   `nil`, NaN or infinity; before any SQL is sent); `CapabilityError` on
--   a server without JSON functions
-- @usage db:json_path_query("users", "profile", "$.admin", true)
function Backend:json_path_query(table_name, column, path, value)
  local query = require("activerecord.query")
  local null = require("activerecord.null")
  local dialect = self.dialect
  local extract = dialect:json_extract(dialect:quote_identifier(column), path)
  local kind, sql, params = type(value), nil, nil
  if value == null then
    sql, params = "JSON_TYPE(" .. extract .. ") = 'NULL'", { path }
  elseif kind == "boolean" then
    sql = "JSON_TYPE(" .. extract .. ") = 'BOOLEAN' AND JSON_UNQUOTE(" .. extract .. ") = ?"
    params = { path, path, value and "true" or "false" }
  elseif kind == "string" then
    sql = "JSON_TYPE(" .. extract .. ") = 'STRING' AND JSON_UNQUOTE(" .. extract .. ") = ?"
    params = { path, path, value }
  elseif kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then
      errors.raise("QueryError", "json_path_query: the value must be a finite number, got "
        .. tostring(value))
    end
    -- exact for integers past 2^53 (a DECIMAL compares exactly with an integer)
    sql = "JSON_TYPE(" .. extract .. ") IN " .. JSON_NUMBER_TYPES
      .. " AND CAST(JSON_UNQUOTE(" .. extract .. ") AS DECIMAL(65,30)) = ?"
    params = { path, path, value }
  else
    errors.raise("QueryError", "json_path_query: the value must be a string, number, boolean or ar.null, got "
      .. (kind == "nil" and "nil (use ar.null for a JSON null)" or kind))
  end
  return query.table(table_name, self):where(sql, table.unpack(params)):all()
end

-- ---- SQL text ----------------------------------------------------------

local COMPILE_KINDS = { select = true, update = true, delete = true, insert = true }

--- SQL text and parameters from the compiler, the one place that writes
-- SQL: `db:compile("select", q)`, `db:compile("update", q, assignments)`,
-- `db:compile("delete", q, opts)` (q: a finalized query, `q:_final()`) ->
-- sql, params; `db:compile("insert", table_name, columns, nrows, opts)` ->
-- sql (every value a parameter).
-- @tparam string kind `select`, `update`, `delete` or `insert`
-- @raise `QueryError` for what the compiler refuses; `ConfigError` for an unknown kind
function Backend:compile(kind, ...)
  if not COMPILE_KINDS[kind] then
    errors.raise("ConfigError", "compile: unknown statement kind " .. tostring(kind)
      .. " (accepted: delete, insert, select, update)")
  end
  return self.compiler[kind](self.dialect, ...)
end

-- ---- server, capabilities, lifetime ---------------------------------

--- The server this backend talks to.
-- @treturn table `{ flavor = "mariadb"|"mysql", version = { 10, 11, 19 }, version_string }`
function Backend:server()
  return self._server
end

--- The server's capabilities grouped by category.
-- @treturn table category -> { capability -> boolean }
function Backend:capabilities()
  return caps.group(self._capabilities)
end

--- Whether the server has a capability, or a category's main capability.
-- @tparam string name a capability (`"json_table"`) or a category (`"json"`)
-- @treturn boolean
-- @raise `ConfigError` for a name that is neither
function Backend:supports(name)
  return caps.supports(self._capabilities, name)
end

--- Raises unless the server has a capability; nothing is sent.
-- @tparam string name the capability
-- @tparam[opt] string feature what needs it, for the message
-- @treturn boolean true
-- @raise `CapabilityError` naming the feature, the server's flavor and
--   version; `ConfigError` for an unknown capability name
-- One wording for every capability error: the dialect's ("X needs
-- MariaDB 10.6+ (server: mariadb 10.5.4)"); categories resolve first.
function Backend:require_capability(name, feature)
  if caps.supports(self._capabilities, name) then return true end
  local names = caps.categories[name]
  return self.dialect:require(names and names[1] or name, feature)
end

--- Counters of the connection pool.
-- @treturn table `{ size, open, in_use, idle, waits, timeouts, created, closed, replaced, errors }`
function Backend:pool_stats()
  return self.pool:stats()
end

--- Closes the pool: idle connections now, in-use ones when returned. Also
-- runs at the end of a `local db <close> = ar.connect{...}` scope.
function Backend:close()
  self.pool:close()
end

Backend.__close = Backend.close

function Backend:__tostring()
  local s = self._server
  return ("activerecord mysql backend (%s %s, pool %d/%d)"):format(s.flavor,
    table.concat(s.version, "."), self.pool.open, self.pool.opts.size)
end

return M
