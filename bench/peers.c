/*
 * peers.c - what every figure is compared with.
 *
 * Ceilings, measured once at the start (after ~300 ms of copies so clocks
 * settle): the device-to-device copy rate on 1 GiB (H100: ~3.0 TB/s
 * counting read + write; 2 GiB moved takes ~0.7 ms), and cuBLAS at
 * M=8192, N=K=4096 (2.75e11 flops: fp32 ~50 TFLOP/s = 5.5 ms, tf32 ~310,
 * bf16 ~650).
 *
 * Peers, measured once per shape and reused: a GEMM-shaped kernel is set
 * beside dense cuBLAS on the dequantized weight in fp32, tf32 and bf16; a
 * memory-bound kernel beside a device copy moving the same bytes in total
 * (bytes / 2 read, bytes / 2 written).
 *
 * Row-major to column-major: cuBLAS sees a row-major [r, c] matrix as a
 * column-major c x r one, so
 *   fwd     y[M,N]  = x[M,K] . W^T   ->  gemm(T, N, m=N, n=M, k=K, W ld K, x ld K, y ld N)
 *   grad_x  gx[M,K] = gy[M,N] . W    ->  gemm(N, N, m=K, n=M, k=N, W ld K, gy ld N, gx ld K)
 *   outer   gW[N,K] = gy^T . x       ->  gemm(N, T, m=K, n=N, k=M, x ld K, gy ld N, gW ld K)
 * and each mapping is verified in the run: cuBLAS fp32 must agree with the
 * kernel's trusted fp32 result.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gpu.h"

void bench_peers_free(bench_peers *p)
{
    free(p->items);
    p->items = NULL;
    p->count = 0;
}

static const bench_peer *peers_add(bench_peers *p, const bench_peer *peer)
{
    bench_peer *grown = realloc(p->items, (size_t)(p->count + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    p->items = grown;
    p->items[p->count] = *peer;
    return &p->items[p->count++];
}

/* ---- copies ------------------------------------------------------------------------ */

typedef struct copy_ctx {
    const bench_dset *set;
    size_t bytes;
} copy_ctx;

static arb_status copy_enqueue(bench_gpu *g, void *vctx, int copy, arb_err *err)
{
    copy_ctx *c = vctx;
    CUresult rc = g->cu->MemcpyDtoDAsync(bench_dset_ptr(c->set, copy, 1),
                                         bench_dset_ptr(c->set, copy, 0), c->bytes, g->stream);
    return rc == CUDA_SUCCESS ? ARB_OK : bench_cu_fail(g, rc, "cuMemcpyDtoDAsync", "copy peer", err);
}

/* Time a copy of `bytes` (each way), rotating over copies >= 2x L2. */
static arb_status time_copy(bench_gpu *g, size_t bytes, int copies, bench_timing *t, arb_err *err)
{
    size_t sizes[2] = {bytes, bytes};
    bench_dset set;
    char what[96];
    snprintf(what, sizeof(what), "device copy of %zu bytes", bytes);
    arb_status st = bench_dset_alloc(g, sizes, 2, copies, &set, what, err);
    if (st)
        return st;
    st = bench_sync(g, what, err);
    CUresult rc = g->cu->MemsetD8Async(set.base, 0x3C, set.stride * (size_t)set.copies, g->stream);
    if (!st && rc != CUDA_SUCCESS)
        st = bench_cu_fail(g, rc, "cuMemsetD8Async", what, err);
    copy_ctx c = {&set, bytes};
    if (!st)
        st = bench_time_op(g, copy_enqueue, &c, set.copies, 1, what, t, err);
    bench_dset_free(g, &set);
    return st;
}

