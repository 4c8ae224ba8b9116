/*
 * update_E_apply.cu - the E rule of update_E (SPEC §3) for each of the
 * G = N*K/GS groups, from the scores the update kernels accumulated:
 * a = E_accum - sign(score); a >= phi: E = min(E+1, E_MAX), a = 0;
 * a <= -phi: E = max(E-1, E_MIN), a = 0; E_accum = clamp(a, -phi, phi).
 * Grid: ceil(G / THREADS). Reference: arb_cpu_apply_E (engine/src/cpu).
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    update_E_apply_kernel(i8 *__restrict__ E, i8 *__restrict__ E_accum,
                          const float *__restrict__ score, int phi, const int *__restrict__ guard)
{
    constexpr i64 G = (i64)N * K / GS;
    i64 g = (i64)blockIdx.x * (WARPS * 32) + threadIdx.x;
    if (g >= G || arb_guarded(guard))
        return;
    arb_e_one(&E[g], &E_accum[g], score[g], phi);
}
