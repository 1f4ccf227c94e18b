--- A bounded memo: a table whose missing keys are computed once and
-- remembered, emptied in place when it holds `max` of them (a key per SQL
-- text or per name would otherwise grow without end when callers splice
-- values into text). A hit is a plain table index, no call; only a miss
-- runs the `__index` function. Neutral (no backend), so any layer may use it.
-- @module activerecord.memo
local setmetatable, next, rawset = setmetatable, next, rawset

local M = {}

--- A table `t` where `t[k]` is `compute(k)`, computed on the first read of
-- `k` and kept (a `false` result is kept too; `nil` is not, and is computed
-- again). When `max` keys are held, the next miss empties the table first.
-- An error raised by `compute` propagates and nothing is kept.
-- @tparam integer max how many keys it holds at most
-- @tparam function compute key -> value
-- @treturn table the memo (read it with `t[k]`; do not write to it)
-- @usage local quoted = memo.bounded(4096, function(name) return "`" .. name .. "`" end)
function M.bounded(max, compute)
  local n = 0
  return setmetatable({}, {
    __index = function(t, k)
      local v = compute(k)
      if v ~= nil then
        if n >= max then
          for key in next, t do t[key] = nil end -- emptied in place: callers keep the table
          n = 0
        end
        rawset(t, k, v)
        n = n + 1
      end
      return v
    end,
  })
end

return M
