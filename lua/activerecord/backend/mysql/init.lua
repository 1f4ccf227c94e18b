--- The MySQL/MariaDB backend: the interface of `activerecord.backend.base` on
-- top of the C core, with a pool, transactions that nest by savepoints,
-- retries, reconnects, statement logging and capability checks.
--
-- Connection affinity: a transaction pins one connection to the coroutine
-- that runs it; every statement that coroutine issues inside the
-- transaction uses it, and no other coroutine ever gets it.
-- @module activerecord.backend.mysql
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local config = require("activerecord.backend.mysql.config")
local Pool = require("activerecord.backend.mysql.pool")
local caps = require("activerecord.backend.capabilities")

local Backend = {}
Backend.__index = Backend

local now = core.monotime
local pack, unpack = table.pack, table.unpack

local M = { Backend = Backend }

-- Connection-lost errors where the statement provably never ran: the
-- server had already dropped us (killed, idle timeout, gone away) before it
-- was sent. Other losses (2013 mid-query) may have applied a write.
local NOT_SENT = { [2006] = true, [1927] = true, [4031] = true }

-- Statements that change nothing may always be re-run after a reconnect.
local function is_read_only(sql)
  local word = sql:match("^%s*%(*%s*(%a+)")
  word = word and word:upper()
  return word == "SELECT" or word == "SHOW" or word == "DESCRIBE" or word == "DESC"
    or word == "EXPLAIN"
end

--- Creates a backend (what `ar.connect` calls).
-- @tparam table user_opts the options of `activerecord.connect`
-- @treturn Backend the backend, with one connection already opened
-- @raise `ConfigError` for a bad option; `ConnectionError` when the first
--   connection fails
function M.new(user_opts)
  local connect_opts, opts = config.normalize(user_opts)
  local self = setmetatable({
    opts = opts,
    connect_opts = connect_opts,
    log = opts.log,
    log_params = opts.log_params,
    slow_query_seconds = opts.slow_query_seconds,
    tx = setmetatable({}, { __mode = "k" }), -- coroutine -> transaction state
  }, Backend)
  self.pool = Pool.new(function() return core.connect(connect_opts) end, opts.pool)
  -- connect once now: bad credentials fail here, and the server's flavor
  -- and version fix the dialect and capabilities for this backend
  local conn = self.pool:checkout()
  local ok, err = pcall(function()
    self._server = conn:server()
    self._capabilities = conn:capabilities()
  end)
  self.pool:checkin(conn, not ok)
  if not ok then error(err, 0) end
  self.compiler = require("activerecord.backend.mysql.compiler")
  local Dialect = require("activerecord.backend.mysql.dialect")
  self.dialect = Dialect.new{ flavor = self._server.flavor, version = self._server.version,
                              capabilities = self._capabilities }
  return self
end

-- ---- logging ---------------------------------------------------------

function Backend:_emit(sql, started, n, res, err, ...)
  local seconds = now() - started
  local event = {
    sql = sql, params = n, seconds = seconds,
    rows = res and res.rows and #res.rows or nil,
    affected = res and res.affected_rows or nil,
    error = err,
  }
  if self.slow_query_seconds and seconds >= self.slow_query_seconds then event.slow = true end
  if self.log_params then event.values = pack(...) end
  -- a failing log hook must never turn a successful statement into an error
  local ok, log_err = pcall(self.log, event)
  if not ok then
    io.stderr:write("activerecord: log hook failed: ", tostring(log_err), "\n")
  end
end

-- Runs one statement on `conn` with the core's method `run` ("execute", or
-- "execute_json_hashes" for model loads); logs it when a hook is set.
function Backend:_run(conn, run, sql, ...)
  if not self.log then return conn[run](conn, sql, ...) end
  local started = now()
  local ok, res = pcall(conn[run], conn, sql, ...)
  self:_emit(sql, started, select("#", ...), ok and res or nil, (not ok) and res or nil, ...)
  if not ok then error(res, 0) end
  return res
