/*
 * settings.h - every setting arb reads from the environment, in one registry.
 *
 * Flags beat the environment, the environment beats defaults (SPEC §1).
 * Each setting records where its value came from, so `arb-cache config` can
 * print it (like `ccache -p`). A setting marked `codegen` changes generated
 * code: its resolved value is part of every kernel key, and a test flips
 * each one and expects a cache miss.
 */
#ifndef ARB_SETTINGS_H
#define ARB_SETTINGS_H

#include <stdint.h>

#include "arb/cache.h"
#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum arb_setting_id {
    ARB_SET_CACHE = 0,        /* ARB_CACHE: writable cache file */
    ARB_SET_CACHE_READONLY,   /* ARB_CACHE_READONLY: read-only layers, ':'-separated */
    ARB_SET_CACHE_MODE,       /* ARB_CACHE_MODE: normal | strict */
    ARB_SET_CACHE_DISABLE,    /* ARB_CACHE_DISABLE: 1 = no cache files, compile in memory */
    ARB_SET_RECACHE,          /* ARB_RECACHE: 1 = ignore hits, compile and store again */
    ARB_SET_CACHE_MAX_SIZE,   /* ARB_CACHE_MAX_SIZE: cap on cubin bytes, e.g. 2GiB; 0 = none */
    ARB_SET_BACKEND,          /* ARB_BACKEND: auto | jit | cpu */
    ARB_SET_ARCH,             /* ARB_ARCH: target, e.g. sm_90; empty = device 0's */
    ARB_SET_PRECISION,        /* ARB_PRECISION: GEMM mode of the jit backend */
    ARB_SET_KERNEL_DIR,       /* ARB_KERNEL_DIR: read templates from here, not the library */
    ARB_SET_NVRTC_FLAGS,      /* ARB_NVRTC_FLAGS: extra NVRTC options (space separated) */
    ARB_SET_KERNEL_DEBUG,     /* ARB_KERNEL_DEBUG: 1 = compile with -lineinfo */
    ARB_SET_COUNT
} arb_setting_id;

typedef enum arb_origin {
    ARB_ORIGIN_DEFAULT = 0,
    ARB_ORIGIN_ENV = 1,
    ARB_ORIGIN_FLAG = 2,
} arb_origin;

typedef struct arb_setting_info {
    const char *name;        /* environment variable */
    const char *fallback;    /* default value ("" for none; the cache path is computed) */
    const char *description; /* one line for `arb-cache config` and --help */
    int codegen;             /* nonzero: changes generated code, part of the key */
} arb_setting_info;

#define ARB_SETTING_MAX 1024

typedef struct arb_settings {
    char value[ARB_SET_COUNT][ARB_SETTING_MAX];
    arb_origin origin[ARB_SET_COUNT];
} arb_settings;

const arb_setting_info *arb_setting_info_of(arb_setting_id id);
const char *arb_origin_name(arb_origin origin); /* "default", "environment", "flag" */

/* Defaults, then the environment. Never fails: a bad value is reported by
 * the code that uses it. */
void arb_settings_load(arb_settings *s);

/* Set from a command-line flag (origin = flag). */
arb_status arb_settings_set(arb_settings *s, arb_setting_id id, const char *value, arb_err *err);

static inline const char *arb_settings_get(const arb_settings *s, arb_setting_id id)
{
    return s->value[id];
}

/* A boolean setting: "1", "true", "yes", "on" are true. */
int arb_settings_flag(const arb_settings *s, arb_setting_id id);

/* Parse a size like "2GiB", "500M", "1048576", "0" (0 = unlimited). */
arb_status arb_parse_size(const char *text, int64_t *bytes, arb_err *err);

/* Open the cache the settings name: ARB_CACHE (the writable file),
 * ARB_CACHE_READONLY (':'-separated layers), ARB_CACHE_MAX_SIZE. One place
 * for the engine and arb-cache, so both read the same files. `warn` as in
 * arb_cache_options. ARB_CACHE_DISABLE is the caller's to honour. */
arb_status arb_settings_cache_open(const arb_settings *s, arb_cache_warn_fn warn, void *warn_ctx,
                                   arb_cache **cache, arb_err *err);

/* Canonical text of the codegen settings not carried by another key column
 * ("ARB_KERNEL_DEBUG=0;ARB_NVRTC_FLAGS=;"). */
void arb_settings_codegen_text(const arb_settings *s, char *buf, size_t len);

/* The default cache path: $XDG_CACHE_HOME/arb/kernels.sqlite, else
 * ~/.cache/arb/kernels.sqlite. */
void arb_default_cache_path(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* ARB_SETTINGS_H */
