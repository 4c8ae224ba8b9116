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
#include "cache_fixture.h"
#include "cache_internal.h"
#include "files.h"

/* ---- Fixtures --------------------------------------------------------------- */

static void make_dir(void) { th_dir_make("arb-cache-test"); }

TestSuite(cache, .init = make_dir, .fini = th_dir_remove);

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

/* ---- Keys ------------------------------------------------------------------- */

Test(cache, key_text_names_every_field_in_order)
{
    arb_cache_key k = th_cache_key(0);
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
    arb_cache_key base = th_cache_key(0);
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
    arb_cache_key a = th_cache_key(0);
    arb_cache_key b = th_cache_key(0);
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
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    uint8_t cubin[5000];
    arb_cache_key k = th_cache_key(7);
    arb_cache_entry e = th_cache_entry(cubin, sizeof(cubin), 7);
    int inserted = 0;
    arb_err err = {0};
    int64_t before = (int64_t)time(NULL);

    arb_cache *c = th_cache_open(path, &w);
    cr_assert(arb_cache_writable(c));
    cr_assert_str_eq(arb_cache_path(c), path);
    cr_assert_eq(arb_cache_layer_count(c), 1);
    cr_assert_eq(arb_cache_put(c, &k, &e, &inserted, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(inserted, 1);
    arb_cache_close(c);

    c = th_cache_open(path, &w);
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
    cr_assert_eq(th_cache_found(c, 8, NULL), 0, "another key must miss");
    arb_cache_close(c);
    cr_assert_eq(w.n, 0, "unexpected warning: %s", w.msg[0]);

    /* Every key column is queryable, so a miss can be explained in SQL. */
    cr_assert_eq(th_sql_int(path, "SELECT M FROM entries WHERE kernel = 'ternary_fwd' AND "
                                  "arch = 'sm_90' AND nvrtc_version = '13.0' AND bk = 32"),
                 1031);
    cr_assert_eq(th_sql_int(path, "PRAGMA application_id"), CACHE_APPLICATION_ID);
    cr_assert_eq(th_sql_int(path, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
}

Test(cache, first_writer_wins)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 1, 300, 1, 1);
    th_cache_put_ok(c, 1, 400, 2, 0); /* same key, other bytes: ignored */
    arb_cache_entry got;
    cr_assert_eq(th_cache_found(c, 1, &got), 1);
    uint8_t expect[300];
    th_fill_bytes(expect, sizeof(expect), 1);
    cr_assert_eq(got.cubin_len, 300);
    cr_assert_arr_eq(got.cubin, expect, 300);
    arb_cache_entry_free(&got);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM entries"), 1);
}

Test(cache, put_rejects_bad_arguments)
{
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(th_in_dir("k.sqlite"), &w);
    arb_cache_key k = th_cache_key(0);
    uint8_t b[4] = {1, 2, 3, 4};
    arb_cache_entry e = th_cache_entry(b, 4, 0);
    int inserted = 0;
    arb_err err = {0};
    k.arch = NULL;
    cr_assert_eq(arb_cache_put(c, &k, &e, &inserted, &err), ARB_ERR_INVALID_ARG);
    cr_assert_not_null(strstr(err.msg, "arch"), "%s", err.msg);
    arb_err_clear(&err);
    k = th_cache_key(0);
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
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    char hash[ARB_CACHE_HASH_LEN];
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 3, 2000, 3, 1);
    th_cache_hash(3, hash);

    flip_cubin_byte(path, hash, 999);
    cr_assert_eq(th_sql_int(path, "SELECT length(cubin) FROM entries"), 2000, "length kept");

    cr_assert_eq(th_cache_found(c, 3, NULL), 0, "a damaged row must not be returned");
    cr_assert_eq(arb_cache_quarantined(c), 1);
    const char *msg = th_warned(&w, "quarantine", "checksum");
    cr_assert_not_null(msg, "no warning about the quarantined row (%d warnings: %s)", w.n,
                       w.n ? w.msg[0] : "");
    cr_assert_not_null(strstr(msg, hash), "the warning names the entry: %s", msg);
    cr_assert_not_null(strstr(msg, path), "the warning names the file: %s", msg);

    /* Warned once per handle, however often it is asked for. */
    int warnings = w.n;
    cr_assert_eq(th_cache_found(c, 3, NULL), 0);
    cr_assert_eq(w.n, warnings);

    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM entries"), 0);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM quarantine"), 1);
    char q[256];
    snprintf(q, sizeof(q), "SELECT cubin_len FROM quarantine WHERE hash = '%s'", hash);
    cr_assert_eq(th_sql_int(path, q), 2000);

    /* The caller recompiles and stores: the key works again. */
    th_cache_put_ok(c, 3, 2000, 3, 1);
    cr_assert_eq(th_cache_found(c, 3, NULL), 1);
    arb_cache_close(c);
}

