/*
 * cpu_common.h - helpers shared by the C reference implementations.
 *
 * The cpu backend is the reference every GPU kernel is tested against, and
 * the engine of CPU training. It is written for clarity first: plain loops in
 * SPEC order. It is deterministic: every output element is summed in a fixed
 * order, whatever the thread count, so a CPU run resumes bit for bit.
 *
 * Parallelism: OpenMP over independent rows. Packed trits straddle rows
 * (5 per byte, rows need not be multiples of 5), so in-place trit updates go
 * through arb_cpu_trit_add(), an atomic byte add that only ever changes the
 * updating thread's own digit.
 */
#ifndef ARB_CPU_COMMON_H
#define ARB_CPU_COMMON_H

#include <stdint.h>

#include "../backend_impl.h"

struct arb_cpu_state {
    int threads;          /* OpenMP threads for this backend */
    void *scratch;        /* grow-only scratch (arb_cpu_scratch) */
    size_t scratch_bytes; /* its size */
};

/* 2^e as a float, exact for e in [ARB_E_MIN, ARB_E_MAX]. */
static inline float arb_cpu_pow2(int e)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)(e + 127) << 23; /* a normal float: e is far inside [-126, 127] */
    return v.f;
}

/* The sign of a float as -1, 0 or +1 (sign(0) = 0, NaN counts as 0). */
static inline int arb_cpu_sign(float v) { return (v > 0.0f) - (v < 0.0f); }
static inline int arb_cpu_sign_d(double v) { return (v > 0.0) - (v < 0.0); }

/* Decode row n of W into W[n, 0..K) = T * 2^E as floats. */
void arb_cpu_decode_row(const arb_ternary *W, int64_t n, float *out);

/* The trit at lin, read with an atomic byte load (other threads may be
 * changing other digits of the same byte). */
int arb_cpu_trit_load(const uint8_t *packed, int64_t lin);

/* Add delta (-1 or +1) to the trit at lin in place, atomically with respect
 * to other threads adding to other digits of the same byte. */
void arb_cpu_trit_add(uint8_t *packed, int64_t lin, int delta);

/* One ternary_step of a single trit (SPEC §3). Returns the change of T
 * (-1, 0, +1) and updates *accum. */
static inline int arb_cpu_step_one(int t, int s, int8_t *accum, int theta)
{
    int a = (int)*accum - s;
    int delta = 0;
    if (a >= theta && t < 1) {
        delta = 1;
        a = 0;
    } else if (a <= -theta && t > -1) {
        delta = -1;
        a = 0;
    }
    if (a > theta)
        a = theta;
    if (a < -theta)
        a = -theta;
    *accum = (int8_t)a;
    return delta;
}

/* gW row n: g[k] = sum_{m ascending} gy[m,n] * x[m,k]. Both grad_weight and
 * the direct updates use this, so they agree bit for bit. */
void arb_cpu_grad_row(const float *gy, const float *x, int64_t M, int64_t N, int64_t K, int64_t n,
                      float *g);

/* Group scores (update_E). For row n with per-element values v[k] (gW or s)
 * and the row's new trits t[k]:
 *   gs divides K: writes score[g] for the K/gs groups of the row;
 *   gs multiple of K: writes row_part[n] = sum_k v*t (finished later).
 * Sums run in ascending k, in double. */
void arb_cpu_row_scores(int64_t K, int64_t gs, int64_t n, const float *v, const int8_t *t,
                        double *score, double *row_part);

/* For gs a multiple of K: score[g] = sum of row_part over the g-th run of
 * gs/K rows, in ascending n. A no-op when gs divides K. */
void arb_cpu_finish_scores(int64_t N, int64_t K, int64_t gs, double *score,
                           const double *row_part);

/* Apply the E rule of SPEC §3 to every group from its score. */
void arb_cpu_apply_E(arb_ternary *W, const double *score, int phi);

#endif /* ARB_CPU_COMMON_H */
