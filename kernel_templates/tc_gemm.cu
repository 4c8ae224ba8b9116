/*
 * tc_gemm.cu - C[M][N] = sum_p A_p . B^T on Hopper tensor cores (wgmma,
 * sm_90a only), from the operands staged by act_split (A_p, the activation
 * pieces) and ternary_decode (B, the decoded weight), padded as in
 * staged.cuh. K is the reduction. ternary_fwd (B = W) and ternary_grad_x
 * (B = W^T) both end here.
 *
 * Precision (the key's mode): bf16 one piece; bf16x2 two; bf16x3 three, each
 * multiplied by the same exact bf16 weight; tf32 one fp32 plane read as tf32.
 * Multi-piece modes promote: every 128 (bf16x3) or 256 (bf16x2) of K the
 * tensor core's partial sums are added into separate fp32 registers, so its
 * truncating accumulation never runs long (as DeepGEMM does for fp8).
 *
 * Block: BM x BN outputs, BM / 64 warpgroups (WARPS = BM / 16), each owning
 * 64 rows x BN columns (BN/2 fp32 accumulators per thread; BN = 256 only
 * for one-piece modes, whose accumulators are not doubled by promotion). A stage holds one
 * 128-byte K slab (BK = 64 bf16 or 32 tf32) of every A piece and of B, in
 * the 128B-swizzled layout of wgmma_ptx.cuh, loaded by cp.async. STAGES
 * slabs rotate; loads run STAGES - 2 slabs ahead, because one batch of
 * wgmmas stays in flight while the next is issued (wait_group 1) and its
 * slab must not be overwritten.
 *
 * Invariants: the launch gives (STAGES * stage bytes + 1024) of dynamic
 * shared memory (the base is aligned up to 1024 here); grid (ceil(N/BN),
 * ceil(M/BM)) stays inside the padded operands (BM, BN <= ARB_STAGE_ROWS).
 * Reference: engine/src/cpu/staged.c (arb_cpu_tc_gemm).
 */
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

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    tc_gemm_kernel(const u8 *__restrict__ A, const u8 *__restrict__ B, float *__restrict__ C)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    typedef arb_staged<PREC> S;
    constexpr int THREADS = WARPS * 32;
    constexpr i64 MP = ARB_PAD(M, ARB_STAGE_ROWS);
    constexpr i64 ROW_BYTES = (i64)ARB_PAD(K, ARB_STAGE_COLS) * S::ELEM;
    constexpr int KT = (int)(ROW_BYTES / 128);       /* 128-byte K slabs */
    constexpr int A_TILE = BM * 128, B_TILE = BN * 128; /* bytes of one slab */
    constexpr int STAGE = S::PIECES * A_TILE + B_TILE;
    constexpr int ROWS = S::PIECES * BM + BN;          /* 128-byte rows per stage */
    constexpr int AHEAD = STAGES - 2;
    constexpr int ACC = BN / 2;
    constexpr bool PROMOTE = S::PIECES >= 2;
    constexpr int PROMOTE_SLABS = ARB_PROMOTE_K_OF(S::PIECES) * S::ELEM / 128; /* per promotion */
    static_assert(BM % 64 == 0 && WARPS == BM / 16, "one warpgroup per 64 rows");
    static_assert(BN == 64 || BN == 128 || (BN == 256 && !PROMOTE), "wgmma n64, n128, n256");
    static_assert(STAGES >= 3, "a slab in flight, one loading, one computing");
    static_assert(ROWS * 8 % THREADS == 0, "whole 16-byte chunks per thread");

    extern __shared__ __align__(1024) u8 smem_raw[];
    const u32 raw = arb_smem_addr(smem_raw);
    u8 *smem = smem_raw + ((1024u - (raw & 1023u)) & 1023u);
    const u32 sbase = arb_smem_addr(smem);

    const int tid = threadIdx.x, wg = tid >> 7;
    const i64 m0 = (i64)blockIdx.y * BM, n0 = (i64)blockIdx.x * BN;

    /* Slab kt of every A piece and of B into stage s, swizzled: chunk c of
     * a 128-byte row r lands at chunk c ^ (r % 8). */
    auto load = [&](int s, int kt) {
        u8 *dst = smem + s * STAGE;
        const i64 k_byte = (i64)kt * 128;
#pragma unroll
        for (int i = 0; i < ROWS * 8 / THREADS; i++) {
            const int ch = tid + i * THREADS, row = ch >> 3, c = ch & 7;
            const u8 *src;
            if (row < S::PIECES * BM) {
                const int p = row / BM, r = row % BM;
                src = A + ((i64)p * MP + m0 + r) * ROW_BYTES + k_byte + c * 16;
            } else {
                src = B + (n0 + row - S::PIECES * BM) * ROW_BYTES + k_byte + c * 16;
            }
            arb_cp_async16(dst + row * 128 + ((c ^ (row & 7)) << 4), src, 16);
        }
    };

    float acc[ACC], total[ACC]; /* total: promoted partial sums (multi-piece modes) */
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
            const u64 db = arb_wgmma_desc(st + S::PIECES * A_TILE + ks * 32);
#pragma unroll
            for (int p = 0; p < S::PIECES; p++)
                arb_tc_op<BN, S::TF32>::mma(
                    acc, arb_wgmma_desc(st + p * A_TILE + wg * 64 * 128 + ks * 32), db);
        }
        arb_wgmma_commit();
        if (PROMOTE && (kt + 1) % PROMOTE_SLABS == 0) {
            /* Drain, then add. A second accumulator set, filled while the
             * first is promoted, avoided the drain but measured slower
             * (1866 vs 1496 us at M=8192 N=K=4096 bf16x2, H200): the
             * accumulator choice split the wgmma stream into two paths. */
            arb_wgmma_wait<0>();
            arb_wgmma_pin(acc);
#pragma unroll
            for (int i = 0; i < ACC; i++) {
                total[i] += acc[i];
                acc[i] = 0.0f;
            }
        } else {
            arb_wgmma_wait<1>();
        }
    }
    arb_wgmma_wait<0>();
    arb_wgmma_pin(acc);

    /* Accumulator 4j + 2h + q: row 16 * warp + lane/4 + 8h, column 8j + 2(lane%4) + q. */
    const int lane = tid & 31, warp = (tid >> 5) & 3;
#pragma unroll
    for (int j = 0; j < BN / 8; j++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const i64 m = m0 + wg * 64 + warp * 16 + (lane >> 2) + 8 * h;
            const i64 c = n0 + 8 * j + 2 * (lane & 3);
            float v0 = acc[4 * j + 2 * h], v1 = acc[4 * j + 2 * h + 1];
            if (PROMOTE) {
                v0 += total[4 * j + 2 * h];
                v1 += total[4 * j + 2 * h + 1];
            }
            if (m >= M)
                continue;
            if (N % 2 == 0 && c < N) {
                *(float2 *)(C + m * N + c) = make_float2(v0, v1);
            } else {
                if (c < N)
                    C[m * N + c] = v0;
                if (c + 1 < N)
                    C[m * N + c + 1] = v1;
            }
        }
    }
#else
    /* wgmma exists only on sm_90a: the engine refuses this kernel for any
     * other target (arb_kernel_def.arch), so this never runs. */
    static_assert(PREC < 0, "tc_gemm needs --gpu-architecture=sm_90a");
#endif
}
