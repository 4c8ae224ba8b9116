/*
 * layout.c - every kernel's parameter list, as arb-bench feeds it: buffers
 * (size, initial contents, whether the kernel reads, writes or updates
 * them, how a result is compared) and scalars, in the order of the
 * template's `<stem>_kernel(...)` signature (kernel_templates/<stem>.cu;
 * the jit ops in engine/src/jit/jit_ops.c pass the same).
 * tests/test_bench.c checks each layout's argument count against the
 * template's signature.
 *
 * Shape conventions (engine/src/jit/kernels.c): GEMMs use M, N, K; per
 * weight kernels N x K with gs; rmsnorm M rows of K = D; embed M lookups
 * into a V x D table (N = V, K = D); gather_context K = ctx; element-wise
 * kernels M elements; xent M rows of N = V logits; the staged tensor-core
 * path (sm_90a) ternary_decode an N x K weight (variant TRANS writes W^T),
 * act_split M rows of K, tc_gemm an M x N output over a reduction of K,
 * each staged buffer as big as arb_staged_weight_bytes / _act_bytes say.
 *
 * Update kernels run with theta = phi = 2 and accumulators drawn from
 * [-2, 2], so a check run flips trits and moves scales: a configuration
 * that drops an update is caught.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arb/ternary.h"
#include "bench.h"

#define THETA 2
#define PHI 2
#define CORPUS_BYTES (4 << 20) /* gather_context: a 4 MiB corpus */
#define FP32_EXACT_LIMIT 16777216.0 /* 2^24: integers below add exactly in fp32 */

static size_t type_size(bench_type t)
{
    switch (t) {
    case BT_F32: return 4;
    case BT_I8: return 1;
    case BT_U8: return 1;
    case BT_I32: return 4;
    case BT_I64: return 8;
    case BT_U64: return 8;
    case BT_BF16: return 2;
    }
    return 1;
}

static int add_buf(bench_layout *l, const char *name, bench_type type, size_t count,
                   bench_role role, bench_gen gen, int64_t lo, int64_t hi, bench_cmp cmp,
                   double tol)
{
    bench_buf *b = &l->bufs[l->n_bufs];
    memset(b, 0, sizeof(*b));
    b->name = name;
    b->type = type;
    b->count = count ? count : 1;
    b->bytes = gen == GEN_TRITS ? arb_packed_alloc_size(b->count) : b->count * type_size(type);
    b->role = role;
    b->gen = gen;
    b->lo = lo;
    b->hi = hi;
    b->scale = 1.0;
    b->cmp = role == ROLE_IN ? CMP_NONE : cmp;
    b->tol = tol;
    l->total_bytes += (double)b->bytes;
    l->args[l->n_args++] = (bench_arg){ARG_BUF, l->n_bufs, 0};
    return l->n_bufs++;
}

static void add_scalar(bench_layout *l, bench_arg_kind kind, int64_t value)
{
    l->args[l->n_args++] = (bench_arg){kind, -1, value};
}

/* Common buffers. */
static int in_f32(bench_layout *l, const char *name, size_t n)
{
    return add_buf(l, name, BT_F32, n, ROLE_IN, GEN_FLOAT, 0, 0, CMP_NONE, 0);
}
static int in_smallint(bench_layout *l, const char *name, size_t n, int64_t r)
{
    return add_buf(l, name, BT_F32, n, ROLE_IN, GEN_SMALLINT, -r, r, CMP_NONE, 0);
}
static int trits(bench_layout *l, size_t n, bench_role role)
{
    return add_buf(l, "packed", BT_U8, n, role, GEN_TRITS, -1, 1, CMP_EXACT, 0);
}
static int scales(bench_layout *l, const char *name, size_t n, bench_role role, int64_t lo,
                  int64_t hi)
{
    return add_buf(l, name, BT_I8, n, role, GEN_INT, lo, hi, CMP_EXACT, 0);
}
static void guard(bench_layout *l, bench_role role)
{
    add_buf(l, "guard", BT_I32, 1, role, GEN_ZERO, 0, 0, CMP_EXACT, 0);
}
static void flips(bench_layout *l)
{
    add_buf(l, "flips", BT_U64, 1, ROLE_STATE, GEN_ZERO, 0, 0, CMP_EXACT, 0);
}

