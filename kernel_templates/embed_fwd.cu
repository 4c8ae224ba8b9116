/*
 * embed_fwd.cu - out[i,d] = W[idx_i, d] from the packed V x D table (exact).
 * Shape: M lookups, N = V, K = D. One thread per output element.
 * Grid: ceil(M*D / THREADS). Reference: engine/src/cpu/embed_fwd.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    embed_fwd_kernel(const int *__restrict__ idx, const u8 *__restrict__ packed,
                     const i8 *__restrict__ E, float *__restrict__ out)
{
    constexpr int D = K;
    i64 e = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (e >= (i64)M * D)
        return;
    int i = (int)(e / D), d = (int)(e % D);
    out[e] = arb_weight<GS>(packed, E, (i64)idx[i] * D + d);
}
