/*
 * tc_update.cu - the staged fused direct update (sm_90a only): for each
 * BM x BN tile of the weight, gW = gy^T . x on wgmma from the two-piece
 * operands act_split staged transposed (gy^T: N rows, x^T: K rows, the batch
 * M contiguous), then the same epilogue as ternary_update_direct
 * (update_epilogue.cuh): s = sign(gW), the T step, E scores and, for groups
 * inside the tile, the E step. Neither gW nor s is written to memory.
 *
 * gW sums hi.hi + hi.lo + lo.hi of the bf16 pieces (tc_mainloop.cuh): the
 * error, about 2^-16 of |gy col| |x col|, is the bf16x2 update's of
 * mma_outer.cuh, inside SPEC §3's sign tolerance. No promotion: the
 * reduction is the batch.
 *
 * Block: BM x BN (n x k), WARPS = BM / 16. Grid (ceil(K/BN), ceil(N/BM)).
 * Reference: engine/src/cpu/ternary_update_direct.c (the op it stages).
 */
#include "arb_common.cuh"
#include "staged.cuh"
#include "tc_mainloop.cuh"
#include "update_epilogue.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    tc_update_kernel(const u8 *__restrict__ gyT, const u8 *__restrict__ xT, u8 *packed,
                     i8 *__restrict__ T_accum, i8 *__restrict__ E, i8 *__restrict__ E_accum,
                     float *__restrict__ score, int theta, int phi, const int *__restrict__ guard,
                     u64 *__restrict__ flips)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int THREADS = WARPS * 32;
    typedef arb_update_epilogue<N, K, GS, BM, BN, VARIANT> Epilogue;
    if (arb_guarded(guard))
        return;
    __shared__ unsigned short lut[ARB_TRIT_LUT_SIZE];
    __shared__ float tile_scores[Epilogue::SCORE_FLOATS];
    extern __shared__ __align__(1024) u8 smem_raw[];
    const int n0 = blockIdx.y * BM, k0 = blockIdx.x * BN;
    Epilogue ep = {lut, packed, T_accum, E, E_accum, score, tile_scores, theta, phi, n0, k0,
                   0, 0, -1, 0.0f};
    arb_trit_lut_build<THREADS>(lut);
    ep.template zero_scores<THREADS>();
    /* (the main loop's first barrier orders the table and the zeros before any use) */

    float acc[BN / 2];
    arb_tc_mainloop<BM, BN, STAGES, THREADS, false, 2, 2, 0, ARB_PAD(N, ARB_STAGE_ROWS),
                    ARB_PAD(K, ARB_STAGE_ROWS), (i64)ARB_PAD(M, ARB_STAGE_COLS) * 2>(
        gyT, xT, n0, k0, smem_raw, acc);

    /* The epilogue reads and writes T_accum and the trits of every element:
     * handed over in fragment order (pairs of k, rows 8 apart) each thread
     * paid a memory latency per element. So the tile goes through shared
     * memory (the drained stages) and each thread takes runs of 16
     * consecutive k, whose bytes arrive together. */
    constexpr int LD = BN + 4; /* floats per staged row (+4: fewer bank conflicts) */
    static_assert(BM * LD * 4 <= STAGES * 2 * (BM + BN) * 128, "the tile fits the stages");
    const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31, warp = (tid >> 5) & 3;
    const u32 raw = arb_smem_addr(smem_raw);
    float *tile = (float *)(smem_raw + ((1024u - (raw & 1023u)) & 1023u));
    __syncthreads(); /* every warpgroup's wgmmas are done with the stages */
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = wg * 64 + warp * 16 + (lane >> 2) + 8 * h;
#pragma unroll
        for (int j = 0; j < BN / 8; j++)
            *(float2 *)(tile + row * LD + 8 * j + 2 * (lane & 3)) =
                make_float2(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
    }
    __syncthreads();
    constexpr int RUNS = BM * (BN / 16);
    static_assert(RUNS % THREADS == 0, "whole runs per thread");
#pragma unroll 1
    for (int r = tid; r < RUNS; r += THREADS) {
        const int row = r / (BN / 16), col = (r % (BN / 16)) * 16;
        float g[16];
#pragma unroll
        for (int i = 0; i < 16; i += 4) {
            const float4 v = *(const float4 *)(tile + row * LD + col + i);
            g[i] = v.x, g[i + 1] = v.y, g[i + 2] = v.z, g[i + 3] = v.w;
        }
        ep.begin_row(row);
        ep.template elements<16>(n0 + row, k0 + col, g);
        ep.end_row();
    }
    ep.template finish<THREADS>(flips);
#else
    /* wgmma exists only on sm_90a: the engine refuses this kernel for any
     * other target (arb_kernel_def.arch), so this never runs. */
    static_assert(PREC < 0, "tc_update needs --gpu-architecture=sm_90a");
#endif
}
