-- Bulk writes: insert_all (multi-row INSERTs sized under max_allowed_packet,
-- all batches in one transaction, generated ids returned), upsert_all
-- (INSERT ... ON DUPLICATE KEY UPDATE with MySQL's affected-row counting:
-- 1 per inserted row, 2 per updated row, 0 per unchanged row) and
-- rec:save{ upsert = true }, which says which of the three happened.
--
--   make examples      (or, against a running server:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/bulk_and_upsert.lua)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")


local inserts = 0
local db <close> = ar.connect(ar.config_from_env{
  log = function(event) if event.sql:match("^INSERT") then inserts = inserts + 1 end end,
})
ar.set_default_backend(db)

ar.schema.create_table(db, "example_players", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("email", { size = 191, nullable = false, unique = true })
  t:string("name", { size = 100, nullable = false })
  t:integer("score", { nullable = false, default = 0 })
end, { force = true })

local created = 0
local Player = ar.Model{
  name = "Player", table = "example_players",
  fields = {
    id = "integer",
    email = { type = "string", required = true, format = "^[^@]+@[^@]+$" },
    name = { type = "string", required = true },
    score = { type = "integer", min = 0 },
  },
  events = { after_create = function() created = created + 1 end },
}

-- insert_all: 2,500 rows in batches of 1,000, so 3 INSERT statements in one
-- transaction; validation and events run per row, ids come back.
local rows = {}
for i = 1, 2500 do rows[i] = { email = ("p%04d@example.test"):format(i), name = "player " .. i, score = i % 100 } end
local res = Player:insert_all(rows, { batch_size = 1000 })
print(("insert_all: %d rows, affected_rows=%d, %d INSERT statements, %d after_create events"):format(
  #res.records, res.affected_rows, inserts, created))
print(("generated ids: first=%d last=%d (consecutive: %s)"):format(res.records[1].id, res.records[2500].id,
  tostring(res.records[2500].id - res.records[1].id == 2499)))

-- A bad row stops the whole call before anything is written.
local before = Player:query():count()
local ok, err = pcall(Player.insert_all, Player, { { email = "ok@example.test", name = "ok" },
                                                   { email = "not-an-email", name = "bad" } })
print(("invalid row refused: %s (%s, row %s); rows still %d, %d written"):format(tostring(not ok), err.kind,
  tostring(err.row), Player:query():count(), Player:query():count() - before))

-- ignore = true skips rows that collide with a unique key.
res = Player:insert_all({ { email = "p0001@example.test", name = "dup" },
                          { email = "new1@example.test", name = "new" } }, { ignore = true })
print(("insert_all{ ignore = true }: %d of 2 rows inserted (the duplicate skipped)"):format(res.affected_rows))

-- upsert_all: keyed by email; one row inserted, one changed, one identical.
res = Player:upsert_all({
  { email = "new2@example.test", name = "brand new", score = 1 },      -- inserted: 1
  { email = "p0002@example.test", name = "player 2", score = 99 },     -- updated:  2
  { email = "p0003@example.test", name = "player 3", score = 3 },      -- unchanged: 0
}, { unique_by = "email", update = { "name", "score" } })
print(("upsert_all: affected_rows=%d (1 inserted + 2 for one updated + 0 for one unchanged)"):format(
  res.affected_rows))
print(("p0002 now scores %d"):format(Player:find_by{ email = "p0002@example.test" }.score))

-- save{ upsert = true } on one record: the affected rows and what happened.
local p = Player.new{ email = "solo@example.test", name = "Solo", score = 10 }
local n, what = p:save{ upsert = true }
print(("save{ upsert = true }: %d %s"):format(n, what))
n, what = Player.new{ email = "solo@example.test", name = "Solo", score = 11 }:save{ upsert = true }
print(("save{ upsert = true }: %d %s"):format(n, what))
n, what = Player.new{ email = "solo@example.test", name = "Solo", score = 11 }:save{ upsert = true }
print(("save{ upsert = true }: %d %s"):format(n, what))

-- Set-based updates and deletes run as one statement each.
local bumped = Player:where(ar.col("score"):ge(90)):update_all{ score = ar.col("score"):add(1) }
local removed = Player:where("email LIKE ?", "new%"):delete_all()
print(("update_all bumped %d rows; delete_all removed %d rows; %d players remain"):format(bumped, removed,
  Player:query():count()))

ar.schema.drop_table(db, "example_players", { if_exists = true })
print("cleaned up")
