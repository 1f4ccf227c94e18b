--- The migrator: runs the migration files of a folder in version order and
-- records the applied versions in the `schema_migrations` table.
--
-- A migration is a file `<version>_<name>.lua` (version: digits, e.g. a UTC
-- timestamp `20240131120000`) returning `{ up = function(m) ... end,
-- down = function(m) ... end }` or `{ change = function(m) ... end }`; `m`
-- is the operations object of `activerecord.migrate.operations`. MariaDB
-- DDL is not transactional: each version is recorded right after its
-- migration succeeds, so a run that fails midway keeps what it applied
-- before, and a rerun after the fix goes on from the failed file.
--
-- `migrate` and `rollback` hold a server-side lock (`GET_LOCK`, see
-- `activerecord.backend.mysql.Backend:with_advisory_lock`) named
-- `ar_migrate:<database>` for the whole run and read the applied versions
-- only once they hold it: two migrators started at once (two deploy hosts)
-- run each migration once, the second finds nothing left to do.
-- @module activerecord.migrate
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local clock = require("activerecord.clock")
local files = require("activerecord.migrate.files")

local M = {}

-- The default table of applied versions (its definition is fixed: other
-- tools following the same convention read it).
local TABLE = "schema_migrations"

--- Default seconds `migrate` and `rollback` wait for another migrator's lock.
M.LOCK_TIMEOUT = 600

local NEW_OPTIONS = { lock_timeout = true, log = true, table = true }

local Migrator = {}
Migrator.__index = Migrator

--- Creates a migrator over a folder (what `ar.migrator` calls). Nothing is
-- read or sent until a method runs.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string dir the folder of `<version>_<name>.lua` files
-- @tparam[opt] table opts `lock_timeout` (seconds to wait for a migrator
--   running elsewhere, default `LOCK_TIMEOUT`), `log` (a function called
--   with one line of text before and after each migration), `table` (the
--   table of applied versions, default `schema_migrations`)
-- @treturn Migrator the migrator
-- @raise `ConfigError` for a missing backend or folder name, or a bad option
function M.new(db, dir, opts)
  if type(db) ~= "table" or type(db.execute) ~= "function" then
    errors.raise("ConfigError", "migrator: expects a backend (ar.connect{...}) as its first argument")
  end
  if type(dir) ~= "string" or dir == "" then
    errors.raise("ConfigError", "migrator: expects the migrations folder as its second argument")
  end
  opts = opts or {}
  if type(opts) ~= "table" then errors.raise("ConfigError", "migrator: options must be a table") end
  options.check(opts, NEW_OPTIONS, "migrator")
  local lock_timeout = opts.lock_timeout or M.LOCK_TIMEOUT
  if type(lock_timeout) ~= "number" or lock_timeout ~= lock_timeout or lock_timeout < 0
      or lock_timeout == math.huge then
    errors.raise("ConfigError", "migrator: lock_timeout must be a finite number of seconds >= 0",
      { option = "lock_timeout" })
  end
  if opts.log ~= nil and type(opts.log) ~= "function" then
    errors.raise("ConfigError", "migrator: log must be a function", { option = "log" })
  end
  local versions_table = opts.table or TABLE
  if type(versions_table) ~= "string" then
    errors.raise("ConfigError", "migrator: table must be a string", { option = "table" })
  end
  db.dialect:quote_identifier(versions_table) -- validates the name now
  return setmetatable({ db = db, dir = dir, lock_timeout = lock_timeout, log = opts.log,
    table = versions_table }, Migrator)
end

--- The file name `create_file` gives a migration called `name` (now, by default).
-- @function file_name
-- @tparam string name the migration's name (letters, digits, underscores)
-- @tparam[opt] number time seconds since the epoch (default: now, UTC)
-- @treturn string `<yyyymmddhhmmss>_<name>.lua`
-- @raise `ConfigError` for a bad name
M.file_name = files.file_name

--- Writes a new migration file from a template with an empty `change`
-- (what `ar-migrate new NAME` does); its version is the UTC time
-- `yyyymmddhhmmss`, moved on by a second while another file has it.
-- @function create_file
-- @tparam string dir the migrations folder (made when missing)
-- @tparam string name the migration's name (letters, digits, underscores)
-- @tparam[opt] number time seconds since the epoch (default: now)
-- @treturn string the new file's path
-- @raise `ConfigError` for a bad name, or a folder or file that cannot be written
M.create_file = files.create

-- ---- the schema_migrations table ----------------------------------------

local function quoted_table(self)
  return self.db.dialect:quote_identifier(self.table)
end

