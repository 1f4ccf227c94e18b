-- timestamps: created_at set on insert, updated_at on every real update;
-- created_at never changes afterwards. The columns may be named:
-- { created_at = "created_on", updated_at = "changed_on" } (the fields take
-- the columns' names).
--
-- The time rule: DATETIME columns hold UTC (microseconds), whatever the
-- session's time_zone. This mixin writes the UTC time of the Lua clock;
-- the schema DSL's t:timestamps() defaults both columns to
-- UTC_TIMESTAMP(6) and has no ON UPDATE (the server would write the
-- session's local time there); sessions run in "+00:00" unless
-- ar.connect{ time_zone = ... } says otherwise. update_all leaves
-- updated_at alone unless it is given (`updated_at = os.time()`).
local clock = require("activerecord.clock")
local types = require("activerecord.types")

-- UTC "now" in the form DATETIME(6) stores.
local function now() return types.normalize_datetime(clock.now(), true) end

return function(opts)
  local created, updated = opts.created_at or "created_at", opts.updated_at or "updated_at"
  return {
    options = { created_at = "string", updated_at = "string" },
    fields = {
      -- an import may give it; once stored it never changes
      [created] = { type = "datetime", write_once = true },
      [updated] = { type = "datetime" },
    },
    events = {
      before_create = function(rec)
        local t = now()
        if rec[created] == nil then rec[created] = t end
        if rec[updated] == nil then rec[updated] = t end
      end,
      -- before_update runs only when something changed: a save with no
      -- changes writes nothing and keeps updated_at
      before_update = function(rec)
        rec[updated] = now()
      end,
    },
  }
end
