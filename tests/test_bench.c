/*
 * test_bench.c - arb-bench without a GPU: candidate lists and the check's
 * verdicts, every kernel's parameter layout against its template's
 * signature, the tuning table written from bench rows (stale marking, the
 * engine picking the fastest row), the JSON / CSV / SVG writers (parsed
 * back), statistics, flags and replay commands, data helpers, and the
 * built program: --help, --dry-run, unknown flags, no GPU.
 *
 * The program's internals come from arb_bench_core (bench/), linked by
 * bench/CMakeLists.txt.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arb/cache.h"
#include "arb/cuda_driver.h"
#include "arb/engine.h"
#include "arb/kernels.h"
#include "arb/ternary.h"
#include "bench.h"
#include "files.h"

#define BENCH_PROGRAM ARB_BINARY_DIR "/bench/arb-bench"

/* ---- fixtures ---------------------------------------------------------------------- */

static void make_tmpdir(void) { th_dir_make("arb-test-bench"); }

TestSuite(bench, .init = make_tmpdir, .fini = th_dir_remove);

static void plan_push(bench_plan *plan, const arb_spec *s)
{
    plan->items = realloc(plan->items, (size_t)(plan->count + 1) * sizeof(*plan->items));
    cr_assert_not_null(plan->items);
    plan->items[plan->count++] = (bench_item){*s, 0, 0};
}

/* The base model's specs (prewarm/shapes/base.txt or the built-in shapes,
 * fp32 on no particular target), plus the two kernels only the two-pass
 * path uses and the staged kernels the base layers run in bf16x2 on sm_90a
 * (ternary_decode both ways, act_split, tc_gemm). */
static bench_plan base_plan(void)
{
    bench_options o;
    bench_options_init(&o);
    bench_plan plan;
    arb_err err = {0};
    cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_FP32, NULL, &plan, &err), ARB_OK,
                 "%s", err.msg);
    static const char *const extra[] = {"grad_weight", "grad_sign"};
    for (int i = 0; i < 2; i++) {
        arb_spec s;
        cr_assert_eq(arb_spec_init(&s, extra[i], 1024, 4096, 4096, 1, ARB_PREC_FP32, 0, NULL),
                     ARB_OK);
        plan_push(&plan, &s);
    }
    arb_spec staged[2 * ARB_PLAN_MAX];
    int n = arb_plan_ternary_fwd(1024, 4096, 4096, 64, ARB_PREC_BF16X2, "sm_90a", staged);
    cr_assert_eq(n, 3);
    n += arb_plan_ternary_grad_x(1024, 4096, 4096, 64, ARB_PREC_BF16X2, "sm_90a", staged + n);
    cr_assert_eq(n, 6);
    /* The staged update: transposed splits and tc_update. */
    int u = arb_plan_update_direct(1024, 4096, 4096, 64, ARB_PREC_BF16X2, "sm_90a", 1, 1,
                                   ARB_E_SCORE_GRAD, staged + n);
    cr_assert_eq(u, 3);
    n += u;
    for (int i = 0; i < n; i++)
        plan_push(&plan, &staged[i]);
    return plan;
}

static const arb_spec *plan_spec(const bench_plan *plan, const char *kernel)
{
    for (int i = 0; i < plan->count; i++)
        if (strcmp(plan->items[i].spec.kernel, kernel) == 0)
            return &plan->items[i].spec;
    return NULL;
}

/* ---- candidates -------------------------------------------------------------------- */

Test(bench, every_kernel_has_a_passing_candidate_for_the_base_shapes)
{
    bench_plan plan = base_plan();
    bench_candidate cands[BENCH_MAX_CANDIDATES];
    for (int k = 0; k < arb_kernel_count(); k++) {
        const arb_kernel_def *def = arb_kernel_at(k);
        const arb_spec *spec = plan_spec(&plan, def->name);
        cr_assert_not_null(spec, "the base shapes do not exercise %s", def->name);
        int n = bench_candidates(spec, NULL, cands, BENCH_MAX_CANDIDATES);
        cr_assert_geq(n, 1, "%s: no candidate", def->name);
        cr_assert(cands[0].is_default, "%s: the default comes first", def->name);
        int passing = 0, defaults = 0;
        for (int c = 0; c < n; c++) {
            passing += cands[c].supported;
            defaults += cands[c].is_default;
            cr_assert(cands[c].supported || cands[c].reason[0], "%s: a rejection without reason",
                      def->name);
        }
        cr_assert_eq(defaults, 1, "%s: exactly one default", def->name);
        cr_assert_geq(passing, 1, "%s: no candidate passes the check", def->name);
        cr_assert(cands[0].supported, "%s: the default configuration fails the check: %s",
                  def->name, cands[0].reason);
        /* Every registry candidate is listed (the default once). */
        int want = def->n_candidates + 1;
        for (int i = 0; i < def->n_candidates; i++)
            if (memcmp(&def->candidates[i], &cands[0].blocks, sizeof(arb_blocks)) == 0)
                want--;
        cr_assert_eq(n, want < BENCH_MAX_CANDIDATES ? want : BENCH_MAX_CANDIDATES, "%s",
                     def->name);
    }
    bench_plan_free(&plan);
}

Test(bench, the_check_rejects_broken_configurations_with_a_reason)
{
    arb_spec s;
    cr_assert_eq(arb_spec_init(&s, "ternary_fwd", 1024, 4096, 4096, 64, ARB_PREC_FP32, 0, NULL),
                 ARB_OK);
    arb_blocks bad_tile = {64, 64, 16, 3, 4, 8, 1}; /* 3 does not divide 64 */
    bench_candidate c;
    cr_assert_eq(bench_candidates(&s, &bad_tile, &c, 1), 1);
    cr_assert_not(c.supported);
    cr_assert_not_null(strstr(c.reason, "thread tile"), "reason: %s", c.reason);

    arb_blocks no_warps = {64, 64, 16, 4, 4, 0, 1};
    cr_assert_eq(bench_candidates(&s, &no_warps, &c, 1), 1);
    cr_assert_not(c.supported);
    cr_assert_not_null(strstr(c.reason, "warps"), "reason: %s", c.reason);

    arb_blocks dflt = arb_kernel_find("ternary_fwd")->default_blocks(&s);
    cr_assert_eq(bench_candidates(&s, &dflt, &c, 1), 1);
    cr_assert(c.supported && c.is_default, "%s", c.reason);
    cr_assert_eq(bench_candidates(&(arb_spec){.kernel = "no_such_kernel"}, NULL, &c, 1), -1);
}

/* Candidates are checked against the kernel's default configuration in
 * fp32, whatever the mode and tile of the spec measured: a tensor-core tile
 * must not drag the reference into the tensor-core mode. */
Test(bench, the_trusted_result_is_the_fp32_default)
{
    static const char *const kernels[] = {"ternary_fwd", "ternary_grad_x"};
    static const arb_precision modes[] = {ARB_PREC_FP32, ARB_PREC_TF32, ARB_PREC_BF16,
                                          ARB_PREC_BF16X2, ARB_PREC_BF16X3};
    for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
        const arb_kernel_def *def = arb_kernel_find(kernels[k]);
        cr_assert_not_null(def);
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
            arb_spec s;
            cr_assert_eq(arb_spec_init(&s, kernels[k], 1000, 4096, 1000, 8, modes[m], 0, NULL),
                         ARB_OK, "%s %s", kernels[k], arb_precision_name(modes[m]));
            s.blocks = def->default_blocks(&s); /* the mode's own tile */
            cr_assert_eq(arb_spec_check(&s, NULL), ARB_OK);
            arb_spec ref = bench_reference_spec(&s);
            cr_assert_eq(ref.prec, ARB_PREC_FP32, "%s %s: reference in %s", kernels[k],
                         arb_precision_name(modes[m]), arb_precision_name(ref.prec));
            cr_assert_eq(arb_spec_check(&ref, NULL), ARB_OK);
            arb_blocks fp32_default = def->default_blocks(&ref);
            cr_assert_eq(memcmp(&ref.blocks, &fp32_default, sizeof(ref.blocks)), 0);
            cr_assert(ref.M == s.M && ref.N == s.N && ref.K == s.K && ref.gs == s.gs);
        }
    }
}

/* ---- --gemm plans on a target ------------------------------------------------------ */

static int count_kernel(const bench_plan *plan, const char *kernel)
{
    int n = 0;
    for (int i = 0; i < plan->count; i++)
        n += strcmp(plan->items[i].spec.kernel, kernel) == 0;
    return n;
}

