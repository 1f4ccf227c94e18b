-- Wall-clock time for the neutral layers (timestamps, uuid): `clock.now()`
-- -> seconds since the epoch, a float with microseconds when a backend
-- installed a precise source. Call `clock.now()`, do not cache the function.
-- TRANSITIONAL: still taken from the MySQL core.
local core = require("activerecord.backend.mysql.core")
return { now = core.now }
