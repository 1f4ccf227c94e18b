/*
 * errors.c - the one error path: every failure becomes an error object
 * {kind, code, sqlstate, message, sql} with the AR_ERROR_MT metatable (the
 * one of activerecord.errors, adopted at luaopen) and is
 * raised with lua_error. Server text is data, never a format string.
 * Parameter values are never part of the object (they may be secrets).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ar.h"

/* The one errno -> kind table (design §4). Client errors (2000-2999) that mean
 * the link is gone are ConnectionLost, those that mean no link could be made
 * are ConnectionError; anything unlisted is a QueryError. connect() reports
 * every failure as ConnectionError whatever its code. */
static const struct {
  unsigned code;
  const char *kind;
} kind_map[] = {
    {1045, "ConnectionError"}, /* access denied */
    {2001, "ConnectionError"}, {2002, "ConnectionError"}, {2003, "ConnectionError"},
    {2004, "ConnectionError"}, {2005, "ConnectionError"}, {2007, "ConnectionError"},
    {2009, "ConnectionError"}, {2012, "ConnectionError"}, {2026, "ConnectionError"},
    {2059, "ConnectionError"}, {2061, "ConnectionError"},
    {2006, "ConnectionLost"},  {2013, "ConnectionLost"},  {2055, "ConnectionLost"},
    {4031, "ConnectionLost"},  {1927, "ConnectionLost"}, /* connection was killed */
    {1053, "ConnectionLost"},  /* server shutdown in progress */
    {1153, "ConnectionLost"},  /* packet over max_allowed_packet: server hangs up */
    {1047, "ConnectionLost"},  /* Galera: node not ready (out of the primary component); nothing ran */
    {1062, "IntegrityError"},  {1586, "IntegrityError"}, /* duplicate key */
    {1451, "IntegrityError"},  {1452, "IntegrityError"}, /* foreign key */
    {1216, "IntegrityError"},  {1217, "IntegrityError"},
    {1048, "IntegrityError"},  {1364, "IntegrityError"}, /* NOT NULL / no default */
    {3819, "IntegrityError"},  {4025, "IntegrityError"}, /* CHECK */
    {1264, "DataError"},       {1406, "DataError"},      {1366, "DataError"},
    {1292, "DataError"},       {1265, "DataError"},      {1365, "DataError"},
    {1690, "DataError"},       {3140, "DataError"},      {4038, "DataError"},
    {1367, "DataError"},       {1411, "DataError"},
    {1213, "DeadlockError"},
    {1205, "LockTimeoutError"},
    {3024, "QueryTimeout"},    {1969, "QueryTimeout"},   {3572, "LockTimeoutError"},
};

const char *ar_error_kind(unsigned code) {
  for (size_t i = 0; i < sizeof kind_map / sizeof kind_map[0]; i++)
    if (kind_map[i].code == code) return kind_map[i].kind;
  return "QueryError";
}

static void set_str(lua_State *L, const char *key, const char *value) {
  if (value && *value) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
  }
}

void ar_push_error(lua_State *L, const char *kind, unsigned code,
                   const char *sqlstate, const char *message, const char *sql) {
  lua_createtable(L, 0, 6);
  set_str(L, "kind", kind);
  lua_pushinteger(L, (lua_Integer)code);
  lua_setfield(L, -2, "code");
  set_str(L, "sqlstate", sqlstate);
  set_str(L, "message", message ? message : "unknown error");
  set_str(L, "sql", sql);
  luaL_setmetatable(L, AR_ERROR_MT);
}

int ar_raise(lua_State *L, const char *kind, unsigned code,
             const char *sqlstate, const char *message, const char *sql) {
  ar_push_error(L, kind, code, sqlstate, message, sql);
  ar_fiber_raising(L); /* scheduler mode: the loop drops the descriptor (fiber.c) */
  return lua_error(L);
}

int ar_raisef(lua_State *L, const char *kind, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ar_raise(L, kind, 0, NULL, msg, NULL);
}

static void copy_error(ar_error_copy *e, unsigned code, const char *message,
                       const char *sqlstate) {
  e->code = code;
  snprintf(e->message, sizeof e->message, "%s", message);
  snprintf(e->sqlstate, sizeof e->sqlstate, "%s", sqlstate);
}

void ar_copy_mysql_error(ar_error_copy *e, MYSQL *m) {
  copy_error(e, mysql_errno(m), mysql_error(m), mysql_sqlstate(m));
}

void ar_copy_stmt_error(ar_error_copy *e, MYSQL_STMT *s) {
  copy_error(e, mysql_stmt_errno(s), mysql_stmt_error(s), mysql_stmt_sqlstate(s));
}

int ar_raise_copy(lua_State *L, const char *kind, const ar_error_copy *e, const char *sql) {
  return ar_raise(L, kind ? kind : ar_error_kind(e->code), e->code, e->sqlstate, e->message,
                  sql);
}

/* Copy before raising: the MYSQL buffers are reused by the next call. */
int ar_raise_mysql(lua_State *L, MYSQL *m, const char *sql) {
  ar_error_copy e;
  ar_copy_mysql_error(&e, m);
  return ar_raise_copy(L, NULL, &e, sql);
}

int ar_raise_stmt(lua_State *L, MYSQL_STMT *s, const char *sql) {
  ar_error_copy e;
  ar_copy_stmt_error(&e, s);
  return ar_raise_copy(L, NULL, &e, sql);
}

/* Argument checks of the public functions raise error objects like every
 * other failure (luaL_check* would raise plain strings). Only real strings
 * pass: a number is not silently taken as SQL text. */
const char *ar_check_text(lua_State *L, int idx, size_t *len, const char *kind,
                          const char *what) {
  if (lua_type(L, idx) != LUA_TSTRING)
    ar_raisef(L, kind, "%s must be a string, got %s", what, luaL_typename(L, idx));
  return lua_tolstring(L, idx, len);
}

/* Adopts the error metatable of activerecord.errors (the stack top): the
 * neutral side owns the error shape and its `tostring`; every error this
 * core builds gets that metatable through the registry name AR_ERROR_MT. */
void ar_errors_open(lua_State *L) {
  lua_getfield(L, -1, "Error");
  if (!lua_istable(L, -1)) luaL_error(L, "activerecord.errors has no Error metatable");
  lua_setfield(L, LUA_REGISTRYINDEX, AR_ERROR_MT);
}
