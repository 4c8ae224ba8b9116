/*
 * engine.c - open/close the JIT engine, build kernel keys, compile, and move
 * cubins between NVRTC, the cache and the driver.
 *
 * The launch path (function_table.c) reaches this file only on the first
 * use of a spec in a process.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"

extern const arb_template_file arb_embedded_templates[];
extern const int arb_embedded_template_count;
extern const char arb_embedded_build_id[];

#ifndef ARB_VERSION
#define ARB_VERSION "0"
#endif

double arb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *arb_engine_build_id(void) { return arb_embedded_build_id; }

void arb_engine_options_init(arb_engine_options *opt) { memset(opt, 0, sizeof(*opt)); }

void arb_engine_warn(arb_engine *engine, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (engine->warn)
        engine->warn(engine->warn_ctx, msg);
    else
        fprintf(stderr, "arb: warning: %s\n", msg);
}

arb_kernel_counters *arb_engine_counters(arb_engine *engine, const char *kernel)
{
    for (int i = 0; i < arb_kernel_count(); i++)
        if (strcmp(arb_kernel_at(i)->name, kernel) == 0)
            return &engine->counters[i];
    return &engine->counters[0]; /* unreachable for registry kernels */
}

/* ---- opening ----------------------------------------------------------------- */

static char *read_text_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int is_template_name(const char *name)
{
    size_t len = strlen(name);
    return (len > 3 && strcmp(name + len - 3, ".cu") == 0) ||
           (len > 4 && strcmp(name + len - 4, ".cuh") == 0);
}

/* ARB_KERNEL_DIR: read every .cu/.cuh of the folder and hash their closures,
 * exactly as the build-time embedder does. */
static arb_status load_template_dir(arb_engine *e, const char *dir, arb_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ARB_FAIL(err, ARB_ERR_IO, "ARB_KERNEL_DIR=%s: cannot open the folder", dir);
    int cap = 64, n = 0;
    arb_template_file *files = calloc((size_t)cap, sizeof(*files));
    arb_status st = ARB_OK;
    struct dirent *ent;
    while (files && (ent = readdir(d)) != NULL) {
        if (!is_template_name(ent->d_name))
            continue;
        if (n == cap)
            break;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
        size_t len = 0;
        char *text = read_text_file(path, &len);
        if (!text) {
            st = ARB_FAIL(err, ARB_ERR_IO, "ARB_KERNEL_DIR: cannot read %s", path);
            break;
        }
        files[n].name = strdup(ent->d_name);
        files[n].text = text;
        files[n].len = len;
        n++;
    }
    closedir(d);
    if (!files)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory reading ARB_KERNEL_DIR");
    e->owned_templates = files;
    e->n_templates = n;
    e->templates = files;
    if (st)
        return st;
    e->owned_shas = calloc((size_t)(n > 0 ? n : 1), 65);
    if (!e->owned_shas)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory hashing templates");
    for (int i = 0; i < n; i++) {
        st = arb_template_closure_hash(files, n, files[i].name, e->owned_shas[i], err);
        if (st)
            return st;
        files[i].sha = e->owned_shas[i];
    }
    return ARB_OK;
}

/* Canonical compile options. Everything that changes code generation is
 * here or in the key's other columns. */
static arb_status build_options(arb_engine *e, arb_err *err)
{
    char *store = e->option_storage;
    size_t left = sizeof(e->option_storage);
    e->n_options = 0;
#define ADD_OPTION(text)                                                                           \
    do {                                                                                           \
        size_t len_ = strlen(text) + 1;                                                            \
        if (len_ > left || e->n_options >= ARB_MAX_OPTIONS)                                        \
            return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "too many NVRTC options (ARB_NVRTC_FLAGS)"); \
        memcpy(store, text, len_);                                                                 \
        e->options[e->n_options++] = store;                                                        \
        store += len_;                                                                             \
        left -= len_;                                                                              \
    } while (0)
    char arch_opt[64];
    snprintf(arch_opt, sizeof(arch_opt), "--gpu-architecture=%s", e->arch);
    ADD_OPTION(arch_opt);
    ADD_OPTION("-std=c++17");
    ADD_OPTION("--ptxas-options=-v");
    if (arb_settings_flag(&e->settings, ARB_SET_KERNEL_DEBUG))
        ADD_OPTION("-lineinfo");
    char extra[ARB_SETTING_MAX];
    snprintf(extra, sizeof(extra), "%s", arb_settings_get(&e->settings, ARB_SET_NVRTC_FLAGS));
    for (char *save = NULL, *tok = strtok_r(extra, " \t", &save); tok;
         tok = strtok_r(NULL, " \t", &save))
        ADD_OPTION(tok);
