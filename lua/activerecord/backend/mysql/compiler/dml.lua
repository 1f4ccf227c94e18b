-- Data-changing statements: UPDATE and DELETE of a query's rows (its
-- conditions, joins, order and limit), and INSERT text for a table, columns
-- and a number of rows (IGNORE, ON DUPLICATE KEY UPDATE, RETURNING).
-- One job: compile these statements; every value is a parameter.
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local cx = require("activerecord.backend.mysql.compiler.expr")
local sel = require("activerecord.backend.mysql.compiler.select")

local M = {}

local operand = cx.operand
local where_sql, order_sql, source_sql, joins_sql, source_name =
  sel.where_sql, sel.order_sql, sel.source_sql, sel.joins_sql, sel.source_name

local function query_error(msg)
  errors.raise("QueryError", msg)
end

local function check_dml(q, what)
  if q._compound or q._from_query or (q._ctes and #q._ctes > 0) or (q._group and #q._group > 0) then
    query_error(what .. " works on a table query (no set operations, derived tables, CTEs or grouping)")
  end
end

-- Multi-table forms (joins) take no ORDER BY / LIMIT in MySQL.
local function dml_tail(ctx, q)
  local sql = where_sql(ctx, q)
  if q._joins and #q._joins > 0 then return sql end
  sql = sql .. order_sql(ctx, q)
  if q._limit then sql = sql .. " LIMIT " .. ctx:param(q._limit) end
  return sql
end

-- UPDATE t [joins] SET col = ?, ... WHERE ...
function M.update(dialect, q, assignments)
  check_dml(q, "update_all")
  local ctx = cx.new_ctx(dialect, q.resolve)
  local target = source_sql(ctx, q) .. joins_sql(ctx, q)
  local sets = {}
  for i, a in ipairs(assignments) do
    sets[i] = ctx:column(a.column) .. " = " .. operand(ctx, a.value)
  end
  if #sets == 0 then query_error("update_all needs at least one column to set") end
  return "UPDATE " .. target .. " SET " .. table.concat(sets, ", ") .. dml_tail(ctx, q), ctx.params
end

-- DELETE FROM t WHERE ... [RETURNING ...]; with joins DELETE t FROM t JOIN ...
function M.delete(dialect, q, opts)
  check_dml(q, "delete_all")
  local ctx = cx.new_ctx(dialect, q.resolve)
  local head = "DELETE FROM "
  if q._joins and #q._joins > 0 then head = "DELETE " .. dialect:quote_qualified(source_name(q)) .. " FROM " end
  local sql = head .. source_sql(ctx, q) .. joins_sql(ctx, q) .. dml_tail(ctx, q)
  if opts and opts.returning then
    sql = sql .. dialect:returning_clause(opts.returning, "delete_returning", "DELETE ... RETURNING")
  end
  return sql, ctx.params
end

-- ON DUPLICATE KEY UPDATE in the form this server prefers; `key` (a
-- generated key's column) adds `key = LAST_INSERT_ID(key)`, so the insert id
-- names the row whether it was inserted, updated or left unchanged.
local function upsert_clause(dialect, table_name, update, key)
  if type(update) ~= "table" or #update == 0 then
    query_error("upsert.update must be a non-empty list of column names")
  end
  local alias_form = dialect:supports("upsert_alias")
  -- The row alias must not clash with the table's own name.
  local bare = table_name:match("([^.]+)$")
  local alias = bare == "new" and "new_row" or "new"
  local sets = {}
  for i, col in ipairs(update) do
    local q = dialect:quote_identifier(col)
    if alias_form then
      sets[i] = q .. " = " .. alias .. "." .. q
    else
      sets[i] = q .. " = VALUES(" .. q .. ")"
    end
  end
  if key then
    local q = dialect:quote_identifier(key)
    sets[#sets + 1] = q .. " = LAST_INSERT_ID(" .. q .. ")"
  end
  local prefix = alias_form and (" AS " .. alias) or ""
  return prefix .. " ON DUPLICATE KEY UPDATE " .. table.concat(sets, ", ")
end

local INSERT_OPTIONS = { ignore = true, upsert = true, returning = true }
local UPSERT_OPTIONS = { update = true, key = true }

-- INSERT [IGNORE] INTO t (cols) VALUES (?, ...), ... with `nrows` tuples;
-- opts: ignore, upsert = { update = {...}, key = "id" }, returning = {...} | "*".
-- Returns the text only: every value is a parameter.
function M.insert(dialect, table_name, columns, nrows, opts)
  opts = opts or {}
  options.check(opts, INSERT_OPTIONS, "insert")
  local n = math.tointeger(nrows or 1)
  if not n or n < 1 then query_error("an INSERT needs at least one row") end
  if type(columns) ~= "table" then query_error("INSERT columns must be a list of names") end
  -- no columns: a row of defaults, `() VALUES ()`
  local cols = #columns == 0 and "" or dialect:quote_list(columns, "INSERT columns")
  local tuple = #columns == 0 and "()" or "(" .. dialect:placeholders(#columns) .. ")"
  local parts = {
    opts.ignore and "INSERT IGNORE INTO " or "INSERT INTO ",
    dialect:quote_qualified(table_name), " (", cols, ") VALUES ",
    string.rep(tuple, n, ", "),
  }
  if opts.upsert then
    if type(opts.upsert) ~= "table" then query_error("upsert must be { update = {...} }") end
    options.check(opts.upsert, UPSERT_OPTIONS, "upsert")
    dialect:require("upsert", "ON DUPLICATE KEY UPDATE")
    parts[#parts + 1] = upsert_clause(dialect, table_name, opts.upsert.update, opts.upsert.key)
  end
  if opts.returning then
    parts[#parts + 1] = dialect:returning_clause(opts.returning, "returning", "INSERT ... RETURNING")
  end
  return table.concat(parts)
end


return M
