/*
 * grad_sign.cu - s[N,K] = sign(gy^T . x) as int8, sign(0) = 0 (SPEC §3).
 * Grid: (ceil(K/BN), ceil(N/BM)). Reference: engine/src/cpu/grad_weight.c.
 */
#include "arb_common.cuh"
#include "outer_tile.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    grad_sign_kernel(const float *__restrict__ gy, const float *__restrict__ x,
                     i8 *__restrict__ s)
{
    const int n0 = blockIdx.y * BM, k0 = blockIdx.x * BN;
    float acc[TM][TN];
    arb_outer_tile<M, N, K, BM, BN, BK, TM, TN, WARPS * 32>(gy, x, n0, k0, acc);
    const int ty = threadIdx.x / (BN / TN), tx = threadIdx.x % (BN / TN);
#pragma unroll
    for (int i = 0; i < TM; i++) {
        int n = n0 + ty * TM + i;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            int k = k0 + tx * TN + j;
            if (n < N && k < K)
                s[(i64)n * K + k] = (i8)arb_sign(acc[i][j]);
        }
    }
}
