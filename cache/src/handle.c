/*
 * handle.c - the arb_cache handle: open, close, accessors, the once-per-
 * handle warnings, degrading to read-only, and error messages.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache_internal.h"

void arb_cache_options_init(arb_cache_options *opt)
{
    if (opt)
        memset(opt, 0, sizeof(*opt));
}

void arb_cache_entry_free(arb_cache_entry *entry)
{
    if (!entry)
        return;
    free(entry->cubin);
    free(entry->lowered_name);
    free(entry->compile_log);
    memset(entry, 0, sizeof(*entry));
}

/* FNV-1a: warnings are remembered by the hash of their text. */
static uint64_t text_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void cache_warn(arb_cache *c, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' '; /* one line */

    uint64_t h = text_hash(msg);
    for (size_t i = 0; i < c->n_warned; i++)
        if (c->warned[i] == h)
            return;
    if (c->n_warned == c->cap_warned) {
        size_t cap = c->cap_warned ? 2 * c->cap_warned : 16;
        uint64_t *grown = cache_realloc(c->warned, cap * sizeof(*grown));
        if (grown) {
            c->warned = grown;
            c->cap_warned = cap;
        }
    }
    /* Out of memory: still warn, just possibly twice. */
    if (c->n_warned < c->cap_warned)
        c->warned[c->n_warned++] = h;

    if (c->warn)
        c->warn(c->warn_ctx, msg);
    else
        fprintf(stderr, "arb: warning: %s\n", msg);
}

void cache_degrade(arb_cache *c, const char *reason)
{
    if (!c->writable)
        return;
    c->writable = 0;
    cache_warn(c,
               "kernel cache %s is not writable (%s); kernels will be compiled in memory and "
               "not stored: fix the file or folder, or set ARB_CACHE to a writable path",
               c->layer[c->n_readonly].path, reason);
}

cache_layer *cache_wlayer(arb_cache *c)
{
    if (!c->has_writable || !c->layer[c->n_readonly].db)
        return NULL;
    return &c->layer[c->n_readonly];
}

cache_layer *cache_writable_layer(arb_cache *c)
{
    cache_layer *l = cache_wlayer(c);
    if (!c->writable || !l || l->readonly)
        return NULL;
    return l;
}

/* The layer at public index `layer` (0..n_readonly-1, or the writable layer
 * as ARB_CACHE_LAYER_WRITABLE or n_readonly), else NULL. */
static cache_layer *layer_at(arb_cache *c, int layer)
{
    if (layer >= 0 && layer < c->n_readonly)
        return &c->layer[layer];
    if (c->has_writable && (layer == ARB_CACHE_LAYER_WRITABLE || layer == c->n_readonly))
        return &c->layer[c->n_readonly];
    return NULL;
}

int cache_layer_index(const arb_cache *c, const cache_layer *l)
{
    int index = (int)(l - c->layer);
    return index < c->n_readonly ? index : ARB_CACHE_LAYER_WRITABLE;
}

arb_status cache_sqlite_fail(arb_cache *c, const cache_layer *l, int rc, const char *what,
                             arb_err *err)
{
    const char *path = l ? l->path : "(no file)";
    if (cache_rc_busy(rc))
        return ARB_FAIL(err, ARB_ERR_BUSY,
                        "kernel cache %s: %s: still locked by another process after %d ms; "
                        "retry when the other arb process is done",
                        path, what, c->busy_ms);
    if (cache_rc_corrupt(rc))
        return ARB_FAIL(err, ARB_ERR_CORRUPT,
                        "kernel cache %s: %s: %s; it is rebuilt the next time it is "
                        "opened for writing, or run arb-cache clear",
                        path, what, cache_rc_detail(c, rc));
    if (cache_rc_nomem(rc))
        return ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: %s: out of memory", path, what);
    if ((rc & 0xff) == SQLITE_READONLY)
        return ARB_FAIL(err, ARB_ERR_READONLY, "kernel cache %s: %s: %s", path, what,
                        cache_rc_detail(c, rc));
    return ARB_FAIL(err, ARB_ERR_CACHE,
                    "kernel cache %s: %s: %s; check the file and its folder, or run "
                    "arb-cache verify",
                    path, what, cache_rc_detail(c, rc));
}

static void layer_close(cache_layer *l, int own_process)
{
    cache_layer_finalize(l);
    /* A connection is never closed in a child of fork(): the parent owns it. */
    if (l->db && own_process)
        sqlite3_close_v2(l->db);
    l->db = NULL;
    free(l->path);
    free(l->name);
    l->path = NULL;
    l->name = NULL;
}

