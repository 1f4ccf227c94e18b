-- uuid: the primary key (`id`, or { column = "uuid" }: the field takes the
-- column's name) is a client-generated UUID: v4 (random) or, with
-- { version = 7 }, v7 (time-ordered: new rows land at the end of the
-- index). Stored as CHAR(36), or BINARY(16) with binary = true.
local errors = require("activerecord.errors")
local uuid = require("activerecord.uuid")

return function(opts)
  local version = opts.version or 4
  if version ~= 4 and version ~= 7 then
    errors.raise("ConfigError", ("mixin 'uuid': option 'version' must be 4 or 7, got %s"):format(tostring(version)),
      { mixin = "uuid", option = "version" })
  end
  local gen = version == 7 and uuid.v7 or uuid.v4
  return {
    options = { version = "number", binary = "boolean", column = "string" },
    fields = {
      [opts.column or "id"] = { type = "uuid", primary_key = true, binary = opts.binary == true, default = gen },
    },
  }
end
