/*
 * test_cache_faults.c - the kernel cache under injected faults, the way
 * SQLite tests itself (sqlite.org/testing.html):
 *
 *   - I/O errors: the "arb-fault" VFS shim (cache/src/fault_vfs.c) fails the
 *     n-th xWrite, xSync or xTruncate, once or from then on, with
 *     SQLITE_IOERR or SQLITE_FULL;
 *   - allocation failures: the n-th allocation of the cache (and, in the
 *     combined loops, of SQLite too) fails, once or from then on;
 *   - other processes holding locks past the busy timeout, rebuilding the
 *     file under an open handle, a read-only file, a missing folder.
 *
 * Each loop runs an operation with fault n = 1, 2, ... until a round runs
 * with no fault injected. Every round must end in ARB_OK or an expected
 * error status, with no crash and no leak (run the sanitizer build), and the
 * file must then open clean (no warning), pass arb_cache_verify, hold every
 * entry a put reported stored with the bytes that were stored, and never
 * have been taken for a damaged file (no <path>.corrupt-* copy).
 *
 * Each loop prints one line "cache-faults: ..." with its figures.
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arb/cache.h"
#include "cache_fixture.h"
#include "cache_internal.h"
#include "cache_testing.h"
#include "files.h"
#include "proc.h"

/* ---- Fixtures --------------------------------------------------------------- */

/* The loops sync thousands of small files: on a RAM file system (/dev/shm)
 * where there is one, so that they measure the cache, not the disk. */
static void make_dir(void)
{
    if (!th_dir_make_in("/dev/shm", "arb-cache-faults"))
        th_dir_make("arb-cache-faults");
}

static void remove_dir(void)
{
    cache_testing_fail_alloc(0, 0);
    cache_testing_vfs_uninstall();
    th_dir_remove();
}

TestSuite(cache_faults, .init = make_dir, .fini = remove_dir, .timeout = 120);

/* What the current round is, for failure messages. */
static char round_name[256];

/* Warnings into a th_warn_log; with ARB_FAULT_TRACE=1 each is printed too,
 * with its round. */
static void capture(void *ctx, const char *msg)
{
    if (getenv("ARB_FAULT_TRACE"))
        fprintf(stderr, "[%s] warning: %s\n", round_name, msg);
    th_warn_capture(ctx, msg);
}

static arb_status open_cache(arb_cache **c, const char *path, int busy_ms, th_warn_log *w,
                             arb_err *err)
{
    arb_cache_options opt;
    arb_cache_options_init(&opt);
    opt.path = path;
    opt.busy_timeout_ms = busy_ms;
    opt.warn = capture;
    opt.warn_ctx = w;
    *c = NULL;
    return arb_cache_open(c, &opt, err);
}

static arb_cache *open_clean(const char *path, th_warn_log *w)
{
    arb_cache *c = NULL;
    arb_err err = {0};
    cr_assert_eq(open_cache(&c, path, 0, w, &err), ARB_OK, "[%s] open %s: %s", round_name, path,
                 err.msg);
    return c;
}

/* Key i's cubin: its length and bytes follow from i. Keys 0, 100, 200, ...
 * are 17 KB (an overflow chain past a 16 KB page), the rest a few hundred
 * bytes (small, since the sanitizer build hashes every byte at -O0). */
static size_t cubin_len_of(int i)
{
    return i % 100 == 0 ? 17000 + (size_t)i : 300 + 7 * (size_t)(i % 100);
}

/* Put key i (th_cache_key) with its cubin: the status; *inserted as put says. */
static arb_status put_key(arb_cache *c, int i, int *inserted, arb_err *err)
{
    return th_cache_put(c, i, cubin_len_of(i), (unsigned)i, inserted, err);
}

/* Get key i: the status; *found as get says, and a found entry must carry
 * exactly key i's bytes. */
static arb_status get_key(arb_cache *c, int i, int *found, arb_err *err)
{
    char hash[ARB_CACHE_HASH_LEN];
    arb_cache_entry e;
    th_cache_hash(i, hash);
    *found = -1;
    arb_status st = arb_cache_get(c, hash, &e, found, err);
    if (st == ARB_OK && *found) {
        size_t n = cubin_len_of(i);
        uint8_t *want = malloc(n);
        th_fill_bytes(want, n, (unsigned)i);
        cr_assert_eq(e.cubin_len, n, "[%s] key %d: %zu bytes, not %zu", round_name, i,
                     e.cubin_len, n);
        cr_assert_eq(memcmp(e.cubin, want, n), 0, "[%s] key %d: wrong bytes", round_name, i);
        free(want);
    }
    arb_cache_entry_free(&e);
    return st;
}

/* The keys that must be in the file: reported stored by a put. */
typedef struct ledger {
    int n;
    int key[64];
} ledger;

static void ledger_add(ledger *l, int key)
{
    for (int i = 0; i < l->n; i++)
        if (l->key[i] == key)
            return;
    cr_assert(l->n < 64);
    l->key[l->n++] = key;
}

static void ledger_remove(ledger *l, int key)
{
    for (int i = 0; i < l->n; i++)
        if (l->key[i] == key) {
            l->key[i] = l->key[--l->n];
            return;
        }
}

/* Remove a cache file and everything SQLite and the cache keep beside it. */
static void remove_cache_files(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal", ".lock"};
    char name[700];
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(name, sizeof(name), "%s%s", path, suffix[i]);
        unlink(name);
    }
}

/* Run arb-cache (the built program) with `args`, its output discarded; its
 * exit status. */
