/*
 * grad_weight.cu - gW[N,K] = gy[M,N]^T . x[M,K], materialized in fp32. Used
 * by the two-pass update path (update_E's grad score) and tests; training
 * uses ternary_update_direct, which never writes gW.
 * Grid: (ceil(K/BN), ceil(N/BM)). Reference: engine/src/cpu/grad_weight.c.
 */
#include "arb_common.cuh"
#include "outer_tile.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    grad_weight_kernel(const float *__restrict__ gy, const float *__restrict__ x,
                       float *__restrict__ gW)
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
                gW[(i64)n * K + k] = acc[i][j];
        }
    }
}
