/*
 * cache.h - the persistent kernel cache: one SQLite file per layer holding
 * compiled cubins and the tuning table (SPEC §4). This layer knows nothing of
 * CUDA or NVRTC: it stores keys, bytes and numbers.
 *
 * Layers: any number of read-only files (ARB_CACHE_READONLY, e.g. a prewarmed
 * cache shipped with a job) consulted first, in order, then one writable file
 * (ARB_CACHE). A lookup returns the first layer that holds a valid entry.
 *
 * Promises:
 *   - A row is one complete entry, inserted in one transaction; the first
 *     writer wins (INSERT OR IGNORE) and a live row is never overwritten.
 *   - Every cubin carries a SHA-256 checked on every get. A damaged row is
 *     quarantined (moved to the quarantine table, never returned), counted,
 *     and warned about once; the caller recompiles.
 *   - Several processes may read and write one file at once (WAL, busy
 *     timeout with jittered backoff, BEGIN IMMEDIATE for writes). Nothing is
 *     compiled inside a transaction: the caller compiles between get and put.
 *   - A missing file (and its folder) is created. A corrupt or foreign file
 *     is copied aside to <path>.corrupt-<unix time> and reset in place
 *     through SQLite (never renamed or unlinked under other processes).
 *   - A read-only, full or unreachable writable file degrades the cache: puts
 *     become no-ops (warned once), gets keep working on what is readable.
 *   - Network file systems (NFS, CIFS, Lustre, GPFS, ...) are warned about.
 */
#ifndef ARB_CACHE_H
#define ARB_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ARB_CACHE_SCHEMA_VERSION 2
#define ARB_CACHE_HASH_LEN 65         /* 64 hex digits and a NUL */
#define ARB_CACHE_MAX_READONLY 8      /* read-only layers at most */
#define ARB_CACHE_LAYER_WRITABLE (-1) /* arb_cache_entry.layer of the writable layer */

typedef struct arb_cache arb_cache;

/* Every field that changes generated code: each is its own column, so "why
 * did this miss?" is a query. Strings must not be NULL ("" when empty). */
typedef struct arb_cache_key {
    const char *kernel;        /* kernel stem, "ternary_fwd" */
    const char *name_expr;     /* exact NVRTC name expression */
    int64_t M, N, K, gs;       /* problem shape */
    int32_t bm, bn, bk;        /* block tile */
    int32_t tm, tn;            /* per-thread tile */
    int32_t warps, stages;     /* warps per block, pipeline stages */
    const char *precision;     /* "fp32", "bf16x2", ... */
    const char *arch;          /* "sm_90", "sm_90a" */
    const char *nvrtc_version; /* "13.0" */
    const char *template_sha;  /* SHA-256 of the template and every header it includes */
    const char *options;       /* canonical compile options, space separated */
    const char *env;           /* canonical codegen-affecting settings, "NAME=value;..." */
} arb_cache_key;

/* The key's canonical text: every field, named, in a fixed order, one per
 * line ("kernel=ternary_fwd\nname_expr=...\n..."). Its SHA-256 is the row's
 * primary key. Returns the length the full text needs (like snprintf). */
size_t arb_cache_key_text(const arb_cache_key *key, char *buf, size_t len);

/* SHA-256 hex of the canonical text. */
void arb_cache_key_hash(const arb_cache_key *key, char hash[ARB_CACHE_HASH_LEN]);

/* One cache entry. On get, the cache allocates the pointers (free with
 * arb_cache_entry_free); on put, the caller owns them. */
typedef struct arb_cache_entry {
    uint8_t *cubin;                     /* the compiled module */
    size_t cubin_len;                   /* its length in bytes */
    char *lowered_name;                 /* mangled kernel name from NVRTC */
    int32_t block_x, block_y, block_z;  /* launch block shape */
    int32_t shared_bytes;               /* dynamic shared memory per block */
    int32_t registers;                  /* registers per thread (ptxas), -1 unknown */
    int32_t spill_bytes;                /* spill stores + loads (ptxas), -1 unknown */
    char *compile_log;                  /* NVRTC log, may be "" */
    double compile_ms;                  /* wall time of the NVRTC compile */
    char checksum[ARB_CACHE_HASH_LEN];  /* SHA-256 hex of cubin (filled by the cache) */
    int64_t created;                    /* unix seconds */
    int64_t last_used;                  /* unix seconds, written coarsely */
    int layer;                          /* which layer served it (get only) */
} arb_cache_entry;

