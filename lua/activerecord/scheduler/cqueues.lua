--- The cqueues adapter of the scheduler contract (issue 17).
--
-- Loaded only when a backend is created with `scheduler = "cqueues"`; the
-- blocking mode never requires it (nor cqueues itself).
--
-- Queries then run inside coroutines that a cqueues controller runs:
--
--     local cqueues = require("cqueues")
--     local cq = cqueues.new()
--     local db = ar.connect{ ..., scheduler = "cqueues" }
--     cq:wrap(function() print(db:query_value("SELECT 1")) end)
--     assert(cq:loop())
--
-- Every network wait of the core comes here as `wait(fd, events, timeout_s)`
-- and suspends only the calling coroutine (through `cqueues.poll`, which
-- yields to the controller). A query made from a plain coroutine nested
-- inside a controller's coroutine yields to that coroutine's resumer, not to
-- the controller: resume nested coroutines with `cqueues.auxlib.resume` (or
-- wrap them with `cqueues.auxlib.wrap`), which passes the controller's polls
-- through.
-- @module activerecord.scheduler.cqueues
local cqueues = require("cqueues")
local scheduler = require("activerecord.scheduler")
local condition = require("cqueues.condition")

local poll, running, monotime, cancel = cqueues.poll, cqueues.running, cqueues.monotime, cqueues.cancel
local mtype = math.type

local M = { name = "cqueues" }

local WHERE = "activerecord.scheduler.cqueues: "

local function outside(what)
  error(WHERE .. what .. " must run inside a coroutine that a cqueues controller runs "
    .. "(cq:wrap(fn), then cq:loop()); it was called from outside one", 3)
end


-- One pollable object per (fd, events), reused by every wait on it:
-- cqueues.poll reads its `pollfd` and `events` fields (plain values, no
-- method calls) and returns the object itself when the descriptor is ready.
local OFFSET = { r = 0, w = 1, rw = 2 }
local pollables = {}

--- Suspends the running coroutine until `fd` is ready for `events`
-- ("r", "w" or "rw") or `timeout_s` seconds have passed (nil: no limit).
-- @treturn boolean true when ready, false on timeout
function M.wait(fd, events, timeout_s)
  local off = OFFSET[events]
  if not off then
    error(WHERE .. "wait: events must be \"r\", \"w\" or \"rw\", got " .. tostring(events), 2)
  end
  if mtype(fd) ~= "integer" or fd < 0 then
    error(WHERE .. "wait: fd must be a descriptor (an integer >= 0), got " .. tostring(fd), 2)
  end
  scheduler.check_timeout(WHERE, timeout_s, "wait")
  if not running() then outside("wait") end
  local key = fd * 3 + off
  local obj = pollables[key]
  if not obj then
    obj = { pollfd = fd, events = events }
    pollables[key] = obj
  end
  -- poll returns the ready objects; on timeout it returns the timeout
  -- argument (or nothing), never obj.
  local deadline = timeout_s and monotime() + timeout_s
  while true do
    local remaining = deadline and deadline - monotime()
    if remaining and remaining < 0 then remaining = 0 end
    local a, b
    if remaining then a, b = poll(obj, remaining) else a, b = poll(obj) end
    -- cqueues keeps the descriptor registered until its next loop step; the
    -- client library may close it before then (a lost link, a timeout), and
    -- the loop would fail on it (EBADF): drop the registration now
    if a == obj or b == obj then
      cancel(fd)
      return true
    end
    -- a wake-up for this thread that is not the descriptor (cancel from
    -- forget, a spurious wake): wait on unless the time is up
    if deadline and monotime() >= deadline then
      cancel(fd)
      return false
    end
  end
end

--- Suspends the running coroutine for `seconds`.
function M.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    error(WHERE .. "sleep: seconds must be a number >= 0, got " .. tostring(seconds), 2)
  end
  if not running() then outside("sleep") end
  local deadline = monotime() + seconds
  repeat
    poll(deadline - monotime())
  until monotime() >= deadline
end

local Event = {}
Event.__index = Event

--- Waits for the event's signal: true when signalled (at once when a signal
-- came before), false when `timeout_s` passes first (nil: no limit). The
-- signal is consumed by the wait that returns true.
function Event:wait(timeout_s)
  scheduler.check_timeout(WHERE, timeout_s, "event:wait")
  if self.signalled then
    self.signalled = false
    return true
  end
  if not running() then outside("event:wait") end
  local me = coroutine.running()
  local other = self.waiter
  if other and other ~= me and coroutine.status(other) ~= "dead" then
    error(WHERE .. "event:wait: another coroutine already waits on this event (one waiter per event)", 2)
  end
  -- (a waiter closed mid-wait leaves its dead coroutine here: not a waiter)
  self.waiter = me
  local deadline = timeout_s and monotime() + timeout_s
  while not self.signalled do
    if deadline then
      local remaining = deadline - monotime()
      if remaining <= 0 then break end
      self.cond:wait(remaining)
    else
      self.cond:wait()
    end
  end
  self.waiter = nil
  if self.signalled then
    self.signalled = false
    return true
  end
  return false
end

--- Signals the event: wakes its waiter, or is remembered for the next wait.
function Event:signal()
  self.signalled = true
  if self.waiter then self.cond:signal() end
end

--- A one-waiter event (the pool hands a connection to a waiting coroutine
-- with it).
function M.event()
  return setmetatable({ cond = condition.new(), signalled = false, waiter = false }, Event)
end

--- Drops every registration of `fd` (called by the core just before it
-- closes a descriptor it has waited on): a descriptor opened next with the
-- same number starts clean.
function M.forget(fd)
  if mtype(fd) ~= "integer" or fd < 0 then return end
  cqueues.cancel(fd)
  for off = 0, 2 do pollables[fd * 3 + off] = nil end
end

--- Starts `fn(...)` in a new coroutine of the running controller (the same
-- as `cq:wrap(fn, ...)`; outside a controller, use cq:wrap yourself).
-- @return the controller
function M.spawn(fn, ...)
  local cq = running()
  if not cq then
    error(WHERE .. "spawn: no cqueues controller is running; use cq:wrap(fn) on yours", 2)
  end
  return cq:wrap(fn, ...)
end

return M
