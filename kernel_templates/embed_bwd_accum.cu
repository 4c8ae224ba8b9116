/*
 * embed_bwd_accum.cu - acc[idx_i, d] += gout[i, d] with fp32 atomics (the
 * op zeroes acc first). Duplicate indices, the normal case, meet in the
 * atomics. Shape: M lookups, N = V, K = D. Grid: ceil(M*D / THREADS).
 * Reference: engine/src/cpu/embed_bwd.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    embed_bwd_accum_kernel(const int *__restrict__ idx, const float *__restrict__ gout,
                           float *__restrict__ acc)
{
    constexpr int D = K;
    i64 e = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (e >= (i64)M * D)
        return;
    int i = (int)(e / D), d = (int)(e % D);
    atomicAdd(&acc[(i64)idx[i] * D + d], gout[e]);
}