static int run_tool(const char *const *args)
{
    static const char tool[] = ARB_BINARY_DIR "/tools/arb-cache";
    const char *argv[16] = {tool};
    for (int n = 1; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    int code = th_reap(th_spawn(&(th_cmd){.prog = tool, .argv = argv}));
    cr_assert_lt(code, 128, "arb-cache died");
    cr_assert_neq(code, 127, "cannot run %s", tool);
    return code;
}

/* After a round: the file opens clean, verifies, and holds the ledger's
 * keys with their bytes. `damaged` (or -1) is a key planted damaged that
 * verify may still find. Returns the entries checked. */
static int check_file(const char *path, const ledger *l, int damaged)
{
    th_warn_log w = {0};
    arb_err err = {0};
    cr_assert_eq(th_corrupt_copies(path, NULL, 0), 0, "[%s] a fault was taken for a damaged file",
                 round_name);
    arb_cache *c = open_clean(path, &w);
    cr_assert_eq(w.n, 0, "[%s] reopening warned: %s", round_name, w.msg[0]);
    cr_assert(arb_cache_writable(c), "[%s] the reopened cache is not writable", round_name);
    arb_cache_verify_report r;
    cr_assert_eq(arb_cache_verify(c, &r, &err), ARB_OK, "[%s] verify: %s", round_name, err.msg);
    cr_assert(r.integrity_ok, "[%s] integrity: %s", round_name, r.detail);
    if (damaged >= 0 && r.bad == 1) {
        char hash[ARB_CACHE_HASH_LEN];
        th_cache_hash(damaged, hash);
        cr_assert_not_null(strstr(r.detail, hash), "[%s] verify: %s", round_name, r.detail);
    } else {
        cr_assert_eq(r.bad, 0, "[%s] verify: %s", round_name, r.detail);
    }
    for (int i = 0; i < l->n; i++) {
        int found = 0;
        cr_assert_eq(get_key(c, l->key[i], &found, &err), ARB_OK, "[%s] get: %s", round_name,
                     err.msg);
        cr_assert_eq(found, 1, "[%s] key %d was reported stored but is gone", round_name,
                     l->key[i]);
    }
    arb_cache_close(c);
    cr_assert_eq(w.n, 0, "[%s] checking warned: %s", round_name, w.msg[0]);
    return l->n;
}

/* ---- I/O faults ----------------------------------------------------------------- */

typedef struct io_combo {
    unsigned ops;
    int always;
    int rc;
    const char *name;
} io_combo;

static const io_combo io_combos[] = {
    {CACHE_FAULT_WRITE, 0, SQLITE_IOERR, "write IOERR once"},
    {CACHE_FAULT_WRITE, 1, SQLITE_IOERR, "write IOERR always"},
    {CACHE_FAULT_WRITE, 1, SQLITE_FULL, "write FULL always"},
    {CACHE_FAULT_SYNC, 0, SQLITE_IOERR, "sync IOERR once"},
    {CACHE_FAULT_SYNC, 1, SQLITE_IOERR, "sync IOERR always"},
    {CACHE_FAULT_TRUNCATE, 0, SQLITE_IOERR, "truncate IOERR once"},
    {CACHE_FAULT_TRUNCATE, 1, SQLITE_IOERR, "truncate IOERR always"},
    {CACHE_FAULT_WRITE | CACHE_FAULT_SYNC | CACHE_FAULT_TRUNCATE, 0, SQLITE_IOERR,
     "any IOERR once"},
};

/* The fault of the current round, armed by the scenario when it is ready. */
static const io_combo *io_now;
static long io_n;

static void io_arm(void)
{
    /* SQLite opens files by their full, resolved path. */
    static char real[PATH_MAX];
    if (!real[0] && !realpath(th_dir, real))
        snprintf(real, sizeof(real), "%s", th_dir);
    cache_testing_vfs_arm(io_now->ops, io_n, io_now->always, io_now->rc, real);
}

static void io_disarm(void)
{
    cache_testing_vfs_arm(0, 0, 0, SQLITE_IOERR, NULL);
}

/* A clean cache holding keys 0..n-1, as a byte image to restore before each
 * round (the file is checkpointed and has no -wal when closed). */
typedef struct base_image {
    uint8_t *bytes;
    size_t len;
    ledger keys;
} base_image;

static void make_base(const char *path, int first, int n, base_image *b)
{
    th_warn_log w = {0};
    arb_err err = {0};
    remove_cache_files(path);
    arb_cache *c = open_clean(path, &w);
    memset(&b->keys, 0, sizeof(b->keys));
    for (int i = first; i < first + n; i++) {
        int inserted = 0;
        cr_assert_eq(put_key(c, i, &inserted, &err), ARB_OK, "%s", err.msg);
        cr_assert_eq(inserted, 1);
        ledger_add(&b->keys, i);
    }
    arb_cache_close(c);
    b->len = th_file_read(path, &b->bytes);
}

static void restore_base(const char *path, const base_image *b)
{
    remove_cache_files(path);
    th_file_write(path, b->bytes, b->len);
}

/* Scenarios: each restores its own starting state, arms the fault when
 * ready, runs, disarms, and records what must now be in the file. */
typedef struct scenario {
    const char *name;
    char path[512];
    base_image base;
    ledger expect; /* filled by the run */
    int damaged;   /* a key planted damaged, or -1 */
    void (*run)(struct scenario *s);
    void (*settle)(struct scenario *s); /* after the round, before the check; may be NULL */
} scenario;

static void expect_ok(arb_status st, const arb_err *err, const char *what)
{
    cr_assert_eq(st, ARB_OK, "[%s] %s: %s (%s)", round_name, what, arb_status_name(st),
                 err->msg);
}

/* A new file: created under the fault. */
static void sc_create(scenario *s)
{
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = NULL;
    int inserted = 0;
    int found = 0;
    remove_cache_files(s->path);
    memset(&s->expect, 0, sizeof(s->expect));
    io_arm();
    expect_ok(open_cache(&c, s->path, 0, &w, &err), &err, "open");
    expect_ok(put_key(c, 100, &inserted, &err), &err, "put");
    if (inserted)
        ledger_add(&s->expect, 100);
    expect_ok(get_key(c, 100, &found, &err), &err, "get");
    cr_assert_eq(found, inserted, "[%s] a stored key is found, an unstored one is not",
                 round_name);
    expect_ok(put_key(c, 101, &inserted, &err), &err, "put");
    if (inserted)
        ledger_add(&s->expect, 101);
    arb_cache_close(c);
    io_disarm();
    cr_assert(w.n <= 1, "[%s] warned %d times (first: %s)", round_name, w.n, w.msg[0]);
}

/* Puts into an existing file, then the checkpoint at close. */
static void sc_put(scenario *s)
{
    th_warn_log w = {0};
    arb_err err = {0};
    int inserted = 0;
    int found = 0;
    restore_base(s->path, &s->base);
    s->expect = s->base.keys;
    arb_cache *c = open_clean(s->path, &w);
    io_arm();
    for (int i = 100; i < 103; i++) {
        expect_ok(put_key(c, i, &inserted, &err), &err, "put");
        if (inserted)
            ledger_add(&s->expect, i);
        expect_ok(get_key(c, i, &found, &err), &err, "get");
        cr_assert_eq(found, inserted, "[%s] key %d: found %d after inserted %d", round_name, i,
                     found, inserted);
    }
    expect_ok(get_key(c, 1, &found, &err), &err, "get");
    cr_assert_eq(found, 1, "[%s] a fault in a write costs no read", round_name);
    arb_cache_close(c);
    io_disarm();
    cr_assert(w.n <= 1, "[%s] warned %d times (first: %s)", round_name, w.n, w.msg[0]);
}

/* Gets that write: a coarse last_used update, and a damaged row moved to
 * quarantine. */
static void sc_get(scenario *s)
{
    th_warn_log w = {0};
    arb_err err = {0};
    int found = 0;
    restore_base(s->path, &s->base);
    s->expect = s->base.keys;
    ledger_remove(&s->expect, s->damaged);
    arb_cache *c = open_clean(s->path, &w);
    io_arm();
    expect_ok(get_key(c, 0, &found, &err), &err, "get");
    cr_assert_eq(found, 1, "[%s] a failed last_used update costs no hit", round_name);
    expect_ok(get_key(c, s->damaged, &found, &err), &err, "get of the damaged row");
    cr_assert_eq(found, 0, "[%s] the damaged row is never served", round_name);
    expect_ok(get_key(c, 2, &found, &err), &err, "get");
    cr_assert_eq(found, 1);
    char hash[ARB_CACHE_HASH_LEN];
    th_cache_hash(3, hash);
    expect_ok(arb_cache_contains(c, hash, &found, &err), &err, "contains");
    cr_assert_eq(found, 1);
    arb_cache_close(c);
    io_disarm();
}

/* The maintenance calls that write. They report failures as errors. */
static void expect_maint(arb_status st, const arb_err *err, const char *what)
{
    cr_assert(st == ARB_OK || st == ARB_ERR_CACHE || st == ARB_ERR_IO || st == ARB_ERR_READONLY,
              "[%s] %s: %s (%s)", round_name, what, arb_status_name(st), err->msg);
}

static void sc_maintain(scenario *s)
{
    th_warn_log w = {0};
    const char *out = th_in_dir("export.sqlite");
    restore_base(s->path, &s->base);
    remove_cache_files(out);
    s->expect = s->base.keys;
    arb_cache *c = open_clean(s->path, &w);
    io_arm();

    arb_err e1 = {0};
    arb_cache_stats_add(c, "ternary_fwd", "miss", 1);
    expect_maint(arb_cache_stats_flush(c, &e1), &e1, "stats flush");
    arb_err e2 = {0};
    arb_tune_row row = {
        .kernel = "ternary_fwd", .M = 1, .N = 2, .K = 3, .gs = 64, .precision = "fp32",
        .arch = "sm_90", .device = "H100", .sm_count = 132, .driver = "13.0", .nvrtc = "13.0",
        .build = "b1", .bm = 64, .bn = 64, .bk = 32, .tm = 4, .tn = 4, .warps = 4, .stages = 2,
        .median_us = 10, .p20_us = 9, .p80_us = 11, .repeats = 5, .status = "ok",
    };
    expect_maint(arb_tune_put(c, &row, &e2), &e2, "tune put");
    arb_err e3 = {0};
    char hash[ARB_CACHE_HASH_LEN];
    th_cache_hash(2, hash);
    expect_maint(arb_cache_quarantine(c, hash, "test", &e3), &e3, "quarantine");
    ledger_remove(&s->expect, 2); /* gone or not: no longer promised */
    arb_err e4 = {0};
    arb_cache_verify_report r;
    arb_status st = arb_cache_verify(c, &r, &e4);
    expect_maint(st, &e4, "verify");
    if (st == ARB_OK)
        cr_assert(r.integrity_ok && r.bad == 0, "[%s] verify: %s", round_name, r.detail);
    arb_err e5 = {0};
    int64_t exported = 0;
    st = arb_cache_export(c, out, &exported, &e5);
    expect_maint(st, &e5, "export");
    arb_err e6 = {0};
    int64_t evicted = -1;
    expect_maint(arb_cache_prune(c, (int64_t)1 << 40, &evicted, &e6), &e6, "prune");
    arb_cache_close(c);
    io_disarm();

    /* An export is all or nothing: a complete file, or none and no temporary. */
    char pattern[600];
    snprintf(pattern, sizeof(pattern), "%s/.export.sqlite.tmp-*", th_dir);
    cr_assert_eq(th_glob_count(pattern, NULL, 0), 0, "[%s] export left its temporary file",
                 round_name);
    struct stat sb;
    if (st == ARB_OK) {
        ledger all = s->expect;
        check_file(out, &all, -1);
    } else {
        cr_assert_neq(stat(out, &sb), 0, "[%s] a failed export left %s (%s)", round_name, out,
                      e5.msg);
    }
}

/* Clear: one transaction, then VACUUM and a WAL truncation. */
static void sc_clear(scenario *s)
{
    th_warn_log w = {0};
    arb_err err = {0};
    restore_base(s->path, &s->base);
    arb_cache *c = open_clean(s->path, &w);
    io_arm();
    arb_status st = arb_cache_clear(c, 1, &err);
    expect_maint(st, &err, "clear");
    arb_cache_close(c);
    io_disarm();
    int64_t left = th_sql_int(s->path, "SELECT count(*) FROM entries");
    if (st == ARB_OK) {
        cr_assert_eq(left, 0, "[%s] clear said ok but left %lld entries", round_name,
                     (long long)left);
        memset(&s->expect, 0, sizeof(s->expect));
    } else {
        cr_assert_eq(left, s->base.keys.n, "[%s] a failed clear is all or nothing (%lld left)",
                     round_name, (long long)left);
        s->expect = s->base.keys;
    }
}

/* A file with damaged pages, rebuilt under the fault when a get meets the
 * damage. */
static void sc_rebuild(scenario *s)
{
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = NULL;
    int inserted = 0;
    int found = 0;
    restore_base(s->path, &s->base);
    memset(&s->expect, 0, sizeof(s->expect));
    io_arm();
    expect_ok(open_cache(&c, s->path, 0, &w, &err), &err, "open");
    expect_ok(get_key(c, 1, &found, &err), &err, "get");
    cr_assert_eq(found, 0, "[%s] nothing is served from damaged pages", round_name);
    expect_ok(put_key(c, 100, &inserted, &err), &err, "put");
    if (inserted)
        ledger_add(&s->expect, 100);
    expect_ok(get_key(c, 100, &found, &err), &err, "get");
    cr_assert_eq(found, inserted, "[%s] a stored key is found", round_name);
    arb_cache_close(c);
    io_disarm();
}

/* Whatever the fault left (damaged, rebuilt, half-made), a clean session
 * finishes the job: after it the file must be a clean cache. */
static void settle_rebuild(scenario *s)
{
    th_warn_log w = {0};
    arb_err err = {0};
    int found = 0;
    arb_cache *c = open_clean(s->path, &w);
    cr_assert_eq(get_key(c, 1, &found, &err), ARB_OK, "[%s] %s", round_name, err.msg);
    cr_assert_eq(found, 0, "[%s] the damaged rows are gone", round_name);
    cr_assert(arb_cache_writable(c), "[%s] a clean session rebuilds: %s", round_name, w.msg[0]);
    arb_cache_close(c);
    char pattern[600];
    snprintf(pattern, sizeof(pattern), "%s.corrupt-*", s->path);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
        globfree(&g);
    }
}

