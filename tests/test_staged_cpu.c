/*
 * test_staged_cpu.c - the C references of the staged tensor-core kernels
 * (engine/src/cpu/staged.c) against what they stand for: the decoded weight
 * is T * 2^E in the padded layout (W^T the transpose), the activation pieces
 * add up to x (exactly for bf16x3, within 2^-16 relative for bf16x2, 2^-8
 * for bf16), and tc_gemm over staged operands is ternary_fwd within the
 * mode's SPEC bound. Padding is zero everywhere.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arb/kernels.h"
#include "cpu/staged.h"
#include "harness.h"

static float bf16_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static float f32_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* Element (row, col) of a staged plane as a float. */
static float at(const void *plane, int wide, int64_t cols, int64_t row, int64_t col)
{
    return wide ? f32_of(((const uint32_t *)plane)[row * cols + col])
                : bf16_float(((const uint16_t *)plane)[row * cols + col]);
}

Test(staged_cpu, bf16_rounding_is_nearest_even)
{
    cr_assert_eq(arb_cpu_bf16_bits(1.0f), 0x3F80);
    cr_assert_eq(arb_cpu_bf16_bits(-2.0f), 0xC000);
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even 1. */
    cr_assert_eq(arb_cpu_bf16_bits(1.0f + 0x1p-8f), 0x3F80);
    /* 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6. */
    cr_assert_eq(arb_cpu_bf16_bits(1.0f + 3 * 0x1p-8f), 0x3F82);
    cr_assert_eq(arb_cpu_bf16_bits(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
}

Test(staged_cpu, decoded_weight_is_the_padded_exact_weight)
{
    th_rng rng = th_rng_for("staged_cpu/decode");
    static const int64_t shapes[][3] = {{53, 131, 1}, {129, 65, 65}, {200, 96, 32}, {7, 3, 21}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int64_t N = shapes[s][0], K = shapes[s][1], gs = shapes[s][2];
        th_hw w = th_hw_random(&rng, N, K, gs, -32, 31, 0, 0);
        uint8_t *packed = malloc(arb_packed_alloc_size((size_t)(N * K)));
        arb_ternary_pack(w.T, (size_t)(N * K), packed);
        for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
            arb_precision prec = (arb_precision)p;
            int wide = prec == ARB_PREC_TF32;
            for (int trans = 0; trans < 2; trans++) {
                int64_t rows = arb_staged_pad(trans ? K : N, ARB_STAGE_ROWS);
                int64_t cols = arb_staged_pad(trans ? N : K, ARB_STAGE_COLS);
                void *out = malloc(arb_staged_weight_bytes(N, K, prec, trans));
                memset(out, 0x5A, arb_staged_weight_bytes(N, K, prec, trans));
                arb_cpu_ternary_decode(packed, w.E, N, K, gs, prec, trans, out);
                for (int64_t r = 0; r < rows; r++) {
                    for (int64_t c = 0; c < cols; c++) {
                        int64_t n = trans ? c : r, k = trans ? r : c;
                        float want = 0.0f;
                        if (n < N && k < K)
                            want = (float)w.T[n * K + k] * ldexpf(1.0f, w.E[(n * K + k) / gs]);
                        float got = at(out, wide, cols, r, c);
                        cr_assert(got == want, "N=%lld K=%lld %s trans=%d (%lld,%lld): %g != %g",
                                  (long long)N, (long long)K, arb_precision_name(prec), trans,
                                  (long long)r, (long long)c, got, want);
                    }
                }
                free(out);
            }
        }
        free(packed);
        th_hw_free(&w);
    }
}

Test(staged_cpu, activation_pieces_add_up_to_x)
{
    th_rng rng = th_rng_for("staged_cpu/split");
    const int64_t M = 131, R = 77;
    float *x = malloc((size_t)(M * R) * sizeof(float));
    th_fill_normal(&rng, x, (size_t)(M * R));
    x[0] = 0x1p-30f; /* a tiny value: pieces must not lose it */
    x[1] = 1e30f;
    static const double bound[ARB_PREC_COUNT] = {0, 0x1p-11, 0x1p-8, 0x1p-16, 0};
    for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
        arb_precision prec = (arb_precision)p;
        int wide = prec == ARB_PREC_TF32, pieces = arb_staged_pieces(prec);
        int64_t rows = arb_staged_pad(M, ARB_STAGE_ROWS), cols = arb_staged_pad(R, ARB_STAGE_COLS);
        uint8_t *out = malloc(arb_staged_act_bytes(M, R, prec));
        memset(out, 0x5A, arb_staged_act_bytes(M, R, prec));
        arb_cpu_act_split(x, M, R, prec, 0, out);
        size_t plane = (size_t)(rows * cols) * (size_t)arb_staged_elem_bytes(prec);
        for (int64_t m = 0; m < rows; m++) {
            for (int64_t r = 0; r < cols; r++) {
                double sum = 0.0;
                for (int q = 0; q < pieces; q++)
                    sum += at(out + (size_t)q * plane, wide, cols, m, r);
                double want = (m < M && r < R) ? x[m * R + r] : 0.0;
                cr_assert(fabs(sum - want) <= bound[p] * fabs(want),
                          "%s (%lld,%lld): pieces sum to %.9g, x = %.9g", arb_precision_name(prec),
                          (long long)m, (long long)r, sum, want);
            }
        }
        free(out);
    }
    free(x);
}

