/*
 * bench/floor.c -- the C floor for the "core" (B1-B3) and "orm" (W1-W7)
 * benchmarks.
 *
 * Plain C11 on MariaDB Connector/C, prepared statements (mysql_stmt_*),
 * results bound into plain C structs, no Lua.  This is the lower bound the
 * Lua implementations (bench/core.lua, bench/luasql.lua) are compared with.
 *
 * Usage:
 *   floor setup        drop/create users + posts, fill 50,000 users (not timed)
 *   floor B1           10,000 pk lookups          -> prints "B1 <seconds>"
 *   floor B2           fetch all 50,000 users     -> prints "B2 <seconds>"
 *   floor B3           5,000 INSERTs in one trx   -> prints "B3 <seconds>"
 *   floor W1..W7       design section 7 workloads -> prints "W<n> <seconds>"
 *   floor W2a          W2 with MariaDB array binding (STMT_ATTR_ARRAY_SIZE),
 *                      an alternative, stronger floor shown for information
 *
 * W-workloads (design section 7), all with prepared statements into plain structs:
 *   W1 5,000 single-row INSERTs in one transaction (table users_w1_floor)
 *   W2 50,000 rows in one transaction as 50 executions of one prepared
 *      1,000-row multi-row INSERT (8,000 placeholders; table users_w2_floor)
 *   W3 10,000 pk lookups (same as B1)
 *   W4 all 50,000 users (same as B2)
 *   W5 5,000 "UPDATE users SET score = ? WHERE id = ?" in one transaction,
 *      ids (i * 7919) % 50000 + 1, score = base(i) + BENCH_NONCE/1000
 *   W6 users 1..1,000 (WHERE id <= ?) then their posts with one
 *      "WHERE user_id IN (?, x1000)", posts attached to their user through a
 *      hash on user id, every post title touched -- what an ORM's eager load does
 *   W7 1,000 "WHERE JSON_UNQUOTE(JSON_EXTRACT(profile,'$.key')) = ? LIMIT 1"
 *      with the keys of users 1..1,000
 *
 * Connection: AR_MYSQL_HOST, AR_MYSQL_PORT, AR_MYSQL_SOCKET, AR_MYSQL_USER,
 * AR_MYSQL_PASSWORD, AR_MYSQL_DATABASE.  Transport rule shared by every
 * implementation of this benchmark: TCP to AR_MYSQL_HOST (default 127.0.0.1)
 * on AR_MYSQL_PORT if AR_MYSQL_PORT is set, otherwise the unix socket
 * AR_MYSQL_SOCKET.
 *
 * Only the workload itself is timed (clock_gettime(CLOCK_MONOTONIC)); the
 * timed region includes statement preparation, since the Lua core prepares
 * (and caches) on first use too.  A checksum of what was read goes to stderr
 * ("# B1 check ...") so the implementations can be cross-checked.
 *
 * Data derivation (must match bench/common.lua):
 *   name       = "user_<i>"
 *   email      = "user_<i>@example.com"
 *   age        = 18 + i % 60
 *   score      = (i % 1000) * 1.5 + 0.25
 *   balance    = "<i*7 % 100000>.<i % 100, 2 digits>"
 *   active     = (i % 3 != 0)
 *   profile    = {"theme": "dark"|"light" (i even|odd), "key": "value_<i>", "tags": [1, 2, 3]}
 *   created_at = 2024-(1+i%12)-(1+i%28) (i%24):(i%60):((i/60)%60).(i%1000000)
 * Posts (setup): for k = 1..10, for u = 1..1,000 (so a user's posts are spread):
 *   user_id = u, title = "post_<u>_<k>",
 *   body = "post <k> of user <u>: lorem ipsum dolor sit amet, consectetur adipiscing elit",
 *   created_at = as users with i = (u-1)*10 + k
 */
#define _POSIX_C_SOURCE 200809L

#include <mysql.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Oracle's libmysqlclient 8.0 dropped my_bool; Connector/C still has it. */
#if !defined(MARIADB_PACKAGE_VERSION_ID) && defined(MYSQL_VERSION_ID) && MYSQL_VERSION_ID >= 80000
typedef bool my_bool;
#endif

#define N_USERS      50000
#define B1_LOOKUPS   10000
#define B3_INSERTS   5000
#define SETUP_BATCH  1000
#define W1_INSERTS   5000
#define W2_ROWS      50000
#define W2_BATCH     1000
#define W5_UPDATES   5000
#define W6_USERS     1000
#define W6_POSTS_PER 10
#define W7_LOOKUPS   1000

#define SELECT_COLS "id,name,email,age,score,balance,active,profile,created_at"

static const char *USERS_DDL =
    "CREATE TABLE %s ("
    "id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "name VARCHAR(100) NOT NULL, "
    "email VARCHAR(255) NOT NULL, "
    "age INT, score DOUBLE, balance DECIMAL(12,2), active TINYINT(1), "
    "profile JSON, created_at DATETIME(6)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

