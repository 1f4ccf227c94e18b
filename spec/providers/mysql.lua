-- The MySQL/MariaDB provider of the shared suite (activerecord.testsuite):
-- backends from the AR_MYSQL_* settings (spec/support/db.lua), scenarios
-- from spec/providers/mysql_scenarios.lua, fixtures compiled to MySQL DDL by
-- the backend's dialect, and the server-specific operations some specs need
-- (session ids, KILL, SLEEP, lock-wait limits, a concurrent session).
local ar = require("activerecord")
local core = require("activerecord.backend.mysql.core")
local testsuite = require("activerecord.testsuite")
local fixtures = require("activerecord.testsuite.fixtures")
local support = require("support.db")

local M = { name = "mysql" }

local SCENARIOS = require("providers.mysql_scenarios")
local by_name = {}
for _, s in ipairs(SCENARIOS) do by_name[s.name] = s end

local function scenario_of(name)
  name = name or SCENARIOS[1].name
  local s = by_name[name]
  if not s then error(("unknown scenario %q"):format(tostring(name)), 3) end
  return s
end

local cache = {}   -- scenario name -> backend
local admins = {}  -- scenario name -> backend used to KILL sessions
local created = {} -- scenario name -> group -> fixture names

function M.scenarios()
  local names = {}
  for i, s in ipairs(SCENARIOS) do names[i] = s.name end
  return names
end

-- ar.connect options of `scenario` with `overrides` on top.
function M.options(scenario, overrides)
  local s = scenario_of(scenario)
  local opts = support.options(s.connect)
  for k, v in pairs(overrides or {}) do opts[k] = v end
  return opts
end

function M.new_backend(scenario, overrides)
  return testsuite.instrument(ar.connect, M.options(scenario, overrides))
end

function M.backend(scenario)
  local s = scenario_of(scenario)
  if not cache[s.name] then cache[s.name] = M.new_backend(s.name, { pool = { size = 4 } }) end
  return cache[s.name]
end

function M.capabilities(scenario)
  return M.backend(scenario):capabilities()
end

-- ---------------------------------------------------------- fixtures ----

local function supports_fn(db)
  return function(name) return db:supports(name) end
end

local function drop(db, names)
  local all = fixtures.with_dependents(names)
  for i = #all, 1, -1 do
    ar.schema.drop_table(db, all[i], { if_exists = true })
  end
end

-- Creates the fixture tables `names` (and what they reference) afresh.
function M.setup(group, scenario, names)
  local s = scenario_of(scenario)
  local db = M.backend(s.name)
  local wanted = fixtures.resolve(names)
  drop(db, wanted)
  local supports = supports_fn(db)
  for _, name in ipairs(wanted) do
    local def = fixtures.define(name, supports, s.table_options)
    db:execute(db.dialect:create_table_sql(def))
  end
  created[s.name] = created[s.name] or {}
  created[s.name][group] = wanted
  return db
end

-- Drops what setup created for `group`; the scenario's backends close once
-- no group uses them.
function M.teardown(group, scenario)
  local s = scenario_of(scenario)
  local groups = created[s.name]
  if groups and groups[group] then
    drop(M.backend(s.name), groups[group])
    groups[group] = nil
  end
  if not groups or next(groups) == nil then
    if cache[s.name] then cache[s.name]:close() end
    if admins[s.name] then admins[s.name]:close() end
    cache[s.name], admins[s.name], created[s.name] = nil, nil, nil
  end
end

-- ---------------------------------------------------- server operations ----

M.now = core.monotime
M.sleep = core.sleep

function M.session_id(db)
  return db:query("SELECT CONNECTION_ID() AS id")[1].id
end

function M.kill_session(scenario, id)
  local s = scenario_of(scenario)
  if not admins[s.name] then admins[s.name] = M.new_backend(s.name, { pool = { size = 1 } }) end
  -- KILL takes no placeholder; the id is checked to be an integer
  local n = assert(math.tointeger(id), "session id must be an integer")
  admins[s.name]:execute("KILL CONNECTION " .. n)
end

