/*
 * ops.c - whole ops timed as the trainer runs them (--gemm "op" rows).
 *
 * The kernel rows time each kernel alone. On sm_90a a big tensor-core op is
 * three kernels (ternary_decode, act_split, tc_gemm) with dense operands in
 * between, and what training pays is their sum and the gaps between them;
 * elsewhere, and in fp32, it is the fused kernel. So for each --gemm shape
 * and every precision mode, a jit backend on the run's engine calls
 * arb_op_ternary_fwd and arb_op_ternary_grad_x exactly as the trainer does
 * (the same plan, the same scratch, the engine's resolved blocks), and
 * each op is:
 *   1. checked on poisoned outputs: against float64 rows computed on the
 *      host, and against the fp32 op of the same run, within the mode's
 *      SPEC §3 bound (bench_tolerance), as the kernel rows are;
 *   2. timed by the host's wall clock around batches of op calls ending in
 *      arb_backend_sync. The backend's stream is its own, so CUDA events on
 *      bench's stream cannot time it; a batch is one CUDA graph captured
 *      through the backend (the trainer replays its steps as graphs; plain
 *      launches when capture fails) and lasts >= 2 ms, so the ~10-20 us of
 *      launching it and waking from the sync stay under 1% of a sample;
 *   3. set beside the cuBLAS peer of its mode on the dense dequantized
 *      weight (peers.c; the kernel rows' peers of the same dims are reused,
 *      else they are measured here): fp32, bf16x2 and bf16x3 beside fp32
 *      SGEMM (the accuracy they stand in for), tf32 beside tf32, bf16
 *      beside bf16.
 * Inputs rotate over copies totalling >= 2x L2 like every other row's; the
 * backend's scratch (decoded weight, activation pieces) is one buffer
 * reused by every call, as in training.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/ops.h"
#include "arb/ternary.h"
#include "bench_gpu.h"
#include "model.h" /* train_backend_fail */

#define OP_SAMPLE_US 2000.0 /* one timed batch lasts at least this long */
#define OP_MAX_PER 1024     /* op calls per batch at most (a graph of <= 3072 launches) */
#define OP_MAX_WARM 100000

static const char *const op_names[2] = {"ternary_fwd", "ternary_grad_x"};
static const arb_precision op_modes[] = {ARB_PREC_FP32, ARB_PREC_TF32, ARB_PREC_BF16,
                                         ARB_PREC_BF16X2, ARB_PREC_BF16X3};
#define N_MODES ((int)(sizeof(op_modes) / sizeof(op_modes[0])))

/* Device buffers of one copy, in the rotated set. */
enum { B_PACKED, B_E, B_X, B_GY, B_Y, B_GX, B_COUNT };

typedef struct op_shape {
    int64_t M, N, K, gs;
    char what[160];           /* "ternary_fwd/grad_x M=.. N=.. K=.. gs=..", for messages */
    uint8_t *packed;          /* host inputs */
    int8_t *E;
    float *x, *gy;
    float *dense;             /* T * 2^E, N x K: the peers' operand and the float64 rows' */
    float *got;               /* one op's output, downloaded */
    float *ref[2];            /* the fp32 op's outputs (y, gx) once they passed */
    double *want[2];          /* float64 rows of y and gx */
    int64_t rows[3];
    int n_rows;
    bench_dset set;
} op_shape;

static size_t out_elems(const op_shape *s, int op)
{
    return (size_t)s->M * (size_t)(op ? s->K : s->N);
}

static void shape_free(bench_gpu *g, op_shape *s)
{
    free(s->packed);
    free(s->E);
    free(s->x);
    free(s->gy);
    free(s->dense);
    free(s->got);
    for (int i = 0; i < 2; i++) {
        free(s->ref[i]);
        free(s->want[i]);
    }
    bench_dset_free(g, &s->set);
    memset(s, 0, sizeof(*s));
}

static void fill(bench_rng *rng, void *host, const char *name, bench_type type, size_t count,
                 size_t bytes, bench_gen gen, int64_t lo, int64_t hi)
{
    bench_buf b = {name, type, count, bytes, ROLE_IN, gen, lo, hi, 1.0, CMP_NONE, 0};
    bench_fill(&b, rng, host);
}

