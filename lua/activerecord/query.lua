-- Queries are values: every builder call returns a new query (the original
-- is never changed), and SQL is produced once, by the backend's compiler,
-- when a terminal (all, first, count, ...) runs. Values never enter SQL
-- text; raw fragments are explicit strings with their own `?` parameters.
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")

local M = {}

local Query = {}
Query.__index = Query
M.Query = Query

local null = core.null
local pack, unpack = table.pack, table.unpack

-- ---- expressions ---------------------------------------------------------

-- Expression nodes carry __ar_expr so operands tell them from plain values.
local Expr = {}
Expr.__index = Expr

local function node(t)
  t.__ar_expr = true
  return setmetatable(t, Expr)
end
M.node = node

-- ar.col("age"):gt(18), ar.col("users.name"):like("A%"), ...
function M.col(name)
  if type(name) ~= "string" then errors.raise("QueryError", "col expects a column name") end
  return node({ kind = "column", name = name })
end

-- ar.raw("LOWER(name) = ?", "ann"): an explicit SQL fragment.
function M.raw(sql, ...)
  if type(sql) ~= "string" then errors.raise("QueryError", "raw expects SQL text") end
  return node({ kind = "raw", sql = sql, params = pack(...) })
end

local function as_expr(v)
  if type(v) == "table" and v.__ar_expr then return v end
  if type(v) == "string" then return M.col(v) end
  errors.raise("QueryError", "expected a column name or an expression, got " .. type(v))
end
M.as_expr = as_expr

for _, op in ipairs({ "eq", "ne", "gt", "ge", "lt", "le" }) do
  Expr[op] = function(self, value) return node({ kind = op, left = self, right = value }) end
end
function Expr:in_list(values) return node({ kind = "in", left = self, values = values }) end
function Expr:not_in(values) return node({ kind = "in", left = self, values = values, negate = true }) end
function Expr:between(low, high) return node({ kind = "between", left = self, low = low, high = high }) end
function Expr:like(pattern) return node({ kind = "like", left = self, pattern = pattern }) end
function Expr:not_like(pattern) return node({ kind = "like", left = self, pattern = pattern, negate = true }) end
function Expr:is_null() return node({ kind = "null", left = self }) end
function Expr:is_not_null() return node({ kind = "null", left = self, negate = true }) end
function Expr:and_(other) return node({ kind = "and", items = { self, other } }) end
function Expr:or_(other) return node({ kind = "or", items = { self, other } }) end
function Expr:not_() return node({ kind = "not", item = self }) end

