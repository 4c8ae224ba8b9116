/*
 * simt_gemm.cuh - the fp32 SIMT tile loop shared by every GEMM-shaped kernel
 * (ternary_fwd, ternary_grad_x, grad_weight, grad_sign, ternary_update_direct).
 *
 * It computes, for one BM x BN output tile, C[i][j] = sum_r A(r, i) * B(r, j)
 * over the reduction length R, in steps of BK staged through shared memory.
 * Each kernel supplies loaders A(r, i), B(r, j) (returning 0 outside the
 * problem) and its own epilogue, so tails in every dimension are handled by
 * the loaders and the epilogue's bounds checks.
 *
 * Thread layout: THREADS = (BM/TM) * (BN/TN) threads; thread (ty, tx) owns
 * rows ty*TM .. +TM and columns tx*TN .. +TN of the tile in acc[TM][TN].
 * Accumulation is fp32 FMA in ascending r within a thread.
 */
#ifndef ARB_SIMT_GEMM_CUH
#define ARB_SIMT_GEMM_CUH

#include "arb_common.cuh"

/* Shared-memory rows are padded by 4 floats: stores of consecutive r land in
 * different banks, and rows stay 16-byte aligned for vector reads. */
#define ARB_SMEM_PAD 4

/* A_CONTIG: consecutive i are adjacent in memory for loader A (else
 * consecutive r are), so the staging loop walks the contiguous index
 * fastest and global loads coalesce. Same for B_CONTIG and j. */
template <int BM, int BN, int BK, int TM, int TN, int THREADS, bool A_CONTIG, bool B_CONTIG,
          class LoadA, class LoadB>
__device__ __forceinline__ void arb_simt_gemm(int R, LoadA load_a, LoadB load_b,
                                              float (&acc)[TM][TN])
{
    static_assert((BM / TM) * (BN / TN) == THREADS, "thread tiles must cover the block tile");
    static_assert(BM % TM == 0 && BN % TN == 0, "tile sizes must divide the block tile");
    __shared__ __align__(16) float As[BK][BM + ARB_SMEM_PAD];
    __shared__ __align__(16) float Bs[BK][BN + ARB_SMEM_PAD];
    const int tid = threadIdx.x;
    const int ty = tid / (BN / TN), tx = tid % (BN / TN);

#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++)
            acc[i][j] = 0.0f;

    for (int r0 = 0; r0 < R; r0 += BK) {
        for (int e = tid; e < BM * BK; e += THREADS) {
            int i = A_CONTIG ? e % BM : e / BK;
            int r = A_CONTIG ? e / BM : e % BK;
            As[r][i] = load_a(r0 + r, i);
        }
        for (int e = tid; e < BN * BK; e += THREADS) {
            int j = B_CONTIG ? e % BN : e / BK;
            int r = B_CONTIG ? e / BN : e % BK;
            Bs[r][j] = load_b(r0 + r, j);
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < BK; r++) {
            float a[TM], b[TN];
#pragma unroll
            for (int i = 0; i < TM; i++)
                a[i] = As[r][ty * TM + i];
#pragma unroll
            for (int j = 0; j < TN; j++)
                b[j] = Bs[r][tx * TN + j];
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++)
                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
}

#endif /* ARB_SIMT_GEMM_CUH */
