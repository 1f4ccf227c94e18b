-- Helpers of the reliability suite (spec/reliability): private MariaDB
-- servers a spec starts, kills and restarts itself (scripts/mariadb-server.sh,
-- its own directory, never the shared test server), error assertions and a
-- table-driven runner for bad-input cases.
local ar = require("activerecord")
local support = require("support.db")

local M = {}

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/reliability/helpers%.lua$")) or "."
M.ROOT = ROOT
M.SERVER_SCRIPT = ROOT .. "/scripts/mariadb-server.sh"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end
M.run = run

-- ---------------------------------------------------------------- servers ----

local Server = {}
Server.__index = Server

-- Starts a private server in a fresh short directory; returns its handle.
function M.start_server()
  local p = assert(io.popen("mktemp -d /tmp/ar-rf-XXXXXX"))
  local dir = p:read("l")
  p:close()
  local ok, out = run("bash " .. shell_quote(M.SERVER_SCRIPT) .. " start " .. shell_quote(dir))
  if not ok then
    run("bash " .. shell_quote(M.SERVER_SCRIPT) .. " destroy " .. shell_quote(dir))
    error("could not start a private server in " .. dir .. ":\n" .. out)
  end
  local s = setmetatable({ dir = dir }, Server)
  s.port = tonumber(out:match("AR_MYSQL_PORT=(%d+)"))
  s.socket = dir .. "/mysql.sock"
  return s
end

function Server:_cmd(what)
  local ok, out = run("bash " .. shell_quote(M.SERVER_SCRIPT) .. " " .. what .. " " .. shell_quote(self.dir))
  assert(ok, what .. " failed: " .. out)
end

function Server:kill() self:_cmd("kill") end        -- SIGKILL of mariadbd
function Server:stop() self:_cmd("stop") end
function Server:restart() self:_cmd("restart") end  -- same datadir, port, socket
function Server:destroy() self:_cmd("destroy") end

function Server:pid()
  local f = io.open(self.dir .. "/server.pid")
  if not f then return nil end
  local pid = f:read("n")
  f:close()
  return pid
end

-- ar.connect / core.connect options for this server (TCP on loopback).
function Server:options(extra)
  local o = { host = "127.0.0.1", port = self.port, user = "ar", password = "ar_pass",
              database = "ar_test" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- A root session through the mariadb CLI (for SET GLOBAL without a pool).
function Server:sql(sql)
  local ok, out = run("mariadb --no-defaults -N -B -uroot -S " .. shell_quote(self.socket)
    .. " -e " .. shell_quote(sql))
  assert(ok, "mariadb -e failed: " .. out)
  return out
end

-- ----------------------------------------------------------------- errors ----

-- Asserts `err` is one of our error objects of one of `kinds` (a name or a
-- list) and, when `pattern` is given, that its message matches it (plain,
-- case-insensitive). Returns err.
function M.assert_error(err, kinds, pattern)
  assert(ar.errors.is(err), "expected an error object, got " .. type(err) .. ": " .. tostring(err))
  if type(kinds) == "string" then kinds = { kinds } end
  local hit = false
  for _, k in ipairs(kinds or {}) do if err.kind == k then hit = true end end
  if kinds and not hit then
    error(("expected %s, got %s"):format(table.concat(kinds, "/"), tostring(err)), 2)
  end
  assert(type(err.message) == "string" and #err.message > 0, "error without a message")
  if pattern then
    local msg = tostring(err):lower()
    local pats = type(pattern) == "table" and pattern or { pattern }
    for _, pat in ipairs(pats) do
      assert(msg:find(pat:lower(), 1, true),
        ("message should name %q: %s"):format(pat, tostring(err)))
    end
  end
  return err
end

function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return err
end

-- Runs a table of { name, fn, kinds, pattern [, known] } cases: each must
-- raise an error object of the kind(s) whose message names `pattern`. A case
-- with `known` (a bug-report line) that is still mishandled does not fail the
-- spec: it is collected, and the spec ends pending with the list, so the
-- bugs stay visible in every run. Returns how many cases ran.
M.counts = { bad_inputs = 0 }
function M.run_cases(cases)
  local failures, known = {}, {}
  for _, c in ipairs(cases) do
    M.counts.bad_inputs = M.counts.bad_inputs + 1
    local ok, err = pcall(c[2])
    local problem
    if ok then
      problem = "no error raised"
    else
      local aok, aerr = pcall(M.assert_error, err, c[3], c[4])
      if not aok then problem = tostring(aerr):gsub("^.-helpers%.lua:%d+: ", "") end
    end
    if problem then
      if c[5] then
        known[#known + 1] = c[1] .. ": " .. problem .. " [" .. c[5] .. "]"
      else
        failures[#failures + 1] = c[1] .. ": " .. problem
      end
    end
  end
  assert(#failures == 0, #failures .. " of " .. #cases .. " bad inputs were mishandled:\n  "
    .. table.concat(failures, "\n  "))
  if #known > 0 then
    M.pending(("%d of %d bad inputs tried are known bugs:\n  %s"):format(#known, #cases,
      table.concat(known, "\n  ")))
  end
  return #cases
end

M.support = support
return M