#undef ADD_OPTION
    e->options_text[0] = '\0';
    for (int i = 0; i < e->n_options; i++) {
        if (i)
            strncat(e->options_text, " ", sizeof(e->options_text) - strlen(e->options_text) - 1);
        strncat(e->options_text, e->options[i],
                sizeof(e->options_text) - strlen(e->options_text) - 1);
    }
    arb_settings_codegen_text(&e->settings, e->codegen_env, sizeof(e->codegen_env));
    return ARB_OK;
}

static arb_status open_device(arb_engine *e, int ordinal, arb_err *err)
{
    arb_status st = arb_cuda_load(&e->cu, err);
    if (st)
        return st;
    const arb_cuda *cu = e->cu;
    char text[256];
    CUresult rc = cu->DeviceGet(&e->device, ordinal);
    if (rc != CUDA_SUCCESS)
        return ARB_FAIL(err, ARB_ERR_NO_DEVICE, "CUDA device %d: %s", ordinal,
                        arb_cuda_error_text(cu, rc, text, sizeof(text)));
    rc = cu->DevicePrimaryCtxRetain(&e->context, e->device);
    if (rc == CUDA_SUCCESS)
        rc = cu->CtxSetCurrent(e->context);
    if (rc != CUDA_SUCCESS)
        return ARB_FAIL(err, ARB_ERR_CUDA, "cannot create a context on CUDA device %d: %s",
                        ordinal, arb_cuda_error_text(cu, rc, text, sizeof(text)));
    arb_device_info *info = &e->info;
    cu->DeviceGetName(info->name, (int)sizeof(info->name), e->device);
    cu->DeviceGetAttribute(&info->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                           e->device);
    cu->DeviceGetAttribute(&info->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                           e->device);
    cu->DeviceGetAttribute(&info->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, e->device);
    cu->DeviceGetAttribute(&info->smem_per_block_optin,
                           CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, e->device);
    cu->DeviceTotalMem(&info->total_mem, e->device);
    info->driver_version = cu->driver_version;
    snprintf(e->driver_version, sizeof(e->driver_version), "%d.%d", cu->driver_version / 1000,
             (cu->driver_version % 1000) / 10);
    return ARB_OK;
}

static arb_status open_cache(arb_engine *e, arb_err *err)
{
    if (arb_settings_flag(&e->settings, ARB_SET_CACHE_DISABLE))
        return ARB_OK;
    return arb_settings_cache_open(&e->settings, e->warn, e->warn_ctx, &e->cache, err);
}

arb_status arb_engine_open(arb_engine **out, const arb_engine_options *opt, arb_err *err)
{
    *out = NULL;
    arb_engine_options defaults;
    if (!opt) {
        arb_engine_options_init(&defaults);
        opt = &defaults;
    }
    arb_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory opening the engine");
    e->counters = calloc((size_t)arb_kernel_count(), sizeof(*e->counters));
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->loaded, NULL);
    arb_status st = ARB_OK;
    if (!e->counters) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory opening the engine");
        goto fail;
    }
    if (opt->settings)
        e->settings = *opt->settings;
    else
        arb_settings_load(&e->settings);
    e->warn = opt->warn;
    e->warn_ctx = opt->warn_ctx;
    e->compile_only = opt->compile_only;
    e->device_ordinal = opt->device;
    const char *mode = arb_settings_get(&e->settings, ARB_SET_CACHE_MODE);
    if (strcmp(mode, "strict") == 0)
        e->strict = 1;
    else if (strcmp(mode, "normal") != 0 && mode[0] != '\0') {
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                      "ARB_CACHE_MODE=%s: expected normal or strict", mode);
        goto fail;
    }
    e->recache = arb_settings_flag(&e->settings, ARB_SET_RECACHE);
    snprintf(e->nvrtc_version, sizeof(e->nvrtc_version), "%s",
             opt->nvrtc_version ? opt->nvrtc_version : arb_nvrtc_version());

    const char *arch = arb_settings_get(&e->settings, ARB_SET_ARCH);
    if (!e->compile_only) {
        st = open_device(e, opt->device, err);
        if (st)
            goto fail;
    }
    if (arch[0]) {
        if (strncmp(arch, "sm_", 3) != 0 || strlen(arch) >= sizeof(e->arch)) {
            st = ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                          "ARB_ARCH=%s: expected a real architecture such as sm_90 or sm_90a",
                          arch);
            goto fail;
        }
        memcpy(e->arch, arch, strlen(arch) + 1);
    } else if (!e->compile_only) {
        arb_arch_for_device(e->info.cc_major, e->info.cc_minor, e->arch, sizeof(e->arch));
    } else {
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                      "no GPU to take the target architecture from: pass --arch sm_90a "
                      "(or set ARB_ARCH)");
        goto fail;
    }

    const char *dir = arb_settings_get(&e->settings, ARB_SET_KERNEL_DIR);
    if (dir[0]) {
        st = load_template_dir(e, dir, err);
        if (st)
            goto fail;
    } else {
        e->templates = arb_embedded_templates;
        e->n_templates = arb_embedded_template_count;
    }
    st = build_options(e, err);
    if (st)
        goto fail;
    st = open_cache(e, err);
    if (st)
        goto fail;
    arb_engine_load_tuning(e);
    *out = e;
    return ARB_OK;
