/*
 * test_updates_cpu.c - the integer update rules on the cpu backend.
 *
 * Hand-built tables pin every branch of ternary_step and update_E (SPEC §3)
 * with expected values written out by hand; each table is also run through
 * the harness's reference (so the reference is pinned too) and through the
 * direct ops. Random cases then check the guard, the flips counter, and that
 * the direct ops leave T_packed, T_accum, E and E_accum byte-identical to the
 * two-pass path grad_sign -> ternary_step -> grad_weight -> update_E, for all
 * six scale types and both score modes. Embedding backward with heavy
 * duplicates closes the file (its s feeds the embedding's ternary_step).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- ternary_step, by hand ---------------------------------------------------- */

/* One trit: state before, the vote s, and the state SPEC §3 gives after. */
typedef struct step_row {
    int8_t T, acc, s;
    int8_t T_want, acc_want;
    const char *why;
} step_row;

/* Run a table as one 1 x n weight (n not a multiple of 5, so the last byte
 * has padding) through ternary_step, ternary_step_direct (s = sign(gy^T x)
 * with M = 1, gy = 1, x = s) and the harness reference; all three must give
 * the table's answers, and the flips counter must grow by the changed trits. */
static void check_step_table(const step_row *rows, int n, int theta)
{
    arb_backend *be = th_open_cpu(1);
    int8_t T[32], acc[32], s[32], E[32] = {0};
    float x[32], gy[1] = {1.0f};
    uint64_t want_flips = 0;
    cr_assert(n <= 32);
    for (int i = 0; i < n; i++) {
        T[i] = rows[i].T;
        acc[i] = rows[i].acc;
        s[i] = rows[i].s;
        x[i] = (float)rows[i].s;
        want_flips += rows[i].T_want != rows[i].T;
    }
    th_hw before = {1, n, 1, T, E, acc, NULL};
    th_case c = {"ternary_step", 1, 1, n, 1, "hand-built", "cpu"};

    /* the reference */
    th_hw ref = th_hw_clone(&before);
    cr_assert_eq(th_ref_ternary_step(&ref, s, theta), want_flips);
    for (int i = 0; i < n; i++)
        cr_assert(ref.T[i] == rows[i].T_want && ref.T_accum[i] == rows[i].acc_want,
                  "reference, theta=%d, row %d (%s): T=%d T_accum=%d, want %d %d", theta, i,
                  rows[i].why, ref.T[i], ref.T_accum[i], rows[i].T_want, rows[i].acc_want);
    th_hw_free(&ref);

    for (int direct = 0; direct < 2; direct++) {
        th_dw d = th_dw_create(be, &before);
        th_buf bs = th_buf_from(be, s, (size_t)n);
        th_buf bx = th_buf_from(be, x, (size_t)n * sizeof(float));
        th_buf bgy = th_buf_from(be, gy, sizeof(gy));
        uint64_t flips0 = 5, flips = 0;
        th_buf bflips = th_buf_from(be, &flips0, sizeof(flips0));
        arb_status st = direct ? arb_op_ternary_step_direct(be, &d.w, bgy.p, bx.p, 1, theta,
                                                            NULL, bflips.p)
                               : arb_op_ternary_step(be, &d.w, bs.p, theta, NULL, bflips.p);
        cr_assert_eq(st, ARB_OK, "%s", arb_backend_errmsg(be));
        th_hw got = th_hw_clone(&before);
        cr_assert(th_dw_read(&c, &d, &got, NULL), "packed data invalid after the step");
        th_buf_download(&bflips, &flips);
        for (int i = 0; i < n; i++)
            cr_assert(got.T[i] == rows[i].T_want && got.T_accum[i] == rows[i].acc_want,
                      "%s, theta=%d, row %d (%s): T=%d T_accum=%d, want T=%d T_accum=%d",
                      direct ? "ternary_step_direct" : "ternary_step", theta, i, rows[i].why,
                      got.T[i], got.T_accum[i], rows[i].T_want, rows[i].acc_want);
        cr_assert_eq(flips, flips0 + want_flips, "flips counter %llu, want 5 + %llu",
                     (unsigned long long)flips, (unsigned long long)want_flips);
        th_hw_free(&got);
        th_buf_free(&bs);
        th_buf_free(&bx);
        th_buf_free(&bgy);
        th_buf_free(&bflips);
        th_dw_free(&d);
    }
    arb_backend_close(be);
}

