--- Field types: the type-conversion extension point. A type converts Lua
-- values to what the backend binds (`to_db`), back from what the C core
-- returns (`from_db`), checks values (`validate`), and names its column type
-- for the schema DSL (`schema_type` / `sql_type`). The built-in types are
-- registered through the same `register` a user calls (`ar.register_type`).
-- @module activerecord.types
local errors = require("activerecord.errors")
local options = require("activerecord.options")

local M = {}

local registry = {}
local null = require("activerecord.null")
local json = require("activerecord.json")

local spec_keys = {
  to_db = "function", from_db = "function", validate = "function", cast = "function",
  sql_type = "string", schema_type = "string", options = "table",
}

--- Registers a field type: the type-conversion extension point (`ar.register_type`).
-- @tparam string name an identifier, used as `fields = { price = "money" }`
-- @tparam table spec `to_db(v, field)` (Lua value -> what is bound),
--   `from_db(v, field)` (what the C core returned -> Lua value),
--   `validate(v, field)` (-> true, or false and a message), `cast(v, field)`
--   (applied on assignment), `sql_type` or `schema_type` (one is required:
--   the column type for the schema DSL), `options` (field option -> Lua type
--   the type requires)
-- @treturn table the registered type
-- @raise `ConfigError` for a bad name, an unknown key, a wrong key type, or neither sql_type nor schema_type
-- @usage ar.register_type("money", { sql_type = "DECIMAL(12,2)",
--   to_db = function(v) return ("%.2f"):format(v / 100) end,
--   from_db = function(s) return math.tointeger(tonumber(s) * 100 // 1) end })
function M.register(name, spec)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    errors.raise("ConfigError", "a type name must be an identifier, got " .. tostring(name))
  end
  if type(spec) ~= "table" then errors.raise("ConfigError", ("type '%s' needs a table"):format(name)) end
  for k, v in pairs(spec) do
    local want = spec_keys[k]
    if not want then options.check(spec, spec_keys, ("type '%s'"):format(name)) end
    if type(v) ~= want then
      errors.raise("ConfigError", ("type '%s': '%s' must be a %s"):format(name, k, want))
    end
  end
  if not spec.sql_type and not spec.schema_type then
    errors.raise("ConfigError",
      ("type '%s' needs sql_type (e.g. \"DECIMAL(12,2)\") or schema_type"):format(name))
  end
  local t = { name = name }
  for k, v in pairs(spec) do t[k] = v end
  registry[name] = t
  return t
end

--- A registered type by name.
-- @tparam string name the type
-- @treturn ?table the type, or nil
function M.get(name)
  return registry[name]
end

-- ---- helpers -----------------------------------------------------------

local find = string.find

local function is_int(v) return math.type(v) == "integer" end

local function pad(n, w) return ("%0" .. w .. "d"):format(n) end

-- "2026-11-27 10:00:00.123456" from a UTC epoch in seconds (may be fractional).
local function from_epoch(secs, with_time)
  local whole = math.floor(secs)
  local us = math.floor((secs - whole) * 1e6 + 0.5)
  if us >= 1000000 then whole, us = whole + 1, us - 1000000 end
  local t = os.date("!*t", whole)
  local s = ("%04d-%02d-%02d"):format(t.year, t.month, t.day)
  if not with_time then return s end
  s = s .. (" %02d:%02d:%02d"):format(t.hour, t.min, t.sec)
  if us > 0 then s = s .. "." .. pad(us, 6) end
  return s
end

-- Days since 1970-01-01 for a civil date (proleptic Gregorian), so ISO
-- strings with offsets convert to UTC without touching the local time zone.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- Accepts an os.time() number (seconds since the epoch, may be fractional),
-- an os.date("*t") table (local time, read the way os.time() reads it; a
-- table with `utc = true`, e.g. os.date("!*t") plus that flag, is UTC) or an
-- ISO-8601 string (offsets converted to UTC); returns the UTC MySQL text
-- form, or nil, message. A date has no time zone: its fields are kept.
local function normalize_datetime(v, with_time)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "is not a valid time" end
    return from_epoch(v, with_time)
  end
  if type(v) == "table" then
    if not (is_int(v.year) and is_int(v.month) and is_int(v.day)) then
      return nil, "needs year, month and day"
    end
    local secs
    if v.utc or not with_time then
      secs = days_from_civil(v.year, v.month, v.day) * 86400
        + (v.hour or 0) * 3600 + (v.min or 0) * 60 + (v.sec or 0)
    else
      local ok, t = pcall(os.time, { year = v.year, month = v.month, day = v.day, hour = v.hour or 0,
        min = v.min or 0, sec = v.sec or 0, isdst = v.isdst })
      if not ok or not t then return nil, "is not a valid local time" end
      secs = t
    end
    return from_epoch(secs + (v.usec or 0) / 1e6, with_time)
  end
  if type(v) ~= "string" then return nil, "must be a date/time string, table or number" end
  local y, mo, d, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil, "is not a valid date" end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo > 12 or d > 31 then return nil, "is not a valid date" end
  if not with_time then
    if rest ~= "" then return nil, "must be a date (YYYY-MM-DD)" end
    return v
  end
  if rest == "" then return v .. " 00:00:00" end
  local h, mi, s, frac, zone = rest:match("^[T ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not h then return nil, "is not a valid date and time" end
  if #frac > 7 then return nil, "has more than 6 fractional digits" end
  if zone == "" then return (("%04d-%02d-%02d %s:%s:%s%s"):format(y, mo, d, h, mi, s, frac)) end
  local offset = 0
  if zone ~= "Z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil, "has an invalid time zone offset" end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "+" and 1 or -1)
  end
  local secs = days_from_civil(y, mo, d) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60
    + tonumber(s) - offset
  local out = from_epoch(secs, true):sub(1, 19)
  if #frac > 1 then out = out .. frac end
  return out
end
M.normalize_datetime = normalize_datetime

-- Exact decimal text: "-12.50". Integers and floats that are exact at the
-- field's scale are accepted; other floats are refused (they are not exact).
local DECIMAL_TEXT = "^[+-]?%d+%.?%d*$"

local function normalize_decimal(v, field)
  if type(v) == "string" then -- the usual form first: one type test
    if find(v, DECIMAL_TEXT) then return v end
    return nil, "must be a decimal number (e.g. \"12.50\")"
  end
  local scale = field.scale or 0
  if is_int(v) then return tostring(v) end
  if math.type(v) == "float" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "is not a finite number" end
    local s = ("%." .. scale .. "f"):format(v)
    if tonumber(s) ~= v then
      return nil, ("cannot be stored exactly with %d decimals (pass a string)"):format(scale)
    end
    return s
  end
  return nil, "must be a decimal number (e.g. \"12.50\")"
end

-- Digits counted from positions (two finds, no captures: no substrings made).
local function check_decimal_size(s, field)
  local precision, scale = field.precision or 10, field.scale or 0
  local dot, n = find(s, ".", 1, true), #s
  -- surely fits: at most dot - 1 digits before the point (sign and zeros
  -- counted too), at most `scale` after it
  if (dot or n + 1) - 1 <= precision - scale and (not dot or n - dot <= scale) then return true end
  local _, e = find(s, "^[+-]?0*") -- the sign and leading zeros end at e
  local nint = (dot or n + 1) - e - 1
  if dot and #s - dot > scale and find(s, "[^0]", dot + scale + 1) then
    return false, ("has more than %d decimal places"):format(scale)
  end
  if nint > precision - scale then
    return false, ("has more than %d digits before the decimal point"):format(precision - scale)
  end
  return true
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- ---- built-in types -------------------------------------------------------

M.register("integer", {
  schema_type = "integer",
  cast = function(v)
    if math.type(v) == "float" and v == math.floor(v) and v >= math.mininteger and v < 2 ^ 63 then
      return math.tointeger(v)
    end
    return v
  end,
  validate = function(v) if not is_int(v) then return false, "must be an integer" end return true end,
})

-- BIGINT UNSIGNED values above 2^63-1 travel as exact decimal strings
-- (that is how the C core reads them back).
local UNSIGNED_MAX = "18446744073709551615"

M.register("bigint", {
  schema_type = "bigint",
  cast = registry.integer.cast,
  validate = function(v)
    if is_int(v) then return true end
    if type(v) == "string" and v:match("^%d+$") then
      local digits = v:gsub("^0+(%d)", "%1")
      if #digits < #UNSIGNED_MAX or (#digits == #UNSIGNED_MAX and digits <= UNSIGNED_MAX) then return true end
      return false, "is larger than BIGINT UNSIGNED allows"
    end
    return false, "must be an integer (or a decimal string for BIGINT UNSIGNED)"
  end,
})

M.register("float", {
  schema_type = "double",
  cast = function(v) return type(v) == "number" and v + 0.0 or v end,
  validate = function(v)
    if type(v) ~= "number" then return false, "must be a number" end
    if v ~= v or v == math.huge or v == -math.huge then return false, "must be a finite number" end
    return true
  end,
})

--- The last four values a type accepted (a ring: `r[1]`..`r[4]`), so a
-- cast's result checked again by validate a moment later is four compares.
-- No growing memo: unique values (timestamps, amounts) cost one store, never
-- a rehash, and hits need no hashing (`r[1] == v or ... or r[4] == v`).
-- @treturn table the ring
-- @treturn function add(v)
local NONE = {} -- what an empty place holds: equal to no value
function M.recent()
  local r, pos = { NONE, NONE, NONE, NONE }, 0
  return r, function(v)
    pos = pos % 4 + 1
    r[pos] = v
  end
end
local recent = M.recent

local decimal_texts, remember_decimal = recent()
M.decimal_texts, M.remember_decimal, M.DECIMAL_TEXT = decimal_texts, remember_decimal, DECIMAL_TEXT

M.register("decimal", {
  schema_type = "decimal",
  cast = function(v, field)
    local r = decimal_texts
    if r[1] == v or r[2] == v or r[3] == v or r[4] == v then return v end
    if type(v) == "string" then -- as it is; remembered when well-formed
      if find(v, DECIMAL_TEXT) then remember_decimal(v) end
      return v
    end
    return normalize_decimal(v, field) or v
  end,
  validate = function(v, field)
    local s = v
    local r = decimal_texts
    if not (r[1] == v or r[2] == v or r[3] == v or r[4] == v) then -- a text cast() saw is well-formed already
      local msg
      s, msg = normalize_decimal(v, field)
      if not s then return false, msg end
    end
    return check_decimal_size(s, field)
  end,
})

M.register("string", {
  schema_type = "string",
  validate = function(v, field)
    if type(v) ~= "string" then return false, "must be a string" end
    local len = utf8.len(v) -- one pass: valid UTF-8 and its length
    if not len then return false, "is not valid UTF-8 (use a binary field for bytes)" end
    local size = field.size or 255
    if len > size then return false, ("is longer than %d characters"):format(size) end
    return true
  end,
})

-- A text's or binary's `size` (read from the table, or declared) is in bytes.
local function check_bytes(v, field)
  local size = field.size
  if size and #v > size then return false, ("is longer than %d bytes"):format(size) end
  return true
end

M.register("text", {
  schema_type = "text",
  validate = function(v, field)
    if type(v) ~= "string" then return false, "must be a string" end
    if not utf8.len(v) then return false, "is not valid UTF-8 (use a binary field for bytes)" end
    return check_bytes(v, field)
  end,
})

M.register("binary", {
  schema_type = "blob",
  validate = function(v, field)
    if type(v) ~= "string" then return false, "must be a string" end
    return check_bytes(v, field)
  end,
})

M.register("boolean", {
  schema_type = "boolean",
  to_db = function(v) return v and 1 or 0 end,
  from_db = function(v) if type(v) == "number" then return v ~= 0 end return v end,
  validate = function(v)
    if type(v) ~= "boolean" then return false, "must be true or false" end
    return true
  end,
})

M.register("date", {
  schema_type = "date",
  cast = function(v) return normalize_datetime(v, false) or v end,
  validate = function(v)
    local s, msg = normalize_datetime(v, false)
    if not s then return false, msg end
    return true
  end,
})

-- What cast() produces: checked without parsing again.
local CANONICAL = "^%d%d%d%d%-[01]%d%-[0-3]%d [0-2]%d:[0-5]%d:[0-5]%d%.?%d?%d?%d?%d?%d?%d?$"

local canonical_times, remember_time = recent()
M.canonical_times, M.remember_time, M.CANONICAL_TIME = canonical_times, remember_time, CANONICAL

for _, name in ipairs({ "datetime", "timestamp" }) do
  M.register(name, {
    schema_type = name,
    cast = function(v)
      local r = canonical_times
      if r[1] == v or r[2] == v or r[3] == v or r[4] == v then return v end
      if type(v) == "string" and find(v, CANONICAL) then -- already in stored form
        remember_time(v)
        return v
      end
      return normalize_datetime(v, true) or v
    end,
    validate = function(v)
      local r = canonical_times
      if r[1] == v or r[2] == v or r[3] == v or r[4] == v then return true end
      if type(v) == "string" and find(v, CANONICAL) then return true end
      local s, msg = normalize_datetime(v, true)
      if not s then return false, msg end
      return true
    end,
  })
end

M.register("time", {
  schema_type = "time",
  validate = function(v)
    if type(v) ~= "string" or not v:match("^%-?%d%d%d?:%d%d:%d%d%.?%d*$") then
      return false, "must be a time (hh:mm:ss[.ffffff])"
    end
    return true
  end,
})

-- JSON is written by the C core's encoder: integers exactly, floats in the
-- shortest form that reads back equal, tables marked with ar.json_array
-- (and every array read back) as arrays even when empty; a plain empty
-- table {} is an object. NaN, infinities, functions, mixed keys and cycles
-- are refused before any SQL.

M.register("json", {
  schema_type = "json",
  to_db = function(v)
    if v == null then return null end
    return json.encode(v)
  end,
  -- the C core decodes JSON columns it recognises (MySQL's JSON type,
  -- MariaDB 10.5+ metadata), so a string here is a JSON string value; only a
  -- server that cannot say a column is JSON hands back text (the model marks
  -- such fields `json_text`), decoded here by the same decoder
  from_db = function(v, field)
    if type(v) == "string" and field.json_text then return json.decode(v) end
    return v
  end,
  validate = function(v)
    local t = type(v)
    if t == "string" or t == "boolean" or v == null then return true end
    if t == "number" then
      if v ~= v or v == math.huge or v == -math.huge then return false, "must be a finite number" end
      return true
    end
    if t == "table" then
      -- a function inside, a NaN, mixed keys...: refused here, before any SQL
      local ok, err = pcall(json.encode, v)
      if not ok then return false, type(err) == "table" and err.message or tostring(err) end
      return true
    end
    return false, "must be a table, string, number or boolean"
  end,
})

-- The set of a field's allowed values, built once per values table.
local member_sets = setmetatable({}, { __mode = "k" })
local function member_of(values)
  if not values then return {} end
  local set = member_sets[values]
  if set then return set end
  set = {}
  for _, v in ipairs(values) do set[v] = true end
  member_sets[values] = set
  return set
end

M.register("enum", {
  schema_type = "enum",
  options = { values = "table" },
  validate = function(v, field)
    if type(v) ~= "string" then return false, "must be a string" end
    if not member_of(field.values)[v] then
      return false, "must be one of " .. table.concat(field.values or {}, ", ")
    end
    return true
  end,
})

M.register("set", {
  schema_type = "set",
  options = { values = "table" },
  to_db = function(v) return table.concat(v, ",") end,
  from_db = function(v)
    local out = {}
    if type(v) == "string" then
      for item in v:gmatch("[^,]+") do out[#out + 1] = item end
    end
    return out
  end,
  validate = function(v, field)
    if type(v) ~= "table" then return false, "must be an array of values" end
    local allowed = member_of(field.values)
    for _, item in ipairs(v) do
      if type(item) ~= "string" or not allowed[item] or item:find(",", 1, true) then
        return false, ("has '%s', not one of %s"):format(tostring(item),
          table.concat(field.values or {}, ", "))
      end
    end
    return true
  end,
})

M.register("uuid", {
  schema_type = "uuid",
  to_db = function(v, field)
    if field.binary then
      local hex = v:gsub("%-", "")
      return (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
    end
    return v:lower()
  end,
  from_db = function(v, field)
    if field.binary and type(v) == "string" and #v == 16 then
      local hex = v:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
      return ("%s-%s-%s-%s-%s"):format(hex:sub(1, 8), hex:sub(9, 12), hex:sub(13, 16),
        hex:sub(17, 20), hex:sub(21, 32))
    end
    return v
  end,
  validate = function(v)
    if type(v) ~= "string" or not v:match(UUID) then return false, "must be a UUID string" end
    return true
  end,
})

-- The built-in types: activerecord.validation accepts their common valid
-- values inline (a type registered later, or again, is checked by its validate).
for _, t in pairs(registry) do t.builtin = true end

return M
