/*
 * measure.c - verify, then time: one spec's candidate configurations.
 *
 * For each spec of the plan:
 *   1. Buffers per the kernel's layout (layout.c), fresh random contents,
 *      copied enough times to total >= 2x L2 (gpu.c).
 *   2. The trusted result: the kernel's DEFAULT configuration in fp32 (the
 *      GPU tests tie it to the CPU reference), run once on poisoned outputs
 *      and restored state. For the float GEMMs it is itself checked against
 *      float64 rows computed here.
 *   3. Peers (peers.c): dense cuBLAS for GEMM-shaped kernels (verified
 *      against the trusted result), a device copy of the same bytes for the
 *      rest.
 *   4. Each candidate: the kernel's check, compile through the cache
 *      (arb_engine_function, exact), one run on poisoned outputs and
 *      restored state compared with the trusted result, then timing
 *      (timing.c). Only a correct candidate is timed; every outcome is a row
 *      and, in a sweep, a tuning-table row.
 * Before the first spec, every configuration the run needs is compiled in
 * parallel into the cache (NVRTC is thread-safe; 150-330 ms per GEMM
 * template), so the GPU does not idle through compiles one by one.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arb/ternary.h"
#include "bench_gpu.h"

typedef union arg_slot {
    int32_t i32;
    int64_t i64;
    uint64_t u64;
    CUdeviceptr ptr;
} arg_slot;

typedef struct instance {
    arb_spec spec;            /* the plan item's spec */
    const arb_kernel_def *def;
    bench_layout l;
    void *host[BENCH_MAX_BUFS]; /* initial contents of every buffer */
    void *ref[BENCH_MAX_BUFS];  /* trusted results of compared buffers */
    void *got[BENCH_MAX_BUFS];  /* a candidate's results */
    float *dense;               /* T * 2^E, N x K (GEMM kernels with a weight) */
    bench_dset set;
    arg_slot *slots;            /* copies x n_args parameter values */
    void **argv;                /* copies x BENCH_MAX_ARGS pointers to them */
    int have_ref;
    arb_spec ref_spec;
    char ref_status[16];        /* the reference's own outcome */
    char ref_reason[512];
    char group[192];
} instance;

/* ---- buffers ------------------------------------------------------------------------- */

static void inst_free(bench_gpu *g, instance *in)
{
    for (int b = 0; b < BENCH_MAX_BUFS; b++) {
        free(in->host[b]);
        free(in->ref[b]);
        free(in->got[b]);
    }
    free(in->dense);
    free(in->slots);
    free(in->argv);
    bench_dset_free(g, &in->set);
    memset(in, 0, sizeof(*in));
}

static uint64_t fresh_seed(int index)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec ^
           ((uint64_t)getpid() << 32) ^ (uint64_t)index;
}

