/*
 * outer_tile.cuh - one tile of the weight gradient gW[N,K] = gy^T . x,
 * reduced over the batch M, shared by grad_weight, grad_sign and
 * ternary_update_direct. Tile rows are n (BM of them), columns k (BN).
 * Both operands are contiguous along the tile's own axis (gy along n, x
 * along k), so both loaders coalesce.
 */
#ifndef ARB_OUTER_TILE_CUH
#define ARB_OUTER_TILE_CUH

#include "simt_gemm.cuh"

template <int M, int N, int K, int BM, int BN, int BK, int TM, int TN, int THREADS>
__device__ __forceinline__ void arb_outer_tile(const float *__restrict__ gy,
                                               const float *__restrict__ x, int n0, int k0,
                                               float (&acc)[TM][TN])
{
    auto load_gy = [&](int m, int i) -> float {
        int n = n0 + i;
        return (m < M && n < N) ? gy[(i64)m * N + n] : 0.0f;
    };
    auto load_x = [&](int m, int j) -> float {
        int k = k0 + j;
        return (m < M && k < K) ? x[(i64)m * K + k] : 0.0f;
    };
    arb_simt_gemm<BM, BN, BK, TM, TN, THREADS, true, true>(M, load_gy, load_x, acc);
}

#endif /* ARB_OUTER_TILE_CUH */
