/*
 * grad_weight.c - C references of grad_weight (gW = gy^T . x) and grad_sign
 * (s = sign(gW) as int8). Both build each row with arb_cpu_grad_row, the
 * same routine the direct updates use, so all paths see identical gW.
 */
#include <omp.h>

#include "cpu_common.h"

arb_status arb_cpu_grad_weight(arb_backend *be, const float *gy, const float *x, float *gW,
                               int64_t M, int64_t N, int64_t K)
{
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t n = 0; n < N; n++)
        arb_cpu_grad_row(gy, x, M, N, K, n, gW + n * K);
    return ARB_OK;
}

arb_status arb_cpu_grad_sign(arb_backend *be, const float *gy, const float *x, int8_t *s,
                             int64_t M, int64_t N, int64_t K)
{
    int threads = arb_cpu_threads(be);
    float *rows = arb_cpu_scratch(be, (size_t)threads * (size_t)K * sizeof(float));
    if (!rows)
        return be->err.status;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t n = 0; n < N; n++) {
        float *g = rows + (int64_t)omp_get_thread_num() * K;
        arb_cpu_grad_row(gy, x, M, N, K, n, g);
        for (int64_t k = 0; k < K; k++)
            s[n * K + k] = (int8_t)arb_cpu_sign(g[k]);
    }
    return ARB_OK;
}
