/*
 * cache_internal.h - the arb_cache handle and the helpers shared by the files
 * of cache/src (private; tests may include it).
 *
 * Layout: one SQLite connection per layer. layer[0 .. n_readonly-1] are the
 * read-only layers, in the order they are consulted; layer[n_readonly] is the
 * writable layer (present when a path was given).
 *
 * Locking: every public function takes cache->lock for its whole duration and
 * calls only the helpers declared here, none of which locks. The warning
 * callback runs under the lock, so it must not call back into the cache.
 *
 * SQLite return codes stay inside the helpers (int rc); public functions turn
 * them into an arb_status with cache_sqlite_fail().
 */
#ifndef ARB_CACHE_INTERNAL_H
#define ARB_CACHE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arb/cache.h"

#define CACHE_APPLICATION_ID 0x41524231 /* 'ARB1' in PRAGMA application_id */
#define CACHE_DEFAULT_BUSY_MS 5000      /* busy_timeout when the caller gives 0 */
#define CACHE_TOUCH_SECONDS 3600        /* last_used is rewritten at most this often */
#define CACHE_PAGE_SIZE 16384           /* page size of new files: cubins are large BLOBs */

/* A numeric macro as SQL text, e.g. "PRAGMA page_size = " CACHE_SQL_NUM(CACHE_PAGE_SIZE). */
#define CACHE_SQL_NUM_(x) #x
#define CACHE_SQL_NUM(x) CACHE_SQL_NUM_(x)
#define CACHE_PAGE_SIZE_PRAGMA "PRAGMA page_size = " CACHE_SQL_NUM(CACHE_PAGE_SIZE)

/* Statements prepared once per layer (on first use) and kept open. */
typedef enum cache_stmt_id {
    STMT_GET = 0,         /* ?1 hash -> the entry columns */
    STMT_TOUCH,           /* ?1 now, ?2 hash: coarse last_used update */
    STMT_INSERT,          /* every column, INSERT OR IGNORE */
    STMT_QUARANTINE_COPY, /* ?1 reason, ?2 now, ?3 hash: copy a row into quarantine */
    STMT_DELETE,          /* ?1 hash */
    STMT_BYTES,           /* sum of the cubins' lengths */
    STMT_STATS_UPSERT,    /* ?1 scope, ?2 name, ?3 value added */
    STMT_TUNE_PUT,        /* every tuning column, INSERT OR REPLACE */
    STMT_COUNT
} cache_stmt_id;

/* Columns of entries (and of quarantine, which adds reason, quarantined_at).
 * GET_COLS is what STMT_GET returns, in this order. */
#define CACHE_KEY_COLS                                                                          \
    "kernel, name_expr, M, N, K, gs, bm, bn, bk, tm, tn, warps, stages, precision, arch, "      \
    "nvrtc_version, template_sha, options, env"
#define CACHE_ENTRY_COLS                                                                        \
    "cubin, cubin_len, checksum, lowered_name, block_x, block_y, block_z, shared_bytes, "       \
    "registers, spill_bytes, compile_log, compile_ms, created, last_used"
#define CACHE_KEY_NCOLS 19
#define CACHE_ENTRY_NCOLS 14

/* Columns of the tuning table, in the order tune.c binds and reads them.
 * Schema version 1 had no variant: CACHE_TUNE_COLS_V1 reads such a table
 * (a read-only layer, an import source) in the same shape, as variant 0. */
#define CACHE_TUNE_COLS_COMMON                                                                  \
    "kernel, M, N, K, gs, precision, arch, device, sm_count, driver, nvrtc, build, bm, bn, "    \
    "bk, tm, tn, warps, stages, median_us, p20_us, p80_us, repeats, status, reason, command, "  \
    "created"
#define CACHE_TUNE_COLS CACHE_TUNE_COLS_COMMON ", variant"
#define CACHE_TUNE_COLS_V1 CACHE_TUNE_COLS_COMMON ", 0 AS variant"
#define CACHE_TUNE_NCOLS 28
#define CACHE_TUNE_PARAMS "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?"

/* Column indexes of CACHE_ENTRY_COLS in a SELECT that starts with them. */
enum {
    COL_CUBIN = 0,
    COL_CUBIN_LEN,
    COL_CHECKSUM,
    COL_LOWERED_NAME,
    COL_BLOCK_X,
    COL_BLOCK_Y,
    COL_BLOCK_Z,
    COL_SHARED_BYTES,
    COL_REGISTERS,
    COL_SPILL_BYTES,
    COL_COMPILE_LOG,
    COL_COMPILE_MS,
    COL_CREATED,
    COL_LAST_USED,
};

