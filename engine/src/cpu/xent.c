/*
 * xent.c - C references of xent_fwd (summed softmax cross-entropy) and
 * xent_bwd ((softmax - onehot) / M). Max-subtracted, accumulated in double,
 * so logits of +-80 stay finite.
 */
#include <math.h>

#include "cpu_common.h"

static arb_status check_targets(arb_backend *be, const char *op, const int32_t *target,
                                int64_t M, int64_t V)
{
    for (int64_t i = 0; i < M; i++) {
        if (target[i] < 0 || target[i] >= V)
            return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG,
                               "%s: target[%lld] = %d is outside [0, %lld)", op, (long long)i,
                               (int)target[i], (long long)V);
    }
    return ARB_OK;
}

/* log(sum_j exp(row[j])) computed stably; returns the max through *row_max. */
static double log_sum_exp(const float *row, int64_t V, double *row_max)
{
    double mx = row[0];
    for (int64_t j = 1; j < V; j++)
        if (row[j] > mx)
            mx = row[j];
    double sum = 0.0;
    for (int64_t j = 0; j < V; j++)
        sum += exp((double)row[j] - mx);
    *row_max = mx;
    return mx + log(sum);
}

arb_status arb_cpu_xent_fwd(arb_backend *be, const float *logits, const int32_t *target,
                            int64_t M, int64_t V, float *loss_sum, int32_t *guard)
{
    arb_status st = check_targets(be, "xent_fwd", target, M, V);
    if (st)
        return st;
    double total = 0.0;
    for (int64_t i = 0; i < M; i++) {
        double mx;
        const float *row = logits + i * V;
        total += log_sum_exp(row, V, &mx) - (double)row[target[i]];
    }
    *loss_sum = (float)total;
    if (guard && !isfinite(*loss_sum))
        *guard = 1;
    return ARB_OK;
}

arb_status arb_cpu_xent_bwd(arb_backend *be, const float *logits, const int32_t *target,
                            int64_t M, int64_t V, float *glogits)
{
    arb_status st = check_targets(be, "xent_bwd", target, M, V);
    if (st)
        return st;
    const double inv_m = 1.0 / (double)M;
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t i = 0; i < M; i++) {
        const float *row = logits + i * V;
        double mx;
        double lse = log_sum_exp(row, V, &mx);
        for (int64_t j = 0; j < V; j++) {
            double p = exp((double)row[j] - lse);
            glogits[i * V + j] = (float)((p - (j == target[i] ? 1.0 : 0.0)) * inv_m);
        }
    }
    return ARB_OK;
}
