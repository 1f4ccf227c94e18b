--- The luv (libuv) adapter of the scheduler contract (issue 17).
--
-- Loaded only when a backend is created with `scheduler = "luv"`; the
-- blocking mode never requires it (nor luv itself).
--
-- Queries run inside coroutines; the program runs libuv's loop:
--
--     local uv = require("luv")
--     local sched = require("activerecord.scheduler.luv")
--     local db = ar.connect{ ..., scheduler = "luv" }
--     sched.spawn(function() print(db:query_value("SELECT 1")) end)
--     uv.run()
--
-- A wait starts a uv_poll on the descriptor (one handle per descriptor,
-- kept for the next wait: libuv allows one poll handle per descriptor) and,
-- with a timeout, a uv timer taken from a pool; the coroutine yields, and the
-- first to come (descriptor ready, or time up, settled after the I/O poll of
-- that loop turn so a descriptor ready at the deadline wins) resumes it.
-- Between waits the poll stays started for the same events, unreferenced (it
-- does not keep uv.run going) and stopped by a readiness nobody waits for,
-- so a wait usually costs no epoll_ctl call. `forget(fd)` stops and closes
-- the descriptor's poll handle (libuv requires that before the descriptor
-- is closed).
--
-- A coroutine resumed from a callback that fails raises its error from that
-- callback with a clear message (luv then prints it and ends the process, as
-- it does for any error in a callback); nothing is lost silently.
-- @module activerecord.scheduler.luv
local uv = require("luv")
local scheduler = require("activerecord.scheduler")

local M = { name = "luv" }

local WHERE = "activerecord.scheduler.luv: "
local mtype = math.type
local co_running, co_yield, co_resume, co_status = coroutine.running, coroutine.yield, coroutine.resume,
  coroutine.status

-- A unique value passed with every resume this module makes, so a waiter
-- tells its own wake-up from a resume by anyone else.
local WAKE = setmetatable({}, { __name = "activerecord.scheduler.luv wake-up" })

local function current(what)
  local co, main = co_running()
  if main then
    error(WHERE .. what .. " must run inside a coroutine (start one with spawn(fn), then run uv.run()); "
      .. "it was called from the main thread", 3)
  end
  return co
end


-- Resumes `co` with the module's wake-up; an error in it is raised here,
-- with the coroutine's traceback.
local function resume(co, ...)
  if co_status(co) ~= "suspended" then return end -- closed (cancelled) or running: nothing to wake
  local ok, err = co_resume(co, WAKE, ...)
  if not ok then
    error(WHERE .. "a coroutine failed: " .. tostring(err) .. "\n" .. debug.traceback(co), 0)
  end
end

-- Yields until this module wakes the coroutine; returns the wake-up's values.
local function suspend()
  while true do
    local tag, a = co_yield()
    if tag == WAKE then return a end
    -- resumed by someone else (not through this module): keep waiting
  end
end

-- Closing a handle completes on the loop's next turn; luv crashes at exit on
-- a handle closed but never completed, so outside the loop one turn is run
-- here (without blocking) to complete it.
local function close_handle(h)
  h:close()
  if not uv.loop_mode() then uv.run("nowait") end
end

-- ---------------------------------------------------------------------------
-- Timers: a pool of idle uv timers, so waits and sleeps do not create (and
-- leave to the collector) a handle each.
local idle_timers, n_idle = {}, 0
local MAX_IDLE = 256

local function take_timer()
  uv.update_time() -- timeouts count from now, not from the loop's last turn
  if n_idle > 0 then
    local t = idle_timers[n_idle]
    idle_timers[n_idle] = nil
    n_idle = n_idle - 1
    return t
  end
  return uv.new_timer()
end

local function give_timer(t)
  t:stop()
  if n_idle < MAX_IDLE then
    n_idle = n_idle + 1
    idle_timers[n_idle] = t
  else
    close_handle(t)
  end
end

local function ms(seconds)
  return math.ceil(seconds * 1000)
end

