-- A TCP relay between a client and a MariaDB server, for specs that need
-- the server to answer late or to stop taking data in.
--
-- As a module, in a running cqueues loop (the scheduler specs):
--   local host, port, stop = require("support.relay").start(host, port, is_paused)
-- nothing reaches the other side until the loop runs, so each read of the
-- client waits first (on loopback the server often answers before the
-- client reads, and no wait happens); while is_paused() is true nothing
-- more is read from the clients, so what they send fills the socket
-- buffers and their writes wait. stop() ends it and its connections.
--
-- As a process of its own (a blocking client holds its own thread):
--   lua5.4 spec/support/relay.lua HOST PORT PAUSE_FILE
-- prints the port it listens on, pauses while PAUSE_FILE exists, and runs
-- until killed.
local cqueues = require("cqueues")
local socket = require("cqueues.socket")

local M = {}

function M.start(target_host, target_port, is_paused)
  local cq = cqueues.running()
  local listener = socket.listen("127.0.0.1", 0)
  listener:listen()
  local _, host, port = listener:localname()
  local stopped, sockets = false, {}
  -- one direction; when either side ends, both sockets close (the other
  -- direction's read then fails and ends too)
  local function pump(from, to, up)
    return function()
      while true do
        while up and not stopped and is_paused() do cqueues.sleep(0.01) end
        local ok, data = pcall(from.read, from, -65536)
        if not (ok and data and pcall(to.write, to, data)) then break end
      end
      pcall(from.close, from)
      pcall(to.close, to)
    end
  end
  cq:wrap(function()
    while not stopped do
      local client = listener:accept(0.05)
      if client then
        local server = socket.connect(target_host, target_port)
        client:setmode("bn", "bn")
        server:setmode("bn", "bn")
        sockets[#sockets + 1], sockets[#sockets + 2] = client, server
        cq:wrap(pump(client, server, true))
        cq:wrap(pump(server, client, false))
      end
    end
    listener:close()
  end)
  -- stop: no more connections; those open see their end (a shutdown, not
  -- a close: a pump may be waiting on the descriptor)
  return host, port, function()
    stopped = true
    for _, sock in ipairs(sockets) do pcall(sock.shutdown, sock, "rw") end
  end
end

if (...) == "support.relay" then return M end

local target_host, target_port, pause_file = arg[1], tonumber(arg[2]), arg[3]
assert(target_host and target_port and pause_file, "usage: relay.lua HOST PORT PAUSE_FILE")
local function paused()
  local f = io.open(pause_file, "r")
  if f then f:close() end
  return f ~= nil
end
local cq = cqueues.new()
cq:wrap(function()
  local _, port = M.start(target_host, target_port, paused)
  io.stdout:write(port, "\n")
  io.stdout:flush()
end)
assert(cq:loop())
