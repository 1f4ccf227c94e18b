/*
 * stmt_cache.c - the per-connection prepared-statement cache: preparing a
 * statement (and making room when the server holds too many), the LRU list
 * and its eviction, closing statements, and the schema epoch with the DDL
 * keyword scan that marks cached statements for a new prepare. Executing
 * them is statement.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

#define ER_UNSUPPORTED_PS_CODE 1295
#define ER_MAX_PREPARED_STMT_COUNT_CODE 1461 /* max_prepared_stmt_count reached */
#define SCHEMA_EPOCH_KEY "activerecord.mysql.schema_epoch"

/* Schema epoch, per Lua state (in the registry, not a C global): DDL run
 * through any connection of this state bumps it, and cached statements
 * prepared under an older epoch are prepared again. Connector/C refreshes a
 * re-prepared statement's column types but not its names, so without this a
 * `SELECT *` cached before a table was re-created would return rows under
 * the old column names. DDL from other processes is not seen: see README. */
static lua_Integer schema_epoch(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, SCHEMA_EPOCH_KEY);
  lua_Integer e = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return e;
}

void ar_bump_schema_epoch(lua_State *L) {
  lua_pushinteger(L, schema_epoch(L) + 1);
  lua_setfield(L, LUA_REGISTRYINDEX, SCHEMA_EPOCH_KEY);
}

static int starts_with_word(const char *p, const char *word) {
  size_t n = strlen(word);
  for (size_t i = 0; i < n; i++)
    if ((p[i] & ~0x20) != word[i]) return 0;
  return !((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z') || p[n] == '_');
}

/* Skips blanks, parentheses and comments before the first keyword. */
static const char *first_keyword(const char *p) {
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '(') p++;
    if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      if (!end) return p + strlen(p);
      p = end + 2;
    } else if ((p[0] == '-' && p[1] == '-' && (p[2] == ' ' || p[2] == '\t')) || p[0] == '#') {
      while (*p && *p != '\n') p++;
    } else {
      return p;
    }
  }
}

/* DDL, and the statements that may run DDL inside them (dynamic SQL,
 * compound blocks). CALL is left out on purpose: procedures are common and
 * rarely change tables; see the README. statement.c asks it after each
 * execute; test/fuzz/fuzz_sql_keyword.c fuzzes it (declared in ar.h). */
int ar_is_ddl(const char *sql) {
  sql = first_keyword(sql);
  switch (*sql & ~0x20) {
    case 'B': return starts_with_word(sql, "BEGIN");
    case 'E': return starts_with_word(sql, "EXECUTE");
    case 'A': return starts_with_word(sql, "ALTER");
    case 'C': return starts_with_word(sql, "CREATE");
    case 'D': return starts_with_word(sql, "DROP");
    case 'R': return starts_with_word(sql, "RENAME");
    case 'T': return starts_with_word(sql, "TRUNCATE");
    default: return 0;
  }
}

/* ---- LRU list -------------------------------------------------------- */

static void list_unlink(ar_conn *c, ar_stmt *s) {
  if (s->prev) s->prev->next = s->next;
  else c->lru_head = s->next;
  if (s->next) s->next->prev = s->prev;
  else c->lru_tail = s->prev;
  s->prev = s->next = NULL;
}

static void list_push_head(ar_conn *c, ar_stmt *s) {
  s->prev = NULL;
  s->next = c->lru_head;
  if (c->lru_head) c->lru_head->prev = s;
  c->lru_head = s;
  if (!c->lru_tail) c->lru_tail = s;
}

/* Closes the server-side statement and frees every buffer it owns. The
 * userdata itself stays until Lua collects it. */
void ar_stmt_unlink_close(ar_stmt *s) {
  ar_conn *c = s->conn;
  if (!s->stmt) return;
  if (c) {
    if (c->active == s) {
      c->active = NULL;
      c->cursor_open = 0;
    }
    list_unlink(c, s);
    if (s->in_cache) c->cached--;
  }
  MYSQL_STMT *h = s->stmt;
  s->stmt = NULL;
  s->in_cache = 0;
#if AR_NONBLOCKING
  if (c && c->mysql && c->connected) {
    my_bool r;
    AR_CALL0(c->mysql, r, mysql_stmt_close, h);
    (void)r;
  } else {
    mysql_stmt_close(h);
  }
#else
  mysql_stmt_close(h);
#endif
  ar_free_columns(s);
  free(s->pbind);
  free(s->params);
  s->pbind = NULL;
  s->params = NULL;
  free(s->sql);
  s->sql = NULL;
}

void ar_stmt_close_all(ar_conn *c) {
  while (c->lru_head) ar_stmt_unlink_close(c->lru_head);
  c->active = NULL;
  c->cursor_open = 0;
}

/* ---- preparing ------------------------------------------------------- */

static void evict_one(lua_State *L, ar_conn *c, int cache_idx) {
  ar_stmt *victim = c->lru_tail;
  while (victim && !victim->in_cache) victim = victim->prev;
  if (!victim) return;
  lua_pushlstring(L, victim->sql, victim->sql_len);
  lua_pushnil(L);
  lua_rawset(L, cache_idx);
  ar_stmt_unlink_close(victim);
}