const bench_peer *bench_peer_copy(bench_run *run, double bytes)
{
    size_t half = (size_t)(bytes / 2.0);
    half = (half + 255) & ~(size_t)255;
    if (half < 256)
        half = 256;
    for (int i = 0; i < run->peers.count; i++)
        if (run->peers.items[i].map == GEMM_NONE && run->peers.items[i].bytes == (double)half * 2)
            return &run->peers.items[i];
    bench_peer peer;
    memset(&peer, 0, sizeof(peer));
    snprintf(peer.name, sizeof(peer.name), "copy");
    peer.map = GEMM_NONE;
    peer.bytes = (double)half * 2;
    bench_row *row = &peer.row;
    bench_row_init(row);
    snprintf(row->kind, sizeof(row->kind), "peer");
    snprintf(row->name, sizeof(row->name), "copy");
    snprintf(row->config, sizeof(row->config), "%.3g MB each way", (double)half / 1e6);
    row->bytes = peer.bytes;
    row->flops = 0;
    bench_timing t;
    arb_err err = {0};
    if (time_copy(run->g, half, bench_copies_for(peer.bytes), &t, &err) == ARB_OK) {
        snprintf(row->status, sizeof(row->status), "ok");
        bench_row_set_timing(row, &t);
    } else {
        snprintf(row->status, sizeof(row->status), "launch_failed");
        bench_copy(row->reason, sizeof(row->reason), err.msg);
    }
    bench_row_derive(row, &run->report->ceil);
    bench_report_add(run->report, row);
    return peers_add(&run->peers, &peer);
}

/* ---- cuBLAS ------------------------------------------------------------------------- */

typedef struct gemm_dims {
    int ta, tb, m, n, k, lda, ldb, ldc;
    size_t a_elems, b_elems, c_elems;
} gemm_dims;

static gemm_dims dims_of(bench_gemm_map map, int64_t M, int64_t N, int64_t K)
{
    gemm_dims d;
    memset(&d, 0, sizeof(d));
    switch (map) {
    case GEMM_FWD:
        d = (gemm_dims){1, 0, (int)N, (int)M, (int)K, (int)K, (int)K, (int)N, 0, 0, 0};
        d.a_elems = (size_t)N * K, d.b_elems = (size_t)M * K, d.c_elems = (size_t)M * N;
        break;
    case GEMM_GRAD_X:
        d = (gemm_dims){0, 0, (int)K, (int)M, (int)N, (int)K, (int)N, (int)K, 0, 0, 0};
        d.a_elems = (size_t)N * K, d.b_elems = (size_t)M * N, d.c_elems = (size_t)M * K;
        break;
    case GEMM_OUTER:
        d = (gemm_dims){0, 1, (int)K, (int)N, (int)M, (int)K, (int)N, (int)K, 0, 0, 0};
        d.a_elems = (size_t)M * K, d.b_elems = (size_t)M * N, d.c_elems = (size_t)N * K;
        break;
    default:
        break;
    }
    return d;
}

typedef struct gemm_ctx {
    bench_blas_mode mode;
    gemm_dims d;
    const bench_dset *set;
    const char *what;
} gemm_ctx;

static arb_status gemm_enqueue(bench_gpu *g, void *vctx, int copy, arb_err *err)
{
    gemm_ctx *c = vctx;
    return bench_cublas_gemm(g, c->mode, c->d.ta, c->d.tb, c->d.m, c->d.n, c->d.k,
                             bench_dset_ptr(c->set, copy, 0), c->d.lda,
                             bench_dset_ptr(c->set, copy, 1), c->d.ldb,
                             bench_dset_ptr(c->set, copy, 2), c->d.ldc, c->what, err);
}

/* One mode: upload the operands (fp32 or bf16), check against `check`
 * (may be NULL), time. */
