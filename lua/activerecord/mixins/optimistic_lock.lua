-- optimistic_lock: a lock column (`version`, or { column = "lock_version" }:
-- the field takes the column's name); every update and delete adds
-- `AND version = ?` (the version this copy read) and an update increments
-- it. A stale copy raises StaleObjectError and writes nothing. A new record
-- leaves the column to the table's default and reads the value back.
-- Uses only the public API: an event and a write guard.
return function(opts)
  local col = opts.column or "version"
  return {
    options = { column = "string" },
    fields = { [col] = { type = "integer", nullable = false, server_default = true } },
    events = {
      before_update = function(rec)
        rec[col] = (rec:old_value(col) or 0) + 1
      end,
    },
    write_guards = function(rec)
      if not rec:is_new() then return col, rec:old_value(col) end
    end,
  }
end
