/*
 * update_E.c - C reference of update_E (SPEC §3), two-pass form: the scores
 * come from a materialized gW (mode grad) or s (mode sign), with the T that
 * ternary_step has just written. update_E = group_scores then the E rule;
 * the split form (update_E_scores, update_E_apply) stops between the two so
 * data-parallel ranks can sum their scores.
 */
#include <omp.h>
#include <stdlib.h>

#include "cpu_common.h"

/* The score of every group, in double, into a calloc'ed array (*out). */
static arb_status group_scores(arb_backend *be, const arb_ternary *W, const int8_t *s,
                               const float *gW, arb_e_score score_mode, double **out)
{
    const int64_t N = W->N, K = W->K;
    const size_t groups = arb_scale_groups(N, K, W->gs);
    int threads = arb_cpu_threads(be);
    /* Per thread: a row of values and a row of trits. Each thread's slice is
     * rounded up to 64 bytes so the next thread's floats stay aligned (K odd
     * would misalign them) and no two threads share a cache line. */
    size_t row_bytes = ((size_t)K * (sizeof(float) + sizeof(int8_t)) + 63) & ~(size_t)63;
    char *rows = arb_cpu_scratch(be, (size_t)threads * row_bytes);
    double *score = calloc(groups, sizeof(double));
    double *row_part = calloc((size_t)N, sizeof(double));
    *out = NULL;
    if (!rows || !score || !row_part) {
        free(score);
        free(row_part);
        return ARB_BE_FAIL(be, ARB_ERR_NOMEM, "update_E: out of memory for %zu group scores",
                           groups);
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t n = 0; n < N; n++) {
        char *mine = rows + (size_t)omp_get_thread_num() * row_bytes;
        float *v = (float *)mine;
        int8_t *t = (int8_t *)(mine + (size_t)K * sizeof(float));
        for (int64_t k = 0; k < K; k++) {
            int64_t lin = n * K + k;
            v[k] = score_mode == ARB_E_SCORE_GRAD ? gW[lin] : (float)s[lin];
            t[k] = (int8_t)arb_ternary_get(W->T_packed, (size_t)lin);
        }
        arb_cpu_row_scores(K, W->gs, n, v, t, score, row_part);
    }
    arb_cpu_finish_scores(N, K, W->gs, score, row_part);
    free(row_part);
    *out = score;
    return ARB_OK;
}

arb_status arb_cpu_update_E(arb_backend *be, arb_ternary *W, const int8_t *s, const float *gW,
                            int phi, arb_e_score score_mode)
{
    double *score = NULL;
    arb_status st = group_scores(be, W, s, gW, score_mode, &score);
    if (st == ARB_OK)
        arb_cpu_apply_E(W, score, phi);
    free(score);
    return st;
}

/* Scores of the two-pass update_E as floats (the split form). */
arb_status arb_cpu_update_E_scores(arb_backend *be, const arb_ternary *W, const int8_t *s,
                                   const float *gW, arb_e_score score_mode, float *scores)
{
    double *score = NULL;
    arb_status st = group_scores(be, W, s, gW, score_mode, &score);
    if (st == ARB_OK) {
        size_t groups = arb_scale_groups(W->N, W->K, W->gs);
        for (size_t g = 0; g < groups; g++)
            scores[g] = (float)score[g];
    }
    free(score);
    return st;
}

arb_status arb_cpu_update_E_apply(arb_backend *be, arb_ternary *W, const float *scores, int phi)
{
    const size_t groups = arb_scale_groups(W->N, W->K, W->gs);
    double *score = malloc(groups * sizeof(double));
    if (!score)
        return ARB_BE_FAIL(be, ARB_ERR_NOMEM, "update_E_apply: out of memory");
    for (size_t g = 0; g < groups; g++)
        score[g] = scores[g];
    arb_cpu_apply_E(W, score, phi);
    free(score);
    return ARB_OK;
}
