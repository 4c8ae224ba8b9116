/*
 * plan.c - which specs arb-bench measures, and each spec's candidate block
 * configurations with the kernel's own verdict on them.
 *
 * Shapes come from flags (--gemm, --kernel with --shape) or a shapes.txt
 * (SPEC §5), expanded by arb_shapes_expand into exactly the kernels the
 * trainer launches on the run's target (ARB_ARCH, else the device's; on
 * sm_90a the big tensor-core GEMMs are staged), so a sweep tunes what
 * training runs.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* SPEC §6 `base`: batch 1024, ctx 16, D 256, H 4096, L 4, gs 64. The input
 * width ctx*D = 4096 = H, so every hidden layer (and its RMSNorm) has the
 * same shape; the output layer's E is frozen (update=step). */
const char bench_builtin_shapes[] =
    "# built-in base model shapes (SPEC 6): batch 1024, ctx 16, D 256, H 4096, L 4, gs 64\n"
    "# embedding: 1024 x 16 lookups per step into a 256 x 256 table\n"
    "embed M=16384 V=256 D=256 gs=64\n"
    "# RMSNorm before every linear layer: rows of ctx*D = H = 4096\n"
    "rmsnorm M=1024 D=4096 gs=64\n"
    "# hidden layers: W [H, ctx*D] for l = 0, [H, H] after: all 4096 x 4096\n"
    "linear M=1024 N=4096 K=4096 gs=64\n"
    "# output layer: 256 logits, E frozen\n"
    "linear M=1024 N=256 K=4096 gs=64 update=step\n"
    "# trainer glue\n"
    "kernel=sample_positions M=1024\n"
    "kernel=step_advance M=1\n"
    "kernel=gather_context M=1024 K=16\n"
    "kernel=relu_fwd M=4194304 variant=0\n"
    "kernel=relu_fwd M=4194304 variant=1\n"
    "kernel=relu_bwd M=4194304\n"
    "kernel=add M=4194304\n"
    "kernel=xent_fwd M=1024 N=256\n"
    "kernel=xent_bwd M=1024 N=256\n";

static arb_status plan_add(bench_plan *p, const arb_spec *spec, int exact, int line, arb_err *err)
{
    for (int i = 0; i < p->count; i++)
        if (arb_spec_equal(&p->items[i].spec, spec) && p->items[i].exact == exact)
            return ARB_OK;
    bench_item *grown = realloc(p->items, (size_t)(p->count + 1) * sizeof(*grown));
    if (!grown)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory listing the specs to measure");
    p->items = grown;
    p->items[p->count++] = (bench_item){*spec, exact, line};
    return ARB_OK;
}

/* A spec for a kernel; a kernel without the precision falls back to fp32
 * unless the precision was asked for explicitly. */
static arb_status spec_for(const char *kernel, int64_t M, int64_t N, int64_t K, int64_t gs,
                           arb_precision prec, int explicit_prec, int32_t variant, arb_spec *out,
                           arb_err *err)
{
    arb_err local = {0};
    arb_status st = arb_spec_init(out, kernel, M, N, K, gs, prec, variant, &local);
    if (st == ARB_ERR_UNSUPPORTED && !explicit_prec)
        return arb_spec_init(out, kernel, M, N, K, gs, ARB_PREC_FP32, variant, err);
    if (st)
        arb_err_copy(err, &local);
    return st;
}

/* --gemm: per shape, the fused ternary_fwd and ternary_grad_x kernels (the
 * previous path, measured beside the new one even where the trainer no
 * longer launches them), then the kernels the trainer's plan runs on
 * `arch` when it is another: on sm_90a from ARB_STAGED_MIN_ROWS rows on,
 * ternary_decode, act_split and tc_gemm (a decoded weight shared by two
 * shapes of the same N x K is listed once). */