/* s is the sign of dL/dW, so s = -1 is a vote to raise T: a = T_accum - s. */
Test(ternary_step, hand_built_theta_2)
{
    static const step_row rows[] = {
        {1, 2, -1, 1, 2, "T=+1 saturated at +theta, vote up: a=3, T cannot rise; clamps"},
        {1, 1, -1, 1, 2, "T=+1 reaching +theta: no flip, so no reset: T_accum = theta"},
        {-1, -2, 1, -1, -2, "T=-1 saturated at -theta, vote down: clamps to -theta"},
        {-1, -1, 1, -1, -2, "T=-1 reaching -theta: no flip, no reset"},
        {0, 1, -1, 1, 0, "flip up: a=2 >= theta, T 0 -> +1, a = 0"},
        {0, -1, 1, -1, 0, "flip down: a=-2 <= -theta, T 0 -> -1, a = 0"},
        {-1, 1, -1, 0, 0, "flip up from -1"},
        {1, -1, 1, 0, 0, "flip down from +1"},
        {-1, 2, -1, 0, 0, "a = theta + 1 flips once and resets (no double step)"},
        {0, 1, 0, 0, 1, "s = 0: a = T_accum below theta, nothing moves"},
        {0, -1, 0, 0, -1, "s = 0, negative accumulator: nothing moves"},
        {1, -2, 0, 0, 0, "s = 0 with T_accum at -theta: a = -theta reaches the threshold, T falls"},
        {0, 0, 1, 0, -1, "one vote down accumulates"},
        {1, 0, 1, 1, -1, "T=+1, one vote down accumulates"},
        /* s may be a sum of data-parallel ranks' signs: its sign votes (ops.h) */
        {0, 1, -3, 1, 0, "a vote sum of -3 counts as one vote up: flip"},
        {0, 0, 100, 0, -1, "a vote sum of 100 counts as one vote down"},
        {1, 0, -128, 1, 1, "-128 is one vote up (no int overflow in T_accum - s)"},
    };
    check_step_table(rows, (int)(sizeof(rows) / sizeof(rows[0])), 2);
}

Test(ternary_step, hand_built_theta_1)
{
    static const step_row rows[] = {
        {0, 0, -1, 1, 0, "theta 1: one vote up flips"},
        {0, 0, 1, -1, 0, "theta 1: one vote down flips"},
        {0, 0, 0, 0, 0, "s = 0, a = 0: nothing"},
        {1, 1, -1, 1, 1, "saturated at +1"},
        {1, 0, -1, 1, 1, "T=+1 reaching +theta: T_accum = 1"},
        {-1, -1, -1, -1, 0, "an opposing vote cancels the accumulator"},
        {-1, 0, 1, -1, -1, "T=-1 reaching -theta: T_accum = -1"},
    };
    check_step_table(rows, (int)(sizeof(rows) / sizeof(rows[0])), 1);
}

/* theta = 127: a = T_accum - s reaches +-128, outside int8; the rule works
 * in int and clamps, it must not wrap. */
Test(ternary_step, hand_built_theta_127)
{
    static const step_row rows[] = {
        {1, 127, -1, 1, 127, "a = 128 clamps to 127, no int8 wrap"},
        {-1, -127, 1, -1, -127, "a = -128 clamps to -127"},
        {0, 127, -1, 1, 0, "a = 128 >= 127: flip up"},
        {0, -126, 1, -1, 0, "a = -127 = -theta exactly: flip down"},
        {0, 125, -1, 0, 126, "below theta: accumulates"},
        {-1, 126, -1, 0, 0, "a = theta exactly: flip up"},
    };
    check_step_table(rows, (int)(sizeof(rows) / sizeof(rows[0])), 127);
}

