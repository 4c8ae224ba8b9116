/*
 * ternary_fwd.c - C reference of ternary_fwd: y[M,N] = x[M,K] . W^T.
 *
 * Decode W to floats once per call (ephemeral scratch, never state), then one
 * dot product per output. Eight independent partial sums let the compiler
 * vectorize the inner loop while keeping a fixed summation order.
 */
#include "cpu_common.h"

static float dot(const float *a, const float *b, int64_t n)
{
    float acc[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[k + j] * b[k + j];
    float tail = 0.0f;
    for (; k < n; k++)
        tail += a[k] * b[k];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

arb_status arb_cpu_ternary_fwd(arb_backend *be, const arb_ternary *W, const float *x, float *y,
                               int64_t M)
{
    const int64_t N = W->N, K = W->K;
    float *Wf = arb_cpu_scratch(be, (size_t)(N * K) * sizeof(float));
    if (!Wf)
        return be->err.status;
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t n = 0; n < N; n++)
        arb_cpu_decode_row(W, n, Wf + n * K);
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++)
            y[m * N + n] = dot(x + m * K, Wf + n * K, K);
    return ARB_OK;
}
