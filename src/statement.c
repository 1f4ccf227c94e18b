/*
 * statement.c - running prepared statements: binding and executing (run),
 * the buffered fetch into rows keyed by column name (conn:execute), the
 * streaming cursors (each) and user-held statements (prepare), with the
 * statement and cursor classes. Preparing and caching them is stmt_cache.c;
 * the text-protocol path for commands that cannot be prepared is
 * text_protocol.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

#define ER_NEED_REPREPARE_CODE 1615

typedef struct {
  ar_stmt *s;   /* pinned through uservalue 1 (the statement userdata) */
  int done;
} ar_cursor;

static int stmt_gc(lua_State *L) {
  ar_stmt *s = (ar_stmt *)luaL_checkudata(L, 1, AR_STMT_MT);
  ar_stmt_unlink_close(s);
  return 0;
}

static int stmt_tostring(lua_State *L) {
  ar_stmt *s = (ar_stmt *)luaL_checkudata(L, 1, AR_STMT_MT);
  if (!s->stmt) lua_pushstring(L, "mysql statement (closed)");
  else lua_pushfstring(L, "mysql statement (%p, %d parameters)", (void *)s, (int)s->nparams);
  return 1;
}

/* ---- executing ------------------------------------------------------- */

/* Binds, executes and sets up result columns; afterwards the result (if any)
 * is unread on the wire and c->active points at s. */
static void run(lua_State *L, ar_stmt *s, int stmt_idx, int first, int nargs) {
  ar_conn *c = s->conn;
  MYSQL *m = c->mysql;
  if ((unsigned)nargs != s->nparams)
    ar_raisef(L, "QueryError", "statement has %u placeholder(s) but %d value(s) were given",
              s->nparams, nargs);
  size_t bytes = ar_bind_params(L, s, first, nargs, s->sql) + 64;
  /* A statement over max_allowed_packet makes the server hang up (and the
   * link is lost): refuse it here, with the limit named, and keep the link. */
  if (c->max_packet && bytes > c->max_packet) {
    char msg[200];
    snprintf(msg, sizeof msg,
             "the statement needs about %zu bytes but the server's max_allowed_packet is %lu "
             "bytes (raise it, or send less at once)", bytes, c->max_packet);
    ar_raise(L, "DataError", 1153, "08S01", msg, s->sql);
  }
  int rc = 0;
  AR_CALL0(m, rc, mysql_stmt_execute, s->stmt);
  if (rc) {
    if (mysql_stmt_errno(s->stmt) == ER_NEED_REPREPARE_CODE) s->stale = 1;
    ar_raise_stmt(L, s->stmt, s->sql);
  }
  /* active first: a memory error below must leave the result to be settled */
  if (mysql_stmt_field_count(s->stmt) > 0) c->active = s;
  if (ar_is_ddl(s->sql)) ar_bump_schema_epoch(L);
  if (c->active == s) ar_setup_columns(L, s, stmt_idx, NULL);
}

/* The extra result sets a CALL produces are drained so the connection
 * stays usable; only the first one is returned. */
static void drain_more_results(lua_State *L, ar_stmt *s) {
  ar_conn *c = s->conn;
  while (mysql_stmt_more_results(s->stmt)) {
    int rc = 0;
    AR_CALL0(c->mysql, rc, mysql_stmt_next_result, s->stmt);
    if (rc > 0) ar_raise_stmt(L, s->stmt, s->sql);
    if (rc < 0) break;
    if (mysql_stmt_field_count(s->stmt) > 0) {
      my_bool r;
      AR_CALL0(c->mysql, r, mysql_stmt_free_result, s->stmt);
      (void)r;
    }
  }
}

/* Fetches one row into the bound buffers; returns 0 at the end. A value
 * longer than its buffer grows the buffer and is fetched again. */
