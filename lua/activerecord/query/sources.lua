--- Query sources and modifiers: `from`, joins, common table expressions,
-- set operations (UNION, INTERSECT, EXCEPT), row locks and the statement
-- time limit.
-- One job: the builder methods that say where rows come from and how they
-- are read; they add to `Query` from `query.builder`.
-- @module activerecord.query.sources
local nodes = require("activerecord.query.nodes")
local expr = require("activerecord.query.expr")
local builder = require("activerecord.query.builder")
local options = require("activerecord.options")

local Query = builder.Query
local unpack = table.unpack
local query_error, show, node = nodes.query_error, nodes.show, nodes.node
local is_expr, is_query, check_name = nodes.is_expr, nodes.is_query, nodes.check_name
local as_operand, sorted_keys, all_of = expr.as_operand, expr.sorted_keys, expr.all_of
local with, set = builder.with, builder.set

-- ---- sources: from, joins, CTEs, set operations --------------------------

--- Reads from another table or CTE (`from("name"[, alias])`) or a derived
-- table (`from(query, alias)`). `from_cte` is the same method.
-- @tparam string|Query source the source
-- @tparam[opt] string alias required for a query
-- @treturn Query the new query
-- @raise `QueryError` for a bad name or a subquery without an alias
function Query:from(source, alias)
  local q = self:clone()
  if alias ~= nil then check_name(alias, "alias") end
  if is_query(source) then
    if not alias then query_error("from(subquery) needs an alias") end
    q._from_query, q.table = source, nil
  else
    q.table, q._from_query = check_name(source, "table name", true), nil
  end
  q.table_alias = alias
  q._compound = nil
  return q
end
Query.from_cte = Query.from

-- Join targets: "table", a query (derived table, alias required) or
-- { table = "name" | query, as = "alias" }.
local JOIN_TARGET_KEYS = { table = true, as = true, [1] = true, [2] = true }

local function join_target(target, alias)
  if type(target) == "table" and not is_query(target) and not is_expr(target) then
    for k in next, target do
      if not JOIN_TARGET_KEYS[k] then query_error("a join target table takes table and as only, got " .. show(k)) end
    end
    target, alias = target.table or target[1], target.as or target[2] or alias
  end
  if alias ~= nil then check_name(alias, "alias") end
  if is_query(target) or (is_expr(target) and target.kind == "json_table") then
    if not alias then query_error("joining a subquery or JSON_TABLE needs an alias") end
    return { query = is_query(target) and target or nil, source = is_expr(target) and target or nil, alias = alias }
  end
  return { table = check_name(target, "table name", true), alias = alias }
end

-- ON: raw SQL with ?, an expression, or { ["posts.user_id"] = "users.id" }
-- (string values are column names; use ar.value(x) for a bound value).
local function join_on(on, ...)
  if on == nil then return nil end
  if type(on) == "string" then return expr.raw(on, ...) end
  if is_expr(on) then return on end
  if type(on) ~= "table" then query_error("join ON must be SQL text, an expression or a table of columns") end
  local items = {}
  for i, k in ipairs(sorted_keys(on, "join ON")) do
    local v = on[k]
    local right = type(v) == "string" and expr.col(v) or as_operand(v)
    items[i] = node({ kind = "eq", left = expr.col(k), right = right })
  end
  return all_of(items)
end

local JOIN_KINDS = { inner = "INNER JOIN", left = "LEFT JOIN", right = "RIGHT JOIN", cross = "CROSS JOIN" }

local function relation_join(self, kind, name)
  local rels = self.model and self.model.relations
  local rel = type(name) == "string" and rels and rels[name]
  if not rel then return nil end
  local spec = rel:join_spec(kind)
  local j = join_target(spec.table, spec.alias)
  j.on = spec.on
  return j
end

