/*
 * arb-bench - verify, then time, arb's kernels on a CUDA GPU; tune their
 * block configurations into the cache's tuning table.
 *
 * Modes (bench_usage has the whole text): the resolved configuration of
 * every kernel of the shapes beside its peers (default); --sweep-blocks;
 * --gemm; --kernel/--shape/--blocks (one replayed measurement); --jit;
 * --step. --dry-run and --help work without a GPU; everything else needs
 * one and exits 2 with a message when there is none.
 *
 * Exit codes: 0 all ok; 1 a wrong result, a compile or launch failure, or
 * an error while measuring; 2 usage error or no GPU. Errors go to stderr as
 * "arb-bench: error: <message>", results to stdout, progress to stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gpu.h"

#ifndef ARB_VERSION
#define ARB_VERSION "unknown"
#endif
#ifndef ARB_BENCH_SOURCE_DIR
#define ARB_BENCH_SOURCE_DIR ""
#endif

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char *mode_name(const bench_options *o)
{
    switch (o->mode) {
    case BENCH_MODE_SWEEP: return "sweep-blocks";
    case BENCH_MODE_JIT: return "jit";
    case BENCH_MODE_STEP: return "step";
    default: return "resolved";
    }
}

static int error_exit(const arb_err *err, int code)
{
    fprintf(stderr, "arb-bench: error: %s\n", err->msg[0] ? err->msg : arb_status_str(err->status));
    return code;
}

/* Input problems (a bad shapes file, a shape a kernel rejects) are usage
 * errors; anything else is a failure. */
static int plan_exit_code(arb_status st)
{
    switch (st) {
    case ARB_ERR_PARSE:
    case ARB_ERR_INVALID_ARG:
    case ARB_ERR_NOT_FOUND:
    case ARB_ERR_IO:
    case ARB_ERR_UNSUPPORTED:
        return BENCH_EXIT_USAGE;
    default:
        return BENCH_EXIT_FAIL;
    }
}

static int write_outputs(const bench_options *o, bench_report *r)
{
    int code = BENCH_EXIT_OK;
    arb_err err = {0};
    if (o->json_path && bench_write_json_file(r, o->json_path, &err) != ARB_OK)
        code = error_exit(&err, BENCH_EXIT_FAIL);
    arb_err_clear(&err);
    if (o->csv_path && bench_write_csv_file(r, o->csv_path, &err) != ARB_OK)
        code = error_exit(&err, BENCH_EXIT_FAIL);
    arb_err_clear(&err);
    if (o->plot_path && bench_write_svg_file(r, o->plot_path, &err) != ARB_OK)
        code = error_exit(&err, BENCH_EXIT_FAIL);
    return code;
}

/* The driver and a device, or a message saying there is none. */
static int need_gpu(void)
{
    const arb_cuda *cu = NULL;
    arb_err err = {0};
    if (arb_cuda_load(&cu, &err) == ARB_OK)
        return 0;
    fprintf(stderr,
            "arb-bench: error: no GPU: %s\n"
            "arb-bench measures kernels on a CUDA GPU; `arb-bench --dry-run` lists what it "
            "would measure without one.\n",
            err.msg);
    return BENCH_EXIT_USAGE;
}

/* The target the trainer's plans are made for, which decides whether the
 * big tensor-core GEMMs are staged (sm_90a): ARB_ARCH when set, as the
 * engine takes it, else the device's; NULL without a GPU (a dry run on a
 * machine without one lists the plans of no particular target). */
static const char *plan_arch(const bench_options *o, const arb_settings *s, char *buf,
                             size_t len)
{
    const char *set = arb_settings_get(s, ARB_SET_ARCH);
    if (set && set[0]) {
        bench_copy(buf, len, set);
        return buf;
    }
    if (arb_device_arch(o->device, buf, len, NULL) != ARB_OK)
        return NULL;
    return buf;
}

static int run_jit(const bench_options *o, const bench_plan *plan, bench_report *r)
{
    arb_err err = {0};
    arb_status st = bench_jit(o, plan, r, &err);
    int code = st ? error_exit(&err, BENCH_EXIT_FAIL) : BENCH_EXIT_OK;
    for (int i = 0; i < r->count; i++)
        if (strcmp(r->rows[i].status, "ok") != 0)
            code = BENCH_EXIT_FAIL;
    int out = write_outputs(o, r);
    return code ? code : out;
}

