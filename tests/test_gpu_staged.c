/*
 * test_gpu_staged.c - the staged tensor-core path of sm_90a (label `gpu`):
 * ternary_decode, act_split and tc_gemm each against their C references
 * (engine/src/cpu/staged.c), then ternary_fwd / ternary_grad_x through the
 * op API at row counts that take the staged plan, in every tensor-core mode,
 * against the float64 reference and the cpu backend (SPEC §3 tolerances).
 *
 * Shapes are awkward on purpose: rows and reduction not multiples of the
 * 128-row tiles or the 64-wide K slabs, K % 5 != 0 (rows start mid-byte),
 * every scale type. Skips with "arb-skip: <reason>" without a GPU, and when
 * the device's target is not sm_90a (no wgmma).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/engine.h"
#include "arb/kernels.h"
#include "cpu/staged.h"
#include "files.h"
#include "harness.h"
#include "jit/jit_internal.h"

static arb_backend *jit_be, *cpu_be; /* of the open bed */

TestSuite(gpu_staged, .fini = th_gpu_bed_close);

static th_bed staged_bed(const char *name)
{
    th_bed bed = th_gpu_bed("arb-gpu-staged", name);
    jit_be = bed.be;
    cpu_be = bed.cpu;
    const char *arch = arb_engine_arch(arb_backend_engine(jit_be));
    if (strcmp(arch, "sm_90a") != 0) {
        printf("arb-skip: the device's target is %s; the staged kernels need sm_90a\n", arch);
        fflush(stdout);
        th_gpu_bed_close(); /* a skipped test runs no .fini */
        cr_skip_test("the target has no wgmma");
    }
    return bed;
}

/* Launch one spec on the jit backend and wait for it. */
static int launch(const th_case *c, const arb_spec *spec, void **args)
{
    arb_status st = arb_jit_launch(jit_be, spec, args);
    if (!st)
        st = arb_backend_sync(jit_be);
    return th_ok(c, jit_be, st, spec->kernel);
}

static int bytes_equal(const th_case *c, const char *what, const uint8_t *got,
                       const uint8_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            th_fail(c, what, "byte %zu of %zu is 0x%02x, the reference has 0x%02x", i, n, got[i],
                    want[i]);
            return 0;
        }
    }
    return 1;
}

/* tc_gemm against the float64 sum of its own (exact) operands: only the
 * tensor core's fp32 accumulation differs, over K <= 384 here. */
#define TC_GEMM_TOL 1e-5

/* Shapes: N x K weight, M activation rows (M also below 128: the kernels
 * themselves take any M; only the plans choose them from 128 rows on). */
typedef struct staged_shape {
    int64_t M, N, K;
    arb_scale_kind kind;
} staged_shape;

static const staged_shape shapes[] = {
    {1, 5, 7, ARB_SCALE_TENSOR},      {37, 53, 131, ARB_SCALE_ELEMENT},
    {129, 65, 63, ARB_SCALE_ROW},     {300, 257, 160, ARB_SCALE_G32},
    {200, 130, 384, ARB_SCALE_G128},  {131, 68, 32, ARB_SCALE_G128},
    {257, 130, 192, ARB_SCALE_G64},
};

/* ternary_decode (both orientations), act_split and tc_gemm on one shape in
 * one mode; tc_gemm runs on the GPU's own staged operands (already checked
 * equal to the references). */