Test(cache, wrong_length_is_quarantined)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 4, 1000, 4, 1);
    th_sql_exec(path, "UPDATE entries SET cubin = substr(cubin, 1, 999)");
    int found = -1;
    char hash[ARB_CACHE_HASH_LEN];
    arb_err err = {0};
    th_cache_hash(4, hash);
    cr_assert_eq(arb_cache_contains(c, hash, &found, &err), ARB_OK);
    cr_assert_eq(found, 0);
    cr_assert_not_null(th_warned(&w, "999 bytes", "1000"), "%s", w.n ? w.msg[0] : "(none)");
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM quarantine"), 1);
    arb_cache_close(c);
}

Test(cache, caller_can_quarantine_a_row)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    char hash[ARB_CACHE_HASH_LEN];
    arb_err err = {0};
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 5, 100, 5, 1);
    th_cache_hash(5, hash);
    cr_assert_eq(arb_cache_quarantine(c, hash, "cuModuleLoadData failed", &err), ARB_OK);
    cr_assert_eq(arb_cache_quarantined(c), 1);
    cr_assert_eq(th_cache_found(c, 5, NULL), 0);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM quarantine WHERE reason = "
                                  "'cuModuleLoadData failed'"),
                 1);
}

/* ---- Damaged and foreign files --------------------------------------------------- */

Test(cache, garbage_file_is_copied_and_rebuilt)
{
    const char *path = th_in_dir("kernels.sqlite");
    uint8_t junk[4096];
    th_fill_bytes(junk, sizeof(junk), 99);
    th_file_write(path, junk, sizeof(junk));

    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    cr_assert(arb_cache_writable(c));
    const char *msg = th_warned(&w, "not an SQLite database", ".corrupt-");
    cr_assert_not_null(msg, "expected a rebuild warning, got %d: %s", w.n, w.n ? w.msg[0] : "");
    cr_assert_not_null(strstr(msg, path));
    cr_assert_eq(w.n, 1);

    char copy[600];
    cr_assert_eq(th_corrupt_copies(path, copy, sizeof(copy)), 1);
    cr_assert_not_null(strstr(msg, copy), "the warning names the copy %s: %s", copy, msg);
    uint8_t *kept = NULL;
    cr_assert_eq(th_file_read(copy, &kept), sizeof(junk));
    cr_assert_arr_eq(kept, junk, sizeof(junk), "the copy holds the original bytes");
    free(kept);

    th_cache_put_ok(c, 1, 500, 1, 1);
    cr_assert_eq(th_cache_found(c, 1, NULL), 1);
    arb_cache_close(c);

    /* Healthy now: a second open neither warns nor copies. */
    th_warn_log w2 = {0};
    c = th_cache_open(path, &w2);
    cr_assert_eq(w2.n, 0, "%s", w2.msg[0]);
    cr_assert_eq(th_cache_found(c, 1, NULL), 1);
    arb_cache_close(c);
    cr_assert_eq(th_corrupt_copies(path, NULL, 0), 1);
}

Test(cache, truncated_file_is_copied_and_rebuilt)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    for (int i = 0; i < 40; i++)
        th_cache_put_ok(c, i, 8000, (unsigned)i, 1);
    arb_cache_close(c);

    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert(sb.st_size > 100000, "size %lld", (long long)sb.st_size);
    cr_assert_eq(truncate(path, sb.st_size / 2), 0);

    c = th_cache_open(path, &w);
    cr_assert_not_null(th_warned(&w, "damaged", ".corrupt-"), "%d warnings: %s", w.n,
                       w.n ? w.msg[0] : "");
    cr_assert_eq(th_corrupt_copies(path, NULL, 0), 1);
    cr_assert(arb_cache_writable(c));
    cr_assert_eq(th_cache_found(c, 0, NULL), 0, "the rebuilt cache starts empty");
    th_cache_put_ok(c, 0, 8000, 0, 1);
    cr_assert_eq(th_cache_found(c, 0, NULL), 1);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM entries"), 1);
}

