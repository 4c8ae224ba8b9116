/*
 * store.c - get, contains, put, quarantine and LRU eviction.
 *
 * A lookup is an autocommit SELECT per layer (read-only layers first, then
 * the writable one); every row's length and SHA-256 are checked before it
 * is returned. A put is one BEGIN IMMEDIATE transaction: INSERT OR IGNORE
 * (the first writer wins, a live row is never overwritten), then eviction
 * past max_bytes. Nothing is compiled inside a transaction: the caller
 * compiles between get and put.
 *
 * Failures of the SQLite file never fail a get or a put: they degrade (see
 * cache_write_failed) and the caller compiles in memory. Only running out
 * of memory and misuse are errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arb/sha256.h"
#include "cache_internal.h"

int cache_row_valid(const void *cubin, int64_t bytes, int64_t cubin_len, const char *checksum,
                    char *why, size_t why_len)
{
    char hex[ARB_CACHE_HASH_LEN];
    if (bytes <= 0) {
        /* put never stores an empty cubin: another program wrote this row. */
        snprintf(why, why_len, "its cubin is empty");
        return 0;
    }
    if (bytes != cubin_len) {
        snprintf(why, why_len, "its cubin is %" PRId64 " bytes but the row says %" PRId64, bytes,
                 cubin_len);
        return 0;
    }
    arb_sha256_hex_of(cubin ? cubin : "", (size_t)bytes, hex);
    if (!checksum || strcmp(hex, checksum) != 0) {
        snprintf(why, why_len, "the SHA-256 checksum of its cubin does not match");
        return 0;
    }
    return 1;
}

/* Bind the key fields to ?first .. ?first+18 in CACHE_KEY_COLS order. */
static int bind_key(sqlite3_stmt *st, int first, const arb_cache_key *key)
{
    int i = first;
    int rc = SQLITE_OK;
#define BIND_TEXT(v) \
    if (rc == SQLITE_OK) \
    rc = sqlite3_bind_text(st, i++, cache_str(v), -1, SQLITE_STATIC)
#define BIND_INT(v) \
    if (rc == SQLITE_OK) \
    rc = sqlite3_bind_int64(st, i++, (sqlite3_int64)(v))
    BIND_TEXT(key->kernel);
    BIND_TEXT(key->name_expr);
    BIND_INT(key->M);
    BIND_INT(key->N);
    BIND_INT(key->K);
    BIND_INT(key->gs);
    BIND_INT(key->bm);
    BIND_INT(key->bn);
    BIND_INT(key->bk);
    BIND_INT(key->tm);
    BIND_INT(key->tn);
    BIND_INT(key->warps);
    BIND_INT(key->stages);
    BIND_TEXT(key->precision);
    BIND_TEXT(key->arch);
    BIND_TEXT(key->nvrtc_version);
    BIND_TEXT(key->template_sha);
    BIND_TEXT(key->options);
    BIND_TEXT(key->env);
#undef BIND_TEXT
#undef BIND_INT
    return rc;
}

arb_status cache_write_failed(arb_cache *c, cache_layer *l, int rc, const char *what,
                              arb_err *err)
{
    char reason[1024];
    if (cache_rc_nomem(rc))
        return ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: %s: out of memory", l->path, what);
    if (cache_rc_degrades(rc)) {
        snprintf(reason, sizeof(reason), "%s failed: %s", what, cache_rc_detail(c, rc));
        cache_degrade(c, reason);
    } else if (cache_rc_busy(rc)) {
        cache_warn(c,
                   "kernel cache %s stayed locked by another process for more than %d ms; "
                   "skipped %s (kernels are compiled in memory meanwhile)",
                   l->path, c->busy_ms, what);
    } else if (cache_rc_corrupt(rc)) {
        cache_recover(c, l);
    } else {
        cache_warn(c, "kernel cache %s: %s failed: %s; skipped it", l->path, what,
                   cache_rc_detail(c, rc));
    }
    return ARB_OK;
}

