/*
 * add.cu - a += b (joins the residual's two gradients). Shape: M = element
 * count. Grid: ceil(M / THREADS). Reference: engine/src/cpu/glue.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32) add_kernel(float *__restrict__ a,
                                                          const float *__restrict__ b)
{
    i64 e = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (e >= M)
        return;
    a[e] += b[e];
}
