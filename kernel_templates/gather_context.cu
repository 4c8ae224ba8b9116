/*
 * gather_context.cu - for each of M positions p = pos[i]:
 * idx[i*ctx + c] = corpus[p - ctx + c], target[i] = corpus[p].
 * Shape: M positions, K = ctx. One thread per (i, c); c == 0 also writes
 * the target. Grid: ceil(M*ctx / THREADS). Reference: engine/src/cpu/glue.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    gather_context_kernel(const u8 *__restrict__ corpus, const i64 *__restrict__ pos,
                          int *__restrict__ idx, int *__restrict__ target)
{
    constexpr int CTX = K;
    i64 e = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (e >= (i64)M * CTX)
        return;
    int i = (int)(e / CTX), c = (int)(e % CTX);
    i64 p = pos[i];
    idx[e] = corpus[p - CTX + c];
    if (c == 0)
        target[i] = corpus[p];
}
