/*
 * rmsnorm_bwd.cu - gx = (gy*w - xhat * mean_d(xhat*gy*w)) / r, xhat = x / r,
 * with w decoded from the frozen ternary weight. Shape: M = B, K = D.
 * Grid: B blocks. Reference: engine/src/cpu/rmsnorm_bwd.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    rmsnorm_bwd_kernel(const float *__restrict__ x, const float *__restrict__ gy,
                       const u8 *__restrict__ packed, const i8 *__restrict__ E,
                       float *__restrict__ gx)
{
    constexpr int THREADS = WARPS * 32, D = K;
    __shared__ float scratch[32];
    const i64 row = (i64)blockIdx.x * D;
    float ss = 0.0f, dot = 0.0f;
    for (int d = threadIdx.x; d < D; d += THREADS) {
        float xv = x[row + d];
        ss = fmaf(xv, xv, ss);
        dot = fmaf(xv * gy[row + d], arb_weight<GS>(packed, E, d), dot);
    }
    ss = arb_block_sum<WARPS>(ss, scratch);
    dot = arb_block_sum<WARPS>(dot, scratch);
    const float inv_r = 1.0f / sqrtf(ss / (float)D + 1e-6f);
    const float mean = dot * inv_r / (float)D; /* mean_d(xhat * gy * w) */
    for (int d = threadIdx.x; d < D; d += THREADS) {
        float xhat = x[row + d] * inv_r;
        gx[row + d] = (gy[row + d] * arb_weight<GS>(packed, E, d) - xhat * mean) * inv_r;
    }
}
