-- Capabilities: grouped by category, asked by category or by name, and a
-- clear CapabilityError when a feature is missing.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()

local CATEGORIES = {
  "json", "cte", "window_functions", "set_operations", "returning", "upsert", "locking",
  "full_text", "check_constraints", "transactions", "bulk",
}

describe("backend capabilities", function()
  local scenario = testsuite.default_scenario()
  local db

  setup(function()
    db = provider.backend(scenario)
  end)

  teardown(function()
    provider.teardown("feature/backend", scenario)
  end)

  -- Some capability this server lacks, or nil.
  local function a_missing_capability()
    for category, names in pairs(db:capabilities()) do
      for name, has in pairs(names) do
        if not has then return name, category end
      end
    end
    return nil
  end

  it("groups capabilities by category, as booleans", function()
    local caps = db:capabilities()
    for _, category in ipairs(CATEGORIES) do
      assert.are.equal("table", type(caps[category]), "missing category " .. category)
      assert.is_not_nil(next(caps[category]), "empty category " .. category)
      for name, has in pairs(caps[category]) do
        assert.are.equal("boolean", type(has), category .. "." .. name)
      end
    end
  end)

  it("answers supports() for every name as capabilities() says", function()
    for _, names in pairs(db:capabilities()) do
      for name, has in pairs(names) do
        assert.are.equal(has, db:supports(name), name)
      end
    end
  end)

  it("answers supports() for a category", function()
    local caps = db:capabilities()
    for _, category in ipairs(CATEGORIES) do
      local any = false
      for _, has in pairs(caps[category]) do any = any or has end
      local answer = db:supports(category)
      assert.are.equal("boolean", type(answer))
      -- a category is never supported when none of its names is
      if not any then assert.is_false(answer, category) end
    end
  end)

  it("treats an unknown capability name as an error, not as false", function()
    local err = testsuite.error_of(db.supports, db, "time_travel")
    assert.is_true(ar.errors.is(err), tostring(err))
    assert.matches("time_travel", tostring(err), 1, true)
  end)

  it("require_capability returns true for a supported feature", function()
    for _, names in pairs(db:capabilities()) do
      for name, has in pairs(names) do
        if has then
          assert.is_true(db:require_capability(name, "some feature"))
          return
        end
      end
    end
    testsuite.pending("this server supports nothing at all")
  end)

  it("require_capability raises CapabilityError naming the feature and the server", function()
    local name = a_missing_capability()
    if not name then
      testsuite.pending("every capability is supported by " .. db:server().flavor)
      return
    end
    local server = db:server()
    local err = testsuite.error_of(db.require_capability, db, name, "Frobnicating widgets")
    assert.is_true(ar.errors.is(err, "CapabilityError"), tostring(err))
    local text = tostring(err)
    assert.matches("Frobnicating widgets", text, 1, true)
    assert.matches(server.flavor, text:lower(), 1, true)
    assert.matches(table.concat(server.version, "."), text, 1, true)
  end)

  it("the provider reports the backend's capabilities", function()
    assert.are.same(db:capabilities(), provider.capabilities(scenario))
  end)

  it("requires_capabilities explains which capability is missing on which server", function()
    local missing, reason = testsuite.missing_capabilities(db, "json")
    if db:supports("json") then
      assert.are.same({}, missing)
      assert.is_nil(reason)
      assert.is_true(testsuite.requires_capabilities(db, "json"))
    end
    local name = a_missing_capability()
    if name then
      missing, reason = testsuite.missing_capabilities(db, "cte", name)
      assert.are.same({ name }, missing)
      assert.matches("requires " .. name, reason, 1, true)
      assert.matches(db:server().flavor .. " " .. table.concat(db:server().version, "."),
        reason, 1, true)
    end
  end)
end)
