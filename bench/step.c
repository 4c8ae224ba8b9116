/*
 * step.c - one whole training step broken down by kernel (--step).
 *
 * A step is the trainer's forward, loss, backward and integer updates of
 * the model of SPEC §6, driven through the trainer's own model code
 * (arb_train_core) on a synthetic corpus: the first step (compiles or cache
 * loads), eager steps, steps replayed from a captured CUDA graph, and a
 * profiled run giving each kernel's share (CUDA events around each launch).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gpu.h"
#include "config.h"
#include "model.h"

/* A synthetic corpus with structure (words from a small vocabulary), so a
 * step's gradients and flips look like training, not noise. */
static uint8_t *make_corpus(int64_t len)
{
    static const char *const words[] = {"the ",  "of ",   "and ",  "to ",   "a ",    "in ",
                                        "that ", "is ",   "was ",  "he ",   "for ",  "it ",
                                        "with ", "as ",   "his ",  "on ",   "be ",   "at ",
                                        "by ",   "i ",    "this ", "had ",  "not ",  "are. "};
    uint8_t *text = malloc((size_t)len);
    if (!text)
        return NULL;
    uint64_t z = 0x2545F4914F6CDD1DULL;
    int64_t i = 0;
    while (i < len) {
        z ^= z << 13;
        z ^= z >> 7;
        z ^= z << 17;
        const char *w = words[z % (sizeof(words) / sizeof(words[0]))];
        for (const char *p = w; *p && i < len; p++)
            text[i++] = (uint8_t)*p;
    }
    return text;
}

/* Wall time of `steps` steps, eager or replayed from a graph, ending with a
 * device sync. Step indices continue from *next. */
static arb_status time_steps(train_model *m, const train_rule *rule, const uint8_t *corpus,
                             int64_t len, int64_t train_len, int steps, int graph, int64_t *next,
                             double *ms, arb_err *err)
{
    arb_status st = arb_backend_sync(m->be);
    if (st)
        return train_backend_fail(m->be, st, err, "sync");
    double t0 = bench_now_ms();
    for (int i = 0; i < steps && !st; i++, (*next)++) {
        int64_t slot = *next % m->loss_cap;
        st = graph ? train_model_step_graph(m, rule, 1, *next, corpus, len, train_len, slot, err)
                   : train_model_step(m, rule, 1, *next, corpus, len, train_len, slot, 0, NULL,
                                      err);
    }
    if (st)
        return st;
    if ((st = arb_backend_sync(m->be)))
        return train_backend_fail(m->be, st, err, "sync after the timed steps");
    *ms = (bench_now_ms() - t0) / steps;
    return ARB_OK;
}

#define MAX_PROFILE_ROWS 64

/* Per-kernel rows of a profiled step (arb_backend_profile_rows): share of
 * the step and tokens/s, printed and added as "step" rows. */
static void step_profile(arb_backend *be, double step_ms, int steps, int64_t tokens,
                         bench_report *r, FILE *out)
{
    arb_profile_row rows[MAX_PROFILE_ROWS];
    int n = arb_backend_profile_rows(be, rows, MAX_PROFILE_ROWS);
    for (int i = 0; i < n; i++) { /* totals over the profiled steps -> per step */
        rows[i].ms /= steps;
        rows[i].launches /= steps;
    }
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

arb_status bench_step(const bench_options *o, const arb_settings *settings, bench_report *r,
                      arb_err *err)
{
    const char *name = o->step_config ? o->step_config : "base";
    train_model_config cfg;
    if (!train_model_config_named(name, &cfg))
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "--step: unknown configuration '%s' (tiny, "
                                                  "small or base)",
                        name);
    /* The engine is opened here, not by the backend, so that it sees the
     * program's settings (--cache). */
    arb_engine *engine = NULL;
    arb_engine_options eo;
    arb_engine_options_init(&eo);
    eo.settings = settings;
    eo.device = o->device;
    arb_status st = arb_engine_open(&engine, &eo, err);
    if (st)
        return st;
    arb_backend_options bo;
    arb_backend_options_init(&bo);
    bo.kind = ARB_BACKEND_JIT;
    bo.engine = engine;
    bo.device = o->device;
    bo.precision = o->precision;
    arb_backend *be = NULL;
    train_model m;
    memset(&m, 0, sizeof(m));
    uint8_t *host = NULL, *corpus = NULL;
    const int64_t len = 4 << 20, train_len = len * 95 / 100;
    const int steps = 20;
    if ((st = arb_backend_open(&be, &bo, NULL, 0, err))) {
        arb_engine_close(engine);
        return st;
    }
    train_rule rule;
    train_rule_defaults(&rule);
    if ((st = train_model_create(&m, be, &cfg, 64, err)) || (st = train_model_init(&m, 1, err)))
        goto out;
    host = make_corpus(len);
    if (!host) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory for the step's corpus");
        goto out;
    }
    if ((st = arb_backend_alloc(be, (size_t)len, (void **)&corpus)) ||
        (st = arb_backend_upload(be, corpus, host, (size_t)len))) {
        train_backend_fail(be, st, err, "uploading the corpus");
        goto out;
    }
    int64_t next = 0;
    double warm_ms = 0, eager_ms = 0, graph_ms = 0, profiled_ms = 0;
    /* Warm-up: the first step compiles (or loads) every kernel. */
    if ((st = time_steps(&m, &rule, corpus, len, train_len, 1, 0, &next, &warm_ms, err)) ||
        (st = time_steps(&m, &rule, corpus, len, train_len, 2, 0, &next, &eager_ms, err)) ||
        (st = time_steps(&m, &rule, corpus, len, train_len, steps, 0, &next, &eager_ms, err)) ||
        (st = time_steps(&m, &rule, corpus, len, train_len, 1, 1, &next, &graph_ms, err)) ||
        (st = time_steps(&m, &rule, corpus, len, train_len, steps, 1, &next, &graph_ms, err)))
        goto out;
    arb_backend_profile_enable(be, 1);
    arb_backend_profile_reset(be);
    if ((st = time_steps(&m, &rule, corpus, len, train_len, steps, 0, &next, &profiled_ms, err)))
        goto out;
    fprintf(stdout,
            "\n%s step (batch %d, %s): first step %.1f ms (kernels compiled or loaded), "
            "eager %.3f ms = %.0f tokens/s, CUDA graph %.3f ms = %.0f tokens/s (%.2fx)\n",
            name, cfg.batch, arb_precision_name(o->precision), warm_ms, eager_ms,
            cfg.batch / (eager_ms * 1e-3), graph_ms, cfg.batch / (graph_ms * 1e-3),
            eager_ms / graph_ms);
    bench_row row;
    bench_row_init(&row);
    snprintf(row.kind, sizeof(row.kind), "step");
    snprintf(row.name, sizeof(row.name), "graph_tokens_per_s");
    snprintf(row.status, sizeof(row.status), "ok");
    row.value = cfg.batch / (graph_ms * 1e-3);
    snprintf(row.unit, sizeof(row.unit), "tokens/s");
    row.median_us = graph_ms * 1e3;
    bench_report_add(r, &row);
    step_profile(be, eager_ms, steps, cfg.batch, r, stdout);
out:
    if (m.be)
        train_model_destroy(&m);
    arb_backend_free(be, corpus);
    free(host);
    arb_backend_close(be);
    arb_engine_close(engine); /* borrowed by the backend: closed after it */
    return st;
}
