-- The statement path of the MySQL backend: `execute`, `each` and their
-- logging, the reconnect-and-retry of statements outside a transaction, and
-- the classifier that refuses statements which would end a transaction.
--
-- Outside a transaction a statement costs one pool checkout (the idle
-- connection on top of the stack, checked by `probe`), one protected call
-- and one checkin: no table or closure is made per statement. Inside one it
-- runs on the transaction's connection with no pool work at all.
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local memo = require("activerecord.memo")
local transaction = require("activerecord.backend.mysql.transaction")
local integrity = require("activerecord.backend.mysql.integrity")

local now = core.monotime
local pack = table.pack
local type, pcall, error, select = type, pcall, error, select
local running = coroutine.running
local lost, doom, raise_doomed = transaction.lost, transaction.doom, transaction.raise_doomed

-- An IntegrityError gets what it violated (`key`, `fields`, `table`:
-- activerecord.backend.mysql.integrity) where it is raised, once the
-- statement's connection is back (introspection may need one).
local function enriched(self, err)
  if type(err) ~= "table" then return err end
  if err.kind == "IntegrityError" then integrity.enrich(self, err) end
  -- ER_OPTION_PREVENTS_STATEMENT: a write reached a read-only server
  if err.code == 1290 and not err.read_only then
    err.read_only = true
    err.message = "a write reached a read-only server (a replica, or read_only=ON), which refused "
      .. "it; writes must go to the primary: " .. tostring(err.message)
  end
  return err
end

local M = {}

local Backend = {}
M.methods = Backend

-- Connection-lost errors where the statement provably never ran: the
-- server had already dropped us (killed, idle timeout, gone away) before it
-- was sent. Other losses (2013 mid-query) may have applied a write.
local NOT_SENT = { [2006] = true, [1927] = true, [4031] = true, [1047] = true } -- 1047: Galera node not ready

-- Statements that change nothing may always be re-run after a reconnect.
local function is_read_only(sql)
  local word = sql:match("^%s*%(*%s*(%a+)")
  word = word and word:upper()
  return word == "SELECT" or word == "SHOW" or word == "DESCRIBE" or word == "DESC"
    or word == "EXPLAIN"
end

-- ---- logging ---------------------------------------------------------

function Backend:_emit(sql, started, n, res, err, ...)
  local seconds = now() - started
  local conn = self._emit_conn -- set by _run just before (no yield in between)
  self._emit_conn = nil
  local event = {
    sql = sql, params = n, seconds = seconds,
    rows = res and res.rows and #res.rows or nil,
    affected = res and res.affected_rows or nil,
    error = err,
    -- beyond one server: which one ran it
    server = self.server_of and (conn and self.server_of[conn] or "primary") or nil,
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
  self._emit_conn = conn
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
-- grow it without end).
local ends_memo = memo.bounded(4096, ends_transaction)

-- Statements that change the schema (CREATE/ALTER/DROP/RENAME, not
-- TEMPORARY) are among those ending a transaction: their memoized name's
-- first word tells. Run through a backend whose schema cache holds
-- something, they empty it (introspect.lua).
local SCHEMA_WORDS = { CREATE = true, ALTER = true, DROP = true, RENAME = true }

local function after_schema_change(self, sql)
  local name = ends_memo[sql]
  if name and SCHEMA_WORDS[name:match("^%a+")] then self:reset_schema_cache() end
end

local function refuse(name)
  errors.raise("TransactionError", ("%s is refused inside db:transaction: it would commit or end the "
    .. "transaction implicitly (run it outside the transaction; a nested db:transaction is a savepoint)")
    :format(name), { statement = name })
end


-- ---- statements ------------------------------------------------------

-- The checks before a statement inside transaction `t`: not doomed, and not
-- a statement that would end it (one table lookup per known SQL text).
local function check_in_transaction(t, sql)
  if t.doomed then raise_doomed(t) end
  local refused = ends_memo[sql]
  if refused then refuse(refused) end
