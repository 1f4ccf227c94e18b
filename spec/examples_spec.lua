-- Every example in examples/ runs as its own process (as a user would run
-- it) against the server the specs use, and its printed output is checked
-- for the lines that prove it worked. An example that breaks fails `make test`.
local LUA = os.getenv("AR_LUA") or "lua5.4"

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs examples/<name>.lua with this process's module paths; returns its
-- combined output and whether it exited with status 0.
local function run(name)
  local cmd = ("LUA_PATH=%s LUA_CPATH=%s %s examples/%s.lua 2>&1"):format(shell_quote(package.path),
    shell_quote(package.cpath), LUA, name)
  local pipe = assert(io.popen(cmd, "r"))
  local output = pipe:read("a")
  local ok, how, code = pipe:close()
  return output, ok == true and how == "exit" and code == 0
end

-- Asserts that `output` has a line matching each Lua pattern, in order.
local function expect_lines(output, patterns)
  local pos = 1
  for _, pattern in ipairs(patterns) do
    local s, e = output:find(pattern, pos)
    assert(s, ("no line matching %q after position %d in:\n%s"):format(pattern, pos, output))
    pos = e + 1
  end
end

local EXPECTED = {
  quickstart = {
    "connected to %a+ %d+%.%d+%.%d+",
    "created project #%d+ Tracker at %d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+ UTC",
    "new issues start open, priority 2",
    "duplicate project refused: true / name has already been taken",
    "find_or_create_by found #%d+ %(created: false%)",
    "invalid issue refused: true / kind=ValidationError",
    "  priority must be at most 5; title is required",
    "  urgent: %[1%] Login page is slow",
    "  urgent: %[2%] Crash on save",
    "open issues: 3 of 3",
    "open priorities sum to 7 %(integer%), average 2%.33",
    "page 2 of 2: 1 of 3 issues",
    "Tracker has 3 issues; the first is \"Login page is slow\"",
    "issue #%d+ belongs to Tracker",
    "transaction rolled back: true; crash is open in the database, 3 issues",
    "  notify: #%d+ \"Crash on save\" was closed",
    "committed: crash is closed, open priorities now 2, 5",
  },
  core_tour = {
    "connected to %a+ %d+%.%d+%.%d+",
    "inserted Ann with id %d+",
    "#%d+ Ann  balance=1250%.75 %(string%)",
    "after the transaction Bo has 96%.90, and 2 users remain",
    "duplicate insert refused: true / kind=IntegrityError code=1062",
    "streamed 100000 rows, sum = 5000050000",
  },
  json_features = {
    "Ann's profile decoded: editor=vim, first language=lua, years=9 %(integer%)",
    "editor = vim: Ann, Cy",
    "SQL: SELECT %* FROM `example_developers` WHERE %(JSON_UNQUOTE%(JSON_EXTRACT%(`profile`, %?%)%) >= %?%)",
    "parameters: 2 %(%$%.level%.years, 5%)",
    "level%.years >= 5: Ann, Cy",
    "languages contains \"lua\": Ann, Cy",
    "languages contains %[\"lua\", \"python\"%]: Cy",
    "json_path_query%(editor = emacs%): 1 row, name=Bo",
    "injection through the path refused: true, kind=QueryError, statements sent=0",
    "message: invalid JSON path",
    "injection through the value matches 0 rows",
    "bad table name refused: true, kind=QueryError",
    "cleaned up",
  },
  transactions = {
    "committed transfer: 1=90%.00 2=110%.00 %(total 200%.00%)",
    "failed transaction rolled back %(card declined%): 1=90%.00 2=110%.00",
    "inner transaction failed %(inner failure%), in_transaction=true",
    "inner undone: 1=80%.00 2=120%.00 %(total 200%.00%)",
    "levels ran: outer > middle > inner %(fails%); account 1 = 101%.00",
    "attempt 1: DeadlockError %(code 1213%)",
    "deadlock retried: committed on attempt 2",
    "other session: helper committed",
    "after both transfers: 1=95%.00 2=105%.00 %(total 200%.00%)",
    "without retries: raised DeadlockError after 1 attempt; only the other transfer applied: "
      .. "1=105%.00 2=95%.00 %(total 200%.00%)",
    "cleaned up",
  },
  associations = {
    "post.author = ann: author saved first %(id %d+%), post.author_id = %d+, posts_count = 1",
    "autosave with an invalid child: false %(ValidationError%); authors named Bob: 0, still new: true",
    "fixed and saved: Bob has 2 posts in the table, 2 in bob:posts%(%), posts_count = 2",
    "tags added: lua, sql; after remove%(sql%): 1 tag, 1 join row, 2 tags kept",
    "comments with their owners in 3 SELECTs %(comments, posts, photos%): Post:Nice post, Post:Agreed, "
      .. "Photo:Lovely light",
    "comment counters: post 2, photo 1",
    "deleting Ann: 2 posts left, 1 comments left, 2 comment after_delete events",
    "line item %d+/2: pear x5 %(the table's default qty read back, then updated by the full key%); line 1 still x3",
    "deleted line 2 by its full key: 1 line item left",
    "cleaned up",
  },
  relations = {
    "ann:posts%(%) twice: 2 posts, 1 statement",
    "inverse_of: post:author%(%) is the same object, no query: true",
    "ann:posts_query%(%) is chainable: 1 post",
    "lazy loading: 6 lines with 16 statements %(N%+1%)",
    "eager loading: 6 lines with 5 statements",
    "same result both ways: true",
    "scoped eager load: first post has 1 of its 2 comments",
    "  2 statements",
    "posts joined to their author named Bo: 2",
    "posts per tag: lua=6, mysql=3, orm=3",
    "deleting a post deleted its comments: 10 comments left of 12",
    "cleaned up",
  },
  bulk_and_upsert = {
    "insert_all: 2500 rows, affected_rows=2500, 3 INSERT statements, 2500 after_create events",
    "generated ids: first=%d+ last=%d+ %(consecutive: true%)",
    "invalid row refused: true %(ValidationError, row 2%); rows still 2500, 0 written",
    "insert_all{ ignore = true }: 1 of 2 rows inserted",
    "upsert_all: affected_rows=3 ",
    "p0002 now scores 99",
    "save{ upsert = true }: 1 inserted",
    "save{ upsert = true }: 2 updated",
    "save{ upsert = true }: 0 unchanged",
    "update_all bumped 251 rows; delete_all removed 2 rows; 2501 players remain",
    "cleaned up",
  },
  pool_and_logging = {
    "after connect: size=2 open=1 in_use=0",
    "after 5 coroutines: size=2 open=2 in_use=0 idle=2 waits=3 timeouts=0 created=2",
    "at most 2 connections in use at once; 10 rows written by 5 transactions",
    "exhausted pool: ConnectionError after 0%.%d s: connection pool exhausted",
    "small pool: size=1 open=1 in_use=0 idle=1 waits=1 timeouts=1",
    "the connection is back: SELECT 1 = 1",
    "%[error%] QueryError 1054",
    "4 statements logged, 1 slow:",
    "%[slow%] 0%.%d%d s  SELECT SLEEP%(%?%) AS slept  %(1 parameter%)",
    "%[debug%] SELECT COUNT%(%*%) AS n FROM example_jobs WHERE worker = %?  values: w3",
    "statement with a failing log hook still returns: 42",
    "cleaned up",
  },
  schema_evolution = {
    "pending: 3 %(create_products, add_price_and_stock, create_orders%)",
    "applied 20260101000001",
    "fields read from the table: id:bigint, created_at:datetime, name:string",
    "lamp #%d+, created_at from the server: true",
    "applied 20260102000001, 20260103000001",
    "desk price 12%.50, stock 0 %(the column default%)",
    "refused before any SQL: true, ValidationError",
    "  name: is longer than 100 characters",
    "  price: has more than 2 decimal places",
    "lamp kept its row: price 0%.00",
    "order total computed by the server: 37%.50",
    "after the update: total 50%.00, updated_at moved on: true",
    "up   20260101000001 create_products",
    "up   20260103000001 create_orders",
    "dump creates: evo_products, evo_orders",
    "rolled back 20260103000001",
    "evo_orders exists: false",
    "rolled back 20260102000001, 20260101000001",
    "evo_products exists: false",
    "cleaned up",
  },
  capabilities = {
    "server: %a+ %d+%.%d+%.%d+",
    "  json +yes: json",
    "%d+ capabilities supported, %d+ not",
    "require_capability%(\"[%w_]+\"%): CapabilityError: ",
    "for_share%(%) compiles to: ",
    "mysql 5%.7%.40: cte=false window_functions=false json_table=false returning=false %-> CTE %+ window query: "
      .. "CapabilityError %(WITH %(common table expressions%) needs MySQL 8%.0%.1%+",
    "mysql 8%.0%.36: cte=true window_functions=true json_table=true returning=false %-> CTE %+ window query: "
      .. "compiles",
    "mariadb 10%.4%.30: cte=true window_functions=true json_table=false",
    "cleaned up",
  },
}

