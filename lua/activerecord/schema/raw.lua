--- Raw SQL fragments of the schema DSL: `schema.raw(...)` and the query's
-- `ar.raw(...)` without parameters (what introspection hands back), both
-- recognised by identity and both checked for tokens that could end the
-- statement or hide the rest of it. `activerecord.schema` re-exports these.
-- @module activerecord.schema.raw
local errors = require("activerecord.errors")
local nodes = require("activerecord.query.nodes")

local M = {}

-- Raw fragments are tables whose SQL lives in this private weak map, so
-- nobody can forge one (setmetatable on a plain table gives no entry) or
-- change its text after it was checked.
local raw_sql = setmetatable({}, { __mode = "k" })

local raw_mt = {
  __name = "activerecord.schema.raw",
  __metatable = "activerecord.schema.raw",
  __index = function(self, key)
    if key == "sql" then return raw_sql[self] end
    return nil
  end,
  __newindex = function()
    error("a raw SQL fragment is read-only", 2)
  end,
  __tostring = function(self) return "raw(" .. raw_sql[self] .. ")" end,
}

-- Tokens that could end the statement or hide the rest of it; a raw
-- fragment is an expression, never a second statement.
local FORBIDDEN_IN_RAW = { ";", "--", "#", "/*", "*/", "\0" }

-- The fragment with the insides of its quoted strings and identifiers
-- blanked, so `CONCAT('#', sku)` passes while `1; DROP ...` does not; nil
-- when a quote is left open. Only for text without backslashes: a
-- backslash escapes a quote or not depending on the session's sql_mode
-- (NO_BACKSLASH_ESCAPES), so where a string ends would be a guess.
local function outside_quotes(sql)
  if sql:find("\\", 1, true) then return sql end
  local out, i, n = {}, 1, #sql
  while i <= n do
    local s = sql:find("['\"`]", i)
    if not s then
      out[#out + 1] = sql:sub(i)
      break
    end
    out[#out + 1] = sql:sub(i, s - 1)
    local q, j = sql:sub(s, s), s + 1
    while true do -- a doubled quote stays inside
      local e = sql:find(q, j, true)
      if not e then return nil end
      if sql:sub(e + 1, e + 1) ~= q then
        i = e + 1
        break
      end
      j = e + 2
    end
    out[#out + 1] = q .. q
  end
  return table.concat(out)
end

-- The problem with a fragment's text, or nil when it is acceptable.
local function fragment_problem(sql, what)
  if type(sql) ~= "string" or not sql:find("%S") then
    return what .. " must be a non-empty string, got " .. type(sql)
  end
  if sql:find("\0", 1, true) then return string.format("%s may not contain NUL: %q", what, sql) end
  local bare = outside_quotes(sql)
  if not bare then return string.format("%s has a quote left open: %q", what, sql) end
  for _, token in ipairs(FORBIDDEN_IN_RAW) do
    if bare:find(token, 1, true) then
      return string.format("%s may not contain %q outside a quoted string: %q", what, token, sql)
    end
  end
  return nil
end

--- Checks an SQL fragment the caller vouches for: no statement separator or
-- comment (outside quoted strings) that could end the statement or hide the
-- rest of it, no quote left open, no NUL.
-- @tparam string sql the fragment
-- @tparam[opt] string what what it is, for the message
-- @treturn string the fragment, unchanged
-- @raise `QueryError` for a non-string or a forbidden token
function M.check_fragment(sql, what)
  local problem = fragment_problem(sql, what or "raw SQL fragment")
  if problem then errors.raise("QueryError", problem) end
  return sql
end

--- Marks `sql` as an explicit raw fragment (e.g. `schema.raw("CURRENT_TIMESTAMP(6)")`)
-- for defaults, checks, `on_update` and generated columns.
-- @tparam string sql the fragment
-- @treturn table the fragment (cannot be forged or changed afterwards)
-- @raise `QueryError` as `check_fragment`
function M.raw(sql)
  M.check_fragment(sql)
  local r = setmetatable({}, raw_mt)
  raw_sql[r] = sql
  return r
end

-- The query's raw node (`ar.raw(text)`), told by its private metatable,
-- never by fields a caller could forge: its text when it has no parameters;
-- nil, "has parameters" for one with parameters; nil for anything else.
local function query_raw_text(x)
  if not nodes.is_expr(x) or rawget(x, "kind") ~= "raw" then return nil end
  local params = rawget(x, "params")
  if type(params) == "table" and (params.n or #params) > 0 then return nil, "has parameters" end
  return rawget(x, "sql")
end

--- Whether `x` is a raw fragment the schema DSL accepts: made by `raw`, or
-- the query's `ar.raw(...)` without parameters.
-- @param x any value
-- @treturn boolean
function M.is_raw(x)
  if type(x) ~= "table" then return false end
  if raw_sql[x] ~= nil then return true end
  return type(query_raw_text(x)) == "string"
end

--- The SQL text of a raw fragment; an `ar.raw` fragment's text is checked
-- (as `check_fragment`) each time it is read.
-- @param x a value
-- @treturn ?string the text, or nil for anything but a raw fragment
-- @raise `QueryError` for an `ar.raw` text with a forbidden token
function M.raw_text(x)
  if type(x) ~= "table" then return nil end
  local text = raw_sql[x]
  if text ~= nil then return text end
  text = query_raw_text(x)
  if type(text) == "string" then return M.check_fragment(text, "ar.raw fragment") end
  return nil
end

--- The `raw` fragment for `x`: `x` itself when made by `raw`, a new one with
-- the same text for an `ar.raw(...)` without parameters (checked now, and
-- frozen from then on).
-- @param x any value
-- @treturn ?table the fragment, or nil and a reason (`x` is no raw fragment,
--   an `ar.raw` with parameters, or a forbidden token in its text)
function M.as_raw(x)
  if type(x) ~= "table" then return nil, "not a raw fragment" end
  if raw_sql[x] ~= nil then return x end
  local text, why = query_raw_text(x)
  if text == nil then return nil, why and ("ar.raw(...) " .. why) or "not a raw fragment" end
  local problem = fragment_problem(text, "ar.raw fragment")
  if problem then return nil, problem end
  local r = setmetatable({}, raw_mt)
  raw_sql[r] = text
  return r
end

return M