typedef struct cache_layer {
    sqlite3 *db;       /* NULL: the layer is unusable and skipped */
    char *path;        /* file name as given */
    char *name;        /* "readonly:<path>" or "<path>", for messages */
    int readonly;      /* opened read-only (a read-only layer, or a degraded writable one) */
    sqlite3_stmt *stmt[STMT_COUNT];
} cache_layer;

/* One buffered counter of arb_cache_stats_add. */
typedef struct cache_stat {
    char *scope;
    char *name;
    double value;
} cache_stat;

struct arb_cache {
    pthread_mutex_t lock;
    pid_t pid;                                     /* process that opened the handle */
    cache_layer layer[ARB_CACHE_MAX_READONLY + 1]; /* read-only layers, then the writable */
    int n_readonly;
    int has_writable;   /* a writable path was given */
    int writable;       /* puts reach the file (0 once degraded) */
    int64_t max_bytes;  /* cap on the writable layer's cubin bytes, 0 = none */
    int busy_ms;        /* busy timeout, also the budget of our own retry loop */
    arb_cache_warn_fn warn;
    void *warn_ctx;
    uint64_t *warned;   /* hashes of the warnings already given */
    size_t n_warned, cap_warned;
    int64_t quarantined;
    char (*skip)[ARB_CACHE_HASH_LEN]; /* hashes quarantined by the caller but held only
                                         by a read-only layer: skipped from now on */
    size_t n_skip, cap_skip;
    cache_stat *stats;  /* buffered counters */
    size_t n_stats, cap_stats;
    uint64_t rng;       /* xorshift state for backoff jitter */
    char sqlmsg[512];   /* sqlite3_errmsg of the last failed call, kept past a ROLLBACK */
    char detail[600];   /* cache_rc_detail's text */
};

/* ---- alloc.c -------------------------------------------------------------- */

/* Every allocation of cache/src goes through these (never malloc and its
 * siblings directly), so that tests can fail the n-th one (cache_testing.h).
 * Release with free(). */
void *cache_malloc(size_t n);
void *cache_calloc(size_t n, size_t size);
void *cache_realloc(void *p, size_t n);
char *cache_strdup(const char *s);
char *cache_strndup(const char *s, size_t max);

/* ---- handle.c ------------------------------------------------------------- */

/* Start a public call: check the handle and the process, take the lock.
 * On ARB_OK the caller must end with cache_leave(). */
arb_status cache_enter(arb_cache *c, const char *fn, arb_err *err);
void cache_leave(arb_cache *c);

/* Give `msg` (printf-style) to the warning sink unless this handle gave the
 * same text before. */