/* The server refused a prepare with 1461: closes the least recently used
 * half of this connection's cached statements (at least one) to give the
 * server room. Returns how many were closed (0: none left to close). */
static unsigned evict_for_room(lua_State *L, ar_conn *c, int conn_idx) {
  unsigned before = c->cached, n = before / 2 ? before / 2 : before;
  lua_getiuservalue(L, conn_idx, AR_CONN_UV_CACHE);
  int cache_idx = lua_gettop(L);
  while (c->cached > before - n) evict_one(L, c, cache_idx);
  lua_pop(L, 1);
  return n;
}

/* Creates a statement userdata (closed first, then acquired) and prepares
 * it. Pushes the userdata and returns it; returns NULL with nothing pushed
 * when the server cannot prepare this command and `text_ok` allows the
 * caller to use the text protocol instead. */
ar_stmt *ar_stmt_new(lua_State *L, ar_conn *c, int conn_idx, const char *sql, size_t len,
                     int text_ok) {
  ar_stmt *s = (ar_stmt *)lua_newuserdatauv(L, sizeof(ar_stmt), AR_STMT_NUV);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, AR_STMT_MT);
  int si = lua_gettop(L);
  lua_pushvalue(L, conn_idx);
  lua_setiuservalue(L, si, AR_STMT_UV_CONN);
  s->sql = (char *)malloc(len + 1);
  if (!s->sql) {
    luaL_error(L, "not enough memory");
    return NULL; /* not reached: tells the analyzer luaL_error does not return */
  }
  memcpy(s->sql, sql, len);
  s->sql[len] = '\0';
  s->sql_len = len;
  s->stmt = mysql_stmt_init(c->mysql);
  if (!s->stmt) {
    free(s->sql); /* __gc frees nothing of a statement without a handle */
    s->sql = NULL;
    luaL_error(L, "not enough memory");
    return NULL; /* not reached */
  }
  s->conn = c;
  list_push_head(c, s); /* owned by the connection from here on */
  int rc = 0;
  for (;;) {
    AR_CALL(c->mysql, rc, mysql_stmt_prepare, s->stmt, sql, (unsigned long)len);
    /* max_prepared_stmt_count is server-wide: other clients may hold the
     * slots, so closing ours may or may not be enough; try until none is
     * left to close */
    if (!rc || mysql_stmt_errno(s->stmt) != ER_MAX_PREPARED_STMT_COUNT_CODE ||
        evict_for_room(L, c, conn_idx) == 0)
      break;
  }
  if (rc) {
    unsigned code = mysql_stmt_errno(s->stmt);
    if ((code == ER_UNSUPPORTED_PS_CODE && (text_ok & AR_TEXT_IF_UNSUPPORTED)) ||
        (code == ER_MAX_PREPARED_STMT_COUNT_CODE && (text_ok & AR_TEXT_IF_FULL))) {
      ar_stmt_unlink_close(s);
      lua_pop(L, 1);
      return NULL;
    }
    /* copy the error out, then release the handle before raising */
    ar_error_copy e;
    ar_copy_stmt_error(&e, s->stmt);
    ar_stmt_unlink_close(s);
    ar_raise_copy(L, NULL, &e, sql);
  }
  s->nparams = (unsigned)mysql_stmt_param_count(s->stmt);
  if (s->nparams) {
    s->pbind = (MYSQL_BIND *)calloc(s->nparams, sizeof(MYSQL_BIND));
    s->params = (ar_param *)calloc(s->nparams, sizeof(ar_param));
    if (!s->pbind || !s->params) luaL_error(L, "not enough memory");
  }
  return s;
}

/* Finds or prepares the statement for `sql` (at stack index 2). Pushes the
 * statement userdata, or nothing when the text protocol must be used. */
ar_stmt *ar_stmt_cached(lua_State *L, ar_conn *c, int conn_idx, int text_ok) {
  size_t len;
  const char *sql = lua_tolstring(L, 2, &len);
  lua_getiuservalue(L, conn_idx, AR_CONN_UV_CACHE); /* cache */
  int cache_idx = lua_gettop(L);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, cache_idx) == LUA_TUSERDATA) { /* cache, stmt */
    ar_stmt *s = (ar_stmt *)lua_touserdata(L, -1);
    if (s->stmt && (s->stale || s->epoch != schema_epoch(L))) {
      ar_stmt_unlink_close(s); /* prepared against an older schema */
    } else if (s->stmt) {
      if (c->lru_head != s) {
        list_unlink(c, s);
        list_push_head(c, s);
      }
      lua_remove(L, cache_idx);
      return s;
    }
  }
  lua_pop(L, 1); /* cache */
  if (c->statement_cache_size == 0) {
    lua_pop(L, 1);
    return ar_stmt_new(L, c, conn_idx, sql, len, text_ok);
  }
  while (c->cached >= c->statement_cache_size) evict_one(L, c, cache_idx);
  lua_Integer epoch = schema_epoch(L);
  ar_stmt *s = ar_stmt_new(L, c, conn_idx, sql, len, text_ok); /* cache, stmt? */
  if (s) {
    s->epoch = epoch;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, cache_idx);
    s->in_cache = 1;
    c->cached++;
  }
  lua_remove(L, cache_idx);
  return s;
}
