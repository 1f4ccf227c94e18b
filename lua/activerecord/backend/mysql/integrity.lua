--- One job: what an `IntegrityError` violated. When a statement fails with
-- one, the backend (execute.lua) calls `enrich` once, at the point it
-- raises: the server's message is parsed here and nowhere else, and the
-- error gets `key` (the violated key's or constraint's name), `fields` (its
-- columns, where known) and `table` (the table they belong to). A statement
-- that succeeds costs nothing here.
--
-- * 1062, 1586 "Duplicate entry 'v' for key 'uq'" (MySQL 8.0.19+: 't.uq'):
--   `key` the index, `fields` its columns (`db:indexes`);
-- * 1451, 1452 "... a foreign key constraint fails (`db`.`t`, CONSTRAINT
--   `fk` FOREIGN KEY (`c`) REFERENCES ...)": `key` the constraint, `table`
--   the child table, `fields` its columns (`db:foreign_keys`, else as the
--   message names them), `ref_table`;
-- * 1048 "Column 'c' cannot be null", 1364 "Field 'c' doesn't have a
--   default value": `key` and `fields` the column;
-- * 4025 (MariaDB) "CONSTRAINT `ck` failed for `db`.`t`" (a column's own
--   check is named `t.c` there, `c` in the table), 3819 (MySQL) "Check
--   constraint 'ck' is violated.": `key` the check as `db:checks` names it,
--   `fields` the columns its condition names.
--
-- The table of a duplicate key, a NOT NULL column or a MySQL check comes
-- from the statement (INSERT/REPLACE INTO t, UPDATE t); a key or column not
-- found in that table leaves `table` and `fields` unset (a multi-table
-- UPDATE). Introspection goes through the backend's schema cache (one read
-- per table and schema version; not shown to the `log` hook); a failure to
-- read it leaves the fields it would have given unset, never replaces the error.
-- @module activerecord.backend.mysql.integrity
local M = {}

local type, ipairs, pcall, setmetatable = type, ipairs, pcall, setmetatable

-- ---- names -----------------------------------------------------------------

