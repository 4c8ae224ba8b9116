/*
 * bench_gpu.h - arb-bench's GPU side: the device context every measurement
 * shares, checked driver calls, rotated buffer sets, CUDA-event timing,
 * cuBLAS and the measurements themselves.
 *
 * Every driver call goes through bench_cu_fail on failure, which names the
 * call and what was being measured ("cuMemAlloc (ternary_fwd M=1024 ...):
 * CUDA_ERROR_OUT_OF_MEMORY ..."). A sticky error (an illegal address, a
 * kernel that trapped) leaves the context unusable: it is remembered in
 * `context_lost` and the run stops measuring, reporting what it has.
 */
#ifndef ARB_BENCH_GPU_H
#define ARB_BENCH_GPU_H

#include <signal.h>

#include "arb/cuda_driver.h"
#include "arb/engine.h"
#include "bench.h"

typedef struct bench_cublas bench_cublas;

typedef struct bench_gpu {
    arb_engine *engine;
    const arb_cuda *cu;
    const arb_device_info *info;
    CUstream stream;
    const bench_options *opt;
    bench_cublas *blas;     /* NULL when cuBLAS could not be loaded */
    char blas_error[512];   /* why not */
    int context_lost;       /* a sticky CUDA error happened */
    char lost_reason[1024];
    CUevent *events;        /* timing events (pool) */
    int n_events;
    volatile sig_atomic_t *interrupted; /* set by SIGINT */
} bench_gpu;

/* Record a failed driver call: "<call> (<what>): <driver message>". Marks
 * the context lost on sticky errors. Returns ARB_ERR_CUDA. */
arb_status bench_cu_fail(bench_gpu *g, CUresult rc, const char *call, const char *what,
                         arb_err *err);

/* Open the stream and the event pool on the engine's context. */
arb_status bench_gpu_init(bench_gpu *g, arb_engine *engine, const bench_options *opt,
                          arb_err *err);
void bench_gpu_close(bench_gpu *g);

/* ---- rotated buffer sets (gpu.c) ------------------------------------------------ */

/* `copies` copies of n buffers in one allocation; copy c of buffer b lives
 * at base + c * stride + offset[b] (256-byte aligned). */
typedef struct bench_dset {
    CUdeviceptr base;
    size_t stride;
    int copies;
    int n;
    size_t offset[BENCH_MAX_BUFS];
    size_t bytes[BENCH_MAX_BUFS];
} bench_dset;

/* Allocate up to `copies` copies (fewer when device memory is short; at
 * least one, else ARB_ERR_UNSUPPORTED naming the sizes). */
arb_status bench_dset_alloc(bench_gpu *g, const size_t *bytes, int n, int copies, bench_dset *s,
                            const char *what, arb_err *err);
void bench_dset_free(bench_gpu *g, bench_dset *s);
CUdeviceptr bench_dset_ptr(const bench_dset *s, int copy, int buf);
/* Host -> copy `copy` of buffer `buf` (synchronous). */
arb_status bench_dset_upload(bench_gpu *g, const bench_dset *s, int copy, int buf,
                             const void *host, const char *what, arb_err *err);
/* Copy 0 -> every other copy. */
arb_status bench_dset_replicate(bench_gpu *g, const bench_dset *s, const char *what, arb_err *err);
arb_status bench_download(bench_gpu *g, void *host, CUdeviceptr src, size_t bytes,
                          const char *what, arb_err *err);
arb_status bench_sync(bench_gpu *g, const char *what, arb_err *err);

/* ---- timing (timing.c) ------------------------------------------------------------ */

/* Enqueue one launch on g->stream using copy `copy` of the buffers. */
typedef arb_status (*bench_enqueue_fn)(bench_gpu *g, void *ctx, int copy, arb_err *err);

typedef struct bench_timing {
    double median_us, p20_us, p80_us; /* per launch */
    int repeats;                      /* samples */
    int per_sample;                   /* launches per sample */
    int graph;                        /* samples were captured CUDA graphs */
} bench_timing;

/* Warm up, then time: each sample is one event interval around a batch of
 * launches rotating over `copies` copies (a CUDA graph when allow_graph and
 * a batch has several launches). Policy in stats.c. */
arb_status bench_time_op(bench_gpu *g, bench_enqueue_fn fn, void *ctx, int copies,
                         int allow_graph, const char *what, bench_timing *out, arb_err *err);

/* Copy a timing into a row: median, p20, p80, repeats, per_sample and the
 * method ("graph" or "stream"). */
void bench_row_set_timing(bench_row *row, const bench_timing *t);

/* ---- cuBLAS (cublas.c) ------------------------------------------------------------ */

