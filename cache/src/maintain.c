/*
 * maintain.c - what arb-cache does to a cache: summarize, list, verify,
 * prune and clear.
 *
 * Unlike get and put, these report every SQLite failure as an error: a user
 * asked for them and must learn that they did not happen. Callbacks run
 * under the handle's lock; they must not call back into the cache.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

/* A single integer from `sql` on layer `l`. */
static arb_status layer_int(arb_cache *c, cache_layer *l, const char *sql, int64_t *value,
                            arb_err *err)
{
    int rc = cache_query_int(c, l->db, sql, value);
    if (rc != SQLITE_OK)
        return cache_sqlite_fail(c, l, rc, "reading the cache", err);
    return ARB_OK;
}

/* The writable layer for a maintenance write, or an error saying why not. */
static arb_status writable_layer(arb_cache *c, const char *what, cache_layer **out, arb_err *err)
{
    cache_layer *l = cache_writable_layer(c);
    *out = NULL;
    if (!c->has_writable)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "cannot %s: no writable cache is open (set "
                                                  "ARB_CACHE or pass --cache FILE)", what);
    if (!l)
        return ARB_FAIL(err, ARB_ERR_READONLY,
                        "cannot %s: kernel cache %s is not writable (see the warning above); "
                        "fix its file or folder permissions",
                        what, c->layer[c->n_readonly].path);
    *out = l;
    return ARB_OK;
}

arb_status arb_cache_summarize(arb_cache *cache, arb_cache_summary *out, arb_err *err)
{
    arb_status st = ARB_OK;
    if (!out)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_summarize: out is NULL");
    memset(out, 0, sizeof(*out));
    st = cache_enter(cache, "arb_cache_summarize", err);
    if (st)
        return st;
    out->path = arb_cache_path(cache);
    out->max_bytes = cache->max_bytes;
    out->n_readonly = cache->n_readonly;
    for (int i = 0; i < cache->n_readonly && !st; i++)
        if (cache->layer[i].db)
            st = layer_int(cache, &cache->layer[i], "SELECT count(*) FROM entries",
                           &out->readonly_entries[i], err);
    cache_layer *l = cache_wlayer(cache);
    if (l && !st) {
        int64_t pages = 0;
        int64_t page_size = 0;
        st = layer_int(cache, l, "SELECT count(*) FROM entries", &out->entries, err);
        if (!st)
            st = layer_int(cache, l, cache_stmt_sql(STMT_BYTES), &out->cubin_bytes, err);
        if (!st)
            st = layer_int(cache, l, "SELECT count(*) FROM quarantine", &out->quarantined, err);
        if (!st)
            st = layer_int(cache, l, "SELECT count(*) FROM tuning", &out->tune_rows, err);
        if (!st)
            st = layer_int(cache, l, "PRAGMA page_count", &pages, err);
        if (!st)
            st = layer_int(cache, l, "PRAGMA page_size", &page_size, err);
        out->file_bytes = pages * page_size;
    }
    cache_leave(cache);
    return st;
}

/* ---- List ------------------------------------------------------------------ */

/* Rows of one layer to `fn`; *stop set when it asked to stop. */
static arb_status list_layer(arb_cache *c, cache_layer *l, arb_cache_list_fn fn, void *ctx,
                             int *stop, arb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->db,
                                "SELECT hash, " CACHE_KEY_COLS ", cubin_len, registers, "
                                "spill_bytes, shared_bytes, compile_ms, created, last_used "
                                "FROM entries ORDER BY kernel, M, N, K, gs, hash",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        cache_note(c, l->db);
        return cache_sqlite_fail(c, l, rc, "listing entries", err);
    }
    for (rc = cache_step(c, st); rc == SQLITE_ROW && !*stop; rc = sqlite3_step(st)) {
        arb_cache_listing row;
        int i = 0;
        memset(&row, 0, sizeof(row));
        row.hash = cache_column_text(st, i++);
        row.key.kernel = cache_column_text(st, i++);
        row.key.name_expr = cache_column_text(st, i++);
        row.key.M = sqlite3_column_int64(st, i++);
        row.key.N = sqlite3_column_int64(st, i++);
        row.key.K = sqlite3_column_int64(st, i++);
        row.key.gs = sqlite3_column_int64(st, i++);
        row.key.bm = sqlite3_column_int(st, i++);
        row.key.bn = sqlite3_column_int(st, i++);
        row.key.bk = sqlite3_column_int(st, i++);
        row.key.tm = sqlite3_column_int(st, i++);
        row.key.tn = sqlite3_column_int(st, i++);
        row.key.warps = sqlite3_column_int(st, i++);
        row.key.stages = sqlite3_column_int(st, i++);
        row.key.precision = cache_column_text(st, i++);
        row.key.arch = cache_column_text(st, i++);
        row.key.nvrtc_version = cache_column_text(st, i++);
        row.key.template_sha = cache_column_text(st, i++);
        row.key.options = cache_column_text(st, i++);
        row.key.env = cache_column_text(st, i++);
        row.cubin_len = (size_t)sqlite3_column_int64(st, i++);
        row.registers = sqlite3_column_int(st, i++);
        row.spill_bytes = sqlite3_column_int(st, i++);
        row.shared_bytes = sqlite3_column_int(st, i++);
        row.compile_ms = sqlite3_column_double(st, i++);
        row.created = sqlite3_column_int64(st, i++);
        row.last_used = sqlite3_column_int64(st, i++);
        row.layer = cache_layer_index(c, l);
        if (fn(ctx, &row))
            *stop = 1;
    }
    arb_status result = ARB_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        cache_note(c, l->db);
        result = cache_sqlite_fail(c, l, rc, "listing entries", err);
    }
    sqlite3_finalize(st);
    return result;
}