/* ---- update_E, by hand -------------------------------------------------------- */

/* One group of gs = 3: trits (the T ternary_step left), gW, s = sign(gW), the
 * scale state before, and after for each score mode. */
typedef struct e_row {
    int8_t T[3];
    float gW[3];
    int8_t E, acc;
    int8_t E_grad, acc_grad; /* mode grad: score = sum gW * T */
    int8_t E_sign, acc_sign; /* mode sign: score = sum s * T */
    const char *why;
} e_row;

static const e_row e_rows[] = {
    {{1, -1, 0}, {1.5f, 1.5f, 4.0f}, 3, 1, 3, 1, 3, 1,
     "score exactly 0 (a tie) -> sign 0: a = E_accum, nothing moves"},
    {{0, 0, 0}, {5.0f, -7.0f, 1.0f}, 0, 2, 1, 0, 1, 0,
     "score 0 with E_accum at +phi: a = phi reaches the threshold, E rises"},
    {{1, 1, 0}, {1.0f, 2.0f, -9.0f}, 0, 0, 0, -1, 0, -1,
     "positive score (gradient along W): one vote to shrink"},
    {{1, 0, 0}, {0.25f, 9.0f, 9.0f}, 5, -1, 4, 0, 4, 0,
     "positive score, a = -phi: E falls by one, a = 0"},
    {{-1, 1, 0}, {2.0f, 0.5f, 1.0f}, 7, 1, 8, 0, 7, 1,
     "grad score -1.5 steps E up; sign score 0 does not: the modes differ"},
    {{-1, -1, 0}, {1.0f, 1.0f, 1.0f}, ARB_E_MAX, 1, ARB_E_MAX, 0, ARB_E_MAX, 0,
     "E at E_MAX, a = phi: E stays at E_MAX (min), a = 0"},
    {{1, 1, 0}, {1.0f, 1.0f, 1.0f}, ARB_E_MIN, -1, ARB_E_MIN, 0, ARB_E_MIN, 0,
     "E at E_MIN, a = -phi: E stays at E_MIN (max), a = 0"},
    {{1, 1, 1}, {0.1f, 0.1f, -5.0f}, 0, -1, 0, 0, -1, 0,
     "opposite signs: grad -4.8 (a = 0), sign +1 (a = -phi, E falls)"},
    {{-1, 0, 0}, {3.0f, 0.0f, 0.0f}, -5, 1, -4, 0, -4, 0,
     "negative score, a = phi: E rises by one (gW = 0 gives s = 0)"},
};

/* Each mode runs the table through update_E (two-pass, from gW or s),
 * update_E_direct (gW = gy^T x with M = 1, gy = 1, x = gW) and the
 * reference; all must give the hand-written answers. */
