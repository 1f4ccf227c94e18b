-- The C core on its own (activerecord.core, no models): connect, create a
-- table, insert with bound parameters, read typed values back, use a
-- transaction with a savepoint, stream rows. The ORM's tour is
-- examples/quickstart.lua.
--
--   make demo      (starts a private MariaDB, runs quickstart.lua and this file)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")
local core = ar.core


local conn <close> = core.connect(ar.config_from_env{
  time_zone = "+00:00",
})

local server = conn:server()
print(("connected to %s %d.%d.%d (%s)"):format(server.flavor, server.version[1],
  server.version[2], server.version[3], tostring(conn)))

conn:execute("DROP TABLE IF EXISTS quickstart_users")
conn:execute([[
  CREATE TABLE quickstart_users (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    balance DECIMAL(12,2) NOT NULL DEFAULT 0,
    score DOUBLE,
    active TINYINT(1) NOT NULL DEFAULT 1,
    profile JSON,
    created_at DATETIME(6) NOT NULL
  )]])

-- Values always travel as bound parameters, never inside the SQL text.
local insert = "INSERT INTO quickstart_users (name, balance, score, profile, created_at) "
  .. "VALUES (?, ?, ?, ?, ?)"
local ann = conn:execute(insert, "Ann", "1250.75", 9.5, '{"theme": "dark", "tags": [1, 2]}',
  "2026-11-27 10:00:00.123456")
print(("inserted Ann with id %d"):format(ann.insert_id))
conn:execute(insert, "Bo", "-3.10", nil, ar.null, "2026-11-27 11:30:00")

local result = conn:execute("SELECT * FROM quickstart_users WHERE balance > ? ORDER BY id", "-100")
for _, row in ipairs(result.rows) do
  print(("  #%d %-4s balance=%s (%s) score=%s (%s) created_at=%s profile.theme=%s"):format(
    row.id, row.name, row.balance, type(row.balance), tostring(row.score),
    math.type(row.score) or type(row.score), row.created_at,
    row.profile and row.profile.theme or "nil"))
end

-- A transaction: the savepoint's work is undone, the rest is committed.
conn:begin{ isolation = "READ COMMITTED" }
conn:execute("UPDATE quickstart_users SET balance = balance + ? WHERE name = ?", "100.00", "Bo")
conn:savepoint("risky")
conn:execute("DELETE FROM quickstart_users")
conn:rollback_to("risky")
conn:commit()
local bo = conn:execute("SELECT balance FROM quickstart_users WHERE name = ?", "Bo").rows[1]
print(("after the transaction Bo has %s, and %d users remain"):format(bo.balance,
  conn:execute("SELECT COUNT(*) AS n FROM quickstart_users").rows[1].n))

-- Errors are objects with a kind, the server's code and the SQL (never values).
local ok, err = pcall(conn.execute, conn,
  "INSERT INTO quickstart_users (id, name, created_at) VALUES (?, ?, NOW())", ann.insert_id, "Dup")
print(("duplicate insert refused: %s / kind=%s code=%d"):format(tostring(not ok), err.kind, err.code))

-- Streaming: rows arrive one at a time, without buffering the whole result.
local total = 0
for row in conn:each("SELECT seq FROM seq_1_to_100000") do total = total + row.seq end
print(("streamed 100000 rows, sum = %d"):format(total))

conn:execute("DROP TABLE quickstart_users")
