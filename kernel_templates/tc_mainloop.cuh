/*
 * tc_mainloop.cuh - the wgmma main loop shared by tc_gemm (the staged
 * ternary_fwd / ternary_grad_x) and tc_update (the staged fused update):
 * one BM x BN tile of sum over terms (a, b) of A_a . B_b^T, from operands
 * staged in the padded K-major layout of staged.cuh.
 *
 * A has PA planes of A_ROWS (padded) rows, B has PB planes of B_ROWS rows,
 * every row ROW_BYTES long. The terms are the pairs (a, b) with a + b < max(PA, PB):
 * tc_gemm's activation pieces times the one exact weight (PB = 1: every a),
 * tc_update's two-piece gy^T and x^T (hi.hi + hi.lo + lo.hi; lo.lo is below
 * the bf16x2 error).
 *
 * Block: BM / 64 warpgroups (BM / 16 warps), each owning 64 rows x BN
 * columns: BN/2 fp32 accumulators per thread, register 4j + 2h + q holding
 * row 16 * warp + lane/4 + 8h of its warpgroup, column 8j + 2(lane%4) + q.
 * A stage holds one 128-byte K slab (64 bf16 or 32 tf32) of every plane, in
 * the 128B-swizzled layout of wgmma_ptx.cuh, loaded by cp.async. STAGES
 * slabs rotate; loads run STAGES - 2 slabs ahead, because one batch of
 * wgmmas stays in flight while the next is issued (wait_group 1) and its
 * slab must not be overwritten.
 *
 * Invariants: (STAGES * stage bytes + 1024) of dynamic shared memory (the
 * base is aligned up to 1024 here); row tiles stay inside the padded planes
 * (BM, BN <= ARB_STAGE_ROWS).
 */
#ifndef ARB_TC_MAINLOOP_CUH
#define ARB_TC_MAINLOOP_CUH

#include "arb_common.cuh"
#include "mma_ptx.cuh"
#include "staged.cuh"
#include "wgmma_ptx.cuh"

/* K elements between promotions (a multiple of 64). Each promotion drains
 * the wgmma pipeline, so fewer are faster: 256 for bf16x2 (measured on an
 * H200 at K = 4096: 8% faster than 128, error 2.4e-6 either way, bound
 * 1e-5), 128 for bf16x3, whose bound (2e-6) leaves less room.
 * -DARB_PROMOTE_K=N through ARB_NVRTC_FLAGS overrides both. */
#ifdef ARB_PROMOTE_K
#define ARB_PROMOTE_K_OF(pieces) ARB_PROMOTE_K
#else
#define ARB_PROMOTE_K_OF(pieces) ((pieces) == 2 ? 256 : 128)
#endif

/* One wgmma of the block's width (BN = 2 x accumulator registers), one
 * class specialization per width: with every width in one function behind
 * `if constexpr`, ptxas gave the n128 kernels a 512-byte stack frame. */
template <int BN, bool TF32> struct arb_tc_op;
template <bool TF32> struct arb_tc_op<64, TF32> {
    static __device__ __forceinline__ void mma(float (&d)[32], u64 a, u64 b)
    {
        if constexpr (TF32)
            arb_wgmma_tf32_n64(d, a, b, 1);
        else
            arb_wgmma_bf16_n64(d, a, b, 1);
    }
};
template <bool TF32> struct arb_tc_op<128, TF32> {
    static __device__ __forceinline__ void mma(float (&d)[64], u64 a, u64 b)
    {
        if constexpr (TF32)
            arb_wgmma_tf32_n128(d, a, b, 1);
        else
            arb_wgmma_bf16_n128(d, a, b, 1);
    }
};
template <bool TF32> struct arb_tc_op<256, TF32> {
    static __device__ __forceinline__ void mma(float (&d)[128], u64 a, u64 b)
    {
        if constexpr (TF32)
            arb_wgmma_tf32_n256(d, a, b, 1);
        else
            arb_wgmma_bf16_n256(d, a, b, 1);
    }
};

/* Bytes of one stage (mirrored by the engine's registry). */
template <int BM, int BN, int PA, int PB>
struct arb_tc_stage {
    static constexpr int BYTES = (PA * BM + PB * BN) * 128;
};

/* Whether term (a, b) is summed (see the header). */
__host__ __device__ constexpr bool arb_tc_term(int a, int b, int pa, int pb)
{
    return a + b < (pa > pb ? pa : pb);
}

/* std::is_same without <type_traits> (no system headers under NVRTC). */
template <class A, class B> struct arb_same { static constexpr bool value = false; };
template <class A> struct arb_same<A, A> { static constexpr bool value = true; };

/* No scale: the promoted partial sums are added as they are. */
struct arb_tc_unscaled {
    __device__ __forceinline__ float operator()(int, int) const { return 1.0f; }
};

/* acc = the tile's sums. PROMOTE_SLABS > 0: every that many slabs (a
 * "chunk") the tensor core's partial sums are added into separate fp32
 * registers, each multiplied by scale(column in the tile, chunk). */
template <int BM, int BN, int STAGES, int THREADS, bool TF32, int PA, int PB, int PROMOTE_SLABS,
          i64 A_ROWS, i64 B_ROWS, i64 ROW_BYTES, class Scale = arb_tc_unscaled>
