/*
 * embed_fwd.c - C reference of embed_fwd: out[i,d] = W[idx_i, d], decoded
 * from the packed V x D table. Exact (a trit times a power of two).
 */
#include "cpu_common.h"

arb_status arb_cpu_embed_fwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                             float *out, int64_t M)
{
    const int64_t V = table->N, D = table->K;
    for (int64_t i = 0; i < M; i++) {
        if (idx[i] < 0 || idx[i] >= V)
            return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG,
                               "embed_fwd: idx[%lld] = %d is outside the table's %lld rows",
                               (long long)i, (int)idx[i], (long long)V);
    }
#pragma omp parallel for schedule(static) num_threads(arb_cpu_threads(be))
    for (int64_t i = 0; i < M; i++)
        arb_cpu_decode_row(table, idx[i], out + i * D);
    return ARB_OK;
}