static const arb_spec *find_spec(const bench_plan *plan, const char *kernel, int64_t M, int64_t N,
                                 int64_t K, int32_t variant)
{
    for (int i = 0; i < plan->count; i++) {
        const arb_spec *s = &plan->items[i].spec;
        if (strcmp(s->kernel, kernel) == 0 && s->M == M && s->N == N && s->K == K &&
            s->variant == variant)
            return s;
    }
    return NULL;
}

static int parse(const char *line, bench_options *o, char *err, size_t len);

/* --gemm keeps the fused kernels (the previous path) at any M, and adds the
 * staged kernels where the trainer's plan on the target is staged. */
Test(bench, gemm_plans_list_the_staged_kernels_on_sm_90a)
{
    bench_options o;
    char msg[512];
    bench_plan plan;
    arb_err err = {0};
    /* N != K, so fwd and grad_x stage different act_split and tc_gemm specs. */
    cr_assert_eq(parse("arb-bench --gemm 8192 2048 4096 64 --gemm 1024 2048 4096 64", &o, msg,
                       sizeof(msg)),
                 0, "%s", msg);
    cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_BF16X2, "sm_90a", &plan, &err),
                 ARB_OK, "%s", err.msg);
    cr_assert_str_eq(plan.arch, "sm_90a");
    cr_assert_eq(count_kernel(&plan, "ternary_fwd"), 2);
    cr_assert_eq(count_kernel(&plan, "ternary_grad_x"), 2);
    const arb_spec *fused = find_spec(&plan, "ternary_fwd", 8192, 2048, 4096, 0);
    cr_assert_not_null(fused, "the fused kernel at M = 8192");
    cr_assert_eq(fused->prec, ARB_PREC_BF16X2);
    cr_assert_not_null(find_spec(&plan, "ternary_grad_x", 8192, 2048, 4096, 0));
    /* One decoded weight each way for both shapes (same N x K: listed once). */
    cr_assert_eq(count_kernel(&plan, "ternary_decode"), 2);
    cr_assert_not_null(find_spec(&plan, "ternary_decode", 1, 2048, 4096, 0));
    cr_assert_not_null(find_spec(&plan, "ternary_decode", 1, 2048, 4096, ARB_VARIANT_TRANS));
    cr_assert_eq(count_kernel(&plan, "act_split"), 4);
    cr_assert_not_null(find_spec(&plan, "act_split", 8192, 1, 4096, 0), "fwd splits x");
    cr_assert_not_null(find_spec(&plan, "act_split", 8192, 1, 2048, 0), "grad_x splits gy");
    cr_assert_eq(count_kernel(&plan, "tc_gemm"), 4);
    cr_assert_not_null(find_spec(&plan, "tc_gemm", 8192, 2048, 4096, 0), "fwd: N out, K reduced");
    cr_assert_not_null(find_spec(&plan, "tc_gemm", 8192, 4096, 2048, 0), "grad_x: K out, N");
    cr_assert_eq(plan.count, 14);
    for (int i = 0; i < plan.count; i++) {
        const arb_spec *sp = &plan.items[i].spec;
        arb_spec dflt = *sp;
        dflt.blocks = arb_kernel_find(sp->kernel)->default_blocks(&dflt);
        cr_assert_eq(arb_spec_check(&dflt, &err), ARB_OK, "%s: %s", sp->kernel, err.msg);
    }
    bench_plan_free(&plan);

    /* No target, or sm_90 without wgmma, or fp32: the fused kernels only. */
    const char *const fused_only[] = {NULL, "sm_90"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_BF16X2, fused_only[i], &plan,
                                      &err),
                     ARB_OK, "%s", err.msg);
        cr_assert_eq(plan.count, 4, "%s", fused_only[i] ? fused_only[i] : "NULL");
        cr_assert_eq(count_kernel(&plan, "tc_gemm"), 0);
        bench_plan_free(&plan);
    }
    cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_FP32, "sm_90a", &plan, &err),
                 ARB_OK, "%s", err.msg);
    cr_assert_eq(plan.count, 4);
    bench_plan_free(&plan);

    /* --kernel picks one of them; a staged kernel only where the plan stages. */
    cr_assert_eq(parse("arb-bench --gemm 8192 2048 4096 64 --kernel tc_gemm", &o, msg, sizeof(msg)),
                 0, "%s", msg);
    cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_BF16, "sm_90a", &plan, &err),
                 ARB_OK, "%s", err.msg);
    cr_assert_eq(plan.count, 2);
    cr_assert_eq(count_kernel(&plan, "tc_gemm"), 2);
    bench_plan_free(&plan);
    cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_BF16, NULL, &plan, &err),
                 ARB_ERR_INVALID_ARG);
    cr_assert_not_null(strstr(err.msg, "tc_gemm"), "%s", err.msg);

    /* The op rows' plan column: what the jit backend launches. */
    char text[128];
    cr_assert_eq(bench_op_plan("ternary_fwd", 8192, 4096, 4096, 64, ARB_PREC_BF16, "sm_90a", text,
                               sizeof(text)),
                 3);
    cr_assert_str_eq(text, "ternary_decode+act_split+tc_gemm");
    cr_assert_eq(bench_op_plan("ternary_grad_x", 8192, 4096, 4096, 64, ARB_PREC_FP32, "sm_90a",
                               text, sizeof(text)),
                 1);
    cr_assert_str_eq(text, "ternary_grad_x");
    cr_assert_eq(bench_op_plan("ternary_fwd", 16, 4096, 4096, 64, ARB_PREC_TF32, "sm_90a", text,
                               sizeof(text)),
                 1);
    cr_assert_str_eq(text, "ternary_fwd");
    cr_assert_eq(bench_op_plan("ternary_fwd", 8192, 4096, 4096, 64, ARB_PREC_BF16X3, NULL, text,
                               sizeof(text)),
                 1);
    cr_assert_eq(bench_op_plan("add", 8, 1, 1, 1, ARB_PREC_FP32, NULL, text, sizeof(text)), 0);
    cr_assert_str_eq(text, "");
}

/* ---- layouts against the templates -------------------------------------------------- */

/* Parameters of `<stem>_kernel(...)` in the template text. */
static int template_params(const char *stem, const char *file)
{
    char path[512], *text = NULL;
    snprintf(path, sizeof(path), "%s/kernel_templates/%s", ARB_SOURCE_DIR, file);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t cap = 1 << 20;
    text = calloc(1, cap);
    size_t n = fread(text, 1, cap - 1, f);
    fclose(f);
    text[n] = '\0';
    char needle[96];
    snprintf(needle, sizeof(needle), "%s_kernel(", stem);
    char *p = strstr(text, needle);
    cr_assert_not_null(p, "%s: no %s", path, needle);
    p += strlen(needle);
    int depth = 0, params = 1, empty = 1;
    for (; *p && !(depth == 0 && *p == ')'); p++) {
        if (*p == '(' || *p == '<')
            depth++;
        else if (*p == ')' || *p == '>')
            depth--;
        else if (*p == ',' && depth == 0)
            params++;
        if (!isspace((unsigned char)*p))
            empty = 0;
    }
    free(text);
    return empty ? 0 : params;
}

Test(bench, every_kernel_layout_matches_its_template_signature)
{
    bench_plan plan = base_plan();
    for (int k = 0; k < arb_kernel_count(); k++) {
        const arb_kernel_def *def = arb_kernel_at(k);
        const arb_spec *spec = plan_spec(&plan, def->name);
        cr_assert_not_null(spec);
        bench_layout l;
        arb_err err = {0};
        cr_assert_eq(bench_layout_for(spec, &l, &err), ARB_OK, "%s", err.msg);
        int want = template_params(def->name, def->template_file);
        cr_assert_eq(l.n_args, want, "%s: the layout passes %d parameters, the template takes %d",
                     def->name, l.n_args, want);
        int compared = 0;
        for (int b = 0; b < l.n_bufs; b++) {
            cr_assert_gt(l.bufs[b].bytes, 0, "%s.%s is empty", def->name, l.bufs[b].name);
            compared += l.bufs[b].cmp != CMP_NONE;
            if (l.bufs[b].role == ROLE_IN)
                cr_assert_eq(l.bufs[b].cmp, CMP_NONE);
        }
        cr_assert_geq(compared, 1, "%s: nothing is compared", def->name);
        cr_assert_gt(l.total_bytes, 0);
    }
    bench_layout l;
    arb_err err = {0};
    arb_spec unknown = {.kernel = "no_such_kernel"};
    cr_assert_eq(bench_layout_for(&unknown, &l, &err), ARB_ERR_NOT_FOUND);
    bench_plan_free(&plan);
}

