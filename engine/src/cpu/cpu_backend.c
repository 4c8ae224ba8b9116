/*
 * cpu_backend.c - the cpu backend's state and the helpers every reference
 * op shares (decode, atomic trit updates, group scores, the E rule).
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_common.h"

arb_status arb_cpu_open(arb_backend *be, int threads)
{
    arb_cpu_state *cpu = calloc(1, sizeof(*cpu));
    if (!cpu)
        return ARB_BE_FAIL(be, ARB_ERR_NOMEM, "out of memory opening the cpu backend");
    cpu->threads = threads > 0 ? threads : omp_get_num_procs();
    if (cpu->threads < 1)
        cpu->threads = 1;
    be->cpu = cpu;
    return ARB_OK;
}

void arb_cpu_close(arb_backend *be)
{
    if (!be->cpu)
        return;
    free(be->cpu->scratch);
    free(be->cpu);
    be->cpu = NULL;
}

int arb_cpu_threads(const arb_backend *be) { return be->cpu->threads; }

void *arb_cpu_scratch(arb_backend *be, size_t bytes)
{
    arb_cpu_state *cpu = be->cpu;
    if (bytes <= cpu->scratch_bytes)
        return cpu->scratch;
    void *p = realloc(cpu->scratch, bytes);
    if (!p) {
        ARB_BE_FAIL(be, ARB_ERR_NOMEM, "out of memory: cpu scratch of %zu bytes", bytes);
        return NULL;
    }
    cpu->scratch = p;
    cpu->scratch_bytes = bytes;
    return p;
}

void arb_cpu_decode_row(const arb_ternary *W, int64_t n, float *out)
{
    int64_t base = n * W->K;
    for (int64_t k = 0; k < W->K; k++) {
        int64_t lin = base + k;
        int t = arb_ternary_get(W->T_packed, (size_t)lin);
        out[k] = (float)t * arb_cpu_pow2(W->E[lin / W->gs]);
    }
}

int arb_cpu_trit_load(const uint8_t *packed, int64_t lin)
{
    unsigned byte = __atomic_load_n(&packed[lin / 5], __ATOMIC_RELAXED);
    return (int)((byte / arb_pow3[lin % 5]) % 3) - 1;
}

void arb_cpu_trit_add(uint8_t *packed, int64_t lin, int delta)
{
    /* The byte's value changes by delta * 3^i and stays within 0..242, so the
     * add never carries into another digit; mod-256 wrap of a negative delta
     * lands on the same byte value. */
    uint8_t add = (uint8_t)(delta * (int)arb_pow3[lin % 5]);
    __atomic_fetch_add(&packed[lin / 5], add, __ATOMIC_RELAXED);
}

void arb_cpu_grad_row(const float *gy, const float *x, int64_t M, int64_t N, int64_t K, int64_t n,
                      float *g)
{
    memset(g, 0, (size_t)K * sizeof(float));
    for (int64_t m = 0; m < M; m++) {
        float a = gy[m * N + n];
        const float *xm = x + m * K;
        for (int64_t k = 0; k < K; k++)
            g[k] += a * xm[k];
    }
}

void arb_cpu_row_scores(int64_t K, int64_t gs, int64_t n, const float *v, const int8_t *t,
                        double *score, double *row_part)
{
    if (K % gs == 0) {
        int64_t groups = K / gs;
        for (int64_t j = 0; j < groups; j++) {
            double sum = 0.0;
            for (int64_t k = j * gs; k < (j + 1) * gs; k++)
                sum += (double)v[k] * (double)t[k];
            score[n * groups + j] = sum;
        }
    } else {
        double sum = 0.0;
        for (int64_t k = 0; k < K; k++)
            sum += (double)v[k] * (double)t[k];
        row_part[n] = sum;
    }
}

void arb_cpu_finish_scores(int64_t N, int64_t K, int64_t gs, double *score,
                           const double *row_part)
{
    if (K % gs == 0)
        return;
    int64_t rows_per_group = gs / K;
    int64_t groups = N / rows_per_group;
    for (int64_t g = 0; g < groups; g++) {
        double sum = 0.0;
        for (int64_t r = 0; r < rows_per_group; r++)
            sum += row_part[g * rows_per_group + r];
        score[g] = sum;
    }
}

void arb_cpu_apply_E(arb_ternary *W, const double *score, int phi)
{
    size_t groups = arb_scale_groups(W->N, W->K, W->gs);
    for (size_t g = 0; g < groups; g++) {
        int a = (int)W->E_accum[g] - arb_cpu_sign_d(score[g]);
        int e = W->E[g];
        if (a >= phi) {
            e = e + 1 > ARB_E_MAX ? ARB_E_MAX : e + 1;
            a = 0;
        } else if (a <= -phi) {
            e = e - 1 < ARB_E_MIN ? ARB_E_MIN : e - 1;
            a = 0;
        }
        if (a > phi)
            a = phi;
        if (a < -phi)
            a = -phi;
        W->E[g] = (int8_t)e;
        W->E_accum[g] = (int8_t)a;
    }
}
