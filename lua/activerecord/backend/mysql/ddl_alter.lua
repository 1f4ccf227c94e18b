-- ALTER statements for MySQL/MariaDB (what migrations run): RENAME TABLE,
-- ADD/DROP/RENAME/MODIFY COLUMN, DROP INDEX, ADD/DROP FOREIGN KEY, and a
-- column definition rebuilt from introspection (for CHANGE COLUMN where the
-- server has no RENAME COLUMN). Methods of the Dialect (dialect.lua copies
-- them in); pure, no I/O: the caller looks things up (db:columns, ...).
-- Every identifier is validated and quoted; the only values written are the
-- DDL literals of ddl.lua's writers.
local schema = require("activerecord.schema")
local messages = require("activerecord.backend.mysql.messages")

local show, config_error = messages.show, messages.config_error

local M = {}

local function alter(self, table_name)
  return "ALTER TABLE " .. self:quote_qualified(table_name) .. " "
end

local function column_name(table_name, name, what)
  if type(name) ~= "string" or name == "" then
    config_error(table_name, nil, (what or "column") .. " must be a non-empty string, got " .. show(name))
  end
  return name
end

local function check_column(table_name, col, what)
  if type(col) ~= "table" or type(col.name) ~= "string" then
    config_error(table_name, nil, what .. " needs a column from the schema DSL (schema.column)")
  end
end

-- RENAME TABLE `a` TO `b`
function M:rename_table_sql(from, to)
  return "RENAME TABLE " .. self:quote_qualified(from) .. " TO " .. self:quote_qualified(to)
end

