/*
 * add.cu - a += b (joins the residual's two gradients). Shape: M = element
 * count. 4 elements a thread (elementwise.cuh): grid ceil(ceil(M / 4) /
 * THREADS). Reference: engine/src/cpu/glue.c.
 */
#include "arb_common.cuh"
#include "elementwise.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32) add_kernel(float *__restrict__ a,
                                                          const float *__restrict__ b)
{
    const i64 e = arb_vec4_first<WARPS * 32>();
    if (e + 4 <= M && arb_aligned16(a) && arb_aligned16(b)) {
        const float4 x = *(const float4 *)(a + e), y = *(const float4 *)(b + e);
        *(float4 *)(a + e) = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
        return;
    }
    for (i64 i = e; i < e + 4 && i < M; i++)
        a[i] += b[i];
}
