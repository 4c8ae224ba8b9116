/*
 * relu_bwd.cu - gz = gh * (z > 0). Shape: M = element count.
 * 4 elements a thread (elementwise.cuh): grid ceil(ceil(M / 4) / THREADS).
 * Reference: engine/src/cpu/glue.c.
 */
#include "arb_common.cuh"
#include "elementwise.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    relu_bwd_kernel(const float *__restrict__ gh, const float *__restrict__ z,
                    float *__restrict__ gz)
{
    const i64 e = arb_vec4_first<WARPS * 32>();
    if (e + 4 <= M && arb_aligned16(gh) && arb_aligned16(z) && arb_aligned16(gz)) {
        const float4 g = *(const float4 *)(gh + e), v = *(const float4 *)(z + e);
        *(float4 *)(gz + e) = make_float4(v.x > 0.0f ? g.x : 0.0f, v.y > 0.0f ? g.y : 0.0f,
                                          v.z > 0.0f ? g.z : 0.0f, v.w > 0.0f ? g.w : 0.0f);
        return;
    }
    for (i64 i = e; i < e + 4 && i < M; i++)
        gz[i] = z[i] > 0.0f ? gh[i] : 0.0f;
}
