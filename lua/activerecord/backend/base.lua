-- The interface every backend implements. The ORM layers above talk only to
-- these methods, so a new backend (PostgreSQL, SQLite, ...) plugs in by
-- providing them; `base.check(backend)` verifies a candidate.
--
--   db:execute(sql, ...)        -> { rows, columns, affected_rows, insert_id, warning_count }
--   db:query(sql, ...)          -> rows (array of tables keyed by column name)
--   db:each(sql, ...)           -> generic-for iterator over rows, streamed
--   db:transaction(fn, opts)    -> fn's results; commits, rolls back, nests by savepoints
--   db:in_transaction()         -> boolean (for the running coroutine)
--   db:capabilities()           -> { category = { name = boolean } }
--   db:supports(name)           -> boolean (a capability or a category name)
--   db:require_capability(name, feature) raises CapabilityError when missing
--   db:server()                 -> { flavor, version = {maj, min, patch}, version_string }
--   db:compile(kind, ...)       -> sql, params: the compiler, the one place that writes
--                                  SQL text ("select"|"update"|"delete" take a finalized
--                                  query; "insert" takes table, columns, row count, opts)
--   db.dialect                  -> the SQL dialect (quoting, placeholders, DDL, ...)
--   db:close()
--   db:_track_undo(fn)          -> boolean: registers an undo action (below)
--   db:_track_commit(fn)        (optional) -> boolean: registers an end-of-transaction
--                                  action (below)
--   db:_execute_json_hashes(sql, ...) (optional) -> like execute; row[-i] holds
--                                  json.hash (activerecord.json) of JSON column i's value
--
-- Introspection (optional for a backend; the model layer's reflection,
-- migrations and the schema dump use it). Table names are "t" or "schema.t";
-- results are cached per backend and shared with the cache (callers must
-- not modify them):
--   db:tables()                 -> sorted array of base-table names (current database)
--   db:columns(t)               -> array of columns in ordinal order, nil when t does not
--                                  exist; a column: { name, type (the schema DSL's neutral
--                                  name), sql_type, nullable, has_default, default (typed,
--                                  or a query raw node for an expression), precision, scale,
--                                  size, unsigned, auto_increment, primary_key, generated
--                                  ({ expr, stored } or nil), on_update (raw node or nil),
--                                  values (ENUM/SET), comment, charset, collation }
--   db:indexes(t)               -> array (PRIMARY first, then by name) of
--                                  { name, columns, unique, primary }; nil when t does not exist
--   db:foreign_keys(t)          -> array by name of { name, columns, ref_table, ref_columns,
--                                  on_delete, on_update } (actions lower case); nil likewise
--   db:checks(t)                -> array by name of { name, expr }; nil likewise
--   db:table_options(t)         -> { engine, charset, collation, comment } or nil
--   db:table_exists(t), db:column_exists(t, c) -> boolean
--   db:reset_schema_cache()     empties the cache and increments db._schema_version
--   db._schema_version          -> integer from 0; a CREATE/ALTER/DROP/RENAME run through
--                                  db:execute/each also empties the cache and increments it
--
-- Values a backend hands up are the neutral side's: JSON null and SQL NULL
-- written explicitly are `activerecord.null`, failures are error objects of
-- `activerecord.errors` (its metatable, its kinds), JSON arrays carry
-- `activerecord.json`'s array_mt. A backend may install faster functions into
-- `activerecord.json` (encode, decode, hash, array) and `activerecord.clock`
-- (now) when it loads, and `errors.kind_of` (its errno -> kind table); the
-- MySQL core does all three at luaopen. The layers above never load a
-- backend's modules themselves.
--
-- One transaction state (design section 8): a `db:transaction` block is
-- active, doomed or done. When the server ends the transaction by itself (a
-- deadlock, a lost connection, a lock wait timeout that rolls back) it is
-- doomed: later statements in it raise `TransactionError` without being
-- sent, nested blocks fail, and the outermost block raises the original error
-- (or re-runs the function under `retries`) even if the caller caught it.
-- Statements that would commit implicitly (DDL, COMMIT, ROLLBACK, START
-- TRANSACTION, LOCK TABLES, SET autocommit, ...) are refused inside a block
-- with a `TransactionError` naming them, before they are sent. A coroutine
-- closed or collected inside a block gives its connection back rolled back.
--
-- Undo actions: the hook the model layer uses to put records back after a
-- rollback (an inserted record new again, changed fields dirty again, a
-- deleted one persisted again). Inside `db:transaction`, `_track_undo(fn)`
-- registers `fn` (no arguments) at the current nesting level and returns
-- true; outside one it registers nothing and returns false. When the work of
-- a level is rolled back (a savepoint undone by a failing nested block, the
-- outermost block rolled back, a doomed transaction, a failed COMMIT, each
-- failed attempt under `retries`) every action registered at that level and
-- at the levels released into it runs exactly once, newest first, each under
-- pcall (an error is written to stderr and the others still run). A released
-- savepoint hands its actions to the parent level; a successful outermost
-- COMMIT drops them. Registering costs one array slot; nothing is allocated
-- for a transaction that registers nothing.
--
-- End-of-transaction actions, the symmetric hook (the model layer's
-- `after_commit` and `after_rollback` events): inside `db:transaction`,
-- `_track_commit(fn)` registers `fn` for the whole transaction and returns
-- true; outside one it registers nothing and returns false. When the
-- outermost block ends, after its connection went back to the pool (so
-- outside any transaction: statements an action sends autocommit), every
-- action runs exactly once, oldest first, each under pcall: `fn(true)`
-- after a successful COMMIT, `fn(false)` after a rollback (after the undo
-- actions, so records are restored; each failed attempt under `retries`
-- runs its own; a coroutine closed inside a block runs them; one dropped
-- and collected does not). A savepoint rolled back or released changes
-- nothing here: what a rolled-back savepoint means for a record is the
-- model's to track with its undo actions. After a COMMIT the actions'
-- errors are collected and, once all ran, `db:transaction` raises a
-- `CallbackError` with `committed = true`, `cause` (the first error) and
-- `causes` (all of them; an action's own CallbackError is flattened into
-- them); after a rollback they are written to stderr and the caller gets
-- the error that caused the rollback. A backend without `_track_commit`
-- runs the model's `after_commit` handlers right after each write.
--
-- Values always travel as parameters: `sql` carries `?` placeholders only.
local errors = require("activerecord.errors")

local M = {}

M.methods = {
  "execute", "query", "each", "transaction", "in_transaction", "capabilities",
  "supports", "require_capability", "server", "close", "_track_undo", "compile",
}

-- Raises a ConfigError listing what `backend` lacks; returns it otherwise.
function M.check(backend)
  local missing = {}
  for _, name in ipairs(M.methods) do
    if type(backend) ~= "table" or type(backend[name]) ~= "function" then
      missing[#missing + 1] = name
    end
  end
  if type(backend) == "table" and backend.dialect == nil then missing[#missing + 1] = "dialect" end
  if #missing > 0 then
    errors.raise("ConfigError", "not a backend: missing " .. table.concat(missing, ", "))
  end
  return backend
end

return M
