/*
 * embed_bwd.c - C reference of embed_bwd: acc[v,d] = sum_{i: idx_i = v}
 * gout[i,d] (in ascending i, so duplicates sum in a fixed order), then
 * s = sign(acc) as int8. Duplicate indices are the normal case.
 */
#include <string.h>

#include "cpu_common.h"

arb_status arb_cpu_embed_bwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                             const float *gout, int64_t M, float *acc, int8_t *s)
{
    const int64_t V = table->N, D = table->K;
    for (int64_t i = 0; i < M; i++) {
        if (idx[i] < 0 || idx[i] >= V)
            return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG,
                               "embed_bwd: idx[%lld] = %d is outside the table's %lld rows",
                               (long long)i, (int)idx[i], (long long)V);
    }
    memset(acc, 0, (size_t)(V * D) * sizeof(float));
    for (int64_t i = 0; i < M; i++) {
        float *row = acc + (int64_t)idx[i] * D;
        const float *g = gout + i * D;
        for (int64_t d = 0; d < D; d++)
            row[d] += g[d];
    }
    for (int64_t j = 0; j < V * D; j++)
        s[j] = (int8_t)arb_cpu_sign(acc[j]);
    return ARB_OK;
}
