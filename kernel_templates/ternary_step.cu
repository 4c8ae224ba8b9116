/*
 * ternary_step.cu - ternary_step from a materialized s (SPEC §3; s may be a
 * sum of data-parallel ranks' signs, and its sign votes), one thread
 * per packed byte: the thread owns the byte's five trits, steps each, and
 * writes the repacked byte once (no atomics needed). Padding trits past N*K
 * stay zero. Grid: ceil(bytes / THREADS). Reference: engine/src/cpu/ternary_step.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    ternary_step_kernel(u8 *__restrict__ packed, i8 *__restrict__ T_accum,
                        const i8 *__restrict__ s, int theta, const int *__restrict__ guard,
                        u64 *__restrict__ flips)
{
    constexpr i64 NK = (i64)N * K;
    constexpr i64 BYTES = (NK + 4) / 5;
    i64 b = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (arb_guarded(guard))
        return;
    u64 changed = 0;
    if (b < BYTES) {
        u32 byte = packed[b];
        u32 repacked = 0;
#pragma unroll
        for (int i = 0; i < 5; i++) {
            i64 lin = 5 * b + i;
            int t = arb_byte_trit(byte, (u32)i);
            if (lin < NK) {
                int vote = (s[lin] > 0) - (s[lin] < 0); /* ranks' summed signs vote */
                int delta = arb_step_one(t, vote, &T_accum[lin], theta);
                t += delta;
                changed += delta != 0;
            }
            repacked += (u32)(t + 1) * arb_pow3((u32)i);
        }
        packed[b] = (u8)repacked;
    }
    if (flips) {
        changed = arb_warp_sum_u64(changed);
        if ((threadIdx.x & 31) == 0 && changed)
            atomicAdd(flips, changed);
    }
}
