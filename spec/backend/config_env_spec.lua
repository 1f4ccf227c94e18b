-- ar.config_from_env: connect options from the environment. The variables
-- are set for a child lua5.4 process (Lua cannot set its own environment).
local function run(env, code)
  local cmd = env .. " LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 -e "
    .. ("%q"):format(code) .. " 2>&1"
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

describe("ar.config_from_env", function()
  it("reads host, port, user, password and database under a prefix, TCP winning over the socket", function()
    local out = run("T_HOST=db.example T_PORT=3307 T_SOCKET=/tmp/x.sock T_USER=app T_PASSWORD=s3 T_DATABASE=shop",
      [[local c = require("activerecord").config_from_env({ pool = { size = 2 } }, "T_")
        print(c.host, c.port, math.type(c.port), tostring(c.socket), c.user, c.password, c.database, c.pool.size)]])
    assert.are.equal("db.example\t3307\tinteger\tnil\tapp\ts3\tshop\t2\n", out)
  end)

  it("keeps the socket when no host is given, and extra options override", function()
    local out = run("T_SOCKET=/tmp/x.sock T_USER=app",
      [[local c = require("activerecord").config_from_env({ user = "other" }, "T_")
        print(c.socket, c.user, tostring(c.host))]])
    assert.are.equal("/tmp/x.sock\tother\tnil\n", out)
  end)

  it("refuses a port that is not a number with a ConfigError", function()
    local out = run("T_PORT=abc", [[local ok, e = pcall(require("activerecord").config_from_env, nil, "T_")
      print(ok, e.kind, e.message)]])
    assert.truthy(out:find("false\tConfigError\tT_PORT must be a port number", 1, true), out)
  end)
end)
