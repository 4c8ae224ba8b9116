/*
 * relu_bwd.cu - gz = gh * (z > 0). Shape: M = element count.
 * Grid: ceil(M / THREADS). Reference: engine/src/cpu/glue.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    relu_bwd_kernel(const float *__restrict__ gh, const float *__restrict__ z,
                    float *__restrict__ gz)
{
    i64 e = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (e >= M)
        return;
    gz[e] = z[e] > 0.0f ? gh[e] : 0.0f;
}