-- A backquoted identifier at `i` of `s` (doubled backquotes undone) and the
-- position after it; or a bare one.
local function read_ident(s, i)
  if s:byte(i) == 96 then
    local out, j = {}, i + 1
    while true do
      local e = s:find("`", j, true)
      if not e then return nil end
      out[#out + 1] = s:sub(j, e - 1)
      if s:byte(e + 1) == 96 then
        out[#out + 1] = "`"
        j = e + 2
      else
        return table.concat(out), e + 1
      end
    end
  end
  local name = s:match("^[%w_$]+", i)
  if not name then return nil end
  return name, i + #name
end

-- A table reference at `i`: "t" or "db", "t" (`db`.`t`), and the position after it.
local function read_table_ref(s, i)
  local a, j = read_ident(s, i)
  if not a then return nil end
  if s:byte(j) == 46 then -- "."
    local b, k = read_ident(s, j + 1)
    if b then return b, k, a end
  end
  return a, j, nil
end

-- Keywords between INSERT/REPLACE/UPDATE and the table.
local MODIFIERS = { LOW_PRIORITY = true, DELAYED = true, HIGH_PRIORITY = true, IGNORE = true, INTO = true }

-- The table an INSERT, REPLACE or UPDATE writes (its first table), and its
-- database when named: from the statement's text (leading comments skipped).
local function written_table(sql)
  if type(sql) ~= "string" then return nil end
  local i = 1
  while true do
    i = sql:find("[^%s]", i)
    if not i then return nil end
    if sql:find("^/%*", i) then
      local e = sql:find("*/", i + 2, true)
      if not e then return nil end
      i = e + 2
    elseif sql:find("^#", i) or sql:find("^%-%-%s", i) then
      local e = sql:find("\n", i, true)
      if not e then return nil end
      i = e + 1
    else
      break
    end
  end
  local verb = sql:match("^%a+", i)
  verb = verb and verb:upper()
  if verb ~= "INSERT" and verb ~= "REPLACE" and verb ~= "UPDATE" then return nil end
  i = i + #verb
  while true do
    i = sql:find("[^%s]", i)
    if not i then return nil end
    local w = sql:match("^[%a_]+", i)
    if not (w and MODIFIERS[w:upper()] and sql:find("^[%s`]", i + #w)) then break end
    i = i + #w
  end
  local tbl, _, schema = read_table_ref(sql, i)
  return tbl, schema
end

-- The name the backend's introspection and the model layer use for a
-- table: bare in the connection's database, "db.t" in another.
local function table_name(db, tbl, schema)
  if not tbl then return nil end
  local current = db.connect_opts and db.connect_opts.database
  if schema == nil or schema == current then return tbl end
  return schema .. "." .. tbl
end

-- Introspection that may fail (a dropped table, a lost connection): nil then.
local function try(db, method, name)
  if type(db[method]) ~= "function" then return nil end
  local ok, res = pcall(db[method], db, name)
  if ok then return res end
  return nil
end

local function copy(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  return out
end

-- ---- the kinds ---------------------------------------------------------------

-- 1062 / 1586: the index and its columns.
local function duplicate(db, err)
  local key = err.message:match("for key '(.*)'%s*$")
  if not key then return end
  local tbl, schema = written_table(err.sql)
  local name = table_name(db, tbl, schema)
  if tbl and key:sub(1, #tbl + 1) == tbl .. "." then key = key:sub(#tbl + 2) end -- MySQL 8: 't.uq'
  err.key = key
  if not name then return end
  for _, ix in ipairs(try(db, "indexes", name) or {}) do
    if ix.name == key then
      err.table, err.fields = name, copy(ix.columns)
      return
    end
  end
end

-- 1451 / 1452: the constraint, the child table and its columns.
local function foreign_key(db, err)
  local msg = err.message
  local at = msg:find("(", 1, true)
  if not at then return end
  local tbl, j, schema = read_table_ref(msg, at + 1)
  local fk_at = msg:find("CONSTRAINT ", at, true)
  if not fk_at then return end
  local key, k = read_ident(msg, fk_at + #"CONSTRAINT ")
  if not key then return end
  err.key = key
  local name = j and table_name(db, tbl, schema)
  if not name then return end
  err.table = name
  for _, fk in ipairs(try(db, "foreign_keys", name) or {}) do
    if fk.name == key then
      err.fields, err.ref_table = copy(fk.columns), fk.ref_table
      return
    end
  end
  -- not introspected: the columns as the message names them (it may be cut short)
  local list = msg:match("^%s*FOREIGN KEY %((.-)%)", k)
  if list then
    local cols, p = {}, 1
    while true do
      p = list:find("`", p, true)
      if not p then break end
      local c, q = read_ident(list, p)
      if not c then return end
      cols[#cols + 1], p = c, q
    end
    if #cols > 0 then err.fields = cols end
  end
end

-- 1048 / 1364: the column.
local function not_null(db, err)
  local col = err.message:match("^Column '(.*)' cannot be null") or err.message:match("^Field '(.*)' doesn't have")
  if not col then return end
  err.key, err.fields = col, { col }
  local tbl, schema = written_table(err.sql)
  local name = table_name(db, tbl, schema)
  if name and type(db.column_exists) == "function" then
    local ok, exists = pcall(db.column_exists, db, name, col)
    if ok and exists then err.table = name end
  end
end

-- The columns of `tbl` that a check's condition names (as `col`).
local function check_columns(db, name, check)
  local cols = try(db, "columns", name)
  if not cols then return nil end
  local known, out, seen = {}, {}, {}
  for _, c in ipairs(cols) do known[c.name:lower()] = c.name end
  local expr, p = check.expr or "", 1
  while true do
    p = expr:find("`", p, true)
    if not p then break end
    local c, q = read_ident(expr, p)
    if not c then break end
    local col = known[c:lower()]
    if col and not seen[col] then out[#out + 1], seen[col] = col, true end
    p = q
  end
  return #out > 0 and out or nil
end

-- 4025 / 3819: the check and the columns its condition names.
local function check(db, err)
  local msg = err.message
  local key, tbl, schema
  local at = msg:find("^CONSTRAINT ")
  if at then -- MariaDB: CONSTRAINT `ck` failed for `db`.`t`
    local j
    key, j = read_ident(msg, #"CONSTRAINT " + 1)
    if not key then return end
    local f = msg:find(" failed for ", j, true)
    if f then
      local t, _, s = read_table_ref(msg, f + #" failed for ")
      tbl, schema = t, s
    end
  else -- MySQL: Check constraint 'ck' is violated.
    key = msg:match("^Check constraint '(.*)' is violated")
    if not key then return end
    tbl, schema = written_table(err.sql)
  end
  -- a column's own check: MariaDB names it `t.c` in the message, `c` in the table
  if tbl and key:sub(1, #tbl + 1) == tbl .. "." then key = key:sub(#tbl + 2) end
  err.key = key
  local name = table_name(db, tbl, schema)
  if not name then return end
  err.table = name
  for _, c in ipairs(try(db, "checks", name) or {}) do
    if c.name == key then
      err.fields = check_columns(db, name, c)
      return
    end
  end
end

local BY_CODE = {
  [1062] = duplicate, [1586] = duplicate,
  [1451] = foreign_key, [1452] = foreign_key,
  [1048] = not_null, [1364] = not_null,
  [4025] = check, [3819] = check,
}

--- Adds `key`, `fields` and `table` to an `IntegrityError` from its message
-- (see the module's table); other errors, and messages not in a known
-- form, are left as they are. Called by the backend where it raises.
-- @tparam table db the backend (its introspection gives key columns)
-- @tparam table err the error object
-- @treturn table err
function M.enrich(db, err)
  local parse = BY_CODE[err.code]
  if parse and type(err.message) == "string" and err.key == nil then
    -- the look-ups are the library's, not the caller's: kept out of its log
    -- hook (whose last event stays the failed statement); what they read
    -- lands in the backend's schema cache
    if db.log then db = setmetatable({ log = false }, { __index = db, __newindex = db }) end
    local ok = pcall(parse, db, err)
    if not ok then err.fields = nil end
  end
  return err
end

M.written_table = written_table

return M