Test(bench, filled_buffers_hold_valid_data)
{
    arb_spec s;
    cr_assert_eq(arb_spec_init(&s, "ternary_update_direct", 64, 96, 128, 32, ARB_PREC_FP32,
                               ARB_VARIANT_STEP | ARB_VARIANT_E_GRAD, NULL),
                 ARB_OK);
    bench_layout l;
    cr_assert_eq(bench_layout_for(&s, &l, NULL), ARB_OK);
    bench_rng rng = {42};
    for (int b = 0; b < l.n_bufs; b++) {
        const bench_buf *buf = &l.bufs[b];
        void *host = malloc(buf->bytes);
        bench_fill(buf, &rng, host);
        if (buf->gen == GEN_TRITS) {
            cr_assert_eq(arb_ternary_validate(host, buf->count, NULL), ARB_OK);
        } else if (buf->gen == GEN_FLOAT || buf->gen == GEN_SMALLINT) {
            int nonzero = 0;
            for (size_t i = 0; i < buf->count; i++)
                nonzero += ((float *)host)[i] != 0.0f;
            cr_assert_gt(nonzero, 0, "%s is all zeros", buf->name);
        } else if (buf->gen == GEN_INT && buf->type == BT_I8) {
            for (size_t i = 0; i < buf->count; i++)
                cr_assert(((int8_t *)host)[i] >= buf->lo && ((int8_t *)host)[i] <= buf->hi);
        }
        free(host);
    }
}

/* The staged kernels' buffers are exactly as big as arb_staged_* say, in
 * every tensor-core mode and both orientations; their operands are valid
 * bf16 (tf32: fp32) values and their exact outputs compare bit for bit. */
Test(bench, staged_layouts_have_the_staged_sizes)
{
    static const arb_precision modes[] = {ARB_PREC_TF32, ARB_PREC_BF16, ARB_PREC_BF16X2,
                                          ARB_PREC_BF16X3};
    const int64_t M = 200, N = 96, K = 80, gs = 16; /* nothing a multiple of the padding */
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        arb_precision prec = modes[m];
        size_t elem = (size_t)arb_staged_elem_bytes(prec);
        bench_layout l;
        arb_err err = {0};
        arb_spec s;
        for (int trans = 0; trans < 2; trans++) {
            cr_assert_eq(arb_spec_init(&s, "ternary_decode", 1, N, K, gs, prec,
                                       trans ? ARB_VARIANT_TRANS : 0, NULL),
                         ARB_OK);
            cr_assert_eq(bench_layout_for(&s, &l, &err), ARB_OK, "%s", err.msg);
            cr_assert_eq(l.n_bufs, 3);
            cr_assert_eq(l.gemm, GEMM_NONE);
            cr_assert_eq(l.bufs[l.buf_packed].bytes, arb_packed_alloc_size((size_t)(N * K)));
            cr_assert_eq(l.bufs[l.buf_E].bytes, (size_t)(N * K / gs));
            const bench_buf *out = &l.bufs[l.buf_out];
            cr_assert_eq(out->bytes, arb_staged_weight_bytes(N, K, prec, trans));
            cr_assert_eq(out->bytes / out->count, elem);
            cr_assert_eq(out->role, ROLE_OUT);
            cr_assert_eq(out->cmp, CMP_EXACT);
        }
        cr_assert_eq(arb_spec_init(&s, "act_split", M, 1, K, 1, prec, 0, NULL), ARB_OK);
        cr_assert_eq(bench_layout_for(&s, &l, &err), ARB_OK, "%s", err.msg);
        cr_assert_eq(l.n_bufs, 2);
        cr_assert_eq(l.bufs[0].bytes, (size_t)(M * K) * 4);
        cr_assert_eq(l.bufs[l.buf_out].bytes, arb_staged_act_bytes(M, K, prec));
        cr_assert_eq(l.bufs[l.buf_out].cmp, CMP_EXACT);

        cr_assert_eq(arb_spec_init(&s, "tc_gemm", M, N, K, 1, prec, 0, NULL), ARB_OK);
        cr_assert_eq(bench_layout_for(&s, &l, &err), ARB_OK, "%s", err.msg);
        cr_assert_eq(l.n_bufs, 4, "A, B, E (read by the scale-after variant) and C");
        cr_assert_eq(l.gemm, GEMM_NONE, "no cuBLAS peer per tc_gemm row");
        cr_assert_eq(l.bufs[0].bytes, arb_staged_act_bytes(M, K, prec));
        cr_assert_eq(l.bufs[1].bytes, arb_staged_weight_bytes(N, K, prec, 0));
        cr_assert_eq(l.bufs[l.buf_out].bytes, (size_t)(M * N) * 4);
        cr_assert_eq(l.bufs[l.buf_out].cmp, CMP_REL);
        cr_assert_float_eq(l.bufs[l.buf_out].tol, bench_tolerance(prec), 0);
        /* No fp32 mode: the trusted result is the default configuration in its own mode. */
        arb_spec ref = bench_reference_spec(&s);
        cr_assert_eq(ref.prec, prec);
        cr_assert_eq(arb_spec_check(&ref, NULL), ARB_OK);
        double bytes = 0, flops = 0;
        arb_kernel_find("tc_gemm")->work(&s, &bytes, &flops);
        cr_assert(bytes > 0 && flops == 2.0 * M * N * K, "GB/s and TFLOP/s both show");
        /* Operands hold finite, nonzero values of the staged type. */
        bench_rng rng = {11};
        for (int b = 0; b < 2; b++) {
            const bench_buf *buf = &l.bufs[b];
            cr_assert_eq(buf->bytes / buf->count, elem);
            void *host = malloc(buf->bytes);
            bench_fill(buf, &rng, host);
            int nonzero = 0;
            for (size_t i = 0; i < buf->count; i++) {
                float v = elem == 4 ? ((float *)host)[i]
                                    : bench_bf16_to_float(((uint16_t *)host)[i]);
                cr_assert(isfinite(v) && fabsf(v) <= 1.0f, "%s[%zu] = %g", buf->name, i, v);
                nonzero += v != 0.0f;
            }
            cr_assert_gt(nonzero, (int)(buf->count / 2), "%s is mostly zeros", buf->name);
            free(host);
        }
    }

    /* A differing bf16 element is named with its value and bits. */
    arb_spec s;
    cr_assert_eq(arb_spec_init(&s, "act_split", 4, 1, 8, 1, ARB_PREC_BF16, 0, NULL), ARB_OK);
    bench_layout l;
    cr_assert_eq(bench_layout_for(&s, &l, NULL), ARB_OK);
    void *got[BENCH_MAX_BUFS] = {0}, *ref[BENCH_MAX_BUFS] = {0};
    for (int b = 0; b < l.n_bufs; b++) {
        got[b] = calloc(1, l.bufs[b].bytes);
        ref[b] = calloc(1, l.bufs[b].bytes);
    }
    ((uint16_t *)got[l.buf_out])[5] = bench_bf16(1.5f);
    double rel = 0;
    char reason[512] = "";
    cr_assert_eq(bench_compare(&l, got, ref, &rel, reason, sizeof(reason)), -1);
    cr_assert_not_null(strstr(reason, "out[5] = 1.5 (bf16 0x3fc0)"), "%s", reason);
    for (int b = 0; b < l.n_bufs; b++) {
        free(got[b]);
        free(ref[b]);
    }
}

