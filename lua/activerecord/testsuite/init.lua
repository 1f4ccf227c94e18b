--- The shared, backend-agnostic test suite: busted specs under
-- activerecord/testsuite/feature/<group>/ that get everything backend-
-- specific from a *provider*. A backend ships a provider; the specs never
-- name a server or write its dialect's SQL.
--
-- A provider is a table:
--
--   name                              "mysql", "postgres", ...
--   scenarios()                       -> { "default", ... } (the first is the default)
--   backend(scenario)                 -> connected backend, cached per scenario
--   new_backend(scenario, overrides)  -> a fresh, uncached backend with the
--                                        scenario's settings plus `overrides`
--                                        (ar.connect options: pool, log, ...);
--                                        the caller closes it
--   setup(group, scenario, names)     creates the fixture tables `names` (and what
--                                     they reference) from testsuite.fixtures,
--                                     dropping them first
--   teardown(group, scenario)         drops what setup created for that group
--   capabilities(scenario)            -> the backend's grouped capabilities
--
-- Optional operations (a spec that needs a missing one is marked pending):
--
--   now() / sleep(seconds)            wall clock, for timing specs
--   session_id(db)                    id of the server session the next statement
--                                     of this coroutine runs on
--   kill_session(scenario, id)        kills that session from another connection
--   sleep_statement(seconds)          -> sql, params of a statement lasting `seconds`
--   lock_wait_options(seconds)        -> ar.connect overrides making row-lock waits
--                                        give up after `seconds` (LockTimeoutError)
--   ping_count(db)                    -> pings the serving session has received
--   set_max_packet(scenario, bytes)   -> limits statement size for new connections;
--                                        returns a function that restores it
--   url(scenario)                     -> the scenario's settings as a connect url
--   concurrent_session(scenario, steps) -> a session in another OS process that runs
--                                        `steps` ({ sql = "..." } | { signal = true } |
--                                        { sleep = s }) in a transaction, with
--                                        :wait_signal() and :finish() -> ok, detail
-- @module activerecord.testsuite
local M = {}

M.REQUIRED = { "scenarios", "backend", "new_backend", "setup", "teardown", "capabilities" }

local current

