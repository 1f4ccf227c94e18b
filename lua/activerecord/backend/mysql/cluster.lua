-- A Galera cluster (issue 18): one backend over the cluster's nodes, with a
-- pool per node behind the pool interface (checkout, checkin, orphan,
-- stats, close). Writes go to one node at a time; a node that fails (no
-- connection, a lost link, error 1047 "not ready") is taken out of
-- rotation for `node_retry` seconds and the next node takes over. A node
-- coming back is used again only once it reports itself Synced
-- (wsrep_local_state_comment) and ready (wsrep_ready).
--
-- Certification conflicts arrive as deadlocks (1213) at COMMIT, and a link
-- lost before COMMIT is sent rolls back on the server:
-- `db:transaction(fn, { retries = n })` re-runs the work in both cases
-- (never after a link lost during COMMIT, whose outcome is unknown).
-- Inserted ids always come from the server (RETURNING or the insert id),
-- so Galera's auto_increment_increment/offset are followed, never guessed.
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")

local now = core.monotime

local Cluster = {}
Cluster.__index = Cluster

local M = {}

--- Builds the failover pool.
-- @param nodes array of `{ name, pool }`
-- @tparam number retry seconds a failed node rests before it is tried again
function M.new(nodes, retry)
  local self
  local list = {}
  for i, n in ipairs(nodes) do
    list[i] = { name = n.name, pool = n.pool, down_until = 0, probation = false, failures = 0 }
  end
  self = setmetatable({
    opts = nodes[1].pool.opts, -- the same pool options on every node
    -- a connection outside the pools (advisory locks), to the current node
    connect = function() return self.nodes[self.current].pool.connect() end,
    nodes = list,
    current = 1,
    retry = retry,
    owner = setmetatable({}, { __mode = "k" }), -- connection -> its node
    failovers = 0,
    closed = false,
  }, Cluster)
  return self
end

local function mark_down(self, node, err)
  node.down_until = now() + self.retry
  node.probation = true
  node.failures = node.failures + 1
  node.last_error = err
  if self.nodes[self.current] == node then
    self.current = self.current % #self.nodes + 1
    self.failovers = self.failovers + 1
  end
end

-- A node back from a failure takes statements again only once Synced.
local function synced(conn)
  local ok, res = pcall(conn.execute, conn,
    "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_ready')")
  if not ok then return false, res end
  local state, ready
  for _, row in ipairs(res.rows) do
    if row.Variable_name == "wsrep_local_state_comment" then state = row.Value end
    if row.Variable_name == "wsrep_ready" then ready = row.Value end
  end
  -- a server without Galera (no wsrep status) is taken as it is
  if state == nil and ready == nil then return true end
  return state == "Synced" and ready == "ON", state
end

function Cluster:checkout()
  if self.closed then errors.raise("ConnectionError", "the connection pool is closed") end
  local n = #self.nodes
  local last_err
  for _ = 1, n do
    local node = self.nodes[self.current]
    if node.down_until <= now() then
      local ok, conn = pcall(node.pool.checkout, node.pool)
      if ok and node.probation then
        local why
        ok, why = self:vouch(node, conn)
        if not ok then conn = why end
      elseif not ok then
        -- a node's pool busy to its size is load, not a failed node: moving
        -- the writes to another node would only add certification conflicts
        if type(conn) == "table" and conn.pool_exhausted then error(conn, 0) end
        mark_down(self, node, conn)
      end
      if ok then
        self.owner[conn] = node
        return conn
      end
      last_err = conn
    else
      self.current = self.current % n + 1
    end
  end
  errors.raise("ConnectionError", "no cluster node is available (each failed within the last "
    .. self.retry .. " s): " .. tostring(last_err and last_err.message or last_err))
end

--- Whether `node`, back from a failure (on probation), may take statements
-- again: true once it reports itself Synced and ready. Otherwise false and
-- the error; `conn` (the node's) is then closed and the node rests again.
function Cluster:vouch(node, conn)
  local failures = node.failures
  local is_synced, why = synced(conn)
  -- a failure seen while this check waited (under a scheduler) puts the
  -- node back on probation: this check no longer vouches for it
  if is_synced and node.failures == failures then
    node.probation = false
    return true
  end
  node.pool:checkin(conn, true)
  local err = errors.new("ConnectionError", ("cluster node %s is not synced yet (%s)"):format(
    node.name, tostring(why)))
  mark_down(self, node, err)
  return false, err
end

--- `node` failed (no connection, a lost link) outside the cluster's own
-- checkout (a read spread to it): it rests and, if it was the node writes
-- go to, the next one takes over.
function Cluster:node_failed(node, err)
  mark_down(self, node, err)
end

-- `err`: why a discarded connection is given back. Only a lost link says
-- its node may be gone (the next checkout then tries the next node, and
-- this one again after `retry`). A read timeout, or a connection closed
-- because its coroutine was cancelled, says nothing of the node.
function Cluster:checkin(conn, discard, err)
  local node = self.owner[conn]
  if not node then return end
  self.owner[conn] = nil
  if discard and type(err) == "table" and not err.timeout then mark_down(self, node, err) end
  node.pool:checkin(conn, discard)
end

function Cluster:orphan(conn, after)
  local node = self.owner[conn]
  if node then node.pool:orphan(conn, after) end
end

function Cluster:close()
  self.closed = true
  for _, node in ipairs(self.nodes) do node.pool:close() end
end

--- Counters: the sums over the nodes at the top level, `nodes` (each node's
-- own, with `name`, `down`, `failures`), `current` (the node writes go to)
-- and `failovers`.
function Cluster:stats()
  local total = { size = 0, open = 0, in_use = 0, idle = 0, waits = 0, timeouts = 0, created = 0,
                  closed = 0, replaced = 0, errors = 0 }
  local list, t = {}, now()
  for i, node in ipairs(self.nodes) do
    local s = node.pool:stats()
    for k in pairs(total) do total[k] = total[k] + s[k] end
    s.name, s.down, s.failures = node.name, node.down_until > t, node.failures
    list[i] = s
  end
  total.nodes, total.current, total.failovers = list, self.nodes[self.current].name, self.failovers
  return total
end

-- The opts of each node's pool (the pool options the user gave).
M.Cluster = Cluster
return M
