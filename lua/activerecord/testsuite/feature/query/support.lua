-- Shared data and models of the feature/query specs: a handful of users
-- and posts with known values, so expectations can be computed in Lua.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local M = {}

-- name, email, age, score, balance, active, profile; `posts` titles.
M.USERS = {
  { name = "Ann", email = "ann@example.com", age = 31, score = 1.5, balance = "10.10", active = true,
    profile = { theme = "dark", tags = { "python", "lua" }, user = { name = "Ann" } }, posts = { "a1", "a2", "a3" } },
  { name = "Bob", email = "bob@example.com", age = 17, score = 2.5, balance = "0.20", active = false,
    profile = { theme = "light", tags = { "go" }, user = { name = "Bob" } }, posts = { "b1" } },
  { name = "Cid", email = "cid@example.com", age = 45, score = 0.5, balance = "1234.56", active = true,
    profile = { theme = "dark", tags = { "python" }, user = { name = "Cid" } }, posts = {} },
  { name = "Dee", email = "dee@example.com", age = nil, score = 4.0, balance = "0.01", active = true,
    posts = {} },
  { name = "Eve", email = "eve@example.com", age = 17, score = 3.0, balance = "99.99", active = false,
    profile = { theme = "light", tags = {} }, posts = { "e1", "e2" } },
}

local counter = 0

-- User and Post models on `db` (fresh names, so specs never share classes).
function M.models(db, extra)
  counter = counter + 1
  local suffix = tostring(counter)
  local def = {
    name = "QUser" .. suffix, table = "users", backend = db,
    fields = {
      id = { type = "bigint", primary_key = true }, name = "string", email = "string", age = "integer",
      score = "float", balance = { type = "decimal", precision = 12, scale = 2 }, active = "boolean",
      profile = "json",
    },
  }
  for k, v in pairs(extra or {}) do def[k] = v end
  local User = ar.Model(def)
  local Post = ar.Model{
    name = "QPost" .. suffix, table = "posts", backend = db,
    fields = { id = { type = "bigint", primary_key = true }, user_id = "bigint", title = "string", body = "text" },
  }
  return User, Post
end

-- Empties and refills users and posts; returns the users by name.
function M.seed(db, User, Post)
  db:execute("DELETE FROM posts")
  db:execute("DELETE FROM users")
  local by_name = {}
  for _, u in ipairs(M.USERS) do
    local rec = User:create{ name = u.name, email = u.email, age = u.age, score = u.score,
      balance = u.balance, active = u.active, profile = u.profile }
    by_name[u.name] = rec
    for _, title in ipairs(u.posts) do Post:create{ user_id = rec.id, title = title } end
  end
  return by_name
end

-- Names of records/rows, in their order.
function M.names(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.name end
  return out
end

-- Runs fn; asserts it raised `kind` without sending any statement.
function M.raises_before_sql(db, kind, fn)
  local err
  local n = testsuite.count_statements(db, function()
    local ok, e = pcall(fn)
    assert(not ok, "expected " .. kind .. ", got success")
    err = e
  end)
  assert(ar.errors.is(err, kind), "expected " .. kind .. ", got " .. tostring(err))
  assert(n == 0, ("%d statement(s) were sent before the %s"):format(n, kind))
  return err
end

return M
