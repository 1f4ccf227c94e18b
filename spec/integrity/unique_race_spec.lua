-- Two writers at once (issue 15): two lua5.4 processes create the same
-- unique value. Both pass the uniqueness query, then wait in a
-- before_create handler on a lock this spec holds, so both INSERTs are sent
-- after both checks; one wins, the other's duplicate key comes back from
-- create as a ValidationError on the field with the server's IntegrityError
-- as its cause, and exactly one row exists.
local ar = require("activerecord")
local support = require("support.db")
local h = require("migrate.helpers")

local TABLE = "uq_race_users"
local LOCK = "ar_spec_uq_race"

-- The writer: prints "created <id>" or "invalid <field> <message> <cause kind> <cause code> <key>".
local WRITER = ([[
local ar = require("activerecord")
local db = ar.connect(ar.config_from_env{ pool = { size = 1 } })
local User = ar.Model{ name = "RaceUser", table = %q, backend = db,
  fields = { id = { type = "integer", primary_key = true },
             email = { type = "string", size = 100, unique = true } },
  events = { before_create = function()
    db:execute("DO GET_LOCK(?, 30)", %q)
    db:execute("DO RELEASE_LOCK(?)", %q)
  end } }
local ok, res = pcall(User.create, User, { email = "same@example.com" })
if ok then
  io.write("created ", tostring(res.id), "\n")
else
  local field, msgs = next(res.errors or {})
  local cause = res.cause or {}
  io.write("invalid ", tostring(field), " ", tostring(msgs and msgs[1]), "|", tostring(cause.kind), " ",
    tostring(cause.code), " ", tostring(cause.key), "\n")
  if not (res.kind == "ValidationError") then io.write(tostring(res), "\n") end
end
db:close()
]]):format(TABLE, LOCK, LOCK)

describe("integrity: one unique value created by two processes at once", function()
  local db, holder

  local function waiting()
    return db:query("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO GET_LOCK%'")[1].n
  end

  setup(function()
    db = ar.connect(support.options())
    holder = support.connect()
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:execute("CREATE TABLE " .. TABLE .. [[ (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(100),
      UNIQUE KEY uq_race_email (email)) ENGINE=InnoDB]])
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    holder:close()
    db:close()
  end)

  it("the loser gets a ValidationError on the field caused by the IntegrityError; one row", function()
    assert.equal(1, holder:execute("SELECT GET_LOCK(?, 0) AS got", LOCK).rows[1].got)
    local cmd = h.lua_env() .. " lua5.4 -e " .. h.quote(WRITER)
    local a, b = h.start(cmd), h.start(cmd)
    -- both checked the value (no row yet) and wait on the lock before their INSERT
    local deadline = os.time() + 30
    while waiting() < 2 and os.time() < deadline do
      db:execute("DO SLEEP(0.05)")
    end
    local both = waiting()
    assert.equal(0, db:query("SELECT COUNT(*) AS n FROM " .. TABLE)[1].n)
    holder:execute("DO RELEASE_LOCK(?)", LOCK)
    local code_a, out_a = a()
    local code_b, out_b = b()
    assert.equal(2, both, out_a .. "\n--\n" .. out_b)
    assert.equal(0, code_a, out_a)
    assert.equal(0, code_b, out_b)
    local outs = { out_a, out_b }
    table.sort(outs)
    assert.matches("^created %d+\n$", outs[1])
    assert.equal("invalid email has already been taken|IntegrityError 1062 uq_race_email\n", outs[2])
    assert.equal(1, db:query("SELECT COUNT(*) AS n FROM " .. TABLE)[1].n)
  end)
end)
