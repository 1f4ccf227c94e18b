-- Connection pool: lazily opened connections up to `size`, handed out LIFO
-- (the most recently used one has the warmest statement cache), checked for
-- age, idleness and liveness on the way out.
--
-- Waiting, blocking mode: in one Lua state a checked-out connection comes
-- back only when the coroutine holding it runs again. On exhaustion
-- checkout() calls `wait` (an option; the default sleeps briefly) until a
-- connection is free or `checkout_timeout` has passed, then raises a
-- ConnectionError.
--
-- Waiting under a scheduler (design §9): a checkout that must wait queues
-- its coroutine and suspends it (the adapter's event, else short sleeps);
-- checkin hands the connection straight to the first in the queue (first
-- come, first served). Each connection records the coroutine holding it:
-- one that died holding it (closed mid-query: coroutine.close, a cancelled
-- request) left it in a state nobody knows, so it is closed, never handed
-- to the next user.
--
-- Orphans: a coroutine dropped inside a transaction is collected with its
-- connection still checked out. Its finalizer may not do network I/O, so it
-- only queues the connection (`orphan`); the next checkout, checkin or stats
-- call rolls it back and takes it back (or discards it when that fails).
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local run_undo_action = require("activerecord.backend.mysql.transaction").run_undo_action
local scheduler_sleep = require("activerecord.scheduler").sleep

local running, co_status = coroutine.running, coroutine.status

local Pool = {}
Pool.__index = Pool

local now = core.monotime

-- connect: function() -> connection; opts: normalized pool options.
function Pool.new(connect, opts)
  return setmetatable({
    connect = connect,
    opts = opts,
    idle = {},      -- stack of idle connections
    -- connection -> true while checked out, false while idle (the key stays:
    -- removing and re-adding it would rehash the table on every statement),
    -- nil once closed
    in_use = {},
    -- under a scheduler, connection -> the coroutine holding it, weakly: a
    -- coroutine dropped (not closed) while it holds one is then collected,
    -- its transaction's finalizer queues the connection as an orphan, and
    -- a missing holder counts as a dead one
    holders = setmetatable({}, { __mode = "v" }),
    orphans = {},   -- connection, after-function, ... (queued by finalizers)
    open = 0,
    counters = { waits = 0, created = 0, closed = 0, errors = 0, replaced = 0, timeouts = 0 },
    closed = false,
    sched = opts.scheduler, -- the adapter, under a scheduler
    waiters = {},           -- checkouts waiting, first come first served (scheduler)
    -- no orphan queued, not closed, no reset_session, no scheduler:
    -- checkout and checkin may take their common-case paths (one flag read
    -- instead of four)
    plain = not opts.reset_session and not opts.scheduler,
  }, Pool)
end

-- Under a scheduler: a connection was closed, so the first waiting
-- checkout may open one; it is woken to try again.
local function nudge(self)
  local w = self.waiters[1]
  if not w then return end
  table.remove(self.waiters, 1)
  w.nudged = true
  if w.event then w.event:signal() end
end

-- Marks `conn` checked out by `holder` (true outside a scheduler, else the
-- coroutine).
local function hold(self, conn, holder)
  self.in_use[conn] = true
  if holder ~= true then self.holders[conn] = holder end
end

function Pool:_discard(conn, replaced)
  self.in_use[conn] = nil
  self.holders[conn] = nil
  self.open = self.open - 1
  if self.waiters[1] then nudge(self) end
  self.counters.closed = self.counters.closed + 1
  if replaced then self.counters.replaced = self.counters.replaced + 1 end
  pcall(conn.close, conn)
end

-- Undoes the count of a connect that did not complete: it raised, its
-- `on_open` raised, or its coroutine was closed while it waited. Without
-- this, each such connect would keep one of the pool's places forever.
local Opening = {}
Opening.__close = function(o)
  if o.done then return end
  local pool = o.pool
  pool.open = pool.open - 1
  pool.counters.errors = pool.counters.errors + 1
  if pool.waiters[1] then nudge(pool) end
  if o.conn then pcall(o.conn.close, o.conn) end
end

function Pool:_open_one()
  -- counted before connecting: under a scheduler the connect suspends, and
  -- other coroutines check the count meanwhile
  self.open = self.open + 1
  local opening <close> = setmetatable({ pool = self }, Opening)
  local conn = self.connect()
  opening.conn = conn
  if self.on_open then self.on_open(conn) end
  self.counters.created = self.counters.created + 1
  local o = self.opts
  conn:pool_limits(o.max_lifetime, o.idle_timeout, o.validate_on_checkout)
  opening.done = true
  return conn
end

-- Queues a checked-out connection whose holder is gone (called from a
-- finalizer: no I/O here). `after` (optional) runs once it is rolled back.
function Pool:orphan(conn, after)
  local list = self.orphans
  list[#list + 1] = conn
  list[#list + 1] = after or false
  self.plain = false
end

-- Sets `plain` from the state (no allocation here, so no finalizer can
-- queue an orphan between the read and the write).
local function refresh_plain(self)
  self.plain = self.orphans[1] == nil and not self.closed and not self.opts.reset_session
    and not self.sched
end

-- Rolls back and takes back the queued orphans.
function Pool:_reap()
  local list = self.orphans
  self.orphans = {} -- a finalizer running meanwhile queues into the new list
  for i = 1, #list, 2 do
    local conn, after = list[i], list[i + 1]
    if self.in_use[conn] then
      local ok = not self.closed and not conn:is_closed() and pcall(conn.rollback, conn)
      self:checkin(conn, not ok)
    end
    if after then run_undo_action(after) end
  end
end

-- The connection on top of the idle stack when it is usable, else nil. An
-- idle connection is usable when young enough, recently used or answering
-- a ping, and showing nothing pending on its socket (a server that killed
-- us or restarted has closed it: caught before any SQL is sent); the C core
-- checks all of it in one call, with the times it keeps per connection.
local function take_idle(self, holder)
  local idle, in_use = self.idle, self.in_use
  while true do
    -- the stack's height read afresh each time: the check may ping, and
    -- under a scheduler other coroutines take connections meanwhile
    local n = #idle
    if n == 0 then return nil end
    local conn = idle[n]
    idle[n] = nil
    -- held while checked: one whose checker is closed mid-ping is reclaimed
    -- (hold(), inlined: this is every statement's checkout)
    in_use[conn] = true
    if holder ~= true then self.holders[conn] = holder end
    local usable, broken = conn:checkout_check() -- against the limits given at open
    if usable then return conn end
    self:_discard(conn, broken)
  end
end

function Pool:checkout()
  -- the common case first: the connection on top of the idle stack is usable
  if self.plain then
    local conn = take_idle(self, true)
    if conn then return conn end
  end
  if self.orphans[1] ~= nil then self:_reap() end
  refresh_plain(self)
  if self.closed then errors.raise("ConnectionError", "the connection pool is closed") end
  local conn
  local started, waited
  while true do
    -- under a scheduler each connection records the coroutine holding it
    local holder = self.sched and running() or true
    conn = take_idle(self, holder)
    if conn then return conn end
    local t = now()
    if self.open < self.opts.size then
      conn = self:_open_one()
      hold(self, conn, holder)
      return conn
    end
    if self.sched and self:_reclaim() then goto again end
    started = started or t
    if not waited then
      waited = true
      self.counters.waits = self.counters.waits + 1
    end
    local left = self.opts.checkout_timeout - (t - started)
    if left <= 0 then
      self.counters.timeouts = self.counters.timeouts + 1
      errors.raise("ConnectionError", ("connection pool exhausted: all %d connections stayed in use "
        .. "for %.1f s (raise pool.size or return connections sooner)"):format(
        self.opts.size, self.opts.checkout_timeout), { pool_exhausted = true })
    end
    if self.sched then
      conn = self:_await(left)
      if conn then return conn end
    elseif self.opts.wait then
      self.opts.wait(left)
    else
      core.sleep(math.min(left, 0.005))
    end
    ::again::
  end
end

-- Under a scheduler: closes the connections whose holder died holding
-- them (closed mid-query); true when that freed room.
function Pool:_reclaim()
  local freed, holders = false, self.holders
  for conn, out in pairs(self.in_use) do
    local holder = out and holders[conn]
    if out and (holder == nil or co_status(holder) == "dead") then
      self:_discard(conn, true)
      freed = true
    end
  end
  return freed
end

-- A queued checkout: `conn` is set when checkin hands one over. Its guard
-- takes it out of the queue however the wait ends (a timeout, an error,
-- coroutine.close), and gives back a connection handed over too late.
local Waiter = {}
Waiter.__index = Waiter
Waiter.__close = function(w)
  local pool = w.pool
  local q = pool.waiters
  for i = 1, #q do
    if q[i] == w then
      table.remove(q, i)
      break
    end
  end
  if w.conn and not w.taken then
    local conn = w.conn
    w.conn = nil
    pool:checkin(conn)
  end
end

-- Suspends the running coroutine until checkin hands it a connection or
-- `left` seconds pass; the connection or nil.
function Pool:_await(left)
  local sched = self.sched
  local w <close> = setmetatable({ pool = self, co = running(), event = sched.event and sched.event() },
    Waiter)
  local q = self.waiters
  q[#q + 1] = w
  local deadline = now() + left
  if w.event then
    w.event:wait(left)
  else
    while not (w.conn or w.nudged) and now() < deadline do
      scheduler_sleep(sched, math.min(deadline - now(), 0.002))
    end
  end
  if w.conn then
    w.taken = true
    return w.conn
  end
  return nil
end

-- Checkin under a scheduler: the connection goes to the first waiting
-- checkout, if any; true when it did.
local function hand_over(self, conn)
  local q = self.waiters
  local w = q[1]
  if not w then return false end
  table.remove(q, 1)
  w.conn = conn
  hold(self, conn, w.co)
  if w.event then w.event:signal() end
  return true
end

-- Returns a connection; `discard` (or a closed/broken one) closes it.
function Pool:checkin(conn, discard)
  local in_use = self.in_use
  -- the common case first: a healthy connection back on the idle stack
  if self.plain and not discard and in_use[conn] and conn:checkin_state() == nil then
    in_use[conn] = false
    local idle = self.idle
    idle[#idle + 1] = conn
    return
  end
  if self.orphans[1] ~= nil then self:_reap() end
  if not in_use[conn] then return end
  if self.closed or discard then
    self:_discard(conn, discard)
    return
  end
  -- held by this checkin while it rolls back or resets (either may suspend
  -- under a scheduler: closed meanwhile, it is left to the dead-holder sweep)
  if self.sched then self.holders[conn] = running() end
  local state = conn:checkin_state() -- nil: open, no transaction left open; notes the time
  if state == "closed" then
    self:_discard(conn, false)
    return
  end
  -- a connection must never go back mid-transaction (a rollback failed)
  if state == "transaction" and not pcall(conn.rollback, conn) then
    self:_discard(conn, true)
    return
  end
  if self.opts.reset_session and not pcall(conn.reset, conn) then
    self:_discard(conn, true)
    return
  end
  if self.closed then -- closed while this checkin waited on the server
    self:_discard(conn, false)
    return
  end
  in_use[conn] = false
  self.holders[conn] = nil
  if self.waiters[1] and hand_over(self, conn) then return end
  local idle = self.idle
  idle[#idle + 1] = conn
end

function Pool:stats()
  if self.orphans[1] ~= nil then self:_reap() end
  if self.sched then self:_reclaim() end
  local in_use = 0
  for _, out in pairs(self.in_use) do
    if out then in_use = in_use + 1 end
  end
  local c = self.counters
  return {
    size = self.opts.size, open = self.open, in_use = in_use, idle = #self.idle,
    waits = c.waits, timeouts = c.timeouts, created = c.created, closed = c.closed,
    replaced = c.replaced, errors = c.errors,
  }
end

-- Closes idle connections now and in-use ones when they are checked in.
function Pool:close()
  if self.orphans[1] ~= nil then self:_reap() end
  self.closed = true
  self.plain = false
  while #self.idle > 0 do self:_discard(table.remove(self.idle)) end
end

return Pool
