-- Default scopes declared in the model definition (`default_scopes = { name
-- = function(q) ... end }`): every query, find and count of the model takes
-- them; `q:unscope(name)` drops one, `Model:unscoped()` and `q:unscoped()`
-- drop all of them. A malformed declaration is a ConfigError.
local ar = require("activerecord")
local support = require("support.db")

describe("model: default_scopes in the definition", function()
  local db, Issue

  setup(function()
    db = ar.connect(support.options())
    db:execute("DROP TABLE IF EXISTS ds_issues")
    db:execute([[CREATE TABLE ds_issues (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(50),
      project_id INT NOT NULL, archived TINYINT(1) NOT NULL DEFAULT 0) ENGINE=InnoDB]])
    Issue = ar.Model{ name = "DsIssue", table = "ds_issues", backend = db,
      fields = { id = "integer", title = "string", project_id = "integer", archived = "boolean" },
      default_scopes = {
        live = function(q) return q:where{ archived = false } end,
        project = function(q) return q:where{ project_id = 1 } end,
      } }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS ds_issues")
    db:close()
  end)

  before_each(function()
    db:execute("DELETE FROM ds_issues")
    db:execute([[INSERT INTO ds_issues (id, title, project_id, archived) VALUES
      (1, 'open p1', 1, 0), (2, 'archived p1', 1, 1), (3, 'open p2', 2, 0), (4, 'archived p2', 2, 1)]])
  end)

  local function ids(list)
    local out = {}
    for i, r in ipairs(list) do out[i] = r.id end
    table.sort(out)
    return out
  end

  it("applies every default scope to queries, find and count", function()
    assert.same({ 1 }, ids(Issue:all()))
    assert.same({ 1 }, ids(Issue:where("id > ?", 0):all()))
    assert.equal(1, Issue:count())
    assert.is_nil(Issue:find(2))
    assert.is_nil(Issue:find(3))
    assert.equal("open p1", Issue:find(1).title)
  end)

  it("unscope(name) drops one of them", function()
    assert.same({ 1, 2 }, ids(Issue:query():unscope("live"):all()))
    assert.same({ 1, 3 }, ids(Issue:query():unscope("project"):all()))
  end)

  it("Model:unscoped() and q:unscoped() drop all of them", function()
    assert.same({ 1, 2, 3, 4 }, ids(Issue:unscoped():all()))
    assert.same({ 2, 3, 4 }, ids(Issue:where("id > ?", 1):unscoped():all()))
    assert.same({ 4 }, ids(Issue:query():unscope("live"):where{ project_id = 2 }:unscoped()
      :where{ archived = true }:all()))
    assert.equal(4, Issue:unscoped():count())
  end)

  it("refuses a default scope that is not name -> function", function()
    local err = support.error_of(ar.Model, { name = "DsBad", table = "ds_issues", backend = db,
      fields = { id = "integer" }, default_scopes = { live = "archived = 0" } })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("default_scopes", err.message, 1, true)
    err = support.error_of(ar.Model, { name = "DsBad", table = "ds_issues", backend = db,
      fields = { id = "integer" }, default_scopes = function() end })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
  end)
end)