arb_status arb_cache_list(arb_cache *cache, arb_cache_list_fn fn, void *ctx, arb_err *err)
{
    arb_status st = ARB_OK;
    int stop = 0;
    if (!fn)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_list: fn is NULL");
    st = cache_enter(cache, "arb_cache_list", err);
    if (st)
        return st;
    for (int i = 0; i <= cache->n_readonly && !st && !stop; i++)
        if (cache->layer[i].db)
            st = list_layer(cache, &cache->layer[i], fn, ctx, &stop, err);
    cache_leave(cache);
    return st;
}

/* ---- Verify ---------------------------------------------------------------- */

typedef struct hash_list {
    char (*hash)[ARB_CACHE_HASH_LEN];
    size_t n, cap;
} hash_list;

static int hash_list_add(hash_list *list, const char *hash)
{
    if (list->n == list->cap) {
        size_t grow = list->cap ? 2 * list->cap : 16;
        void *p = cache_realloc(list->hash, grow * sizeof(*list->hash));
        if (!p)
            return -1;
        list->hash = p;
        list->cap = grow;
    }
    snprintf(list->hash[list->n++], ARB_CACHE_HASH_LEN, "%s", hash);
    return 0;
}

/* Keep the first problem found, for the report. */
static void note_problem(arb_cache_verify_report *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void note_problem(arb_cache_verify_report *r, const char *fmt, ...)
{
    if (r->detail[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
}

static arb_status verify_layer(arb_cache *c, cache_layer *l, arb_cache_verify_report *r,
                               arb_err *err)
{
    arb_status st = ARB_OK;
    sqlite3_stmt *q = NULL;
    hash_list bad = {0};
    char why[256];
    int rc;

    /* SQLite's own structure check: the first line is "ok" or a problem. */
    rc = sqlite3_prepare_v2(l->db, "PRAGMA integrity_check(1)", -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = cache_step(c, q);
    if (rc == SQLITE_ROW) {
        const char *text = cache_column_text(q, 0);
        if (strcmp(text, "ok") != 0) {
            r->integrity_ok = 0;
            note_problem(r, "%s: integrity_check: %s", l->name, text);
        }
    } else if (cache_rc_corrupt(rc)) {
        cache_note(c, l->db);
        r->integrity_ok = 0;
        note_problem(r, "%s: %s", l->name, cache_rc_detail(c, rc));
        goto out; /* the rows cannot be read either */
    } else {
        cache_note(c, l->db);
        st = cache_sqlite_fail(c, l, rc, "checking integrity", err);
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;

    /* Every cubin's length and checksum: SQLite does not look inside BLOBs. */
    rc = sqlite3_prepare_v2(l->db, "SELECT hash, cubin, cubin_len, checksum FROM entries", -1, &q,
                            NULL);
    if (rc == SQLITE_OK) {
        for (rc = cache_step(c, q); rc == SQLITE_ROW; rc = sqlite3_step(q)) {
            const void *blob = sqlite3_column_blob(q, 1);
            int64_t bytes = sqlite3_column_bytes(q, 1);
            r->checked++;
            if (cache_row_valid(blob, bytes, sqlite3_column_int64(q, 2), cache_column_text(q, 3),
                                why, sizeof(why)))
                continue;
            r->bad++;
            note_problem(r, "%s: entry %s: %s", l->name, cache_column_text(q, 0), why);
            if (!l->readonly && hash_list_add(&bad, cache_column_text(q, 0)) != 0) {
                st = ARB_FAIL(err, ARB_ERR_NOMEM, "verify: out of memory");
                goto out;
            }
        }
    }
    if (rc != SQLITE_DONE) {
        cache_note(c, l->db);
        if (cache_rc_corrupt(rc)) {
            r->integrity_ok = 0;
            note_problem(r, "%s: %s", l->name, cache_rc_detail(c, rc));
        } else {
            st = cache_sqlite_fail(c, l, rc, "reading entries", err);
        }
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;

    for (size_t i = 0; i < bad.n && c->writable; i++) {
        int moved = 0;
        rc = cache_quarantine_row(c, l, bad.hash[i], "arb-cache verify: checksum or length", 1,
                                  &moved);
        if (rc != SQLITE_OK) {
            st = cache_sqlite_fail(c, l, rc, "moving a damaged entry to quarantine", err);
            goto out;
        }
        if (moved)
            c->quarantined++;
    }
out:
    sqlite3_finalize(q);
    free(bad.hash);
    return st;
}

arb_status arb_cache_verify(arb_cache *cache, arb_cache_verify_report *report, arb_err *err)
{
    arb_status st = ARB_OK;
    if (!report)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_verify: report is NULL");
    memset(report, 0, sizeof(*report));
    report->integrity_ok = 1;
    st = cache_enter(cache, "arb_cache_verify", err);
    if (st)
        return st;
    for (int i = 0; i <= cache->n_readonly && !st; i++)
        if (cache->layer[i].db)
            st = verify_layer(cache, &cache->layer[i], report, err);
    cache_leave(cache);
    return st;
}

/* ---- Prune and clear ------------------------------------------------------- */

typedef struct prune_ctx {
    int64_t cap;
    int64_t evicted;
} prune_ctx;

static int prune_body(arb_cache *c, cache_layer *l, void *ctx)
{
    prune_ctx *x = ctx;
    return cache_evict(c, l, x->cap, &x->evicted);
}

arb_status arb_cache_prune(arb_cache *cache, int64_t max_bytes, int64_t *evicted, arb_err *err)
{
    arb_status st = ARB_OK;
    cache_layer *l = NULL;
    prune_ctx x = {max_bytes, 0};
    if (evicted)
        *evicted = 0;
    if (max_bytes < 0)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_prune: max_bytes is negative");
    st = cache_enter(cache, "arb_cache_prune", err);
    if (st)
        return st;
    st = writable_layer(cache, "prune the cache", &l, err);
    if (st)
        goto out;
    int rc = cache_write_txn(cache, l, prune_body, &x);
    if (rc != SQLITE_OK) {
        st = cache_sqlite_fail(cache, l, rc, "pruning", err);
        goto out;
    }
    if (evicted)
        *evicted = x.evicted;
out:
    cache_leave(cache);
    return st;
}

static int clear_body(arb_cache *c, cache_layer *l, void *ctx)
{
    (void)c;
    int tuning = *(const int *)ctx;
    int rc = sqlite3_exec(l->db, "DELETE FROM entries; DELETE FROM quarantine;", NULL, NULL, NULL);
    if (rc == SQLITE_OK && tuning)
        rc = sqlite3_exec(l->db, "DELETE FROM tuning;", NULL, NULL, NULL);
    return rc;
}

arb_status arb_cache_clear(arb_cache *cache, int tuning, arb_err *err)
{
    arb_status st = ARB_OK;
    cache_layer *l = NULL;
    st = cache_enter(cache, "arb_cache_clear", err);
    if (st)
        return st;
    st = writable_layer(cache, "clear the cache", &l, err);
    if (st)
        goto out;
    int rc = cache_write_txn(cache, l, clear_body, &tuning);
    if (cache_rc_corrupt(rc)) {
        /* Too damaged to delete from: rebuilding it empty is clearing it. */
        cache_recover(cache, l);
        if (cache_writable_layer(cache))
            rc = cache_write_txn(cache, l, clear_body, &tuning);
    }
    if (rc != SQLITE_OK) {
        st = cache_sqlite_fail(cache, l, rc, "clearing", err);
        goto out;
    }
    /* Give the space back; another process's open transaction may prevent
     * it, which is harmless: SQLite reuses the free pages. */
    cache_layer_finalize(l);
    sqlite3_exec(l->db, "VACUUM", NULL, NULL, NULL);
    sqlite3_exec(l->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
out:
    cache_leave(cache);
    return st;
}
