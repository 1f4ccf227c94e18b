-- Wall-clock time for the neutral layers (timestamps, uuid): `clock.now()`
-- -> seconds since the epoch. Whole seconds (os.time) until a backend loads
-- and installs a precise source (the MySQL core: microseconds). Call
-- `clock.now()`, do not cache the function.
return { now = os.time }
