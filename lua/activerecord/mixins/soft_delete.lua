-- soft_delete: delete() sets deleted_at (or { column = "removed_at" }: the
-- field takes the column's name) instead of removing the row; default
-- queries skip deleted rows; with_deleted(), only_deleted(), restore();
-- destroy()/hard_delete() really delete. Uses only the public hook API
-- (activerecord.model.hooks): run_event, has_handlers, delete_row.
local clock = require("activerecord.clock")
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local types = require("activerecord.types")
local hooks = require("activerecord.model").hooks

local function hard_delete(rec)
  return hooks.delete_row(rec)
end

return function(opts)
  local col = opts.column or "deleted_at"
  return {
    options = { column = "string" },
    fields = { [col] = { type = "datetime" } },
    default_scopes = {
      soft_delete = function(q) return q:where({ [col] = null }) end,
    },
    scopes = {
      with_deleted = function(q) return q:unscope("soft_delete") end,
      only_deleted = function(q) return q:unscope("soft_delete"):is_not_null(col) end,
    },
    methods = {
      -- delete events still run, so dependents and audits behave the same
      delete = function(rec)
        local model = rec:model()
        -- like a plain delete: a never-saved record has no row to mark (saving
        -- it here would INSERT a row born deleted)
        if rec:is_new() then
          errors.raise("RecordNotFound", model.name .. ": cannot delete a record that was never saved")
        end
        hooks.run_event(rec, "before_delete", { soft = true })
        local before = rec[col]
        rec[col] = types.normalize_datetime(clock.now(), true)
        if not hooks.has_handlers(model, "after_delete") then return rec:save({ validate = false }) end
        -- the marking and its after_delete handlers are one unit
        local ok, res = pcall(model.transaction, model, function()
          local affected = rec:save({ validate = false })
          hooks.run_event(rec, "after_delete", affected)
          return affected
        end)
        if not ok then
          -- the save's own undo made the record dirty again; the mark goes too
          if not rec:is_new() then rec[col] = before end
          error(res, 0)
        end
        return res
      end,
      restore = function(rec)
        rec[col] = nil
        return rec:save({ validate = false })
      end,
      is_deleted = function(rec) return rec[col] ~= nil end,
      destroy = hard_delete,
      hard_delete = hard_delete,
    },
  }
end
