/*
 * glue.c - C references of the trainer glue: sample_positions, step_advance,
 * gather_context, relu_fwd, relu_bwd and add (the residual's backward).
 */
#include "cpu_common.h"

arb_status arb_cpu_gather_context(arb_backend *be, const uint8_t *corpus, int64_t corpus_len,
                                  const int64_t *pos, int64_t M, int ctx, int32_t *idx,
                                  int32_t *target)
{
    /* Check every position before writing anything: a failed call touches
     * no memory (ops.h). */
    for (int64_t i = 0; i < M; i++) {
        int64_t p = pos[i];
        if (p < ctx || p >= corpus_len)
            return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG,
                               "gather_context: pos[%lld] = %lld must be in [%d, %lld)",
                               (long long)i, (long long)p, ctx, (long long)corpus_len);
    }
    for (int64_t i = 0; i < M; i++) {
        int64_t p = pos[i];
        for (int c = 0; c < ctx; c++)
            idx[i * ctx + c] = corpus[p - ctx + c];
        target[i] = corpus[p];
    }
    return ARB_OK;
}

arb_status arb_cpu_sample_positions(arb_backend *be, uint64_t seed, const int64_t *step_counter,
                                    int64_t lo, int64_t hi, int64_t M, int64_t *pos)
{
    (void)be;
    for (int64_t i = 0; i < M; i++)
        pos[i] = arb_sample_position(seed, *step_counter, i, lo, hi);
    return ARB_OK;
}

arb_status arb_cpu_step_advance(arb_backend *be, int64_t *step_counter)
{
    (void)be;
    *step_counter += 1;
    return ARB_OK;
}

arb_status arb_cpu_relu_fwd(arb_backend *be, const float *z, float *h, int64_t n, int residual)
{
    (void)be;
    if (residual) {
        for (int64_t i = 0; i < n; i++)
            h[i] += z[i] > 0.0f ? z[i] : 0.0f;
    } else {
        for (int64_t i = 0; i < n; i++)
            h[i] = z[i] > 0.0f ? z[i] : 0.0f;
    }
    return ARB_OK;
}

arb_status arb_cpu_relu_bwd(arb_backend *be, const float *gh, const float *z, float *gz, int64_t n)
{
    (void)be;
    for (int64_t i = 0; i < n; i++)
        gz[i] = z[i] > 0.0f ? gh[i] : 0.0f;
    return ARB_OK;
}

arb_status arb_cpu_add(arb_backend *be, float *a, const float *b, int64_t n)
{
    (void)be;
    for (int64_t i = 0; i < n; i++)
        a[i] += b[i];
    return ARB_OK;
}
