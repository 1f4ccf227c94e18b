-- Bad input to every public function: wrong types, missing arguments,
-- unknown options and out-of-range values, table-driven. Each must raise an
-- error object (ar.errors.is) of the expected kind whose message names what
-- was wrong; none may crash the process or leave a half-written row.
local ar = require("activerecord")
local core = require("activerecord.backend.mysql.core")
local H = require("reliability.helpers")

H.pending = function(msg) pending(msg) end

local CONFIG = "ConfigError"
local QUERY = "QueryError"

describe("reliability: bad input", function()
  local db, Item, TABLE = nil, nil, "rel_bad_items"

  local function count()
    return db:query("SELECT COUNT(*) AS n FROM " .. TABLE)[1].n
  end

  setup(function()
    db = ar.connect(H.support.options{ pool = { size = 2 } })
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    ar.schema.create_table(db, TABLE, function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 20, nullable = false })
      t:integer("qty")
      t:json("doc")
      t:datetime("at")
    end)
    Item = ar.Model{ name = "RelBadItem", table = TABLE, backend = db,
      fields = { id = { type = "integer", primary_key = true },
                 name = { type = "string", required = true, size = 20 },
                 qty = { type = "integer", min = 0, max = 1000 }, doc = "json", at = "datetime" } }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:close()
  end)

  before_each(function()
    db:execute("DELETE FROM " .. TABLE)
  end)

  after_each(function()
    -- whatever was tried, nothing half-written and the backend still works
    assert.are.equal(0, count())
    assert.is_false(db:in_transaction())
    assert.are.equal(0, db:pool_stats().in_use)
  end)

  it("ar.connect: wrong types, unknown options, bad values", function()
    local function connect(extra) return function() return ar.connect(H.support.options(extra)) end end
    H.run_cases{
      { "no table", function() return ar.connect() end, CONFIG, "table" },
      { "string", function() return ar.connect("mysql://x") end, CONFIG, "table" },
      { "unknown option", connect{ hots = "x" }, CONFIG, "hots" },
      { "port as string", connect{ port = "3306" }, CONFIG, "port" },
      { "port as float", connect{ port = 3306.5 }, CONFIG, "port" },
      { "user as number", connect{ user = 7 }, CONFIG, "user" },
      { "read_timeout as string", connect{ read_timeout = "1" }, CONFIG, "read_timeout" },
      { "pool as number", connect{ pool = 3 }, CONFIG, "pool" },
      { "pool size 0", connect{ pool = { size = 0 } }, CONFIG, "size" },
      { "pool size -1", connect{ pool = { size = -1 } }, CONFIG, "size" },
      { "pool size float", connect{ pool = { size = 1.5 } }, CONFIG, "size" },
      { "unknown pool option", connect{ pool = { sise = 2 } }, CONFIG, "sise" },
      { "negative checkout_timeout", connect{ pool = { checkout_timeout = -1 } }, CONFIG, "checkout_timeout" },
      { "log not a function", connect{ log = "yes" }, CONFIG, "log" },
      { "reconnect_retries -1", connect{ reconnect_retries = -1 }, CONFIG, "reconnect_retries" },
      { "url bad scheme", connect{ url = "postgres://x/y" }, CONFIG, "url" },
      { "url unknown param", connect{ url = "mysql://a@127.0.0.1/db?bogus=1" }, CONFIG, "bogus" },
      { "url param without value", connect{ url = "mysql://a@127.0.0.1/db?charset" }, CONFIG, "charset" },
      { "option name not a string", function()
          local o = H.support.options()
          o[1] = "x"
          return ar.connect(o)
        end, CONFIG, "string" },
      { "ssl mode unknown", connect{ ssl = { mode = "sometimes" } }, { CONFIG, "ConnectionError" }, "mode" },
      { "unknown database", connect{ database = "no_such_db_rel8" }, "ConnectionError", "no_such_db_rel8" },
      { "wrong password", connect{ password = "wrong" }, "ConnectionError", "denied" },
      { "closed port", connect{ host = "127.0.0.1", port = 1, socket = false }, { CONFIG, "ConnectionError" } },
      { "bad charset", connect{ charset = "klingon" }, { CONFIG, "ConnectionError" }, "klingon" },
      { "negative read_timeout", connect{ read_timeout = -1 }, CONFIG, "read_timeout" },
      { "decimal mode unknown", connect{ decimal = "float" }, CONFIG, "decimal" },
      { "statement_cache_size -1", connect{ statement_cache_size = -1 }, CONFIG, "statement_cache_size" },
    }
  end)

  it("db:execute / query / each: wrong types, bad placeholders, bad values", function()
    local huge = setmetatable({}, { __tostring = function() return "obj" end })
    H.run_cases{
      { "execute(nil)", function() return db:execute() end, QUERY, "sql" },
      { "execute(number)", function() return db:execute(42) end, QUERY, "sql" },
      { "execute(table)", function() return db:execute({}) end, QUERY, "sql" },
      { "query(nil)", function() return db:query() end, QUERY, "sql" },
      { "each(nil)", function() return db:each() end, QUERY, "sql" },
      { "empty SQL", function() return db:execute("") end, QUERY },
      { "syntax error", function() return db:execute("SELEC 1") end, QUERY, "syntax" },
      { "too few params", function() return db:execute("SELECT ? + ? AS x", 1) end, QUERY, "placeholder" },
      { "too many params", function() return db:execute("SELECT ? AS x", 1, 2) end, QUERY, "placeholder" },
      { "table param", function() return db:execute("SELECT ? AS x", {}) end, { QUERY, "DataError" }, "table" },
      { "function param", function() return db:execute("SELECT ? AS x", print) end, { QUERY, "DataError" },
        "function" },
      { "object param", function() return db:execute("SELECT ? AS x", huge) end, { QUERY, "DataError" } },
      { "NaN param", function() return db:execute("SELECT ? AS x", 0 / 0) end, "DataError", "nan" },
      { "inf param", function() return db:execute("SELECT ? AS x", math.huge) end, "DataError", "inf" },
      { "-inf param", function() return db:execute("SELECT ? AS x", -math.huge) end, "DataError", "inf" },
      { "unknown table", function() return db:query("SELECT * FROM no_such_table_rel8") end, QUERY,
        "no_such_table_rel8" },
      { "unknown column", function() return db:query("SELECT nope FROM " .. TABLE) end, QUERY, "nope" },
      { "two statements", function() return db:execute("SELECT 1; SELECT 2") end, QUERY },
      { "NOT NULL violated", function() return db:execute("INSERT INTO " .. TABLE .. " (name) VALUES (?)", nil) end,
        "IntegrityError", "name" },
      { "too long", function()
          return db:execute("INSERT INTO " .. TABLE .. " (name) VALUES (?)", string.rep("x", 21))
        end, "DataError", "name" },
      { "out of range", function()
          return db:execute("INSERT INTO " .. TABLE .. " (name, qty) VALUES ('a', ?)", 2 ^ 40 // 1)
        end, "DataError", "qty" },
      { "bad datetime", function()
          return db:execute("INSERT INTO " .. TABLE .. " (name, at) VALUES ('a', ?)", "2024-13-45 99:00:00")
        end, "DataError", "at" },
      { "invalid JSON into JSON column", function()
          return db:execute("INSERT INTO " .. TABLE .. " (name, doc) VALUES ('a', ?)", "{not json")
        end, { "IntegrityError", "DataError" } },
      { "each on bad SQL", function() for _ in db:each("SELECT * FROM no_such_table_rel8") do end end, QUERY,
        "no_such_table_rel8" },
    }
  end)

  it("db:transaction: wrong types, unknown options, out-of-range values", function()
    H.run_cases{
      { "no function", function() return db:transaction() end, "TransactionError", "function" },
      { "string fn", function() return db:transaction("BEGIN") end, "TransactionError", "function" },
      { "opts string", function() return db:transaction(function() end, "serializable") end, CONFIG, "table" },
      { "unknown option", function() return db:transaction(function() end, { retry = 3 }) end, CONFIG, "retry" },
      { "retries -1", function() return db:transaction(function() end, { retries = -1 }) end, CONFIG, "retries" },
      { "retries 1.5", function() return db:transaction(function() end, { retries = 1.5 }) end, CONFIG, "retries" },
      { "retries string", function() return db:transaction(function() end, { retries = "3" }) end, CONFIG,
        "retries" },
      { "bad isolation", function()
          return db:transaction(function() end, { isolation = "SERIALIZABLE; DROP TABLE x" })
        end, { CONFIG, "TransactionError", QUERY }, "isolation" },
      { "isolation number", function() return db:transaction(function() end, { isolation = 3 }) end,
        { CONFIG, "TransactionError", QUERY }, "isolation" },
      { "read_only string", function() return db:transaction(function() end, { read_only = "yes" }) end,
        { CONFIG, "TransactionError", QUERY }, "read_only", "read_only is not type-checked: any truthy value" },
      { "nested isolation", function()
          return db:transaction(function()
            db:transaction(function() end, { isolation = "READ COMMITTED" })
          end)
        end, "TransactionError", "isolation" },
      { "nested retries", function()
          return db:transaction(function() db:transaction(function() end, { retries = 2 }) end)
        end, "TransactionError", "retries" },
      { "a write then an error: rolled back", function()
          return db:transaction(function()
            db:execute("INSERT INTO " .. TABLE .. " (name) VALUES ('half')")
            db:execute("INSERT INTO " .. TABLE .. " (name) VALUES (?)", string.rep("x", 50))
          end)
        end, "DataError", "name" },
    }
  end)

  it("ar.Model definitions", function()
    local function model(def) return function() return ar.Model(def) end end
    local base = function(extra)
      local d = { name = "RelBadDef", table = TABLE, backend = db, fields = { name = "string" } }
      for k, v in pairs(extra) do d[k] = v end
      return d
    end
    H.run_cases{
      { "no table", function() return ar.Model() end, CONFIG, "table" },
      { "string def", function() return ar.Model("users") end, CONFIG, "table" },
      { "missing table name", model{ name = "X", fields = { a = "string" } }, CONFIG, "table" },
      { "table as number", model(base{ table = 5 }), CONFIG, "table" },
      { "unknown model option", model(base{ feilds = {} }), CONFIG, "feilds" },
      { "fields as string", model(base{ fields = "name" }), CONFIG, "fields" },
      { "unknown field type", model(base{ fields = { a = "strnig" } }), CONFIG, "strnig" },
      { "field type number", model(base{ fields = { a = 5 } }), CONFIG, "a" },
      { "unknown field option", model(base{ fields = { a = { type = "string", sise = 3 } } }), CONFIG, "sise" },
      { "size string", model(base{ fields = { a = { type = "string", size = "ten" } } }), CONFIG, "size" },
      -- an enum's values may come from its ENUM column: without any, its first use refuses it
      { "enum without values", function() return ar.Model(base{ fields = { name = { type = "enum" } } }):count() end,
        CONFIG, "values" },
      { "two primary keys", model(base{ fields = { a = { type = "integer", primary_key = true },
          b = { type = "integer", primary_key = true } } }), CONFIG, "primary key" },
      { "unknown mixin", model(base{ mixins = { "no_such_mixin" } }), CONFIG, "no_such_mixin" },
      { "unknown event", model(base{ events = { before_svae = function() end } }), CONFIG, "before_svae" },
      { "event not a function", model(base{ events = { before_save = "x" } }), CONFIG, "before_save",
        "a non-function handler is accepted and silently never run" },
      { "scope not a function", model(base{ scopes = { adults = 5 } }), CONFIG, "adults" },
      { "validate not a function", model(base{ validate = "yes" }), CONFIG, "validate" },
      { "bad table identifier", model(base{ table = "x`; DROP TABLE y; --" }), { CONFIG, QUERY }, "table",
        "not validated at definition (quoted safely at use: no injection)" },
      { "bad column identifier", model(base{ fields = { a = { type = "string", column = "a`b" } } }),
        { CONFIG, QUERY }, "a`b", "not validated at definition (quoted safely at use)" },
      { "relation not a relation", model(base{ relations = { posts = "Post" } }), CONFIG, "posts" },
      { "register_type without table", function() return ar.register_type("rel_x") end, CONFIG, "rel_x" },
      { "register_type bad sql_type", function() return ar.register_type("rel_y", { sql_type = 5 }) end,
        CONFIG, "sql_type" },
      { "register_mixin not a table", function() return ar.register_mixin("rel_m", 5) end, CONFIG, "rel_m",
        "register_mixin accepts a non-table spec" },
    }
  end)

  it("instance methods: wrong types, unknown fields, invalid values write nothing", function()
    H.run_cases{
      { "new with string", function() return Item.new("x") end, CONFIG, "table" },
      { "create with number", function() return Item:create(5) end, CONFIG, "table" },
      { "create unknown field", function() return Item:create{ name = "a", nmae = "b" } end, CONFIG, "nmae" },
      { "assign unknown field", function()
          local i = Item.new{ name = "a" }
          i.nmae = "x"
        end, CONFIG, "nmae" },
      { "required missing", function() return Item:create{ qty = 1 } end, "ValidationError", "name" },
      { "too long by validation", function() return Item:create{ name = string.rep("x", 21) } end,
        "ValidationError", "name" },
      { "below min", function() return Item:create{ name = "a", qty = -1 } end, "ValidationError", "qty" },
      { "above max", function() return Item:create{ name = "a", qty = 1001 } end, "ValidationError", "qty" },
      { "integer field given a string", function() return Item:create{ name = "a", qty = "many" } end,
        { "ValidationError", "DataError" }, "qty" },
      { "integer field given a float", function() return Item:create{ name = "a", qty = 1.5 } end,
        { "ValidationError", "DataError" }, "qty" },
      { "json field given a function", function() return Item:create{ name = "a", doc = print } end,
        { "ValidationError", "DataError" }, "doc" },
      { "datetime field given garbage", function() return Item:create{ name = "a", at = "yesterday" } end,
        { "ValidationError", "DataError" }, "at" },
      { "datetime field given a table", function() return Item:create{ name = "a", at = { 1, 2 } } end,
        { "ValidationError", "DataError" }, "at" },
      { "save with unknown option", function()
          return Item.new{ name = "a", qty = -5 }:save{ upsrt = true }    -- invalid too: never written
        end, { CONFIG, "ValidationError" }, "upsrt", "save() ignores unknown options" },
      { "method called with a dot", function() return Item.new{ name = "a" }.save() end, CONFIG, "instance" },
      { "delete of unsaved", function() return Item.new{ name = "a" }:delete() end, "RecordNotFound", "saved" },
      { "reload of unsaved", function() return Item.new{ name = "a" }:reload() end, "RecordNotFound" },
      { "update with string", function() return Item.new{ name = "a" }:update("x") end, CONFIG, "table",
        "a raw Lua error, not an error object (model.lua update)" },
      { "update unknown field", function() return Item.new{ name = "a" }:update{ zzz = 1 } end, CONFIG, "zzz" },
      { "old_value of unknown", function() return Item.new{ name = "a" }:old_value("zzz") end, CONFIG, "zzz" },
      { "before_save raising", function()
          local M = ar.Model{ name = "RelBadRaise", table = TABLE, backend = db, fields = { name = "string" },
            events = { before_save = function() ar.errors.raise("ValidationError", "name refused by hook") end } }
          return M:create{ name = "a" }
        end, "ValidationError", "name" },
    }
  end)

  it("class finders", function()
    H.run_cases{
      { "find(nil)", function() return Item:find() end, { QUERY, CONFIG }, "id", "find() returns nil" },
      { "find(table)", function() return Item:find({}) end, { QUERY, CONFIG, "DataError" }, "table" },
      { "find(NaN)", function() return Item:find(0 / 0) end, { QUERY, CONFIG, "DataError" } },
      { "find_or_fail(missing)", function() return Item:find_or_fail(123456789) end, "RecordNotFound", "123456789" },
      { "find_by(string)", function() return Item:find_by("name = 'a'") end, { QUERY, CONFIG }, "table",
        "find_by(string) runs the string as a raw WHERE fragment" },
      { "find_by unknown column", function() return Item:find_by{ nope = 1 } end, QUERY, "nope" },
      { "where unknown column", function() return Item:where{ nope = 1 }:all() end, QUERY, "nope" },
      { "no backend", function()
          local M = ar.Model{ name = "RelNoBackend", table = TABLE, fields = { name = "string" } }
          local saved = ar.default_backend()
          ar.set_default_backend(nil)
          local ok, err = pcall(M.all, M)
          ar.set_default_backend(saved)
          if not ok then error(err, 0) end
        end, CONFIG, "backend" },
    }
  end)

  it("query builder methods", function()
    local q = Item:query()
    H.run_cases{
      { "limit(-1)", function() return q:limit(-1) end, QUERY, "limit" },
      { "limit(1.5)", function() return q:limit(1.5) end, QUERY, "limit" },
      { "limit('10')", function() return q:limit("10") end, QUERY, "limit" },
      { "limit(NaN)", function() return q:limit(0 / 0) end, QUERY, "limit" },
      { "limit(huge)", function() return q:limit(math.huge) end, QUERY, "limit" },
      { "offset(-5)", function() return q:offset(-5) end, QUERY, "offset" },
      { "offset('1; DROP')", function() return q:offset("1; DROP TABLE x") end, QUERY, "offset" },
      { "order_by direction", function() return q:order_by("id", "sideways") end, QUERY, "sideways" },
      { "order_by number", function() return q:order_by(5) end, QUERY },
      { "order_by nil", function() return q:order_by() end, QUERY },
      { "select number", function() return q:select(5):all() end, QUERY },
      { "group_by table", function() return q:group_by({}):all() end, QUERY },
      { "where number", function() return q:where(5):all() end, QUERY },
      { "where bad placeholder count", function() return q:where("id = ? AND name = ?", 1):all() end,
        QUERY, "placeholder" },
      { "where nil", function() return q:where():all() end, QUERY },
      { "in_list not a table", function() return q:in_list("id", 5):all() end, QUERY },
      { "between missing bound", function() return q:between("id", 1):all() end, QUERY, "between",
        "a missing bound binds NULL: silently no rows" },
      { "join unknown kind", function() return q:join("sideways", "t2", "t2.id = id"):all() end, QUERY,
        "sideways" },
      { "for_update unknown option", function() return q:for_update{ wait = "forever" } end, CONFIG,
        "wait", "unknown locking options ignored" },
      { "unscope unknown", function() return q:unscope("everything") end, QUERY, "everything",
        "unknown unscope name ignored" },
      { "count bad column", function() return q:count("id; DROP TABLE x") end, QUERY },
      { "pluck nil", function() return q:pluck() end, QUERY },
      { "update_all string", function() return q:update_all("qty = 0") end, { QUERY, CONFIG } },
      { "update_all unknown column", function() return q:update_all{ nope = 1 } end, QUERY, "nope" },
      { "delete_all unknown option", function() return q:where{ id = -1 }:delete_all{ everything = true } end,
        CONFIG, "everything", "delete_all ignores unknown options" },
      { "find_each batch_size 0", function() return q:find_each({ batch_size = 0 }, function() end) end,
        { QUERY, CONFIG }, "batch_size" },
      { "window frame garbage", function() return ar.frame("ROWS BETWEEN 1; DROP TABLE x") end, QUERY },
      { "ntile(0)", function() return ar.ntile(0) end, QUERY, "ntile" },
      { "json path garbage", function() return q:where(ar.json_value("doc", "$.a'; DROP")):all() end, QUERY,
        "path" },
      { "json path not a string", function() return q:where(ar.json_value("doc", 5)):all() end, QUERY, "path" },
      { "ar.raw(number)", function() return ar.raw(5) end, QUERY, "raw" },
      { "ar.table bad name", function() return ar.table("a b", db) end, QUERY, "table" },
      { "ar.col bad name", function() return ar.col("a`b") end, QUERY },
      { "cte bad name", function() return q:with_cte("x y", q) end, QUERY },
    }
  end)

  it("insert_all / upsert_all: wrong types, unknown options, invalid rows write nothing", function()
    H.run_cases{
      { "rows nil", function() return Item:insert_all() end, { CONFIG, QUERY }, "rows" },
      { "rows string", function() return Item:insert_all("x") end, { CONFIG, QUERY }, "rows" },
      { "row not a table", function() return Item:insert_all{ { name = "a" }, 5 } end, { CONFIG, QUERY } },
      { "unknown option", function() return Item:insert_all({ { name = "a" } }, { batchsize = 2 }) end, CONFIG,
        "batchsize" },
      { "batch_size string", function() return Item:insert_all({ { name = "a" } }, { batch_size = "2" }) end,
        CONFIG, "batch_size" },
      { "batch_size 0", function() return Item:insert_all({ { name = "a", qty = -1 } }, { batch_size = 0 }) end,
        { CONFIG, "ValidationError" }, "batch_size", "batch_size is not range-checked" },
      { "batch_size -3", function() return Item:insert_all({ { name = "a", qty = -1 } }, { batch_size = -3 }) end,
        { CONFIG, "ValidationError" }, "batch_size", "batch_size is not range-checked" },
      { "batch_size 1.5", function() return Item:insert_all({ { name = "a", qty = -1 } }, { batch_size = 1.5 }) end,
        { CONFIG, "ValidationError" }, "batch_size", "batch_size is not range-checked" },
      { "one invalid row of many", function()
          local rows = {}
          for i = 1, 50 do rows[i] = { name = "r" .. i } end
          rows[37] = { name = string.rep("x", 30) }
          return Item:insert_all(rows)
        end, "ValidationError", "row 37" },
      { "server rejects a late batch: nothing written", function()
          local rows = {}
          for i = 1, 30 do rows[i] = { name = "r" .. i } end
          rows[25] = { id = 1, name = "dup" }      -- same key as a row of batch 1
          rows[1].id = 1
          return Item:insert_all(rows, { batch_size = 10, validate = false })
        end, "IntegrityError", "duplicate" },
      { "unknown field in a row", function() return Item:insert_all{ { name = "a", nope = 1 } } end, CONFIG, "nope" },
      { "upsert_all unique_by unknown", function()
          return Item:upsert_all({ { name = "a", qty = -1 } }, { unique_by = "nope" })
        end, { CONFIG, QUERY, "ValidationError" }, "nope", "unique_by is not checked (ignored on MySQL)" },
      { "upsert_all update unknown column", function()
          return Item:upsert_all({ { name = "a" } }, { update = { "nope" } })
        end, { CONFIG, QUERY }, "nope" },
      { "upsert_all update string", function()
          return Item:upsert_all({ { name = "a" } }, { update = "name" })
        end, CONFIG, "update" },
      { "returning unknown column", function()
          return Item:insert_all({ { name = "a" } }, { returning = { "nope" } })
        end, { QUERY, CONFIG, "CapabilityError" }, "nope" },
    }
  end)

  it("schema DSL", function()
    local function create(fn, opts)
      return function() return ar.schema.create_table(db, "rel_bad_schema", fn, opts) end
    end
    finally(function() db:execute("DROP TABLE IF EXISTS rel_bad_schema") end)
    H.run_cases{
      { "no db", function() return ar.schema.create_table(nil, "x", function(t) t:integer("a") end) end,
        { CONFIG, QUERY }, "backend", "a raw Lua error (schema.lua indexes nil)" },
      { "table name number", function() return ar.schema.create_table(db, 5, function(t) t:integer("a") end) end,
        { CONFIG, QUERY }, "name" },
      { "no body", function() return ar.schema.create_table(db, "rel_bad_schema") end, CONFIG },
      { "no columns", create(function() end), CONFIG, "at least one column" },
      { "unknown column type", create(function(t) t:column("a", "intger") end), CONFIG, "intger" },
      { "column name empty", create(function(t) t:integer("") end), CONFIG, "column name" },
      { "duplicate column", create(function(t) t:integer("a"); t:integer("a") end), CONFIG, "duplicate" },
      { "unknown column option", create(function(t) t:integer("a", { nullabel = true }) end), CONFIG, "nullabel" },
      { "string size text", create(function(t) t:string("a", { size = "big" }) end), CONFIG, "size" },
      { "string size 0", create(function(t) t:string("a", { size = 0 }) end), { CONFIG, QUERY }, "size" },
      { "string size 100000", create(function(t) t:string("a", { size = 100000 }) end),
        { CONFIG, QUERY, "DataError" }, "a" },
      { "decimal scale > precision", create(function(t) t:decimal("a", { precision = 5, scale = 9 }) end),
        { CONFIG, QUERY }, "scale" },
      { "decimal precision 66", create(function(t) t:decimal("a", { precision = 66, scale = 2 }) end),
        { CONFIG, QUERY, "DataError" }, "a" },
      { "index unknown column", create(function(t) t:integer("a"); t:index("b") end), CONFIG, "b" },
      { "check without raw", create(function(t) t:integer("a"); t:check("c", "a > 0") end), CONFIG, "raw" },
      { "raw with semicolon", function() return ar.schema.raw("a > 0; DROP TABLE y") end, QUERY, ";" },
      { "unknown table option", create(function(t) t:integer("a") end, { if_not_exist = true }), CONFIG,
        "if_not_exist" },
      { "drop_table bad name", function() return ar.schema.drop_table(db, "a;b") end, { CONFIG, QUERY }, "a;b" },
      { "default of wrong type", create(function(t) t:integer("a", { default = {} }) end), { CONFIG, QUERY },
        "default" },
    }
    assert.are.equal(0, #db:query("SHOW TABLES LIKE 'rel_bad_schema'"))
  end)

  it("core.connect and connection methods", function()
    local conn = H.support.connect()
    finally(function() conn:close() end)
    local closed = H.support.connect()
    closed:close()
    H.run_cases{
      { "connect()", function() return core.connect() end, { CONFIG, "ConnectionError" }, "table",
        "core argument errors are luaL strings, not error objects" },
      { "connect(string)", function() return core.connect("x") end, { CONFIG, "ConnectionError" }, "table",
        "core argument errors are luaL strings, not error objects" },
      { "connect unknown option", function() return core.connect(H.support.options{ hots = "x" }) end,
        { CONFIG, "ConnectionError" }, "hots" },
      { "connect port string", function() return core.connect(H.support.options{ port = "x" }) end,
        { CONFIG, "ConnectionError" }, "port" },
      { "connect port 70000", function() return core.connect(H.support.options{ port = 70000 }) end,
        { CONFIG, "ConnectionError" }, "port" },
      { "connect negative timeout", function()
          return core.connect(H.support.options{ connect_timeout = -1 })
        end, { CONFIG, "ConnectionError" }, "connect_timeout" },
      { "execute(nil)", function() return conn:execute() end, { QUERY, CONFIG }, "string",
        "core argument errors are luaL strings, not error objects" },
      { "execute(number)", function() return conn:execute({}) end, { QUERY, CONFIG }, "string",
        "core argument errors are luaL strings, not error objects" },
      { "execute NaN", function() return conn:execute("SELECT ? AS x", 0 / 0) end, "DataError", "nan" },
      { "execute table param", function() return conn:execute("SELECT ? AS x", {}) end, { QUERY, "DataError" } },
      { "prepare bad SQL", function() return conn:prepare("SELEC 1") end, QUERY, "syntax" },
      { "savepoint bad name", function() return conn:savepoint("a; DROP TABLE x") end,
        { QUERY, CONFIG, "TransactionError" }, "savepoint" },
      { "savepoint number", function() return conn:savepoint(5) end, { QUERY, CONFIG, "TransactionError" } },
      { "begin unknown option", function() return conn:begin{ isolaton = "x" } end,
        { CONFIG, QUERY, "TransactionError" }, "isolaton" },
      { "begin bad isolation", function() return conn:begin{ isolation = "NONE; DROP TABLE x" } end,
        { CONFIG, QUERY, "TransactionError" }, "isolation" },
      { "rollback_to unknown savepoint", function()
          conn:begin()
          local ok, err = pcall(conn.rollback_to, conn, "nope")
          conn:rollback()
          if not ok then error(err, 0) end
        end, { QUERY, "TransactionError" }, "nope" },
      { "execute on closed", function() return closed:execute("SELECT 1") end, { "ConnectionError",
        "ConnectionLost" }, "closed" },
      { "ping on closed", function()
          local ok, err = closed:ping()
          assert(ok == false)
          error(err, 0)
        end, { "ConnectionError", "ConnectionLost" }, "closed" },
      { "each on closed", function() return closed:each("SELECT 1") end, { "ConnectionError", "ConnectionLost" },
        "closed" },
    }
    assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
  end)
end)
