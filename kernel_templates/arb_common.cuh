/*
 * arb_common.cuh - definitions every arb kernel template shares.
 *
 * Templates are compiled at run time by NVRTC with no include path: they may
 * include only the project's own headers (this one and its siblings), which
 * are embedded into libarb together with them. So no <cstdint>, no
 * <cuda_bf16.h>: the fixed-width types and the few intrinsics we need are
 * defined or wrapped here.
 *
 * Every kernel is a template over the specialization (ARB_SPEC_PARAMS): the
 * shape, the block configuration, the precision mode and a variant, all
 * compile-time constants (see engine/include/arb/kernels.h).
 */
#ifndef ARB_COMMON_CUH
#define ARB_COMMON_CUH

#define ARB_SPEC_PARAMS                                                                            \
    int M, int N, int K, int GS, int BM, int BN, int BK, int TM, int TN, int WARPS, int STAGES,    \
        int PREC, int VARIANT

typedef signed char i8;
typedef unsigned char u8;
typedef int i32;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

/* Precision modes, as arb_precision in backend.h. */
#define ARB_PREC_FP32 0
#define ARB_PREC_TF32 1
#define ARB_PREC_BF16 2
#define ARB_PREC_BF16X2 3
#define ARB_PREC_BF16X3 4

/* Variant flags, as in kernels.h. */
#define ARB_VARIANT_STEP 1
#define ARB_VARIANT_E_GRAD 2
#define ARB_VARIANT_E_SIGN 4
#define ARB_VARIANT_E_IN_TILE 8
#define ARB_VARIANT_E_SCORES_ONLY 16

#define ARB_E_MIN (-32)
#define ARB_E_MAX 31

/* 3^i for i in 0..4, without a local array (which would live in local memory). */
__device__ __forceinline__ u32 arb_pow3(u32 i)
{
    return i == 0 ? 1u : i == 1 ? 3u : i == 2 ? 9u : i == 3 ? 27u : 81u;
}

/* Digit i (0..4) of a packed byte, as T in {-1, 0, +1}. */
__device__ __forceinline__ int arb_byte_trit(u32 byte, u32 i)
{
    return (int)((byte / arb_pow3(i)) % 3u) - 1;
}

/* The trit at linear index lin. */
__device__ __forceinline__ int arb_trit(const u8 *packed, i64 lin)
{
    return arb_byte_trit(packed[lin / 5], (u32)(lin % 5));
}

/* A shared-memory table of the 243 valid bytes: entry b holds the five
 * digits of b, two bits each (digit i at bits 2i..2i+1). Built by a block
 * at kernel start; a table lookup replaces a division by a run-time power
 * of three in the GEMM loaders. */
#define ARB_TRIT_LUT_SIZE 243

template <int THREADS>
__device__ __forceinline__ void arb_trit_lut_build(unsigned short *lut)
{
    for (int b = threadIdx.x; b < ARB_TRIT_LUT_SIZE; b += THREADS) {
        int v = b;
        unsigned short bits = 0;
        for (int i = 0; i < 5; i++) {
            bits |= (unsigned short)((v % 3) << (2 * i));
            v /= 3;
        }
        lut[b] = bits;
    }
}

/* T at lin through the table. */
__device__ __forceinline__ int arb_trit_lut(const unsigned short *lut, const u8 *packed, int lin)
{
    return (int)((lut[packed[lin / 5]] >> (2 * (lin % 5))) & 3u) - 1;
}

/* 2^e as a float (e in [-32, 31]: a normal float, built from its bits). */
__device__ __forceinline__ float arb_pow2(int e) { return __uint_as_float((u32)(e + 127) << 23); }

/* The decoded weight T * 2^E at lin. */
template <int GS>
__device__ __forceinline__ float arb_weight(const u8 *packed, const i8 *E, i64 lin)
{
    return (float)arb_trit(packed, lin) * arb_pow2(E[lin / GS]);
}

/* Add delta (-1 or +1) to the trit at lin in place. The byte changes by
 * delta * 3^i and stays within 0..242, so a 32-bit atomic add on the
 * aligned word holding it never carries into a neighbouring byte. Packed
 * buffers are allocated rounded up to 4 bytes (arb_packed_alloc_size), so
 * the word is always inside the allocation. */
__device__ __forceinline__ void arb_trit_add(u8 *packed, i64 lin, int delta)
{
    i64 byte = lin / 5;
    u32 *word = (u32 *)(packed + (byte & ~(i64)3));
    u32 shift = (u32)(byte & 3) * 8u;
    u32 add = (u32)(delta * (int)arb_pow3((u32)(lin % 5))) << shift;
    atomicAdd(word, add);
}

/* The trit rule of ternary_step (SPEC §3); returns the change of T. */
__device__ __forceinline__ int arb_step_one(int t, int s, i8 *accum, int theta)
{
    int a = (int)*accum - s;
    int delta = 0;
    if (a >= theta && t < 1) {
        delta = 1;
        a = 0;
    } else if (a <= -theta && t > -1) {
        delta = -1;
        a = 0;
    }
    a = a > theta ? theta : (a < -theta ? -theta : a);
    *accum = (i8)a;
    return delta;
}

/* The E rule of update_E (SPEC §3) for one group. */
__device__ __forceinline__ void arb_e_one(i8 *E, i8 *E_accum, float score, int phi)
{
    int s = (score > 0.0f) - (score < 0.0f);
    int a = (int)*E_accum - s;
    int e = *E;
    if (a >= phi) {
        e = e + 1 > ARB_E_MAX ? ARB_E_MAX : e + 1;
        a = 0;
    } else if (a <= -phi) {
        e = e - 1 < ARB_E_MIN ? ARB_E_MIN : e - 1;
        a = 0;
    }
    a = a > phi ? phi : (a < -phi ? -phi : a);
    *E = (i8)e;
    *E_accum = (i8)a;
}

__device__ __forceinline__ int arb_sign(float v) { return (v > 0.0f) - (v < 0.0f); }

/* Sums over a warp (all 32 lanes must call). */
__device__ __forceinline__ float arb_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ u64 arb_warp_sum_u64(u64 v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float arb_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Block-wide sum for a block of WARPS warps; every thread gets the result.
 * `scratch` holds at least 32 floats of shared memory; the call ends with
 * a barrier, so it may be reused right after. */
template <int WARPS>
__device__ __forceinline__ float arb_block_sum(float v, float *scratch)
{
    v = arb_warp_sum(v);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < WARPS; w++)
        total += scratch[w];
    __syncthreads();
    return total;
}

template <int WARPS>
__device__ __forceinline__ float arb_block_max(float v, float *scratch)
{
    v = arb_warp_max(v);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    float best = scratch[0];
    for (int w = 1; w < WARPS; w++)
        best = fmaxf(best, scratch[w]);
    __syncthreads();
    return best;
}

/* Nonzero when the training step's guard says "do not update". */
__device__ __forceinline__ bool arb_guarded(const int *guard) { return guard && *guard != 0; }

#endif /* ARB_COMMON_CUH */
