/*
 * rmsnorm_bwd.c - C reference of rmsnorm_bwd:
 * gx = (gy*w - xhat * mean_d(xhat*gy*w)) / r, xhat = x / r.
 * The weight is frozen, so no weight gradient is produced.
 */
#include <math.h>

#include "cpu_common.h"

arb_status arb_cpu_rmsnorm_bwd(arb_backend *be, const arb_ternary *w, const float *x,
                               const float *gy, float *gx, int64_t B)
{
    const int64_t D = w->K;
    float *wf = arb_cpu_scratch(be, (size_t)D * sizeof(float));
    if (!wf)
        return be->err.status;
    arb_cpu_decode_row(w, 0, wf);
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t b = 0; b < B; b++) {
        const float *xb = x + b * D;
        const float *gb = gy + b * D;
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)xb[d] * (double)xb[d];
        double inv_r = 1.0 / sqrt(ss / (double)D + 1e-6);
        double dot = 0.0; /* sum_d xhat * gy * w */
        for (int64_t d = 0; d < D; d++)
            dot += (double)xb[d] * inv_r * (double)gb[d] * (double)wf[d];
        double mean = dot / (double)D;
        for (int64_t d = 0; d < D; d++) {
            double xhat = (double)xb[d] * inv_r;
            gx[b * D + d] = (float)(((double)gb[d] * (double)wf[d] - xhat * mean) * inv_r);
        }
    }
    return ARB_OK;
}