/* Host inputs (a fixed seed per shape: reruns see the same data), the
 * dense weight, float64 rows and the rotated device copies. */
static arb_status shape_init(bench_gpu *g, const bench_gemm_shape *gs, int index, op_shape *s,
                             arb_err *err)
{
    memset(s, 0, sizeof(*s));
    s->M = gs->M, s->N = gs->N, s->K = gs->K, s->gs = gs->gs;
    snprintf(s->what, sizeof(s->what),
             "ops ternary_fwd/grad_x M=%" PRId64 " N=%" PRId64 " K=%" PRId64 " gs=%" PRId64, s->M,
             s->N, s->K, s->gs);
    const size_t nk = (size_t)s->N * (size_t)s->K, groups = arb_scale_groups(s->N, s->K, s->gs);
    const size_t mk = (size_t)s->M * (size_t)s->K, mn = (size_t)s->M * (size_t)s->N;
    size_t sizes[B_COUNT] = {arb_packed_alloc_size(nk), groups, mk * 4, mn * 4, mn * 4, mk * 4};
    s->packed = malloc(sizes[B_PACKED]);
    s->E = malloc(groups);
    s->x = malloc(mk * sizeof(float));
    s->gy = malloc(mn * sizeof(float));
    s->dense = malloc(nk * sizeof(float));
    s->got = malloc((mk > mn ? mk : mn) * sizeof(float));
    s->n_rows = s->M >= 3 ? 3 : (int)s->M;
    s->rows[0] = 0, s->rows[1] = s->M / 2, s->rows[2] = s->M - 1;
    if (s->M == 2)
        s->rows[1] = 1;
    for (int op = 0; op < 2; op++)
        s->want[op] = malloc((size_t)s->n_rows * (size_t)(op ? s->K : s->N) * sizeof(double));
    if (!s->packed || !s->E || !s->x || !s->gy || !s->dense || !s->got || !s->want[0] ||
        !s->want[1])
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of host memory for %s", s->what);
    bench_rng rng = {0xA2B0F00DULL ^ ((uint64_t)index << 32)};
    fill(&rng, s->packed, "packed", BT_U8, nk, sizes[B_PACKED], GEN_TRITS, -1, 1);
    fill(&rng, s->E, "E", BT_I8, groups, groups, GEN_INT, -4, 0);
    fill(&rng, s->x, "x", BT_F32, mk, mk * 4, GEN_FLOAT, 0, 0);
    fill(&rng, s->gy, "gy", BT_F32, mn, mn * 4, GEN_FLOAT, 0, 0);
    bench_dequantize(s->packed, s->E, s->N, s->K, s->gs, s->dense);
    bench_ref_fwd_rows(s->x, s->dense, s->N, s->K, s->rows, s->n_rows, s->want[0]);
    bench_ref_grad_x_rows(s->gy, s->dense, s->N, s->K, s->rows, s->n_rows, s->want[1]);

    double total = 0;
    for (int b = 0; b < B_COUNT; b++)
        total += (double)sizes[b];
    arb_status st =
        bench_dset_alloc(g, sizes, B_COUNT, bench_copies_for(total), &s->set, s->what, err);
    if (!st)
        st = bench_dset_upload(g, &s->set, 0, B_PACKED, s->packed, s->what, err);
    if (!st)
        st = bench_dset_upload(g, &s->set, 0, B_E, s->E, s->what, err);
    if (!st)
        st = bench_dset_upload(g, &s->set, 0, B_X, s->x, s->what, err);
    if (!st)
        st = bench_dset_upload(g, &s->set, 0, B_GY, s->gy, s->what, err);
    if (!st)
        st = bench_dset_replicate(g, &s->set, s->what, err);
    if (!st) /* the backends' streams must see the uploads */
        st = bench_sync(g, s->what, err);
    return st;
}

/* Device addresses travel in typed pointers on the jit backend (backend.h). */
static void *dev(const op_shape *s, int copy, int buf)
{
    return (void *)(uintptr_t)bench_dset_ptr(&s->set, copy % s->set.copies, buf);
}

