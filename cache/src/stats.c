/*
 * stats.c - persistent counters for arb-cache stats.
 *
 * arb_cache_stats_add only adds to an in-memory table (no SQLite on the hot
 * path); arb_cache_stats_flush and arb_cache_close add the buffered values
 * into the stats table with one UPSERT per counter, in one transaction, so
 * that counters from many processes sum. While the cache is degraded the
 * buffer is kept (and still reported by arb_cache_stats_each).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_internal.h"

static void stat_free_all(cache_stat *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].scope);
        free(s[i].name);
    }
}

void cache_stats_free(arb_cache *c)
{
    stat_free_all(c->stats, c->n_stats);
    free(c->stats);
    c->stats = NULL;
    c->n_stats = 0;
    c->cap_stats = 0;
}

/* Add to (scope, name) in a growable table; -1 when out of memory. */
static int table_add(cache_stat **table, size_t *n, size_t *cap, const char *scope,
                     const char *name, double value)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*table)[i].scope, scope) == 0 && strcmp((*table)[i].name, name) == 0) {
            (*table)[i].value += value;
            return 0;
        }
    }
    if (*n == *cap) {
        size_t grow = *cap ? 2 * *cap : 32;
        cache_stat *p = cache_realloc(*table, grow * sizeof(*p));
        if (!p)
            return -1;
        *table = p;
        *cap = grow;
    }
    char *s = cache_strdup(scope);
    char *m = cache_strdup(name);
    if (!s || !m) {
        free(s);
        free(m);
        return -1;
    }
    (*table)[*n] = (cache_stat){s, m, value};
    (*n)++;
    return 0;
}

void arb_cache_stats_add(arb_cache *cache, const char *scope, const char *name, double value)
{
    if (!cache || !scope || !name || cache->pid != getpid())
        return;
    pthread_mutex_lock(&cache->lock);
    /* Out of memory: the counter is lost, which costs only a statistic. */
    table_add(&cache->stats, &cache->n_stats, &cache->cap_stats, scope, name, value);
    pthread_mutex_unlock(&cache->lock);
}

static int flush_body(arb_cache *c, cache_layer *l, void *ctx)
{
    (void)ctx;
    int rc = SQLITE_OK;
    for (size_t i = 0; i < c->n_stats && rc == SQLITE_OK; i++) {
        sqlite3_stmt *st = cache_stmt(c, l, STMT_STATS_UPSERT, &rc);
        if (!st)
            break;
        sqlite3_bind_text(st, 1, c->stats[i].scope, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->stats[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, c->stats[i].value);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    return rc;
}

arb_status cache_stats_flush_locked(arb_cache *c, arb_err *err)
{
    cache_layer *l = cache_writable_layer(c);
    if (c->n_stats == 0 || !l)
        return ARB_OK;
    int rc = cache_write_txn(c, l, flush_body, NULL);
    if (rc != SQLITE_OK)
        return cache_write_failed(c, l, rc, "writing statistics", err);
    cache_stats_free(c);
    return ARB_OK;
}

arb_status arb_cache_stats_flush(arb_cache *cache, arb_err *err)
{
    arb_status st = cache_enter(cache, "arb_cache_stats_flush", err);
    if (st)
        return st;
    st = cache_stats_flush_locked(cache, err);
    cache_leave(cache);
    return st;
}

static int stat_order(const void *a, const void *b)
{
    const cache_stat *x = a;
    const cache_stat *y = b;
    int d = strcmp(x->scope, y->scope);
    return d ? d : strcmp(x->name, y->name);
}

arb_status arb_cache_stats_each(arb_cache *cache, arb_cache_stat_fn fn, void *ctx, arb_err *err)
{
    arb_status st = ARB_OK;
    cache_stat *all = NULL;
    size_t n = 0;
    size_t cap = 0;
    sqlite3_stmt *q = NULL;

    if (!fn)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_stats_each: fn is NULL");
    st = cache_enter(cache, "arb_cache_stats_each", err);
    if (st)
        return st;
    st = cache_stats_flush_locked(cache, err);
    if (st)
        goto out;

    /* The persisted counters, plus whatever could not be written. */
    cache_layer *l = cache_wlayer(cache);
    if (l) {
        int rc = sqlite3_prepare_v2(l->db, "SELECT scope, name, value FROM stats", -1, &q, NULL);
        if (rc == SQLITE_OK) {
            for (rc = cache_step(cache, q); rc == SQLITE_ROW; rc = sqlite3_step(q)) {
                const char *scope = (const char *)sqlite3_column_text(q, 0);
                const char *name = (const char *)sqlite3_column_text(q, 1);
                if (table_add(&all, &n, &cap, scope ? scope : "", name ? name : "",
                              sqlite3_column_double(q, 2)) != 0) {
                    st = ARB_FAIL(err, ARB_ERR_NOMEM, "reading statistics: out of memory");
                    goto out;
                }
            }
        }
        if (rc != SQLITE_DONE) {
            cache_note(cache, l->db);
            st = cache_sqlite_fail(cache, l, rc, "reading statistics", err);
            goto out;
        }
    }
    for (size_t i = 0; i < cache->n_stats; i++) {
        if (table_add(&all, &n, &cap, cache->stats[i].scope, cache->stats[i].name,
                      cache->stats[i].value) != 0) {
            st = ARB_FAIL(err, ARB_ERR_NOMEM, "reading statistics: out of memory");
            goto out;
        }
    }
    if (n > 1)
        qsort(all, n, sizeof(*all), stat_order);
    for (size_t i = 0; i < n; i++)
        if (fn(ctx, all[i].scope, all[i].name, all[i].value))
            break;
out:
    sqlite3_finalize(q);
    stat_free_all(all, n);
    free(all);
    cache_leave(cache);
    return st;
}

static int zero_body(arb_cache *c, cache_layer *l, void *ctx)
{
    (void)c;
    (void)ctx;
    return sqlite3_exec(l->db, "DELETE FROM stats", NULL, NULL, NULL);
}

arb_status arb_cache_stats_zero(arb_cache *cache, arb_err *err)
{
    arb_status st = cache_enter(cache, "arb_cache_stats_zero", err);
    if (st)
        return st;
    cache_stats_free(cache);
    cache_layer *l = cache_writable_layer(cache);
    if (cache->has_writable && !l) {
        st = ARB_FAIL(err, ARB_ERR_READONLY,
                      "cannot zero the statistics: kernel cache %s is not writable",
                      cache->layer[cache->n_readonly].path);
        goto out;
    }
    if (l) {
        int rc = cache_write_txn(cache, l, zero_body, NULL);
        if (rc != SQLITE_OK)
            st = cache_sqlite_fail(cache, l, rc, "zeroing statistics", err);
    }
out:
    cache_leave(cache);
    return st;
}
