-- Registers the built-in mixins. Each is an ordinary mixin spec (fields,
-- events, scopes, default scopes, methods, write guards) registered with the
-- same ar.register_mixin a user's own mixin would use.
local registry = require("activerecord.registry")

for _, name in ipairs({ "timestamps", "soft_delete", "optimistic_lock", "uuid" }) do
  registry.register_mixin(name, require("activerecord.mixins." .. name))
end

return true
