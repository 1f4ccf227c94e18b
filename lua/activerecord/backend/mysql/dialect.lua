-- The MySQL / MariaDB Dialect: the object the compiler and the schema DSL
-- ask for SQL fragments. This file holds what the server's flavor and
-- capabilities decide (capability checks and messages, placeholders, LIMIT,
-- locking, RETURNING) and composes the parts: quoting.lua (identifiers),
-- json_path.lua (JSON paths), literals.lua (literals), ddl.lua (DDL) and
-- ddl_alter.lua (ALTER statements).
-- Pure (no I/O). Every choice that differs between servers asks the
-- capability table (flavor AND version), never a bare version number.
--
-- Values never enter the SQL text: they travel as `?` parameters. The
-- only literals we write are DDL defaults, ENUM/SET members and comments,
-- through `literal`, whose output cannot break out of its quotes under
-- either sql_mode (with or without NO_BACKSLASH_ESCAPES).
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local messages = require("activerecord.backend.mysql.messages")

local Dialect = {}
Dialect.__index = Dialect

Dialect.placeholder = "?"
-- The MySQL manual's "all rows" LIMIT, for OFFSET without LIMIT.
Dialect.MAX_LIMIT = "18446744073709551615"

local show, query_error = messages.show, messages.query_error

-- ------------------------------------------------------ capabilities ----

-- Where each gated capability first appears, for CapabilityError messages:
-- { feature, mysql, mariadb } with a version string, true (every version)
-- or false (never), read from the C core's matrix, the one table of
-- capabilities (it also decides them). Those every server has are left out.
local CAPABILITY_HINTS = {}
for name, c in pairs(core.capability_matrix()) do
  if not (c.mysql == true and c.mariadb == true) then
    CAPABILITY_HINTS[name] = { c.feature, c.mysql, c.mariadb }
  end
end
Dialect.CAPABILITY_HINTS = CAPABILITY_HINTS

local FLAVOR_NAMES = { mysql = "MySQL", mariadb = "MariaDB" }

-- "10.6.0" -> "10.6"; "8.0.1" stays.
local function short_version(v)
  return (v:gsub("^(%d+%.%d+)%.0$", "%1"))
end

local function parse_version(version)
  if type(version) == "string" then
    local _, v = core.parse_version(version) -- the C core's reader, the one there is
    if v then return v end
  elseif type(version) == "table" then
    local v = { version[1], version[2] or 0, version[3] or 0 }
    if math.type(v[1]) == "integer" and math.type(v[2]) == "integer"
        and math.type(v[3]) == "integer" then
      return v
    end
  end
  errors.raise("ConfigError", "dialect version must be {major, minor, patch} or \"x.y.z\", got "
    .. show(version))
end

-- Dialect.new{ flavor = "mysql"|"mariadb", version = {maj, min, patch},
--              capabilities = flat table from core (computed when omitted) }
function Dialect.new(opts)
  opts = opts or {}
  if not FLAVOR_NAMES[opts.flavor] then
    errors.raise("ConfigError", "dialect flavor must be \"mysql\" or \"mariadb\", got "
      .. show(opts.flavor))
  end
  local version = parse_version(opts.version)
  local caps = opts.capabilities or core.capabilities_for(opts.flavor, version)
  local copy = {}
  for k, v in pairs(caps) do copy[k] = v end
  return setmetatable({
    flavor = opts.flavor,
    version = version,
    version_string = table.concat(version, "."),
    capabilities = copy,
  }, Dialect)
end

-- False for names the matrix does not know, like for missing features.
function Dialect:supports(name)
  return self.capabilities[name] == true
end

-- "... needs MariaDB 10.6+" or "... is not available on MariaDB".
function Dialect:capability_message(name, feature)
  local hint = CAPABILITY_HINTS[name]
  feature = feature or (hint and hint[1]) or name
  local connected = string.format("(server: %s %s)", self.flavor, self.version_string)
  local since = hint and hint[self.flavor == "mysql" and 2 or 3]
  if type(since) == "string" then
    return string.format("%s needs %s %s+ %s", feature, FLAVOR_NAMES[self.flavor],
      short_version(since), connected)
  end
  return string.format("%s is not available on %s %s", feature, FLAVOR_NAMES[self.flavor],
    connected)
end

-- Raises CapabilityError (before any SQL exists) unless the server has it.
function Dialect:require(name, feature)
  if self:supports(name) then return true end
  errors.raise("CapabilityError", self:capability_message(name, feature), {
    capability = name, flavor = self.flavor, version = self.version_string,
  })
end

-- MySQL-only version thresholds that are not capabilities of their own.
function Dialect:at_least(major, minor, patch)
  local v = self.version
  local want = { major, minor or 0, patch or 0 }
  for i = 1, 3 do
    if v[i] ~= want[i] then return v[i] > want[i] end
  end
  return true
end

-- ------------------------------------------------------- placeholders ----

local function count_arg(n, what)
  local v = math.tointeger(n)
  if not v or v < 0 then
    query_error(string.format("%s must be a non-negative integer, got %s", what, show(n)))
  end
  return v
end

-- placeholders(3) -> "?, ?, ?"
function Dialect:placeholders(n)
  n = count_arg(n, "placeholder count")
  if n == 0 then query_error("placeholder count must be at least 1") end
  return string.rep("?", n, ", ")
end

-- "LIMIT ? OFFSET ?", { limit, offset }; "" when neither is given.
function Dialect:limit_offset(limit, offset)
  if limit ~= nil then limit = count_arg(limit, "LIMIT") end
  if offset ~= nil then offset = count_arg(offset, "OFFSET") end
  if limit and offset then return "LIMIT ? OFFSET ?", { limit, offset } end
  if limit then return "LIMIT ?", { limit } end
  if offset then return "LIMIT " .. Dialect.MAX_LIMIT .. " OFFSET ?", { offset } end
  return "", {}
end

-- ------------------------------------------------------------ locking ----

local LOCK_KEYS = { mode = true, nowait = true, skip_locked = true }

-- { mode = "update"|"share", nowait = bool, skip_locked = bool } -> clause.
function Dialect:lock_clause(opts)
  opts = opts or {}
  options.check(opts, LOCK_KEYS, "lock")
  local mode = opts.mode or "update"
  local sql
  if mode == "update" then
    sql = "FOR UPDATE"
  elseif mode == "share" then
    -- MariaDB and MySQL 5.7 only know the older spelling (same lock).
    sql = self:supports("for_share") and "FOR SHARE" or "LOCK IN SHARE MODE"
  else
    query_error("lock mode must be \"update\" or \"share\", got " .. show(mode))
  end
  if opts.nowait and opts.skip_locked then
    query_error("a lock cannot use both NOWAIT and SKIP LOCKED")
  end
  if opts.nowait then
    self:require("nowait", "NOWAIT")
    sql = sql .. " NOWAIT"
  elseif opts.skip_locked then
    self:require("skip_locked", "SKIP LOCKED")
    sql = sql .. " SKIP LOCKED"
  end
  return sql
end

-- ------------------------------------------------------- DML helpers ----

function Dialect:returning_clause(columns, capability, feature)
  self:require(capability, feature)
  if columns == "*" then return " RETURNING *" end
  return " RETURNING " .. self:quote_list(columns, "RETURNING")
end


-- ---------------------------------------------------------------- parts ----

for _, part in ipairs({ "quoting", "json_path", "literals", "ddl", "ddl_alter" }) do
  for name, value in pairs(require("activerecord.backend.mysql." .. part)) do Dialect[name] = value end
end

return Dialect
