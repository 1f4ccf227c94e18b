-- Shared lookups: the default backend, models by name (so relations can
-- name a model defined later), and mixins by name.
local errors = require("activerecord.errors")

local M = {}

local default_backend
local models = {}
local mixins = {}

function M.set_default_backend(db)
  default_backend = db
end

function M.default_backend()
  return default_backend
end

-- names in the order they were first registered (for `models`)
local model_names = {}

function M.register_model(name, model)
  if models[name] == nil then model_names[#model_names + 1] = name end
  models[name] = model
end

-- Every model registered under a name now (a model defined again under the
-- same name replaces the older one), each once, in definition order.
function M.models()
  local out, seen = {}, {}
  for _, name in ipairs(model_names) do
    local m = models[name]
    if m and not seen[m] then
      seen[m] = true
      out[#out + 1] = m
    end
  end
  return out
end

function M.model(name)
  return models[name]
end

-- Resolves a model given as a class or a name; raises ConfigError if unknown.
function M.resolve_model(ref, context)
  if type(ref) == "table" then return ref end
  local m = models[ref]
  if not m then
    errors.raise("ConfigError", ("%sunknown model '%s' (define it with ar.Model{ name = %q, ... })")
      :format(context and (context .. ": ") or "", tostring(ref), tostring(ref)))
  end
  return m
end

function M.register_mixin(name, spec)
  if type(name) ~= "string" or name == "" then errors.raise("ConfigError", "a mixin needs a name") end
  if type(spec) ~= "table" and type(spec) ~= "function" then
    errors.raise("ConfigError", ("mixin '%s' must be a table (fields, events, scopes, ...) or a "
      .. "function(options) returning one"):format(name))
  end
  mixins[name] = spec
end

function M.mixin(name)
  return mixins[name]
end

return M
