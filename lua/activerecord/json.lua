-- JSON for the neutral layers: encode, decode (arrays marked), structural
-- hash, array marking. This module owns the array metatable; a backend's C
-- core adopts it and installs its exact encoder, decoder and hash here when
-- it loads. Call through this table (`json.hash(v)`), never cache a function
-- from it at load time.
--
-- Until a backend loads, the functions below stand in, on lua-cjson: encode
-- writes a table carrying `array_mt` (or keyed 1..n) as an array and sorts
-- object keys; decode marks non-empty arrays (cjson cannot tell `[]` from
-- `{}`, so an empty array decodes as a plain table); hash is the encoded text
-- (equal for equal values, not the core's integer).
local null = require("activerecord.null")

local M = {}

M.array_mt = { __name = "activerecord.json_array", __jsontype = "array" }

local function cjson() return require("cjson") end

--- Marks `t` (or a new table) as a JSON array, so an empty one encodes as [].
function M.array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then
    require("activerecord.errors").raise("DataError", "json_array expects a table, got " .. type(t))
  end
  return setmetatable(t, M.array_mt)
end

-- n for an array (marked, or keys exactly 1..n with n >= 1), else nil.
local function array_length(t)
  if getmetatable(t) == M.array_mt then return #t end
  local n = #t
  if n == 0 then return nil end
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return nil end
  end
  return n
end

local function encode(v, out, depth)
  if depth > 512 then
    require("activerecord.errors").raise("DataError", "json_encode: nested too deeply (a cycle?)")
  end
  if v == null or v == nil then out[#out + 1] = "null"; return end
  if math.type(v) == "integer" then out[#out + 1] = tostring(v); return end
  if math.type(v) == "float" and v == v and v ~= math.huge and v ~= -math.huge then
    local text = string.format("%.17g", v)
    for digits = 15, 16 do -- the shortest form that reads back as the same double
      local short = string.format("%." .. digits .. "g", v)
      if tonumber(short) == v then text = short; break end
    end
    out[#out + 1] = text
    return
  end
  if type(v) ~= "table" then out[#out + 1] = cjson().encode(v); return end
  local n = array_length(v)
  if n then
    out[#out + 1] = "["
    for i = 1, n do
      if i > 1 then out[#out + 1] = "," end
      encode(v[i], out, depth + 1)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = cjson().encode(k) .. ":"
    local value = v[k]
    if value == nil then value = v[tonumber(k)] end
    encode(value, out, depth + 1)
  end
  out[#out + 1] = "}"
end

function M.encode(v)
  local out = {}
  encode(v, out, 0)
  return table.concat(out)
end

local function mark(v)
  if type(v) == "table" then
    if array_length(v) then setmetatable(v, M.array_mt) end
    for _, x in pairs(v) do mark(x) end
  end
  return v
end

function M.decode(text)
  return mark(cjson().decode(text))
end

function M.hash(v)
  local ok, text = pcall(M.encode, v)
  return ok and text or false
end

return M
