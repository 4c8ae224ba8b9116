/*
 * rmsnorm_fwd.cu - out[b,d] = x[b,d] / r_b * w[d], r_b = sqrt(mean_d x^2 + 1e-6),
 * w = T * 2^E decoded on the fly from the frozen 1 x D weight (no float
 * weight tensor). Shape: M = B rows, K = D. Grid: B blocks, one row each.
 * Reference: engine/src/cpu/rmsnorm_fwd.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    rmsnorm_fwd_kernel(const float *__restrict__ x, const u8 *__restrict__ packed,
                       const i8 *__restrict__ E, float *__restrict__ out)
{
    constexpr int THREADS = WARPS * 32, D = K;
    __shared__ float scratch[32];
    const float *xb = x + (i64)blockIdx.x * D;
    float ss = 0.0f;
    for (int d = threadIdx.x; d < D; d += THREADS)
        ss = fmaf(xb[d], xb[d], ss);
    ss = arb_block_sum<WARPS>(ss, scratch);
    const float inv_r = 1.0f / sqrtf(ss / (float)D + 1e-6f);
    float *ob = out + (i64)blockIdx.x * D;
    for (int d = threadIdx.x; d < D; d += THREADS)
        ob[d] = xb[d] * inv_r * arb_weight<GS>(packed, E, d);
}
