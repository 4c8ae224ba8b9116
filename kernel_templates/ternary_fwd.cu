/*
 * ternary_fwd.cu - y[M,N] = x[M,K] . W^T with W = T * 2^E decoded from
 * packed trits (SPEC §3). Grid: (ceil(N/BN), ceil(M/BM)).
 *
 * PREC = fp32: SIMT FMA (simt_gemm.cuh), static shared memory; BM x BN block
 *   tile, TM x TN thread tile. Each block decodes its BN x BK slab of W into
 *   shared memory per step (once per M-tile: the decode costs 1/BM of the FMAs).
 * PREC = tf32, bf16, bf16x2, bf16x3: tensor cores (mma_gemm.cuh), dynamic
 *   shared memory; BM x BN block tile, TM x TN warp tile.
 * Reference: engine/src/cpu/ternary_fwd.c.
 */
#include "arb_common.cuh"
#include "mma_gemm.cuh"
#include "simt_gemm.cuh"

template <int M, int N, int K, int GS, int BM, int BN, int BK, int TM, int TN, int WARPS>
__device__ __forceinline__ void ternary_fwd_simt(const float *__restrict__ x,
                                                 const u8 *__restrict__ packed,
                                                 const i8 *__restrict__ E, float *__restrict__ y)
{
    constexpr int THREADS = WARPS * 32;
    __shared__ unsigned short lut[ARB_TRIT_LUT_SIZE];
    arb_trit_lut_build<THREADS>(lut);
    __syncthreads();

    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    /* A(r=k, i=m) = x[m, k]: consecutive k are adjacent. */
    auto load_x = [&](int k, int i) -> float {
        int m = m0 + i;
        return (m < M && k < K) ? x[(i64)m * K + k] : 0.0f;
    };
    /* B(r=k, j=n) = W[n, k]: consecutive k are adjacent. */
    auto load_w = [&](int k, int j) -> float {
        int n = n0 + j;
        if (n >= N || k >= K)
            return 0.0f;
        int lin = n * K + k;
        return (float)arb_trit_lut(lut, packed, lin) * arb_pow2(E[lin / GS]);
    };
    float acc[TM][TN];
    arb_simt_gemm<BM, BN, BK, TM, TN, THREADS, false, false>(K, load_x, load_w, acc);

    const int ty = threadIdx.x / (BN / TN), tx = threadIdx.x % (BN / TN);
#pragma unroll
    for (int i = 0; i < TM; i++) {
        int m = m0 + ty * TM + i;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            int n = n0 + tx * TN + j;
            if (m < M && n < N)
                y[(i64)m * N + n] = acc[i][j];
        }
    }
}

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    ternary_fwd_kernel(const float *__restrict__ x, const u8 *__restrict__ packed,
                       const i8 *__restrict__ E, float *__restrict__ y)
{
    if constexpr (PREC == ARB_PREC_FP32) {
        ternary_fwd_simt<M, N, K, GS, BM, BN, BK, TM, TN, WARPS>(x, packed, E, y);
    } else {
        extern __shared__ __align__(16) char smem[];
        arb_mma_gemm<M, N, K, GS, BM, BN, BK, TM, TN, WARPS, PREC, false>(x, packed, E, y, smem);
    }
}