fail:
    arb_engine_close(e);
    return st;
}

static void flush_counters(arb_engine *e)
{
    if (!e->cache || !e->counters)
        return;
    for (int i = 0; i < arb_kernel_count(); i++) {
        const arb_kernel_counters *c = &e->counters[i];
        const char *k = arb_kernel_at(i)->name;
#define FLUSH(name, value)                                                                         \
    if ((value) != 0)                                                                              \
        arb_cache_stats_add(e->cache, k, name, (double)(value));
        FLUSH("hit_readonly", c->hit_readonly);
        FLUSH("hit_writable", c->hit_writable);
        FLUSH("miss", c->miss);
        FLUSH("compile", c->compile);
        FLUSH("compile_ms", c->compile_ms);
        FLUSH("load", c->load);
        FLUSH("load_ms", c->load_ms);
        FLUSH("quarantined", c->quarantined);
        FLUSH("strict_miss", c->strict_miss);
        FLUSH("tuned", c->tuned);
        FLUSH("nearest_tuned", c->nearest);
        FLUSH("default_config", c->defaults);
#undef FLUSH
    }
    arb_cache_stats_flush(e->cache, NULL);
}

void arb_engine_close(arb_engine *e)
{
    if (!e)
        return;
    if (e->cu && e->context)
        e->cu->CtxSetCurrent(e->context);
    for (int b = 0; b < ARB_TABLE_BUCKETS; b++) {
        arb_table_entry *entry = e->buckets[b];
        while (entry) {
            arb_table_entry *next = entry->next;
            if (entry->module && e->cu)
                e->cu->ModuleUnload(entry->module);
            free(entry);
            entry = next;
        }
    }
    flush_counters(e);
    arb_cache_close(e->cache);
    if (e->cu && e->context)
        e->cu->DevicePrimaryCtxRelease(e->device);
    if (e->owned_templates) {
        for (int i = 0; i < e->n_templates; i++) {
            free((char *)e->owned_templates[i].name);
            free((char *)e->owned_templates[i].text);
        }
        free(e->owned_templates);
    }
    free(e->owned_shas);
    free(e->tuned);
    free(e->counters);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->loaded);
    free(e);
}

const arb_device_info *arb_engine_device(const arb_engine *e)
{
    return e->compile_only ? NULL : &e->info;
}
const arb_cuda *arb_engine_cuda(const arb_engine *e) { return e->cu; }
CUcontext arb_engine_context(const arb_engine *e) { return e->context; }
const char *arb_engine_arch(const arb_engine *e) { return e->arch; }

/* sm_90 devices get the arch-specific target sm_90a: its cubins run only on
 * sm_90, which is what a cubin for sm_90 does anyway, and it adds wgmma,
 * which the staged tensor-core GEMMs need. */
void arb_arch_for_device(int major, int minor, char *buf, size_t len)
{
    snprintf(buf, len, "sm_%d%d%s", major, minor, major == 9 && minor == 0 ? "a" : "");
}

