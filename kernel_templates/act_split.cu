/*
 * act_split.cu - activations [M][K] fp32 into the tensor-core operand of a
 * precision mode, in the padded layout of staged.cuh (zeros past M and K):
 *
 *   bf16, bf16x2, bf16x3  PIECES planes [Mp][Kp] of bf16: x = hi + lo (+ lo2),
 *                         each piece the round-to-nearest bf16 of what the
 *                         previous ones left (bf16x3 holds every fp32 exactly)
 *   tf32                  one plane [Mp][Kp] of fp32 rounded to tf32 (cvt.rna),
 *                         so the tensor core, which drops the low mantissa
 *                         bits, sees round-to-nearest values
 *
 * VARIANT ARB_VARIANT_TRANS writes the transpose, planes [Kp][Mp'] with K
 * padded to ARB_STAGE_ROWS and M to ARB_STAGE_COLS: the operands of
 * tc_update, which reduces over the batch M.
 *
 * One thread per 8 consecutive elements of a row (16-byte stores per piece);
 * WARPS * 32 threads per block. Transposed: 64 x 64 tiles through shared
 * memory, 256 threads, each writing 16 elements of an output row.
 * Reference: engine/src/cpu/staged.c (arb_cpu_act_split), compared bit for
 * bit.
 */
#include "arb_common.cuh"
#include "mma_ptx.cuh"
#include "staged.cuh"

/* Pieces of 8 floats into `out` at element offset `at` of plane 0 (planes
 * `plane` elements apart): bf16 remainders, or one tf32 plane. */
template <int PREC>
__device__ __forceinline__ void arb_split8(float (&v)[8], void *out, i64 at, i64 plane)
{
    typedef arb_staged<PREC> S;
    if (S::TF32) {
        uint4 *dst = (uint4 *)((u32 *)out + at);
        u32 t[8];
#pragma unroll
        for (int i = 0; i < 8; i++)
            t[i] = arb_to_tf32(v[i]);
        dst[0] = make_uint4(t[0], t[1], t[2], t[3]);
        dst[1] = make_uint4(t[4], t[5], t[6], t[7]);
        return;
    }
#pragma unroll
    for (int p = 0; p < S::PIECES; p++) {
        u32 w[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            w[i] = arb_pack_bf16x2(v[2 * i], v[2 * i + 1]);
            v[2 * i] -= arb_bf16_lo(w[i]); /* the exact remainder */
            v[2 * i + 1] -= arb_bf16_hi(w[i]);
        }
        *(uint4 *)((unsigned short *)out + p * plane + at) = make_uint4(w[0], w[1], w[2], w[3]);
    }
}

/* The transpose: block (bx, by) reads x[64 bx ..][64 by ..] and writes
 * out[64 by + r][64 bx ..]. */
template <int M, int K, int PREC>
__device__ __forceinline__ void arb_split_trans(const float *__restrict__ x, void *out)
{
    constexpr i64 RP = ARB_PAD(K, ARB_STAGE_ROWS), MP = ARB_PAD(M, ARB_STAGE_COLS);
    __shared__ float tile[64][65];
    const int m0 = blockIdx.x * 64, k0 = blockIdx.y * 64;
    /* Read: consecutive threads take consecutive k of a row (coalesced). */
#pragma unroll 4
    for (int i = 0; i < 16; i++) {
        const int e = i * 256 + (int)threadIdx.x, row = e >> 6, col = e & 63;
        const int m = m0 + row, k = k0 + col;
        tile[row][col] = (m < M && k < K) ? x[(i64)m * K + k] : 0.0f;
    }
    __syncthreads();
    /* Write: each thread 16 consecutive m of output row k0 + r. */
    const int r = threadIdx.x >> 2, c0 = (threadIdx.x & 3) * 16;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        float v[8];
#pragma unroll
        for (int i = 0; i < 8; i++)
            v[i] = tile[c0 + 8 * half + i][r];
        arb_split8<PREC>(v, out, (k0 + r) * MP + m0 + c0 + 8 * half, RP * MP);
    }
}

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    act_split_kernel(const float *__restrict__ x, void *__restrict__ out)
{
    if constexpr ((VARIANT & ARB_VARIANT_TRANS) != 0) {
        arb_split_trans<M, K, PREC>(x, out);
        return;
    }
    constexpr i64 MP = ARB_PAD(M, ARB_STAGE_ROWS), KP = ARB_PAD(K, ARB_STAGE_COLS);
    const i64 idx = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (idx >= MP * KP / 8)
        return;
    const i64 m = idx / (KP / 8), k0 = (idx % (KP / 8)) * 8;

    float v[8];
    if (K % 4 == 0 && m < M && k0 + 8 <= K) {
        const float4 *src = (const float4 *)(x + m * K + k0);
        float4 a = src[0], b = src[1];
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
        v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++)
            v[i] = (m < M && k0 + i < K) ? x[m * K + k0 + i] : 0.0f;
    }

    arb_split8<PREC>(v, out, m * KP + k0, MP * KP);
}
