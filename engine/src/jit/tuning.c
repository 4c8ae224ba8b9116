/*
 * tuning.c - the engine's view of the tuning table: at open, the current
 * rows (this arch, this device when there is one, this build and NVRTC,
 * status ok) are loaded, keeping the fastest per (kernel, shape, variant,
 * precision).
 * A spec then takes the blocks of its exact shape, else those of the nearest
 * tuned shape of the same kernel and precision that pass the kernel's check
 * for this spec, else its default.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

typedef struct load_ctx {
    arb_engine *e;
    int cap;
} load_ctx;

static int same_shape(const arb_tuned *t, const char *kernel, int64_t M, int64_t N, int64_t K,
                      int64_t gs, int32_t variant, arb_precision prec)
{
    return strcmp(t->kernel, kernel) == 0 && t->M == M && t->N == N && t->K == K && t->gs == gs &&
           t->variant == variant && t->prec == prec;
}

static int take_row(void *vctx, const arb_tune_row *row)
{
    load_ctx *ctx = vctx;
    arb_engine *e = ctx->e;
    if (row->stale || strcmp(row->status, "ok") != 0 || strcmp(row->arch, e->arch) != 0)
        return 0;
    if (!e->compile_only &&
        (strcmp(row->device, e->info.name) != 0 || row->sm_count != e->info.sm_count))
        return 0;
    arb_precision prec;
    if (arb_precision_parse(row->precision, &prec, NULL) != ARB_OK || !arb_kernel_find(row->kernel))
        return 0;
    for (int i = 0; i < e->n_tuned; i++) {
        arb_tuned *t = &e->tuned[i];
        if (same_shape(t, row->kernel, row->M, row->N, row->K, row->gs, row->variant, prec)) {
            if (row->median_us < t->median_us) {
                t->blocks = (arb_blocks){row->bm, row->bn, row->bk, row->tm,
                                         row->tn, row->warps, row->stages};
                t->median_us = row->median_us;
            }
            return 0;
        }
    }
    if (e->n_tuned == ctx->cap) {
        int cap = ctx->cap ? 2 * ctx->cap : 64;
        arb_tuned *grown = realloc(e->tuned, (size_t)cap * sizeof(*grown));
        if (!grown)
            return 1;
        e->tuned = grown;
        ctx->cap = cap;
    }
    arb_tuned *t = &e->tuned[e->n_tuned++];
    memset(t, 0, sizeof(*t));
    snprintf(t->kernel, sizeof(t->kernel), "%s", row->kernel);
    t->M = row->M;
    t->N = row->N;
    t->K = row->K;
    t->gs = row->gs;
    t->variant = row->variant;
    t->prec = prec;
    t->blocks = (arb_blocks){row->bm, row->bn, row->bk, row->tm, row->tn, row->warps, row->stages};
    t->median_us = row->median_us;
    return 0;
}

void arb_engine_load_tuning(arb_engine *e)
{
    if (!e->cache)
        return;
    load_ctx ctx = {e, 0};
    arb_err err = {0};
    if (arb_tune_each(e->cache, arb_engine_build_id(), e->nvrtc_version, take_row, &ctx, &err) !=
        ARB_OK)
        arb_engine_warn(e, "could not read the tuning table (%s); using default block sizes",
                        err.msg);
}

static double log_ratio(int64_t a, int64_t b) { return fabs(log2((double)a) - log2((double)b)); }

arb_blocks_origin arb_engine_lookup_tuning(const arb_engine *e, arb_spec *spec)
{
    const arb_tuned *best = NULL;
    double best_distance = 0;
    for (int i = 0; i < e->n_tuned; i++) {
        const arb_tuned *t = &e->tuned[i];
        if (strcmp(t->kernel, spec->kernel) != 0 || t->prec != spec->prec)
            continue;
        if (same_shape(t, spec->kernel, spec->M, spec->N, spec->K, spec->gs, spec->variant,
                       spec->prec)) {
            arb_spec candidate = *spec;
            candidate.blocks = t->blocks;
            if (arb_spec_check(&candidate, NULL) == ARB_OK) {
                spec->blocks = t->blocks;
                return ARB_BLOCKS_TUNED;
            }
            continue;
        }
        double distance = log_ratio(t->M, spec->M) + log_ratio(t->N, spec->N) +
                          log_ratio(t->K, spec->K) + (t->gs == spec->gs ? 0.0 : 0.5) +
                          (t->variant == spec->variant ? 0.0 : 0.25);
        if (!best || distance < best_distance) {
            arb_spec candidate = *spec;
            candidate.blocks = t->blocks;
            if (arb_spec_check(&candidate, NULL) == ARB_OK) {
                best = t;
                best_distance = distance;
            }
        }
    }
    if (best) {
        spec->blocks = best->blocks;
        return ARB_BLOCKS_NEAREST;
    }
    return ARB_BLOCKS_DEFAULT;
}
