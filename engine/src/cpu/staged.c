/*
 * staged.c - references of ternary_decode, act_split and tc_gemm (staged.h).
 * Written for clarity: one element at a time, in the kernels' layout.
 */
#include "staged.h"

#include <string.h>

#include "arb/kernels.h"
#include "arb/ternary.h"

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

uint16_t arb_cpu_bf16_bits(float f)
{
    uint32_t u = float_bits(f);
    u += 0x7FFFu + ((u >> 16) & 1u); /* round half to even on the 16 dropped bits */
    return (uint16_t)(u >> 16);
}

/* tf32 keeps 10 mantissa bits; cvt.rna rounds half away from zero, which on
 * a sign-magnitude encoding is "add half an ulp to the magnitude, truncate". */
static uint32_t tf32_bits(float f) { return (float_bits(f) + 0x1000u) & 0xFFFFE000u; }

void arb_cpu_ternary_decode(const uint8_t *packed, const int8_t *E, int64_t N, int64_t K,
                            int64_t gs, arb_precision prec, int trans, void *out)
{
    const int wide = prec == ARB_PREC_TF32;
    const int64_t cols = arb_staged_pad(trans ? N : K, ARB_STAGE_COLS);
    memset(out, 0, arb_staged_weight_bytes(N, K, prec, trans));
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) {
            int64_t lin = n * K + k;
            int t = arb_ternary_get(packed, (size_t)lin);
            uint32_t e = (uint32_t)(E[lin / gs] + 127);
            uint32_t bits = 0;
            if (t != 0)
                bits = wide ? ((uint32_t)(t < 0) << 31 | e << 23) : ((uint32_t)(t < 0) << 15 | e << 7);
            int64_t at = trans ? k * cols + n : n * cols + k;
            if (wide)
                ((uint32_t *)out)[at] = bits;
            else
                ((uint16_t *)out)[at] = (uint16_t)bits;
        }
    }
}

void arb_cpu_act_split(const float *x, int64_t M, int64_t R, arb_precision prec, int trans,
                       void *out)
{
    /* Plane layout: rows along M (trans: along R), the other index contiguous. */
    const int64_t rows = arb_staged_pad(trans ? R : M, ARB_STAGE_ROWS);
    const int64_t cols = arb_staged_pad(trans ? M : R, ARB_STAGE_COLS);
    const int pieces = arb_staged_pieces(prec);
    memset(out, 0,
           trans ? arb_staged_act_bytes_trans(M, R, prec) : arb_staged_act_bytes(M, R, prec));
    for (int64_t m = 0; m < M; m++) {
        for (int64_t r = 0; r < R; r++) {
            float v = x[m * R + r];
            int64_t at = trans ? r * cols + m : m * cols + r;
            if (prec == ARB_PREC_TF32) {
                ((uint32_t *)out)[at] = tf32_bits(v);
                continue;
            }
            for (int p = 0; p < pieces; p++) {
                uint16_t b = arb_cpu_bf16_bits(v);
                ((uint16_t *)out)[(int64_t)p * rows * cols + at] = b;
                v -= bits_float((uint32_t)b << 16); /* exact: the remainder of a rounding */
            }
        }
    }
}

/* Element (row, r) of a staged plane as a float. */
static double staged_at(const void *base, int wide, int64_t at)
{
    return wide ? (double)bits_float(((const uint32_t *)base)[at])
                : (double)bits_float((uint32_t)((const uint16_t *)base)[at] << 16);
}

void arb_cpu_tc_gemm(const void *pieces, const void *dense, int64_t M, int64_t N, int64_t R,
                     arb_precision prec, float *C)
{
    const int wide = prec == ARB_PREC_TF32;
    const int np = arb_staged_pieces(prec);
    const int64_t rows = arb_staged_pad(M, ARB_STAGE_ROWS), cols = arb_staged_pad(R, ARB_STAGE_COLS);
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            double sum = 0.0;
            for (int p = 0; p < np; p++)
                for (int64_t r = 0; r < R; r++)
                    sum += staged_at(pieces, wide, ((int64_t)p * rows + m) * cols + r) *
                           staged_at(dense, wide, n * cols + r);
            C[m * N + n] = (float)sum;
        }
    }
}