end

-- ---- statements that end a transaction ---------------------------------

-- The leading keywords of a statement (upper case, at most `max`), past
-- whitespace, comments (`/* */`, `-- `, `#`) and opening parentheses. The
-- text of an executable comment (`/*!50100 ...`, `/*M! ...`) runs on the
-- server, so it is read as SQL.
local function leading_words(sql, max)
  local words, i, n = {}, 1, #sql
  while #words < max do
    i = sql:find("[^%s]", i)
    if not i then break end
    local c, c2 = sql:byte(i, i + 1)
    if c == 47 and c2 == 42 then -- "/*"
      local b, b2 = sql:byte(i + 2, i + 3)
      if b == 33 then -- "/*!" and a version
        i = sql:find("[^%d]", i + 3) or n + 1
      elseif b == 77 and b2 == 33 then -- "/*M!" and a version
        i = sql:find("[^%d]", i + 4) or n + 1
      else
        local e = sql:find("*/", i + 2, true)
        if not e then break end
        i = e + 2
      end
    elseif c == 35 or (c == 45 and c2 == 45 and (i + 2 > n or sql:find("^[%s%c]", i + 2))) then
      local e = sql:find("\n", i, true) -- "#" or "-- " comment: to the end of the line
      if not e then break end
      i = e + 1
    elseif c == 40 then -- "("
      i = i + 1
    else
      local w = sql:match("^[%a_]+", i)
      if not w then break end
      words[#words + 1] = w:upper()
      i = i + #w
    end
  end
  return words
end

-- First keywords that always end or commit the transaction (MariaDB's and
-- MySQL's lists of statements that cause an implicit commit).
local ALWAYS_ENDS = {
  ALTER = true, RENAME = true, TRUNCATE = true, GRANT = true, REVOKE = true, LOCK = true,
  UNLOCK = true, FLUSH = true, RESET = true, OPTIMIZE = true, REPAIR = true, CACHE = true,
  INSTALL = true, UNINSTALL = true, CHANGE = true, START = true, STOP = true, XA = true,
  COMMIT = true, SHUTDOWN = true,
}
-- Second keywords that belong in the refused statement's name ("DROP
-- TABLE", "START TRANSACTION"); any other second word (a table name) does not.
local NAME_WORDS = {}
for w in ([[TABLE TABLES INDEX VIEW DATABASE SCHEMA USER ROLE PROCEDURE FUNCTION TRIGGER EVENT
  SERVER SEQUENCE TRANSACTION SLAVE REPLICA MASTER UNIQUE FULLTEXT SPATIAL PLUGIN LOGS PRIVILEGES
  WORK START END PREPARE COMMIT ROLLBACK RECOVER BEGIN PASSWORD]]):gmatch("%a+") do
  NAME_WORDS[w] = true
end
local ANALYZE_TABLE = { TABLE = true, TABLES = true, LOCAL = true, NO_WRITE_TO_BINLOG = true }

-- SET autocommit / @@autocommit / @@session.autocommit (not a user
-- @variable, not text inside a quoted string).
local function sets_autocommit(sql)
  local low, init = sql:lower():gsub("'[^']*'", "''"):gsub('"[^"]*"', '""'), 1
  while true do
    local s, e = low:find("autocommit`?%s*:?=", init)
    if not s then return false end
    if low:byte(s - 1) ~= 64 or low:byte(s - 2) == 64 then return true end
    init = e + 1
  end
end

-- The name of the statement when it would end or implicitly commit the
-- transaction, else false. `CREATE`/`DROP TEMPORARY TABLE`, `ROLLBACK TO
-- SAVEPOINT`, `SET TRANSACTION` (it only sets the next transaction's
-- characteristics), `ANALYZE SELECT`, `LOAD DATA` and `BEGIN NOT ATOMIC`
-- (a compound statement) pass.
local function ends_transaction(sql)
  local w = leading_words(sql, 5)
  local w1, w2 = w[1], w[2]
  if not w1 then return false end
  if w1 == "SET" then
    if w2 == "STATEMENT" then -- SET STATEMENT var = value [, ...] FOR statement
      local rest = sql:match("^.-[%s%)`'\"][Ff][Oo][Rr]%s+(.*)$")
      return rest and ends_transaction(rest) or false
    end
    if w2 == "PASSWORD" then return "SET PASSWORD" end -- SET PASSWORD [FOR user] = ...
    return sets_autocommit(sql) and "SET autocommit" or false
  end
  local ends = ALWAYS_ENDS[w1]
  if w1 == "CREATE" then
    local j = (w2 == "OR" and w[3] == "REPLACE") and 4 or 2
    ends = w[j] ~= "TEMPORARY"
    if j == 4 then w2 = w[4] end
  elseif w1 == "DROP" then
    ends = w2 ~= "TEMPORARY"
  elseif w1 == "ROLLBACK" then
    ends = not (w2 == "TO" or (w2 == "WORK" and w[3] == "TO"))
  elseif w1 == "BEGIN" then
    ends = w2 ~= "NOT"
  elseif w1 == "ANALYZE" then
    ends = ANALYZE_TABLE[w2] == true
  elseif w1 == "CHECK" then
    ends = true
  elseif w1 == "LOAD" then
    ends = w2 == "INDEX"
  end
  if not ends then return false end
  if NAME_WORDS[w2] then return w1 .. " " .. w2 end
  return w1
end

-- SQL text -> false or the refused statement's name: one table lookup per
-- statement inside a transaction. Bounded (texts with spliced values would
-- grow it without end): cleared when full.
local ends_memo, ends_memo_size = {}, 0
local ENDS_MEMO_MAX = 4096

local function classify(sql)
  local name = ends_transaction(sql)
  if ends_memo_size >= ENDS_MEMO_MAX then
    ends_memo, ends_memo_size = {}, 0
  end
  ends_memo[sql] = name
  ends_memo_size = ends_memo_size + 1
  return name
end

local function refuse(name)
  errors.raise("TransactionError", ("%s is refused inside db:transaction: it would commit or end the "
    .. "transaction implicitly (run it outside the transaction; a nested db:transaction is a savepoint)")
    :format(name), { statement = name })
end

-- ---- statements ------------------------------------------------------

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

--- A connected backend: a pool of connections to one server.
-- Fields: `dialect` (SQL generation for this server), `compiler`.
-- @type Backend

-- The body of `execute` and `_execute_json_hashes`.
local function execute_with(self, run, sql, ...)
  if type(sql) ~= "string" then
    errors.raise("QueryError", "execute expects SQL text with ? placeholders")
  end
  local t = self.tx[coroutine.running()]
  if t then
    if t.doomed then raise_doomed(t) end
    local refused = ends_memo[sql]
    if refused == nil then refused = classify(sql) end
    if refused then refuse(refused) end
    local ok, res = pcall(self._run, self, t.conn, run, sql, ...)
    if ok then return res end
    if self:_ends(t.conn, res) then doom(t, res) end
    error(res, 0)
  end
  local attempts = 0
  local read_timeout = self.connect_opts.read_timeout
  while true do
    local conn = self.pool:checkout()
    local started = read_timeout and now()
    local ok, res = pcall(self._run, self, conn, run, sql, ...)
    if ok then
      self.pool:checkin(conn)
      return res
    end
    local is_lost = lost(res)
    self.pool:checkin(conn, is_lost)
    -- a read timeout (2013 after waiting read_timeout) is not a dropped
    -- link: running the statement again would only wait as long again
    if is_lost and read_timeout and res.code == 2013 and now() - started >= read_timeout * 0.9 then
      res.timeout = true
      error(res, 0)
    end
    attempts = attempts + 1
    if not (is_lost and attempts <= self.opts.reconnect_retries
            and (NOT_SENT[res.code] or is_read_only(sql))) then
      error(res, 0)
    end
  end
end

--- Runs one statement with `?` placeholders; the values are bound, never
-- spliced. Inside a transaction it runs on the transaction's connection.
-- Outside one, a lost connection is replaced and the statement re-run once
-- (`reconnect_retries`) when that is safe: a read, or a write the server
-- never received.
-- @tparam string sql the statement
-- @param ... the values (integers, floats, strings, booleans, nil/`ar.null`)
-- @treturn table `{ rows, columns, affected_rows, insert_id, warning_count }`
-- @raise `QueryError` (syntax, unknown table or column, non-string sql),
--   `IntegrityError`, `DataError`, `DeadlockError`, `LockTimeoutError`,
--   `QueryTimeout`, `ConnectionLost`, `ConnectionError` (pool exhausted),
--   `TransactionError` (inside a transaction the server ended earlier —
--   deadlock, lost connection — or for a statement that would commit it
--   implicitly, such as DDL, `COMMIT`, `LOCK TABLES`; neither is sent)
function Backend:execute(sql, ...)
  return execute_with(self, "execute", sql, ...)
end

--- Like `execute`; each row also holds, under the key `-i` for its JSON
-- column number `i`, `core.json_hash` of the decoded value (computed while
-- decoding). The model layer keeps it as what the database holds, to see a
-- JSON table changed in place. Internal to the model layer; a backend
-- without it makes the model hash a JSON value when first read.
-- @tparam string sql the statement
-- @param ... the values
-- @treturn table the result of `execute`
function Backend:_execute_json_hashes(sql, ...)
  return execute_with(self, "execute_json_hashes", sql, ...)
end

--- Like `execute`, returning only the rows.
-- @tparam string sql the statement
-- @param ... the values
-- @treturn {table,...} the rows (column name -> typed value)
-- @raise the errors of `execute`
function Backend:query(sql, ...)
  return self:execute(sql, ...).rows
end

--- Streams the rows of a statement in constant memory. Outside a
-- transaction the iteration holds its own connection until it ends or the
-- loop breaks (the fourth value is a to-be-closed guard). An error while
-- reading (a conversion error, a lost connection) closes the stream before
-- the connection goes back to the pool.
-- @tparam string sql the statement
-- @param ... the values
-- @return an iterator for a generic `for`
-- @raise the errors of `execute`, when the stream opens or while it reads
-- @usage for row in db:each("SELECT id FROM users WHERE age > ?", 18) do ... end
function Backend:each(sql, ...)
  if type(sql) ~= "string" then
    errors.raise("QueryError", "each expects SQL text with ? placeholders")
  end
  local t = self.tx[coroutine.running()]
  if t then
    if t.doomed then raise_doomed(t) end
    local refused = ends_memo[sql]
    if refused == nil then refused = classify(sql) end
    if refused then refuse(refused) end
  end
  local conn = t and t.conn or self.pool:checkout()
  local started = now()
  local ok, f, s, _, cursor = pcall(conn.each, conn, sql, ...)
  -- logged when the stream opens (rows arrive later, one by one)
  if self.log then self:_emit(sql, started, select("#", ...), nil, (not ok) and f or nil, ...) end
  if not ok then
    if not t then
      self.pool:checkin(conn, lost(f))
    elseif self:_ends(conn, f) then
      doom(t, f)
    end
    error(f, 0)
  end
  local done = false
  local function finish()
    if done then return end
    done = true
    cursor:close()
    if not t then self.pool:checkin(conn) end
  end
  local closer = setmetatable({}, { __close = finish, __gc = finish })
  local function iter()
    if done then return nil end
    local rok, row = pcall(f, s)
    if not rok then
      done = true
      -- the cursor may still own the connection (rows unread): close it
      -- first, or the next statement on this connection finds it busy
      local cok = pcall(cursor.close, cursor)
      if not t then
        self.pool:checkin(conn, lost(row) or not cok)
      elseif self:_ends(conn, row) or not cok then
        doom(t, row)
      end
      error(row, 0)
    end
    if row == nil then finish() end
    return row
  end
  return iter, nil, nil, closer
end

-- ---- transactions ----------------------------------------------------

local function backoff(attempt)
  local base = math.min(0.05 * 2 ^ (attempt - 1), 2)
  return base / 2 + math.random() * base / 2 -- exponential, with jitter
end

local function retryable(err)
  return errors.is(err, "DeadlockError") or errors.is(err, "LockTimeoutError")
end

--- Whether the running coroutine is inside `transaction`.
-- @treturn boolean
function Backend:in_transaction()
  return self.tx[coroutine.running()] ~= nil
end

--- Registers `fn` (called with no arguments) to run if the work of the
-- current transaction level is rolled back; see `activerecord.backend.base`.
-- @tparam function fn the undo action
-- @treturn boolean true when registered (inside a transaction), false outside
function Backend:_track_undo(fn)
  local t = self.tx[coroutine.running()]
  if not t then return false end
  local u = t.undo
  if not u then
    u = {}
    t.undo = u
  end
  u[#u + 1] = fn
  return true
end

-- Runs, newest first, the undo actions registered after position `mark`
-- (0: all of them), each once, each under pcall.
local function run_undo(t, mark)
  local u = t.undo
  if not u then return end
  for i = #u, mark + 1, -1 do
    local fn = u[i]
    u[i] = nil -- removed before the call: exactly once, even if it re-enters
    local ok, err = pcall(fn)
    if not ok then
      io.stderr:write("activerecord: undo action after rollback failed: ", tostring(err), "\n")
    end
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
  if self.tx[co] == t then self.tx[co] = nil end
  local rok = not t.lost and pcall(conn.rollback, conn)
  self.pool:checkin(conn, not rok)
  run_undo(t, 0)
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
    self.pool:checkin(conn, lost(err))
    return false, err
  end
  if self.log then self:_emit("BEGIN", now(), 0, nil, nil) end
  local t <close> = setmetatable({ backend = self, conn = conn, depth = 0 }, Attempt)
  self.tx[co] = t
  local results = pack(pcall(fn, self))
  self.tx[co] = nil
  t.done = true
  if results[1] and not t.doomed then
    local started = now()
    local cok, cerr = pcall(conn.commit, conn)
    if self.log then self:_emit("COMMIT", started, 0, nil, (not cok) and cerr or nil) end
    if cok then
      self.pool:checkin(conn)
      return true, results
    end
    -- a failed COMMIT is an error, never a success
    pcall(conn.rollback, conn)
    self.pool:checkin(conn, lost(cerr))
    run_undo(t, 0)
    return false, cerr
  end
  -- doomed: the error that ended the transaction, even when fn caught it
  -- and returned, so that `retries` sees a deadlock as a deadlock
  local res = t.doomed or results[2]
  local rok = not t.lost and pcall(conn.rollback, conn)
  if self.log then self:_emit("ROLLBACK", now(), 0, nil, nil) end
  self.pool:checkin(conn, not rok)
  run_undo(t, 0)
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
-- @tparam function fn called with the backend; its results are returned
-- @tparam[opt] table opts `isolation` (`"READ COMMITTED"`, ...; outermost
--   only), `read_only` (outermost only), `retries` (re-run the whole
--   function on `DeadlockError`/`LockTimeoutError`, with exponential backoff
--   and jitter; outermost only)
-- @return the results of `fn`
-- @raise whatever `fn` raised (after the rollback); `TransactionError` for
--   isolation, read-only or retries on a nested call, or a non-function;
--   `ConfigError` for an unknown option or a bad `retries`;
--   `DeadlockError`/`LockTimeoutError` once the retries are used up
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
    local ok, res = self:_attempt(co, fn, opts)
    if ok then return unpack(res, 2, res.n) end
    attempt = attempt + 1
    if not (retryable(res) and attempt <= retries) then error(res, 0) end
    core.sleep(backoff(attempt))
  end
end

--- The rows of a table whose JSON column has `value` at `path` (the
-- original guide's helper, done safely): table and column are validated
-- identifiers, the path is checked against the JSON path grammar and bound,
-- the value is bound.
-- @tparam string table_name the table
-- @tparam string column the JSON column
-- @tparam string path a JSON path such as `"$.editor"`
-- @param value the value to compare the unquoted JSON value with
-- @treturn {table,...} the rows
-- @raise `QueryError` for a bad identifier or JSON path (before any SQL is
--   sent); `CapabilityError` on a server without JSON functions
function Backend:json_path_query(table_name, column, path, value)
  local query = require("activerecord.query")
  return query.table(table_name, self):where(query.json_value(column, path):eq(value)):all()
end

-- ---- SQL text ----------------------------------------------------------

local COMPILE_KINDS = { select = true, update = true, delete = true, insert = true }

--- SQL text and parameters from the compiler, the one place that writes
-- SQL: `db:compile("select", q)`, `db:compile("update", q, assignments)`,
-- `db:compile("delete", q, opts)` (q: a finalized query, `q:_final()`) ->
-- sql, params; `db:compile("insert", table_name, columns, nrows, opts)` ->
-- sql (every value a parameter).
-- @tparam string kind `select`, `update`, `delete` or `insert`
-- @raise `QueryError` for what the compiler refuses; `ConfigError` for an unknown kind
function Backend:compile(kind, ...)
  if not COMPILE_KINDS[kind] then
    errors.raise("ConfigError", "compile: unknown statement kind " .. tostring(kind)
      .. " (accepted: delete, insert, select, update)")
  end
  return self.compiler[kind](self.dialect, ...)
end

-- ---- server, capabilities, lifetime ---------------------------------

--- The server this backend talks to.
-- @treturn table `{ flavor = "mariadb"|"mysql", version = { 10, 11, 19 }, version_string }`
function Backend:server()
  return self._server
end

--- The server's capabilities grouped by category.
-- @treturn table category -> { capability -> boolean }
function Backend:capabilities()
  return caps.group(self._capabilities)
end

--- Whether the server has a capability, or a category's main capability.
-- @tparam string name a capability (`"json_table"`) or a category (`"json"`)
-- @treturn boolean
-- @raise `ConfigError` for a name that is neither
function Backend:supports(name)
  return caps.supports(self._capabilities, name)
end

--- Raises unless the server has a capability; nothing is sent.
-- @tparam string name the capability
-- @tparam[opt] string feature what needs it, for the message
-- @treturn boolean true
-- @raise `CapabilityError` naming the feature, the server's flavor and
--   version; `ConfigError` for an unknown capability name
-- One wording for every capability error: the dialect's ("X needs
-- MariaDB 10.6+ (server: mariadb 10.5.4)"); categories resolve first.
function Backend:require_capability(name, feature)
  if caps.supports(self._capabilities, name) then return true end
  local names = caps.categories[name]
  return self.dialect:require(names and names[1] or name, feature)
end

--- Counters of the connection pool.
-- @treturn table `{ size, open, in_use, idle, waits, timeouts, created, closed, replaced, errors }`
function Backend:pool_stats()
  return self.pool:stats()
end

--- Closes the pool: idle connections now, in-use ones when returned. Also
-- runs at the end of a `local db <close> = ar.connect{...}` scope.
function Backend:close()
  self.pool:close()
end

Backend.__close = Backend.close

function Backend:__tostring()
  local s = self._server
  return ("activerecord mysql backend (%s %s, pool %d/%d)"):format(s.flavor,
    table.concat(s.version, "."), self.pool.open, self.pool.opts.size)
end

return M
