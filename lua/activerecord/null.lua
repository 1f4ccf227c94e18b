-- The SQL NULL sentinel (`ar.null`): write NULL explicitly, and what a JSON
-- null decodes to. Backend-neutral: it is lua-cjson's null (a NULL light
-- userdata, so `ar.null == cjson.null`); a backend's C core adopts this very
-- value when it loads, so rows and decoded JSON carry it.
return require("cjson").null