/* A read failed: say so once and treat the layer as a miss. */
static arb_status read_failed(arb_cache *c, cache_layer *l, int rc, arb_err *err)
{
    if (cache_rc_nomem(rc))
        return ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: out of memory", l->path);
    if (cache_rc_corrupt(rc) && !l->readonly) {
        cache_recover(c, l);
    } else if (cache_rc_busy(rc)) {
        cache_warn(c,
                   "kernel cache %s stayed locked by another process for more than %d ms; "
                   "lookups there count as misses meanwhile",
                   l->name, c->busy_ms);
    } else {
        cache_warn(c, "cannot read kernel cache %s: %s; lookups there count as misses", l->name,
                   cache_rc_detail(c, rc));
    }
    return ARB_OK;
}

static int skipped(const arb_cache *c, const char *hash)
{
    for (size_t i = 0; i < c->n_skip; i++)
        if (strcmp(c->skip[i], hash) == 0)
            return 1;
    return 0;
}

/* Copy the row under `st` into `entry` (allocating its pointers). */
static arb_status fill_entry(sqlite3_stmt *st, const void *blob, int64_t bytes,
                             arb_cache_entry *entry, arb_err *err)
{
    const char *lowered = (const char *)sqlite3_column_text(st, COL_LOWERED_NAME);
    const char *log = (const char *)sqlite3_column_text(st, COL_COMPILE_LOG);
    const char *sum = (const char *)sqlite3_column_text(st, COL_CHECKSUM);
    memset(entry, 0, sizeof(*entry));
    entry->cubin = cache_malloc(bytes > 0 ? (size_t)bytes : 1);
    entry->lowered_name = cache_strdup(cache_str(lowered));
    entry->compile_log = cache_strdup(cache_str(log));
    if (!entry->cubin || !entry->lowered_name || !entry->compile_log) {
        arb_cache_entry_free(entry);
        return ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache: out of memory reading an entry");
    }
    if (bytes > 0)
        memcpy(entry->cubin, blob, (size_t)bytes);
    entry->cubin_len = (size_t)bytes;
    entry->block_x = sqlite3_column_int(st, COL_BLOCK_X);
    entry->block_y = sqlite3_column_int(st, COL_BLOCK_Y);
    entry->block_z = sqlite3_column_int(st, COL_BLOCK_Z);
    entry->shared_bytes = sqlite3_column_int(st, COL_SHARED_BYTES);
    entry->registers = sqlite3_column_int(st, COL_REGISTERS);
    entry->spill_bytes = sqlite3_column_int(st, COL_SPILL_BYTES);
    entry->compile_ms = sqlite3_column_double(st, COL_COMPILE_MS);
    entry->created = sqlite3_column_int64(st, COL_CREATED);
    entry->last_used = sqlite3_column_int64(st, COL_LAST_USED);
    snprintf(entry->checksum, sizeof(entry->checksum), "%s", cache_str(sum));
    return ARB_OK;
}

/* Rewrite last_used of a hit in the writable layer (one that puts reach),
 * at most once every CACHE_TOUCH_SECONDS. */
static arb_status touch(arb_cache *c, cache_layer *l, const char *hash, arb_cache_entry *entry,
                        int64_t last_used, arb_err *err)
{
    int64_t now = (int64_t)time(NULL);
    int rc;
    if (last_used >= now - CACHE_TOUCH_SECONDS)
        return ARB_OK;
    sqlite3_stmt *st = cache_stmt(c, l, STMT_TOUCH, &rc);
    if (st) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
        rc = cache_step(c, st);
        if (rc == SQLITE_DONE && sqlite3_changes(l->db) > 0 && entry)
            entry->last_used = now;
        sqlite3_reset(st);
    }
    if (rc == SQLITE_DONE || rc == SQLITE_OK)
        return ARB_OK;
    return cache_write_failed(c, l, rc, "updating last_used", err);
}