static const char *POSTS_DDL =
    "CREATE TABLE posts ("
    "id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "user_id BIGINT NOT NULL, title VARCHAR(200), body TEXT, "
    "created_at DATETIME(6), INDEX(user_id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/* One users row, as plain C. */
struct user_row {
    int64_t    id;
    char       name[101];
    char       email[256];
    int32_t    age;
    double     score;
    char       balance[20];   /* DECIMAL(12,2) as text */
    int32_t    active;
    char       profile[512];  /* JSON text */
    MYSQL_TIME created_at;
};

/* Values for user i (used by setup and B3). */
struct user_vals {
    char          name[101];
    unsigned long name_len;
    char          email[256];
    unsigned long email_len;
    int32_t       age;
    double        score;
    char          balance[20];
    unsigned long balance_len;
    int8_t        active;
    char          profile[512];
    unsigned long profile_len;
    MYSQL_TIME    created_at;
};

static MYSQL *conn;
/* BENCH_SETUP_ONLY=1: do a workload's untimed setup, stop before its clock
 * starts (bench/callgrind.sh subtracts such a run to count the timed region). */
static int setup_only;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("floor: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void die_conn(const char *what)
{
    die("%s: (%u) %s", what, mysql_errno(conn), mysql_error(conn));
}

static void die_stmt(MYSQL_STMT *st, const char *what)
{
    die("%s: (%u) %s", what, mysql_stmt_errno(st), mysql_stmt_error(st));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return (v && *v) ? v : dflt;
}

static void connect_db(void)
{
    const char *port_s = env_or("AR_MYSQL_PORT", NULL);
    const char *sock   = env_or("AR_MYSQL_SOCKET", NULL);
    const char *user   = env_or("AR_MYSQL_USER", "root");
    const char *pass   = env_or("AR_MYSQL_PASSWORD", NULL);
    const char *db     = env_or("AR_MYSQL_DATABASE", NULL);
    const char *host;
    unsigned int port = 0;
    enum mysql_protocol_type proto;

    conn = mysql_init(NULL);
    if (!conn)
        die("mysql_init failed");
    if (mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4"))
        die_conn("MYSQL_SET_CHARSET_NAME");

    if (port_s) {
        char *end;
        unsigned long p = strtoul(port_s, &end, 10);
        if (*end || p == 0 || p > 65535)
            die("bad AR_MYSQL_PORT '%s'", port_s);
        port  = (unsigned int)p;
        host  = env_or("AR_MYSQL_HOST", "127.0.0.1");
        sock  = NULL;
        proto = MYSQL_PROTOCOL_TCP;
    } else {
        if (!sock)
            die("set AR_MYSQL_PORT (TCP) or AR_MYSQL_SOCKET");
        host  = "localhost";
        proto = MYSQL_PROTOCOL_SOCKET;
    }
    if (mysql_options(conn, MYSQL_OPT_PROTOCOL, &proto))
        die_conn("MYSQL_OPT_PROTOCOL");
    if (!mysql_real_connect(conn, host, user, pass, db, port, sock, 0))
        die_conn("mysql_real_connect");
}

static void query(const char *sql)
{
    if (mysql_query(conn, sql))
        die("query failed: %s\n  sql: %.200s", mysql_error(conn), sql);
}

static MYSQL_STMT *prepare(const char *sql)
{
    MYSQL_STMT *st = mysql_stmt_init(conn);
    if (!st)
        die_conn("mysql_stmt_init");
    if (mysql_stmt_prepare(st, sql, strlen(sql)))
        die_stmt(st, "mysql_stmt_prepare");
    return st;
}

static void user_values(int64_t i, struct user_vals *v)
{
    int n;

    n = snprintf(v->name, sizeof v->name, "user_%" PRId64, i);
    v->name_len = (unsigned long)n;
    n = snprintf(v->email, sizeof v->email, "user_%" PRId64 "@example.com", i);
    v->email_len = (unsigned long)n;
    v->age    = (int32_t)(18 + i % 60);
    v->score  = (double)(i % 1000) * 1.5 + 0.25;
    n = snprintf(v->balance, sizeof v->balance, "%" PRId64 ".%02d",
                 (i * 7) % 100000, (int)(i % 100));
    v->balance_len = (unsigned long)n;
    v->active = (int8_t)(i % 3 != 0);
    n = snprintf(v->profile, sizeof v->profile,
                 "{\"theme\": \"%s\", \"key\": \"value_%" PRId64 "\", \"tags\": [1, 2, 3]}",
                 (i % 2 == 0) ? "dark" : "light", i);
    v->profile_len = (unsigned long)n;

    memset(&v->created_at, 0, sizeof v->created_at);
    v->created_at.year        = 2024;
    v->created_at.month       = (unsigned)(1 + i % 12);
    v->created_at.day         = (unsigned)(1 + i % 28);
    v->created_at.hour        = (unsigned)(i % 24);
    v->created_at.minute      = (unsigned)(i % 60);
    v->created_at.second      = (unsigned)((i / 60) % 60);
    v->created_at.second_part = (unsigned long)(i % 1000000);
    v->created_at.time_type   = MYSQL_TIMESTAMP_DATETIME;
}

/* ---------------------------------------------------------------- setup */

static size_t append_escaped(char *dst, const char *s, unsigned long len)
{
    dst[0] = '\'';
    unsigned long n = mysql_real_escape_string(conn, dst + 1, s, len);
    dst[1 + n] = '\'';
    return n + 2;
}

static void do_setup(void)
{
    char ddl[1024];
    /* ~300 bytes per row worst case after escaping; be generous */
    size_t cap = (size_t)SETUP_BATCH * 1200 + 256;
    char *sql = malloc(cap);
    if (!sql)
        die("out of memory");

    query("SET SESSION sql_mode = 'STRICT_TRANS_TABLES'");
    query("DROP TABLE IF EXISTS posts");
    query("DROP TABLE IF EXISTS users");
    snprintf(ddl, sizeof ddl, USERS_DDL, "users");
    query(ddl);
    query(POSTS_DDL);

    for (int64_t base = 1; base <= N_USERS; base += SETUP_BATCH) {
        size_t pos = 0;
        pos += (size_t)sprintf(sql + pos,
            "INSERT INTO users (name,email,age,score,balance,active,profile,created_at) VALUES ");
        for (int64_t i = base; i < base + SETUP_BATCH && i <= N_USERS; i++) {
            struct user_vals v;
            user_values(i, &v);
            if (i != base)
                sql[pos++] = ',';
            sql[pos++] = '(';
            pos += append_escaped(sql + pos, v.name, v.name_len);
            sql[pos++] = ',';
            pos += append_escaped(sql + pos, v.email, v.email_len);
            pos += (size_t)sprintf(sql + pos, ",%d,%.17g,%s,%d,",
                                   (int)v.age, v.score, v.balance, (int)v.active);
            pos += append_escaped(sql + pos, v.profile, v.profile_len);
            pos += (size_t)sprintf(sql + pos,
                ",'%04u-%02u-%02u %02u:%02u:%02u.%06lu')",
                v.created_at.year, v.created_at.month, v.created_at.day,
                v.created_at.hour, v.created_at.minute, v.created_at.second,
                v.created_at.second_part);
            if (pos + 1300 > cap)
                die("setup buffer too small");
        }
        sql[pos] = '\0';
        if (mysql_real_query(conn, sql, pos))
            die_conn("setup insert");
    }
    /* posts: 10 per user for users 1..W6_USERS, a user's posts spread out */
    for (int k = 1; k <= W6_POSTS_PER; k++) {
        size_t pos = 0;
        pos += (size_t)sprintf(sql + pos,
            "INSERT INTO posts (user_id,title,body,created_at) VALUES ");
        for (int u = 1; u <= W6_USERS; u++) {
            struct user_vals v;
            user_values((int64_t)(u - 1) * W6_POSTS_PER + k, &v);  /* for created_at */
            pos += (size_t)sprintf(sql + pos,
                "%s(%d,'post_%d_%d','post %d of user %d: lorem ipsum dolor sit amet, "
                "consectetur adipiscing elit','%04u-%02u-%02u %02u:%02u:%02u.%06lu')",
                u == 1 ? "" : ",", u, u, k, k, u,
                v.created_at.year, v.created_at.month, v.created_at.day,
                v.created_at.hour, v.created_at.minute, v.created_at.second,
                v.created_at.second_part);
            if (pos + 1300 > cap)
                die("setup buffer too small");
        }
        sql[pos] = '\0';
        if (mysql_real_query(conn, sql, pos))
            die_conn("setup posts insert");
    }
    free(sql);

    MYSQL_RES *r;
    query("ANALYZE TABLE users");
    r = mysql_store_result(conn);  /* ANALYZE returns a result set */
    if (r)
        mysql_free_result(r);
    query("ANALYZE TABLE posts");
    r = mysql_store_result(conn);
    if (r)
        mysql_free_result(r);

    query("SELECT COUNT(*) FROM users");
    r = mysql_store_result(conn);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    printf("setup users=%s", row && row[0] ? row[0] : "?");
    if (r)
        mysql_free_result(r);
    query("SELECT COUNT(*) FROM posts");
    r = mysql_store_result(conn);
    row = r ? mysql_fetch_row(r) : NULL;
    printf(" posts=%s\n", row && row[0] ? row[0] : "?");
    if (r)
        mysql_free_result(r);
}

/* ------------------------------------------------------- result binding */

struct row_binding {
    struct user_row row;
    MYSQL_BIND      bind[9];
    unsigned long   len[9];
    my_bool         is_null[9];
    my_bool         error[9];
};

static void bind_user_row(MYSQL_STMT *st, struct row_binding *b)
{
    memset(b, 0, sizeof *b);
    MYSQL_BIND *r = b->bind;

    r[0].buffer_type = MYSQL_TYPE_LONGLONG;
    r[0].buffer      = &b->row.id;
    r[1].buffer_type = MYSQL_TYPE_STRING;
    r[1].buffer      = b->row.name;
    r[1].buffer_length = sizeof b->row.name;
    r[2].buffer_type = MYSQL_TYPE_STRING;
    r[2].buffer      = b->row.email;
    r[2].buffer_length = sizeof b->row.email;
    r[3].buffer_type = MYSQL_TYPE_LONG;
    r[3].buffer      = &b->row.age;
    r[4].buffer_type = MYSQL_TYPE_DOUBLE;
    r[4].buffer      = &b->row.score;
    r[5].buffer_type = MYSQL_TYPE_STRING;
    r[5].buffer      = b->row.balance;
    r[5].buffer_length = sizeof b->row.balance;
    r[6].buffer_type = MYSQL_TYPE_LONG;
    r[6].buffer      = &b->row.active;
    r[7].buffer_type = MYSQL_TYPE_STRING;
    r[7].buffer      = b->row.profile;
    r[7].buffer_length = sizeof b->row.profile;
    r[8].buffer_type = MYSQL_TYPE_DATETIME;
    r[8].buffer      = &b->row.created_at;
    r[8].buffer_length = sizeof b->row.created_at;
    for (int i = 0; i < 9; i++) {
        r[i].length  = &b->len[i];
        r[i].is_null = &b->is_null[i];
        r[i].error   = &b->error[i];
    }
    if (mysql_stmt_bind_result(st, r))
        die_stmt(st, "mysql_stmt_bind_result");
}

/* Fetch the next row; 1 = row, 0 = no more rows. */
static int fetch_row(MYSQL_STMT *st)
{
    int rc = mysql_stmt_fetch(st);
    if (rc == 0)
        return 1;
    if (rc == MYSQL_NO_DATA)
        return 0;
    if (rc == MYSQL_DATA_TRUNCATED)
        die("mysql_stmt_fetch: data truncated");
    die_stmt(st, "mysql_stmt_fetch");
    return 0;
}

/* ------------------------------------------------------------ workloads */

static uint32_t lcg_next(uint32_t *x)
{
    *x = (uint32_t)(((uint64_t)*x * 1103515245u + 12345u) % 2147483648u);
    return *x;
}

/* B1: 10,000 pk lookups, read name and balance. */
static double do_b1(const char *label)
{
    struct row_binding b;
    MYSQL_BIND param;
    int64_t id = 0;
    uint32_t x = 42;
    long rows = 0, check = 0;

    if (setup_only)
        return 0;
    double t0 = now_s();
    MYSQL_STMT *st = prepare("SELECT " SELECT_COLS " FROM users WHERE id = ?");
    memset(&param, 0, sizeof param);
    param.buffer_type = MYSQL_TYPE_LONGLONG;
    param.buffer      = &id;
    if (mysql_stmt_bind_param(st, &param))
        die_stmt(st, "mysql_stmt_bind_param");
    bind_user_row(st, &b);

    for (int n = 0; n < B1_LOOKUPS; n++) {
        id = (int64_t)(lcg_next(&x) % N_USERS) + 1;
        if (mysql_stmt_execute(st))
            die_stmt(st, "mysql_stmt_execute");
        if (mysql_stmt_store_result(st))
            die_stmt(st, "mysql_stmt_store_result");
        while (fetch_row(st)) {
            rows++;
            check += (long)b.len[1] + (long)b.len[5];  /* name, balance */
        }
        if (mysql_stmt_free_result(st))
            die_stmt(st, "mysql_stmt_free_result");
    }
    double t1 = now_s();

    mysql_stmt_close(st);
    fprintf(stderr, "# %s check rows=%ld namebal_len=%ld\n", label, rows, check);
    if (rows != B1_LOOKUPS)
        die("%s: expected %d rows, got %ld", label, B1_LOOKUPS, rows);
    return t1 - t0;
}

/* B2: all users in one buffered query, every column of every row touched. */
static double do_b2(const char *label)
{
    struct row_binding b;
    long rows = 0;
    int64_t id_sum = 0, check = 0;

    if (setup_only)
        return 0;
    double t0 = now_s();
    MYSQL_STMT *st = prepare("SELECT " SELECT_COLS " FROM users");
    bind_user_row(st, &b);
    if (mysql_stmt_execute(st))
        die_stmt(st, "mysql_stmt_execute");
    if (mysql_stmt_store_result(st))
        die_stmt(st, "mysql_stmt_store_result");
    while (fetch_row(st)) {
        const struct user_row *u = &b.row;
        rows++;
        id_sum += u->id;
        check += (int64_t)b.len[1] + (int64_t)b.len[2] + u->age
               + (int64_t)u->score + (int64_t)b.len[5] + u->active
               + (int64_t)b.len[7] + u->created_at.second
               + (u->name[0] == 'u') + (u->balance[0] != 0) + (u->profile[0] == '{');
    }
    if (mysql_stmt_free_result(st))
        die_stmt(st, "mysql_stmt_free_result");
    double t1 = now_s();

    mysql_stmt_close(st);
    fprintf(stderr, "# %s check rows=%ld id_sum=%" PRId64 " (touch=%" PRId64 ")\n",
            label, rows, id_sum, check);
    if (rows != N_USERS)
        die("%s: expected %d rows, got %ld", label, N_USERS, rows);
    return t1 - t0;
}

/* B3 / W1: 5,000 single-row INSERTs in one transaction into `table`. */
static void bind_user_params(MYSQL_BIND *p, struct user_vals *v)
{
    memset(p, 0, 8 * sizeof *p);
    p[0].buffer_type = MYSQL_TYPE_STRING;
    p[0].buffer = v->name;        p[0].length = &v->name_len;
    p[1].buffer_type = MYSQL_TYPE_STRING;
    p[1].buffer = v->email;       p[1].length = &v->email_len;
    p[2].buffer_type = MYSQL_TYPE_LONG;
    p[2].buffer = &v->age;
    p[3].buffer_type = MYSQL_TYPE_DOUBLE;
    p[3].buffer = &v->score;
    p[4].buffer_type = MYSQL_TYPE_NEWDECIMAL;
    p[4].buffer = v->balance;     p[4].length = &v->balance_len;
    p[5].buffer_type = MYSQL_TYPE_TINY;
    p[5].buffer = &v->active;
    p[6].buffer_type = MYSQL_TYPE_STRING;
    p[6].buffer = v->profile;     p[6].length = &v->profile_len;
    p[7].buffer_type = MYSQL_TYPE_DATETIME;
    p[7].buffer = &v->created_at;
}

static void recreate_users_table(const char *table)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", table);
    query(sql);
    snprintf(sql, sizeof sql, USERS_DDL, table);
    query(sql);
}

static double do_insert_one(const char *label, const char *table, int n_inserts)
{
    char ins[512];
    struct user_vals v;
    MYSQL_BIND p[8];
    int64_t last_id = 0;

    recreate_users_table(table);
    snprintf(ins, sizeof ins,
             "INSERT INTO %s (name,email,age,score,balance,active,profile,created_at) "
             "VALUES (?,?,?,?,?,?,?,?)", table);

    memset(&v, 0, sizeof v);
    bind_user_params(p, &v);

    if (setup_only)
        return 0;
    double t0 = now_s();
    MYSQL_STMT *st = prepare(ins);
    if (mysql_stmt_bind_param(st, p))
        die_stmt(st, "mysql_stmt_bind_param");
    query("BEGIN");
    for (int64_t i = 1; i <= n_inserts; i++) {
        user_values(i, &v);
        if (mysql_stmt_execute(st))
            die_stmt(st, "mysql_stmt_execute");
        if (mysql_stmt_affected_rows(st) != 1)
            die("%s: affected_rows != 1", label);
        last_id = (int64_t)mysql_stmt_insert_id(st);
    }
    query("COMMIT");
    double t1 = now_s();

    mysql_stmt_close(st);
    fprintf(stderr, "# %s check inserted=%d last_id=%" PRId64 "\n", label, n_inserts, last_id);
    return t1 - t0;
}

/* W2: 50,000 rows, one transaction, one prepared 1,000-row multi-row INSERT. */
static double do_w2(void)
{
    const char *table = "users_w2_floor";
    size_t cap = 256 + (size_t)W2_BATCH * 20;
    char *ins = malloc(cap);
    struct user_vals *v = calloc(W2_BATCH, sizeof *v);
    MYSQL_BIND *p = calloc((size_t)W2_BATCH * 8, sizeof *p);
    int64_t affected = 0;
    if (!ins || !v || !p)
        die("out of memory");

    recreate_users_table(table);
    size_t pos = (size_t)sprintf(ins,
        "INSERT INTO %s (name,email,age,score,balance,active,profile,created_at) VALUES ", table);
    for (int r = 0; r < W2_BATCH; r++)
        pos += (size_t)sprintf(ins + pos, "%s(?,?,?,?,?,?,?,?)", r ? "," : "");
    for (int r = 0; r < W2_BATCH; r++)
        bind_user_params(p + r * 8, v + r);

    if (setup_only)
        return 0;
    double t0 = now_s();
    MYSQL_STMT *st = prepare(ins);
    if (mysql_stmt_bind_param(st, p))
        die_stmt(st, "mysql_stmt_bind_param");
    query("BEGIN");
    for (int64_t base = 1; base <= W2_ROWS; base += W2_BATCH) {
        for (int r = 0; r < W2_BATCH; r++)
            user_values(base + r, v + r);
        if (mysql_stmt_execute(st))
            die_stmt(st, "mysql_stmt_execute");
        affected += (int64_t)mysql_stmt_affected_rows(st);
    }
    query("COMMIT");
    double t1 = now_s();

    mysql_stmt_close(st);
    free(ins);
    free(v);
    free(p);
    fprintf(stderr, "# W2 check inserted=%" PRId64 "\n", affected);
    if (affected != W2_ROWS)
        die("W2: affected %" PRId64 ", want %d", affected, W2_ROWS);
    return t1 - t0;
}

/* W2a: W2 with MariaDB's bulk array binding: one single-row INSERT executed
 * with STMT_ATTR_ARRAY_SIZE = 1,000 and row-wise buffers (STMT_ATTR_ROW_SIZE),
 * 50 executions.  Information only: a stronger floor than the multi-row INSERT. */
static double do_w2a(void)
{
    const char *table = "users_w2a_floor";
    char ins[512];
    struct user_vals *v = calloc(W2_BATCH, sizeof *v);
    MYSQL_BIND p[8];
    int64_t affected = 0;
    if (!v)
        die("out of memory");

    recreate_users_table(table);
    snprintf(ins, sizeof ins,
             "INSERT INTO %s (name,email,age,score,balance,active,profile,created_at) "
             "VALUES (?,?,?,?,?,?,?,?)", table);
    bind_user_params(p, v);   /* row 0; the library steps by the row size */

    if (setup_only)
        return 0;
    double t0 = now_s();
    MYSQL_STMT *st = prepare(ins);
    unsigned int array_size = W2_BATCH;
    size_t row_size = sizeof *v;
    if (mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &array_size))
        die_stmt(st, "STMT_ATTR_ARRAY_SIZE");
    if (mysql_stmt_attr_set(st, STMT_ATTR_ROW_SIZE, &row_size))
        die_stmt(st, "STMT_ATTR_ROW_SIZE");
    if (mysql_stmt_bind_param(st, p))
        die_stmt(st, "mysql_stmt_bind_param");
    query("BEGIN");
    for (int64_t base = 1; base <= W2_ROWS; base += W2_BATCH) {
        for (int r = 0; r < W2_BATCH; r++)
            user_values(base + r, v + r);
        if (mysql_stmt_execute(st))
            die_stmt(st, "mysql_stmt_execute");
        affected += (int64_t)mysql_stmt_affected_rows(st);
    }
    query("COMMIT");
    double t1 = now_s();

    mysql_stmt_close(st);
    free(v);
    fprintf(stderr, "# W2a check inserted=%" PRId64 "\n", affected);
    if (affected != W2_ROWS)
        die("W2a: affected %" PRId64 ", want %d", affected, W2_ROWS);
    return t1 - t0;
}

