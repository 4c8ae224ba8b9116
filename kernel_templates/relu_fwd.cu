/*
 * relu_fwd.cu - h = relu(z), or h += relu(z) when VARIANT is 1 (the
 * residual layers). Shape: M = element count. 4 elements a thread
 * (elementwise.cuh): grid ceil(ceil(M / 4) / THREADS).
 * Reference: engine/src/cpu/glue.c.
 */
#include "arb_common.cuh"
#include "elementwise.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    relu_fwd_kernel(const float *__restrict__ z, float *__restrict__ h)
{
    const i64 e = arb_vec4_first<WARPS * 32>();
    if (e + 4 <= M && arb_aligned16(z) && arb_aligned16(h)) {
        const float4 v = *(const float4 *)(z + e);
        float4 r = make_float4(fmaxf(v.x, 0.0f), fmaxf(v.y, 0.0f), fmaxf(v.z, 0.0f),
                               fmaxf(v.w, 0.0f));
        if (VARIANT) {
            const float4 o = *(const float4 *)(h + e);
            r = make_float4(o.x + r.x, o.y + r.y, o.z + r.z, o.w + r.w);
        }
        *(float4 *)(h + e) = r;
        return;
    }
    for (i64 i = e; i < e + 4 && i < M; i++) {
        const float r = fmaxf(z[i], 0.0f);
        h[i] = VARIANT ? h[i] + r : r;
    }
}