static int fetch_row(lua_State *L, ar_stmt *s) {
  int rc = 0;
  AR_CALL0(s->conn->mysql, rc, mysql_stmt_fetch, s->stmt);
  if (rc == MYSQL_NO_DATA) return 0;
  if (rc == 1) {
    /* Connector/C leaves an error read while fetching unbuffered rows (the
     * server's error packet, a lost link, a read timeout) on the MYSQL
     * handle, not on the statement, whose errno stays 0. */
    if (mysql_stmt_errno(s->stmt) == 0 && mysql_errno(s->conn->mysql) != 0)
      ar_raise_mysql(L, s->conn->mysql, s->sql);
    ar_raise_stmt(L, s->stmt, s->sql);
  }
  if (rc == MYSQL_DATA_TRUNCATED) {
    int rebind = 0;
    for (unsigned i = 0; i < s->ncols; i++) {
      ar_column *col = &s->cols[i];
      if (col->is_null || !col->buf || col->length <= col->buflen) continue;
      char *nb = (char *)realloc(col->buf, col->length + 1);
      if (!nb) luaL_error(L, "not enough memory");
      col->buf = nb;
      col->buflen = col->length + 1;
      s->rbind[i].buffer = nb;
      s->rbind[i].buffer_length = col->buflen;
      if (mysql_stmt_fetch_column(s->stmt, &s->rbind[i], i, 0))
        ar_raise_stmt(L, s->stmt, s->sql);
      rebind = 1;
    }
    if (rebind && mysql_stmt_bind_result(s->stmt, s->rbind))
      ar_raise_stmt(L, s->stmt, s->sql);
  }
  return 1;
}

/* Pushes the row as a table keyed by column name; names at names_idx.
 * Returns 0 with an error object pushed (above the row) when a value
 * cannot be converted (invalid JSON written by another client). */
static int push_row(lua_State *L, ar_stmt *s, int names_idx, int conn_idx) {
  lua_createtable(L, 0, (int)(s->json_hashes ? s->ncols + s->njson : s->ncols));
  for (unsigned i = 0; i < s->ncols; i++) {
    ar_column *col = &s->cols[i];
    if (col->is_null) continue;
    lua_rawgeti(L, names_idx, (lua_Integer)i + 1);
    if (s->json_hashes && col->conv == AR_CONV_JSON) {
      /* the model layer keeps the hash of what the database holds, to see
       * a change made in place without re-reading the table */
      uint64_t h;
      if (!ar_push_json_hashed(L, col->buf, col->length, conn_idx, &h)) return 0;
      lua_rawset(L, -3);
      lua_pushinteger(L, (lua_Integer)h);
      lua_rawseti(L, -2, -(lua_Integer)i - 1);
      continue;
    }
    if (!ar_push_column(L, s, i, conn_idx)) return 0;
    lua_rawset(L, -3);
  }
  return 1;
}

static void finish_result(ar_stmt *s) {
  ar_conn *c = s->conn;
  if (c->active == s) c->active = NULL;
}

/* Reads and drops the rest of s's result, so the connection takes the next
 * command at once (after a conversion error, before it is raised). */
static void discard_result(ar_stmt *s) {
  ar_conn *c = s->conn;
  if (c->active != s) return;
  c->active = NULL;
  c->cursor_open = 0;
  if (s->stmt && c->mysql && c->connected) {
    my_bool r;
    AR_CALL0(c->mysql, r, mysql_stmt_free_result, s->stmt);
    (void)r;
  }
}

/* Rows read before the collector is paused. Every object made while reading
 * a buffered result is live (it is in the result), so collector steps during
 * a large fetch are pure cost; a small result (a point select) is read with
 * the collector left alone and without a protected call: restarting the
 * collector makes the next allocation run a full step. */
#define GC_PAUSE_AFTER_ROWS 64

typedef struct {
  ar_stmt *s;
  int names_idx, rows_idx, conn_idx; /* stack indices in the running frame */
  lua_Integer n;                     /* rows read so far */
  int ended;                         /* the result has no more rows */
} row_reader;

/* Reads rows into the table at rows_idx until the result ends or `until`
 * rows are held. A value that cannot be converted ends the result, then
 * its error is raised. */
static void read_rows(lua_State *L, row_reader *r, lua_Integer until) {
  while (r->n < until) {
    if (!fetch_row(L, r->s)) {
      r->ended = 1;
      return;
    }
    if (!push_row(L, r->s, r->names_idx, r->conn_idx)) {
      discard_result(r->s);
      lua_error(L);
    }
    lua_rawseti(L, r->rows_idx, ++r->n);
  }
}

/* Protected body for the rest of a large result: (reader*, names, rows,
 * conn) -> nothing; the caller has paused the collector and restarts it. */
static int read_rest(lua_State *L) {
  row_reader *outer = (row_reader *)lua_touserdata(L, 1);
  row_reader r = *outer;
  r.names_idx = 2;
  r.rows_idx = 3;
  r.conn_idx = 4;
  read_rows(L, &r, LUA_MAXINTEGER);
  outer->n = r.n;
  outer->ended = r.ended;
  return 0;
}

/* The keys of a result table, interned once (registry, at luaopen): a
 * rawset with a held key costs less than a setfield that looks it up. */
