-- UUID generation: v4 (random) and v7 (Unix milliseconds first, so keys
-- generated later sort later and inserts stay at the end of the index).
local clock = require("activerecord.clock")

local M = {}

local function random_bytes(n)
  local f = io.open("/dev/urandom", "rb")
  if f then
    local b = f:read(n)
    f:close()
    if b and #b == n then return b end
  end
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

local function format(bytes)
  local hex = bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
  return ("%s-%s-%s-%s-%s"):format(hex:sub(1, 8), hex:sub(9, 12), hex:sub(13, 16), hex:sub(17, 20),
    hex:sub(21, 32))
end

local function set_version(bytes, version)
  local b = { bytes:byte(1, 16) }
  b[7] = (b[7] & 0x0F) | (version << 4)
  b[9] = (b[9] & 0x3F) | 0x80 -- RFC 4122 variant
  return string.char(table.unpack(b))
end

function M.v4()
  return format(set_version(random_bytes(16), 4))
end

-- 48-bit Unix time in milliseconds, then random bits.
function M.v7()
  local ms = math.floor(clock.now() * 1000)
  local ts = {}
  for i = 6, 1, -1 do
    ts[i] = string.char(ms & 0xFF)
    ms = ms >> 8
  end
  return format(set_version(table.concat(ts) .. random_bytes(10), 7))
end

return M