static void check_E_table(arb_e_score mode)
{
    enum { G = sizeof(e_rows) / sizeof(e_rows[0]), GS = 3, K = G * GS, PHI = 2 };
    arb_backend *be = th_open_cpu(1);
    int8_t T[K], s[K], E[G], acc[G];
    float gW[K], gy[1] = {1.0f};
    for (int g = 0; g < G; g++) {
        E[g] = e_rows[g].E;
        acc[g] = e_rows[g].acc;
        for (int j = 0; j < GS; j++) {
            T[g * GS + j] = e_rows[g].T[j];
            gW[g * GS + j] = e_rows[g].gW[j];
            s[g * GS + j] = (int8_t)((gW[g * GS + j] > 0) - (gW[g * GS + j] < 0));
        }
    }
    th_hw before = {1, K, GS, T, E, NULL, acc};
    th_case c = {"update_E", 1, 1, K, GS, arb_e_score_name(mode), "cpu"};
    const char *mname = arb_e_score_name(mode);

    /* the reference */
    double v[K], score[G], mag[G];
    for (int i = 0; i < K; i++)
        v[i] = mode == ARB_E_SCORE_GRAD ? gW[i] : s[i];
    th_ref_group_scores(&before, v, score, mag);
    for (int g = 0; g < G; g++) {
        int8_t e = E[g], a = acc[g];
        th_ref_E_rule(&e, &a, (score[g] > 0) - (score[g] < 0), PHI);
        int8_t we = mode == ARB_E_SCORE_GRAD ? e_rows[g].E_grad : e_rows[g].E_sign;
        int8_t wa = mode == ARB_E_SCORE_GRAD ? e_rows[g].acc_grad : e_rows[g].acc_sign;
        cr_assert(e == we && a == wa, "reference, %s, group %d (%s): E=%d E_accum=%d, want %d %d",
                  mname, g, e_rows[g].why, e, a, we, wa);
    }

    for (int direct = 0; direct < 2; direct++) {
        th_dw d = th_dw_create(be, &before);
        th_buf bs = th_buf_from(be, s, K), bg = th_buf_from(be, gW, sizeof(gW));
        th_buf bgy = th_buf_from(be, gy, sizeof(gy));
        arb_status st = direct ? arb_op_update_E_direct(be, &d.w, bgy.p, bg.p, 1, PHI, mode, NULL)
                               : arb_op_update_E(be, &d.w, bs.p, bg.p, PHI, mode, NULL);
        cr_assert_eq(st, ARB_OK, "%s", arb_backend_errmsg(be));
        th_hw got = th_hw_clone(&before);
        cr_assert(th_dw_read(&c, &d, &got, NULL));
        cr_assert_arr_eq(got.T, T, K, "update_E changed T");
        for (int g = 0; g < G; g++) {
            int8_t we = mode == ARB_E_SCORE_GRAD ? e_rows[g].E_grad : e_rows[g].E_sign;
            int8_t wa = mode == ARB_E_SCORE_GRAD ? e_rows[g].acc_grad : e_rows[g].acc_sign;
            cr_assert(got.E[g] == we && got.E_accum[g] == wa,
                      "%s, %s, group %d (%s): E=%d E_accum=%d, want E=%d E_accum=%d",
                      direct ? "update_E_direct" : "update_E", mname, g, e_rows[g].why, got.E[g],
                      got.E_accum[g], we, wa);
        }
        th_hw_free(&got);
        th_buf_free(&bs);
        th_buf_free(&bg);
        th_buf_free(&bgy);
        th_dw_free(&d);
    }
    arb_backend_close(be);
}

Test(update_E, hand_built_grad_mode) { check_E_table(ARB_E_SCORE_GRAD); }

Test(update_E, hand_built_sign_mode) { check_E_table(ARB_E_SCORE_SIGN); }

/* update_E_apply: the E rule from given fp32 scores; only their sign
 * counts (sign(+-0) = 0, a denormal-sized score is still a sign). */