arb_status arb_device_arch(int device, char *buf, size_t len, arb_err *err)
{
    const arb_cuda *cu = NULL;
    arb_status st = arb_cuda_load(&cu, err);
    if (st)
        return st;
    char text[256];
    CUdevice dev;
    int major = 0, minor = 0;
    CUresult rc = cu->DeviceGet(&dev, device);
    if (rc == CUDA_SUCCESS)
        rc = cu->DeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    if (rc == CUDA_SUCCESS)
        rc = cu->DeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    if (rc != CUDA_SUCCESS)
        return ARB_FAIL(err, ARB_ERR_NO_DEVICE, "CUDA device %d: %s", device,
                        arb_cuda_error_text(cu, rc, text, sizeof(text)));
    arb_arch_for_device(major, minor, buf, len);
    return ARB_OK;
}
const char *arb_engine_nvrtc_version(const arb_engine *e) { return e->nvrtc_version; }
const arb_settings *arb_engine_settings(const arb_engine *e) { return &e->settings; }
arb_cache *arb_engine_cache(arb_engine *e) { return e->cache; }
const char *arb_engine_driver_version(const arb_engine *e) { return e->driver_version; }
int arb_engine_strict(const arb_engine *e) { return e->strict; }

void arb_engine_stats_get(const arb_engine *e, arb_engine_stats *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&e->lock);
    *out = e->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&e->lock);
}

/* ---- keys --------------------------------------------------------------------- */

typedef struct key_strings {
    char name_expr[ARB_NAME_EXPR_MAX];
    char precision[16];
} key_strings;

static arb_status make_key(arb_engine *e, const arb_spec *spec, key_strings *ks,
                           arb_cache_key *key, char hash[ARB_CACHE_HASH_LEN], int *template_index,
                           arb_err *err)
{
    const arb_kernel_def *def = arb_kernel_find(spec->kernel);
    if (!def)
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND, "unknown kernel '%s'", spec->kernel);
    if (def->arch && strcmp(def->arch, e->arch) != 0)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s runs only on %s (Hopper's wgmma); this engine targets %s: set "
                        "ARB_ARCH=%s or pass --arch %s",
                        spec->kernel, def->arch, e->arch, def->arch, def->arch);
    int index = arb_template_find(e->templates, e->n_templates, def->template_file);
    if (index < 0)
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND, "kernel template %s is missing%s",
                        def->template_file, e->owned_templates ? " from ARB_KERNEL_DIR" : "");
    arb_spec_name_expr(spec, ks->name_expr, sizeof(ks->name_expr));
    snprintf(ks->precision, sizeof(ks->precision), "%s", arb_precision_name(spec->prec));
    memset(key, 0, sizeof(*key));
    key->kernel = spec->kernel;
    key->name_expr = ks->name_expr;
    key->M = spec->M;
    key->N = spec->N;
    key->K = spec->K;
    key->gs = spec->gs;
    key->bm = spec->blocks.bm;
    key->bn = spec->blocks.bn;
    key->bk = spec->blocks.bk;
    key->tm = spec->blocks.tm;
    key->tn = spec->blocks.tn;
    key->warps = spec->blocks.warps;
    key->stages = spec->blocks.stages;
    key->precision = ks->precision;
    key->arch = e->arch;
    key->nvrtc_version = e->nvrtc_version;
    key->template_sha = e->templates[index].sha ? e->templates[index].sha : "";
    key->options = e->options_text;
    key->env = e->codegen_env;
    arb_cache_key_hash(key, hash);
    *template_index = index;
    return ARB_OK;
}

arb_status arb_engine_key(arb_engine *e, const arb_spec *spec, arb_cache_key *key,
                          char hash[ARB_CACHE_HASH_LEN], arb_err *err)
{
    static _Thread_local key_strings ks;
    int index = 0;
    return make_key(e, spec, &ks, key, hash, &index, err);
}

/* ---- compile, store, load ----------------------------------------------------- */

