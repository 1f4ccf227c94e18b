-- UTC "now" with microseconds, the form DATETIME(6) stores.
-- TRANSITIONAL: to be deleted; the mixins call
-- types.normalize_datetime(require("activerecord.clock").now(), true).
local clock = require("activerecord.clock")
local types = require("activerecord.types")

return function()
  return types.normalize_datetime(clock.now(), true)
end
