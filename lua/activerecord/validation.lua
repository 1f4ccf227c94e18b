-- Validation: per-field rules and the error collector passed to a model's
-- `validate(self, errors)`. Every failure is collected before anything is
-- reported, so a ValidationError lists them all. A model's field rules run
-- as one function compiled once per model (`compile`), which allocates no
-- collector until a rule fails.
local null = require("activerecord.null")

local M = {}


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

--- A `length` rule as `min`, `max` and `is` (each nil when not set). The
-- model layer hands the normalised forms (`{ min =, max = }`, `{ is = n }`);
-- the declared ones are read too: a number (the exact length, as `is`),
-- `{ min, max }` (`{ 3, 10 }`), `{ min = 3 }`, `{ max = 10 }`, `{ is = 5 }`.
-- @param rule the rule
-- @treturn number|nil min
-- @treturn number|nil max
-- @treturn number|nil is
function M.length_bounds(rule)
  if type(rule) == "number" then return nil, nil, rule end
  if type(rule) ~= "table" then return nil, nil, nil end
  local is = rule.is
  if type(is) == "number" then return nil, nil, is end
  local lo, hi = rule.min, rule.max
  if lo == nil and hi == nil then lo, hi = rule[1], rule[2] end
  return type(lo) == "number" and lo or nil, type(hi) == "number" and hi or nil, nil
end
local length_bounds = M.length_bounds

-- The collector, created at the first failure.
local function add(errs, name, message)
  if not errs then errs = new_errors() end
  errs:add(name, message)
  return errs
end

-- The messages of a length of `len` against `rule`.
local function check_length(errs, name, len, rule)
  local lo, hi, is = length_bounds(rule)
  if is and len ~= is then
    local unit = is == 1 and "character" or "characters"
    return add(errs, name, ("is the wrong length (should be %d %s)"):format(is, unit))
  end
  if lo and len < lo then errs = add(errs, name, ("is shorter than %d characters"):format(lo)) end
  if hi and len > hi then errs = add(errs, name, ("is longer than %d characters"):format(hi)) end
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
    local len = length_of(value)
    if len then errs = check_length(errs, name, len, field.length) end
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

-- ---- a model's rules as one function ----------------------------------------
-- Generated once per model: per field, an inline test that accepts the
-- common valid values of the built-in types without a call (a string of at
-- most `size` bytes that is valid UTF-8, an integer, a finite number, a
-- boolean, a value of a decimal or date/time field seen valid before, a JSON
-- table that encodes). Anything else, and every field with rules of its own
-- (required, min, max, length, format, one_of, validate), goes through
-- check_field, so the messages are check_field's. The generated text holds
-- slot numbers and field names (identifiers); sizes and fields come in as upvalues.

-- Values a field's type accepted, remembered (the last four, per field;
-- these types accept no tables): a repeated value is four compares, a
-- unique one costs a store (no growing memo to rehash).
local recent = require("activerecord.types").recent
local RULES = { "required", "min", "max", "length", "format", "one_of", "validate" }

local FAST = {
  string = "type(v) == 'string' and #v <= SZ[%d] and utf8len(v) ~= nil",
  text = "type(v) == 'string' and #v <= SZ[%d] and utf8len(v) ~= nil",
  binary = "type(v) == 'string' and #v <= SZ[%d]",
  integer = "mtype(v) == 'integer'",
  bigint = "mtype(v) == 'integer'",
  float = "type(v) == 'number' and v == v and v ~= HUGE and v ~= -HUGE",
  boolean = "v == true or v == false",
}
local MEMO = { decimal = true, date = true, time = true, enum = true, uuid = true }
-- Types whose validate is cheap for what their cast produced (it remembers
-- the texts it checked): called directly, no memo of their own.
local DIRECT = { datetime = true, timestamp = true }

local function has_rules(f)
  for _, r in ipairs(RULES) do
    if f[r] ~= nil then return true end
  end
  return false
end

-- The code testing field i (value in `v`) when it is neither nil nor null.
local function present_code(f, i)
  local t = f.type_spec
  if not t.builtin or has_rules(f) then return ("errs = check(rec, F[%d], v, errs)\n"):format(i) end
  local fast = FAST[f.type]
  if fast then
    return ("if not (%s) then errs = check(rec, F[%d], v, errs) end\n"):format(fast:format(i), i)
  end
  if MEMO[f.type] then
    return ("local r = MEMOS[%d]\nif not (r[1] == v or r[2] == v or r[3] == v or r[4] == v) then\n"
      .. "  if TV[%d](v, F[%d]) then REMEMBER[%d](v) else errs = check(rec, F[%d], v, errs) end\n"
      .. "end\n"):format(i, i, i, i, i)
  end
  if DIRECT[f.type] then
    return ("if not TV[%d](v, F[%d]) then errs = check(rec, F[%d], v, errs) end\n"):format(i, i, i)
  end
  if f.type == "json" and f.json_index then -- the text is kept for the write (see json_scratch)
    return ("if type(v) == 'table' then\n"
      .. "  local ok, text = pcall(JSON.encode, v)\n"
      .. "  if ok then JV[%d], JT[%d] = v, text else errs = check(rec, F[%d], v, errs) end\n"
      .. "else errs = check(rec, F[%d], v, errs) end\n"):format(f.json_index, f.json_index, i, i)
  end
  return ("errs = check(rec, F[%d], v, errs)\n"):format(i)
