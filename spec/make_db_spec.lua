-- `make db` / `make db-stop` (issue 15, "a database for your own app"): a
-- persistent private server whose `export AR_MYSQL_*` lines connect, whose
-- data survives a stop and the next start, and which db-stop really stops.
-- Runs the Makefile targets as a reader would, in a temporary DB_DIR.
local ar = require("activerecord")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>/dev/null"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

-- The AR_MYSQL_* settings `make db` printed, as ar.connect options.
local function settings(out)
  local env = {}
  for k, v in out:gmatch("export AR_MYSQL_(%u+)=(%S+)") do env[k] = v end
  return { host = env.HOST, port = tonumber(env.PORT), user = env.USER, password = env.PASSWORD,
           database = env.DATABASE, pool = { size = 1 } }, env
end

describe("make db", function()
  local dir

  setup(function()
    dir = sh("mktemp -d /tmp/ar-make-db-XXXXXX"):gsub("%s+$", "") .. "/db"
  end)

  teardown(function()
    sh("make -s db-stop DB_DIR=" .. dir)
    sh("rm -rf " .. dir:gsub("/db$", ""))
  end)

  it("starts a server the printed lines connect to, keeps its data across db-stop, and stops it", function()
    local out, code = sh("make -s db DB_DIR=" .. dir)
    assert.equal(0, code)
    local opts, env = settings(out)
    assert.is_truthy(opts.port and opts.user and opts.database, out)
    assert.equal(dir .. "/mysql.sock", env.SOCKET)

    local db = ar.connect(opts)
    db:execute("CREATE TABLE kept (id INT PRIMARY KEY, note VARCHAR(20))")
    db:execute("INSERT INTO kept VALUES (1, ?)", "survives")
    db:close()

    local _, stop_code = sh("make -s db-stop DB_DIR=" .. dir)
    assert.equal(0, stop_code)
    local ok, err = pcall(function() ar.connect(opts):query("SELECT 1") end)
    assert.is_false(ok)
    assert.equal("ConnectionError", err.kind)

    local again = sh("make -s db DB_DIR=" .. dir)
    local opts2 = settings(again)
    assert.equal(opts.port, opts2.port) -- the same settings: a sourced env file stays right
    local db2 = ar.connect(opts2)
    assert.equal("survives", db2:query("SELECT note FROM kept WHERE id = 1")[1].note)
    -- a second `make db` while it runs reuses it
    assert.same(opts2, (settings(sh("make -s db DB_DIR=" .. dir))))
    assert.equal(1, db2:query("SELECT COUNT(*) AS n FROM kept")[1].n)
    db2:close()
  end)
end)
