/*
 * reference.c - the float64 references of every op, written from SPEC §3
 * alone: naive loops in SPEC order, double accumulation, no call into
 * engine/src/cpu (the backend under test). Integer rules are spelled out
 * again here, line by line, so a slip in the engine's copy shows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- GEMMs ------------------------------------------------------------------ */

void th_ref_weight(const th_hw *w, double *W)
{
    for (int64_t lin = 0; lin < w->N * w->K; lin++)
        W[lin] = (double)w->T[lin] * ldexp(1.0, w->E[lin / w->gs]); /* T * 2^E[g], g = lin/gs */
}

void th_ref_ternary_fwd(const th_hw *w, const float *x, int64_t M, double *y)
{
    const int64_t N = w->N, K = w->K;
    double *W = malloc((size_t)(N * K) * sizeof(double));
    th_ref_weight(w, W);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double sum = 0.0; /* y[m,n] = sum_k x[m,k] * W[n,k] */
            for (int64_t k = 0; k < K; k++)
                sum += (double)x[m * K + k] * W[n * K + k];
            y[m * N + n] = sum;
        }
    free(W);
}

void th_ref_ternary_grad_x(const th_hw *w, const float *gy, int64_t M, double *gx)
{
    const int64_t N = w->N, K = w->K;
    double *W = malloc((size_t)(N * K) * sizeof(double));
    th_ref_weight(w, W);
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) {
            double sum = 0.0; /* gx[m,k] = sum_n gy[m,n] * W[n,k] */
            for (int64_t n = 0; n < N; n++)
                sum += (double)gy[m * N + n] * W[n * K + k];
            gx[m * K + k] = sum;
        }
    free(W);
}

void th_ref_grad_weight(const float *gy, const float *x, int64_t M, int64_t N, int64_t K,
                        double *gW)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            double sum = 0.0; /* gW[n,k] = sum_m gy[m,n] * x[m,k] */
            for (int64_t m = 0; m < M; m++)
                sum += (double)gy[m * N + n] * (double)x[m * K + k];
            gW[n * K + k] = sum;
        }
}

/* ||a[:, j]|| of a rows x cols row-major matrix. */
static void col_norms(const float *a, int64_t rows, int64_t cols, double *norm)
{
    for (int64_t j = 0; j < cols; j++) {
        double ss = 0.0;
        for (int64_t i = 0; i < rows; i++)
            ss += (double)a[i * cols + j] * (double)a[i * cols + j];
        norm[j] = sqrt(ss);
    }
}

void th_ref_sign_bounds(const float *gy, const float *x, int64_t M, int64_t N, int64_t K,
                        double *bound)
{
    double *gn = malloc((size_t)N * sizeof(double)), *xn = malloc((size_t)K * sizeof(double));
    col_norms(gy, M, N, gn);
    col_norms(x, M, K, xn);
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            bound[n * K + k] = TH_SIGN_REL * gn[n] * xn[k];
    free(gn);
    free(xn);
}

void th_ref_signs(const double *v, size_t n, int8_t *s)
{
    for (size_t i = 0; i < n; i++)
        s[i] = (int8_t)((v[i] > 0.0) - (v[i] < 0.0)); /* sign(0) = 0 */
}

/* ---- integer updates ---------------------------------------------------------- */

uint64_t th_ref_ternary_step(th_hw *w, const int8_t *s, int theta)
{
    uint64_t flips = 0;
    for (size_t lin = 0; lin < th_hw_count(w); lin++) {
        int t = w->T[lin];
        int vote = (s[lin] > 0) - (s[lin] < 0); /* s may sum ranks' signs: its sign votes */
        int a = w->T_accum[lin] - vote;         /* a = T_accum - s */
        if (a >= theta && t < 1) {        /* enough votes up, room to move: T += 1 */
            t += 1;
            a = 0;
        } else if (a <= -theta && t > -1) { /* enough votes down: T -= 1 */
            t -= 1;
            a = 0;
        }
        if (a > theta) /* T_accum = clamp(a, -theta, theta) */
            a = theta;
        if (a < -theta)
            a = -theta;
        flips += t != w->T[lin];
        w->T[lin] = (int8_t)t;
        w->T_accum[lin] = (int8_t)a;
    }
    return flips;
}

void th_ref_E_rule(int8_t *E, int8_t *E_accum, int score_sign, int phi)
{
    int e = *E;
    int a = *E_accum - score_sign; /* a = E_accum - sign(score) */
    if (a >= phi) {                /* E = min(E + 1, E_MAX) */
        e = e + 1 > ARB_E_MAX ? ARB_E_MAX : e + 1;
        a = 0;
    } else if (a <= -phi) { /* E = max(E - 1, E_MIN) */
        e = e - 1 < ARB_E_MIN ? ARB_E_MIN : e - 1;
        a = 0;
    }
    if (a > phi) /* E_accum = clamp(a, -phi, phi) */
        a = phi;
    if (a < -phi)
        a = -phi;
    *E = (int8_t)e;
    *E_accum = (int8_t)a;
}