static int64_t bench_nonce(void)
{
    const char *s = getenv("BENCH_NONCE");
    if (s && *s)
        return strtoll(s, NULL, 10);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)(ts.tv_nsec / 1000) % 1000;
}

/* W5: 5,000 UPDATEs of score by primary key in one transaction. */
static double do_w5(void)
{
    MYSQL_BIND p[2];
    double score = 0;
    int64_t id = 0, affected = 0;
    double nonce = (double)(bench_nonce() % 1000) / 1000.0 + 0.0005;

    memset(p, 0, sizeof p);
    p[0].buffer_type = MYSQL_TYPE_DOUBLE;
    p[0].buffer = &score;
    p[1].buffer_type = MYSQL_TYPE_LONGLONG;
    p[1].buffer = &id;

    if (setup_only)
        return 0;
    double t0 = now_s();
    MYSQL_STMT *st = prepare("UPDATE users SET score = ? WHERE id = ?");
    if (mysql_stmt_bind_param(st, p))
        die_stmt(st, "mysql_stmt_bind_param");
    query("BEGIN");
    for (int64_t i = 1; i <= W5_UPDATES; i++) {
        id = (i * 7919) % N_USERS + 1;
        score = (double)(i % 1000) * 1.5 + nonce;
        if (mysql_stmt_execute(st))
            die_stmt(st, "mysql_stmt_execute");
        affected += (int64_t)mysql_stmt_affected_rows(st);
    }
    query("COMMIT");
    double t1 = now_s();

    mysql_stmt_close(st);
    fprintf(stderr, "# W5 check updated=%" PRId64 "\n", affected);
    return t1 - t0;
}

