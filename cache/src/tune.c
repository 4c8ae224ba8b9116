/*
 * tune.c - the tuning table: one row per measured candidate configuration.
 *
 * A row is keyed by (kernel, shape, variant, precision, arch, device, driver,
 * nvrtc, build, configuration); measuring the same candidate again replaces
 * it.
 * Rows from another engine build or NVRTC are kept, not trusted: readers get
 * them with stale = 1 (TVM, BitBLAS and MIOpen keep old results the same way).
 */
#include <string.h>
#include <time.h>

#include "cache_internal.h"

typedef struct tune_put_ctx {
    const arb_tune_row *row;
    int64_t created;
} tune_put_ctx;

static int tune_put_body(arb_cache *c, cache_layer *l, void *ctx)
{
    const tune_put_ctx *x = ctx;
    const arb_tune_row *r = x->row;
    int rc;
    sqlite3_stmt *st = cache_stmt(c, l, STMT_TUNE_PUT, &rc);
    if (!st)
        return rc;
    int i = 1;
    sqlite3_bind_text(st, i++, r->kernel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, r->M);
    sqlite3_bind_int64(st, i++, r->N);
    sqlite3_bind_int64(st, i++, r->K);
    sqlite3_bind_int64(st, i++, r->gs);
    sqlite3_bind_text(st, i++, r->precision, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->arch, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->device, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, i++, r->sm_count);
    sqlite3_bind_text(st, i++, r->driver, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->nvrtc, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->build, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, i++, r->bm);
    sqlite3_bind_int(st, i++, r->bn);
    sqlite3_bind_int(st, i++, r->bk);
    sqlite3_bind_int(st, i++, r->tm);
    sqlite3_bind_int(st, i++, r->tn);
    sqlite3_bind_int(st, i++, r->warps);
    sqlite3_bind_int(st, i++, r->stages);
    sqlite3_bind_double(st, i++, r->median_us);
    sqlite3_bind_double(st, i++, r->p20_us);
    sqlite3_bind_double(st, i++, r->p80_us);
    sqlite3_bind_int(st, i++, r->repeats);
    sqlite3_bind_text(st, i++, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, cache_str(r->reason), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, cache_str(r->command), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, x->created);
    sqlite3_bind_int(st, i++, r->variant);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

arb_status arb_tune_put(arb_cache *cache, const arb_tune_row *row, arb_err *err)
{
    arb_status st = ARB_OK;
    if (!row)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_tune_put: row is NULL");
    const char *names[] = {"kernel", "precision", "arch",  "device",
                           "driver", "nvrtc",     "build", "status"};
    const char *values[] = {row->kernel, row->precision, row->arch,  row->device,
                            row->driver, row->nvrtc,     row->build, row->status};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!values[i])
            return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                            "arb_tune_put: field %s is NULL (use \"\" when empty)", names[i]);
    st = cache_enter(cache, "arb_tune_put", err);
    if (st)
        return st;
    cache_layer *l = cache_writable_layer(cache);
    if (!l) {
        if (cache->has_writable)
            cache_warn(cache, "tuning results are not stored: kernel cache %s is not writable",
                       cache->layer[cache->n_readonly].path);
        else
            cache_warn(cache, "tuning results are not stored: no writable kernel cache is open");
        goto out;
    }
    tune_put_ctx x = {row, row->created ? row->created : (int64_t)time(NULL)};
    int rc = cache_write_txn(cache, l, tune_put_body, &x);
    if (rc != SQLITE_OK)
        st = cache_write_failed(cache, l, rc, "storing a tuning result", err);
out:
    cache_leave(cache);
    return st;
}

/* Rows of one layer to `fn`; *stop set when it asked to stop. */
static arb_status tune_layer(arb_cache *c, cache_layer *l, const char *build, const char *nvrtc,
                             arb_tune_fn fn, void *ctx, int *stop, arb_err *err)
{
#define TUNE_ORDER                                                                              \
    " FROM tuning ORDER BY kernel, M, N, K, gs, variant, precision, arch, device, median_us, id"
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(l->db, "SELECT " CACHE_TUNE_COLS TUNE_ORDER, -1, &q, NULL);
    if (rc != SQLITE_OK) /* a read-only layer of schema version 1: rows are variant 0 */
        rc = sqlite3_prepare_v2(l->db, "SELECT " CACHE_TUNE_COLS_V1 TUNE_ORDER, -1, &q, NULL);
#undef TUNE_ORDER
    if (rc != SQLITE_OK) {
        cache_note(c, l->db);
        return cache_sqlite_fail(c, l, rc, "reading tuning rows", err);
    }
    for (rc = cache_step(c, q); rc == SQLITE_ROW && !*stop; rc = sqlite3_step(q)) {
        arb_tune_row r;
        int i = 0;
        memset(&r, 0, sizeof(r));
        r.kernel = cache_column_text(q, i++);
        r.M = sqlite3_column_int64(q, i++);
        r.N = sqlite3_column_int64(q, i++);
        r.K = sqlite3_column_int64(q, i++);
        r.gs = sqlite3_column_int64(q, i++);
        r.precision = cache_column_text(q, i++);
        r.arch = cache_column_text(q, i++);
        r.device = cache_column_text(q, i++);
        r.sm_count = sqlite3_column_int(q, i++);
        r.driver = cache_column_text(q, i++);
        r.nvrtc = cache_column_text(q, i++);
        r.build = cache_column_text(q, i++);
        r.bm = sqlite3_column_int(q, i++);
        r.bn = sqlite3_column_int(q, i++);
        r.bk = sqlite3_column_int(q, i++);
        r.tm = sqlite3_column_int(q, i++);
        r.tn = sqlite3_column_int(q, i++);
        r.warps = sqlite3_column_int(q, i++);
        r.stages = sqlite3_column_int(q, i++);
        r.median_us = sqlite3_column_double(q, i++);
        r.p20_us = sqlite3_column_double(q, i++);
        r.p80_us = sqlite3_column_double(q, i++);
        r.repeats = sqlite3_column_int(q, i++);
        r.status = cache_column_text(q, i++);
        r.reason = cache_column_text(q, i++);
        r.command = cache_column_text(q, i++);
        r.created = sqlite3_column_int64(q, i++);
        r.variant = sqlite3_column_int(q, i++);
        r.stale = (build && strcmp(r.build, build) != 0) || (nvrtc && strcmp(r.nvrtc, nvrtc) != 0);
        if (fn(ctx, &r))
            *stop = 1;
    }
    arb_status st = ARB_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        cache_note(c, l->db);
        st = cache_sqlite_fail(c, l, rc, "reading tuning rows", err);
    }
    sqlite3_finalize(q);
    return st;
}

arb_status arb_tune_each(arb_cache *cache, const char *build, const char *nvrtc, arb_tune_fn fn,
                         void *ctx, arb_err *err)
{
    arb_status st = ARB_OK;
    int stop = 0;
    if (!fn)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_tune_each: fn is NULL");
    st = cache_enter(cache, "arb_tune_each", err);
    if (st)
        return st;
    for (int i = 0; i <= cache->n_readonly && !st && !stop; i++)
        if (cache->layer[i].db)
            st = tune_layer(cache, &cache->layer[i], build, nvrtc, fn, ctx, &stop, err);
    cache_leave(cache);
    return st;
}
