--- Class methods of every model: queries (`query`, `unscoped`), building
-- records (`new`, `_build`, `create`), loading rows into records (`_load`,
-- `_held_keys`), finders (`find` on a fast path that skips the builder,
-- `find_or_fail`, `find_by`, `all`), events (`on`, `off`) and `transaction`;
-- and the per-model generated code behind them: `new`/`_build` and the
-- record loaders (`_meta.load`, `_meta.load_rows`).
-- @module activerecord.model.finders
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local query = require("activerecord.query")
local layout = require("activerecord.model.layout")
local shapes = require("activerecord.model.shapes")

local M = {}

local type, next, setmetatable, rawset, rawget, select = type, next, setmetatable, rawset, rawget, select
local NO_CHANGES, NIL_OLD = layout.NO_CHANGES, layout.NIL_OLD

--- Class methods of every model (`User:find(1)`, `User:query()`, ...).
-- @type ClassMethods
local ClassMethods = {}
M.ClassMethods = ClassMethods

local model_backend = shapes.backend_of
ClassMethods._backend = model_backend

--- A new query on the model's table, with its default scopes applied when it runs.
-- @treturn activerecord.query.Query the query
-- @usage User:query():where{ active = true }:order_by("id", "desc"):limit(10):all()
function ClassMethods:query()
  local meta = self._meta
  -- a model without fields reads them first: where{} converts by them
  if meta.pending then require("activerecord.model.reflect").first_use(self) end
  -- one table, on the model's shape root, with the model's query class
  return query.for_model(self, meta.query_mt, meta.backend_fn)
end