static arb_status plan_gemm(const bench_options *o, arb_precision prec, const char *arch,
                            bench_plan *p, arb_err *err)
{
    static const char *const kernels[2] = {"ternary_fwd", "ternary_grad_x"};
    for (int g = 0; g < o->n_gemm; g++) {
        const bench_gemm_shape *s = &o->gemm[g];
        for (int k = 0; k < 2; k++) {
            arb_spec spec;
            arb_status st = ARB_OK;
            if (!o->kernel || strcmp(o->kernel, kernels[k]) == 0) {
                st = spec_for(kernels[k], s->M, s->N, s->K, s->gs, prec, 1, 0, &spec, err);
                if (!st)
                    st = plan_add(p, &spec, 0, 0, err);
            }
            if (st)
                return st;
            arb_spec staged[ARB_PLAN_MAX];
            int n = k == 0 ? arb_plan_ternary_fwd(s->M, s->N, s->K, s->gs, prec, arch, staged)
                           : arb_plan_ternary_grad_x(s->M, s->N, s->K, s->gs, prec, arch, staged);
            if (n < 2) /* the fused kernel itself (or nothing the mode can run) */
                continue;
            for (int i = 0; i < n && !st; i++)
                if (!o->kernel || strcmp(o->kernel, staged[i].kernel) == 0)
                    st = plan_add(p, &staged[i], 0, 0, err);
            if (st)
                return st;
        }
    }
    if (p->count == 0)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "--gemm measures ternary_fwd and ternary_grad_x (and on sm_90a from "
                        "M=%d on ternary_decode, act_split and tc_gemm); --kernel %s selects "
                        "none of them here",
                        ARB_STAGED_MIN_ROWS, o->kernel);
    snprintf(p->source, sizeof(p->source), "--gemm");
    return ARB_OK;
}

int bench_op_plan(const char *op, int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                  const char *arch, char *buf, size_t len)
{
    arb_spec plan[ARB_PLAN_MAX];
    int n = 0;
    if (strcmp(op, "ternary_fwd") == 0)
        n = arb_plan_ternary_fwd(M, N, K, gs, prec, arch, plan);
    else if (strcmp(op, "ternary_grad_x") == 0)
        n = arb_plan_ternary_grad_x(M, N, K, gs, prec, arch, plan);
    if (!len)
        return n;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? "+" : "", plan[i].kernel);
    }
    return n;
}

static int file_exists(const char *path) { return access(path, R_OK) == 0; }

static arb_status plan_shapes(const bench_options *o, const char *source_dir, arb_precision prec,
                              const char *arch, bench_plan *p, arb_err *err)
{
    arb_shapes shapes;
    memset(&shapes, 0, sizeof(shapes));
    char path[1024] = "";
    arb_status st = ARB_OK;
    if (o->shapes_path) {
        snprintf(path, sizeof(path), "%s", o->shapes_path);
    } else if (source_dir && source_dir[0]) {
        snprintf(path, sizeof(path), "%s/prewarm/shapes/base.txt", source_dir);
        if (!file_exists(path))
            path[0] = '\0';
    }
    if (path[0]) {
        st = arb_shapes_load(path, &shapes, err);
        bench_copy(p->source, sizeof(p->source), path);
    } else {
        st = arb_shapes_parse(bench_builtin_shapes, strlen(bench_builtin_shapes),
                              "<built-in base shapes>", &shapes, err);
        snprintf(p->source, sizeof(p->source), "the built-in base model shapes");
    }
    if (st)
        return st;
    arb_expanded *expanded = NULL;
    int count = 0;
    st = arb_shapes_expand(&shapes, prec, arch, &expanded, &count, err);
    for (int i = 0; st == ARB_OK && i < count; i++) {
        if (o->kernel && strcmp(expanded[i].spec.kernel, o->kernel) != 0)
            continue;
        st = plan_add(p, &expanded[i].spec, expanded[i].exact, expanded[i].line, err);
    }
    free(expanded);
    arb_shapes_free(&shapes);
    if (!st && p->count == 0)
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: no kernel to measure%s%s", p->source,
                      o->kernel ? " named " : "", o->kernel ? o->kernel : "");
    return st;
}

arb_status bench_plan_build(const bench_options *o, const char *source_dir, arb_precision prec,
                            const char *arch, bench_plan *plan, arb_err *err)
{
    memset(plan, 0, sizeof(*plan));
    bench_copy(plan->arch, sizeof(plan->arch), arch);
    arb_status st;
    if (o->n_gemm) {
        st = plan_gemm(o, prec, arch, plan, err);
    } else if (o->has_shape) {
        arb_spec spec;
        st = spec_for(o->kernel, o->M, o->N, o->K, o->gs, prec, o->has_precision,
                      o->has_variant ? o->variant : 0, &spec, err);
        if (!st && o->has_blocks)
            spec.blocks = o->blocks;
        if (!st)
            st = plan_add(plan, &spec, o->has_blocks, 0, err);
        snprintf(plan->source, sizeof(plan->source), "--kernel %s --shape", o->kernel);
    } else {
        st = plan_shapes(o, source_dir, prec, arch, plan, err);
    }
    if (st)
        bench_plan_free(plan);
    return st;
}

