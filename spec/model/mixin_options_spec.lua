-- Mixin options (issue 14): the built-in mixins take their column names as
-- options — optimistic_lock { column }, timestamps { created_at, updated_at },
-- soft_delete { column }, uuid { version, binary, column } — and the field
-- takes the column's name; each mixin declares the options it takes and an
-- option it does not take (or of the wrong type) is a ConfigError naming
-- the mixin and the option, for a user's mixin as for a built-in.
local ar = require("activerecord")
local support = require("support.db")

local errors = ar.errors

local function config_error(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected a ConfigError, got success")
  assert.is_true(errors.is(err, "ConfigError"), tostring(err))
  return err
end

describe("mixin options", function()
  local db
  local serial = 0
  local function name(prefix)
    serial = serial + 1
    return prefix .. serial
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 2 } })
    db:execute("DROP TABLE IF EXISTS mxo_docs")
    db:execute([[CREATE TABLE mxo_docs (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(40),
      lock_version INT NOT NULL DEFAULT 0, created_on DATETIME(6), changed_on DATETIME(6),
      removed_at DATETIME(6)) ENGINE=InnoDB]])
    db:execute("DROP TABLE IF EXISTS mxo_keys")
    db:execute("CREATE TABLE mxo_keys (uid BINARY(16) PRIMARY KEY, title VARCHAR(40)) ENGINE=InnoDB")
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS mxo_docs")
    db:execute("DROP TABLE IF EXISTS mxo_keys")
    db:close()
  end)

  before_each(function()
    db:execute("DELETE FROM mxo_docs")
    db:execute("DELETE FROM mxo_keys")
  end)

  it("optimistic_lock { column = \"lock_version\" } guards writes with that column", function()
    local Doc = ar.Model{ name = name("MxoLock"), table = "mxo_docs", backend = db,
      mixins = { { "optimistic_lock", { column = "lock_version" } } },
      fields = { id = "integer", title = "string" } }
    assert.is_nil(Doc.fields.version)
    local d = Doc:create{ title = "a" }
    assert.are.equal(0, d.lock_version) -- the column's default
    local stale = Doc:find(d.id)
    d.title = "b"
    d:save()
    assert.are.equal(1, d.lock_version)
    assert.are.equal(1, db:query("SELECT lock_version FROM mxo_docs WHERE id = ?", d.id)[1].lock_version)
    stale.title = "c"
    local err = support.error_of(stale.save, stale)
    assert.is_true(errors.is(err, "StaleObjectError"), tostring(err))
    assert.are.equal("b", db:query("SELECT title FROM mxo_docs WHERE id = ?", d.id)[1].title)
  end)

  it("timestamps { created_at = ..., updated_at = ... } stamps the named columns", function()
    local Doc = ar.Model{ name = name("MxoStamp"), table = "mxo_docs", backend = db,
      mixins = { { "timestamps", { created_at = "created_on", updated_at = "changed_on" } } },
      fields = { id = "integer", title = "string" } }
    assert.is_nil(Doc.fields.created_at)
    local d = Doc:create{ title = "a" }
    assert.is_string(d.created_on)
    assert.are.equal(d.created_on, d.changed_on)
    local row = db:query("SELECT created_on, changed_on FROM mxo_docs WHERE id = ?", d.id)[1]
    assert.is_not_nil(row.created_on)
    assert.is_true(Doc.fields.created_on.write_once)
    local err = support.error_of(function() d.created_on = "2000-01-01 00:00:00" end)
    assert.is_true(errors.is(err, "ValidationError"), tostring(err))
    -- only updated_at renamed: created_at keeps its name (and must exist)
    local err2 = config_error(function()
      return ar.Model{ name = name("MxoStamp"), table = "mxo_docs", backend = db,
        mixins = { { "timestamps", { updated_at = "changed_on" } } }, fields = { id = "integer" } }:count()
    end)
    assert.matches("created_at: table mxo_docs has no column created_at", err2.message, 1, true)
  end)

  it("soft_delete { column = \"removed_at\" } marks, hides and restores with that column", function()
    local Doc = ar.Model{ name = name("MxoSoft"), table = "mxo_docs", backend = db,
      mixins = { { "soft_delete", { column = "removed_at" } } },
      fields = { id = "integer", title = "string" } }
    local a = Doc:create{ title = "a" }
    Doc:create{ title = "b" }
    a:delete()
    assert.is_true(a:is_deleted())
    assert.is_not_nil(db:query("SELECT removed_at FROM mxo_docs WHERE id = ?", a.id)[1].removed_at)
    assert.are.same({ "b" }, Doc:query():pluck("title"))
    assert.are.same({ "a" }, Doc:only_deleted():pluck("title"))
    assert.are.equal(2, Doc:with_deleted():count())
    a:restore()
    assert.are.equal(2, Doc:query():count())
  end)

  it("uuid { column = \"uid\", binary = true, version = 7 } makes that key", function()
    local Key = ar.Model{ name = name("MxoUuid"), table = "mxo_keys", backend = db,
      mixins = { { "uuid", { column = "uid", binary = true, version = 7 } } }, fields = { title = "string" } }
    assert.are.equal("uid", Key.primary_key)
    local a = Key:create{ title = "a" }
    local b = Key:create{ title = "b" }
    assert.matches("^%x+%-%x+%-7", a.uid) -- a version 7 UUID
    assert.is_true(a.uid:sub(1, 13) <= b.uid:sub(1, 13)) -- time-ordered (milliseconds first)
    assert.are.equal(16, #db:query("SELECT uid FROM mxo_keys WHERE title = 'a'")[1].uid)
    assert.are.equal("a", Key:find(a.uid).title)
    local err = config_error(ar.Model, { name = name("MxoUuid"), table = "mxo_keys", backend = db,
      mixins = { { "uuid", { version = 5 } } } })
    assert.matches("version", err.message, 1, true)
  end)

  it("refuses an option a mixin does not take, naming the mixin and the option", function()
    local err = config_error(ar.Model, { name = "MxoTypo", table = "mxo_docs", backend = db,
      mixins = { { "optimistic_lock", { colum = "lock_version" } } }, fields = { id = "integer" } })
    assert.matches("mixin 'optimistic_lock': unknown option 'colum' (accepted: column)", err.message, 1, true)
    assert.are.same({ "MxoTypo", "optimistic_lock", "colum" }, { err.model, err.mixin, err.option })
    err = config_error(ar.Model, { name = "MxoTypo2", table = "mxo_docs", backend = db,
      mixins = { { "timestamps", { created = "created_on" } } }, fields = { id = "integer" } })
    assert.matches("mixin 'timestamps': unknown option 'created' (accepted: created_at, updated_at)", err.message,
      1, true)
    err = config_error(ar.Model, { name = "MxoTypo3", table = "mxo_docs", backend = db,
      mixins = { { "soft_delete", { column = 5 } } }, fields = { id = "integer" } })
    assert.matches("mixin 'soft_delete': option 'column' must be a string", err.message, 1, true)
    err = config_error(ar.Model, { name = "MxoTypo4", table = "mxo_docs", backend = db,
      mixins = { { "uuid", { binary = "yes" } } } })
    assert.matches("option 'binary' must be a boolean", err.message, 1, true)
  end)

  it("checks a user's mixin by the options it declares, and hands them to its setup", function()
    local seen
    ar.register_mixin("mxo_audit", function()
      return {
        options = { table = "string" },
        setup = function(model, hooks, o)
          assert.is_table(hooks)
          seen = { model.name, o.table }
        end,
      }
    end)
    ar.Model{ name = "MxoAudited", table = "mxo_docs", backend = db, fields = { id = "integer" },
      mixins = { { "mxo_audit", { table = "audit_log" } } } }
    assert.are.same({ "MxoAudited", "audit_log" }, seen)
    local err = config_error(ar.Model, { name = "MxoAudited2", table = "mxo_docs", backend = db,
      fields = { id = "integer" }, mixins = { { "mxo_audit", { tabel = "x" } } } })
    assert.matches("mixin 'mxo_audit': unknown option 'tabel' (accepted: table)", err.message, 1, true)
    -- a mixin that declares no options takes none
    ar.register_mixin("mxo_plain", { events = { before_save = function() end } })
    err = config_error(ar.Model, { name = "MxoPlain", table = "mxo_docs", backend = db,
      fields = { id = "integer" }, mixins = { { "mxo_plain", { x = 1 } } } })
    assert.matches("mixin 'mxo_plain': unknown option 'x' (it takes none)", err.message, 1, true)
    -- options that are not a table
    err = config_error(ar.Model, { name = "MxoPlain2", table = "mxo_docs", backend = db,
      fields = { id = "integer" }, mixins = { { "timestamps", "created_on" } } })
    assert.matches("mixin 'timestamps': options must be a table", err.message, 1, true)
  end)
end)
