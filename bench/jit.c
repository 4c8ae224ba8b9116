/*
 * jit.c - what the JIT costs: per template, the cold NVRTC compile (a fresh
 * temporary cache, so nothing hits), the cache hit of a new process (SQLite
 * read + checksum + cuModuleLoadData: a new engine on the now warm cache),
 * and the launch overhead through the engine's in-memory table against a
 * raw cuLaunchKernel of a cached CUfunction.
 *
 * Targets (research/engine-anchors.md §9): a hit costs ~1 ms or less per
 * kernel (cuda.core ~10 us to fetch an entry, ~0.1 ms measured for
 * cuModuleLoadData); the table lookup on the launch path < 1 us (one hash,
 * one short bucket walk under a mutex, ~50-100 ns expected).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_gpu.h"

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *ent;
        while ((ent = readdir(d)) != NULL) {
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
                continue;
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* One spec per template: the plan's first use of it, else a 1024 x 4096 x
 * 4096 shape (grad_weight and grad_sign serve only the two-pass path). */
static int jit_specs(const bench_plan *plan, arb_spec *out, int max)
{
    int n = 0;
    for (int k = 0; k < arb_kernel_count() && n < max; k++) {
        const arb_kernel_def *def = arb_kernel_at(k);
        int found = 0;
        for (int i = 0; i < plan->count && !found; i++) {
            if (strcmp(plan->items[i].spec.kernel, def->name) != 0)
                continue;
            out[n] = plan->items[i].spec;
            out[n].blocks = def->default_blocks(&out[n]);
            found = 1;
        }
        if (!found) {
            int32_t variant = strcmp(def->name, "update_E") == 0 ? ARB_VARIANT_E_GRAD : 0;
            if (arb_spec_init(&out[n], def->name, 1024, 4096, 4096, 64, ARB_PREC_FP32, variant,
                              NULL) != ARB_OK ||
                arb_spec_check(&out[n], NULL) != ARB_OK)
                continue;
        }
        n++;
    }
    return n;
}

static void jit_row(bench_report *r, const char *name, const arb_spec *spec, double value,
                    const char *unit, const char *status, const char *reason)
{
    bench_row row;
    bench_row_init(&row);
    snprintf(row.kind, sizeof(row.kind), "jit");
    snprintf(row.name, sizeof(row.name), "%s", name);
    if (spec) {
        row.has_spec = 1;
        row.spec = *spec;
        bench_group_name(spec, row.group, sizeof(row.group));
        bench_format_blocks(&spec->blocks, row.config, sizeof(row.config));
    }
    row.value = value;
    snprintf(row.unit, sizeof(row.unit), "%s", unit);
    snprintf(row.status, sizeof(row.status), "%s", status);
    snprintf(row.reason, sizeof(row.reason), "%s", reason ? reason : "");
    bench_report_add(r, &row);
}

static arb_status open_on(const char *cache_path, int device, arb_engine **e, arb_err *err)
{
    arb_settings s;
    arb_settings_load(&s);
    arb_settings_set(&s, ARB_SET_CACHE, cache_path, NULL);
    arb_settings_set(&s, ARB_SET_CACHE_READONLY, "", NULL);
    arb_settings_set(&s, ARB_SET_CACHE_MODE, "normal", NULL);
    arb_settings_set(&s, ARB_SET_CACHE_DISABLE, "0", NULL);
    arb_settings_set(&s, ARB_SET_RECACHE, "0", NULL);
    arb_engine_options opt;
    arb_engine_options_init(&opt);
    opt.settings = &s;
    opt.device = device;
    return arb_engine_open(e, &opt, err);
}

/* Host time per launch, enqueue time only: launches go in batches of 256
 * with a synchronize (not timed) between them, so the launch queue (~1000
 * entries) never fills and the figure is the host's cost, not the GPU's. */
typedef enum { LAUNCH_RAW, LAUNCH_ENGINE, LOOKUP_ONLY } launch_kind;

#define BATCH 256

