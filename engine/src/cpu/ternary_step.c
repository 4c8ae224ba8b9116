/*
 * ternary_step.c - C reference of ternary_step (SPEC §3), from a given s.
 *
 * Per trit, with s = sign(s_in) (s_in may be a sum of data-parallel ranks'
 * signs: the majority vote): a = T_accum - s; a >= theta and T < 1 -> T += 1, a = 0;
 * a <= -theta and T > -1 -> T -= 1, a = 0; T_accum = clamp(a, -theta, theta).
 * T is repacked in place (atomic byte adds, see cpu_common.h).
 */
#include "cpu_common.h"

arb_status arb_cpu_ternary_step(arb_backend *be, arb_ternary *W, const int8_t *s, int theta,
                                uint64_t *flips)
{
    const int64_t N = W->N, K = W->K;
    uint64_t changed = 0;
#pragma omp parallel for schedule(static) reduction(+ : changed) num_threads(arb_cpu_threads(be))
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) {
            int64_t lin = n * K + k;
            int t = arb_cpu_trit_load(W->T_packed, lin);
            int vote = arb_cpu_sign(s[lin]); /* a sum of ranks' signs votes */
            int delta = arb_cpu_step_one(t, vote, &W->T_accum[lin], theta);
            if (delta) {
                arb_cpu_trit_add(W->T_packed, lin, delta);
                changed++;
            }
        }
    }
    if (flips)
        *flips += changed;
    return ARB_OK;
}
