/*
 * step.c - one whole training step broken down by kernel (--step).
 *
 * A step is the trainer's forward, loss, backward and integer updates of
 * the model of SPEC §6; timing it needs the model code of train/, which
 * arb-bench does not link: --step reports that plainly and exits 1. What
 * is here is the part that does not depend on the model: the per-kernel
 * breakdown of a profiled backend (arb_backend_profile_enable/rows), its
 * share of the step and the tokens per second, printed and added as rows.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench_gpu.h"

arb_status bench_step(const bench_options *o, bench_report *r, arb_err *err)
{
    (void)r;
    return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                    "--step%s%s is not available in this build: timing a training step needs "
                    "the trainer's model API (train/), which arb-bench does not link; "
                    "`arb-bench` without a mode times every kernel of the base model's shapes "
                    "in its resolved configuration",
                    o->step_config ? " --config " : "", o->step_config ? o->step_config : "");
}

#define MAX_PROFILE_ROWS 64

void bench_step_profile(arb_backend *be, double step_ms, int64_t tokens, bench_report *r,
                        FILE *out)
{
    arb_profile_row rows[MAX_PROFILE_ROWS];
    int n = arb_backend_profile_rows(be, rows, MAX_PROFILE_ROWS);
    double kernels_ms = 0;
    for (int i = 0; i < n; i++)
        kernels_ms += rows[i].ms;
    double tokens_per_s = step_ms > 0 ? (double)tokens / (step_ms * 1e-3) : NAN;
    fprintf(out, "\none step: %.3f ms, %lld tokens, %.0f tokens/s; kernels %.3f ms (%.0f%%)\n",
            step_ms, (long long)tokens, tokens_per_s, kernels_ms,
            step_ms > 0 ? 100.0 * kernels_ms / step_ms : 0.0);
    fprintf(out, "  %-24s %10s %12s %8s\n", "kernel", "launches", "ms/step", "share");
    for (int i = 0; i < n; i++) {
        double share = step_ms > 0 ? 100.0 * rows[i].ms / step_ms : NAN;
        fprintf(out, "  %-24s %10lld %12.4f %7.1f%%\n", rows[i].kernel,
                (long long)rows[i].launches, rows[i].ms, share);
        bench_row row;
        bench_row_init(&row);
        snprintf(row.kind, sizeof(row.kind), "step");
        snprintf(row.name, sizeof(row.name), "%s", rows[i].kernel);
        snprintf(row.status, sizeof(row.status), "ok");
        row.value = rows[i].ms;
        snprintf(row.unit, sizeof(row.unit), "ms");
        row.repeats = (int)rows[i].launches;
        bench_report_add(r, &row);
    }
    bench_row total;
    bench_row_init(&total);
    snprintf(total.kind, sizeof(total.kind), "step");
    snprintf(total.name, sizeof(total.name), "tokens_per_s");
    snprintf(total.status, sizeof(total.status), "ok");
    total.value = tokens_per_s;
    snprintf(total.unit, sizeof(total.unit), "tokens/s");
    total.median_us = step_ms * 1e3;
    bench_report_add(r, &total);
}
