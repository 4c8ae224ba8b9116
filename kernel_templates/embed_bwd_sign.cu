/*
 * embed_bwd_sign.cu - s = sign(acc) as int8 over the V x D accumulator.
 * Shape: N = V, K = D. Grid: ceil(V*D / THREADS). Reference: engine/src/cpu/embed_bwd.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    embed_bwd_sign_kernel(const float *__restrict__ acc, i8 *__restrict__ s)
{
    i64 e = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (e >= (i64)N * K)
        return;
    s[e] = (i8)arb_sign(acc[e]);
}