-- ---------------------------------------------------------------------------
-- Timeouts: a wait whose timer fires is settled after the I/O poll of the
-- same loop turn (a check handle; an idle handle keeps that poll from
-- blocking), so a descriptor ready at the deadline wins over the timeout
-- (and a wait with timeout 0 reports a descriptor that is ready now).
local expired, n_expired = {}, 0
local idle_handle, check_handle

local function noop() end

local function settle_expired()
  idle_handle:stop()
  check_handle:stop()
  local list, n = expired, n_expired
  expired, n_expired = {}, 0
  for i = 1, n do
    local w = list[i]
    w.finish(w.p, w, false)
  end
end

local function expire(w)
  if n_expired == 0 then
    if not idle_handle then
      idle_handle, check_handle = uv.new_idle(), uv.new_check()
    end
    idle_handle:start(noop)
    check_handle:start(settle_expired)
  end
  n_expired = n_expired + 1
  expired[n_expired] = w
end

-- ---------------------------------------------------------------------------
-- Descriptors: one poll handle per fd, with the wait in progress (if any).
local polls = {} -- fd -> { handle = uv_poll, waiter = wait state or nil, on_ready = callback }

local VALID_EVENTS = { r = true, w = true, rw = true }

local function finish(p, w, ready)
  if p.waiter ~= w then return end -- settled already (ready and expired in one turn)
  p.waiter = nil
  -- the poll stays started (the next wait is most often the same: no
  -- epoll_ctl calls), but no longer keeps the loop alive; a readiness
  -- nobody waits for stops it (on_ready)
  p.handle:unref()
  local t = w.timer
  if t then
    w.timer = nil
    give_timer(t)
  end
  resume(w.co, ready)
end

local function new_poll(fd)
  local handle, err = uv.new_poll(fd)
  if not handle then return nil, err end
  local p = { handle = handle, waiter = false, dead = false, events = false }
  -- At lua_close every finalizer runs, the newest first: this sentinel,
  -- newer than the handle, marks the record dead before luv frees the handle,
  -- so a forget from an older object's finalizer (a connection closed at
  -- exit) does not touch freed memory.
  p.sentinel = setmetatable({}, { __gc = function() p.dead = true end })
  -- an error on the descriptor (e.g. EBADF) wakes the waiter as "ready":
  -- the read or write that follows reports the real error
  p.on_ready = function()
    local w = p.waiter
    if w then
      finish(p, w, true)
    elseif p.events then
      p.events = false
      handle:stop()
    end
  end
  return p
end

--- Suspends the running coroutine until `fd` is ready for `events`
-- ("r", "w" or "rw") or `timeout_s` seconds have passed (nil: no limit).
-- @treturn boolean true when ready, false on timeout
function M.wait(fd, events, timeout_s)
  if not VALID_EVENTS[events] then
    error(WHERE .. "wait: events must be \"r\", \"w\" or \"rw\", got " .. tostring(events), 2)
  end
  if mtype(fd) ~= "integer" or fd < 0 then
    error(WHERE .. "wait: fd must be a descriptor (an integer >= 0), got " .. tostring(fd), 2)
  end
  scheduler.check_timeout(WHERE, timeout_s, "wait")
  local co = current("wait")
  local p = polls[fd]
  if not p then
    local err
    p, err = new_poll(fd)
    if not p then error(WHERE .. "wait: cannot poll descriptor " .. fd .. ": " .. tostring(err), 2) end
    polls[fd] = p
  elseif p.waiter then
    local other = p.waiter
    if co_status(other.co) ~= "dead" then
      error(WHERE .. "wait: descriptor " .. fd .. " is already waited on by another coroutine", 2)
    end
    -- its waiter was closed mid-wait (a cancelled request): take over
    p.waiter = nil
    if other.timer then
      give_timer(other.timer)
      other.timer = nil
    end
  end
  local w = { co = co, p = p, finish = finish, timer = false }
  local handle = p.handle
  if p.events ~= events then
    local ok, err = handle:start(events, p.on_ready)
    if not ok then
      p.events = false
      error(WHERE .. "wait: cannot poll descriptor " .. fd .. ": " .. tostring(err), 2)
    end
    p.events = events
  end
  handle:ref()
  p.waiter = w
  if timeout_s then
    local t = take_timer()
    w.timer = t
    t:start(ms(timeout_s), 0, function() expire(w) end)
  end
  return suspend()
