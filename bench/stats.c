/*
 * stats.c - percentiles of timed samples, how much to time, and the small
 * text helpers of rows (copying, failure statuses).
 *
 * Policy (CUTLASS profiler methodology, Triton do_bench): a sample is one
 * CUDA-event interval around a batch of launches lasting >= 100 us, so the
 * ~0.5 us event resolution and launch gaps stay under 1%; the median of
 * >= 20 samples and >= 50 ms of GPU time in total; p20/p80 give the spread.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_percentile(double *v, int n, double q)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    if (q <= 0)
        return v[0];
    if (q >= 1)
        return v[n - 1];
    double pos = q * (double)(n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    double frac = pos - (double)lo;
    return v[lo] + (v[hi] - v[lo]) * frac;
}

int bench_launches_per_sample(double est_us)
{
    const double target_us = 100.0;
    if (!(est_us > 0) || est_us >= target_us)
        return 1;
    double n = ceil(target_us / est_us);
    return n > 1000 ? 1000 : (int)n;
}

int bench_sample_count(double sample_us, int min_repeats, double min_ms)
{
    int n = min_repeats > 0 ? min_repeats : 1;
    if (sample_us > 0) {
        double need = ceil(min_ms * 1000.0 / sample_us);
        if (need > n)
            n = need > 2000 ? 2000 : (int)need;
    }
    return n;
}

int bench_copies_for(double bytes)
{
    if (!(bytes > 0))
        return 1;
    double n = ceil(BENCH_ROTATE_BYTES / bytes);
    if (n < 1)
        return 1;
    return n > BENCH_MAX_COPIES ? BENCH_MAX_COPIES : (int)n;
}

const char *bench_failure_status(arb_status st)
{
    switch (st) {
    case ARB_ERR_UNSUPPORTED: return "unsupported";
    case ARB_ERR_CUDA: return "launch_failed";
    default: return "compile_failed";
    }
}

int bench_status_is_failure(const char *status)
{
    return strcmp(status, "ok") != 0 && strcmp(status, "unsupported") != 0;
}

void bench_copy(char *dst, size_t len, const char *src)
{
    if (len)
        snprintf(dst, len, "%s", src ? src : "");
}

void bench_join(char *dst, size_t len, const char *a, const char *b)
{
    if (len)
        snprintf(dst, len, "%s%s", a ? a : "", b ? b : "");
}