static arb_status inst_init(bench_run *run, const bench_item *item, int index, instance *in,
                            arb_err *err)
{
    bench_gpu *g = run->g;
    memset(in, 0, sizeof(*in));
    in->spec = item->spec;
    in->def = arb_kernel_find(item->spec.kernel);
    bench_group_name(&in->spec, in->group, sizeof(in->group));
    arb_status st = bench_layout_for(&in->spec, &in->l, err);
    if (st)
        return st;
    bench_rng rng = {fresh_seed(index)};
    size_t sizes[BENCH_MAX_BUFS];
    for (int b = 0; b < in->l.n_bufs; b++) {
        const bench_buf *buf = &in->l.bufs[b];
        sizes[b] = buf->bytes;
        in->host[b] = malloc(buf->bytes);
        if (buf->cmp != CMP_NONE) {
            in->ref[b] = malloc(buf->bytes);
            in->got[b] = malloc(buf->bytes);
        }
        if (!in->host[b] || (buf->cmp != CMP_NONE && (!in->ref[b] || !in->got[b])))
            return ARB_FAIL(err, ARB_ERR_NOMEM, "out of host memory for %s (%s, %zu bytes)",
                            in->group, buf->name, buf->bytes);
        bench_fill(buf, &rng, in->host[b]);
    }
    if (in->l.buf_packed >= 0 && in->l.buf_E >= 0 &&
        (in->l.gemm == GEMM_FWD || in->l.gemm == GEMM_GRAD_X)) {
        size_t nk = (size_t)in->spec.N * (size_t)in->spec.K;
        in->dense = malloc(nk * sizeof(float));
        if (!in->dense)
            return ARB_FAIL(err, ARB_ERR_NOMEM, "out of host memory for the dense weight of %s",
                            in->group);
        bench_dequantize(in->host[in->l.buf_packed], in->host[in->l.buf_E], in->spec.N,
                         in->spec.K, in->spec.gs, in->dense);
    }
    st = bench_dset_alloc(g, sizes, in->l.n_bufs, bench_copies_for(in->l.total_bytes), &in->set,
                          in->group, err);
    for (int b = 0; !st && b < in->l.n_bufs; b++)
        st = bench_dset_upload(g, &in->set, 0, b, in->host[b], in->group, err);
    if (!st)
        st = bench_dset_replicate(g, &in->set, in->group, err);
    if (st)
        return st;
    int copies = in->set.copies;
    in->slots = calloc((size_t)copies * BENCH_MAX_ARGS, sizeof(*in->slots));
    in->argv = calloc((size_t)copies * BENCH_MAX_ARGS, sizeof(*in->argv));
    if (!in->slots || !in->argv)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory for kernel parameters");
    for (int c = 0; c < copies; c++) {
        for (int a = 0; a < in->l.n_args; a++) {
            const bench_arg *arg = &in->l.args[a];
            arg_slot *slot = &in->slots[(size_t)c * BENCH_MAX_ARGS + a];
            switch (arg->kind) {
            case ARG_BUF: slot->ptr = bench_dset_ptr(&in->set, c, arg->buf); break;
            case ARG_I32: slot->i32 = (int32_t)arg->value; break;
            case ARG_I64: slot->i64 = arg->value; break;
            case ARG_U64: slot->u64 = (uint64_t)arg->value; break;
            }
            in->argv[(size_t)c * BENCH_MAX_ARGS + a] = slot;
        }
    }
    return ARB_OK;
}

/* ---- one launch on copy 0, checked ------------------------------------------------- */

typedef struct launch_ctx {
    const arb_function *f;
    instance *in;
    const char *what;
} launch_ctx;

static arb_status launch_enqueue(bench_gpu *g, void *vctx, int copy, arb_err *err)
{
    launch_ctx *c = vctx;
    const arb_function *f = c->f;
    void **argv = &c->in->argv[(size_t)(copy % c->in->set.copies) * BENCH_MAX_ARGS];
    CUresult rc = g->cu->LaunchKernel(f->fn, f->grid[0], f->grid[1], f->grid[2], f->block[0],
                                      f->block[1], f->block[2], f->smem_bytes, g->stream, argv,
                                      NULL);
    return rc == CUDA_SUCCESS ? ARB_OK : bench_cu_fail(g, rc, "cuLaunchKernel", c->what, err);
}

/* Restore state, poison outputs, launch, wait, download every compared
 * buffer into dst. */
static arb_status run_once(bench_gpu *g, instance *in, const arb_function *f, void **dst,
                           const char *what, arb_err *err)
{
    arb_status st = ARB_OK;
    for (int b = 0; !st && b < in->l.n_bufs; b++) {
        const bench_buf *buf = &in->l.bufs[b];
        if (buf->role == ROLE_STATE) {
            st = bench_dset_upload(g, &in->set, 0, b, in->host[b], what, err);
        } else if (buf->role == ROLE_OUT) {
            /* 0xFF: NaN floats, -1 indices, invalid packed bytes; int8 signs get 0x7F,
             * as 0xFF would read as a valid -1. */
            unsigned char poison = buf->type == BT_I8 ? 0x7F : 0xFF;
            CUresult rc = g->cu->MemsetD8Async(bench_dset_ptr(&in->set, 0, b), poison, buf->bytes,
                                               g->stream);
            if (rc != CUDA_SUCCESS)
                st = bench_cu_fail(g, rc, "cuMemsetD8Async (poisoning outputs)", what, err);
        }
    }
    launch_ctx ctx = {f, in, what};
    if (!st)
        st = launch_enqueue(g, &ctx, 0, err);
    if (!st) {
        CUresult rc = g->cu->StreamSynchronize(g->stream);
        if (rc != CUDA_SUCCESS)
            st = bench_cu_fail(g, rc, "the kernel failed (cuStreamSynchronize)", what, err);
    }
    for (int b = 0; !st && b < in->l.n_bufs; b++)
        if (in->l.bufs[b].cmp != CMP_NONE)
            st = bench_download(g, dst[b], bench_dset_ptr(&in->set, 0, b), in->l.bufs[b].bytes,
                                what, err);
    return st;
}

