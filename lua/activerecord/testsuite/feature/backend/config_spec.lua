-- ar.connect configuration: typos and wrong types are ConfigErrors that
-- name the option before any connection; the url form works.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()

describe("backend configuration", function()
  local scenario = testsuite.default_scenario()

  teardown(function()
    provider.teardown("feature/backend", scenario)
  end)

  local function config_error(overrides, what)
    local ok, err = pcall(provider.new_backend, scenario, overrides)
    assert.is_false(ok, "accepted " .. tostring(what))
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    return err
  end

  it("rejects an unknown option, naming it and listing the accepted ones", function()
    local err = config_error({ hots = "127.0.0.1" })
    assert.matches("hots", err.message, 1, true)
    for _, accepted in ipairs({ "host", "database", "pool", "log" }) do
      assert.matches(accepted, err.message, 1, true)
    end
  end)

  it("rejects an unknown pool option, naming it and listing the accepted ones", function()
    local err = config_error({ pool = { sise = 3 } })
    assert.matches("sise", err.message, 1, true)
    assert.matches("checkout_timeout", err.message, 1, true)
  end)

  it("rejects options of the wrong type, naming them", function()
    local cases = {
      { { connect_timeout = "soon" }, "connect_timeout" },
      { { pool = { size = "2" } }, "size" },
      { { pool = { size = 0 } }, "size" },
      { { log = "stdout" }, "log" },
      { { pool = "big" }, "pool" },
    }
    for _, case in ipairs(cases) do
      local err = config_error(case[1], case[2])
      assert.matches(case[2], err.message, 1, true)
    end
  end)

  it("connects from a url", function()
    if not testsuite.requires_operations(provider, "url") then return end
    local db = ar.connect({ url = provider.url(scenario) })
    local direct = provider.backend(scenario)
    assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
    assert.are.same(direct:server(), db:server())
    db:close()
  end)

  it("rejects a malformed url or one with an unknown parameter", function()
    for _, url in ipairs({ "not a url", "ftp://example.invalid/db", "" }) do
      local err = testsuite.error_of(ar.connect, { url = url })
      assert.is_true(ar.errors.is(err, "ConfigError"), url .. ": " .. tostring(err))
    end
    if provider.url then
      local url = provider.url(scenario)
      url = url .. (url:find("?", 1, true) and "&" or "?") .. "colour=blue"
      local err = testsuite.error_of(ar.connect, { url = url })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("colour", err.message, 1, true)
    end
  end)

  it("reports bad credentials as a ConnectionError, not a ConfigError", function()
    local err = testsuite.error_of(provider.new_backend, scenario,
      { password = "definitely-not-the-password" })
    assert.is_true(ar.errors.is(err, "ConnectionError"), tostring(err))
  end)
end)
