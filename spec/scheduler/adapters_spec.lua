-- The scheduler adapters (issue 17) alone, no database: each of
-- activerecord.scheduler.cqueues and activerecord.scheduler.luv keeps the
-- contract the core and the pool call (wait, sleep, event, forget), on
-- socket pairs and pipes made with luv's descriptor helpers.
local uv = require("luv")

local function now()
  return uv.hrtime() / 1e9
end

-- a connected pair of non-blocking stream sockets: two descriptors
local function socketpair()
  local fds = assert(uv.socketpair(nil, nil, { nonblock = true }, { nonblock = true }))
  return fds[1], fds[2]
end

local function write(fd, data)
  return uv.fs_write(fd, data)
end

local function read(fd, n)
  return uv.fs_read(fd, n or 65536)
end

local function close(fd)
  assert(uv.fs_close(fd))
end

-- fills fd's send buffer (and the peer's receive buffer) until a write
-- would block; returns the bytes written
local function fill(fd)
  local chunk, total = string.rep("x", 65536), 0
  while true do
    local n = uv.fs_write(fd, chunk)
    if not n then return total end
    total = total + n
  end
end

local function drain(fd)
  local total = 0
  while true do
    local s = uv.fs_read(fd, 65536)
    if not s or #s == 0 then return total end
    total = total + #s
  end
end