Test(cache, foreign_database_is_copied_and_rebuilt)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_sql_exec(path, "PRAGMA application_id = 1234; CREATE TABLE photos (id INTEGER PRIMARY KEY, "
                      "name TEXT); INSERT INTO photos (name) VALUES ('cat.jpg');");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    const char *msg = th_warned(&w, "another program", "photos");
    cr_assert_not_null(msg, "%d warnings: %s", w.n, w.n ? w.msg[0] : "");
    char copy[600];
    cr_assert_eq(th_corrupt_copies(path, copy, sizeof(copy)), 1);
    cr_assert_eq(th_sql_int(copy, "SELECT count(*) FROM photos"), 1, "the copy is intact");
    th_cache_put_ok(c, 2, 100, 2, 1);
    cr_assert_eq(th_cache_found(c, 2, NULL), 1);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'photos'"), 0);
    cr_assert_eq(th_sql_int(path, "PRAGMA application_id"), CACHE_APPLICATION_ID);
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
        const char *path = th_in_dir(name);
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; %s", CACHE_APPLICATION_ID,
                 damage[i]);
        th_sql_exec(path, sql);
        th_warn_log w = {0};
        arb_cache *c = th_cache_open(path, &w);
        cr_assert_not_null(th_warned(&w, "not our schema", ".corrupt-"),
                           "case %zu: %d warnings: %s", i, w.n, w.n ? w.msg[0] : "");
        cr_assert_eq(th_corrupt_copies(path, NULL, 0), 1, "case %zu", i);
        cr_assert(arb_cache_writable(c), "case %zu", i);
        th_cache_put_ok(c, 3, 100, 3, 1);
        cr_assert_eq(th_cache_found(c, 3, NULL), 1, "case %zu", i);
        arb_cache_close(c);
        cr_assert_eq(th_sql_int(path, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
    }
}

Test(cache, rebuild_is_safe_under_an_open_handle)
{
    /* A keeps the file open while another process finds its pages damaged
     * and rebuilds it: A must go on working on the rebuilt file, and its
     * later writes must reach the file everyone reads (a rename would have
     * split A from the others). */
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *a = th_cache_open(path, &w);
    for (int i = 0; i < 20; i++)
        th_cache_put_ok(a, 100 + i, 6000, (unsigned)i, 1);
    th_sql_exec(path, "PRAGMA wal_checkpoint(TRUNCATE)");
    th_cache_damage_pages(path); /* in a child: closing a descriptor here would drop A's locks */

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        th_warn_log wb = {0};
        arb_cache *b = NULL;
        arb_err err = {0};
        if (th_cache_try_open(&b, path, 0, &wb, &err) != ARB_OK)
            _exit(3);
        if (th_cache_found(b, 100, NULL) != 0) /* meets the damage, rebuilds */
            _exit(4);
        if (!th_warned(&wb, "damaged", ".corrupt-") || !arb_cache_writable(b))
            _exit(5);
        th_cache_put_ok(b, 1, 900, 1, 1);
        arb_cache_close(b);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "the rebuilding process failed at step %d",
                 WEXITSTATUS(status));

    cr_assert_eq(th_cache_found(a, 1, NULL), 1, "A sees B's write into the rebuilt file");
    th_cache_put_ok(a, 2, 900, 2, 1);
    cr_assert_eq(th_cache_found(a, 2, NULL), 1);
    arb_cache_close(a);

    th_warn_log w2 = {0};
    arb_cache *c = th_cache_open(path, &w2);
    cr_assert_eq(w2.n, 0, "%s", w2.msg[0]);
    cr_assert_eq(th_cache_found(c, 2, NULL), 1, "A's write after the rebuild is in the file");
    cr_assert_eq(th_cache_found(c, 100, NULL), 0, "the rebuilt file started empty");
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM entries"), 2);
    cr_assert_eq(th_corrupt_copies(path, NULL, 0), 1);
}

