-- A backend for model specs without a server: the MariaDB dialect and the
-- real compiler; it records the kinds it compiles and the statements it is
-- asked to execute, and answers every statement with `affected` rows.
local compiler = require("activerecord.backend.mysql.compiler")
local cases = require("compiler.cases")

return function()
  local db = { dialect = cases.dialects.mariadb, compiler = compiler, compiled = {}, executed = {},
               affected = 1, next_id = 100 }
  function db:compile(kind, ...)
    self.compiled[#self.compiled + 1] = kind
    return self.compiler[kind](self.dialect, ...)
  end
  function db:execute(sql, ...)
    self.executed[#self.executed + 1] = { sql = sql, params = table.pack(...) }
    self.next_id = self.next_id + 1
    return { rows = {}, affected_rows = self.affected, insert_id = self.next_id }
  end
  function db:supports() return false end
  function db:transaction(fn) return fn() end
  function db:_track_undo() return false end
  return db
end