static const char result_keys_key = 'k';
enum { KEY_ROWS = 1, KEY_COLUMNS, KEY_AFFECTED, KEY_INSERT_ID, KEY_WARNINGS };
static const char *const result_keys[] = {"rows", "columns", "affected_rows", "insert_id",
                                          "warning_count", NULL};

/* res[keys[k]] = the value on top (popped). */
static void set_key(lua_State *L, int res, int keys, int k) {
  lua_rawgeti(L, keys, k);
  lua_insert(L, -2);
  lua_rawset(L, res);
}

/* Reads the whole result of s into a rows table (pushed). */
static void read_result(lua_State *L, ar_stmt *s, int stmt_idx, int conn_idx) {
  lua_getiuservalue(L, stmt_idx, AR_STMT_UV_NAMES);
  lua_newtable(L);
  row_reader r = {s, lua_gettop(L) - 1, lua_gettop(L), conn_idx, 0, 0};
  read_rows(L, &r, GC_PAUSE_AFTER_ROWS);
  if (!r.ended && s->conn->fiber) {
    /* scheduler mode: no nested protected call (a wait inside it could not
     * suspend the coroutine), so the collector is left running */
    read_rows(L, &r, LUA_MAXINTEGER);
  } else if (!r.ended) {
    int gc_running = lua_gc(L, LUA_GCISRUNNING);
    if (gc_running) lua_gc(L, LUA_GCSTOP);
    lua_pushcfunction(L, read_rest);
    lua_pushlightuserdata(L, &r);
    lua_pushvalue(L, r.names_idx);
    lua_pushvalue(L, r.rows_idx);
    lua_pushvalue(L, conn_idx);
    int status = lua_pcall(L, 4, 0, 0);
    if (gc_running) lua_gc(L, LUA_GCRESTART);
    if (status != LUA_OK) lua_error(L);
  }
  lua_remove(L, r.names_idx); /* rows */
}

/* Pushes {rows, columns, affected_rows, insert_id, warning_count}. */
static void push_result(lua_State *L, ar_stmt *s, int stmt_idx, int conn_idx) {
  ar_conn *c = s->conn;
  lua_createtable(L, 0, 5);
  int res = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &result_keys_key);
  int keys = res + 1;
  if (c->active == s) {
    read_result(L, s, stmt_idx, conn_idx);
    lua_Integer nrows = (lua_Integer)lua_rawlen(L, -1);
    set_key(L, res, keys, KEY_ROWS);
    finish_result(s);
    lua_getiuservalue(L, stmt_idx, AR_STMT_UV_COLUMNS);
    set_key(L, res, keys, KEY_COLUMNS);
    lua_pushinteger(L, nrows);
  } else {
    lua_newtable(L);
    set_key(L, res, keys, KEY_ROWS);
    lua_newtable(L);
    set_key(L, res, keys, KEY_COLUMNS);
    lua_pushinteger(L, (lua_Integer)mysql_stmt_affected_rows(s->stmt));
  }
  set_key(L, res, keys, KEY_AFFECTED);
  lua_pushinteger(L, (lua_Integer)mysql_stmt_insert_id(s->stmt));
  set_key(L, res, keys, KEY_INSERT_ID);
  lua_pushinteger(L, (lua_Integer)mysql_warning_count(c->mysql));
  set_key(L, res, keys, KEY_WARNINGS);
  lua_settop(L, res);
  drain_more_results(L, s);
  AR_CHECK_TX(L, c, s->sql);
}

/* conn:execute(sql, ...) and conn:execute_json_hashes(sql, ...) -> result.
 * The second also gives each row, for its JSON column number i (1-based),
 * the key -i with core.json_hash of the decoded value, computed while it
 * is decoded (the text protocol path gives none). The mode is set on every
 * call, after the busy check, so no earlier call's mode lingers. */
static int conn_execute(lua_State *L, int json_hashes) {
  ar_conn *c = ar_check_conn(L, 1);
  size_t len;
  const char *sql = ar_check_text(L, 2, &len, "QueryError", "the SQL of execute");
  int nargs = lua_gettop(L) - 2;
  ar_conn_settle(L, c);
  ar_stmt *s = ar_stmt_cached(L, c, 1, nargs ? 0 : AR_TEXT_IF_UNSUPPORTED | AR_TEXT_IF_FULL);
  if (!s) { /* ..., (no statement) */
    ar_text_query(L, c, 1, sql, len, 1);
    if (ar_is_ddl(sql)) ar_bump_schema_epoch(L);
    return 1;
  }
  s->json_hashes = json_hashes;
  int si = lua_gettop(L);
  run(L, s, si, 3, nargs);
  push_result(L, s, si, 1);
  if (!s->in_cache) ar_stmt_unlink_close(s); /* cache size 0 */
  return 1;
}

