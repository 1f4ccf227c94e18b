-- The second session of the deadlock spec, run in its own OS process
-- (`lua5.4 spec/integrity/lock_holder.lua <accounts table> <heavy table>`;
-- connection settings from AR_MYSQL_* like every spec). It makes its
-- transaction the heavier one (so that the server picks the other as the
-- deadlock victim), locks account 2, says "holding" on stdout, then asks for
-- account 1 and, once it has it, rolls everything back: it leaves no trace.
-- Every wait is bounded: lock waits time out after 10 s.
local support = require("support.db")
local core = require("activerecord.backend.mysql.core")

local accounts, heavy = arg[1], arg[2]
local function say(line)
  io.write(line, "\n")
  io.flush()
end

local ok, err = pcall(function()
  local conn = support.connect{ connect_timeout = 5, read_timeout = 30 }
  conn:execute("SET SESSION innodb_lock_wait_timeout = 10")
  conn:begin()
  conn:execute("UPDATE " .. heavy .. " SET n = n + 1")
  conn:execute("SELECT id FROM " .. accounts .. " WHERE id = 2 FOR UPDATE")
  say("holding")
  core.sleep(0.2) -- the other side asks for account 2 now or soon: either way a cycle
  conn:execute("SELECT id FROM " .. accounts .. " WHERE id = 1 FOR UPDATE")
  conn:rollback()
  conn:close()
end)
say(ok and "done ok" or ("done error " .. tostring(err):gsub("\n", " ")))
