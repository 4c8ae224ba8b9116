/*
 * step_advance.cu - *step_counter += 1, one thread. Keeps the step counter
 * on the device, so sample_positions inside a replayed graph sees the
 * current step. Reference: arb_cpu_step_advance (engine/src/cpu/glue.c).
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void step_advance_kernel(i64 *step_counter)
{
    if (blockIdx.x == 0 && threadIdx.x == 0)
        *step_counter += 1;
}
