-- optimistic_lock: a `version` column; every update and delete adds
-- `AND version = ?` (the version this copy read) and an update increments
-- it. A stale copy raises StaleObjectError and writes nothing. A new record
-- leaves the column to the table's default and reads the value back.
local model = require("activerecord.model")

return {
  fields = { version = { type = "integer", nullable = false, server_default = true } },
  events = {
    before_update = function(rec)
      rec.version = (rec:old_value("version") or 0) + 1
    end,
  },
  write_guards = function(rec)
    if model.state_of(rec).persisted then return "version", rec:old_value("version") end
  end,
}
