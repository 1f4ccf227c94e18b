-- Query finders (issue 15): ids (typed keys), last (the order reversed, by
-- key when unordered), none (no SQL at all: the backend's log sees
-- nothing), merge (another query's parts on the same model; another model
-- refused), paginate (records, page, per_page, total, pages; bad arguments
-- refused; past the end empty with the true total), readonly (records
-- marked through record.mark_readonly), on queries and model classes.
local ar = require("activerecord")
local support = require("support.db")
local record = require("activerecord.record")

local errors = ar.errors

describe("query finders", function()
  local db, Task, Note, sqllog

  -- The statements fn sends.
  local function statements(fn)
    sqllog = {}
    local ok, err = pcall(fn)
    local out = sqllog
    sqllog = nil
    if not ok then error(err, 0) end
    return out
  end

  local function kind_of(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok, "expected an error")
    return type(err) == "table" and err.kind or tostring(err), err
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 2 },
      log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
    db:execute("DROP TABLE IF EXISTS qf_tasks")
    db:execute([[CREATE TABLE qf_tasks (id BIGINT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(50) NOT NULL,
      status VARCHAR(20) NOT NULL, priority INT NOT NULL) ENGINE=InnoDB]])
    db:execute("DROP TABLE IF EXISTS qf_notes")
    db:execute("CREATE TABLE qf_notes (id INT PRIMARY KEY AUTO_INCREMENT, task_id BIGINT, body VARCHAR(50)) "
      .. "ENGINE=InnoDB")
    Task = ar.Model{ name = "QfTask", table = "qf_tasks", backend = db,
      fields = { id = "bigint", title = "string", status = "string", priority = "integer" },
      relations = { notes = ar.has_many("QfNote", { foreign_key = "task_id" }) } }
    Note = ar.Model{ name = "QfNote", table = "qf_notes", backend = db,
      fields = { id = "integer", task_id = "bigint", body = "string" } }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS qf_tasks")
    db:execute("DROP TABLE IF EXISTS qf_notes")
    db:close()
  end)

  before_each(function()
    db:execute("TRUNCATE TABLE qf_tasks")
    db:execute("TRUNCATE TABLE qf_notes")
    for i = 1, 7 do
      db:execute("INSERT INTO qf_tasks (id, title, status, priority) VALUES (?, ?, ?, ?)", i, "t" .. i,
        i % 2 == 0 and "done" or "open", (i * 3) % 5)
    end
    db:execute("INSERT INTO qf_notes (task_id, body) VALUES (1, 'a'), (1, 'b'), (2, 'c')")
  end)

  describe("ids", function()
    it("gives the primary keys, typed, in the query's order", function()
      local ids = Task:ids()
      table.sort(ids)
      assert.are.same({ 1, 2, 3, 4, 5, 6, 7 }, ids)
      assert.are.equal("integer", math.type(ids[1]))
      assert.are.same({ 7, 5, 3, 1 }, Task:where{ status = "open" }:order_by("id", "desc"):ids())
      assert.are.same({ 1, 2 }, Task:joins("notes"):distinct():order_by("qf_tasks.id"):ids())
      assert.are.same({ 2, 3 }, ar.table("qf_notes", db):order_by("id"):offset(1):ids())
      assert.are.same({ 1, 1, 2 }, ar.table("qf_notes", db):order_by("id"):ids("task_id"))
    end)
  end)

  describe("last", function()
    it("reverses the order; unordered, the highest key", function()
      assert.are.equal(7, Task:last().id)
      assert.are.equal(6, Task:where{ status = "done" }:last().id)
      -- ordered by priority (asc) then id desc: last is the smallest priority, highest id ... reversed
      local q = Task:order_by("priority"):order_by("id", "desc")
      local all = q:all()
      assert.are.equal(all[#all].id, q:last().id)
      assert.are.equal("t1", Task:order_by("title", "desc"):last().title)
      assert.is_nil(Task:where{ status = "none" }:last())
      -- a limited query: the last of its rows
      assert.are.equal(3, Task:order_by("id"):limit(3):last().id)
      assert.are.equal(5, Task:order_by("id"):limit(2):offset(3):last().id)
      -- a default scope's order is reversed too
      local Sorted = ar.Model{ name = "QfSorted", table = "qf_tasks", backend = db,
        fields = { id = "bigint", title = "string", status = "string", priority = "integer" },
        mixins = { { default_scopes = {
          by_priority = function(sq) return sq:order_by("priority"):order_by("id") end,
        } } } }
      assert.are.equal(5, Sorted:first().id) -- the lowest priority (0) is id 5
      assert.are.equal(3, Sorted:last().id) -- the highest priority (4) is id 3
      assert.are.equal(3, Sorted:paginate{ page = 7, per_page = 1 }.records[1].id)
      assert.are.equal(5, Sorted:where{ status = "open" }:first().id)
      -- a table query needs an order
      assert.are.equal(3, ar.table("qf_notes", db):order_by("id"):last().id)
      assert.are.equal("QueryError", (kind_of(function() return ar.table("qf_notes", db):last() end)))
    end)
  end)

  describe("none", function()
    it("sends no SQL and answers empty", function()
      local sent = statements(function()
        local n = Task:none()
        assert.are.same({}, n:all())
        assert.are.equal(0, n:count())
        assert.is_nil(n:first())
        assert.is_nil(n:last())
        assert.is_nil(n:one())
        assert.is_false(n:exists())
        assert.are.same({}, n:pluck("title"))
        assert.are.same({}, n:ids())
        assert.is_nil(n:sum("priority"))
        assert.is_nil(n:max("priority"))
        assert.are.same({}, n:select("status"):group_by("status"):aggregate())
        assert.are.equal(0, n:update_all{ status = "x" })
        assert.are.equal(0, n:delete_all())
        local seen = 0
        n:each(function() seen = seen + 1 end)
        n:find_each(function() seen = seen + 1 end)
        assert.are.equal(0, seen)
        -- later steps keep it empty
        assert.are.same({}, n:where{ status = "open" }:order_by("id"):limit(3):all())
        assert.are.equal(0, Task:where{ status = "open" }:none():count())
        assert.are.same({}, ar.table("qf_tasks", db):none():all())
        local page = Task:none():paginate{ page = 1, per_page = 10 }
        assert.are.same({ records = {}, page = 1, per_page = 10, total = 0, pages = 0 }, page)
      end)
      assert.are.same({}, sent)
      assert.are.equal(7, Task:count()) -- nothing was updated or deleted
    end)

    it("inside another query it matches nothing", function()
      assert.are.equal(0, Note:where{ task_id = Task:none():select("id") }:count())
      assert.are.equal(0, Task:merge(Task:none()):count())
      assert.matches("1=0", (Task:none():to_sql()), 1, true)
    end)
  end)

  describe("merge", function()
    it("combines conditions, order, limit and offset", function()
      local open = Task:where{ status = "open" }
      local top = Task:order_by("priority", "desc"):order_by("id"):limit(2)
      local m = open:merge(top)
      assert.are.same({ 3, 1 }, m:ids()) -- open: 1 (priority 3), 3 (4), 5 (0), 7 (1)
      assert.are.same({ 3, 1 }, Task:where{ status = "open" }:merge(top):order_by("title"):ids())
      assert.are.same({ 1 }, open:merge(Task:where(ar.col("priority"):eq(3))):ids())
      assert.are.same({ 5 }, open:merge(Task:order_by("id"):offset(2):limit(1)):ids())
      -- the originals are unchanged
      assert.are.equal(4, open:count())
      assert.are.equal(2, #top:all())
      -- on the class
      assert.are.equal(4, Task:merge(open):count())
    end)

    it("combines joins (once) and relations to load", function()
      local with_notes = Task:joins("notes"):where{ ["qf_notes.body"] = "a" }
      local m = Task:joins("notes"):merge(with_notes):distinct()
      assert.are.same({ 1 }, m:ids())
      local loaded = Task:where{ id = { 1, 2 } }:order_by("id"):merge(Task:with("notes")):all()
      assert.are.equal(2, #loaded)
      local sent = statements(function()
        assert.are.equal(2, #loaded[1]:notes())
        assert.are.equal(1, #loaded[2]:notes())
      end)
      assert.are.same({}, sent)
    end)

    it("refuses another model or something that is not a query", function()
      local kind, err = kind_of(function() return Task:where{ status = "open" }:merge(Note:query()) end)
      assert.are.equal("ConfigError", kind)
      assert.matches("QfNote", tostring(err), 1, true)
      assert.are.equal("ConfigError", (kind_of(function() return Task:query():merge({ status = "open" }) end)))
      assert.are.equal("ConfigError", (kind_of(function() return Task:query():merge(ar.table("qf_tasks", db)) end)))
      assert.are.equal(2, ar.table("qf_notes", db):merge(ar.table("qf_notes", db):where{ task_id = 1 }):count())
    end)
  end)

  describe("paginate", function()
    it("gives a page of records and where it stands", function()
      local p = Task:paginate{ page = 2, per_page = 3 }
      assert.are.equal(2, p.page)
      assert.are.equal(3, p.per_page)
      assert.are.equal(7, p.total)
      assert.are.equal(3, p.pages)
      local ids = {}
      for i, r in ipairs(p.records) do ids[i] = r.id end
      assert.are.same({ 4, 5, 6 }, ids) -- unordered: by primary key
      local last = Task:paginate{ page = 3, per_page = 3 }
      assert.are.equal(1, #last.records)
      assert.are.equal(7, last.records[1].id)
      local open = Task:where{ status = "open" }:order_by("id", "desc"):paginate{ page = 1, per_page = 2 }
      assert.are.same({ 7, 5 }, { open.records[1].id, open.records[2].id })
      assert.are.equal(4, open.total)
      assert.are.equal(2, open.pages)
      local default = Task:paginate()
      assert.are.same({ 1, 25, 7, 1 }, { default.page, default.per_page, default.total, default.pages })
      assert.are.equal(7, #default.records)
    end)

    it("a page past the end is empty, with the true total, and sends only the count", function()
      local p
      local sent = statements(function() p = Task:paginate{ page = 9, per_page = 5 } end)
      assert.are.same({}, p.records)
      assert.are.same({ 9, 5, 7, 2 }, { p.page, p.per_page, p.total, p.pages })
      local selects = {}
      for _, sql in ipairs(sent) do
        if sql:find("qf_tasks", 1, true) then selects[#selects + 1] = sql end
      end
      assert.are.equal(1, #selects, table.concat(sent, "\n"))
      assert.matches("COUNT(*)", selects[1], 1, true)
    end)

    it("refuses bad arguments with ConfigError", function()
      local bad = {
        { page = 0 }, { page = -1 }, { page = 1.5 }, { page = "2" }, { per_page = 0 }, { per_page = 1001 },
        { per_page = 2.0 }, { page = 1, per_page = 10, size = 3 }, "page 2",
      }
      for _, opts in ipairs(bad) do
        local kind = kind_of(function() return Task:paginate(opts) end)
        assert.are.equal("ConfigError", kind, tostring(opts))
      end
      assert.are.equal("ConfigError", (kind_of(function() return Task:limit(3):paginate{ page = 1 } end)))
      assert.are.equal(1000, Task:paginate{ per_page = 1000 }.per_page)
    end)

    it("works on table queries", function()
      local p = ar.table("qf_notes", db):order_by("id"):paginate{ page = 2, per_page = 2 }
      assert.are.same({ 3, 2, 3 }, { p.total, p.pages, p.records[1].id })
    end)
  end)

  describe("readonly", function()
    it("marks the records it loads", function()
      if not record.mark_readonly then
        pending("record.mark_readonly has not landed yet")
        return
      end
      local recs = Task:readonly():where{ status = "open" }:order_by("id"):all()
      assert.are.equal(4, #recs)
      for _, r in ipairs(recs) do assert.is_true(record.is_readonly(r)) end
      assert.is_true(record.is_readonly(Task:where{ id = 2 }:readonly():first()))
      assert.is_true(record.is_readonly(Task:readonly():last()))
      assert.is_false(record.is_readonly(Task:first()) and true or false)
      local seen = 0
      Task:readonly():each(function(r)
        assert.is_true(record.is_readonly(r))
        seen = seen + 1
      end)
      assert.are.equal(7, seen)
      local rec = Task:readonly():first()
      rec.title = "changed"
      local kind = kind_of(function() return rec:save() end)
      assert.are.equal("ReadOnlyRecord", kind)
      assert.are.equal("t1", Task:find(1).title)
      assert.are.equal("ReadOnlyRecord", (kind_of(function() return rec:delete() end)))
      assert.are.equal(7, Task:count())
    end)

    it("keeps the query's SQL and its shape", function()
      assert.are.equal((Task:where{ status = "open" }:to_sql()), (Task:readonly():where{ status = "open" }:to_sql()))
      assert.are.equal(4, Task:where{ status = "open" }:readonly():count())
      assert.is_not_nil(Task:readonly():where{ status = "open" }._shape)
    end)
  end)

  it("errors say what is wrong", function()
    assert.is_true(errors.is(select(2, pcall(function() return Task:merge(Note:query()) end)), "ConfigError"))
  end)
end)