Test(bench, comparisons_name_the_first_disagreement)
{
    arb_spec s;
    cr_assert_eq(arb_spec_init(&s, "ternary_update_direct", 8, 16, 20, 4, ARB_PREC_FP32,
                               ARB_VARIANT_STEP | ARB_VARIANT_E_GRAD, NULL),
                 ARB_OK);
    bench_layout l;
    cr_assert_eq(bench_layout_for(&s, &l, NULL), ARB_OK);
    void *got[BENCH_MAX_BUFS] = {0}, *ref[BENCH_MAX_BUFS] = {0};
    bench_rng rng = {3};
    int t_accum = -1, score = -1;
    for (int b = 0; b < l.n_bufs; b++) {
        got[b] = malloc(l.bufs[b].bytes);
        ref[b] = malloc(l.bufs[b].bytes);
        bench_fill(&l.bufs[b], &rng, ref[b]);
        memcpy(got[b], ref[b], l.bufs[b].bytes);
        if (strcmp(l.bufs[b].name, "T_accum") == 0)
            t_accum = b;
        if (strcmp(l.bufs[b].name, "score") == 0)
            score = b;
    }
    cr_assert(t_accum >= 0 && score >= 0);
    double rel = 0;
    char reason[512] = "";
    cr_assert_eq(bench_compare(&l, got, ref, &rel, reason, sizeof(reason)), 0, "%s", reason);
    ((int8_t *)got[t_accum])[17] = (int8_t)(((int8_t *)ref[t_accum])[17] + 1);
    cr_assert_eq(bench_compare(&l, got, ref, &rel, reason, sizeof(reason)), -1);
    cr_assert_not_null(strstr(reason, "T_accum[17] = "), "%s", reason);
    for (int b = 0; b < l.n_bufs; b++) {
        free(got[b]);
        free(ref[b]);
    }

    /* Float outputs: within the precision's tolerance, and a poisoned (NaN) element fails. */
    cr_assert_eq(arb_spec_init(&s, "ternary_fwd", 4, 8, 16, 16, ARB_PREC_FP32, 0, NULL), ARB_OK);
    cr_assert_eq(bench_layout_for(&s, &l, NULL), ARB_OK);
    for (int b = 0; b < l.n_bufs; b++) {
        got[b] = calloc(1, l.bufs[b].bytes);
        ref[b] = calloc(1, l.bufs[b].bytes);
    }
    float *y = ref[l.buf_out], *g = got[l.buf_out];
    for (int i = 0; i < 32; i++)
        y[i] = g[i] = bench_rng_float(&rng);
    g[5] *= 1.0f + 1e-7f;
    cr_assert_eq(bench_compare(&l, got, ref, &rel, reason, sizeof(reason)), 0, "%s", reason);
    cr_assert(rel >= 0 && rel < 2e-6);
    g[5] = NAN;
    cr_assert_eq(bench_compare(&l, got, ref, &rel, reason, sizeof(reason)), -1);
    cr_assert_not_null(strstr(reason, "unwritten"), "%s", reason);
    g[5] = y[5] + 0.5f;
    cr_assert_eq(bench_compare(&l, got, ref, &rel, reason, sizeof(reason)), -1);
    cr_assert_not_null(strstr(reason, "y: rel err"), "%s", reason);
    for (int b = 0; b < l.n_bufs; b++) {
        free(got[b]);
        free(ref[b]);
    }
}

/* ---- the tuning table ---------------------------------------------------------------- */

static arb_settings engine_settings(const char *cache)
{
    arb_settings s;
    arb_settings_load(&s);
    arb_settings_set(&s, ARB_SET_CACHE, cache, NULL);
    arb_settings_set(&s, ARB_SET_ARCH, "sm_90", NULL);
    arb_settings_set(&s, ARB_SET_CACHE_READONLY, "", NULL);
    arb_settings_set(&s, ARB_SET_CACHE_MODE, "normal", NULL);
    arb_settings_set(&s, ARB_SET_CACHE_DISABLE, "0", NULL);
    arb_settings_set(&s, ARB_SET_RECACHE, "0", NULL);
    arb_settings_set(&s, ARB_SET_KERNEL_DIR, "", NULL);
    return s;
}

static arb_engine *compile_only_engine(const arb_settings *s)
{
    arb_engine_options opt;
    arb_engine_options_init(&opt);
    opt.settings = s;
    opt.compile_only = 1;
    arb_engine *e = NULL;
    arb_err err = {0};
    cr_assert_eq(arb_engine_open(&e, &opt, &err), ARB_OK, "%s", err.msg);
    return e;
}

static bench_row kernel_row(const arb_spec *spec, const arb_blocks *b, const char *status,
                            double median_us)
{
    bench_row row;
    bench_row_init(&row);
    snprintf(row.kind, sizeof(row.kind), "kernel");
    snprintf(row.name, sizeof(row.name), "%s", spec->kernel);
    row.has_spec = 1;
    row.spec = *spec;
    row.spec.blocks = *b;
    bench_group_name(spec, row.group, sizeof(row.group));
    bench_format_blocks(b, row.config, sizeof(row.config));
    snprintf(row.status, sizeof(row.status), "%s", status);
    if (strcmp(status, "ok") != 0)
        snprintf(row.reason, sizeof(row.reason), "planted %s", status);
    row.median_us = median_us;
    row.p20_us = median_us * 0.99;
    row.p80_us = median_us * 1.01;
    row.repeats = 20;
    bench_replay_command(&row.spec, row.command, sizeof(row.command));
    return row;
}

typedef struct seen_rows {
    int count, stale, ok, failed_inf;
    double fastest_ok;
    arb_blocks fastest;
} seen_rows;

static int count_row(void *ctx, const arb_tune_row *row)
{
    seen_rows *s = ctx;
    s->count++;
    s->stale += row->stale;
    if (strcmp(row->status, "ok") == 0) {
        s->ok++;
        if (!(s->fastest_ok <= row->median_us)) {
            s->fastest_ok = row->median_us;
            s->fastest = (arb_blocks){row->bm, row->bn, row->bk, row->tm, row->tn, row->warps,
                                      row->stages};
        }
    } else {
        s->failed_inf += isinf(row->median_us);
        cr_assert(row->reason[0], "a failed row keeps its reason");
    }
    cr_assert_not_null(strstr(row->command, "arb-bench --kernel "), "%s", row->command);
    return 0;
}

Test(bench, tuning_rows_round_trip_go_stale_and_steer_the_engine)
{
    char cache_path[400];
    th_path(cache_path, sizeof(cache_path), "kernels.sqlite");
    arb_settings settings = engine_settings(cache_path);
    arb_engine *e = compile_only_engine(&settings);
    const char *nvrtc = arb_engine_nvrtc_version(e);

    bench_report r;
    bench_report_init(&r, "sweep-blocks", "arb-bench --sweep-blocks");
    r.has_device = 1;
    snprintf(r.device, sizeof(r.device), "NVIDIA H100 80GB HBM3");
    r.sm_count = 132;
    snprintf(r.arch, sizeof(r.arch), "sm_90");
    snprintf(r.driver, sizeof(r.driver), "13.0");
    snprintf(r.nvrtc, sizeof(r.nvrtc), "%s", nvrtc);

    arb_spec spec;
    cr_assert_eq(arb_spec_init(&spec, "ternary_fwd", 1024, 4096, 4096, 64, ARB_PREC_FP32, 0, NULL),
                 ARB_OK);
    arb_blocks a = {64, 64, 16, 4, 4, 8, 1}, b = {128, 64, 16, 8, 4, 8, 1},
               c = {32, 32, 16, 2, 2, 8, 1}, d = {64, 32, 16, 4, 2, 8, 1};
    bench_row rows[5] = {
        kernel_row(&spec, &a, "ok", 900.0),
        kernel_row(&spec, &b, "ok", 700.0),
        kernel_row(&spec, &c, "wrong", NAN),
        kernel_row(&spec, &d, "compile_failed", NAN),
        kernel_row(&spec, &a, "unverified", NAN), /* not recordable */
    };
    arb_cache *cache = arb_engine_cache(e);
    cr_assert_not_null(cache);
    int recorded = 0;
    for (int i = 0; i < 5; i++) {
        arb_tune_row t;
        if (bench_tune_row_from(&rows[i], &r, &t) != 0)
            continue;
        arb_err err = {0};
        cr_assert_eq(arb_tune_put(cache, &t, &err), ARB_OK, "%s", err.msg);
        recorded++;
    }
    cr_assert_eq(recorded, 4);
    /* Measuring a candidate again replaces its row: one row per configuration. */
    rows[0].median_us = 650.0;
    arb_tune_row t;
    cr_assert_eq(bench_tune_row_from(&rows[0], &r, &t), 0);
    cr_assert_eq(arb_tune_put(cache, &t, NULL), ARB_OK);

    seen_rows seen = {0, 0, 0, 0, NAN, {0}};
    cr_assert_eq(arb_tune_each(cache, arb_engine_build_id(), nvrtc, count_row, &seen, NULL),
                 ARB_OK);
    cr_assert_eq(seen.count, 4, "one row per measured configuration, got %d", seen.count);
    cr_assert_eq(seen.stale, 0);
    cr_assert_eq(seen.ok, 2);
    cr_assert_eq(seen.failed_inf, 2, "failed candidates record an infinite time");
    cr_assert_float_eq(seen.fastest_ok, 650.0, 1e-9);
    cr_assert_eq(memcmp(&seen.fastest, &a, sizeof(a)), 0);

    seen_rows other = {0, 0, 0, 0, NAN, {0}};
    cr_assert_eq(arb_tune_each(cache, "another-build", nvrtc, count_row, &other, NULL), ARB_OK);
    cr_assert_eq(other.stale, 4, "rows of another build are stale");
    arb_engine_close(e);

    /* A fresh engine picks the fastest current ok row. */
    e = compile_only_engine(&settings);
    arb_spec s = spec;
    cr_assert_eq(arb_engine_resolve_blocks(e, &s), ARB_BLOCKS_TUNED);
    cr_assert_eq(memcmp(&s.blocks, &a, sizeof(a)), 0, "the engine took %d x %d", s.blocks.bm,
                 s.blocks.bn);
    arb_engine_close(e);
    bench_report_free(&r);
}

