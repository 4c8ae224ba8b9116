/*
 * engine.h - the JIT engine: specializes kernel templates through NVRTC,
 * keeps their cubins in the SQLite cache (cache.h), loads them through the
 * CUDA driver, and hands out functions from an in-memory table.
 *
 * A launch costs one hash lookup: the table is keyed by the spec a caller
 * asks for (its plan's default blocks), and its entry holds the resolved
 * spec (tuned blocks when the tuning table has them), the loaded function
 * and the launch dimensions. SQLite and NVRTC run only the first time a
 * spec is seen in a process.
 *
 * On a miss, one thread compiles a key while others asking for the same key
 * wait for it (single flight per key; other keys proceed in parallel).
 * Another process missing the same key compiles too; the cache keeps the
 * first row written.
 *
 * Thread safety: all functions may be called from several threads.
 */
#ifndef ARB_ENGINE_H
#define ARB_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "arb/cache.h"
#include "arb/cuda_driver.h"
#include "arb/kernels.h"
#include "arb/settings.h"
#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct arb_engine arb_engine;

typedef struct arb_engine_options {
    const arb_settings *settings; /* NULL: arb_settings_load() */
    int device;                   /* CUDA device ordinal */
    int compile_only;             /* never touch the driver (prewarm on a machine without a
                                     GPU); the arch must come from ARB_ARCH / settings */
    arb_cache_warn_fn warn;       /* warnings (each once); NULL: stderr */
    void *warn_ctx;
    const char *nvrtc_version;    /* test hook: pretend NVRTC has this version; NULL = real */
} arb_engine_options;

void arb_engine_options_init(arb_engine_options *opt);

arb_status arb_engine_open(arb_engine **out, const arb_engine_options *opt, arb_err *err);
/* Flushes the engine's counters into the cache's stats table. */
void arb_engine_close(arb_engine *engine);

typedef struct arb_device_info {
    char name[128];       /* "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor;
    int sm_count;
    int smem_per_block_optin; /* bytes a block may use after opting in */
    size_t total_mem;
    int driver_version;   /* 13000 */
} arb_device_info;

/* Device properties, or NULL for a compile-only engine. */
const arb_device_info *arb_engine_device(const arb_engine *engine);
const arb_cuda *arb_engine_cuda(const arb_engine *engine); /* NULL when compile-only */
CUcontext arb_engine_context(const arb_engine *engine);
const char *arb_engine_arch(const arb_engine *engine);        /* "sm_90a" */

/* The target an engine picks for a device of compute capability
 * major.minor: "sm_<major><minor>", with the arch-specific "a" on sm_90
 * (wgmma; cubins for sm_90 run only on sm_90 anyway). */
void arb_arch_for_device(int major, int minor, char *buf, size_t len);

/* The target of CUDA device `device` (arb_arch_for_device of its compute
 * capability), asking the driver; ARB_ERR_NO_DRIVER / ARB_ERR_NO_DEVICE
 * when there is none. */
arb_status arb_device_arch(int device, char *buf, size_t len, arb_err *err);
const char *arb_engine_nvrtc_version(const arb_engine *engine); /* "13.0" */
const char *arb_engine_build_id(void);                        /* hash of the embedded templates */
const arb_settings *arb_engine_settings(const arb_engine *engine);
arb_cache *arb_engine_cache(arb_engine *engine);              /* NULL when disabled */
/* "13.0" from the driver, or "" for a compile-only engine. */
const char *arb_engine_driver_version(const arb_engine *engine);
int arb_engine_strict(const arb_engine *engine);

/* Where a spec's block configuration came from. */
typedef enum arb_blocks_origin {
    ARB_BLOCKS_DEFAULT = 0, /* the kernel's default */
    ARB_BLOCKS_TUNED = 1,   /* the fastest current tuning row of this exact shape */
    ARB_BLOCKS_NEAREST = 2, /* the fastest row of the nearest tuned shape */
} arb_blocks_origin;

/* Replace spec->blocks by the tuned configuration when the tuning table has
 * one that passes the kernel's check for this spec. Counted in the stats. */
arb_blocks_origin arb_engine_resolve_blocks(arb_engine *engine, arb_spec *spec);

/* A loaded kernel ready to launch. */
typedef struct arb_function {
    arb_spec spec;            /* the resolved spec (tuned blocks) */
    arb_blocks_origin origin;
    CUfunction fn;
    unsigned grid[3], block[3];
    unsigned smem_bytes;      /* dynamic shared memory */
    int registers;            /* per thread, from the driver */
    int spill_bytes;          /* from ptxas, -1 unknown */
} arb_function;

/* The function for a spec: resolve its blocks (unless `exact`), then the
 * in-memory table, the cache layers, or NVRTC, in that order. The returned
 * pointer stays valid until the engine closes. */
arb_status arb_engine_function(arb_engine *engine, const arb_spec *spec, int exact,
                               const arb_function **out, arb_err *err);

/* Ensure a spec (blocks as given) is in the cache without loading it
 * (arb-prewarm). *compiled = 1 when NVRTC ran, 0 when it was cached. */
arb_status arb_engine_prepare(arb_engine *engine, const arb_spec *spec, int *compiled,
                              double *ms, arb_err *err);

/* The full cache key of a spec on this engine (strings live until the
 * engine closes or the next call from this thread, whichever comes first). */
arb_status arb_engine_key(arb_engine *engine, const arb_spec *spec, arb_cache_key *key,
                          char hash[ARB_CACHE_HASH_LEN], arb_err *err);

typedef struct arb_engine_stats {
    int64_t lookups;        /* table lookups (launches) */
    int64_t compiles;       /* NVRTC compiles */
    double compile_ms;      /* their total wall time */
    int64_t hits_readonly;  /* cache hits in read-only layers */
    int64_t hits_writable;  /* cache hits in the writable layer */
    double hit_ms;          /* SQLite read + module load of hits */
    int64_t misses;         /* cache misses (then compiled) */
    int64_t loads;          /* cuModuleLoadData calls */
    double load_ms;         /* their total time */
    int64_t quarantined;    /* damaged rows found */
    int64_t strict_misses;  /* misses refused by ARB_CACHE_MODE=strict */
    int64_t tuned, nearest, defaults; /* block origins of resolved specs */
} arb_engine_stats;

void arb_engine_stats_get(const arb_engine *engine, arb_engine_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* ARB_ENGINE_H */
