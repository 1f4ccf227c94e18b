-- Transactions of the MySQL backend: the per-coroutine transaction state
-- (active, doomed, done), undo and end-of-transaction actions, savepoints
-- for nested blocks and retries of the outermost block. The statement path (execute.lua) asks
-- this module whether an error ends the transaction (`ends`, `doom`).
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local scheduler_sleep = require("activerecord.scheduler").sleep

local now = core.monotime
local pack, unpack = table.pack, table.unpack

local M = {}

local Backend = {}
M.methods = Backend

local function lost(err)
  return errors.is(err, "ConnectionLost")
end

-- The transaction is doomed: the server ended it (or its state is unknown).
-- Nothing more is sent in it; the outermost block raises `err`.
local function doom(t, err)
  if t.doomed then return end
  t.doomed = err
  if lost(err) then t.lost = true end
end

local function raise_doomed(t)
  if t.lost then
    errors.raise("TransactionError", "the transaction's connection was lost; it has been rolled back "
      .. "by the server and nothing will be replayed", { cause = t.doomed })
  end
  local cause = t.doomed
  errors.raise("TransactionError", ("the server rolled the transaction back (%s); nothing more is "
    .. "sent in it: let the error reach the outermost db:transaction (retries re-run the whole "
    .. "function)"):format(errors.is(cause) and cause.kind or tostring(cause)), { cause = cause })
end

-- Whether the server keeps a transaction open after a lock wait timeout
-- (innodb_rollback_on_timeout OFF, the default) — read once per backend.
-- Unknown (the read failed) counts as "rolled back": the safe answer.
function Backend:_rollback_on_timeout(conn)
  local v = self._rollback_on_lock_timeout
  if v ~= nil then return v end
  local ok, res = pcall(conn.execute, conn, "SELECT @@innodb_rollback_on_timeout AS v")
  local row = ok and res.rows[1]
  v = not (row and (row.v == 0 or row.v == "0" or row.v == "OFF"))
  if ok then self._rollback_on_lock_timeout = v end
  return v
end

-- Whether `err`, raised by a statement inside a transaction, means the
-- server ended the transaction. MySQL/MariaDB error packets carry no status
-- flags (conn:in_transaction() is stale after an error), so it is decided by
-- the error: a deadlock rolls the whole transaction back; a lost connection
-- takes it along; a lock wait timeout does under innodb_rollback_on_timeout;
-- the core raises TransactionError when the server left the transaction.
function Backend:_ends(conn, err)
  if not errors.is(err) then return false end
  local kind = err.kind
  if kind == "DeadlockError" or kind == "ConnectionLost" or kind == "TransactionError" then return true end
  if kind == "LockTimeoutError" then return self:_rollback_on_timeout(conn) end
  return false
end

M.lost, M.doom, M.raise_doomed = lost, doom, raise_doomed

-- ---- transactions ----------------------------------------------------

local function backoff(attempt)
  local base = math.min(0.05 * 2 ^ (attempt - 1), 2)
  return base / 2 + math.random() * base / 2 -- exponential, with jitter
end

-- A deadlock or lock wait timeout (Galera's certification conflicts arrive
-- as deadlocks at COMMIT), or a lost link before COMMIT was sent: the server
-- rolled the transaction back, so running it again applies it once. A link
-- lost during COMMIT leaves the outcome unknown: never re-run.
local function retryable(err)
  return errors.is(err, "DeadlockError") or errors.is(err, "LockTimeoutError")
    or (lost(err) and not err.commit_unknown)
end

--- Whether the running coroutine is inside `transaction`.
-- @treturn boolean
function Backend:in_transaction()
  return self.ntx > 0 and self.tx[coroutine.running()] ~= nil
end

