/*
 * rmsnorm_bwd.cu - gx = (gy*w - xhat * mean_d(xhat*gy*w)) / r, xhat = x / r,
 * with w decoded from the frozen ternary weight. Shape: M = B, K = D.
 * Grid: B blocks; when D is a multiple of 4 x THREADS the row stays in
 * registers (16-byte accesses, each input read once).
 * Reference: engine/src/cpu/rmsnorm_bwd.c.
 */
#include "arb_common.cuh"
#include "elementwise.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    rmsnorm_bwd_kernel(const float *__restrict__ x, const float *__restrict__ gy,
                       const u8 *__restrict__ packed, const i8 *__restrict__ E,
                       float *__restrict__ gx)
{
    constexpr int THREADS = WARPS * 32, D = K;
    __shared__ float scratch[32];
    const i64 row = (i64)blockIdx.x * D;
    if (D % (4 * THREADS) == 0 && arb_aligned16(x) && arb_aligned16(gy) && arb_aligned16(gx)) {
        /* x, gy and w stay in registers (one read each), 16-byte accesses;
         * weights decode through the digit table. */
        constexpr int V = D / (4 * THREADS) > 0 ? D / (4 * THREADS) : 1; /* (1: unused) */
        __shared__ unsigned short lut[ARB_TRIT_LUT_SIZE];
        arb_trit_lut_build<THREADS>(lut);
        __syncthreads();
        float xv[V][4], gw[V][4]; /* x and gy * w */
        float ss = 0.0f, dot = 0.0f;
#pragma unroll
        for (int j = 0; j < V; j++) {
            const int d = 4 * (threadIdx.x + j * THREADS);
            const float4 a = *(const float4 *)(x + row + d), g = *(const float4 *)(gy + row + d);
            const float av[4] = {a.x, a.y, a.z, a.w}, gv[4] = {g.x, g.y, g.z, g.w};
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const float w = (float)arb_trit_lut(lut, packed, d + q) * arb_pow2(E[(d + q) / GS]);
                xv[j][q] = av[q];
                gw[j][q] = gv[q] * w;
                ss = fmaf(av[q], av[q], ss);
                dot = fmaf(av[q], gw[j][q], dot);
            }
        }
        ss = arb_block_sum<WARPS>(ss, scratch);
        dot = arb_block_sum<WARPS>(dot, scratch);
        const float inv_r = 1.0f / sqrtf(ss / (float)D + 1e-6f);
        const float mean = dot * inv_r / (float)D; /* mean_d(xhat * gy * w) */
#pragma unroll
        for (int j = 0; j < V; j++) {
            const int d = 4 * (threadIdx.x + j * THREADS);
            float o[4];
#pragma unroll
            for (int q = 0; q < 4; q++)
                o[q] = (gw[j][q] - xv[j][q] * inv_r * mean) * inv_r;
            *(float4 *)(gx + row + d) = make_float4(o[0], o[1], o[2], o[3]);
        }
    } else {
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
}
