/*
 * text_protocol.c - the text-protocol path, for commands that cannot be
 * prepared (only when they carry no parameters: values never go into SQL
 * text), and the guard that owns a MYSQL_RES while Lua values are built
 * from it (freed by its __gc if an error interrupts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

/* ---- text protocol --------------------------------------------------- */

typedef struct {
  MYSQL_RES *res;
} ar_res_guard;

static void free_guard(MYSQL_RES **res) {
  if (*res) {
    mysql_free_result(*res); /* stored result: no network */
    *res = NULL;
  }
}

static int res_guard_gc(lua_State *L) {
  free_guard(&((ar_res_guard *)lua_touserdata(L, 1))->res);
  return 0;
}

MYSQL_RES **ar_push_res_guard(lua_State *L) {
  ar_res_guard *g = (ar_res_guard *)lua_newuserdatauv(L, sizeof *g, 0);
  g->res = NULL;
  if (luaL_newmetatable(L, "activerecord.mysql.result_guard")) {
    lua_pushcfunction(L, res_guard_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return &g->res;
}

/* Runs `sql` without parameters. With want_result, pushes a result table
 * shaped like execute's and returns 1; otherwise drains and returns 0. */
/* Reads and drops the further result sets a CALL or compound statement
 * leaves, so the connection is ready for the next command. */
static void drain_text_results(lua_State *L, ar_conn *c, const char *sql) {
  MYSQL *m = c->mysql;
  while (mysql_more_results(m)) {
    int rc = 0;
    AR_CALL0(m, rc, mysql_next_result, m);
    if (rc > 0) ar_raise_mysql(L, m, sql);
    if (rc < 0) break;
    MYSQL_RES *extra = NULL;
    AR_CALL0(m, extra, mysql_store_result, m);
    if (extra) mysql_free_result(extra);
  }
}

int ar_text_query(lua_State *L, ar_conn *c, int conn_idx, const char *sql,
                  size_t len, int want_result) {
  MYSQL *m = c->mysql;
  int rc = 0;
  /* the stored result is owned by a guard userdata until freed; made before
   * the query is sent, so a memory error cannot leave a result unread */
  MYSQL_RES **stored = ar_push_res_guard(L);
  int gi = lua_gettop(L);
  AR_CALL(m, rc, mysql_real_query, m, sql, (unsigned long)len);
  if (rc) return ar_raise_mysql(L, m, sql);
  AR_CALL0(m, *stored, mysql_store_result, m);
  if (!*stored && mysql_field_count(m) > 0) return ar_raise_mysql(L, m, sql);
  if (!want_result) {
    free_guard(stored);
    lua_settop(L, gi - 1);
    drain_text_results(L, c, sql);
    AR_CHECK_TX(L, c, sql);
    return 0;
  }
  lua_createtable(L, 0, 5);
  int res = lua_gettop(L);
  lua_newtable(L);
  lua_Integer nrows = 0;
  if (*stored) {
    unsigned n = mysql_num_fields(*stored);
    MYSQL_FIELD *fields = mysql_fetch_fields(*stored);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(*stored)) != NULL) { /* stored: no network */
      unsigned long *lengths = mysql_fetch_lengths(*stored);
      lua_createtable(L, 0, (int)n);
      for (unsigned i = 0; i < n; i++) {
        if (!row[i]) continue;
        lua_pushstring(L, fields[i].name);
        if (!ar_push_text_value(L, &fields[i], row[i], lengths[i], c->decimal_as_number,
                                conn_idx)) {
          /* the result is all read; the connection is ready once any
           * further result sets are drained too: then raise the error */
          free_guard(stored);
          drain_text_results(L, c, sql);
          return lua_error(L);
        }
        lua_rawset(L, -3);
      }
      lua_rawseti(L, -2, ++nrows);
    }
    lua_setfield(L, res, "rows");
    ar_push_columns_meta(L, fields, n);
    lua_setfield(L, res, "columns");
    lua_pushinteger(L, nrows);
  } else {
    lua_setfield(L, res, "rows");
    lua_newtable(L);
    lua_setfield(L, res, "columns");
    lua_pushinteger(L, (lua_Integer)mysql_affected_rows(m));
  }
  lua_setfield(L, res, "affected_rows");
  lua_pushinteger(L, (lua_Integer)mysql_insert_id(m));
  lua_setfield(L, res, "insert_id");
  lua_pushinteger(L, (lua_Integer)mysql_warning_count(m));
  lua_setfield(L, res, "warning_count");
  free_guard(stored);
  lua_remove(L, gi);
  drain_text_results(L, c, sql); /* only the first result is returned */
  AR_CHECK_TX(L, c, sql);
  return 1;
}