void cache_warn(arb_cache *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Stop writing to the writable layer and warn once with the reason. */
void cache_degrade(arb_cache *c, const char *reason);

/* The writable layer when it has a connection (readable), else NULL. */
cache_layer *cache_wlayer(arb_cache *c);

/* The writable layer when puts may reach it (not degraded, not read-only),
 * else NULL. */
cache_layer *cache_writable_layer(arb_cache *c);

/* Public index of a layer: its position, or ARB_CACHE_LAYER_WRITABLE. */
int cache_layer_index(const arb_cache *c, const cache_layer *l);

/* Record a failed SQLite call as an arb error: what, where, the SQLite
 * message, and what to do. Returns the status recorded. */
arb_status cache_sqlite_fail(arb_cache *c, const cache_layer *l, int rc, const char *what,
                             arb_err *err);

/* ---- sqlutil.c ------------------------------------------------------------ */

int cache_rc_busy(int rc);     /* SQLITE_BUSY or SQLITE_LOCKED */
int cache_rc_corrupt(int rc);  /* SQLITE_CORRUPT or SQLITE_NOTADB */
int cache_rc_nomem(int rc);    /* out of memory: SQLITE_NOMEM or SQLITE_IOERR_NOMEM */
int cache_rc_degrades(int rc); /* a write error that makes the writable layer read-only */

/* Remember sqlite3_errmsg(db) in c->sqlmsg. */
void cache_note(arb_cache *c, sqlite3 *db);

/* "<sqlite3_errstr(rc)> (<c->sqlmsg>)", or the first alone when the message
 * says nothing more; valid until the next call. */
const char *cache_rc_detail(arb_cache *c, int rc);

/* Sleep before retry `attempt` (0, 1, ...): jittered exponential backoff.
 * Returns 0 when the retry budget (busy_ms since `start_ms`) is spent. */
int cache_backoff(arb_cache *c, int attempt, int64_t start_ms);
int64_t cache_now_ms(void);

/* sqlite3_exec, retried on BUSY/LOCKED with backoff. */
int cache_exec(arb_cache *c, sqlite3 *db, const char *sql);

/* First sqlite3_step of a statement, reset and retried on BUSY/LOCKED. Later
 * steps of the same statement call sqlite3_step directly. */
int cache_step(arb_cache *c, sqlite3_stmt *st);

/* One integer from a single-row query (a PRAGMA); rc as SQLite's. */
int cache_query_int(arb_cache *c, sqlite3 *db, const char *sql, int64_t *value);

/* The layer's prepared statement `id` (prepared on first use), or NULL with
 * *rc set. */
sqlite3_stmt *cache_stmt(arb_cache *c, cache_layer *l, cache_stmt_id id, int *rc);
void cache_layer_finalize(cache_layer *l);

/* Run `body` inside BEGIN IMMEDIATE ... COMMIT on the layer's connection. A
 * BUSY/LOCKED at BEGIN, in the body or at COMMIT rolls back and runs the body
 * again after a backoff, until the retry budget is spent. The body must
 * reset whatever it reports through ctx each time it starts. */
typedef int (*cache_txn_fn)(arb_cache *c, cache_layer *l, void *ctx);
int cache_write_txn(arb_cache *c, cache_layer *l, cache_txn_fn body, void *ctx);

/* "file:<escaped path>?<query>" for sqlite3_open_v2 with SQLITE_OPEN_URI;
 * NULL when out of memory. Free with free(). */
char *cache_file_uri(const char *path, const char *query);

/* A text column, "" for NULL. */
const char *cache_column_text(sqlite3_stmt *st, int col);

/* s, or "" for NULL. */
static inline const char *cache_str(const char *s)
{
    return s ? s : "";
}

/* ---- schema.c ------------------------------------------------------------- */

const char *cache_stmt_sql(cache_stmt_id id);

/* Open the writable layer at `path` (creating folder and file), checking,
 * migrating or rebuilding it. Failures to create or write degrade the
 * handle and return ARB_OK; only NOMEM and misuse fail. */
arb_status cache_open_writable(arb_cache *c, const char *path, arb_err *err);

/* Open read-only layer `index` at `path`. Missing: ARB_ERR_NOT_FOUND.
 * Unreadable, corrupt or foreign: warned about and skipped (db = NULL). */
arb_status cache_open_readonly(arb_cache *c, int index, const char *path, arb_err *err);

/* After an operation on the writable layer met SQLITE_CORRUPT/NOTADB:
 * check the file and rebuild it when damaged (copy kept). */
void cache_recover(arb_cache *c, cache_layer *l);

/* Open another cache file read-only (import): it must be an arb cache. */
arb_status cache_open_source(arb_cache *c, const char *path, sqlite3 **db, arb_err *err);

/* Create the current schema in an empty database `db` (a fresh file that
 * no other process uses, e.g. an export target). */
int cache_create_schema(arb_cache *c, sqlite3 *db);

/* ---- fsinfo.c ------------------------------------------------------------- */

/* Name of the network file system with statfs magic `magic`, or NULL. */
const char *cache_network_fs_name(uint64_t magic);

/* statfs(dir); warn once when it lives on a network file system. */
void cache_check_network_fs(arb_cache *c, const char *dir);

/* mkdir -p; 0 or an errno. */
int cache_mkdir_p(const char *dir);

/* The folder part of `path` ("." when none); NULL when out of memory. */
char *cache_parent_dir(const char *path);

/* ---- store.c -------------------------------------------------------------- */

/* Whether a row's bytes match its length and checksum; when not, a phrase
 * saying what is wrong goes to `why`. */
int cache_row_valid(const void *cubin, int64_t bytes, int64_t cubin_len, const char *checksum,
                    char *why, size_t why_len);

/* Evict least-recently-used rows of `l` until its cubin bytes are <= cap
 * (inside the caller's transaction). `evicted` (may be NULL) receives the
 * count. */
int cache_evict(arb_cache *c, cache_layer *l, int64_t cap, int64_t *evicted);

/* Move row `hash` of the writable layer to quarantine (own transaction).
 * only_if_bad: re-check inside the transaction and move only a bad row. */
int cache_quarantine_row(arb_cache *c, cache_layer *l, const char *hash, const char *reason,
                         int only_if_bad, int *moved);

/* A write to the writable layer failed with `rc` while doing `what`: degrade
 * (read-only, full, I/O), rebuild (corrupt) or warn (busy), so that the
 * caller can go on as if nothing was stored. Returns ARB_ERR_NOMEM for an
 * allocation failure, else ARB_OK. */
arb_status cache_write_failed(arb_cache *c, cache_layer *l, int rc, const char *what,
                              arb_err *err);

/* ---- stats.c -------------------------------------------------------------- */

/* Write the buffered counters (no lock taken). While the cache is degraded
 * they stay buffered (arb_cache_stats_each still reports them). */
arb_status cache_stats_flush_locked(arb_cache *c, arb_err *err);
void cache_stats_free(arb_cache *c);

#endif /* ARB_CACHE_INTERNAL_H */
