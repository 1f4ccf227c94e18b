-- counter_cache under two writers at once (issue 16): two lua5.4 processes
-- create, move and delete children of the same two owners concurrently.
-- The counters change in SQL (`n = n + 1`), so no update is lost: afterwards
-- each owner's count equals its rows. A read-modify-write counter loses
-- increments here (both processes read the same n).
local ar = require("activerecord")
local support = require("support.db")
local h = require("migrate.helpers")

local OWNERS, CHILDREN = "cc_race_boards", "cc_race_cards"
local N = 400

-- The writer: N creates on owner 1 or 2, every third card moved to the
-- other owner, every fifth deleted; prints "done <created>".
local WRITER = ([[
local ar = require("activerecord")
local db = ar.connect(ar.config_from_env{ pool = { size = 1 } })
ar.Model{ name = "RaceBoard", table = %q, backend = db }
local Card = ar.Model{ name = "RaceCard", table = %q, backend = db,
  relations = { board = ar.belongs_to("RaceBoard", { foreign_key = "board_id", counter_cache = "cards_count" }) } }
local seed = 1
local made = 0
for i = 1, %d do
  local c = Card:create{ board_id = (i + seed) %% 2 + 1, title = "c" .. i }
  made = made + 1
  if i %% 3 == 0 then c:update{ board_id = 3 - c.board_id } end
  if i %% 5 == 0 then c:delete() end
end
io.write("done ", made, "\n")
db:close()
]]):format(OWNERS, CHILDREN, N)

describe("integrity: counter_cache with two processes writing at once", function()
  local db

  setup(function()
    db = ar.connect(support.options())
    db:execute("DROP TABLE IF EXISTS " .. CHILDREN)
    db:execute("DROP TABLE IF EXISTS " .. OWNERS)
    db:execute("CREATE TABLE " .. OWNERS .. " (id INT PRIMARY KEY, cards_count INT NOT NULL DEFAULT 0) ENGINE=InnoDB")
    db:execute("CREATE TABLE " .. CHILDREN .. [[ (id INT PRIMARY KEY AUTO_INCREMENT, board_id INT NOT NULL,
      title VARCHAR(20) NOT NULL, KEY (board_id)) ENGINE=InnoDB]])
    db:execute("INSERT INTO " .. OWNERS .. " (id) VALUES (1), (2)")
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS " .. CHILDREN)
    db:execute("DROP TABLE IF EXISTS " .. OWNERS)
    db:close()
  end)

  it("each owner's count equals its rows afterwards", function()
    local cmd = h.lua_env() .. " lua5.4 -e " .. h.quote(WRITER)
    local a, b = h.start(cmd), h.start(cmd)
    local code_a, out_a = a()
    local code_b, out_b = b()
    assert.equal(0, code_a, out_a)
    assert.equal(0, code_b, out_b)
    assert.equal("done " .. N .. "\n", out_a)
    assert.equal("done " .. N .. "\n", out_b)
    local rows = db:query("SELECT b.id, b.cards_count, (SELECT COUNT(*) FROM " .. CHILDREN
      .. " c WHERE c.board_id = b.id) AS n FROM " .. OWNERS .. " b ORDER BY b.id")
    local total = 0
    for _, r in ipairs(rows) do
      assert.equal(r.n, r.cards_count, "board " .. r.id)
      total = total + r.n
    end
    -- every fifth of each process's cards was deleted
    assert.equal(2 * (N - N // 5), total)
  end)
end)
