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
  int mysql;   /* first MySQL version, NEVER if none, 1 = every version */
  int mariadb; /* first MariaDB version */
} ar_capability;

static const ar_capability matrix[] = {
    {"cte", V(8, 0, 1), V(10, 2, 1)},
    {"recursive_cte", V(8, 0, 1), V(10, 2, 2)},
    {"window_functions", V(8, 0, 2), V(10, 2, 0)},
    {"json", V(5, 7, 8), V(10, 2, 7)},
    {"native_json", V(5, 7, 8), NEVER},          /* MariaDB: LONGTEXT + CHECK */
    {"json_table", V(8, 0, 4), V(10, 6, 0)},
    {"json_arrow_operators", V(5, 7, 13), NEVER}, /* -> and ->> */
    {"json_extended_metadata", NEVER, V(10, 5, 2)},
    {"returning", NEVER, V(10, 5, 0)},            /* INSERT/REPLACE ... RETURNING */
    {"delete_returning", NEVER, V(10, 0, 5)},
    {"set_operations", 1, 1},                     /* UNION [ALL] */
    {"intersect", V(8, 0, 31), V(10, 3, 0)},
    {"except", V(8, 0, 31), V(10, 3, 0)},
    {"check_constraints", V(8, 0, 16), V(10, 2, 1)},
    {"locking", 1, 1},                            /* FOR UPDATE */
    {"for_share", V(8, 0, 1), NEVER},             /* MariaDB: LOCK IN SHARE MODE */
    {"nowait", V(8, 0, 1), V(10, 3, 0)},
    {"skip_locked", V(8, 0, 1), V(10, 6, 0)},
    {"upsert", 1, 1},                             /* ON DUPLICATE KEY UPDATE */
    {"upsert_alias", V(8, 0, 19), NEVER},         /* ... AS new ON DUPLICATE ... */
    {"sequences", NEVER, V(10, 3, 0)},
    {"system_versioning", NEVER, V(10, 3, 4)},
    {"bulk_array_binding", NEVER, V(10, 2, 0)},   /* STMT_ATTR_ARRAY_SIZE */
    {"full_text", 1, 1},
    {"lateral", V(8, 0, 14), NEVER},
    {"max_execution_time", V(5, 7, 8), V(10, 1, 1)},
    {"invisible_columns", V(8, 0, 23), V(10, 3, 3)},
    {"descending_indexes", V(8, 0, 1), V(10, 8, 0)},
    {"explain_json", 1, V(10, 1, 2)},
    {"grouping_function", V(8, 0, 1), NEVER},
    {"uuid_type", NEVER, V(10, 7, 0)},
    {"savepoints", 1, 1},
    {"read_only_transactions", 1, 1},
    {NULL, 0, 0}};

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