__device__ __forceinline__ void arb_tc_mainloop(const u8 *__restrict__ A, const u8 *__restrict__ B,
                                                i64 m0, i64 n0, u8 *smem_raw,
                                                float (&acc)[BN / 2], Scale scale = Scale())
{
    constexpr bool SCALED = !arb_same<Scale, arb_tc_unscaled>::value;
    constexpr int KT = (int)(ROW_BYTES / 128); /* 128-byte K slabs */
    constexpr int A_TILE = BM * 128, B_TILE = BN * 128;
    constexpr int STAGE = arb_tc_stage<BM, BN, PA, PB>::BYTES;
    constexpr int ROWS = PA * BM + PB * BN; /* 128-byte rows per stage */
    constexpr int AHEAD = STAGES - 2;
    constexpr int ACC = BN / 2;
    constexpr bool PROMOTE = PROMOTE_SLABS > 0;
    static_assert(BM % 64 == 0 && THREADS == BM * 2, "one warpgroup per 64 rows");
    static_assert(BN == 64 || BN == 128 || (BN == 256 && !PROMOTE), "wgmma n64, n128, n256");
    static_assert(STAGES >= 3, "a slab in flight, one loading, one computing");
    static_assert(ROWS * 8 % THREADS == 0, "whole 16-byte chunks per thread");

    const u32 raw = arb_smem_addr(smem_raw);
    u8 *smem = smem_raw + ((1024u - (raw & 1023u)) & 1023u);
    const u32 sbase = arb_smem_addr(smem);
    const int tid = threadIdx.x, wg = tid >> 7;

    /* Slab kt of every plane into stage s, swizzled: chunk c of a 128-byte
     * row r lands at chunk c ^ (r % 8). */
    auto load = [&](int s, int kt) {
        u8 *dst = smem + s * STAGE;
        const i64 k_byte = (i64)kt * 128;
#pragma unroll
        for (int i = 0; i < ROWS * 8 / THREADS; i++) {
            const int ch = tid + i * THREADS, row = ch >> 3, c = ch & 7;
            const u8 *src;
            if (row < PA * BM) {
                const int p = row / BM, r = row % BM;
                src = A + ((i64)p * A_ROWS + m0 + r) * ROW_BYTES + k_byte + c * 16;
            } else {
                const int p = (row - PA * BM) / BN, r = (row - PA * BM) % BN;
                src = B + ((i64)p * B_ROWS + n0 + r) * ROW_BYTES + k_byte + c * 16;
            }
            arb_cp_async16(dst + row * 128 + ((c ^ (row & 7)) << 4), src, 16);
        }
    };

    float total[ACC]; /* promoted partial sums */
#pragma unroll
    for (int i = 0; i < ACC; i++)
        acc[i] = total[i] = 0.0f;

#pragma unroll
    for (int s = 0; s < AHEAD; s++) {
        if (s < KT)
            load(s, s);
        arb_cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
        arb_cp_async_wait<AHEAD - 1>(); /* slab kt has landed (this thread's part) */
        arb_fence_proxy_async();        /* ... and is visible to wgmma */
        __syncthreads();                /* everyone's part; slab kt - 2 is free */
        if (kt + AHEAD < KT)
            load((kt + AHEAD) % STAGES, kt + AHEAD);
        arb_cp_async_commit();

        const u32 st = sbase + (u32)((kt % STAGES) * STAGE);
        arb_wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) { /* 32 bytes of K per wgmma */
#pragma unroll
            for (int b = 0; b < PB; b++) {
                const u64 db = arb_wgmma_desc(st + PA * A_TILE + b * B_TILE + ks * 32);
#pragma unroll
                for (int a = 0; a < PA; a++)
                    if (arb_tc_term(a, b, PA, PB))
                        arb_tc_op<BN, TF32>::mma(
                            acc, arb_wgmma_desc(st + a * A_TILE + wg * 64 * 128 + ks * 32), db);
            }
        }
        arb_wgmma_commit();
        if (PROMOTE && (kt + 1) % (PROMOTE ? PROMOTE_SLABS : 1) == 0) {
            /* Drain, then add. A second accumulator set, filled while the
             * first is promoted, avoided the drain but measured slower
             * (1866 vs 1496 us at M=8192 N=K=4096 bf16x2, H200): the
             * accumulator choice split the wgmma stream into two paths. */
            arb_wgmma_wait<0>();
            arb_wgmma_pin(acc);
            const int chunk = kt / (PROMOTE ? PROMOTE_SLABS : 1);
#pragma unroll
            for (int i = 0; i < ACC; i++) {
                /* register 4j + 2h + q holds column 8j + 2(lane%4) + q */
                const int col = 8 * (i / 4) + 2 * ((int)threadIdx.x & 3) + (i & 1);
                total[i] = SCALED ? fmaf(acc[i], scale(col, chunk), total[i]) : total[i] + acc[i];
                acc[i] = 0.0f;
            }
        } else {
            arb_wgmma_wait<1>();
        }
    }
    arb_wgmma_wait<0>();
    arb_wgmma_pin(acc);
    if (PROMOTE) /* (a scaled loop ends on a chunk boundary: acc is 0 here) */
#pragma unroll
        for (int i = 0; i < ACC; i++)
            acc[i] += total[i];
}

#endif /* ARB_TC_MAINLOOP_CUH */
