/*
 * ternary_decode.cu - the dense tensor-core operand of a ternary weight:
 * W[n][k] = T * 2^E decoded exactly (E in [-32, 31] fits the 8-bit exponent
 * of bf16 and of fp32/tf32) into bf16 bits (tf32 mode: fp32 bits), in the
 * padded K-major layout of staged.cuh. Exact, so tests compare it bit for bit.
 *
 *   VARIANT 0                 out[n][k], n padded to ARB_STAGE_ROWS, k to _COLS
 *   VARIANT ARB_VARIANT_TRANS out[k][n], k padded to ARB_STAGE_ROWS, n to _COLS
 *                             (grad_x = gy . W reduces over n)
 *   ARB_VARIANT_SCALE_AFTER   T alone (tc_gemm applies 2^E after the MMA)
 *
 * Grid: one block per 64 x 64 tile of W over the padded extents (both are
 * multiples of 64); 256 threads. Each thread decodes 16 trits of a row into
 * shared memory, then writes 16 elements of a row of the output, so both the
 * packed reads and the dense writes stay contiguous in either orientation.
 * Reference: engine/src/cpu/staged.c (arb_cpu_ternary_decode).
 */
#include "arb_common.cuh"
#include "staged.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(256)
    ternary_decode_kernel(const u8 *__restrict__ packed, const i8 *__restrict__ E,
                          void *__restrict__ out)
{
    constexpr bool TRANS = (VARIANT & ARB_VARIANT_TRANS) != 0;
    constexpr bool SCALE_AFTER = (VARIANT & ARB_VARIANT_SCALE_AFTER) != 0; /* T alone */
    constexpr bool WIDE = arb_staged<PREC>::TF32;
    constexpr int OUT_COLS = TRANS ? ARB_PAD(N, ARB_STAGE_COLS) : ARB_PAD(K, ARB_STAGE_COLS);
    __shared__ u32 tile[64][65]; /* bits of W[n0 + i][k0 + j]; +1 column: fewer bank conflicts */

    const int n0 = blockIdx.y * 64, k0 = blockIdx.x * 64;
    const int r = threadIdx.x >> 2, c0 = (threadIdx.x & 3) * 16;
    {
        /* The (at most five) bytes holding the thread's 16 trits are loaded
         * first, independently; then the digits are walked in order with
         * constant divisions by 3 (multiply-shifts). */
        const int n = n0 + r, k_first = k0 + c0;
        const int valid = n < N ? min(16, K - k_first) : 0;
        const i64 lin = (i64)n * K + k_first;
        const i64 first = lin / 5, last = valid > 0 ? (lin + valid - 1) / 5 : first;
        u32 bytes[5]; /* 16 trits from digit 0..4 span at most 4 bytes */
#pragma unroll
        for (int b = 0; b < 5; b++)
            bytes[b] = valid > 0 && first + b <= last ? (u32)packed[first + b] : 121u; /* 0s */
        /* GS >= 16: the 16 trits span at most two groups, whose exponents
         * are loaded once (per-trit loads of E cost a third of the time). */
        const i64 g_first = lin / GS;
        const int split = (int)((g_first + 1) * GS - lin); /* first trit of the next group */
        const u32 e_first = valid > 0 ? (u32)(E[g_first] + 127) : 127u;
        const u32 e_next = valid > split ? (u32)(E[g_first + 1] + 127) : 127u;
        u32 digit = (u32)(lin % 5);
        u32 v = bytes[0] / arb_pow3(digit);
        int at = 0;
#pragma unroll
        for (int i = 0; i < 16; i++) {
            u32 bits = 0u;
            if (i < valid) {
                const u32 code = v % 3u; /* T + 1 */
                const u32 e = SCALE_AFTER ? 127u
                              : GS >= 16  ? (i < split ? e_first : e_next)
                                          : (u32)(E[(lin + i) / GS] + 127);
                if (code != 1u) /* sign from the code, exponent E + 127, mantissa 0 */
                    bits = WIDE ? ((u32)(code == 0u) << 31 | e << 23)
                                : ((u32)(code == 0u) << 15 | e << 7);
            }
            tile[r][c0 + i] = bits;
            v /= 3u;
            if (++digit == 5u) {
                digit = 0u;
                at++;
                v = at < 5 ? bytes[at] : 121u;
            }
        }
    }
    __syncthreads();

    const i64 row = (TRANS ? k0 : n0) + r, col = (TRANS ? n0 : k0) + c0;
    u32 v[16];
#pragma unroll
    for (int i = 0; i < 16; i++)
        v[i] = TRANS ? tile[c0 + i][r] : tile[r][c0 + i];
    if (WIDE) {
        uint4 *dst = (uint4 *)((u32 *)out + row * OUT_COLS + col);
#pragma unroll
        for (int q = 0; q < 4; q++)
            dst[q] = make_uint4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
    } else {
        uint4 *dst = (uint4 *)((unsigned short *)out + row * OUT_COLS + col);
#pragma unroll
        for (int q = 0; q < 2; q++)
            dst[q] = make_uint4(v[8 * q] | v[8 * q + 1] << 16, v[8 * q + 2] | v[8 * q + 3] << 16,
                                v[8 * q + 4] | v[8 * q + 5] << 16, v[8 * q + 6] | v[8 * q + 7] << 16);
    }
}
