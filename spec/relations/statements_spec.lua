-- The statements relations send, pinned without a server: the through
-- relation's subquery and its eager-loading join are builder queries, so the
-- compiler writes their text (issue 13, one write path) and every key is a
-- parameter.
local ar = require("activerecord")
local compiler = require("activerecord.backend.mysql.compiler")
local cases = require("compiler.cases")

local mariadb = cases.dialects.mariadb
local fake_db = {} -- compiling needs no connection

local function plain(params) return { table.unpack(params, 1, params.n) } end

describe("relation statements (no server)", function()
  local Post
  setup(function()
    ar.Model{ name = "StTag", table = "st_tags", backend = fake_db,
              fields = { id = { type = "integer", primary_key = true }, label = "string" } }
    Post = ar.Model{
      name = "StPost", table = "st_posts", backend = fake_db,
      fields = { id = { type = "integer", primary_key = true }, title = "string" },
      relations = {
        tags = ar.has_many_through("StTag", { through = "st_post_tags", source_key = "post_id",
                                              target_key = "tag_id", order_by = "label" }),
      },
    }
  end)

  it("a through relation's query is the targets whose key is IN the join table's subquery", function()
    local post = Post.new{ id = 7 }
    local sql, params = compiler.select(mariadb, post:tags_query():_final())
    assert.are.equal("SELECT * FROM `st_tags` WHERE (`id` IN (SELECT `tag_id` FROM `st_post_tags` "
      .. "WHERE (`post_id` = ?))) ORDER BY `label` ASC", sql)
    assert.are.same({ 7 }, plain(params))
  end)

  it("an owner without a key is linked to nothing, with no subquery to run", function()
    local sql, params = compiler.select(mariadb, Post.new{}:tags_query():_final())
    assert.are.equal("SELECT * FROM `st_tags` WHERE (1 = 0) ORDER BY `label` ASC", sql)
    assert.are.equal(0, params.n)
  end)

  it("eager loading through: the scoped targets joined to the join table, tagged with the owner key", function()
    local rel = Post.relations.tags
    local q = rel:preload_query(fake_db, function(tq) return tq:where{ label = "x" } end, { 1, 2 })
    local sql, params = compiler.select(mariadb, q:_final())
    assert.are.equal("SELECT `t`.*, `j`.`post_id` AS `__ar_owner` FROM (SELECT * FROM `st_tags` "
      .. "WHERE (`label` = ?)) AS `t` INNER JOIN `st_post_tags` AS `j` ON `j`.`tag_id` = `t`.`id` "
      .. "WHERE (`j`.`post_id` IN (?, ?)) ORDER BY `t`.`label` ASC", sql)
    assert.are.same({ "x", 1, 2 }, plain(params))
  end)
end)