void arb_cache_entry_free(arb_cache_entry *entry);

/* Receives each warning once per cache handle, as one line without a
 * trailing newline. NULL: the cache prints "arb: warning: <msg>" to stderr. */
typedef void (*arb_cache_warn_fn)(void *ctx, const char *msg);

typedef struct arb_cache_options {
    const char *path;                  /* writable layer; NULL: none */
    const char *const *readonly_paths; /* read-only layers, consulted first, in order */
    int n_readonly;                    /* 0..ARB_CACHE_MAX_READONLY */
    int64_t max_bytes;                 /* cap on the writable layer's cubin bytes; 0 = none */
    int busy_timeout_ms;               /* 0: default 5000 */
    arb_cache_warn_fn warn;            /* NULL: stderr */
    void *warn_ctx;
} arb_cache_options;

void arb_cache_options_init(arb_cache_options *opt);

/* Open all layers. Missing read-only layers are an error (ARB_ERR_NOT_FOUND);
 * a writable layer that cannot be created or written degrades with a
 * warning and still returns ARB_OK. */
arb_status arb_cache_open(arb_cache **out, const arb_cache_options *opt, arb_err *err);
void arb_cache_close(arb_cache *cache);

/* Whether puts reach a file (false once degraded or with no writable layer). */
int arb_cache_writable(const arb_cache *cache);
/* Path of the writable layer, or NULL. */
const char *arb_cache_path(const arb_cache *cache);
int arb_cache_layer_count(const arb_cache *cache); /* read-only layers + writable */
/* Name of a layer for messages and stats: "readonly:<path>" or "<path>". */
const char *arb_cache_layer_name(const arb_cache *cache, int layer);

/* Look up an entry by key hash. *found = 1 and *entry filled on a valid hit.
 * A row whose checksum fails is quarantined (writable layer) or skipped
 * (read-only), warned about once, counted, and the lookup goes on to the
 * next layer. Updates last_used at most once an hour per row. */
arb_status arb_cache_get(arb_cache *cache, const char *hash, arb_cache_entry *entry, int *found,
                         arb_err *err);

/* Whether a valid entry exists (the same checks as get, without the bytes). */
arb_status arb_cache_contains(arb_cache *cache, const char *hash, int *found, arb_err *err);

/* Insert an entry for `key` (hash computed here, checksum computed here) in
 * one transaction; *inserted = 0 when another writer got there first or the
 * cache is degraded. Evicts least-recently-used rows past max_bytes. */
arb_status arb_cache_put(arb_cache *cache, const arb_cache_key *key, const arb_cache_entry *entry,
                         int *inserted, arb_err *err);

/* Move a row that the caller found unusable (e.g. the driver rejected the
 * cubin) to quarantine, with a reason. No-op on read-only layers. */
arb_status arb_cache_quarantine(arb_cache *cache, const char *hash, const char *reason,
                                arb_err *err);

/* Number of rows quarantined (by get or quarantine) through this handle. */
int64_t arb_cache_quarantined(const arb_cache *cache);

/* ---- Maintenance (arb-cache) ---------------------------------------------- */

typedef struct arb_cache_summary {
    const char *path;       /* writable layer */
    int64_t entries;        /* rows in the writable layer */
    int64_t cubin_bytes;    /* sum of cubin lengths there */
    int64_t file_bytes;     /* size of the SQLite file (pages) */
    int64_t max_bytes;      /* cap, 0 = none */
    int64_t quarantined;    /* rows in quarantine */
    int64_t tune_rows;      /* rows in the tuning table */
    int64_t readonly_entries[ARB_CACHE_MAX_READONLY]; /* rows per read-only layer */
    int n_readonly;
} arb_cache_summary;

arb_status arb_cache_summarize(arb_cache *cache, arb_cache_summary *out, arb_err *err);

/* One row for listing: the key columns and the entry metadata (no bytes). */
typedef struct arb_cache_listing {
    const char *hash;
    arb_cache_key key;
    size_t cubin_len;
    int32_t registers, spill_bytes, shared_bytes;
    double compile_ms;
    int64_t created, last_used;
    int layer;
} arb_cache_listing;

typedef int (*arb_cache_list_fn)(void *ctx, const arb_cache_listing *row); /* nonzero stops */