Test(update_E, apply_hand_built)
{
    enum { G = 7, PHI = 2 };
    const float scores[G] = {0.0f, 1e-30f, -1e-30f, 5.0f, -5.0f, 0.0f, -0.0f};
    int8_t T[G] = {1, 1, 1, 1, 1, 1, 1}, E[G] = {3, 0, 0, ARB_E_MIN, ARB_E_MAX, 7, 7};
    int8_t acc[G] = {2, -1, 1, -1, 1, -2, 0};
    const int8_t E_want[G] = {4, -1, 1, ARB_E_MIN, ARB_E_MAX, 6, 7};
    const int8_t acc_want[G] = {0, 0, 0, 0, 0, 0, 0};
    const char *why[G] = {"score 0 with E_accum at +phi: E rises",
                          "a tiny positive score is a vote to shrink: a = -phi, E falls",
                          "a tiny negative score: a = phi, E rises",
                          "E_MIN clamps",
                          "E_MAX clamps",
                          "score 0 with E_accum at -phi: E falls",
                          "-0 is 0: a = E_accum = 0, nothing moves"};
    arb_backend *be = th_open_cpu(1);
    th_hw w = {1, G, 1, T, E, NULL, acc};
    th_case c = {"update_E_apply", 0, 1, G, 1, "hand-built", "cpu"};
    for (int guarded = 0; guarded < 2; guarded++) {
        th_dw d = th_dw_create(be, &w);
        th_buf bsc = th_buf_from(be, scores, sizeof(scores));
        int32_t guard_value = guarded ? -7 : 0;
        th_buf bguard = th_buf_from(be, &guard_value, sizeof(guard_value));
        cr_assert_eq(arb_op_update_E_apply(be, &d.w, bsc.p, PHI, bguard.p), ARB_OK, "%s",
                     arb_backend_errmsg(be));
        int8_t gT[G], gE[G], gacc[G];
        th_hw got = {1, G, 1, gT, gE, NULL, gacc};
        cr_assert(th_dw_read(&c, &d, &got, NULL));
        cr_assert_arr_eq(gT, T, G);
        for (int g = 0; g < G; g++) {
            int8_t we = guarded ? E[g] : E_want[g], wa = guarded ? acc[g] : acc_want[g];
            cr_assert(gE[g] == we && gacc[g] == wa,
                      "%s, group %d (%s): E=%d E_accum=%d, want %d %d",
                      guarded ? "guard -7: nothing moves" : "unguarded", g, why[g], gE[g],
                      gacc[g], we, wa);
        }
        th_buf_free(&bsc);
        th_buf_free(&bguard);
        th_dw_free(&d);
    }
    arb_backend_close(be);
}

/* update_E scores the group with the T that ternary_step has just written,
 * not the old one. Here the old T (all 0) scores 0 (E would stay), the new
 * T (all -1) scores -2 and steps E up; fused and two-pass paths both. */
Test(update_E, scores_use_the_new_T)
{
    arb_backend *be = th_open_cpu(1);
    int8_t T[2] = {0, 0}, T_accum[2] = {-1, -1}, E[1] = {0}, E_accum[1] = {1};
    const float gy[1] = {1.0f}, x[2] = {1.0f, 1.0f}; /* gW = [1, 1], s = [1, 1] */
    th_hw w = {1, 2, 2, T, E, T_accum, E_accum};
    th_case c = {"update_E", 1, 1, 2, 2, "new T", "cpu"};
    for (int mode = 0; mode < 2; mode++) {
        for (int fused = 0; fused < 2; fused++) {
            th_dw d = th_dw_create(be, &w);
            th_buf bgy = th_buf_from(be, gy, sizeof(gy)), bx = th_buf_from(be, x, sizeof(x));
            th_buf bs = th_buf_alloc(be, 2), bgw = th_buf_alloc(be, 2 * sizeof(float));
            if (fused) {
                arb_update_rule rule = {2, 2, (arb_e_score)mode};
                cr_assert_eq(arb_op_ternary_update_direct(be, &d.w, bgy.p, bx.p, 1, &rule, NULL,
                                                          NULL),
                             ARB_OK);
            } else {
                cr_assert_eq(arb_op_grad_sign(be, bgy.p, bx.p, bs.p, 1, 1, 2), ARB_OK);
                cr_assert_eq(arb_op_ternary_step(be, &d.w, bs.p, 2, NULL, NULL), ARB_OK);
                cr_assert_eq(arb_op_grad_weight(be, bgy.p, bx.p, bgw.p, 1, 1, 2), ARB_OK);
                cr_assert_eq(arb_op_update_E(be, &d.w, bs.p, bgw.p, 2, (arb_e_score)mode, NULL),
                             ARB_OK);
            }
            int8_t gT[2], gacc[2], gE[1], gEacc[1];
            th_hw got = {1, 2, 2, gT, gE, gacc, gEacc};
            cr_assert(th_dw_read(&c, &d, &got, NULL));
            cr_assert(gT[0] == -1 && gT[1] == -1 && gacc[0] == 0 && gacc[1] == 0,
                      "T step (%s, %s): T = %d %d, T_accum = %d %d", fused ? "fused" : "two-pass",
                      arb_e_score_name((arb_e_score)mode), gT[0], gT[1], gacc[0], gacc[1]);
            cr_assert(gE[0] == 1 && gEacc[0] == 0,
                      "E step (%s, %s): E = %d, E_accum = %d; want 1, 0 (scored with the old T "
                      "it would stay 0, 1)",
                      fused ? "fused" : "two-pass", arb_e_score_name((arb_e_score)mode), gE[0],
                      gEacc[0]);
            th_buf_free(&bgy);
            th_buf_free(&bx);
            th_buf_free(&bs);
            th_buf_free(&bgw);
            th_dw_free(&d);
        }
    }
    arb_backend_close(be);
}