typedef struct loop_figures {
    long rounds;
    long faults;
    long verified;
} loop_figures;

/* Run scenario `s` under every combination, n = 1, 2, ... until clean. */
static loop_figures io_loops(scenario *s)
{
    loop_figures total = {0, 0, 0};
    cr_assert_eq(cache_testing_vfs_install(), SQLITE_OK);
    for (size_t k = 0; k < sizeof(io_combos) / sizeof(io_combos[0]); k++) {
        io_now = &io_combos[k];
        int clean = 0;
        for (io_n = 1; io_n <= 400 && !clean; io_n++) {
            snprintf(round_name, sizeof(round_name), "%s, %s, n = %ld", s->name, io_now->name,
                     io_n);
            s->run(s);
            long faults = cache_testing_vfs_faults();
            clean = faults == 0;
            if (s->settle)
                s->settle(s);
            total.rounds++;
            total.faults += faults;
            total.verified += check_file(s->path, &s->expect, s->damaged);
        }
        cr_assert(clean, "[%s] the operation never ran without a fault", round_name);
    }
    cr_assert(total.faults > 0, "[%s] no fault ever reached the cache's files", s->name);
    cache_testing_vfs_uninstall();
    cr_assert_eq(run_tool((const char *[]){"--cache", s->path, "verify", NULL}), 0,
                 "arb-cache verify failed on %s", s->path);
    fprintf(stderr,
            "cache-faults: I/O %s: %ld rounds, %ld faults injected, %ld entries verified, "
            "0 lost\n",
            s->name, total.rounds, total.faults, total.verified);
    return total;
}

