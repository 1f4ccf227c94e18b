-- activerecord: an ActiveRecord runtime for Lua 5.4 with a C MySQL core.
--
-- This module is the public face; the layers below it are
--   activerecord.errors                  error objects (design §4)
--   activerecord.backend.mysql.core      the C core (connections, statements,
--                                        types, transactions, capabilities)
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")

local M = {
  _VERSION = "activerecord " .. core.version,
  -- Writes SQL NULL where `nil` would mean "absent"; equal to cjson.null.
  null = core.null,
  errors = errors,
  core = core,
}

-- Capability matrix for a server we are not connected to (pure function).
M.capabilities_for = core.capabilities_for

return M
