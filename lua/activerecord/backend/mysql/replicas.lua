-- Read replicas (issue 18): one backend over a primary and its MariaDB GTID
-- replicas. Writes, transactions, locking reads and DDL go to the primary;
-- plain reads outside a transaction go to a replica, round-robin. A replica
-- that fails rests `replica_retry` seconds, then is tried again; with none
-- left, the primary reads.
--
-- Read-your-writes (`replica_lag = "wait"`, the default): after a write,
-- the backend keeps the primary session's `@@last_gtid`; a replica reads
-- only once `MASTER_GTID_WAIT` says it has applied that transaction (within
-- `replica_wait_timeout` seconds; past it, that read runs on the primary).
-- A number instead skips replicas lagging more than that many seconds
-- (Seconds_Behind_Master, read at most once a second per replica);
-- "ignore" reads whatever the replica has.
local core = require("activerecord.backend.mysql.core")
local memo = require("activerecord.memo")
local transaction = require("activerecord.backend.mysql.transaction")

local now = core.monotime
local running = coroutine.running
local lost = transaction.lost

local M = {}
local Backend = {}
M.methods = Backend

-- Words that make a SELECT unfit for a replica: it locks, writes, or reads
-- session state that lives on the primary's connection.
local PRIMARY_ONLY = {
  "FOR%s+UPDATE", "FOR%s+SHARE", "LOCK%s+IN%s+SHARE%s+MODE", "INTO%s", "GET_LOCK", "RELEASE_LOCK",
  "RELEASE_ALL_LOCKS", "IS_USED_LOCK", "IS_FREE_LOCK", "LAST_INSERT_ID", "FOUND_ROWS", "ROW_COUNT",
  "NEXTVAL", "SETVAL", "LASTVAL", "MASTER_POS_WAIT", "MASTER_GTID_WAIT", "@@IDENTITY", "LAST_GTID",
}

-- SQL text -> true when the statement may read on a replica: a SELECT (or
-- a WITH ... SELECT) with none of the words above. Anything else, and
-- anything unsure, runs on the primary.
local function replica_safe(sql)
  local word = sql:match("^[%s%(]*(%a+)")
  word = word and word:upper()
  if word ~= "SELECT" and word ~= "WITH" then return false end
  local up = sql:upper()
  if word == "WITH" and (up:find("UPDATE", 1, true) or up:find("DELETE", 1, true)
      or up:find("INSERT", 1, true)) then
    return false
  end
  for _, pattern in ipairs(PRIMARY_ONLY) do
    if up:find(pattern) then return false end
  end
  -- a user variable (@x, not a system variable @@x) is session state
  return not up:gsub("@@", ""):find("@", 1, true)
end

local replica_memo = memo.bounded(4096, replica_safe)
M.replica_safe = replica_safe

-- Statements that change nothing: no GTID to wait for after them.
local function is_read(sql)
  local word = sql:match("^[%s%(]*(%a+)")
  word = word and word:upper()
  return word == "SELECT" or word == "SHOW" or word == "DESCRIBE" or word == "DESC"
    or word == "EXPLAIN" or word == "WITH" and replica_memo[sql]
end

--- Builds the replica states of a backend (`self.replicas`).
-- @param pools array of `{ name, pool }`
-- @param cluster a Galera cluster (cluster.lua) whose nodes these are
--   (`cluster_reads = "spread"`): they are the cluster's own node states,
--   so a node that fails a read rests for writes too, and one back from a
--   failure reads again only once the cluster vouches for it (Synced)
function M.setup(self, pools, cluster)
  local list = {}
  for i, p in ipairs(pools) do
    local r = cluster and p or { name = p.name, pool = p.pool, down_until = 0, failures = 0 }
    r.confirmed, r.lag_checked, r.lagging, r.reads = nil, -math.huge, false, 0
    list[i] = r
  end
  self.replicas = list
  self.read_cluster = cluster or false
  self.rr = 0
  self.latest_gtids = {} -- replication domain -> { seq, gtid } of the latest write seen
  self.primary_pinned = setmetatable({}, { __mode = "k" }) -- coroutine -> depth of on_primary
  self.read_counters = { replica = 0, gtid_waits = 0, gtid_wait_timeouts = 0, fallbacks = 0 }
