/*
 * ternary_update_direct.c - C reference of the direct updates: for each row
 * of W, build the gW row from gy and x, take s = sign(gW), step the row's
 * trits (theta > 0), then score the row's groups with the new T (phi > 0),
 * and finally step E. Neither gW[N,K] nor s[N,K] is ever materialized: one
 * row of K floats per thread.
 *
 * It computes exactly what grad_weight -> grad_sign -> ternary_step ->
 * update_E compute (same gW rows, same score order), which the tests check.
 */
#include <omp.h>
#include <stdlib.h>

#include "cpu_common.h"

arb_status arb_cpu_ternary_update_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                         const float *x, int64_t M, int theta, int phi,
                                         arb_e_score score_mode, uint64_t *flips)
{
    const int64_t N = W->N, K = W->K;
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
    if (phi > 0) {
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
        if (phi > 0)
            arb_cpu_row_scores(K, W->gs, n, v, t, score, row_part);
    }
    if (flips)
        *flips += changed;
    if (phi > 0) {
        arb_cpu_finish_scores(N, K, W->gs, score, row_part);
        arb_cpu_apply_E(W, score, phi);
    }
out:
    free(score);
    free(row_part);
    return st;
}

/* The direct update's scores alone (no T step, no E step), as floats. */
arb_status arb_cpu_update_E_scores_direct(arb_backend *be, const arb_ternary *W, const float *gy,
                                          const float *x, int64_t M, arb_e_score score_mode,
                                          float *scores)
{
    const int64_t N = W->N, K = W->K;
    const size_t groups = arb_scale_groups(N, K, W->gs);
    int threads = arb_cpu_threads(be);
    size_t row_bytes = ((size_t)K * (2 * sizeof(float) + sizeof(int8_t)) + 63) & ~(size_t)63;
    char *rows = arb_cpu_scratch(be, (size_t)threads * row_bytes);
    double *score = calloc(groups, sizeof(double));
    double *row_part = calloc((size_t)N, sizeof(double));
    arb_status st = ARB_OK;
    if (!rows || !score || !row_part) {
        st = ARB_BE_FAIL(be, ARB_ERR_NOMEM, "update_E_scores_direct: out of memory");
        goto out;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t n = 0; n < N; n++) {
        char *mine = rows + (size_t)omp_get_thread_num() * row_bytes;
        float *g = (float *)mine;
        float *v = g + K;
        int8_t *t = (int8_t *)(v + K);
        arb_cpu_grad_row(gy, x, M, N, K, n, g);
        for (int64_t k = 0; k < K; k++) {
            int64_t lin = n * K + k;
            t[k] = (int8_t)arb_ternary_get(W->T_packed, (size_t)lin);
            v[k] = score_mode == ARB_E_SCORE_GRAD ? g[k] : (float)arb_cpu_sign(g[k]);
        }
        arb_cpu_row_scores(K, W->gs, n, v, t, score, row_part);
    }
    arb_cpu_finish_scores(N, K, W->gs, score, row_part);
    for (size_t g = 0; g < groups; g++)
        scores[g] = (float)score[g];
out:
    free(score);
    free(row_part);
    return st;
}
