--- The `after_commit` and `after_rollback` events: which records a
-- transaction wrote, with which kind of write, and running their handlers
-- once per record when the outermost transaction has ended.
--
-- A write inside a transaction notes its record (`note`): the first write
-- of a record in a transaction registers one end-of-transaction action
-- with the backend (`db:_track_commit`), every write registers an undo
-- action (`db:_track_undo`) that takes the write back out of the record's
-- account when its transaction level is rolled back. When the outermost
-- transaction ends, a record with at least one write that was not rolled
-- back gets `after_commit` after the COMMIT; a record whose writes were all
-- rolled back (the whole transaction, or the savepoints it was written in)
-- gets `after_rollback`. Each record gets one of the two, once, with the
-- kind of its writes: `"delete"` when the last one deleted it, else
-- `"create"` when one of them inserted it, else `"update"`. A write outside
-- any transaction autocommitted: its `after_commit` handlers run at once.
-- @module activerecord.model.commit_events
local errors = require("activerecord.errors")

local M = {}

local setmetatable, pcall, type = setmetatable, pcall, type

--- The kinds a handler can be limited to (`on = ...`).
M.KINDS = { create = true, update = true, delete = true }

-- record -> its entry in the running transaction (weak: a record dropped
-- mid-transaction is forgotten with it)
local pending = setmetatable({}, { __mode = "k" })

-- A handler limited to some kinds: callable like a plain handler, it runs
-- `fn` only for those (or when no kind is given).
local Filtered = {
  __call = function(h, rec, kind, ...)
    if kind == nil or h.on[kind] then return h.fn(rec, kind, ...) end
  end,
}

--- A handler entry for `fn` limited to the kinds of `on` (a kind or a list
-- of kinds); `fn` itself when `on` is nil.
-- @raise `ConfigError` (with `message_prefix`) for another shape
function M.handler(fn, on, message_prefix)
  if on == nil then return fn end
  local set = {}
  local list = type(on) == "table" and on or { on }
  for _, k in ipairs(list) do
    if not M.KINDS[k] then
      errors.raise("ConfigError", ("%son = %s: a kind is \"create\", \"update\" or \"delete\", or a list "
        .. "of them"):format(message_prefix or "", tostring(k)))
    end
    set[k] = true
  end
  if next(set) == nil then
    errors.raise("ConfigError", (message_prefix or "") .. "on = {}: name at least one kind")
  end
  return setmetatable({ fn = fn, on = set }, Filtered)
end

--- The function a handler entry runs (to find it again for `off`).
function M.fn_of(h)
  if type(h) == "table" then return h.fn end
  return h
end

--- Whether the model has `after_commit` or `after_rollback` handlers.
function M.wanted(meta)
  local ev = meta.events
  return #ev.after_commit > 0 or #ev.after_rollback > 0
end

local function committed_error(errs)
  return errors.new("CallbackError", ("the data was committed, then %d after-commit handler(s) failed: %s")
    :format(#errs, tostring(errs[1])), { committed = true, cause = errs[1], causes = errs })
end

-- Runs every handler of `event` for `rec`, each under pcall; raises once
-- all ran: the error itself when one failed, a CallbackError listing them
-- when several did.
local function dispatch(model, event, rec, kind)
  local list = model._meta.events[event]
  local errs
  for i = 1, #list do
    local ok, err = pcall(list[i], rec, kind)
    if not ok then
      errs = errs or {}
      errs[#errs + 1] = err
    end
  end
  if errs then
    if #errs == 1 then error(errs[1], 0) end
    error(committed_error(errs), 0)
  end
end

local function kind_of(last, created)
  if last == "delete" then return "delete" end
  return created and "create" or "update"
end

-- The end-of-transaction action of one record: e = { model, rec, db, co,
-- alive (writes not rolled back), kind, created (of those), last, any_created
-- (of every write), done }.
local Finish = {
  __call = function(e, committed)
    e.done = true
    local rec = e.rec
    if pending[rec] == e then pending[rec] = nil end
    if committed and e.alive > 0 then
      dispatch(e.model, "after_commit", rec, kind_of(e.kind, e.created))
    else
      dispatch(e.model, "after_rollback", rec, kind_of(e.last, e.any_created))
    end
  end,
}

-- The undo of one write in the record's account: u = { entry, kind before, created before }.
local Undo = {
  __call = function(u)
    local e = u[1]
    e.alive = e.alive - 1
    e.kind, e.created = u[2], u[3]
  end,
}

--- Notes a write of `rec` (`kind`: "create", "update" or "delete") that
-- succeeded: inside a transaction it is accounted for the end of the
-- outermost one; outside one (or on a backend without `_track_commit`) the
-- `after_commit` handlers run now.
-- @raise outside a transaction, `CallbackError` (`committed = true`) when
--   handlers failed (all of them ran)
function M.note(db, model, rec, kind)
  if db._track_commit == nil or not db:in_transaction() then
    if #model._meta.events.after_commit == 0 then return end
    local ok, err = pcall(dispatch, model, "after_commit", rec, kind)
    if not ok then
      if errors.is(err, "CallbackError") then error(err, 0) end
      error(committed_error({ err }), 0)
    end
    return
  end
  local co = coroutine.running()
  local e = pending[rec]
  if e ~= nil and (e.done or e.db ~= db or e.co ~= co) then e = nil end
  if e == nil then
    e = setmetatable({ model = model, rec = rec, db = db, co = co, alive = 0, kind = nil,
      created = false, last = nil, any_created = false, done = false }, Finish)
    pending[rec] = e
    db:_track_commit(e)
  end
  db:_track_undo(setmetatable({ e, e.kind, e.created }, Undo))
  e.alive = e.alive + 1
  e.kind, e.last = kind, kind
  if kind == "create" then
    e.created, e.any_created = true, true
  end
end

return M