static void cache_free(arb_cache *c)
{
    int own_process = c->pid == getpid();
    for (int i = 0; i <= ARB_CACHE_MAX_READONLY; i++)
        layer_close(&c->layer[i], own_process);
    cache_stats_free(c);
    free(c->warned);
    free(c->skip);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

arb_status arb_cache_open(arb_cache **out, const arb_cache_options *opt, arb_err *err)
{
    arb_status st = ARB_OK;
    arb_cache *c = NULL;

    if (!out || !opt)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_open: out and opt must not be NULL");
    *out = NULL;
    if (opt->n_readonly < 0 || opt->n_readonly > ARB_CACHE_MAX_READONLY ||
        (opt->n_readonly > 0 && !opt->readonly_paths))
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "arb_cache_open: %d read-only layers given; 0 to %d are supported",
                        opt->n_readonly, ARB_CACHE_MAX_READONLY);
    if (opt->max_bytes < 0 || opt->busy_timeout_ms < 0)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "arb_cache_open: max_bytes and busy_timeout_ms must not be negative");

    c = cache_calloc(1, sizeof(*c));
    if (!c)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "arb_cache_open: out of memory");
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return ARB_FAIL(err, ARB_ERR_NOMEM, "arb_cache_open: cannot create a mutex");
    }
    c->pid = getpid();
    c->max_bytes = opt->max_bytes;
    c->busy_ms = opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : CACHE_DEFAULT_BUSY_MS;
    c->warn = opt->warn;
    c->warn_ctx = opt->warn_ctx;
    c->rng = ((uint64_t)c->pid << 32) ^ (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
    if (!c->rng)
        c->rng = 0x9e3779b97f4a7c15ull;
    c->n_readonly = opt->n_readonly;

    for (int i = 0; i < opt->n_readonly; i++) {
        if (!opt->readonly_paths[i] || !opt->readonly_paths[i][0]) {
            st = ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                          "arb_cache_open: read-only layer %d has an empty path", i);
            goto out;
        }
        st = cache_open_readonly(c, i, opt->readonly_paths[i], err);
        if (st)
            goto out;
    }
    if (opt->path && opt->path[0]) {
        c->has_writable = 1;
        c->writable = 1;
        st = cache_open_writable(c, opt->path, err);
        if (st)
            goto out;
    }
    *out = c;
    c = NULL;
out:
    if (c)
        cache_free(c);
    return st;
}

void arb_cache_close(arb_cache *cache)
{
    if (!cache)
        return;
    if (cache->pid == getpid()) {
        arb_err ignored = {0};
        pthread_mutex_lock(&cache->lock);
        cache_stats_flush_locked(cache, &ignored);
        pthread_mutex_unlock(&cache->lock);
    }
    cache_free(cache);
}

int arb_cache_writable(const arb_cache *cache)
{
    if (!cache)
        return 0;
    arb_cache *c = (arb_cache *)cache; /* the lock is not part of the value */
    pthread_mutex_lock(&c->lock);
    int writable = c->writable;
    pthread_mutex_unlock(&c->lock);
    return writable;
}

const char *arb_cache_path(const arb_cache *cache)
{
    if (!cache || !cache->has_writable)
        return NULL;
    return cache->layer[cache->n_readonly].path;
}

int arb_cache_layer_count(const arb_cache *cache)
{
    if (!cache)
        return 0;
    return cache->n_readonly + (cache->has_writable ? 1 : 0);
}

const char *arb_cache_layer_name(const arb_cache *cache, int layer)
{
    if (!cache)
        return NULL;
    const cache_layer *l = layer_at((arb_cache *)cache, layer);
    return l ? l->name : NULL;
}

int64_t arb_cache_quarantined(const arb_cache *cache)
{
    if (!cache)
        return 0;
    arb_cache *c = (arb_cache *)cache; /* the lock is not part of the value */
    pthread_mutex_lock(&c->lock);
    int64_t n = c->quarantined;
    pthread_mutex_unlock(&c->lock);
    return n;
}

arb_status cache_enter(arb_cache *c, const char *fn, arb_err *err)
{
    if (!c)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: the cache handle is NULL", fn);
    if (c->pid != getpid())
        return ARB_FAIL(err, ARB_ERR_CACHE,
                        "%s: this cache handle was opened in process %d and is used in process "
                        "%d (after fork()); open the cache again in the child",
                        fn, (int)c->pid, (int)getpid());
    pthread_mutex_lock(&c->lock);
    return ARB_OK;
}

void cache_leave(arb_cache *c)
{
    pthread_mutex_unlock(&c->lock);
}