static int run_measure(const bench_options *o, const bench_plan *plan, const arb_settings *s,
                       bench_report *r)
{
    arb_engine *engine = NULL;
    bench_gpu g;
    memset(&g, 0, sizeof(g));
    arb_err err = {0};
    int code = BENCH_EXIT_OK;
    arb_engine_options eopt;
    arb_engine_options_init(&eopt);
    eopt.settings = s;
    eopt.device = o->device;
    arb_status st = arb_engine_open(&engine, &eopt, &err);
    if (st)
        return error_exit(&err, st == ARB_ERR_NO_DEVICE || st == ARB_ERR_NO_DRIVER
                                    ? BENCH_EXIT_USAGE
                                    : BENCH_EXIT_FAIL);
    st = bench_gpu_init(&g, engine, o, &err);
    if (st) {
        code = error_exit(&err, BENCH_EXIT_FAIL);
        goto done;
    }
    g.interrupted = &interrupted;
    if (!(o->no_peers && o->no_ceilings)) {
        arb_err blas_err = {0};
        if (bench_cublas_open(g.stream, &g.blas, &blas_err) != ARB_OK)
            bench_copy(g.blas_error, sizeof(g.blas_error), blas_err.msg);
    } else {
        snprintf(g.blas_error, sizeof(g.blas_error), "cuBLAS not loaded (--no-peers)");
    }
    const arb_device_info *info = g.info;
    r->has_device = 1;
    snprintf(r->device, sizeof(r->device), "%s", info->name);
    r->sm_count = info->sm_count;
    r->cc_major = info->cc_major;
    r->cc_minor = info->cc_minor;
    r->memory_bytes = (double)info->total_mem;
    snprintf(r->arch, sizeof(r->arch), "%s", arb_engine_arch(engine));
    snprintf(r->driver, sizeof(r->driver), "%s", arb_engine_driver_version(engine));
    snprintf(r->nvrtc, sizeof(r->nvrtc), "%s", arb_engine_nvrtc_version(engine));
    arb_cache *cache = arb_engine_cache(engine);
    const char *cache_path = cache ? arb_cache_path(cache) : NULL;
    snprintf(r->cache, sizeof(r->cache), "%s", cache_path ? cache_path : "");
    if (!o->quiet)
        fprintf(stderr, "arb-bench: %s, %d SMs, %s, driver %s, NVRTC %s; cache %s\n", info->name,
                info->sm_count, r->arch, r->driver, r->nvrtc, r->cache[0] ? r->cache : "(none)");

    bench_measure_ceilings(&g, r);
    bench_run run;
    memset(&run, 0, sizeof(run));
    run.g = &g;
    run.report = r;
    run.sweep = o->mode == BENCH_MODE_SWEEP;
    run.record = (run.sweep || o->has_blocks) && !o->no_record;
    st = bench_measure_plan(&run, plan, &err);
    /* --gemm: then each shape's whole ops in every mode, as the trainer
     * runs them (the kernel rows above time the plan's kernels alone). */
    if (!st && o->n_gemm > 0)
        st = bench_measure_ops(&run, &err);
    if (run.sweep)
        bench_mark_winners(r);
    bench_print_table(stdout, r);
    if (run.sweep) {
        bench_print_winners(stdout, r);
        if (run.record && !g.context_lost)
            bench_print_engine_choice(&run, plan, stdout);
    }
    if (run.record)
        printf("\n%d tuning rows recorded in %s (build %.12s; rows of other builds are stale)\n",
               run.recorded, r->cache[0] ? r->cache : "(no cache)", r->build);
    if (st)
        code = error_exit(&err, BENCH_EXIT_FAIL);
    else if (run.failures) {
        fprintf(stderr, "arb-bench: %d measurement%s failed (wrong, compile_failed, "
                        "launch_failed, unverified or skipped rows; see the notes)\n",
                run.failures, run.failures == 1 ? "" : "s");
        code = BENCH_EXIT_FAIL;
    }
    int out = write_outputs(o, r);
    if (!code)
        code = out;
    bench_peers_free(&run.peers);
done:
    bench_cublas_close(g.blas);
    bench_gpu_close(&g);
    arb_engine_close(engine);
    return code;
}

int main(int argc, char **argv)
{
    bench_options o;
    bench_options_init(&o);
    char msg[1024];
    if (bench_parse_args(argc, argv, &o, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "arb-bench: error: %s\nTry 'arb-bench --help'.\n", msg);
        return BENCH_EXIT_USAGE;
    }
    if (o.help) {
        bench_usage(stdout);
        return BENCH_EXIT_OK;
    }
    if (o.version) {
        printf("arb-bench %s (engine build %s)\n", ARB_VERSION, arb_engine_build_id());
        return BENCH_EXIT_OK;
    }

    arb_settings settings;
    arb_settings_load(&settings);
    arb_err err = {0};
    if (o.cache_path && arb_settings_set(&settings, ARB_SET_CACHE, o.cache_path, &err) != ARB_OK)
        return error_exit(&err, BENCH_EXIT_USAGE);
    arb_precision prec = o.precision;
    if (!o.has_precision &&
        arb_precision_parse(arb_settings_get(&settings, ARB_SET_PRECISION), &prec, &err) != ARB_OK)
        return error_exit(&err, BENCH_EXIT_USAGE);

    if (o.mode == BENCH_MODE_STEP) {
        int code = need_gpu();
        if (code)
            return code;
        bench_report r;
        bench_report_init(&r, mode_name(&o), o.command);
        o.precision = prec;
        arb_status st = bench_step(&o, &settings, &r, &err);
        int out = st ? error_exit(&err, BENCH_EXIT_FAIL) : write_outputs(&o, &r);
        bench_report_free(&r);
        return out;
    }

    char arch[16];
    bench_plan plan;
    arb_status st = bench_plan_build(&o, ARB_BENCH_SOURCE_DIR, prec,
                                     plan_arch(&o, &settings, arch, sizeof(arch)), &plan, &err);
    if (st)
        return error_exit(&err, plan_exit_code(st));
    int code;
    if (o.dry_run) {
        bench_print_dry_run(stdout, &o, &plan);
        code = BENCH_EXIT_OK;
    } else if ((code = need_gpu()) == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_interrupt;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        bench_report r;
        bench_report_init(&r, mode_name(&o), o.command);
        code = o.mode == BENCH_MODE_JIT ? run_jit(&o, &plan, &r)
                                        : run_measure(&o, &plan, &settings, &r);
        bench_report_free(&r);
    }
    bench_plan_free(&plan);
    return code;
}
