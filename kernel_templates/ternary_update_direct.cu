/*
 * ternary_update_direct.cu - the fused direct update (SPEC §3 *_direct):
 * for each BM x BN tile of the weight, compute gW = gy^T . x in registers,
 * take s = sign(gW), step the tile's trits (VARIANT & STEP), then score each
 * element with the NEW trit for update_E (VARIANT & E_GRAD: gW*T, E_SIGN:
 * s*T). Neither gW nor s is ever written to memory.
 *
 * Where the scores of a group meet:
 *   GS == 1        every element is its own group, owned by one thread: E is
 *                  stepped right here.
 *   E_IN_TILE      groups lie inside the tile (GS divides K and BN): partial
 *                  sums meet in shared memory and E is stepped in the epilogue.
 *   otherwise      (groups of whole rows or the whole tensor) each thread adds
 *                  its run's partial sum to score[g] in global memory (zeroed
 *                  by the op) and update_E_apply steps E afterwards.
 *
 * Trits are repacked in place with arb_trit_add (a 32-bit atomic add that
 * changes only this thread's digit), so tiles need not align with bytes.
 * Grid: (ceil(K/BN), ceil(N/BM)). Reference:
 * engine/src/cpu/ternary_update_direct.c.
 */
#include "arb_common.cuh"
#include "outer_tile.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    ternary_update_direct_kernel(const float *__restrict__ gy, const float *__restrict__ x,
                                 u8 *packed, i8 *__restrict__ T_accum, i8 *__restrict__ E,
                                 i8 *__restrict__ E_accum, float *__restrict__ score, int theta,
                                 int phi, const int *__restrict__ guard, u64 *__restrict__ flips)
{
    constexpr int THREADS = WARPS * 32;
    constexpr bool STEP = (VARIANT & ARB_VARIANT_STEP) != 0;
    constexpr bool E_GRAD = (VARIANT & ARB_VARIANT_E_GRAD) != 0;
    constexpr bool E_ANY = (VARIANT & (ARB_VARIANT_E_GRAD | ARB_VARIANT_E_SIGN)) != 0;
    constexpr bool IN_TILE = E_ANY && GS > 1 && (VARIANT & ARB_VARIANT_E_IN_TILE) != 0;
    constexpr int TILE_GROUPS = IN_TILE ? BN / GS : 1; /* groups per tile row */
    if (arb_guarded(guard))
        return;
    __shared__ unsigned short lut[ARB_TRIT_LUT_SIZE];
    __shared__ float tile_scores[IN_TILE ? BM * TILE_GROUPS : 1];
    arb_trit_lut_build<THREADS>(lut);
    if (IN_TILE)
        for (int i = threadIdx.x; i < BM * TILE_GROUPS; i += THREADS)
            tile_scores[i] = 0.0f;
    /* (the GEMM's first barrier orders the table and the zeros before any use) */

    const int n0 = blockIdx.y * BM, k0 = blockIdx.x * BN;
    float acc[TM][TN];
    arb_outer_tile<M, N, K, BM, BN, BK, TM, TN, THREADS>(gy, x, n0, k0, acc);

    const int ty = threadIdx.x / (BN / TN), tx = threadIdx.x % (BN / TN);
    u64 changed = 0;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        int n = n0 + ty * TM + i;
        int run_group = -1;
        float run = 0.0f;
        /* Flush a run's partial sum where this layout's scores meet. */
        auto flush = [&]() {
            if (run_group < 0)
                return;
            if (IN_TILE)
                atomicAdd(&tile_scores[(ty * TM + i) * TILE_GROUPS + run_group], run);
            else
                atomicAdd(&score[run_group], run);
        };
#pragma unroll
        for (int j = 0; j < TN; j++) {
            int k = k0 + tx * TN + j;
            if (n >= N || k >= K)
                continue;
            int lin = n * K + k;
            float g = acc[i][j];
            int s = arb_sign(g);
            int t = arb_trit_lut(lut, packed, lin);
            if (STEP) {
                int delta = arb_step_one(t, s, &T_accum[lin], theta);
                if (delta) {
                    arb_trit_add(packed, lin, delta);
                    t += delta;
                    changed++;
                }
            }
            if (E_ANY) {
                float v = (E_GRAD ? g : (float)s) * (float)t;
                if (GS == 1) {
                    arb_e_one(&E[lin], &E_accum[lin], v, phi);
                } else {
                    int group = IN_TILE ? (k - k0) / GS : lin / GS;
                    if (group != run_group) {
                        flush();
                        run_group = group;
                        run = 0.0f;
                    }
                    run += v;
                }
            }
        }
        if (E_ANY && GS != 1)
            flush();
    }
    if (STEP && flips) {
        changed = arb_warp_sum_u64(changed);
        if ((threadIdx.x & 31) == 0 && changed)
            atomicAdd(flips, changed);
    }
    if (IN_TILE) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < BM * TILE_GROUPS; idx += THREADS) {
            int n = n0 + idx / TILE_GROUPS, k = k0 + (idx % TILE_GROUPS) * GS;
            if (n < N && k < K) {
                int g = (n * K + k) / GS;
                arb_e_one(&E[g], &E_accum[g], tile_scores[idx], phi);
            }
        }
    }
}