static void io_test(const char *name, void (*run)(scenario *), int n_base, int damaged)
{
    scenario s = {.name = name, .damaged = damaged, .run = run};
    snprintf(s.path, sizeof(s.path), "%s", th_in_dir("kernels.sqlite"));
    if (n_base > 0) {
        make_base(s.path, 0, n_base, &s.base);
        if (damaged >= 0) {
            /* Key 0 is due a last_used update; `damaged` has a flipped byte. */
            char sql[512];
            char hash[ARB_CACHE_HASH_LEN];
            th_cache_hash(damaged, hash);
            snprintf(sql, sizeof(sql),
                     "UPDATE entries SET last_used = last_used - 7200 WHERE M = 1024;"
                     "UPDATE entries SET cubin = zeroblob(length(cubin)) WHERE hash = '%s';"
                     "PRAGMA wal_checkpoint(TRUNCATE);",
                     hash);
            th_sql_exec(s.path, sql);
            free(s.base.bytes);
            s.base.len = th_file_read(s.path, &s.base.bytes);
        }
    }
    io_loops(&s);
    free(s.base.bytes);
}

Test(cache_faults, io_faults_while_creating_a_cache)
{
    io_test("create", sc_create, 0, -1);
}

Test(cache_faults, io_faults_during_put)
{
    io_test("put", sc_put, 4, -1);
}