Test(cache, newer_schema_is_left_untouched)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 1, 700, 1, 1);
    arb_cache_close(c);
    th_sql_exec(path, "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;");

    uint8_t *before = NULL;
    size_t n_before = th_file_read(path, &before);
    c = th_cache_open(path, &w);
    cr_assert_not_null(th_warned(&w, "newer arb", "99"), "%d warnings: %s", w.n,
                       w.n ? w.msg[0] : "");
    cr_assert_eq(arb_cache_writable(c), 0);
    th_cache_put_ok(c, 2, 700, 2, 0); /* a no-op, not an error */
    cr_assert_eq(th_cache_found(c, 1, NULL), 1, "still readable");
    arb_cache_close(c);

    uint8_t *after = NULL;
    cr_assert_eq(th_file_read(path, &after), n_before);
    cr_assert_arr_eq(after, before, n_before, "the file was modified");
    cr_assert_eq(th_corrupt_copies(path, NULL, 0), 0);
    free(before);
    free(after);
}

/* ---- Degrading ---------------------------------------------------------------- */

/* A read-only layer holding key 0. */
static const char *make_readonly_layer(const char *name)
{
    const char *ro = th_in_dir(name);
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(ro, &w);
    th_cache_put_ok(c, 0, 640, 0, 1);
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
        const char *locked = th_in_dir("locked");
        cr_assert_eq(mkdir(locked, 0500), 0);
        snprintf(path, sizeof(path), "%s/sub/kernels.sqlite", locked);
    }
    th_warn_log w = {0};
    const char *layers[] = {ro};
    arb_cache *c = th_cache_open_layers(path, layers, 1, 0, &w);
    cr_assert_eq(arb_cache_writable(c), 0);
    cr_assert_eq(w.n, 1, "exactly one warning, got %d", w.n);
    cr_assert_not_null(strstr(w.msg[0], path), "%s", w.msg[0]);
    cr_assert_not_null(strstr(w.msg[0], "compiled in memory"), "%s", w.msg[0]);

    th_cache_put_ok(c, 1, 100, 1, 0);
    th_cache_put_ok(c, 2, 100, 2, 0);
    cr_assert_eq(w.n, 1, "puts do not warn again");
    arb_cache_entry got;
    cr_assert_eq(th_cache_found(c, 0, &got), 1, "gets still work on the read-only layer");
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
    th_warn_log w = {0};
    arb_cache *c = NULL;
    arb_err err = {0};
    if (th_cache_try_open(&c, path, 0, &w, &err) != ARB_OK)
        return 10;
    if (arb_cache_writable(c))
        return 11;
    if (w.n != 1 || !strstr(w.msg[0], path) || !strstr(w.msg[0], "compiled in memory"))
        return 12;
    int inserted = -1;
    if (th_cache_put(c, 5, 64, 5, &inserted, &err) != ARB_OK || inserted != 0)
        return 13;
    char hash[ARB_CACHE_HASH_LEN];
    arb_cache_entry got;
    int found = 0;
    th_cache_hash(0, hash);
    if (arb_cache_get(c, hash, &got, &found, &err) != ARB_OK || !found)
        return 14;
    arb_cache_entry_free(&got);
    if (w.n != 1)
        return 15;
    arb_cache_close(c);

    /* The same file as a read-only layer: a WAL file in a folder we cannot
     * write has no -shm, so this takes the immutable=1 fallback. */
    const char *layers[] = {path};
    arb_cache_options opt;
    arb_cache_options_init(&opt);
    opt.readonly_paths = layers;
    opt.n_readonly = 1;
    opt.warn = th_warn_capture;
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
    const char *sub = th_in_dir("shared");
    cr_assert_eq(mkdir(sub, 0755), 0);
    char path[600];
    snprintf(path, sizeof(path), "%s/kernels.sqlite", sub);
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 0, 640, 0, 1);
    arb_cache_close(c);
    cr_assert_eq(chmod(path, 0444), 0);
    cr_assert_eq(chmod(sub, 0555), 0);
    cr_assert_eq(chmod(th_dir, 0755), 0);

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
    const char *path = th_in_dir("a/b/c/kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    cr_assert(arb_cache_writable(c));
    cr_assert_eq(w.n, 0);
    th_cache_put_ok(c, 1, 10, 1, 1);
    arb_cache_close(c);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
}

