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
 * One thread per 8 consecutive elements of a row (16-byte stores per piece);
 * WARPS * 32 threads per block. Reference: engine/src/cpu/staged.c
 * (arb_cpu_act_split), compared bit for bit.
 */
#include "arb_common.cuh"
#include "mma_ptx.cuh"
#include "staged.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    act_split_kernel(const float *__restrict__ x, void *__restrict__ out)
{
    typedef arb_staged<PREC> S;
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

    if (S::TF32) {
        uint4 *dst = (uint4 *)((u32 *)out + m * KP + k0);
        u32 t[8];
#pragma unroll
        for (int i = 0; i < 8; i++)
            t[i] = arb_to_tf32(v[i]);
        dst[0] = make_uint4(t[0], t[1], t[2], t[3]);
        dst[1] = make_uint4(t[4], t[5], t[6], t[7]);
    } else {
#pragma unroll
        for (int p = 0; p < S::PIECES; p++) {
            u32 w[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                w[i] = arb_pack_bf16x2(v[2 * i], v[2 * i + 1]);
                v[2 * i] -= arb_bf16_lo(w[i]); /* the exact remainder */
                v[2 * i + 1] -= arb_bf16_hi(w[i]);
            }
            *(uint4 *)((unsigned short *)out + ((i64)p * MP + m) * KP + k0) =
                make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}
