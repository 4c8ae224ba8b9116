/*
 * timing.c - CUDA-event timing of one operation (a kernel launch, a cuBLAS
 * call, a copy), with warm-up and buffer rotation.
 *
 * 1. Estimate: one launch, then three back to back (the throughput figure).
 * 2. Warm up for --warmup-ms (10 ms) of launches: caches, TLBs, clocks.
 * 3. Batch: a sample must last >= 100 us (stats.c), so a 3 us kernel is
 *    timed 34 launches at a time. Such a batch is captured once as a CUDA
 *    graph, which replays launches back to back without the ~2-4 us host
 *    cost of each cuLaunchKernel starving the GPU (the trainer replays
 *    steps as graphs too); a batch also covers every rotated copy, so the
 *    working set of a replay is >= 2x L2.
 * 4. Samples: events recorded between consecutive batches (one chain, one
 *    synchronize at the end); >= --repeats (20) and >= --min-ms (50 ms).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_gpu.h"

#define MAX_NODES 4096

typedef struct batch {
    bench_enqueue_fn fn;
    void *ctx;
    int copies;
    int nodes;
    long next; /* rotating copy index for direct launches */
    CUgraph graph;
    CUgraphExec exec;
} batch;

static arb_status run_batch(bench_gpu *g, batch *b, const char *what, arb_err *err)
{
    if (b->exec) {
        CUresult rc = g->cu->GraphLaunch(b->exec, g->stream);
        return rc == CUDA_SUCCESS ? ARB_OK : bench_cu_fail(g, rc, "cuGraphLaunch", what, err);
    }
    for (int i = 0; i < b->nodes; i++) {
        arb_status st = b->fn(g, b->ctx, (int)(b->next++ % b->copies), err);
        if (st)
            return st;
    }
    return ARB_OK;
}

/* Capture `nodes` launches covering every copy as a graph; on any failure
 * fall back to direct launches (b->exec stays NULL). */
static void capture(bench_gpu *g, batch *b)
{
    const arb_cuda *cu = g->cu;
    if (cu->StreamBeginCapture(g->stream, CU_STREAM_CAPTURE_MODE_RELAXED) != CUDA_SUCCESS)
        return;
    arb_err ignored = {0};
    int ok = 1;
    for (int i = 0; i < b->nodes && ok; i++)
        ok = b->fn(g, b->ctx, i % b->copies, &ignored) == ARB_OK;
    CUgraph graph = NULL;
    CUresult rc = cu->StreamEndCapture(g->stream, &graph);
    if (rc != CUDA_SUCCESS || !ok || !graph) {
        if (graph)
            cu->GraphDestroy(graph);
        return;
    }
    CUgraphExec exec = NULL;
    if (cu->GraphInstantiate(&exec, graph, 0) != CUDA_SUCCESS) {
        cu->GraphDestroy(graph);
        return;
    }
    b->graph = graph;
    b->exec = exec;
}

static void release(bench_gpu *g, batch *b)
{
    if (b->exec)
        g->cu->GraphExecDestroy(b->exec);
    if (b->graph)
        g->cu->GraphDestroy(b->graph);
    b->exec = NULL;
    b->graph = NULL;
}

static arb_status elapsed_us(bench_gpu *g, CUevent a, CUevent b, double *us, const char *what,
                             arb_err *err)
{
    float ms = 0.0f;
    CUresult rc = g->cu->EventElapsedTime(&ms, a, b);
    if (rc != CUDA_SUCCESS)
        return bench_cu_fail(g, rc, "cuEventElapsedTime", what, err);
    *us = (double)ms * 1000.0;
    return ARB_OK;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        st = (expr);                                                                               \
        if (st)                                                                                    \
            goto done;                                                                             \
    } while (0)