Test(cache_faults, io_faults_during_get)
{
    io_test("get", sc_get, 5, 4);
}

Test(cache_faults, io_faults_during_maintenance)
{
    io_test("maintenance", sc_maintain, 4, -1);
}

Test(cache_faults, io_faults_during_clear)
{
    io_test("clear", sc_clear, 4, -1);
}

Test(cache_faults, io_faults_while_rebuilding_a_damaged_file)
{
    /* The base image: a cache whose pages after the first are garbage. */
    char path[512];
    snprintf(path, sizeof(path), "%s", th_in_dir("kernels.sqlite"));
    base_image b;
    make_base(path, 0, 6, &b);
    free(b.bytes);
    th_cache_damage_pages(path);
    scenario s = {.name = "rebuild", .damaged = -1, .run = sc_rebuild, .settle = settle_rebuild};
    snprintf(s.path, sizeof(s.path), "%s", path);
    s.base.len = th_file_read(path, &s.base.bytes);
    io_loops(&s);
    free(s.base.bytes);
}

/* ---- Allocation failures ------------------------------------------------------------ */

/* SQLite's allocations ask the cache's countdown first, so that one
 * countdown covers both (install before SQLite is used in this process). */
static sqlite3_mem_methods real_mem;

static void *oom_malloc(int n)
{
    return cache_testing_alloc_fault() ? NULL : real_mem.xMalloc(n);
}

static void *oom_realloc(void *p, int n)
{
    return cache_testing_alloc_fault() ? NULL : real_mem.xRealloc(p, n);
}

static void install_sqlite_oom(void)
{
    static int installed;
    if (installed++)
        return;
    sqlite3_shutdown();
    cr_assert_eq(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem), SQLITE_OK);
    sqlite3_mem_methods mem = real_mem;
    mem.xMalloc = oom_malloc;
    mem.xRealloc = oom_realloc;
    cr_assert_eq(sqlite3_config(SQLITE_CONFIG_MALLOC, &mem), SQLITE_OK);
    cr_assert_eq(sqlite3_initialize(), SQLITE_OK);
}

static void expect_ok_or_nomem(arb_status st, const arb_err *err, const char *what)
{
    cr_assert(st == ARB_OK || st == ARB_ERR_NOMEM, "[%s] %s: %s (%s)", round_name, what,
              arb_status_name(st), err->msg);
}

static int count_row(void *ctx, const arb_cache_listing *row)
{
    (void)row;
    (*(int *)ctx)++;
    return 0;
}

static int count_stat(void *ctx, const char *scope, const char *name, double value)
{
    (void)scope;
    (void)name;
    (void)value;
    (*(int *)ctx)++;
    return 0;
}

static int count_tune(void *ctx, const arb_tune_row *row)
{
    (void)row;
    (*(int *)ctx)++;
    return 0;
}

/* One session under the armed countdown; returns with the handle closed.
 * `fresh`: the file is created by the open. `full`: every call of the API,
 * else only open, put, get, contains and close. */