end

local function mark_down(self, r, err)
  if self.read_cluster then
    self.read_cluster:node_failed(r, err)
  else
    r.down_until = now() + self.opts.replica_retry
    r.failures = r.failures + 1
    r.last_error = err
  end
  r.confirmed = nil
  if self.log then
    pcall(self.log, { sql = nil, event = "replica_down", server = r.name, error = err })
  end
end

-- Whether replica r lags more than `replica_lag` seconds: its
-- Seconds_Behind_Master (NULL, replication stopped, counts as lagging),
-- read at most once a second. A user without the privilege to read it
-- (SLAVE MONITOR) gets the bound from the backend's last write instead: a
-- replica that has not applied it within `replica_lag` seconds lags.
local function lagging(self, r, conn)
  local limit = self.opts.replica_lag
  local t = now()
  if t - r.lag_checked >= 1 then
    r.lag_checked = t
    local ok, res = pcall(conn.execute, conn, "SHOW SLAVE STATUS")
    r.status_readable = ok
    local row = ok and res.rows[1] or nil -- nil too when not readable (no SLAVE MONITOR)
    local behind = row and tonumber(row.Seconds_Behind_Master)
    r.lagging = row ~= nil and (behind == nil or behind > limit)
  end
  if r.lagging then return true end
  local gtid = self.last_gtid
  if r.status_readable or not gtid or r.confirmed == gtid then return false end
  local ok, res = pcall(conn.execute, conn, "SELECT MASTER_GTID_WAIT(?, ?) AS w", gtid, limit)
  if ok and res.rows[1].w == 0 then
    r.confirmed = gtid
    return false
  end
  return true
end

-- The replica to read on next (round-robin over those not resting), or
-- nil; the second value says whether the statement wanted one (a read that
-- ends on the primary is then counted as a fallback).
function Backend:_pick_replica(sql)
  if not replica_memo[sql] or self.primary_pinned[running()] then return nil, false end
  local list, n = self.replicas, #self.replicas
  local t = now()
  for _ = 1, n do
    local i = self.rr % n + 1
    self.rr = i
    local r = list[i]
    if r.down_until <= t then return r, true end
  end
  return nil, true
end

-- A connection of replica r, caught up as `replica_lag` asks, or nil when
-- the read must run on the primary instead (the replica failed, lags, or
-- did not catch up in time). The caller checks it in to `r.pool`.
function Backend:_replica_conn(r)
  local pool = r.pool
  local ok, conn = pcall(pool.checkout, pool)
  if not ok then
    -- a pool busy to its size says nothing of the replica's health
    if not (type(conn) == "table" and conn.pool_exhausted) then mark_down(self, r, conn) end
    return nil
  end
  -- a cluster node back from a failure: only once it is Synced again (the
  -- cluster closes the connection and rests the node otherwise)
  if r.probation and not self.read_cluster:vouch(r, conn) then return nil end
  local lag = self.opts.replica_lag
  if lag == "wait" then
    local gtid = self.last_gtid
    if gtid and r.confirmed ~= gtid then
      self.read_counters.gtid_waits = self.read_counters.gtid_waits + 1
      local wok, res = pcall(conn.execute, conn, "SELECT MASTER_GTID_WAIT(?, ?) AS w", gtid,
        self.opts.replica_wait_timeout)
      if not wok then
        pool:checkin(conn, lost(res))
        mark_down(self, r, res)
        return nil
      end
      if res.rows[1].w ~= 0 then -- -1: timed out; NULL: not a replica
        pool:checkin(conn)
        self.read_counters.gtid_wait_timeouts = self.read_counters.gtid_wait_timeouts + 1
        return nil
      end
      r.confirmed = gtid
    end
  elseif type(lag) == "number" and lagging(self, r, conn) then
    pool:checkin(conn)
    return nil
  end
  return conn