Test(cache, empty_file_gets_the_schema)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_file_write(path, "", 0);
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    cr_assert_eq(w.n, 0, "an empty file is new, not damaged: %s", w.msg[0]);
    cr_assert(arb_cache_writable(c));
    th_cache_put_ok(c, 1, 10, 1, 1);
    arb_cache_close(c);
    cr_assert_eq(th_corrupt_copies(path, NULL, 0), 0);
    cr_assert_eq(th_sql_int(path, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
    cr_assert_eq(th_sql_int(path, "PRAGMA page_size"), CACHE_PAGE_SIZE);
    uint8_t *bytes = NULL;
    cr_assert(th_file_read(path, &bytes) >= 100);
    cr_assert(bytes[18] == 2 && bytes[19] == 2, "the file is in WAL mode");
    free(bytes);
}

Test(cache, no_writable_layer_is_fine)
{
    const char *ro = make_readonly_layer("ro.sqlite");
    th_warn_log w = {0};
    const char *layers[] = {ro};
    arb_cache *c = th_cache_open_layers(NULL, layers, 1, 0, &w);
    cr_assert_eq(arb_cache_writable(c), 0);
    cr_assert_null(arb_cache_path(c));
    cr_assert_eq(arb_cache_layer_count(c), 1);
    cr_assert_eq(w.n, 0);
    th_cache_put_ok(c, 3, 10, 3, 0);
    cr_assert_eq(th_cache_found(c, 0, NULL), 1);
    arb_cache_close(c);
}

/* ---- Layers ---------------------------------------------------------------------- */

Test(cache, readonly_layers_are_consulted_first)
{
    /* Key 0 with other bytes in each layer: the read-only one must win. */
    const char *ro = make_readonly_layer("ro.sqlite");
    const char *rw = th_in_dir("rw.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(rw, &w);
    th_cache_put_ok(c, 0, 640, 77, 1);
    th_cache_put_ok(c, 1, 64, 1, 1);
    arb_cache_close(c);

    const char *layers[] = {ro};
    c = th_cache_open_layers(rw, layers, 1, 0, &w);
    cr_assert_eq(arb_cache_layer_count(c), 2);
    char name[600];
    snprintf(name, sizeof(name), "readonly:%s", ro);
    cr_assert_str_eq(arb_cache_layer_name(c, 0), name);
    cr_assert_str_eq(arb_cache_layer_name(c, ARB_CACHE_LAYER_WRITABLE), rw);
    cr_assert_str_eq(arb_cache_layer_name(c, 1), rw);
    cr_assert_null(arb_cache_layer_name(c, 2));

    arb_cache_entry got;
    uint8_t expect[640];
    th_fill_bytes(expect, sizeof(expect), 0);
    cr_assert_eq(th_cache_found(c, 0, &got), 1);
    cr_assert_eq(got.layer, 0);
    cr_assert_arr_eq(got.cubin, expect, sizeof(expect));
    arb_cache_entry_free(&got);
    cr_assert_eq(th_cache_found(c, 1, &got), 1);
    cr_assert_eq(got.layer, ARB_CACHE_LAYER_WRITABLE);
    arb_cache_entry_free(&got);

    /* The caller rejects the read-only copy: later gets skip it. */
    char hash[ARB_CACHE_HASH_LEN];
    arb_err err = {0};
    th_cache_hash(0, hash);
    cr_assert_eq(arb_cache_quarantine(c, hash, "driver rejected it", &err), ARB_OK);
    cr_assert_eq(th_cache_found(c, 0, &got), 1);
    cr_assert_eq(got.layer, ARB_CACHE_LAYER_WRITABLE);
    arb_cache_entry_free(&got);
    arb_cache_close(c);
    cr_assert_eq(th_sql_int(ro, "SELECT count(*) FROM entries"), 1, "read-only layer untouched");
}

Test(cache, missing_readonly_layer_is_an_error)
{
    const char *missing = th_in_dir("nope.sqlite");
    const char *layers[] = {missing};
    arb_cache_options opt;
    arb_cache *c = (arb_cache *)1;
    arb_err err = {0};
    arb_cache_options_init(&opt);
    opt.path = th_in_dir("rw.sqlite");
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
    th_sql_exec(ro, "UPDATE entries SET checksum = 'bad'; PRAGMA journal_mode = DELETE;");
    uint8_t *before = NULL;
    size_t n = th_file_read(ro, &before);

    const char *rw = th_in_dir("rw.sqlite");
    th_warn_log w = {0};
    const char *layers[] = {ro};
    arb_cache *c = th_cache_open_layers(rw, layers, 1, 0, &w);
    cr_assert_eq(th_cache_found(c, 0, NULL), 0);
    cr_assert_not_null(th_warned(&w, "skipped", "read-only"), "%s", w.n ? w.msg[0] : "(none)");
    cr_assert_eq(arb_cache_quarantined(c), 0);
    /* The writable layer takes the recompiled kernel and serves it. */
    th_cache_put_ok(c, 0, 640, 0, 1);
    arb_cache_entry got;
    cr_assert_eq(th_cache_found(c, 0, &got), 1);
    cr_assert_eq(got.layer, ARB_CACHE_LAYER_WRITABLE);
    arb_cache_entry_free(&got);
    arb_cache_close(c);

    uint8_t *after = NULL;
    cr_assert_eq(th_file_read(ro, &after), n);
    cr_assert_arr_eq(after, before, n);
    free(before);
    free(after);
}

Test(cache, corrupt_readonly_layer_is_skipped)
{
    const char *ro = th_in_dir("ro.sqlite");
    uint8_t junk[8192];
    th_fill_bytes(junk, sizeof(junk), 5);
    th_file_write(ro, junk, sizeof(junk));
    th_warn_log w = {0};
    const char *layers[] = {ro};
    arb_cache *c = th_cache_open_layers(th_in_dir("rw.sqlite"), layers, 1, 0, &w);
    cr_assert_not_null(th_warned(&w, ro, "skipping"), "%s", w.n ? w.msg[0] : "(none)");
    cr_assert_eq(th_cache_found(c, 0, NULL), 0);
    th_cache_put_ok(c, 0, 10, 0, 1);
    arb_cache_close(c);
    uint8_t *after = NULL;
    cr_assert_eq(th_file_read(ro, &after), sizeof(junk));
    cr_assert_arr_eq(after, junk, sizeof(junk));
    cr_assert_eq(th_corrupt_copies(ro, NULL, 0), 0, "read-only layers are never rebuilt");
    free(after);
}

/* ---- Size ------------------------------------------------------------------------ */

Test(cache, lru_eviction_keeps_the_cap)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    for (int i = 0; i < 10; i++)
        th_cache_put_ok(c, i, 1000, (unsigned)i, 1);
    arb_cache_close(c);
    /* Key i was last used at 1000 + i: key 0 is the oldest. Key 9 was used
     * long ago but created later than 8, which ties on last_used. */
    th_sql_exec(path, "UPDATE entries SET last_used = 1000 + M - 1024");

    c = th_cache_open_layers(path, NULL, 0, 5500, &w);
    th_cache_put_ok(c, 10, 1000, 10, 1);
    for (int i = 0; i <= 5; i++)
        cr_assert_eq(th_cache_found(c, i, NULL), 0, "key %d should be evicted", i);
    for (int i = 6; i <= 10; i++)
        cr_assert_eq(th_cache_found(c, i, NULL), 1, "key %d should stay", i);
    arb_cache_close(c);
    cr_assert(th_sql_int(path, "SELECT sum(cubin_len) FROM entries") <= 5500);
    cr_assert_eq(th_sql_int(path, "SELECT count(*) FROM quarantine"), 0,
                 "eviction is not quarantine");
}

Test(cache, filling_twice_the_cap_ends_under_it)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open_layers(path, NULL, 0, 20000, &w);
    for (int i = 0; i < 40; i++)
        th_cache_put_ok(c, i, 1000, (unsigned)i, 1);
    arb_cache_summary s;
    arb_err err = {0};
    cr_assert_eq(arb_cache_summarize(c, &s, &err), ARB_OK, "%s", err.msg);
    cr_assert(s.cubin_bytes <= 20000, "%lld", (long long)s.cubin_bytes);
    cr_assert(s.cubin_bytes >= 19000);
    cr_assert_eq(s.max_bytes, 20000);
    cr_assert_eq(th_cache_found(c, 39, NULL), 1, "the newest stays");
    arb_cache_close(c);
}

