-- Validation: per-field rules and the error collector passed to a model's
-- `validate(self, errors)`. Every failure is collected before anything is
-- reported, so a ValidationError lists them all. A model's field rules run
-- as one function compiled once per model (`compile`), which allocates no
-- collector until a rule fails.
local null = require("activerecord.null")

local M = {}

local rawget = rawget

local Errors = {}
Errors.__index = Errors

function M.new_errors()
  return setmetatable({ fields = {}, order = {} }, Errors)
end

function Errors:add(field, message)
  local list = self.fields[field]
  if not list then
    list = {}
    self.fields[field] = list
    self.order[#self.order + 1] = field
  end
  list[#list + 1] = message
end

function Errors:any() return #self.order > 0 end
function Errors:on(field) return self.fields[field] end

-- "name is required; age must be at least 13"
function Errors:summary()
  local parts = {}
  for _, f in ipairs(self.order) do
    for _, msg in ipairs(self.fields[f]) do parts[#parts + 1] = f .. " " .. msg end
  end
  return table.concat(parts, "; ")
end

-- The plain { field = { messages } } table a ValidationError carries.
function Errors:to_table()
  local out = {}
  for f, list in pairs(self.fields) do
    local copy = {}
    for i, m in ipairs(list) do copy[i] = m end
    out[f] = copy
  end
  return out
end

local function numeric(v)
  if type(v) == "number" then return v end
  if type(v) == "string" then return tonumber(v) end
  return nil
end

local function length_of(v)
  if type(v) == "string" then return utf8.len(v) or #v end
  if type(v) == "table" then return #v end
  return nil
end

local new_errors = M.new_errors

-- The collector, created at the first failure.
local function add(errs, name, message)
  if not errs then errs = new_errors() end
  errs:add(name, message)
  return errs
end

--- Checks one field's value against its type and rules; adds to `errs`
-- (created when nil and a rule fails).
-- @return errs: the collector, or nil while every rule passed
function M.check_field(record, field, value, errs)
  local name = field.name
  if value == nil or value == null then
    if field.required or (field.nullable == false and not field.auto) then
      errs = add(errs, name, "is required")
    end
    return errs
  end
  if field.required and value == "" then
    return add(errs, name, "is required")
  end
  local type_spec = field.type_spec
  if type_spec.validate then
    local ok, msg = type_spec.validate(value, field)
    if not ok then
      return add(errs, name, msg or "is invalid") -- further rules would only repeat the type problem
    end
  end
  if field.min ~= nil then
    local n = numeric(value)
    if n and n < field.min then errs = add(errs, name, ("must be at least %s"):format(tostring(field.min))) end
  end
  if field.max ~= nil then
    local n = numeric(value)
    if n and n > field.max then errs = add(errs, name, ("must be at most %s"):format(tostring(field.max))) end
  end
  if field.length ~= nil then
    local len, rule = length_of(value), field.length
    if len then
      local lo = type(rule) == "table" and rule.min or (type(rule) == "number" and rule) or nil
      local hi = type(rule) == "table" and rule.max or (type(rule) == "number" and rule) or nil
      if lo and len < lo then errs = add(errs, name, ("is shorter than %d characters"):format(lo)) end
      if hi and len > hi then errs = add(errs, name, ("is longer than %d characters"):format(hi)) end
    end
  end
  if field.format ~= nil and type(value) == "string" and not value:match(field.format) then
    errs = add(errs, name, "has an invalid format")
  end
  if field.one_of ~= nil then
    local found = false
    for _, allowed in ipairs(field.one_of) do
      if allowed == value then found = true break end
    end
    if not found then
      local shown = {}
      for i, a in ipairs(field.one_of) do shown[i] = tostring(a) end
      errs = add(errs, name, "must be one of " .. table.concat(shown, ", "))
    end
  end
  if field.validate ~= nil then
    local ok, msg = field.validate(value, record)
    if ok == false or type(ok) == "string" then
      errs = add(errs, name, type(ok) == "string" and ok or msg or "is invalid")
    end
  end
  return errs
end

--- A model's field rules as one function, compiled once per model:
-- `check(record, changes, is_new, errs)` -> errs (nil while valid). With
-- `changes`, only the changed fields are checked (a stored record's others
-- hold what the database accepted); a nil generated key, or a nil
-- server-default column of a new record, is the server's to fill.
-- @tparam table list the model's fields in order (each with its `slot`)
-- @treturn function the checker
function M.compile(list)
  local n = #list
  local check_field = M.check_field
  return function(record, changes, is_new, errs)
    for i = 1, n do
      local f = list[i]
      local v = rawget(record, f.slot)
      if (v ~= nil or not (f.auto or (f.server_default and is_new)))
          and (changes == nil or changes[f.name] ~= nil) then
        errs = check_field(record, f, v, errs)
      end
    end
    return errs
  end
end

return M