struct post_row {
    int64_t    id;
    int64_t    user_id;
    char       title[201];
    char       body[1024];
    MYSQL_TIME created_at;
    int        next;          /* next post of the same user, -1 = end */
};

/* W6: users 1..1,000, then their posts in one IN (...) statement, posts
 * attached to their user through a hash on the user id. */
static double do_w6(void)
{
    struct row_binding ub;
    struct user_row *users = calloc(W6_USERS, sizeof *users);
    int *first_post = malloc(W6_USERS * sizeof *first_post);
    int nposts_cap = W6_USERS * W6_POSTS_PER * 2;
    struct post_row *posts = calloc((size_t)nposts_cap, sizeof *posts);
    /* open-addressing hash user id -> index into users[] */
    enum { HSIZE = 4096 };
    int64_t hkey[HSIZE];
    int     hval[HSIZE];
    int64_t ids[W6_USERS];
    MYSQL_BIND up, pp[W6_USERS], pr[5];
    struct post_row cur;
    unsigned long plen[5];
    my_bool pnull[5], perr[5];
    int64_t limit_id = W6_USERS;
    int nusers = 0, nposts = 0;
    long title_len = 0, attached = 0;
    if (!users || !first_post || !posts)
        die("out of memory");

    char *psql = malloc(128 + W6_USERS * 3);
    if (!psql)
        die("out of memory");
    size_t pos = (size_t)sprintf(psql,
        "SELECT id,user_id,title,body,created_at FROM posts WHERE user_id IN (");
    for (int i = 0; i < W6_USERS; i++)
        pos += (size_t)sprintf(psql + pos, "%s?", i ? "," : "");
    sprintf(psql + pos, ")");

    if (setup_only)
        return 0;
    double t0 = now_s();
    /* 1. the users */
    MYSQL_STMT *st = prepare("SELECT " SELECT_COLS " FROM users WHERE id <= ?");
    memset(&up, 0, sizeof up);
    up.buffer_type = MYSQL_TYPE_LONGLONG;
    up.buffer = &limit_id;
    if (mysql_stmt_bind_param(st, &up))
        die_stmt(st, "mysql_stmt_bind_param");
    bind_user_row(st, &ub);
    if (mysql_stmt_execute(st))
        die_stmt(st, "mysql_stmt_execute");
    if (mysql_stmt_store_result(st))
        die_stmt(st, "mysql_stmt_store_result");
    for (int i = 0; i < HSIZE; i++)
        hkey[i] = -1;
    while (fetch_row(st)) {
        if (nusers == W6_USERS)
            die("W6: too many users");
        users[nusers] = ub.row;
        first_post[nusers] = -1;
        ids[nusers] = ub.row.id;
        unsigned h = (unsigned)((uint64_t)ub.row.id * 2654435761u) % HSIZE;
        while (hkey[h] != -1)
            h = (h + 1) % HSIZE;
        hkey[h] = ub.row.id;
        hval[h] = nusers;
        nusers++;
    }
    mysql_stmt_free_result(st);
    mysql_stmt_close(st);

    /* 2. their posts */
    st = prepare(psql);
    memset(pp, 0, sizeof pp);
    for (int i = 0; i < nusers; i++) {
        pp[i].buffer_type = MYSQL_TYPE_LONGLONG;
        pp[i].buffer = &ids[i];
    }
    if (nusers != W6_USERS)
        die("W6: got %d users", nusers);
    if (mysql_stmt_bind_param(st, pp))
        die_stmt(st, "mysql_stmt_bind_param");
    memset(pr, 0, sizeof pr);
    memset(&cur, 0, sizeof cur);
    pr[0].buffer_type = MYSQL_TYPE_LONGLONG;
    pr[0].buffer = &cur.id;
    pr[1].buffer_type = MYSQL_TYPE_LONGLONG;
    pr[1].buffer = &cur.user_id;
    pr[2].buffer_type = MYSQL_TYPE_STRING;
    pr[2].buffer = cur.title;
    pr[2].buffer_length = sizeof cur.title;
    pr[3].buffer_type = MYSQL_TYPE_STRING;
    pr[3].buffer = cur.body;
    pr[3].buffer_length = sizeof cur.body;
    pr[4].buffer_type = MYSQL_TYPE_DATETIME;
    pr[4].buffer = &cur.created_at;
    for (int i = 0; i < 5; i++) {
        pr[i].length = &plen[i];
        pr[i].is_null = &pnull[i];
        pr[i].error = &perr[i];
    }
    if (mysql_stmt_bind_result(st, pr))
        die_stmt(st, "mysql_stmt_bind_result");
    if (mysql_stmt_execute(st))
        die_stmt(st, "mysql_stmt_execute");
    if (mysql_stmt_store_result(st))
        die_stmt(st, "mysql_stmt_store_result");
    while (fetch_row(st)) {
        if (nposts == nposts_cap)
            die("W6: too many posts");
        unsigned h = (unsigned)((uint64_t)cur.user_id * 2654435761u) % HSIZE;
        while (hkey[h] != cur.user_id) {
            if (hkey[h] == -1)
                die("W6: post of an unknown user");
            h = (h + 1) % HSIZE;
        }
        int u = hval[h];
        posts[nposts] = cur;
        posts[nposts].next = first_post[u];
        first_post[u] = nposts;
        nposts++;
    }
    mysql_stmt_free_result(st);
    mysql_stmt_close(st);
    /* every post title, through its user */
    for (int u = 0; u < nusers; u++)
        for (int p = first_post[u]; p != -1; p = posts[p].next) {
            title_len += (long)strlen(posts[p].title);
            attached++;
        }
    double t1 = now_s();

    fprintf(stderr, "# W6 check users=%d posts=%ld title_len=%ld\n", nusers, attached, title_len);
    free(users);
    free(first_post);
    free(posts);
    free(psql);
    return t1 - t0;
}