int ar_conn_execute(lua_State *L) { return conn_execute(L, 0); }

/* Runs `sql` with the nargs values from stack index `first` on the
 * connection at conn_idx, dropping its result, in the running C frame: no
 * nested lua_call, whose frame a wait in scheduler mode could not yield
 * across (fiber.c). Prepared outside the cache. */
void ar_exec_in_frame(lua_State *L, ar_conn *c, int conn_idx, const char *sql, int first,
                      int nargs) {
  int top = lua_gettop(L);
  ar_stmt *s = ar_stmt_new(L, c, conn_idx, sql, strlen(sql), 0);
  int si = lua_gettop(L);
  run(L, s, si, first, nargs);
  push_result(L, s, si, conn_idx);
  ar_stmt_unlink_close(s);
  lua_settop(L, top);
}
int ar_conn_execute_json_hashes(lua_State *L) { return conn_execute(L, 1); }

/* ---- streaming cursors ---------------------------------------------- */

static void cursor_finish(ar_cursor *cur) {
  cur->done = 1;
  if (cur->s->stmt) discard_result(cur->s); /* reads and drops what is left */
}

static int cursor_close(lua_State *L) {
  ar_cursor *cur = (ar_cursor *)luaL_checkudata(L, 1, AR_CURSOR_MT);
  if (!cur->done) cursor_finish(cur);
  return 0;
}

static int cursor_next(lua_State *L) {
  ar_cursor *cur = (ar_cursor *)luaL_checkudata(L, 1, AR_CURSOR_MT);
  if (cur->done) return 0;
  ar_stmt *s = cur->s;
  if (!s->stmt) {
    cur->done = 1;
    return ar_raise(L, "ConnectionError", 0, NULL,
                    "the cursor's connection was closed", NULL);
  }
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);                      /* cursor, stmt */
  lua_getiuservalue(L, 2, AR_STMT_UV_CONN);        /* cursor, stmt, conn */
  lua_getiuservalue(L, 2, AR_STMT_UV_NAMES);       /* cursor, stmt, conn, names */
  /* Marked ended while fetching and converting: an error (a lost link, a
   * memory error) leaves the connection to settle on its next use. */
  ar_conn *c = s->conn;
  cur->done = 1;
  c->cursor_open = 0;
  if (!fetch_row(L, s)) {
    cursor_finish(cur);
    return 0;
  }
  if (!push_row(L, s, 4, 3)) {
    /* a value that cannot be converted ends the cursor here, so the
     * connection is free for the next statement, then the error is raised */
    cursor_finish(cur);
    return lua_error(L);
  }
  cur->done = 0;
  c->cursor_open = 1;
  return 1;
}

static int cursor_tostring(lua_State *L) {
  ar_cursor *cur = (ar_cursor *)luaL_checkudata(L, 1, AR_CURSOR_MT);
  lua_pushstring(L, cur->done ? "mysql cursor (closed)" : "mysql cursor (open)");
  return 1;
}

/* Returns the generic-for quadruple: next, cursor, nil, cursor (the fourth
 * value closes the cursor when the loop ends or breaks). */
static int start_cursor(lua_State *L, ar_stmt *s, int stmt_idx, int first, int nargs) {
  s->json_hashes = 0;
  ar_conn *c = s->conn;
  run(L, s, stmt_idx, first, nargs);
  AR_CHECK_TX(L, c, s->sql); /* drops the result it raises */
  ar_cursor *cur = (ar_cursor *)lua_newuserdatauv(L, sizeof(ar_cursor), 1);
  cur->s = s;
  cur->done = 1;
  luaL_setmetatable(L, AR_CURSOR_MT);
  lua_pushvalue(L, stmt_idx);
  lua_setiuservalue(L, -2, 1);
  if (c->active == s) {
    cur->done = 0;
    c->cursor_open = 1;
  } else {
    drain_more_results(L, s);
  }
  lua_pushcfunction(L, cursor_next);
  lua_insert(L, -2);
  lua_pushnil(L);
  lua_pushvalue(L, -2);
  return 4;
}

/* conn:each(sql, ...) -> iterator over rows, streamed (unbuffered). */
int ar_conn_each(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  ar_check_text(L, 2, NULL, "QueryError", "the SQL of each");
  int nargs = lua_gettop(L) - 2;
  ar_conn_settle(L, c);
  /* a command that cannot be prepared cannot stream; a full server
   * (1461) is raised as it is */
  ar_stmt *s = ar_stmt_cached(L, c, 1, nargs ? 0 : AR_TEXT_IF_UNSUPPORTED);
  if (!s)
    return ar_raisef(L, "QueryError",
                     "this statement cannot be prepared, so it cannot be streamed; use execute");
  return start_cursor(L, s, lua_gettop(L), 3, nargs);
}