static void oom_session(scenario *s, long n, int always, int fresh, int full)
{
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = NULL;
    int inserted = 0;
    int found = 0;
    char hash[ARB_CACHE_HASH_LEN];

    if (fresh) {
        remove_cache_files(s->path);
        memset(&s->expect, 0, sizeof(s->expect));
    } else {
        restore_base(s->path, &s->base);
        s->expect = s->base.keys;
    }
    cache_testing_fail_alloc(n, always);
    arb_status st = open_cache(&c, s->path, 0, &w, &err);
    expect_ok_or_nomem(st, &err, "open");
    if (st != ARB_OK) {
        cr_assert_null(c);
        cache_testing_fail_alloc(0, 0);
        return;
    }
    for (int i = full ? 100 : 101; i < 102; i++) {
        arb_err e = {0};
        st = put_key(c, i, &inserted, &e);
        expect_ok_or_nomem(st, &e, "put");
        if (st == ARB_OK && inserted)
            ledger_add(&s->expect, i);
        arb_err g = {0};
        st = get_key(c, i, &found, &g);
        expect_ok_or_nomem(st, &g, "get");
    }
    if (!fresh) {
        arb_err e = {0};
        st = get_key(c, 1, &found, &e);
        expect_ok_or_nomem(st, &e, "get");
        th_cache_hash(2, hash);
        arb_err e2 = {0};
        expect_ok_or_nomem(arb_cache_contains(c, hash, &found, &e2), &e2, "contains");
    }
    if (!full) {
        arb_cache_close(c);
        cache_testing_fail_alloc(0, 0);
        return;
    }
    int rows = 0;
    arb_err e3 = {0};
    expect_ok_or_nomem(arb_cache_list(c, count_row, &rows, &e3), &e3, "list");
    arb_cache_summary sum;
    arb_err e4 = {0};
    expect_ok_or_nomem(arb_cache_summarize(c, &sum, &e4), &e4, "summarize");
    arb_cache_verify_report r;
    arb_err e5 = {0};
    st = arb_cache_verify(c, &r, &e5);
    expect_ok_or_nomem(st, &e5, "verify");
    if (st == ARB_OK)
        cr_assert(r.integrity_ok && r.bad == 0, "[%s] verify: %s", round_name, r.detail);
    arb_cache_stats_add(c, "ternary_fwd", "hit_writable", 1);
    arb_cache_stats_add(c, "ternary_fwd", "compile_ms", 12.5);
    arb_err e6 = {0};
    expect_ok_or_nomem(arb_cache_stats_flush(c, &e6), &e6, "stats flush");
    int stats = 0;
    arb_err e7 = {0};
    expect_ok_or_nomem(arb_cache_stats_each(c, count_stat, &stats, &e7), &e7, "stats each");
    arb_tune_row row = {
        .kernel = "ternary_fwd", .M = 1, .N = 2, .K = 3, .gs = 64, .precision = "fp32",
        .arch = "sm_90", .device = "H100", .sm_count = 132, .driver = "13.0", .nvrtc = "13.0",
        .build = "b1", .bm = 64, .bn = 64, .bk = 32, .tm = 4, .tn = 4, .warps = 4, .stages = 2,
        .median_us = 10, .p20_us = 9, .p80_us = 11, .repeats = 5, .status = "ok",
    };
    arb_err e8 = {0};
    expect_ok_or_nomem(arb_tune_put(c, &row, &e8), &e8, "tune put");
    int tunes = 0;
    arb_err e9 = {0};
    expect_ok_or_nomem(arb_tune_each(c, "b1", "13.0", count_tune, &tunes, &e9), &e9,
                       "tune each");
    if (!fresh) {
        th_cache_hash(3, hash);
        arb_err e10 = {0};
        expect_ok_or_nomem(arb_cache_quarantine(c, hash, "test", &e10), &e10, "quarantine");
        ledger_remove(&s->expect, 3);
    }
    arb_cache_close(c);
    cache_testing_fail_alloc(0, 0);
}

/* Loop the session with allocation n = 1, 2, ... failing until it runs
 * clean; with `sqlite`, SQLite's allocations count too (thousands of them:
 * those loops run the short session). */
static void oom_loops(const char *name, int fresh, int always, int sqlite)
{
    scenario s = {.name = name, .damaged = -1};
    snprintf(s.path, sizeof(s.path), "%s", th_in_dir("kernels.sqlite"));
    loop_figures total = {0, 0, 0};
    if (sqlite)
        install_sqlite_oom();
    if (!fresh)
        make_base(s.path, sqlite ? 1 : 0, 5, &s.base); /* small cubins only with SQLite's */
    sqlite3_int64 mem_before = -1;
    int clean = 0;
    long n;
    for (n = 1; n <= 100000 && !clean; n++) {
        snprintf(round_name, sizeof(round_name), "OOM %s, %s, n = %ld", name,
                 always ? "always" : "once", n);
        if (getenv("ARB_FAULT_TRACE"))
            fprintf(stderr, "%s\n", round_name);
        oom_session(&s, n, always, fresh, !sqlite);
        long faults = cache_testing_alloc_faults();
        clean = faults == 0;
        total.rounds++;
        total.faults += faults;
        total.verified += check_file(s.path, &s.expect, -1);
        /* Every connection is closed: SQLite's memory is back where it was. */
        sqlite3_int64 mem = sqlite3_memory_used();
        if (mem_before < 0)
            mem_before = mem;
        cr_assert_eq(mem, mem_before, "[%s] SQLite holds %lld bytes more than after round 1",
                     round_name, (long long)(mem - mem_before));
    }
    cr_assert(clean, "[%s] the session never ran without a fault", round_name);
    cr_assert(total.rounds > 10, "the loop never reached an allocation (%ld rounds)",
              total.rounds);
    fprintf(stderr,
            "cache-faults: OOM %s (%s%s): %ld rounds, %ld allocation failures injected, %ld "
            "entries verified, 0 lost\n",
            name, always ? "always" : "once",
            sqlite ? ", open/put/get/close, SQLite's allocations too" : ", every call",
            total.rounds, total.faults, total.verified);
    free(s.base.bytes);
}

Test(cache_faults, cache_allocation_failure_once)
{
    oom_loops("session", 0, 0, 0);
    oom_loops("create", 1, 0, 0);
}

Test(cache_faults, cache_allocation_failure_always)
{
    oom_loops("session", 0, 1, 0);
    oom_loops("create", 1, 1, 0);
}

Test(cache_faults, cache_and_sqlite_allocation_failure_once)
{
    oom_loops("session", 0, 0, 1);
    oom_loops("create", 1, 0, 1);
}

/* (Creating a file under "always" adds little to the session loop's error
 * paths and costs 2000 rounds: left out.) */
Test(cache_faults, cache_and_sqlite_allocation_failure_always)
{
    oom_loops("session", 0, 1, 1);
}

/* ---- Locks held by other processes ---------------------------------------------------- */

/* A child that runs `sql` on `path` with its own connection, says so on
 * the pipe, and then holds whatever it took until it is killed. */
