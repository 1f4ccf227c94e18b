-- test/c/threads.lua: the per-thread workload of test/c/threads.c. Each OS
-- thread runs this in its own lua_State with its own connections.
local M = {}

function M.setup(core, opts)
  local c = core.connect(opts)
  c:execute("DROP TABLE IF EXISTS ar_thr")
  c:execute([[CREATE TABLE ar_thr (id BIGINT PRIMARY KEY AUTO_INCREMENT,
    tid INT NOT NULL, k INT NOT NULL, v VARCHAR(64), j JSON, de DECIMAL(20,6),
    at DATETIME(6), bl BLOB, KEY (tid, k)) ENGINE=InnoDB]])
  c:close()
end

-- Runs at least `target` statements; returns (statements, rows inserted).
function M.run(core, opts, tid, target)
  local statements, inserted = 0, 0
  local INSERT = "INSERT INTO ar_thr (tid, k, v, j, de, at, bl) VALUES (?, ?, ?, ?, ?, ?, ?)"
  local c = core.connect(opts)
  local i = 0
  while statements < target do
    i = i + 1
    local kind = i % 8
    if kind <= 3 then
      c:execute(INSERT, tid, i, "value " .. i, string.format('{"i": %d, "a": [1, 2.5, "x"]}', i),
        i + 0.25, string.format("2024-01-01 00:00:%02d.%06d", i % 60, i), string.rep("b", i % 300))
      statements, inserted = statements + 1, inserted + 1
    elseif kind == 4 then
      local n = 0
      for row in c:each("SELECT id, k, v, j, de, at, bl FROM ar_thr WHERE tid = ? AND k > ? ORDER BY k LIMIT 5",
        tid, i - 10) do
        assert(row.j.i == row.k, "JSON column decoded wrongly")
        n = n + 1
      end
      statements = statements + 1
    elseif kind == 5 then
      c:begin()
      c:execute(INSERT, tid, -i, "tx", "null", 1, "2024-01-01", nil)
      c:savepoint("sp")
      c:execute("UPDATE ar_thr SET v = ? WHERE tid = ? AND k = ?", "undone", tid, -i)
      c:rollback_to("sp")
      c:commit()
      statements, inserted = statements + 5, inserted + 1
    elseif kind == 6 then
      c:begin { isolation = "read committed" }
      c:execute(INSERT, tid, -i, "rolled back", "[]", 2, "2024-01-02", "x")
      c:rollback()
      local st = c:prepare("SELECT COUNT(*) AS n, ? AS tid FROM ar_thr WHERE tid = ?")
      local r = st:execute(tid, tid)
      assert(r.rows[1].n == inserted, "row count mismatch")
      st:close()
      statements = statements + 4 -- SET TRANSACTION + begin, insert, rollback, select
    else
      core.json_decode('{"a": [1, 2, {"b": null}]}')
      core.capabilities_for("mariadb", c:server().version_string)
      if i % 64 == 7 then -- a fresh connection now and then: connect concurrency
        c:close()
        c = core.connect(opts)
      end
      c:execute("SELECT ? AS a, ? AS b, ? AS c", i, i / 3, "s")
      statements = statements + 1
    end
  end
  c:close()
  return statements, inserted
end

function M.verify(core, opts, expected)
  local c = core.connect(opts)
  local r = c:execute("SELECT tid, COUNT(*) AS n FROM ar_thr GROUP BY tid ORDER BY tid")
  c:close()
  local seen = {}
  for _, row in ipairs(r.rows) do seen[row.tid] = row.n end
  for tid, n in pairs(expected) do
    assert(seen[tid] == n, string.format("thread %d: %s rows, expected %d", tid, tostring(seen[tid]), n))
  end
  return true
end

return M
