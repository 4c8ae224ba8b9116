/*
 * test_ops_cpu.c - every op of ops.h on the cpu backend against the
 * harness's float64 references (tests/harness/reference.c), over the six
 * scale types and awkward shapes, with SPEC §3 tolerances: fp32 GEMMs
 * <= 2e-6, RMSNorm <= 1e-5, embedding forward exact, signs exact by the
 * sign rule, integer updates exact. Plus the argument checks of ops.c, the
 * cpu backend's determinism across thread counts, and self-tests proving
 * the harness's checks can fail.
 *
 * The integer update rules have their own suite: test_updates_cpu.c.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- the harness can fail ---------------------------------------------------- */

/* A checker that cannot fail proves nothing: plant one fault of each kind
 * the checks exist for and expect each to be caught. */
Test(harness, catches_planted_faults)
{
    th_bed bed = th_cpu_bed("harness/catches_planted_faults");
    th_case c = {"self-test", 4, 5, 6, 1, "planted", "cpu"};
    enum { n = 64 };
    float got[n];
    double want[n], bound[n];
    int8_t s[n];
    th_fill_normal(&bed.rng, got, n);
    for (int i = 0; i < n; i++) {
        want[i] = got[i];
        bound[i] = 1e-4;
        s[i] = (int8_t)((want[i] > 0) - (want[i] < 0));
    }
    th_set_quiet(1);
    cr_assert(th_check_rel(&c, "clean", got, want, n, TH_TOL_FP32), "clean data must pass");
    /* 1. one element off by 1e-4 of the output's norm: 50x the fp32 bound */
    double norm = 0.0;
    for (int i = 0; i < n; i++)
        norm += want[i] * want[i];
    got[7] = (float)(want[7] + 1e-4 * sqrt(norm));
    cr_assert_not(th_check_rel(&c, "perturbed", got, want, n, TH_TOL_FP32));
    got[7] = (float)want[7];
    /* 2. an element never written (poison) */
    memset(&got[63], TH_POISON_F32, sizeof(float));
    cr_assert_not(th_check_rel(&c, "unwritten", got, want, n, TH_TOL_FP32));
    got[63] = (float)want[63];
    /* 3. an all-zero reference */
    double zeros[n] = {0};
    cr_assert_not(th_check_rel(&c, "zero reference", got, zeros, n, TH_TOL_FP32));
    /* 4. a flipped sign where the rule decides it, and an unwritten sign */
    cr_assert(th_check_signs(&c, "signs", s, want, bound, n));
    s[3] = (int8_t)-s[3];
    cr_assert_not(th_check_signs(&c, "flipped sign", s, want, bound, n));
    s[3] = (int8_t)-s[3];
    s[9] = TH_POISON_I8;
    cr_assert_not(th_check_signs(&c, "unwritten sign", s, want, bound, n));
    /* 5. an exact comparison off by one ulp */
    float copy[n];
    memcpy(copy, got, sizeof(copy));
    copy[11] = nextafterf(copy[11], INFINITY);
    cr_assert_not(th_check_exact_f(&c, "one ulp", copy, got, n));
    /* 6. a write past the end of a buffer lands in the guard zone */
    th_buf b = th_buf_alloc(bed.be, 40);
    cr_assert(th_buf_guards_ok(&c, "fresh", &b));
    ((uint8_t *)b.p)[40] = 0;
    cr_assert_not(th_buf_guards_ok(&c, "overrun", &b));
    ((uint8_t *)b.p)[40] = TH_GUARD_BYTE;
    ((uint8_t *)b.p)[-1] = 0;
    cr_assert_not(th_buf_guards_ok(&c, "underrun", &b));
    th_buf_free(&b);
    /* 7. an E outcome the rule does not give */
    th_hw w = th_hw_random(&bed.rng, 1, 4, 2, -3, 3, 0, 2);
    th_hw got_w = th_hw_clone(&w);
    double score[2] = {1.0, -1.0}, mag[2] = {1.0, 1.0};
    for (int g = 0; g < 2; g++)
        th_ref_E_rule(&got_w.E[g], &got_w.E_accum[g], g == 0 ? 1 : -1, 2);
    cr_assert(th_check_update_E(&c, &w, &got_w, score, mag, 2, 0.0));
    got_w.E_accum[1] = (int8_t)(got_w.E_accum[1] == 0 ? 1 : 0);
    cr_assert_not(th_check_update_E(&c, &w, &got_w, score, mag, 2, 0.0));
    th_set_quiet(0);
    th_hw_free(&w);
    th_hw_free(&got_w);
    arb_backend_close(bed.be);
}