/* ---- user-held statements -------------------------------------------- */

/* conn:prepare(sql) -> statement (outside the cache; closed by the user,
 * by __close/__gc, or with its connection) */
int ar_conn_prepare(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  size_t len;
  const char *sql = ar_check_text(L, 2, &len, "QueryError", "the SQL of prepare");
  ar_conn_settle(L, c);
  if (!ar_stmt_new(L, c, 1, sql, len, 0))
    return ar_raisef(L, "QueryError", "this statement cannot be prepared");
  return 1;
}

static ar_stmt *check_stmt(lua_State *L) {
  ar_stmt *s = (ar_stmt *)luaL_checkudata(L, 1, AR_STMT_MT);
  if (!s->stmt)
    ar_raise(L, "QueryError", 0, NULL, "attempt to use a closed statement", NULL);
  if (!s->conn->mysql || !s->conn->connected)
    ar_raise(L, "ConnectionError", 0, NULL, "attempt to use a closed connection", NULL);
  return s;
}

static int stmt_execute(lua_State *L) {
  ar_stmt *s = check_stmt(L);
  int nargs = lua_gettop(L) - 1;
  ar_conn_settle(L, s->conn);
  s->json_hashes = 0;
  lua_getiuservalue(L, 1, AR_STMT_UV_CONN);
  int ci = lua_gettop(L);
  run(L, s, 1, 2, nargs);
  push_result(L, s, 1, ci);
  return 1;
}

static int stmt_each(lua_State *L) {
  ar_stmt *s = check_stmt(L);
  int nargs = lua_gettop(L) - 1;
  ar_conn_settle(L, s->conn);
  return start_cursor(L, s, 1, 2, nargs);
}

static int stmt_close(lua_State *L) {
  ar_stmt *s = (ar_stmt *)luaL_checkudata(L, 1, AR_STMT_MT);
  if (s->in_cache)
    return ar_raisef(L, "QueryError", "cached statements are closed by their connection");
  ar_stmt_unlink_close(s);
  return 0;
}

static int stmt_param_count(lua_State *L) {
  ar_stmt *s = check_stmt(L);
  lua_pushinteger(L, s->nparams);
  return 1;
}

static int stmt_is_closed(lua_State *L) {
  ar_stmt *s = (ar_stmt *)luaL_checkudata(L, 1, AR_STMT_MT);
  lua_pushboolean(L, s->stmt == NULL);
  return 1;
}

/* ---- registration ---------------------------------------------------- */

/* The calls that may wait on the network: on a fiber in scheduler mode. */
AR_SCHEDULABLE(sched_stmt_execute, stmt_execute, AR_CLS_STMT)
AR_SCHEDULABLE(sched_stmt_each, stmt_each, AR_CLS_STMT)
AR_SCHEDULABLE(sched_stmt_close, stmt_close, AR_CLS_STMT | AR_CLS_CLOSING)
AR_SCHEDULABLE(sched_cursor_next, cursor_next, AR_CLS_CURSOR)
AR_SCHEDULABLE(sched_cursor_close, cursor_close, AR_CLS_CURSOR | AR_CLS_CLOSING)

static const luaL_Reg stmt_methods[] = {
    {"execute", sched_stmt_execute},
    {"each", sched_stmt_each},
    {"close", sched_stmt_close},
    {"param_count", stmt_param_count},
    {"is_closed", stmt_is_closed},
    {NULL, NULL}};

static const luaL_Reg cursor_methods[] = {
    {"close", sched_cursor_close},
    {"next", sched_cursor_next},
    {NULL, NULL}};

static void new_class(lua_State *L, const char *name, lua_CFunction gc,
                      lua_CFunction close, lua_CFunction tostring,
                      const luaL_Reg *methods) {
  luaL_newmetatable(L, name);      /* mt */
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);                 /* mt, methods */
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");  /* mt */
  lua_pop(L, 1);
}

void ar_stmt_open(lua_State *L) {
  lua_createtable(L, KEY_WARNINGS, 0);
  for (int i = 0; result_keys[i]; i++) {
    lua_pushstring(L, result_keys[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &result_keys_key);
  new_class(L, AR_STMT_MT, stmt_gc, sched_stmt_close, stmt_tostring, stmt_methods);
  new_class(L, AR_CURSOR_MT, cursor_close, sched_cursor_close, cursor_tostring, cursor_methods);
}