static arb_status compile_spec(arb_engine *e, const arb_spec *spec, int template_index,
                               const char *name_expr, arb_compiled *out, arb_err *err)
{
    if (e->strict) {
        pthread_mutex_lock(&e->lock);
        e->stats.strict_misses++;
        arb_engine_counters(e, spec->kernel)->strict_miss++;
        pthread_mutex_unlock(&e->lock);
        char what[256];
        arb_spec_describe(spec, what, sizeof(what));
        return ARB_FAIL(err, ARB_ERR_CACHE_MISS,
                        "ARB_CACHE_MODE=strict: %s (%s) is not in the kernel cache; prewarm it "
                        "with arb-prewarm (arb-train --dump-shapes writes the shapes file)",
                        what, e->arch);
    }
    arb_status st = arb_nvrtc_compile(e->templates, e->n_templates, template_index, name_expr,
                                      e->options, e->n_options, out, err);
    if (st)
        return st;
    pthread_mutex_lock(&e->lock);
    e->stats.compiles++;
    e->stats.compile_ms += out->compile_ms;
    arb_kernel_counters *c = arb_engine_counters(e, spec->kernel);
    c->compile++;
    c->compile_ms += out->compile_ms;
    pthread_mutex_unlock(&e->lock);
    return ARB_OK;
}

static void store_compiled(arb_engine *e, const arb_spec *spec, const arb_cache_key *key,
                           const arb_compiled *c)
{
    if (!e->cache)
        return;
    const arb_kernel_def *def = arb_kernel_find(spec->kernel);
    unsigned grid[3], block[3], smem = 0;
    def->launch_dims(spec, grid, block, &smem);
    arb_cache_entry entry;
    memset(&entry, 0, sizeof(entry));
    entry.cubin = c->cubin;
    entry.cubin_len = c->cubin_len;
    entry.lowered_name = c->lowered_name;
    entry.block_x = (int32_t)block[0];
    entry.block_y = (int32_t)block[1];
    entry.block_z = (int32_t)block[2];
    entry.shared_bytes = (int32_t)smem;
    entry.registers = c->registers;
    entry.spill_bytes = c->spill_bytes;
    entry.compile_log = c->log ? c->log : "";
    entry.compile_ms = c->compile_ms;
    int inserted = 0;
    arb_err put_err = {0};
    if (arb_cache_put(e->cache, key, &entry, &inserted, &put_err) != ARB_OK)
        arb_engine_warn(e, "could not store a compiled kernel in the cache: %s (the kernel "
                           "still runs; it will be compiled again next time)",
                        put_err.msg);
}

/* Load a cubin and look up its kernel. */
static arb_status load_module(arb_engine *e, const uint8_t *cubin, const char *lowered,
                              CUmodule *module, CUfunction *fn, arb_err *err)
{
    const arb_cuda *cu = e->cu;
    char text[256];
    cu->CtxSetCurrent(e->context);
    CUresult rc = cu->ModuleLoadData(module, cubin);
    if (rc != CUDA_SUCCESS) {
        *module = NULL;
        return ARB_FAIL(err, ARB_ERR_CUDA, "cuModuleLoadData: %s",
                        arb_cuda_error_text(cu, rc, text, sizeof(text)));
    }
    rc = cu->ModuleGetFunction(fn, *module, lowered);
    if (rc != CUDA_SUCCESS) {
        cu->ModuleUnload(*module);
        *module = NULL;
        return ARB_FAIL(err, ARB_ERR_CUDA, "cuModuleGetFunction(%s): %s", lowered,
                        arb_cuda_error_text(cu, rc, text, sizeof(text)));
    }
    return ARB_OK;
}

static void count_quarantine_delta(arb_engine *e, const arb_spec *spec, int64_t before)
{
    if (!e->cache)
        return;
    int64_t delta = arb_cache_quarantined(e->cache) - before;
    if (delta <= 0)
        return;
    pthread_mutex_lock(&e->lock);
    e->stats.quarantined += delta;
    arb_engine_counters(e, spec->kernel)->quarantined += delta;
    pthread_mutex_unlock(&e->lock);
}

