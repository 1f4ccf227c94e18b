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
for _, part in ipairs({ "execute", "transaction", "introspect", "advisory_lock", "replicas" }) do
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
    write_timeout = connect_opts.write_timeout,
    -- a statement's start is timed only when a timeout may explain its failure
    timed_io = (connect_opts.read_timeout or connect_opts.write_timeout) and true or false,
    tx = setmetatable({}, { __mode = "k" }), -- coroutine -> transaction state
    ntx = 0, -- entries set in `tx` (an entry collected with its coroutine is not subtracted)
    _schema_version = 0, -- incremented by each schema cache reset (introspect.lua)
    _schema_loads = false, -- schema reads in flight (a count), false for none
    -- set (replicas.lua, the cluster) only beyond one server; false, not
    -- nil, so the statement path's test is a field hit, not a miss that
    -- falls through to the class table
    replicas = false,
    read_cluster = false, -- the cluster (cluster.lua) whose nodes spread reads read on
    server_of = false,
  }, Backend)
  self.pool = Pool.new(function() return core.connect(connect_opts) end, opts.pool)
  if opts.cluster_servers then
    -- Galera: a pool per node behind one failover pool (cluster.lua)
    local server_of = setmetatable({}, { __mode = "k" })
    self.server_of = server_of
    local nodes = {}
    for i, nopts in ipairs(opts.cluster_servers) do
      local name = "node " .. i
      local pool = Pool.new(function() return core.connect(nopts) end, opts.pool)
      pool.on_open = function(conn)
        server_of[conn] = name
        -- causal reads: the node waits until it has applied what the cluster committed
        if opts.wsrep_sync_wait then conn:execute("SET SESSION wsrep_sync_wait = ?", opts.wsrep_sync_wait) end
      end
      nodes[i] = { name = name, pool = pool }
    end
    self.pool = require("activerecord.backend.mysql.cluster").new(nodes, opts.node_retry)
    if opts.cluster_reads == "spread" then
      -- reads outside transactions go round-robin over the nodes, through
      -- the replica read path; a node's failure there is the cluster's too
      require("activerecord.backend.mysql.replicas").setup(self, self.pool.nodes, self.pool)
    end
  end
  if opts.replica_servers then
    -- a pool per replica; every connection remembers its server for the log
    local server_of = setmetatable({}, { __mode = "k" })
    self.server_of = server_of
    local function named(pool, name)
      pool.on_open = function(conn) server_of[conn] = name end
      return { name = name, pool = pool }
    end
    named(self.pool, "primary")
    local pools = {}
    for i, ropts in ipairs(opts.replica_servers) do
      pools[i] = named(Pool.new(function() return core.connect(ropts) end, opts.pool), "replica " .. i)
    end
    require("activerecord.backend.mysql.replicas").setup(self, pools)
  end
  -- connect once now: bad credentials fail here, and the server's flavor
  -- and version fix the dialect and capabilities for this backend. Under a
  -- scheduler, from outside a coroutine of the loop (at start-up), that one
  -- connection blocks and is closed; every pooled one suspends its coroutine.
  local probe_outside = opts.scheduler and not coroutine.isyieldable()
  local conn
  if probe_outside then
    local blocking = {}
    for k, v in pairs(connect_opts) do blocking[k] = v end
    blocking.scheduler = nil
    conn = core.connect(blocking)
  else
    conn = self.pool:checkout()
  end
  local ok, err = pcall(function()
    self._server = conn:server()
    self._capabilities = conn:capabilities()
  end)
  if probe_outside then conn:close() else self.pool:checkin(conn, not ok) end
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

--- Counters of the connection pool. With replicas, the primary's at the
-- top level (`server = "primary"`), `replicas` (each replica's, with its
-- `name`, `reads`, `failures` and `down`) and `reads` (`replica`,
-- `fallbacks` to the primary, `gtid_waits`, `gtid_wait_timeouts`). Over a
-- cluster, the sums at the top, `nodes` (each with `name`, `down`,
-- `failures`, and `reads` when reads spread), `current`, `failovers`, and
-- with spread reads `reads` (`spread`, `fallbacks` to the current node).
-- @treturn table `{ size, open, in_use, idle, waits, timeouts, created, closed, replaced, errors }`
function Backend:pool_stats()
  local stats = self.pool:stats()
  if self.read_cluster then
    -- reads spread over a cluster's nodes: each node's `reads`, and where they went
    local list, reads = require("activerecord.backend.mysql.replicas").stats(self)
    for i, node in ipairs(stats.nodes) do node.reads = list[i].reads end
    stats.reads = { spread = reads.replica, fallbacks = reads.fallbacks }
  elseif self.replicas then
    -- the primary's counters at the top, as without replicas; then each
    -- replica's, and where the reads went
    stats.server = "primary"
    stats.replicas, stats.reads = require("activerecord.backend.mysql.replicas").stats(self)
  end
  return stats
end

--- Closes the pool: idle connections now, in-use ones when returned. Also
-- runs at the end of a `local db <close> = ar.connect{...}` scope.
function Backend:close()
  self.pool:close()
  -- a cluster's nodes (spread reads) are closed by the cluster
  if not self.read_cluster then
    for _, r in ipairs(self.replicas or {}) do r.pool:close() end
  end
end

Backend.__close = Backend.close

function Backend:__tostring()
  local s = self._server
  return ("activerecord mysql backend (%s %s, pool %d/%d)"):format(s.flavor,
    table.concat(s.version, "."), self.pool:stats().open, self.pool.opts.size)
end

return M