/* Look `hash` up in one layer. *hit = 1 on a valid row (entry filled when
 * not NULL). A bad row is warned about and quarantined (writable layer). */
static arb_status lookup_layer(arb_cache *c, cache_layer *l, const char *hash,
                               arb_cache_entry *entry, int *hit, arb_err *err)
{
    arb_status st = ARB_OK;
    char why[256];
    int rc;
    int valid = 0;
    int64_t last_used = 0;

    *hit = 0;
    if (l->readonly && l != &c->layer[c->n_readonly] && skipped(c, hash))
        return ARB_OK;
    sqlite3_stmt *q = cache_stmt(c, l, STMT_GET, &rc);
    if (!q)
        return read_failed(c, l, rc, err);
    sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
    rc = cache_step(c, q);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(q);
        return ARB_OK;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return read_failed(c, l, rc, err);
    }
    const void *blob = sqlite3_column_blob(q, COL_CUBIN);
    int64_t bytes = sqlite3_column_bytes(q, COL_CUBIN);
    valid = cache_row_valid(blob, bytes, sqlite3_column_int64(q, COL_CUBIN_LEN),
                            (const char *)sqlite3_column_text(q, COL_CHECKSUM), why, sizeof(why));
    last_used = sqlite3_column_int64(q, COL_LAST_USED);
    if (valid && entry)
        st = fill_entry(q, blob, bytes, entry, err);
    sqlite3_reset(q);
    if (st)
        return st;

    if (valid) {
        *hit = 1;
        if (entry)
            entry->layer = cache_layer_index(c, l);
        if (l == cache_writable_layer(c))
            st = touch(c, l, hash, entry, last_used, err);
        if (st && entry)
            arb_cache_entry_free(entry);
        if (st)
            *hit = 0;
        return st;
    }

    int moved = 0;
    if (l == cache_writable_layer(c)) {
        rc = cache_quarantine_row(c, l, hash, why, 1, &moved);
        if (rc != SQLITE_OK)
            st = cache_write_failed(c, l, rc, "moving a damaged entry to quarantine", err);
        if (moved)
            c->quarantined++;
    }
    cache_warn(c,
               "kernel cache entry %s in %s failed its check (%s): %s; the kernel will be "
               "compiled again",
               hash, l->name, why,
               moved ? "moved it to quarantine"
                     : (l->readonly ? "skipped it (a read-only layer is never modified)"
                                    : "skipped it"));
    return st;
}

/* Every layer in order; the first valid row wins. */
static arb_status lookup(arb_cache *c, const char *hash, arb_cache_entry *entry, int *found,
                         arb_err *err)
{
    *found = 0;
    for (int i = 0; i <= c->n_readonly; i++) {
        cache_layer *l = &c->layer[i];
        int hit = 0;
        if (!l->db)
            continue;
        arb_status st = lookup_layer(c, l, hash, entry, &hit, err);
        if (st)
            return st;
        if (hit) {
            *found = 1;
            return ARB_OK;
        }
    }
    return ARB_OK;
}

static int hash_ok(const char *hash)
{
    size_t n = 0;
    for (; hash[n]; n++)
        if (!((hash[n] >= '0' && hash[n] <= '9') || (hash[n] >= 'a' && hash[n] <= 'f')))
            return 0;
    return n == ARB_CACHE_HASH_LEN - 1;
}

arb_status arb_cache_get(arb_cache *cache, const char *hash, arb_cache_entry *entry, int *found,
                         arb_err *err)
{
    arb_status st = ARB_OK;
    if (!hash || !entry || !found)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_get: hash, entry and found are "
                                                  "required");
    *found = 0;
    memset(entry, 0, sizeof(*entry));
    if (!hash_ok(hash))
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "arb_cache_get: '%.80s' is not a key hash (64 lower-case hex digits)",
                        hash);
    st = cache_enter(cache, "arb_cache_get", err);
    if (st)
        return st;
    st = lookup(cache, hash, entry, found, err);
    cache_leave(cache);
    return st;
}

