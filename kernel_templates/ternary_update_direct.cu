/*
 * ternary_update_direct.cu - the fused direct update (SPEC §3 *_direct):
 * for each BM x BN tile of the weight, compute gW = gy^T . x in registers,
 * take s = sign(gW), step the tile's trits (VARIANT & STEP), then score each
 * element with the NEW trit for update_E (E_GRAD: gW*T, E_SIGN: s*T) and
 * step E where the group's scores meet (update_epilogue.cuh). Neither gW nor
 * s is ever written to memory.
 *
 * PREC = fp32: the gW tile by SIMT FMA (outer_tile.cuh), exact fp32 sums.
 * PREC = bf16x2: the gW tile on tensor cores with both operands split in two
 *   bf16 pieces (mma_outer.cuh; error ~2^-16 of |gy col||x col|, inside
 *   SPEC §3's sign tolerance), dynamic shared memory.
 * Grid: (ceil(K/BN), ceil(N/BM)). Reference:
 * engine/src/cpu/ternary_update_direct.c.
 */
#include "arb_common.cuh"
#include "mma_outer.cuh"
#include "outer_tile.cuh"
#include "update_epilogue.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    ternary_update_direct_kernel(const float *__restrict__ gy, const float *__restrict__ x,
                                 u8 *packed, i8 *__restrict__ T_accum, i8 *__restrict__ E,
                                 i8 *__restrict__ E_accum, float *__restrict__ score, int theta,
                                 int phi, const int *__restrict__ guard, u64 *__restrict__ flips)
{
    constexpr int THREADS = WARPS * 32;
    typedef arb_update_epilogue<N, K, GS, BM, BN, VARIANT> Epilogue;
    if (arb_guarded(guard))
        return;
    __shared__ unsigned short lut[ARB_TRIT_LUT_SIZE];
    __shared__ float tile_scores[Epilogue::SCORE_FLOATS];
    const int n0 = blockIdx.y * BM, k0 = blockIdx.x * BN;
    Epilogue ep = {lut, packed, T_accum, E, E_accum, score, tile_scores, theta, phi, n0, k0,
                   0, 0, -1, 0.0f};
    arb_trit_lut_build<THREADS>(lut);
    ep.template zero_scores<THREADS>();
    /* (the mainloop's first barrier orders the table and the zeros before any use) */

    if constexpr (PREC == ARB_PREC_FP32) {
        float acc[TM][TN];
        arb_outer_tile<M, N, K, BM, BN, BK, TM, TN, THREADS>(gy, x, n0, k0, acc);
        const int ty = threadIdx.x / (BN / TN), tx = threadIdx.x % (BN / TN);
#pragma unroll
        for (int i = 0; i < TM; i++) {
            ep.begin_row(ty * TM + i);
#pragma unroll
            for (int j = 0; j < TN; j++)
                ep.element(n0 + ty * TM + i, k0 + tx * TN + j, acc[i][j]);
            ep.end_row();
        }
    } else {
        extern __shared__ __align__(16) char smem[];
        float acc[TM / 16][TN / 8][4];
        arb_mma_outer<M, N, K, BM, BN, BK, TM, TN, WARPS>(gy, x, n0, k0, smem, acc);
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        const int g = lane >> 2, t = lane & 3;
        const int wm = (warp / (BN / TN)) * TM, wn = (warp % (BN / TN)) * TN;
#pragma unroll
        for (int i = 0; i < TM / 16; i++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int row = wm + 16 * i + g + 8 * h;
                ep.begin_row(row);
#pragma unroll
                for (int j = 0; j < TN / 8; j++) {
                    int k = k0 + wn + 8 * j + 2 * t;
                    ep.element(n0 + row, k, acc[i][j][2 * h]);
                    ep.element(n0 + row, k + 1, acc[i][j][2 * h + 1]);
                }
                ep.end_row();
            }
        }
    }
    ep.template finish<THREADS>(flips);
}
