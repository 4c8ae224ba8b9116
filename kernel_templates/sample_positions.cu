/*
 * sample_positions.cu - the training batch's positions, drawn on the GPU from
 * (seed, *step_counter, i) with splitmix64, so a step needs no upload and a
 * captured graph draws a fresh batch per replay. Shape: M positions.
 * Grid: ceil(M / THREADS). Reference: arb_sample_position (engine/src/ops.c).
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    sample_positions_kernel(u64 seed, const i64 *__restrict__ step_counter, i64 lo, i64 hi,
                            i64 *__restrict__ pos)
{
    i64 i = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (i >= M)
        return;
    u64 z = seed + (u64)*step_counter * 0x9E3779B97F4A7C15ULL + (u64)i * 0xD1B54A32D192ED03ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    pos[i] = lo + (i64)(z % (u64)(hi - lo));
}
