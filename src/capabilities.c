/*
 * capabilities.c - what a server can do, from its flavor and version only.
 *
 * A pure function, so the matrix is unit-tested for servers we cannot run
 * here. MariaDB and MySQL are separate lines: MariaDB 10.11 is numerically
 * "newer" than MySQL 8.0 but lacks some MySQL 8 features and has others.
 * Thresholds are the first GA-track release that ships the feature.
 */
#include <stdlib.h>
#include <string.h>

#include "ar.h"

#define V(a, b, c) ((a) * 10000 + (b) * 100 + (c))
#define NEVER 0

typedef struct {
  const char *name;
  int mysql;           /* first MySQL version, NEVER if none, 1 = every version */
  int mariadb;         /* first MariaDB version */
  const char *feature; /* what CapabilityError messages call it */
} ar_capability;

static const ar_capability matrix[] = {
    {"cte", V(8, 0, 1), V(10, 2, 1), "WITH (common table expressions)"},
    {"recursive_cte", V(8, 0, 1), V(10, 2, 2), "WITH RECURSIVE"},
    {"window_functions", V(8, 0, 2), V(10, 2, 0), "window functions"},
    {"json", V(5, 7, 8), V(10, 2, 7), "JSON functions"},
    {"native_json", V(5, 7, 8), NEVER, "the native JSON type"}, /* MariaDB: LONGTEXT + CHECK */
    {"json_table", V(8, 0, 4), V(10, 6, 0), "JSON_TABLE"},
    {"json_arrow_operators", V(5, 7, 13), NEVER, "the -> / ->> JSON operators"}, /* -> and ->> */
    {"json_extended_metadata", NEVER, V(10, 5, 2), "JSON extended metadata"},
    {"json_path_ranges", V(8, 0, 2), NEVER, "JSON path ranges (last, M to N)"},
    {"returning", NEVER, V(10, 5, 0), "INSERT ... RETURNING"}, /* INSERT/REPLACE ... RETURNING */
    {"delete_returning", NEVER, V(10, 0, 5), "DELETE ... RETURNING"},
    {"set_operations", 1, 1, "UNION"}, /* UNION [ALL] */
    {"intersect", V(8, 0, 31), V(10, 3, 0), "INTERSECT"},
    {"except", V(8, 0, 31), V(10, 3, 0), "EXCEPT"},
    {"check_constraints", V(8, 0, 16), V(10, 2, 1), "CHECK constraints"},
    {"locking", 1, 1, "FOR UPDATE"}, /* FOR UPDATE */
    {"for_share", V(8, 0, 1), NEVER, "FOR SHARE"}, /* MariaDB: LOCK IN SHARE MODE */
    {"nowait", V(8, 0, 1), V(10, 3, 0), "NOWAIT"},
    {"skip_locked", V(8, 0, 1), V(10, 6, 0), "SKIP LOCKED"},
    {"upsert", 1, 1, "ON DUPLICATE KEY UPDATE"}, /* ON DUPLICATE KEY UPDATE */
    {"upsert_alias", V(8, 0, 19), NEVER, "INSERT ... AS alias ON DUPLICATE KEY UPDATE"},
    {"sequences", NEVER, V(10, 3, 0), "sequences"},
    {"system_versioning", NEVER, V(10, 3, 4), "system-versioned tables"},
    {"bulk_array_binding", NEVER, V(10, 2, 0), "bulk array binding"}, /* STMT_ATTR_ARRAY_SIZE */
    {"full_text", 1, 1, "full-text search"},
    {"lateral", V(8, 0, 14), NEVER, "LATERAL derived tables"},
    {"max_execution_time", V(5, 7, 8), V(10, 1, 1), "statement time limits"},
    {"invisible_columns", V(8, 0, 23), V(10, 3, 3), "invisible columns"},
    {"descending_indexes", V(8, 0, 1), V(10, 8, 0), "descending indexes"},
    {"explain_json", 1, V(10, 1, 2), "EXPLAIN FORMAT=JSON"},
    {"grouping_function", V(8, 0, 1), NEVER, "GROUPING()"},
    {"uuid_type", NEVER, V(10, 7, 0), "the UUID column type"},
    {"rename_column", V(8, 0, 3), V(10, 5, 2), "ALTER TABLE ... RENAME COLUMN"},
    /* DEFAULT on TEXT/BLOB/JSON (MySQL: as an expression); MariaDB's
     * threshold (10.2.1) is left to the server, as before */
    {"lob_defaults", V(8, 0, 13), 1, "a DEFAULT on a TEXT/BLOB/JSON column"},
    {"savepoints", 1, 1, "savepoints"},
    {"read_only_transactions", 1, 1, "read-only transactions"},
    {NULL, 0, 0, NULL}};