/* Every entry of every layer, writable layer last. */
arb_status arb_cache_list(arb_cache *cache, arb_cache_list_fn fn, void *ctx, arb_err *err);

typedef struct arb_cache_verify_report {
    int64_t checked;      /* rows checked */
    int64_t bad;          /* rows whose length or checksum failed (quarantined) */
    int integrity_ok;     /* PRAGMA integrity_check said ok, on every layer */
    char detail[512];     /* first problem found, or "" */
} arb_cache_verify_report;

/* integrity_check on every layer, then every cubin's length and SHA-256.
 * Bad rows of the writable layer are quarantined. */
arb_status arb_cache_verify(arb_cache *cache, arb_cache_verify_report *report, arb_err *err);

/* Evict least-recently-used rows of the writable layer until its cubin
 * bytes are <= max_bytes. *evicted receives the count. */
arb_status arb_cache_prune(arb_cache *cache, int64_t max_bytes, int64_t *evicted, arb_err *err);

/* Delete every entry (and quarantine) of the writable layer; the tuning
 * table too when `tuning` is nonzero. */
arb_status arb_cache_clear(arb_cache *cache, int tuning, arb_err *err);

/* Write every valid entry of every layer (and current tuning rows) into a
 * new SQLite file at `path` (which must not exist), atomically (temp file,
 * fsync, rename). */
arb_status arb_cache_export(arb_cache *cache, const char *path, int64_t *exported, arb_err *err);

/* Copy every entry of the cache file at `path` whose checksum verifies into
 * the writable layer (first writer wins). */
arb_status arb_cache_import(arb_cache *cache, const char *path, int64_t *imported,
                            int64_t *skipped, arb_err *err);

/* ---- Persistent counters (arb-cache stats) -------------------------------- */

/* Add `value` to the counter (scope, name), e.g. ("ternary_fwd", "compile_ms").
 * Buffered in memory; written by arb_cache_stats_flush and at close. */
void arb_cache_stats_add(arb_cache *cache, const char *scope, const char *name, double value);
arb_status arb_cache_stats_flush(arb_cache *cache, arb_err *err);

typedef int (*arb_cache_stat_fn)(void *ctx, const char *scope, const char *name, double value);
arb_status arb_cache_stats_each(arb_cache *cache, arb_cache_stat_fn fn, void *ctx, arb_err *err);
arb_status arb_cache_stats_zero(arb_cache *cache, arb_err *err);

/* ---- Tuning table (arb-bench --sweep-blocks) ------------------------------ */

/* One measured candidate configuration. `stale` is computed on read: the
 * row's build or NVRTC differs from the reader's. */
typedef struct arb_tune_row {
    const char *kernel;
    int64_t M, N, K, gs;
    int32_t variant;        /* the caller's variant number of the kernel: variants tune apart */
    const char *precision;
    const char *arch;       /* "sm_90" */
    const char *device;     /* "NVIDIA H100 80GB HBM3" */
    int32_t sm_count;
    const char *driver;     /* "13.0" (cuDriverGetVersion) */
    const char *nvrtc;      /* "13.0" */
    const char *build;      /* engine build id (hash of all templates) */
    int32_t bm, bn, bk, tm, tn, warps, stages;
    double median_us, p20_us, p80_us;
    int32_t repeats;
    const char *status;     /* "ok", "wrong", "compile_failed", "launch_failed", "unsupported" */
    const char *reason;     /* why it failed, "" when ok */
    const char *command;    /* command line that replays this measurement */
    int64_t created;        /* unix seconds (filled by put when 0) */
    int stale;              /* read only */
} arb_tune_row;

/* Insert or replace the row of this (shape, kernel, variant, precision, arch,
 * device, driver, nvrtc, build, configuration). */
arb_status arb_tune_put(arb_cache *cache, const arb_tune_row *row, arb_err *err);

typedef int (*arb_tune_fn)(void *ctx, const arb_tune_row *row); /* nonzero stops */

/* Every tuning row of every layer; rows whose build or nvrtc differ from
 * `build`/`nvrtc` (when non-NULL) come with stale = 1. */
arb_status arb_tune_each(arb_cache *cache, const char *build, const char *nvrtc, arb_tune_fn fn,
                         void *ctx, arb_err *err);

#ifdef __cplusplus
}
#endif
#endif /* ARB_CACHE_H */
