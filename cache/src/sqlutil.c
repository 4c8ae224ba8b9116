/*
 * sqlutil.c - SQLite helpers: the retry loop with jittered exponential
 * backoff, write transactions, the per-layer statement cache, file URIs.
 *
 * Why our own retry loop on top of busy_timeout: SQLite returns SQLITE_BUSY
 * without calling the busy handler when waiting could deadlock, on a stale
 * WAL snapshot (SQLITE_BUSY_SNAPSHOT) and during another process's crash
 * recovery. Each retry waits 1, 2, 4, ... ms (capped at 200 ms), scaled by
 * a random factor in [0.5, 1.5) so that processes that collided do not
 * collide again, until busy_ms have passed since the first try.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_internal.h"

int cache_rc_busy(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

int cache_rc_corrupt(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

int cache_rc_nomem(int rc)
{
    /* SQLITE_IOERR_NOMEM: the VFS ran out of memory, not the file. */
    return (rc & 0xff) == SQLITE_NOMEM || rc == SQLITE_IOERR_NOMEM;
}

int cache_rc_degrades(int rc)
{
    if (cache_rc_nomem(rc))
        return 0;
    rc &= 0xff;
    return rc == SQLITE_FULL || rc == SQLITE_READONLY || rc == SQLITE_IOERR ||
           rc == SQLITE_CANTOPEN || rc == SQLITE_PERM || rc == SQLITE_AUTH;
}

const char *cache_rc_detail(arb_cache *c, int rc)
{
    const char *what = sqlite3_errstr(rc);
    if (!c->sqlmsg[0] || strcmp(c->sqlmsg, what) == 0)
        snprintf(c->detail, sizeof(c->detail), "%s", what);
    else
        snprintf(c->detail, sizeof(c->detail), "%s (%s)", what, c->sqlmsg);
    return c->detail;
}

void cache_note(arb_cache *c, sqlite3 *db)
{
    const char *msg = db ? sqlite3_errmsg(db) : "no connection";
    size_t n = strlen(msg);
    if (n >= sizeof(c->sqlmsg))
        n = sizeof(c->sqlmsg) - 1;
    memmove(c->sqlmsg, msg, n);
    c->sqlmsg[n] = '\0';
}

int64_t cache_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_random(arb_cache *c)
{
    uint64_t x = c->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return x;
}

int cache_backoff(arb_cache *c, int attempt, int64_t start_ms)
{
    int64_t left = start_ms + c->busy_ms - cache_now_ms();
    if (left <= 0)
        return 0;
    double base = attempt < 8 ? (double)(1 << attempt) : 200.0;
    if (base > 200.0)
        base = 200.0;
    double jitter = 0.5 + (double)(next_random(c) >> 11) / 9007199254740992.0; /* [0.5, 1.5) */
    int64_t us = (int64_t)(base * jitter * 1000.0);
    if (us > left * 1000)
        us = left * 1000;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 1;
}

int cache_exec(arb_cache *c, sqlite3 *db, const char *sql)
{
    int rc;
    int64_t start = cache_now_ms();
    for (int attempt = 0;; attempt++) {
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (!cache_rc_busy(rc) || !cache_backoff(c, attempt, start))
            break;
    }
    if (rc != SQLITE_OK)
        cache_note(c, db);
    return rc;
}

int cache_step(arb_cache *c, sqlite3_stmt *st)
{
    int rc;
    int64_t start = cache_now_ms();
    for (int attempt = 0;; attempt++) {
        rc = sqlite3_step(st);
        if (!cache_rc_busy(rc))
            break;
        sqlite3_reset(st);
        if (!cache_backoff(c, attempt, start))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        cache_note(c, sqlite3_db_handle(st));
    return rc;
}

static int prepare(arb_cache *c, sqlite3 *db, const char *sql, unsigned flags, sqlite3_stmt **st)
{
    int rc;
    int64_t start = cache_now_ms();
    for (int attempt = 0;; attempt++) {
        rc = sqlite3_prepare_v3(db, sql, -1, flags, st, NULL);
        if (!cache_rc_busy(rc) || !cache_backoff(c, attempt, start))
            break;
    }
    if (rc != SQLITE_OK)
        cache_note(c, db);
    return rc;
}

int cache_query_int(arb_cache *c, sqlite3 *db, const char *sql, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, db, sql, 0, &st);
    if (rc != SQLITE_OK)
        goto out;
    rc = cache_step(c, st);
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *value = 0;
        rc = SQLITE_OK;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

sqlite3_stmt *cache_stmt(arb_cache *c, cache_layer *l, cache_stmt_id id, int *rc)
{
    *rc = SQLITE_OK;
    if (!l->stmt[id]) {
        *rc = prepare(c, l->db, cache_stmt_sql(id), SQLITE_PREPARE_PERSISTENT, &l->stmt[id]);
        if (*rc != SQLITE_OK) {
            sqlite3_finalize(l->stmt[id]);
            l->stmt[id] = NULL;
            return NULL;
        }
    }
    sqlite3_reset(l->stmt[id]);
    sqlite3_clear_bindings(l->stmt[id]);
    return l->stmt[id];
}

void cache_layer_finalize(cache_layer *l)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        sqlite3_finalize(l->stmt[i]);
        l->stmt[i] = NULL;
    }
}

int cache_write_txn(arb_cache *c, cache_layer *l, cache_txn_fn body, void *ctx)
{
    int rc;
    int64_t start = cache_now_ms();
    for (int attempt = 0;; attempt++) {
        rc = sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            rc = body(c, l, ctx);
            if (rc == SQLITE_OK)
                rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK)
            return SQLITE_OK;
        cache_note(c, l->db);
        if (!sqlite3_get_autocommit(l->db))
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        if (!cache_rc_busy(rc) || !cache_backoff(c, attempt, start))
            return rc;
    }
}

char *cache_file_uri(const char *path, const char *query)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    size_t qn = query ? strlen(query) : 0;
    char *uri = cache_malloc(5 + 3 * n + 1 + qn + 1);
    if (!uri)
        return NULL;
    char *p = uri;
    memcpy(p, "file:", 5);
    p += 5;
    for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
        int plain = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                    (*s >= '0' && *s <= '9') || *s == '/' || *s == '.' || *s == '_' ||
                    *s == '-' || *s == '~';
        if (plain) {
            *p++ = (char)*s;
        } else {
            *p++ = '%';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 15];
        }
    }
    if (qn) {
        *p++ = '?';
        memcpy(p, query, qn);
        p += qn;
    }
    *p = '\0';
    return uri;
}

const char *cache_column_text(sqlite3_stmt *st, int col)
{
    return cache_str((const char *)sqlite3_column_text(st, col));
}
