--- Schema dump: the current schema of a database as the text of a Lua
-- migration file (`ar.schema.dump(db)`), which the migrator runs like any
-- other and which recreates the same tables, columns, indexes and foreign
-- keys in an empty database. Reads the schema only through the backend's
-- introspection (`db:tables`, `db:columns`, `db:indexes`, `db:foreign_keys`,
-- `db:checks`, `db:table_options`).
--
--   -- Schema dump of app (mariadb 10.11.6-MariaDB), 2024-05-01 12:00:00 UTC
--   local ar = require("activerecord")
--   local schema = ar.schema
--   return {
--     up = function(m)
--       m:create_table("users", function(t)
--         t:bigint("id", { primary_key = true, auto_increment = true, unsigned = true })
--         t:string("email", { size = 191, nullable = false })
--         t:index({ "email" }, { unique = true, name = "uq_users_email" })
--       end, { engine = "InnoDB", charset = "utf8mb4", collate = "utf8mb4_unicode_ci" })
--     end,
--     down = function(m)
--       m:drop_table("users")
--     end,
--   }
--
-- Tables come in an order their foreign keys allow (a referenced table
-- first); the foreign keys of a cycle are added after every table exists
-- (`m:add_foreign_key`) and removed first on the way down. The output is
-- deterministic: the same schema gives the same text (the header's time
-- aside; `opts.header = false` leaves the header out).
-- @module activerecord.schema.dump
local options = require("activerecord.options")
local schema = require("activerecord.schema")
local nodes = require("activerecord.query.nodes")

local M = {}

-- The migrator's own bookkeeping table is never dumped.
local SKIPPED_TABLES = { schema_migrations = true }

-- ------------------------------------------------------ Lua literals ----

local ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

--- A double-quoted Lua literal that reads back as exactly `s`, on one line:
-- quotes, backslashes and control bytes escaped; UTF-8 text kept as it is,
-- the high bytes of anything else escaped (the file stays valid UTF-8).
-- @tparam string s any bytes
-- @treturn string the literal
function M.lua_string(s)
  local utf8_ok = utf8.len(s) ~= nil
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    local e = ESCAPES[c]
    if e then return e end
    if c:byte() >= 128 and utf8_ok then return c end
    return string.format("\\x%02X", c:byte())
  end) .. '"'
end
local lua_string = M.lua_string

-- A Lua number literal that reads back as the same value and subtype.
local function lua_number(v)
  if math.type(v) == "integer" then
    if v == math.mininteger then return "math.mininteger" end
    return tostring(v)
  end
  if v ~= v then return "(0/0)" end
  if v == math.huge then return "math.huge" end
  if v == -math.huge then return "-math.huge" end
  for digits = 15, 17 do
    local text = string.format("%." .. digits .. "g", v)
    if tonumber(text) == v then
      if not text:find("[.eE]") then text = text .. ".0" end
      return text
    end
  end
  return string.format("%.17g", v)
end

-- The SQL text of an expression: `schema.raw(...)` or `ar.raw(...)`.
local function raw_text(v)
  if nodes.is_expr(v) then return rawget(v, "kind") == "raw" and rawget(v, "sql") or nil end
  return schema.raw_text(v)
end

-- A value as Lua source: strings, numbers, booleans, raw expressions
-- (written as `schema.raw("...")`).
local function lua_value(v)
  local t = type(v)
  if t == "string" then return lua_string(v) end
  if t == "number" then return lua_number(v) end
  if t == "boolean" then return tostring(v) end
  local text = raw_text(v)
  if text then return "schema.raw(" .. lua_string(text) .. ")" end
  error("schema.dump: cannot write a " .. t .. " value", 0)
end

local function lua_list(items)
  local out = {}
  for i, item in ipairs(items) do out[i] = lua_value(item) end
  return "{ " .. table.concat(out, ", ") .. " }"
end

-- `{ k = v, ... }` from an array of { key, source } pairs (order kept).
local function lua_options(pairs_list)
  if #pairs_list == 0 then return nil end
  local out = {}
  for i, kv in ipairs(pairs_list) do out[i] = kv[1] .. " = " .. kv[2] end
  return "{ " .. table.concat(out, ", ") .. " }"