--- Adds a join. With `on` omitted, `target` may name a relation of the
-- model (`Post:query():join("inner", "author")`).
-- @tparam string kind `"inner"`, `"left"`, `"right"` or `"cross"`
-- @tparam string|Query|table target a table, a query (alias required),
--   `ar.json_table(...)`, or `{ table =, as = }`
-- @param[opt] on SQL text with `?` (values follow), an expression, or
--   `{ ["posts.user_id"] = "users.id" }` (string values are columns; use
--   `ar.value(x)` for a bound value)
-- @param ... values for the placeholders of a text `on`
-- @treturn Query the new query
-- @raise `QueryError` for a bad kind, target or ON, a missing ON, an ON on a
--   cross join, or a has_many_through relation
function Query:join(kind, target, on, ...)
  if not JOIN_KINDS[kind] then query_error("join kind must be inner, left, right or cross, got " .. show(kind)) end
  local j = on == nil and relation_join(self, kind, target) or nil
  if not j then
    j = join_target(target)
    j.on = join_on(on, ...)
  end
  if kind == "cross" and j.on then query_error("a cross join takes no ON") end
  if kind ~= "cross" and not j.on then
    query_error(("join %s needs an ON (SQL text, a table of columns) or a relation name"):format(show(target)))
  end
  j.kind = JOIN_KINDS[kind]
  return with(self, "_joins", j)
end

--- `join("inner", ...)`.
-- @param target the target (see `join`)
-- @param[opt] on the ON
-- @param ... values for the ON
-- @treturn Query the new query
function Query:joins(target, on, ...) return self:join("inner", target, on, ...) end
--- `join("inner", ...)`.
-- @param target the target (see `join`)
-- @param[opt] on the ON
-- @param ... values for the ON
-- @treturn Query the new query
function Query:inner_joins(target, on, ...) return self:join("inner", target, on, ...) end
--- `join("left", ...)`.
-- @param target the target (see `join`)
-- @param[opt] on the ON
-- @param ... values for the ON
-- @treturn Query the new query
function Query:left_joins(target, on, ...) return self:join("left", target, on, ...) end
--- `join("right", ...)`.
-- @param target the target (see `join`)
-- @param[opt] on the ON
-- @param ... values for the ON
-- @treturn Query the new query
function Query:right_joins(target, on, ...) return self:join("right", target, on, ...) end
--- `join("cross", ...)`.
-- @param target the target (see `join`)
-- @tparam[opt] string alias its alias
-- @treturn Query the new query
function Query:cross_joins(target, alias)
  if alias ~= nil then target = { table = target, as = alias } end
  return self:join("cross", target)
end

local CTE_KEYS = { columns = true, recursive = true }

--- Adds a common table expression: `WITH name [(columns)] AS (body)`.
-- @tparam string name the CTE's name
-- @tparam Query|Expr|string body a query, `ar.raw(sql, ...)` or SQL text
-- @tparam[opt] table opts `columns` (a list of names), `recursive = true`
-- @treturn Query the new query; compiling raises `CapabilityError` on a
--   server without (recursive) CTEs
-- @raise `QueryError` for a bad name or body; `ConfigError` for an unknown option
function Query:with_cte(name, body, opts)
  opts = opts or {}
  options.check(opts, CTE_KEYS, "with_cte")
  if type(body) == "string" then body = expr.raw(body) end
  if not (is_query(body) or (is_expr(body) and body.kind == "raw")) then
    query_error("with_cte expects a query, ar.raw(sql, ...) or SQL text")
  end
  local cols = opts.columns
  if cols ~= nil then
    if type(cols) ~= "table" or #cols == 0 then query_error("with_cte columns must be a non-empty list") end
    for _, c in ipairs(cols) do check_name(c, "CTE column") end
  end
  return with(self, "_ctes", { name = check_name(name, "CTE name"), body = body, columns = cols,
                               recursive = opts.recursive and true or false })
end

local SET_OPS = { union = "UNION", union_all = "UNION ALL", intersect = "INTERSECT", except = "EXCEPT" }

