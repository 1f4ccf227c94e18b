-- Quickstart: the ORM in one page. Two tables through the schema DSL, two
-- models with a relation between them, validation that refuses a bad
-- record (a duplicate name included), a race-safe find_or_create_by, a
-- query with typed aggregates and a page, eager loading, a transaction that
-- rolls back as a whole, and a handler that runs only once a change is
-- committed. examples/core_tour.lua shows the C core underneath on its own.
--
--   make demo      (starts a private MariaDB and runs this file)
--   or, against your own server (make db):
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/quickstart.lua
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")

local db <close> = ar.connect(ar.config_from_env())
ar.set_default_backend(db)
local server = db:server()
print(("connected to %s %s"):format(server.flavor, table.concat(server.version, ".")))

-- Tables: the schema DSL (a real app would use migrations, see README).
ar.schema.drop_table(db, "quickstart_issues", { if_exists = true })
ar.schema.drop_table(db, "quickstart_projects", { if_exists = true })
ar.schema.create_table(db, "quickstart_projects", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("name", { size = 100, nullable = false, unique = true })
  t:timestamps()
end)
ar.schema.create_table(db, "quickstart_issues", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("project_id", { nullable = false,
    references = { table = "quickstart_projects", on_delete = "cascade" } })
  t:string("title", { size = 200, nullable = false })
  t:enum("status", { values = { "open", "closed" }, default = "open", nullable = false })
  t:integer("priority", { nullable = false, default = 3 })
  t:json("labels")
  t:timestamps()
end)

-- Models: fields with validation rules, relations both ways, a scope.
local Project = ar.Model{
  name = "Project", table = "quickstart_projects",
  fields = {
    id = { type = "integer", primary_key = true },
    name = { type = "string", required = true, length = { 2, 100 }, unique = true },
  },
  mixins = { "timestamps" },
  relations = { issues = ar.has_many("Issue", { foreign_key = "project_id", order_by = { "id", "asc" } }) },
}
local Issue = ar.Model{
  name = "Issue", table = "quickstart_issues",
  fields = {
    id = { type = "integer", primary_key = true },
    project_id = { type = "integer", required = true },
    title = { type = "string", required = true },
    status = { type = "string", one_of = { "open", "closed" } },
    priority = { type = "integer", min = 1, max = 5 },
    labels = "json",
  },
  mixins = { "timestamps" },
  relations = { project = ar.belongs_to("Project", { foreign_key = "project_id" }) },
  scopes = { open = function(q) return q:where{ status = "open" } end },
  events = {
    -- after the COMMIT only: a rolled-back close notifies nobody
    after_commit = { function(issue)
      if issue.status == "closed" then print(("  notify: #%d %q was closed"):format(issue.id, issue.title)) end
    end, on = "update" },
  },
}

-- Create: values are bound parameters; the record reads back what the
-- server filled in (id, defaults, created_at in UTC).
local tracker = Project:create{ name = "Tracker" }
print(("created project #%d %s at %s UTC"):format(tracker.id, tracker.name, tracker.created_at))
Issue:create{ project_id = tracker.id, title = "Login page is slow", priority = 1, labels = { "perf" } }
Issue:create{ project_id = tracker.id, title = "Typo on the home page", priority = 4 }
local crash = Issue:create{ project_id = tracker.id, title = "Crash on save", priority = 2, labels = { "bug" } }
print(("new issues start %s, priority %d"):format(crash.status, crash.priority))

-- Uniqueness: checked before the write; a race that slips past the check
-- comes back as the same ValidationError. find_or_create_by is race-safe.
local dup_ok, dup = pcall(Project.create, Project, { name = "Tracker" })
print(("duplicate project refused: %s / name %s"):format(tostring(not dup_ok), dup.errors.name[1]))
local same, created = Project:find_or_create_by({ name = "Tracker" })
print(("find_or_create_by found #%d (created: %s)"):format(same.id, tostring(created)))

-- Validation: nothing is written, the error names every bad field.
local ok, err = pcall(Issue.create, Issue, { project_id = tracker.id, title = "", priority = 9 })
print(("invalid issue refused: %s / kind=%s"):format(tostring(not ok), err.kind))
local fields = {}
for field, messages in pairs(err.errors) do fields[#fields + 1] = field .. " " .. messages[1] end
table.sort(fields)
print("  " .. table.concat(fields, "; "))

-- Queries: immutable, chainable, compiled to SQL with bound values.
local urgent = Issue:open():where(ar.col("priority"):le(2)):order_by("priority"):all()
for _, issue in ipairs(urgent) do print(("  urgent: [%d] %s"):format(issue.priority, issue.title)) end
print(("open issues: %d of %d"):format(Issue:open():count(), Issue:count()))
local total = Issue:open():sum("priority")
print(("open priorities sum to %d (%s), average %.2f"):format(total, math.type(total), Issue:open():avg("priority")))
local page = Issue:query():order_by("id"):paginate{ page = 2, per_page = 2 }
print(("page %d of %d: %d of %d issues"):format(page.page, page.pages, #page.records, page.total))

-- Relations: accessors are methods; with() loads them eagerly (one
-- statement per relation level, however many projects).
local projects = Project:query():with("issues"):all()
local issues = projects[1]:issues() -- already loaded: no statement
print(("%s has %d issues; the first is %q"):format(projects[1].name, #issues, issues[1].title))
print(("issue #%d belongs to %s"):format(crash.id, crash:project().name))

-- A transaction: all or nothing. The error inside rolls both writes back.
ok = pcall(db.transaction, db, function()
  crash:update{ status = "closed" }
  Issue:create{ project_id = tracker.id, title = "Follow-up" }
  error("changed my mind")
end)
print(("transaction rolled back: %s; crash is %s in the database, %d issues"):format(
  tostring(not ok), Issue:find(crash.id).status, Issue:count()))

db:transaction(function()
  crash:update{ status = "closed" }
  Issue:where{ project_id = tracker.id, status = "open" }:update_all{ priority = ar.col("priority"):add(1) }
end)
print(("committed: crash is %s, open priorities now %s"):format(Issue:find(crash.id).status,
  table.concat(Issue:open():order_by("id"):pluck("priority"), ", ")))

ar.schema.drop_table(db, "quickstart_issues")
ar.schema.drop_table(db, "quickstart_projects")