/* W7: 1,000 JSON lookups, LIMIT 1, keys of users 1..1,000. */
static double do_w7(void)
{
    struct row_binding b;
    MYSQL_BIND param;
    char key[64];
    unsigned long key_len = 0;
    long rows = 0;
    int64_t id_sum = 0;

    memset(&param, 0, sizeof param);
    param.buffer_type = MYSQL_TYPE_STRING;
    param.buffer = key;
    param.length = &key_len;

    if (setup_only)
        return 0;
    double t0 = now_s();
    MYSQL_STMT *st = prepare("SELECT " SELECT_COLS " FROM users "
                             "WHERE JSON_UNQUOTE(JSON_EXTRACT(profile,'$.key')) = ? LIMIT 1");
    if (mysql_stmt_bind_param(st, &param))
        die_stmt(st, "mysql_stmt_bind_param");
    bind_user_row(st, &b);
    for (int i = 1; i <= W7_LOOKUPS; i++) {
        key_len = (unsigned long)snprintf(key, sizeof key, "value_%d", i);
        if (mysql_stmt_execute(st))
            die_stmt(st, "mysql_stmt_execute");
        if (mysql_stmt_store_result(st))
            die_stmt(st, "mysql_stmt_store_result");
        while (fetch_row(st)) {
            rows++;
            id_sum += b.row.id;
        }
        if (mysql_stmt_free_result(st))
            die_stmt(st, "mysql_stmt_free_result");
    }
    double t1 = now_s();

    mysql_stmt_close(st);
    fprintf(stderr, "# W7 check rows=%ld id_sum=%" PRId64 "\n", rows, id_sum);
    return t1 - t0;
}