static int check_kernels(th_bed *bed, const staged_shape *s, arb_precision prec)
{
    const int64_t M = s->M, N = s->N, K = s->K, gs = arb_scale_gs(s->kind, N, K);
    th_case c = {"staged", M, N, K, gs, arb_precision_name(prec), "jit"};
    th_hw w = th_hw_random(&bed->rng, N, K, gs, -32, 31, 0, 0);
    th_dw dw = th_dw_create(jit_be, &w);
    uint8_t *packed = malloc(arb_packed_alloc_size((size_t)(N * K)));
    arb_ternary_pack(w.T, (size_t)(N * K), packed);
    int ok = 1;

    size_t wb[2], ab = arb_staged_act_bytes(M, K, prec);
    uint8_t *want = malloc(ab), *got = NULL;
    th_buf dense[2];
    for (int trans = 0; trans < 2; trans++) {
        wb[trans] = arb_staged_weight_bytes(N, K, prec, trans);
        dense[trans] = th_buf_alloc(jit_be, wb[trans]);
        th_buf_poison(&dense[trans], 0x5A);
        arb_spec spec;
        cr_assert_eq(arb_spec_init(&spec, "ternary_decode", 1, N, K, gs, prec,
                                   trans ? ARB_VARIANT_TRANS : 0, NULL),
                     ARB_OK);
        void *args[] = {&dw.w.T_packed, &dw.w.E, &dense[trans].p};
        c.op = trans ? "ternary_decode(trans)" : "ternary_decode";
        if (!(ok &= launch(&c, &spec, args)))
            continue;
        uint8_t *ref = malloc(wb[trans]);
        got = realloc(got, wb[trans]);
        arb_cpu_ternary_decode(packed, w.E, N, K, gs, prec, trans, ref);
        th_buf_download(&dense[trans], got);
        ok &= bytes_equal(&c, "dense", got, ref, wb[trans]);
        ok &= th_buf_guards_ok(&c, "dense", &dense[trans]);
        free(ref);
    }

    float *x = malloc((size_t)(M * K) * sizeof(float));
    th_fill_normal(&bed->rng, x, (size_t)(M * K));
    th_buf bx = th_buf_from(jit_be, x, (size_t)(M * K) * sizeof(float));
    th_buf pieces = th_buf_alloc(jit_be, ab);
    th_buf_poison(&pieces, 0x5A);
    arb_spec split;
    cr_assert_eq(arb_spec_init(&split, "act_split", M, 1, K, 1, prec, 0, NULL), ARB_OK);
    c.op = "act_split";
    void *split_args[] = {&bx.p, &pieces.p};
    if (ok && (ok &= launch(&c, &split, split_args))) {
        arb_cpu_act_split(x, M, K, prec, 0, want);
        got = realloc(got, ab);
        th_buf_download(&pieces, got);
        ok &= bytes_equal(&c, "pieces", got, want, ab);
        ok &= th_buf_guards_ok(&c, "pieces", &pieces);
    }

    /* The transposed split (tc_update's operands): x^T in pieces. */
    size_t tb = arb_staged_act_bytes_trans(M, K, prec);
    th_buf tpieces = th_buf_alloc(jit_be, tb);
    th_buf_poison(&tpieces, 0x5A);
    arb_spec tsplit;
    cr_assert_eq(arb_spec_init(&tsplit, "act_split", M, 1, K, 1, prec, ARB_VARIANT_TRANS, NULL),
                 ARB_OK);
    c.op = "act_split(trans)";
    void *tsplit_args[] = {&bx.p, &tpieces.p};
    if (ok && (ok &= launch(&c, &tsplit, tsplit_args))) {
        uint8_t *tref = malloc(tb), *tgot = malloc(tb);
        arb_cpu_act_split(x, M, K, prec, 1, tref);
        th_buf_download(&tpieces, tgot);
        ok &= bytes_equal(&c, "pieces^T", tgot, tref, tb);
        ok &= th_buf_guards_ok(&c, "pieces^T", &tpieces);
        free(tref);
        free(tgot);
    }
    th_buf_free(&tpieces);

    /* tc_gemm: C[M][N] = pieces . dense^T over K, on the staged operands just
     * checked equal to the references; the float64 sum of those exact
     * operands leaves only the kernel's own accumulation error. */
    th_buf bc = th_buf_alloc(jit_be, (size_t)(M * N) * sizeof(float));
    th_buf_poison(&bc, TH_POISON_F32);
    arb_spec gemm;
    cr_assert_eq(arb_spec_init(&gemm, "tc_gemm", M, N, K, 1, prec, 0, NULL), ARB_OK);
    c.op = "tc_gemm";
    void *gemm_args[] = {&pieces.p, &dense[0].p, &dw.w.E, &bc.p};
    if (ok && (ok &= launch(&c, &gemm, gemm_args))) {
        size_t mn = (size_t)(M * N);
        float *y = malloc(mn * sizeof(float)), *ref_f = malloc(mn * sizeof(float));
        double *ref = malloc(mn * sizeof(double));
        uint8_t *dense_ref = malloc(wb[0]);
        arb_cpu_ternary_decode(packed, w.E, N, K, gs, prec, 0, dense_ref);
        arb_cpu_tc_gemm(want, dense_ref, M, N, K, prec, ref_f);
        for (size_t i = 0; i < mn; i++)
            ref[i] = ref_f[i];
        th_buf_download(&bc, y);
        ok &= th_check_rel(&c, "C", y, ref, mn, TC_GEMM_TOL);
        ok &= th_buf_guards_ok(&c, "C", &bc);
        free(dense_ref);
        free(y);
        free(ref_f);
        free(ref);
    }
    if (ok)
        th_pass(&c, "decode and split exact; tc_gemm within %g of its operands", TC_GEMM_TOL);

    th_buf_free(&bc);
    th_buf_free(&pieces);
    th_buf_free(&bx);
    th_buf_free(&dense[0]);
    th_buf_free(&dense[1]);
    free(x);
    free(got);
    free(want);
    free(packed);
    th_dw_free(&dw);
    th_hw_free(&w);
    return ok;
}