/* ---- random cases --------------------------------------------------------------- */

Test(ternary_step, random_all_scale_types)
{
    th_sweep_on_cpu("ternary_step/random_all_scale_types", th_sweep_ternary_step);
}

Test(update_E, random_all_scale_types)
{
    th_sweep_on_cpu("update_E/random_all_scale_types", th_sweep_update_E);
}

/* update_E_scores + update_E_apply, the split update_E of data-parallel
 * training, on all scale types and both score modes. */
Test(update_E, split_random_all_scale_types)
{
    th_sweep_on_cpu("update_E/split_random_all_scale_types", th_sweep_update_E_split);
}

/* The direct ops against the two-pass path, byte for byte, on random
 * normal data (the cpu computes identical gW rows either way) and on small
 * integers (exact zeros of gW: sign(0) = 0 and score ties). */
static void direct_equals_two_pass(const char *name, arb_e_score mode, int theta_cycle,
                                   int phi_cycle)
{
    th_bed bed = th_cpu_bed(name);
    int ok = 1, i = 0;
    TH_FOR_EACH_SHAPE(s)
    {
        int theta = 1 + i % theta_cycle, phi = 1 + i % phi_cycle;
        i++;
        ok &= th_case_update_chain(&bed, s->M, s->N, s->K, th_shape_gs(s), theta, phi, mode, 0);
        ok &= th_case_update_chain(&bed, s->M, s->N, s->K, th_shape_gs(s), theta, phi, mode, 1);
    }
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

Test(update_direct, equals_two_pass_grad_mode)
{
    direct_equals_two_pass("update_direct/equals_two_pass_grad_mode", ARB_E_SCORE_GRAD, 3, 2);
}

Test(update_direct, equals_two_pass_sign_mode)
{
    direct_equals_two_pass("update_direct/equals_two_pass_sign_mode", ARB_E_SCORE_SIGN, 2, 3);
}

/* The same with 3 threads: rows of K % 5 != 0 trits share packed bytes
 * across threads, whose in-place trit updates must not clobber each other
 * (cpu_common.h: atomic byte adds). */
Test(update_direct, equals_two_pass_threaded)
{
    th_bed bed = {th_open_cpu(3), NULL, th_rng_for("update_direct/equals_two_pass_threaded"), 0, 0};
    int ok = 1;
    TH_FOR_EACH_SHAPE(s)
    {
        if (s->K % 5 == 0 || s->N < 8)
            continue;
        ok &= th_case_update_chain(&bed, s->M, s->N, s->K, th_shape_gs(s), 1, 1,
                                   ARB_E_SCORE_GRAD, 0);
        ok &= th_case_ternary_step(&bed, s->N, s->K, th_shape_gs(s), 1);
    }
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}

/* A nonzero guard (set by xent_fwd on a non-finite loss) leaves every
 * state byte and the flips counter as they were, for every update op. */
Test(update_guard, blocks_every_update)
{
    th_sweep_on_cpu("update_guard/blocks_every_update", th_sweep_guard);
}

/* The flips counter is added to, never overwritten, by ternary_step and
 * the direct ops; NULL skips counting. */
Test(update_flips, counter_accumulates)
{
    th_rng r = th_rng_for("update_flips/counter_accumulates");
    arb_backend *be = th_open_cpu(1);
    const int64_t N = 13, K = 17, M = 5;
    th_hw w = th_hw_random(&r, N, K, 1, -3, 3, 1, 1);
    size_t nk = (size_t)(N * K);
    int8_t *s = malloc(nk);
    float gy[13 * 5], x[17 * 5];
    th_fill_trits(&r, s, nk);
    th_fill_normal(&r, gy, sizeof(gy) / sizeof(gy[0]));
    th_fill_normal(&r, x, sizeof(x) / sizeof(x[0]));
    th_case c = {"flips", M, N, K, 1, NULL, "cpu"};

    th_hw ref = th_hw_clone(&w);
    uint64_t f1 = th_ref_ternary_step(&ref, s, 1);
    uint64_t f2 = th_ref_ternary_step(&ref, s, 1); /* the same votes again */
    cr_assert(f1 > 0, "these random votes should flip something (seed 0x%llx)",
              (unsigned long long)th_run_seed());

    th_dw d = th_dw_create(be, &w);
    th_buf bs = th_buf_from(be, s, nk);
    uint64_t start = 1000, flips = 0;
    th_buf bf = th_buf_from(be, &start, sizeof(start));
    cr_assert_eq(arb_op_ternary_step(be, &d.w, bs.p, 1, NULL, bf.p), ARB_OK);
    cr_assert_eq(arb_op_ternary_step(be, &d.w, bs.p, 1, NULL, NULL), ARB_OK); /* not counted */
    cr_assert_eq(arb_op_ternary_step(be, &d.w, bs.p, 1, NULL, bf.p), ARB_OK);
    th_buf_download(&bf, &flips);
    th_hw again = th_hw_clone(&w);
    uint64_t f3 = th_ref_ternary_step(&ref, s, 1); /* the third step's flips */
    cr_assert_eq(flips, start + f1 + f3, "counter %llu, want %llu + %llu + %llu (step 2: %llu "
                                         "uncounted)",
                 (unsigned long long)flips, (unsigned long long)start, (unsigned long long)f1,
                 (unsigned long long)f3, (unsigned long long)f2);
    cr_assert(th_dw_read(&c, &d, &again, NULL));
    cr_assert(th_check_state(&c, "after three steps", &again, &ref));

    /* the fused update adds its flips to the same counter */
    th_buf bgy = th_buf_from(be, gy, sizeof(gy)), bx = th_buf_from(be, x, sizeof(x));
    arb_update_rule rule = {1, 1, ARB_E_SCORE_GRAD};
    cr_assert_eq(arb_op_ternary_update_direct(be, &d.w, bgy.p, bx.p, M, &rule, NULL, bf.p),
                 ARB_OK);
    uint64_t after = 0;
    th_buf_download(&bf, &after);
    th_hw fused = th_hw_clone(&w);
    cr_assert(th_dw_read(&c, &d, &fused, NULL));
    uint64_t changed = 0;
    for (size_t i = 0; i < nk; i++)
        changed += fused.T[i] != again.T[i];
    cr_assert_eq(after, flips + changed, "fused update: counter %llu, want %llu + %llu",
                 (unsigned long long)after, (unsigned long long)flips,
                 (unsigned long long)changed);
    th_hw_free(&w);
    th_hw_free(&ref);
    th_hw_free(&again);
    th_hw_free(&fused);
    free(s);
    th_buf_free(&bs);
    th_buf_free(&bf);
    th_buf_free(&bgy);
    th_buf_free(&bx);
    th_dw_free(&d);
    arb_backend_close(be);
}

/* ---- embedding backward ---------------------------------------------------------- */

/* Duplicate indices are the normal case: 500 lookups into 7 rows (about 70
 * a row), on normal data (fp32 sums, signs by the rule) and small integers
 * (exact sums, every sign exact). */
Test(embed_bwd, heavy_duplicates)
{
    th_bed bed = th_cpu_bed("embed_bwd/heavy_duplicates");
    int ok = th_case_embed_bwd(&bed, 500, 7, 131, 0) & th_case_embed_bwd(&bed, 500, 7, 131, 1) &
             th_case_embed_bwd(&bed, 500, 7, 1, 1) & th_case_embed_bwd(&bed, 2000, 1, 33, 0);
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}