typedef enum bench_blas_mode { BLAS_FP32 = 0, BLAS_TF32 = 1, BLAS_BF16 = 2 } bench_blas_mode;

/* dlopen libcublas.so.13, create a handle on `stream`. */
arb_status bench_cublas_open(CUstream stream, bench_cublas **out, arb_err *err);
void bench_cublas_close(bench_cublas *b);
const char *bench_blas_name(bench_blas_mode mode); /* "cublas_fp32", ... */

/* Column-major C[m x n] (ldc) = op(A) . op(B); trans 0 = N, 1 = T. A and B
 * are fp32 (FP32, TF32) or bf16 (BF16); C is fp32. */
arb_status bench_cublas_gemm(bench_gpu *g, bench_blas_mode mode, int ta, int tb, int m, int n,
                             int k, CUdeviceptr A, int lda, CUdeviceptr B, int ldb, CUdeviceptr C,
                             int ldc, const char *what, arb_err *err);

/* ---- ceilings and peers (peers.c) ------------------------------------------------- */

/* Clocks settle, then the 1 GiB copy rate and cuBLAS at M=8192 N=K=4096;
 * fills r->ceil and adds "ceiling" rows. Failures fall back to the
 * documented figures with a warning. */
void bench_measure_ceilings(bench_gpu *g, bench_report *r);

/* A measured peer, reused by every spec with the same dims. */
typedef struct bench_peer {
    char name[24];
    bench_gemm_map map;
    int64_t M, N, K;
    double bytes;
    bench_row row;
} bench_peer;

typedef struct bench_peers {
    bench_peer *items;
    int count;
} bench_peers;

void bench_peers_free(bench_peers *p);

typedef struct bench_run bench_run;

/* The copy peer of a memory-bound kernel moving `bytes` in total (measured
 * once per size; its row is added to the report the first time). The
 * pointer is valid until the next peer is added. */
const bench_peer *bench_peer_copy(bench_run *run, double bytes);

/* The cuBLAS peers (fp32, tf32, bf16) of a GEMM-shaped spec, measured once
 * per dims: `a_host` is x (fwd) or gy (grad_x, outer), `b_host` the dense
 * W (fwd, grad_x) or x (outer); `check` (may be NULL) the trusted fp32
 * result each is verified against. Returns the peer of the spec's mode. */
const bench_peer *bench_peer_gemm(bench_run *run, const arb_spec *spec, bench_gemm_map map,
                                  const float *a_host, const float *b_host, const float *check);

/* ---- measurements (measure.c) ------------------------------------------------------ */

struct bench_run {
    bench_gpu *g;
    bench_report *report;
    bench_peers peers;
    int sweep;       /* every candidate, recorded */
    int record;      /* write tuning rows */
    int failures;    /* rows wrong / compile_failed / launch_failed / skipped */
    int recorded;    /* tuning rows written */
    int record_warned;
};

/* Measure every item of the plan; rows go to run->report. Returns an error
 * only when the run cannot go on (context lost); per-candidate failures are
 * rows. */
arb_status bench_measure_plan(bench_run *run, const bench_plan *plan, arb_err *err);

/* Compile `specs` (blocks as given) into the cache on several threads,
 * with a progress line; failures surface when the specs are loaded. */
void bench_prepare_specs(bench_gpu *g, const arb_spec *specs, int n);

/* After a sweep: what a fresh engine now resolves each spec to. */
void bench_print_engine_choice(bench_run *run, const bench_plan *plan, FILE *out);

/* ---- whole ops (ops.c) --------------------------------------------------------------- */

/* --gemm: every shape's ternary_fwd and ternary_grad_x op in every mode,
 * run through a jit backend on the run's engine exactly as the trainer
 * calls them (staged or fused), checked against the fp32 op and float64
 * rows, timed, and set beside the cuBLAS peer of the mode: "op" rows.
 * Returns an error only when the run cannot go on (context lost,
 * interrupted); per-op failures are rows (counted in run->failures). */
arb_status bench_measure_ops(bench_run *run, arb_err *err);

/* ---- JIT figures (jit.c) and the training step (step.c) ----------------------------- */

/* --jit: compile, cache-hit and launch-overhead rows. */
arb_status bench_jit(const bench_options *o, const bench_plan *plan, bench_report *r,
                     arb_err *err);

/* --step: one training step of a configuration (the trainer's model code):
 * eager and CUDA-graph tokens/s and the per-kernel breakdown. */
arb_status bench_step(const bench_options *o, const arb_settings *settings, bench_report *r,
                      arb_err *err);

#endif /* ARB_BENCH_GPU_H */
