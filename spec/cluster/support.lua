-- The clusters the specs in spec/cluster run against: the ones
-- scripts/with-cluster.sh started (`make cluster-test`), named by the
-- AR_REPL_* and AR_GALERA_* variables that scripts/replication.sh and
-- scripts/galera.sh write to their env.sh.
--
--   local support = require("cluster.support")
--   if not support.available("replication") then pending("no cluster") return end
--   local cfg = support.replication()   -- { primary = opts, replicas = { opts } }
--   local nodes = support.galera()      -- { opts, opts, opts }
--   support.stop_replica(); support.start_replica()  -- replica 1; (2) for the second
--   support.galera_kill(3); local seconds = support.galera_start(3)
--
-- Each opts table is { host, port, user, password, database }, fresh on each
-- call (change it freely). The control functions block until the scripts
-- finish (galera_start: until the node is Synced), raise on failure and
-- return the seconds they took.
local M = {}

local function env(name)
  local v = os.getenv(name)
  if v == "" then return nil end
  return v
end

-- scripts/ next to spec/: from this file's own path (busted runs from the
-- repository root, but do not depend on it), or AR_CLUSTER_SCRIPTS.
local function scripts_dir()
  local named = env("AR_CLUSTER_SCRIPTS")
  if named then return named end
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)/[^/]*$") or "."
  return dir .. "/../../scripts"
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function now()
  local p = io.popen("date +%s.%N")
  local t = p and tonumber(p:read("l"))
  if p then p:close() end
  return t or os.time()
end

-- Runs scripts/<script> with args; its output goes to stderr (stdout is
-- busted's TAP). Raises with the command line on failure.
local function run(script, ...)
  local parts = { quote(scripts_dir() .. "/" .. script) }
  for i = 1, select("#", ...) do parts[#parts + 1] = quote((select(i, ...))) end
  local cmd = table.concat(parts, " ")
  local t0 = now()
  local ok, how, code = os.execute(cmd .. " >&2")
  if not ok then
    error(("cluster support: `%s` failed (%s %s)"):format(cmd, tostring(how), tostring(code)), 3)
  end
  return now() - t0
end

-- Exit status 0 or not, without raising (status subcommands).
local function succeeds(script, ...)
  local parts = { quote(scripts_dir() .. "/" .. script) }
  for i = 1, select("#", ...) do parts[#parts + 1] = quote((select(i, ...))) end
  return os.execute(table.concat(parts, " ") .. " >/dev/null 2>&1") == true
end

local function repl_available()
  return env("AR_REPL_DIR") ~= nil and tonumber(env("AR_REPL_PRIMARY_PORT") or "") ~= nil
    and tonumber(env("AR_REPL_REPLICA_PORT") or "") ~= nil
end

local function galera_available()
  return env("AR_GALERA_DIR") ~= nil and (env("AR_GALERA_PORTS") or ""):match("%d") ~= nil
end

-- available() -> both topologies are there; available("replication") or
-- available("galera") -> that one is.
function M.available(which)
  if which == "replication" then return repl_available() end
  if which == "galera" then return galera_available() end
  if which ~= nil then error("cluster support: unknown topology " .. tostring(which), 2) end
  return repl_available() and galera_available()
end

local function need(which)
  if not M.available(which) then
    error(("cluster support: no %s cluster in the environment (run the specs through "
      .. "scripts/with-cluster.sh, or make cluster-test)"):format(which), 3)
  end
end

local function options(prefix, port, extra)
  local opts = {
    host = env(prefix .. "_HOST") or "127.0.0.1",
    port = port,
    user = env(prefix .. "_USER") or "app",
    password = env(prefix .. "_PASSWORD"),
    database = env(prefix .. "_DATABASE") or "ar_test",
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- { primary = opts, replicas = { opts } }; `extra` is merged into each.
-- `count` = 2 lists both replicas (scripts/replication.sh starts two);
-- most specs use the first alone.
function M.replication(extra, count)
  need("replication")
  local replicas = { options("AR_REPL", tonumber(env("AR_REPL_REPLICA_PORT")), extra) }
  if count == 2 then
    local port = tonumber(env("AR_REPL_REPLICA2_PORT") or "")
    if not port then error("cluster support: no second replica (AR_REPL_REPLICA2_PORT)", 2) end
    replicas[2] = options("AR_REPL", port, extra)
  end
  return { primary = options("AR_REPL", tonumber(env("AR_REPL_PRIMARY_PORT")), extra), replicas = replicas }
end

-- { opts, opts, opts } for nodes 1..3; `extra` is merged into each.
function M.galera(extra)
  need("galera")
  local nodes = {}
  for port in env("AR_GALERA_PORTS"):gmatch("%d+") do
    nodes[#nodes + 1] = options("AR_GALERA", tonumber(port), extra)
  end
  return nodes
end

-- Root options (through the unix socket) for checks the app user may not
-- run; nil when the sockets are unknown.
function M.replication_root(which)
  need("replication")
  local sock = env(which == "replica" and "AR_REPL_REPLICA_SOCKET" or "AR_REPL_PRIMARY_SOCKET")
  if not sock then return nil end
  return { socket = sock, user = "root", database = env("AR_REPL_DATABASE") or "ar_test" }
end

local function replica_number(n)
  n = math.tointeger(n or 1)
  if n ~= 1 and n ~= 2 then error("cluster support: replica must be 1 or 2", 3) end
  return tostring(n)
end

-- Replica n's server (1, the default, or 2): stopped (SIGTERM, data kept),
-- started again (then START SLAVE, waiting until both replication threads
-- run), or SIGKILLed.
function M.stop_replica(n)
  need("replication")
  return run("replication.sh", "stop-replica", env("AR_REPL_DIR"), replica_number(n))
end

function M.start_replica(n)
  need("replication")
  return run("replication.sh", "start-replica", env("AR_REPL_DIR"), replica_number(n))
end

function M.kill_replica(n)
  need("replication")
  return run("replication.sh", "kill-replica", env("AR_REPL_DIR"), replica_number(n))
end

-- True when the primary and the replica run and replication runs.
function M.replication_ok()
  need("replication")
  return succeeds("replication.sh", "status", env("AR_REPL_DIR"))
end

local function node(n)
  n = math.tointeger(n)
  if not n or n < 1 or n > 3 then error("cluster support: Galera node must be 1, 2 or 3", 3) end
  return tostring(n)
end

-- SIGKILL node n (1..3) and the SST helpers it started.
function M.galera_kill(n)
  need("galera")
  return run("galera.sh", "kill", env("AR_GALERA_DIR"), node(n))
end

-- Start node n again (from its recovered position after a kill) and wait
-- until it is Synced; returns the seconds that took.
function M.galera_start(n)
  need("galera")
  return run("galera.sh", "start", env("AR_GALERA_DIR"), node(n))
end

-- Stop node n cleanly (SIGTERM).
function M.galera_stop(n)
  need("galera")
  return run("galera.sh", "stop", env("AR_GALERA_DIR"), node(n))
end

-- True when node n runs and is Synced.
function M.galera_synced(n)
  need("galera")
  return succeeds("galera.sh", "status", env("AR_GALERA_DIR"), node(n))
end

return M