/* One op call on copy `copy`, queued on the backend's stream. */
static arb_status op_call(arb_backend *be, const op_shape *s, int op, int copy)
{
    arb_ternary W = {s->N, s->K, s->gs, dev(s, copy, B_PACKED), dev(s, copy, B_E), NULL, NULL};
    if (op == 0)
        return arb_op_ternary_fwd(be, &W, dev(s, copy, B_X), dev(s, copy, B_Y), s->M);
    return arb_op_ternary_grad_x(be, &W, dev(s, copy, B_GY), dev(s, copy, B_GX), s->M);
}

/* ---- failures --------------------------------------------------------------------- */

/* A failed backend call as an error naming what was being done, with the
 * backend's message (which is then cleared, so the next call starts clean). */
static arb_status backend_fail(arb_backend *be, arb_status st, const char *doing, arb_err *err)
{
    train_backend_fail(be, st, err, doing);
    arb_backend_clear_error(be);
    return st;
}

/* A row that failed with `err`; a faulting kernel leaves the context
 * unusable, which ends the run (the probe marks it lost). */
static void row_failed(bench_gpu *g, bench_row *row, const arb_err *err)
{
    snprintf(row->status, sizeof(row->status), "%s", bench_failure_status(err->status));
    bench_copy(row->reason, sizeof(row->reason), err->msg);
    CUresult rc = g->cu->CtxSynchronize();
    if (rc != CUDA_SUCCESS) {
        arb_err ignored = {0};
        bench_cu_fail(g, rc, "cuCtxSynchronize after a failed op", row->group, &ignored);
    }
}

/* ---- check ------------------------------------------------------------------------ */

/* Run the op once on copy 0 over poisoned outputs (NaN: an element left
 * unwritten fails), compare, and keep the fp32 op's result as the
 * reference of the other modes. Returns 0 when the row may be timed. */
static int check_op(bench_gpu *g, arb_backend *be, op_shape *s, int op, arb_precision mode,
                    bench_row *row)
{
    arb_err err = {0};
    size_t n = out_elems(s, op);
    int out = op ? B_GX : B_Y;
    CUresult rc = g->cu->MemsetD8Async(bench_dset_ptr(&s->set, 0, out), 0xFF, n * sizeof(float),
                                       g->stream);
    arb_status st = rc == CUDA_SUCCESS
                        ? bench_sync(g, row->group, &err)
                        : bench_cu_fail(g, rc, "cuMemsetD8Async (poisoning outputs)", row->group,
                                        &err);
    /* The first call compiles or loads the plan's kernels. */
    if (!st && ((st = op_call(be, s, op, 0)) != ARB_OK || (st = arb_backend_sync(be)) != ARB_OK))
        backend_fail(be, st, "the first call", &err);
    if (!st)
        st = bench_download(g, s->got, bench_dset_ptr(&s->set, 0, out), n * sizeof(float),
                            row->group, &err);
    if (st) {
        row_failed(g, row, &err);
        return -1;
    }
    double tol = bench_tolerance(mode);
    row->value = bench_rel_err_rows(s->got, op ? s->K : s->N, s->rows, s->n_rows, s->want[op]);
    snprintf(row->unit, sizeof(row->unit), "f64_rel_err");
    if (mode != ARB_PREC_FP32 && s->ref[op])
        row->rel_err = bench_rel_err(s->got, s->ref[op], n);
    if (!(row->value <= tol)) {
        snprintf(row->status, sizeof(row->status), "wrong");
        snprintf(row->reason, sizeof(row->reason),
                 "rel err %.3g against float64 rows > %g (the %s bound)%s", row->value, tol,
                 arb_precision_name(mode),
                 isinf(row->value) ? " (an element left unwritten or not finite)" : "");
        return -1;
    }
    if (!isnan(row->rel_err) && !(row->rel_err <= tol)) { /* NaN: no fp32 reference */
        snprintf(row->status, sizeof(row->status), "wrong");
        snprintf(row->reason, sizeof(row->reason), "rel err %.3g against the fp32 op > %g%s",
                 row->rel_err, tol,
                 isinf(row->rel_err) ? " (an element left unwritten or not finite)" : "");
        return -1;
    }
    if (mode == ARB_PREC_FP32) {
        s->ref[op] = malloc(n * sizeof(float));
        if (s->ref[op])
            memcpy(s->ref[op], s->got, n * sizeof(float));
    }
    return 0;
}

/* ---- timing ----------------------------------------------------------------------- */

