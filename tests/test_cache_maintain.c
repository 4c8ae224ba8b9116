/*
 * test_cache_maintain.c - the kernel cache under several processes, and the
 * maintenance side of cache.h: counters, tuning rows, verify, prune, clear,
 * summary, list, export and import.
 *
 * Each test works in its own temp folder (/tmp/arb-cache-maint-XXXXXX),
 * removed afterwards.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arb/cache.h"
#include "cache_fixture.h"
#include "files.h"

/* ---- Fixtures --------------------------------------------------------------- */

static void make_dir(void) { th_dir_make("arb-cache-maint"); }

TestSuite(cache_maintain, .init = make_dir, .fini = th_dir_remove);

/* Whether key i (th_cache_key) is in the cache, by arb_cache_contains. */
static int has_key(arb_cache *c, int i)
{
    char hash[ARB_CACHE_HASH_LEN];
    int found = -1;
    arb_err err = {0};
    th_cache_hash(i, hash);
    cr_assert_eq(arb_cache_contains(c, hash, &found, &err), ARB_OK, "%s", err.msg);
    return found;
}

/* ---- Several processes ------------------------------------------------------------ */

/* A child: open the shared file (which may not exist yet), put keys
 * [first, first + 50), read them back. Exit code: the first failed step. */
static int child_puts(const char *path, int first)
{
    th_warn_log w = {0};
    arb_cache *c = NULL;
    arb_err err = {0};
    if (th_cache_try_open(&c, path, 0, &w, &err) != ARB_OK)
        return 10;
    if (!arb_cache_writable(c))
        return 11;
    for (int i = first; i < first + 50; i++) {
        int inserted = -1;
        if (th_cache_put(c, i, 3000 + (size_t)i, (unsigned)i, &inserted, &err) != ARB_OK)
            return 12;
        arb_cache_stats_add(c, "ternary_fwd", "compile", 1);
    }
    for (int i = first; i < first + 50; i++) {
        char hash[ARB_CACHE_HASH_LEN];
        arb_cache_entry e;
        int found = 0;
        uint8_t expect[3200];
        th_cache_hash(i, hash);
        if (arb_cache_get(c, hash, &e, &found, &err) != ARB_OK || !found)
            return 13;
        th_fill_bytes(expect, 3000 + (size_t)i, (unsigned)i);
        if (e.cubin_len != 3000 + (size_t)i || memcmp(e.cubin, expect, e.cubin_len) != 0)
            return 14;
        arb_cache_entry_free(&e);
    }
    if (arb_cache_stats_flush(c, &err) != ARB_OK)
        return 15;
    if (w.n != 0 || arb_cache_quarantined(c) != 0)
        return 16;
    arb_cache_close(c);
    return 0;
}

Test(cache_maintain, four_processes_store_the_union)
{
    const char *path = th_in_dir("shared/kernels.sqlite");
    pid_t pids[4];
    for (int p = 0; p < 4; p++) {
        pids[p] = fork();
        cr_assert_neq(pids[p], -1);
        if (pids[p] == 0)
            _exit(child_puts(path, p * 25)); /* [0,50), [25,75), [50,100), [75,125) */
    }
    for (int p = 0; p < 4; p++) {
        int status = 0;
        cr_assert_eq(waitpid(pids[p], &status, 0), pids[p]);
        cr_assert(WIFEXITED(status), "child %d died", p);
        cr_assert_eq(WEXITSTATUS(status), 0, "child %d failed at step %d", p,
                     WEXITSTATUS(status));
    }
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    for (int i = 0; i < 125; i++)
        cr_assert_eq(has_key(c, i), 1, "key %d missing", i);
    cr_assert_eq(has_key(c, 125), 0);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM entries"), 125);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM quarantine"), 0);
    cr_assert_eq(th_sql_int(path, "SELECT value FROM stats WHERE name = 'compile'"), 200,
                 "counters from all processes sum");
}

/* ---- Counters ------------------------------------------------------------------------ */

typedef struct stat_seen {
    int n;
    char scope[16][64];
    char name[16][64];
    double value[16];
} stat_seen;

