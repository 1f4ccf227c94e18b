/*
 * convert.c - type conversion both ways (design §3).
 *
 * Parameters: integer -> BIGINT, float -> DOUBLE (NaN/inf refused), string ->
 * bytes, boolean -> 1/0, nil / null sentinel -> NULL, anything else refused.
 * Results: each column gets a conversion chosen once per statement shape, a
 * buffer bound once, and becomes one typed Lua value per row (no strings
 * parsed twice).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

#define BINARY_CHARSET 63

/* ---- parameters ------------------------------------------------------ */

/* Returns the bytes the values take on the wire (about), for the packet
 * size check before sending. */
size_t ar_bind_params(lua_State *L, ar_stmt *s, int first, int count, const char *sql) {
  size_t bytes = 0;
  if (count == 0) return 0;
  memset(s->pbind, 0, sizeof(MYSQL_BIND) * (size_t)count);
  for (int i = 0; i < count; i++) {
    int idx = first + i;
    MYSQL_BIND *b = &s->pbind[i];
    ar_param *p = &s->params[i];
    switch (lua_type(L, idx)) {
      case LUA_TNIL:
        b->buffer_type = MYSQL_TYPE_NULL;
        break;
      case LUA_TLIGHTUSERDATA:
        if (!ar_is_null(L, idx)) goto unsupported;
        b->buffer_type = MYSQL_TYPE_NULL; /* activerecord.null (= cjson.null) */
        break;
      case LUA_TBOOLEAN:
        p->num.i = lua_toboolean(L, idx);
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &p->num.i;
        break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
          p->num.i = (long long)lua_tointeger(L, idx);
          b->buffer_type = MYSQL_TYPE_LONGLONG;
          b->buffer = &p->num.i;
        } else {
          double d = (double)lua_tonumber(L, idx);
          if (isnan(d) || isinf(d))
            return ar_raisef(L, "DataError",
                             "parameter %d is %s, which MySQL cannot store", i + 1,
                             isnan(d) ? "NaN" : "infinite");
          p->num.d = d;
          b->buffer_type = MYSQL_TYPE_DOUBLE;
          b->buffer = &p->num.d;
        }
        break;
      case LUA_TSTRING: {
        size_t len;
        const char *str = lua_tolstring(L, idx, &len);
        p->length = (unsigned long)len;
        bytes += len;
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = (void *)str; /* stays on the stack during execute */
        b->buffer_length = p->length;
        b->length = &p->length;
        break;
      }
      case LUA_TTABLE:
        return ar_raisef(L, "DataError",
                         "parameter %d is a table: encode it first (a json model "
                         "field does this)", i + 1);
      default:
        if (ar_is_null(L, idx)) {
          b->buffer_type = MYSQL_TYPE_NULL;
          break;
        }
      unsupported:
        return ar_raisef(L, "DataError", "parameter %d: cannot bind a %s value",
                         i + 1, luaL_typename(L, idx));
    }
  }
  if (mysql_stmt_bind_param(s->stmt, s->pbind)) ar_raise_stmt(L, s->stmt, sql);
  return bytes + (size_t)count * 9;
}

/* ---- column metadata ------------------------------------------------- */

int ar_field_is_json(const MYSQL_FIELD *f) {
  if (f->type == MYSQL_TYPE_JSON) return 1; /* MySQL 5.7+ */
#ifdef MARIADB_FIELD_ATTR_LAST
  /* MariaDB stores JSON as LONGTEXT and says so in extended metadata (10.5+) */
  if (f->type == MYSQL_TYPE_BLOB || f->type == MYSQL_TYPE_STRING ||
      f->type == MYSQL_TYPE_VAR_STRING || f->type == MYSQL_TYPE_LONG_BLOB) {
    MARIADB_CONST_STRING attr;
    if (mariadb_field_attr(&attr, f, MARIADB_FIELD_ATTR_FORMAT_NAME) == 0 &&
        attr.length == 4 && memcmp(attr.str, "json", 4) == 0)
      return 1;
  }
#endif
  return 0;
}

