-- An HTTP/1.1 server on cqueues whose requests read and write through models,
-- each on its own coroutine: a request waiting on MariaDB suspends only
-- itself (ar.connect{ scheduler = "cqueues" }, issue 17), so one OS thread
-- serves many requests at once, sharing a pool of connections.
--
--   GET  /counter/<name>   {"name": ..., "hits": n}      (a model read)
--   POST /counter/<name>   adds 1 to the counter in a transaction, holding the
--                          row lock (SELECT ... FOR UPDATE) while it does;
--                          a JSON body {"by": n} adds n instead
--   GET  /slow             SELECT SLEEP(0.05) on a pooled connection
--   GET  /stats            the pool's figures
--   anything else          404 / 405; a malformed request gets 400
--
-- Run it (connection settings from AR_MYSQL_*, as the other examples):
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     scripts/with-test-server.sh lua5.4 examples/event_loop_server.lua [port] [max_requests]
-- port: argv[1] or AR_EXAMPLE_PORT (0 or unset: a free one, printed);
-- max_requests: argv[2] or AR_EXAMPLE_REQUESTS (serve that many, then exit;
-- unset: until SIGINT/SIGTERM); AR_EXAMPLE_SECONDS: exit after that long
-- whatever happens; AR_EXAMPLE_POOL: pool size (10).
-- examples/event_loop_load.lua starts it and fires concurrent requests at it.
--
-- Loaded with `loadfile(path)({ library = true })` it returns
-- { start = function(cq, db, opts) ... } instead of serving.
local ar = require("activerecord")
local cqueues = require("cqueues")
local socket = require("cqueues.socket")
local condition = require("cqueues.condition")
local cjson = require("cjson.safe")

local TABLE = "event_loop_counters"
local MAX_LINE, MAX_HEADERS, MAX_BODY = 8192, 100, 64 * 1024
local REASONS = { [200] = "OK", [400] = "Bad Request", [404] = "Not Found", [405] = "Method Not Allowed",
  [408] = "Request Timeout", [413] = "Payload Too Large", [500] = "Internal Server Error" }

local M = {}

-- The table and its model. Runs inside a coroutine (a backend with a
-- scheduler refuses the main thread).
function M.setup(db)
  if not db:table_exists(TABLE) then
    ar.schema.create_table(db, TABLE, function(t)
      t:string("name", { size = 100, primary_key = true })
      t:bigint("hits", { nullable = false, default = 0 })
    end)
  end
  return ar.Model{
    name = "EventLoopCounter", table = TABLE, backend = db,
    fields = {
      name = { type = "string", primary_key = true, length = { 1, 100 } },
      hits = { type = "bigint" },
    },
  }
end

-- ---------------------------------------------------------------------------
-- HTTP, minimally: request line, headers, Content-Length bodies, keep-alive.

local HttpError = {}
local function http_error(status, message)
  error(setmetatable({ status = status, message = message }, HttpError), 0)
end

local function read_line(con)
  local line, err = con:read("*L")
  if not line then
    if err == nil then return nil end -- EOF
    if err == cqueues.ETIMEDOUT or err == 110 then http_error(408, "timed out reading the request") end
    return nil
  end
  if #line > MAX_LINE then http_error(400, "line too long") end
  if line:sub(-1) ~= "\n" then
    if #line >= MAX_LINE then http_error(400, "line too long") end
    return nil -- EOF in the middle of a line
  end
  return (line:gsub("\r?\n$", ""))
end

