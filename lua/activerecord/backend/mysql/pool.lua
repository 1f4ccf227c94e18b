-- Connection pool: lazily opened connections up to `size`, handed out LIFO
-- (the most recently used one has the warmest statement cache), checked for
-- age, idleness and liveness on the way out.
--
-- Waiting: the C core blocks, so in one Lua state a checked-out connection
-- comes back only when the coroutine holding it runs again. On exhaustion
-- checkout() calls `wait` (an option: an event loop passes a function that
-- yields to its scheduler; the default sleeps briefly) until a connection is
-- free or `checkout_timeout` has passed, then raises a ConnectionError.
--
-- Orphans: a coroutine dropped inside a transaction is collected with its
-- connection still checked out. Its finalizer may not do network I/O, so it
-- only queues the connection (`orphan`); the next checkout, checkin or stats
-- call rolls it back and takes it back (or discards it when that fails).
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local run_undo_action = require("activerecord.backend.mysql.transaction").run_undo_action

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
    orphans = {},   -- connection, after-function, ... (queued by finalizers)
    open = 0,
    counters = { waits = 0, created = 0, closed = 0, errors = 0, replaced = 0, timeouts = 0 },
    closed = false,
    -- no orphan queued, not closed, no reset_session: checkout and checkin
    -- may take their common-case paths (one flag read instead of three)
    plain = not opts.reset_session,
  }, Pool)
end

function Pool:_discard(conn, replaced)
  self.in_use[conn] = nil
  self.open = self.open - 1
  self.counters.closed = self.counters.closed + 1
  if replaced then self.counters.replaced = self.counters.replaced + 1 end
  pcall(conn.close, conn)
end

function Pool:_open_one()
  local ok, conn = pcall(self.connect)
  if not ok then
    self.counters.errors = self.counters.errors + 1
    error(conn, 0)
  end
  self.open = self.open + 1
  self.counters.created = self.counters.created + 1
  local o = self.opts
  conn:pool_limits(o.max_lifetime, o.idle_timeout, o.validate_on_checkout)
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
local function take_idle(self)
  local idle = self.idle
  local n = #idle
  while n > 0 do
    local conn = idle[n]
    idle[n] = nil
    local usable, broken = conn:checkout_check() -- against the limits given at open
    if usable then
      self.in_use[conn] = true
      return conn
    end
    self:_discard(conn, broken)
    n = n - 1
  end
  return nil
end

function Pool:checkout()
  -- the common case first: the connection on top of the idle stack is usable
  if self.plain then
    local conn = take_idle(self)
    if conn then return conn end
  end
  if self.orphans[1] ~= nil then self:_reap() end
  refresh_plain(self)
  if self.closed then errors.raise("ConnectionError", "the connection pool is closed") end
  local conn
  local started, waited
  while true do
    conn = take_idle(self)
    if conn then return conn end
    local t = now()
    if self.open < self.opts.size then
      conn = self:_open_one()
      self.in_use[conn] = true
      return conn
    end
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
        self.opts.size, self.opts.checkout_timeout))
    end
    if self.opts.wait then self.opts.wait(left) else core.sleep(math.min(left, 0.005)) end
  end
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
  in_use[conn] = false
  if self.closed or discard then
    self:_discard(conn, discard)
    return
  end
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
  local idle = self.idle
  idle[#idle + 1] = conn
end

function Pool:stats()
  if self.orphans[1] ~= nil then self:_reap() end
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