/* The references themselves, on numbers small enough to check by hand. */
Test(harness, references_by_hand)
{
    /* W = [[1*2^1, 0, -1*2^1], [-1*2^-1, 1*2^-1, 0]] (gs = 3: one E per row) */
    int8_t T[6] = {1, 0, -1, -1, 1, 0}, E[2] = {1, -1};
    th_hw w = {2, 3, 3, T, E, NULL, NULL};
    const float x[3] = {1, 2, 3};
    double y[2], gx[3];
    th_ref_ternary_fwd(&w, x, 1, y);
    cr_assert_eq(y[0], 2.0 - 6.0);
    cr_assert_eq(y[1], -0.5 + 1.0);
    const float gy[2] = {1, 2};
    th_ref_ternary_grad_x(&w, gy, 1, gx);
    cr_assert_eq(gx[0], 2.0 - 1.0);
    cr_assert_eq(gx[1], 1.0);
    cr_assert_eq(gx[2], -2.0);
    cr_assert_eq(th_ref_sample_position(0, 0, 0, 0, 1), 0);
    cr_assert_eq(th_ref_sample_position(123, 4, 5, 10, 20), arb_sample_position(123, 4, 5, 10, 20));
}

/* ---- GEMMs ------------------------------------------------------------------------- */

Test(ops_cpu, ternary_fwd) { th_sweep_on_cpu("ops_cpu/ternary_fwd", th_sweep_ternary_fwd); }

Test(ops_cpu, ternary_grad_x)
{
    th_sweep_on_cpu("ops_cpu/ternary_grad_x", th_sweep_ternary_grad_x);
}

/* Wide dynamic range of E (the whole [-32, 31]): fp32 still holds 2e-6,
 * since every decoded weight is exact. */