-- Sets the server's packet limit for connections made from now on;
-- returns a function restoring the previous limit.
function M.set_max_packet(scenario, bytes)
  local s = scenario_of(scenario)
  if not admins[s.name] then admins[s.name] = M.new_backend(s.name, { pool = { size = 1 } }) end
  local admin = admins[s.name]
  local before = admin:query("SELECT @@global.max_allowed_packet AS p")[1].p
  local n = assert(math.tointeger(bytes), "packet size must be an integer")
  admin:execute("SET GLOBAL max_allowed_packet = " .. n)
  return function() admin:execute("SET GLOBAL max_allowed_packet = " .. math.tointeger(before)) end
end

function M.sleep_statement(seconds)
  return "SELECT SLEEP(?) AS slept", { seconds }
end

function M.lock_wait_options(seconds)
  local n = assert(math.tointeger(seconds), "lock wait must be whole seconds here")
  return { init_command = "SET SESSION innodb_lock_wait_timeout = " .. n }
end

-- COM_PING counts as an admin command; nothing else we send does.
function M.ping_count(db)
  local rows = db:query("SELECT VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS "
    .. "WHERE VARIABLE_NAME = 'COM_ADMIN_COMMANDS'")
  return math.tointeger(tonumber(rows[1].v))
end

local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- mysql://user:pass@host:port/db?sql_mode=...
function M.url(scenario)
  local o = M.options(scenario)
  local auth = escape(o.user or "")
  if o.password then auth = auth .. ":" .. escape(o.password) end
  local query = {}
  if o.socket then query[#query + 1] = "socket=" .. escape(o.socket) end
  if o.sql_mode then query[#query + 1] = "sql_mode=" .. escape(o.sql_mode) end
  local host = o.host or "localhost"
  return ("mysql://%s@%s%s/%s%s"):format(auth, escape(host), o.port and (":" .. o.port) or "",
    escape(o.database or ""), #query > 0 and ("?" .. table.concat(query, "&")) or "")
end

-- ------------------------------------------------- concurrent session ----

-- Lua source of a literal (strings, numbers, booleans, nested tables).
local function literal(v)
  local t = type(v)
  if t == "string" then return ("%q"):format(v):gsub("\\\n", "\\n") end
  if t == "number" or t == "boolean" then return tostring(v) end
  if t == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = "[" .. literal(k) .. "]=" .. literal(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot serialise a " .. t)
end

local CHILD = [[
package.path, package.cpath = %s, %s
local ar = require("activerecord")
local core = require("activerecord.backend.mysql.core")
local steps = %s
local ok, err = pcall(function()
  local db = ar.connect(%s)
  db:transaction(function(tx)
    for _, step in ipairs(steps) do
      if step.sql then
        tx:execute(step.sql, table.unpack(step.params or {}))
      elseif step.signal then
        io.write("signal\n"); io.flush()
      elseif step.sleep then
        core.sleep(step.sleep)
      end
    end
  end)
  db:close()
end)
io.write(ok and "done ok\n" or ("done error " .. tostring(err):gsub("\n", " ") .. "\n"))
io.flush()
]]

local Session = {}
Session.__index = Session

-- Blocks until the child reaches its next { signal = true } step; false,
-- detail when it ended first.
function Session:wait_signal()
  while true do
    local line = self.pipe:read("l")
    if line == nil then return false, "child exited" end
    if line == "signal" then return true end
    if line:match("^done") then
      self.result = line
      return false, line
    end
  end
end

-- Waits for the child to end; returns ok, its last line.
function Session:finish()
  if not self.result then
    for line in self.pipe:lines() do
      if line:match("^done") then self.result = line end
    end
  end
  self.pipe:close()
  return self.result == "done ok", self.result
end

-- A session in another OS process running `steps` inside one transaction,
-- for what one blocking Lua process cannot do (a real deadlock).
function M.concurrent_session(scenario, steps)
  local opts = M.options(scenario, { pool = { size = 1 } })
  local source = CHILD:format(literal(package.path), literal(package.cpath), literal(steps),
    literal(opts))
  local lua = os.getenv("AR_LUA") or "lua5.4"
  local cmd = ("%s -e '%s' 2>&1"):format(lua, source:gsub("'", "'\\''"))
  return setmetatable({ pipe = assert(io.popen(cmd, "r")) }, Session)
end

return M
