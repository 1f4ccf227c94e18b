std = "lua54"
max_line_length = 120
-- methods keep `self` for a uniform interface even when they do not use it
self = false
files["spec/**"] = { std = "+busted" }
-- the shared suite's specs ship inside the library tree
files["lua/activerecord/testsuite/**/*_spec.lua"] = { std = "+busted" }
