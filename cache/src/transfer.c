/*
 * transfer.c - export every valid entry into a new cache file, and import
 * the valid entries of another cache file.
 *
 * Export writes a temporary file in the target's folder, syncs it, and
 * renames it to the target without replacing anything (RENAME_NOREPLACE, or
 * link + unlink where the file system lacks it), then syncs the folder: a
 * reader sees no file or a complete one. Tuning rows are all copied (the
 * writable layer's win over the read-only layers' for the same candidate);
 * whoever reads the file computes staleness against its own build.
 *
 * Import reads the other file read-only and copies, in one transaction,
 * each row whose checksum verifies (INSERT OR IGNORE: rows already present
 * stay), then the tuning rows (a newer measurement of a candidate wins).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_internal.h"

#define SELECT_ENTRY_ROW "SELECT hash, " CACHE_KEY_COLS ", " CACHE_ENTRY_COLS " FROM entries"
#define ROW_COL_CUBIN (1 + CACHE_KEY_NCOLS + COL_CUBIN)
#define ROW_COL_CUBIN_LEN (1 + CACHE_KEY_NCOLS + COL_CUBIN_LEN)
#define ROW_COL_CHECKSUM (1 + CACHE_KEY_NCOLS + COL_CHECKSUM)
#define ROW_NCOLS (1 + CACHE_KEY_NCOLS + CACHE_ENTRY_NCOLS)

#define TUNE_UNIQUE "kernel, M, N, K, gs, variant, precision, arch, device, driver, nvrtc, " \
                    "build, bm, bn, bk, tm, tn, warps, stages"

/* Copy the valid rows of `from` (a SELECT_ENTRY_ROW cursor) into `ins` (an
 * insert of the same columns). Counts rows inserted and rows not. */
static int copy_rows(arb_cache *c, sqlite3_stmt *from, sqlite3_stmt *ins, int64_t *inserted,
                     int64_t *not_inserted)
{
    char why[256];
    int rc;
    sqlite3 *to = sqlite3_db_handle(ins);
    for (rc = cache_step(c, from); rc == SQLITE_ROW; rc = sqlite3_step(from)) {
        const void *blob = sqlite3_column_blob(from, ROW_COL_CUBIN);
        int64_t bytes = sqlite3_column_bytes(from, ROW_COL_CUBIN);
        if (!cache_row_valid(blob, bytes, sqlite3_column_int64(from, ROW_COL_CUBIN_LEN),
                             (const char *)sqlite3_column_text(from, ROW_COL_CHECKSUM), why,
                             sizeof(why))) {
            (*not_inserted)++;
            continue;
        }
        for (int i = 0; i < ROW_NCOLS; i++)
            sqlite3_bind_value(ins, i + 1, sqlite3_column_value(from, i));
        int irc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (irc != SQLITE_DONE) {
            cache_note(c, to);
            return irc;
        }
        if (sqlite3_changes(to) > 0)
            (*inserted)++;
        else
            (*not_inserted)++;
    }
    if (rc != SQLITE_DONE) {
        cache_note(c, sqlite3_db_handle(from));
        return rc;
    }
    return SQLITE_OK;
}

/* Copy every tuning row of `src` into `dst` with `insert_sql`. */
static int copy_tuning(arb_cache *c, sqlite3 *src, sqlite3 *dst, const char *insert_sql)
{
    sqlite3_stmt *from = NULL;
    sqlite3_stmt *ins = NULL;
    int rc = sqlite3_prepare_v2(src, "SELECT " CACHE_TUNE_COLS " FROM tuning", -1, &from, NULL);
    if (rc != SQLITE_OK) /* a version-1 file: its rows were measured as variant 0 */
        rc = sqlite3_prepare_v2(src, "SELECT " CACHE_TUNE_COLS_V1 " FROM tuning", -1, &from, NULL);
    if (rc != SQLITE_OK) {
        cache_note(c, src);
        goto out;
    }
    rc = sqlite3_prepare_v2(dst, insert_sql, -1, &ins, NULL);
    if (rc != SQLITE_OK) {
        cache_note(c, dst);
        goto out;
    }
    for (rc = cache_step(c, from); rc == SQLITE_ROW; rc = sqlite3_step(from)) {
        for (int i = 0; i < CACHE_TUNE_NCOLS; i++)
            sqlite3_bind_value(ins, i + 1, sqlite3_column_value(from, i));
        int irc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (irc != SQLITE_DONE) {
            cache_note(c, dst);
            rc = irc;
            goto out;
        }
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    else
        cache_note(c, src);
out:
    sqlite3_finalize(from);
    sqlite3_finalize(ins);
    return rc;
}

/* ---- Export ---------------------------------------------------------------- */

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int e = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return e;
}