static arb_status time_launches(arb_engine *e, const arb_spec *spec, CUstream stream,
                                CUdeviceptr counter, long n, launch_kind kind, double *ns,
                                arb_err *err)
{
    const arb_cuda *cu = arb_engine_cuda(e);
    const arb_function *f = NULL;
    arb_status st = arb_engine_function(e, spec, 0, &f, err);
    if (st)
        return st;
    void *args[1] = {&counter};
    char text[256];
    double host_ms = 0;
    for (long done = 0; done < n;) {
        long batch = n - done < BATCH ? n - done : BATCH;
        double t0 = bench_now_ms();
        for (long i = 0; i < batch; i++) {
            if (kind != LAUNCH_RAW) {
                st = arb_engine_function(e, spec, 0, &f, err);
                if (st)
                    return st;
            }
            if (kind == LOOKUP_ONLY)
                continue;
            CUresult rc = cu->LaunchKernel(f->fn, f->grid[0], f->grid[1], f->grid[2],
                                           f->block[0], f->block[1], f->block[2], f->smem_bytes,
                                           stream, args, NULL);
            if (rc != CUDA_SUCCESS)
                return ARB_FAIL(err, ARB_ERR_CUDA, "cuLaunchKernel (step_advance, launch %ld): %s",
                                done + i, arb_cuda_error_text(cu, rc, text, sizeof(text)));
        }
        host_ms += bench_now_ms() - t0;
        done += batch;
        if (kind == LOOKUP_ONLY)
            continue;
        CUresult rc = cu->StreamSynchronize(stream);
        if (rc != CUDA_SUCCESS)
            return ARB_FAIL(err, ARB_ERR_CUDA, "cuStreamSynchronize after %ld launches: %s", done,
                            arb_cuda_error_text(cu, rc, text, sizeof(text)));
    }
    *ns = host_ms * 1e6 / (double)n;
    return ARB_OK;
}

static arb_status launch_overhead(const bench_options *o, arb_engine *e, const arb_spec *spec,
                                  bench_report *r, arb_err *err)
{
    const arb_cuda *cu = arb_engine_cuda(e);
    CUstream stream = NULL;
    CUdeviceptr counter = 0;
    char text[256];
    arb_status st = ARB_OK;
    CUresult rc = cu->StreamCreate(&stream, CU_STREAM_NON_BLOCKING);
    if (rc == CUDA_SUCCESS)
        rc = cu->MemAlloc(&counter, 8);
    if (rc == CUDA_SUCCESS)
        rc = cu->MemsetD8Async(counter, 0, 8, stream);
    if (rc != CUDA_SUCCESS) {
        st = ARB_FAIL(err, ARB_ERR_CUDA, "setting up the launch-overhead test: %s",
                      arb_cuda_error_text(cu, rc, text, sizeof(text)));
        goto done;
    }
    double raw = 0, engine = 0, lookup = 0, warm = 0;
    long n = o->launches;
    /* Warm: queue slots, the function table entry, the driver's launch path. */
    st = time_launches(e, spec, stream, counter, n / 10 + 1, LAUNCH_ENGINE, &warm, err);
    if (!st)
        st = time_launches(e, spec, stream, counter, n, LAUNCH_RAW, &raw, err);
    if (!st)
        st = time_launches(e, spec, stream, counter, n, LAUNCH_ENGINE, &engine, err);
    if (!st)
        st = time_launches(e, spec, stream, counter, 10 * n, LOOKUP_ONLY, &lookup, err);
    if (st)
        goto done;
    jit_row(r, "launch_raw", spec, raw, "ns", "ok", NULL);
    jit_row(r, "launch_engine", spec, engine, "ns", "ok", NULL);
    jit_row(r, "lookup", spec, lookup, "ns", lookup < 1000 ? "ok" : "slow",
            lookup < 1000 ? NULL : "above the 1 us target");
    printf("\nlaunch overhead (host time per launch of step_advance, 1 block; %ld launches):\n", n);
    printf("  raw cuLaunchKernel, cached CUfunction   %8.0f ns\n", raw);
    printf("  arb_engine_function + cuLaunchKernel    %8.0f ns   (+%.0f ns)\n", engine,
           engine - raw);
    printf("  arb_engine_function lookup alone        %8.0f ns   (target < 1000 ns: %s)\n",
           lookup, lookup < 1000 ? "met" : "MISSED");
    printf("  (enqueue time only: batches of %d launches, a synchronize between them)\n", BATCH);
done:
    if (counter)
        cu->MemFree(counter);
    if (stream)
        cu->StreamDestroy(stream);
    return st;
}

/* The first use of a spec on an engine (compile or cache hit, then module
 * load): its wall time and the engine's time counters it moved (compile_ms,
 * hit_ms, load_ms). A failure's message goes to `failed`. */
