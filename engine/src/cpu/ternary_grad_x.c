/*
 * ternary_grad_x.c - C reference of ternary_grad_x: gx[M,K] = gy[M,N] . W.
 *
 * Row m of gx is a sum of W's rows weighted by gy[m,:], accumulated in
 * ascending n (an axpy per row, which vectorizes without reassociation).
 */
#include <string.h>

#include "cpu_common.h"

arb_status arb_cpu_ternary_grad_x(arb_backend *be, const arb_ternary *W, const float *gy,
                                  float *gx, int64_t M)
{
    const int64_t N = W->N, K = W->K;
    float *Wf = arb_cpu_scratch(be, (size_t)(N * K) * sizeof(float));
    if (!Wf)
        return be->err.status;
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t n = 0; n < N; n++)
        arb_cpu_decode_row(W, n, Wf + n * K);
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t m = 0; m < M; m++) {
        float *out = gx + m * K;
        memset(out, 0, (size_t)K * sizeof(float));
        for (int64_t n = 0; n < N; n++) {
            float a = gy[m * N + n];
            const float *wn = Wf + n * K;
            for (int64_t k = 0; k < K; k++)
                out[k] += a * wn[k];
        }
    }
    return ARB_OK;
}