/* A staged operand of `bytes` (kernels.h arb_staged_*): bf16 bits, or fp32
 * in tf32 mode. Written ones are compared byte for byte (exact kernels). */
static int staged_out(bench_layout *l, size_t bytes, arb_precision prec)
{
    int wide = arb_staged_elem_bytes(prec) == 4;
    return add_buf(l, "out", wide ? BT_F32 : BT_BF16, bytes / (wide ? 4 : 2), ROLE_OUT, GEN_ZERO,
                   0, 0, CMP_EXACT, 0);
}
static int staged_in(bench_layout *l, const char *name, size_t bytes, arb_precision prec)
{
    int wide = arb_staged_elem_bytes(prec) == 4;
    return add_buf(l, name, wide ? BT_F32 : BT_BF16, bytes / (wide ? 4 : 2), ROLE_IN,
                   wide ? GEN_FLOAT : GEN_BF16, 0, 0, CMP_NONE, 0);
}

/* The largest r such that sums of `terms` products of integers in [-r, r]
 * stay exact in fp32 (at least 1). */
static int64_t exact_range(double terms)
{
    for (int64_t r = 3; r > 1; r--)
        if (terms * (double)(r * r) < FP32_EXACT_LIMIT)
            return r;
    return 1;
}

static void init_layout(bench_layout *l)
{
    memset(l, 0, sizeof(*l));
    l->gemm = GEMM_NONE;
    l->buf_a = l->buf_b = l->buf_packed = l->buf_E = l->buf_out = -1;
}

/* The fused updates' inputs are integers in [-r, r]: scores sum gs elements
 * of gW * T, each a sum of M products, and stay exact in fp32. */
static int64_t update_input_range(const arb_spec *s)
{
    const int64_t NK = s->N * s->K;
    return exact_range((double)s->M * (double)(s->gs < NK ? s->gs : NK));
}

/* The state and scalars of the fused updates (ternary_update_direct and
 * tc_update), after their two inputs of range r. */
static void update_state(bench_layout *l, const arb_spec *s, int64_t r)
{
    const size_t NK = (size_t)(s->N * s->K), groups = NK / (size_t)s->gs;
    int e_any = (s->variant & (ARB_VARIANT_E_GRAD | ARB_VARIANT_E_SIGN)) != 0;
    int uses_score = e_any && s->gs != 1;
    double terms = (double)s->M * (double)(s->gs < (int64_t)NK ? s->gs : (int64_t)NK);
    int score_exact = terms * (double)(r * r) < FP32_EXACT_LIMIT;
    l->buf_packed = trits(l, NK, ROLE_STATE);
    scales(l, "T_accum", NK, ROLE_STATE, -THETA, THETA);
    l->buf_E = scales(l, "E", groups, ROLE_STATE, -4, 4);
    scales(l, "E_accum", groups, ROLE_STATE, -PHI, PHI);
    add_buf(l, "score", BT_F32, uses_score ? groups : 1, ROLE_STATE, GEN_ZERO, 0, 0,
            score_exact ? CMP_EXACT : CMP_REL, 1e-6);
    add_scalar(l, ARG_I32, THETA);
    add_scalar(l, ARG_I32, PHI);
    guard(l, ROLE_IN);
    flips(l);
}