end

-- Runs the statement on `conn` under pcall (logged when a hook is set).
local function run_on(self, conn, run, sql, ...)
  if self.log then return pcall(self._run, self, conn, run, sql, ...) end
  return pcall(conn[run], conn, sql, ...)
end

-- A statement failed outside a transaction on `conn` (checked out at
-- `started`): hands the connection back, and runs the statement again on a
-- fresh connection while that is safe (a lost link, the statement a read or
-- never sent, `reconnect_retries` not used up); otherwise raises `err`.
local function after_failure(self, conn, started, err, run, sql, ...)
  local pool, attempts = self.pool, 0
  local read_timeout, write_timeout = self.read_timeout, self.write_timeout
  while true do
    local is_lost = lost(err)
    -- a read timeout (2013 after waiting read_timeout), or a statement the
    -- server did not take in (2006 after waiting write_timeout), is not a
    -- dropped link: running it again would only wait as long again
    if is_lost and started then
      local waited = now() - started
      if read_timeout and err.code == 2013 and waited >= read_timeout * 0.9 then
        err.timeout = true
      elseif write_timeout and err.code == 2006 and waited >= write_timeout * 0.9 then
        err.timeout = true
        err.message = err.message .. (" (write_timeout: the server took in nothing more for %g s)")
          :format(write_timeout)
      end
    end
    pool:checkin(conn, is_lost, err) -- err: a cluster tells a lost node from a timeout
    if err.timeout then error(err, 0) end
    attempts = attempts + 1
    if not (is_lost and attempts <= self.opts.reconnect_retries
            and (NOT_SENT[err.code] or is_read_only(sql))) then
      error(enriched(self, err), 0)
    end
    conn = pool:checkout()
    started = self.timed_io and now()
    local ok, res = run_on(self, conn, run, sql, ...)
    if ok then
      if self.replicas then self:_note_write(conn, sql) end
      pool:checkin(conn)
      return res
    end
    err = res
  end
end

-- `execute` or `_execute_json_hashes`: the connection method `run` behind the
-- checks. The common case (outside a transaction, no log hook, the statement
-- succeeds) is one pool checkout, one protected call and one checkin.
local function make_execute(run)
  local method -- the C function conn[run], the same for every connection
  return function(self, sql, ...)
    if type(sql) ~= "string" then
      errors.raise("QueryError", "execute expects SQL text with ? placeholders")
    end
    -- ntx: transactions open in any coroutine (at least that many; one whose
    -- coroutine was collected may still count): none, no lookup
    local t = self.ntx > 0 and self.tx[running()]
    local conn, pool, started
    if t then -- the transaction's connection: no pool work
      check_in_transaction(t, sql)
      conn = t.conn
    else
      if self.replicas then -- a read may go to a replica (replicas.lua)
        local r, wanted = self:_pick_replica(sql)
        if r then
          local done, res = self:_read_on_replica(r, run, sql, ...)
          if done then return res end
        end
        if wanted then self.read_counters.fallbacks = self.read_counters.fallbacks + 1 end
      end
      pool = self.pool
      conn = pool:checkout()
      started = self.timed_io and now()
    end
    local ok, res
    if self.log then
      ok, res = pcall(self._run, self, conn, run, sql, ...)
    else
      method = method or conn[run]
      ok, res = pcall(method, conn, sql, ...)
    end
    -- _schema_cache is nil when empty, _schema_loads false when no schema
    -- read is in flight (one that is must learn of a DDL run meanwhile); a
    -- statement that is no schema change costs field reads and one memo hit
    if (self._schema_cache or self._schema_loads) and ends_memo[sql] then after_schema_change(self, sql) end
    if ok then
      if pool then
        if self.replicas then self:_note_write(conn, sql) end
        pool:checkin(conn)
      end
      return res
    end
    if t then
      if self:_ends(conn, res) then doom(t, res) end
      error(enriched(self, res), 0)
    end
    return after_failure(self, conn, started, res, run, sql, ...)
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
--   `IntegrityError` (with `key`, the violated key's or constraint's name,
--   and where known `fields`, its columns, and `table`), `DataError`, `DeadlockError`, `LockTimeoutError`,
--   `QueryTimeout`, `ConnectionLost`, `ConnectionError` (pool exhausted),
--   `TransactionError` (inside a transaction the server ended earlier —
--   deadlock, lost connection — or for a statement that would commit it
--   implicitly, such as DDL, `COMMIT`, `LOCK TABLES`; neither is sent)
Backend.execute = make_execute("execute")

