/*
 * ternary_update_direct.c - C reference of the direct updates: for each row
 * of W, build the gW row from gy and x, take s = sign(gW), step the row's
 * trits (theta > 0), then score the row's groups with the new T (phi > 0),
 * and finally step E. Neither gW[N,K] nor s[N,K] is ever materialized: one
 * row of K floats per thread.
 *
 * It computes exactly what grad_weight -> grad_sign -> ternary_step ->
 * update_E compute (same gW rows, same score order), which the tests check.
 * update_E_scores_direct is the same pass stopped before the E rule, its
 * scores handed out as floats (data-parallel ranks sum them first).
 */
#include <omp.h>
#include <stdlib.h>

#include "cpu_common.h"

/* One pass over W. theta > 0 steps T; with scores_out (non-NULL) or phi > 0
 * the group scores are computed with the (new) T, then written to scores_out
 * or, without it, handed to the E rule. */
static arb_status direct_pass(arb_backend *be, arb_ternary *W, const float *gy, const float *x,
                              int64_t M, int theta, int phi, arb_e_score score_mode,
                              uint64_t *flips, float *scores_out)
{
    const int64_t N = W->N, K = W->K;
    const int want_scores = scores_out != NULL || phi > 0;
    const size_t groups = arb_scale_groups(N, K, W->gs);
    int threads = arb_cpu_threads(be);
    /* Per thread: gW row, score values, trits; rounded up to 64 bytes so the
     * next thread's floats stay aligned (K odd would misalign them). */
    size_t row_bytes = ((size_t)K * (2 * sizeof(float) + sizeof(int8_t)) + 63) & ~(size_t)63;
    char *rows = arb_cpu_scratch(be, (size_t)threads * row_bytes);
    double *score = NULL, *row_part = NULL;
    arb_status st = ARB_OK;
    if (!rows)
        return be->err.status;
    if (want_scores) {
        score = calloc(groups, sizeof(double));
        row_part = calloc((size_t)N, sizeof(double));
        if (!score || !row_part) {
            st = ARB_BE_FAIL(be, ARB_ERR_NOMEM, "update_direct: out of memory for %zu scores",
                             groups);
            goto out;
        }
    }
    uint64_t changed = 0;
#pragma omp parallel for schedule(static) reduction(+ : changed) num_threads(threads)
    for (int64_t n = 0; n < N; n++) {
        char *mine = rows + (size_t)omp_get_thread_num() * row_bytes;
        float *g = (float *)mine;
        float *v = g + K;
        int8_t *t = (int8_t *)(v + K);
        arb_cpu_grad_row(gy, x, M, N, K, n, g);
        for (int64_t k = 0; k < K; k++) {
            int64_t lin = n * K + k;
            int s = arb_cpu_sign(g[k]);
            int trit = arb_cpu_trit_load(W->T_packed, lin);
            if (theta > 0) {
                int delta = arb_cpu_step_one(trit, s, &W->T_accum[lin], theta);
                if (delta) {
                    arb_cpu_trit_add(W->T_packed, lin, delta);
                    trit += delta;
                    changed++;
                }
            }
            t[k] = (int8_t)trit;
            v[k] = score_mode == ARB_E_SCORE_GRAD ? g[k] : (float)s;
        }
        if (want_scores)
            arb_cpu_row_scores(K, W->gs, n, v, t, score, row_part);
    }
    if (flips)
        *flips += changed;
    if (want_scores) {
        arb_cpu_finish_scores(N, K, W->gs, score, row_part);
        if (scores_out)
            for (size_t gi = 0; gi < groups; gi++)
                scores_out[gi] = (float)score[gi];
        else
            arb_cpu_apply_E(W, score, phi);
    }
out:
    free(score);
    free(row_part);
    return st;
}

arb_status arb_cpu_ternary_update_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                         const float *x, int64_t M, int theta, int phi,
                                         arb_e_score score_mode, uint64_t *flips)
{
    return direct_pass(be, W, gy, x, M, theta, phi, score_mode, flips, NULL);
}

arb_status arb_cpu_update_E_scores_direct(arb_backend *be, const arb_ternary *W, const float *gy,
                                          const float *x, int64_t M, arb_e_score score_mode,
                                          float *scores)
{
    /* theta = 0: no T step, so W is only read. */
    return direct_pass(be, (arb_ternary *)W, gy, x, M, 0, 0, score_mode, NULL, scores);
}