Test(gpu_staged, kernels_match_their_references)
{
    th_bed bed = staged_bed("gpu_staged/kernels");
    int ok = 1;
    for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++)
        for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
            ok &= check_kernels(&bed, &shapes[i], (arb_precision)p);
    cr_assert(ok, "see the FAIL lines above");
}

/* The ops as the trainer calls them: from ARB_STAGED_MIN_ROWS rows on the
 * plan is staged (checked here), below it the fused kernel. */
Test(gpu_staged, ops_in_every_mode)
{
    th_bed bed = staged_bed("gpu_staged/ops");
    int ok = 1;
    for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
        arb_backend *be = th_open_jit_mode(jit_be, (arb_precision)p);
        arb_spec plan[ARB_PLAN_MAX];
        cr_assert_eq(arb_plan_ternary_fwd(ARB_STAGED_MIN_ROWS, 64, 64, 64, (arb_precision)p,
                                          arb_engine_arch(arb_backend_engine(be)), plan),
                     3, "%s: the plan at %d rows is staged", arb_precision_name((arb_precision)p),
                     ARB_STAGED_MIN_ROWS);
        th_bed pb = {be, cpu_be, bed.rng, 0, 0};
        for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
            const staged_shape *s = &shapes[i];
            int64_t M = s->M < ARB_STAGED_MIN_ROWS ? s->M + ARB_STAGED_MIN_ROWS : s->M;
            int64_t gs = arb_scale_gs(s->kind, s->N, s->K);
            ok &= th_case_ternary_fwd(&pb, M, s->N, s->K, gs);
            ok &= th_case_ternary_grad_x(&pb, M, s->N, s->K, gs);
        }
        ok &= th_case_ternary_fwd(&pb, 1024, 512, 512, 64);
        ok &= th_case_ternary_grad_x(&pb, 1024, 512, 512, 64);
        bed.rng = pb.rng;
        arb_backend_close(be);
    }
    cr_assert(ok, "see the FAIL lines above");
}

/* The fused update through its staged plan (transposed splits, tc_update):
 * on small-integer data every sum is exact, so the direct op must equal the
 * two-pass path byte for byte (trits, E, accumulators, flips), with both
 * score modes and every scale type. */
Test(gpu_staged, update_in_every_scale_type)
{
    th_bed bed = staged_bed("gpu_staged/update");
    arb_spec plan[ARB_PLAN_MAX];
    cr_assert_eq(arb_plan_update_direct(ARB_STAGED_MIN_ROWS, 64, 64, 64, ARB_PREC_BF16X2,
                                        arb_engine_arch(arb_backend_engine(jit_be)), 1, 0,
                                        ARB_E_SCORE_GRAD, plan),
                 3, "the update at %d rows is staged", ARB_STAGED_MIN_ROWS);
    int ok = 1;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        const staged_shape *s = &shapes[i];
        int64_t M = s->M < ARB_STAGED_MIN_ROWS ? s->M + ARB_STAGED_MIN_ROWS : s->M;
        int64_t gs = arb_scale_gs(s->kind, s->N, s->K);
        ok &= th_case_update_chain(&bed, M, s->N, s->K, gs, 2, 2, ARB_E_SCORE_GRAD, 1);
        ok &= th_case_update_chain(&bed, M, s->N, s->K, gs, 1, 3, ARB_E_SCORE_SIGN, 1);
    }
    ok &= th_case_update_chain(&bed, 1024, 512, 512, 64, 3, 2, ARB_E_SCORE_GRAD, 1);
    cr_assert(ok, "see the FAIL lines above");
}