void bench_plan_free(bench_plan *plan)
{
    free(plan->items);
    plan->items = NULL;
    plan->count = 0;
}

/* ---- candidates ---------------------------------------------------------------- */

static int blocks_equal(const arb_blocks *a, const arb_blocks *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

static void judge(const arb_spec *spec, bench_candidate *c)
{
    arb_spec s = *spec;
    s.blocks = c->blocks;
    arb_err e = {0};
    c->supported = arb_spec_check(&s, &e) == ARB_OK;
    bench_copy(c->reason, sizeof(c->reason), c->supported ? "" : e.msg);
}

arb_spec bench_reference_spec(const arb_spec *spec)
{
    const arb_kernel_def *def = arb_kernel_find(spec->kernel);
    arb_spec ref = *spec;
    if (!def)
        return ref;
    /* The blocks go with the mode: a tensor-core tile is no SIMT tile, so
     * fp32 is checked with its own default blocks, not the spec's. */
    ref.prec = ARB_PREC_FP32;
    ref.blocks = def->default_blocks(&ref);
    if (arb_spec_check(&ref, NULL) == ARB_OK)
        return ref;
    ref.prec = spec->prec;
    ref.blocks = def->default_blocks(&ref);
    return ref;
}

int bench_candidates(const arb_spec *spec, const arb_blocks *only, bench_candidate *out, int max)
{
    const arb_kernel_def *def = arb_kernel_find(spec->kernel);
    if (!def)
        return -1;
    arb_blocks dflt = def->default_blocks(spec);
    int n = 0;
    if (only) {
        if (max < 1)
            return 0;
        memset(&out[0], 0, sizeof(out[0]));
        out[0].blocks = *only;
        out[0].is_default = blocks_equal(only, &dflt);
        judge(spec, &out[0]);
        return 1;
    }
    if (n < max) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].blocks = dflt;
        out[n].is_default = 1;
        judge(spec, &out[n]);
        n++;
    }
    for (int i = 0; i < def->n_candidates && n < max; i++) {
        if (blocks_equal(&def->candidates[i], &dflt))
            continue;
        memset(&out[n], 0, sizeof(out[n]));
        out[n].blocks = def->candidates[i];
        judge(spec, &out[n]);
        n++;
    }
    return n;
}

/* ---- --dry-run ----------------------------------------------------------------- */

void bench_print_dry_run(FILE *out, const bench_options *o, const bench_plan *plan)
{
    static const char *const mode_names[] = {"resolved configurations", "block sweep",
                                             "JIT figures", "training step"};
    int total = 0, rejected = 0;
    bench_candidate *cands = calloc(BENCH_MAX_CANDIDATES, sizeof(*cands));
    if (!cands) {
        fprintf(out, "arb-bench --dry-run: out of memory\n");
        return;
    }
    fprintf(out, "arb-bench --dry-run: %s of %d kernel specs from %s (target %s)\n",
            mode_names[o->mode], plan->count, plan->source,
            plan->arch[0] ? plan->arch : "none: no arch-specific kernel");
    if (o->mode != BENCH_MODE_SWEEP && !(o->has_blocks))
        fprintf(out, "(this mode times each spec in its resolved configuration: the tuned one "
                     "when the cache has it, else the default marked '*'; --sweep-blocks times "
                     "every candidate below)\n");
    for (int i = 0; i < plan->count; i++) {
        const bench_item *it = &plan->items[i];
        char group[192];
        bench_group_name(&it->spec, group, sizeof(group));
        fprintf(out, "\n%s", group);
        if (it->line)
            fprintf(out, "   (shapes line %d)", it->line);
        if (it->exact)
            fprintf(out, "   (blocks pinned)");
        fputc('\n', out);
        int n = bench_candidates(&it->spec, it->exact ? &it->spec.blocks : NULL, cands,
                                 BENCH_MAX_CANDIDATES);
        for (int c = 0; c < n; c++) {
            char brief[64], full[128];
            bench_format_blocks_short(&cands[c].blocks, brief, sizeof(brief));
            bench_format_blocks(&cands[c].blocks, full, sizeof(full));
            fprintf(out, "  %c %-24s %-50s %s%s\n", cands[c].is_default ? '*' : ' ', brief, full,
                    cands[c].supported ? "ok" : "rejected: ", cands[c].reason);
            total++;
            rejected += !cands[c].supported;
        }
    }
    fprintf(out, "\n%d candidates: %d pass the check, %d rejected ('*' = default)\n", total,
            total - rejected, rejected);
    free(cands);
}