/* ---- a small JSON parser (enough to validate the writer) ------------------------------ */

typedef enum { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_type;

typedef struct jv {
    jv_type type;
    double num;
    char *str;         /* JV_STR (decoded) */
    struct jv *items;  /* JV_ARR, JV_OBJ values */
    char **keys;       /* JV_OBJ */
    int n;
} jv;

typedef struct jparser {
    const char *p;
    char error[128];
} jparser;

static void jv_free(jv *v)
{
    free(v->str);
    for (int i = 0; i < v->n; i++) {
        jv_free(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

static void ws(jparser *j)
{
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')
        j->p++;
}

static int jfail(jparser *j, const char *what)
{
    if (!j->error[0])
        snprintf(j->error, sizeof(j->error), "%s at '%.20s'", what, j->p);
    return 0;
}

static int parse_value(jparser *j, jv *out);

static int parse_string(jparser *j, char **out)
{
    if (*j->p != '"')
        return jfail(j, "expected a string");
    j->p++;
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c == '\0' || c < 0x20) {
            free(s);
            return jfail(j, "raw control character or end in a string");
        }
        if (n + 8 > cap)
            s = realloc(s, cap *= 2);
        if (c == '\\') {
            j->p++;
            switch (*j->p) {
            case '"': s[n++] = '"'; break;
            case '\\': s[n++] = '\\'; break;
            case '/': s[n++] = '/'; break;
            case 'b': s[n++] = '\b'; break;
            case 'f': s[n++] = '\f'; break;
            case 'n': s[n++] = '\n'; break;
            case 'r': s[n++] = '\r'; break;
            case 't': s[n++] = '\t'; break;
            case 'u':
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)j->p[i])) {
                        free(s);
                        return jfail(j, "bad \\u escape");
                    }
                s[n++] = (char)strtol((char[5]){j->p[1], j->p[2], j->p[3], j->p[4], 0}, NULL, 16);
                j->p += 4;
                break;
            default:
                free(s);
                return jfail(j, "bad escape");
            }
            j->p++;
        } else {
            s[n++] = (char)c;
            j->p++;
        }
    }
    j->p++;
    s[n] = '\0';
    *out = s;
    return 1;
}

static int parse_number(jparser *j, jv *out)
{
    const char *start = j->p;
    if (*j->p == '-')
        j->p++;
    if (!isdigit((unsigned char)*j->p))
        return jfail(j, "expected a value");
    if (*j->p == '0' && isdigit((unsigned char)j->p[1]))
        return jfail(j, "leading zero");
    while (isdigit((unsigned char)*j->p))
        j->p++;
    if (*j->p == '.') {
        j->p++;
        if (!isdigit((unsigned char)*j->p))
            return jfail(j, "digits after '.'");
        while (isdigit((unsigned char)*j->p))
            j->p++;
    }
    if (*j->p == 'e' || *j->p == 'E') {
        j->p++;
        if (*j->p == '+' || *j->p == '-')
            j->p++;
        if (!isdigit((unsigned char)*j->p))
            return jfail(j, "digits in the exponent");
        while (isdigit((unsigned char)*j->p))
            j->p++;
    }
    out->type = JV_NUM;
    out->num = strtod(start, NULL);
    return 1;
}

static int parse_container(jparser *j, jv *out, int object)
{
    char close = object ? '}' : ']';
    out->type = object ? JV_OBJ : JV_ARR;
    j->p++;
    ws(j);
    if (*j->p == close) {
        j->p++;
        return 1;
    }
    for (;;) {
        out->items = realloc(out->items, (size_t)(out->n + 1) * sizeof(jv));
        memset(&out->items[out->n], 0, sizeof(jv));
        if (object) {
            out->keys = realloc(out->keys, (size_t)(out->n + 1) * sizeof(char *));
            out->keys[out->n] = NULL;
            ws(j);
            if (!parse_string(j, &out->keys[out->n]))
                return out->n++, 0;
            ws(j);
            if (*j->p != ':')
                return out->n++, jfail(j, "expected ':'");
            j->p++;
        }
        int ok = parse_value(j, &out->items[out->n]);
        out->n++;
        if (!ok)
            return 0;
        ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == close) {
            j->p++;
            return 1;
        }
        return jfail(j, "expected ',' or a closing bracket");
    }
}

static int parse_value(jparser *j, jv *out)
{
    ws(j);
    if (*j->p == '{' || *j->p == '[')
        return parse_container(j, out, *j->p == '{');
    if (*j->p == '"') {
        out->type = JV_STR;
        return parse_string(j, &out->str);
    }
    if (strncmp(j->p, "true", 4) == 0 || strncmp(j->p, "false", 5) == 0) {
        out->type = JV_BOOL;
        out->num = *j->p == 't';
        j->p += *j->p == 't' ? 4 : 5;
        return 1;
    }
    if (strncmp(j->p, "null", 4) == 0) {
        out->type = JV_NULL;
        j->p += 4;
        return 1;
    }
    return parse_number(j, out);
}

