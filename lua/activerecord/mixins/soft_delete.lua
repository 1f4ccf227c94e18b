-- soft_delete: delete() sets deleted_at instead of removing the row; default
-- queries skip deleted rows; with_deleted(), only_deleted(), restore();
-- destroy()/hard_delete() really delete.
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local model = require("activerecord.model")
local now = require("activerecord.mixins.clock")

local null = core.null

local function hard_delete(rec)
  return model.InstanceMethods.delete(rec)
end

return {
  fields = { deleted_at = { type = "datetime" } },
  default_scopes = {
    soft_delete = function(q) return q:where({ deleted_at = null }) end,
  },
  scopes = {
    with_deleted = function(q) return q:unscope("soft_delete") end,
    only_deleted = function(q) return q:unscope("soft_delete"):is_not_null("deleted_at") end,
  },
  methods = {
    -- delete events still run, so dependents and audits behave the same
    delete = function(rec)
      local st = model.state_of(rec)
      -- like a plain delete: a never-saved record has no row to mark (saving
      -- it here would INSERT a row born deleted)
      if not st.persisted then
        errors.raise("RecordNotFound", st.model.name .. ": cannot delete a record that was never saved")
      end
      model.run_event(st.model, "before_delete", rec, { soft = true })
      local before = rec.deleted_at
      rec.deleted_at = now()
      local events = st.model._events
      if #events.after_delete == 0 then return rec:save({ validate = false }) end
      -- the marking and its after_delete handlers are one unit
      local db = st.model:_backend()
      local ok, res = pcall(db.transaction, db, function()
        local affected = rec:save({ validate = false })
        model.run_event(st.model, "after_delete", rec, affected)
        return affected
      end)
      if not ok then
        -- the save's own undo made the record dirty again; the mark goes too
        if st.persisted then rec.deleted_at = before end
        error(res, 0)
      end
      return res
    end,
    restore = function(rec)
      rec.deleted_at = nil
      return rec:save({ validate = false })
    end,
    is_deleted = function(rec) return rec.deleted_at ~= nil end,
    destroy = hard_delete,
    hard_delete = hard_delete,
  },
}