arb_status bench_layout_for(const arb_spec *s, bench_layout *l, arb_err *err)
{
    init_layout(l);
    const char *k = s->kernel;
    const size_t M = (size_t)s->M, N = (size_t)s->N, K = (size_t)s->K;
    const size_t NK = N * K;
    const size_t groups = s->gs > 0 ? NK / (size_t)s->gs : 1;
    const double tol = bench_tolerance(s->prec);

    if (strcmp(k, "ternary_fwd") == 0) {
        l->gemm = GEMM_FWD;
        l->buf_a = in_f32(l, "x", M * K);
        l->buf_packed = trits(l, NK, ROLE_IN);
        l->buf_E = scales(l, "E", groups, ROLE_IN, -4, 0);
        l->buf_out = add_buf(l, "y", BT_F32, M * N, ROLE_OUT, GEN_ZERO, 0, 0, CMP_REL, tol);
    } else if (strcmp(k, "ternary_grad_x") == 0) {
        l->gemm = GEMM_GRAD_X;
        l->buf_a = in_f32(l, "gy", M * N);
        l->buf_packed = trits(l, NK, ROLE_IN);
        l->buf_E = scales(l, "E", groups, ROLE_IN, -4, 0);
        l->buf_out = add_buf(l, "gx", BT_F32, M * K, ROLE_OUT, GEN_ZERO, 0, 0, CMP_REL, tol);
    } else if (strcmp(k, "grad_weight") == 0) {
        l->gemm = GEMM_OUTER;
        l->buf_a = in_f32(l, "gy", M * N);
        l->buf_b = in_f32(l, "x", M * K);
        l->buf_out = add_buf(l, "gW", BT_F32, NK, ROLE_OUT, GEN_ZERO, 0, 0, CMP_REL, tol);
    } else if (strcmp(k, "grad_sign") == 0) {
        int64_t r = exact_range((double)M);
        l->gemm = GEMM_OUTER;
        l->buf_a = in_smallint(l, "gy", M * N, r);
        l->buf_b = in_smallint(l, "x", M * K, r);
        add_buf(l, "s", BT_I8, NK, ROLE_OUT, GEN_ZERO, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "ternary_update_direct") == 0) {
        int64_t r = update_input_range(s);
        l->gemm = GEMM_OUTER;
        l->buf_a = in_smallint(l, "gy", M * N, r);
        l->buf_b = in_smallint(l, "x", M * K, r);
        update_state(l, s, r);
    } else if (strcmp(k, "ternary_step") == 0) {
        trits(l, NK, ROLE_STATE);
        scales(l, "T_accum", NK, ROLE_STATE, -THETA, THETA);
        add_buf(l, "s", BT_I8, NK, ROLE_IN, GEN_INT, -1, 1, CMP_NONE, 0);
        add_scalar(l, ARG_I32, THETA);
        guard(l, ROLE_IN);
        flips(l);
    } else if (strcmp(k, "update_E") == 0) {
        int exact = (double)s->gs * 3.0 < FP32_EXACT_LIMIT;
        trits(l, NK, ROLE_IN);
        add_buf(l, "gW", BT_F32, NK, ROLE_IN, GEN_SMALLINT, -3, 3, CMP_NONE, 0);
        add_buf(l, "s", BT_I8, NK, ROLE_IN, GEN_INT, -1, 1, CMP_NONE, 0);
        add_buf(l, "score", BT_F32, groups, ROLE_STATE, GEN_ZERO, 0, 0,
                exact ? CMP_EXACT : CMP_REL, 1e-6);
        guard(l, ROLE_IN);
    } else if (strcmp(k, "update_E_apply") == 0) {
        scales(l, "E", groups, ROLE_STATE, -4, 4);
        scales(l, "E_accum", groups, ROLE_STATE, -PHI, PHI);
        add_buf(l, "score", BT_F32, groups, ROLE_IN, GEN_SMALLINT, -3, 3, CMP_NONE, 0);
        add_scalar(l, ARG_I32, PHI);
        guard(l, ROLE_IN);
    } else if (strcmp(k, "rmsnorm_fwd") == 0) {
        in_f32(l, "x", M * K);
        trits(l, K, ROLE_IN);
        scales(l, "E", K / (size_t)s->gs, ROLE_IN, -2, 2);
        add_buf(l, "out", BT_F32, M * K, ROLE_OUT, GEN_ZERO, 0, 0, CMP_REL, 1e-5);
    } else if (strcmp(k, "rmsnorm_bwd") == 0) {
        in_f32(l, "x", M * K);
        in_f32(l, "gy", M * K);
        trits(l, K, ROLE_IN);
        scales(l, "E", K / (size_t)s->gs, ROLE_IN, -2, 2);
        add_buf(l, "gx", BT_F32, M * K, ROLE_OUT, GEN_ZERO, 0, 0, CMP_REL, 1e-5);
    } else if (strcmp(k, "embed_fwd") == 0) {
        add_buf(l, "idx", BT_I32, M, ROLE_IN, GEN_INT, 0, s->N - 1, CMP_NONE, 0);
        trits(l, NK, ROLE_IN);
        scales(l, "E", groups, ROLE_IN, -4, 4);
        add_buf(l, "out", BT_F32, M * K, ROLE_OUT, GEN_ZERO, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "embed_bwd_accum") == 0) {
        add_buf(l, "idx", BT_I32, M, ROLE_IN, GEN_INT, 0, s->N - 1, CMP_NONE, 0);
        in_smallint(l, "gout", M * K, 2);
        add_buf(l, "acc", BT_F32, NK, ROLE_STATE, GEN_ZERO, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "embed_bwd_sign") == 0) {
        in_smallint(l, "acc", NK, 2);
        add_buf(l, "s", BT_I8, NK, ROLE_OUT, GEN_ZERO, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "gather_context") == 0) {
        add_buf(l, "corpus", BT_U8, CORPUS_BYTES, ROLE_IN, GEN_BYTES, 0, 255, CMP_NONE, 0);
        add_buf(l, "pos", BT_I64, M, ROLE_IN, GEN_INT, s->K, CORPUS_BYTES - 1, CMP_NONE, 0);
        add_buf(l, "idx", BT_I32, M * K, ROLE_OUT, GEN_ZERO, 0, 0, CMP_EXACT, 0);
        add_buf(l, "target", BT_I32, M, ROLE_OUT, GEN_ZERO, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "sample_positions") == 0) {
        add_scalar(l, ARG_U64, 0x5EED5EEDLL);
        add_buf(l, "step_counter", BT_I64, 1, ROLE_IN, GEN_CONST, 7, 7, CMP_NONE, 0);
        add_scalar(l, ARG_I64, 16);
        add_scalar(l, ARG_I64, CORPUS_BYTES);
        add_buf(l, "pos", BT_I64, M, ROLE_OUT, GEN_ZERO, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "step_advance") == 0) {
        add_buf(l, "step_counter", BT_I64, 1, ROLE_STATE, GEN_CONST, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "relu_fwd") == 0) {
        in_f32(l, "z", M);
        if (s->variant)
            add_buf(l, "h", BT_F32, M, ROLE_STATE, GEN_FLOAT, 0, 0, CMP_EXACT, 0);
        else
            add_buf(l, "h", BT_F32, M, ROLE_OUT, GEN_ZERO, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "relu_bwd") == 0) {
        in_f32(l, "gh", M);
        in_f32(l, "z", M);
        add_buf(l, "gz", BT_F32, M, ROLE_OUT, GEN_ZERO, 0, 0, CMP_EXACT, 0);
    } else if (strcmp(k, "add") == 0) {
        add_buf(l, "a", BT_F32, M, ROLE_STATE, GEN_FLOAT, 0, 0, CMP_EXACT, 0);
        in_f32(l, "b", M);
    } else if (strcmp(k, "xent_fwd") == 0) {
        int logits = in_f32(l, "logits", M * N);
        l->bufs[logits].scale = 4.0;
        add_buf(l, "target", BT_I32, M, ROLE_IN, GEN_INT, 0, s->N - 1, CMP_NONE, 0);
        add_buf(l, "loss_sum", BT_F32, 1, ROLE_STATE, GEN_ZERO, 0, 0, CMP_REL, 1e-5);
        guard(l, ROLE_STATE);
    } else if (strcmp(k, "xent_bwd") == 0) {
        int logits = in_f32(l, "logits", M * N);
        l->bufs[logits].scale = 4.0;
        add_buf(l, "target", BT_I32, M, ROLE_IN, GEN_INT, 0, s->N - 1, CMP_NONE, 0);
        add_buf(l, "glogits", BT_F32, M * N, ROLE_OUT, GEN_ZERO, 0, 0, CMP_REL, 1e-6);
    } else if (strcmp(k, "ternary_decode") == 0) {
        /* W (or W^T) decoded into the padded tensor-core operand: exact, so
         * every configuration must match the default bit for bit, padding
         * (zeros) included. */
        int trans = (s->variant & ARB_VARIANT_TRANS) != 0;
        l->buf_packed = trits(l, NK, ROLE_IN);
        l->buf_E = scales(l, "E", groups, ROLE_IN, -4, 0);
        l->buf_out = staged_out(l, arb_staged_weight_bytes(s->N, s->K, s->prec, trans), s->prec);
    } else if (strcmp(k, "act_split") == 0) {
        /* M rows of K activations split into the mode's pieces (variant
         * TRANS: transposed, tc_update's operands): exact. */
        int trans = (s->variant & ARB_VARIANT_TRANS) != 0;
        l->buf_a = in_f32(l, "x", M * K);
        l->buf_out = staged_out(l,
                                trans ? arb_staged_act_bytes_trans(s->M, s->K, s->prec)
                                      : arb_staged_act_bytes(s->M, s->K, s->prec),
                                s->prec);
    } else if (strcmp(k, "tc_update") == 0) {
        /* The staged update on gy^T and x^T in two bf16 pieces: small
         * integers in the hi piece and a zero lo piece, so every sum is exact
         * and every configuration steps the same trits (as the fused
         * ternary_update_direct's small-integer inputs). */
        int64_t r = update_input_range(s);
        add_buf(l, "gyT", BT_BF16, arb_staged_act_bytes_trans(s->M, s->N, s->prec) / 2, ROLE_IN,
                GEN_BF16_INT, -r, r, CMP_NONE, 0);
        add_buf(l, "xT", BT_BF16, arb_staged_act_bytes_trans(s->M, s->K, s->prec) / 2, ROLE_IN,
                GEN_BF16_INT, -r, r, CMP_NONE, 0);
        update_state(l, s, r);
    } else if (strcmp(k, "tc_gemm") == 0) {
        /* C[M,N] = A[M,K] . B[N,K]^T on staged operands. They hold valid
         * random bf16 (tf32: fp32) values, padding included: every
         * configuration sums the same padded reduction, so they agree with
         * the default one (the trusted result: tc_gemm has no fp32 mode).
         * No cuBLAS peer per row (GEMM_NONE): the op rows of --gemm set the
         * whole staged plan beside cuBLAS. */
        staged_in(l, "A", arb_staged_act_bytes(s->M, s->K, s->prec), s->prec);
        staged_in(l, "B", arb_staged_weight_bytes(s->N, s->K, s->prec, 0), s->prec);
        /* E: read by the scale-after variant only (2^E per K-group of B = T). */
        l->buf_E = scales(l, "E", (s->variant & ARB_VARIANT_SCALE_AFTER) ? groups : 1, ROLE_IN,
                          -4, 4);
        l->buf_out = add_buf(l, "C", BT_F32, M * N, ROLE_OUT, GEN_ZERO, 0, 0, CMP_REL, tol);
    } else {
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND,
                        "arb-bench has no parameter layout for kernel '%s' (add one to "
                        "bench/layout.c)",
                        k);
    }
    return ARB_OK;
}