-- Examples another example runs (a server its load run starts as a child).
local RUN_BY = { event_loop_server = "event_loop_load" }

EXPECTED.event_loop_load = {
  "listening on http://127%.0%.0%.1:%d+/ %(pool of 10",
  "10 GET /slow one after another: ",
  "100 concurrent GET /slow %(SELECT SLEEP%(0%.05%), pool of 10%): [%d.]+ s, 100 ok, [%d.]+x faster than serial",
  "50 concurrent POST /counter/[%w-]+: [%d.]+ s; the counter reads 50",
  "load run ok: requests were served concurrently and every increment counted",
}

describe("examples", function()
  local names = {}
  for name in pairs(EXPECTED) do names[#names + 1] = name end
  table.sort(names)

  for _, name in ipairs(names) do
    it(name .. ".lua runs and prints what it shows", function()
      local output, ok = run(name)
      assert(ok, ("examples/%s.lua failed:\n%s"):format(name, output))
      expect_lines(output, EXPECTED[name])
    end)
  end

  it("covers every file in examples/", function()
    local pipe = assert(io.popen("ls examples"))
    for file in pipe:lines() do
      local name = file:match("^(.-)%.lua$")
      if name then
        assert(EXPECTED[name] or EXPECTED[RUN_BY[name]], "examples/" .. file .. " has no expected output in this spec")
      end
    end
    pipe:close()
  end)
end)
