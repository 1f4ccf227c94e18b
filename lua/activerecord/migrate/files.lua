-- The migration files of a folder: listing and checking their names
-- (`<version>_<name>.lua`), ordering versions, loading a file into a fresh
-- environment, and writing a new file from the template (`ar-migrate new`).
local errors = require("activerecord.errors")

local M = {}

-- schema_migrations.version is VARCHAR(32)
local MAX_VERSION = 32

local FILE_PATTERN = "^(%d+)_([%w_]+)%.lua$"

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function join(dir, file)
  if dir:sub(-1) == "/" then return dir .. file end
  return dir .. "/" .. file
end

-- The order key of a version: its digits without leading zeros ("007" and
-- "7" are one version).
function M.key(version)
  local k = tostring(version):gsub("^0+", "")
  if k == "" then k = "0" end
  return k
end

-- Whether key `a` comes before key `b` (numeric order on digit strings of
-- any length).
function M.before(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

-- A version given as an argument (`to = ...`): a string of digits or a
-- whole number >= 0 -> its digit string.
function M.version_arg(v, what)
  if math.type(v) == "integer" and v >= 0 then return tostring(v) end
  if type(v) == "string" and v:match("^%d+$") and #v <= MAX_VERSION then return v end
  errors.raise("ConfigError", ("%s must be a version (digits, as in a migration file's name), got %s")
    :format(what, type(v) == "string" and ("'" .. v .. "'") or tostring(v)), { option = "to" })
end

-- The names in `dir` (folders marked with a trailing "/"); raises when it
-- cannot be listed.
local function list_dir(dir)
  local p = io.popen("ls -1Ap -- " .. shell_quote(dir) .. " 2>/dev/null")
  local out = p and p:read("a")
  local ok = p and p:close()
  if not ok then
    errors.raise("ConfigError", ("migrations folder '%s' cannot be read (does it exist?)"):format(dir),
      { dir = dir })
  end
  local names = {}
  for line in out:gmatch("[^\n]+") do names[#names + 1] = line end
  return names
end

-- The migration files of `dir` in version order: `{ version, name, file,
-- key }`. Other files are ignored unless their name ends in ".lua".
function M.scan(dir)
  local list, by_key = {}, {}
  for _, base in ipairs(list_dir(dir)) do
    if base:sub(-1) ~= "/" and base:sub(-4) == ".lua" then
      local version, name = base:match(FILE_PATTERN)
      local file = join(dir, base)
      if not version then
        errors.raise("ConfigError", ("migration file %s: the name must be <version>_<name>.lua (version: digits; "
          .. "name: letters, digits, underscores)"):format(file), { file = file })
      end
      if #version > MAX_VERSION then
        errors.raise("ConfigError", ("migration file %s: the version has more than %d digits")
          :format(file, MAX_VERSION), { file = file })
      end
      local key = M.key(version)
      local other = by_key[key]
      if other then
        local a, b = other.file, file
        if b < a then a, b = b, a end
        errors.raise("ConfigError", ("migration files %s and %s have the same version %s: give one of them "
          .. "another version"):format(a, b, version), { file = b, version = version })
      end
      local entry = { version = version, name = name, file = file, key = key }
      by_key[key] = entry
      list[#list + 1] = entry
    end
  end
  table.sort(list, function(a, b) return M.before(a.key, b.key) end)
  return list
end

local SHAPE = "must return { up = function(m) ... end, down = function(m) ... end } or "
  .. "{ change = function(m) ... end }"

-- What is wrong with a loaded file's value, or nil.
local function shape_problem(t)
  if type(t) ~= "table" then return "got " .. type(t) end
  for k in pairs(t) do
    if k ~= "up" and k ~= "down" and k ~= "change" then
      return "got an unknown key '" .. tostring(k) .. "'"
    end
  end
  for _, k in ipairs({ "up", "down", "change" }) do
    if t[k] ~= nil and type(t[k]) ~= "function" then return ("got %s = %s"):format(k, type(t[k])) end
  end
  if t.change then
    if t.up or t.down then return "got change together with up/down" end
    return nil
  end
  if not t.up then return "got no up" end
  if not t.down then return "got up without down" end
  return nil
end

-- Loads a migration file (an entry of `scan`) in an environment of its own
-- that reads globals from _G -> the migration table.
function M.load(entry)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(entry.file, "t", env)
  if not chunk then
    errors.raise("ConfigError", ("migration file %s does not load: %s"):format(entry.file, err), { file = entry.file })
  end
  local ok, value = pcall(chunk)
  if not ok then
    errors.raise("ConfigError", ("migration file %s raised while loading: %s"):format(entry.file, tostring(value)),
      { file = entry.file, cause = value })
  end
  local problem = shape_problem(value)
  if problem then
    errors.raise("ConfigError", ("migration file %s %s; %s"):format(entry.file, SHAPE, problem), { file = entry.file })
  end
  return value
end

local function check_name(name)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    errors.raise("ConfigError", ("a migration's name is letters, digits and underscores, got %s")
      :format(type(name) == "string" and ("'" .. name .. "'") or tostring(name)))
  end
end

-- `<yyyymmddhhmmss>_<name>.lua` for `time` (seconds since the epoch, UTC).
function M.file_name(name, time)
  check_name(name)
  return os.date("!%Y%m%d%H%M%S", time or os.time()) .. "_" .. name .. ".lua"
end

local TEMPLATE = [[
-- Migration %s, created %s UTC.
-- rollback runs `change` backwards; write `up` and `down` instead when it
-- uses an operation that cannot be reversed (execute, change_column, ...).
return {
  change = function(m)
    -- m:create_table("widgets", function(t)
    --   t:bigint("id", { primary_key = true, auto_increment = true })
    --   t:string("name", { size = 100, nullable = false })
    -- end)
  end,
}
]]

-- Writes a new migration file in `dir` (made when missing) from the
-- template; its version is `time` as yyyymmddhhmmss (UTC), moved on by one
-- while another file has it. Returns its path.
function M.create(dir, name, time)
  check_name(name)
  time = time or os.time()
  if not os.execute("mkdir -p -- " .. shell_quote(dir) .. " 2>/dev/null") then
    errors.raise("ConfigError", ("cannot make the migrations folder '%s'"):format(dir), { dir = dir })
  end
  local taken = {}
  for _, entry in ipairs(M.scan(dir)) do taken[entry.key] = true end
  local base = M.file_name(name, time)
  while taken[M.key(base:match("^%d+"))] do
    time = time + 1
    base = M.file_name(name, time)
  end
  local file = join(dir, base)
  local existing = io.open(file, "r")
  if existing then
    existing:close()
    errors.raise("ConfigError", ("cannot write %s: it exists"):format(file), { file = file })
  end
  local f, err = io.open(file, "w")
  if not f then
    errors.raise("ConfigError", ("cannot write %s: %s"):format(file, tostring(err)), { file = file })
  end
  f:write(TEMPLATE:format(name, os.date("!%Y-%m-%d %H:%M:%S", time)))
  f:close()
  return file
end

return M