static void first_use(arb_engine *e, const arb_spec *spec, char *failed, size_t failed_len,
                      double *wall_ms, arb_engine_stats *spent)
{
    arb_engine_stats before, after;
    arb_engine_stats_get(e, &before);
    const arb_function *f = NULL;
    arb_err local = {0};
    double t0 = bench_now_ms();
    if (arb_engine_function(e, spec, 1, &f, &local) != ARB_OK)
        bench_copy(failed, failed_len, local.msg);
    *wall_ms = bench_now_ms() - t0;
    arb_engine_stats_get(e, &after);
    memset(spent, 0, sizeof(*spent));
    spent->compile_ms = after.compile_ms - before.compile_ms;
    spent->hit_ms = after.hit_ms - before.hit_ms;
    spent->load_ms = after.load_ms - before.load_ms;
}

arb_status bench_jit(const bench_options *o, const bench_plan *plan, bench_report *r,
                     arb_err *err)
{
    arb_spec specs[64];
    int n = jit_specs(plan, specs, 64);
    char dir[] = "/tmp/arb-bench-jit-XXXXXX";
    if (!mkdtemp(dir))
        return ARB_FAIL(err, ARB_ERR_IO, "cannot create a temporary folder for the fresh cache");
    char cache[256];
    snprintf(cache, sizeof(cache), "%s/kernels.sqlite", dir);
    double cold[64] = {0}, nvrtc[64] = {0}, hit[64] = {0}, load[64] = {0};
    char failed[64][256];
    memset(failed, 0, sizeof(failed));
    arb_engine *e = NULL;
    arb_status st = open_on(cache, o->device, &e, err);
    if (st)
        goto done;
    /* The first NVRTC call of a process loads its builtins: keep that out. */
    {
        arb_spec warm;
        const arb_function *f = NULL;
        if (arb_spec_init(&warm, "step_advance", 2, 1, 1, 1, ARB_PREC_FP32, 0, NULL) == ARB_OK)
            arb_engine_function(e, &warm, 1, &f, NULL);
    }
    if (!o->quiet)
        fprintf(stderr, "arb-bench: compiling %d templates into a fresh cache %s...\n", n, cache);
    for (int i = 0; i < n; i++) {
        arb_engine_stats spent;
        first_use(e, &specs[i], failed[i], sizeof(failed[i]), &cold[i], &spent);
        nvrtc[i] = spent.compile_ms;
    }
    arb_engine_close(e);
    e = NULL;
    /* A new engine on the warm cache: every first use is a hit. */
    st = open_on(cache, o->device, &e, err);
    if (st)
        goto done;
    for (int i = 0; i < n; i++) {
        if (failed[i][0])
            continue;
        arb_engine_stats spent;
        double wall = 0;
        first_use(e, &specs[i], failed[i], sizeof(failed[i]), &wall, &spent);
        hit[i] = spent.hit_ms > 0 ? spent.hit_ms : wall;
        load[i] = spent.load_ms;
    }
    printf("JIT figures (%s; NVRTC %s):\n", arb_engine_arch(e), arb_engine_nvrtc_version(e));
    printf("  %-24s %12s %10s %12s %10s  %s\n", "template", "cold ms", "NVRTC ms", "hit ms",
           "load ms", "spec");
    double sum_cold = 0, sum_hit = 0;
    for (int i = 0; i < n; i++) {
        char group[192];
        bench_group_name(&specs[i], group, sizeof(group));
        if (failed[i][0]) {
            printf("  %-24s %12s %10s %12s %10s  %s: FAILED: %s\n", specs[i].kernel, "-", "-", "-",
                   "-", group, failed[i]);
            jit_row(r, "cold_compile", &specs[i], NAN, "ms", "compile_failed", failed[i]);
            continue;
        }
        printf("  %-24s %12.1f %10.1f %12.3f %10.3f  %s\n", specs[i].kernel, cold[i], nvrtc[i],
               hit[i], load[i], group);
        jit_row(r, "cold_compile", &specs[i], cold[i], "ms", "ok", NULL);
        jit_row(r, "nvrtc_compile", &specs[i], nvrtc[i], "ms", "ok", NULL);
        jit_row(r, "cache_hit", &specs[i], hit[i], "ms", "ok", NULL);
        jit_row(r, "module_load", &specs[i], load[i], "ms", "ok", NULL);
        sum_cold += cold[i];
        sum_hit += hit[i];
    }
    printf("  %-24s %12.1f %10s %12.3f  (all templates, one process each way)\n", "total", sum_cold,
           "", sum_hit);
    /* Launch overhead on the warm engine: the smallest kernel. */
    for (int i = 0; i < n; i++)
        if (strcmp(specs[i].kernel, "step_advance") == 0 && !failed[i][0]) {
            st = launch_overhead(o, e, &specs[i], r, err);
            break;
        }
done:
    if (e)
        arb_engine_close(e);
    remove_dir(dir);
    return st;
}
