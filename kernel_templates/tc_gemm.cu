/*
 * tc_gemm.cu - C[M][N] = sum_p A_p . B^T on Hopper tensor cores (wgmma,
 * sm_90a only), from the operands staged by act_split (A_p, the activation
 * pieces) and ternary_decode (B, the decoded weight), padded as in
 * staged.cuh. K is the reduction. ternary_fwd (B = W) and ternary_grad_x
 * (B = W^T) both end here; the main loop is tc_mainloop.cuh.
 *
 * Precision (the key's mode): bf16 one piece; bf16x2 two; bf16x3 three, each
 * multiplied by the same exact bf16 weight; tf32 one fp32 plane read as tf32.
 * Multi-piece modes promote: every 256 (bf16x2) or 128 (bf16x3) of K the
 * tensor core's partial sums are added into separate fp32 registers, so its
 * truncating accumulation never runs long (as DeepGEMM does for fp8).
 *
 * VARIANT ARB_VARIANT_SCALE_AFTER (forward only): B holds T alone, and each
 * K-group's partial sums are multiplied by 2^E as they are promoted, instead
 * of E being decoded into B. E is read only then (else unused).
 *
 * Block: BM x BN outputs, WARPS = BM / 16; BN = 256 only for one-piece
 * modes, whose accumulators are not doubled by promotion. Grid (ceil(N/BN),
 * ceil(M/BM)). Reference: engine/src/cpu/staged.c (arb_cpu_tc_gemm).
 */
#include "arb_common.cuh"
#include "staged.cuh"
#include "tc_mainloop.cuh"

/* 2^E of output column n0 + col for K-group `chunk` (SCALE_AFTER): the
 * weight's groups run along its rows, GS / K_SLAB slabs each. */
template <int N, int K, int GS>
struct arb_tc_group_scale {
    const i8 *E;
    i64 n0;
    __device__ __forceinline__ float operator()(int col, int chunk) const
    {
        const i64 n = n0 + col;
        return n < N ? arb_pow2(E[(n * K) / GS + chunk]) : 0.0f;
    }
};

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    tc_gemm_kernel(const u8 *__restrict__ A, const u8 *__restrict__ B, const i8 *__restrict__ E,
                   float *__restrict__ C)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    typedef arb_staged<PREC> S;
    constexpr i64 ROW_BYTES = (i64)ARB_PAD(K, ARB_STAGE_COLS) * S::ELEM;
    constexpr bool SCALE_AFTER = (VARIANT & ARB_VARIANT_SCALE_AFTER) != 0;
    constexpr int K_SLAB = 128 / S::ELEM;
    /* Scaled: a chunk is one K-group (the engine checks GS % K_SLAB == 0 and K % GS == 0). */
    constexpr int PROMOTE_SLABS =
        SCALE_AFTER ? GS / K_SLAB
                    : (S::PIECES >= 2 ? ARB_PROMOTE_K_OF(S::PIECES) * S::ELEM / 128 : 0);
    extern __shared__ __align__(1024) u8 smem_raw[];
    const i64 m0 = (i64)blockIdx.y * BM, n0 = (i64)blockIdx.x * BN;
    float acc[BN / 2];
    if constexpr (SCALE_AFTER) {
        static_assert(GS % K_SLAB == 0 && K % GS == 0, "groups of whole slabs along rows");
        arb_tc_mainloop<BM, BN, STAGES, WARPS * 32, S::TF32, S::PIECES, 1, PROMOTE_SLABS,
                        ARB_PAD(M, ARB_STAGE_ROWS), ARB_PAD(N, ARB_STAGE_ROWS), ROW_BYTES>(
            A, B, m0, n0, smem_raw, acc, arb_tc_group_scale<N, K, GS>{E, n0});
    } else {
        arb_tc_mainloop<BM, BN, STAGES, WARPS * 32, S::TF32, S::PIECES, 1, PROMOTE_SLABS,
                        ARB_PAD(M, ARB_STAGE_ROWS), ARB_PAD(N, ARB_STAGE_ROWS), ROW_BYTES>(
            A, B, m0, n0, smem_raw, acc);
    }

    const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31, warp = (tid >> 5) & 3;
#pragma unroll
    for (int j = 0; j < BN / 8; j++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const i64 m = m0 + wg * 64 + warp * 16 + (lane >> 2) + 8 * h;
            const i64 c = n0 + 8 * j + 2 * (lane & 3);
            const float v0 = acc[4 * j + 2 * h], v1 = acc[4 * j + 2 * h + 1];
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