-- ALTER TABLE `t` ADD COLUMN <definition>[, ADD PRIMARY KEY (...)][, ADD
-- UNIQUE KEY/KEY ...][, ADD CONSTRAINT ... FOREIGN KEY ...][, ADD
-- CONSTRAINT ... CHECK ...]: the column-level items named as CREATE TABLE
-- names them. `col` is a column of the schema DSL (schema.column).
function M:add_column_sql(table_name, col)
  check_column(table_name, col, "add_column")
  local items = { "ADD COLUMN " .. self:column_sql(col, table_name) }
  if col.primary_key then
    items[#items + 1] = "ADD PRIMARY KEY (" .. self:quote_identifier(col.name) .. ")"
  end
  local indexes, fks, checks = self.expand_column_items({ name = table_name, columns = { col } })
  for _, index in ipairs(indexes) do items[#items + 1] = "ADD " .. self:index_sql(table_name, index) end
  for _, fk in ipairs(fks) do items[#items + 1] = "ADD " .. self:foreign_key_sql(table_name, fk) end
  for _, check in ipairs(checks) do items[#items + 1] = "ADD " .. self:check_sql(table_name, check) end
  return alter(self, table_name) .. table.concat(items, ", ")
end

-- ALTER TABLE `t` [DROP FOREIGN KEY `fk`, ...] [DROP CONSTRAINT `chk`, ...]
-- DROP COLUMN `c`: the foreign keys and CHECK constraints named in
-- `foreign_keys` and `checks` (those the column carries) go first, in the
-- same statement, since the server refuses to drop a column one needs.
function M:remove_column_sql(table_name, name, foreign_keys, checks)
  column_name(table_name, name)
  local items = {}
  for _, fk in ipairs(foreign_keys or {}) do
    items[#items + 1] = "DROP FOREIGN KEY " .. self:quote_identifier(fk)
  end
  -- MySQL spells it DROP CHECK (DROP CONSTRAINT only from 8.0.19), MariaDB DROP CONSTRAINT
  local drop_check = self.flavor == "mysql" and "DROP CHECK " or "DROP CONSTRAINT "
  for _, check in ipairs(checks or {}) do
    items[#items + 1] = drop_check .. self:quote_identifier(check)
  end
  items[#items + 1] = "DROP COLUMN " .. self:quote_identifier(name)
  return alter(self, table_name) .. table.concat(items, ", ")
end

-- Options of `change_column` that belong to other operations.
local NOT_IN_CHANGE = { "primary_key", "unique", "index", "references", "check" }

-- ALTER TABLE `t` MODIFY COLUMN <definition>: the whole definition is
-- replaced (what `col` leaves out is gone, as MODIFY does).
-- `in_primary_key`: the column is part of the primary key (NOT NULL).
function M:change_column_sql(table_name, col, in_primary_key)
  check_column(table_name, col, "change_column")
  for _, key in ipairs(NOT_IN_CHANGE) do
    if col[key] ~= nil then
      config_error(table_name, col.name, "change_column does not take " .. show(key)
        .. " (use add_index, add_foreign_key or a new column)")
    end
  end
  return alter(self, table_name) .. "MODIFY COLUMN " .. self:column_sql(col, table_name, in_primary_key)
end

-- A column definition for `table_name` from an introspected column
-- (db:columns), named `name` (default: its own): what CHANGE COLUMN needs.
-- The server's own column type is kept (ENUM/SET rebuilt from their
-- members, JSON as JSON so MariaDB keeps its json_valid check).
function M:introspected_column_sql(c, table_name, name)
  if type(c) ~= "table" or type(c.name) ~= "string" then
    config_error(table_name, nil, "a column definition needs an introspected column (db:columns)")
  end
  local col = {
    name = name or c.name, nullable = c.nullable, comment = c.comment,
    auto_increment = c.auto_increment or nil, on_update = c.on_update,
    charset = c.charset, collate = c.collation,
  }
  if c.type == "enum" or c.type == "set" then
    col.type, col.values = c.type, c.values
  elseif c.type == "json" then
    col.type, col.charset, col.collate = "json", nil, nil -- JSON sets its own
  else
    col.type, col.sql_type = c.type, c.sql_type
  end
  if c.generated then
    col.generated = { expr = schema.raw(c.generated.expr), stored = c.generated.stored == true }
    col.on_update, col.auto_increment = nil, nil
    if self.flavor ~= "mysql" then col.nullable = nil end
  end
  local default_text
  if c.default ~= nil and not c.generated then
    if schema.is_raw(c.default) then
      default_text = schema.raw_text(c.default)
    else
      -- the literal form of the column's neutral type (not of its sql_type)
      default_text = self:default_sql({ name = col.name, type = c.type, default = c.default },
        table_name)
    end
  end
  return self:column_sql(col, table_name, c.primary_key, default_text)
end

-- ALTER TABLE `t` RENAME COLUMN `a` TO `b` where the server has it;
-- otherwise ALTER TABLE `t` CHANGE COLUMN `a` <current definition as `b`>,
-- `current` being the introspected column (db:columns).
function M:rename_column_sql(table_name, from, to, current)
  column_name(table_name, from)
  column_name(table_name, to, "new column name")
  if self:supports("rename_column") then
    return alter(self, table_name) .. "RENAME COLUMN " .. self:quote_identifier(from) .. " TO "
      .. self:quote_identifier(to)
  end
  if type(current) ~= "table" then
    config_error(table_name, from, "renaming a column on this server needs its current definition"
      .. " (CHANGE COLUMN)")
  end
  return alter(self, table_name) .. "CHANGE COLUMN " .. self:quote_identifier(from) .. " "
    .. self:introspected_column_sql(current, table_name, to)
end

-- ALTER TABLE `t` DROP INDEX `name` (DROP PRIMARY KEY for "PRIMARY").
function M:remove_index_sql(table_name, name)
  column_name(table_name, name, "index name")
  if name == "PRIMARY" then return alter(self, table_name) .. "DROP PRIMARY KEY" end
  return alter(self, table_name) .. "DROP INDEX " .. self:quote_identifier(name)
end

-- ALTER TABLE `t` ADD CONSTRAINT `name` FOREIGN KEY (...) REFERENCES ...;
-- `fk` = { columns, references = { table, columns }, name, on_delete, on_update }
-- (named as CREATE TABLE names them when `name` is nil).
function M:add_foreign_key_sql(table_name, fk)
  if type(fk) ~= "table" or type(fk.columns) ~= "table" or type(fk.references) ~= "table" then
    config_error(table_name, nil, "add_foreign_key needs { columns, references = { table, columns } }")
  end
  if #fk.columns ~= #(fk.references.columns or {}) then
    config_error(table_name, fk.columns[1], "foreign key and referenced column counts differ")
  end
  return alter(self, table_name) .. "ADD " .. self:foreign_key_sql(table_name, fk)
end

-- ALTER TABLE `t` DROP FOREIGN KEY `name` (its index stays, as in Rails).
function M:remove_foreign_key_sql(table_name, name)
  column_name(table_name, name, "foreign key name")
  return alter(self, table_name) .. "DROP FOREIGN KEY " .. self:quote_identifier(name)
end

return M