void bench_fill(const bench_buf *b, bench_rng *rng, void *host)
{
    memset(host, 0, b->bytes);
    size_t n = b->count;
    switch (b->gen) {
    case GEN_ZERO:
        return;
    case GEN_TRITS: {
        uint8_t *p = host;
        /* Pack five random trits per byte directly (padding trits are 0, v = 1). */
        for (size_t byte = 0; byte < arb_packed_size(n); byte++) {
            unsigned v = 0, pow = 1;
            for (size_t i = 0; i < 5; i++, pow *= 3) {
                size_t lin = byte * 5 + i;
                unsigned digit = lin < n ? (unsigned)bench_rng_int(rng, 0, 2) : 1u;
                v += digit * pow;
            }
            p[byte] = (uint8_t)v;
        }
        return;
    }
    case GEN_BYTES: {
        uint8_t *p = host;
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)bench_rng_next(rng);
        return;
    }
    case GEN_FLOAT: {
        float *p = host;
        for (size_t i = 0; i < n; i++)
            p[i] = (float)(bench_rng_float(rng) * b->scale);
        return;
    }
    case GEN_BF16: {
        uint16_t *p = host;
        for (size_t i = 0; i < n; i++)
            p[i] = bench_bf16((float)(bench_rng_float(rng) * b->scale));
        return;
    }
    case GEN_BF16_INT: {
        uint16_t *p = host; /* the second half stays zero (memset above) */
        for (size_t i = 0; i < n / 2; i++)
            p[i] = bench_bf16((float)bench_rng_int(rng, b->lo, b->hi));
        return;
    }
    case GEN_SMALLINT: {
        float *p = host;
        for (size_t i = 0; i < n; i++)
            p[i] = (float)bench_rng_int(rng, b->lo, b->hi);
        return;
    }
    case GEN_INT:
    case GEN_CONST:
        for (size_t i = 0; i < n; i++) {
            int64_t v = b->gen == GEN_CONST ? b->lo : bench_rng_int(rng, b->lo, b->hi);
            switch (b->type) {
            case BT_I8: ((int8_t *)host)[i] = (int8_t)v; break;
            case BT_U8: ((uint8_t *)host)[i] = (uint8_t)v; break;
            case BT_I32: ((int32_t *)host)[i] = (int32_t)v; break;
            case BT_I64: ((int64_t *)host)[i] = v; break;
            case BT_U64: ((uint64_t *)host)[i] = (uint64_t)v; break;
            case BT_F32: ((float *)host)[i] = (float)v; break;
            case BT_BF16: ((uint16_t *)host)[i] = bench_bf16((float)v); break;
            }
        }
        return;
    }
}