end

-- The code for field i: nil (the server's to fill, or "is required"), null,
-- or a value.
local function field_code(f, i)
  if f.generated then return "" end -- the server computes it: never written
  local nil_code
  if f.auto then
    nil_code = ""
  elseif f.server_default and not f.required then
    nil_code = ("if not is_new then errs = check(rec, F[%d], v, errs) end\n"):format(i)
  elseif f.required or (f.nullable == false) then
    nil_code = ("errs = check(rec, F[%d], v, errs)\n"):format(i)
  else
    nil_code = ""
  end
  -- the name is an identifier (checked at definition): a constant key
  return ("if changes == nil or changes[%q] ~= nil then\n"
    .. "local v = rec[%d]\n"
    .. "if v == nil then\n%s"
    .. "elseif v == NULL then errs = check(rec, F[%d], v, errs)\n"
    .. "else\n%send\nend\n"):format(f.name, f.slot, nil_code, i, present_code(f, i))
end

-- ---- unique fields -----------------------------------------------------------
-- After every field's own rules: per `unique` field whose value or scope
-- changed (or every one when all fields are checked) and that has no error
-- yet, the query of activerecord.model.uniqueness (loaded when first needed:
-- it loads the model layer).

local function unique_check(rec, f, errs)
  return require("activerecord.model.uniqueness").check(rec, f, errs, new_errors)
end

local function unique_code(list)
  local out = {}
  for i, f in ipairs(list) do
    if f.unique and not f.generated then
      local watched = { f.name }
      local scope = type(f.unique) == "table" and f.unique.scope or nil
      if type(scope) == "string" then scope = { scope } end
      for _, name in ipairs(type(scope) == "table" and scope or {}) do watched[#watched + 1] = name end
      local changed = {}
      for j, name in ipairs(watched) do changed[j] = ("changes[%q] ~= nil"):format(tostring(name)) end
      out[#out + 1] = ("if (changes == nil or %s) and not (errs and errs.fields[%q]) then\n"
        .. "  errs = UNIQUE(rec, F[%d], errs)\nend\n"):format(table.concat(changed, " or "), f.name, i)
    end
  end
  return table.concat(out)
end

--- A model's field rules as one function, compiled once per model:
-- `check(record, changes, is_new, errs, no_unique)` -> errs (nil while
-- valid; `no_unique`: the `unique` look-ups are left out). With
-- `changes`, only the changed fields are checked (a stored record's others
-- hold what the database accepted); a nil generated key, or a nil
-- server-default column of a new record, is the server's to fill; a
-- generated column is not checked (never written). Last, each `unique`
-- field whose value (or scope) is checked and valid so far is looked up in
-- the table (activerecord.model.uniqueness: one query each).
-- @tparam table list the model's fields in order (each with its `slot`)
-- @tparam table scratch `{ values = {}, texts = {} }`: for a JSON table that
--   encoded, values[j] = the table and texts[j] = its text (j: the field's
--   json_index), so a write right after need not encode it again
-- @treturn function the checker
function M.compile(list, scratch)
  local F, SZ, MEMOS, REMEMBER, TV = {}, {}, {}, {}, {}
  local code = { "local F, SZ, MEMOS, REMEMBER, TV, JV, JT, check, NULL, JSON, UNIQUE = ...\n"
    .. "local type, mtype, utf8len, pcall, HUGE = type, math.type, utf8.len, pcall, math.huge\n"
    .. "return function(rec, changes, is_new, errs, no_unique)\n" }
  for i, f in ipairs(list) do
    -- a string's size in characters (255 unless declared or read from the
    -- table), a text's or binary's in bytes (none unless known)
    local size = f.size or (f.type == "string" and 255 or math.maxinteger)
    F[i], SZ[i], TV[i] = f, size, f.type_spec.validate or false
    if MEMO[f.type] then MEMOS[i], REMEMBER[i] = recent() end
    code[#code + 1] = field_code(f, i)
  end
  local unique = unique_code(list)
  if unique ~= "" then code[#code + 1] = "if not no_unique then\n" .. unique .. "end\n" end
  code[#code + 1] = "return errs\nend\n"
  local chunk = assert(load(table.concat(code), "=(validator)", "t"))
  local json = require("activerecord.json")
  return chunk(F, SZ, MEMOS, REMEMBER, TV, scratch.values, scratch.texts, M.check_field, null, json, unique_check)
end

return M
