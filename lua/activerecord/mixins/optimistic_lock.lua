-- optimistic_lock: a `version` column; every update and delete adds
-- `AND version = ?` (the version this copy read) and an update increments
-- it. A stale copy raises StaleObjectError and writes nothing. A new record
-- leaves the column to the table's default and reads the value back.
-- Uses only the public API: an event and a write guard.
return {
  fields = { version = { type = "integer", nullable = false, server_default = true } },
  events = {
    before_update = function(rec)
      rec.version = (rec:old_value("version") or 0) + 1
    end,
  },
  write_guards = function(rec)
    if not rec:is_new() then return "version", rec:old_value("version") end
  end,
}