arb_status arb_cache_contains(arb_cache *cache, const char *hash, int *found, arb_err *err)
{
    arb_status st = ARB_OK;
    if (!hash || !found)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_contains: hash and found are "
                                                  "required");
    *found = 0;
    if (!hash_ok(hash))
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "arb_cache_contains: '%.80s' is not a key hash (64 lower-case hex "
                        "digits)",
                        hash);
    st = cache_enter(cache, "arb_cache_contains", err);
    if (st)
        return st;
    st = lookup(cache, hash, NULL, found, err);
    cache_leave(cache);
    return st;
}

/* ---- Eviction ------------------------------------------------------------ */

int cache_evict(arb_cache *c, cache_layer *l, int64_t cap, int64_t *evicted)
{
    int rc;
    int64_t total = 0;
    int64_t deleted = 0;
    char (*victims)[ARB_CACHE_HASH_LEN] = NULL;
    size_t n = 0;
    size_t cap_victims = 0;
    sqlite3_stmt *sel = NULL;

    sqlite3_stmt *sum = cache_stmt(c, l, STMT_BYTES, &rc);
    if (!sum)
        goto out;
    rc = sqlite3_step(sum);
    if (rc == SQLITE_ROW)
        total = sqlite3_column_int64(sum, 0);
    sqlite3_reset(sum);
    if (rc != SQLITE_ROW)
        goto out;
    rc = SQLITE_OK;
    if (total <= cap)
        goto out;

    /* Oldest first: collect the victims, then delete them. */
    rc = sqlite3_prepare_v2(l->db,
                            "SELECT hash, length(cubin) FROM entries "
                            "ORDER BY last_used, created, hash",
                            -1, &sel, NULL);
    if (rc != SQLITE_OK)
        goto out;
    while (total > cap && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
        if (n == cap_victims) {
            size_t grow = cap_victims ? 2 * cap_victims : 16;
            void *p = cache_realloc(victims, grow * sizeof(*victims));
            if (!p) {
                rc = SQLITE_NOMEM;
                goto out;
            }
            victims = p;
            cap_victims = grow;
        }
        snprintf(victims[n++], ARB_CACHE_HASH_LEN, "%s", cache_column_text(sel, 0));
        total -= sqlite3_column_int64(sel, 1);
    }
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_finalize(sel);
    sel = NULL;
    if (rc != SQLITE_OK)
        goto out;

    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_stmt *del = cache_stmt(c, l, STMT_DELETE, &rc);
        if (!del)
            break;
        sqlite3_bind_text(del, 1, victims[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(del);
        sqlite3_reset(del);
        if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
            deleted++;
        }
    }
out:
    if (rc != SQLITE_OK)
        cache_note(c, l->db);
    sqlite3_finalize(sel);
    free(victims);
    if (evicted)
        *evicted = deleted;
    return rc;
}

/* ---- Put ------------------------------------------------------------------- */

typedef struct put_ctx {
    const arb_cache_key *key;
    const arb_cache_entry *entry;
    const char *hash;
    const char *checksum;
    int64_t now;
    int inserted;
} put_ctx;

