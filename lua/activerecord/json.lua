-- JSON for the neutral layers: encode (exact), decode (arrays marked),
-- structural hash, array marking. Call through this table (`json.hash(v)`),
-- never cache a function from it at load time: a backend may install a
-- faster implementation when it loads.
-- TRANSITIONAL: still taken from the MySQL core.
local core = require("activerecord.backend.mysql.core")
return {
  encode = core.json_encode, decode = core.json_decode, hash = core.json_hash,
  array = core.json_array, array_mt = core.json_array_mt,
}
