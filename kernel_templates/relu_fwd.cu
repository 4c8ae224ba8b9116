/*
 * relu_fwd.cu - h = relu(z), or h += relu(z) when VARIANT is 1 (the
 * residual layers). Shape: M = element count. Grid: ceil(M / THREADS).
 * Reference: engine/src/cpu/glue.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    relu_fwd_kernel(const float *__restrict__ z, float *__restrict__ h)
{
    i64 e = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (e >= M)
        return;
    float r = fmaxf(z[e], 0.0f);
    h[e] = VARIANT ? h[e] + r : r;
}
