-- Aggregates come back typed (issue 15): count an integer; sum of an
-- integer field an integer (an exact decimal string past 2^63, never
-- through a float); sum/avg/min/max of a decimal field exact text at the
-- server's scale; avg of an integer or float field a float; min/max the
-- field's Lua type; the same in aggregate() rows and pluck; ar.table
-- queries typed by the server's result type; empty sets (count 0, the
-- others nil).
local ar = require("activerecord")
local support = require("support.db")

describe("typed aggregates", function()
  local db, Issue, Big

  setup(function()
    db = ar.connect(support.options{ pool = { size = 2 } })
    db:execute("DROP TABLE IF EXISTS qa_issues")
    db:execute([[CREATE TABLE qa_issues (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(50) NOT NULL,
      status VARCHAR(20) NOT NULL, priority INT, estimate DOUBLE, cost DECIMAL(12,2), urgent TINYINT(1),
      due DATE, closed_at DATETIME(3)) ENGINE=InnoDB]])
    db:execute("DROP TABLE IF EXISTS qa_big")
    db:execute("CREATE TABLE qa_big (id INT PRIMARY KEY AUTO_INCREMENT, n BIGINT, u BIGINT UNSIGNED) ENGINE=InnoDB")
    Issue = ar.Model{ name = "QaIssue", table = "qa_issues", backend = db, fields = {
      id = "integer", title = "string", status = "string", priority = "integer", estimate = "float",
      cost = { type = "decimal", precision = 12, scale = 2 }, urgent = "boolean", due = "date",
      closed_at = "datetime",
    } }
    Big = ar.Model{ name = "QaBig", table = "qa_big", backend = db,
      fields = { id = "integer", n = "bigint", u = "bigint" } }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS qa_issues")
    db:execute("DROP TABLE IF EXISTS qa_big")
    db:close()
  end)

  before_each(function()
    db:execute("DELETE FROM qa_issues")
    db:execute("DELETE FROM qa_big")
    db:execute([[INSERT INTO qa_issues (title, status, priority, estimate, cost, urgent, due, closed_at) VALUES
      ('a', 'open', 100, 1.5, '10.10', 1, '2026-01-05', '2026-02-01 10:00:00.250'),
      ('b', 'open', 50, 2.25, '0.20', 0, '2026-03-01', NULL),
      ('c', 'closed', 100, 0.25, '5.05', 0, '2025-12-31', '2026-01-15 08:30:00.000'),
      ('d', 'closed', NULL, NULL, NULL, NULL, NULL, NULL)]])
  end)

  it("count is an integer; sum of an integer field is an integer", function()
    assert.are.equal(4, Issue:count())
    assert.are.equal("integer", math.type(Issue:count()))
    assert.are.equal(3, Issue:count("priority"))
    assert.are.equal(2, Issue:count("priority", true))
    local s = Issue:sum("priority")
    assert.are.equal(250, s)
    assert.are.equal("integer", math.type(s))
    assert.are.equal(2, Issue:sum("urgent") + 1) -- a boolean field sums as its 1s
    assert.are.equal("integer", math.type(Issue:sum("urgent")))
    assert.are.equal(150, Issue:where{ status = "open" }:sum("priority"))
    assert.are.equal(200, Issue:sum(ar.col("priority")) - 50)
    assert.are.equal(250, Issue:sum("qa_issues.priority"))
  end)

  it("avg of an integer or float field is a float", function()
    local a = Issue:avg("priority")
    assert.are.equal("float", math.type(a))
    assert.are.equal(83.3333, a) -- the server's AVG of integers has 4 decimals (div_precision_increment)
    local e = Issue:avg("estimate")
    assert.are.equal("float", math.type(e))
    assert.are.equal(4.0 / 3, e)
    assert.are.equal("float", math.type(Issue:where{ status = "open" }:avg("priority")))
    assert.are.equal(75.0, Issue:where{ status = "open" }:avg("priority"))
    assert.are.equal(4.0, Issue:sum("estimate"))
    assert.are.equal("float", math.type(Issue:sum("estimate")))
  end)

  it("sum, avg, min and max of a decimal field are exact text at the server's scale", function()
    assert.are.equal("15.35", Issue:sum("cost"))
    assert.are.equal("0.20", Issue:min("cost"))
    assert.are.equal("10.10", Issue:max("cost"))
    assert.are.equal("5.116667", Issue:avg("cost")) -- scale 2 + div_precision_increment 4
  end)

  it("min and max take the field's Lua type", function()
    assert.are.equal(50, Issue:min("priority"))
    assert.are.equal("integer", math.type(Issue:max("priority")))
    assert.are.equal(0.25, Issue:min("estimate"))
    assert.are.equal("float", math.type(Issue:max("estimate")))
    assert.are.equal("2025-12-31", Issue:min("due"))
    assert.are.equal("2026-03-01", Issue:max("due"))
    assert.are.equal("2026-01-15 08:30:00.000", Issue:min("closed_at"))
    assert.are.equal("2026-02-01 10:00:00.250", Issue:max("closed_at"))
    assert.are.equal("a", Issue:min("title"))
    assert.are.equal("d", Issue:max("title"))
    assert.are.equal(true, Issue:max("urgent"))
    assert.are.equal(false, Issue:min("urgent"))
    -- a record loaded holds the same values
    local rec = Issue:where{ title = "a" }:first()
    assert.are.equal(rec.closed_at, Issue:max("closed_at"))
    assert.are.equal(rec.due, Issue:where{ title = "a" }:max("due"))
  end)

  it("empty sets: count 0, sum/avg/min/max nil (also for only NULLs)", function()
    local none = Issue:where{ status = "nobody" }
    assert.are.equal(0, none:count())
    for _, fn in ipairs({ "sum", "avg", "min", "max" }) do
      for _, col in ipairs({ "priority", "estimate", "cost", "due", "urgent" }) do
        assert.is_nil(none[fn](none, col), fn .. "(" .. col .. ")")
      end
    end
    assert.is_nil(Issue:where{ title = "d" }:sum("priority"))
    assert.are.equal(0, Issue:where{ title = "d" }:count("priority"))
  end)

  it("sums of bigints past 2^63 are exact decimal strings, never floats", function()
    db:execute("INSERT INTO qa_big (n, u) VALUES (9223372036854775807, 18446744073709551615), "
      .. "(9223372036854775807, 18446744073709551615), (3, 1)")
    assert.are.equal("18446744073709551617", Big:sum("n"))
    assert.are.equal("36893488147419103231", Big:sum("u"))
    assert.are.equal("18446744073709551615", Big:max("u")) -- BIGINT UNSIGNED past 2^63: text
    assert.are.equal(9223372036854775807, Big:max("n"))
    assert.are.equal("integer", math.type(Big:max("n")))
    -- right at the edge: still an integer
    assert.are.equal(9223372036854775807, Big:where{ n = 9223372036854775807 }:limit(1):sum("n"))
    assert.are.equal(math.mininteger, (function()
      db:execute("DELETE FROM qa_big")
      db:execute("INSERT INTO qa_big (n) VALUES (-9223372036854775807), (-1)")
      return Big:sum("n")
    end)())
    db:execute("INSERT INTO qa_big (n) VALUES (-5)")
    assert.are.equal("-9223372036854775813", Big:sum("n"))
    -- a table query: the server's DECIMAL of scale 0 is exact too
    assert.are.equal("-9223372036854775813", ar.table("qa_big", db):sum("n"))
  end)

  it("pluck types values by the field, also for column expressions", function()
    local q = Issue:order_by("id")
    assert.are.same({ 100, 50, 100 }, { table.unpack(q:pluck("priority"), 1, 3) })
    assert.are.same({ true, false, false }, { table.unpack(q:pluck("urgent"), 1, 3) })
    assert.are.same({ true, false, false }, { table.unpack(q:pluck(ar.col("qa_issues.urgent")), 1, 3) })
    assert.are.same({ "10.10", "0.20", "5.05" }, { table.unpack(q:pluck("cost"), 1, 3) })
    assert.are.equal("2026-01-05", q:pluck("due")[1])
    assert.is_nil(q:pluck("due")[4])
    -- an expression is typed by the server
    assert.are.same({ 101, 51, 101 }, { table.unpack(q:pluck(ar.col("priority"):add(1)), 1, 3) })
  end)

  it("aggregate() rows: aliased aggregates are typed (grouped columns as the server reads them)", function()
    local rows = Issue:select("status", ar.fn.sum("priority"):as("total"), ar.fn.avg("priority"):as("mean"),
      ar.fn.max("urgent"):as("any_urgent"), ar.fn.sum("cost"):as("spent"), ar.fn.count("*"):as("n"),
      ar.fn.max("closed_at"):as("last_closed"))
      :group_by("status"):order_by("status"):aggregate()
    assert.are.equal(2, #rows)
    local closed, open = rows[1], rows[2]
    assert.are.equal("closed", closed.status)
    assert.are.equal(100, closed.total)
    assert.are.equal("integer", math.type(closed.total))
    assert.are.equal(150, open.total)
    assert.are.equal(75.0, open.mean)
    assert.are.equal("float", math.type(open.mean))
    assert.are.equal(true, open.any_urgent)
    assert.are.equal(false, closed.any_urgent)
    assert.are.equal("10.30", open.spent)
    assert.are.equal(2, open.n)
    assert.are.equal("2026-02-01 10:00:00.250", open.last_closed)
    -- a grouped count through a column alias
    local by = {}
    for _, r in ipairs(Issue:select("status", ar.fn.count("id"):as("n")):group_by("status"):aggregate()) do
      by[r.status] = r.n
    end
    assert.are.same({ open = 2, closed = 2 }, by)
    -- group_by(...):count() counts the groups
    assert.are.equal(2, Issue:group_by("status"):count())
  end)

  it("ar.table queries: the server's result type decides", function()
    local t = ar.table("qa_issues", db)
    assert.are.equal(4, t:count())
    assert.are.equal(250, t:sum("priority"))
    assert.are.equal("integer", math.type(t:sum("priority")))
    assert.are.equal("15.35", t:sum("cost"))
    assert.are.equal(4.0, t:sum("estimate"))
    assert.are.equal("83.3333", t:avg("priority")) -- AVG of an INT column is a DECIMAL on the server
    assert.are.equal(50, t:min("priority"))
    assert.are.equal("2026-03-01", t:max("due"))
    assert.are.equal(1, t:max("urgent")) -- no model: TINYINT is an integer
    assert.is_nil(t:where{ status = "nobody" }:sum("priority"))
    local rows = t:select("status", ar.fn.sum("priority"):as("total")):group_by("status"):order_by("status")
      :aggregate()
    assert.are.equal(100, rows[1].total)
    assert.are.equal("integer", math.type(rows[2].total))
    assert.are.same({ 50, 100 }, t:where(ar.col("priority"):is_not_null()):order_by("priority"):distinct()
      :select("priority"):pluck("priority"))
  end)

  it("repeated aggregates on the shape cache stay typed", function()
    for _ = 1, 3 do
      assert.are.equal(250, Issue:sum("priority"))
      assert.are.equal("15.35", Issue:where(ar.col("id"):gt(0)):sum("cost"))
      assert.are.equal(100, Issue:where{ status = "closed" }:max("priority"))
    end
  end)
end)
