/*
 * settings.c - the registry of ARB_* settings and their origins.
 */
#include "arb/settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Indexed by arb_setting_id. Append new settings at the end of the enum. */
static const arb_setting_info infos[ARB_SET_COUNT] = {
    [ARB_SET_CACHE] = {"ARB_CACHE", "", "writable kernel cache file", 0},
    [ARB_SET_CACHE_READONLY] = {"ARB_CACHE_READONLY", "",
                                "read-only cache files consulted first, ':'-separated", 0},
    [ARB_SET_CACHE_MODE] = {"ARB_CACHE_MODE", "normal",
                            "normal, or strict: any cache miss is an error", 0},
    [ARB_SET_CACHE_DISABLE] = {"ARB_CACHE_DISABLE", "0",
                               "1: use no cache file, compile every kernel in memory", 0},
    [ARB_SET_RECACHE] = {"ARB_RECACHE", "0", "1: ignore cache hits, compile and store again", 0},
    [ARB_SET_CACHE_MAX_SIZE] = {"ARB_CACHE_MAX_SIZE", "2GiB",
                                "cap on the writable cache's cubin bytes (LRU eviction), 0 = none",
                                0},
    [ARB_SET_BACKEND] = {"ARB_BACKEND", "auto", "auto, jit or cpu", 0},
    [ARB_SET_ARCH] = {"ARB_ARCH", "",
                      "target architecture, e.g. sm_90a (default: device 0's, sm_90a on an H100)",
                      1},
    [ARB_SET_PRECISION] = {"ARB_PRECISION", "bf16x2",
                           "GEMM precision mode: fp32, tf32, bf16, bf16x2, bf16x3", 1},
    [ARB_SET_KERNEL_DIR] = {"ARB_KERNEL_DIR", "",
                            "read kernel templates from this folder (kernel development)", 1},
    [ARB_SET_NVRTC_FLAGS] = {"ARB_NVRTC_FLAGS", "", "extra NVRTC options, space separated", 1},
    [ARB_SET_KERNEL_DEBUG] = {"ARB_KERNEL_DEBUG", "0", "1: compile kernels with -lineinfo", 1},
};

const arb_setting_info *arb_setting_info_of(arb_setting_id id)
{
    if ((int)id < 0 || id >= ARB_SET_COUNT)
        return NULL;
    return &infos[id];
}

const char *arb_origin_name(arb_origin origin)
{
    switch (origin) {
    case ARB_ORIGIN_DEFAULT: return "default";
    case ARB_ORIGIN_ENV:     return "environment";
    case ARB_ORIGIN_FLAG:    return "flag";
    }
    return "unknown";
}

void arb_default_cache_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (xdg && xdg[0])
        snprintf(buf, len, "%s/arb/kernels.sqlite", xdg);
    else if (home && home[0])
        snprintf(buf, len, "%s/.cache/arb/kernels.sqlite", home);
    else
        snprintf(buf, len, "./.arb-cache/kernels.sqlite");
}

void arb_settings_load(arb_settings *s)
{
    for (int i = 0; i < ARB_SET_COUNT; i++) {
        const char *env = getenv(infos[i].name);
        if (env && env[0]) {
            snprintf(s->value[i], ARB_SETTING_MAX, "%s", env);
            s->origin[i] = ARB_ORIGIN_ENV;
        } else {
            snprintf(s->value[i], ARB_SETTING_MAX, "%s", infos[i].fallback);
            s->origin[i] = ARB_ORIGIN_DEFAULT;
        }
    }
    if (s->origin[ARB_SET_CACHE] == ARB_ORIGIN_DEFAULT)
        arb_default_cache_path(s->value[ARB_SET_CACHE], ARB_SETTING_MAX);
}