static void value_text(const bench_buf *b, const void *p, int64_t i, char *buf, size_t len)
{
    switch (b->type) {
    case BT_F32: snprintf(buf, len, "%.9g", (double)((const float *)p)[i]); break;
    case BT_I8: snprintf(buf, len, "%d", ((const int8_t *)p)[i]); break;
    case BT_U8: snprintf(buf, len, "%u", ((const uint8_t *)p)[i]); break;
    case BT_I32: snprintf(buf, len, "%d", ((const int32_t *)p)[i]); break;
    case BT_I64: snprintf(buf, len, "%" PRId64, ((const int64_t *)p)[i]); break;
    case BT_U64: snprintf(buf, len, "%" PRIu64, ((const uint64_t *)p)[i]); break;
    case BT_BF16: {
        uint16_t h = ((const uint16_t *)p)[i];
        snprintf(buf, len, "%.9g (bf16 0x%04x)", (double)bench_bf16_to_float(h), h);
        break;
    }
    }
}

int bench_compare(const bench_layout *l, void *const *got, void *const *ref, double *rel_err,
                  char *reason, size_t len)
{
    *rel_err = NAN;
    for (int b = 0; b < l->n_bufs; b++) {
        const bench_buf *buf = &l->bufs[b];
        if (buf->cmp == CMP_REL) {
            size_t n = buf->bytes / sizeof(float);
            double e = bench_rel_err(got[b], ref[b], n);
            if (!isfinite(*rel_err) || e > *rel_err)
                *rel_err = e;
            if (!(e <= buf->tol)) {
                snprintf(reason, len, "%s: rel err %.3g > %g against the default configuration%s",
                         buf->name, e, buf->tol,
                         isinf(e) ? " (an element left unwritten or not finite)" : "");
                return -1;
            }
        } else if (buf->cmp == CMP_EXACT) {
            /* Packed trits compare as bytes, every other buffer by element. */
            size_t elem = buf->gen == GEN_TRITS ? 1 : buf->bytes / buf->count;
            size_t n = buf->gen == GEN_TRITS ? buf->bytes : buf->count;
            int64_t i = bench_first_diff(got[b], ref[b], n, elem);
            if (i >= 0) {
                char g[48], w[48];
                value_text(buf, got[b], i, g, sizeof(g));
                value_text(buf, ref[b], i, w, sizeof(w));
                snprintf(reason, len, "%s[%" PRId64 "] = %s, the default configuration gives %s",
                         buf->name, i, g, w);
                return -1;
            }
        }
    }
    return 0;
}