-- Each harness runs `main(go)` in a coroutine of its loop until every
-- coroutine has finished; `go(fn)` starts another one. An error in any of
-- them fails the spec.
local HARNESSES = {
  {
    name = "cqueues",
    run = function(main)
      local cqueues = require("cqueues")
      local cq = cqueues.new()
      local errors = {}
      local function go(fn)
        cq:wrap(function()
          local ok, err = xpcall(fn, debug.traceback)
          if not ok then errors[#errors + 1] = err end
        end)
      end
      go(function() main(go) end)
      local ok, err = cq:loop()
      assert(ok, err)
      assert(#errors == 0, errors[1])
    end,
  },
  {
    name = "luv",
    run = function(main)
      local sched = require("activerecord.scheduler.luv")
      local errors = {}
      local function go(fn)
        sched.spawn(function()
          local ok, err = xpcall(fn, debug.traceback)
          if not ok then errors[#errors + 1] = err end
        end)
      end
      go(function() main(go) end)
      uv.run()
      assert(#errors == 0, errors[1])
    end,
  },
}

for _, h in ipairs(HARNESSES) do
  describe("scheduler adapter " .. h.name, function()
    local sched = require("activerecord.scheduler." .. h.name)
    local run = h.run

    it("is named", function()
      assert.equal(h.name, sched.name)
    end)

    it("wait returns true when the descriptor becomes readable, written from another coroutine", function()
      local a, b = socketpair()
      local ready, elapsed, got
      run(function(go)
        go(function()
          sched.sleep(0.05)
          assert(write(b, "ping"))
        end)
        local t0 = now()
        ready = sched.wait(a, "r", 2)
        elapsed = now() - t0
        got = read(a)
      end)
      sched.forget(a); sched.forget(b); close(a); close(b)
      assert.is_true(ready)
      assert.equal("ping", got)
      assert.is_true(elapsed >= 0.04, "woke after " .. elapsed .. " s, before the write")
      assert.is_true(elapsed < 0.5, "woke after " .. elapsed .. " s")
    end)

    it("wait returns false on timeout, after about the timeout", function()
      local a, b = socketpair()
      local ready, elapsed
      run(function()
        local t0 = now()
        ready = sched.wait(a, "r", 0.1)
        elapsed = now() - t0
      end)
      sched.forget(a); sched.forget(b); close(a); close(b)
      assert.is_false(ready)
      assert.is_true(elapsed >= 0.095 and elapsed < 0.3, "timed out after " .. elapsed .. " s")
    end)

    it("wait with a timeout of 0 returns at once, true when ready", function()
      local a, b = socketpair()
      local idle, ready, elapsed
      run(function()
        local t0 = now()
        idle = sched.wait(a, "r", 0)
        assert(write(b, "x"))
        ready = sched.wait(a, "r", 0)
        elapsed = now() - t0
      end)
      sched.forget(a); sched.forget(b); close(a); close(b)
      assert.is_false(idle)
      assert.is_true(ready)
      assert.is_true(elapsed < 0.05, "took " .. elapsed .. " s")
    end)

    it("wait \"w\" waits while the send buffer is full and returns true once the peer drains it", function()
      local a, b = socketpair()
      local fresh, full, drained, elapsed
      run(function(go)
        fresh = sched.wait(a, "w", 1)
        assert(fill(a) > 0)
        full = sched.wait(a, "w", 0.1)
        go(function()
          sched.sleep(0.05)
          assert(drain(b) > 0)
        end)
        local t0 = now()
        drained = sched.wait(a, "w", 2)
        elapsed = now() - t0
      end)
      sched.forget(a); sched.forget(b); close(a); close(b)
      assert.is_true(fresh)
      assert.is_false(full)
      assert.is_true(drained)
      assert.is_true(elapsed >= 0.04 and elapsed < 0.5, "writable after " .. elapsed .. " s")
    end)

    it("wait \"rw\" returns when either is ready", function()
      local a, b = socketpair()
      local both
      run(function()
        both = sched.wait(a, "rw", 1)
      end)
      sched.forget(a); sched.forget(b); close(a); close(b)
      assert.is_true(both)
    end)

    it("wait works on a pipe", function()
      local p = assert(uv.pipe({ nonblock = true }, { nonblock = true }))
      local ready, timed_out
      run(function(go)
        timed_out = sched.wait(p.read, "r", 0.02)
        go(function()
          sched.sleep(0.02)
          assert(write(p.write, "z"))
        end)
        ready = sched.wait(p.read, "r", 2)
      end)
      sched.forget(p.read); sched.forget(p.write); close(p.read); close(p.write)
      assert.is_false(timed_out)
      assert.is_true(ready)
    end)

    it("sleep suspends for about the time asked", function()
      local elapsed
      run(function()
        local t0 = now()
        sched.sleep(0.1)
        elapsed = now() - t0
      end)
      assert.is_true(elapsed >= 0.095 and elapsed < 0.3, "slept " .. elapsed .. " s")
    end)

    it("an event signalled before the wait is remembered: the wait returns true at once, once", function()
      local first, second, elapsed
      run(function()
        local ev = sched.event()
        ev:signal()
        local t0 = now()
        first = ev:wait(1)
        elapsed = now() - t0
        second = ev:wait(0.05)
      end)
      assert.is_true(first)
      assert.is_true(elapsed < 0.02, "waited " .. elapsed .. " s")
      assert.is_false(second)
    end)

    it("an event signalled after the wait began wakes its waiter", function()
      local result, elapsed, signaller_went_on
      run(function(go)
        local ev = sched.event()
        go(function()
          sched.sleep(0.05)
          ev:signal()
          signaller_went_on = true
        end)
        local t0 = now()
        result = ev:wait() -- no limit
        elapsed = now() - t0
      end)
      assert.is_true(result)
      assert.is_true(signaller_went_on)
      assert.is_true(elapsed >= 0.04 and elapsed < 0.5, "woke after " .. elapsed .. " s")
    end)

    it("an event wait times out with false", function()
      local result, elapsed
      run(function()
        local ev = sched.event()
        local t0 = now()
        result = ev:wait(0.1)
        elapsed = now() - t0
      end)
      assert.is_false(result)
      assert.is_true(elapsed >= 0.095 and elapsed < 0.3, "timed out after " .. elapsed .. " s")
    end)

    it("an event hands off between coroutines in turn (a pool's waiters)", function()
      local order = {}
      run(function(go)
        local evs = {}
        for i = 1, 5 do evs[i] = sched.event() end
        for i = 1, 5 do
          go(function()
            assert(evs[i]:wait(2), "waiter " .. i .. " timed out")
            order[#order + 1] = i
            if evs[i + 1] then evs[i + 1]:signal() end
          end)
        end
        sched.sleep(0.01)
        evs[1]:signal()
      end)
      assert.same({ 1, 2, 3, 4, 5 }, order)
    end)

    it("forget lets a new descriptor with the same number be waited on", function()
      local a, b = socketpair()
      local first, reused_timeout, reused_ready, same_number
      run(function(go)
        first = sched.wait(a, "r", 0.02) -- registers a with the loop
        sched.wait(a, "w", 1)
        sched.forget(a); sched.forget(b)
        close(a); close(b)
        -- the kernel hands out the lowest free numbers: a lower one freed
        -- meanwhile (a collected connection's socket) is taken and held
        -- until a pair lands on a's number
        local c, d, held = nil, nil, {}
        for _ = 1, 64 do
          c, d = socketpair()
          if c == a or d == a then break end
          held[#held + 1] = c
          held[#held + 1] = d
        end
        for _, extra in ipairs(held) do close(extra) end
        same_number = (c == a) or (d == a)
        local fd, peer = c, d
        if d == a then fd, peer = d, c end
        reused_timeout = sched.wait(fd, "r", 0.05)
        go(function()
          sched.sleep(0.03)
          assert(write(peer, "again"))
        end)
        reused_ready = sched.wait(fd, "r", 2)
        assert.equal("again", read(fd))
        sched.forget(c); sched.forget(d)
        close(c); close(d)
      end)
      assert.is_false(first)
      assert.is_true(same_number, "the new socket pair did not reuse descriptor " .. a)
      assert.is_false(reused_timeout)
      assert.is_true(reused_ready)
    end)

    it("runs 100 coroutines sleeping 0.05 s each concurrently", function()
      local done = 0
      local t0 = now()
      run(function(go)
        for _ = 1, 100 do
          go(function()
            sched.sleep(0.05)
            done = done + 1
          end)
        end
      end)
      local elapsed = now() - t0
      assert.equal(100, done)
      assert.is_true(elapsed < 0.5, "100 x 0.05 s took " .. elapsed .. " s (serial: 5 s)")
    end)

    it("runs 50 coroutines each waiting on its own socket concurrently", function()
      local pairs_, ok_count = {}, 0
      for i = 1, 50 do pairs_[i] = { socketpair() } end
      local t0 = now()
      run(function(go)
        for i = 1, 50 do
          local a, b = pairs_[i][1], pairs_[i][2]
          go(function()
            if sched.wait(a, "r", 2) and read(a) == tostring(i) then ok_count = ok_count + 1 end
          end)
          go(function()
            sched.sleep(0.05)
            assert(write(b, tostring(i)))
          end)
        end
      end)
      local elapsed = now() - t0
      for i = 1, 50 do
        for j = 1, 2 do
          sched.forget(pairs_[i][j])
          close(pairs_[i][j])
        end
      end
      assert.equal(50, ok_count)
      assert.is_true(elapsed < 0.5, "took " .. elapsed .. " s")
    end)

    it("refuses a wait from the main thread with a clear error", function()
      local a, b = socketpair()
      local ok, err = pcall(sched.wait, a, "r", 0.01)
      close(a); close(b)
      assert.is_false(ok)
      assert.matches("activerecord.scheduler." .. h.name .. ": wait must run inside a coroutine", err, 1, true)
    end)

    it("refuses a sleep from the main thread with a clear error", function()
      local ok, err = pcall(sched.sleep, 0.01)
      assert.is_false(ok)
      assert.matches("sleep must run inside a coroutine", err, 1, true)
    end)

    it("rejects bad arguments", function()
      run(function()
        assert.has_error(function() sched.wait(0, "x", 1) end)
        assert.has_error(function() sched.wait(-1, "r", 1) end)
        assert.has_error(function() sched.wait(0, "r", -1) end)
        assert.has_error(function() sched.sleep("1") end)
        -- a bad timeout is named, with the adapter and the function, at the caller's line
        local prefix = "activerecord.scheduler." .. h.name .. ": "
        for _, bad in ipairs{ -1, 0 / 0, "1", true } do
          local ok, err = pcall(sched.wait, 0, "r", bad)
          assert.is_false(ok)
          assert.matches(prefix .. "wait: timeout must be a number of seconds >= 0 or nil, got "
            .. tostring(bad), err, 1, true)
          -- signalled first: a wait that took the bad timeout would return true at once
          ok, err = pcall(function() local ev = sched.event(); ev:signal(); ev:wait(bad) end)
          assert.is_false(ok)
          assert.matches("adapters_spec.lua:%d+: " .. prefix:gsub("%p", "%%%0") .. "event:wait: timeout must be", err)
        end
      end)
    end)
  end)
end

describe("scheduler adapter luv, handles and failures", function()
  local sched = require("activerecord.scheduler.luv")

  local function count_handles()
    local n = 0
    uv.walk(function() n = n + 1 end)
    return n
  end

  local function run(fn)
    local failed
    sched.spawn(function()
      local ok, err = xpcall(fn, debug.traceback)
      if not ok then failed = err end
    end)
    uv.run()
    assert(not failed, failed)
  end

  it("does not create handles per call: timers are pooled, one poll per descriptor", function()
    local a, b = socketpair()
    run(function() -- warm up: one poll for a, a few timers
      sched.wait(a, "r", 0.001)
      sched.sleep(0)
    end)
    local before = count_handles()
    run(function()
      for _ = 1, 300 do
        sched.wait(a, "r", 0.001)
        sched.wait(a, "w", 1)
        sched.sleep(0)
        local ev = sched.event()
        ev:wait(0.001)
        ev:signal()
        ev:wait(0.001)
      end
    end)
    local after = count_handles()
    assert.is_true(after - before <= 2, ("handles: %d before, %d after 300 rounds"):format(before, after))
    assert.equal(1, sched.stats().polls)
    sched.forget(a); sched.forget(b)
    close(a); close(b)
    assert.equal(0, sched.stats().polls)
  end)

  it("a poll left started between waits neither keeps the loop alive nor loses a readiness", function()
    local a, b = socketpair()
    local first, second, third
    local t0 = now()
    run(function()
      assert(write(b, "x"))
      first = sched.wait(a, "r", 1) -- the data stays unread
    end)
    -- uv.run returned although a's poll is still started (and readable)
    assert.is_true(now() - t0 < 0.5)
    run(function()
      second = sched.wait(a, "r", 1) -- still readable: at once
      assert.equal("x", read(a))
      third = sched.wait(a, "r", 0.05) -- drained: times out
    end)
    sched.forget(a); sched.forget(b)
    close(a); close(b)
    assert.is_true(first)
    assert.is_true(second)
    assert.is_false(third)
  end)

  it("forget closes the descriptor's poll handle", function()
    local a, b = socketpair()
    run(function() sched.wait(a, "r", 0.001) end)
    local function polls_on(fd)
      local n = 0
      uv.walk(function(h)
        if uv.handle_get_type(h) == "poll" and uv.fileno(h) == fd and not uv.is_closing(h) then n = n + 1 end
      end)
      return n
    end
    assert.equal(1, polls_on(a))
    sched.forget(a); sched.forget(b)
    assert.equal(0, polls_on(a))
    close(a); close(b)
  end)

  it("a coroutine closed mid-wait leaves the descriptor usable by the next waiter", function()
    local a, b = socketpair()
    local co = coroutine.create(function() return sched.wait(a, "r", 0.05) end)
    assert(coroutine.resume(co)) -- now suspended in the wait
    assert.equal("suspended", coroutine.status(co))
    assert(coroutine.close(co))
    local ready
    run(function()
      sched.sleep(0.1) -- the closed coroutine's timer fires meanwhile: nothing to resume
      assert(write(b, "y"))
      ready = sched.wait(a, "r", 1)
    end)
    sched.forget(a); sched.forget(b)
    close(a); close(b)
    assert.is_true(ready)
  end)

  -- runs a Lua script in a child process; returns its output and whether it exited 0
  local function child(script)
    local file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write(script)
    f:close()
    local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
    local cmd = ("LUA_PATH=%s LUA_CPATH=%s lua5.4 %s 2>&1"):format(q(package.path), q(package.cpath), q(file))
    local pipe = assert(io.popen(cmd, "r"))
    local out = pipe:read("a")
    local ok = pipe:close()
    os.remove(file)
    return out, ok
  end

  it("a forget from a finalizer at exit (a connection closed by lua_close) does not crash", function()
    local out, ok = child([[
      local uv = require("luv")
      local sched = require("activerecord.scheduler.luv")
      local fds = uv.socketpair(nil, nil, { nonblock = true }, { nonblock = true })
      -- older than the poll handle, so finalized after it, as a connection is
      CONN = setmetatable({}, { __gc = function() sched.forget(fds[1]) end })
      sched.spawn(function() sched.wait(fds[1], "r", 0.001) end)
      uv.run()
      print("loop done")
    ]])
    assert.matches("loop done", out, 1, true)
    assert.is_true(ok, out)
  end)

  it("a forget after the loop has finished completes the close (no crash at exit)", function()
    local out, ok = child([[
      local uv = require("luv")
      local sched = require("activerecord.scheduler.luv")
      local fds = uv.socketpair(nil, nil, { nonblock = true }, { nonblock = true })
      sched.spawn(function() sched.wait(fds[1], "r", 0.001) end)
      uv.run()
      sched.forget(fds[1])
      print("forgotten")
    ]])
    assert.matches("forgotten", out, 1, true)
    assert.is_true(ok, out)
  end)

  it("spawn raises an error from before the first wait at once", function()
    local ok, err = pcall(sched.spawn, function() error("early failure") end)
    assert.is_false(ok)
    assert.matches("activerecord.scheduler.luv: a coroutine failed: .*early failure", err)
  end)

  it("an error after a wait is raised from the callback that resumed it, with a clear message", function()
    local script = [[
      local uv = require("luv")
      local sched = require("activerecord.scheduler.luv")
      sched.spawn(function()
        sched.sleep(0.01)
        error("late failure")
      end)
      uv.run()
      print("not reached")
    ]]
    local out, ok = child(script)
    assert.is_falsy(ok)
    assert.matches("activerecord.scheduler.luv: a coroutine failed: .*late failure", out)
    assert.not_matches("not reached", out, 1, true)
  end)
end)

describe("scheduler adapter cqueues, failures", function()
  local sched = require("activerecord.scheduler.cqueues")
  local cqueues = require("cqueues")

  it("an error in a coroutine comes out of the controller's loop", function()
    local cq = cqueues.new()
    cq:wrap(function()
      sched.sleep(0.01)
      error("late failure")
    end)
    local ok, err = cq:loop()
    assert.is_false(ok)
    assert.matches("late failure", tostring(err), 1, true)
  end)

  it("spawn starts a coroutine on the running controller", function()
    local cq = cqueues.new()
    local ran = false
    cq:wrap(function()
      sched.spawn(function()
        sched.sleep(0.01)
        ran = true
      end)
    end)
    assert(cq:loop())
    assert.is_true(ran)
    assert.has_error(function() sched.spawn(function() end) end)
  end)
end)