static int put_body(arb_cache *c, cache_layer *l, void *ctx)
{
    put_ctx *x = ctx;
    const arb_cache_entry *e = x->entry;
    int rc;
    x->inserted = 0;
    sqlite3_stmt *st = cache_stmt(c, l, STMT_INSERT, &rc);
    if (!st)
        return rc;
    int i = 1;
    sqlite3_bind_text(st, i++, x->hash, -1, SQLITE_STATIC);
    rc = bind_key(st, i, x->key);
    i += CACHE_KEY_NCOLS;
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, i++, e->cubin, (sqlite3_uint64)e->cubin_len, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, i++, (sqlite3_int64)e->cubin_len);
        sqlite3_bind_text(st, i++, x->checksum, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, cache_str(e->lowered_name), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, i++, e->block_x);
        sqlite3_bind_int(st, i++, e->block_y);
        sqlite3_bind_int(st, i++, e->block_z);
        sqlite3_bind_int(st, i++, e->shared_bytes);
        sqlite3_bind_int(st, i++, e->registers);
        sqlite3_bind_int(st, i++, e->spill_bytes);
        sqlite3_bind_text(st, i++, cache_str(e->compile_log), -1, SQLITE_STATIC);
        sqlite3_bind_double(st, i++, e->compile_ms);
        sqlite3_bind_int64(st, i++, x->now);
        sqlite3_bind_int64(st, i++, x->now);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return rc == SQLITE_OK ? SQLITE_ERROR : rc;
    x->inserted = sqlite3_changes(l->db) > 0;
    if (x->inserted && c->max_bytes > 0)
        return cache_evict(c, l, c->max_bytes, NULL);
    return SQLITE_OK;
}

static arb_status check_key(const arb_cache_key *key, arb_err *err)
{
    const char *names[] = {"kernel",        "name_expr",    "precision", "arch",
                           "nvrtc_version", "template_sha", "options",   "env"};
    const char *values[] = {key->kernel,        key->name_expr,    key->precision, key->arch,
                            key->nvrtc_version, key->template_sha, key->options,   key->env};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!values[i])
            return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                            "arb_cache_put: key field %s is NULL (use \"\" when empty)",
                            names[i]);
    return ARB_OK;
}

arb_status arb_cache_put(arb_cache *cache, const arb_cache_key *key, const arb_cache_entry *entry,
                         int *inserted, arb_err *err)
{
    arb_status st = ARB_OK;
    char hash[ARB_CACHE_HASH_LEN];
    char checksum[ARB_CACHE_HASH_LEN];
    int entered = 0;

    if (inserted)
        *inserted = 0;
    if (!key || !entry || !inserted) {
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_cache_put: key, entry and inserted are "
                                                "required");
        goto out;
    }
    if (!entry->cubin || entry->cubin_len == 0) {
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                      "arb_cache_put: entry for kernel %s has no cubin bytes",
                      key->kernel ? key->kernel : "(null)");
        goto out;
    }
    st = check_key(key, err);
    if (st)
        goto out;
    st = cache_enter(cache, "arb_cache_put", err);
    if (st)
        goto out;
    entered = 1;

    cache_layer *l = cache_writable_layer(cache);
    if (!l)
        goto out;
    arb_cache_key_hash(key, hash);
    arb_sha256_hex_of(entry->cubin, entry->cubin_len, checksum);
    put_ctx x = {key, entry, hash, checksum, (int64_t)time(NULL), 0};
    int rc = cache_write_txn(cache, l, put_body, &x);
    if (rc != SQLITE_OK) {
        st = cache_write_failed(cache, l, rc, "storing a kernel", err);
        goto out;
    }
    *inserted = x.inserted;
out:
    if (entered)
        cache_leave(cache);
    return st;
}

/* ---- Quarantine ------------------------------------------------------------ */

typedef struct quarantine_ctx {
    const char *hash;
    const char *reason;
    int only_if_bad;
    int moved;
} quarantine_ctx;