/* ---- the trusted result ------------------------------------------------------------ */

/* float64 rows of the float GEMMs against the trusted result. */
static void check_reference_rows(instance *in)
{
    const char *k = in->spec.kernel;
    int fwd = strcmp(k, "ternary_fwd") == 0, gx = strcmp(k, "ternary_grad_x") == 0,
        outer = strcmp(k, "grad_weight") == 0;
    if (!(fwd || gx || outer) || in->ref_spec.prec != ARB_PREC_FP32)
        return;
    const int64_t M = in->spec.M, N = in->spec.N, K = in->spec.K;
    int64_t span = outer ? N : M;
    int64_t rows[3] = {0, span / 2, span - 1};
    int n_rows = span >= 3 ? 3 : (int)span;
    if (span == 2)
        rows[1] = 1;
    int64_t row_len = fwd ? N : K;
    double *want = malloc((size_t)n_rows * (size_t)row_len * sizeof(double));
    if (!want)
        return;
    const float *out = in->ref[in->l.buf_out];
    if (fwd)
        bench_ref_fwd_rows(in->host[in->l.buf_a], in->dense, N, K, rows, n_rows, want);
    else if (gx)
        bench_ref_grad_x_rows(in->host[in->l.buf_a], in->dense, N, K, rows, n_rows, want);
    else
        bench_ref_outer_rows(in->host[in->l.buf_a], in->host[in->l.buf_b], M, N, K, rows, n_rows,
                             want);
    double e = bench_rel_err_rows(out, row_len, rows, n_rows, want);
    free(want);
    double tol = bench_tolerance(ARB_PREC_FP32);
    if (!(e <= tol)) {
        in->have_ref = 0;
        snprintf(in->ref_status, sizeof(in->ref_status), "wrong");
        snprintf(in->ref_reason, sizeof(in->ref_reason),
                 "the default fp32 configuration (the trusted reference) disagrees with float64 "
                 "rows computed on the host: rel err %.3g > %g",
                 e, tol);
    }
}

static void reference(bench_run *run, instance *in)
{
    bench_gpu *g = run->g;
    arb_spec ref = bench_reference_spec(&in->spec);
    in->ref_spec = ref;
    arb_err err = {0};
    const arb_function *f = NULL;
    char what[ARB_NAME_EXPR_MAX + 64];
    arb_spec_describe(&ref, what, sizeof(what));
    arb_status st = arb_engine_function(g->engine, &ref, 1, &f, &err);
    if (st) {
        snprintf(in->ref_status, sizeof(in->ref_status), "%s", bench_failure_status(st));
        bench_join(in->ref_reason, sizeof(in->ref_reason),
                   "no trusted result: the default configuration failed: ", err.msg);
        return;
    }
    st = run_once(g, in, f, in->ref, what, &err);
    if (st) {
        snprintf(in->ref_status, sizeof(in->ref_status), "launch_failed");
        bench_join(in->ref_reason, sizeof(in->ref_reason),
                   "no trusted result: the default configuration failed: ", err.msg);
        return;
    }
    in->have_ref = 1;
    snprintf(in->ref_status, sizeof(in->ref_status), "ok");
    check_reference_rows(in);
}

/* ---- peers of a spec ------------------------------------------------------------- */

