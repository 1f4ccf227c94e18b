-- soft_delete with dependents: a soft delete keeps the children (so
-- restore() brings the whole record back), a hard delete removes them, and
-- `restrict` still refuses while children exist.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/mixins"

describe("mixin soft_delete with dependent relations", function()
  local scenario = testsuite.default_scenario()
  local db
  local Project, Task, Locked

  local function tasks_of(id)
    return db:query("SELECT COUNT(*) AS n FROM mx_sdd_tasks WHERE project_id = ?", id)[1].n
  end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ar.schema.create_table(db, "mx_sdd_projects", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 50 })
      t:datetime("deleted_at", { precision = 6 })
    end, { force = true })
    ar.schema.create_table(db, "mx_sdd_tasks", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("project_id", { index = true })
    end, { force = true })
    Task = ar.Model{ name = "SddTask", table = "mx_sdd_tasks", backend = db,
      fields = { id = "integer", project_id = "integer" } }
    Project = ar.Model{ name = "SddProject", table = "mx_sdd_projects", backend = db, mixins = { "soft_delete" },
      fields = { id = "integer", name = "string" },
      relations = { tasks = ar.has_many("SddTask", { foreign_key = "project_id", dependent = "delete" }) } }
    Locked = ar.Model{ name = "SddLocked", table = "mx_sdd_projects", backend = db, mixins = { "soft_delete" },
      fields = { id = "integer", name = "string" },
      relations = { tasks = ar.has_many("SddTask", { foreign_key = "project_id", dependent = "restrict" }) } }
  end)

  teardown(function()
    ar.schema.drop_table(db, "mx_sdd_tasks", { if_exists = true })
    ar.schema.drop_table(db, "mx_sdd_projects", { if_exists = true })
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM mx_sdd_tasks")
    db:execute("DELETE FROM mx_sdd_projects")
  end)

  it("keeps the children on a soft delete, so restore() brings everything back", function()
    local p = Project:create{ name = "p" }
    Task:create{ project_id = p.id }
    Task:create{ project_id = p.id }
    p:delete()
    assert.are.equal(2, tasks_of(p.id))
    assert.is_nil(Project:find(p.id))
    p:restore()
    assert.are.equal(2, #Project:find(p.id):tasks())
  end)

  it("removes the children on a hard delete", function()
    local p = Project:create{ name = "p" }
    Task:create{ project_id = p.id }
    p:destroy()
    assert.are.equal(0, tasks_of(p.id))
  end)

  it("still refuses a soft delete under restrict while children exist", function()
    local p = Locked:create{ name = "p" }
    Task:create{ project_id = p.id }
    local err = testsuite.error_of(function() return p:delete() end)
    assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
    assert.is_not_nil(Locked:find(p.id))
  end)
end)
