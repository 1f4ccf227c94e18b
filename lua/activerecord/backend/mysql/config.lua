-- Configuration of `ar.connect{...}`: validated up front, so a typo is a
-- ConfigError naming the key (and the accepted ones) before any connection.
local errors = require("activerecord.errors")
local options = require("activerecord.options")

local M = {}

-- Options passed through to the C core's connect(). Not `autocommit`: with it
-- off, a pooled connection would sit in an implicit transaction that the pool
-- rolls back at check-in; use db:transaction instead.
M.connect_options = {
  host = "string", port = "integer", socket = "string", user = "string",
  password = "string", database = "string", charset = "string",
  connect_timeout = "number", read_timeout = "number", write_timeout = "number",
  ssl = "table", init_command = "string", sql_mode = "string", time_zone = "string",
  statement_cache_size = "integer", decimal = "string",
}

-- The session time_zone when the user names none.
M.DEFAULT_TIME_ZONE = "+00:00"

-- Options of the backend itself.
M.backend_options = {
  url = "string", pool = "table", log = "function", log_params = "boolean",
  slow_query_seconds = "number", reconnect_retries = "integer",
  scheduler = "scheduler", -- "cqueues", "luv" or an adapter table (activerecord.scheduler)
  -- beyond one server (issue 18): each server a table of connect options
  primary = "table", replicas = "table", replica_lag = "replica_lag",
  replica_wait_timeout = "number", replica_retry = "number",
  cluster = "table", node_retry = "number", wsrep_sync_wait = "integer",
  cluster_reads = "cluster_reads", -- "current" (the writes' node) or "spread" (every synced node)
}

-- Options that only mean something with the topology named by the key.
local TOPOLOGY_OPTIONS = {
  replicas = { "replica_lag", "replica_wait_timeout", "replica_retry" },
  cluster = { "node_retry", "wsrep_sync_wait", "cluster_reads" },
}

M.DEFAULT_NODE_RETRY = 2 -- seconds a failed Galera node rests before it is tried again

M.DEFAULT_REPLICA_WAIT_TIMEOUT = 1 -- seconds MASTER_GTID_WAIT may take before the primary reads
M.DEFAULT_REPLICA_RETRY = 5        -- seconds a failed replica rests



M.pool_options = {
  size = "integer", checkout_timeout = "number", idle_timeout = "number",
  max_lifetime = "number", validate_on_checkout = "number", reset_session = "boolean",
  wait = "function",
}

M.pool_defaults = {
  size = 10, checkout_timeout = 5, idle_timeout = 300, max_lifetime = 3600,
  validate_on_checkout = 30, reset_session = false,
}

-- Pool timings in seconds: finite and non-negative. Infinity is accepted
-- only for `validate_on_checkout`, where it is the documented "never" (what
-- `validate_on_checkout = false` becomes). NaN never: every comparison with
-- it is false, so a checkout would wait forever.
M.pool_timings = {
  checkout_timeout = false, idle_timeout = false, max_lifetime = false, validate_on_checkout = true,
}

local function check_timing(key, v, may_be_never)
  if v ~= v then errors.raise("ConfigError", ("pool option '%s' must be a number of seconds, got NaN"):format(key)) end
  if v < 0 then
    errors.raise("ConfigError", ("pool option '%s' must not be negative, got %s"):format(key, tostring(v)))
  end
  if v == math.huge and not may_be_never then
    errors.raise("ConfigError", ("pool option '%s' must be a finite number of seconds, got %s"):format(
      key, tostring(v)))
  end
end

local function sorted_keys(...)
  local keys = {}
  for _, t in ipairs({ ... }) do
    for k in pairs(t) do keys[#keys + 1] = k end
  end
  table.sort(keys)
  return table.concat(keys, ", ")
end

local function check_type(where, key, value, want)
  local ok
  if want == "integer" then
    ok = math.type(value) == "integer"
  else
    ok = type(value) == want
  end
  if not ok then
    errors.raise("ConfigError", ("%s '%s' must be %s %s, got %s"):format(
      where, key, want == "integer" and "an" or "a", want, math.type(value) or type(value)))
  end
end

-- One server's connect options: the top-level ones, overridden by its own
-- table (checked like the top level's).
local function server_options(base, server, where)
  if type(server) ~= "table" then
    errors.raise("ConfigError", ("%s must be a table of connect options, got %s"):format(where, type(server)))
  end
  local opts = {}
  for k, v in pairs(base) do opts[k] = v end
  for k, v in pairs(server) do
    local want = type(k) == "string" and M.connect_options[k]
    if not want then
      errors.raise("ConfigError", ("unknown option '%s' in %s (accepted: %s)"):format(
        tostring(k), where, sorted_keys(M.connect_options)))
    end
    check_type(where .. " option", k, v, want)
    opts[k] = v
  end
  return opts
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "mysql://user:pass@host:port/db?charset=utf8mb4&socket=/run/x.sock"
function M.parse_url(url)
  local scheme, rest = url:match("^(%w+)://(.*)$")
  if scheme ~= "mysql" and scheme ~= "mariadb" then
    errors.raise("ConfigError", "url must start with mysql:// or mariadb://")
  end
  local opts = {}
  local authority, path = rest:match("^([^/?]*)(.*)$")
  local userinfo, hostport = authority:match("^(.*)@(.*)$")
  if not userinfo then hostport = authority end
  if userinfo then
    local user, password = userinfo:match("^([^:]*):(.*)$")
    opts.user = unescape(user or userinfo)
    if password then opts.password = unescape(password) end
  end
  if hostport ~= "" then
    local host, port = hostport:match("^%[(.*)%]:?(%d*)$") -- [::1]:3306
    if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
    if not host then errors.raise("ConfigError", "url has a malformed host:port") end
    if host ~= "" then opts.host = unescape(host) end
    if port ~= "" then opts.port = math.tointeger(tonumber(port)) end
  end
  local db, query = path:match("^/?([^?]*)%??(.*)$")
  if db and db ~= "" then opts.database = unescape(db) end
  for pair in (query or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]+)=(.*)$")
    if not k then errors.raise("ConfigError", ("url parameter '%s' has no value"):format(pair)) end
    k, v = unescape(k), unescape(v)
    local want = M.connect_options[k]
    if not want or want == "table" then
      errors.raise("ConfigError", ("unknown url parameter '%s' (accepted: %s)"):format(
        k, sorted_keys(M.connect_options)))
    end
    if want == "integer" then
      v = math.tointeger(tonumber(v))
    elseif want == "number" then
      v = tonumber(v)
    elseif want == "boolean" then
      v = (v == "true" or v == "1")
    end
    if v == nil then errors.raise("ConfigError", ("url parameter '%s' has a bad value"):format(k)) end
    opts[k] = v
  end
  return opts
end

-- Connection settings from the environment (twelve-factor style):
-- <prefix>HOST, PORT, SOCKET, USER, PASSWORD, DATABASE, or <prefix>URL; the
-- prefix defaults to "AR_MYSQL_". `extra` adds or overrides options.
function M.from_env(extra, prefix)
  prefix = prefix or "AR_MYSQL_"
  local function env(name)
    local v = os.getenv(prefix .. name)
    if v == nil or v == "" then return nil end
    return v
  end
  local opts = {}
  if env("URL") then opts.url = env("URL") end
  opts.host, opts.socket = env("HOST"), env("SOCKET")
  opts.user, opts.password, opts.database = env("USER"), env("PASSWORD"), env("DATABASE")
  if env("PORT") then
    opts.port = math.tointeger(tonumber(env("PORT")))
    if not opts.port then errors.raise("ConfigError", prefix .. "PORT must be a port number") end
  end
  -- TCP when a port is given with a host: the socket is the local fallback
  if opts.host and opts.port then opts.socket = nil end
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- Splits and validates user options: returns connect_opts, backend_opts
-- (with pool defaults filled in). Explicit keys win over the url's.
function M.normalize(user_opts)
  if type(user_opts) ~= "table" then
    errors.raise("ConfigError", "connect expects a table of options")
  end
  local connect, backend = {}, {}
  if user_opts.url ~= nil then
    check_type("option", "url", user_opts.url, "string")
    for k, v in pairs(M.parse_url(user_opts.url)) do connect[k] = v end
  end
  for k, v in pairs(user_opts) do
    if type(k) ~= "string" then errors.raise("ConfigError", "option names must be strings") end
    local want = M.connect_options[k] or M.backend_options[k]
    if not want then
      errors.raise("ConfigError", ("unknown option '%s' (accepted: %s)"):format(
        k, sorted_keys(M.connect_options, M.backend_options)))
    end
    if want == "scheduler" then
      v = require("activerecord.scheduler").resolve(v)
    elseif want == "replica_lag" then
      if v ~= "wait" and v ~= "ignore" and (type(v) ~= "number" or v ~= v or v < 0) then
        errors.raise("ConfigError", "option 'replica_lag' must be \"wait\", \"ignore\" or a number of "
          .. "seconds >= 0, got " .. tostring(v))
      end
    elseif want == "cluster_reads" then
      if v ~= "current" and v ~= "spread" then
        errors.raise("ConfigError", "option 'cluster_reads' must be \"current\" or \"spread\", got "
          .. tostring(v))
      end
    else
      check_type("option", k, v, want)
    end
    if M.connect_options[k] then connect[k] = v elseif k ~= "url" then backend[k] = v end
  end
  local pool = {}
  for k, v in pairs(M.pool_defaults) do pool[k] = v end
  for k, v in pairs(backend.pool or {}) do
    local want = M.pool_options[k]
    if not want then options.check(backend.pool, M.pool_options, "pool") end
    -- validate_on_checkout also takes a boolean: true = always, false = never
    if k == "validate_on_checkout" and type(v) == "boolean" then
      v = v and 0 or math.huge
    end
    check_type("pool option", k, v, want == "integer" and "integer" or want)
    pool[k] = v
  end
  if pool.size < 1 then errors.raise("ConfigError", "pool option 'size' must be at least 1") end
  for key, may_be_never in pairs(M.pool_timings) do check_timing(key, pool[key], may_be_never) end
  backend.pool = pool
  if backend.scheduler then
    -- every wait suspends the calling coroutine: the connections' network
    -- waits (the C core) and the pool's wait for a free connection
    if pool.wait then
      errors.raise("ConfigError", "pool option 'wait' and option 'scheduler' exclude each other "
        .. "(the scheduler suspends a checkout that must wait)")
    end
    connect.scheduler = backend.scheduler
    pool.scheduler = backend.scheduler
  end
  -- Sessions run in UTC unless told otherwise: the ORM writes UTC into
  -- DATETIME columns, and NOW(), CURRENT_TIMESTAMP and TIMESTAMP columns
  -- then agree with it (the server's own default is often SYSTEM, the
  -- host's local time).
  if connect.time_zone == nil then connect.time_zone = M.DEFAULT_TIME_ZONE end
  -- options of one topology given without it would silently do nothing
  for topology, names in pairs(TOPOLOGY_OPTIONS) do
    if backend[topology] == nil then
      for _, name in ipairs(names) do
        if backend[name] ~= nil then
          errors.raise("ConfigError", ("option '%s' needs option '%s' (%s)"):format(name, topology,
            topology == "cluster" and "a Galera cluster's nodes" or "read replicas"))
        end
      end
    end
  end
  if backend.replicas ~= nil or backend.primary ~= nil then
    local list = backend.replicas
    if type(list) ~= "table" or #list == 0 then
      errors.raise("ConfigError", "option 'replicas' must be a non-empty array of connect option tables")
    end
    local base = connect
    if backend.primary ~= nil then connect = server_options(base, backend.primary, "primary") end
    local servers = {}
    for i, server in ipairs(list) do servers[i] = server_options(base, server, "replicas[" .. i .. "]") end
    backend.replica_servers = servers
    if backend.replica_lag == nil then backend.replica_lag = "wait" end
    backend.replica_wait_timeout = backend.replica_wait_timeout or M.DEFAULT_REPLICA_WAIT_TIMEOUT
    backend.replica_retry = backend.replica_retry or M.DEFAULT_REPLICA_RETRY
    if connect.scheduler then
      for _, server in ipairs(servers) do server.scheduler = connect.scheduler end
    end
  end
  if backend.cluster ~= nil then
    if backend.replicas ~= nil or backend.primary ~= nil then
      errors.raise("ConfigError", "option 'cluster' excludes 'primary' and 'replicas' (a Galera cluster "
        .. "has no primary: every node takes writes)")
    end
    local list = backend.cluster
    if #list == 0 then
      errors.raise("ConfigError", "option 'cluster' must be a non-empty array of connect option tables")
    end
    local base, servers = connect, {}
    for i, server in ipairs(list) do servers[i] = server_options(base, server, "cluster[" .. i .. "]") end
    backend.cluster_servers = servers
    connect = servers[1]
    backend.node_retry = backend.node_retry or M.DEFAULT_NODE_RETRY
    if backend.wsrep_sync_wait ~= nil and (backend.wsrep_sync_wait < 0 or backend.wsrep_sync_wait > 15) then
      errors.raise("ConfigError", "option 'wsrep_sync_wait' must be 0..15 (a bitmask of statement kinds)")
    end
    backend.cluster_reads = backend.cluster_reads or "current"
    if backend.cluster_reads == "spread" then
      -- a read on another node than the write's waits until that node has
      -- applied what the cluster committed (causal reads: read-your-writes)
      if backend.wsrep_sync_wait == nil then backend.wsrep_sync_wait = 1 end
      -- the replica read path (replicas.lua) over the nodes: no GTID to
      -- wait for, a failed node rests as long as the cluster rests it
      backend.replica_lag = "ignore"
      backend.replica_retry = backend.node_retry
    end
  end
  if backend.reconnect_retries == nil then backend.reconnect_retries = 1 end
  if backend.reconnect_retries < 0 then
    errors.raise("ConfigError", "option 'reconnect_retries' must not be negative")
  end
  return connect, backend
end

return M
