/*
 * test_cache.c - the kernel cache (cache.h): keys, round trips, first writer
 * wins, checksums and quarantine, rebuilding corrupt and foreign files,
 * degrading when the file cannot be written, layers, LRU eviction.
 *
 * Each test works in its own temp folder (/tmp/arb-cache-test-XXXXXX),
 * removed afterwards. Damage is planted through SQLite or by writing bytes,
 * the way it happens in the field.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arb/cache.h"
#include "arb/sha256.h"
#include "cache_internal.h"

/* ---- Fixtures --------------------------------------------------------------- */

static char dir[256];

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/arb-cache-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void remove_dir(void)
{
    chmod(dir, 0700);
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(cache, .init = make_dir, .fini = remove_dir);

static const char *in_dir(const char *name)
{
    static char paths[64][512]; /* a ring: callers keep at most 64 at once */
    static int next;
    char *p = paths[next++ % 64];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* Warnings delivered through opt.warn. */
typedef struct warn_log {
    int n;
    char msg[16][2048];
} warn_log;

static void capture(void *ctx, const char *msg)
{
    warn_log *w = ctx;
    if (w->n < 16)
        snprintf(w->msg[w->n], sizeof(w->msg[0]), "%s", msg);
    w->n++;
}

/* The first warning containing every needle, or NULL. */
static const char *warned(const warn_log *w, const char *a, const char *b)
{
    for (int i = 0; i < w->n && i < 16; i++)
        if (strstr(w->msg[i], a) && (!b || strstr(w->msg[i], b)))
            return w->msg[i];
    return NULL;
}

static arb_cache *open_layers(const char *path, const char *const *ro, int n_ro, int64_t max_bytes,
                              warn_log *w)
{
    arb_cache_options opt;
    arb_cache *c = NULL;
    arb_err err = {0};
    arb_cache_options_init(&opt);
    opt.path = path;
    opt.readonly_paths = ro;
    opt.n_readonly = n_ro;
    opt.max_bytes = max_bytes;
    opt.warn = capture;
    opt.warn_ctx = w;
    arb_status st = arb_cache_open(&c, &opt, &err);
    cr_assert_eq(st, ARB_OK, "arb_cache_open(%s): %s", path ? path : "(none)", err.msg);
    cr_assert_not_null(c);
    return c;
}

static arb_cache *open_at(const char *path, warn_log *w)
{
    return open_layers(path, NULL, 0, 0, w);
}

/* A key that differs per `i` (shape M). */
static arb_cache_key make_key(int i)
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

/* Deterministic bytes: `seed` picks the content. */
static void fill_bytes(uint8_t *buf, size_t n, unsigned seed)
{
    uint32_t x = 2463534242u ^ (seed * 2654435761u);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

static arb_cache_entry make_entry(uint8_t *cubin, size_t n, unsigned seed)
{
    fill_bytes(cubin, n, seed);
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

static void put_one(arb_cache *c, int key_i, size_t n, unsigned seed, int expect_inserted)
{
    uint8_t *buf = malloc(n);
    arb_cache_key k = make_key(key_i);
    arb_cache_entry e = make_entry(buf, n, seed);
    int inserted = -1;
    arb_err err = {0};
    cr_assert_eq(arb_cache_put(c, &k, &e, &inserted, &err), ARB_OK, "put: %s", err.msg);
    cr_assert_eq(inserted, expect_inserted, "put of key %d: inserted = %d", key_i, inserted);
    free(buf);
}

static void hash_of(int key_i, char hash[ARB_CACHE_HASH_LEN])
{
    arb_cache_key k = make_key(key_i);
    arb_cache_key_hash(&k, hash);
}

static int get_found(arb_cache *c, int key_i, arb_cache_entry *out)
{
    char hash[ARB_CACHE_HASH_LEN];
    arb_cache_entry e;
    int found = -1;
    arb_err err = {0};
    hash_of(key_i, hash);
    cr_assert_eq(arb_cache_get(c, hash, &e, &found, &err), ARB_OK, "get: %s", err.msg);
    if (out)
        *out = e;
    else
        arb_cache_entry_free(&e);
    return found;
}

/* Run SQL on a file through a connection of our own. */
static void sql_on(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Flip one bit of byte `offset` of a row's cubin, keeping its length. */
static void flip_cubin_byte(const char *path, const char *hash, int offset)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT cubin FROM entries WHERE hash = ?1", -1, &st,
                                    NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no row %s", hash);
    int n = sqlite3_column_bytes(st, 0);
    uint8_t *bytes = malloc((size_t)n);
    memcpy(bytes, sqlite3_column_blob(st, 0), (size_t)n);
    sqlite3_finalize(st);
    cr_assert(offset < n);
    bytes[offset] ^= 0x10;
    cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE entries SET cubin = ?1 WHERE hash = ?2", -1, &st,
                                    NULL),
                 SQLITE_OK);
    sqlite3_bind_blob(st, 1, bytes, n, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(bytes);
}

static size_t read_file(const char *path, uint8_t **out)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc((size_t)n + 1);
    cr_assert_eq(fread(*out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return (size_t)n;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* The one <path>.corrupt-* copy; its name goes to `name`. */
static int corrupt_copies(const char *path, char *name, size_t len)
{
    char pattern[600];
    glob_t g;
    snprintf(pattern, sizeof(pattern), "%s.corrupt-*", path);
    int n = 0;
    if (glob(pattern, 0, NULL, &g) == 0) {
        n = (int)g.gl_pathc;
        if (n > 0 && name)
            snprintf(name, len, "%s", g.gl_pathv[0]);
        globfree(&g);
    }
    return n;
}

/* ---- Keys ------------------------------------------------------------------- */

Test(cache, key_text_names_every_field_in_order)
{
    arb_cache_key k = make_key(0);
    char text[2048];
    size_t n = arb_cache_key_text(&k, text, sizeof(text));
    cr_assert_eq(n, strlen(text));
    static const char *const fields[] = {
        "kernel=ternary_fwd\n", "name_expr=ternary_fwd_kernel<64, 64, 32>\n", "M=1024\n",
        "N=4096\n", "K=4096\n", "gs=64\n", "bm=64\n", "bn=64\n", "bk=32\n", "tm=4\n", "tn=4\n",
        "warps=4\n", "stages=2\n", "precision=fp32\n", "arch=sm_90\n", "nvrtc_version=13.0\n",
        "template_sha=0123", "options=--gpu-architecture=sm_90 -default-device\n",
        "env=ARB_KERNEL_DEBUG=0;ARB_NVRTC_FLAGS=;\n"};
    const char *at = text;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *p = strstr(at, fields[i]);
        cr_assert_not_null(p, "field %s missing or out of order in:\n%s", fields[i], text);
        at = p + 1;
    }
    cr_assert(strncmp(text, "kernel=", 7) == 0);

    /* Like snprintf: a short buffer is cut and terminated, the full length returned. */
    char small[10];
    cr_assert_eq(arb_cache_key_text(&k, small, sizeof(small)), n);
    cr_assert_eq(strlen(small), sizeof(small) - 1);
    cr_assert_eq(arb_cache_key_text(&k, NULL, 0), n);

    /* The hash is the SHA-256 of that text. */
    char expect[65];
    char got[ARB_CACHE_HASH_LEN];
    arb_sha256_hex_of(text, n, expect);
    arb_cache_key_hash(&k, got);
    cr_assert_str_eq(got, expect);
}

Test(cache, key_hash_changes_with_every_field)
{
    enum { FIELDS = 19 };
    char hashes[FIELDS + 1][ARB_CACHE_HASH_LEN];
    arb_cache_key base = make_key(0);
    arb_cache_key_hash(&base, hashes[0]);
    for (int f = 0; f < FIELDS; f++) {
        arb_cache_key k = base;
        switch (f) {
        case 0: k.kernel = "ternary_grad_x"; break;
        case 1: k.name_expr = "ternary_fwd_kernel<64, 64, 16>"; break;
        case 2: k.M++; break;
        case 3: k.N++; break;
        case 4: k.K++; break;
        case 5: k.gs = 128; break;
        case 6: k.bm = 128; break;
        case 7: k.bn = 128; break;
        case 8: k.bk = 64; break;
        case 9: k.tm = 8; break;
        case 10: k.tn = 8; break;
        case 11: k.warps = 8; break;
        case 12: k.stages = 3; break;
        case 13: k.precision = "bf16x2"; break;
        case 14: k.arch = "sm_90a"; break;
        case 15: k.nvrtc_version = "13.1"; break;
        case 16: k.template_sha = "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; break;
        case 17: k.options = "--gpu-architecture=sm_90 -default-device -lineinfo"; break;
        case 18: k.env = "ARB_KERNEL_DEBUG=1;ARB_NVRTC_FLAGS=;"; break;
        }
        arb_cache_key_hash(&k, hashes[f + 1]);
        cr_assert_eq(strlen(hashes[f + 1]), 64);
    }
    for (int i = 0; i <= FIELDS; i++)
        for (int j = i + 1; j <= FIELDS; j++)
            cr_assert_str_neq(hashes[i], hashes[j], "flipping field %d and %d give one hash",
                              i - 1, j - 1);
}

Test(cache, key_text_cannot_be_forged_by_newlines)
{
    /* A value holding "\nM=5" must not read like another key's M line. */
    arb_cache_key a = make_key(0);
    arb_cache_key b = make_key(0);
    a.kernel = "x\nname_expr=y";
    b.kernel = "x";
    b.name_expr = "y\nname_expr=ternary_fwd_kernel<64, 64, 32>";
    char ha[ARB_CACHE_HASH_LEN];
    char hb[ARB_CACHE_HASH_LEN];
    arb_cache_key_hash(&a, ha);
    arb_cache_key_hash(&b, hb);
    cr_assert_str_neq(ha, hb);
    char text[2048];
    arb_cache_key_text(&a, text, sizeof(text));
    cr_assert_not_null(strstr(text, "kernel=x\\nname_expr=y\n"), "%s", text);
}

/* ---- Round trip, first writer ---------------------------------------------- */

Test(cache, round_trip_survives_reopen)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    uint8_t cubin[5000];
    arb_cache_key k = make_key(7);
    arb_cache_entry e = make_entry(cubin, sizeof(cubin), 7);
    int inserted = 0;
    arb_err err = {0};
    int64_t before = (int64_t)time(NULL);

    arb_cache *c = open_at(path, &w);
    cr_assert(arb_cache_writable(c));
    cr_assert_str_eq(arb_cache_path(c), path);
    cr_assert_eq(arb_cache_layer_count(c), 1);
    cr_assert_eq(arb_cache_put(c, &k, &e, &inserted, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(inserted, 1);
    arb_cache_close(c);

    c = open_at(path, &w);
    char hash[ARB_CACHE_HASH_LEN];
    arb_cache_key_hash(&k, hash);
    arb_cache_entry got;
    int found = 0;
    cr_assert_eq(arb_cache_get(c, hash, &got, &found, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(found, 1);
    cr_assert_eq(got.cubin_len, sizeof(cubin));
    cr_assert_arr_eq(got.cubin, cubin, sizeof(cubin));
    cr_assert_str_eq(got.lowered_name, e.lowered_name);
    cr_assert_str_eq(got.compile_log, e.compile_log);
    cr_assert_eq(got.block_x, 128);
    cr_assert_eq(got.block_y, 1);
    cr_assert_eq(got.block_z, 1);
    cr_assert_eq(got.shared_bytes, 16384);
    cr_assert_eq(got.registers, 96);
    cr_assert_eq(got.spill_bytes, 0);
    cr_assert_float_eq(got.compile_ms, 412.5, 1e-9);
    char sum[65];
    arb_sha256_hex_of(cubin, sizeof(cubin), sum);
    cr_assert_str_eq(got.checksum, sum);
    cr_assert_eq(got.layer, ARB_CACHE_LAYER_WRITABLE);
    cr_assert(got.created >= before && got.created <= (int64_t)time(NULL) + 1);
    cr_assert_eq(got.last_used, got.created);
    arb_cache_entry_free(&got);
    cr_assert_null(got.cubin);

    found = 0;
    cr_assert_eq(arb_cache_contains(c, hash, &found, &err), ARB_OK);
    cr_assert_eq(found, 1);
    cr_assert_eq(get_found(c, 8, NULL), 0, "another key must miss");
    arb_cache_close(c);
    cr_assert_eq(w.n, 0, "unexpected warning: %s", w.msg[0]);

    /* Every key column is queryable, so a miss can be explained in SQL. */
    cr_assert_eq(sql_int(path, "SELECT M FROM entries WHERE kernel = 'ternary_fwd' AND "
                               "arch = 'sm_90' AND nvrtc_version = '13.0' AND bk = 32"),
                 1031);
    cr_assert_eq(sql_int(path, "PRAGMA application_id"), CACHE_APPLICATION_ID);
    cr_assert_eq(sql_int(path, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
}

Test(cache, first_writer_wins)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    put_one(c, 1, 300, 1, 1);
    put_one(c, 1, 400, 2, 0); /* same key, other bytes: ignored */
    arb_cache_entry got;
    cr_assert_eq(get_found(c, 1, &got), 1);
    uint8_t expect[300];
    fill_bytes(expect, sizeof(expect), 1);
    cr_assert_eq(got.cubin_len, 300);
    cr_assert_arr_eq(got.cubin, expect, 300);
    arb_cache_entry_free(&got);
    arb_cache_close(c);
    cr_assert_eq(sql_int(path, "SELECT count(*) FROM entries"), 1);
}

Test(cache, put_rejects_bad_arguments)
{
    warn_log w = {0};
    arb_cache *c = open_at(in_dir("k.sqlite"), &w);
    arb_cache_key k = make_key(0);
    uint8_t b[4] = {1, 2, 3, 4};
    arb_cache_entry e = make_entry(b, 4, 0);
    int inserted = 0;
    arb_err err = {0};
    k.arch = NULL;
    cr_assert_eq(arb_cache_put(c, &k, &e, &inserted, &err), ARB_ERR_INVALID_ARG);
    cr_assert_not_null(strstr(err.msg, "arch"), "%s", err.msg);
    arb_err_clear(&err);
    k = make_key(0);
    e.cubin_len = 0;
    cr_assert_eq(arb_cache_put(c, &k, &e, &inserted, &err), ARB_ERR_INVALID_ARG);
    arb_cache_entry got;
    int found = 0;
    arb_err_clear(&err);
    cr_assert_eq(arb_cache_get(c, "not-a-hash", &got, &found, &err), ARB_ERR_INVALID_ARG);
    arb_cache_close(c);
}

/* ---- Checksums and quarantine ------------------------------------------------ */

Test(cache, flipped_cubin_byte_is_quarantined)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    char hash[ARB_CACHE_HASH_LEN];
    arb_cache *c = open_at(path, &w);
    put_one(c, 3, 2000, 3, 1);
    hash_of(3, hash);

    flip_cubin_byte(path, hash, 999);
    cr_assert_eq(sql_int(path, "SELECT length(cubin) FROM entries"), 2000, "length kept");

    cr_assert_eq(get_found(c, 3, NULL), 0, "a damaged row must not be returned");
    cr_assert_eq(arb_cache_quarantined(c), 1);
    const char *msg = warned(&w, "quarantine", "checksum");
    cr_assert_not_null(msg, "no warning about the quarantined row (%d warnings: %s)", w.n,
                       w.n ? w.msg[0] : "");
    cr_assert_not_null(strstr(msg, hash), "the warning names the entry: %s", msg);
    cr_assert_not_null(strstr(msg, path), "the warning names the file: %s", msg);

    /* Warned once per handle, however often it is asked for. */
    int warnings = w.n;
    cr_assert_eq(get_found(c, 3, NULL), 0);
    cr_assert_eq(w.n, warnings);

    cr_assert_eq(sql_int(path, "SELECT count(*) FROM entries"), 0);
    cr_assert_eq(sql_int(path, "SELECT count(*) FROM quarantine"), 1);
    char q[256];
    snprintf(q, sizeof(q), "SELECT cubin_len FROM quarantine WHERE hash = '%s'", hash);
    cr_assert_eq(sql_int(path, q), 2000);

    /* The caller recompiles and stores: the key works again. */
    put_one(c, 3, 2000, 3, 1);
    cr_assert_eq(get_found(c, 3, NULL), 1);
    arb_cache_close(c);
}

Test(cache, wrong_length_is_quarantined)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    put_one(c, 4, 1000, 4, 1);
    sql_on(path, "UPDATE entries SET cubin = substr(cubin, 1, 999)");
    int found = -1;
    char hash[ARB_CACHE_HASH_LEN];
    arb_err err = {0};
    hash_of(4, hash);
    cr_assert_eq(arb_cache_contains(c, hash, &found, &err), ARB_OK);
    cr_assert_eq(found, 0);
    cr_assert_not_null(warned(&w, "999 bytes", "1000"), "%s", w.n ? w.msg[0] : "(none)");
    cr_assert_eq(sql_int(path, "SELECT count(*) FROM quarantine"), 1);
    arb_cache_close(c);
}

Test(cache, caller_can_quarantine_a_row)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    char hash[ARB_CACHE_HASH_LEN];
    arb_err err = {0};
    arb_cache *c = open_at(path, &w);
    put_one(c, 5, 100, 5, 1);
    hash_of(5, hash);
    cr_assert_eq(arb_cache_quarantine(c, hash, "cuModuleLoadData failed", &err), ARB_OK);
    cr_assert_eq(arb_cache_quarantined(c), 1);
    cr_assert_eq(get_found(c, 5, NULL), 0);
    arb_cache_close(c);
    cr_assert_eq(sql_int(path, "SELECT count(*) FROM quarantine WHERE reason = "
                               "'cuModuleLoadData failed'"),
                 1);
}

/* ---- Damaged and foreign files --------------------------------------------------- */

Test(cache, garbage_file_is_copied_and_rebuilt)
{
    const char *path = in_dir("kernels.sqlite");
    uint8_t junk[4096];
    fill_bytes(junk, sizeof(junk), 99);
    write_file(path, junk, sizeof(junk));

    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    cr_assert(arb_cache_writable(c));
    const char *msg = warned(&w, "not an SQLite database", ".corrupt-");
    cr_assert_not_null(msg, "expected a rebuild warning, got %d: %s", w.n, w.n ? w.msg[0] : "");
    cr_assert_not_null(strstr(msg, path));
    cr_assert_eq(w.n, 1);

    char copy[600];
    cr_assert_eq(corrupt_copies(path, copy, sizeof(copy)), 1);
    cr_assert_not_null(strstr(msg, copy), "the warning names the copy %s: %s", copy, msg);
    uint8_t *kept = NULL;
    cr_assert_eq(read_file(copy, &kept), sizeof(junk));
    cr_assert_arr_eq(kept, junk, sizeof(junk), "the copy holds the original bytes");
    free(kept);

    put_one(c, 1, 500, 1, 1);
    cr_assert_eq(get_found(c, 1, NULL), 1);
    arb_cache_close(c);

    /* Healthy now: a second open neither warns nor copies. */
    warn_log w2 = {0};
    c = open_at(path, &w2);
    cr_assert_eq(w2.n, 0, "%s", w2.msg[0]);
    cr_assert_eq(get_found(c, 1, NULL), 1);
    arb_cache_close(c);
    cr_assert_eq(corrupt_copies(path, NULL, 0), 1);
}

Test(cache, truncated_file_is_copied_and_rebuilt)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    for (int i = 0; i < 40; i++)
        put_one(c, i, 8000, (unsigned)i, 1);
    arb_cache_close(c);

    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert(sb.st_size > 100000, "size %lld", (long long)sb.st_size);
    cr_assert_eq(truncate(path, sb.st_size / 2), 0);

    c = open_at(path, &w);
    cr_assert_not_null(warned(&w, "damaged", ".corrupt-"), "%d warnings: %s", w.n,
                       w.n ? w.msg[0] : "");
    cr_assert_eq(corrupt_copies(path, NULL, 0), 1);
    cr_assert(arb_cache_writable(c));
    cr_assert_eq(get_found(c, 0, NULL), 0, "the rebuilt cache starts empty");
    put_one(c, 0, 8000, 0, 1);
    cr_assert_eq(get_found(c, 0, NULL), 1);
    arb_cache_close(c);
    cr_assert_eq(sql_int(path, "SELECT count(*) FROM entries"), 1);
}

Test(cache, foreign_database_is_copied_and_rebuilt)
{
    const char *path = in_dir("kernels.sqlite");
    sql_on(path, "PRAGMA application_id = 1234; CREATE TABLE photos (id INTEGER PRIMARY KEY, "
                 "name TEXT); INSERT INTO photos (name) VALUES ('cat.jpg');");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    const char *msg = warned(&w, "another program", "photos");
    cr_assert_not_null(msg, "%d warnings: %s", w.n, w.n ? w.msg[0] : "");
    char copy[600];
    cr_assert_eq(corrupt_copies(path, copy, sizeof(copy)), 1);
    cr_assert_eq(sql_int(copy, "SELECT count(*) FROM photos"), 1, "the copy is intact");
    put_one(c, 2, 100, 2, 1);
    cr_assert_eq(get_found(c, 2, NULL), 1);
    arb_cache_close(c);
    cr_assert_eq(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'photos'"), 0);
    cr_assert_eq(sql_int(path, "PRAGMA application_id"), CACHE_APPLICATION_ID);
}

Test(cache, our_id_without_our_schema_is_copied_and_rebuilt)
{
    /* Our application_id beside a schema version no arb wrote (the cache
     * fuzzer's find: a negative version indexed the migration table), and
     * beside a current version with a table missing. Both are kept as a
     * .corrupt copy and rebuilt. */
    static const char *const damage[] = {
        "PRAGMA user_version = -50331650; CREATE TABLE entries (hash TEXT);",
        "PRAGMA user_version = 0; CREATE TABLE entries (hash TEXT);",
        "PRAGMA user_version = 1; CREATE TABLE entries (hash TEXT); "
        "CREATE TABLE stats (scope TEXT);",
    };
    for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
        char name[32], sql[256];
        snprintf(name, sizeof(name), "kernels-%zu.sqlite", i);
        const char *path = in_dir(name);
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; %s", CACHE_APPLICATION_ID,
                 damage[i]);
        sql_on(path, sql);
        warn_log w = {0};
        arb_cache *c = open_at(path, &w);
        cr_assert_not_null(warned(&w, "not our schema", ".corrupt-"), "case %zu: %d warnings: %s",
                           i, w.n, w.n ? w.msg[0] : "");
        cr_assert_eq(corrupt_copies(path, NULL, 0), 1, "case %zu", i);
        cr_assert(arb_cache_writable(c), "case %zu", i);
        put_one(c, 3, 100, 3, 1);
        cr_assert_eq(get_found(c, 3, NULL), 1, "case %zu", i);
        arb_cache_close(c);
        cr_assert_eq(sql_int(path, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
    }
}

Test(cache, rebuild_is_safe_under_an_open_handle)
{
    /* A keeps the file open while another process finds its pages damaged
     * and rebuilds it: A must go on working on the rebuilt file, and its
     * later writes must reach the file everyone reads (a rename would have
     * split A from the others). */
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *a = open_at(path, &w);
    for (int i = 0; i < 20; i++)
        put_one(a, 100 + i, 6000, (unsigned)i, 1);
    sql_on(path, "PRAGMA wal_checkpoint(TRUNCATE)");

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* The damage: garbage over every page but the first (the schema).
         * Written by a child: closing a descriptor on the file in this
         * process would drop A's POSIX locks. */
        struct stat sb;
        if (stat(path, &sb) != 0)
            _exit(1);
        size_t n = (size_t)sb.st_size - CACHE_PAGE_SIZE;
        uint8_t *junk = malloc(n);
        fill_bytes(junk, n, 3);
        int fd = open(path, O_WRONLY);
        if (fd < 0 || pwrite(fd, junk, n, CACHE_PAGE_SIZE) != (ssize_t)n)
            _exit(2);
        close(fd);
        free(junk);
        warn_log wb = {0};
        arb_cache_options opt;
        arb_cache *b = NULL;
        arb_err err = {0};
        arb_cache_options_init(&opt);
        opt.path = path;
        opt.warn = capture;
        opt.warn_ctx = &wb;
        if (arb_cache_open(&b, &opt, &err) != ARB_OK)
            _exit(3);
        if (get_found(b, 100, NULL) != 0) /* meets the damage, rebuilds */
            _exit(4);
        if (!warned(&wb, "damaged", ".corrupt-") || !arb_cache_writable(b))
            _exit(5);
        put_one(b, 1, 900, 1, 1);
        arb_cache_close(b);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "the rebuilding process failed at step %d",
                 WEXITSTATUS(status));

    cr_assert_eq(get_found(a, 1, NULL), 1, "A sees B's write into the rebuilt file");
    put_one(a, 2, 900, 2, 1);
    cr_assert_eq(get_found(a, 2, NULL), 1);
    arb_cache_close(a);

    warn_log w2 = {0};
    arb_cache *c = open_at(path, &w2);
    cr_assert_eq(w2.n, 0, "%s", w2.msg[0]);
    cr_assert_eq(get_found(c, 2, NULL), 1, "A's write after the rebuild is in the file");
    cr_assert_eq(get_found(c, 100, NULL), 0, "the rebuilt file started empty");
    arb_cache_close(c);
    cr_assert_eq(sql_int(path, "SELECT count(*) FROM entries"), 2);
    cr_assert_eq(corrupt_copies(path, NULL, 0), 1);
}

Test(cache, newer_schema_is_left_untouched)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    put_one(c, 1, 700, 1, 1);
    arb_cache_close(c);
    sql_on(path, "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;");

    uint8_t *before = NULL;
    size_t n_before = read_file(path, &before);
    c = open_at(path, &w);
    cr_assert_not_null(warned(&w, "newer arb", "99"), "%d warnings: %s", w.n, w.n ? w.msg[0] : "");
    cr_assert_eq(arb_cache_writable(c), 0);
    put_one(c, 2, 700, 2, 0); /* a no-op, not an error */
    cr_assert_eq(get_found(c, 1, NULL), 1, "still readable");
    arb_cache_close(c);

    uint8_t *after = NULL;
    cr_assert_eq(read_file(path, &after), n_before);
    cr_assert_arr_eq(after, before, n_before, "the file was modified");
    cr_assert_eq(corrupt_copies(path, NULL, 0), 0);
    free(before);
    free(after);
}

/* ---- Degrading ---------------------------------------------------------------- */

/* A read-only layer holding key 0. */
static const char *make_readonly_layer(const char *name)
{
    const char *ro = in_dir(name);
    warn_log w = {0};
    arb_cache *c = open_at(ro, &w);
    put_one(c, 0, 640, 0, 1);
    arb_cache_close(c);
    return ro;
}

Test(cache, uncreatable_writable_layer_degrades)
{
    const char *ro = make_readonly_layer("ro.sqlite");
    char path[600];
    if (geteuid() == 0) {
        /* root writes through chmod; /proc refuses new folders to anyone. */
        snprintf(path, sizeof(path), "/proc/arb-cache-test-%d/sub/kernels.sqlite", (int)getpid());
    } else {
        const char *locked = in_dir("locked");
        cr_assert_eq(mkdir(locked, 0500), 0);
        snprintf(path, sizeof(path), "%s/sub/kernels.sqlite", locked);
    }
    warn_log w = {0};
    const char *layers[] = {ro};
    arb_cache *c = open_layers(path, layers, 1, 0, &w);
    cr_assert_eq(arb_cache_writable(c), 0);
    cr_assert_eq(w.n, 1, "exactly one warning, got %d", w.n);
    cr_assert_not_null(strstr(w.msg[0], path), "%s", w.msg[0]);
    cr_assert_not_null(strstr(w.msg[0], "compiled in memory"), "%s", w.msg[0]);

    put_one(c, 1, 100, 1, 0);
    put_one(c, 2, 100, 2, 0);
    cr_assert_eq(w.n, 1, "puts do not warn again");
    arb_cache_entry got;
    cr_assert_eq(get_found(c, 0, &got), 1, "gets still work on the read-only layer");
    cr_assert_eq(got.layer, 0);
    arb_cache_entry_free(&got);
    arb_cache_stats_add(c, "ternary_fwd", "miss", 1);
    arb_err err = {0};
    cr_assert_eq(arb_cache_stats_flush(c, &err), ARB_OK, "%s", err.msg);
    arb_cache_close(c);
}

/* Open `path` (an existing cache holding key 0 whose folder and file we may
 * not write) and check it degrades but serves gets. Exit code = failed check. */
static int check_readonly_file(const char *path)
{
    warn_log w = {0};
    arb_cache_options opt;
    arb_cache *c = NULL;
    arb_err err = {0};
    arb_cache_options_init(&opt);
    opt.path = path;
    opt.warn = capture;
    opt.warn_ctx = &w;
    if (arb_cache_open(&c, &opt, &err) != ARB_OK)
        return 10;
    if (arb_cache_writable(c))
        return 11;
    if (w.n != 1 || !strstr(w.msg[0], path) || !strstr(w.msg[0], "compiled in memory"))
        return 12;
    uint8_t b[64];
    arb_cache_key k = make_key(5);
    arb_cache_entry e = make_entry(b, sizeof(b), 5);
    int inserted = -1;
    if (arb_cache_put(c, &k, &e, &inserted, &err) != ARB_OK || inserted != 0)
        return 13;
    char hash[ARB_CACHE_HASH_LEN];
    arb_cache_entry got;
    int found = 0;
    hash_of(0, hash);
    if (arb_cache_get(c, hash, &got, &found, &err) != ARB_OK || !found)
        return 14;
    arb_cache_entry_free(&got);
    if (w.n != 1)
        return 15;
    arb_cache_close(c);

    /* The same file as a read-only layer: a WAL file in a folder we cannot
     * write has no -shm, so this takes the immutable=1 fallback. */
    const char *layers[] = {path};
    arb_cache_options_init(&opt);
    opt.readonly_paths = layers;
    opt.n_readonly = 1;
    opt.warn = capture;
    opt.warn_ctx = &w;
    if (arb_cache_open(&c, &opt, &err) != ARB_OK)
        return 16;
    found = 0;
    if (arb_cache_get(c, hash, &got, &found, &err) != ARB_OK || !found || got.layer != 0)
        return 17;
    arb_cache_entry_free(&got);
    arb_cache_close(c);
    if (w.n != 1)
        return 18;
    return 0;
}

Test(cache, readonly_file_degrades_and_serves_gets)
{
    const char *sub = in_dir("shared");
    cr_assert_eq(mkdir(sub, 0755), 0);
    char path[600];
    snprintf(path, sizeof(path), "%s/kernels.sqlite", sub);
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    put_one(c, 0, 640, 0, 1);
    arb_cache_close(c);
    cr_assert_eq(chmod(path, 0444), 0);
    cr_assert_eq(chmod(sub, 0555), 0);
    cr_assert_eq(chmod(dir, 0755), 0);

    /* root ignores permissions: check as an unprivileged user in a child. */
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(20);
        _exit(check_readonly_file(path));
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child died");
    cr_assert_eq(WEXITSTATUS(status), 0, "check %d failed (see check_readonly_file)",
                 WEXITSTATUS(status));
}

Test(cache, missing_folder_is_created)
{
    const char *path = in_dir("a/b/c/kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    cr_assert(arb_cache_writable(c));
    cr_assert_eq(w.n, 0);
    put_one(c, 1, 10, 1, 1);
    arb_cache_close(c);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
}

Test(cache, empty_file_gets_the_schema)
{
    const char *path = in_dir("kernels.sqlite");
    write_file(path, "", 0);
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    cr_assert_eq(w.n, 0, "an empty file is new, not damaged: %s", w.msg[0]);
    cr_assert(arb_cache_writable(c));
    put_one(c, 1, 10, 1, 1);
    arb_cache_close(c);
    cr_assert_eq(corrupt_copies(path, NULL, 0), 0);
    cr_assert_eq(sql_int(path, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
    cr_assert_eq(sql_int(path, "PRAGMA page_size"), CACHE_PAGE_SIZE);
    uint8_t *bytes = NULL;
    cr_assert(read_file(path, &bytes) >= 100);
    cr_assert(bytes[18] == 2 && bytes[19] == 2, "the file is in WAL mode");
    free(bytes);
}

Test(cache, no_writable_layer_is_fine)
{
    const char *ro = make_readonly_layer("ro.sqlite");
    warn_log w = {0};
    const char *layers[] = {ro};
    arb_cache *c = open_layers(NULL, layers, 1, 0, &w);
    cr_assert_eq(arb_cache_writable(c), 0);
    cr_assert_null(arb_cache_path(c));
    cr_assert_eq(arb_cache_layer_count(c), 1);
    cr_assert_eq(w.n, 0);
    put_one(c, 3, 10, 3, 0);
    cr_assert_eq(get_found(c, 0, NULL), 1);
    arb_cache_close(c);
}

/* ---- Layers ---------------------------------------------------------------------- */

Test(cache, readonly_layers_are_consulted_first)
{
    /* Key 0 with other bytes in each layer: the read-only one must win. */
    const char *ro = make_readonly_layer("ro.sqlite");
    const char *rw = in_dir("rw.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(rw, &w);
    put_one(c, 0, 640, 77, 1);
    put_one(c, 1, 64, 1, 1);
    arb_cache_close(c);

    const char *layers[] = {ro};
    c = open_layers(rw, layers, 1, 0, &w);
    cr_assert_eq(arb_cache_layer_count(c), 2);
    char name[600];
    snprintf(name, sizeof(name), "readonly:%s", ro);
    cr_assert_str_eq(arb_cache_layer_name(c, 0), name);
    cr_assert_str_eq(arb_cache_layer_name(c, ARB_CACHE_LAYER_WRITABLE), rw);
    cr_assert_str_eq(arb_cache_layer_name(c, 1), rw);
    cr_assert_null(arb_cache_layer_name(c, 2));

    arb_cache_entry got;
    uint8_t expect[640];
    fill_bytes(expect, sizeof(expect), 0);
    cr_assert_eq(get_found(c, 0, &got), 1);
    cr_assert_eq(got.layer, 0);
    cr_assert_arr_eq(got.cubin, expect, sizeof(expect));
    arb_cache_entry_free(&got);
    cr_assert_eq(get_found(c, 1, &got), 1);
    cr_assert_eq(got.layer, ARB_CACHE_LAYER_WRITABLE);
    arb_cache_entry_free(&got);

    /* The caller rejects the read-only copy: later gets skip it. */
    char hash[ARB_CACHE_HASH_LEN];
    arb_err err = {0};
    hash_of(0, hash);
    cr_assert_eq(arb_cache_quarantine(c, hash, "driver rejected it", &err), ARB_OK);
    cr_assert_eq(get_found(c, 0, &got), 1);
    cr_assert_eq(got.layer, ARB_CACHE_LAYER_WRITABLE);
    arb_cache_entry_free(&got);
    arb_cache_close(c);
    cr_assert_eq(sql_int(ro, "SELECT count(*) FROM entries"), 1, "read-only layer untouched");
}

Test(cache, missing_readonly_layer_is_an_error)
{
    const char *missing = in_dir("nope.sqlite");
    const char *layers[] = {missing};
    arb_cache_options opt;
    arb_cache *c = (arb_cache *)1;
    arb_err err = {0};
    arb_cache_options_init(&opt);
    opt.path = in_dir("rw.sqlite");
    opt.readonly_paths = layers;
    opt.n_readonly = 1;
    cr_assert_eq(arb_cache_open(&c, &opt, &err), ARB_ERR_NOT_FOUND);
    cr_assert_null(c);
    cr_assert_not_null(strstr(err.msg, missing), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "ARB_CACHE_READONLY"), "%s", err.msg);
}

Test(cache, damaged_readonly_row_is_skipped_not_modified)
{
    const char *ro = make_readonly_layer("ro.sqlite");
    sql_on(ro, "UPDATE entries SET checksum = 'bad'; PRAGMA journal_mode = DELETE;");
    uint8_t *before = NULL;
    size_t n = read_file(ro, &before);

    const char *rw = in_dir("rw.sqlite");
    warn_log w = {0};
    const char *layers[] = {ro};
    arb_cache *c = open_layers(rw, layers, 1, 0, &w);
    cr_assert_eq(get_found(c, 0, NULL), 0);
    cr_assert_not_null(warned(&w, "skipped", "read-only"), "%s", w.n ? w.msg[0] : "(none)");
    cr_assert_eq(arb_cache_quarantined(c), 0);
    /* The writable layer takes the recompiled kernel and serves it. */
    put_one(c, 0, 640, 0, 1);
    arb_cache_entry got;
    cr_assert_eq(get_found(c, 0, &got), 1);
    cr_assert_eq(got.layer, ARB_CACHE_LAYER_WRITABLE);
    arb_cache_entry_free(&got);
    arb_cache_close(c);

    uint8_t *after = NULL;
    cr_assert_eq(read_file(ro, &after), n);
    cr_assert_arr_eq(after, before, n);
    free(before);
    free(after);
}

Test(cache, corrupt_readonly_layer_is_skipped)
{
    const char *ro = in_dir("ro.sqlite");
    uint8_t junk[8192];
    fill_bytes(junk, sizeof(junk), 5);
    write_file(ro, junk, sizeof(junk));
    warn_log w = {0};
    const char *layers[] = {ro};
    arb_cache *c = open_layers(in_dir("rw.sqlite"), layers, 1, 0, &w);
    cr_assert_not_null(warned(&w, ro, "skipping"), "%s", w.n ? w.msg[0] : "(none)");
    cr_assert_eq(get_found(c, 0, NULL), 0);
    put_one(c, 0, 10, 0, 1);
    arb_cache_close(c);
    uint8_t *after = NULL;
    cr_assert_eq(read_file(ro, &after), sizeof(junk));
    cr_assert_arr_eq(after, junk, sizeof(junk));
    cr_assert_eq(corrupt_copies(ro, NULL, 0), 0, "read-only layers are never rebuilt");
    free(after);
}

/* ---- Size ------------------------------------------------------------------------ */

Test(cache, lru_eviction_keeps_the_cap)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    for (int i = 0; i < 10; i++)
        put_one(c, i, 1000, (unsigned)i, 1);
    arb_cache_close(c);
    /* Key i was last used at 1000 + i: key 0 is the oldest. Key 9 was used
     * long ago but created later than 8, which ties on last_used. */
    sql_on(path, "UPDATE entries SET last_used = 1000 + M - 1024");

    c = open_layers(path, NULL, 0, 5500, &w);
    put_one(c, 10, 1000, 10, 1);
    for (int i = 0; i <= 5; i++)
        cr_assert_eq(get_found(c, i, NULL), 0, "key %d should be evicted", i);
    for (int i = 6; i <= 10; i++)
        cr_assert_eq(get_found(c, i, NULL), 1, "key %d should stay", i);
    arb_cache_close(c);
    cr_assert(sql_int(path, "SELECT sum(cubin_len) FROM entries") <= 5500);
    cr_assert_eq(sql_int(path, "SELECT count(*) FROM quarantine"), 0, "eviction is not quarantine");
}

Test(cache, filling_twice_the_cap_ends_under_it)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_layers(path, NULL, 0, 20000, &w);
    for (int i = 0; i < 40; i++)
        put_one(c, i, 1000, (unsigned)i, 1);
    arb_cache_summary s;
    arb_err err = {0};
    cr_assert_eq(arb_cache_summarize(c, &s, &err), ARB_OK, "%s", err.msg);
    cr_assert(s.cubin_bytes <= 20000, "%lld", (long long)s.cubin_bytes);
    cr_assert(s.cubin_bytes >= 19000);
    cr_assert_eq(s.max_bytes, 20000);
    cr_assert_eq(get_found(c, 39, NULL), 1, "the newest stays");
    arb_cache_close(c);
}

Test(cache, get_touches_last_used_coarsely)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    put_one(c, 1, 10, 1, 1);
    put_one(c, 2, 10, 2, 1);
    int64_t now = (int64_t)time(NULL);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE entries SET last_used = CASE M WHEN 1025 THEN %lld ELSE %lld END",
             (long long)(now - 7200), (long long)(now - 100));
    sql_on(path, sql);
    arb_cache_entry got;
    cr_assert_eq(get_found(c, 1, &got), 1);
    cr_assert(got.last_used >= now, "an old last_used is rewritten");
    arb_cache_entry_free(&got);
    cr_assert_eq(get_found(c, 2, &got), 1);
    cr_assert_eq(got.last_used, now - 100, "a recent last_used is left alone");
    arb_cache_entry_free(&got);
    arb_cache_close(c);
    snprintf(sql, sizeof(sql), "SELECT last_used FROM entries WHERE M = 1026");
    cr_assert_eq(sql_int(path, sql), now - 100);
}

/* ---- Busy ------------------------------------------------------------------------- */

Test(cache, held_write_lock_skips_the_store_not_the_run)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    put_one(c, 1, 100, 1, 1);
    arb_cache_close(c);

    /* Another writer holds the lock past our timeout. */
    sqlite3 *holder = NULL;
    cr_assert_eq(sqlite3_open(path, &holder), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    arb_cache_options opt;
    arb_err err = {0};
    arb_cache_options_init(&opt);
    opt.path = path;
    opt.busy_timeout_ms = 100;
    opt.warn = capture;
    opt.warn_ctx = &w;
    cr_assert_eq(arb_cache_open(&c, &opt, &err), ARB_OK, "%s", err.msg);
    put_one(c, 2, 100, 2, 0);
    cr_assert_eq(w.n, 1, "%d warnings", w.n);
    cr_assert_not_null(strstr(w.msg[0], "locked"), "%s", w.msg[0]);
    put_one(c, 3, 100, 3, 0);
    cr_assert_eq(w.n, 1, "warned once");
    cr_assert_eq(get_found(c, 1, NULL), 1, "readers are not blocked");

    cr_assert_eq(sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    cr_assert(arb_cache_writable(c), "a busy moment does not degrade the cache");
    put_one(c, 2, 100, 2, 1);
    arb_cache_close(c);
}

/* ---- Environment ------------------------------------------------------------------- */

Test(cache, network_file_systems_are_recognised)
{
    cr_assert_str_eq(cache_network_fs_name(0x6969), "NFS");
    cr_assert_str_eq(cache_network_fs_name(0xFF534D42), "CIFS");
    cr_assert_str_eq(cache_network_fs_name(0x0BD00BD0), "Lustre");
    cr_assert_str_eq(cache_network_fs_name(0x47504653), "GPFS");
    cr_assert_str_eq(cache_network_fs_name(0x00C36400), "CephFS");
    cr_assert_str_eq(cache_network_fs_name(0x01021997), "9P");
    cr_assert_str_eq(cache_network_fs_name(0x65735546), "FUSE");
    cr_assert_null(cache_network_fs_name(0xEF53)); /* ext4 */
    cr_assert_null(cache_network_fs_name(0x58465342)); /* xfs */
    cr_assert_null(cache_network_fs_name(0x01021994)); /* tmpfs */
}

typedef struct thread_arg {
    arb_cache *cache;
    int base;
    int failures;
} thread_arg;

static void *thread_body(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 30; i++) {
        uint8_t b[256];
        arb_cache_key k = make_key(a->base + i);
        arb_cache_entry e = make_entry(b, sizeof(b), (unsigned)(a->base + i));
        int inserted = 0;
        int found = 0;
        arb_err err = {0};
        char hash[ARB_CACHE_HASH_LEN];
        arb_cache_entry got;
        if (arb_cache_put(a->cache, &k, &e, &inserted, &err) != ARB_OK || !inserted)
            a->failures++;
        arb_cache_key_hash(&k, hash);
        if (arb_cache_get(a->cache, hash, &got, &found, &err) != ARB_OK || !found ||
            got.cubin_len != sizeof(b) || memcmp(got.cubin, b, sizeof(b)) != 0)
            a->failures++;
        arb_cache_entry_free(&got);
        arb_cache_stats_add(a->cache, "ternary_fwd", "miss", 1);
    }
    return NULL;
}

Test(cache, threads_share_one_handle)
{
    warn_log w = {0};
    arb_cache *c = open_at(in_dir("kernels.sqlite"), &w);
    pthread_t t[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){c, i * 1000, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, thread_body, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(args[i].failures, 0, "thread %d", i);
    }
    arb_cache_summary s;
    arb_err err = {0};
    cr_assert_eq(arb_cache_summarize(c, &s, &err), ARB_OK);
    cr_assert_eq(s.entries, 120);
    arb_cache_close(c);
}

Test(cache, handle_is_refused_after_fork)
{
    warn_log w = {0};
    arb_cache *c = open_at(in_dir("kernels.sqlite"), &w);
    put_one(c, 1, 10, 1, 1);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char hash[ARB_CACHE_HASH_LEN];
        arb_cache_entry e;
        int found = 0;
        arb_err err = {0};
        hash_of(1, hash);
        arb_status st = arb_cache_get(c, hash, &e, &found, &err);
        _exit(st == ARB_ERR_CACHE && strstr(err.msg, "fork") ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(get_found(c, 1, NULL), 1, "the parent's handle still works");
    arb_cache_close(c);
}

/* A file of schema version 1 (tuning rows without a variant) is migrated in
 * place: its entries and tuning rows survive, the rows as variant 0, and two
 * variants of one kernel at one shape then keep separate rows. */
static int count_variants(void *ctx, const arb_tune_row *r)
{
    int *seen = ctx;
    seen[r->variant ? 1 : 0]++;
    return 0;
}

Test(cache, version_1_file_is_migrated)
{
    const char *path = in_dir("kernels.sqlite");
    warn_log w = {0};
    arb_cache *c = open_at(path, &w);
    put_one(c, 1, 700, 1, 1);
    arb_cache_close(c);
    /* Turn the file back into version 1: the tuning table of that schema. */
    sql_on(path,
           "DROP TABLE tuning;"
           "CREATE TABLE tuning (id INTEGER PRIMARY KEY, kernel TEXT NOT NULL, "
           "M INTEGER NOT NULL, N INTEGER NOT NULL, K INTEGER NOT NULL, gs INTEGER NOT NULL, "
           "precision TEXT NOT NULL, arch TEXT NOT NULL, device TEXT NOT NULL, "
           "sm_count INTEGER NOT NULL, driver TEXT NOT NULL, nvrtc TEXT NOT NULL, "
           "build TEXT NOT NULL, bm INTEGER NOT NULL, bn INTEGER NOT NULL, bk INTEGER NOT NULL, "
           "tm INTEGER NOT NULL, tn INTEGER NOT NULL, warps INTEGER NOT NULL, "
           "stages INTEGER NOT NULL, median_us REAL NOT NULL, p20_us REAL NOT NULL, "
           "p80_us REAL NOT NULL, repeats INTEGER NOT NULL, status TEXT NOT NULL, "
           "reason TEXT NOT NULL, command TEXT NOT NULL, created INTEGER NOT NULL, "
           "UNIQUE (kernel, M, N, K, gs, precision, arch, device, driver, nvrtc, build, "
           "bm, bn, bk, tm, tn, warps, stages));"
           "INSERT INTO tuning (kernel, M, N, K, gs, precision, arch, device, sm_count, driver, "
           "nvrtc, build, bm, bn, bk, tm, tn, warps, stages, median_us, p20_us, p80_us, repeats, "
           "status, reason, command, created) VALUES ('relu_fwd', 100, 1, 1, 1, 'fp32', 'sm_90', "
           "'gpu', 132, '13.0', '13.0', 'b', 0, 0, 0, 0, 0, 8, 0, 5.0, 4.0, 6.0, 20, 'ok', '', "
           "'', 1);"
           "PRAGMA user_version = 1;");
    c = open_at(path, &w);
    cr_assert_eq(arb_cache_writable(c), 1, "%d warnings: %s", w.n, w.n ? w.msg[0] : "");
    cr_assert_eq(sql_int(path, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
    cr_assert_eq(get_found(c, 1, NULL), 1, "the entry did not survive the migration");
    arb_tune_row v1 = {.kernel = "relu_fwd", .M = 100, .N = 1, .K = 1, .gs = 1, .variant = 1,
                       .precision = "fp32", .arch = "sm_90", .device = "gpu", .sm_count = 132,
                       .driver = "13.0", .nvrtc = "13.0", .build = "b", .warps = 8,
                       .median_us = 7.0, .p20_us = 6.0, .p80_us = 8.0, .repeats = 20,
                       .status = "ok", .reason = "", .command = ""};
    arb_err err = {0};
    cr_assert_eq(arb_tune_put(c, &v1, &err), ARB_OK, "%s", err.msg);
    int seen[2] = {0, 0};
    cr_assert_eq(arb_tune_each(c, NULL, NULL, count_variants, seen, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(seen[0], 1, "the version-1 row is gone or not variant 0");
    cr_assert_eq(seen[1], 1, "variant 1 replaced variant 0's row");
    arb_cache_close(c);
}