--- Validates a provider.
-- @tparam table p the provider
-- @treturn table `p`
-- @raise an error naming what is missing (`name` and the required operations)
function M.check(p)
  if type(p) ~= "table" then error("test provider must be a table, got " .. type(p), 2) end
  local missing = {}
  if type(p.name) ~= "string" then missing[#missing + 1] = "name" end
  for _, key in ipairs(M.REQUIRED) do
    if type(p[key]) ~= "function" then missing[#missing + 1] = key end
  end
  if #missing > 0 then
    error("not a test provider: missing " .. table.concat(missing, ", "), 2)
  end
  return p
end

--- Sets the provider explicitly (a backend's own runner may do this).
-- @tparam table p the provider
-- @treturn table `p`
-- @raise as `check`
function M.use(p)
  current = M.check(p)
  return current
end

--- The provider: the one set by `use`, or the module named by `AR_TESTSUITE_PROVIDER`.
-- @treturn table the provider
-- @raise an error when neither is set, or as `check`
function M.provider()
  if current then return current end
  local name = os.getenv("AR_TESTSUITE_PROVIDER")
  if not name or name == "" then
    error("no test provider: set AR_TESTSUITE_PROVIDER (e.g. providers.mysql) or call "
      .. "testsuite.use(provider)", 2)
  end
  current = M.check(require(name))
  return current
end

--- The scenario a spec runs in when it does not iterate over all of them (the provider's first).
-- @treturn string the scenario's name
function M.default_scenario()
  return M.provider().scenarios()[1]
end

-- ------------------------------------------------------- pending ------

-- busted gives each running test its own `pending` (it throws, ending the
-- test) through the test function's environment, not through _G; find it
-- from the caller's frames.
local function busted_pending()
  local ok, api = pcall(require, "busted")
  local declare = ok and api.pending or nil -- the describe-level one, not ours
  for level = 3, 30 do
    local info = debug.getinfo(level, "f")
    if not info then break end
    for i = 1, 255 do
      local name, env = debug.getupvalue(info.func, i)
      if not name then break end
      if name == "_ENV" and type(env) == "table" then
        local p = env.pending
        if type(p) == "function" and p ~= declare then return p end
      end
    end
  end
  return nil
end

--- Marks the running spec pending (busted's pending throws, ending the test).
-- @tparam string reason why
-- @raise an error when not inside a running busted test
function M.pending(reason)
  local p = busted_pending()
  if not p then error("testsuite.pending: not inside a running busted test (" .. reason .. ")", 2) end
  return p(reason) -- tail calls: busted reports the spec's line, not ours
end

local function describe_server(backend)
  local ok, s = pcall(backend.server, backend)
  if not ok or type(s) ~= "table" then return "this backend" end
  local v = type(s.version) == "table" and table.concat(s.version, ".") or tostring(s.version or "")
  return tostring(s.flavor or "server") .. " " .. v
end

--- The capabilities `backend` lacks among `...`.
-- @param backend the backend
-- @param ... capability names
-- @treturn table the missing names
-- @treturn ?string the reason text, when some are missing
function M.missing_capabilities(backend, ...)
  local missing = {}
  for i = 1, select("#", ...) do
    local name = select(i, ...)
    local ok, has = pcall(backend.supports, backend, name)
    if not (ok and has) then missing[#missing + 1] = name end
  end
  if #missing == 0 then return missing, nil end
  return missing, ("requires %s (%s lacks it)"):format(table.concat(missing, ", "),
    describe_server(backend))
end

--- True when the backend has every capability; otherwise marks the running
-- spec pending with the reason.
-- @param backend the backend
-- @param ... capability names
-- @treturn boolean true (inside busted, a missing one never returns)
-- @usage if not testsuite.requires_capabilities(db, "cte") then return end
function M.requires_capabilities(backend, ...)
  local missing, reason = M.missing_capabilities(backend, ...)
  if #missing == 0 then return true end
  return M.pending(reason) -- never returns inside busted (pending throws)
end

--- Like `requires_capabilities`, for the provider's optional operations.
-- @tparam table provider the provider
-- @param ... operation names (`"concurrent_session"`, ...)
-- @treturn boolean true (inside busted, a missing one never returns)
function M.requires_operations(provider, ...)
  local missing = {}
  for i = 1, select("#", ...) do
    local name = select(i, ...)
    if type(provider[name]) ~= "function" then missing[#missing + 1] = name end
  end
  if #missing == 0 then return true end
  return M.pending(("requires provider operation %s (provider %s lacks it)"):format(
    table.concat(missing, ", "), provider.name))
end

-- ------------------------------------------------------- scenarios ------

--- Runs `fn(scenario)` inside a describe block per scenario of the provider;
-- `AR_TESTSUITE_SCENARIOS` (comma-separated) narrows the list.
-- @tparam function fn the spec body
-- @raise an error when not called while busted loads a spec file
function M.each_scenario(fn)
  local p = M.provider()
  local only = os.getenv("AR_TESTSUITE_SCENARIOS")
  local wanted
  if only and only ~= "" then
    wanted = {}
    for s in only:gmatch("[^,%s]+") do wanted[s] = true end
  end
  for _, scenario in ipairs(p.scenarios()) do
    if not wanted or wanted[scenario] then
      -- busted's describe lives in the spec's environment, like pending
      local describe = M._busted_global("describe")
      if not describe then error("each_scenario must run while busted loads a spec file", 2) end
      describe("[" .. scenario .. "]", function() fn(scenario) end)
    end
  end
end

-- A busted global (describe, it, ...) seen from the calling spec's frames.
function M._busted_global(name)
  for level = 3, 30 do
    local info = debug.getinfo(level, "f")
    if not info then break end
    for i = 1, 255 do
      local upname, env = debug.getupvalue(info.func, i)
      if not upname then break end
      if upname == "_ENV" and type(env) == "table" and type(env[name]) == "function" then
        return env[name]
      end
    end
  end
  local ok, api = pcall(require, "busted")
  return ok and api[name] or nil
end

-- ------------------------------------------------------- time ------

--- Wall-clock seconds (the provider's clock, else busted's).
-- @treturn number seconds
function M.now()
  local p = M.provider()
  if p.now then return p.now() end
  return require("busted").monotime()
end

--- Sleeps (the provider's sleep, else busted's).
-- @tparam number seconds how long
function M.sleep(seconds)
  local p = M.provider()
  if p.sleep then return p.sleep(seconds) end
  return require("busted").sleep(seconds)
end

-- ------------------------------------------------------- log hook ------

-- Backends built through instrument() route their `log` events here, so a
-- spec can listen to a backend it did not configure (statement counting).
local listeners = setmetatable({}, { __mode = "k" }) -- backend -> { fn = true }

--- `connect(opts)` with a log hook added (chaining any `opts.log`); registers
-- the backend so `count_statements`/`listen` work on it. Providers use this.
-- @tparam function connect e.g. `ar.connect`
-- @tparam table opts the connect options
-- @return the backend
-- @raise what `connect` raises
function M.instrument(connect, opts)
  local user_log = opts.log
  -- a malformed `log` goes through untouched, for the backend to reject
  if user_log ~= nil and type(user_log) ~= "function" then return connect(opts) end
  local set = {}
  local copy = {}
  for k, v in pairs(opts) do copy[k] = v end
  copy.log = function(event)
    if user_log then user_log(event) end
    for fn in pairs(set) do fn(event) end
  end
  local db = connect(copy)
  listeners[db] = set
  return db
end

--- Calls `fn(event)` for every statement `db` runs until the returned function is called.
-- @param db a backend built through `instrument`
-- @tparam function fn the listener
-- @treturn function stops listening
-- @raise an error for a backend not built through `instrument`
function M.listen(db, fn)
  local set = listeners[db]
  if not set then
    error("testsuite.listen: this backend was not built through testsuite.instrument", 2)
  end
  set[fn] = true
  return function() set[fn] = nil end
end

--- Runs `fn()` and returns how many statements `db` ran meanwhile (BEGIN,
-- COMMIT and ROLLBACK count like any statement unless filtered out).
-- @param db a backend built through `instrument`
-- @tparam function fn the work
-- @tparam[opt] string|function filter a Lua pattern matched against the
--   upper-cased SQL, or a function(event) -> boolean
-- @treturn integer the count
-- @treturn table the log events
-- @raise what `fn` raised; an error for a backend not built through `instrument`
function M.count_statements(db, fn, filter)
  local events = {}
  local stop = M.listen(db, function(event)
    local keep = true
    if type(filter) == "string" then
      keep = event.sql:upper():find(filter) ~= nil
    elseif type(filter) == "function" then
      keep = filter(event)
    end
    if keep then events[#events + 1] = event end
  end)
  local ok, err = pcall(fn)
  stop()
  if not ok then error(err, 0) end
  return #events, events
end

-- ------------------------------------------------------- errors ------

--- The error `fn(...)` raised.
-- @tparam function fn the function
-- @param ... its arguments
-- @return the error value
-- @raise an error (failing the spec) when `fn` did not raise
function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error, got success", 2) end
  return err
end

return M