int main(int argc, char **argv)
{
    static const char *USAGE = "setup|B1|B2|B3|W1|W2|W2a|W3|W4|W5|W6|W7";
    if (argc != 2) {
        fprintf(stderr, "usage: %s %s\n", argv[0], USAGE);
        return 2;
    }
    const char *mode = argv[1];

    if (mysql_library_init(0, NULL, NULL))
        die("mysql_library_init failed");
    connect_db();
    setup_only = getenv("BENCH_SETUP_ONLY") && *getenv("BENCH_SETUP_ONLY");

    double secs = -1;
    if (strcmp(mode, "setup") == 0) {
        do_setup();
    } else if (strcmp(mode, "B1") == 0) {
        secs = do_b1("B1");
    } else if (strcmp(mode, "B2") == 0) {
        secs = do_b2("B2");
    } else if (strcmp(mode, "B3") == 0) {
        secs = do_insert_one("B3", "users_ins_floor", B3_INSERTS);
    } else if (strcmp(mode, "W1") == 0) {
        secs = do_insert_one("W1", "users_w1_floor", W1_INSERTS);
    } else if (strcmp(mode, "W2") == 0) {
        secs = do_w2();
    } else if (strcmp(mode, "W2a") == 0) {
        secs = do_w2a();
    } else if (strcmp(mode, "W3") == 0) {
        secs = do_b1("W3");
    } else if (strcmp(mode, "W4") == 0) {
        secs = do_b2("W4");
    } else if (strcmp(mode, "W5") == 0) {
        secs = do_w5();
    } else if (strcmp(mode, "W6") == 0) {
        secs = do_w6();
    } else if (strcmp(mode, "W7") == 0) {
        secs = do_w7();
    } else {
        fprintf(stderr, "unknown mode '%s' (want %s)\n", mode, USAGE);
        mysql_close(conn);
        return 2;
    }
    if (secs >= 0)
        printf("%s %.6f\n", mode, secs);

    mysql_close(conn);
    mysql_library_end();
    return 0;
}
