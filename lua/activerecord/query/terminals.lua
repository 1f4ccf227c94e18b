--- Query terminals: what runs a query and what it returns (`all`, `first`,
-- `one`, `count`/`sum`/..., `exists`, `pluck`, `each`, `find_batches`,
-- `find_each`, `update_all`, `delete_all`, `explain`, `to_sql`).
-- One job: run queries through the backend contract: SQL text comes from
-- `db:compile(kind, ...)` (the compiler, cached by the query's shape),
-- rows from `db:execute` / `db:each`.
-- @module activerecord.query.terminals
local nodes = require("activerecord.query.nodes")
local expr = require("activerecord.query.expr")
local builder = require("activerecord.query.builder")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local json = require("activerecord.json")
local qshape = require("activerecord.query.shape")
local typed = require("activerecord.query.typed")

local Query = builder.Query
local M = {}

--- Marks loaded records readonly (a `readonly()` query's): through
-- `activerecord.record.mark_readonly` where the record module has it.
-- @tparam table recs the records
function M.mark_readonly(recs)
  local record = package.loaded["activerecord.record"]
  local mark = type(record) == "table" and record.mark_readonly
  if not mark then return end
  for i = 1, #recs do
    local r = recs[i]
    if type(r) == "table" then mark(r) end
  end
end
local unpack = table.unpack
local type, next, rawget = type, next, rawget -- hot paths: globals read once
local query_error, node = nodes.query_error, nodes.node
local checked_value = nodes.checked_value
local check_name = nodes.check_name
local as_expr, as_operand, sorted_keys = expr.as_expr, expr.as_operand, expr.sorted_keys

-- ---- running -------------------------------------------------------------

function Query:_backend()
  local b = self.backend
  if type(b) == "function" then b = b() end
  if not b then errors.raise("ConfigError", "no backend: pass backend = db or call ar.set_default_backend(db)") end
  return b
end

--- The SQL text and its parameters, without running anything.
-- @treturn string the SQL
-- @treturn table the parameters (`params.n` is their count, so NULLs survive)
-- @raise `QueryError`, `CapabilityError`, `ConfigError` (no backend)
function Query:to_sql()
  local db = self:_backend()
  return db:compile("select", self:_final())
end

-- Runs the (finalized) query through `exec` (db.execute or a variant of
-- it): a query built by shaped steps whose node has its entry for this
-- backend's dialect goes straight to it (activerecord.query.shape).
local run = qshape.run

local function execute(db, exec, f)
  local at = f._shape
  if at then
    local e = at[db.dialect]
    if e then return run(exec, db, e, f._vals) end
  end
  local sql, params = db:compile("select", f)
  return exec(db, sql, unpack(params, 1, params.n))
end

function Query:_execute()
  local db = self:_backend()
  return execute(db, db.execute, self:_final())
end

function Query:_rows() return self:_execute().rows end

-- Rows -> the model's records: one call for them all where the model
-- offers it (`_meta.load_rows`), else one `_load` per row.
local function load(model, rows, held)
  local load_rows = model._meta.load_rows
  if load_rows then return load_rows(model, rows, held) end
  local one = model._load
  for i = 1, #rows do rows[i] = one(model, rows[i], held) end
  return rows
end

function Query:_wrap(rows, held)
  if not self.model then return rows end
  return load(self.model, rows, held)
end

-- Rows for model instances. A model with JSON fields takes them with the
-- hash of each JSON value (`_execute_json_hashes`, where the backend has
-- it): the record keeps what the database holds, to see changes made in place.
local function model_rows(model, db, f)
  if not (model._json_fields and db._execute_json_hashes) then
    return execute(db, db.execute, f).rows
  end
  local res = execute(db, db._execute_json_hashes, f)
  return res.rows, model:_held_keys(res.columns)
end

function Query:_model_rows()
  return model_rows(self.model, self:_backend(), self:_final())
end

--- Runs the query.
-- @treturn table an array of model instances (plain rows for a table query),
--   with `with(...)` relations loaded
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:all()
  -- `_rare` false: a query made by a builder step without rare fields (no
  -- none/readonly flag); one own-field read on the hot path
  local rare = self._rare ~= false
  if rare and self._none then return {} end
  local model = self.model
  local rows
  if model then
    local db = self.backend
    if type(db) == "function" then db = db() end
    if not db then db = self:_backend() end -- raises the usual error
    rows = load(model, model_rows(model, db, self:_final()))
  else
    rows = self:_rows()
  end
  local after = self.after_load
  if after then after(self, rows) end
  if rare and self._readonly then M.mark_readonly(rows) end
  return rows
end

-- The primary key as a column reference qualified by this query's source.
-- A model with a composite key has none: nil, nil and the list of its
-- parts' references (in key order) as a third value.
local function pk_ref(q, key)
  local column = key
  local source = q.table_alias or q.table
  if not column and q.model then
    local pkf = q.model.pk_field
    if not pkf then
      local refs = {}
      for i, f in ipairs(q.model.pk_fields) do
        refs[i] = expr.col(source and (source .. "." .. f.column) or f.column)
      end
      return nil, nil, refs
    end
    column = pkf.column
  end
  if not column then return nil end
  return expr.col(source and (source .. "." .. column) or column), column
end

-- q ordered by every ref of a list (a composite key's parts).
local function order_by_all(q, refs, dir)
  for i = 1, #refs do q = q:order_by(refs[i], dir) end
  return q
end
M.order_by_all = order_by_all

--- The first row (by primary key unless ordered, by the query or a default
-- scope), or nil.
-- @return a record, a row or nil
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:first()
  local q = self
  local at = q._shape
  local ordered = at and qshape.info(at).order > 0 or not at and #q._order > 0
  local model = q.model
  if not ordered and model and #model._default_scopes > 0 then -- a default scope's order counts
    ordered = #qshape.materialize(q:_final())._order > 0
  end
  if not ordered and not q._compound then
    local ref, _, refs = pk_ref(q)
    if ref then q = q:order_by(ref) elseif refs then q = order_by_all(q, refs) end
  end
  return q:limit(1):all()[1]
end

--- Exactly one row: nil when none.
-- @return a record, a row or nil
-- @raise `QueryError` when there are several; the errors of `all`
function Query:one()
  local rows = self:limit(2):all()
  if #rows > 1 then query_error("one() found more than one row") end
  return rows[1]
end

-- SELECT ... FROM (this query) AS alias: for counting grouped, limited,
-- distinct or compound queries as their rows.
local function wrapped(self, alias)
  local inner = self:_final()
  local q = builder.new{ backend = self.backend }
  q._from_query, q.table_alias, q.skip_all_scopes = inner, alias, true
  return q
end

local function needs_wrap(q, grouped)
  local at = q._shape
  if at then -- shaped: no grouping or compound; the rest is on its path
    local i = qshape.info(at)
    return i.limit or i.offset or i.distinct
  end
  return (grouped and #q._group > 0) or q._limit ~= nil or q._offset ~= nil or q._distinct
    or q._compound ~= nil
end

local STAR = node({ kind = "raw", sql = "*", params = { n = 0 } })

-- The one value of an aggregate query, typed (activerecord.query.typed).
local function value_of(self, q, fn, col)
  return typed.aggregate_value(self, fn, col, q:_execute())
end

local function aggregate_value(self, fn, col, distinct)
  if self._rare ~= false and self._none then return fn == "COUNT" and 0 or nil end
  local q
  if needs_wrap(self, fn == "COUNT") then
    q = wrapped(self, "ar_agg")
  else
    if not self._shape and #self._group > 0 then
      query_error(fn:lower() .. "() on a grouped query: use select + aggregate()")
    end
    q = builder.aggregate(self, fn, col, distinct)
    if q then return value_of(self, q, fn, col) end
    q = self:clone()
    q._order = {}
  end
  local arg = col and as_expr(col) or STAR
  q._select = { { expr = node({ kind = "func", name = fn, args = { arg }, distinct = distinct }), as = "value" } }
  return value_of(self, q, fn, col)
end

--- `count()` counts the rows `all` would return (grouped, limited, distinct
-- or compound queries are counted as their rows); `count(col)` non-NULL
-- values; `count(col, true)` distinct ones.
-- @tparam[opt] string|Expr col the column
-- @tparam[opt] boolean distinct count distinct values
-- @treturn integer the count
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:count(col, distinct) return aggregate_value(self, "COUNT", col, distinct) end
--- `SUM(col)`: an integer for an integer field (an exact decimal string
-- past 2^63), the exact decimal text for a decimal field, a float for a
-- float field; without a field, by the server's type (activerecord.query.typed).
-- @tparam string|Expr col the column
-- @return the sum, or nil when no row (or only NULLs) matches
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:sum(col) return aggregate_value(self, "SUM", col) end
--- `AVG(col)`: a float for an integer or float field, the exact decimal
-- text for a decimal field (activerecord.query.typed).
-- @tparam string|Expr col the column
-- @return the average, or nil
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:avg(col) return aggregate_value(self, "AVG", col) end
--- `MIN(col)`, typed like the field (activerecord.query.typed).
-- @tparam string|Expr col the column
-- @return the minimum, or nil
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:min(col) return aggregate_value(self, "MIN", col) end
--- `MAX(col)`, typed like the field (activerecord.query.typed).
-- @tparam string|Expr col the column
-- @return the maximum, or nil
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:max(col) return aggregate_value(self, "MAX", col) end

local ONE = node({ kind = "raw", sql = "1", params = { n = 0 } })

--- Whether any row matches (`SELECT 1 ... LIMIT 1`).
-- @treturn boolean
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:exists()
  if self._rare ~= false and self._none then return false end
  local q = needs_wrap(self, true) and wrapped(self, "ar_exists") or self:clone()
  q._select = { { expr = ONE, as = "one" } }
  q._order = {}
  return #q:limit(1):_rows() > 0
end

--- The values of one column, typed like the model's field when the column
-- names one (a field or column name, qualified by the model's table or
-- not, or `ar.col(...)`), else as the server's type reads.
-- @tparam string|Expr col the column
-- @treturn table the values
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:pluck(col)
  local e = as_expr(col)
  if self._none then return {} end
  local q = self:clone()
  q._select = { { expr = e, as = "value" } }
  return typed.pluck_values(self, col, q:_execute())
end

--- Runs the query and returns plain rows, never model instances (for
-- grouped or computed selects). An aliased aggregate
-- (`ar.fn.sum("priority"):as("total")`) is typed as `count`/`sum`/`avg`/
-- `min`/`max` type it; other columns are as the server reads them.
-- @treturn table the rows
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:aggregate()
  if self._none then return {} end
  local f = qshape.materialize(self:_final())
  return typed.aggregate_rows(f, execute(self:_backend(), self:_backend().execute, f))
end

--- The server's plan for this query.
-- @tparam[opt] table opts `format = "traditional"` forces EXPLAIN's rows
-- @return the decoded FORMAT=JSON document where the server has it
--   (capability `explain_json`), else EXPLAIN's rows
-- @treturn string `"json"` or `"traditional"`
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:explain(opts)
  local db = self:_backend()
  local sql, params = db:compile("select", self:_final())
  local as_json = not (opts and opts.format == "traditional") and db.dialect:supports("explain_json")
  if not as_json then
    return db:execute("EXPLAIN " .. sql, unpack(params, 1, params.n)).rows, "traditional"
  end
  local res = db:execute("EXPLAIN FORMAT=JSON " .. sql, unpack(params, 1, params.n))
  local row = res.rows[1]
  local text = row and row[res.columns[1].name]
  if type(text) == "string" then text = json.decode(text) end
  return text, "json"
end

--- `UPDATE ... SET ... WHERE <this query's conditions>` in one statement (no
-- events, no validation).
-- @tparam table values column -> value (bound) or expression
--   (`{ score = ar.col("score"):add(1) }`)
-- @treturn integer the affected rows
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
-- A SET value: an expression or query as an operand; else the value as
-- the field stores it (the field may turn a table into a value: JSON,
-- datetime), a table left refused.
local getmt, Expr, QUERY = nodes.getmt, nodes.Expr, nodes.QUERY
local function set_value(model, k, v)
  if type(v) == "table" then
    if getmt(v) == Expr then return v end
    if rawget(v, QUERY) ~= nil then return as_operand(v) end
  end
  if model then v = model:_to_db(k, v) end
  if type(v) == "table" then return checked_value(v, "update_all{ " .. k .. " = ... }") end
  return v
end

local NO_VALS, UPDATE, DELETE = {}, qshape.UPDATE, qshape.DELETE
local total_of, update_node = qshape.total, qshape.update_node

function Query:update_all(values)
  if self._none then
    if type(values) ~= "table" then query_error("update_all expects a table of values") end
    return 0
  end
  if type(values) ~= "table" or getmt(values) == Expr then query_error("update_all expects a table of values") end
  local model = self.model
  local assignments
  local k1, v1 = next(values)
  if type(k1) == "string" and next(values, k1) == nil then -- one column: no sort
    assignments = { { column = expr.col(k1).name, value = set_value(model, k1, v1) } }
  else
    assignments = {}
    for i, k in ipairs(sorted_keys(values, "update_all")) do
      -- the name checked once (expr.col keeps it)
      assignments[i] = { column = expr.col(k).name, value = set_value(model, k, values[k]) }
    end
  end
  local db = self:_backend()
  local f = self:_final()
  local shape = f._shape
  if shape and shape[UPDATE] then -- shaped: the entry under its node, straight to execute
    local total = total_of(shape)
    local vals = table.move(f._vals or NO_VALS, 1, total, 1, {})
    local at = update_node(shape, assignments, vals)
    local e = at and at[db.dialect]
    if e then return run(db.execute, db, e, vals).affected_rows end
  end
  local sql, params = db:compile("update", f, assignments)
  return db:execute(sql, unpack(params, 1, params.n)).affected_rows
end

local DELETE_OPTIONS = { returning = true }

--- `DELETE ... WHERE <this query's conditions>` in one statement (no events).
-- @tparam[opt] table opts `returning = { columns }` (capability `delete_returning`)
-- @treturn integer the affected rows
-- @treturn[opt] table the returned rows, with `returning`
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:delete_all(opts)
  if opts ~= nil then
    if type(opts) ~= "table" then query_error("delete_all expects { returning = {...} }") end
    options.check(opts, DELETE_OPTIONS, "delete_all")
  end
  if self._none then
    if opts and opts.returning then return 0, {} end
    return 0
  end
  local db = self:_backend()
  local f = self:_final()
  local shape = f._shape
  if opts == nil and shape then -- shaped: the entry under its node, straight to execute
    local at = shape[DELETE]
    local e = at and at[db.dialect]
    if e then return run(db.execute, db, e, f._vals).affected_rows end
  end
  local sql, params = db:compile("delete", f, opts)
  local res = db:execute(sql, unpack(params, 1, params.n))
  if opts and opts.returning then return res.affected_rows, res.rows end
  return res.affected_rows
end

--- Streams the matching rows (as instances for a model) through `fn`, without buffering them.
-- @tparam function fn called with each record or row
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:each(fn)
  if self._none then return end
  local readonly = self._readonly
  local db = self:_backend()
  local sql, params = db:compile("select", self:_final())
  local model = self.model
  for row in db:each(sql, unpack(params, 1, params.n)) do
    if model then
      row = model._load(model, row)
      if readonly then M.mark_readonly({ row }) end
    end
    fn(row)
  end
end

local BATCH_KEYS = { batch_size = true, key = true, start = true }

local function batch_options(self, opts)
  options.check(opts, BATCH_KEYS, "find_each")
  self = qshape.materialize(self)
  local size = opts.batch_size or 1000
  if math.type(size) ~= "integer" or size < 1 then query_error("batch_size must be a positive integer") end
  if #self._order > 0 or self._limit or self._offset or self._compound then
    query_error("find_each orders by the primary key in batches: drop order_by/limit/offset")
  end
  local ref, column, refs = pk_ref(self, opts.key and check_name(opts.key, "key"))
  if refs then
    query_error("find_each on a model with a composite primary key needs { key = \"column\" } (a unique column)")
  end
  if not ref then query_error("find_each on a table query needs { key = \"column\" }") end
  return size, ref, column
end

--- Keyset batches: `WHERE pk > last ORDER BY pk LIMIT n`, one batch in memory.
-- @tparam[opt] table opts `batch_size` (default 1000), `key` (required for a
--   table query), `start` (the key to start after)
-- @tparam[opt] function fn called with each batch; without it, an iterator over batches
-- @return the iterator, when `fn` is omitted
-- @raise `QueryError` for a bad option or an ordered/limited query; the errors of `all`
function Query:find_batches(opts, fn)
  if type(opts) == "function" then opts, fn = {}, opts end
  opts = opts or {}
  local size, ref, column = batch_options(self, opts)
  local base = self:reorder(ref):limit(size)
  local key_name = self.model and not opts.key and self.model.primary_key or column
  local last = opts.start
  local done = self._none and true or false
  local function next_batch()
    if done then return nil end
    local q = last == nil and base or base:where(ref:gt(last))
    local batch = q:all()
    if #batch < size then done = true end
    if #batch == 0 then return nil end
    last = batch[#batch][key_name]
    return batch
  end
  if not fn then return next_batch end
  for batch in next_batch do fn(batch) end
end

--- Like `find_batches`, one record at a time.
-- @tparam[opt] table opts as for `find_batches`
-- @tparam[opt] function fn called with each record; without it, an iterator
-- @return the iterator, when `fn` is omitted
-- @raise as `find_batches`
function Query:find_each(opts, fn)
  if type(opts) == "function" then opts, fn = {}, opts end
  local batches = self:find_batches(opts or {})
  local batch, i = nil, 0
  local function next_record()
    while true do
      if batch and i < #batch then
        i = i + 1
        return batch[i]
      end
      batch, i = batches(), 0
      if not batch then return nil end
    end
  end
  if not fn then return next_record end
  for rec in next_record do fn(rec) end
end

function Query:__tostring()
  local ok, sql = pcall(self.to_sql, self)
  return "Query(" .. (ok and sql or tostring(self.table)) .. ")"
end

M.execute, M.pk_ref = execute, pk_ref
return M