static void measure_gemm_mode(bench_run *run, bench_blas_mode mode, const gemm_dims *d,
                              const float *a_host, const float *b_host, const float *check,
                              bench_row *row)
{
    bench_gpu *g = run->g;
    arb_err err = {0};
    int bf16 = mode == BLAS_BF16;
    size_t elem = bf16 ? 2 : 4;
    size_t sizes[3] = {d->a_elems * elem, d->b_elems * elem, d->c_elems * 4};
    double total = (double)(sizes[0] + sizes[1] + sizes[2]);
    bench_dset set;
    memset(&set, 0, sizeof(set));
    void *a16 = NULL, *b16 = NULL;
    float *out = NULL;
    char what[256];
    snprintf(what, sizeof(what), "%s peer of %s", bench_blas_name(mode), row->group);
    arb_status st = bench_dset_alloc(g, sizes, 3, bench_copies_for(total), &set, what, &err);
    const void *ha = a_host, *hb = b_host;
    if (!st && bf16) {
        a16 = malloc(sizes[0]);
        b16 = malloc(sizes[1]);
        if (!a16 || !b16) {
            st = ARB_FAIL(&err, ARB_ERR_NOMEM, "out of memory converting to bf16");
        } else {
            for (size_t i = 0; i < d->a_elems; i++)
                ((uint16_t *)a16)[i] = bench_bf16(a_host[i]);
            for (size_t i = 0; i < d->b_elems; i++)
                ((uint16_t *)b16)[i] = bench_bf16(b_host[i]);
            ha = a16;
            hb = b16;
        }
    }
    if (!st)
        st = bench_dset_upload(g, &set, 0, 0, ha, what, &err);
    if (!st)
        st = bench_dset_upload(g, &set, 0, 1, hb, what, &err);
    if (!st)
        st = bench_dset_replicate(g, &set, what, &err);
    gemm_ctx ctx = {mode, *d, &set, what};
    /* Verify the mapping (and cuBLAS) against the trusted fp32 result. */
    if (!st && check) {
        st = gemm_enqueue(g, &ctx, 0, &err);
        if (!st)
            st = bench_sync(g, what, &err);
        out = malloc(sizes[2]);
        if (!st && !out)
            st = ARB_FAIL(&err, ARB_ERR_NOMEM, "out of memory");
        if (!st)
            st = bench_download(g, out, bench_dset_ptr(&set, 0, 2), sizes[2], what, &err);
        if (!st) {
            /* fp32 vs fp32: order of sums only; tf32 ~4e-4 and bf16 ~2e-3 measured. */
            double tol = mode == BLAS_FP32 ? 1e-5 : mode == BLAS_TF32 ? 2e-3 : 1e-2;
            row->rel_err = bench_rel_err(out, check, d->c_elems);
            if (!(row->rel_err <= tol)) {
                snprintf(row->status, sizeof(row->status), "wrong");
                snprintf(row->reason, sizeof(row->reason),
                         "%s disagrees with the kernel's trusted fp32 result: rel err %.3g > %g "
                         "(check the row-major to column-major mapping in bench/peers.c)",
                         bench_blas_name(mode), row->rel_err, tol);
            }
        }
    }
    bench_timing t;
    if (!st)
        st = bench_time_op(g, gemm_enqueue, &ctx, set.copies, 0, what, &t, &err);
    if (!st) {
        if (!row->status[0])
            snprintf(row->status, sizeof(row->status), "ok");
        bench_row_set_timing(row, &t); /* timed without graphs: "stream" */
    } else {
        snprintf(row->status, sizeof(row->status), "launch_failed");
        bench_copy(row->reason, sizeof(row->reason), err.msg);
    }
    bench_dset_free(g, &set);
    free(a16);
    free(b16);
    free(out);
}

/* The peer of mode `want` measured for the dims of `spec`, or NULL. */
static const bench_peer *find_gemm_peer(const bench_peers *peers, bench_gemm_map map,
                                        const arb_spec *spec, bench_blas_mode want)
{
    for (int i = 0; i < peers->count; i++) {
        const bench_peer *p = &peers->items[i];
        if (p->map == map && p->M == spec->M && p->N == spec->N && p->K == spec->K &&
            strcmp(p->name, bench_blas_name(want)) == 0)
            return p;
    }
    return NULL;
}