/* Move tmp to path unless path exists. 0 or an errno. */
static int rename_noreplace(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return errno;
    /* The file system cannot rename without replacing: a hard link can. */
    if (link(tmp, path) != 0)
        return errno;
    unlink(tmp);
    return 0;
}

/* Fill the new database `dst` from every layer. */
static int export_rows(arb_cache *c, sqlite3 *dst, int64_t *exported)
{
    int64_t not_exported = 0;
    sqlite3_stmt *ins = NULL;
    int rc = sqlite3_exec(dst, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(dst, cache_stmt_sql(STMT_INSERT), -1, &ins, NULL);
    for (int i = 0; i <= c->n_readonly && rc == SQLITE_OK; i++) {
        cache_layer *l = &c->layer[i];
        sqlite3_stmt *from = NULL;
        if (!l->db)
            continue;
        rc = sqlite3_prepare_v2(l->db, SELECT_ENTRY_ROW, -1, &from, NULL);
        if (rc == SQLITE_OK)
            rc = copy_rows(c, from, ins, exported, &not_exported);
        else
            cache_note(c, l->db);
        sqlite3_finalize(from);
        /* Read-only layers first: the writable layer's tuning rows replace theirs. */
        if (rc == SQLITE_OK)
            rc = copy_tuning(c, l->db, dst, cache_stmt_sql(STMT_TUNE_PUT));
    }
    sqlite3_finalize(ins);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(dst, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        cache_note(c, dst);
        sqlite3_exec(dst, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

arb_status arb_cache_export(arb_cache *cache, const char *path, int64_t *exported, arb_err *err)
{
    arb_status st = ARB_OK;
    char *dir = NULL;
    char *tmp = NULL;
    sqlite3 *dst = NULL;
    int entered = 0;
    int made_tmp = 0;
    struct stat sb;
    int64_t count = 0;

    if (exported)
        *exported = 0;
    if (!path || !path[0]) {
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_export: no target path");
        goto out;
    }
    st = cache_enter(cache, "arb_cache_export", err);
    if (st)
        goto out;
    entered = 1;
    if (lstat(path, &sb) == 0) {
        st = ARB_FAIL(err, ARB_ERR_IO,
                      "cannot export to %s: it already exists; choose a new file name (export "
                      "never overwrites)",
                      path);
        goto out;
    }
    dir = cache_parent_dir(path);
    tmp = cache_malloc(strlen(path) + 64);
    if (!dir || !tmp) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "export: out of memory");
        goto out;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(tmp, strlen(path) + 64, "%s/.%s.tmp-%d-%lld", dir, base, (int)getpid(),
             (long long)cache_now_ms());

    int rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    made_tmp = 1;
    if (rc != SQLITE_OK) {
        cache_note(cache, dst);
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot create %s for the export: %s", tmp,
                      cache_rc_detail(cache, rc));
        goto out;
    }
    sqlite3_extended_result_codes(dst, 1);
    sqlite3_exec(dst, CACHE_PAGE_SIZE_PRAGMA, NULL, NULL, NULL);
    rc = cache_create_schema(cache, dst);
    if (rc == SQLITE_OK)
        rc = export_rows(cache, dst, &count);
    if (rc != SQLITE_OK) {
        st = ARB_FAIL(err, cache_rc_nomem(rc) ? ARB_ERR_NOMEM : ARB_ERR_IO,
                      "exporting to %s failed: %s", path, cache_rc_detail(cache, rc));
        goto out;
    }
    rc = sqlite3_close(dst);
    if (rc != SQLITE_OK)
        sqlite3_close_v2(dst); /* never leak the connection: closed when it can be */
    dst = NULL;
    if (rc != SQLITE_OK) {
        st = ARB_FAIL(err, ARB_ERR_IO, "exporting to %s: closing %s failed: %s", path, tmp,
                      sqlite3_errstr(rc));
        goto out;
    }
    int e = fsync_path(tmp, O_RDONLY);
    if (e == 0)
        e = rename_noreplace(tmp, path);
    if (e != 0) {
        st = ARB_FAIL(err, ARB_ERR_IO, "exporting to %s failed: %s%s", path, strerror(e),
                      e == EEXIST ? " (the file appeared meanwhile)" : "");
        goto out;
    }
    made_tmp = 0;
    fsync_path(dir, O_RDONLY | O_DIRECTORY); /* best effort: some file systems refuse */
    if (exported)
        *exported = count;
out:
    if (dst)
        sqlite3_close_v2(dst);
    if (made_tmp && tmp) {
        unlink(tmp); /* our own temporary file, never the target */
        char journal[4200];
        snprintf(journal, sizeof(journal), "%s-journal", tmp);
        unlink(journal);
    }
    free(tmp);
    free(dir);
    if (entered)
        cache_leave(cache);
    return st;
}

/* ---- Import ---------------------------------------------------------------- */

typedef struct import_ctx {
    sqlite3 *src;
    int64_t imported;
    int64_t skipped;
} import_ctx;

static int import_body(arb_cache *c, cache_layer *l, void *ctx)
{
    import_ctx *x = ctx;
    sqlite3_stmt *from = NULL;
    x->imported = 0;
    x->skipped = 0;
    int rc;
    sqlite3_stmt *ins = cache_stmt(c, l, STMT_INSERT, &rc);
    if (!ins)
        return rc;
    rc = sqlite3_prepare_v2(x->src, SELECT_ENTRY_ROW, -1, &from, NULL);
    if (rc == SQLITE_OK)
        rc = copy_rows(c, from, ins, &x->imported, &x->skipped);
    else
        cache_note(c, x->src);
    sqlite3_finalize(from);
    if (rc == SQLITE_OK)
        rc = copy_tuning(c, x->src, l->db,
                         "INSERT INTO tuning (" CACHE_TUNE_COLS ") VALUES (" CACHE_TUNE_PARAMS
                         ") ON CONFLICT (" TUNE_UNIQUE ") DO UPDATE SET "
                         "sm_count = excluded.sm_count, median_us = excluded.median_us, "
                         "p20_us = excluded.p20_us, p80_us = excluded.p80_us, "
                         "repeats = excluded.repeats, status = excluded.status, "
                         "reason = excluded.reason, command = excluded.command, "
                         "created = excluded.created WHERE excluded.created > tuning.created");
    if (rc == SQLITE_OK && c->max_bytes > 0)
        rc = cache_evict(c, l, c->max_bytes, NULL);
    return rc;
}

arb_status arb_cache_import(arb_cache *cache, const char *path, int64_t *imported,
                            int64_t *skipped, arb_err *err)
{
    arb_status st = ARB_OK;
    import_ctx x = {0};
    if (imported)
        *imported = 0;
    if (skipped)
        *skipped = 0;
    if (!path || !path[0])
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_import: no source path");
    st = cache_enter(cache, "arb_cache_import", err);
    if (st)
        return st;
    cache_layer *l = cache_writable_layer(cache);
    if (!l) {
        st = ARB_FAIL(err, ARB_ERR_READONLY,
                      "cannot import %s: %s", path,
                      cache->has_writable ? "the kernel cache is not writable (see the warning "
                                            "above)"
                                          : "no writable kernel cache is open");
        goto out;
    }
    st = cache_open_source(cache, path, &x.src, err);
    if (st)
        goto out;
    int rc = cache_write_txn(cache, l, import_body, &x);
    if (rc != SQLITE_OK) {
        st = cache_sqlite_fail(cache, l, rc, "importing", err);
        goto out;
    }
    if (imported)
        *imported = x.imported;
    if (skipped)
        *skipped = x.skipped;
out:
    if (x.src)
        sqlite3_close_v2(x.src);
    cache_leave(cache);
    return st;
}
