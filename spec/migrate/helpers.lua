-- Shared by the migrator specs: temporary migration folders, files written
-- into them, and running a command (bin/ar-migrate, lua5.4) in its own
-- process with the spec's module paths and the test server's AR_MYSQL_*.
local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = q

-- A new empty folder under the system's temporary directory.
function M.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -p " .. q(path)), "mkdir " .. path)
  return path
end

function M.rmdir(path)
  if path and path:match("^/tmp/") then os.execute("rm -rf " .. q(path)) end
end

-- Writes `text` to dir/name; returns the path.
function M.write(dir, name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

function M.read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function cwd()
  local p = assert(io.popen("pwd"))
  local dir = p:read("l")
  p:close()
  return dir
end

-- The checkout (specs run from its root).
M.root = cwd()

-- A search path with its relative entries made absolute (children may run
-- in another folder).
local function absolute(path)
  local out = {}
  for entry in path:gmatch("[^;]+") do
    if entry:sub(1, 1) ~= "/" then entry = M.root .. "/" .. entry:gsub("^%./", "") end
    out[#out + 1] = entry
  end
  return table.concat(out, ";")
end

-- The environment prefix that gives a child lua5.4 this process's module
-- paths (the test server's AR_MYSQL_* variables are inherited).
function M.lua_env()
  return "LUA_PATH=" .. q(absolute(package.path)) .. " LUA_CPATH=" .. q(absolute(package.cpath))
end

-- The shell command running bin/ar-migrate with `args` (a string).
function M.cli(args)
  return M.lua_env() .. " " .. q(M.root .. "/bin/ar-migrate") .. " " .. args
end

-- Runs a shell command; returns exit code, stdout, stderr.
function M.run(cmd)
  local errfile = os.tmpname()
  local p = assert(io.popen(cmd .. " 2>" .. q(errfile)))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = M.read(errfile)
  os.remove(errfile)
  return code, out, err
end

-- Starts a shell command in the background; `finish()` waits for it and
-- returns exit code, stdout (stderr folded in).
function M.start(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  return function()
    local out = p:read("a")
    local _, _, code = p:close()
    return code, out
  end
end

-- Drops the migrator's table and the given tables.
function M.reset(db, tables)
  db:execute("DROP TABLE IF EXISTS schema_migrations")
  for _, t in ipairs(tables or {}) do db:execute("DROP TABLE IF EXISTS " .. t) end
end

-- The recorded versions, in version order as strings.
function M.recorded(db)
  local ok, rows = pcall(db.query, db, "SELECT version FROM schema_migrations")
  if not ok then return {} end
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = r.version end
  table.sort(out, function(a, b)
    a, b = a:gsub("^0+", ""), b:gsub("^0+", "")
    if #a ~= #b then return #a < #b end
    return a < b
  end)
  return out
end

return M