#define CUTRY(expr, call)                                                                          \
    do {                                                                                           \
        CUresult rc_ = (expr);                                                                     \
        if (rc_ != CUDA_SUCCESS) {                                                                 \
            st = bench_cu_fail(g, rc_, (call), what, err);                                         \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

arb_status bench_time_op(bench_gpu *g, bench_enqueue_fn fn, void *ctx, int copies,
                         int allow_graph, const char *what, bench_timing *out, arb_err *err)
{
    const arb_cuda *cu = g->cu;
    CUevent *ev = g->events;
    const bench_options *o = g->opt;
    batch b = {fn, ctx, copies > 0 ? copies : 1, 1, 0, NULL, NULL};
    double *samples = NULL;
    arb_status st = ARB_OK;
    out->median_us = out->p20_us = out->p80_us = NAN;
    out->repeats = out->per_sample = out->graph = 0;

    /* 1. Estimate the time per launch. */
    double single = 0, three = 0;
    CUTRY(cu->EventRecord(ev[0], g->stream), "cuEventRecord");
    TRY(fn(g, ctx, 0, err));
    CUTRY(cu->EventRecord(ev[1], g->stream), "cuEventRecord");
    for (int i = 1; i <= 3; i++)
        TRY(fn(g, ctx, i % b.copies, err));
    CUTRY(cu->EventRecord(ev[2], g->stream), "cuEventRecord");
    CUTRY(cu->EventSynchronize(ev[2]), "cuEventSynchronize (first launches)");
    TRY(elapsed_us(g, ev[0], ev[1], &single, what, err));
    TRY(elapsed_us(g, ev[1], ev[2], &three, what, err));
    double est = three > 0 ? three / 3.0 : single;
    if (!(est > 0))
        est = 1.0;

    /* 2. Warm up. */
    double warm = ceil(o->warmup_ms * 1000.0 / est);
    long n_warm = warm < 1 ? 1 : warm > 100000 ? 100000 : (long)warm;
    for (long i = 0; i < n_warm; i++)
        TRY(fn(g, ctx, (int)((4 + i) % b.copies), err));
    CUTRY(cu->StreamSynchronize(g->stream), "cuStreamSynchronize (warm-up)");

    /* 3. The batch one sample times. */
    int per = bench_launches_per_sample(est);
    if (per > 1) {
        b.nodes = per > b.copies ? per : b.copies;
        if (b.nodes > MAX_NODES)
            b.nodes = MAX_NODES;
        if (allow_graph)
            capture(g, &b);
        if (b.exec) { /* the first replay uploads the graph: keep it out of the samples */
            TRY(run_batch(g, &b, what, err));
            CUTRY(cu->StreamSynchronize(g->stream), "cuStreamSynchronize (graph warm-up)");
        }
    }

    /* 4. Samples: one event chain, one synchronize. */
    int count = bench_sample_count(est * b.nodes, o->min_repeats, o->min_ms);
    if (count > g->n_events - 1)
        count = g->n_events - 1;
    samples = malloc((size_t)count * sizeof(*samples));
    if (!samples) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory timing %s", what);
        goto done;
    }
    CUTRY(cu->EventRecord(ev[0], g->stream), "cuEventRecord");
    for (int s = 0; s < count; s++) {
        TRY(run_batch(g, &b, what, err));
        CUTRY(cu->EventRecord(ev[s + 1], g->stream), "cuEventRecord");
    }
    CUTRY(cu->EventSynchronize(ev[count]), "cuEventSynchronize (timed launches)");
    for (int s = 0; s < count; s++) {
        double us = 0;
        TRY(elapsed_us(g, ev[s], ev[s + 1], &us, what, err));
        samples[s] = us / b.nodes;
    }
    out->median_us = bench_percentile(samples, count, 0.5);
    out->p20_us = bench_percentile(samples, count, 0.2);
    out->p80_us = bench_percentile(samples, count, 0.8);
    out->repeats = count;
    out->per_sample = b.nodes;
    out->graph = b.exec != NULL;
done:
    release(g, &b);
    free(samples);
    return st;
}

void bench_row_set_timing(bench_row *row, const bench_timing *t)
{
    row->median_us = t->median_us;
    row->p20_us = t->p20_us;
    row->p80_us = t->p80_us;
    row->repeats = t->repeats;
    row->per_sample = t->per_sample;
    snprintf(row->method, sizeof(row->method), "%s", t->graph ? "graph" : "stream");
}
