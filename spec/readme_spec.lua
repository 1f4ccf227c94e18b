-- Every Lua block of README.md runs as pasted (issue 15). The convention:
--   * the ```lua blocks of one `##` section (its `###` subsections included)
--     run in order, as one chunk, in one fresh lua5.4 process, against a
--     fresh database: a block may use what an earlier block of its section
--     defined (locals included), never what another section defined;
--   * that process has `ar` (require "activerecord") and `db` (a backend
--     from ar.config_from_env(), the default backend) as globals, the way a
--     reader who followed "Two commands" or `make db` has them;
--   * a block right after a line `<!-- not run -->` (or `<!-- not run:
--     reason -->`) only shows a shape and is skipped;
--   * a block right after `<!-- file: some/path.lua -->` is a file's text
--     (a migration): it is written to that path, relative to the directory
--     the section runs in (a fresh temporary one), before the section runs.
-- Each block keeps its README line numbers, so an error reads README.md:N.
local support = require("support.db")

local LUA = os.getenv("AR_LUA") or "lua5.4"
local DATABASE = "ar_readme"

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- { { title, line, blocks = { { line, text } }, skipped = n } } in README order
local function sections(path)
  local out, current = {}, nil
  local fence_indent, block, last_nonblank = nil, nil, ""
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    if block then
      if line:match("^%s*```%s*$") then
        if block.file then
          current.files[#current.files + 1] = block
        elseif not block.skip then
          current.blocks[#current.blocks + 1] = block
        end
        block = nil
      else
        block.lines[#block.lines + 1] = line:sub(1, fence_indent):match("^%s*$") and line:sub(fence_indent + 1) or line
      end
    elseif fence_indent == false then -- inside a non-Lua fence
      if line:match("^%s*```%s*$") then fence_indent = nil end
    else
      local indent, lang = line:match("^(%s*)```(%w*)%s*$")
      if indent and lang == "lua" then
        assert(current, "README.md:" .. n .. ": a Lua block before any ## section")
        local skip_next = last_nonblank:match("^%s*<!%-%- not run[:%s%-]") ~= nil
        local file = last_nonblank:match("^%s*<!%-%- file: ([%w_%-%./]+) %-%->")
        assert(not file or not (file:find("..", 1, true) or file:sub(1, 1) == "/"),
          "README.md:" .. n .. ": a file block's path must stay inside its directory")
        block = { line = n + 1, lines = {}, skip = skip_next, file = file }
        if skip_next then current.skipped = current.skipped + 1 end
        fence_indent = #indent
      elseif indent then
        fence_indent = false
      else
        local title = line:match("^## (.+)$")
        if title then
          current = { title = title, line = n, blocks = {}, files = {}, skipped = 0 }
          out[#out + 1] = current
        end
      end
    end
    if not line:match("^%s*$") then last_nonblank = line end
  end
  assert(not block, "README.md: a Lua block is never closed")
  return out
end

-- The section's blocks as one chunk whose line numbers are README's.
local function chunk_of(section)
  local lines = { "ar = require('activerecord') db = ar.connect(ar.config_from_env()) ar.set_default_backend(db)" }
  for _, b in ipairs(section.blocks) do
    assert(b.line > #lines, "README.md:" .. b.line .. ": block overlaps the prelude")
    while #lines < b.line - 1 do lines[#lines + 1] = "" end
    for _, l in ipairs(b.lines) do lines[#lines + 1] = l end
  end
  return table.concat(lines, "\n") .. "\n"
end

local function fresh_database()
  local conn = support.connect()
  conn:execute("DROP DATABASE IF EXISTS `" .. DATABASE .. "`")
  conn:execute("CREATE DATABASE `" .. DATABASE .. "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
  conn:close()
end

-- A search path with its relative entries made absolute (the section runs
-- in another directory).
local function absolute(path, cwd)
  local out = {}
  for entry in (path .. ";"):gmatch("([^;]*);") do
    if entry ~= "" and entry:sub(1, 1) ~= "/" then entry = cwd .. "/" .. entry:gsub("^%./", "") end
    out[#out + 1] = entry
  end
  return table.concat(out, ";")
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- Runs the section in a new process in a fresh directory holding its file
-- blocks; returns its output and whether it exited 0.
local function run(section)
  local cwd = assert(io.popen("pwd")):read("l")
  local dir = assert(io.popen("mktemp -d /tmp/ar-readme-XXXXXX")):read("l")
  for _, b in ipairs(section.files) do
    local sub = b.file:match("^(.*)/[^/]*$")
    if sub then assert(os.execute("mkdir -p " .. shell_quote(dir .. "/" .. sub))) end
    write(dir .. "/" .. b.file, table.concat(b.lines, "\n") .. "\n")
  end
  write(dir .. "/readme_section.lua", chunk_of(section))
  local cmd = ("cd %s && AR_MYSQL_DATABASE=%s LUA_PATH=%s LUA_CPATH=%s %s -e %s < readme_section.lua 2>&1"):format(
    shell_quote(dir), DATABASE, shell_quote(absolute(package.path, cwd)),
    shell_quote(absolute(package.cpath, cwd)), LUA,
    shell_quote("assert(load(io.read('a'), '@README.md'))()"))
  local pipe = assert(io.popen(cmd, "r"))
  local output = pipe:read("a")
  local ok, how, code = pipe:close()
  os.execute("rm -rf " .. shell_quote(dir))
  return output, ok == true and how == "exit" and code == 0
end

describe("README.md", function()
  local all = sections("README.md")

  teardown(function()
    local conn = support.connect()
    conn:execute("DROP DATABASE IF EXISTS `" .. DATABASE .. "`")
    conn:close()
  end)

  it("has Lua blocks, and only a few that do not run", function()
    local ran, skipped = 0, 0
    for _, s in ipairs(all) do ran, skipped = ran + #s.blocks, skipped + s.skipped end
    assert.is_true(ran >= 10, "only " .. ran .. " runnable blocks")
    assert.is_true(skipped <= 4, skipped .. " blocks are marked <!-- not run -->")
  end)

  for _, section in ipairs(all) do
    if #section.blocks > 0 then
      it(("## %s (README.md:%d): %d block(s) run as pasted"):format(section.title, section.line,
        #section.blocks), function()
        fresh_database()
        local output, ok = run(section)
        assert(ok, "README.md section '" .. section.title .. "' failed:\n" .. output)
      end)
    end
  end
end)
