--- Schedulers for the coroutine-native mode (design §9): what the
-- `scheduler` option of `ar.connect` names becomes one adapter table,
-- `{ wait(fd, events, timeout_s), sleep(s), event(), forget(fd) }`, of which
-- only `wait` is required. The adapters for cqueues and luv are loaded only
-- when named: the blocking mode never requires them.
-- @module activerecord.scheduler
local errors = require("activerecord.errors")

local M = {}

local ADAPTERS = { cqueues = "lua-cqueues", luv = "lua-luv" }
local OPTIONAL = { "sleep", "event", "forget" }

local function config_error(fmt, ...)
  errors.raise("ConfigError", fmt:format(...))
end

--- The adapter for a `scheduler` option.
-- @param opt `"cqueues"`, `"luv"`, or a table with a `wait(fd, events,
--   timeout_s)` function (and optionally `sleep`, `event`, `forget`)
-- @treturn table the adapter
-- @raise `ConfigError` for anything else, or when the named event loop's
--   Lua module is not installed
function M.resolve(opt)
  if type(opt) == "string" then
    local package_name = ADAPTERS[opt]
    if not package_name then
      config_error("unknown scheduler '%s' (accepted: \"cqueues\", \"luv\", or a table with a "
        .. "wait(fd, events, timeout_s) function)", opt)
    end
    local ok, adapter = pcall(require, "activerecord.scheduler." .. opt)
    if not ok then
      config_error("scheduler '%s' needs its Lua module (Debian: %s): %s", opt, package_name,
        tostring(adapter))
    end
    return adapter
  end
  if type(opt) ~= "table" or type(opt.wait) ~= "function" then
    config_error("option 'scheduler' must be \"cqueues\", \"luv\" or a table with a "
      .. "wait(fd, events, timeout_s) function, got %s", type(opt))
  end
  for _, name in ipairs(OPTIONAL) do
    if opt[name] ~= nil and type(opt[name]) ~= "function" then
      config_error("scheduler.%s must be a function, got %s", name, type(opt[name]))
    end
  end
  return opt
end

--- Raises (at the level of the adapter function's caller) unless
-- `timeout_s` is nil or a number of seconds >= 0: what every adapter's
-- `wait` and `event:wait` accept.
-- @tparam string where the adapter's message prefix
-- @param timeout_s the value given
-- @tparam string what the function checked, for the message
function M.check_timeout(where, timeout_s, what)
  if timeout_s ~= nil and (type(timeout_s) ~= "number" or timeout_s ~= timeout_s or timeout_s < 0) then
    error(where .. what .. ": timeout must be a number of seconds >= 0 or nil, got " .. tostring(timeout_s), 3)
  end
end

--- Suspends the running coroutine for `seconds` through the adapter: its
-- `sleep`, or else a wait on a descriptor that never becomes ready.
-- @tparam table adapter a resolved adapter
-- @tparam number seconds how long
function M.sleep(adapter, seconds)
  if adapter.sleep then return adapter.sleep(seconds) end
  local core = require("activerecord.backend.mysql.core")
  adapter.wait(core.never_ready_fd(), "r", seconds)
end

return M