/* The alternative to decoding T * 2^E into the operand: ternary_decode
 * writes T alone and tc_gemm multiplies each K-group's partial sums by 2^E
 * (ARB_VARIANT_SCALE_AFTER, forward only). Checked against the float64
 * forward at the mode's SPEC bound. */
Test(gpu_staged, scale_after_the_mma_is_the_forward)
{
    th_bed bed = staged_bed("gpu_staged/scale_after");
    static const int64_t cases[][4] = {{300, 257, 192, 64}, {129, 130, 384, 128},
                                       {200, 64, 256, 256}, {37, 96, 128, 64}};
    int ok = 1;
    for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
        arb_precision prec = (arb_precision)p;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            const int64_t M = cases[i][0], N = cases[i][1], K = cases[i][2], gs = cases[i][3];
            th_case c = {"tc_gemm(scale after)", M, N, K, gs, arb_precision_name(prec), "jit"};
            th_hw w = th_hw_random(&bed.rng, N, K, gs, -8, 8, 0, 0);
            th_dw dw = th_dw_create(jit_be, &w);
            float *x = malloc((size_t)(M * K) * sizeof(float));
            th_fill_normal(&bed.rng, x, (size_t)(M * K));
            th_buf bx = th_buf_from(jit_be, x, (size_t)(M * K) * sizeof(float));
            th_buf dense = th_buf_alloc(jit_be, arb_staged_weight_bytes(N, K, prec, 0));
            th_buf pieces = th_buf_alloc(jit_be, arb_staged_act_bytes(M, K, prec));
            th_buf by = th_buf_alloc(jit_be, (size_t)(M * N) * sizeof(float));
            th_buf_poison(&by, TH_POISON_F32);
            arb_spec dec, split, gemm;
            cr_assert_eq(arb_spec_init(&dec, "ternary_decode", 1, N, K, gs, prec,
                                       ARB_VARIANT_SCALE_AFTER, NULL),
                         ARB_OK);
            cr_assert_eq(arb_spec_init(&split, "act_split", M, 1, K, 1, prec, 0, NULL), ARB_OK);
            cr_assert_eq(arb_spec_init(&gemm, "tc_gemm", M, N, K, gs, prec,
                                       ARB_VARIANT_SCALE_AFTER, NULL),
                         ARB_OK);
            arb_err err = {0};
            cr_assert_eq(arb_spec_check(&gemm, &err), ARB_OK, "%s", err.msg);
            void *dec_args[] = {&dw.w.T_packed, &dw.w.E, &dense.p};
            void *split_args[] = {&bx.p, &pieces.p};
            void *gemm_args[] = {&pieces.p, &dense.p, &dw.w.E, &by.p};
            int good = launch(&c, &dec, dec_args) && launch(&c, &split, split_args) &&
                       launch(&c, &gemm, gemm_args);
            if (good) {
                float *y = malloc((size_t)(M * N) * sizeof(float));
                double *ref = malloc((size_t)(M * N) * sizeof(double));
                th_buf_download(&by, y);
                th_ref_ternary_fwd(&w, x, M, ref);
                good = th_check_rel(&c, "y", y, ref, (size_t)(M * N), th_tol_prec(prec)) &&
                       th_buf_guards_ok(&c, "y", &by);
                if (good)
                    th_pass(&c, "within %g of the float64 forward", th_tol_prec(prec));
                free(y);
                free(ref);
            }
            ok &= good;
            th_buf_free(&by);
            th_buf_free(&pieces);
            th_buf_free(&dense);
            th_buf_free(&bx);
            free(x);
            th_dw_free(&dw);
            th_hw_free(&w);
        }
    }
    cr_assert(ok, "see the FAIL lines above");
}