-- -> request table, or nil at a clean end of the connection
local function read_request(con)
  local line = read_line(con)
  while line == "" do line = read_line(con) end -- tolerate blank lines between requests
  if not line then return nil end
  local method, target, version = line:match("^(%u+) (%S+) HTTP/(%d%.%d)$")
  if not method then http_error(400, "malformed request line") end
  local headers, n = {}, 0
  while true do
    local h = read_line(con)
    if not h then http_error(400, "connection closed inside the headers") end
    if h == "" then break end
    n = n + 1
    if n > MAX_HEADERS then http_error(400, "too many headers") end
    local name, value = h:match("^([%w!#$%%&'*+.^_`|~-]+):[ \t]*(.-)[ \t]*$")
    if not name then http_error(400, "malformed header line") end
    name = name:lower()
    if headers[name] and name == "content-length" and headers[name] ~= value then
      http_error(400, "conflicting Content-Length headers")
    end
    headers[name] = value
  end
  if headers["transfer-encoding"] then http_error(400, "Transfer-Encoding is not supported") end
  local body = ""
  local len = headers["content-length"]
  if len then
    if not len:match("^%d+$") or #len > 9 then http_error(400, "bad Content-Length") end
    len = tonumber(len)
    if len > MAX_BODY then http_error(413, "body larger than " .. MAX_BODY .. " bytes") end
    if len > 0 then
      body = con:read(len)
      if not body or #body ~= len then http_error(400, "body shorter than its Content-Length") end
    end
  end
  local path = target:match("^[^?#]*")
  local keep_alive = version == "1.1"
  local connection = (headers["connection"] or ""):lower()
  if connection:find("close", 1, true) then keep_alive = false end
  if connection:find("keep-alive", 1, true) then keep_alive = true end
  return { method = method, path = path, version = version, headers = headers, body = body,
    keep_alive = keep_alive }
end

