-- uuid: the primary key `id` is a client-generated UUID: v4 (random) or,
-- with { "uuid", { version = 7 } }, v7 (time-ordered: new rows land at the
-- end of the index). Stored as CHAR(36), or BINARY(16) with binary = true.
local uuid = require("activerecord.uuid")

return function(opts)
  opts = opts or {}
  local gen = opts.version == 7 and uuid.v7 or uuid.v4
  return {
    fields = {
      id = { type = "uuid", primary_key = true, binary = opts.binary == true, default = gen },
    },
  }
end
