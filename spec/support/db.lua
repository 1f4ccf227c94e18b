-- Connection settings for specs: the private server `make test` started
-- (scripts/with-test-server.sh exports AR_MYSQL_*), or one the user named.
local core = require("activerecord.backend.mysql.core")

local M = {}

local function env(name)
  local v = os.getenv(name)
  if v == "" then return nil end
  return v
end

-- Options for core.connect / ar.connect; `extra` overrides or adds keys.
function M.options(extra)
  local opts = {
    host = env("AR_MYSQL_HOST"),
    port = tonumber(env("AR_MYSQL_PORT") or ""),
    socket = env("AR_MYSQL_SOCKET"),
    user = env("AR_MYSQL_USER") or "root",
    password = env("AR_MYSQL_PASSWORD"),
    database = env("AR_MYSQL_DATABASE") or "ar_test",
  }
  -- TCP when a port is known, so specs exercise the network path
  if opts.host and opts.port then opts.socket = nil end
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

function M.connect(extra)
  return core.connect(M.options(extra))
end

-- Runs fn(err) style checks: returns the error object raised by fn(...).
function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return err
end

-- Fresh table: drops it first, creates it from the DDL body.
function M.recreate(conn, name, body)
  conn:execute("DROP TABLE IF EXISTS `" .. name .. "`")
  conn:execute("CREATE TABLE `" .. name .. "` (" .. body .. ") ENGINE=InnoDB")
end

-- Resident set size of this process in KiB (Linux), for memory specs.
function M.rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local pages = f:read("n") and f:read("n")
  f:close()
  return pages * 4
end

M.core = core
return M