Test(staged_cpu, tc_gemm_on_staged_operands_is_ternary_fwd)
{
    th_rng rng = th_rng_for("staged_cpu/gemm");
    const int64_t M = 37, N = 29, K = 131, gs = 1;
    th_hw w = th_hw_random(&rng, N, K, gs, -4, 4, 0, 0);
    uint8_t *packed = malloc(arb_packed_alloc_size((size_t)(N * K)));
    arb_ternary_pack(w.T, (size_t)(N * K), packed);
    float *x = malloc((size_t)(M * K) * sizeof(float));
    th_fill_normal(&rng, x, (size_t)(M * K));
    double *ref = malloc((size_t)(M * N) * sizeof(double));
    th_ref_ternary_fwd(&w, x, M, ref);
    float *y = malloc((size_t)(M * N) * sizeof(float));
    for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
        arb_precision prec = (arb_precision)p;
        void *dense = malloc(arb_staged_weight_bytes(N, K, prec, 0));
        void *pieces = malloc(arb_staged_act_bytes(M, K, prec));
        arb_cpu_ternary_decode(packed, w.E, N, K, gs, prec, 0, dense);
        arb_cpu_act_split(x, M, K, prec, 0, pieces);
        arb_cpu_tc_gemm(pieces, dense, M, N, K, prec, y);
        double num = 0, den = 0;
        for (int64_t i = 0; i < M * N; i++) {
            num += (y[i] - ref[i]) * (y[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        cr_assert(den > 0);
        cr_assert_leq(sqrt(num / den), th_tol_prec(prec), "%s: rel err %g",
                      arb_precision_name(prec), sqrt(num / den));
        free(dense);
        free(pieces);
    }
    free(y);
    free(ref);
    free(x);
    free(packed);
    th_hw_free(&w);
}

Test(staged_cpu, transposed_pieces_are_the_transpose)
{
    th_rng rng = th_rng_for("staged_cpu/split_trans");
    const int64_t M = 77, R = 131;
    float *x = malloc((size_t)(M * R) * sizeof(float));
    th_fill_normal(&rng, x, (size_t)(M * R));
    for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
        arb_precision prec = (arb_precision)p;
        int wide = prec == ARB_PREC_TF32, pieces = arb_staged_pieces(prec);
        size_t nb = arb_staged_act_bytes(M, R, prec), tb = arb_staged_act_bytes_trans(M, R, prec);
        uint8_t *plain = malloc(nb), *trans = malloc(tb);
        arb_cpu_act_split(x, M, R, prec, 0, plain);
        arb_cpu_act_split(x, M, R, prec, 1, trans);
        int64_t prow = arb_staged_pad(M, ARB_STAGE_ROWS), pcol = arb_staged_pad(R, ARB_STAGE_COLS);
        int64_t trow = arb_staged_pad(R, ARB_STAGE_ROWS), tcol = arb_staged_pad(M, ARB_STAGE_COLS);
        size_t elem = (size_t)arb_staged_elem_bytes(prec);
        for (int q = 0; q < pieces; q++)
            for (int64_t m = 0; m < tcol; m++)
                for (int64_t r = 0; r < trow; r++) {
                    float t = at(trans + (size_t)q * (size_t)(trow * tcol) * elem, wide, tcol, r, m);
                    float want = (m < M && r < R)
                                     ? at(plain + (size_t)q * (size_t)(prow * pcol) * elem, wide,
                                          pcol, m, r)
                                     : 0.0f;
                    cr_assert(t == want, "%s piece %d (%lld,%lld)", arb_precision_name(prec), q,
                              (long long)m, (long long)r);
                }
        free(plain);
        free(trans);
    }
    free(x);
}