--- Registers `fn` (called with no arguments) to run if the work of the
-- current transaction level is rolled back; see `activerecord.backend.base`.
-- @tparam function fn the undo action
-- @treturn boolean true when registered (inside a transaction), false outside
function Backend:_track_undo(fn)
  local t = self.ntx > 0 and self.tx[coroutine.running()]
  if not t then return false end
  local u = t.undo
  if not u then
    u = {}
    t.undo = u
  end
  u[#u + 1] = fn
  return true
end

--- Registers `fn` to run once when the outermost transaction ends, outside
-- it: `fn(true)` after its COMMIT, `fn(false)` after its rollback (each
-- failed attempt under `retries`); see `activerecord.backend.base`.
-- @tparam function fn the action (a callable table works too)
-- @treturn boolean true when registered (inside a transaction), false outside
function Backend:_track_commit(fn)
  local t = self.ntx > 0 and self.tx[coroutine.running()]
  if not t then return false end
  local list = t.finish
  if not list then
    list = {}
    t.finish = list
  end
  list[#list + 1] = fn
  return true
end

-- Runs the end-of-transaction actions of `list`, oldest first, each once,
-- each under pcall. After a COMMIT the failures are raised together, once
-- all ran, as a CallbackError saying the data is committed; after a
-- rollback (the caller gets the error that caused it) they go to stderr.
function M.run_finish(list, committed)
  if not list then return end
  local errs
  for i = 1, #list do
    local fn = list[i]
    list[i] = false -- exactly once, even if it re-enters
    local ok, err = pcall(fn, committed)
    if not ok then
      if committed then
        errs = errs or {}
        if errors.is(err, "CallbackError") and err.causes then
          for _, e in ipairs(err.causes) do errs[#errs + 1] = e end
        else
          errs[#errs + 1] = err
        end
      else
        io.stderr:write("activerecord: action after rollback failed: ", tostring(err), "\n")
      end
    end
  end
  if errs then
    errors.raise("CallbackError", ("the transaction was committed, then %d after-commit handler(s) "
      .. "failed: %s"):format(#errs, tostring(errs[1])), { committed = true, cause = errs[1], causes = errs })
  end
end
local run_finish = M.run_finish

-- Runs one undo action under pcall: a failing one is reported on stderr and
-- never stops the rollback (the pool runs an orphan's through this too).
function M.run_undo_action(fn)
  local ok, err = pcall(fn)
  if not ok then
    io.stderr:write("activerecord: undo action after rollback failed: ", tostring(err), "\n")
  end
end

-- Runs, newest first, the undo actions registered after position `mark`
-- (0: all of them), each once, each under pcall.
local function run_undo(t, mark)
  local u = t.undo
  if not u then return end
  for i = #u, mark + 1, -1 do
    local fn = u[i]
    u[i] = nil -- removed before the call: exactly once, even if it re-enters
    M.run_undo_action(fn)
  end
end

-- Nested call: a savepoint; an inner failure undoes only the inner part —
-- unless the server ended the whole transaction (doomed): then there is no
-- savepoint to go back to, and the state reaches the outermost block.
function Backend:_nested(t, fn, opts)
  if opts.isolation or opts.read_only ~= nil then
    errors.raise("TransactionError", "cannot change the isolation level or read-only mode "
      .. "inside a transaction")
  end
  if opts.retries then
    errors.raise("TransactionError", "retries apply to the outermost transaction only")
  end
  if t.doomed then raise_doomed(t) end
  t.depth = t.depth + 1
  local name = "ar_savepoint_" .. t.depth
  -- this level's undo actions are those registered after `mark`; a release
  -- leaves them in place, so they belong to the parent level from then on
  local mark = t.undo and #t.undo or 0
  local ok, err = pcall(t.conn.savepoint, t.conn, name)
  if not ok then
    t.depth = t.depth - 1
    if self:_ends(t.conn, err) then doom(t, err) end
    error(err, 0)
  end
  local results = pack(pcall(fn, self))
  t.depth = t.depth - 1
  if results[1] and not t.doomed then
    local rok, rerr = pcall(t.conn.release_savepoint, t.conn, name)
    if rok then return unpack(results, 2, results.n) end
    doom(t, rerr) -- the savepoint is gone: the server left the transaction
    run_undo(t, mark)
    error(rerr, 0)
  end
  if not t.doomed then
    local rok, rerr = pcall(t.conn.rollback_to, t.conn, name)
    if not rok then doom(t, rerr) end -- idem
  end
  run_undo(t, mark)
  -- fn caught the error that doomed the transaction and returned: this
  -- block was undone all the same, and says so with the original error
  if results[1] then error(t.doomed, 0) end
  error(results[2], 0)
end

-- The state of one attempt doubles as its guard: closing the coroutine
-- (coroutine.close runs pending __close handlers) rolls the transaction
-- back and returns the connection; a coroutine dropped mid-transaction and
-- collected hands the connection to the pool as an orphan, rolled back on
-- the pool's next call (no network I/O inside a finalizer).
local Attempt = {}

Attempt.__close = function(t)
  if t.done then return end
  t.done = true
  local self, conn = t.backend, t.conn
  local co = coroutine.running()
  if self.tx[co] == t then
    self.tx[co] = nil
    self.ntx = self.ntx - 1
  end
  local rok = not t.lost and pcall(conn.rollback, conn)
  self.pool:checkin(conn, not rok)
  run_undo(t, 0)
  run_finish(t.finish, false)
end

Attempt.__gc = function(t)
  if t.done then return end
  t.done = true
  t.backend.pool:orphan(t.conn, t.undo and function() run_undo(t, 0) end)
end

-- One attempt of an outermost transaction: returns ok, results-or-error.
function Backend:_attempt(co, fn, opts)
  local conn = self.pool:checkout()
  local ok, err = pcall(conn.begin, conn, { isolation = opts.isolation, read_only = opts.read_only })
  if not ok then
    self.pool:checkin(conn, lost(err), err)
    return false, err
  end
  if self.log then self:_emit("BEGIN", now(), 0, nil, nil) end
  local t <close> = setmetatable({ backend = self, conn = conn, depth = 0 }, Attempt)
  self.tx[co] = t
  self.ntx = self.ntx + 1
  local results = pack(pcall(fn, self))
  self.tx[co] = nil
  self.ntx = self.ntx - 1
  t.done = true
  if results[1] and not t.doomed then
    local started = now()
    local cok, cerr = pcall(conn.commit, conn)
    if self.log then self:_emit("COMMIT", started, 0, nil, (not cok) and cerr or nil) end
    if cok then
      if self.replicas then self:_note_write(conn) end -- reads on replicas wait for it
      self.pool:checkin(conn)
      return true, results, t.finish
    end
    -- a failed COMMIT is an error, never a success; a lost link there
    -- leaves it unknown whether the server committed
    if lost(cerr) then cerr.commit_unknown = true end
    pcall(conn.rollback, conn)
    self.pool:checkin(conn, lost(cerr), cerr)
    run_undo(t, 0)
    run_finish(t.finish, false)
    return false, cerr
  end
  -- doomed: the error that ended the transaction, even when fn caught it
  -- and returned, so that `retries` sees a deadlock as a deadlock
  local res = t.doomed or results[2]
  local rok = not t.lost and pcall(conn.rollback, conn)
  if self.log then self:_emit("ROLLBACK", now(), 0, nil, nil) end
  self.pool:checkin(conn, not rok)
  run_undo(t, 0)
  run_finish(t.finish, false)
  return false, res
end

local TRANSACTION_OPTIONS = { isolation = true, read_only = true, retries = true }

--- Runs `fn` in a transaction: commits when it returns, rolls back and
-- re-raises when it raises. Every statement the running coroutine issues
-- inside uses the transaction's connection. A nested call is a savepoint:
-- an inner failure undoes only the inner part. A failed COMMIT is an
-- error, never a success.
--
-- When the server ends the transaction by itself (a deadlock, a lost
-- connection, a lock wait timeout under `innodb_rollback_on_timeout`) the
-- transaction is doomed: later statements in it raise `TransactionError`
-- unsent, nested blocks fail, and the outermost block raises the original
-- error (or re-runs `fn` under `retries`) even when `fn` caught it and
-- returned. Statements that would commit implicitly (DDL, `COMMIT`,
-- `ROLLBACK`, `START TRANSACTION`, `LOCK TABLES`, `SET autocommit`, ...)
-- raise `TransactionError` unsent. A coroutine closed (`coroutine.close`)
-- or dropped inside a transaction gives its connection back rolled back.
-- Actions registered with `_track_commit` (the model layer's `after_commit`
-- and `after_rollback` events) run once the outermost block has ended.
-- @tparam function fn called with the backend; its results are returned
-- @tparam[opt] table opts `isolation` (`"READ COMMITTED"`, ...; outermost
--   only), `read_only` (outermost only), `retries` (re-run the whole
--   function on `DeadlockError`/`LockTimeoutError`, or on `ConnectionLost`
--   before COMMIT was sent, with exponential backoff and jitter; never after
--   a link lost during COMMIT (`commit_unknown = true`); outermost only)
-- @return the results of `fn`
-- @raise whatever `fn` raised (after the rollback); `TransactionError` for
--   isolation, read-only or retries on a nested call, or a non-function;
--   `ConfigError` for an unknown option or a bad `retries`;
--   `DeadlockError`/`LockTimeoutError` once the retries are used up;
--   `CallbackError` (`committed = true`, `cause`, `causes`) when the COMMIT
--   succeeded and then after-commit actions failed (all of them ran)
-- @usage db:transaction(function()
--   ann:update{ age = 33 }
--   pcall(db.transaction, db, function() error("undo only this part") end)
-- end, { retries = 3 })
function Backend:transaction(fn, opts)
  opts = opts or {}
  if type(fn) ~= "function" then errors.raise("TransactionError", "transaction expects a function") end
  if type(opts) ~= "table" then
    errors.raise("ConfigError", "transaction options must be a table ({ isolation =, read_only =, retries = })")
  end
  if opts.read_only ~= nil and type(opts.read_only) ~= "boolean" then
    errors.raise("ConfigError", "transaction option 'read_only' must be a boolean")
  end
  if opts.isolation ~= nil and type(opts.isolation) ~= "string" then
    errors.raise("ConfigError", "transaction option 'isolation' must be a string")
  end
  options.check(opts, TRANSACTION_OPTIONS, "transaction")
  local co = coroutine.running()
  local t = self.tx[co]
  if t then return self:_nested(t, fn, opts) end
  local retries = opts.retries or 0
  if math.type(retries) ~= "integer" or retries < 0 then
    errors.raise("ConfigError", "transaction option 'retries' must be a non-negative integer")
  end
  local attempt = 0
  while true do
    local ok, res, finish = self:_attempt(co, fn, opts)
    if ok then
      if finish then run_finish(finish, true) end
      return unpack(res, 2, res.n)
    end
    attempt = attempt + 1
    if not (retryable(res) and attempt <= retries) then error(res, 0) end
    if self.opts.scheduler then
      scheduler_sleep(self.opts.scheduler, backoff(attempt)) -- only this coroutine waits
    else
      core.sleep(backoff(attempt))
    end
  end
end

return M