const bench_peer *bench_peer_gemm(bench_run *run, const arb_spec *spec, bench_gemm_map map,
                                  const float *a_host, const float *b_host, const float *check)
{
    bench_blas_mode want = spec->prec == ARB_PREC_FP32   ? BLAS_FP32
                           : spec->prec == ARB_PREC_TF32 ? BLAS_TF32
                                                         : BLAS_BF16;
    const bench_peer *found = find_gemm_peer(&run->peers, map, spec, want);
    if (found)
        return found;
    gemm_dims d = dims_of(map, spec->M, spec->N, spec->K);
    const char *map_name = map == GEMM_FWD ? "y = x W^T" : map == GEMM_GRAD_X ? "gx = gy W"
                                                                              : "gW = gy^T x";
    for (int m = BLAS_FP32; m <= BLAS_BF16; m++) {
        bench_peer peer;
        memset(&peer, 0, sizeof(peer));
        snprintf(peer.name, sizeof(peer.name), "%s", bench_blas_name((bench_blas_mode)m));
        peer.map = map;
        peer.M = spec->M;
        peer.N = spec->N;
        peer.K = spec->K;
        bench_row *row = &peer.row;
        bench_row_init(row);
        snprintf(row->kind, sizeof(row->kind), "peer");
        snprintf(row->name, sizeof(row->name), "%s", peer.name);
        row->has_spec = 1;
        row->spec = *spec;
        row->spec.prec = m == BLAS_FP32 ? ARB_PREC_FP32 : m == BLAS_TF32 ? ARB_PREC_TF32
                                                                          : ARB_PREC_BF16;
        bench_group_name(spec, row->group, sizeof(row->group));
        snprintf(row->config, sizeof(row->config), "dense %s", map_name);
        size_t elem = m == BLAS_BF16 ? 2 : 4;
        row->bytes = (double)((d.a_elems + d.b_elems) * elem + d.c_elems * 4);
        row->flops = 2.0 * (double)spec->M * (double)spec->N * (double)spec->K;
        if (!run->g->blas) {
            snprintf(row->status, sizeof(row->status), "skipped");
            snprintf(row->reason, sizeof(row->reason), "%s", run->g->blas_error);
        } else {
            measure_gemm_mode(run, (bench_blas_mode)m, &d, b_host, a_host, check, row);
        }
        bench_row_derive(row, &run->report->ceil);
        bench_report_add(run->report, row);
        peers_add(&run->peers, &peer);
        if (!run->g->opt->quiet)
            fprintf(stderr, "  peer %-12s %s: %s%s%s\n", peer.name, row->group, row->status,
                    isfinite(row->median_us) ? "" : " ", row->reason);
    }
    /* peers_add may have moved the array: look the wanted one up. */
    return find_gemm_peer(&run->peers, map, spec, want);
}

/* ---- ceilings ------------------------------------------------------------------------- */

static void add_ceiling(bench_report *r, const char *name, double value, const char *unit,
                        const bench_timing *t, const char *status, const char *reason)
{
    bench_row row;
    bench_row_init(&row);
    snprintf(row.kind, sizeof(row.kind), "ceiling");
    snprintf(row.name, sizeof(row.name), "%s", name);
    snprintf(row.status, sizeof(row.status), "%s", status);
    bench_copy(row.reason, sizeof(row.reason), reason);
    row.value = value;
    snprintf(row.unit, sizeof(row.unit), "%s", unit);
    if (t) {
        row.median_us = t->median_us;
        row.p20_us = t->p20_us;
        row.p80_us = t->p80_us;
        row.repeats = t->repeats;
        row.per_sample = t->per_sample;
    }
    bench_report_add(r, &row);
}

/* Keep the GPU busy with copies for ~`ms` so clocks reach their steady state. */
static void settle_clocks(bench_gpu *g, double ms)
{
    size_t bytes = (size_t)256 << 20;
    CUdeviceptr a = 0, b = 0;
    if (g->cu->MemAlloc(&a, bytes) != CUDA_SUCCESS)
        return;
    if (g->cu->MemAlloc(&b, bytes) != CUDA_SUCCESS) {
        g->cu->MemFree(a);
        return;
    }
    /* 512 MB moved per copy at ~3 TB/s: ~0.18 ms each. */
    int n = (int)(ms / 0.18);
    for (int i = 0; i < n; i++)
        if (g->cu->MemcpyDtoDAsync(b, a, bytes, g->stream) != CUDA_SUCCESS)
            break;
    g->cu->StreamSynchronize(g->stream);
    g->cu->MemFree(a);
    g->cu->MemFree(b);
}

