-- Statements the server cannot prepare run through the text protocol (only
-- when they carry no parameters), with rows typed like execute's, and any
-- further result sets drained so the connection stays usable.
local db = require("support.db")

describe("core text protocol fallback", function()
  local conn

  setup(function()
    conn = db.connect()
    conn:execute("DROP PROCEDURE IF EXISTS ar_two_results")
    conn:execute("CREATE PROCEDURE ar_two_results() BEGIN SELECT 1 AS first, 2.5 AS x; SELECT 2 AS second; END")
  end)

  teardown(function()
    conn:execute("DROP PROCEDURE IF EXISTS ar_two_results")
    conn:close()
  end)

  it("runs a statement that cannot be prepared and types its values", function()
    local row = conn:execute("EXECUTE IMMEDIATE 'SELECT 7 AS n, ''x'' AS s, 1.5e0 AS d'").rows[1]
    assert.are.equal(7, row.n)
    assert.are.equal("integer", math.type(row.n))
    assert.are.equal("x", row.s)
    assert.are.equal(1.5, row.d)
  end)

  it("returns the first result set and drains the others", function()
    local res = conn:execute("EXECUTE IMMEDIATE 'CALL ar_two_results()'")
    assert.are.equal(1, res.rows[1].first)
    assert.are.equal("2.5", res.rows[1].x)
    -- the second result set was read off the wire: the next command works
    assert.are.equal(3, conn:execute("SELECT 3 AS n").rows[1].n)
  end)

  it("refuses parameters for a statement that cannot be prepared", function()
    local err = db.error_of(conn.execute, conn, "EXECUTE IMMEDIATE ?", "SELECT 1")
    assert.are.equal("QueryError", err.kind)
    assert.are.equal(1295, err.code)
  end)
end)