--- A query without the default scopes (e.g. soft_delete's filter).
-- @treturn activerecord.query.Query the query
function ClassMethods:unscoped()
  local q = self:query()
  q.skip_all_scopes = true
  return q
end

--- Runs `fn` in a transaction on the model's backend (`Backend:transaction`).
-- @tparam function fn the work
-- @tparam[opt] table opts `isolation`, `read_only`, `retries`
-- @return `fn`'s results
-- @raise what `Backend:transaction` raises; `ConfigError` without a backend
function ClassMethods:transaction(fn, opts)
  return model_backend(self):transaction(fn, opts)
end

-- Lua value of a field -> what the backend binds.
function ClassMethods:_to_db(name, v)
  local f = self.fields[name]
  if v == nil or v == null then return null end
  if f and f.cast then v = f.cast(v, f) end
  if f and f.to_db then return f.to_db(v, f) end
  return v
end

-- JSON text needs decoding in Lua only when the server cannot tell the C
-- core a column is JSON (no native type, no extended metadata). Asked once.
function ClassMethods:_check_json()
  local db = model_backend(self)
  local text = not (db:supports("native_json") or db:supports("json_extended_metadata"))
  for _, f in ipairs(self.field_list) do
    if f.type == "json" then f.json_text = text end
  end
  local meta = self._meta
  meta.json_checked = true
  M.install_loaders(self, meta) -- knowing now whether JSON arrives decoded
end

--- A row (column -> value) from the backend -> a stored record; each value
-- converted once by its field's type. `held`: for rows from
-- `_execute_json_hashes`, what `_held_keys` answered: row[held[j]] is the
-- hash of what the j-th JSON field's column holds, kept so a change made in
-- place is seen without hashing the value again when it is read.
-- (Each model carries its generated loader as its own `_load` once JSON
-- is checked: `model:_load(row)` is then one call.)
function ClassMethods:_load(row, held)
  local meta = self._meta
  if not meta.json_checked then self:_check_json() end
  return meta.load(self, row, held)
end

--- For a result of `_execute_json_hashes`: which row keys hold the hashes of
-- this model's JSON fields (nil when none). The core hands back one columns
-- table per statement shape, so the last answer is kept with it.
function ClassMethods:_held_keys(columns)
  local meta = self._meta
  local fields = meta.json_fields
  if not fields or not columns then return nil end
  if meta.held_for == columns then return meta.held end
  local held
  for i = 1, #columns do
    local name = columns[i].name
    for j = 1, #fields do
      if fields[j].column == name then
        held = held or {}
        held[j] = -i
      end
    end
  end
  meta.held_for, meta.held = columns, held
  return held
end

--- A new, unsaved record with defaults applied (`User.new{...}` or `User:new{...}`).
-- @tparam table cls the model class
-- @tparam[opt] table attrs field -> value
-- @return the record
-- @raise `ConfigError` for an unknown field or non-table attributes;
--   `ValidationError` for a read-only field given (`readonly = true`: its
--   default, a `before_create` handler or the server sets it) or a
--   generated one
function ClassMethods.new(cls, attrs)
  local meta = cls._meta
  if meta == nil then errors.raise("ConfigError", "Model.new: call it on a model class") end
  return meta.new(attrs)
end

-- A new record from attributes without change tracking: for bulk
-- inserts, where every record is written whole and comes back clean.
function ClassMethods:_build(attrs)
  return self._meta.build(attrs)
end

--- Builds and saves a record (`new` then `InstanceMethods:save`).
-- @tparam table attrs field -> value
-- @tparam[opt] table opts the options of `save`
-- @return the saved record
-- @raise `ValidationError` (with `errors = { field = { messages } }`; nothing
--   is written), `IntegrityError` (duplicate key, foreign key, NOT NULL),
--   `DataError`, `StaleObjectError` (optimistic_lock), any error a
--   before-event raised, and the backend's statement errors
function ClassMethods:create(attrs, opts)
  local inst = self:new(attrs)
  inst:save(opts)
  return inst
end

-- find(id) runs often: without default scopes its SQL is compiled once per
-- model (the primary-key query, limit 1) and only the key changes between
-- calls. Default scopes are functions (a tenant filter may read a
-- current-tenant variable), so a scoped model compiles them at each call.
local function compile_find(model, db)
  local q = model:query():where(query.col(model.primary_key):eq(shapes.PK_SLOT)):limit(1)
  return shapes.compile_shape(db, { [shapes.PK_SLOT] = 1 }, "select", q:_final())
end

local function find_template(self, meta)
  local db = model_backend(self)
  if #meta.default_scopes > 0 then return compile_find(self, db) end
  local t = meta.find
  if t and t.db == db then return t end
  t = compile_find(self, db)
  meta.find = t
  return t
end
ClassMethods._find_template = function(self) return find_template(self, self._meta) end

-- `find`, one function per model (`make_find`): a dot call, `User.find(1)`,
-- is told apart in the failure path only.
local function make_find(dot_call)
  return function(self, id)
    if id == nil or id == null then
      if dot_call and (type(self) ~= "table" or rawget(self, "_meta") == nil) then dot_call() end
      errors.raise("QueryError", self.name .. ".find expects an id (a primary key value), got nil")
    end
    if type(id) == "table" then -- a decoded request body is not a key
      errors.raise("QueryError", self.name .. ".find expects an id (a primary key value), got a table")
    end
    local meta = self._meta
    local t = find_template(self, meta)
    local pkf = self.pk_field
    local to = pkf.to_db
    local key = to and to(id, pkf) or id
    -- one row: its JSON, if read at all, is hashed when first handed out
    -- (hashing while decoding pays off for many rows, see Query:_model_rows)
    local plan, res = t.plan
    if t.n == 2 then -- the usual shape: the key and the limit
      local a, b = t.consts[1], t.consts[2]
      if plan[1] then a = key else b = key end
      res = t.db:execute(t.sql, a, b)
    else
      res = shapes.run_shape(t, { key })
    end
    local row = res.rows[1]
    if not row then return nil end
    if not meta.json_checked then self:_check_json() end
    return meta.load(self, row)
  end
end

--- The record with this primary key, or nil (default scopes apply, as they
-- are when this call runs).
-- @param id the primary key value
-- @return the record or nil
-- @raise the backend's statement errors; `ConfigError` without a backend or
--   when called with a dot (`User.find(1)`)
-- @function ClassMethods:find
ClassMethods.find = make_find(nil)
M.default_find = ClassMethods.find

--- `find` for one model: `dot_call()` raises when `find` was called with a dot.
-- @tparam function dot_call raises the dot-call error
-- @treturn function the model's `find`
M.make_find = make_find

--- Like `find`, raising when the record is absent.
-- @param id the primary key value
-- @return the record
-- @raise `RecordNotFound` (with `model` and `id`); the errors of `find`
function ClassMethods:find_or_fail(id)
  local rec = self:find(id)
  if not rec then
    errors.raise("RecordNotFound", ("%s with %s = %s not found"):format(self.name, self.primary_key,
      tostring(id)), { model = self.name, id = id })
  end
  return rec
end

--- The first record (by primary key) matching `where(...)`, or nil: a
-- table of conditions, an expression, or SQL text with `?` and its values.
-- @param conditions field -> value (see `activerecord.query.Query:where`),
--   an expression (`ar.col("age"):gt(18)`), or SQL text with `?` placeholders
-- @param ... the values of the text's placeholders (always bound)
-- @return the record or nil
-- @raise `QueryError` for a bad column name, a placeholder count that does
--   not match, or another kind of condition; the backend's statement errors
-- @usage User:find_by{ email = e }
-- User:find_by("lower(email) = ?", e:lower())
function ClassMethods:find_by(conditions, ...)
  local t = type(conditions)
  if t ~= "table" and t ~= "string" then
    errors.raise("QueryError", self.name .. ".find_by expects a table of conditions ({ name = ... }) or SQL "
      .. "text with ? and its values (\"lower(email) = ?\", e)")
  end
  if t == "table" and select("#", ...) > 0 then
    errors.raise("QueryError", self.name .. ".find_by: values follow SQL text only (\"col = ?\", v)")
  end
  return self:query():where(conditions, ...):first()
end

-- A duplicate key of this insert: an IntegrityError 1062 (or 1586: a
-- duplicate in a unique key over a prefix), or the ValidationError it was
-- translated into (its `cause`), or the uniqueness check's ValidationError.
local function duplicate(err)
  if type(err) ~= "table" then return false end
  if errors.is(err, "IntegrityError") then return err.code == 1062 or err.code == 1586 end
  if errors.is(err, "ValidationError") then return true end
  return false
end

-- attrs and extra, one table (extra's keys may not repeat attrs').
local function merged(self, what, attrs, extra)
  if type(attrs) ~= "table" or next(attrs) == nil then
    errors.raise("QueryError", ("%s.%s expects a non-empty table of attributes ({ email = ... })"):format(
      self.name, what))
  end
  if extra ~= nil and type(extra) ~= "table" then
    errors.raise("QueryError", ("%s.%s: the extra attributes are a table"):format(self.name, what))
  end
  local all = {}
  for k, v in pairs(attrs) do all[k] = v end
  for k, v in pairs(extra or {}) do
    if attrs[k] ~= nil then
      errors.raise("QueryError", ("%s.%s: '%s' is both in the attributes and the extra ones"):format(
        self.name, what, tostring(k)))
    end
    all[k] = v
  end
  return all
end

-- The record that holds attrs, read past the transaction's snapshot when in
-- one (a locking read sees the row another session just committed).
local function winner(self, attrs, db)
  local q = self:query():where(attrs)
  if db.in_transaction and db:in_transaction() then q = q:for_share() end
  return q:first()
end

-- Creates a record of attrs + extra; a duplicate key reads the row that
-- won instead. Inside a transaction the INSERT runs in a savepoint, so a
-- failed one leaves the outer transaction as it was.
local function create_or_winner(self, attrs, all, opts)
  local db = model_backend(self)
  local ok, rec
  if db.in_transaction and db:in_transaction() then
    ok, rec = pcall(db.transaction, db, function() return self:create(all, opts) end)
  else
    ok, rec = pcall(self.create, self, all, opts)
  end
  if ok then return rec, true end
  if duplicate(rec) then
    local found = winner(self, attrs, db)
    if found then return found, false end
  end
  error(rec, 0)
end

--- The record matching `attrs`, or a new one created with `attrs` and
-- `extra`. Race-safe: when another session inserts the same key first
-- (a duplicate key on a unique key covering `attrs`), the row that won is
-- read and returned; inside a transaction the INSERT runs in a savepoint
-- (a nested `transaction`), so the failed insert leaves the outer
-- transaction usable.
-- @tparam table attrs field -> value, what identifies the record (a
--   unique key should cover these fields)
-- @tparam[opt] table extra field -> value, set only on a record created here
-- @tparam[opt] table opts the options of `save`
-- @return the record
-- @treturn boolean whether it was created by this call
-- @raise `QueryError` for bad arguments; the errors of `create` (a
--   `ValidationError`, or a duplicate key when no row matching `attrs`
--   holds it)
-- @usage local tag = Tag:find_or_create_by({ name = "bug" }, { color = "red" })
function ClassMethods:find_or_create_by(attrs, extra, opts)
  local all = merged(self, "find_or_create_by", attrs, extra)
  local rec = self:query():where(attrs):first()
  if rec then return rec, false end
  return create_or_winner(self, attrs, all, opts)
end

--- Creates a record with `attrs` and `extra`, or, when the INSERT hits a
-- duplicate key, returns the row that holds `attrs` (insert first, read
-- second: one statement when the record is new; a unique key covering
-- `attrs` is what makes this right). Inside a transaction the INSERT runs
-- in a savepoint (a nested `transaction`).
-- @tparam table attrs field -> value
-- @tparam[opt] table extra field -> value, set only on a record created here
-- @tparam[opt] table opts the options of `save`
-- @return the record
-- @treturn boolean whether it was created by this call
-- @raise `QueryError` for bad arguments; the errors of `create` when no row
--   matching `attrs` is there
function ClassMethods:create_or_find_by(attrs, extra, opts)
  local all = merged(self, "create_or_find_by", attrs, extra)
  return create_or_winner(self, attrs, all, opts)
end

--- Every record of the model (default scopes apply).
-- @treturn table an array of records
-- @raise the backend's statement errors
function ClassMethods:all()
  return self:query():all()
end

-- Loaders of a model's records, generated once per model: one table
-- constructor with every slot (no growth, no per-field loop), the
-- metatable set in the same function. `load(model, row, held)` loads one
-- row; `load_rows(rows, held)` every row of a result, in place (one call per
-- result: for the query side's `_wrap`). Column names are plain names
-- (checked at definition): constants in the text.
local MAX_GENERATED = 150

-- The loader body for `row` (code) and the constructor's items.
local function loader_code(model, meta, C, D, F)
  local list, json_fields = model.field_list, meta.json_fields or {}
  local code, items = {}, { "NC", "true", "false", "model", "false" }
  for i = 1, #list do
    local f = list[i]
    C[i], D[i], F[i] = f.column, f.from_db or false, f
    local col = ("row[%q]"):format(f.column)
    local builtin = f.type_spec.builtin
    if f.from_db and builtin and f.type == "boolean" then -- 0/1 from the server, inline
      code[#code + 1] = ("local v%d = %s\nif v%d == 0 then v%d = false elseif v%d == 1 then v%d = true "
        .. "elseif v%d ~= nil then v%d = D[%d](v%d, F[%d]) end\n"):format(i, col, i, i, i, i, i, i, i, i, i)
      items[#items + 1] = "v" .. i
    elseif f.from_db and not (builtin and f.type == "json" and f.json_text == false) then
      code[#code + 1] = ("local v%d = %s\nif v%d ~= nil then v%d = D[%d](v%d, F[%d]) end\n")
        :format(i, col, i, i, i, i, i)
      items[#items + 1] = "v" .. i
    else
      items[#items + 1] = col
    end
  end
  for j = 1, #json_fields do items[#items + 1] = ("held and row[held[%d]] or false"):format(j) end
  return table.concat(code), "setmetatable({ " .. table.concat(items, ", ") .. " }, MT)"
end

local function generic_loader(model, meta)
  local list, json_fields = model.field_list, meta.json_fields or {}
  local n, nj, mt = #list, #json_fields, meta.instance_mt
  return function(_, row, held)
    local inst = { NO_CHANGES, true, false, model, false }
    for i = 1, n do
      local f = list[i]
      local v = row[f.column]
      if v ~= nil and f.from_db then v = f.from_db(v, f) end
      inst[f.slot] = v
    end
    for j = 1, nj do inst[json_fields[j].held] = held and row[held[j]] or false end
    return setmetatable(inst, mt)
  end
end

--- The model's `load(model, row, held)` and `load_rows(rows, held)`.
function M.make_loaders(model, meta)
  if meta.nslots > MAX_GENERATED then
    local load = generic_loader(model, meta)
    return load, function(_, rows, held)
      for r = 1, #rows do rows[r] = load(model, rows[r], held) end
      return rows
    end
  end
  local C, D, F = {}, {}, {}
  local body, make = loader_code(model, meta, C, D, F)
  local code = "local C, D, F, NC, model, MT, setmetatable = ...\n"
    .. "local function load(_, row, held)\n" .. body .. "return " .. make .. "\nend\n"
    .. "local function load_rows(_, rows, held)\nfor r = 1, #rows do\nlocal row = rows[r]\n" .. body
    .. "rows[r] = " .. make .. "\nend\nreturn rows\nend\n"
    .. "return load, load_rows\n"
  return assert(load(code, "=(record loader " .. model.name .. ")", "t"))(C, D, F, NO_CHANGES, model,
    meta.instance_mt, setmetatable)
end

--- Installs the loaders: `meta.load`, `meta.load_rows(model, rows, held)`
-- (what the query side calls for a result) and the model's own `_load` (a
-- raw field: `model:_load(row)` is one call, no dispatch). Until the model
-- knows whether JSON arrives decoded, load_rows asks first.
function M.install_loaders(model, meta)
  local load, load_rows = M.make_loaders(model, meta)
  meta.load = load
  if meta.json_checked then
    meta.load_rows = load_rows
    rawset(model, "_load", load)
  else
    meta.load_rows = function(m, rows, held)
      if not meta.json_checked then model:_check_json() end
      return meta.load_rows(m, rows, held)
    end
  end
end

-- ---- new records, generated once per model ----------------------------------
-- `new` and `_build` as one function per model, unrolled over the fields:
-- each attribute read by its (constant) name, its type's cast inline for the
-- built-in types (an integer cast only touches floats, a float cast only
-- integers, a decimal or datetime text the type just saw is four compares),
-- no per-field table reads of the field's options. Unknown names are
-- looked for first, in one pass over the attributes, before any cast runs.

-- The cast of field i on `v` (neither nil; maybe null) as code.
local function cast_code(f, i, var)
  if not f.cast then return "" end
  local t = f.type_spec
  if t.builtin then
    if f.type == "integer" or f.type == "bigint" then
      return ("if mtype(%s) == 'float' then %s = C[%d](%s, F[%d]) end\n"):format(var, var, i, var, i)
    elseif f.type == "float" then
      return ("if mtype(%s) == 'integer' then %s = %s + 0.0 end\n"):format(var, var, var)
    elseif f.type == "decimal" or f.type == "datetime" or f.type == "timestamp" then
      -- a text in stored form stays as it is and is remembered for the
      -- validation (what the type's cast does, without the call)
      local ring, pat, add = "DT", "DEC", "ADD_DEC"
      if f.type ~= "decimal" then ring, pat, add = "CT", "TIME", "ADD_TIME" end
      return ("if not (%s[1] == %s or %s[2] == %s or %s[3] == %s or %s[4] == %s) and %s ~= NULL then\n"
        .. "if type(%s) == 'string' and find(%s, %s) then %s(%s) else %s = C[%d](%s, F[%d]) end\nend\n")
        :format(ring, var, ring, var, ring, var, ring, var, var, var, var, pat, add, var, var, i, var, i)
    end
  end
  return ("if %s ~= NULL then %s = C[%d](%s, F[%d]) end\n"):format(var, var, i, var, i)
end

local function unknown_name(model, meta)
  return function(inst, k, v)
    setmetatable(inst, meta.instance_mt)[k] = v -- raises the usual error
    errors.raise("ConfigError", ("%s has no field '%s'"):format(model.name, tostring(k)))
  end
end

local function generated_error(model)
  return function(name)
    errors.raise("ValidationError", ("%s.%s is generated by the database"):format(model.name, name),
      { errors = { [name] = { "is generated by the database" } }, model = model.name })
  end
end

-- A read-only field given to `new`/`create`: it is set by its default, an
-- event handler or the server, never by the caller's attributes.
local function readonly_error(model)
  return function(name)
    errors.raise("ValidationError", ("%s.%s is read-only: new/create do not take it (its default, a "
      .. "before_create handler or the server sets it)"):format(model.name, name),
      { errors = { [name] = { "is read-only" } }, model = model.name })
  end
end

local function not_a_table(model, what)
  return function(attrs)
    errors.raise("ConfigError", ("%s%s expects a table of attributes, got %s"):format(model.name, what, type(attrs)))
  end
end

-- `new(attrs)` (tracking) or `build(attrs)` (not: bulk), generated.
local function generate_new(model, meta, tracking)
  local list = model.field_list
  local C, F = {}, {}
  local types = require("activerecord.types")
  local code = { "local model, FIELDS, F, C, NULL, NIL_OLD, NO_CHANGES, MT, unknown, not_table, DT, CT,"
    .. " DEC, ADD_DEC, TIME, ADD_TIME, generated, readonly = ...\n"
    .. "local type, mtype, setmetatable, next, find = type, math.type, setmetatable, next, string.find\n"
    .. "return function(attrs)\n" }
  local items, fill = {}, {}
  for i, f in ipairs(list) do
    C[i], F[i] = f.cast or false, f
    items[i] = ("[%q] = nil"):format(f.name)
  end
  for s = layout.BASE + 1, meta.nslots do fill[#fill + 1] = s > layout.BASE + #list and "false" or "nil" end
  if tracking then
    code[#code + 1] = "local changes = { " .. table.concat(items, ", ") .. " }\n"
  else
    code[#code + 1] = "local changes = NO_CHANGES\n"
  end
  code[#code + 1] = "local inst = { changes, false, false, model, false"
    .. (#fill > 0 and (", " .. table.concat(fill, ", ")) or "") .. " }\n"
  if tracking then
    -- defaults first: an attribute given replaces them (the change keeps the default as old)
    for i, f in ipairs(list) do
      if f.default ~= nil then
        code[#code + 1] = ("do local d = F[%d].default\n"):format(i)
          .. (type(f.default) == "function" and "d = d()\n" or "")
          .. (f.cast and ("d = C[%d](d, F[%d])\n"):format(i, i) or "")
          .. ("inst[%d] = d end\n"):format(f.slot)
      end
    end
    code[#code + 1] = "if attrs == nil then return setmetatable(inst, MT) end\n"
  end
  code[#code + 1] = "if type(attrs) ~= 'table' then not_table(attrs) end\n"
    .. "for k in next, attrs do if FIELDS[k] == nil then unknown(inst, k, attrs[k]) end end\n"
    .. "local v\n"
  for i, f in ipairs(list) do
    local name, slot = ("%q"):format(f.name), f.slot
    if f.generated then -- the server computes it: never given
      code[#code + 1] = ("if attrs[%s] ~= nil then generated(%s) end\n"):format(name, name)
    elseif tracking and f.readonly then -- set by its default, a handler or the server
      code[#code + 1] = ("if attrs[%s] ~= nil then readonly(%s) end\n"):format(name, name)
    elseif tracking then
      local mark = ("changes[%s] = NIL_OLD\n"):format(name)
      if f.default ~= nil then
        mark = ("local o = inst[%d]\nif o == nil then changes[%s] = NIL_OLD else changes[%s] = o end\n")
          :format(slot, name, name)
      end
      code[#code + 1] = ("v = attrs[%s]\nif v ~= nil then\n%sif v == NULL then v = nil end\n%sinst[%d] = v\nend\n")
        :format(name, cast_code(f, i, "v"), mark, slot)
    else
      -- bulk: a missing value takes the declared default (cast like a given
      -- one); the table's own default is the server's to apply
      local nil_code = ""
      if f.default ~= nil and f.default_src == nil then
        nil_code = ("if v == nil then v = F[%d].default\n"):format(i)
          .. (type(f.default) == "function" and "v = v()\n" or "") .. "end\n"
      end
      code[#code + 1] = ("v = attrs[%s]\n%sif v ~= nil then\n%sif v == NULL then v = nil end\ninst[%d] = v\nend\n")
        :format(name, nil_code, cast_code(f, i, "v"), slot)
    end
  end
  code[#code + 1] = "return setmetatable(inst, MT)\nend\n"
  local chunk = assert(load(table.concat(code), ("=(%s %s)"):format(tracking and "new" or "build", model.name), "t"))
  return chunk(model, model.fields, F, C, null, NIL_OLD, NO_CHANGES, meta.instance_mt, unknown_name(model, meta),
    not_a_table(model, tracking and ".new" or ":insert_all row"), types.decimal_texts, types.canonical_times,
    types.DECIMAL_TEXT, types.remember_decimal, types.CANONICAL_TIME, types.remember_time, generated_error(model),
    readonly_error(model))
end

--- The model's `new(attrs)` and `build(attrs)` (see generate_new).
function M.make_new(model, meta)
  if meta.nslots > MAX_GENERATED then
    return M.generic_new(model, meta, true), M.generic_new(model, meta, false)
  end
  return generate_new(model, meta, true), generate_new(model, meta, false)
end

-- The same without generated code, for models with very many fields.
function M.generic_new(model, meta, tracking)
  local list, fields = model.field_list, model.fields
  local unknown, not_table = unknown_name(model, meta),
    not_a_table(model, tracking and ".new" or ":insert_all row")
  local generated, readonly = generated_error(model), readonly_error(model)
  return function(attrs)
    local changes = tracking and {} or NO_CHANGES
    local inst = { changes, false, false, model, false }
    for _, f in ipairs(meta.json_fields or {}) do inst[f.held] = false end
    if tracking then
      for _, f in ipairs(meta.defaults) do
        local d = f.default
        if type(d) == "function" then d = d() end
        if f.cast then d = f.cast(d, f) end
        inst[f.slot] = d
      end
      if attrs == nil then return setmetatable(inst, meta.instance_mt) end
    end
    if type(attrs) ~= "table" then not_table(attrs) end
    for k in next, attrs do if fields[k] == nil then unknown(inst, k, attrs[k]) end end
    for i = 1, #list do
      local f = list[i]
      local v = attrs[f.name]
      if v ~= nil and f.generated then generated(f.name) end
      if v ~= nil and tracking and f.readonly then readonly(f.name) end
      if v == nil and not tracking and f.default ~= nil and f.default_src == nil then
        v = f.default
        if type(v) == "function" then v = v() end
      end
      if v ~= nil then
        if f.cast and v ~= null then v = f.cast(v, f) end
        if v == null then v = nil end
        if tracking then
          local o = inst[f.slot]
          changes[f.name] = o == nil and NIL_OLD or o
        end
        inst[f.slot] = v
      end
    end
    return setmetatable(inst, meta.instance_mt)
  end
end

return M