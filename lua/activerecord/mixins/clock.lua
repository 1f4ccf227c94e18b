-- UTC "now" with microseconds, the form DATETIME(6) stores.
local core = require("activerecord.backend.mysql.core")
local types = require("activerecord.types")

return function()
  return types.normalize_datetime(core.now(), true)
end
