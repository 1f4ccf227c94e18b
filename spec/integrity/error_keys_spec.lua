-- Every IntegrityError says what it violated (issue 15): `key` (the index,
-- foreign key, column or CHECK constraint) and, where known, `fields` (its
-- columns) and `table`, parsed once where the backend raises, outside a
-- transaction and inside one, without a statement of its own in the log.
local ar = require("activerecord")
local support = require("support.db")

describe("integrity: the key an IntegrityError violated", function()
  local db, events

  local function failure(sql, ...)
    local ok, err = pcall(db.execute, db, sql, ...)
    assert.is_false(ok, "expected " .. sql .. " to fail")
    assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
    return err
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 1 },
      log = function(ev) if events then events[#events + 1] = ev end end })
    db:execute("DROP TABLE IF EXISTS ek_child")
    db:execute("DROP TABLE IF EXISTS ek_parent")
    db:execute([[CREATE TABLE ek_parent (id INT PRIMARY KEY, code VARCHAR(20) NOT NULL, region INT,
      UNIQUE KEY uq_ek_code_region (code, region)) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE ek_child (id INT PRIMARY KEY, parent_id INT NOT NULL,
      qty INT CHECK (qty > 0), price INT, CONSTRAINT ck_ek_price CHECK (price < 100),
      CONSTRAINT fk_ek_child_parent FOREIGN KEY (parent_id) REFERENCES ek_parent (id)) ENGINE=InnoDB]])
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS ek_child")
    db:execute("DROP TABLE IF EXISTS ek_parent")
    db:close()
  end)

  before_each(function()
    db:execute("DELETE FROM ek_child")
    db:execute("DELETE FROM ek_parent")
    db:execute("INSERT INTO ek_parent (id, code, region) VALUES (1, 'it''s', 7)")
    db:execute("INSERT INTO ek_child (id, parent_id, qty, price) VALUES (1, 1, 1, 1)")
  end)

  it("1062 on a composite unique key: the index name, its columns in key order, the table", function()
    local err = failure("INSERT INTO ek_parent (id, code, region) VALUES (?, ?, ?)", 2, "it's", 7)
    assert.equal(1062, err.code)
    assert.equal("uq_ek_code_region", err.key)
    assert.same({ "code", "region" }, err.fields)
    assert.equal("ek_parent", err.table)
  end)

  it("1062 on the primary key, from an UPDATE and from a qualified INSERT IGNORE-less statement", function()
    db:execute("INSERT INTO ek_parent (id, code, region) VALUES (2, 'b', 7)")
    local err = failure("UPDATE ek_parent SET id = ? WHERE id = ?", 1, 2)
    assert.equal("PRIMARY", err.key)
    assert.same({ "id" }, err.fields)
    local schema = db:query("SELECT DATABASE() AS d")[1].d
    err = failure("INSERT INTO `" .. schema .. "`.`ek_parent` (id, code) VALUES (?, ?)", 1, "z")
    assert.equal("PRIMARY", err.key)
    assert.equal("ek_parent", err.table)
    assert.same({ "id" }, err.fields)
  end)

  it("1452: the foreign key's name and its columns on the child table", function()
    local err = failure("INSERT INTO ek_child (id, parent_id) VALUES (?, ?)", 2, 99)
    assert.equal(1452, err.code)
    assert.equal("fk_ek_child_parent", err.key)
    assert.same({ "parent_id" }, err.fields)
    assert.equal("ek_child", err.table)
    assert.equal("ek_parent", err.ref_table)
  end)

  it("1451: deleting a parent still referenced names the child's foreign key", function()
    local err = failure("DELETE FROM ek_parent WHERE id = ?", 1)
    assert.equal(1451, err.code)
    assert.equal("fk_ek_child_parent", err.key)
    assert.same({ "parent_id" }, err.fields)
    assert.equal("ek_child", err.table)
  end)

  it("1048: the column that cannot be NULL", function()
    local err = failure("INSERT INTO ek_child (id, parent_id) VALUES (?, ?)", 3, ar.null)
    assert.equal(1048, err.code)
    assert.equal("parent_id", err.key)
    assert.same({ "parent_id" }, err.fields)
    assert.equal("ek_child", err.table)
  end)

  it("CHECK (4025 on MariaDB, 3819 on MySQL): a named check and a column's own check", function()
    local err = failure("INSERT INTO ek_child (id, parent_id, price) VALUES (?, ?, ?)", 4, 1, 500)
    assert.is_true(err.code == 4025 or err.code == 3819, tostring(err))
    assert.equal("ck_ek_price", err.key)
    assert.same({ "price" }, err.fields)
    assert.equal("ek_child", err.table)
    err = failure("UPDATE ek_child SET qty = ? WHERE id = ?", 0, 1)
    assert.equal("ek_child", err.table)
    assert.same({ "qty" }, err.fields)
  end)

  it("inside a transaction the same, and the transaction goes on", function()
    db:transaction(function()
      local err = failure("INSERT INTO ek_parent (id, code, region) VALUES (?, ?, ?)", 5, "it's", 7)
      assert.equal("uq_ek_code_region", err.key)
      assert.same({ "code", "region" }, err.fields)
      err = failure("INSERT INTO ek_child (id, parent_id) VALUES (?, ?)", 5, 42)
      assert.equal("fk_ek_child_parent", err.key)
      db:execute("INSERT INTO ek_parent (id, code) VALUES (?, ?)", 6, "ok")
    end)
    assert.equal(1, db:query("SELECT COUNT(*) AS n FROM ek_parent WHERE id = 6")[1].n)
  end)

  it("the log hook sees the failed statement last; a statement that succeeds sends nothing more", function()
    db:reset_schema_cache() -- the look-ups run again
    events = {}
    local err = failure("INSERT INTO ek_parent (id, code, region) VALUES (?, ?, ?)", 9, "it's", 7)
    local seen = events
    events = {}
    db:execute("INSERT INTO ek_parent (id, code, region) VALUES (?, ?, ?)", 9, "new", 7)
    local after = events
    events = nil
    assert.same({ "code", "region" }, err.fields)
    assert.equal(1, #seen)
    assert.is_true(rawequal(err, seen[1].error))
    assert.equal(1, #after)
  end)
end)