end

--- Suspends the running coroutine for `seconds`.
function M.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    error(WHERE .. "sleep: seconds must be a number >= 0, got " .. tostring(seconds), 2)
  end
  local co = current("sleep")
  local t = take_timer()
  t:start(ms(seconds), 0, function()
    give_timer(t)
    resume(co)
  end)
  suspend()
end

-- ---------------------------------------------------------------------------
local Event = {}
Event.__index = Event

-- wakes the event's waiter from its own timer callback, never from inside
-- signal(): the signalling coroutine goes on undisturbed
local function wake(self, result)
  local co, t = self.waiter, self.timer
  self.waiter, self.timer = nil, nil
  if t then give_timer(t) end
  resume(co, result)
end

--- Waits for the event's signal: true when signalled (at once when a signal
-- came before), false when `timeout_s` passes first (nil: no limit). The
-- signal is consumed by the wait that returns true.
function Event:wait(timeout_s)
  scheduler.check_timeout(WHERE, timeout_s, "event:wait")
  if self.signalled then
    self.signalled = false
    return true
  end
  local co = current("event:wait")
  local other = self.waiter
  if other and co_status(other) ~= "dead" then
    error(WHERE .. "event:wait: another coroutine already waits on this event (one waiter per event)", 2)
  end
  if self.timer then give_timer(self.timer) end
  self.waiter = co
  local t = take_timer()
  self.timer = t
  if timeout_s then
    t:start(ms(timeout_s), 0, function() wake(self, false) end)
  end
  local result = suspend()
  if result then self.signalled = false end
  return result
end

--- Signals the event: wakes its waiter (on the loop's next turn), or is
-- remembered for the next wait.
function Event:signal()
  self.signalled = true
  local t = self.timer
  if self.waiter and t then
    t:stop()
    t:start(0, 0, function() wake(self, true) end)
  end
end

--- A one-waiter event (the pool hands a connection to a waiting coroutine
-- with it).
function M.event()
  return setmetatable({ signalled = false, waiter = false, timer = false }, Event)
end

--- Stops and closes the poll handle of `fd` (called by the core just before
-- it closes a descriptor it has waited on). A wait in progress on it ends as
-- "ready" (its read or write reports what happened).
function M.forget(fd)
  local p = polls[fd]
  if not p then return end
  polls[fd] = nil
  if p.dead then return end -- the process is exiting: luv has closed it
  p.events = false
  p.handle:stop()
  close_handle(p.handle)
  local w = p.waiter
  if w then
    -- woken on the loop's next turn, not from inside forget
    p.waiter = nil
    local t = w.timer or take_timer()
    t:stop()
    t:start(0, 0, function()
      give_timer(t)
      resume(w.co, true)
    end)
  end
end

--- Starts `fn(...)` in a new coroutine at once (it runs until its first
-- wait); an error in it is raised from here if it fails before its first
-- wait, and from the callback that resumed it afterwards.
-- @return the coroutine
function M.spawn(fn, ...)
  if type(fn) ~= "function" then
    error(WHERE .. "spawn: a function expected, got " .. type(fn), 2)
  end
  local co = coroutine.create(function(_, ...) return fn(...) end)
  local ok, err = co_resume(co, WAKE, ...)
  if not ok then
    error(WHERE .. "a coroutine failed: " .. tostring(err) .. "\n" .. debug.traceback(co), 0)
  end
  return co
end

--- Handles this module keeps (idle timers and per-descriptor polls), for
-- leak checks.
function M.stats()
  local n = 0
  for _ in pairs(polls) do n = n + 1 end
  return { idle_timers = n_idle, polls = n }
end

return M
