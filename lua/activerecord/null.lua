-- The SQL NULL sentinel (`ar.null`): write NULL explicitly, and what a JSON
-- null decodes to. Backend-neutral.
-- TRANSITIONAL: still taken from the MySQL core; the neutral definition
-- (the core adopting this value) is being moved here.
return require("activerecord.backend.mysql.core").null
