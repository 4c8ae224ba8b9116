/*
 * engine_internal.h - the inside of arb_engine, shared by engine.c (open,
 * keys, compile, cache), function_table.c and tuning.c.
 */
#ifndef ARB_ENGINE_INTERNAL_H
#define ARB_ENGINE_INTERNAL_H

#include <pthread.h>

#include "arb/engine.h"
#include "nvrtc_compile.h"
#include "template_set.h"

#define ARB_MAX_OPTIONS 32
#define ARB_TABLE_BUCKETS 4096

/* One entry of the function table. */
typedef struct arb_table_entry {
    arb_spec request;  /* the spec as asked for */
    int exact;         /* asked with exact blocks (no tuning lookup) */
    uint64_t hash;     /* of request + exact */
    int state;         /* ENTRY_LOADING, ENTRY_READY, ENTRY_FAILED */
    arb_function fn;   /* valid when READY */
    CUmodule module;
    arb_err error;     /* valid when FAILED */
    struct arb_table_entry *next;
} arb_table_entry;

enum { ENTRY_LOADING = 0, ENTRY_READY = 1, ENTRY_FAILED = 2 };

/* One current, successful tuning row (the fastest per shape). */
typedef struct arb_tuned {
    char kernel[ARB_KERNEL_NAME_MAX];
    int64_t M, N, K, gs;
    int32_t variant;
    arb_precision prec;
    arb_blocks blocks;
    double median_us;
} arb_tuned;

/* Per-kernel counters, flushed into the cache's stats table at close. */
typedef struct arb_kernel_counters {
    int64_t hit_readonly, hit_writable, miss, compile, load, quarantined, strict_miss;
    int64_t tuned, nearest, defaults;
    double compile_ms, load_ms, hit_ms;
} arb_kernel_counters;

struct arb_engine {
    arb_settings settings;
    int compile_only;
    int device_ordinal;
    const arb_cuda *cu;       /* NULL when compile-only */
    CUdevice device;
    CUcontext context;        /* retained primary context */
    arb_device_info info;
    char arch[32];
    char nvrtc_version[32];
    char driver_version[32];
    int strict, recache;

    /* Templates: embedded, or read from ARB_KERNEL_DIR. */
    const arb_template_file *templates;
    int n_templates;
    arb_template_file *owned_templates; /* when read from a folder */
    char (*owned_shas)[65];

    /* Compile options (argv form) and their canonical text. */
    const char *options[ARB_MAX_OPTIONS];
    int n_options;
    char option_storage[2048];
    char options_text[2048];
    char codegen_env[ARB_SETTING_MAX + 128];

    arb_cache *cache;         /* NULL when ARB_CACHE_DISABLE */
    arb_cache_warn_fn warn;
    void *warn_ctx;

    arb_tuned *tuned;         /* current tuning rows of this arch/device/build */
    int n_tuned;

    pthread_mutex_t lock;     /* guards the table, counters and cond */
    pthread_cond_t loaded;    /* broadcast when an entry leaves LOADING */
    arb_table_entry *buckets[ARB_TABLE_BUCKETS];

    arb_engine_stats stats;
    arb_kernel_counters *counters; /* one per registry kernel */
};

/* Cache lookup (unless recaching), else compile (and store). With `load`,
 * the module is loaded into `module` and `fn`; a cached cubin the driver
 * rejects is quarantined and compiled once more (engine.c). */
arb_status arb_engine_materialize(arb_engine *e, const arb_spec *spec, int load, CUmodule *module,
                                  CUfunction *fn, int *spill_bytes, int *compiled, double *ms,
                                  arb_err *err);

/* Load current tuning rows from the cache (tuning.c). */
void arb_engine_load_tuning(arb_engine *engine);
/* Fastest tuned/nearest blocks for spec (tuning.c); returns the origin. */
arb_blocks_origin arb_engine_lookup_tuning(const arb_engine *engine, arb_spec *spec);

/* Counters of a kernel (by registry index), for updates under the lock. */
arb_kernel_counters *arb_engine_counters(arb_engine *engine, const char *kernel);

/* Warn through the engine's warn function. */
void arb_engine_warn(arb_engine *engine, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

double arb_now_ms(void);

#endif /* ARB_ENGINE_INTERNAL_H */
