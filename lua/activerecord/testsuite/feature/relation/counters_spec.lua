-- counter_cache and touch on belongs_to (issue 16): the owner's count moves
-- by one in SQL on create, delete and reassignment (never read-modify-
-- write: a count changed behind the record's back stays right), a loaded
-- owner follows (and gets its value back on rollback); touch sets the
-- owner's updated_at when a child is saved or deleted.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/relation"

describe("counter_cache and touch", function()
  local scenario = testsuite.default_scenario()
  local db
  local Board, Card
  local TABLES = { "cc_cards", "cc_stickers", "cc_boards" }

  local function count_of(id)
    return db:query("SELECT cards_count FROM cc_boards WHERE id = ?", id)[1].cards_count
  end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    local S = ar.schema
    S.create_table(db, "cc_boards", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 50 })
      t:integer("cards_count", { nullable = false, default = 0 })
      t:integer("stickers_total", { nullable = false, default = 0 })
      t:datetime("updated_at", { precision = 6 })
    end, { force = true })
    S.create_table(db, "cc_cards", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("board_id", { index = true })
      t:string("title", { size = 50 })
    end, { force = true })
    S.create_table(db, "cc_stickers", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("board_id", { index = true })
    end, { force = true })
    Board = ar.Model{ name = "CcBoard", table = "cc_boards", backend = db,
      fields = { id = "integer", name = "string", cards_count = "integer", stickers_total = "integer",
                 updated_at = "datetime" },
      relations = { cards = ar.has_many("CcCard", { foreign_key = "board_id" }),
                    stickers = ar.has_many("CcSticker", { foreign_key = "board_id", dependent = "delete" }) } }
    Card = ar.Model{ name = "CcCard", table = "cc_cards", backend = db,
      fields = { id = "integer", board_id = "integer", title = "string" },
      relations = { board = ar.belongs_to("CcBoard", { foreign_key = "board_id", counter_cache = true,
                                                       touch = true }) } }
    ar.Model{ name = "CcSticker", table = "cc_stickers", backend = db,
      fields = { id = "integer", board_id = "integer" },
      relations = { board = ar.belongs_to("CcBoard", { foreign_key = "board_id",
                                                       counter_cache = "stickers_total" }) } }
  end)

  teardown(function()
    for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    for _, t in ipairs(TABLES) do db:execute("DELETE FROM " .. t) end
  end)

  it("create, reassignment and delete move the counts by one", function()
    local a, b = Board:create{ name = "a" }, Board:create{ name = "b" }
    local c1 = Card:create{ board_id = a.id, title = "1" }
    Card:create{ board_id = a.id, title = "2" }
    assert.equal(2, count_of(a.id))
    c1:update{ board_id = b.id }
    assert.equal(1, count_of(a.id))
    assert.equal(1, count_of(b.id))
    c1.board = a
    c1:save()
    assert.equal(2, count_of(a.id))
    assert.equal(0, count_of(b.id))
    c1:delete()
    assert.equal(1, count_of(a.id))
    -- a card without a board counts nowhere
    Card:create{ title = "loose" }:delete()
    assert.equal(1, count_of(a.id))
  end)

  it("adds in SQL: a count changed by someone else stays right", function()
    local a = Board:create{ name = "a" }
    db:execute("UPDATE cc_boards SET cards_count = 10 WHERE id = ?", a.id)
    Card:create{ board_id = a.id }
    assert.equal(11, count_of(a.id))
  end)

  it("a loaded owner follows, and a rollback gives it its count back", function()
    local a = Board:create{ name = "a" }
    local card = Card:create{ board_id = a.id }
    local owner = card:board()
    assert.equal(1, owner.cards_count)
    local c2 = Card:new{ board_id = a.id }
    c2.board = owner
    c2:save()
    assert.equal(2, owner.cards_count)
    assert.is_false(owner:is_dirty())
    pcall(db.transaction, db, function()
      local c3 = Card:new{}
      c3.board = owner
      c3:save()
      assert.equal(3, owner.cards_count)
      error("give up")
    end)
    assert.equal(2, owner.cards_count)
    assert.equal(2, count_of(a.id))
  end)

  it("through the owner's query: create, remove (nullify) and clear keep the count", function()
    local a = Board:create{ name = "a" }
    local c = a:cards_query():create{ title = "x" }
    a:cards_query():create{ title = "y" }
    a:cards_query():create{ title = "z" }
    assert.equal(3, count_of(a.id))
    a:cards_query():remove(c)
    assert.equal(2, count_of(a.id))
    assert.equal(2, a:cards_query():clear())
    assert.equal(0, count_of(a.id))
    -- dependent = "delete": one statement, the count follows
    a:stickers_query():create{}
    a:stickers_query():create{}
    assert.equal(2, db:query("SELECT stickers_total FROM cc_boards")[1].stickers_total)
    a:stickers_query():clear()
    assert.equal(0, db:query("SELECT stickers_total FROM cc_boards")[1].stickers_total)
  end)

  it("a failing child write leaves the count as it was", function()
    local a = Board:create{ name = "a" }
    Card:on("after_create", function(rec) if rec.title == "boom" then error("boom") end end)
    local ok = pcall(Card.create, Card, { board_id = a.id, title = "boom" })
    assert.is_false(ok)
    assert.equal(0, count_of(a.id))
    assert.equal(0, db:query("SELECT COUNT(*) AS n FROM cc_cards")[1].n)
  end)

  it("touch sets the owner's updated_at on a child's save and delete", function()
    local a = Board:create{ name = "a" }
    db:execute("UPDATE cc_boards SET updated_at = '2001-01-01 00:00:00' WHERE id = ?", a.id)
    local function stamp() return db:query("SELECT updated_at FROM cc_boards WHERE id = ?", a.id)[1].updated_at end
    local card = Card:create{ board_id = a.id }
    assert.is_true(stamp() > "2001-01-02")
    db:execute("UPDATE cc_boards SET updated_at = '2001-01-01 00:00:00' WHERE id = ?", a.id)
    card:update{ title = "renamed" }
    assert.is_true(stamp() > "2001-01-02")
    db:execute("UPDATE cc_boards SET updated_at = '2001-01-01 00:00:00' WHERE id = ?", a.id)
    card:delete()
    assert.is_true(stamp() > "2001-01-02")
  end)

  it("an owner without the counter column is a ConfigError naming it", function()
    local Bad = ar.Model{ name = "CcBadCard", table = "cc_cards", backend = db,
      fields = { id = "integer", board_id = "integer", title = "string" },
      relations = { board = ar.belongs_to("CcBoard", { foreign_key = "board_id", counter_cache = "nope" }) } }
    local a = Board:create{ name = "a" }
    local ok, err = pcall(Bad.create, Bad, { board_id = a.id })
    assert.is_false(ok)
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("CcBoard has no field 'nope'", err.message, 1, true)
    assert.equal(0, db:query("SELECT COUNT(*) AS n FROM cc_cards")[1].n)
  end)
end)
