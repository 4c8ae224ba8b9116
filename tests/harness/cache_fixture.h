/*
 * cache_fixture.h - what the kernel cache suites share (test_cache*.c,
 * test_engine.c): numbered keys and entries with known bytes, opening a
 * cache that records its warnings, and SQL on a cache file through a
 * connection of the test's own (to plant damage and read what is stored).
 *
 * Key i differs from key j in the shape M (1024 + i) only; entry bytes
 * follow from a seed, so a test can rebuild what it stored and compare.
 * Helpers named *_ok, th_cache_found and the SQL ones abort the test on
 * failure; th_cache_put only reports, for forked children.
 */
#ifndef ARB_TEST_CACHE_FIXTURE_H
#define ARB_TEST_CACHE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "arb/cache.h"

/* ---- keys and entries ------------------------------------------------------- */

/* Key i: a ternary_fwd kernel at M = 1024 + i, every other field fixed. */
arb_cache_key th_cache_key(int i);
void th_cache_hash(int i, char hash[ARB_CACHE_HASH_LEN]);
/* n deterministic bytes (xorshift32); `seed` picks the content. */
void th_fill_bytes(uint8_t *buf, size_t n, unsigned seed);
/* An entry whose cubin is `cubin`, filled with n bytes of `seed`, and fixed
 * metadata (block 128x1x1, 16384 shared bytes, 96 registers, no spills,
 * a compile log, 412.5 ms). */
arb_cache_entry th_cache_entry(uint8_t *cubin, size_t n, unsigned seed);

/* Put key i with n bytes of `seed`: arb_cache_put's status, *inserted as it
 * says. Asserts nothing. */
arb_status th_cache_put(arb_cache *c, int i, size_t n, unsigned seed, int *inserted, arb_err *err);
/* The same, asserting the put succeeds with `inserted` as expected. */
void th_cache_put_ok(arb_cache *c, int i, size_t n, unsigned seed, int expect_inserted);
/* Get key i, asserting the get succeeds: whether it was found. The entry
 * goes to *out (free it) or, with out NULL, is freed here. */
int th_cache_found(arb_cache *c, int i, arb_cache_entry *out);

/* ---- opening, with the warnings kept --------------------------------------- */

/* Warnings delivered through opt.warn: all counted, the first 16 kept. */
typedef struct th_warn_log {
    int n;
    char msg[16][2048];
} th_warn_log;

/* An arb_cache_warn_fn; ctx is a th_warn_log. */
void th_warn_capture(void *ctx, const char *msg);
/* The first kept warning that contains `a` and, unless NULL, `b`; or NULL. */
const char *th_warned(const th_warn_log *w, const char *a, const char *b);

/* Open a cache with writable layer `path` (NULL: none), read-only layers
 * ro[0..n_ro), cap max_bytes (0: none), warnings into w (NULL: stderr).
 * Aborts the test when the open fails. */
arb_cache *th_cache_open_layers(const char *path, const char *const *ro, int n_ro,
                                int64_t max_bytes, th_warn_log *w);
/* Just the writable layer `path`. */
arb_cache *th_cache_open(const char *path, th_warn_log *w);
/* The same with a busy timeout (ms; 0: the default), asserting nothing (for
 * forked children and expected failures): arb_cache_open's status. */
arb_status th_cache_try_open(arb_cache **c, const char *path, int busy_ms, th_warn_log *w,
                             arb_err *err);

/* ---- the file, through SQLite ------------------------------------------------ */

/* Run `sql` (any number of statements) on the file at `path`. */
void th_sql_exec(const char *path, const char *sql);
/* The first column of the first row of a query (read-only), or -1. */
int64_t th_sql_int(const char *path, const char *sql);

/* Overwrite every page of a cache file but the first (the schema) with
 * garbage, from a child process: closing a descriptor on the file in this
 * process would drop this process's POSIX locks on it. */
void th_cache_damage_pages(const char *path);

/* How many files match a glob pattern; the first goes to `first` (len
 * bytes) unless NULL. */
int th_glob_count(const char *pattern, char *first, size_t len);
/* The <path>.corrupt-* copies a rebuild left; the first's name to `name`. */
int th_corrupt_copies(const char *path, char *name, size_t len);

#endif /* ARB_TEST_CACHE_FIXTURE_H */