end

-- Text for a header comment: one line, no control characters.
local function one_line(s)
  return (tostring(s):gsub("%c", "?"))
end

-- ----------------------------------------------------------- columns ----

-- Display widths MariaDB (and MySQL before 8.0.19) print for integer
-- types: { signed, unsigned }. MySQL 8.0.19+ prints none.
local INTEGER_SQL = {
  tinyint = { "tinyint", 4, 3 }, smallint = { "smallint", 6, 5 },
  integer = { "int", 11, 10 }, bigint = { "bigint", 20, 20 },
}
local LOB_SIZES = { [255] = "tiny", [65535] = false, [16777215] = "medium", [4294967295] = "long" }
local LOB_PREFIX = { tiny = "tiny", medium = "medium", long = "long" }
local TEMPORAL = { datetime = true, time = true, timestamp = true }
-- Types whose columns take charset/collate in the DSL.
local CHARACTER_TYPES = { string = true, text = true, enum = true, set = true }
local MAX_VARCHAR = 16383 -- the DSL's limit (utf8mb4); longer ones keep their sql_type

-- The DSL options that describe the column's type, and the SQL types the
-- server prints for them, for the neutral types the DSL writes; nil when
-- the DSL cannot say it by options (then the column keeps its sql_type).
local function type_options(c, flavor)
  local ty, opts = c.type, {}
  local int = INTEGER_SQL[ty]
  if int then
    local suffix = c.unsigned and " unsigned" or ""
    if c.unsigned then opts[#opts + 1] = { "unsigned", "true" } end
    return opts, { int[1] .. "(" .. (c.unsigned and int[3] or int[2]) .. ")" .. suffix, int[1] .. suffix }
  elseif ty == "boolean" then
    return opts, { "tinyint(1)" }
  elseif ty == "float" or ty == "double" or ty == "date" then
    return opts, { ty }
  elseif ty == "decimal" then
    local p, s = c.precision, c.scale
    if math.type(p) ~= "integer" or math.type(s) ~= "integer" or p < 1 or p > 65 or s > 30 then
      return nil
    end
    opts[1], opts[2] = { "precision", lua_number(p) }, { "scale", lua_number(s) }
    return opts, { string.format("decimal(%d,%d)", p, s) }
  elseif ty == "string" then
    local n = c.size
    if math.type(n) ~= "integer" or n < 1 or n > MAX_VARCHAR then return nil end
    opts[1] = { "size", lua_number(n) }
    return opts, { string.format("varchar(%d)", n) }
  elseif ty == "text" or ty == "blob" then
    local word = LOB_SIZES[c.size]
    if word == nil then return nil end
    if word then opts[1] = { "size", lua_string(word) } end
    return opts, { (word and LOB_PREFIX[word] or "") .. ty }
  elseif ty == "binary" then
    local kind, n = (c.sql_type or ""):match("^(%a+)%((%d+)%)$")
    n = math.tointeger(tonumber(n))
    if not n then return nil end
    opts[1] = { "size", lua_number(n) }
    if kind == "binary" then opts[2] = { "fixed", "true" } end
    return opts, { string.format("%s(%d)", kind, n) }
  elseif TEMPORAL[ty] then
    local p = c.precision or 0
    if p > 0 then
      opts[1] = { "precision", lua_number(p) }
      return opts, { string.format("%s(%d)", ty, p) }
    end
    return opts, { ty }
  elseif ty == "json" then
    return opts, { flavor == "mysql" and "json" or "longtext", "json" }
  elseif ty == "enum" or ty == "set" then
    opts[1] = { "values", lua_list(c.values or {}) }
    return opts, nil -- the values say it all (the server's quoting of them varies)
  end
  return nil
end

-- The builder method and the type's options of a column: the neutral type
-- with its options when they recreate the server's type exactly, otherwise
-- the neutral type (or, for a type the DSL lacks, `t:column(name, type, ...)`)
-- with `sql_type` as the server prints it.
local function column_type(c, flavor)
  local custom = schema.types[c.type] == nil
  if not custom then
    local opts, forms = type_options(c, flavor)
    if opts then
      if not forms then return c.type, opts, false end
      local printed = (c.sql_type or ""):lower()
      for _, form in ipairs(forms) do
        if printed == form then return c.type, opts, false end
      end
    end
  end
  return c.type, { { "sql_type", lua_string(c.sql_type) } }, custom
end

-- Whether the DSL takes `text` as a raw fragment (no statement separator
-- or comment token, even inside a quoted string): what it refuses is set by
-- `m:execute` after the table is made.
local function fragment_ok(text)
  return (pcall(schema.check_fragment, text))
end

-- The column's options, in a fixed order; `ctx` = { info, flavor, dialect,
-- table, after } (`after`: SQL to run once the table exists).
local function column_options(c, single_pk, ctx)
  local info, flavor = ctx.info, ctx.flavor
  local type_name, opts, custom = column_type(c, flavor)
  local out = {}
  local function add(key, source) out[#out + 1] = { key, source } end
  if single_pk then add("primary_key", "true") end
  if c.auto_increment then add("auto_increment", "true") end
  for _, kv in ipairs(opts) do out[#out + 1] = kv end
  if CHARACTER_TYPES[c.type] and c.collation and c.collation ~= info.collation then
    if c.charset then add("charset", lua_string(c.charset)) end
    add("collate", lua_string(c.collation))
  end
  -- MariaDB takes no NULL clause on a generated column: its nullability is the server's
  if c.nullable == false and not single_pk and not (c.generated and flavor ~= "mysql") then
    add("nullable", "false")
  end
  if c.default ~= nil and not c.generated and not c.auto_increment then
    -- set afterwards: an expression the DSL refuses, or a string the DSL
    -- writes only as a plain literal (the column keeps its sql_type, e.g.
    -- CHAR) that has a backslash or control character
    local d, text, literal = ctx.dialect, raw_text(c.default), nil
    if text and not fragment_ok(text) then
      literal = "(" .. text .. ")"
    elseif opts[1] and opts[1][1] == "sql_type" and CHARACTER_TYPES[c.type] and type(c.default) == "string"
        and not d.string_literal(c.default, "plain") then
      literal = d.string_literal(c.default, "text")
    end
    if literal then
      ctx.after[#ctx.after + 1] = "ALTER TABLE " .. d:quote_identifier(ctx.table) .. " ALTER COLUMN "
        .. d:quote_identifier(c.name) .. " SET DEFAULT " .. literal
    else
      add("default", lua_value(c.default))
    end
  end
  if c.on_update ~= nil then add("on_update", lua_value(c.on_update)) end
  if c.generated then
    add("generated", "{ expr = schema.raw(" .. lua_string(c.generated.expr) .. "), stored = "
      .. tostring(c.generated.stored == true) .. " }")
  end
  if c.comment ~= nil and c.comment ~= "" then add("comment", lua_string(c.comment)) end
  return type_name, lua_options(out), custom
end

local function column_line(c, single_pk, ctx)
  local type_name, opts, custom = column_options(c, single_pk, ctx)
  local args
  if custom then
    args = lua_string(c.name) .. ", " .. lua_string(type_name)
  else
    args = lua_string(c.name)
  end
  if opts then args = args .. ", " .. opts end
  -- what the DSL cannot say is left as a note for the reader
  local note = c.invisible and " -- INVISIBLE on the server: the DSL has no such option" or ""
  if custom then return "t:column(" .. args .. ")" .. note end
  return "t:" .. type_name .. "(" .. args .. ")" .. note
end

-- -------------------------------------------------- indexes and keys ----

local function fk_options(fk, ref_key)
  local out = {}
  if ref_key then out[1] = { "table", lua_string(fk.ref_table) } end
  out[#out + 1] = { "columns", lua_list(fk.ref_columns) }
  out[#out + 1] = { "name", lua_string(fk.name) }
  if fk.on_delete then out[#out + 1] = { "on_delete", lua_string(fk.on_delete) } end
  if fk.on_update then out[#out + 1] = { "on_update", lua_string(fk.on_update) } end
  return lua_options(out)
end

local function index_line(index)
  local opts = {}
  if index.unique then opts[1] = { "unique", "true" } end
  opts[#opts + 1] = { "name", lua_string(index.name) }
  return "t:index(" .. lua_list(index.columns) .. ", " .. lua_options(opts) .. ")"
end

-- Whether the DSL's t:index can say it: plain columns, full length,
-- ascending, a B-tree, no comment.
local function plain_index(index)
  if index.lengths or index.orders or index.kind or index.comment then return false end
  for _, col in ipairs(index.columns) do
    if type(col) ~= "string" then return false end
  end
  return true
end

-- CREATE INDEX for one the DSL cannot say (prefix lengths, DESC parts,
-- FULLTEXT/SPATIAL, a comment, expression parts), run by `m:execute`.
local function index_sql(dialect, table_name, index)
  local parts = {}
  for i, col in ipairs(index.columns) do
    local text = raw_text(col)
    if text then
      parts[i] = "(" .. text .. ")"
    else
      parts[i] = dialect:quote_identifier(col)
      -- (MariaDB reports a length on a SPATIAL key part that it refuses back)
      local length = index.kind ~= "spatial" and index.lengths and index.lengths[col]
      if length then parts[i] = parts[i] .. "(" .. length .. ")" end
      if index.orders and index.orders[col] == "desc" then parts[i] = parts[i] .. " DESC" end
    end
  end
  local kind = index.kind and (index.kind:upper() .. " ") or (index.unique and "UNIQUE " or "")
  local sql = "CREATE " .. kind .. "INDEX " .. dialect:quote_identifier(index.name) .. " ON "
    .. dialect:quote_identifier(table_name) .. " (" .. table.concat(parts, ", ") .. ")"
  local comment = index.comment and dialect.string_literal(index.comment, "plain")
  if comment then sql = sql .. " COMMENT " .. comment end
  return sql
end

-- ------------------------------------------------------------ tables ----

local function table_options(info)
  local out = {}
  if info.engine then out[#out + 1] = { "engine", lua_string(info.engine) } end
  if info.charset then out[#out + 1] = { "charset", lua_string(info.charset) } end
  if info.collation then out[#out + 1] = { "collate", lua_string(info.collation) } end
  if info.comment and info.comment ~= "" then out[#out + 1] = { "comment", lua_string(info.comment) } end
  return lua_options(out)
end

-- Creation order: repeatedly the first table (by name) whose referenced
-- tables all exist; when none is ready, the first table on a cycle, whose
-- foreign keys to tables not yet created are added afterwards. Returns the
-- order and the set of deferred foreign keys.
local function creation_order(names, fks_of)
  local remaining, created, order, deferred = {}, {}, {}, {}
  for _, name in ipairs(names) do remaining[#remaining + 1] = name end
  local function deps_met(name)
    for _, fk in ipairs(fks_of[name]) do
      local ref = fk.ref_table
      if ref ~= name and fks_of[ref] and not created[ref] then return false end
    end
    return true
  end
  -- whether `start` reaches itself through tables not yet created
  local function on_cycle(start)
    local seen, stack = {}, { start }
    while #stack > 0 do
      local name = table.remove(stack)
      for _, fk in ipairs(fks_of[name]) do
        local ref = fk.ref_table
        if ref == start and name ~= start then return true end
        if ref ~= name and fks_of[ref] and not created[ref] and not seen[ref] then
          seen[ref] = true
          stack[#stack + 1] = ref
        end
      end
    end
    return false
  end
  while #remaining > 0 do
    local pick
    for i, name in ipairs(remaining) do
      if deps_met(name) then pick = i break end
    end
    if not pick then
      for i, name in ipairs(remaining) do
        if on_cycle(name) then pick = i break end
      end
      pick = pick or 1
      local name = remaining[pick]
      for _, fk in ipairs(fks_of[name]) do
        local ref = fk.ref_table
        if ref ~= name and fks_of[ref] and not created[ref] then deferred[fk] = true end
      end
    end
    local name = table.remove(remaining, pick)
    created[name] = true
    order[#order + 1] = name
  end
  return order, deferred
end

-- The statements of one table: `m:create_table` with its columns, keys,
-- indexes, foreign keys (those not deferred) and checks, then `m:execute`
-- for the indexes and checks the DSL cannot say.
-- ALTER TABLE ... ADD COLUMN for a generated column whose expression the
-- DSL refuses (a `#`, `--` or `;` inside a string literal, say), at its place.
local function add_generated_sql(ctx, c, previous)
  local d = ctx.dialect
  local parts = { "ALTER TABLE", d:quote_identifier(ctx.table), "ADD COLUMN", d:quote_identifier(c.name),
    c.sql_type }
  if CHARACTER_TYPES[c.type] and c.collation and c.collation ~= ctx.info.collation then
    parts[#parts + 1] = "CHARACTER SET " .. c.charset .. " COLLATE " .. c.collation
  end
  parts[#parts + 1] = "AS (" .. c.generated.expr .. ") " .. (c.generated.stored and "STORED" or "VIRTUAL")
  if ctx.flavor == "mysql" then parts[#parts + 1] = c.nullable and "NULL" or "NOT NULL" end
  local comment = c.comment and d.string_literal(c.comment, "plain")
  if comment then parts[#parts + 1] = "COMMENT " .. comment end
  parts[#parts + 1] = previous and ("AFTER " .. d:quote_identifier(previous)) or "FIRST"
  return table.concat(parts, " ")
end

-- Whether a list of key columns names one of `set`.
local function names_any(columns, set)
  for _, col in ipairs(columns) do
    if set[col] then return true end
  end
  return false
end

-- The statements of one table: `m:create_table` with its columns, keys,
-- indexes, foreign keys (those not deferred) and checks, then `m:execute`
-- for what the DSL cannot say (generated columns and checks whose text it
-- refuses, and the indexes that use them; prefix, DESC, FULLTEXT, SPATIAL
-- and commented indexes).
local function create_table_lines(lines, name, tbl, deferred, dialect)
  local after = {}
  local ctx = { info = tbl.info, flavor = dialect.flavor, dialect = dialect, table = name, after = after }
  local pk
  for _, index in ipairs(tbl.indexes) do
    if index.primary then pk = index.columns end
  end
  local single_pk = pk and #pk == 1 and pk[1] or nil
  lines[#lines + 1] = "    m:create_table(" .. lua_string(name) .. ", function(t)"
  local added, previous = {}, nil
  for _, c in ipairs(tbl.columns) do
    if c.generated and not fragment_ok(c.generated.expr) then
      added[c.name] = true
      after[#after + 1] = add_generated_sql(ctx, c, previous)
    else
      lines[#lines + 1] = "      " .. column_line(c, c.name == single_pk, ctx)
    end
    previous = c.name
  end
  if pk and #pk > 1 then lines[#lines + 1] = "      t:primary_key(" .. lua_list(pk) .. ")" end
  for _, index in ipairs(tbl.indexes) do
    if not index.primary then
      if plain_index(index) and not names_any(index.columns, added) then
        lines[#lines + 1] = "      " .. index_line(index)
      else
        after[#after + 1] = index_sql(dialect, name, index)
      end
    end
  end
  for _, fk in ipairs(tbl.foreign_keys) do
    if not deferred[fk] then
      lines[#lines + 1] = "      t:foreign_key(" .. lua_list(fk.columns) .. ", " .. fk_options(fk, true) .. ")"
    end
  end
  for _, check in ipairs(tbl.checks) do
    if not check.json_column then
      local uses_added = false
      for col in pairs(added) do
        if check.expr:find(dialect:quote_identifier(col), 1, true) then uses_added = true end
      end
      if fragment_ok(check.expr) and not uses_added then
        lines[#lines + 1] = "      t:check(" .. lua_string(check.name) .. ", schema.raw("
          .. lua_string(check.expr) .. "))"
      else
        after[#after + 1] = "ALTER TABLE " .. dialect:quote_identifier(name) .. " ADD CONSTRAINT "
          .. dialect:quote_identifier(check.name) .. " CHECK (" .. check.expr .. ")"
      end
    end
  end
  local topts = table_options(tbl.info)
  lines[#lines + 1] = "    end" .. (topts and (", " .. topts) or "") .. ")"
  for _, sql in ipairs(after) do
    lines[#lines + 1] = "    m:execute(" .. lua_string(sql) .. ")"
  end
end

local function header_line(db)
  local server = db:server() or {}
  local row = db:query("SELECT DATABASE() AS name")[1]
  local version = server.version_string or server.version
  if type(version) ~= "string" then version = "?" end
  return string.format("-- Schema dump of %s (%s %s), %s", one_line(row and row.name or "?"),
    one_line(server.flavor or "?"), one_line(version), os.date("!%Y-%m-%d %H:%M:%S UTC"))
end

--- The current schema of `db` as the text of a Lua migration file: every
-- base table but `schema_migrations`, with its columns (types, sizes,
-- precision and scale, unsigned, nullability, defaults, ON UPDATE,
-- auto-increment, comments, charset and collation where they differ from
-- the table's, ENUM/SET members, generated columns), primary key, indexes,
-- foreign keys, CHECK constraints and table options (engine, charset,
-- collation, comment), in an order the foreign keys allow. `up` creates
-- them, `down` drops them in reverse order. What the DSL cannot say (prefix,
-- DESC, FULLTEXT and SPATIAL indexes; an expression with `#`, `--` or `;`
-- in a string literal) is run by `m:execute` right after its table.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam[opt] table opts `header = false` leaves out the first comment line
--   (database, server and time), for comparing dumps
-- @treturn string the migration's Lua source
-- @raise `ConfigError` for an unknown option; the backend's errors
function M.dump(db, opts)
  opts = options.check(opts or {}, { header = true }, "schema.dump")
  local names, tables, fks_of = {}, {}, {}
  for _, name in ipairs(db:tables()) do
    if not SKIPPED_TABLES[name] then
      names[#names + 1] = name
      fks_of[name] = db:foreign_keys(name) or {}
      tables[name] = {
        columns = db:columns(name) or {}, indexes = db:indexes(name) or {}, foreign_keys = fks_of[name],
        checks = db:checks(name) or {}, info = db:table_options(name) or {},
      }
    end
  end
  table.sort(names)
  local order, deferred = creation_order(names, fks_of)

  local lines = {}
  if opts.header ~= false then lines[1] = header_line(db) end
  lines[#lines + 1] = 'local ar = require("activerecord")'
  lines[#lines + 1] = "local schema = ar.schema"
  lines[#lines + 1] = "return {"
  lines[#lines + 1] = "  up = function(m)"
  local late = {}
  for _, name in ipairs(order) do
    create_table_lines(lines, name, tables[name], deferred, db.dialect)
    for _, fk in ipairs(fks_of[name]) do
      if deferred[fk] then late[#late + 1] = { name, fk } end
    end
  end
  for _, item in ipairs(late) do
    local name, fk = item[1], item[2]
    lines[#lines + 1] = "    m:add_foreign_key(" .. lua_string(name) .. ", " .. lua_list(fk.columns) .. ", "
      .. lua_string(fk.ref_table) .. ", " .. fk_options(fk, false) .. ")"
  end
  lines[#lines + 1] = "  end,"
  lines[#lines + 1] = "  down = function(m)"
  for i = #late, 1, -1 do
    local name, fk = late[i][1], late[i][2]
    lines[#lines + 1] = "    m:remove_foreign_key(" .. lua_string(name) .. ", { name = "
      .. lua_string(fk.name) .. " })"
  end
  for i = #order, 1, -1 do
    lines[#lines + 1] = "    m:drop_table(" .. lua_string(order[i]) .. ")"
  end
  lines[#lines + 1] = "  end,"
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

return M
