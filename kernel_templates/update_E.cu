/*
 * update_E.cu - the scores of the two-pass update_E (SPEC §3): for each
 * element, v = gW * T (VARIANT & E_GRAD) or s * T (E_SIGN) with the current
 * (already stepped) T, summed per group into score[g] (zeroed by the op).
 * update_E_apply then steps E. Each thread covers TM consecutive elements
 * and adds one partial sum per group it touches.
 * Grid: ceil(N*K / (THREADS*TM)). Reference: engine/src/cpu/update_E.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    update_E_kernel(const u8 *__restrict__ packed, const float *__restrict__ gW,
                    const i8 *__restrict__ s, float *__restrict__ score,
                    const int *__restrict__ guard)
{
    constexpr bool E_GRAD = (VARIANT & ARB_VARIANT_E_GRAD) != 0;
    constexpr i64 NK = (i64)N * K;
    if (arb_guarded(guard))
        return;
    i64 start = ((i64)blockIdx.x * (WARPS * 32) + threadIdx.x) * TM;
    int run_group = -1;
    float run = 0.0f;
#pragma unroll
    for (int r = 0; r < TM; r++) {
        i64 lin = start + r;
        if (lin >= NK)
            break;
        float v = (E_GRAD ? gW[lin] : (float)s[lin]) * (float)arb_trit(packed, lin);
        int group = (int)(lin / GS);
        if (group != run_group) {
            if (run_group >= 0)
                atomicAdd(&score[run_group], run);
            run_group = group;
            run = 0.0f;
        }
        run += v;
    }
    if (run_group >= 0)
        atomicAdd(&score[run_group], run);
}