arb_status arb_engine_materialize(arb_engine *e, const arb_spec *spec, int load, CUmodule *module,
                                  CUfunction *fn, int *spill_bytes, int *compiled, double *ms,
                                  arb_err *err)
{
    key_strings ks;
    arb_cache_key key;
    char hash[ARB_CACHE_HASH_LEN];
    int template_index = 0;
    double start = arb_now_ms();
    *compiled = 0;
    *spill_bytes = -1;
    arb_status st = make_key(e, spec, &ks, &key, hash, &template_index, err);
    if (st)
        return st;
    arb_kernel_counters *counters = arb_engine_counters(e, spec->kernel);

    if (e->cache && !e->recache) {
        arb_cache_entry entry;
        int found = 0;
        int64_t quarantined_before = arb_cache_quarantined(e->cache);
        arb_err get_err = {0};
        if (arb_cache_get(e->cache, hash, &entry, &found, &get_err) != ARB_OK) {
            arb_engine_warn(e, "kernel cache read failed (%s); compiling instead", get_err.msg);
            found = 0;
        }
        count_quarantine_delta(e, spec, quarantined_before);
        if (found) {
            arb_status load_st = ARB_OK;
            double load_start = arb_now_ms();
            if (load)
                load_st = load_module(e, entry.cubin, entry.lowered_name, module, fn, err);
            double load_ms = arb_now_ms() - load_start;
            *spill_bytes = entry.spill_bytes;
            int layer = entry.layer;
            if (load_st == ARB_OK) {
                arb_cache_entry_free(&entry);
                double hit_ms = arb_now_ms() - start;
                pthread_mutex_lock(&e->lock);
                if (layer == ARB_CACHE_LAYER_WRITABLE) {
                    e->stats.hits_writable++;
                    counters->hit_writable++;
                } else {
                    e->stats.hits_readonly++;
                    counters->hit_readonly++;
                }
                e->stats.hit_ms += hit_ms;
                counters->hit_ms += hit_ms;
                if (load) {
                    e->stats.loads++;
                    e->stats.load_ms += load_ms;
                    counters->load++;
                    counters->load_ms += load_ms;
                }
                pthread_mutex_unlock(&e->lock);
                if (ms)
                    *ms = hit_ms;
                return ARB_OK;
            }
            /* The driver rejected a cubin whose checksum held: quarantine the
             * row and compile once more. */
            arb_engine_warn(e, "the CUDA driver rejected a cached %s kernel (%s); quarantined, "
                               "recompiling",
                            spec->kernel, err ? err->msg : "");
            if (err)
                arb_err_clear(err);
            arb_cache_quarantine(e->cache, hash, "cuModuleLoadData failed", NULL);
            arb_cache_entry_free(&entry);
            pthread_mutex_lock(&e->lock);
            e->stats.quarantined++;
            counters->quarantined++;
            pthread_mutex_unlock(&e->lock);
        }
        pthread_mutex_lock(&e->lock);
        e->stats.misses++;
        counters->miss++;
        pthread_mutex_unlock(&e->lock);
    }

    arb_compiled c;
    st = compile_spec(e, spec, template_index, ks.name_expr, &c, err);
    if (st)
        return st;
    *compiled = 1;
    *spill_bytes = c.spill_bytes;
    store_compiled(e, spec, &key, &c);
    if (load) {
        double load_start = arb_now_ms();
        st = load_module(e, c.cubin, c.lowered_name, module, fn, err);
        double load_ms = arb_now_ms() - load_start;
        pthread_mutex_lock(&e->lock);
        e->stats.loads++;
        e->stats.load_ms += load_ms;
        counters->load++;
        counters->load_ms += load_ms;
        pthread_mutex_unlock(&e->lock);
    }
    arb_compiled_free(&c);
    if (ms)
        *ms = arb_now_ms() - start;
    return st;
}

arb_status arb_engine_prepare(arb_engine *e, const arb_spec *spec, int *compiled, double *ms,
                              arb_err *err)
{
    arb_status st = arb_spec_check(spec, err);
    if (st)
        return st;
    int spill = -1;
    if (e->cache && !e->recache) {
        /* A cheap existence check first: prewarm reruns touch no bytes. */
        key_strings ks;
        arb_cache_key key;
        char hash[ARB_CACHE_HASH_LEN];
        int template_index = 0;
        double start = arb_now_ms();
        st = make_key(e, spec, &ks, &key, hash, &template_index, err);
        if (st)
            return st;
        int found = 0;
        int64_t quarantined_before = arb_cache_quarantined(e->cache);
        if (arb_cache_contains(e->cache, hash, &found, NULL) == ARB_OK && found) {
            *compiled = 0;
            if (ms)
                *ms = arb_now_ms() - start;
            return ARB_OK;
        }
        count_quarantine_delta(e, spec, quarantined_before);
    }
    return arb_engine_materialize(e, spec, 0, NULL, NULL, &spill, compiled, ms, err);
}
