/*
 * rmsnorm_fwd.c - C reference of rmsnorm_fwd:
 * out[b,d] = x[b,d] / r_b * w[d], r_b = sqrt(mean_d x[b,d]^2 + 1e-6),
 * w[d] = T[d] * 2^E[d/gs], decoded on the fly (no float weight is kept).
 */
#include <math.h>

#include "cpu_common.h"

arb_status arb_cpu_rmsnorm_fwd(arb_backend *be, const arb_ternary *w, const float *x, float *out,
                               int64_t B)
{
    const int64_t D = w->K;
    float *wf = arb_cpu_scratch(be, (size_t)D * sizeof(float));
    if (!wf)
        return be->err.status;
    arb_cpu_decode_row(w, 0, wf);
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t b = 0; b < B; b++) {
        const float *xb = x + b * D;
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)xb[d] * (double)xb[d];
        float inv_r = (float)(1.0 / sqrt(ss / (double)D + 1e-6));
        for (int64_t d = 0; d < D; d++)
            out[b * D + d] = xb[d] * inv_r * wf[d];
    }
    return ARB_OK;
}
