/*
 * rmsnorm_fwd.cu - out[b,d] = x[b,d] / r_b * w[d], r_b = sqrt(mean_d x^2 + 1e-6),
 * w = T * 2^E decoded on the fly from the frozen 1 x D weight (no float
 * weight tensor). Shape: M = B rows, K = D. Grid: B blocks, one row each;
 * when D is a multiple of 4 x THREADS the row stays in registers (x read
 * once, 16-byte accesses).
 * Reference: engine/src/cpu/rmsnorm_fwd.c.
 */
#include "arb_common.cuh"
#include "elementwise.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    rmsnorm_fwd_kernel(const float *__restrict__ x, const u8 *__restrict__ packed,
                       const i8 *__restrict__ E, float *__restrict__ out)
{
    constexpr int THREADS = WARPS * 32, D = K;
    __shared__ float scratch[32];
    const float *xb = x + (i64)blockIdx.x * D;
    float *ob = out + (i64)blockIdx.x * D;
    if (D % (4 * THREADS) == 0 && arb_aligned16(x) && arb_aligned16(out)) {
        /* The row stays in registers (one read of x), as 16-byte loads and
         * stores; weights decode through the digit table. */
        constexpr int V = D / (4 * THREADS) > 0 ? D / (4 * THREADS) : 1; /* (1: unused) */
        __shared__ unsigned short lut[ARB_TRIT_LUT_SIZE];
        arb_trit_lut_build<THREADS>(lut);
        float4 xv[V];
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < V; j++) {
            xv[j] = *(const float4 *)(xb + 4 * (threadIdx.x + j * THREADS));
            ss = fmaf(xv[j].x, xv[j].x, fmaf(xv[j].y, xv[j].y, ss));
            ss = fmaf(xv[j].z, xv[j].z, fmaf(xv[j].w, xv[j].w, ss));
        }
        ss = arb_block_sum<WARPS>(ss, scratch); /* (its barrier also publishes the table) */
        const float inv_r = 1.0f / sqrtf(ss / (float)D + 1e-6f);
#pragma unroll
        for (int j = 0; j < V; j++) {
            const int d = 4 * (threadIdx.x + j * THREADS);
            float w[4];
#pragma unroll
            for (int q = 0; q < 4; q++)
                w[q] = (float)arb_trit_lut(lut, packed, d + q) * arb_pow2(E[(d + q) / GS]);
            *(float4 *)(ob + d) = make_float4(xv[j].x * inv_r * w[0], xv[j].y * inv_r * w[1],
                                              xv[j].z * inv_r * w[2], xv[j].w * inv_r * w[3]);
        }
    } else {
        float ss = 0.0f;
        for (int d = threadIdx.x; d < D; d += THREADS)
            ss = fmaf(xb[d], xb[d], ss);
        ss = arb_block_sum<WARPS>(ss, scratch);
        const float inv_r = 1.0f / sqrtf(ss / (float)D + 1e-6f);
        for (int d = threadIdx.x; d < D; d += THREADS)
            ob[d] = xb[d] * inv_r * arb_weight<GS>(packed, E, d);
    }
}
