-- Query AST -> MySQL SQL text plus bound parameters. The query layer builds
-- plain tables (activerecord.query); this is the one place they become SQL.
-- Every value becomes a `?` parameter; every identifier goes through the
-- dialect's validated quoting; raw fragments are the user's explicit text
-- with their own `?` parameters. Features the server lacks raise
-- CapabilityError here, while compiling, so no SQL is ever sent for them.
-- Parameters are appended in the order their `?` appear in the text, so
-- every clause is compiled left to right.
--
-- One job: the compiler's face (`select`, `update`, `delete`, `insert`,
-- `compile_expr`, `count_placeholders`, `uses_json_arrow`), over its parts:
-- `expr` (expressions), `select` (SELECT), `dml` (UPDATE, DELETE, INSERT).
local cx = require("activerecord.backend.mysql.compiler.expr")
local sel = require("activerecord.backend.mysql.compiler.select")
local dml = require("activerecord.backend.mysql.compiler.dml")

local M = {}

M.compile_expr = cx.compile_expr
M.count_placeholders = cx.count_placeholders
M.uses_json_arrow = cx.uses_json_arrow
M.select = sel.select
M.update = dml.update
M.delete = dml.delete
M.insert = dml.insert

return M
