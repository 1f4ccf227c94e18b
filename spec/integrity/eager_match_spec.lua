-- Eager loading matches children to owners with the server's equality for
-- the key (issue 12, design §8 "Records follow the database"): on a _ci
-- string key 'ABC' and 'abc' are the same key for the lazy accessor's WHERE,
-- so `with()` must give the same children; a _bin key stays case-sensitive.
local ar = require("activerecord")
local support = require("support.db")

local function ids(list)
  local out = {}
  for i, r in ipairs(list or {}) do out[i] = r.id end
  table.sort(out)
  return out
end

-- Models over owners keyed by a string `code` in the given collation.
local function define(db, suffix, collation)
  local owners, kids, tags, links = "em_owners" .. suffix, "em_kids" .. suffix, "em_tags" .. suffix,
    "em_links" .. suffix
  for _, t in ipairs({ links, tags, kids, owners }) do db:execute("DROP TABLE IF EXISTS " .. t) end
  local str = "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE " .. collation
  db:execute("CREATE TABLE " .. owners .. " (id INT AUTO_INCREMENT PRIMARY KEY, code " .. str
    .. " NOT NULL, UNIQUE KEY (code)) ENGINE=InnoDB")
  db:execute("CREATE TABLE " .. kids .. " (id INT AUTO_INCREMENT PRIMARY KEY, owner_code " .. str
    .. ", title VARCHAR(50)) ENGINE=InnoDB")
  db:execute("CREATE TABLE " .. tags .. " (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB")
  db:execute("CREATE TABLE " .. links .. " (owner_code " .. str .. ", tag_id INT) ENGINE=InnoDB")
  local M = {}
  M.Owner = ar.Model{
    name = "EmOwner" .. suffix, table = owners, backend = db,
    fields = { id = "integer", code = "string" },
    relations = {
      kids = ar.has_many("EmKid" .. suffix, { foreign_key = "owner_code", primary_key = "code" }),
      kid = ar.has_one("EmKid" .. suffix, { foreign_key = "owner_code", primary_key = "code", order_by = "id" }),
      tags = ar.has_many_through("EmTag" .. suffix, { through = links, source_key = "owner_code",
                                                      target_key = "tag_id", primary_key = "code" }),
    },
  }
  M.Kid = ar.Model{
    name = "EmKid" .. suffix, table = kids, backend = db,
    fields = { id = "integer", owner_code = "string", title = "string" },
    relations = { owner = ar.belongs_to("EmOwner" .. suffix, { foreign_key = "owner_code", primary_key = "code" }) },
  }
  M.Tag = ar.Model{ name = "EmTag" .. suffix, table = tags, backend = db, fields = { id = "integer", name = "string" } }
  M.drop = function()
    for _, t in ipairs({ links, tags, kids, owners }) do db:execute("DROP TABLE IF EXISTS " .. t) end
  end
  -- owners 'ABC' and 'xyz'; children's keys differ in case and trailing spaces
  M.abc = M.Owner:create{ code = "ABC" }
  M.xyz = M.Owner:create{ code = "xyz" }
  for i, code in ipairs({ "abc", "ABC", "Abc ", "xyz", "XYZ", "xyz " }) do
    M.Kid:create{ owner_code = code, title = "kid " .. i }
  end
  local t1, t2 = M.Tag:create{ name = "t1" }, M.Tag:create{ name = "t2" }
  db:execute("INSERT INTO " .. links .. " (owner_code, tag_id) VALUES ('abc', ?), ('ABC', ?), ('xyz', ?)",
    t1.id, t2.id, t1.id)
  return M
end

-- For every owner: the eager children equal the lazy ones (fresh records).
local function assert_same_both_ways(M)
  local eager = M.Owner:query():with("kids", "kid", "tags"):order_by("id"):all()
  assert.equal(2, #eager)
  for _, o in ipairs(eager) do
    local lazy = M.Owner:find(o.id)
    assert.same(ids(lazy:kids()), ids(o:kids()))
    assert.same(lazy:kid() and lazy:kid().id, o:kid() and o:kid().id)
    assert.same(ids(lazy:tags()), ids(o:tags()))
  end
  local kids = M.Kid:query():with("owner"):order_by("id"):all()
  for _, k in ipairs(kids) do
    local lazy = M.Kid:find(k.id)
    assert.same(lazy:owner() and lazy:owner().id, k:owner() and k:owner().id)
  end
  return eager, kids
end

describe("integrity: eager loading matches keys as the server does", function()
  local db

  setup(function() db = ar.connect(support.options()) end)
  teardown(function() db:close() end)

  it("a _ci string key: with() returns what the lazy accessor returns (case and trailing spaces)", function()
    local M = define(db, "_ci", "utf8mb4_general_ci")
    local eager, kids = assert_same_both_ways(M)
    -- 'ABC' owns 'abc', 'ABC' and 'Abc ' (PAD SPACE); 'xyz' owns 'xyz', 'XYZ', 'xyz '
    assert.equal(3, #eager[1]:kids())
    assert.equal(3, #eager[2]:kids())
    assert.equal(2, #eager[1]:tags())
    for _, k in ipairs(kids) do assert.is_not_nil(k:owner()) end
    M.drop()
  end)

  it("a _bin string key stays case-sensitive (trailing spaces still pad)", function()
    local M = define(db, "_bin", "utf8mb4_bin")
    local eager, kids = assert_same_both_ways(M)
    assert.same({ "ABC" }, (function()
      local out = {}
      for _, k in ipairs(eager[1]:kids()) do out[#out + 1] = k.owner_code end
      return out
    end)())
    assert.equal(2, #eager[2]:kids()) -- 'xyz' and 'xyz ' (utf8mb4_bin pads)
    assert.equal(1, #eager[1]:tags())
    local owned = 0
    for _, k in ipairs(kids) do if k:owner() then owned = owned + 1 end end
    assert.equal(3, owned) -- 'ABC', 'xyz', 'xyz '
    M.drop()
  end)

  it("a NO PAD _ci key: trailing spaces differ, case does not", function()
    local M = define(db, "_nopad", "utf8mb4_general_nopad_ci")
    local eager = assert_same_both_ways(M)
    assert.equal(2, #eager[1]:kids()) -- 'abc', 'ABC'; not 'Abc '
    assert.equal(2, #eager[2]:kids()) -- 'xyz', 'XYZ'; not 'xyz '
    M.drop()
  end)
end)