arb_status arb_settings_set(arb_settings *s, arb_setting_id id, const char *value, arb_err *err)
{
    if ((int)id < 0 || id >= ARB_SET_COUNT || !value)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "unknown setting %d", (int)id);
    if (strlen(value) >= ARB_SETTING_MAX)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: value longer than %d characters",
                        infos[id].name, ARB_SETTING_MAX - 1);
    snprintf(s->value[id], ARB_SETTING_MAX, "%s", value);
    s->origin[id] = ARB_ORIGIN_FLAG;
    return ARB_OK;
}

int arb_settings_flag(const arb_settings *s, arb_setting_id id)
{
    const char *v = s->value[id];
    return strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
           strcasecmp(v, "on") == 0;
}

arb_status arb_parse_size(const char *text, int64_t *bytes, arb_err *err)
{
    static const struct {
        const char *suffix;
        int64_t scale;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"K", 1000},
        {"KB", 1000},
        {"KiB", 1024},
        {"M", 1000 * 1000},
        {"MB", 1000 * 1000},
        {"MiB", 1024 * 1024},
        {"G", 1000LL * 1000 * 1000},
        {"GB", 1000LL * 1000 * 1000},
        {"GiB", 1024LL * 1024 * 1024},
        {"T", 1000LL * 1000 * 1000 * 1000},
        {"TB", 1000LL * 1000 * 1000 * 1000},
        {"TiB", 1024LL * 1024 * 1024 * 1024},
    };
    if (!text || !isdigit((unsigned char)text[0]))
        goto bad;
    errno = 0;
    char *end = NULL;
    double number = strtod(text, &end);
    if (errno || number < 0)
        goto bad;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double total = number * (double)units[i].scale;
            if (total > 9.0e18)
                goto bad;
            *bytes = (int64_t)total;
            return ARB_OK;
        }
    }
bad:
    return ARB_FAIL(err, ARB_ERR_PARSE,
                    "bad size '%s': expected a number with an optional unit (K, M, G, T, KiB, "
                    "MiB, GiB, TiB), e.g. 2GiB; 0 means no limit",
                    text ? text : "(null)");
}

void arb_settings_codegen_text(const arb_settings *s, char *buf, size_t len)
{
    /* ARB_ARCH, ARB_PRECISION and ARB_KERNEL_DIR reach the key as the arch,
     * precision and template_sha columns; the rest go here. */
    snprintf(buf, len, "ARB_KERNEL_DEBUG=%d;ARB_NVRTC_FLAGS=%s;",
             arb_settings_flag(s, ARB_SET_KERNEL_DEBUG), s->value[ARB_SET_NVRTC_FLAGS]);
}

arb_status arb_settings_cache_open(const arb_settings *s, arb_cache_warn_fn warn, void *warn_ctx,
                                   arb_cache **cache, arb_err *err)
{
    int64_t max_bytes = 0;
    arb_status st = arb_parse_size(arb_settings_get(s, ARB_SET_CACHE_MAX_SIZE), &max_bytes, err);
    if (st)
        return st;
    /* The layer names point into `list`; arb_cache_open copies them. */
    char list[ARB_SETTING_MAX];
    snprintf(list, sizeof(list), "%s", arb_settings_get(s, ARB_SET_CACHE_READONLY));
    const char *layers[ARB_CACHE_MAX_READONLY];
    int n_layers = 0;
    for (char *save = NULL, *tok = strtok_r(list, ":", &save); tok;
         tok = strtok_r(NULL, ":", &save)) {
        if (n_layers == ARB_CACHE_MAX_READONLY)
            return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "ARB_CACHE_READONLY names more than %d files",
                            ARB_CACHE_MAX_READONLY);
        layers[n_layers++] = tok;
    }
    arb_cache_options opt;
    arb_cache_options_init(&opt);
    opt.path = arb_settings_get(s, ARB_SET_CACHE);
    opt.readonly_paths = layers;
    opt.n_readonly = n_layers;
    opt.max_bytes = max_bytes;
    opt.warn = warn;
    opt.warn_ctx = warn_ctx;
    return arb_cache_open(cache, &opt, err);
}
