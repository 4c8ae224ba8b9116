/*
 * cache_fixture.c - keys, entries, opening and SQL for the cache suites
 * (see cache_fixture.h).
 */
#include "cache_fixture.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <glob.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache_internal.h" /* CACHE_PAGE_SIZE */

/* ---- keys and entries ------------------------------------------------------- */

arb_cache_key th_cache_key(int i)
{
    arb_cache_key k = {
        .kernel = "ternary_fwd",
        .name_expr = "ternary_fwd_kernel<64, 64, 32>",
        .M = 1024 + i,
        .N = 4096,
        .K = 4096,
        .gs = 64,
        .bm = 64, .bn = 64, .bk = 32, .tm = 4, .tn = 4, .warps = 4, .stages = 2,
        .precision = "fp32",
        .arch = "sm_90",
        .nvrtc_version = "13.0",
        .template_sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        .options = "--gpu-architecture=sm_90 -default-device",
        .env = "ARB_KERNEL_DEBUG=0;ARB_NVRTC_FLAGS=;",
    };
    return k;
}

void th_cache_hash(int i, char hash[ARB_CACHE_HASH_LEN])
{
    arb_cache_key k = th_cache_key(i);
    arb_cache_key_hash(&k, hash);
}

void th_fill_bytes(uint8_t *buf, size_t n, unsigned seed)
{
    uint32_t x = 2463534242u ^ (seed * 2654435761u);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

arb_cache_entry th_cache_entry(uint8_t *cubin, size_t n, unsigned seed)
{
    th_fill_bytes(cubin, n, seed);
    arb_cache_entry e = {
        .cubin = cubin,
        .cubin_len = n,
        .lowered_name = "_Z18ternary_fwd_kernelILi64ELi64ELi32EEvPKfS1_Pf",
        .block_x = 128, .block_y = 1, .block_z = 1,
        .shared_bytes = 16384, .registers = 96, .spill_bytes = 0,
        .compile_log = "ptxas info: 96 registers",
        .compile_ms = 412.5,
    };
    return e;
}

arb_status th_cache_put(arb_cache *c, int i, size_t n, unsigned seed, int *inserted, arb_err *err)
{
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return ARB_ERR_NOMEM;
    arb_cache_key k = th_cache_key(i);
    arb_cache_entry e = th_cache_entry(buf, n, seed);
    *inserted = -1;
    arb_status st = arb_cache_put(c, &k, &e, inserted, err);
    free(buf);
    return st;
}

void th_cache_put_ok(arb_cache *c, int i, size_t n, unsigned seed, int expect_inserted)
{
    int inserted = -1;
    arb_err err = {0};
    cr_assert_eq(th_cache_put(c, i, n, seed, &inserted, &err), ARB_OK, "put: %s", err.msg);
    cr_assert_eq(inserted, expect_inserted, "put of key %d: inserted = %d", i, inserted);
}

int th_cache_found(arb_cache *c, int i, arb_cache_entry *out)
{
    char hash[ARB_CACHE_HASH_LEN];
    arb_cache_entry e;
    int found = -1;
    arb_err err = {0};
    th_cache_hash(i, hash);
    cr_assert_eq(arb_cache_get(c, hash, &e, &found, &err), ARB_OK, "get: %s", err.msg);
    if (out)
        *out = e;
    else
        arb_cache_entry_free(&e);
    return found;
}

/* ---- opening, with the warnings kept --------------------------------------- */

void th_warn_capture(void *ctx, const char *msg)
{
    th_warn_log *w = ctx;
    if (w->n < 16)
        snprintf(w->msg[w->n], sizeof(w->msg[0]), "%s", msg);
    w->n++;
}

const char *th_warned(const th_warn_log *w, const char *a, const char *b)
{
    for (int i = 0; i < w->n && i < 16; i++)
        if (strstr(w->msg[i], a) && (!b || strstr(w->msg[i], b)))
            return w->msg[i];
    return NULL;
}

arb_cache *th_cache_open_layers(const char *path, const char *const *ro, int n_ro,
                                int64_t max_bytes, th_warn_log *w)
{
    arb_cache_options opt;
    arb_cache *c = NULL;
    arb_err err = {0};
    arb_cache_options_init(&opt);
    opt.path = path;
    opt.readonly_paths = ro;
    opt.n_readonly = n_ro;
    opt.max_bytes = max_bytes;
    if (w) {
        opt.warn = th_warn_capture;
        opt.warn_ctx = w;
    }
    arb_status st = arb_cache_open(&c, &opt, &err);
    cr_assert_eq(st, ARB_OK, "arb_cache_open(%s): %s", path ? path : "(none)", err.msg);
    cr_assert_not_null(c);
    return c;
}

arb_cache *th_cache_open(const char *path, th_warn_log *w)
{
    return th_cache_open_layers(path, NULL, 0, 0, w);
}

arb_status th_cache_try_open(arb_cache **c, const char *path, int busy_ms, th_warn_log *w,
                             arb_err *err)
{
    arb_cache_options opt;
    arb_cache_options_init(&opt);
    opt.path = path;
    opt.busy_timeout_ms = busy_ms;
    if (w) {
        opt.warn = th_warn_capture;
        opt.warn_ctx = w;
    }
    *c = NULL;
    return arb_cache_open(c, &opt, err);
}

/* ---- the file, through SQLite ------------------------------------------------ */

void th_sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK, "open %s", path);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
}

int64_t th_sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "open %s",
                 path);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void th_cache_damage_pages(const char *path)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        struct stat sb;
        if (stat(path, &sb) != 0 || sb.st_size <= CACHE_PAGE_SIZE)
            _exit(1);
        size_t n = (size_t)sb.st_size - CACHE_PAGE_SIZE;
        uint8_t *junk = malloc(n);
        th_fill_bytes(junk, n, 77);
        int fd = open(path, O_WRONLY);
        if (fd < 0 || pwrite(fd, junk, n, CACHE_PAGE_SIZE) != (ssize_t)n)
            _exit(2);
        close(fd);
        free(junk);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "damaging %s failed", path);
}

int th_glob_count(const char *pattern, char *first, size_t len)
{
    glob_t g;
    int n = 0;
    if (glob(pattern, 0, NULL, &g) == 0) {
        n = (int)g.gl_pathc;
        if (n > 0 && first)
            snprintf(first, len, "%s", g.gl_pathv[0]);
        globfree(&g);
    }
    return n;
}

int th_corrupt_copies(const char *path, char *name, size_t len)
{
    char pattern[600];
    snprintf(pattern, sizeof(pattern), "%s.corrupt-*", path);
    return th_glob_count(pattern, name, len);
}
