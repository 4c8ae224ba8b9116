/*
 * ternary_grad_x.cu - gx[M,K] = gy[M,N] . W, W = T * 2^E (SPEC §3).
 * Grid: (ceil(K/BN), ceil(M/BM)).
 *
 * The reduction runs over N; W's rows are contiguous along K, the output's
 * column axis, so the W slab is [BK rows of n][BN columns of k]:
 * PREC = fp32: SIMT FMA (simt_gemm.cuh), the W loader walks k fastest.
 * PREC = tf32, bf16, bf16x2, bf16x3: tensor cores (mma_gemm.cuh with
 *   W_TRANS: B fragments through ldmatrix.trans).
 * Reference: engine/src/cpu/ternary_grad_x.c.
 */
#include "arb_common.cuh"
#include "mma_gemm.cuh"
#include "simt_gemm.cuh"

template <int M, int N, int K, int GS, int BM, int BN, int BK, int TM, int TN, int WARPS>
__device__ __forceinline__ void ternary_grad_x_simt(const float *__restrict__ gy,
                                                    const u8 *__restrict__ packed,
                                                    const i8 *__restrict__ E,
                                                    float *__restrict__ gx)
{
    constexpr int THREADS = WARPS * 32;
    __shared__ unsigned short lut[ARB_TRIT_LUT_SIZE];
    arb_trit_lut_build<THREADS>(lut);
    __syncthreads();

    const int m0 = blockIdx.y * BM, k0 = blockIdx.x * BN;
    /* A(r=n, i=m) = gy[m, n]: consecutive n are adjacent. */
    auto load_gy = [&](int n, int i) -> float {
        int m = m0 + i;
        return (m < M && n < N) ? gy[(i64)m * N + n] : 0.0f;
    };
    /* B(r=n, j=k) = W[n, k]: consecutive k are adjacent. */
    auto load_w = [&](int n, int j) -> float {
        int k = k0 + j;
        if (n >= N || k >= K)
            return 0.0f;
        int lin = n * K + k;
        return (float)arb_trit_lut(lut, packed, lin) * arb_pow2(E[lin / GS]);
    };
    float acc[TM][TN];
    arb_simt_gemm<BM, BN, BK, TM, TN, THREADS, false, true>(N, load_gy, load_w, acc);

    const int ty = threadIdx.x / (BN / TN), tx = threadIdx.x % (BN / TN);
#pragma unroll
    for (int i = 0; i < TM; i++) {
        int m = m0 + ty * TM + i;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            int k = k0 + tx * TN + j;
            if (m < M && k < K)
                gx[(i64)m * K + k] = acc[i][j];
        }
    }
}

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    ternary_grad_x_kernel(const float *__restrict__ gy, const u8 *__restrict__ packed,
                          const i8 *__restrict__ E, float *__restrict__ gx)
{
    if constexpr (PREC == ARB_PREC_FP32) {
        ternary_grad_x_simt<M, N, K, GS, BM, BN, BK, TM, TN, WARPS>(gy, packed, E, gx);
    } else {
        extern __shared__ __align__(16) char smem[];
        arb_mma_gemm<M, K, N, GS, BM, BN, BK, TM, TN, WARPS, PREC, true>(gy, packed, E, gx, smem);
    }
}