end

-- Replica r failed with `err` (a lost link): it rests `replica_retry` seconds.
function Backend:_replica_down(r, err)
  mark_down(self, r, err)
end

-- A read served by replica r: counted.
function Backend:_replica_served(r)
  r.reads = r.reads + 1
  self.read_counters.replica = self.read_counters.replica + 1
end

-- A statement on replica r's `conn` failed with `err`: the connection goes
-- back (closed when the link is lost, and the replica rests); true when the
-- read may run on the primary instead (a lost link), false when `err` is
-- the statement's own.
function Backend:_replica_failed(r, conn, err)
  local is_lost = lost(err)
  r.pool:checkin(conn, is_lost)
  if is_lost then mark_down(self, r, err) end
  return is_lost
end

-- Runs the read on replica r: nil, false when it must run on the primary
-- instead (the replica failed, or did not catch up in time); true, result
-- otherwise. Errors of the statement itself are raised.
function Backend:_read_on_replica(r, run, sql, ...)
  local conn = self:_replica_conn(r)
  if not conn then return false end
  local sok, res
  if self.log then
    sok, res = pcall(self._run, self, conn, run, sql, ...)
  else
    sok, res = pcall(conn[run], conn, sql, ...)
  end
  if sok then
    r.pool:checkin(conn)
    self:_replica_served(r)
    return true, res
  end
  if self:_replica_failed(r, conn, res) then return false end
  error(res, 0)
end

-- After a write on the primary's `conn` (before it goes back to the pool):
-- the GTID reads on replicas will wait for. Only a later one replaces it:
-- under a scheduler, coroutines' writes may report their GTIDs out of
-- order (each asks over its own connection), and going back to an older
-- one would let the newer writer read on a replica that lacks its write.
-- Kept per replication domain; the position waited for lists them all.
function Backend:_note_write(conn, sql)
  -- "ignore" (and a cluster's causal reads) wait for no GTID
  if self.opts.replica_lag == "ignore" or sql and is_read(sql) then return end
  local ok, res = pcall(conn.execute, conn, "SELECT @@last_gtid AS g")
  local g = ok and res.rows[1] and res.rows[1].g
  if not g or g == "" then return end
  local domain, seq = g:match("^(%d+)%-%d+%-(%d+)$")
  seq = seq and math.tointeger(tonumber(seq))
  if not seq then -- not domain-server-seq: kept as it is
    self.last_gtid = g
    return
  end
  local latest = self.latest_gtids
  local kept = latest[domain]
  if kept and kept.seq >= seq then return end
  latest[domain] = { seq = seq, gtid = g }
  local position = {}
  for _, d in pairs(latest) do position[#position + 1] = d.gtid end
  table.sort(position)
  self.last_gtid = table.concat(position, ",")
end

--- Runs `fn` with every read of the running coroutine on the primary
-- (a backend without replicas simply runs it).
-- @tparam function fn called with the backend
-- @return what `fn` returns
-- @raise what `fn` raises
function Backend:on_primary(fn)
  if not self.replicas then return fn(self) end
  local co = running()
  local pinned = self.primary_pinned
  pinned[co] = (pinned[co] or 0) + 1
  local _ <close> = setmetatable({}, { __close = function()
    local depth = pinned[co] - 1
    pinned[co] = depth > 0 and depth or nil
  end })
  return fn(self)
end

-- The replicas' part of pool_stats().
function M.stats(self)
  local list = {}
  local t = now()
  for i, r in ipairs(self.replicas) do
    local s = r.pool:stats()
    s.name, s.reads, s.failures = r.name, r.reads, r.failures
    s.down = r.down_until > t
    list[i] = s
  end
  local c = self.read_counters
  return list, { replica = c.replica, gtid_waits = c.gtid_waits,
                 gtid_wait_timeouts = c.gtid_wait_timeouts, fallbacks = c.fallbacks }
end

return M