-- A compound query keeps the first member's model and backend, so its rows
-- load like the first's; order_by/limit on it apply to the whole.
local function set_operation(self, op, other)
  if not is_query(other) then query_error(op:lower() .. " expects a query") end
  local plain = self._compound and #self._where == 0 and #self._order == 0 and not self._limit
    and not self._offset and #self._select == 0 and #self._joins == 0 and #self._ctes == 0
  local parts = plain and { unpack(self._compound) } or { { query = self } }
  parts[#parts + 1] = { op = op, query = other }
  local q = builder.new{ model = self.model, backend = self.backend, resolve = self.resolve }
  q._compound = parts
  q.after_load = self.after_load
  return setmetatable(q, builder.class_of(self))
end

--- `UNION` with another query (the first query's model and backend are kept;
-- `order_by`/`limit` on the result apply to the whole).
-- @function Query:union
-- @tparam Query other the other query
-- @treturn Query the compound query
-- @raise `QueryError` when `other` is not a query; `CapabilityError` (when it
--   runs) for INTERSECT/EXCEPT on a server without them

--- `UNION ALL` with another query (the first query's model and backend are kept;
-- `order_by`/`limit` on the result apply to the whole).
-- @function Query:union_all
-- @tparam Query other the other query
-- @treturn Query the compound query
-- @raise `QueryError` when `other` is not a query; `CapabilityError` (when it
--   runs) for INTERSECT/EXCEPT on a server without them

--- `INTERSECT` with another query (the first query's model and backend are kept;
-- `order_by`/`limit` on the result apply to the whole).
-- @function Query:intersect
-- @tparam Query other the other query
-- @treturn Query the compound query
-- @raise `QueryError` when `other` is not a query; `CapabilityError` (when it
--   runs) for INTERSECT/EXCEPT on a server without them

--- `EXCEPT` with another query (the first query's model and backend are kept;
-- `order_by`/`limit` on the result apply to the whole).
-- @function Query:except
-- @tparam Query other the other query
-- @treturn Query the compound query
-- @raise `QueryError` when `other` is not a query; `CapabilityError` (when it
--   runs) for INTERSECT/EXCEPT on a server without them

for method, op in pairs(SET_OPS) do
  Query[method] = function(self, other) return set_operation(self, op, other) end
end

-- ---- locking -------------------------------------------------------------

local LOCK_OPTIONS = { nowait = true, skip_locked = true }

-- for_update{ nowait = true } / for_share{ skip_locked = true }
local function lock_opts(mode, opts)
  if opts ~= nil and type(opts) ~= "table" then
    query_error("for_" .. mode .. " expects { nowait =, skip_locked = }")
  end
  for k, v in pairs(opts or {}) do
    if not LOCK_OPTIONS[k] then options.check(opts, LOCK_OPTIONS, "for_" .. mode) end
    if type(v) ~= "boolean" then query_error(("for_%s: option '%s' must be a boolean"):format(mode, k)) end
  end
  return { mode = mode, nowait = opts and opts.nowait, skip_locked = opts and opts.skip_locked }
end

--- `FOR UPDATE`: locks the rows read until the transaction ends.
-- @tparam[opt] table opts `nowait = true` or `skip_locked = true` (capabilities `nowait`, `skip_locked`)
-- @treturn Query the new query
function Query:for_update(opts) return set(self, "_lock", lock_opts("update", opts)) end
--- `FOR SHARE` (or `LOCK IN SHARE MODE` where the server lacks `for_share`).
-- @tparam[opt] table opts `nowait = true` or `skip_locked = true`
-- @treturn Query the new query
function Query:for_share(opts) return set(self, "_lock", lock_opts("share", opts)) end

-- A server-side time limit for this statement (seconds): MariaDB's
-- max_statement_time, MySQL's MAX_EXECUTION_TIME hint. Exceeding it raises
-- QueryTimeout; a server without the feature raises CapabilityError.
function Query:timeout(seconds)
  -- NaN fails every comparison, so test for the valid range
  if type(seconds) ~= "number" or not (seconds > 0 and seconds <= 86400) then
    query_error("timeout expects a positive number of seconds")
  end
  return set(self, "_timeout", seconds)
end

return {}
