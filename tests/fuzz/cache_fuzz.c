/*
 * cache_fuzz.c - libFuzzer target for the cache-entry reader: the input
 * bytes become a cache file, which is then opened every way arb opens one
 * and read through every call that reads it:
 *
 *   1. as a read-only layer (ARB_CACHE_READONLY): summary, list, get and
 *      contains of every listed hash, verify, tuning rows, export;
 *   2. as the writable layer (ARB_CACHE), which may rebuild it: the same,
 *      plus quarantine, put, counters and prune;
 *   3. as the source of an import into a fresh cache.
 *
 * Any bytes must give statuses, never a crash, a leak or undefined
 * behaviour. On top of the sanitizers it checks the cache's promises, and
 * aborts (a crash to libFuzzer) when one breaks:
 *   - opening with a writable path succeeds (a bad file degrades it or is
 *     rebuilt; only running out of memory fails);
 *   - a get never serves bytes whose SHA-256 differs from the checksum it
 *     returns;
 *   - the tuning and listing callbacks never see a NULL string;
 *   - after a put reported inserted, a get of it finds it.
 *
 * The files live in a folder of their own (on /dev/shm when there is one),
 * emptied before every input. Build and run with tests/fuzz/run-cache-fuzz.sh.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arb/cache.h"
#include "arb/sha256.h"

static char dir[256];
static char path[320];   /* the fuzzed file */
static char fresh[320];  /* a cache to import into */
static char out[320];    /* an export target */

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "cache_fuzz: broken promise: %s\n", what);
        abort();
    }
}

/* Remove every file in our folder (the cache, -wal, -shm, .lock, copies). */
static void wipe(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char name[600];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(name, sizeof(name), "%s/%s", dir, e->d_name);
        unlink(name);
    }
    closedir(d);
}

static void cleanup(void)
{
    wipe();
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/dev/shm/arb-cache-fuzz-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof(dir), "/tmp/arb-cache-fuzz-XXXXXX");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "cache_fuzz: mkdtemp: %s\n", strerror(errno));
            abort();
        }
    }
    snprintf(path, sizeof(path), "%s/fuzzed.sqlite", dir);
    snprintf(fresh, sizeof(fresh), "%s/fresh.sqlite", dir);
    snprintf(out, sizeof(out), "%s/export.sqlite", dir);
    atexit(cleanup);
    return 0;
}

static void quiet(void *ctx, const char *msg)
{
    (void)ctx;
    require(msg != NULL && strchr(msg, '\n') == NULL, "a warning is one line");
}

static void write_input(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    require(f != NULL, "the fuzz folder is writable");
    if (size)
        require(fwrite(data, 1, size, f) == size, "the input is written");
    fclose(f);
}

/* ---- Reading everything ---------------------------------------------------------- */

#define MAX_HASHES 16

typedef struct listed {
    int n;
    char hash[MAX_HASHES][ARB_CACHE_HASH_LEN];
    size_t total;
} listed;

static size_t touch(const char *s, const char *what)
{
    require(s != NULL, what);
    return strlen(s);
}

static int on_row(void *ctx, const arb_cache_listing *row)
{
    listed *l = ctx;
    size_t n = touch(row->hash, "a listed hash is a string");
    n += touch(row->key.kernel, "kernel") + touch(row->key.name_expr, "name_expr") +
         touch(row->key.precision, "precision") + touch(row->key.arch, "arch") +
         touch(row->key.nvrtc_version, "nvrtc") + touch(row->key.template_sha, "sha") +
         touch(row->key.options, "options") + touch(row->key.env, "env");
    l->total += n;
    /* Only well-formed hashes can be asked for; keep the first few. */
    if (l->n < MAX_HASHES && strlen(row->hash) == ARB_CACHE_HASH_LEN - 1 &&
        strspn(row->hash, "0123456789abcdef") == ARB_CACHE_HASH_LEN - 1) {
        snprintf(l->hash[l->n], ARB_CACHE_HASH_LEN, "%s", row->hash);
        l->n++;
    }
    return 0;
}

static int on_tune(void *ctx, const arb_tune_row *r)
{
    size_t *total = ctx;
    *total += touch(r->kernel, "tune kernel") + touch(r->precision, "tune precision") +
              touch(r->arch, "tune arch") + touch(r->device, "tune device") +
              touch(r->driver, "tune driver") + touch(r->nvrtc, "tune nvrtc") +
              touch(r->build, "tune build") + touch(r->status, "tune status") +
              touch(r->reason, "tune reason") + touch(r->command, "tune command");
    return 0;
}

static int on_stat(void *ctx, const char *scope, const char *name, double value)
{
    size_t *total = ctx;
    (void)value;
    *total += touch(scope, "stat scope") + touch(name, "stat name");
    return 0;
}

/* A hit must carry bytes that match its checksum. */
static void check_entry(const arb_cache_entry *e)
{
    char hex[ARB_CACHE_HASH_LEN];
    require(e->cubin != NULL && e->cubin_len > 0, "a hit has cubin bytes");
    require(e->lowered_name != NULL && e->compile_log != NULL, "a hit has its strings");
    arb_sha256_hex_of(e->cubin, e->cubin_len, hex);
    require(strcmp(hex, e->checksum) == 0, "a hit's bytes match its checksum");
}