static const char *type_name(const MYSQL_FIELD *f) {
  int binary = f->charsetnr == BINARY_CHARSET;
  if (ar_field_is_json(f)) return "JSON";
  switch (f->type) {
    case MYSQL_TYPE_TINY: return "TINYINT";
    case MYSQL_TYPE_SHORT: return "SMALLINT";
    case MYSQL_TYPE_LONG: return "INT";
    case MYSQL_TYPE_INT24: return "MEDIUMINT";
    case MYSQL_TYPE_LONGLONG: return "BIGINT";
    case MYSQL_TYPE_FLOAT: return "FLOAT";
    case MYSQL_TYPE_DOUBLE: return "DOUBLE";
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL: return "DECIMAL";
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE: return "DATE";
    case MYSQL_TYPE_TIME: return "TIME";
    case MYSQL_TYPE_DATETIME: return "DATETIME";
    case MYSQL_TYPE_TIMESTAMP: return "TIMESTAMP";
    case MYSQL_TYPE_YEAR: return "YEAR";
    case MYSQL_TYPE_BIT: return "BIT";
    case MYSQL_TYPE_ENUM: return "ENUM";
    case MYSQL_TYPE_SET: return "SET";
    case MYSQL_TYPE_GEOMETRY: return "GEOMETRY";
    case MYSQL_TYPE_NULL: return "NULL";
    case MYSQL_TYPE_STRING:
      if (f->flags & ENUM_FLAG) return "ENUM";
      if (f->flags & SET_FLAG) return "SET";
      return binary ? "BINARY" : "CHAR";
    case MYSQL_TYPE_VAR_STRING:
    case MYSQL_TYPE_VARCHAR: return binary ? "VARBINARY" : "VARCHAR";
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB: return binary ? "BLOB" : "TEXT";
    default: return "UNKNOWN";
  }
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v) {
  if (!v || !*v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* Pushes the `columns` array users see: one table per column. */
void ar_push_columns_meta(lua_State *L, MYSQL_FIELD *fields, unsigned n) {
  lua_createtable(L, (int)n, 0);
  for (unsigned i = 0; i < n; i++) {
    const MYSQL_FIELD *f = &fields[i];
    lua_createtable(L, 0, 12);
    set_str(L, "name", f->name);
    set_str(L, "type", type_name(f));
    set_int(L, "type_code", f->type);
    set_int(L, "length", (lua_Integer)f->length);
    set_int(L, "decimals", f->decimals);
    set_bool(L, "unsigned", (f->flags & UNSIGNED_FLAG) != 0);
    set_bool(L, "nullable", (f->flags & NOT_NULL_FLAG) == 0);
    set_bool(L, "primary_key", (f->flags & PRI_KEY_FLAG) != 0);
    set_bool(L, "auto_increment", (f->flags & AUTO_INCREMENT_FLAG) != 0);
    set_bool(L, "binary", f->charsetnr == BINARY_CHARSET);
    set_int(L, "charset", f->charsetnr);
    set_str(L, "table", f->table);
    set_str(L, "org_table", f->org_table);
    set_str(L, "org_name", f->org_name);
    set_str(L, "database", f->db);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* ---- result columns -------------------------------------------------- */

void ar_free_columns(ar_stmt *s) {
  if (s->cols)
    for (unsigned i = 0; i < s->ncols; i++) free(s->cols[i].buf);
  free(s->cols);
  free(s->rbind);
  s->cols = NULL;
  s->rbind = NULL;
  s->ncols = 0;
  s->names_ready = 0;
}

static ar_conv conv_for(const MYSQL_FIELD *f) {
  if (ar_field_is_json(f)) return AR_CONV_JSON;
  switch (f->type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR: return AR_CONV_INT;
    case MYSQL_TYPE_BIT: return AR_CONV_BIT;
    case MYSQL_TYPE_FLOAT: return AR_CONV_FLOAT;
    case MYSQL_TYPE_DOUBLE: return AR_CONV_DOUBLE;
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL: return AR_CONV_DECIMAL;
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
    case MYSQL_TYPE_TIME:
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_TIMESTAMP: return AR_CONV_TEMPORAL;
    default: return AR_CONV_STRING;
  }
}

/* A cached statement keeps its SQL text while the table under it is altered
 * or re-created; the server re-prepares it and Connector/C refreshes the
 * fields' type, flags and decimals (not their names), so signedness and
 * scale must match too, or BIGINT UNSIGNED values would wrap negative. */
static int same_shape(const ar_stmt *s, const MYSQL_FIELD *fields, unsigned n) {
  if (!s->names_ready || s->ncols != n) return 0;
  for (unsigned i = 0; i < n; i++)
    if (s->cols[i].type != fields[i].type || s->cols[i].conv != conv_for(&fields[i]) ||
        s->cols[i].is_unsigned != ((fields[i].flags & UNSIGNED_FLAG) != 0) ||
        s->cols[i].decimals != fields[i].decimals)
      return 0;
  return 1;
}

/* Builds (or reuses) the per-column buffers, the names array and the
 * columns metadata of the current result, and binds the result buffers. */
int ar_setup_columns(lua_State *L, ar_stmt *s, int stmt_idx, MYSQL_RES *meta_in) {
  MYSQL_RES *meta = meta_in, **guard = NULL;
  /* The common case, a cached statement run again with the same result
   * shape: the statement's own field array (refreshed by the client library
   * on a re-prepare) says so without copying the metadata. */
  if (!meta && s->names_ready && s->stmt->fields &&
      same_shape(s, s->stmt->fields, s->stmt->field_count))
    goto bind;
  if (!meta) {
    /* owned by a guard: a memory error below must not leak it */
    guard = ar_push_res_guard(L);
    meta = *guard = mysql_stmt_result_metadata(s->stmt);
    if (!meta) return ar_raise_stmt(L, s->stmt, s->sql);
  }
  unsigned n = mysql_num_fields(meta);
  MYSQL_FIELD *fields = mysql_fetch_fields(meta);
  if (!same_shape(s, fields, n)) {
    ar_free_columns(s);
    s->cols = (ar_column *)calloc(n, sizeof(ar_column));
    s->rbind = (MYSQL_BIND *)calloc(n, sizeof(MYSQL_BIND));
    if (!s->cols || !s->rbind) {
      ar_free_columns(s);
      return luaL_error(L, "not enough memory");
    }
    s->ncols = n;
    s->njson = 0;
    for (unsigned i = 0; i < n; i++) {
      const MYSQL_FIELD *f = &fields[i];
      ar_column *col = &s->cols[i];
      MYSQL_BIND *b = &s->rbind[i];
      col->conv = conv_for(f);
      if (col->conv == AR_CONV_JSON) s->njson++;
      col->type = f->type;
      col->decimals = f->decimals;
      col->is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;
      switch (col->conv) {
        case AR_CONV_INT:
          b->buffer_type = MYSQL_TYPE_LONGLONG;
          b->buffer = &col->num.i;
          b->is_unsigned = (my_bool)col->is_unsigned;
          break;
        case AR_CONV_FLOAT:
          b->buffer_type = MYSQL_TYPE_FLOAT;
          b->buffer = &col->num.f;
          break;
        case AR_CONV_DOUBLE:
          b->buffer_type = MYSQL_TYPE_DOUBLE;
          b->buffer = &col->num.d;
          break;
        case AR_CONV_TEMPORAL:
          b->buffer_type = f->type == MYSQL_TYPE_NEWDATE ? MYSQL_TYPE_DATE : f->type;
          b->buffer = &col->num.t;
          b->buffer_length = sizeof(MYSQL_TIME);
          break;
        default: {
          /* room for typical values; longer ones grow the buffer once */
          unsigned long want = f->length + 1;
          if (col->conv == AR_CONV_DECIMAL) want = 80;
          if (want < 16) want = 16;
          if (want > 4096) want = 4096;
          col->buf = (char *)malloc(want);
          if (!col->buf) {
            ar_free_columns(s);
            return luaL_error(L, "not enough memory");
          }
          col->buflen = want;
          b->buffer_type = col->conv == AR_CONV_BIT ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
          b->buffer = col->buf;
          b->buffer_length = want;
          break;
        }
      }
      b->length = &col->length;
      b->is_null = (my_bool *)&col->is_null;
      b->error = (my_bool *)&col->error;
    }
    /* names array and user-visible metadata, cached on the statement */
    lua_createtable(L, (int)n, 0);
    for (unsigned i = 0; i < n; i++) {
      lua_pushstring(L, fields[i].name);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setiuservalue(L, stmt_idx, AR_STMT_UV_NAMES);
    ar_push_columns_meta(L, fields, n);
    lua_setiuservalue(L, stmt_idx, AR_STMT_UV_COLUMNS);
    s->names_ready = 1;
  }
  if (guard) {
    mysql_free_result(meta);
    *guard = NULL;
    lua_pop(L, 1);
  }
bind:
  if (mysql_stmt_bind_result(s->stmt, s->rbind)) {
    s->stale = 1; /* e.g. 2057 after the table changed shape: re-prepare next time */
    return ar_raise_stmt(L, s->stmt, s->sql);
  }
  return 0;
}

/* ---- values ---------------------------------------------------------- */

static void push_unsigned(lua_State *L, unsigned long long u) {
  if (u <= (unsigned long long)LLONG_MAX) {
    lua_pushinteger(L, (lua_Integer)u);
  } else {
    char buf[24]; /* never wrapped: above 2^63-1 it is an exact string */
    snprintf(buf, sizeof buf, "%llu", u);
    lua_pushstring(L, buf);
  }
}

/* FLOAT columns hold a binary float; the shortest decimal that reads back
 * as the same float is what the user wrote (1.1, not 1.100000023841858). */
static void push_float(lua_State *L, float f) {
  char buf[32];
  for (int prec = 6; prec <= 9; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
    if (strtof(buf, NULL) == f) break;
  }
  lua_pushnumber(L, (lua_Number)strtod(buf, NULL));
}

static char *put2(char *p, unsigned v) {
  p[0] = (char)('0' + v / 10 % 10);
  p[1] = (char)('0' + v % 10);
  return p + 2;
}

/* MYSQL_TIME -> "YYYY-MM-DD hh:mm:ss[.ffffff]" without printf (a large fetch
 * formats one per row). Fraction digits follow the column's precision;
 * zero dates stay zero dates. Not static only so that the fuzz target
 * test/fuzz/fuzz_temporal.c can reach it (declared in ar.h). */
void ar_push_temporal(lua_State *L, const MYSQL_TIME *t, enum enum_field_types type,
                      unsigned decimals) {
  char buf[40], *p = buf;
  if (type == MYSQL_TYPE_TIME) {
    unsigned long hours = t->hour + (unsigned long)t->day * 24;
    if (t->neg) *p++ = '-';
    if (hours >= 100) {
      /* at most 12 digits (day and hour are 32-bit); snprintf returns the
       * untruncated length, so the size given must hold them all */
      p += snprintf(p, 21, "%lu", hours);
    } else {
      p = put2(p, (unsigned)hours);
    }
  } else {
    p = put2(p, t->year / 100);
    p = put2(p, t->year % 100);
    *p++ = '-';
    p = put2(p, t->month);
    *p++ = '-';
    p = put2(p, t->day);
    if (type == MYSQL_TYPE_DATE || type == MYSQL_TYPE_NEWDATE) {
      lua_pushlstring(L, buf, (size_t)(p - buf));
      return;
    }
    *p++ = ' ';
    p = put2(p, t->hour);
  }
  *p++ = ':';
  p = put2(p, t->minute);
  *p++ = ':';
  p = put2(p, t->second);
  /* expression columns report 39 ("not fixed"): show microseconds if any */
  if (decimals > 6) decimals = t->second_part ? 6 : 0;
  if (decimals > 0) {
    char frac[7];
    unsigned long us = t->second_part;
    for (int i = 5; i >= 0; i--) {
      frac[i] = (char)('0' + us % 10);
      us /= 10;
    }
    *p++ = '.';
    memcpy(p, frac, decimals);
    p += decimals;
  }
  lua_pushlstring(L, buf, (size_t)(p - buf));
}

static void push_bits(lua_State *L, const unsigned char *p, unsigned long len) {
  unsigned long long u = 0;
  for (unsigned long i = 0; i < len; i++) u = (u << 8) | p[i];
  push_unsigned(L, u);
}

int ar_push_column(lua_State *L, ar_stmt *s, unsigned i, int conn_idx) {
  ar_column *col = &s->cols[i];
  switch (col->conv) {
    case AR_CONV_INT:
      if (col->is_unsigned) push_unsigned(L, (unsigned long long)col->num.i);
      else lua_pushinteger(L, (lua_Integer)col->num.i);
      break;
    case AR_CONV_BIT:
      push_bits(L, (const unsigned char *)col->buf, col->length);
      break;
    case AR_CONV_FLOAT:
      push_float(L, col->num.f);
      break;
    case AR_CONV_DOUBLE:
      lua_pushnumber(L, (lua_Number)col->num.d);
      break;
    case AR_CONV_DECIMAL:
      if (s->conn->decimal_as_number) {
        col->buf[col->length < col->buflen ? col->length : col->buflen - 1] = '\0';
        lua_pushnumber(L, (lua_Number)strtod(col->buf, NULL));
      } else {
        lua_pushlstring(L, col->buf, col->length);
      }
      break;
    case AR_CONV_JSON:
      return ar_push_json(L, col->buf, col->length, conn_idx);
    case AR_CONV_TEMPORAL:
      ar_push_temporal(L, &col->num.t, col->type, col->decimals);
      break;
    default:
      lua_pushlstring(L, col->buf, col->length);
      break;
  }
  return 1;
}

/* Text protocol values (commands that cannot be prepared). */
int ar_push_text_value(lua_State *L, const MYSQL_FIELD *f, const char *v,
                       unsigned long len, int decimal_as_number, int conn_idx) {
  switch (conv_for(f)) {
    case AR_CONV_INT:
      if (f->flags & UNSIGNED_FLAG) push_unsigned(L, strtoull(v, NULL, 10));
      else lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
      break;
    case AR_CONV_BIT:
      push_bits(L, (const unsigned char *)v, len);
      break;
    case AR_CONV_FLOAT:
    case AR_CONV_DOUBLE:
      lua_pushnumber(L, (lua_Number)strtod(v, NULL));
      break;
    case AR_CONV_DECIMAL:
      if (decimal_as_number) lua_pushnumber(L, (lua_Number)strtod(v, NULL));
      else lua_pushlstring(L, v, len);
      break;
    case AR_CONV_JSON:
      return ar_push_json(L, v, len, conn_idx);
    default:
      lua_pushlstring(L, v, len);
      break;
  }
  return 1;
}