static const jv *jget(const jv *obj, const char *key)
{
    if (obj->type != JV_OBJ)
        return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

/* A report with awkward strings, a NaN, a failure and a peer. */
static void sample_report(bench_report *r)
{
    bench_report_init(r, "sweep-blocks", "arb-bench --sweep-blocks \"x\\y\"\n");
    r->has_device = 1;
    snprintf(r->device, sizeof(r->device), "NVIDIA H100 \"80GB\"");
    r->sm_count = 132;
    r->cc_major = 9;
    snprintf(r->arch, sizeof(r->arch), "sm_90");
    arb_spec spec;
    cr_assert_eq(arb_spec_init(&spec, "ternary_fwd", 1024, 4096, 4096, 64, ARB_PREC_FP32, 0, NULL),
                 ARB_OK);
    arb_spec spec2;
    cr_assert_eq(arb_spec_init(&spec2, "relu_fwd", 4194304, 1, 1, 1, ARB_PREC_FP32, 1, NULL),
                 ARB_OK);
    arb_blocks a = {64, 64, 16, 4, 4, 8, 1}, b = {128, 128, 8, 8, 8, 8, 1},
               c = {32, 32, 16, 2, 2, 8, 1};
    bench_row rows[5] = {
        kernel_row(&spec, &b, "ok", 812.5),
        kernel_row(&spec, &a, "ok", 640.25),
        kernel_row(&spec, &c, "wrong", NAN),
        kernel_row(&spec2, &(arb_blocks){0, 0, 0, 0, 0, 8, 0}, "ok", 41.0),
        kernel_row(&spec2, &(arb_blocks){0, 0, 0, 0, 0, 2, 0}, "launch_failed", NAN),
    };
    rows[0].is_default = 1;
    snprintf(rows[2].reason, sizeof(rows[2].reason),
             "y[3] = \"nan\",\tthe <default> & gives\n\x01 \\ 1.5");
    for (int i = 0; i < 5; i++) {
        rows[i].bytes = 4e7;
        rows[i].flops = i < 3 ? 3.4e10 : 4e6;
        bench_row_derive(&rows[i], &r->ceil);
        cr_assert_geq(bench_report_add(r, &rows[i]), 0);
    }
    bench_row peer;
    bench_row_init(&peer);
    snprintf(peer.kind, sizeof(peer.kind), "peer");
    snprintf(peer.name, sizeof(peer.name), "cublas_fp32");
    snprintf(peer.status, sizeof(peer.status), "ok");
    peer.median_us = 700;
    cr_assert_geq(bench_report_add(r, &peer), 0);
    /* A whole staged op (--gemm), beside cuBLAS fp32. */
    bench_row op;
    bench_row_init(&op);
    snprintf(op.kind, sizeof(op.kind), "op");
    snprintf(op.name, sizeof(op.name), "ternary_fwd");
    op.has_spec = 1;
    cr_assert_eq(arb_spec_init(&op.spec, "ternary_fwd", 8192, 4096, 4096, 64, ARB_PREC_BF16X2, 0,
                               NULL),
                 ARB_OK);
    snprintf(op.group, sizeof(op.group), "op ternary_fwd M=8192 N=4096 K=4096 gs=64 bf16x2");
    snprintf(op.config, sizeof(op.config), "ternary_decode+act_split+tc_gemm");
    snprintf(op.status, sizeof(op.status), "ok");
    op.median_us = op.p20_us = op.p80_us = 812.5;
    op.flops = 2.0 * 8192 * 4096 * 4096;
    op.rel_err = 3.1e-7;
    op.value = 2.9e-7;
    snprintf(op.unit, sizeof(op.unit), "f64_rel_err");
    snprintf(op.peer, sizeof(op.peer), "cublas_fp32");
    op.peer_us = 5500;
    op.peer_ratio = op.peer_us / op.median_us;
    bench_row_derive(&op, &r->ceil);
    cr_assert_geq(bench_report_add(r, &op), 0);
    bench_mark_winners(r);
}

static char *write_to_string(arb_status (*fn)(const bench_report *, FILE *), const bench_report *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(fn(r, f), ARB_OK);
    fclose(f);
    return buf;
}

static const char *const row_keys[] = {
    "kind",      "name",   "group",      "kernel",    "precision", "M",        "N",
    "K",         "gs",     "variant",    "config",    "config_text", "origin", "is_default",
    "is_winner", "status", "reason",     "median_us", "p20_us",    "p80_us",   "repeats",
    "per_sample", "method", "bytes",     "flops",     "gbps",      "tflops",   "pct_ceiling",
    "bound",     "peer",   "peer_us",    "peer_ratio", "rel_err",  "value",    "unit",
    "command"};

Test(bench, json_output_parses_and_follows_the_schema)
{
    bench_report r;
    sample_report(&r);
    char *text = write_to_string(bench_write_json, &r);
    jparser j = {text, ""};
    jv root;
    memset(&root, 0, sizeof(root));
    int ok = parse_value(&j, &root);
    ws(&j);
    cr_assert(ok && *j.p == '\0', "invalid JSON: %s\n%s", j.error, text);
    cr_assert_eq(root.type, JV_OBJ);
    static const char *const top[] = {"schema", "mode", "command", "build", "device", "cache",
                                      "ceilings", "rows"};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        cr_assert_not_null(jget(&root, top[i]), "no top-level '%s'", top[i]);
    cr_assert_str_eq(jget(&root, "schema")->str, "arb-bench/1");
    cr_assert_str_eq(jget(&root, "command")->str, r.command, "strings survive escaping");
    cr_assert_str_eq(jget(jget(&root, "device"), "name")->str, r.device);
    const jv *rows = jget(&root, "rows");
    cr_assert_eq(rows->type, JV_ARR);
    cr_assert_eq(rows->n, r.count);
    for (int i = 0; i < rows->n; i++) {
        for (size_t k = 0; k < sizeof(row_keys) / sizeof(row_keys[0]); k++)
            cr_assert_not_null(jget(&rows->items[i], row_keys[k]), "row %d lacks '%s'", i,
                               row_keys[k]);
        cr_assert_eq(rows->items[i].n, (int)(sizeof(row_keys) / sizeof(row_keys[0])),
                     "row %d has keys beyond the schema", i);
    }
    const jv *wrong = &rows->items[2];
    cr_assert_str_eq(jget(wrong, "status")->str, "wrong");
    cr_assert_str_eq(jget(wrong, "reason")->str, r.rows[2].reason);
    cr_assert_eq(jget(wrong, "median_us")->type, JV_NULL, "NaN is written as null");
    cr_assert_eq(jget(&rows->items[0], "config")->type, JV_OBJ);
    cr_assert_float_eq(jget(jget(&rows->items[0], "config"), "bm")->num, 128.0, 0);
    cr_assert_eq(jget(&rows->items[5], "config")->type, JV_NULL, "peers have no config");
    cr_assert_eq(jget(&rows->items[1], "is_winner")->num, 1.0);
    cr_assert_eq(jget(&rows->items[0], "is_winner")->num, 0.0);
    cr_assert_float_eq(jget(&rows->items[1], "median_us")->num, 640.25, 1e-9);
    const jv *op = &rows->items[6];
    cr_assert_str_eq(jget(op, "kind")->str, "op");
    cr_assert_str_eq(jget(op, "precision")->str, "bf16x2");
    cr_assert_eq(jget(op, "config")->type, JV_NULL, "an op has a plan, not blocks");
    cr_assert_str_eq(jget(op, "config_text")->str, "ternary_decode+act_split+tc_gemm");
    cr_assert_str_eq(jget(op, "unit")->str, "f64_rel_err");
    cr_assert_eq(jget(op, "is_winner")->num, 0.0, "ops are not candidates");
    jv_free(&root);
    free(text);
    bench_report_free(&r);
}

/* Fields of one CSV record (RFC 4180); advances *p past it. */
static int csv_fields(const char **p)
{
    int fields = 1, quoted = 0;
    for (; **p; (*p)++) {
        char c = **p;
        if (quoted) {
            if (c == '"' && (*p)[1] == '"')
                (*p)++;
            else if (c == '"')
                quoted = 0;
        } else if (c == '"') {
            quoted = 1;
        } else if (c == ',') {
            fields++;
        } else if (c == '\n') {
            (*p)++;
            return fields;
        }
    }
    return fields;
}

Test(bench, csv_rows_have_the_header_fields)
{
    bench_report r;
    sample_report(&r);
    char *text = write_to_string(bench_write_csv, &r);
    const char *p = text;
    int header = csv_fields(&p);
    cr_assert_eq(header, 42);
    int lines = 0;
    while (*p) {
        int n = csv_fields(&p);
        cr_assert_eq(n, header, "line %d has %d fields, the header %d", lines + 2, n, header);
        lines++;
    }
    cr_assert_eq(lines, r.count);
    free(text);
    bench_report_free(&r);
}

/* Tag balance of an SVG (no comments, CDATA or processing instructions). */
static void check_balanced(const char *s)
{
    char stack[64][32];
    int depth = 0;
    for (const char *p = s; (p = strchr(p, '<')) != NULL;) {
        const char *end = strchr(p, '>');
        cr_assert_not_null(end, "unterminated tag");
        int closing = p[1] == '/', self = end[-1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strcspn(name, " />\n");
        cr_assert_gt(len, 0);
        cr_assert_lt(len, 32);
        if (closing) {
            cr_assert_gt(depth, 0, "</%.*s> without an opening tag", (int)len, name);
            depth--;
            cr_assert_eq(strncmp(stack[depth], name, len), 0, "<%s> closed by </%.*s>",
                         stack[depth], (int)len, name);
            cr_assert_eq(stack[depth][len], '\0');
        } else if (!self) {
            cr_assert_lt(depth, 64);
            memcpy(stack[depth], name, len);
            stack[depth][len] = '\0';
            depth++;
        }
        /* Text between tags must not hold a raw '<' or an unescaped '&'. */
        const char *next = strchr(end + 1, '<');
        for (const char *t = end + 1; t && *t && t < (next ? next : t + strlen(t)); t++)
            if (*t == '&')
                cr_assert(strncmp(t, "&amp;", 5) == 0 || strncmp(t, "&lt;", 4) == 0 ||
                              strncmp(t, "&gt;", 4) == 0 || strncmp(t, "&quot;", 6) == 0 ||
                              strncmp(t, "&apos;", 6) == 0,
                          "unescaped '&'");
        p = end + 1;
    }
    cr_assert_eq(depth, 0, "%d tags left open", depth);
}

Test(bench, svg_is_well_formed_with_one_element_per_candidate)
{
    bench_report r;
    sample_report(&r);
    char *text = write_to_string(bench_write_svg, &r);
    cr_assert_eq(strncmp(text, "<svg", 4), 0);
    size_t len = strlen(text);
    cr_assert(len > 7 && strcmp(text + len - 7, "</svg>\n") == 0, "ends with </svg>");
    check_balanced(text);
    int cands = 0, panels = 0;
    for (const char *p = text; (p = strstr(p, "class=\"cand\"")) != NULL; p++)
        cands++;
    for (const char *p = text; (p = strstr(p, "class=\"panel\"")) != NULL; p++)
        panels++;
    cr_assert_eq(cands, 5, "one element per kernel row, got %d", cands);
    cr_assert_eq(panels, 2, "one panel per kernel and shape");
    cr_assert_not_null(strstr(text, "&lt;default&gt; &amp; gives"), "reasons are escaped");
    free(text);
    bench_report_free(&r);
}

Test(bench, table_and_winners_print)
{
    bench_report r;
    sample_report(&r);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    bench_print_table(f, &r);
    bench_print_winners(f, &r);
    fclose(f);
    cr_assert_not_null(strstr(buf, "kernels"));
    cr_assert_not_null(strstr(buf, "+64x64x16/4x4 w8"), "the winner is marked:\n%s", buf);
    cr_assert_not_null(strstr(buf, "1.27x vs default"), "speedup over the default:\n%s", buf);
    cr_assert_not_null(strstr(buf, "planted launch_failed"), "failure reasons are listed");
    const char *ops = strstr(buf, "\nops (whole plan as the trainer runs it");
    cr_assert_not_null(ops, "%s", buf);
    cr_assert_not_null(strstr(ops, "ternary_decode+act_split+tc_gemm"), "%s", ops);
    cr_assert_not_null(strstr(ops, "3.10e-07"), "rel err against the fp32 op:\n%s", ops);
    cr_assert_not_null(strstr(ops, "2.90e-07"), "rel err against float64 rows:\n%s", ops);
    cr_assert_not_null(strstr(ops, "6.77x"), "ratio to cuBLAS fp32:\n%s", ops);
    free(buf);
    bench_report_free(&r);
}

Test(bench, ties_give_one_winner_per_group)
{
    bench_report r;
    bench_report_init(&r, "sweep-blocks", "");
    arb_spec spec;
    cr_assert_eq(arb_spec_init(&spec, "add", 1024, 1, 1, 1, ARB_PREC_FP32, 0, NULL), ARB_OK);
    for (int w = 2; w <= 16; w *= 2) {
        bench_row row = kernel_row(&spec, &(arb_blocks){0, 0, 0, 0, 0, w, 0}, "ok", 1.5);
        bench_report_add(&r, &row);
    }
    bench_mark_winners(&r);
    int winners = 0;
    for (int i = 0; i < r.count; i++)
        winners += r.rows[i].is_winner;
    cr_assert_eq(winners, 1);
    cr_assert(r.rows[0].is_winner, "ties keep the list order");
    bench_report_free(&r);
}

/* ---- statistics, flags, data ---------------------------------------------------------- */

Test(bench, percentiles_and_sizing)
{
    double v[5] = {5, 1, 4, 2, 3};
    cr_assert_float_eq(bench_percentile(v, 5, 0.5), 3.0, 1e-12);
    cr_assert_float_eq(bench_percentile(v, 5, 0.2), 1.8, 1e-12);
    cr_assert_float_eq(bench_percentile(v, 5, 0.8), 4.2, 1e-12);
    cr_assert(isnan(bench_percentile(v, 0, 0.5)));
    double one = 7;
    cr_assert_float_eq(bench_percentile(&one, 1, 0.2), 7.0, 0);
    cr_assert_eq(bench_launches_per_sample(3.0), 34);
    cr_assert_eq(bench_launches_per_sample(250.0), 1);
    cr_assert_eq(bench_launches_per_sample(0.01), 1000);
    cr_assert_eq(bench_sample_count(1000.0, 20, 50.0), 50);
    cr_assert_eq(bench_sample_count(100000.0, 20, 50.0), 20);
    cr_assert_eq(bench_sample_count(1.0, 20, 50.0), 2000);
    /* 36 MB working set: 3 copies give 108 MB >= 2 x 50 MB of L2. */
    cr_assert_eq(bench_copies_for(36e6), 3);
    cr_assert_eq(bench_copies_for(8.0), BENCH_MAX_COPIES);
    cr_assert_eq(bench_copies_for(1e9), 1);
}

static int parse(const char *line, bench_options *o, char *err, size_t len)
{
    static char copy[1024];
    char *argv[64];
    int argc = 0;
    snprintf(copy, sizeof(copy), "%s", line);
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t && argc < 63;
         t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    bench_options_init(o);
    return bench_parse_args(argc, argv, o, err, len);
}

Test(bench, flags_and_replay_commands)
{
    bench_options o;
    char err[512];
    arb_spec spec;
    cr_assert_eq(arb_spec_init(&spec, "ternary_update_direct", 1024, 4096, 256, 64, ARB_PREC_FP32,
                               3, NULL),
                 ARB_OK);
    spec.blocks = (arb_blocks){64, 128, 16, 4, 8, 8, 1};
    char cmd[512];
    bench_replay_command(&spec, cmd, sizeof(cmd));
    cr_assert_eq(parse(cmd, &o, err, sizeof(err)), 0, "%s: %s", cmd, err);
    cr_assert_str_eq(o.kernel, "ternary_update_direct");
    cr_assert(o.has_shape && o.has_blocks && o.has_variant && o.has_precision);
    cr_assert_eq(o.M, 1024);
    cr_assert_eq(o.N, 4096);
    cr_assert_eq(o.K, 256);
    cr_assert_eq(o.gs, 64);
    cr_assert_eq(o.variant, 3);
    cr_assert_eq(memcmp(&o.blocks, &spec.blocks, sizeof(arb_blocks)), 0);
    /* The replayed spec is the measured one. */
    bench_plan plan;
    cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_FP32, NULL, &plan, NULL), ARB_OK);
    cr_assert_eq(plan.count, 1);
    cr_assert(arb_spec_equal(&plan.items[0].spec, &spec));
    cr_assert(plan.items[0].exact);
    bench_plan_free(&plan);

    cr_assert_eq(parse("arb-bench --sweep-blocks shapes.txt --json a.json", &o, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(o.mode, BENCH_MODE_SWEEP);
    cr_assert_str_eq(o.shapes_path, "shapes.txt");
    cr_assert_eq(parse("arb-bench --gemm 1 16384 16384 64 --gemm 16 16384 16384 64", &o, err,
                       sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(o.n_gemm, 2);
    cr_assert_eq(o.gemm[1].M, 16);
    cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_FP32, NULL, &plan, NULL), ARB_OK);
    cr_assert_eq(plan.count, 4, "ternary_fwd and ternary_grad_x per --gemm shape");
    bench_plan_free(&plan);
    /* M = 1 and 16 stay fused on sm_90a too: fewer rows than ARB_STAGED_MIN_ROWS. */
    cr_assert_eq(bench_plan_build(&o, ARB_SOURCE_DIR, ARB_PREC_BF16X2, "sm_90a", &plan, NULL),
                 ARB_OK);
    cr_assert_eq(plan.count, 4);
    bench_plan_free(&plan);

    cr_assert_eq(parse("arb-bench --bogus", &o, err, sizeof(err)), BENCH_EXIT_USAGE);
    cr_assert_not_null(strstr(err, "--bogus"));
    cr_assert_eq(parse("arb-bench --blocks bm=1", &o, err, sizeof(err)), BENCH_EXIT_USAGE);
    cr_assert_eq(parse("arb-bench --kernel nope --shape M=1", &o, err, sizeof(err)),
                 BENCH_EXIT_USAGE);
    cr_assert_eq(parse("arb-bench --kernel add --shape M=0", &o, err, sizeof(err)),
                 BENCH_EXIT_USAGE);
    cr_assert_eq(parse("arb-bench --kernel add --shape Q=3", &o, err, sizeof(err)),
                 BENCH_EXIT_USAGE);
    cr_assert_eq(parse("arb-bench --jit --step", &o, err, sizeof(err)), BENCH_EXIT_USAGE);
    cr_assert_eq(parse("arb-bench --gemm 1 2 3", &o, err, sizeof(err)), BENCH_EXIT_USAGE);
    cr_assert_eq(parse("arb-bench --step --config huge", &o, err, sizeof(err)), BENCH_EXIT_USAGE);
    cr_assert_eq(parse("arb-bench --json", &o, err, sizeof(err)), BENCH_EXIT_USAGE);
    cr_assert_eq(parse("arb-bench --precision fp64", &o, err, sizeof(err)), BENCH_EXIT_USAGE);

    arb_blocks b;
    cr_assert_eq(bench_parse_blocks("warps=4,bm=16", &b, err, sizeof(err)), 0);
    cr_assert_eq(b.warps, 4);
    cr_assert_eq(b.bm, 16);
    cr_assert_eq(b.tn, 0);
    cr_assert_eq(bench_parse_blocks("warps=", &b, err, sizeof(err)), -1);
    char text[64];
    bench_format_blocks_short(&(arb_blocks){128, 64, 32, 64, 32, 8, 2}, text, sizeof(text));
    cr_assert_str_eq(text, "128x64x32/64x32 w8 s2");
    bench_format_blocks_short(&(arb_blocks){0, 0, 0, 8, 0, 4, 0}, text, sizeof(text));
    cr_assert_str_eq(text, "tm8 w4");
}

Test(bench, data_helpers)
{
    /* Dense dequantization = T * 2^E of every element. */
    int64_t N = 7, K = 10, gs = 5;
    bench_buf buf = {"packed", BT_U8, (size_t)(N * K), arb_packed_alloc_size((size_t)(N * K)),
                     ROLE_IN, GEN_TRITS, -1, 1, 1.0, CMP_NONE, 0};
    uint8_t packed[32];
    bench_rng rng = {7};
    bench_fill(&buf, &rng, packed);
    int8_t E[14];
    for (int g = 0; g < 14; g++)
        E[g] = (int8_t)(g - 7);
    float dense[70];
    bench_dequantize(packed, E, N, K, gs, dense);
    for (int i = 0; i < 70; i++)
        cr_assert_eq(dense[i], (float)arb_ternary_get(packed, (size_t)i) * ldexpf(1.0f, E[i / 5]));

    cr_assert_eq(bench_bf16(1.0f), 0x3F80);
    cr_assert_eq(bench_bf16(1.0f + 0x1p-8f), 0x3F80, "a tie rounds to even");
    cr_assert_eq(bench_bf16(1.0f + 0x1p-8f + 0x1p-16f), 0x3F81);
    cr_assert_eq(bench_bf16_to_float(bench_bf16(-2.5f)), -2.5f);
    cr_assert(isnan(bench_bf16_to_float(bench_bf16(NAN))));

    float a[3] = {1, 2, 3}, b[3] = {1, 2, 3.5f}, nan3[3] = {1, NAN, 3};
    cr_assert_float_eq(bench_rel_err(a, a, 3), 0.0, 0);
    cr_assert_float_eq(bench_rel_err(b, a, 3), 0.5 / sqrt(14.0), 1e-12);
    cr_assert(isinf(bench_rel_err(nan3, a, 3)), "an unwritten (NaN) element fails");
    cr_assert_eq(bench_first_diff(a, b, 3, sizeof(float)), 2);
    cr_assert_eq(bench_first_diff(a, a, 3, sizeof(float)), -1);
    for (int i = 0; i < 1000; i++) {
        float f = bench_rng_float(&rng);
        cr_assert(f != 0.0f && f >= -1.0f && f < 1.0f);
    }
    cr_assert_float_eq(bench_tolerance(ARB_PREC_FP32), 2e-6, 0);
    cr_assert_float_eq(bench_tolerance(ARB_PREC_BF16), 1e-2, 0);

    /* float64 rows agree with a direct sum. */
    float x[2 * 10], W[70];
    for (int i = 0; i < 20; i++)
        x[i] = bench_rng_float(&rng);
    for (int i = 0; i < 70; i++)
        W[i] = dense[i];
    int64_t rows[1] = {1};
    double out[7];
    bench_ref_fwd_rows(x, W, N, K, rows, 1, out);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int k = 0; k < K; k++)
            s += (double)x[10 + k] * W[n * K + k];
        cr_assert_float_eq(out[n], s, 1e-12);
    }
}