static void read_all(arb_cache *c)
{
    arb_err err = {0};
    arb_cache_summary sum;
    arb_cache_summarize(c, &sum, &err);

    listed l;
    memset(&l, 0, sizeof(l));
    arb_err lerr = {0};
    arb_cache_list(c, on_row, &l, &lerr);
    for (int i = 0; i < l.n; i++) {
        arb_cache_entry e;
        int found = 0;
        arb_err gerr = {0};
        if (arb_cache_get(c, l.hash[i], &e, &found, &gerr) == ARB_OK && found)
            check_entry(&e);
        arb_cache_entry_free(&e);
        int there = 0;
        arb_err cerr = {0};
        arb_cache_contains(c, l.hash[i], &there, &cerr);
    }

    size_t total = 0;
    arb_err terr = {0};
    arb_tune_each(c, "b1", "13.0", on_tune, &total, &terr);
    arb_err serr = {0};
    arb_cache_stats_each(c, on_stat, &total, &serr);

    arb_cache_verify_report r;
    arb_err verr = {0};
    if (arb_cache_verify(c, &r, &verr) == ARB_OK) {
        require(r.bad <= r.checked, "verify counts sensibly");
        require(memchr(r.detail, '\0', sizeof(r.detail)) != NULL, "the detail is a string");
    }

    int64_t exported = 0;
    arb_err xerr = {0};
    unlink(out);
    if (arb_cache_export(c, out, &exported, &xerr) == ARB_OK)
        require(exported >= 0, "export counts sensibly");
    unlink(out);
}

static arb_cache_key fuzz_key(void)
{
    arb_cache_key k = {
        .kernel = "ternary_fwd", .name_expr = "k<1>", .M = 1, .N = 2, .K = 3, .gs = 64,
        .bm = 64, .bn = 64, .bk = 32, .tm = 4, .tn = 4, .warps = 4, .stages = 2,
        .precision = "fp32", .arch = "sm_90", .nvrtc_version = "13.0",
        .template_sha = "00", .options = "", .env = "",
    };
    return k;
}

static void write_some(arb_cache *c)
{
    static const uint8_t bytes[] = "fuzz cubin";
    arb_cache_key k = fuzz_key();
    arb_cache_entry e = {
        .cubin = (uint8_t *)bytes, .cubin_len = sizeof(bytes), .lowered_name = "k",
        .compile_log = "",
    };
    int inserted = 0;
    arb_err err = {0};
    if (arb_cache_put(c, &k, &e, &inserted, &err) == ARB_OK && inserted) {
        char hash[ARB_CACHE_HASH_LEN];
        arb_cache_entry got;
        int found = 0;
        arb_err gerr = {0};
        arb_cache_key_hash(&k, hash);
        require(arb_cache_get(c, hash, &got, &found, &gerr) == ARB_OK,
                "a get after a put succeeds");
        if (found)
            check_entry(&got);
        arb_cache_entry_free(&got);
    }
    arb_cache_stats_add(c, "fuzz", "runs", 1);
    arb_err ferr = {0};
    arb_cache_stats_flush(c, &ferr);
    int64_t evicted = 0;
    arb_err perr = {0};
    arb_cache_prune(c, 1 << 20, &evicted, &perr);
}

/* A fresh folder holding the input as the fuzzed file, then a cache opened
 * with writable layer `wpath` (may be NULL) and read-only layer `ro` (may
 * be NULL), a short busy timeout and warnings checked by quiet(). */
static arb_status open_on_input(const uint8_t *data, size_t size, const char *wpath,
                                const char *ro, arb_cache **c, arb_err *err)
{
    arb_cache_options opt;
    wipe();
    write_input(data, size);
    arb_cache_options_init(&opt);
    opt.path = wpath;
    if (ro) {
        opt.readonly_paths = &ro;
        opt.n_readonly = 1;
    }
    opt.busy_timeout_ms = 50;
    opt.warn = quiet;
    return arb_cache_open(c, &opt, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arb_cache *c = NULL;
    arb_err err = {0};

    /* 1. A read-only layer: never modified, damage is skipped. */
    arb_status st = open_on_input(data, size, NULL, path, &c, &err);
    require(st == ARB_OK || st == ARB_ERR_NOMEM, "a read-only layer that exists opens");
    if (st == ARB_OK) {
        read_all(c);
        arb_cache_close(c);
    }

    /* 2. The writable layer: checked, rebuilt when damaged, written. */
    arb_err werr = {0};
    st = open_on_input(data, size, path, NULL, &c, &werr);
    require(st == ARB_OK || st == ARB_ERR_NOMEM, "a writable path always opens");
    if (st == ARB_OK) {
        read_all(c);
        listed l;
        memset(&l, 0, sizeof(l));
        arb_err lerr = {0};
        arb_cache_list(c, on_row, &l, &lerr);
        if (l.n > 0) {
            arb_err qerr = {0};
            arb_cache_quarantine(c, l.hash[0], "fuzz", &qerr);
        }
        write_some(c);
        arb_cache_close(c);
    }

    /* 3. The source of an import. */
    arb_err ierr = {0};
    if (open_on_input(data, size, fresh, NULL, &c, &ierr) == ARB_OK) {
        int64_t imported = 0;
        int64_t skipped = 0;
        arb_err merr = {0};
        arb_cache_import(c, path, &imported, &skipped, &merr);
        require(imported >= 0 && skipped >= 0, "import counts sensibly");
        arb_cache_close(c);
    }
    return 0;
}