-- {name = "Ann", age = {1, 2}, deleted_at = ar.null} -> AND of conditions,
-- in a stable (sorted) order so the SQL text, and its cached statement, repeat.
local function hash_conditions(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then errors.raise("QueryError", "where{} keys must be column names") end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local items = {}
  for i, k in ipairs(keys) do
    local v = t[k]
    local left = M.col(k)
    if v == null then
      items[i] = node({ kind = "null", left = left })
    elseif type(v) == "table" and v.__ar_query then
      items[i] = node({ kind = "in", left = left, values = v })
    elseif type(v) == "table" and not v.__ar_expr then
      items[i] = node({ kind = "in", left = left, values = v })
    else
      items[i] = node({ kind = "eq", left = left, right = v })
    end
  end
  return items
end

-- where(...) arguments -> one condition node.
local function condition(first, ...)
  if type(first) == "string" then return M.raw(first, ...) end
  if type(first) == "table" and first.__ar_expr then return first end
  if type(first) == "table" then
    local items = hash_conditions(first)
    if #items == 1 then return items[1] end
    return node({ kind = "and", items = items })
  end
  errors.raise("QueryError", "where expects a table of conditions, an expression or SQL text with ?")
end
M.condition = condition

-- ---- building ------------------------------------------------------------

-- opts: table (required), model, backend (or a function returning one),
-- resolve (field name -> column name).
function M.new(opts)
  return setmetatable({
    __ar_query = true,
    table = opts.table, model = opts.model, backend = opts.backend, resolve = opts.resolve,
    _where = {}, _order = {}, _select = {}, _group = {}, _having = {},
  }, Query)
end

local list_keys = { "_where", "_order", "_select", "_group", "_having" }

function Query:clone()
  local q = {}
  for k, v in pairs(self) do q[k] = v end
  for _, k in ipairs(list_keys) do
    local src, dst = self[k], {}
    for i = 1, #src do dst[i] = src[i] end
    q[k] = dst
  end
  return setmetatable(q, getmetatable(self))
end

local function with(self, key, value)
  local q = self:clone()
  local list = q[key]
  list[#list + 1] = value
  return q
end

function Query:where(...) return with(self, "_where", condition(...)) end

function Query:or_where(...)
  local q = self:clone()
  local current = node({ kind = "and", items = q._where })
  q._where = { node({ kind = "or", items = { current, condition(...) } }) }
  return q
end

function Query:not_where(...) return with(self, "_where", node({ kind = "not", item = condition(...) })) end
function Query:in_list(col, values) return self:where(as_expr(col):in_list(values)) end
function Query:not_in(col, values) return self:where(as_expr(col):not_in(values)) end
function Query:between(col, low, high) return self:where(as_expr(col):between(low, high)) end
function Query:like(col, pattern) return self:where(as_expr(col):like(pattern)) end
function Query:is_null(col) return self:where(as_expr(col):is_null()) end
function Query:is_not_null(col) return self:where(as_expr(col):is_not_null()) end

function Query:order_by(col, dir)
  dir = dir and tostring(dir):lower() or "asc"
  if dir ~= "asc" and dir ~= "desc" then
    errors.raise("QueryError", ("order direction must be \"asc\" or \"desc\", got %q"):format(dir))
  end
  return with(self, "_order", { expr = as_expr(col), dir = dir })
end

local function count_arg(n, what)
  if math.type(n) ~= "integer" or n < 0 then
    errors.raise("QueryError", what .. " must be a non-negative integer")
  end
  return n
end

function Query:limit(n)
  local q = self:clone()
  q._limit = count_arg(n, "limit")
  return q
end

function Query:offset(n)
  local q = self:clone()
  q._offset = count_arg(n, "offset")
  return q
end

function Query:select(...)
  local q = self:clone()
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if type(s) == "table" and s.expr then
      q._select[#q._select + 1] = s
    else
      q._select[#q._select + 1] = { expr = as_expr(s) }
    end
  end
  return q
end

function Query:distinct()
  local q = self:clone()
  q._distinct = true
  return q
end

function Query:group_by(...)
  local q = self:clone()
  for i = 1, select("#", ...) do q._group[#q._group + 1] = as_expr(select(i, ...)) end
  return q
end

function Query:having(...) return with(self, "_having", condition(...)) end

-- for_update{ nowait = true } / for_share{ skip_locked = true }
function Query:for_update(opts)
  local q = self:clone()
  q._lock = { mode = "update", nowait = opts and opts.nowait, skip_locked = opts and opts.skip_locked }
  return q
end

function Query:for_share(opts)
  local q = self:clone()
  q._lock = { mode = "share", nowait = opts and opts.nowait, skip_locked = opts and opts.skip_locked }
  return q
end

-- ---- default scopes ------------------------------------------------------

-- Drops one named default scope (e.g. soft_delete's) from this query.
function Query:unscope(name)
  local q = self:clone()
  local skip = {}
  for k, v in pairs(self.skip_scopes or {}) do skip[k] = v end
  skip[name] = true
  q.skip_scopes = skip
  return q
end

-- The query as it runs: the model's default scopes applied once, at the end.
function Query:_final()
  local m = self.model
  if not m or self._scoped or self.skip_all_scopes or #m._default_scopes == 0 then return self end
  local q = self:clone()
  q._scoped = true
  for _, s in ipairs(m._default_scopes) do
    if not (self.skip_scopes and self.skip_scopes[s.name]) then
      q = s.fn(q)
      q._scoped = true
    end
  end
  return q
end

-- ---- running -------------------------------------------------------------

function Query:_backend()
  local b = self.backend
  if type(b) == "function" then b = b() end
  if not b then errors.raise("ConfigError", "no backend: pass backend = db or call ar.set_default_backend(db)") end
  return b
end

-- -> sql, params (params.n holds the count, so NULLs survive)
function Query:to_sql()
  local db = self:_backend()
  return db.compiler.select(db.dialect, self:_final())
end

function Query:_rows()
  local db = self:_backend()
  local sql, params = db.compiler.select(db.dialect, self:_final())
  return db:execute(sql, unpack(params, 1, params.n)).rows
end

function Query:_wrap(rows)
  if not self.model then return rows end
  local load = self.model._load
  for i = 1, #rows do rows[i] = load(self.model, rows[i]) end
  return rows
end

-- -> array of model instances (or plain rows for a table query)
function Query:all()
  local rows = self:_wrap(self:_rows())
  if self.after_load then self.after_load(self, rows) end
  return rows
end

function Query:first()
  local q = self
  if #q._order == 0 and q.model and q.model.primary_key then q = q:order_by(q.model.primary_key) end
  return q:limit(1):all()[1]
end

-- Exactly one row: nil when none, an error when several.
function Query:one()
  local rows = self:limit(2):all()
  if #rows > 1 then errors.raise("QueryError", "one() found more than one row") end
  return rows[1]
end

local function aggregate(self, fn, col, distinct)
  local q = self:clone()
  q._order, q._limit, q._offset = {}, nil, nil
  local arg = col and as_expr(col) or node({ kind = "raw", sql = "*", params = { n = 0 } })
  q._select = { { expr = node({ kind = "func", name = fn, args = { arg }, distinct = distinct }), as = "value" } }
  local row = q:_rows()[1]
  return row and row.value
end

function Query:count(col, distinct) return aggregate(self, "COUNT", col, distinct) or 0 end
function Query:sum(col) return aggregate(self, "SUM", col) end
function Query:avg(col) return aggregate(self, "AVG", col) end
function Query:min(col) return aggregate(self, "MIN", col) end
function Query:max(col) return aggregate(self, "MAX", col) end

function Query:exists()
  local q = self:clone()
  q._select = { { expr = node({ kind = "raw", sql = "1", params = { n = 0 } }), as = "one" } }
  q._order = {}
  return #q:limit(1):_rows() > 0
end

-- Values of one column, converted like the model's field when it has one.
function Query:pluck(col)
  local q = self:select(col)
  local rows = q:_rows()
  local name = type(col) == "string" and col:match("([^.]+)$") or "value"
  local out = {}
  local field = self.model and self.model.fields[name]
  local conv = field and self.model._from_db[name]
  for i, row in ipairs(rows) do
    local v = row[field and field.column or name]
    if conv and v ~= nil then v = conv(v, field) end
    out[i] = v
  end
  return out
end

-- Grouped rows as plain tables.
function Query:aggregate()
  return self:_rows()
end

-- update_all{ col = value } -> affected rows
function Query:update_all(values)
  if type(values) ~= "table" then errors.raise("QueryError", "update_all expects a table of values") end
  local keys = {}
  for k in pairs(values) do keys[#keys + 1] = k end
  table.sort(keys)
  local assignments = {}
  for i, k in ipairs(keys) do
    local v = values[k]
    if self.model then v = self.model:_to_db(k, v) end
    assignments[i] = { column = k, value = v }
  end
  local db = self:_backend()
  local sql, params = db.compiler.update(db.dialect, self:_final(), assignments)
  return db:execute(sql, unpack(params, 1, params.n)).affected_rows
end

function Query:delete_all(opts)
  local db = self:_backend()
  local sql, params = db.compiler.delete(db.dialect, self:_final(), opts)
  local res = db:execute(sql, unpack(params, 1, params.n))
  if opts and opts.returning then return res.affected_rows, res.rows end
  return res.affected_rows
end

-- Streams matching rows (as instances) through fn, without buffering them.
function Query:each(fn)
  local db = self:_backend()
  local sql, params = db.compiler.select(db.dialect, self:_final())
  local model = self.model
  for row in db:each(sql, unpack(params, 1, params.n)) do
    if model then row = model._load(model, row) end
    fn(row)
  end
end

function Query:__tostring()
  local ok, sql = pcall(self.to_sql, self)
  return "Query(" .. (ok and sql or self.table) .. ")"
end

return M