static int quarantine_body(arb_cache *c, cache_layer *l, void *ctx)
{
    quarantine_ctx *x = ctx;
    int rc;
    x->moved = 0;
    if (x->only_if_bad) {
        /* Look again inside the transaction: another process may have
         * quarantined it and stored a good row since our read. */
        char why[256];
        sqlite3_stmt *q = cache_stmt(c, l, STMT_GET, &rc);
        if (!q)
            return rc;
        sqlite3_bind_text(q, 1, x->hash, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        int bad = 0;
        if (rc == SQLITE_ROW) {
            const void *blob = sqlite3_column_blob(q, COL_CUBIN);
            int64_t bytes = sqlite3_column_bytes(q, COL_CUBIN);
            bad = !cache_row_valid(blob, bytes, sqlite3_column_int64(q, COL_CUBIN_LEN),
                                   (const char *)sqlite3_column_text(q, COL_CHECKSUM), why,
                                   sizeof(why));
        }
        sqlite3_reset(q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return rc;
        if (!bad)
            return SQLITE_OK;
    }
    sqlite3_stmt *copy = cache_stmt(c, l, STMT_QUARANTINE_COPY, &rc);
    if (!copy)
        return rc;
    sqlite3_bind_text(copy, 1, x->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(copy, 2, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(copy, 3, x->hash, -1, SQLITE_STATIC);
    rc = sqlite3_step(copy);
    sqlite3_reset(copy);
    if (rc != SQLITE_DONE)
        return rc;
    sqlite3_stmt *del = cache_stmt(c, l, STMT_DELETE, &rc);
    if (!del)
        return rc;
    sqlite3_bind_text(del, 1, x->hash, -1, SQLITE_STATIC);
    rc = sqlite3_step(del);
    sqlite3_reset(del);
    if (rc != SQLITE_DONE)
        return rc;
    x->moved = sqlite3_changes(l->db) > 0;
    return SQLITE_OK;
}

int cache_quarantine_row(arb_cache *c, cache_layer *l, const char *hash, const char *reason,
                         int only_if_bad, int *moved)
{
    quarantine_ctx x = {hash, reason, only_if_bad, 0};
    int rc = cache_write_txn(c, l, quarantine_body, &x);
    *moved = rc == SQLITE_OK && x.moved;
    return rc;
}

/* Remember a hash that only a read-only layer holds, so lookups skip it. */
static arb_status skip_add(arb_cache *c, const char *hash, arb_err *err)
{
    if (skipped(c, hash))
        return ARB_OK;
    if (c->n_skip == c->cap_skip) {
        size_t grow = c->cap_skip ? 2 * c->cap_skip : 8;
        void *p = cache_realloc(c->skip, grow * sizeof(*c->skip));
        if (!p)
            return ARB_FAIL(err, ARB_ERR_NOMEM, "arb_cache_quarantine: out of memory");
        c->skip = p;
        c->cap_skip = grow;
    }
    snprintf(c->skip[c->n_skip++], ARB_CACHE_HASH_LEN, "%s", hash);
    return ARB_OK;
}

arb_status arb_cache_quarantine(arb_cache *cache, const char *hash, const char *reason,
                                arb_err *err)
{
    arb_status st = ARB_OK;
    if (!hash || !hash_ok(hash))
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "arb_cache_quarantine: '%.80s' is not a key hash (64 lower-case hex "
                        "digits)",
                        hash ? hash : "(null)");
    st = cache_enter(cache, "arb_cache_quarantine", err);
    if (st)
        return st;
    /* The row to reject is the one a get serves: the first layer holding it. */
    for (int i = 0; i < cache->n_readonly; i++) {
        cache_layer *ro = &cache->layer[i];
        if (!ro->db || skipped(cache, hash))
            continue;
        int rc;
        sqlite3_stmt *q = cache_stmt(cache, ro, STMT_GET, &rc);
        if (!q)
            continue;
        sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
        rc = cache_step(cache, q);
        sqlite3_reset(q);
        if (rc == SQLITE_ROW) {
            /* A read-only file is never modified: skip the row from now on. */
            st = skip_add(cache, hash, err);
            goto out;
        }
    }
    cache_layer *l = cache_writable_layer(cache);
    if (l) {
        int moved = 0;
        int rc = cache_quarantine_row(cache, l, hash, reason ? reason : "", 0, &moved);
        if (rc != SQLITE_OK)
            st = cache_write_failed(cache, l, rc, "moving an entry to quarantine", err);
        if (moved)
            cache->quarantined++;
    }
out:
    cache_leave(cache);
    return st;
}
