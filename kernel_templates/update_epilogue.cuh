/*
 * update_epilogue.cuh - what the fused direct update does with each element
 * of a gW = gy^T . x tile once the tile is in registers, shared by the SIMT
 * and tensor-core versions of ternary_update_direct.
 *
 * Per element (n, k) with gradient g: s = sign(g); the T step (VARIANT &
 * STEP) repacks the trit in place with an atomic add on its own digit; the
 * E score v = g*T_new (E_GRAD) or s*T_new (E_SIGN) goes where the group's
 * scores meet:
 *   GS == 1     the element is its own group: E is stepped at once;
 *   E_IN_TILE   the group lies in this block's tile: a shared-memory sum,
 *               E stepped by finish() after a barrier;
 *   otherwise   score[g] in global memory (zeroed by the op), stepped later
 *               by update_E_apply (always so with E_SCORES_ONLY: data-parallel
 *               ranks sum their scores before the E step).
 * A thread visits its elements row by row (begin_row .. end_row) in
 * ascending k, so consecutive elements of a group collapse into one add.
 */
#ifndef ARB_UPDATE_EPILOGUE_CUH
#define ARB_UPDATE_EPILOGUE_CUH

#include "arb_common.cuh"

template <int N, int K, int GS, int BM, int BN, int VARIANT>
struct arb_update_epilogue {
    static constexpr bool STEP = (VARIANT & ARB_VARIANT_STEP) != 0;
    static constexpr bool E_GRAD = (VARIANT & ARB_VARIANT_E_GRAD) != 0;
    static constexpr bool E_ANY = (VARIANT & (ARB_VARIANT_E_GRAD | ARB_VARIANT_E_SIGN)) != 0;
    static constexpr bool SCORES_ONLY = (VARIANT & ARB_VARIANT_E_SCORES_ONLY) != 0;
    static constexpr bool IN_TILE =
        E_ANY && GS > 1 && !SCORES_ONLY && (VARIANT & ARB_VARIANT_E_IN_TILE) != 0;
    static constexpr int TILE_GROUPS = IN_TILE ? BN / GS : 1; /* groups per tile row */
    static constexpr int SCORE_FLOATS = IN_TILE ? BM * TILE_GROUPS : 1;

    const unsigned short *lut;
    u8 *packed;
    i8 *T_accum, *E, *E_accum;
    float *score;       /* global scores (the third case above) */
    float *tile_scores; /* shared, SCORE_FLOATS floats (IN_TILE) */
    int theta, phi, n0, k0;
    u64 changed;
    int row_local, run_group;
    float run;

    /* Zero the shared scores; call before the mainloop's first barrier. */
    template <int THREADS>
    __device__ __forceinline__ void zero_scores()
    {
        if (IN_TILE)
            for (int i = threadIdx.x; i < SCORE_FLOATS; i += THREADS)
                tile_scores[i] = 0.0f;
    }

    __device__ __forceinline__ void flush()
    {
        if (run_group < 0)
            return;
        if (IN_TILE)
            atomicAdd(&tile_scores[row_local * TILE_GROUPS + run_group], run);
        else
            atomicAdd(&score[run_group], run);
        run_group = -1;
    }

    __device__ __forceinline__ void begin_row(int n_local)
    {
        row_local = n_local;
        run_group = -1;
        run = 0.0f;
    }

    __device__ __forceinline__ void element(int n, int k, float g)
    {
        const float one[1] = {g};
        elements<1>(n, k, one);
    }

    /* RUN consecutive elements (n, k .. k + RUN - 1) of a row, as RUN
     * element() calls in ascending k, except that every trit and accumulator
     * is loaded before any is used: the loads overlap instead of paying one
     * memory latency each (tc_update hands over runs of 16). */
    template <int RUN>
    __device__ __forceinline__ void elements(int n, int k, const float (&g)[RUN])
    {
        int t[RUN];
        i8 a[RUN];
#pragma unroll
        for (int i = 0; i < RUN; i++) {
            const bool valid = n < N && k + i < K;
            const int lin = n * K + k + i;
            t[i] = valid ? arb_trit_lut(lut, packed, lin) : 0;
            a[i] = valid && STEP ? T_accum[lin] : (i8)0;
        }
#pragma unroll
        for (int i = 0; i < RUN; i++) {
            if (n >= N || k + i >= K)
                break;
            const int lin = n * K + k + i;
            const int s = arb_sign(g[i]);
            if (STEP) {
                const int delta = arb_step_one(t[i], s, &a[i], theta);
                if (delta) {
                    arb_trit_add(packed, lin, delta);
                    t[i] += delta;
                    changed++;
                }
            }
            if (E_ANY) {
                const float v = (E_GRAD ? g[i] : (float)s) * (float)t[i];
                if (GS == 1 && !SCORES_ONLY) {
                    arb_e_one(&E[lin], &E_accum[lin], v, phi);
                } else {
                    const int group = IN_TILE ? (k + i - k0) / GS : lin / GS;
                    if (group != run_group) {
                        flush();
                        run_group = group;
                        run = 0.0f;
                    }
                    run += v;
                }
            }
        }
        if (STEP)
#pragma unroll
            for (int i = 0; i < RUN; i++)
                if (n < N && k + i < K)
                    T_accum[n * K + k + i] = a[i];
    }

    __device__ __forceinline__ void end_row()
    {
        if (E_ANY && (GS != 1 || SCORES_ONLY))
            flush();
    }

    /* Count flips and step in-tile groups. Every thread of the block must
     * call (it has a barrier and a warp reduction). */
    template <int THREADS>
    __device__ __forceinline__ void finish(u64 *flips)
    {
        if (STEP && flips) {
            u64 total = arb_warp_sum_u64(changed);
            if ((threadIdx.x & 31) == 0 && total)
                atomicAdd(flips, total);
        }
        if (IN_TILE) {
            __syncthreads();
            for (int idx = threadIdx.x; idx < SCORE_FLOATS; idx += THREADS) {
                int n = n0 + idx / TILE_GROUPS, k = k0 + (idx % TILE_GROUPS) * GS;
                if (n < N && k < K) {
                    int g = (n * K + k) / GS;
                    arb_e_one(&E[g], &E_accum[g], tile_scores[idx], phi);
                }
            }
        }
    }
};

#endif /* ARB_UPDATE_EPILOGUE_CUH */