static const bench_peer *peer_of(bench_run *run, instance *in)
{
    if (run->g->opt->no_peers)
        return NULL;
    /* tc_gemm is compute-bound: a copy of its bytes is no peer, and its
     * cuBLAS comparison is the whole staged plan's (the --gemm op rows). */
    if (strcmp(in->spec.kernel, "tc_gemm") == 0)
        return NULL;
    if (in->l.gemm == GEMM_NONE) {
        double bytes = 0, flops = 0;
        in->def->work(&in->spec, &bytes, &flops);
        return bench_peer_copy(run, bytes);
    }
    const char *k = in->spec.kernel;
    int checkable = in->have_ref && (strcmp(k, "ternary_fwd") == 0 ||
                                     strcmp(k, "ternary_grad_x") == 0 ||
                                     strcmp(k, "grad_weight") == 0);
    const float *check = checkable ? in->ref[in->l.buf_out] : NULL;
    const float *a = in->host[in->l.buf_a];
    const float *b = in->l.gemm == GEMM_OUTER ? in->host[in->l.buf_b] : in->dense;
    if (!a || !b)
        return NULL;
    return bench_peer_gemm(run, &in->spec, in->l.gemm, a, b, check);
}

/* ---- one candidate ------------------------------------------------------------------ */

static void record(bench_run *run, const bench_row *row)
{
    if (!run->record)
        return;
    arb_cache *cache = arb_engine_cache(run->g->engine);
    arb_tune_row t;
    if (bench_tune_row_from(row, run->report, &t) != 0)
        return;
    arb_err err = {0};
    if (!cache || arb_tune_put(cache, &t, &err) != ARB_OK) {
        if (!run->record_warned++)
            fprintf(stderr, "arb-bench: warning: tuning results are not stored: %s\n",
                    cache ? err.msg : "the kernel cache is disabled (ARB_CACHE_DISABLE)");
        return;
    }
    run->recorded++;
}

static void candidate(bench_run *run, instance *in, const bench_candidate *cand,
                      const char *origin, const bench_peer *peer, int progress_index,
                      int progress_total)
{
    bench_gpu *g = run->g;
    bench_row row;
    bench_row_init(&row);
    snprintf(row.kind, sizeof(row.kind), "kernel");
    snprintf(row.name, sizeof(row.name), "%s", in->spec.kernel);
    snprintf(row.group, sizeof(row.group), "%s", in->group);
    row.has_spec = 1;
    row.spec = in->spec;
    row.spec.blocks = cand->blocks;
    bench_format_blocks(&cand->blocks, row.config, sizeof(row.config));
    snprintf(row.origin, sizeof(row.origin), "%s", origin);
    row.is_default = cand->is_default;
    in->def->work(&row.spec, &row.bytes, &row.flops);
    bench_replay_command(&row.spec, row.command, sizeof(row.command));
    if (peer) {
        snprintf(row.peer, sizeof(row.peer), "%s", peer->name);
        row.peer_us = peer->row.median_us;
    }
    char what[ARB_NAME_EXPR_MAX + 64];
    arb_spec_describe(&row.spec, what, sizeof(what));
    int same_as_ref = arb_spec_equal(&row.spec, &in->ref_spec);
    arb_err err = {0};
    const arb_function *f = NULL;
    arb_status st = ARB_OK;

    if (!cand->supported) {
        snprintf(row.status, sizeof(row.status), "unsupported");
        snprintf(row.reason, sizeof(row.reason), "%s", cand->reason);
    } else if ((st = arb_engine_function(g->engine, &row.spec, 1, &f, &err)) != ARB_OK) {
        snprintf(row.status, sizeof(row.status), "%s", bench_failure_status(st));
        bench_copy(row.reason, sizeof(row.reason), err.msg);
    } else if (!in->have_ref) {
        /* The reference itself: its own outcome; anything else: unverifiable. */
        snprintf(row.status, sizeof(row.status), "%s", same_as_ref ? in->ref_status : "unverified");
        snprintf(row.reason, sizeof(row.reason), "%s", in->ref_reason);
    } else if ((st = run_once(g, in, f, in->got, what, &err)) != ARB_OK) {
        snprintf(row.status, sizeof(row.status), "launch_failed");
        bench_copy(row.reason, sizeof(row.reason), err.msg);
    } else if (bench_compare(&in->l, in->got, in->ref, &row.rel_err, row.reason,
                             sizeof(row.reason)) != 0) {
        snprintf(row.status, sizeof(row.status), "wrong");
    } else {
        bench_timing t;
        launch_ctx ctx = {f, in, what};
        st = bench_time_op(g, launch_enqueue, &ctx, in->set.copies, 1, what, &t, &err);
        if (st) {
            snprintf(row.status, sizeof(row.status), "launch_failed");
            bench_copy(row.reason, sizeof(row.reason), err.msg);
        } else {
            snprintf(row.status, sizeof(row.status), "ok");
            bench_row_set_timing(&row, &t);
        }
    }
    bench_row_derive(&row, &run->report->ceil);
    if (isfinite(row.peer_us) && isfinite(row.median_us) && row.median_us > 0)
        row.peer_ratio = row.peer_us / row.median_us;
    if (bench_status_is_failure(row.status))
        run->failures++;
    record(run, &row);
    bench_report_add(run->report, &row);
    if (!g->opt->quiet) {
        char brief[64];
        bench_format_blocks_short(&row.spec.blocks, brief, sizeof(brief));
        fprintf(stderr, "[%d/%d] %s  %s  %s", progress_index, progress_total, in->group, brief,
                row.status);
        if (isfinite(row.median_us))
            fprintf(stderr, "  %.2f us", row.median_us);
        if (row.reason[0])
            fprintf(stderr, "  (%s)", row.reason);
        fputc('\n', stderr);
    }
}