void th_ref_group_scores(const th_hw *w, const double *v, double *score, double *mag)
{
    size_t groups = th_hw_groups(w);
    memset(score, 0, groups * sizeof(double));
    memset(mag, 0, groups * sizeof(double));
    for (size_t lin = 0; lin < th_hw_count(w); lin++) {
        double p = v[lin] * (double)w->T[lin]; /* score[g] = sum_{lin in g} v * T */
        score[lin / (size_t)w->gs] += p;
        mag[lin / (size_t)w->gs] += fabs(p);
    }
}

int th_check_update_E(const th_case *c, const th_hw *before, const th_hw *got,
                      const double *score, const double *mag, int phi, double rel)
{
    size_t groups = th_hw_groups(before);
    int bad = 0, shown = 0;
    for (size_t g = 0; g < groups; g++) {
        int sure = mag[g] == 0.0 || fabs(score[g]) > rel * mag[g];
        int sign = (score[g] > 0.0) - (score[g] < 0.0);
        int match = 0;
        for (int sigma = -1; sigma <= 1 && !match; sigma++) {
            if (sure && sigma != sign)
                continue;
            int8_t e = before->E[g], a = before->E_accum[g];
            th_ref_E_rule(&e, &a, sigma, phi);
            match = e == got->E[g] && a == got->E_accum[g];
        }
        if (!match) {
            if (!bad)
                th_fail(c, "E/E_accum", "the E rule gives another outcome (phi=%d)", phi);
            bad++;
            if (shown++ < 5) {
                int8_t e = before->E[g], a = before->E_accum[g];
                th_ref_E_rule(&e, &a, sign, phi);
                th_fail(c, "E/E_accum",
                        "group %zu: score %.6g (|v*T| sum %.6g), before E=%d E_accum=%d: got "
                        "E=%d E_accum=%d, want E=%d E_accum=%d",
                        g, score[g], mag[g], before->E[g], before->E_accum[g], got->E[g],
                        got->E_accum[g], e, a);
            }
            if (bad >= 10)
                break;
        }
    }
    return !bad;
}

int th_check_scores(const th_case *c, const char *what, const float *got, const double *ref,
                     const double *mag, size_t groups, double rel)
{
    int bad = 0, shown = 0;
    for (size_t g = 0; g < groups; g++) {
        /* rel = 0: exact (integer sums); else within rel * sum|v*T|, which
         * keeps every sign outside the SPEC's band right. */
        double err = fabs((double)got[g] - ref[g]);
        int exact = rel == 0.0 || mag[g] == 0.0;
        int ok = isfinite(got[g]) && (exact ? err == 0.0 : err <= rel * mag[g]);
        if (!ok) {
            if (!bad)
                th_fail(c, what, "group scores differ from the reference (tolerance %g of "
                                 "sum |v*T|)", rel);
            bad++;
            if (shown++ < 5)
                th_fail(c, what, "group %zu: got %.9g, want %.9g (sum |v*T| %.6g)", g,
                        (double)got[g], ref[g], mag[g]);
            if (bad >= 10)
                break;
        }
    }
    return !bad;
}

/* ---- RMSNorm -------------------------------------------------------------------- */

void th_ref_rmsnorm_fwd(const th_hw *w, const float *x, int64_t B, double *out)
{
    const int64_t D = w->K;
    double *wd = malloc((size_t)D * sizeof(double));
    th_ref_weight(w, wd);
    for (int64_t b = 0; b < B; b++) {
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)x[b * D + d] * (double)x[b * D + d];
        double r = sqrt(ss / (double)D + 1e-6); /* r_b = sqrt(mean_d x^2 + 1e-6) */
        for (int64_t d = 0; d < D; d++)
            out[b * D + d] = (double)x[b * D + d] / r * wd[d];
    }
    free(wd);
}

void th_ref_rmsnorm_bwd(const th_hw *w, const float *x, const float *gy, int64_t B, double *gx)
{
    const int64_t D = w->K;
    double *wd = malloc((size_t)D * sizeof(double));
    th_ref_weight(w, wd);
    for (int64_t b = 0; b < B; b++) {
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)x[b * D + d] * (double)x[b * D + d];
        double r = sqrt(ss / (double)D + 1e-6);
        double mean = 0.0; /* mean_d(xhat * gy * w) */
        for (int64_t d = 0; d < D; d++)
            mean += (double)x[b * D + d] / r * (double)gy[b * D + d] * wd[d];
        mean /= (double)D;
        for (int64_t d = 0; d < D; d++) {
            double xhat = (double)x[b * D + d] / r;
            gx[b * D + d] = ((double)gy[b * D + d] * wd[d] - xhat * mean) / r;
        }
    }
    free(wd);
}

