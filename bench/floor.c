/*
 * bench/floor.c -- the C floor for the "core" benchmark.
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
    free(sql);

    query("ANALYZE TABLE users");
    MYSQL_RES *r = mysql_store_result(conn);  /* ANALYZE returns a result set */
    if (r)
        mysql_free_result(r);

    query("SELECT COUNT(*) FROM users");
    r = mysql_store_result(conn);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    printf("setup users=%s\n", row && row[0] ? row[0] : "?");
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
static double do_b1(void)
{
    struct row_binding b;
    MYSQL_BIND param;
    int64_t id = 0;
    uint32_t x = 42;
    long rows = 0, check = 0;

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
    fprintf(stderr, "# B1 check rows=%ld namebal_len=%ld\n", rows, check);
    if (rows != B1_LOOKUPS)
        die("B1: expected %d rows, got %ld", B1_LOOKUPS, rows);
    return t1 - t0;
}

/* B2: all users in one buffered query, every column of every row touched. */
static double do_b2(void)
{
    struct row_binding b;
    long rows = 0;
    int64_t id_sum = 0, check = 0;

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
    fprintf(stderr, "# B2 check rows=%ld id_sum=%" PRId64 " (touch=%" PRId64 ")\n",
            rows, id_sum, check);
    if (rows != N_USERS)
        die("B2: expected %d rows, got %ld", N_USERS, rows);
    return t1 - t0;
}

/* B3: 5,000 single-row INSERTs in one transaction into users_ins_floor. */
static double do_b3(void)
{
    char ddl[1024];
    struct user_vals v;
    MYSQL_BIND p[8];
    int64_t last_id = 0;

    snprintf(ddl, sizeof ddl, USERS_DDL, "users_ins_floor");
    query("DROP TABLE IF EXISTS users_ins_floor");
    query(ddl);

    memset(p, 0, sizeof p);
    memset(&v, 0, sizeof v);
    p[0].buffer_type = MYSQL_TYPE_STRING;
    p[0].buffer = v.name;        p[0].length = &v.name_len;
    p[1].buffer_type = MYSQL_TYPE_STRING;
    p[1].buffer = v.email;       p[1].length = &v.email_len;
    p[2].buffer_type = MYSQL_TYPE_LONG;
    p[2].buffer = &v.age;
    p[3].buffer_type = MYSQL_TYPE_DOUBLE;
    p[3].buffer = &v.score;
    p[4].buffer_type = MYSQL_TYPE_NEWDECIMAL;
    p[4].buffer = v.balance;     p[4].length = &v.balance_len;
    p[5].buffer_type = MYSQL_TYPE_TINY;
    p[5].buffer = &v.active;
    p[6].buffer_type = MYSQL_TYPE_STRING;
    p[6].buffer = v.profile;     p[6].length = &v.profile_len;
    p[7].buffer_type = MYSQL_TYPE_DATETIME;
    p[7].buffer = &v.created_at;

    double t0 = now_s();
    MYSQL_STMT *st = prepare(
        "INSERT INTO users_ins_floor (name,email,age,score,balance,active,profile,created_at) "
        "VALUES (?,?,?,?,?,?,?,?)");
    if (mysql_stmt_bind_param(st, p))
        die_stmt(st, "mysql_stmt_bind_param");
    query("BEGIN");
    for (int64_t i = 1; i <= B3_INSERTS; i++) {
        user_values(i, &v);
        if (mysql_stmt_execute(st))
            die_stmt(st, "mysql_stmt_execute");
        if (mysql_stmt_affected_rows(st) != 1)
            die("B3: affected_rows != 1");
        last_id = (int64_t)mysql_stmt_insert_id(st);
    }
    query("COMMIT");
    double t1 = now_s();

    mysql_stmt_close(st);
    fprintf(stderr, "# B3 check inserted=%d last_id=%" PRId64 "\n", B3_INSERTS, last_id);
    return t1 - t0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s setup|B1|B2|B3\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];

    if (mysql_library_init(0, NULL, NULL))
        die("mysql_library_init failed");
    connect_db();

    if (strcmp(mode, "setup") == 0) {
        do_setup();
    } else if (strcmp(mode, "B1") == 0) {
        printf("B1 %.6f\n", do_b1());
    } else if (strcmp(mode, "B2") == 0) {
        printf("B2 %.6f\n", do_b2());
    } else if (strcmp(mode, "B3") == 0) {
        printf("B3 %.6f\n", do_b3());
    } else {
        fprintf(stderr, "unknown mode '%s' (want setup|B1|B2|B3)\n", mode);
        mysql_close(conn);
        return 2;
    }

    mysql_close(conn);
    mysql_library_end();
    return 0;
}