Test(ops_cpu, ternary_fwd_full_E_range)
{
    th_bed bed = th_cpu_bed("ops_cpu/ternary_fwd_full_E_range");
    bed.e_lo = ARB_E_MIN;
    bed.e_hi = ARB_E_MAX;
    int ok = th_case_ternary_fwd(&bed, 19, 23, 96, 32) & th_case_ternary_fwd(&bed, 7, 5, 131, 131) &
             th_case_ternary_grad_x(&bed, 19, 23, 96, 1);
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

Test(ops_cpu, grad_weight) { th_sweep_on_cpu("ops_cpu/grad_weight", th_sweep_grad_weight); }

Test(ops_cpu, grad_sign) { th_sweep_on_cpu("ops_cpu/grad_sign", th_sweep_grad_sign); }

/* ---- RMSNorm, embedding, glue ------------------------------------------------------- */

/* D and gs per scale type; a 1 x D weight has no room for gs > D. */
static const struct {
    int64_t B, D;
    arb_scale_kind kind;
} norm_shapes[] = {
    {1, 1, ARB_SCALE_ELEMENT},   {1, 2, ARB_SCALE_ELEMENT},    {37, 131, ARB_SCALE_ELEMENT},
    {37, 96, ARB_SCALE_G32},
    {5, 192, ARB_SCALE_G64},     {37, 384, ARB_SCALE_G128},    {37, 131, ARB_SCALE_ROW},
    {3, 2053, ARB_SCALE_TENSOR}, {129, 65, ARB_SCALE_ELEMENT},
};

Test(ops_cpu, rmsnorm_fwd_bwd)
{
    th_bed bed = th_cpu_bed("ops_cpu/rmsnorm_fwd_bwd");
    int ok = 1;
    for (size_t i = 0; i < sizeof(norm_shapes) / sizeof(norm_shapes[0]); i++) {
        int64_t gs = arb_scale_gs(norm_shapes[i].kind, 1, norm_shapes[i].D);
        ok &= th_case_rmsnorm_fwd(&bed, norm_shapes[i].B, norm_shapes[i].D, gs);
        ok &= th_case_rmsnorm_bwd(&bed, norm_shapes[i].B, norm_shapes[i].D, gs);
    }
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

Test(ops_cpu, embed_fwd) { th_sweep_on_cpu("ops_cpu/embed_fwd", th_sweep_embed_fwd); }

Test(ops_cpu, embed_bwd)
{
    th_bed bed = th_cpu_bed("ops_cpu/embed_bwd");
    int ok = th_case_embed_bwd(&bed, 1, 1, 1, 0) & th_case_embed_bwd(&bed, 300, 53, 131, 0) &
             th_case_embed_bwd(&bed, 300, 256, 64, 0) & th_case_embed_bwd(&bed, 300, 53, 131, 1);
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

Test(ops_cpu, gather_context)
{
    th_bed bed = th_cpu_bed("ops_cpu/gather_context");
    int ok = th_case_gather_context(&bed, 1, 1, 2) & th_case_gather_context(&bed, 37, 8, 1000) &
             th_case_gather_context(&bed, 129, 33, 65);
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

Test(ops_cpu, sample_positions_and_step_advance)
{
    th_bed bed = th_cpu_bed("ops_cpu/sample_positions_and_step_advance");
    int ok = th_case_sample_positions(&bed, 1, 0, 1) &
             th_case_sample_positions(&bed, 257, 8, 1000003) &
             th_case_sample_positions(&bed, 64, 5, 7);
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

Test(ops_cpu, relu_and_add)
{
    th_bed bed = th_cpu_bed("ops_cpu/relu_and_add");
    int ok = 1;
    const int64_t sizes[] = {1, 1003, 4099};
    for (size_t i = 0; i < 3; i++) {
        ok &= th_case_relu_fwd(&bed, sizes[i], 0) & th_case_relu_fwd(&bed, sizes[i], 1);
        ok &= th_case_relu_bwd(&bed, sizes[i]) & th_case_add(&bed, sizes[i]);
    }
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

Test(ops_cpu, xent)
{
    th_bed bed = th_cpu_bed("ops_cpu/xent");
    int ok = th_case_xent(&bed, 1, 2, 0) & th_case_xent(&bed, 37, 131, 0) &
             th_case_xent(&bed, 37, 257, 1) & th_case_xent(&bed, 3, 2053, 1) &
             th_case_xent_guard(&bed, 9, 65);
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

/* ---- determinism --------------------------------------------------------------------- */

/* cpu_common.h promises a fixed summation order whatever the thread count
 * (so a CPU run resumes bit for bit): 1 and 3 threads must agree bitwise. */
Test(ops_cpu, deterministic_across_thread_counts)
{
    th_rng r = th_rng_for("ops_cpu/deterministic_across_thread_counts");
    arb_backend *one = th_open_cpu(1), *three = th_open_cpu(3);
    const int64_t M = 67, N = 45, K = 96, gs = 32;
    th_hw w = th_hw_random(&r, N, K, gs, -3, 3, 2, 2);
    size_t nk = (size_t)(N * K);
    float *x = malloc((size_t)(M * K) * sizeof(float));
    float *gy = malloc((size_t)(M * N) * sizeof(float));
    th_fill_normal(&r, x, (size_t)(M * K));
    th_fill_normal(&r, gy, (size_t)(M * N));
    float *out[2][3];
    th_hw state[2];
    arb_backend *bes[2] = {one, three};
    for (int b = 0; b < 2; b++) {
        arb_backend *be = bes[b];
        th_dw d = th_dw_create(be, &w);
        th_buf bx = th_buf_from(be, x, (size_t)(M * K) * sizeof(float));
        th_buf bgy = th_buf_from(be, gy, (size_t)(M * N) * sizeof(float));
        th_buf by = th_buf_alloc(be, (size_t)(M * N) * sizeof(float));
        th_buf bgx = th_buf_alloc(be, (size_t)(M * K) * sizeof(float));
        th_buf bgw = th_buf_alloc(be, nk * sizeof(float));
        cr_assert_eq(arb_op_ternary_fwd(be, &d.w, bx.p, by.p, M), ARB_OK);
        cr_assert_eq(arb_op_ternary_grad_x(be, &d.w, bgy.p, bgx.p, M), ARB_OK);
        cr_assert_eq(arb_op_grad_weight(be, bgy.p, bx.p, bgw.p, M, N, K), ARB_OK);
        arb_update_rule rule = {2, 2, ARB_E_SCORE_GRAD};
        cr_assert_eq(arb_op_ternary_update_direct(be, &d.w, bgy.p, bx.p, M, &rule, NULL, NULL),
                     ARB_OK);
        out[b][0] = malloc((size_t)(M * N) * sizeof(float));
        out[b][1] = malloc((size_t)(M * K) * sizeof(float));
        out[b][2] = malloc(nk * sizeof(float));
        th_buf_download(&by, out[b][0]);
        th_buf_download(&bgx, out[b][1]);
        th_buf_download(&bgw, out[b][2]);
        state[b] = th_hw_clone(&w);
        th_case c = {"determinism", M, N, K, gs, NULL, "cpu"};
        cr_assert(th_dw_read(&c, &d, &state[b], NULL));
        th_buf_free(&bx);
        th_buf_free(&bgy);
        th_buf_free(&by);
        th_buf_free(&bgx);
        th_buf_free(&bgw);
        th_dw_free(&d);
    }
    th_case c = {"threads 1 vs 3", M, N, K, gs, NULL, "cpu"};
    cr_assert(th_check_exact_f(&c, "y", out[1][0], out[0][0], (size_t)(M * N)));
    cr_assert(th_check_exact_f(&c, "gx", out[1][1], out[0][1], (size_t)(M * K)));
    cr_assert(th_check_exact_f(&c, "gW", out[1][2], out[0][2], nk));
    cr_assert(th_check_state(&c, "ternary_update_direct", &state[1], &state[0]));
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < 3; i++)
            free(out[b][i]);
        th_hw_free(&state[b]);
    }
    th_hw_free(&w);
    free(x);
    free(gy);
    arb_backend_close(one);
    arb_backend_close(three);
}

/* ---- argument checks ------------------------------------------------------------------ */

/* Everything an argument check needs: a valid weight and buffers on a cpu
 * backend, outputs filled with a sentinel so a failed call that wrote
 * anything shows. */
typedef struct argbed {
    arb_backend *be;
    th_hw hw;
    th_dw d;
    th_buf x, gy, y, gx, gW, s, idx, acc, guard, flips, pos, step;
    int64_t M, N, K;
} argbed;

static argbed argbed_open(void)
{
    argbed a;
    memset(&a, 0, sizeof(a));
    th_rng r = th_rng_for("args");
    a.be = th_open_cpu(1);
    a.M = 4, a.N = 6, a.K = 10;
    a.hw = th_hw_random(&r, a.N, a.K, 5, -3, 3, 2, 2);
    a.d = th_dw_create(a.be, &a.hw);
    size_t mk = (size_t)(a.M * a.K), mn = (size_t)(a.M * a.N), nk = (size_t)(a.N * a.K);
    a.x = th_buf_alloc(a.be, mk * sizeof(float));
    a.gy = th_buf_alloc(a.be, mn * sizeof(float));
    a.y = th_buf_alloc(a.be, mn * sizeof(float));
    a.gx = th_buf_alloc(a.be, mk * sizeof(float));
    a.gW = th_buf_alloc(a.be, nk * sizeof(float));
    a.s = th_buf_alloc(a.be, nk);
    a.idx = th_buf_alloc(a.be, (size_t)a.M * sizeof(int32_t));
    a.acc = th_buf_alloc(a.be, nk * sizeof(float));
    a.guard = th_buf_alloc(a.be, sizeof(int32_t));
    a.flips = th_buf_alloc(a.be, sizeof(uint64_t));
    a.pos = th_buf_alloc(a.be, (size_t)a.M * sizeof(int64_t));
    a.step = th_buf_alloc(a.be, sizeof(int64_t));
    th_buf *all[] = {&a.x,   &a.gy,    &a.y,     &a.gx,  &a.gW,  &a.s,
                     &a.acc, &a.guard, &a.flips, &a.pos, &a.step};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        th_buf_poison(all[i], 0x3C);
    memset(a.idx.p, 0, a.idx.bytes); /* valid indices */
    return a;
}

/* Expect `st` to be ARB_ERR_INVALID_ARG with a message naming `op` and
 * containing `needle`; then clear the backend's error. */
static void expect_invalid(argbed *a, arb_status st, const char *op, const char *needle)
{
    const char *msg = arb_backend_errmsg(a->be);
    cr_assert_eq(st, ARB_ERR_INVALID_ARG, "%s: status %s, want ARB_ERR_INVALID_ARG (%s)", op,
                 arb_status_name(st), msg);
    cr_assert(strstr(msg, op) != NULL, "%s: the message '%s' does not name the op", op, msg);
    cr_assert(strstr(msg, needle) != NULL, "%s: the message '%s' does not say '%s'", op, msg,
              needle);
    arb_backend_clear_error(a->be);
    cr_assert_str_empty(arb_backend_errmsg(a->be));
}

/* A failed check touches no memory: every output still holds the sentinel
 * and the weight its state. */
static void expect_untouched(argbed *a)
{
    th_buf *outs[] = {&a->y, &a->gx, &a->gW, &a->s, &a->acc, &a->flips, &a->pos};
    for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++)
        for (size_t j = 0; j < outs[i]->bytes; j++)
            cr_assert_eq(((uint8_t *)outs[i]->p)[j], 0x3C, "output %zu byte %zu was written", i, j);
    th_case c = {"args", a->M, a->N, a->K, 5, NULL, "cpu"};
    th_hw now = th_hw_clone(&a->hw);
    cr_assert(th_dw_read(&c, &a->d, &now, NULL));
    cr_assert(th_check_state(&c, "weight", &now, &a->hw));
    th_hw_free(&now);
}

static void argbed_close(argbed *a)
{
    th_buf *all[] = {&a->x, &a->gy, &a->y, &a->gx, &a->gW, &a->s, &a->idx, &a->acc, &a->guard,
                     &a->flips, &a->pos, &a->step};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        th_buf_free(all[i]);
    th_dw_free(&a->d);
    th_hw_free(&a->hw);
    arb_backend_close(a->be);
}

/* Each NULL pointer is refused with a message naming the op and the argument. */
Test(ops_args, null_pointers)
{
    argbed a = argbed_open();
    arb_ternary *W = &a.d.w;
    int64_t M = a.M, N = a.N, K = a.K;
    arb_update_rule rule = {2, 2, ARB_E_SCORE_GRAD};
    expect_invalid(&a, arb_op_ternary_fwd(a.be, W, NULL, a.y.p, M), "ternary_fwd", "x is NULL");
    expect_invalid(&a, arb_op_ternary_fwd(a.be, W, a.x.p, NULL, M), "ternary_fwd", "y is NULL");
    expect_invalid(&a, arb_op_ternary_fwd(a.be, NULL, a.x.p, a.y.p, M), "ternary_fwd", "weight");
    expect_invalid(&a, arb_op_ternary_grad_x(a.be, W, NULL, a.gx.p, M), "ternary_grad_x", "gy");
    expect_invalid(&a, arb_op_grad_weight(a.be, a.gy.p, a.x.p, NULL, M, N, K), "grad_weight",
                   "NULL");
    expect_invalid(&a, arb_op_grad_sign(a.be, NULL, a.x.p, a.s.p, M, N, K), "grad_sign", "gy");
    expect_invalid(&a, arb_op_ternary_step(a.be, W, NULL, 2, NULL, a.flips.p), "ternary_step",
                   "s is NULL");
    expect_invalid(&a, arb_op_update_E(a.be, W, a.s.p, NULL, 2, ARB_E_SCORE_GRAD, NULL),
                   "update_E", "gW");
    expect_invalid(&a, arb_op_update_E(a.be, W, NULL, a.gW.p, 2, ARB_E_SCORE_SIGN, NULL),
                   "update_E", "s");
    expect_invalid(&a, arb_op_ternary_update_direct(a.be, W, NULL, a.x.p, M, &rule, NULL, NULL),
                   "ternary_update_direct", "gy");
    expect_invalid(&a, arb_op_ternary_update_direct(a.be, W, a.gy.p, a.x.p, M, NULL, NULL, NULL),
                   "ternary_update_direct", "rule");
    expect_invalid(&a, arb_op_ternary_step_direct(a.be, W, a.gy.p, NULL, M, 2, NULL, NULL),
                   "ternary_step_direct", "x");
    expect_invalid(&a, arb_op_update_E_direct(a.be, W, a.gy.p, NULL, M, 2, ARB_E_SCORE_GRAD, NULL),
                   "update_E_direct", "x");
    expect_invalid(&a, arb_op_update_E_scores(a.be, W, a.s.p, a.gW.p, ARB_E_SCORE_GRAD, NULL),
                   "update_E_scores", "scores");
    expect_invalid(&a, arb_op_update_E_scores(a.be, W, NULL, a.gW.p, ARB_E_SCORE_SIGN, a.acc.p),
                   "update_E_scores", "s");
    arb_status st = arb_op_update_E_scores_direct(a.be, W, NULL, a.x.p, M, ARB_E_SCORE_GRAD,
                                                  a.acc.p);
    expect_invalid(&a, st, "update_E_scores_direct", "gy");
    expect_invalid(&a, arb_op_update_E_apply(a.be, W, NULL, 2, NULL), "update_E_apply", "scores");
    expect_invalid(&a, arb_op_embed_fwd(a.be, W, NULL, a.y.p, M), "embed_fwd", "idx");
    expect_invalid(&a, arb_op_embed_bwd(a.be, W, a.idx.p, a.gy.p, M, a.acc.p, NULL), "embed_bwd",
                   "s is NULL");
    expect_invalid(&a, arb_op_xent_fwd(a.be, a.y.p, a.idx.p, M, N, NULL, NULL), "xent_fwd",
                   "loss_sum");
    expect_invalid(&a, arb_op_xent_bwd(a.be, a.y.p, NULL, M, N, a.gx.p), "xent_bwd", "target");
    expect_invalid(&a, arb_op_relu_fwd(a.be, NULL, a.y.p, M, 0), "relu_fwd", "z");
    expect_invalid(&a, arb_op_relu_bwd(a.be, a.y.p, a.x.p, NULL, M), "relu_bwd", "gz");
    expect_invalid(&a, arb_op_add(a.be, a.y.p, NULL, M), "add", "b");
    expect_invalid(&a, arb_op_sample_positions(a.be, 1, NULL, 0, 10, M, a.pos.p),
                   "sample_positions", "step_counter");
    expect_invalid(&a, arb_op_step_advance(a.be, NULL), "step_advance", "step_counter");
    /* the accumulators an update needs */
    arb_ternary frozen = *W;
    frozen.T_accum = NULL;
    expect_invalid(&a, arb_op_ternary_step(a.be, &frozen, a.s.p, 2, NULL, NULL), "ternary_step",
                   "T_accum");
    frozen = *W;
    frozen.E_accum = NULL;
    expect_invalid(&a, arb_op_update_E(a.be, &frozen, a.s.p, a.gW.p, 2, ARB_E_SCORE_GRAD, NULL),
                   "update_E", "E_accum");
    frozen = *W;
    frozen.T_packed = NULL;
    expect_invalid(&a, arb_op_ternary_fwd(a.be, &frozen, a.x.p, a.y.p, M), "ternary_fwd",
                   "T_packed");
    expect_untouched(&a);
    argbed_close(&a);
}

/* A group size that does not fit the weight is refused by every op taking
 * a weight, with the op's name and the rule in the message. */
Test(ops_args, bad_group_size)
{
    argbed a = argbed_open();
    arb_ternary W = a.d.w;
    W.gs = 3; /* K = 10: 3 neither divides K nor is a multiple of it */
    int64_t M = a.M;
    arb_update_rule rule = {2, 2, ARB_E_SCORE_GRAD};
    expect_invalid(&a, arb_op_ternary_fwd(a.be, &W, a.x.p, a.y.p, M), "ternary_fwd", "gs=3");
    expect_invalid(&a, arb_op_ternary_grad_x(a.be, &W, a.gy.p, a.gx.p, M), "ternary_grad_x",
                   "gs=3");
    expect_invalid(&a, arb_op_ternary_step(a.be, &W, a.s.p, 2, NULL, NULL), "ternary_step", "gs=3");
    expect_invalid(&a, arb_op_update_E(a.be, &W, a.s.p, a.gW.p, 2, ARB_E_SCORE_GRAD, NULL),
                   "update_E", "gs=3");
    expect_invalid(&a, arb_op_ternary_update_direct(a.be, &W, a.gy.p, a.x.p, M, &rule, NULL, NULL),
                   "ternary_update_direct", "gs=3");
    expect_invalid(&a, arb_op_embed_fwd(a.be, &W, a.idx.p, a.y.p, M), "embed_fwd", "gs=3");
    expect_invalid(&a, arb_op_update_E_scores(a.be, &W, a.s.p, a.gW.p, ARB_E_SCORE_GRAD, a.acc.p),
                   "update_E_scores", "gs=3");
    expect_invalid(&a, arb_op_update_E_apply(a.be, &W, (const float *)a.x.p, 2, NULL),
                   "update_E_apply", "gs=3");
    W.gs = 20 * 10; /* 20 rows of a 6-row weight */
    expect_invalid(&a, arb_op_ternary_fwd(a.be, &W, a.x.p, a.y.p, M), "ternary_fwd", "gs=200");
    W.gs = 0;
    expect_invalid(&a, arb_op_ternary_fwd(a.be, &W, a.x.p, a.y.p, M), "ternary_fwd", "gs=0");
    /* RMSNorm's weight must be one row */
    expect_invalid(&a, arb_op_rmsnorm_fwd(a.be, &a.d.w, a.x.p, a.y.p, M), "rmsnorm_fwd",
                   "1 x D");
    expect_untouched(&a);
    argbed_close(&a);
}

/* theta and phi live in 1..127 (phi 0 = "E frozen" only where a rule can
 * skip the E step); a score mode must be one of the two. */
Test(ops_args, thresholds_out_of_range)
{
    argbed a = argbed_open();
    arb_ternary *W = &a.d.w;
    int64_t M = a.M;
    const int bad_theta[] = {0, -1, 128, 1000};
    for (size_t i = 0; i < sizeof(bad_theta) / sizeof(bad_theta[0]); i++) {
        int t = bad_theta[i];
        arb_update_rule rule = {t, 2, ARB_E_SCORE_GRAD};
        expect_invalid(&a, arb_op_ternary_step(a.be, W, a.s.p, t, NULL, a.flips.p),
                       "ternary_step", "theta");
        expect_invalid(&a, arb_op_ternary_step_direct(a.be, W, a.gy.p, a.x.p, M, t, NULL, NULL),
                       "ternary_step_direct", "theta");
        expect_invalid(&a,
                       arb_op_ternary_update_direct(a.be, W, a.gy.p, a.x.p, M, &rule, NULL, NULL),
                       "ternary_update_direct", "theta");
    }
    const int bad_phi[] = {0, -1, 128};
    for (size_t i = 0; i < sizeof(bad_phi) / sizeof(bad_phi[0]); i++) {
        int p = bad_phi[i];
        expect_invalid(&a, arb_op_update_E(a.be, W, a.s.p, a.gW.p, p, ARB_E_SCORE_GRAD, NULL),
                       "update_E", "phi");
        expect_invalid(&a,
                       arb_op_update_E_direct(a.be, W, a.gy.p, a.x.p, M, p, ARB_E_SCORE_SIGN, NULL),
                       "update_E_direct", "phi");
        if (p != 0) { /* phi = 0 is the fused update's "E frozen" */
            arb_update_rule rule = {2, p, ARB_E_SCORE_GRAD};
            arb_status st =
                arb_op_ternary_update_direct(a.be, W, a.gy.p, a.x.p, M, &rule, NULL, NULL);
            expect_invalid(&a, st, "ternary_update_direct", "phi");
        }
    }
    for (size_t i = 0; i < sizeof(bad_phi) / sizeof(bad_phi[0]); i++)
        expect_invalid(&a, arb_op_update_E_apply(a.be, W, (const float *)a.x.p, bad_phi[i], NULL),
                       "update_E_apply", "phi");
    expect_invalid(&a, arb_op_update_E(a.be, W, a.s.p, a.gW.p, 2, (arb_e_score)7, NULL),
                   "update_E", "score");
    expect_invalid(&a, arb_op_update_E_scores(a.be, W, a.s.p, a.gW.p, (arb_e_score)-1, a.acc.p),
                   "update_E_scores", "score");
    expect_untouched(&a);
    argbed_close(&a);
}

/* Counts below 1 and indices outside their range are refused. */
Test(ops_args, counts_and_indices)
{
    argbed a = argbed_open();
    arb_ternary *W = &a.d.w;
    int64_t N = a.N, K = a.K;
    expect_invalid(&a, arb_op_ternary_fwd(a.be, W, a.x.p, a.y.p, 0), "ternary_fwd", "M = 0");
    expect_invalid(&a, arb_op_grad_weight(a.be, a.gy.p, a.x.p, a.gW.p, -1, N, K), "grad_weight",
                   "M = -1");
    expect_invalid(&a, arb_op_relu_fwd(a.be, a.x.p, a.y.p, 0, 0), "relu_fwd", "n = 0");
    expect_invalid(&a, arb_op_sample_positions(a.be, 1, a.step.p, 5, 5, 2, a.pos.p),
                   "sample_positions", "empty");
    expect_invalid(&a, arb_op_gather_context(a.be, (const uint8_t *)a.x.p, 4, a.pos.p, 2, 4,
                                             a.idx.p, (int32_t *)a.acc.p),
                   "gather_context", "ctx = 4");
    /* cpu range checks on data: a table index, a target, a position */
    int32_t *idx = a.idx.p;
    idx[2] = (int32_t)N; /* V = N rows: N is one past the end */
    expect_invalid(&a, arb_op_embed_fwd(a.be, W, idx, a.y.p, a.M), "embed_fwd", "idx[2]");
    expect_invalid(&a, arb_op_embed_bwd(a.be, W, idx, a.gy.p, a.M, a.acc.p, a.s.p), "embed_bwd",
                   "idx[2]");
    idx[2] = -1;
    expect_invalid(&a, arb_op_xent_fwd(a.be, a.y.p, idx, a.M, N, (float *)a.gW.p, NULL),
                   "xent_fwd", "target[2]");
    idx[2] = 0;
    int64_t *pos = a.pos.p;
    uint8_t corpus[16] = {0};
    for (int i = 0; i < a.M; i++)
        pos[i] = 8;
    pos[1] = 3; /* below ctx = 4 */
    expect_invalid(&a, arb_op_gather_context(a.be, corpus, 16, pos, a.M, 4, (int32_t *)a.gx.p,
                                             (int32_t *)a.gW.p),
                   "gather_context", "pos[1]");
    th_buf_poison(&a.pos, 0x3C);
    expect_untouched(&a);
    argbed_close(&a);
}
