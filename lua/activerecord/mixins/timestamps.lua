-- timestamps: created_at set on insert, updated_at on every real update
-- (UTC, microseconds); created_at never changes afterwards.
local clock = require("activerecord.clock")
local types = require("activerecord.types")

-- UTC "now" in the form DATETIME(6) stores.
local function now() return types.normalize_datetime(clock.now(), true) end

return {
  fields = {
    created_at = { type = "datetime", readonly = true },
    updated_at = { type = "datetime" },
  },
  events = {
    before_create = function(rec)
      local t = now()
      if rec.created_at == nil then rec.created_at = t end
      if rec.updated_at == nil then rec.updated_at = t end
    end,
    -- before_update runs only when something changed: a save with no
    -- changes writes nothing and keeps updated_at
    before_update = function(rec)
      rec.updated_at = now()
    end,
  },
}