void bench_measure_ceilings(bench_gpu *g, bench_report *r)
{
    bench_ceilings *c = &r->ceil;
    settle_clocks(g, 300.0);
    if (g->opt->no_ceilings) {
        fprintf(stderr, "arb-bench: --no-ceilings: using the documented H100 ceilings\n");
        return;
    }
    /* Copy rate: 1 GiB each way (256 MiB when memory is short). */
    bench_timing t;
    arb_err err = {0};
    size_t bytes = (size_t)1 << 30;
    arb_status st = time_copy(g, bytes, 1, &t, &err);
    if (st && !g->context_lost) {
        arb_err_clear(&err);
        bytes = (size_t)256 << 20;
        st = time_copy(g, bytes, 1, &t, &err);
    }
    if (!st && t.median_us > 0) {
        c->copy_gbps = 2.0 * (double)bytes / (t.median_us * 1e-6) / 1e9;
        c->copy_measured = 1;
        add_ceiling(r, "copy_1GiB", c->copy_gbps, "GB/s", &t, "ok", NULL);
    } else {
        fprintf(stderr, "arb-bench: warning: could not measure the copy rate (%s); using the "
                        "documented %.0f GB/s\n",
                err.msg, c->copy_gbps);
        add_ceiling(r, "copy_1GiB", c->copy_gbps, "GB/s", NULL, "skipped", err.msg);
    }
    if (!g->blas) {
        fprintf(stderr, "arb-bench: warning: %s; cuBLAS ceilings and peers are skipped\n",
                g->blas_error);
        return;
    }
    /* cuBLAS at M=8192, N=K=4096 (the maintainers' reference shape). */
    const int64_t M = 8192, N = 4096, K = 4096;
    gemm_dims d = dims_of(GEMM_FWD, M, N, K);
    float *w = malloc(d.a_elems * sizeof(float)), *x = malloc(d.b_elems * sizeof(float));
    if (!w || !x) {
        free(w);
        free(x);
        return;
    }
    bench_rng rng = {0xC0FFEE};
    for (size_t i = 0; i < d.a_elems; i++)
        w[i] = bench_rng_float(&rng);
    for (size_t i = 0; i < d.b_elems; i++)
        x[i] = bench_rng_float(&rng);
    double flops = 2.0 * (double)M * (double)N * (double)K;
    double *dst[3] = {&c->fp32_tflops, &c->tf32_tflops, &c->bf16_tflops};
    int measured = 0;
    bench_run run;
    memset(&run, 0, sizeof(run));
    run.g = g;
    run.report = r;
    for (int m = BLAS_FP32; m <= BLAS_BF16; m++) {
        bench_row row;
        bench_row_init(&row);
        snprintf(row.group, sizeof(row.group), "cuBLAS M=8192 N=K=4096");
        measure_gemm_mode(&run, (bench_blas_mode)m, &d, w, x, NULL, &row);
        char name[48];
        snprintf(name, sizeof(name), "%s_8192x4096x4096", bench_blas_name((bench_blas_mode)m));
        if (strcmp(row.status, "ok") == 0 && row.median_us > 0) {
            *dst[m] = flops / (row.median_us * 1e-6) / 1e12;
            measured++;
            bench_timing tt = {row.median_us, row.p20_us, row.p80_us, row.repeats,
                               row.per_sample, 0};
            add_ceiling(r, name, *dst[m], "TFLOP/s", &tt, "ok", NULL);
        } else {
            fprintf(stderr, "arb-bench: warning: %s: %s; using the documented %.0f TFLOP/s\n",
                    name, row.reason, *dst[m]);
            add_ceiling(r, name, *dst[m], "TFLOP/s", NULL, row.status, row.reason);
        }
    }
    c->blas_measured = measured == 3;
    free(w);
    free(x);
}