/* ---- the program ------------------------------------------------------------------------ */

typedef struct prog {
    int status;
    char out[1 << 18];
} prog;

/* The program with `env` ("NAME=value ...", may be "") set. */
static prog *run_program_env(const char *env, const char *args, int with_stderr)
{
    prog *p = calloc(1, sizeof(*p));
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s ARB_CACHE='%s/kernels.sqlite' '%s' %s %s", env, th_dir,
             BENCH_PROGRAM, args, with_stderr ? "2>&1" : "2>/dev/null");
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f, "popen %s", cmd);
    size_t n = fread(p->out, 1, sizeof(p->out) - 1, f);
    p->out[n] = '\0';
    int st = pclose(f);
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return p;
}

static prog *run_program(const char *args, int with_stderr)
{
    return run_program_env("", args, with_stderr);
}

Test(bench, program_help_exits_0_on_stdout)
{
    prog *p = run_program("--help", 0);
    cr_assert_eq(p->status, 0);
    cr_assert_not_null(strstr(p->out, "usage: arb-bench"), "%s", p->out);
    cr_assert_not_null(strstr(p->out, "--sweep-blocks"));
    free(p);
}

Test(bench, program_dry_run_lists_candidates_without_a_gpu)
{
    /* ARB_ARCH=sm_90: the fused kernels, whatever GPU this machine has. */
    prog *p = run_program_env("ARB_ARCH=sm_90", "--sweep-blocks --dry-run", 0);
    cr_assert_eq(p->status, 0, "%s", p->out);
    cr_assert_not_null(strstr(p->out, "(target sm_90)"), "%s", p->out);
    /* prewarm/shapes/base.txt: the trainer's default precision, bf16x2. */
    cr_assert_not_null(strstr(p->out, "ternary_fwd M=1024 N=4096 K=4096 gs=64 bf16x2"), "%s",
                       p->out);
    cr_assert_not_null(strstr(p->out, "bm=128,bn=128,bk=32,tm=64,tn=32,warps=8,stages=2"));
    cr_assert_not_null(strstr(p->out, "candidates:"));
    free(p);

    p = run_program("--dry-run --kernel ternary_fwd --shape M=64,N=64,K=64,gs=64 "
                    "--blocks bm=64,bn=64,bk=16,tm=3,tn=4,warps=8,stages=1",
                    0);
    cr_assert_eq(p->status, 0, "%s", p->out);
    cr_assert_not_null(strstr(p->out, "rejected: "), "%s", p->out);
    cr_assert_not_null(strstr(p->out, "1 rejected"), "%s", p->out);
    free(p);

    /* On sm_90a --gemm lists the fused kernels and the staged ones. */
    p = run_program_env("ARB_ARCH=sm_90a ARB_PRECISION=bf16", "--dry-run --gemm 8192 4096 4096 64",
                        0);
    cr_assert_eq(p->status, 0, "%s", p->out);
    cr_assert_not_null(strstr(p->out, "(target sm_90a)"), "%s", p->out);
    static const char *const listed[] = {
        "\nternary_fwd M=8192 N=4096 K=4096 gs=64 bf16", "\nternary_grad_x M=8192 N=4096 K=4096",
        "\nternary_decode M=1 N=4096 K=4096 gs=64 bf16", "\nact_split M=8192 N=1 K=4096 gs=1 bf16",
        "\ntc_gemm M=8192 N=4096 K=4096 gs=1 bf16"};
    for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
        cr_assert_not_null(strstr(p->out, listed[i]), "no '%s' in:\n%s", listed[i] + 1, p->out);
    free(p);
}