/* ---- embedding ------------------------------------------------------------------- */

void th_ref_embed_fwd(const th_hw *table, const int32_t *idx, int64_t M, double *out)
{
    const int64_t D = table->K;
    for (int64_t i = 0; i < M; i++)
        for (int64_t d = 0; d < D; d++) {
            int64_t lin = (int64_t)idx[i] * D + d; /* out[i,d] = W[idx_i, d] */
            out[i * D + d] = (double)table->T[lin] * ldexp(1.0, table->E[lin / table->gs]);
        }
}

void th_ref_embed_bwd(int64_t V, int64_t D, const int32_t *idx, const float *gout, int64_t M,
                      double *acc, double *bound)
{
    double *count = calloc((size_t)V, sizeof(double));
    double *gnorm = malloc((size_t)D * sizeof(double));
    memset(acc, 0, (size_t)(V * D) * sizeof(double));
    for (int64_t i = 0; i < M; i++) {
        count[idx[i]] += 1.0;
        for (int64_t d = 0; d < D; d++) /* acc[v,d] = sum_{i: idx_i = v} gout[i,d] */
            acc[(int64_t)idx[i] * D + d] += (double)gout[i * D + d];
    }
    col_norms(gout, M, D, gnorm);
    for (int64_t v = 0; v < V; v++)
        for (int64_t d = 0; d < D; d++)
            bound[v * D + d] = TH_SIGN_REL * sqrt(count[v]) * gnorm[d];
    free(count);
    free(gnorm);
}

/* ---- trainer glue ------------------------------------------------------------------ */

void th_ref_gather_context(const uint8_t *corpus, const int64_t *pos, int64_t M, int ctx,
                           int32_t *idx, int32_t *target)
{
    for (int64_t i = 0; i < M; i++) {
        for (int c = 0; c < ctx; c++) /* idx[i*ctx + c] = corpus[p - ctx + c] */
            idx[i * ctx + c] = corpus[pos[i] - ctx + c];
        target[i] = corpus[pos[i]]; /* target[i] = corpus[p] */
    }
}

int64_t th_ref_sample_position(uint64_t seed, int64_t step, int64_t i, int64_t lo, int64_t hi)
{
    /* z = splitmix64(seed + step * 0x9E3779B97F4A7C15 + i * 0xD1B54A32D192ED03) */
    uint64_t z = seed + (uint64_t)step * 0x9E3779B97F4A7C15ULL;
    z += (uint64_t)i * 0xD1B54A32D192ED03ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z = z ^ (z >> 31);
    return lo + (int64_t)(z % (uint64_t)(hi - lo)); /* pos = lo + z % (hi - lo) */
}

void th_ref_relu_fwd(const float *z, const float *h_in, int64_t n, int residual, double *h)
{
    for (int64_t i = 0; i < n; i++) {
        double r = z[i] > 0.0f ? (double)z[i] : 0.0;
        h[i] = residual ? (double)h_in[i] + r : r;
    }
}

void th_ref_relu_bwd(const float *gh, const float *z, int64_t n, double *gz)
{
    for (int64_t i = 0; i < n; i++)
        gz[i] = z[i] > 0.0f ? (double)gh[i] : 0.0;
}

void th_ref_add(const float *a, const float *b, int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (double)a[i] + (double)b[i];
}

/* logsumexp of a row, max-subtracted. */
static double ref_lse(const float *row, int64_t V)
{
    double mx = row[0];
    for (int64_t j = 1; j < V; j++)
        mx = row[j] > mx ? row[j] : mx;
    double sum = 0.0;
    for (int64_t j = 0; j < V; j++)
        sum += exp((double)row[j] - mx);
    return mx + log(sum);
}

double th_ref_xent_fwd(const float *logits, const int32_t *target, int64_t M, int64_t V)
{
    double loss = 0.0; /* sum_i logsumexp(logits[i,:]) - logits[i, target_i] */
    for (int64_t i = 0; i < M; i++)
        loss += ref_lse(logits + i * V, V) - (double)logits[i * V + target[i]];
    return loss;
}

void th_ref_xent_bwd(const float *logits, const int32_t *target, int64_t M, int64_t V,
                     double *g)
{
    for (int64_t i = 0; i < M; i++) {
        double lse = ref_lse(logits + i * V, V);
        for (int64_t j = 0; j < V; j++) /* (softmax - onehot) / M */
            g[i * V + j] =
                (exp((double)logits[i * V + j] - lse) - (j == target[i] ? 1.0 : 0.0)) / (double)M;
    }
}