Test(cache, get_touches_last_used_coarsely)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 1, 10, 1, 1);
    th_cache_put_ok(c, 2, 10, 2, 1);
    int64_t now = (int64_t)time(NULL);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE entries SET last_used = CASE M WHEN 1025 THEN %lld ELSE %lld END",
             (long long)(now - 7200), (long long)(now - 100));
    th_sql_exec(path, sql);
    arb_cache_entry got;
    cr_assert_eq(th_cache_found(c, 1, &got), 1);
    cr_assert(got.last_used >= now, "an old last_used is rewritten");
    arb_cache_entry_free(&got);
    cr_assert_eq(th_cache_found(c, 2, &got), 1);
    cr_assert_eq(got.last_used, now - 100, "a recent last_used is left alone");
    arb_cache_entry_free(&got);
    arb_cache_close(c);
    snprintf(sql, sizeof(sql), "SELECT last_used FROM entries WHERE M = 1026");
    cr_assert_eq(th_sql_int(path, sql), now - 100);
}

/* ---- Busy ------------------------------------------------------------------------- */

Test(cache, held_write_lock_skips_the_store_not_the_run)
{
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 1, 100, 1, 1);
    arb_cache_close(c);

    /* Another writer holds the lock past our timeout. */
    sqlite3 *holder = NULL;
    cr_assert_eq(sqlite3_open(path, &holder), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    arb_err err = {0};
    cr_assert_eq(th_cache_try_open(&c, path, 100, &w, &err), ARB_OK, "%s", err.msg);
    th_cache_put_ok(c, 2, 100, 2, 0);
    cr_assert_eq(w.n, 1, "%d warnings", w.n);
    cr_assert_not_null(strstr(w.msg[0], "locked"), "%s", w.msg[0]);
    th_cache_put_ok(c, 3, 100, 3, 0);
    cr_assert_eq(w.n, 1, "warned once");
    cr_assert_eq(th_cache_found(c, 1, NULL), 1, "readers are not blocked");

    cr_assert_eq(sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    cr_assert(arb_cache_writable(c), "a busy moment does not degrade the cache");
    th_cache_put_ok(c, 2, 100, 2, 1);
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
        arb_cache_key k = th_cache_key(a->base + i);
        arb_cache_entry e = th_cache_entry(b, sizeof(b), (unsigned)(a->base + i));
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
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(th_in_dir("kernels.sqlite"), &w);
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
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(th_in_dir("kernels.sqlite"), &w);
    th_cache_put_ok(c, 1, 10, 1, 1);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char hash[ARB_CACHE_HASH_LEN];
        arb_cache_entry e;
        int found = 0;
        arb_err err = {0};
        th_cache_hash(1, hash);
        arb_status st = arb_cache_get(c, hash, &e, &found, &err);
        _exit(st == ARB_ERR_CACHE && strstr(err.msg, "fork") ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(th_cache_found(c, 1, NULL), 1, "the parent's handle still works");
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
    const char *path = th_in_dir("kernels.sqlite");
    th_warn_log w = {0};
    arb_cache *c = th_cache_open(path, &w);
    th_cache_put_ok(c, 1, 700, 1, 1);
    arb_cache_close(c);
    /* Turn the file back into version 1: the tuning table of that schema. */
    th_sql_exec(
        path,
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
    c = th_cache_open(path, &w);
    cr_assert_eq(arb_cache_writable(c), 1, "%d warnings: %s", w.n, w.n ? w.msg[0] : "");
    cr_assert_eq(th_sql_int(path, "PRAGMA user_version"), ARB_CACHE_SCHEMA_VERSION);
    cr_assert_eq(th_cache_found(c, 1, NULL), 1, "the entry did not survive the migration");
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