Test(bench, program_without_a_gpu_exits_2_and_says_so)
{
    const arb_cuda *cu = NULL;
    if (arb_cuda_load(&cu, NULL) == ARB_OK) {
        printf("arb-skip: a CUDA driver and GPU are present: the no-GPU path cannot be seen\n");
        fflush(stdout);
        cr_skip_test("a GPU is present");
    }
    prog *p = run_program("", 1);
    cr_assert_eq(p->status, 2, "%s", p->out);
    cr_assert_not_null(strstr(p->out, "no GPU"), "%s", p->out);
    cr_assert_not_null(strstr(p->out, "--dry-run"), "the message points to --dry-run");
    free(p);
    p = run_program("--sweep-blocks --json x.json", 1);
    cr_assert_eq(p->status, 2, "%s", p->out);
    free(p);
}

Test(bench, program_usage_errors_exit_2)
{
    prog *p = run_program("--no-such-flag", 1);
    cr_assert_eq(p->status, 2);
    cr_assert_not_null(strstr(p->out, "unknown option '--no-such-flag'"), "%s", p->out);
    free(p);
    p = run_program("--sweep-blocks /no/such/shapes.txt --dry-run", 1);
    cr_assert_eq(p->status, 2, "%s", p->out);
    free(p);
}

Test(bench, program_step_without_a_gpu_exits_2)
{
    const arb_cuda *cu = NULL;
    if (arb_cuda_load(&cu, NULL) == ARB_OK) {
        printf("arb-skip: a GPU is present; this checks the message without one\n");
        cr_skip_test("a GPU is present");
    }
    prog *p = run_program("--step --config tiny", 1);
    cr_assert_eq(p->status, 2, "%s", p->out);
    cr_assert_not_null(strstr(p->out, "no GPU"), "%s", p->out);
    free(p);
}