/* "10.11.6-MariaDB-0+deb12u1", "5.5.5-10.4.1-MariaDB" (old replication
 * prefix), "8.0.36-0ubuntu0.22.04.1". Returns 0 when no version is found. */
int ar_parse_version(const char *s, int *major, int *minor, int *patch,
                     const char **flavor) {
  if (!s) return 0;
  int is_maria = strstr(s, "MariaDB") != NULL || strstr(s, "mariadb") != NULL;
  if (flavor) *flavor = is_maria ? "mariadb" : "mysql";
  if (is_maria && strncmp(s, "5.5.5-", 6) == 0) s += 6;
  char *end;
  *major = (int)strtol(s, &end, 10);
  if (end == s) return 0;
  *minor = *end == '.' ? (int)strtol(end + 1, &end, 10) : 0;
  *patch = *end == '.' ? (int)strtol(end + 1, &end, 10) : 0;
  return 1;
}

void ar_push_capabilities(lua_State *L, const char *flavor, int major, int minor,
                          int patch) {
  int maria = strcmp(flavor, "mariadb") == 0;
  /* wide: a version string like "99999999.0" must not overflow an int */
  long long v = (long long)major * 10000 + (long long)minor * 100 + patch;
  lua_createtable(L, 0, (int)(sizeof matrix / sizeof matrix[0]));
  for (const ar_capability *c = matrix; c->name; c++) {
    int since = maria ? c->mariadb : c->mysql;
    lua_pushboolean(L, since != NEVER && v >= since);
    lua_setfield(L, -2, c->name);
  }
}

/* core.capabilities_for(flavor, version) where version is "8.0.31",
 * {8, 0, 31} or a full server version string. */
int ar_capabilities_for(lua_State *L) {
  const char *flavor = ar_check_text(L, 1, NULL, "ConfigError", "the flavor");
  int major = 0, minor = 0, patch = 0;
  if (strcmp(flavor, "mysql") != 0 && strcmp(flavor, "mariadb") != 0)
    return ar_raisef(L, "ConfigError", "flavor must be \"mysql\" or \"mariadb\", got \"%s\"", flavor);
  if (lua_istable(L, 2)) {
    lua_geti(L, 2, 1);
    lua_geti(L, 2, 2);
    lua_geti(L, 2, 3);
    major = (int)luaL_optinteger(L, -3, 0);
    minor = (int)luaL_optinteger(L, -2, 0);
    patch = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 3);
  } else if (!ar_parse_version(ar_check_text(L, 2, NULL, "ConfigError", "the version"), &major, &minor,
                               &patch, NULL)) {
    return ar_raisef(L, "ConfigError", "cannot read a version from \"%s\"", lua_tostring(L, 2));
  }
  ar_push_capabilities(L, flavor, major, minor, patch);
  return 1;
}

/* A threshold as Lua sees it: "8.0.1", true (every version) or false. */
static void push_since(lua_State *L, int since) {
  if (since == NEVER) {
    lua_pushboolean(L, 0);
  } else if (since == 1) {
    lua_pushboolean(L, 1);
  } else {
    lua_pushfstring(L, "%d.%d.%d", since / 10000, since / 100 % 100, since % 100);
  }
}

/* core.capability_matrix() -> { name = { feature =, mysql =, mariadb = } }:
 * the one table of capabilities, for messages and documentation (the
 * dialect names a capability's first version from it). */
int ar_capability_matrix(lua_State *L) {
  lua_createtable(L, 0, (int)(sizeof matrix / sizeof matrix[0]));
  for (const ar_capability *c = matrix; c->name; c++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, c->feature);
    lua_setfield(L, -2, "feature");
    push_since(L, c->mysql);
    lua_setfield(L, -2, "mysql");
    push_since(L, c->mariadb);
    lua_setfield(L, -2, "mariadb");
    lua_setfield(L, -2, c->name);
  }
  return 1;
}
