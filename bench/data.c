/*
 * data.c - the host side of every measurement: random inputs (never
 * zeros), the dense dequantized weight for cuBLAS, bf16 rounding, result
 * comparisons and float64 reference rows.
 *
 * Inputs of kernels with sign or integer outputs are small integers held in
 * floats, so every sum is exact in fp32 whatever the order of additions and
 * two correct configurations agree bit for bit.
 */
#include <math.h>
#include <string.h>

#include "arb/ternary.h"
#include "bench.h"

uint64_t bench_rng_next(bench_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int64_t bench_rng_int(bench_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(bench_rng_next(r) % span);
}

float bench_rng_float(bench_rng *r)
{
    /* 24 random bits -> [-1, 1) in steps of 2^-23; 0 is moved to 2^-24. */
    int32_t bits = (int32_t)(bench_rng_next(r) >> 40) - (1 << 23);
    float v = (float)bits / (float)(1 << 23);
    return v != 0.0f ? v : 0x1p-24f;
}

void bench_dequantize(const uint8_t *packed, const int8_t *E, int64_t N, int64_t K, int64_t gs,
                      float *out)
{
    size_t count = (size_t)N * (size_t)K;
    for (size_t lin = 0; lin < count; lin++) {
        int t = arb_ternary_get(packed, lin);
        out[lin] = t ? ldexpf((float)t, E[lin / (size_t)gs]) : 0.0f;
    }
}

uint16_t bench_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) /* NaN: keep it quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7FFFu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float bench_bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

double bench_rel_err(const float *a, const float *b, size_t n)
{
    double diff = 0.0, ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        if (!isfinite(x) && isfinite(y))
            return INFINITY;
        if (!isfinite(y)) {
            /* Both non-finite: equal when they are the same kind. */
            if (!(isnan(x) && isnan(y)) && x != y)
                return INFINITY;
            continue;
        }
        diff += (x - y) * (x - y);
        ref += y * y;
    }
    return ref > 0 ? sqrt(diff / ref) : sqrt(diff);
}

int64_t bench_first_diff(const void *a, const void *b, size_t n, size_t elem)
{
    if (memcmp(a, b, n * elem) == 0)
        return -1;
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (memcmp(x + i * elem, y + i * elem, elem) != 0)
            return (int64_t)i;
    return -1;
}

void bench_ref_fwd_rows(const float *x, const float *W, int64_t N, int64_t K, const int64_t *rows,
                        int n_rows, double *out)
{
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + rows[r] * K;
        for (int64_t n = 0; n < N; n++) {
            const float *wn = W + n * K;
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += (double)xr[k] * (double)wn[k];
            out[(int64_t)r * N + n] = s;
        }
    }
}

void bench_ref_grad_x_rows(const float *gy, const float *W, int64_t N, int64_t K,
                           const int64_t *rows, int n_rows, double *out)
{
    for (int r = 0; r < n_rows; r++) {
        const float *gr = gy + rows[r] * N;
        double *o = out + (int64_t)r * K;
        for (int64_t k = 0; k < K; k++)
            o[k] = 0.0;
        for (int64_t n = 0; n < N; n++) {
            double g = gr[n];
            const float *wn = W + n * K;
            for (int64_t k = 0; k < K; k++)
                o[k] += g * (double)wn[k];
        }
    }
}

void bench_ref_outer_rows(const float *gy, const float *x, int64_t M, int64_t N, int64_t K,
                          const int64_t *rows, int n_rows, double *out)
{
    for (int r = 0; r < n_rows; r++) {
        int64_t n = rows[r];
        double *o = out + (int64_t)r * K;
        for (int64_t k = 0; k < K; k++)
            o[k] = 0.0;
        for (int64_t m = 0; m < M; m++) {
            double g = gy[m * N + n];
            const float *xm = x + m * K;
            for (int64_t k = 0; k < K; k++)
                o[k] += g * (double)xm[k];
        }
    }
}

double bench_rel_err_rows(const float *got, int64_t row_len, const int64_t *rows, int n_rows,
                          const double *ref)
{
    double diff = 0.0, norm = 0.0;
    for (int r = 0; r < n_rows; r++) {
        const float *g = got + rows[r] * row_len;
        const double *f = ref + (int64_t)r * row_len;
        for (int64_t i = 0; i < row_len; i++) {
            if (!isfinite(g[i]))
                return INFINITY;
            diff += ((double)g[i] - f[i]) * ((double)g[i] - f[i]);
            norm += f[i] * f[i];
        }
    }
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

double bench_tolerance(arb_precision prec)
{
    switch (prec) {
    case ARB_PREC_FP32: return 2e-6;
    case ARB_PREC_TF32: return 1e-3;
    case ARB_PREC_BF16: return 1e-2;
    case ARB_PREC_BF16X2: return 1e-5;
    case ARB_PREC_BF16X3: return 2e-6;
    default: return 2e-6;
    }
}