static int see_stat(void *ctx, const char *scope, const char *name, double value)
{
    stat_seen *s = ctx;
    if (s->n < 16) {
        snprintf(s->scope[s->n], 64, "%s", scope);
        snprintf(s->name[s->n], 64, "%s", name);
        s->value[s->n] = value;
    }
    s->n++;
    return 0;
}

static double stat_value(const stat_seen *s, const char *scope, const char *name)
{
    for (int i = 0; i < s->n && i < 16; i++)
        if (strcmp(s->scope[i], scope) == 0 && strcmp(s->name[i], name) == 0)
            return s->value[i];
    return -1;
}

Test(cache_maintain, stats_add_flush_each_zero)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = th_cache_open(path, &w);
    arb_cache_stats_add(c, "ternary_fwd", "miss", 1);
    arb_cache_stats_add(c, "ternary_fwd", "miss", 2);
    arb_cache_stats_add(c, "ternary_fwd", "compile_ms", 250.5);
    arb_cache_stats_add(c, "rmsnorm_fwd", "hit_writable", 4);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM stats"), 0, "buffered until a flush");
    cr_assert_eq(arb_cache_stats_flush(c, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(th_sql_int(path, "SELECT value FROM stats WHERE scope = 'ternary_fwd' AND "
                                  "name = 'miss'"),
                 3);
    arb_cache_stats_add(c, "ternary_fwd", "miss", 10);
    arb_cache_close(c); /* close flushes */

    /* A second process adds to the same counters. */
    c = th_cache_open(path, &w);
    arb_cache_stats_add(c, "ternary_fwd", "miss", 100);
    stat_seen s = {0};
    cr_assert_eq(arb_cache_stats_each(c, see_stat, &s, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(s.n, 3);
    cr_assert_float_eq(stat_value(&s, "ternary_fwd", "miss"), 113, 1e-9);
    cr_assert_float_eq(stat_value(&s, "ternary_fwd", "compile_ms"), 250.5, 1e-9);
    cr_assert_float_eq(stat_value(&s, "rmsnorm_fwd", "hit_writable"), 4, 1e-9);
    cr_assert_str_eq(s.scope[0], "rmsnorm_fwd", "sorted by scope");

    cr_assert_eq(arb_cache_stats_zero(c, &err), ARB_OK, "%s", err.msg);
    stat_seen z = {0};
    cr_assert_eq(arb_cache_stats_each(c, see_stat, &z, &err), ARB_OK);
    cr_assert_eq(z.n, 0);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM stats"), 0);
    cr_assert_eq(w.n, 0, "%s", w.msg[0]);
}

/* ---- Tuning ---------------------------------------------------------------------- */

static arb_tune_row tune_row(const char *build, int bm, double median)
{
    arb_tune_row r = {
        .kernel = "ternary_fwd", .M = 1024, .N = 4096, .K = 4096, .gs = 64,
        .precision = "fp32", .arch = "sm_90", .device = "NVIDIA H100 80GB HBM3",
        .sm_count = 132, .driver = "13.0", .nvrtc = "13.0", .build = build,
        .bm = bm, .bn = 64, .bk = 32, .tm = 4, .tn = 4, .warps = 4, .stages = 2,
        .median_us = median, .p20_us = median - 1, .p80_us = median + 1, .repeats = 50,
        .status = "ok", .reason = "", .command = "arb-bench --sweep-blocks --shape ...",
    };
    return r;
}

typedef struct tune_seen {
    int n;
    int bm[8];
    double median[8];
    int stale[8];
    char build[8][32];
    int64_t created[8];
} tune_seen;

static int see_tune(void *ctx, const arb_tune_row *r)
{
    tune_seen *s = ctx;
    if (s->n < 8) {
        s->bm[s->n] = r->bm;
        s->median[s->n] = r->median_us;
        s->stale[s->n] = r->stale;
        s->created[s->n] = r->created;
        snprintf(s->build[s->n], 32, "%s", r->build);
    }
    s->n++;
    return 0;
}

Test(cache_maintain, tuning_rows_replace_and_go_stale)
{
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = th_cache_open(th_in_dir("kernels.sqlite"), &w);
    arb_tune_row a = tune_row("build-1", 64, 20.0);
    arb_tune_row b = tune_row("build-1", 128, 15.0);
    arb_tune_row old = tune_row("build-0", 64, 30.0);
    cr_assert_eq(arb_tune_put(c, &a, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(arb_tune_put(c, &b, &err), ARB_OK);
    cr_assert_eq(arb_tune_put(c, &old, &err), ARB_OK);
    a.median_us = 18.0; /* measured again: replaces, not adds */
    cr_assert_eq(arb_tune_put(c, &a, &err), ARB_OK);

    tune_seen s = {0};
    cr_assert_eq(arb_tune_each(c, "build-1", "13.0", see_tune, &s, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(s.n, 3);
    int stale = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(s.stale[i], strcmp(s.build[i], "build-1") != 0, "row %d", i);
        stale += s.stale[i];
        cr_assert(s.created[i] > 0, "created filled in");
        if (s.bm[i] == 64 && !s.stale[i])
            cr_assert_float_eq(s.median[i], 18.0, 1e-9);
    }
    cr_assert_eq(stale, 1);

    /* Another NVRTC makes every row stale; no reference makes none. */
    tune_seen t = {0};
    cr_assert_eq(arb_tune_each(c, "build-1", "13.1", see_tune, &t, &err), ARB_OK);
    cr_assert_eq(t.stale[0] + t.stale[1] + t.stale[2], 3);
    tune_seen u = {0};
    cr_assert_eq(arb_tune_each(c, NULL, NULL, see_tune, &u, &err), ARB_OK);
    cr_assert_eq(u.stale[0] + u.stale[1] + u.stale[2], 0);

    arb_tune_row bad = tune_row(NULL, 64, 1.0);
    cr_assert_eq(arb_tune_put(c, &bad, &err), ARB_ERR_INVALID_ARG);
    arb_cache_close(c);
}

/* ---- Verify, prune, clear, summary, list ------------------------------------------- */

Test(cache_maintain, verify_finds_a_planted_bad_row)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = th_cache_open(path, &w);
    for (int i = 0; i < 6; i++)
        th_cache_put_ok(c, i, 500, (unsigned)i, 1);
    arb_cache_verify_report r;
    cr_assert_eq(arb_cache_verify(c, &r, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(r.checked, 6);
    cr_assert_eq(r.bad, 0);
    cr_assert(r.integrity_ok);
    cr_assert_str_eq(r.detail, "");

    th_sql_exec(path, "UPDATE entries SET checksum = "
                      "'0000000000000000000000000000000000000000000000000000000000000000' "
                      "WHERE M = 1026");
    cr_assert_eq(arb_cache_verify(c, &r, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(r.checked, 6);
    cr_assert_eq(r.bad, 1);
    cr_assert(r.integrity_ok);
    cr_assert_not_null(strstr(r.detail, "checksum"), "%s", r.detail);
    cr_assert_eq(arb_cache_quarantined(c), 1);
    cr_assert_eq(has_key(c, 2), 0);

    /* Quarantined: the next verify is clean again. */
    cr_assert_eq(arb_cache_verify(c, &r, &err), ARB_OK);
    cr_assert_eq(r.checked, 5);
    cr_assert_eq(r.bad, 0);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM quarantine WHERE M = 1026"), 1);
}

Test(cache_maintain, prune_evicts_oldest_first)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = th_cache_open(path, &w);
    for (int i = 0; i < 10; i++)
        th_cache_put_ok(c, i, 1000, (unsigned)i, 1);
    th_sql_exec(path, "UPDATE entries SET last_used = 5000 - M"); /* key 9 is the oldest */
    int64_t evicted = -1;
    cr_assert_eq(arb_cache_prune(c, 4000, &evicted, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(evicted, 6);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(has_key(c, i), i < 4, "key %d", i);
    cr_assert_eq(arb_cache_prune(c, 4000, &evicted, &err), ARB_OK);
    cr_assert_eq(evicted, 0);
    cr_assert_eq(arb_cache_prune(c, 0, &evicted, &err), ARB_OK);
    cr_assert_eq(evicted, 4);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM entries"), 0);
}

Test(cache_maintain, clear_keeps_tuning_unless_asked)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = th_cache_open(path, &w);
    for (int i = 0; i < 5; i++)
        th_cache_put_ok(c, i, 300, (unsigned)i, 1);
    arb_tune_row t = tune_row("b", 64, 1.0);
    cr_assert_eq(arb_tune_put(c, &t, &err), ARB_OK);
    char hash[ARB_CACHE_HASH_LEN];
    th_cache_hash(0, hash);
    cr_assert_eq(arb_cache_quarantine(c, hash, "test", &err), ARB_OK);

    cr_assert_eq(arb_cache_clear(c, 0, &err), ARB_OK, "%s", err.msg);
    arb_cache_summary s;
    cr_assert_eq(arb_cache_summarize(c, &s, &err), ARB_OK);
    cr_assert_eq(s.entries, 0);
    cr_assert_eq(s.quarantined, 0);
    cr_assert_eq(s.tune_rows, 1);
    th_cache_put_ok(c, 1, 300, 1, 1); /* usable after clear */

    cr_assert_eq(arb_cache_clear(c, 1, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(arb_cache_summarize(c, &s, &err), ARB_OK);
    cr_assert_eq(s.entries, 0);
    cr_assert_eq(s.tune_rows, 0);
    arb_cache_close(c);
}

/* A read-only layer for the layer tests: keys 0 and 1, 100 bytes each. */
static void fill_readonly_layer(const char *ro, th_warn_log *w)
{
    arb_cache *c = th_cache_open(ro, w);
    th_cache_put_ok(c, 0, 100, 0, 1);
    th_cache_put_ok(c, 1, 100, 1, 1);
    arb_cache_close(c);
}

typedef struct list_seen {
    int n;
    int layers[16];
    int64_t M[16];
    char kernel[16][32];
    size_t bytes[16];
} list_seen;

static int see_row(void *ctx, const arb_cache_listing *r)
{
    list_seen *s = ctx;
    if (s->n < 16) {
        s->layers[s->n] = r->layer;
        s->M[s->n] = r->key.M;
        s->bytes[s->n] = r->cubin_len;
        snprintf(s->kernel[s->n], 32, "%s", r->key.kernel);
    }
    s->n++;
    return 0;
}

Test(cache_maintain, summary_and_list_cover_every_layer)
{
    const char *ro = th_in_dir("ro.sqlite");
    const char *rw = th_in_dir("rw.sqlite");
    th_warn_log w = {0};
    arb_err err = {0};
    fill_readonly_layer(ro, &w);
    const char *layers[] = {ro};
    arb_cache *c = th_cache_open_layers(rw, layers, 1, 0, &w);
    th_cache_put_ok(c, 2, 700, 2, 1);
    th_cache_put_ok(c, 3, 900, 3, 1);
    th_cache_put_ok(c, 4, 1100, 4, 1);
    arb_cache_summary s;
    cr_assert_eq(arb_cache_summarize(c, &s, &err), ARB_OK, "%s", err.msg);
    cr_assert_str_eq(s.path, rw);
    cr_assert_eq(s.entries, 3);
    cr_assert_eq(s.cubin_bytes, 2700);
    cr_assert_eq(s.n_readonly, 1);
    cr_assert_eq(s.readonly_entries[0], 2);
    cr_assert(s.file_bytes > 2700);
    cr_assert_eq(s.quarantined, 0);

    list_seen l = {0};
    cr_assert_eq(arb_cache_list(c, see_row, &l, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(l.n, 5);
    cr_assert_eq(l.layers[0], 0);
    cr_assert_eq(l.layers[1], 0);
    for (int i = 2; i < 5; i++)
        cr_assert_eq(l.layers[i], ARB_CACHE_LAYER_WRITABLE, "writable layer last");
    int64_t sum = 0;
    for (int i = 2; i < 5; i++)
        sum += (int64_t)l.bytes[i];
    cr_assert_eq(sum, 2700);
    arb_cache_close(c);
}

/* ---- Export and import ------------------------------------------------------------- */

Test(cache_maintain, export_then_import_into_a_fresh_cache)
{
    const char *ro = th_in_dir("ro.sqlite");
    const char *rw = th_in_dir("rw.sqlite");
    const char *out = th_in_dir("out/exported.sqlite");
    th_warn_log w = {0};
    arb_err err = {0};
    fill_readonly_layer(ro, &w);
    const char *layers[] = {ro};
    arb_cache *c = th_cache_open_layers(rw, layers, 1, 0, &w);
    for (int i = 1; i < 6; i++) /* key 1 is in both layers */
        th_cache_put_ok(c, i, 200 + (size_t)i, (unsigned)i, 1);
    arb_tune_row t = tune_row("b1", 64, 5.0);
    cr_assert_eq(arb_tune_put(c, &t, &err), ARB_OK);
    arb_cache_close(c);
    th_sql_exec(rw, "UPDATE entries SET checksum = 'x' WHERE M = 1029"); /* key 5 is damaged */

    c = th_cache_open_layers(rw, layers, 1, 0, &w);
    cr_assert_eq(mkdir(th_in_dir("out"), 0755), 0);
    int64_t exported = -1;
    cr_assert_eq(arb_cache_export(c, out, &exported, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(exported, 5, "keys 0..4, once each; not the damaged key 5");
    arb_err err2 = {0};
    cr_assert_eq(arb_cache_export(c, out, &exported, &err2), ARB_ERR_IO);
    cr_assert_not_null(strstr(err2.msg, "exists"), "%s", err2.msg);
    arb_cache_close(c);

    /* No temporary file is left beside the export. */
    cr_assert_eq(th_sql_int(out, "SELECT count(*) FROM entries"), 5);
    cr_assert_eq(th_sql_int(out, "SELECT count(*) FROM tuning"), 1);
    cr_assert_eq(th_sql_int(out, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s/out | wc -l) -eq 1", th_dir);
    cr_assert_eq(system(cmd), 0, "a temporary file was left in %s/out", th_dir);

    const char *fresh = th_in_dir("fresh.sqlite");
    c = th_cache_open(fresh, &w);
    int64_t imported = -1;
    int64_t skipped = -1;
    cr_assert_eq(arb_cache_import(c, out, &imported, &skipped, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(imported, 5);
    cr_assert_eq(skipped, 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(has_key(c, i), 1, "key %d", i);
    cr_assert_eq(has_key(c, 5), 0);
    tune_seen s = {0};
    cr_assert_eq(arb_tune_each(c, NULL, NULL, see_tune, &s, &err), ARB_OK);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(arb_cache_import(c, out, &imported, &skipped, &err), ARB_OK);
    cr_assert_eq(imported, 0, "first writer wins: nothing new");
    cr_assert_eq(skipped, 5);
    arb_cache_close(c);
    cr_assert_eq(w.n, 0, "%s", w.msg[0]);
}

Test(cache_maintain, import_skips_damaged_rows)
{
    const char *src = th_in_dir("src.sqlite");
    th_warn_log w = {0};
    arb_err err = {0};
    arb_cache *c = th_cache_open(src, &w);
    for (int i = 0; i < 4; i++)
        th_cache_put_ok(c, i, 100, (unsigned)i, 1);
    arb_cache_close(c);
    th_sql_exec(src, "UPDATE entries SET cubin = substr(cubin, 2) WHERE M = 1024");

    c = th_cache_open(th_in_dir("dst.sqlite"), &w);
    int64_t imported = -1;
    int64_t skipped = -1;
    cr_assert_eq(arb_cache_import(c, src, &imported, &skipped, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(imported, 3);
    cr_assert_eq(skipped, 1);
    cr_assert_eq(has_key(c, 0), 0);

    arb_err e2 = {0};
    cr_assert_eq(arb_cache_import(c, th_in_dir("missing.sqlite"), &imported, &skipped, &e2),
                 ARB_ERR_NOT_FOUND);
    arb_err e3 = {0};
    FILE *f = fopen(th_in_dir("text.txt"), "w");
    fputs("hello, not a cache\n", f);
    fclose(f);
    cr_assert_eq(arb_cache_import(c, th_in_dir("text.txt"), &imported, &skipped, &e3),
                 ARB_ERR_FORMAT, "%s", e3.msg);
    arb_cache_close(c);
}

/* Allocation failures (the cache's and SQLite's, one countdown) and I/O
 * failures are looped in test_cache_faults.c. */