static pid_t hold_in_child(const char *path, const char *sql)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(fds[0]);
        sqlite3 *db = NULL;
        char ok = 'n';
        if (sqlite3_open(path, &db) == SQLITE_OK) {
            sqlite3_busy_timeout(db, 5000);
            if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
                ok = 'y';
        }
        if (write(fds[1], &ok, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    char ok = 0;
    cr_assert_eq(read(fds[0], &ok, 1), 1, "the lock holder died");
    close(fds[0]);
    cr_assert_eq(ok, 'y', "the lock holder could not run: %s", sql);
    return pid;
}

static void kill_child(pid_t pid)
{
    kill(pid, SIGKILL);
    th_reap(pid);
}

static int64_t elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

Test(cache_faults, write_lock_held_by_a_killed_process)
{
    /* Another process takes the write lock, writes half a transaction, and
     * holds it past our busy timeout: the put waits about that long, warns,
     * stores nothing and fails nothing; reads go on. Then the holder is
     * killed (kill -9) mid-transaction: its half is never seen, and the
     * next put stores. */
    const char *path = th_in_dir("kernels.sqlite");
    base_image b;
    make_base(path, 0, 2, &b);
    pid_t holder = hold_in_child(path, "BEGIN IMMEDIATE; INSERT INTO stats VALUES "
                                       "('partial', 'row', 1);");
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = NULL;
    cr_assert_eq(open_cache(&c, path, 300, &w, &err), ARB_OK, "%s", err.msg);
    cr_assert(arb_cache_writable(c));
    int inserted = -1;
    int found = -1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(put_key(c, 10, &inserted, &err), ARB_OK, "%s", err.msg);
    int64_t waited = elapsed_ms(&t0);
    cr_assert_eq(inserted, 0);
    cr_assert(waited >= 250 && waited < 5000, "the put waited %lld ms for a 300 ms timeout",
              (long long)waited);
    cr_assert_eq(w.n, 1, "%d warnings", w.n);
    cr_assert_not_null(strstr(w.msg[0], "locked"), "%s", w.msg[0]);
    cr_assert_eq(get_key(c, 1, &found, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(found, 1, "readers are not blocked by a writer");
    cr_assert_eq(put_key(c, 11, &inserted, &err), ARB_OK);
    cr_assert_eq(w.n, 1, "warned once");

    kill_child(holder);
    cr_assert(arb_cache_writable(c), "a busy moment does not degrade the cache");
    cr_assert_eq(put_key(c, 10, &inserted, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(inserted, 1, "the lock died with its holder");
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM stats WHERE scope = 'partial'"), 0,
                 "the killed holder's half transaction is not in the file");
    ledger l = b.keys;
    ledger_add(&l, 10);
    snprintf(round_name, sizeof(round_name), "write lock held");
    check_file(path, &l, -1);
    free(b.bytes);
}

Test(cache_faults, exclusive_lock_held_past_the_timeout)
{
    /* An exclusive holder keeps even readers out: the open waits about the
     * timeout, warns once, and the handle works as a miss-only cache; no
     * row is left behind by us. */
    const char *path = th_in_dir("kernels.sqlite");
    base_image b;
    make_base(path, 0, 2, &b);
    pid_t holder = hold_in_child(path, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; "
                                       "INSERT INTO stats VALUES ('partial', 'row', 1);");
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = NULL;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(open_cache(&c, path, 300, &w, &err), ARB_OK, "%s", err.msg);
    int64_t waited = elapsed_ms(&t0);
    cr_assert(waited < 5000, "the open waited %lld ms for a 300 ms timeout", (long long)waited);
    cr_assert_eq(arb_cache_writable(c), 0);
    cr_assert_eq(w.n, 1, "%d warnings, first: %s", w.n, w.msg[0]);
    cr_assert_not_null(strstr(w.msg[0], "locked"), "%s", w.msg[0]);
    int found = -1;
    int inserted = -1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(get_key(c, 1, &found, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(found, 0, "a locked-out cache is a miss: the kernel is compiled in memory");
    cr_assert_eq(put_key(c, 10, &inserted, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(inserted, 0);
    cr_assert(elapsed_ms(&t0) < 5000, "a degraded cache does not wait again");
    cr_assert_eq(w.n, 1, "warned once");
    arb_cache_close(c);

    kill_child(holder);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM stats WHERE scope = 'partial'"), 0);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM entries"), 2, "no partial row");
    snprintf(round_name, sizeof(round_name), "exclusive lock held");
    check_file(path, &b.keys, -1);
    free(b.bytes);
}

Test(cache_faults, rebuild_under_a_reader_in_a_transaction)
{
    /* A reader holds a read transaction (a WAL snapshot) while this process
     * finds the pages damaged and rebuilds the file in place: the rebuild
     * goes through SQLite's locks, the reader's snapshot stays consistent,
     * and once it ends its transaction it sees the rebuilt file. */
    const char *path = th_in_dir("kernels.sqlite");
    base_image b;
    make_base(path, 0, 6, &b);
    th_cache_damage_pages(path);
    int to_child[2];
    int from_child[2];
    cr_assert_eq(pipe(to_child), 0);
    cr_assert_eq(pipe(from_child), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(to_child[1]);
        close(from_child[0]);
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char step = 0;
        int code = 0;
        if (sqlite3_open(path, &db) != SQLITE_OK)
            code = 1;
        sqlite3_busy_timeout(db, 5000);
        if (!code && sqlite3_exec(db, "BEGIN; SELECT count(*) FROM sqlite_master;", NULL, NULL,
                                  NULL) != SQLITE_OK)
            code = 2;
        char ready = code ? 'n' : 'y';
        if (write(from_child[1], &ready, 1) != 1 || read(to_child[0], &step, 1) != 1)
            _exit(3);
        if (!code && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            code = 4;
        if (!code && sqlite3_prepare_v2(db, "SELECT count(*) FROM entries", -1, &st, NULL) !=
                         SQLITE_OK)
            code = 5;
        if (!code && (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1))
            code = 6; /* the rebuilt file holds the one entry stored after the rebuild */
        sqlite3_finalize(st);
        sqlite3_close(db);
        _exit(code);
    }
    close(to_child[0]);
    close(from_child[1]);
    char ready = 0;
    cr_assert_eq(read(from_child[0], &ready, 1), 1);
    cr_assert_eq(ready, 'y', "the reader could not start its transaction");

    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = NULL;
    cr_assert_eq(open_cache(&c, path, 2000, &w, &err), ARB_OK, "%s", err.msg);
    int found = -1;
    int inserted = -1;
    cr_assert_eq(get_key(c, 1, &found, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(found, 0);
    cr_assert(arb_cache_writable(c), "rebuilt under the reader: %s", w.msg[0]);
    cr_assert_eq(th_corrupt_copies(path, NULL, 0), 1, "the damaged bytes were kept aside");
    cr_assert_eq(put_key(c, 50, &inserted, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(inserted, 1);
    cr_assert_eq(write(to_child[1], "g", 1), 1);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "the reader failed at step %d", WEXITSTATUS(status));
    arb_cache_close(c);
    close(to_child[1]);
    close(from_child[0]);
    ledger l = {0};
    ledger_add(&l, 50);
    char copy[600];
    cr_assert_geq(th_corrupt_copies(path, copy, sizeof(copy)), 1);
    unlink(copy);
    snprintf(round_name, sizeof(round_name), "rebuild under a reader");
    check_file(path, &l, -1);
    free(b.bytes);
}

Test(cache_faults, damaged_file_held_by_a_writer_is_rebuilt_later)
{
    /* The file is damaged but another process holds the write lock past our
     * timeout: we cannot rebuild now, so we degrade (a miss, a warning, no
     * failure). Once the holder is gone the next open rebuilds it. */
    const char *path = th_in_dir("kernels.sqlite");
    base_image b;
    make_base(path, 0, 6, &b);
    th_cache_damage_pages(path);
    pid_t holder = hold_in_child(path, "BEGIN IMMEDIATE; PRAGMA user_version;");
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = NULL;
    cr_assert_eq(open_cache(&c, path, 300, &w, &err), ARB_OK, "%s", err.msg);
    int found = -1;
    int inserted = -1;
    cr_assert_eq(get_key(c, 1, &found, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(found, 0);
    cr_assert_eq(arb_cache_writable(c), 0, "could not have rebuilt under a held write lock");
    cr_assert_eq(w.n, 1, "%d warnings, first: %s", w.n, w.msg[0]);
    cr_assert_not_null(strstr(w.msg[0], "cannot be rebuilt now"), "%s", w.msg[0]);
    cr_assert_eq(put_key(c, 60, &inserted, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(inserted, 0);
    arb_cache_close(c);
    kill_child(holder);

    th_warn_log w2 = {0};
    c = open_clean(path, &w2);
    cr_assert_eq(get_key(c, 1, &found, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(found, 0);
    cr_assert(arb_cache_writable(c), "rebuilt once free: %s", w2.msg[0]);
    cr_assert_not_null(strstr(w2.msg[0], "rebuilt"), "%s", w2.msg[0]);
    cr_assert_eq(put_key(c, 60, &inserted, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(inserted, 1);
    arb_cache_close(c);
    cr_assert_eq(run_tool((const char *[]){"--cache", path, "verify", NULL}), 0);
    free(b.bytes);
}

Test(cache_faults, readonly_file_in_a_writable_folder_is_never_modified)
{
    /* The file is read-only, its folder is not (SQLite can make the -shm
     * there): the cache degrades to reads, warns once, and the file's bytes
     * do not change. arb-cache verify reads it and passes. */
    const char *path = th_in_dir("kernels.sqlite");
    base_image b;
    make_base(path, 0, 3, &b);
    cr_assert_eq(chmod(path, 0444), 0);
    cr_assert_eq(chmod(th_dir, 0777), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* root ignores permissions: check as an unprivileged user. */
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(20);
        th_warn_log w = {0};
        arb_err err = {0};
        arb_cache *c = NULL;
        int found = 0;
        int inserted = -1;
        if (open_cache(&c, path, 0, &w, &err) != ARB_OK)
            _exit(1);
        if (arb_cache_writable(c) || w.n != 1 || !strstr(w.msg[0], "read-only"))
            _exit(2);
        for (int i = 0; i < 3; i++) {
            char hash[ARB_CACHE_HASH_LEN];
            arb_cache_entry e;
            th_cache_hash(i, hash);
            if (arb_cache_get(c, hash, &e, &found, &err) != ARB_OK || !found)
                _exit(3);
            arb_cache_entry_free(&e);
        }
        if (put_key(c, 9, &inserted, &err) != ARB_OK || inserted != 0)
            _exit(4);
        arb_cache_stats_add(c, "ternary_fwd", "miss", 1);
        arb_cache_verify_report r;
        if (arb_cache_verify(c, &r, &err) != ARB_OK || !r.integrity_ok || r.bad || r.checked != 3)
            _exit(5);
        arb_cache_close(c);
        if (w.n != 1)
            _exit(6);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the reader died");
    cr_assert_eq(WEXITSTATUS(status), 0, "check %d failed", WEXITSTATUS(status));
    uint8_t *after = NULL;
    size_t n = th_file_read(path, &after);
    cr_assert(n == b.len && memcmp(after, b.bytes, n) == 0, "the read-only file was modified");
    free(after);
    free(b.bytes);
}