--- Like `execute`; each row also holds, under the key `-i` for its JSON
-- column number `i`, `json.hash` (activerecord.json) of the decoded value (computed while
-- decoding). The model layer keeps it as what the database holds, to see a
-- JSON table changed in place. Internal to the model layer; a backend
-- without it makes the model hash a JSON value when first read.
-- @tparam string sql the statement
-- @param ... the values
-- @treturn table the result of `execute`
Backend._execute_json_hashes = make_execute("execute_json_hashes")

--- Like `execute`, returning only the rows.
-- @tparam string sql the statement
-- @param ... the values
-- @treturn {table,...} the rows (column name -> typed value)
-- @raise the errors of `execute`
function Backend:query(sql, ...)
  return self:execute(sql, ...).rows
end

-- Opens the stream of `sql` on `conn` under pcall: ok, the iterator's
-- values and the cursor (logged when it opens; rows arrive later).
function Backend:_open_stream(conn, sql, ...)
  local started = now()
  local ok, f, s, c, cursor = pcall(conn.each, conn, sql, ...)
  if (self._schema_cache or self._schema_loads) and ends_memo[sql] then after_schema_change(self, sql) end
  if self.log then
    self._emit_conn = conn
    self:_emit(sql, started, select("#", ...), nil, (not ok) and f or nil, ...)
  end
  return ok, f, s, c, cursor
end

--- Streams the rows of a statement in constant memory. Outside a
-- transaction the iteration holds its own connection until it ends or the
-- loop breaks (the fourth value is a to-be-closed guard); with replicas, a
-- plain read streams from one, as `execute` reads there. An error while
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
  local t = self.ntx > 0 and self.tx[running()]
  if t then check_in_transaction(t, sql) end
  local pool, conn = self.pool, t and t.conn
  local ok, f, s, _, cursor, replica
  if not t and self.replicas then
    -- a plain read streams from a replica (replicas.lua); one that cannot
    -- open there (the replica lags, or its link is lost) opens on the primary
    local r, wanted = self:_pick_replica(sql)
    local rconn = r and self:_replica_conn(r)
    if rconn then
      ok, f, s, _, cursor = self:_open_stream(rconn, sql, ...)
      if ok then
        pool, conn, replica = r.pool, rconn, r
        self:_replica_served(r)
      elseif not self:_replica_failed(r, rconn, f) then
        error(enriched(self, f), 0)
      end
    end
    if wanted and not conn then self.read_counters.fallbacks = self.read_counters.fallbacks + 1 end
  end
  if not ok then -- not opened on a replica: the transaction's connection, or the primary's
    conn = conn or pool:checkout()
    ok, f, s, _, cursor = self:_open_stream(conn, sql, ...)
  end
  if not ok then
    if not t then
      pool:checkin(conn, lost(f), f)
    elseif self:_ends(conn, f) then
      doom(t, f)
    end
    error(enriched(self, f), 0)
  end
  local done = false
  local function finish()
    if done then return end
    done = true
    cursor:close()
    if not t then pool:checkin(conn) end
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
        pool:checkin(conn, lost(row) or not cok, row)
        -- rows were handed out already: raised, not read again elsewhere
        if replica and lost(row) then self:_replica_down(replica, row) end
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

return M
