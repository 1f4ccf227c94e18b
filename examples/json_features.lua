-- JSON done right: extraction and containment with the path and the value
-- bound as parameters, never spliced into the SQL text; a path that does not
-- match the JSON path grammar is refused before any SQL exists.
--
--   make examples      (or, against a running server:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/json_features.lua)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")


-- Every statement the backend runs passes through here, so the example can
-- show the SQL text next to its parameter count.
local statements = {}
local db <close> = ar.connect(ar.config_from_env{
  log = function(event) statements[#statements + 1] = event end,
})
ar.set_default_backend(db)

ar.schema.create_table(db, "example_developers", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("name", { size = 100, nullable = false })
  t:json("profile")
end, { force = true })

local Developer = ar.Model{
  name = "Developer", table = "example_developers",
  fields = { id = "integer", name = { type = "string", required = true }, profile = "json" },
}

Developer:insert_all{
  { name = "Ann", profile = { languages = { "lua", "c" }, editor = "vim", level = { years = 9 } } },
  { name = "Bo", profile = { languages = { "python" }, editor = "emacs", level = { years = 3 } } },
  { name = "Cy", profile = { languages = { "lua", "python" }, editor = "vim", level = { years = 5 } } },
}

local function names(records)
  local out = {}
  for i, r in ipairs(records) do out[i] = r.name end
  return table.concat(out, ", ")
end

-- JSON columns come back decoded: a Lua table, integers stay integers.
local ann = Developer:find_by{ name = "Ann" }
print(("Ann's profile decoded: editor=%s, first language=%s, years=%s (%s)"):format(
  ann.profile.editor, ann.profile.languages[1], ann.profile.level.years, math.type(ann.profile.level.years)))

-- Path extraction: JSON_UNQUOTE(JSON_EXTRACT(profile, ?)) = ?, path and value bound.
local vim = Developer:where(ar.json_value("profile", "$.editor"):eq("vim")):order_by("id"):all()
print(("editor = vim: %s"):format(names(vim)))

local q = Developer:where(ar.json_value("profile", "$.level.years"):ge(5))
local sql, params = q:to_sql()
print(("SQL: %s"):format(sql))
print(("  parameters: %d (%s, %s)"):format(params.n, tostring(params[1]), tostring(params[2])))
print(("level.years >= 5: %s"):format(names(q:order_by("id"):all())))

-- Containment: JSON_CONTAINS(profile, ?, ?) with the candidate JSON-encoded and bound.
local lua_devs = Developer:where(ar.json_contains("profile", "lua", "$.languages")):order_by("id"):all()
print(("languages contains \"lua\": %s"):format(names(lua_devs)))
local both = Developer:where(ar.json_contains("profile", { "lua", "python" }, "$.languages")):all()
print(("languages contains [\"lua\", \"python\"]: %s"):format(names(both)))

-- The original guide's helper, done safely: db:json_path_query(table, column, path, value).
local rows = db:json_path_query("example_developers", "profile", "$.editor", "emacs")
print(("json_path_query(editor = emacs): %d row, name=%s"):format(#rows, rows[1].name))

-- An injection attempt through the path: refused by the path grammar, and
-- nothing reaches the server.
local before = #statements
local attack = "$.editor') OR 1=1 -- "
local ok, err = pcall(db.json_path_query, db, "example_developers", "profile", attack, "vim")
print(("injection through the path refused: %s, kind=%s, statements sent=%d"):format(
  tostring(not ok), ok and "none" or err.kind, #statements - before))
print(("  message: %s"):format(ok and "" or err.message))

-- The same text as a value is harmless: it is bound, so it matches nothing.
local n = Developer:where(ar.json_value("profile", "$.editor"):eq("vim' OR '1'='1")):count()
print(("injection through the value matches %d rows (it is bound, not spliced)"):format(n))

-- A table or column name is checked too.
ok, err = pcall(db.json_path_query, db, "example_developers; DROP TABLE x", "profile", "$.editor", "vim")
print(("bad table name refused: %s, kind=%s"):format(tostring(not ok), ok and "none" or err.kind))

ar.schema.drop_table(db, "example_developers", { if_exists = true })
print("cleaned up")
