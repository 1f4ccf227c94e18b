std = "lua54"
max_line_length = 110
-- methods keep `self` for a uniform interface even when they do not use it
self = false
files["spec/**"] = { std = "+busted" }