/* ---- parallel precompile -------------------------------------------------------------- */

typedef struct compile_job {
    arb_engine *engine;
    const arb_spec *specs;
    int count;
    int next, compiled, failed;
    pthread_mutex_t lock;
} compile_job;

static void *compile_worker(void *vjob)
{
    compile_job *job = vjob;
    for (;;) {
        pthread_mutex_lock(&job->lock);
        int i = job->next++;
        pthread_mutex_unlock(&job->lock);
        if (i >= job->count)
            return NULL;
        int compiled = 0;
        double ms = 0;
        arb_err err = {0};
        arb_status st = arb_engine_prepare(job->engine, &job->specs[i], &compiled, &ms, &err);
        pthread_mutex_lock(&job->lock);
        job->compiled += compiled;
        job->failed += st != ARB_OK;
        pthread_mutex_unlock(&job->lock);
    }
}

/* Compile `specs` (blocks as given) into the cache on several threads.
 * Failures are not reported here: the measurement meets them again and
 * records them. */
void bench_prepare_specs(bench_gpu *g, const arb_spec *specs, int n)
{
    arb_engine *e = g->engine;
    arb_cache *cache = arb_engine_cache(e);
    if (!cache || !arb_cache_writable(cache) || n <= 0)
        return; /* nowhere to keep the results */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus < 1 ? 1 : cpus > 16 ? 16 : (int)cpus;
    if (threads > n)
        threads = n;
    compile_job job = {e, specs, n, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    double start_ms = bench_now_ms();
    if (!g->opt->quiet)
        fprintf(stderr, "arb-bench: preparing %d kernels in the cache on %d threads...\n", n,
                threads);
    pthread_t tid[16];
    int started = 0;
    for (int t = 0; t < threads; t++)
        if (pthread_create(&tid[t], NULL, compile_worker, &job) == 0)
            started++;
    if (started == 0)
        compile_worker(&job);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    if (!g->opt->quiet)
        fprintf(stderr, "arb-bench: %d compiled, %d already cached, %d failed (%.1f s)\n",
                job.compiled, n - job.compiled - job.failed, job.failed,
                (bench_now_ms() - start_ms) / 1e3);
    pthread_mutex_destroy(&job.lock);
}

/* Every (spec, configuration) the run will load, compiled in parallel. */
static void precompile(bench_run *run, const bench_plan *plan)
{
    arb_engine *e = run->g->engine;
    arb_cache *cache = arb_engine_cache(e);
    if (!cache || !arb_cache_writable(cache))
        return; /* nowhere to keep the results */
    int cap = plan->count * (BENCH_MAX_CANDIDATES + 1);
    arb_spec *specs = malloc((size_t)cap * sizeof(*specs));
    bench_candidate *cands = malloc(BENCH_MAX_CANDIDATES * sizeof(*cands));
    if (!specs || !cands) {
        free(specs);
        free(cands);
        return;
    }
    int n = 0;
    for (int i = 0; i < plan->count; i++) {
        const bench_item *it = &plan->items[i];
        specs[n++] = bench_reference_spec(&it->spec);
        int k;
        if (run->sweep) {
            k = bench_candidates(&it->spec, run->g->opt->has_blocks ? &it->spec.blocks : NULL,
                                 cands, BENCH_MAX_CANDIDATES);
        } else {
            cands[0].blocks = it->spec.blocks;
            cands[0].supported = 1;
            if (!it->exact) {
                arb_spec s = it->spec;
                arb_engine_resolve_blocks(e, &s);
                cands[0].blocks = s.blocks;
            }
            k = 1;
        }
        for (int c = 0; c < k; c++) {
            if (!cands[c].supported)
                continue;
            specs[n] = it->spec;
            specs[n].blocks = cands[c].blocks;
            if (arb_spec_check(&specs[n], NULL) == ARB_OK)
                n++;
        }
    }
    bench_prepare_specs(run->g, specs, n);
    free(specs);
    free(cands);
}

/* ---- the plan --------------------------------------------------------------------------- */

static const char *origin_name(arb_blocks_origin o)
{
    return o == ARB_BLOCKS_TUNED ? "tuned" : o == ARB_BLOCKS_NEAREST ? "nearest" : "default";
}

static void skipped_row(bench_run *run, const bench_item *it, const char *status,
                        const char *reason)
{
    bench_row row;
    bench_row_init(&row);
    snprintf(row.kind, sizeof(row.kind), "kernel");
    snprintf(row.name, sizeof(row.name), "%s", it->spec.kernel);
    bench_group_name(&it->spec, row.group, sizeof(row.group));
    row.has_spec = 1;
    row.spec = it->spec;
    bench_format_blocks(&it->spec.blocks, row.config, sizeof(row.config));
    snprintf(row.status, sizeof(row.status), "%s", status);
    snprintf(row.origin, sizeof(row.origin), "default");
    row.is_default = 1;
    bench_copy(row.reason, sizeof(row.reason), reason);
    bench_replay_command(&row.spec, row.command, sizeof(row.command));
    run->failures += bench_status_is_failure(status);
    bench_report_add(run->report, &row);
    if (!run->g->opt->quiet)
        fprintf(stderr, "%s: %s: %s\n", row.group, status, reason);
}

arb_status bench_measure_plan(bench_run *run, const bench_plan *plan, arb_err *err)
{
    bench_gpu *g = run->g;
    const bench_options *o = g->opt;
    bench_candidate *cands = calloc(BENCH_MAX_CANDIDATES, sizeof(*cands));
    if (!cands)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory");
    precompile(run, plan);
    int total = 0;
    for (int i = 0; i < plan->count; i++)
        total += run->sweep ? bench_candidates(&plan->items[i].spec,
                                               o->has_blocks ? &plan->items[i].spec.blocks : NULL,
                                               cands, BENCH_MAX_CANDIDATES)
                            : 1;
    int done = 0;
    arb_status st = ARB_OK;
    for (int i = 0; i < plan->count && !st; i++) {
        const bench_item *it = &plan->items[i];
        if (g->interrupted && *g->interrupted) {
            st = ARB_FAIL(err, ARB_ERR_INTERRUPTED, "interrupted; the rows measured so far "
                                                    "are reported");
            break;
        }
        int n;
        const char *origin = "candidate";
        if (run->sweep) {
            n = bench_candidates(&it->spec, o->has_blocks ? &it->spec.blocks : NULL, cands,
                                 BENCH_MAX_CANDIDATES);
        } else {
            arb_spec s = it->spec;
            origin = "pinned";
            if (!it->exact)
                origin = origin_name(arb_engine_resolve_blocks(g->engine, &s));
            n = bench_candidates(&s, &s.blocks, cands, BENCH_MAX_CANDIDATES);
        }
        /* A shape no configuration can run (e.g. tensors of 2^31 elements):
         * say so before allocating anything for it. */
        arb_spec shape_only = it->spec;
        shape_only.blocks = arb_kernel_find(it->spec.kernel)->default_blocks(&shape_only);
        arb_err local = {0};
        if (arb_spec_check(&shape_only, &local) != ARB_OK) {
            char reason[512];
            bench_join(reason, sizeof(reason),
                       "the default configuration (the trusted reference) cannot run it: ",
                       local.msg);
            skipped_row(run, it, "unsupported", reason);
            done += n;
            continue;
        }
        instance in;
        arb_status ist = inst_init(run, it, i, &in, &local);
        if (ist) {
            skipped_row(run, it, ist == ARB_ERR_UNSUPPORTED ? "unsupported" : "skipped",
                        local.msg);
            inst_free(g, &in);
            done += n;
            if (g->context_lost)
                st = ARB_FAIL(err, ARB_ERR_CUDA, "the CUDA context is lost after %s; stopping",
                              g->lost_reason);
            continue;
        }
        reference(run, &in);
        if (!o->quiet) {
            char brief[64];
            bench_format_blocks_short(&in.ref_spec.blocks, brief, sizeof(brief));
            fprintf(stderr, "%s: %d copies of %.3g MB rotated; reference %s (fp32 default): %s%s%s\n",
                    in.group, in.set.copies, in.l.total_bytes / 1e6, brief, in.ref_status,
                    in.ref_reason[0] ? ": " : "", in.ref_reason);
        }
        const bench_peer *peer = g->context_lost ? NULL : peer_of(run, &in);
        bench_peer peer_copy;
        if (peer) { /* the array may move as later peers are added */
            peer_copy = *peer;
            peer = &peer_copy;
        }
        for (int c = 0; c < n; c++) {
            if (g->context_lost || (g->interrupted && *g->interrupted))
                break;
            const char *cand_origin = run->sweep && cands[c].is_default ? "default" : origin;
            candidate(run, &in, &cands[c], cand_origin, peer, ++done, total);
        }
        inst_free(g, &in);
        if (g->context_lost)
            st = ARB_FAIL(err, ARB_ERR_CUDA,
                          "the CUDA context is lost after %s (a kernel faulted); stopping: the "
                          "rows measured so far are reported",
                          g->lost_reason);
    }
    free(cands);
    return st;
}

/* ---- what the engine picks now ---------------------------------------------------------- */

void bench_print_engine_choice(bench_run *run, const bench_plan *plan, FILE *out)
{
    arb_engine_options opt;
    arb_engine_options_init(&opt);
    arb_settings settings = *arb_engine_settings(run->g->engine);
    opt.settings = &settings;
    opt.device = run->g->opt->device;
    arb_engine *e = NULL;
    arb_err err = {0};
    if (arb_engine_open(&e, &opt, &err) != ARB_OK) {
        fprintf(out, "\n(could not reopen the engine to show its choices: %s)\n", err.msg);
        return;
    }
    fprintf(out, "\nthe engine now resolves (fresh engine on the same cache):\n");
    for (int i = 0; i < plan->count; i++) {
        arb_spec s = plan->items[i].spec;
        arb_blocks_origin origin = arb_engine_resolve_blocks(e, &s);
        char group[192], brief[64];
        bench_group_name(&s, group, sizeof(group));
        bench_format_blocks_short(&s.blocks, brief, sizeof(brief));
        fprintf(out, "  %-66s %-22s %s\n", group, brief, origin_name(origin));
    }
    arb_engine_close(e);
}