/* Wall time of `count` calls rotating from copy `first` (or one replay of
 * the captured graph), ending with a sync, in microseconds. */
static arb_status run_calls(arb_backend *be, const op_shape *s, int op, int graph, int first,
                            int count, double *us)
{
    double t0 = bench_now_ms();
    arb_status st = ARB_OK;
    if (graph)
        st = arb_backend_graph_launch(be);
    for (int i = 0; !graph && !st && i < count; i++)
        st = op_call(be, s, op, first + i);
    if (!st)
        st = arb_backend_sync(be);
    *us = (bench_now_ms() - t0) * 1e3;
    return st;
}

/* Capture `per` calls covering every copy as the backend's graph; 0 when
 * capture is not possible (then batches are plain launches). */
static int capture(arb_backend *be, const op_shape *s, int op, int per)
{
    if (arb_backend_graph_begin(be) != ARB_OK) {
        arb_backend_clear_error(be);
        return 0;
    }
    int ok = 1;
    for (int i = 0; i < per && ok; i++)
        ok = op_call(be, s, op, i) == ARB_OK;
    ok = arb_backend_graph_end(be) == ARB_OK && ok && arb_backend_graph_ready(be);
    if (!ok)
        arb_backend_clear_error(be);
    return ok;
}

#define TRY(expr, doing)                                                                          \
    do {                                                                                           \
        st = (expr);                                                                               \
        if (st) {                                                                                  \
            backend_fail(be, st, (doing), err);                                                    \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static arb_status time_op(bench_gpu *g, arb_backend *be, const op_shape *s, int op,
                          bench_timing *t, arb_err *err)
{
    const bench_options *o = g->opt;
    const int copies = s->set.copies;
    double *samples = NULL;
    double us = 0;
    arb_status st = ARB_OK;
    t->median_us = t->p20_us = t->p80_us = NAN;
    t->repeats = t->per_sample = t->graph = 0;

    /* Estimate (three calls), then warm up for --warmup-ms. */
    TRY(run_calls(be, s, op, 0, 1, 3, &us), "estimating the time per call");
    double est = us / 3.0 > 0 ? us / 3.0 : 1.0;
    double warm = ceil(o->warmup_ms * 1e3 / est);
    int n_warm = warm < 1 ? 1 : warm > OP_MAX_WARM ? OP_MAX_WARM : (int)warm;
    TRY(run_calls(be, s, op, 0, 4, n_warm, &us), "warming up");

    /* A batch lasts >= OP_SAMPLE_US and covers every copy. */
    double want = ceil(OP_SAMPLE_US / est);
    int per = want < 1 ? 1 : want > OP_MAX_PER ? OP_MAX_PER : (int)want;
    if (per < copies)
        per = copies < OP_MAX_PER ? copies : OP_MAX_PER;
    int graph = capture(be, s, op, per);
    if (graph) /* the first replay uploads the graph: keep it out of the samples */
        TRY(run_calls(be, s, op, 1, 0, per, &us), "replaying the captured graph");

    int count = bench_sample_count(est * per, o->min_repeats, o->min_ms);
    samples = malloc((size_t)count * sizeof(*samples));
    if (!samples) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory for %d samples", count);
        goto done;
    }
    for (int i = 0; i < count; i++) {
        TRY(run_calls(be, s, op, graph, i * per, per, &us), "timed calls");
        samples[i] = us / per;
    }
    t->median_us = bench_percentile(samples, count, 0.5);
    t->p20_us = bench_percentile(samples, count, 0.2);
    t->p80_us = bench_percentile(samples, count, 0.8);
    t->repeats = count;
    t->per_sample = per;
    t->graph = graph;
done:
    free(samples);
    return st;
}

/* ---- rows ------------------------------------------------------------------------- */

static void row_start(bench_row *row, const op_shape *s, int op, arb_precision mode,
                      const char *arch)
{
    bench_row_init(row);
    snprintf(row->kind, sizeof(row->kind), "op");
    snprintf(row->name, sizeof(row->name), "%s", op_names[op]);
    /* The op's own spec names op, shape and mode; arb_spec_init only fails
     * for a mode the fused kernel lacks, and every mode has it. */
    (void)arb_spec_init(&row->spec, op_names[op], s->M, s->N, s->K, s->gs, mode, 0, NULL);
    row->has_spec = 1;
    char group[192];
    bench_group_name(&row->spec, group, sizeof(group));
    bench_join(row->group, sizeof(row->group), "op ", group);
    bench_op_plan(op_names[op], s->M, s->N, s->K, s->gs, mode, arch, row->config,
                  sizeof(row->config));
    /* The op's minimum work is the fused kernel's: packed weight, input,
     * output; a staged plan moves more, which is its cost. */
    const arb_kernel_def *def = arb_kernel_find(op_names[op]);
    if (def)
        def->work(&row->spec, &row->bytes, &row->flops);
    row->flops = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    snprintf(row->command, sizeof(row->command),
             "arb-bench --gemm %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64, s->M, s->N, s->K,
             s->gs);
}

static void progress(const bench_gpu *g, const bench_row *row)
{
    if (g->opt->quiet)
        return;
    fprintf(stderr, "%s (%s): %s", row->group, row->config, row->status);
    if (isfinite(row->median_us))
        fprintf(stderr, "  %.2f us", row->median_us);
    if (row->reason[0])
        fprintf(stderr, "  (%s)", row->reason);
    fputc('\n', stderr);
}

/* Both ops of one mode on a fresh backend (its own scratch, freed after). */
static void measure_mode(bench_run *run, op_shape *s, int mode_index, const int include[2],
                         bench_row rows[2][N_MODES])
{
    bench_gpu *g = run->g;
    arb_precision mode = op_modes[mode_index];
    const char *arch = arb_engine_arch(g->engine);
    for (int op = 0; op < 2; op++)
        row_start(&rows[op][mode_index], s, op, mode, arch);
    arb_backend_options bo;
    arb_backend_options_init(&bo);
    bo.kind = ARB_BACKEND_JIT;
    bo.engine = g->engine; /* borrowed: the run's settings, cache and tuned blocks */
    bo.device = g->opt->device;
    bo.precision = mode;
    arb_backend *be = NULL;
    arb_err err = {0};
    arb_status st = arb_backend_open(&be, &bo, NULL, 0, &err);
    for (int op = 0; op < 2; op++) {
        bench_row *row = &rows[op][mode_index];
        if (!include[op]) {
            row->status[0] = '\0'; /* not asked for (--kernel): no row */
            continue;
        }
        if (st) {
            snprintf(row->status, sizeof(row->status), "skipped");
            bench_join(row->reason, sizeof(row->reason), "the jit backend did not open: ",
                       err.msg);
        } else if (!g->context_lost && !(g->interrupted && *g->interrupted) &&
                   check_op(g, be, s, op, mode, row) == 0) {
            bench_timing t;
            arb_err terr = {0};
            if (time_op(g, be, s, op, &t, &terr) != ARB_OK) {
                row_failed(g, row, &terr);
            } else {
                snprintf(row->status, sizeof(row->status), "ok");
                bench_row_set_timing(row, &t);
            }
        } else if (!row->status[0]) {
            snprintf(row->status, sizeof(row->status), "skipped");
            snprintf(row->reason, sizeof(row->reason), "%s",
                     g->context_lost ? "the CUDA context is lost" : "interrupted");
        }
        bench_row_derive(row, &run->report->ceil);
        progress(g, row);
    }
    arb_backend_close(be);
}

/* The cuBLAS peer each mode stands beside, reused from the kernel rows or
 * measured now on this shape's data; the fp32 op's result (when it passed)
 * checks cuBLAS and the row-major mapping once more. */
static void set_peers(bench_run *run, op_shape *s, int op, bench_row rows[N_MODES])
{
    if (run->g->opt->no_peers || run->g->context_lost)
        return;
    for (int m = 0; m < N_MODES; m++) {
        bench_row *row = &rows[m];
        if (!row->status[0])
            continue;
        arb_spec spec = row->spec;
        /* fp32, bf16x2 and bf16x3 reach fp32 accuracy: SGEMM is their peer. */
        if (spec.prec != ARB_PREC_TF32 && spec.prec != ARB_PREC_BF16)
            spec.prec = ARB_PREC_FP32;
        const float *a = op ? s->gy : s->x;
        const bench_peer *p = bench_peer_gemm(run, &spec, op ? GEMM_GRAD_X : GEMM_FWD, a,
                                              s->dense, s->ref[op]);
        if (!p)
            continue;
        snprintf(row->peer, sizeof(row->peer), "%s", p->name);
        row->peer_us = p->row.median_us;
        if (isfinite(row->peer_us) && isfinite(row->median_us) && row->median_us > 0)
            row->peer_ratio = row->peer_us / row->median_us;
    }
}

/* Prepare every kernel the ops will load, in parallel, before the first
 * call: the plan of each op and mode with the blocks the engine resolves. */
static void prepare(bench_run *run, const op_shape *s, const int include[2])
{
    arb_engine *e = run->g->engine;
    arb_spec specs[2 * N_MODES * ARB_PLAN_MAX];
    int n = 0;
    for (int op = 0; op < 2; op++) {
        if (!include[op])
            continue;
        for (int m = 0; m < N_MODES; m++) {
            arb_spec plan[ARB_PLAN_MAX];
            int k = op ? arb_plan_ternary_grad_x(s->M, s->N, s->K, s->gs, op_modes[m],
                                                 arb_engine_arch(e), plan)
                       : arb_plan_ternary_fwd(s->M, s->N, s->K, s->gs, op_modes[m],
                                              arb_engine_arch(e), plan);
            for (int i = 0; i < k; i++) {
                arb_engine_resolve_blocks(e, &plan[i]);
                if (arb_spec_check(&plan[i], NULL) == ARB_OK)
                    specs[n++] = plan[i];
            }
        }
    }
    bench_prepare_specs(run->g, specs, n);
}

arb_status bench_measure_ops(bench_run *run, arb_err *err)
{
    bench_gpu *g = run->g;
    const bench_options *o = g->opt;
    arb_status st = ARB_OK;
    for (int i = 0; i < o->n_gemm && !st; i++) {
        /* --kernel naming one fused op leaves the other out; a staged
         * kernel's name keeps both (both plans launch it). */
        int include[2];
        for (int op = 0; op < 2; op++)
            include[op] = !o->kernel || strcmp(o->kernel, op_names[1 - op]) != 0;
        op_shape s;
        arb_err local = {0};
        bench_row rows[2][N_MODES];
        arb_status sst = arb_scale_check(o->gemm[i].N, o->gemm[i].K, o->gemm[i].gs, &local);
        if (!sst)
            sst = shape_init(g, &o->gemm[i], i, &s, &local);
        else
            memset(&s, 0, sizeof(s));
        if (sst) {
            /* Rows saying why, so the table and JSON show the shape was not run. */
            s.M = o->gemm[i].M, s.N = o->gemm[i].N, s.K = o->gemm[i].K, s.gs = o->gemm[i].gs;
            for (int op = 0; op < 2; op++)
                for (int m = 0; m < N_MODES; m++) {
                    bench_row *row = &rows[op][m];
                    row_start(row, &s, op, op_modes[m], arb_engine_arch(g->engine));
                    snprintf(row->status, sizeof(row->status), "%s",
                             sst == ARB_ERR_INVALID_ARG ? "unsupported" : "skipped");
                    bench_copy(row->reason, sizeof(row->reason), local.msg);
                    if (!include[op])
                        row->status[0] = '\0';
                }
            shape_free(g, &s);
        } else {
            prepare(run, &s, include);
            for (int m = 0; m < N_MODES; m++)
                measure_mode(run, &s, m, include, rows);
            for (int op = 0; op < 2; op++)
                set_peers(run, &s, op, rows[op]);
            shape_free(g, &s);
        }
        for (int op = 0; op < 2; op++)
            for (int m = 0; m < N_MODES; m++) {
                if (!rows[op][m].status[0])
                    continue;
                run->failures += bench_status_is_failure(rows[op][m].status);
                bench_report_add(run->report, &rows[op][m]);
            }
        if (g->context_lost)
            st = ARB_FAIL(err, ARB_ERR_CUDA,
                          "the CUDA context is lost after %s (a kernel faulted); stopping: the "
                          "rows measured so far are reported",
                          g->lost_reason);
        else if (g->interrupted && *g->interrupted)
            st = ARB_FAIL(err, ARB_ERR_INTERRUPTED,
                          "interrupted; the rows measured so far are reported");
    }
    return st;
}