local function respond(con, status, body, keep_alive)
  local text = cjson.encode(body) .. "\n"
  con:write(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n")
    :format(status, REASONS[status] or "Unknown", #text, keep_alive and "keep-alive" or "close"), text)
  con:flush()
end

-- ---------------------------------------------------------------------------
-- The application: requests -> models.

local function route(app, req)
  local db, Counter = app.db, app.Counter
  local name = req.path:match("^/counter/([%w_.-]+)$")
  if name then
    if #name > 100 then http_error(400, "counter name longer than 100 characters") end
    if req.method == "GET" then
      local c = Counter:find(name)
      return 200, { name = name, hits = c and c.hits or 0 }
    elseif req.method == "POST" then
      local by = 1
      if req.body ~= "" then
        local doc = cjson.decode(req.body)
        by = type(doc) == "table" and (doc.by == nil and 1 or math.tointeger(doc.by))
        if not by then http_error(400, "the body must be a JSON object like {\"by\": 2}") end
      end
      -- the row exists first (race-safe: a concurrent creator's row is found),
      -- then it is locked and changed in one transaction
      Counter:create_or_find_by({ name = name }, { hits = 0 })
      local hits = db:transaction(function()
        local c = Counter:where{ name = name }:for_update():first()
        c.hits = c.hits + by
        c:save()
        return c.hits
      end)
      return 200, { name = name, hits = hits }
    end
    return 405, { error = "use GET or POST" }
  end
  if req.path == "/slow" then
    if req.method ~= "GET" then return 405, { error = "use GET" } end
    db:query("SELECT SLEEP(0.05)")
    return 200, { slept = 0.05 }
  end
  if req.path == "/stats" then
    if req.method ~= "GET" then return 405, { error = "use GET" } end
    local s = db:pool_stats()
    return 200, { served = app.served, pool = s }
  end
  return 404, { error = "no such resource: " .. req.path }
end

local function serve_connection(app, con)
  con:setmode("b", "bf")
  con:settimeout(app.read_timeout)
  while not app.stopping do
    local ok, req = pcall(read_request, con)
    if not ok then
      local e = req
      if getmetatable(e) == HttpError then
        app.served = app.served + 1
        pcall(respond, con, e.status, { error = e.message }, false)
      else
        io.stderr:write("event_loop_server: reading a request: ", tostring(e), "\n")
      end
      break
    end
    if not req then break end
    local handled, status, body = pcall(route, app, req)
    if not handled then
      local e = status
      if getmetatable(e) == HttpError then
        status, body = e.status, { error = e.message }
      else
        io.stderr:write("event_loop_server: ", req.method, " ", req.path, ": ", tostring(e), "\n")
        status, body = 500, { error = tostring(e) }
      end
    end
    app.served = app.served + 1
    local last = app.max_requests and app.served >= app.max_requests
    local sent = pcall(respond, con, status, body, req.keep_alive and not last)
    if last then app.stop("served " .. app.served .. " requests") end
    if not sent or not req.keep_alive or last then break end
  end
  con:close()
end

--- Starts the server on controller `cq` with backend `db` (made with
-- scheduler = "cqueues"). opts: port (0: a free one), host, max_requests,
-- read_timeout, on_stop(reason). Returns the app: { port, served, stop }.
function M.start(cq, db, opts)
  opts = opts or {}
  local listener = assert(socket.listen{ host = opts.host or "127.0.0.1", port = opts.port or 0, reuseaddr = true })
  assert(listener:listen())
  local _, host, port = listener:localname()
  local app = { db = db, port = port, host = host, served = 0, max_requests = opts.max_requests,
    read_timeout = opts.read_timeout or 30, stopping = false }
  local ready = condition.new()
  function app.stop(reason)
    if app.stopping then return end
    app.stopping = true
    app.stop_reason = reason
    if opts.on_stop then opts.on_stop(reason) end
  end
  cq:wrap(function()
    app.Counter = M.setup(db)
    ready:signal()
    while not app.stopping do
      local con = listener:accept(0.25)
      if con then
        cq:wrap(function() serve_connection(app, con) end)
      end
    end
    listener:close()
  end)
  app.ready = ready
  return app
end

-- ---------------------------------------------------------------------------
local LOAD = ...
if type(LOAD) == "table" and LOAD.library then return M end

local function num(v, what)
  if v == nil or v == "" then return nil end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then
    io.stderr:write("event_loop_server: ", what, " must be a whole number >= 0, got ", v, "\n")
    os.exit(2)
  end
  return n
end

local port = num(arg[1] or os.getenv("AR_EXAMPLE_PORT"), "port") or 0
local max_requests = num(arg[2] or os.getenv("AR_EXAMPLE_REQUESTS"), "max_requests")
if max_requests == 0 then max_requests = nil end
local max_seconds = tonumber(os.getenv("AR_EXAMPLE_SECONDS") or "")
local pool_size = num(os.getenv("AR_EXAMPLE_POOL"), "AR_EXAMPLE_POOL") or 10

local config = ar.config_from_env{ pool = { size = pool_size, checkout_timeout = 10 } }
config.scheduler = "cqueues"
local db = ar.connect(config)
local cq = cqueues.new()
local app = M.start(cq, db, { port = port, max_requests = max_requests })
print(("listening on http://%s:%d/ (pool of %d%s)"):format(app.host, app.port, pool_size,
  max_requests and (", exits after " .. max_requests .. " requests") or ", stop with Ctrl-C"))
io.stdout:flush()

-- SIGINT / SIGTERM: stop accepting, let the requests in flight finish
local signal = require("cqueues.signal")
signal.block(signal.SIGINT, signal.SIGTERM)
local signals = signal.listen(signal.SIGINT, signal.SIGTERM)
cq:wrap(function()
  while not app.stopping do
    local signo = signals:wait(0.25)
    if signo then app.stop("signal " .. signo) end
  end
end)
if max_seconds then
  cq:wrap(function()
    local deadline = cqueues.monotime() + max_seconds
    while not app.stopping and cqueues.monotime() < deadline do cqueues.sleep(0.25) end
    app.stop(("time limit of %g s"):format(max_seconds))
  end)
end

local ok, err = cq:loop()
if not ok then
  io.stderr:write("event_loop_server: ", tostring(err), "\n")
  os.exit(1)
end
local stats = db:pool_stats()
print(("stopped (%s): %d requests served, %d connections opened"):format(app.stop_reason or "done",
  app.served, stats.created or 0))
db:close()