-- Read without the introspection cache: another process may have created it.
local function table_exists(self)
  local rows = self.db:query("SELECT 1 AS present FROM information_schema.TABLES"
    .. " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", self.table)
  return rows[1] ~= nil
end

local function ensure_table(self)
  if table_exists(self) then return end
  self.db:execute("CREATE TABLE IF NOT EXISTS " .. quoted_table(self)
    .. " (version VARCHAR(32) NOT NULL PRIMARY KEY, applied_at DATETIME(6) NOT NULL)"
    .. " ENGINE=InnoDB DEFAULT CHARSET=ascii")
end

-- The applied versions: key -> { version, applied_at }, and the keys in
-- version order. An absent table: nothing applied.
local function read_applied(self)
  local by_key, keys = {}, {}
  if not table_exists(self) then return by_key, keys end
  for _, row in ipairs(self.db:query("SELECT version, applied_at FROM " .. quoted_table(self))) do
    local key = files.key(row.version)
    by_key[key] = { version = row.version, applied_at = row.applied_at }
    keys[#keys + 1] = key
  end
  table.sort(keys, files.before)
  return by_key, keys
end

local function record(self, version)
  self.db:execute("INSERT INTO " .. quoted_table(self) .. " (version, applied_at) VALUES (?, UTC_TIMESTAMP(6))",
    version)
end

local function unrecord(self, version)
  self.db:execute("DELETE FROM " .. quoted_table(self) .. " WHERE version = ?", version)
end

-- ---- running ------------------------------------------------------------

-- Runs `fn` holding the lock `ar_migrate:<database>`.
local function locked(self, fn)
  local database = self.db:query("SELECT DATABASE() AS name")[1].name
  if database == nil then
    errors.raise("ConfigError", "migrator: the connection has no database selected (give `database`)")
  end
  return self.db:with_advisory_lock("ar_migrate:" .. database, self.lock_timeout, fn)
end

local function say(self, line)
  if self.log then self.log(line) end
end

-- Runs one migration `direction`; on failure adds what this run did before
-- (`applied` or `reverted`, oldest first in the order of the run) to the
-- error and raises it.
local function run_one(self, entry, migration, direction, done)
  local ops = require("activerecord.migrate.operations")
  local verb = direction == "up" and "migrat" or "revert"
  say(self, ("== %s %s: %sing"):format(entry.version, entry.name, verb))
  local started = clock.now()
  local ok, err = pcall(ops.run, self.db, migration, direction, { file = entry.file, version = entry.version })
  if self.db.reset_schema_cache then self.db:reset_schema_cache() end
  if not ok then
    if not errors.is(err) then
      -- a Lua error in the migration's own code (not a failed statement)
      err = errors.new("MigrationError", ("migration %s failed: %s"):format(entry.file, tostring(err)),
        { file = entry.file, version = entry.version, cause = err })
    end
    local list = table.move(done, 1, #done, 1, {})
    if direction == "up" then rawset(err, "applied", list) else rawset(err, "reverted", list) end
    say(self, ("== %s %s: failed"):format(entry.version, entry.name))
    error(err, 0)
  end
  say(self, ("== %s %s: %sed (%.3f s)"):format(entry.version, entry.name, verb, clock.now() - started))
end

--- A migrator (`ar.migrator(db, dir, opts)`); `M.Migrator` is its metatable.
-- @type Migrator
M.Migrator = Migrator

--- Runs the pending migrations in version order (`up`), each recorded right
-- after it succeeds. Holds the migration lock for the whole run.
-- @tparam[opt] table opts `to` = a version (string of digits or integer):
--   run the pending migrations up to and including it (default: all)
-- @treturn {string,...} the versions applied by this run, in order (empty
--   when nothing was pending)
-- @raise `ConfigError` for a bad file name, two files with one version, a
--   file that does not load or returns something else than a migration
--   (before anything runs), a `to` below the current version (use
--   `rollback`); `MigrationError` from the first failing migration, with
--   `applied` = the versions this run applied before it; `LockTimeoutError`
--   when another migrator holds the lock for `lock_timeout` seconds
-- @usage local applied = ar.migrator(db, "db/migrations"):migrate()
function Migrator:migrate(opts)
  opts = options.check(opts or {}, { to = true }, "migrate")
  local to = opts.to ~= nil and files.version_arg(opts.to, "migrate: to") or nil
  local list = files.scan(self.dir)
  return locked(self, function()
    ensure_table(self)
    local applied, keys = read_applied(self)
    local current = keys[#keys]
    if to and current and files.before(files.key(to), current) then
      errors.raise("ConfigError", ("migrate: to = %s is below the current version %s: use rollback{ to = %s } "
        .. "to go back"):format(to, applied[current].version, to), { option = "to" })
    end
    local pending = {}
    for _, entry in ipairs(list) do
      if not applied[entry.key] and (not to or not files.before(files.key(to), entry.key)) then
        pending[#pending + 1] = entry
      end
    end
    -- every file loads before the first one runs
    local loaded = {}
    for i, entry in ipairs(pending) do loaded[i] = files.load(entry) end
    local done = {}
    for i, entry in ipairs(pending) do
      run_one(self, entry, loaded[i], "up", done)
      record(self, entry.version)
      done[#done + 1] = entry.version
    end
    return done
  end)
end

--- Reverts applied migrations newest first (`down`, or a `change` run
-- backwards), deleting each record right after it succeeds. Holds the
-- migration lock for the whole run.
-- @tparam[opt] table opts `steps` (how many, default 1) or `to` = a version:
--   revert every applied version above it (`to = 0`: all)
-- @treturn {string,...} the versions reverted, newest first
-- @raise `ConfigError` for `steps` with `to`, a bad `steps`, an applied
--   version whose file is missing, a file that does not load (before
--   anything runs); `MigrationError` from the first failing migration, with
--   `reverted` = the versions this run reverted before it;
--   `LockTimeoutError` as for `migrate`
-- @usage ar.migrator(db, "db/migrations"):rollback{ steps = 2 }
function Migrator:rollback(opts)
  opts = options.check(opts or {}, { steps = true, to = true }, "rollback")
  if opts.steps ~= nil and opts.to ~= nil then
    errors.raise("ConfigError", "rollback: give steps or to, not both", { option = "steps" })
  end
  local to = opts.to ~= nil and files.version_arg(opts.to, "rollback: to") or nil
  local steps = opts.steps == nil and 1 or math.tointeger(opts.steps)
  if not to and (not steps or steps < 1) then
    errors.raise("ConfigError", "rollback: steps must be a whole number >= 1, got " .. tostring(opts.steps),
      { option = "steps" })
  end
  local by_key = {}
  for _, entry in ipairs(files.scan(self.dir)) do by_key[entry.key] = entry end
  return locked(self, function()
    local applied, keys = read_applied(self)
    local targets = {}
    for i = #keys, 1, -1 do
      local key = keys[i]
      if to then
        if not files.before(files.key(to), key) then break end
      elseif #targets >= steps then
        break
      end
      local entry = by_key[key]
      if not entry then
        errors.raise("ConfigError", ("rollback: version %s is applied but its file is missing from %s: "
          .. "cannot revert it"):format(applied[key].version, self.dir), { version = applied[key].version })
      end
      targets[#targets + 1] = { entry = entry, version = applied[key].version }
    end
    local loaded = {}
    for i, t in ipairs(targets) do loaded[i] = files.load(t.entry) end
    local done = {}
    for i, t in ipairs(targets) do
      run_one(self, t.entry, loaded[i], "down", done)
      unrecord(self, t.version)
      done[#done + 1] = t.version
    end
    return done
  end)
end

--- Every migration, file or record, in version order (no lock taken).
-- @treturn {table,...} entries `{ version, name, applied, file, applied_at }`;
--   an applied version whose file is missing has `name = nil` and
--   `missing = true`
-- @raise `ConfigError` for a bad file name or two files with one version
function Migrator:status()
  local list = files.scan(self.dir)
  local applied, keys = read_applied(self)
  local out, seen = {}, {}
  for _, entry in ipairs(list) do
    local a = applied[entry.key]
    seen[entry.key] = true
    out[#out + 1] = { key = entry.key, version = entry.version, name = entry.name, file = entry.file,
                      applied = a ~= nil, applied_at = a and a.applied_at }
  end
  for _, key in ipairs(keys) do
    if not seen[key] then
      local a = applied[key]
      out[#out + 1] = { key = key, version = a.version, applied = true, missing = true, applied_at = a.applied_at }
    end
  end
  table.sort(out, function(x, y) return files.before(x.key, y.key) end)
  for _, e in ipairs(out) do e.key = nil end
  return out
end

--- The migration files of the folder in version order (read now).
-- @treturn {table,...} entries `{ version, name, file }`
-- @raise `ConfigError` for a bad file name or two files with one version
function Migrator:files()
  local out = {}
  for i, entry in ipairs(files.scan(self.dir)) do
    out[i] = { version = entry.version, name = entry.name, file = entry.file }
  end
  return out
end

return M
