--- Server-side advisory locks (GET_LOCK / RELEASE_LOCK) held on a dedicated
-- connection for the length of a function: the Backend method
-- `with_advisory_lock`, merged into the Backend object by
-- backend/mysql/init.lua. The migrator uses it to serialise migrators that
-- start at the same time (two deploy hosts).
-- @module activerecord.backend.mysql.advisory_lock
local errors = require("activerecord.errors")
local now = require("activerecord.backend.mysql.core").monotime

local M = {}

local Backend = {}
M.methods = Backend

-- The server's limit on a lock name, in characters.
local MAX_NAME = 64

-- `name`, or when longer than the server takes, a readable prefix and the
-- SHA-256 of the whole name (computed by the server on `conn`): the same
-- long name always maps to the same lock.
local function lock_name(conn, name)
  if (utf8.len(name) or math.huge) <= MAX_NAME then return name end
  local digest = conn:execute("SELECT SHA2(?, 256) AS h", name).rows[1].h
  local prefix = name:sub(1, 20):gsub("[^%w_:.%-]", "_")
  return prefix .. "#" .. digest:sub(1, 40)
end

-- Releases the lock on `conn` and hands `conn` back (or closes it, when it
-- is not from the pool or the release failed: the server then drops the
-- lock with the session).
local function release(self, conn, pooled, name)
  local ok = pcall(conn.execute, conn, "SELECT RELEASE_LOCK(?) AS released", name)
  if pooled then
    self.pool:checkin(conn, not ok)
  else
    pcall(conn.close, conn)
  end
end

--- Runs `fn` while holding the server-side lock `name` (MySQL/MariaDB
-- `GET_LOCK`), so that no other session holding the same name runs at the
-- same time. The lock lives on one connection taken from the pool for the
-- whole call (a pool of size 1 gets a connection of its own beside it;
-- a wait longer than the `read_timeout` option is made of shorter ones);
-- `fn`'s statements go through `db:execute` as usual. The lock is released
-- and the connection handed back however `fn` ends, also when it raises.
-- Names longer than 64 characters (the server's limit) are shortened to a
-- prefix and a SHA-256 digest of the whole name.
-- @tparam string name the lock's name (one per server, not per database)
-- @tparam number timeout_s seconds to wait for the lock (0: do not wait)
-- @tparam function fn called with no arguments while the lock is held
-- @return what `fn` returns
-- @raise `LockTimeoutError` (fields `lock`, `timeout`) when another session
--   held the lock for `timeout_s` seconds; `ConfigError` for a bad name or
--   timeout; what `fn` raises (after the release)
-- @usage db:with_advisory_lock("nightly_report", 10, function() ... end)
function Backend:with_advisory_lock(name, timeout_s, fn)
  if type(name) ~= "string" or name == "" then
    errors.raise("ConfigError", "with_advisory_lock: name must be a non-empty string")
  end
  if type(timeout_s) ~= "number" or timeout_s ~= timeout_s or timeout_s < 0 or timeout_s == math.huge then
    errors.raise("ConfigError", "with_advisory_lock: timeout must be a finite number of seconds >= 0, got "
      .. tostring(timeout_s), { option = "timeout" })
  end
  if type(fn) ~= "function" then
    errors.raise("ConfigError", "with_advisory_lock: fn must be a function")
  end
  -- fn's statements need a pool connection of their own while this one
  -- holds the lock: a pool of one cannot lend its only connection. Under a
  -- scheduler many coroutines may wait for the lock at once: waiting on
  -- pool connections, they would take them all, and the holder's own
  -- statements could not run (each wait gets a connection of its own).
  local pooled = self.pool.opts.size > 1 and not self.opts.scheduler
  local conn = pooled and self.pool:checkout() or self.pool.connect()
  local ok, got, server_name = pcall(function()
    local n = lock_name(conn, name)
    -- waits longer than the connection's read_timeout are split into
    -- shorter GET_LOCK calls (the client would drop a longer silent wait)
    local slice = self.read_timeout and math.max(self.read_timeout / 2, 0.1) or timeout_s
    local deadline = now() + timeout_s
    while true do
      local wait = math.max(0, math.min(slice, deadline - now()))
      local g = conn:execute("SELECT GET_LOCK(?, ?) AS got", n, wait).rows[1].got
      if g ~= 0 or wait < slice or now() >= deadline then return g, n end
    end
  end)
  if not ok or got ~= 1 then
    if pooled then self.pool:checkin(conn, not ok) else pcall(conn.close, conn) end
    if not ok then error(got, 0) end
    -- 0: the wait timed out; NULL: the server gave up (killed, out of memory)
    local why = got == 0 and "another session holds it" or "the server returned NULL"
    errors.raise("LockTimeoutError", ("advisory lock '%s' not obtained within %g s: %s")
      :format(name, timeout_s, why), { lock = name, timeout = timeout_s })
  end
  -- released however fn ends: a return, an error, or its coroutine closed
  -- (a cancelled request) while fn waited
  local _ <close> = setmetatable({}, { __close = function()
    release(self, conn, pooled, server_name)
  end })
  return fn()
end

return M
