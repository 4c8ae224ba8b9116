/*
 * cases.c - the testbed: one function per op of ops.h. Each draws fresh
 * inputs from the test's stream, runs the op on the backend under test with
 * poisoned outputs and guarded buffers, checks every output against the
 * float64 reference of reference.c (SPEC §3 tolerances), and, when the bed
 * carries a cpu backend too (GPU runs), runs the same inputs there and
 * compares. Each passing case prints one line: `op(shape,mode,backend) ...`.
 * At the end, the sweeps run one case over every shape of th_shapes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "harness.h"

/* ---- small helpers ------------------------------------------------------------ */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    cr_assert(p != NULL, "out of host memory");
    return p;
}
#define NEW(type, n) ((type *)xcalloc((size_t)(n), sizeof(type)))

static const char *be_name(arb_backend *be)
{
    return arb_backend_kind_name(arb_backend_kind_of(be));
}

/* The scale type's name for messages ("g32" and so on; "g2K" style names
 * for gs a multiple of K that is not the whole tensor). */
static const char *scale_name(char *buf, size_t len, int64_t N, int64_t K, int64_t gs)
{
    if (gs == 1)
        snprintf(buf, len, "element");
    else if (gs == K)
        snprintf(buf, len, "row");
    else if (gs == N * K)
        snprintf(buf, len, "tensor");
    else if (gs % K == 0)
        snprintf(buf, len, "g%lld=%lld rows", (long long)gs, (long long)(gs / K));
    else
        snprintf(buf, len, "g%lld", (long long)gs);
    return buf;
}

static th_case mk(const char *op, int64_t M, int64_t N, int64_t K, int64_t gs, const char *mode,
                  arb_backend *be)
{
    th_case c = {op, M, N, K, gs, mode, be_name(be)};
    return c;
}

/* Run-and-wait: an op's status, then a sync that surfaces asynchronous
 * kernel faults (jit), both reported with the backend's message. */
static int done(const th_case *c, arb_backend *be, arb_status st, const char *call)
{
    if (!th_ok(c, be, st, call))
        return 0;
    return th_ok(c, be, arb_backend_sync(be), "sync after the op");
}

/* An input buffer must come back unchanged with intact guards. */
static int intact(const th_case *c, const char *what, th_buf *b, const void *host)
{
    void *now = malloc(b->bytes ? b->bytes : 1);
    cr_assert(now != NULL);
    th_buf_download(b, now);
    int ok = memcmp(now, host, b->bytes) == 0;
    if (!ok)
        th_fail(c, what, "an input was modified by the op");
    free(now);
    return th_buf_guards_ok(c, what, b) && ok;
}

static double rel_err(const float *got, const double *want, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return den > 0.0 ? sqrt(num / den) : INFINITY;
}

arb_backend *th_open_cpu(int threads)
{
    arb_backend_options opt;
    arb_backend_options_init(&opt);
    opt.kind = ARB_BACKEND_CPU;
    opt.threads = threads;
    arb_backend *be = NULL;
    arb_err err = {0};
    arb_status st = arb_backend_open(&be, &opt, NULL, 0, &err);
    cr_assert(st == ARB_OK, "opening the cpu backend: %s", err.msg);
    return be;
}

arb_backend *th_open_jit_or_skip(void)
{
    arb_backend_options opt;
    arb_backend_options_init(&opt);
    opt.kind = ARB_BACKEND_JIT;
    arb_backend *be = NULL;
    arb_err err = {0};
    arb_status st = arb_backend_open(&be, &opt, NULL, 0, &err);
    if (st == ARB_ERR_NO_DRIVER || st == ARB_ERR_NO_DEVICE) {
        printf("arb-skip: no GPU for the jit backend (%s): %s\n", arb_status_name(st), err.msg);
        fflush(stdout);
        th_dir_remove(); /* a skipped test runs no .fini */
        cr_skip_test("no GPU: %s", err.msg);
    }
    cr_assert_eq(st, ARB_OK, "opening the jit backend: %s: %s", arb_status_name(st), err.msg);
    return be;
}

static arb_backend *gpu_jit, *gpu_cpu; /* the open GPU bed (one per test process) */

th_bed th_gpu_bed(const char *dir_stem, const char *name)
{
    th_dir_make(dir_stem);
    setenv("ARB_CACHE", th_in_dir("kernels.sqlite"), 1);
    gpu_jit = th_open_jit_or_skip();
    gpu_cpu = th_open_cpu(4);
    th_bed bed = {gpu_jit, gpu_cpu, th_rng_for(name), 0, 0};
    return bed;
}

arb_backend *th_open_jit_mode(arb_backend *sharing, arb_precision prec)
{
    arb_backend_options opt;
    arb_backend_options_init(&opt);
    opt.kind = ARB_BACKEND_JIT;
    opt.precision = prec;
    opt.engine = arb_backend_engine(sharing); /* borrowed */
    arb_backend *be = NULL;
    arb_err err = {0};
    cr_assert_eq(arb_backend_open(&be, &opt, NULL, 0, &err), ARB_OK, "%s: %s",
                 arb_precision_name(prec), err.msg);
    return be;
}

void th_gpu_bed_close(void)
{
    if (gpu_jit)
        arb_backend_close(gpu_jit);
    if (gpu_cpu)
        arb_backend_close(gpu_cpu);
    gpu_jit = gpu_cpu = NULL;
    th_dir_remove();
}

th_bed th_cpu_bed(const char *name)
{
    th_bed bed = {th_open_cpu(1), NULL, th_rng_for(name), 0, 0};
    return bed;
}

/* ---- GEMMs --------------------------------------------------------------------- */

/* ternary_fwd or ternary_grad_x on one backend: in is x[M,K] (fwd) or
 * gy[M,N] (grad_x), out y[M,N] or gx[M,K]. */
static int run_gemm(const th_case *c, arb_backend *be, int grad_x, const th_hw *w,
                    const float *in, int64_t M, float *out)
{
    size_t n_in = (size_t)(M * (grad_x ? w->N : w->K));
    size_t n_out = (size_t)(M * (grad_x ? w->K : w->N));
    th_dw d = th_dw_create(be, w);
    th_buf bi = th_buf_from(be, in, n_in * sizeof(float));
    th_buf bo = th_buf_alloc(be, n_out * sizeof(float));
    th_buf_poison(&bo, TH_POISON_F32);
    arb_status st = grad_x ? arb_op_ternary_grad_x(be, &d.w, bi.p, bo.p, M)
                           : arb_op_ternary_fwd(be, &d.w, bi.p, bo.p, M);
    int ok = done(c, be, st, c->op);
    if (ok) {
        th_buf_download(&bo, out);
        ok &= th_buf_guards_ok(c, grad_x ? "gx" : "y", &bo);
        ok &= intact(c, grad_x ? "gy" : "x", &bi, in);
        th_hw after = th_hw_clone(w);
        ok &= th_dw_read(c, &d, &after, NULL); /* valid and guarded */
        ok &= th_check_state(c, "weight (read-only)", &after, w);
        th_hw_free(&after);
    }
    th_buf_free(&bi);
    th_buf_free(&bo);
    th_dw_free(&d);
    return ok;
}

static int case_gemm(th_bed *bed, int grad_x, int64_t M, int64_t N, int64_t K, int64_t gs)
{
    const char *op = grad_x ? "ternary_grad_x" : "ternary_fwd";
    char mode[64], sname[32];
    arb_precision prec = arb_backend_precision(bed->be);
    snprintf(mode, sizeof(mode), "%s,%s", scale_name(sname, sizeof(sname), N, K, gs),
             arb_precision_name(prec));
    /* SPEC §3 Accuracy: the precision mode's bound against a float64 reference. */
    const double tol = th_tol_gemm(bed->be);
    th_case c = mk(op, M, N, K, gs, mode, bed->be);
    int wide = bed->e_lo || bed->e_hi; /* the bed's E range, else [-3, 3] */
    int e_lo = wide ? bed->e_lo : -3, e_hi = wide ? bed->e_hi : 3;
    th_hw w = th_hw_random(&bed->rng, N, K, gs, e_lo, e_hi, 0, 0);
    size_t n_in = (size_t)(M * (grad_x ? N : K)), n_out = (size_t)(M * (grad_x ? K : N));
    float *in = NEW(float, n_in), *out = NEW(float, n_out);
    double *ref = NEW(double, n_out);
    th_fill_normal(&bed->rng, in, n_in);
    if (grad_x)
        th_ref_ternary_grad_x(&w, in, M, ref);
    else
        th_ref_ternary_fwd(&w, in, M, ref);
    const char *what = grad_x ? "gx" : "y";
    int ok = th_nonzero_f(&c, "input", in, n_in) && th_nonzero_d(&c, what, ref, n_out);
    ok = ok && run_gemm(&c, bed->be, grad_x, &w, in, M, out);
    ok = ok && th_check_rel(&c, what, out, ref, n_out, tol);
    if (ok && bed->cpu) {
        th_case cc = mk(op, M, N, K, gs, mode, bed->cpu);
        float *cpu_out = NEW(float, n_out);
        ok = run_gemm(&cc, bed->cpu, grad_x, &w, in, M, cpu_out) &&
             th_check_rel_f(&c, grad_x ? "gx vs cpu" : "y vs cpu", out, cpu_out, n_out, tol);
        free(cpu_out);
    }
    if (ok)
        th_pass(&c, "rel=%.2e", rel_err(out, ref, n_out));
    free(in);
    free(out);
    free(ref);
    th_hw_free(&w);
    return ok;
}

int th_case_ternary_fwd(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs)
{
    return case_gemm(bed, 0, M, N, K, gs);
}

int th_case_ternary_grad_x(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs)
{
    return case_gemm(bed, 1, M, N, K, gs);
}

/* grad_weight (sign = 0, out float gW) or grad_sign (sign = 1, out int8 s). */
static int run_outer(const th_case *c, arb_backend *be, int sign, const float *gy,
                     const float *x, int64_t M, int64_t N, int64_t K, void *out)
{
    size_t nk = (size_t)(N * K);
    th_buf bgy = th_buf_from(be, gy, (size_t)(M * N) * sizeof(float));
    th_buf bx = th_buf_from(be, x, (size_t)(M * K) * sizeof(float));
    th_buf bo = th_buf_alloc(be, nk * (sign ? 1 : sizeof(float)));
    th_buf_poison(&bo, sign ? TH_POISON_I8 : TH_POISON_F32);
    arb_status st = sign ? arb_op_grad_sign(be, bgy.p, bx.p, bo.p, M, N, K)
                         : arb_op_grad_weight(be, bgy.p, bx.p, bo.p, M, N, K);
    int ok = done(c, be, st, c->op);
    if (ok) {
        th_buf_download(&bo, out);
        ok &= th_buf_guards_ok(c, sign ? "s" : "gW", &bo);
        ok &= intact(c, "gy", &bgy, gy) & intact(c, "x", &bx, x);
    }
    th_buf_free(&bgy);
    th_buf_free(&bx);
    th_buf_free(&bo);
    return ok;
}

static void fill_outer_inputs(th_rng *r, float *gy, float *x, size_t ngy, size_t nx,
                              int small_int)
{
    if (small_int) { /* +-1, +-2: no zero inputs, yet many exact zero sums */
        th_fill_int(r, gy, ngy, -2, 1);
        th_fill_int(r, x, nx, -2, 1);
        for (size_t i = 0; i < ngy; i++)
            gy[i] += gy[i] >= 0.0f;
        for (size_t i = 0; i < nx; i++)
            x[i] += x[i] >= 0.0f;
    } else {
        th_fill_normal(r, gy, ngy);
        th_fill_normal(r, x, nx);
    }
}

int th_case_grad_weight(th_bed *bed, int64_t M, int64_t N, int64_t K, int small_int)
{
    th_case c = mk("grad_weight", M, N, K, 0, small_int ? "small-int" : "normal", bed->be);
    size_t ngy = (size_t)(M * N), nx = (size_t)(M * K), nk = (size_t)(N * K);
    float *gy = NEW(float, ngy), *x = NEW(float, nx), *gW = NEW(float, nk);
    double *ref = NEW(double, nk);
    fill_outer_inputs(&bed->rng, gy, x, ngy, nx, small_int);
    th_ref_grad_weight(gy, x, M, N, K, ref);
    int ok = th_nonzero_f(&c, "gy", gy, ngy) && th_nonzero_f(&c, "x", x, nx) &&
             th_nonzero_d(&c, "gW", ref, nk);
    ok = ok && run_outer(&c, bed->be, 0, gy, x, M, N, K, gW);
    /* Small integers: every partial sum is an integer below 2^24, exact in
     * fp32 in any order. Otherwise SPEC §3's fp32 bound. */
    if (ok)
        ok = small_int ? th_check_exact_fd(&c, "gW", gW, ref, nk)
                       : th_check_rel(&c, "gW", gW, ref, nk, TH_TOL_FP32);
    if (ok && bed->cpu) {
        th_case cc = mk("grad_weight", M, N, K, 0, c.mode, bed->cpu);
        float *cpu = NEW(float, nk);
        ok = run_outer(&cc, bed->cpu, 0, gy, x, M, N, K, cpu) &&
             (small_int ? th_check_exact_f(&c, "gW vs cpu", gW, cpu, nk)
                        : th_check_rel_f(&c, "gW vs cpu", gW, cpu, nk, TH_TOL_FP32));
        free(cpu);
    }
    if (ok)
        th_pass(&c, "rel=%.2e", rel_err(gW, ref, nk));
    free(gy);
    free(x);
    free(gW);
    free(ref);
    return ok;
}

int th_case_grad_sign(th_bed *bed, int64_t M, int64_t N, int64_t K, int small_int)
{
    th_case c = mk("grad_sign", M, N, K, 0, small_int ? "small-int" : "normal", bed->be);
    size_t ngy = (size_t)(M * N), nx = (size_t)(M * K), nk = (size_t)(N * K);
    float *gy = NEW(float, ngy), *x = NEW(float, nx);
    int8_t *s = NEW(int8_t, nk);
    double *ref = NEW(double, nk), *bound = NEW(double, nk);
    fill_outer_inputs(&bed->rng, gy, x, ngy, nx, small_int);
    th_ref_grad_weight(gy, x, M, N, K, ref);
    /* SPEC §3: signs exact where |gW| > 1e-4 ||gy col|| ||x col||. With small
     * integers gW is exact, so every sign (sign(0) = 0 too) must match. */
    if (small_int)
        for (size_t i = 0; i < nk; i++)
            bound[i] = -1.0;
    else
        th_ref_sign_bounds(gy, x, M, N, K, bound);
    int ok = th_nonzero_d(&c, "gW", ref, nk);
    ok = ok && run_outer(&c, bed->be, 1, gy, x, M, N, K, s) &&
         th_check_signs(&c, "s", s, ref, bound, nk);
    if (ok && bed->cpu) {
        th_case cc = mk("grad_sign", M, N, K, 0, c.mode, bed->cpu);
        int8_t *cpu = NEW(int8_t, nk);
        ok = run_outer(&cc, bed->cpu, 1, gy, x, M, N, K, cpu) &&
             th_check_signs(&cc, "s", cpu, ref, bound, nk);
        if (ok && small_int)
            ok = th_check_exact_i8(&c, "s vs cpu", s, cpu, nk);
        free(cpu);
    }
    if (ok) {
        size_t zeros = 0;
        for (size_t i = 0; i < nk; i++)
            zeros += s[i] == 0;
        th_pass(&c, "signs ok (%zu zeros)", zeros);
    }
    free(gy);
    free(x);
    free(s);
    free(ref);
    free(bound);
    return ok;
}

/* ---- integer updates ----------------------------------------------------------- */

typedef enum {
    U_STEP,        /* ternary_step(s) */
    U_E,           /* update_E(s, gW) */
    U_STEP_DIRECT, /* ternary_step_direct(gy, x) */
    U_E_DIRECT,    /* update_E_direct(gy, x) */
    U_DIRECT,      /* ternary_update_direct(gy, x) */
    U_SCORES,      /* update_E_scores(s, gW) -> scores */
    U_SCORES_DIRECT, /* update_E_scores_direct(gy, x) -> scores */
    U_E_APPLY,     /* update_E_apply(scores) */
} upd_kind;

static const char *const upd_names[] = {
    "ternary_step",          "update_E",        "ternary_step_direct",    "update_E_direct",
    "ternary_update_direct", "update_E_scores", "update_E_scores_direct", "update_E_apply"};

typedef struct upd_args {
    upd_kind kind;
    const int8_t *s;       /* [N,K] for U_STEP, U_E (may be NULL in grad mode) */
    const float *gW;       /* [N,K] for U_E grad (may be NULL in sign mode) */
    const float *gy, *x;   /* [M,N], [M,K] for the direct ops */
    const float *scores;   /* [groups] for U_E_APPLY */
    float *scores_out;     /* [groups] written by U_SCORES, U_SCORES_DIRECT */
    int64_t M;
    int theta, phi;
    arb_e_score score;
    int no_guard;          /* pass NULL for the guard */
    int32_t guard;         /* else the guard's value */
    int flips_null;        /* pass NULL for flips */
    uint64_t flips0;       /* the counter's value before the op */
} upd_args;

/* Run one update op on `be` from state `in`; `out` (same shape, arrays
 * allocated) receives the state, `packed` the raw packed bytes
 * (arb_packed_alloc_size), `flips` the counter after. */
static int run_update(const th_case *c, arb_backend *be, const th_hw *in, const upd_args *a,
                      th_hw *out, uint8_t *packed, uint64_t *flips)
{
    size_t nk = th_hw_count(in);
    th_dw d = th_dw_create(be, in);
    size_t groups = th_hw_groups(in);
    th_buf bs = {0}, bg = {0}, bgy = {0}, bx = {0}, bsc = {0};
    if (a->kind == U_E_APPLY)
        bsc = th_buf_from(be, a->scores, groups * sizeof(float));
    if (a->kind == U_SCORES || a->kind == U_SCORES_DIRECT) {
        bsc = th_buf_alloc(be, groups * sizeof(float));
        th_buf_poison(&bsc, TH_POISON_F32); /* overwritten, not accumulated into */
    }
    if (a->s)
        bs = th_buf_from(be, a->s, nk);
    if (a->gW)
        bg = th_buf_from(be, a->gW, nk * sizeof(float));
    if (a->gy) {
        bgy = th_buf_from(be, a->gy, (size_t)(a->M * in->N) * sizeof(float));
        bx = th_buf_from(be, a->x, (size_t)(a->M * in->K) * sizeof(float));
    }
    int32_t guard_host = a->guard;
    th_buf bguard = th_buf_from(be, &guard_host, sizeof(guard_host));
    th_buf bflips = th_buf_from(be, &a->flips0, sizeof(a->flips0));
    const int32_t *guard = a->no_guard ? NULL : bguard.p;
    uint64_t *fl = a->flips_null ? NULL : bflips.p;
    arb_update_rule rule = {a->theta, a->phi, a->score};
    arb_status st = ARB_OK;
    switch (a->kind) {
    case U_STEP: st = arb_op_ternary_step(be, &d.w, bs.p, a->theta, guard, fl); break;
    case U_E: st = arb_op_update_E(be, &d.w, bs.p, bg.p, a->phi, a->score, guard); break;
    case U_STEP_DIRECT:
        st = arb_op_ternary_step_direct(be, &d.w, bgy.p, bx.p, a->M, a->theta, guard, fl);
        break;
    case U_E_DIRECT:
        st = arb_op_update_E_direct(be, &d.w, bgy.p, bx.p, a->M, a->phi, a->score, guard);
        break;
    case U_DIRECT:
        st = arb_op_ternary_update_direct(be, &d.w, bgy.p, bx.p, a->M, &rule, guard, fl);
        break;
    case U_SCORES: st = arb_op_update_E_scores(be, &d.w, bs.p, bg.p, a->score, bsc.p); break;
    case U_SCORES_DIRECT:
        st = arb_op_update_E_scores_direct(be, &d.w, bgy.p, bx.p, a->M, a->score, bsc.p);
        break;
    case U_E_APPLY: st = arb_op_update_E_apply(be, &d.w, bsc.p, a->phi, guard); break;
    }
    int ok = done(c, be, st, upd_names[a->kind]);
    if (ok) {
        ok &= th_dw_read(c, &d, out, packed);
        th_buf_download(&bflips, flips);
        ok &= th_buf_guards_ok(c, "flips", &bflips);
        ok &= intact(c, "guard", &bguard, &guard_host);
        if (a->s)
            ok &= intact(c, "s", &bs, a->s);
        if (a->gW)
            ok &= intact(c, "gW", &bg, a->gW);
        if (a->gy)
            ok &= intact(c, "gy", &bgy, a->gy) & intact(c, "x", &bx, a->x);
        if (a->kind == U_E_APPLY)
            ok &= intact(c, "scores", &bsc, a->scores);
        if (a->scores_out) {
            th_buf_download(&bsc, a->scores_out);
            ok &= th_buf_guards_ok(c, "scores", &bsc);
        }
    }
    th_buf_free(&bsc);
    th_buf_free(&bs);
    th_buf_free(&bg);
    th_buf_free(&bgy);
    th_buf_free(&bx);
    th_buf_free(&bguard);
    th_buf_free(&bflips);
    th_dw_free(&d);
    return ok;
}

/* Scales at the clamps half of the time: E_MIN and E_MAX are where
 * update_E's min/max bite. */
static void fill_E_with_extremes(th_rng *r, th_hw *w)
{
    for (size_t g = 0; g < th_hw_groups(w); g++) {
        int64_t pick = th_range(r, 0, 3);
        w->E[g] = (int8_t)(pick == 0 ? ARB_E_MIN : pick == 1 ? ARB_E_MAX : th_range(r, -3, 3));
    }
}

/* A random guard argument: NULL or a zero guard (neither may block). */
static int no_guard(th_rng *r) { return (int)th_range(r, 0, 1); }

int th_case_ternary_step(th_bed *bed, int64_t N, int64_t K, int64_t gs, int theta)
{
    char mode[64], sname[32];
    snprintf(mode, sizeof(mode), "%s,theta=%d", scale_name(sname, sizeof(sname), N, K, gs), theta);
    th_case c = mk("ternary_step", 0, N, K, gs, mode, bed->be);
    size_t nk = (size_t)(N * K);
    th_hw w = th_hw_random(&bed->rng, N, K, gs, -3, 3, theta, 0);
    int8_t *s = NEW(int8_t, nk);
    th_fill_trits(&bed->rng, s, nk);
    for (size_t i = 0; i < nk; i++) /* a quarter are vote sums of data-parallel ranks */
        if (s[i] != 0 && th_range(&bed->rng, 0, 3) == 0)
            s[i] = (int8_t)(s[i] > 0 ? th_range(&bed->rng, 1, 127) : th_range(&bed->rng, -128, -1));
    s[th_range(&bed->rng, 0, (int64_t)nk - 1)] = 1; /* not all zero */
    upd_args a = {.kind = U_STEP, .s = s, .theta = theta, .no_guard = no_guard(&bed->rng),
                  .flips0 = (uint64_t)th_range(&bed->rng, 0, 1000000)};
    th_hw want = th_hw_clone(&w);
    uint64_t want_flips = a.flips0 + th_ref_ternary_step(&want, s, theta);
    int ok = 1;
    arb_backend *bes[2] = {bed->be, bed->cpu};
    for (int i = 0; i < 2 && ok && bes[i]; i++) {
        th_case ci = mk("ternary_step", 0, N, K, gs, mode, bes[i]);
        th_hw got = th_hw_clone(&w);
        uint64_t flips = 0;
        ok = run_update(&ci, bes[i], &w, &a, &got, NULL, &flips) &&
             th_check_state(&ci, "state", &got, &want);
        if (ok && flips != want_flips) {
            th_fail(&ci, "flips", "counter %llu, want %llu (start %llu + %llu changed trits)",
                    (unsigned long long)flips, (unsigned long long)want_flips,
                    (unsigned long long)a.flips0, (unsigned long long)(want_flips - a.flips0));
            ok = 0;
        }
        th_hw_free(&got);
    }
    if (ok)
        th_pass(&c, "exact, %llu flips", (unsigned long long)(want_flips - a.flips0));
    th_hw_free(&w);
    th_hw_free(&want);
    free(s);
    return ok;
}

int th_case_update_E(th_bed *bed, int64_t N, int64_t K, int64_t gs, int phi, arb_e_score score)
{
    char mode[64], sname[32];
    snprintf(mode, sizeof(mode), "%s,%s,phi=%d", scale_name(sname, sizeof(sname), N, K, gs),
             arb_e_score_name(score), phi);
    th_case c = mk("update_E", 0, N, K, gs, mode, bed->be);
    size_t nk = (size_t)(N * K), groups;
    th_hw w = th_hw_random(&bed->rng, N, K, gs, -3, 3, 0, phi);
    groups = th_hw_groups(&w);
    fill_E_with_extremes(&bed->rng, &w);
    int8_t *s = NEW(int8_t, nk);
    float *gW = NEW(float, nk);
    double *v = NEW(double, nk), *score_ref = NEW(double, groups), *mag = NEW(double, groups);
    th_fill_trits(&bed->rng, s, nk);
    th_fill_normal(&bed->rng, gW, nk);
    for (size_t i = 0; i < nk; i++) /* one nonzero s*T: tiny shapes need a nonzero score */
        if (w.T[i] != 0) {
            s[i] = 1;
            break;
        }
    for (size_t i = 0; i < nk; i++)
        v[i] = score == ARB_E_SCORE_GRAD ? (double)gW[i] : (double)s[i];
    th_ref_group_scores(&w, v, score_ref, &mag[0]);
    /* The unused input may be NULL (ops.h); pass it half of the time. */
    int pass_both = (int)th_range(&bed->rng, 0, 1);
    upd_args a = {.kind = U_E,
                  .s = score == ARB_E_SCORE_SIGN || pass_both ? s : NULL,
                  .gW = score == ARB_E_SCORE_GRAD || pass_both ? gW : NULL,
                  .phi = phi,
                  .score = score,
                  .no_guard = no_guard(&bed->rng)};
    /* SPEC §3: grad score signs exact where |score| > 1e-4 sum |gW*T|; sign
     * scores are sums of small integers, exact everywhere. */
    double rel = score == ARB_E_SCORE_GRAD ? TH_SIGN_REL : 0.0;
    /* |v*T| sums, not scores: a score may cancel to 0 (a tie, rule-tested too) */
    int ok = th_nonzero_d(&c, "sum |v*T|", mag, groups);
    arb_backend *bes[2] = {bed->be, bed->cpu};
    for (int i = 0; i < 2 && ok && bes[i]; i++) {
        th_case ci = mk("update_E", 0, N, K, gs, mode, bes[i]);
        th_hw got = th_hw_clone(&w);
        uint64_t flips = 0;
        ok = run_update(&ci, bes[i], &w, &a, &got, NULL, &flips) &&
             th_check_exact_i8(&ci, "T (update_E must not touch it)", got.T, w.T, nk) &&
             th_check_update_E(&ci, &w, &got, score_ref, mag, phi, rel);
        th_hw_free(&got);
    }
    if (ok)
        th_pass(&c, "exact (%zu groups)", groups);
    th_hw_free(&w);
    free(s);
    free(gW);
    free(v);
    free(score_ref);
    free(mag);
    return ok;
}

int th_case_update_E_split(th_bed *bed, int64_t N, int64_t K, int64_t gs, int phi,
                           arb_e_score score)
{
    char mode[64], sname[32];
    snprintf(mode, sizeof(mode), "%s,%s,phi=%d", scale_name(sname, sizeof(sname), N, K, gs),
             arb_e_score_name(score), phi);
    th_case c = mk("update_E_split", 0, N, K, gs, mode, bed->be);
    size_t nk = (size_t)(N * K);
    th_hw w = th_hw_random(&bed->rng, N, K, gs, -3, 3, 0, phi);
    size_t groups = th_hw_groups(&w);
    fill_E_with_extremes(&bed->rng, &w);
    int8_t *s = NEW(int8_t, nk);
    float *gW = NEW(float, nk), *scores = NEW(float, groups);
    double *v = NEW(double, nk), *score_ref = NEW(double, groups), *mag = NEW(double, groups);
    th_fill_trits(&bed->rng, s, nk);
    th_fill_normal(&bed->rng, gW, nk);
    for (size_t i = 0; i < nk; i++) /* one nonzero s*T */
        if (w.T[i] != 0) {
            s[i] = 1;
            break;
        }
    for (size_t i = 0; i < nk; i++)
        v[i] = score == ARB_E_SCORE_GRAD ? (double)gW[i] : (double)s[i];
    th_ref_group_scores(&w, v, score_ref, mag);
    /* fp32 scores: within 1e-4 of sum |gW*T| (so every sign outside the
     * SPEC's band is right); sign scores are small integers, exact. */
    double rel = score == ARB_E_SCORE_GRAD ? TH_SIGN_REL : 0.0;
    int ok = th_nonzero_d(&c, "sum |v*T|", mag, groups);
    arb_backend *bes[2] = {bed->be, bed->cpu};
    for (int i = 0; i < 2 && ok && bes[i]; i++) {
        th_case cs = mk("update_E_scores", 0, N, K, gs, mode, bes[i]);
        th_case ca = mk("update_E_apply", 0, N, K, gs, mode, bes[i]);
        th_case ce = mk("update_E", 0, N, K, gs, mode, bes[i]);
        upd_args as = {.kind = U_SCORES, .s = score == ARB_E_SCORE_SIGN ? s : NULL,
                       .gW = score == ARB_E_SCORE_GRAD ? gW : NULL, .score = score,
                       .scores_out = scores};
        th_hw st = th_hw_clone(&w), applied = th_hw_clone(&w), fused = th_hw_clone(&w);
        uint64_t fl = 0;
        ok = run_update(&cs, bes[i], &w, &as, &st, NULL, &fl) &&
             th_check_state(&cs, "state (update_E_scores must not touch it)", &st, &w) &&
             th_check_scores(&cs, "scores", scores, score_ref, mag, groups, rel);
        /* update_E_apply: the E rule from exactly these scores' signs */
        upd_args aa = {.kind = U_E_APPLY, .scores = scores, .phi = phi,
                       .no_guard = no_guard(&bed->rng)};
        ok = ok && run_update(&ca, bes[i], &w, &aa, &applied, NULL, &fl);
        if (ok) {
            /* mag 0 marks every sign as decided: sign(0) = 0 included */
            double *sd = NEW(double, groups), *zero = NEW(double, groups);
            for (size_t g = 0; g < groups; g++)
                sd[g] = scores[g];
            ok = th_check_exact_i8(&ca, "T", applied.T, w.T, nk) &&
                 th_check_update_E(&ca, &w, &applied, sd, zero, phi, 0.0);
            free(sd);
            free(zero);
        }
        /* ... and the pair reaches update_E's outcome (within the band) */
        upd_args ae = {.kind = U_E, .s = s, .gW = gW, .phi = phi, .score = score};
        ok = ok && run_update(&ce, bes[i], &w, &ae, &fused, NULL, &fl) &&
             th_check_update_E(&ce, &w, &applied, score_ref, mag, phi, rel) &&
             th_check_update_E(&ce, &w, &fused, score_ref, mag, phi, rel);
        if (ok && (rel == 0.0 || arb_backend_kind_of(bes[i]) == ARB_BACKEND_CPU))
            ok = th_check_state(&ce, "update_E_scores + update_E_apply vs update_E", &applied,
                                &fused);
        th_hw_free(&st);
        th_hw_free(&applied);
        th_hw_free(&fused);
    }
    if (ok)
        th_pass(&c, "scores and E exact (%zu groups)", groups);
    th_hw_free(&w);
    free(s);
    free(gW);
    free(scores);
    free(v);
    free(score_ref);
    free(mag);
    return ok;
}

/* Compare two runs' outcomes byte for byte: raw packed bytes, T_accum, E,
 * E_accum and the flips counter. */
static int same_outcome(const th_case *c, const char *what, const th_hw *got,
                        const uint8_t *got_packed, uint64_t got_flips, const th_hw *want,
                        const uint8_t *want_packed, uint64_t want_flips)
{
    char name[128];
    snprintf(name, sizeof(name), "%s: T_packed bytes", what);
    int ok = th_check_exact_u8(c, name, got_packed, want_packed,
                               arb_packed_alloc_size(th_hw_count(want)));
    ok &= th_check_state(c, what, got, want);
    if (got_flips != want_flips) {
        th_fail(c, what, "flips counter %llu, want %llu", (unsigned long long)got_flips,
                (unsigned long long)want_flips);
        ok = 0;
    }
    return ok;
}

/* One run's outcome. */
typedef struct outcome {
    th_hw st;
    uint8_t *packed;
    uint64_t flips;
} outcome;

static outcome outcome_new(const th_hw *shape)
{
    outcome o = {th_hw_clone(shape), NEW(uint8_t, arb_packed_alloc_size(th_hw_count(shape))), 0};
    return o;
}

static void outcome_free(outcome *o)
{
    th_hw_free(&o->st);
    free(o->packed);
}

int th_case_update_chain(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs, int theta,
                         int phi, arb_e_score score, int small_int)
{
    char mode[96], sname[32];
    snprintf(mode, sizeof(mode), "%s,%s,theta=%d,phi=%d,%s",
             scale_name(sname, sizeof(sname), N, K, gs), arb_e_score_name(score), theta, phi,
             small_int ? "small-int" : "normal");
    arb_backend *be = bed->be;
    th_case c = mk("update_chain", M, N, K, gs, mode, be);
    th_rng *r = &bed->rng;
    size_t nk = (size_t)(N * K), groups = (size_t)(N * K / gs);
    size_t ngy = (size_t)(M * N), nx = (size_t)(M * K);

    th_hw w0 = th_hw_random(r, N, K, gs, -3, 3, theta, phi);
    fill_E_with_extremes(r, &w0);
    float *gy = NEW(float, ngy), *x = NEW(float, nx), *gW = NEW(float, nk);
    int8_t *s = NEW(int8_t, nk);
    double *gW_ref = NEW(double, nk), *bound = NEW(double, nk), *v = NEW(double, nk);
    double *score_ref = NEW(double, groups), *mag = NEW(double, groups);
    fill_outer_inputs(r, gy, x, ngy, nx, small_int);
    th_ref_grad_weight(gy, x, M, N, K, gW_ref);
    if (small_int)
        for (size_t i = 0; i < nk; i++)
            bound[i] = -1.0; /* exact sums: every sign decided */
    else
        th_ref_sign_bounds(gy, x, M, N, K, bound);
    uint64_t flips0 = (uint64_t)th_range(r, 0, 1000);
    outcome step = outcome_new(&w0), two = outcome_new(&w0);
    int ok = th_nonzero_d(&c, "gW", gW_ref, nk);

    /* 1. grad_sign: the signs every later step uses. */
    th_case cs = mk("grad_sign", M, N, K, 0, mode, be);
    ok = ok && run_outer(&cs, be, 1, gy, x, M, N, K, s) &&
         th_check_signs(&cs, "s", s, gW_ref, bound, nk);

    /* 2. ternary_step with those signs: exact against the reference given
     * the same s (SPEC §3: integer updates exact given the same signs). */
    th_hw want1 = th_hw_clone(&w0);
    uint64_t want_flips = flips0 + th_ref_ternary_step(&want1, s, theta);
    upd_args a_step = {.kind = U_STEP, .s = s, .theta = theta, .no_guard = no_guard(r),
                       .flips0 = flips0};
    th_case ct = mk("ternary_step", M, N, K, gs, mode, be);
    ok = ok && run_update(&ct, be, &w0, &a_step, &step.st, step.packed, &step.flips) &&
         th_check_state(&ct, "state", &step.st, &want1);
    if (ok && step.flips != want_flips) {
        th_fail(&ct, "flips", "counter %llu, want %llu", (unsigned long long)step.flips,
                (unsigned long long)want_flips);
        ok = 0;
    }

    /* 3. grad_weight. */
    th_case cw = mk("grad_weight", M, N, K, 0, mode, be);
    ok = ok && run_outer(&cw, be, 0, gy, x, M, N, K, gW) &&
         (small_int ? th_check_exact_fd(&cw, "gW", gW, gW_ref, nk)
                    : th_check_rel(&cw, "gW", gW, gW_ref, nk, TH_TOL_FP32));

    /* 4. update_E with the stepped T: scores from the gW (grad) or s (sign)
     * the backend produced and update_E is given, summed in double; SPEC
     * §3's score-sign tolerance in grad mode. (gW itself was held to the
     * GEMM bound above; a tiny gW can be off by more than 1e-4 of itself,
     * which is grad_sign's band, not update_E's.) */
    for (size_t i = 0; i < nk; i++)
        v[i] = score == ARB_E_SCORE_GRAD ? (double)gW[i] : (double)s[i];
    th_ref_group_scores(&step.st, v, score_ref, mag);
    double rel = score == ARB_E_SCORE_GRAD && !small_int ? TH_SIGN_REL : 0.0;
    upd_args a_e = {.kind = U_E, .s = s, .gW = gW, .phi = phi, .score = score,
                    .no_guard = no_guard(r)};
    th_case ce = mk("update_E", M, N, K, gs, mode, be);
    two.flips = step.flips;
    ok = ok && run_update(&ce, be, &step.st, &a_e, &two.st, two.packed, &(uint64_t){0}) &&
         th_check_exact_i8(&ce, "T (update_E must not touch it)", two.st.T, step.st.T, nk) &&
         th_check_exact_i8(&ce, "T_accum (update_E must not touch it)", two.st.T_accum,
                           step.st.T_accum, nk) &&
         th_check_update_E(&ce, &step.st, &two.st, score_ref, mag, phi, rel);

    /* 4b. The split form (data-parallel ranks sum scores in between):
     * update_E_scores, then update_E_apply, reaches update_E's state; exactly
     * where no score sign depends on summation order. */
    float *scores1 = NEW(float, groups), *scores2 = NEW(float, groups);
    double *scores1_d = NEW(double, groups), *zero = NEW(double, groups);
    int exact_split = rel == 0.0 || arb_backend_kind_of(be) == ARB_BACKEND_CPU;
    outcome split = outcome_new(&w0);
    upd_args a_sc = {.kind = U_SCORES, .s = s, .gW = gW, .score = score, .scores_out = scores1};
    th_case csc = mk("update_E_scores", M, N, K, gs, mode, be);
    ok = ok && run_update(&csc, be, &step.st, &a_sc, &split.st, NULL, &(uint64_t){0}) &&
         th_check_scores(&csc, "scores", scores1, score_ref, mag, groups, rel);
    for (size_t g = 0; g < groups; g++)
        scores1_d[g] = scores1[g];
    upd_args a_ap = {.kind = U_E_APPLY, .scores = scores1, .phi = phi, .no_guard = no_guard(r)};
    th_case cap = mk("update_E_apply", M, N, K, gs, mode, be);
    split.flips = step.flips;
    ok = ok && run_update(&cap, be, &step.st, &a_ap, &split.st, split.packed, &(uint64_t){0}) &&
         (exact_split ? same_outcome(&cap, "update_E_scores + update_E_apply vs update_E",
                                     &split.st, split.packed, split.flips, &two.st, two.packed,
                                     two.flips)
                      : th_check_update_E(&cap, &step.st, &split.st, score_ref, mag, phi, rel));

    /* 5. With a cpu backend beside: the same s and gW give the same state
     * (exactly; in grad mode with float data up to the score tolerance,
     * which the reference check above already allows for). */
    if (ok && bed->cpu) {
        outcome cs1 = outcome_new(&w0), cs2 = outcome_new(&w0);
        th_case cpu_t = mk("ternary_step", M, N, K, gs, mode, bed->cpu);
        th_case cpu_e = mk("update_E", M, N, K, gs, mode, bed->cpu);
        ok = run_update(&cpu_t, bed->cpu, &w0, &a_step, &cs1.st, cs1.packed, &cs1.flips) &&
             same_outcome(&c, "ternary_step jit vs cpu", &step.st, step.packed, step.flips,
                          &cs1.st, cs1.packed, cs1.flips) &&
             run_update(&cpu_e, bed->cpu, &step.st, &a_e, &cs2.st, cs2.packed, &(uint64_t){0}) &&
             th_check_update_E(&cpu_e, &step.st, &cs2.st, score_ref, mag, phi, rel);
        if (ok && rel == 0.0)
            ok = th_check_state(&c, "update_E jit vs cpu", &two.st, &cs2.st);
        outcome_free(&cs1);
        outcome_free(&cs2);
    }

    /* 6. The direct ops must give byte for byte what the two-pass path gave.
     * On the cpu this holds for any data (same gW rows, same score order);
     * on a GPU only where no sign depends on summation order: small ints. */
    int direct = be && (arb_backend_kind_of(be) == ARB_BACKEND_CPU || small_int);
    if (ok && direct) {
        upd_args base = {.gy = gy, .x = x, .M = M, .theta = theta, .phi = phi, .score = score,
                         .flips0 = flips0};
        outcome o = outcome_new(&w0), o2 = outcome_new(&w0);
        th_case cd;

        /* ternary_update_direct == grad_sign -> step -> grad_weight -> update_E */
        upd_args a = base;
        a.kind = U_DIRECT;
        a.no_guard = no_guard(r);
        cd = mk("ternary_update_direct", M, N, K, gs, mode, be);
        ok = run_update(&cd, be, &w0, &a, &o.st, o.packed, &o.flips) &&
             same_outcome(&cd, "direct vs two-pass", &o.st, o.packed, o.flips, &two.st,
                          two.packed, two.flips);

        /* ternary_step_direct, then update_E_direct: the same again */
        a = base;
        a.kind = U_STEP_DIRECT;
        a.no_guard = no_guard(r);
        cd = mk("ternary_step_direct", M, N, K, gs, mode, be);
        ok = ok && run_update(&cd, be, &w0, &a, &o.st, o.packed, &o.flips) &&
             same_outcome(&cd, "step_direct vs ternary_step", &o.st, o.packed, o.flips,
                          &step.st, step.packed, step.flips);
        a = base;
        a.kind = U_E_DIRECT;
        a.no_guard = no_guard(r);
        cd = mk("update_E_direct", M, N, K, gs, mode, be);
        o2.flips = o.flips;
        ok = ok && run_update(&cd, be, &o.st, &a, &o2.st, o2.packed, &(uint64_t){0}) &&
             same_outcome(&cd, "step_direct + update_E_direct vs two-pass", &o2.st, o2.packed,
                          o2.flips, &two.st, two.packed, two.flips);

        /* the split direct form: update_E_scores_direct on the stepped T gives
         * update_E_scores' numbers, and update_E_apply on them the two-pass
         * state */
        outcome o3 = outcome_new(&w0);
        a = base;
        a.kind = U_SCORES_DIRECT;
        a.scores_out = scores2;
        cd = mk("update_E_scores_direct", M, N, K, gs, mode, be);
        ok = ok && run_update(&cd, be, &o.st, &a, &o3.st, NULL, &(uint64_t){0}) &&
             th_check_scores(&cd, "scores vs update_E_scores", scores2, scores1_d, zero, groups,
                             0.0);
        a = base;
        a.kind = U_E_APPLY;
        a.scores = scores2;
        a.no_guard = no_guard(r);
        cd = mk("update_E_apply", M, N, K, gs, mode, be);
        o3.flips = o.flips;
        ok = ok && run_update(&cd, be, &o.st, &a, &o3.st, o3.packed, &(uint64_t){0}) &&
             same_outcome(&cd, "step_direct + update_E_scores_direct + update_E_apply vs two-pass",
                          &o3.st, o3.packed, o3.flips, &two.st, two.packed, two.flips);
        outcome_free(&o3);

        /* ternary_update_direct with phi = 0: the T step alone, E untouched */
        a = base;
        a.kind = U_DIRECT;
        a.phi = 0;
        a.no_guard = no_guard(r);
        cd = mk("ternary_update_direct", M, N, K, gs, "phi=0", be);
        ok = ok && run_update(&cd, be, &w0, &a, &o.st, o.packed, &o.flips) &&
             same_outcome(&cd, "direct (phi=0) vs ternary_step", &o.st, o.packed, o.flips,
                          &step.st, step.packed, step.flips);

        /* update_E_direct alone on the unstepped state == update_E on it */
        outcome e2 = outcome_new(&w0);
        a_e.no_guard = no_guard(r);
        ok = ok && run_update(&ce, be, &w0, &a_e, &e2.st, e2.packed, &(uint64_t){0});
        a = base;
        a.kind = U_E_DIRECT;
        a.no_guard = no_guard(r);
        cd = mk("update_E_direct", M, N, K, gs, mode, be);
        ok = ok && run_update(&cd, be, &w0, &a, &o.st, o.packed, &(uint64_t){0}) &&
             same_outcome(&cd, "update_E_direct vs update_E (no step)", &o.st, o.packed, 0,
                          &e2.st, e2.packed, 0);
        /* ... and that one is right too */
        if (ok) {
            th_ref_group_scores(&w0, v, score_ref, mag);
            ok = th_check_update_E(&cd, &w0, &o.st, score_ref, mag, phi, rel);
        }
        outcome_free(&e2);

        /* On a GPU with exact data: the direct ops match the cpu's too. */
        if (ok && bed->cpu) {
            a = base;
            a.kind = U_DIRECT;
            a.no_guard = 1;
            cd = mk("ternary_update_direct", M, N, K, gs, mode, bed->cpu);
            ok = run_update(&cd, bed->cpu, &w0, &a, &o2.st, o2.packed, &o2.flips) &&
                 same_outcome(&c, "direct jit vs cpu", &two.st, two.packed, two.flips, &o2.st,
                              o2.packed, o2.flips);
        }
        outcome_free(&o);
        outcome_free(&o2);
    }
    if (ok) {
        size_t e_changed = 0;
        for (size_t g = 0; g < groups; g++)
            e_changed += two.st.E[g] != w0.E[g];
        th_pass(&c, "exact: %llu flips, %zu of %zu scales moved%s",
                (unsigned long long)(step.flips - flips0), e_changed, groups,
                direct ? ", direct == two-pass" : "");
    }
    outcome_free(&step);
    outcome_free(&two);
    outcome_free(&split);
    th_hw_free(&w0);
    th_hw_free(&want1);
    free(scores1);
    free(scores2);
    free(scores1_d);
    free(zero);
    free(gy);
    free(x);
    free(gW);
    free(s);
    free(gW_ref);
    free(bound);
    free(v);
    free(score_ref);
    free(mag);
    return ok;
}

int th_case_guard(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs)
{
    char mode[32];
    scale_name(mode, sizeof(mode), N, K, gs);
    arb_backend *be = bed->be;
    th_case c = mk("guard", M, N, K, gs, mode, be);
    th_rng *r = &bed->rng;
    size_t nk = (size_t)(N * K);
    /* theta = phi = 1 and accumulators one vote from the threshold towards
     * where T can move (-1 for T = +1, else +1), E_accum = +1 with E below
     * E_MAX: whatever the signs and scores, every trit and every group
     * changes without the guard (checked below), so an ignored guard shows. */
    th_hw w0 = th_hw_random(r, N, K, gs, -3, 3, 1, 1);
    for (size_t i = 0; i < nk; i++)
        w0.T_accum[i] = (int8_t)(w0.T[i] == 1 ? -1 : 1);
    memset(w0.E_accum, 1, th_hw_groups(&w0));
    float *gy = NEW(float, (size_t)(M * N)), *x = NEW(float, (size_t)(M * K));
    float *gW = NEW(float, nk);
    int8_t *s = NEW(int8_t, nk);
    th_fill_normal(r, gy, (size_t)(M * N));
    th_fill_normal(r, x, (size_t)(M * K));
    th_fill_normal(r, gW, nk);
    th_fill_trits(r, s, nk);
    uint8_t *packed0 = NEW(uint8_t, arb_packed_alloc_size(nk));
    arb_ternary_pack(w0.T, nk, packed0);
    uint64_t flips0 = 77;

    upd_args runs[] = {
        {.kind = U_STEP, .s = s, .theta = 1},
        {.kind = U_E, .s = s, .gW = gW, .phi = 1, .score = ARB_E_SCORE_GRAD},
        {.kind = U_E, .s = s, .gW = gW, .phi = 1, .score = ARB_E_SCORE_SIGN},
        {.kind = U_STEP_DIRECT, .gy = gy, .x = x, .M = M, .theta = 1},
        {.kind = U_E_DIRECT, .gy = gy, .x = x, .M = M, .phi = 1, .score = ARB_E_SCORE_GRAD},
        {.kind = U_E_DIRECT, .gy = gy, .x = x, .M = M, .phi = 1, .score = ARB_E_SCORE_SIGN},
        {.kind = U_DIRECT, .gy = gy, .x = x, .M = M, .theta = 1, .phi = 1,
         .score = ARB_E_SCORE_GRAD},
        {.kind = U_DIRECT, .gy = gy, .x = x, .M = M, .theta = 1, .phi = 1,
         .score = ARB_E_SCORE_SIGN},
    };
    int ok = 1;
    outcome o = outcome_new(&w0);
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]) && ok; i++) {
        upd_args a = runs[i];
        a.flips0 = flips0;
        th_case ci = mk(upd_names[a.kind], M, N, K, gs, a.phi ? arb_e_score_name(a.score) : mode,
                        be);
        /* Guard set (any nonzero value): nothing moves. */
        a.guard = (int)th_range(r, 1, 1000) * (th_range(r, 0, 1) ? 1 : -1);
        ok = run_update(&ci, be, &w0, &a, &o.st, o.packed, &o.flips) &&
             same_outcome(&ci, "guarded (guard != 0)", &o.st, o.packed, o.flips, &w0, packed0,
                          flips0);
        /* Control: the same op unguarded does change the state, so the
         * check above can fail. */
        a.guard = 0;
        a.no_guard = 0;
        ok = ok && run_update(&ci, be, &w0, &a, &o.st, o.packed, &o.flips);
        if (ok && memcmp(o.packed, packed0, arb_packed_alloc_size(nk)) == 0 &&
            memcmp(o.st.E, w0.E, th_hw_groups(&w0)) == 0 &&
            (!o.st.T_accum || memcmp(o.st.T_accum, w0.T_accum, nk) == 0) &&
            (!o.st.E_accum || memcmp(o.st.E_accum, w0.E_accum, th_hw_groups(&w0)) == 0)) {
            th_fail(&ci, "control", "the unguarded op changed nothing: the guard check "
                                    "proves nothing with these inputs");
            ok = 0;
        }
    }
    if (ok)
        th_pass(&c, "a nonzero guard leaves every state byte and the flips counter untouched");
    outcome_free(&o);
    th_hw_free(&w0);
    free(gy);
    free(x);
    free(gW);
    free(s);
    free(packed0);
    return ok;
}

/* ---- RMSNorm ---------------------------------------------------------------------- */

static int run_rmsnorm(const th_case *c, arb_backend *be, int bwd, const th_hw *w,
                       const float *x, const float *gy, int64_t B, float *out)
{
    size_t n = (size_t)(B * w->K);
    th_dw d = th_dw_create(be, w);
    th_buf bx = th_buf_from(be, x, n * sizeof(float));
    th_buf bgy = bwd ? th_buf_from(be, gy, n * sizeof(float)) : (th_buf){0};
    th_buf bo = th_buf_alloc(be, n * sizeof(float));
    th_buf_poison(&bo, TH_POISON_F32);
    arb_status st = bwd ? arb_op_rmsnorm_bwd(be, &d.w, bx.p, bgy.p, bo.p, B)
                        : arb_op_rmsnorm_fwd(be, &d.w, bx.p, bo.p, B);
    int ok = done(c, be, st, c->op);
    if (ok) {
        th_buf_download(&bo, out);
        ok &= th_buf_guards_ok(c, bwd ? "gx" : "out", &bo) & intact(c, "x", &bx, x);
        if (bwd)
            ok &= intact(c, "gy", &bgy, gy);
        th_hw after = th_hw_clone(w);
        ok &= th_dw_read(c, &d, &after, NULL) && th_check_state(c, "weight (frozen)", &after, w);
        th_hw_free(&after);
    }
    th_buf_free(&bx);
    th_buf_free(&bgy);
    th_buf_free(&bo);
    th_dw_free(&d);
    return ok;
}

static int case_rmsnorm(th_bed *bed, int bwd, int64_t B, int64_t D, int64_t gs)
{
    const char *op = bwd ? "rmsnorm_bwd" : "rmsnorm_fwd";
    char mode[32];
    scale_name(mode, sizeof(mode), 1, D, gs);
    th_case c = mk(op, B, 1, D, gs, mode, bed->be);
    size_t n = (size_t)(B * D);
    /* A frozen 1 x D weight: no accumulators. */
    th_hw w = th_hw_random(&bed->rng, 1, D, gs, -3, 3, 0, 0);
    float *x = NEW(float, n), *gy = NEW(float, n), *out = NEW(float, n);
    double *ref = NEW(double, n);
    th_fill_normal(&bed->rng, x, n);
    th_fill_normal(&bed->rng, gy, n);
    if (bwd)
        th_ref_rmsnorm_bwd(&w, x, gy, B, ref);
    else
        th_ref_rmsnorm_fwd(&w, x, B, ref);
    int ok = th_nonzero_d(&c, "reference", ref, n) &&
             run_rmsnorm(&c, bed->be, bwd, &w, x, gy, B, out) &&
             th_check_rel(&c, bwd ? "gx" : "out", out, ref, n, TH_TOL_RMSNORM); /* SPEC §3 */
    if (ok && bed->cpu) {
        th_case cc = mk(op, B, 1, D, gs, mode, bed->cpu);
        float *cpu = NEW(float, n);
        ok = run_rmsnorm(&cc, bed->cpu, bwd, &w, x, gy, B, cpu) &&
             th_check_rel_f(&c, "vs cpu", out, cpu, n, TH_TOL_RMSNORM);
        free(cpu);
    }
    if (ok)
        th_pass(&c, "rel=%.2e", rel_err(out, ref, n));
    th_hw_free(&w);
    free(x);
    free(gy);
    free(out);
    free(ref);
    return ok;
}

int th_case_rmsnorm_fwd(th_bed *bed, int64_t B, int64_t D, int64_t gs)
{
    return case_rmsnorm(bed, 0, B, D, gs);
}

int th_case_rmsnorm_bwd(th_bed *bed, int64_t B, int64_t D, int64_t gs)
{
    return case_rmsnorm(bed, 1, B, D, gs);
}

/* ---- embedding ----------------------------------------------------------------------- */

static void fill_idx(th_rng *r, int32_t *idx, int64_t M, int64_t V)
{
    for (int64_t i = 0; i < M; i++)
        idx[i] = (int32_t)th_range(r, 0, V - 1);
}

static int run_embed_fwd(const th_case *c, arb_backend *be, const th_hw *table,
                         const int32_t *idx, int64_t M, float *out)
{
    size_t n = (size_t)(M * table->K);
    th_dw d = th_dw_create(be, table);
    th_buf bi = th_buf_from(be, idx, (size_t)M * sizeof(int32_t));
    th_buf bo = th_buf_alloc(be, n * sizeof(float));
    th_buf_poison(&bo, TH_POISON_F32);
    int ok = done(c, be, arb_op_embed_fwd(be, &d.w, bi.p, bo.p, M), "embed_fwd");
    if (ok) {
        th_buf_download(&bo, out);
        ok &= th_buf_guards_ok(c, "out", &bo) & intact(c, "idx", &bi, idx);
    }
    th_buf_free(&bi);
    th_buf_free(&bo);
    th_dw_free(&d);
    return ok;
}

int th_case_embed_fwd(th_bed *bed, int64_t M, int64_t V, int64_t D, int64_t gs)
{
    char mode[32];
    scale_name(mode, sizeof(mode), V, D, gs);
    th_case c = mk("embed_fwd", M, V, D, gs, mode, bed->be);
    size_t n = (size_t)(M * D);
    th_hw table = th_hw_random(&bed->rng, V, D, gs, -3, 3, 0, 0);
    int32_t *idx = NEW(int32_t, M);
    float *out = NEW(float, n);
    double *ref = NEW(double, n);
    fill_idx(&bed->rng, idx, M, V);
    for (size_t lin = 0; lin < th_hw_count(&table); lin++) /* one row with a nonzero trit */
        if (table.T[lin] != 0) {
            idx[0] = (int32_t)(lin / (size_t)D);
            break;
        }
    th_ref_embed_fwd(&table, idx, M, ref);
    /* SPEC §3: embedding forward is exact (a trit times a power of two). */
    int ok = th_nonzero_d(&c, "reference", ref, n) &&
             run_embed_fwd(&c, bed->be, &table, idx, M, out) &&
             th_check_exact_fd(&c, "out", out, ref, n);
    if (ok && bed->cpu) {
        th_case cc = mk("embed_fwd", M, V, D, gs, mode, bed->cpu);
        float *cpu = NEW(float, n);
        ok = run_embed_fwd(&cc, bed->cpu, &table, idx, M, cpu) &&
             th_check_exact_f(&c, "out vs cpu", out, cpu, n);
        free(cpu);
    }
    if (ok)
        th_pass(&c, "exact");
    th_hw_free(&table);
    free(idx);
    free(out);
    free(ref);
    return ok;
}

static int run_embed_bwd(const th_case *c, arb_backend *be, const th_hw *table,
                         const int32_t *idx, const float *gout, int64_t M, float *acc,
                         int8_t *s)
{
    size_t vd = th_hw_count(table), n = (size_t)(M * table->K);
    th_dw d = th_dw_create(be, table);
    th_buf bi = th_buf_from(be, idx, (size_t)M * sizeof(int32_t));
    th_buf bg = th_buf_from(be, gout, n * sizeof(float));
    th_buf ba = th_buf_alloc(be, vd * sizeof(float));
    th_buf bs = th_buf_alloc(be, vd);
    th_buf_poison(&ba, TH_POISON_F32); /* overwritten, not accumulated into */
    th_buf_poison(&bs, TH_POISON_I8);
    int ok = done(c, be, arb_op_embed_bwd(be, &d.w, bi.p, bg.p, M, ba.p, bs.p), "embed_bwd");
    if (ok) {
        th_buf_download(&ba, acc);
        th_buf_download(&bs, s);
        ok &= th_buf_guards_ok(c, "acc", &ba) & th_buf_guards_ok(c, "s", &bs);
        ok &= intact(c, "idx", &bi, idx) & intact(c, "gout", &bg, gout);
    }
    th_buf_free(&bi);
    th_buf_free(&bg);
    th_buf_free(&ba);
    th_buf_free(&bs);
    th_dw_free(&d);
    return ok;
}

int th_case_embed_bwd(th_bed *bed, int64_t M, int64_t V, int64_t D, int small_int)
{
    th_case c = mk("embed_bwd", M, V, D, 1, small_int ? "small-int" : "normal", bed->be);
    size_t vd = (size_t)(V * D), n = (size_t)(M * D);
    th_hw table = th_hw_random(&bed->rng, V, D, 1, -3, 3, 0, 0);
    int32_t *idx = NEW(int32_t, M);
    float *gout = NEW(float, n), *acc = NEW(float, vd);
    int8_t *s = NEW(int8_t, vd);
    double *ref = NEW(double, vd), *bound = NEW(double, vd);
    fill_idx(&bed->rng, idx, M, V);
    if (small_int)
        th_fill_int(&bed->rng, gout, n, -3, 3);
    else
        th_fill_normal(&bed->rng, gout, n);
    th_ref_embed_bwd(V, D, idx, gout, M, ref, bound);
    if (small_int)
        for (size_t i = 0; i < vd; i++)
            bound[i] = -1.0; /* integer sums are exact in any order: all signs decided */
    int ok = th_nonzero_d(&c, "acc", ref, vd) &&
             run_embed_bwd(&c, bed->be, &table, idx, gout, M, acc, s);
    /* acc is an fp32 sum like a GEMM's (SPEC §3 fp32 bound), exact for small
     * integers; s follows the sign rule. */
    if (ok)
        ok = (small_int ? th_check_exact_fd(&c, "acc", acc, ref, vd)
                        : th_check_rel(&c, "acc", acc, ref, vd, TH_TOL_FP32)) &&
             th_check_signs(&c, "s", s, ref, bound, vd);
    if (ok && bed->cpu) {
        th_case cc = mk("embed_bwd", M, V, D, 1, c.mode, bed->cpu);
        float *cacc = NEW(float, vd);
        int8_t *cs = NEW(int8_t, vd);
        ok = run_embed_bwd(&cc, bed->cpu, &table, idx, gout, M, cacc, cs) &&
             th_check_signs(&cc, "s", cs, ref, bound, vd) &&
             (small_int ? th_check_exact_f(&c, "acc vs cpu", acc, cacc, vd) &&
                              th_check_exact_i8(&c, "s vs cpu", s, cs, vd)
                        : th_check_rel_f(&c, "acc vs cpu", acc, cacc, vd, TH_TOL_FP32));
        free(cacc);
        free(cs);
    }
    if (ok)
        th_pass(&c, "%.1f lookups a row, rel=%.2e", (double)M / (double)V, rel_err(acc, ref, vd));
    th_hw_free(&table);
    free(idx);
    free(gout);
    free(acc);
    free(s);
    free(ref);
    free(bound);
    return ok;
}

/* ---- trainer glue ------------------------------------------------------------------ */

static int run_gather(const th_case *c, arb_backend *be, const uint8_t *corpus, int64_t len,
                      const int64_t *pos, int64_t M, int ctx, int32_t *idx, int32_t *target)
{
    th_buf bc = th_buf_from(be, corpus, (size_t)len);
    th_buf bp = th_buf_from(be, pos, (size_t)M * sizeof(int64_t));
    th_buf bi = th_buf_alloc(be, (size_t)(M * ctx) * sizeof(int32_t));
    th_buf bt = th_buf_alloc(be, (size_t)M * sizeof(int32_t));
    th_buf_poison(&bi, TH_POISON_F32); /* -1: no valid index */
    th_buf_poison(&bt, TH_POISON_F32);
    int ok = done(c, be, arb_op_gather_context(be, bc.p, len, bp.p, M, ctx, bi.p, bt.p),
                  "gather_context");
    if (ok) {
        th_buf_download(&bi, idx);
        th_buf_download(&bt, target);
        ok &= th_buf_guards_ok(c, "idx", &bi) & th_buf_guards_ok(c, "target", &bt);
        ok &= intact(c, "corpus", &bc, corpus) & intact(c, "pos", &bp, pos);
    }
    th_buf_free(&bc);
    th_buf_free(&bp);
    th_buf_free(&bi);
    th_buf_free(&bt);
    return ok;
}

int th_case_gather_context(th_bed *bed, int64_t M, int ctx, int64_t corpus_len)
{
    char mode[32];
    snprintf(mode, sizeof(mode), "ctx=%d,len=%lld", ctx, (long long)corpus_len);
    th_case c = mk("gather_context", M, 0, 0, 0, mode, bed->be);
    uint8_t *corpus = NEW(uint8_t, corpus_len);
    int64_t *pos = NEW(int64_t, M);
    int32_t *idx = NEW(int32_t, M * ctx), *target = NEW(int32_t, M);
    int32_t *ridx = NEW(int32_t, M * ctx), *rtarget = NEW(int32_t, M);
    for (int64_t i = 0; i < corpus_len; i++)
        corpus[i] = (uint8_t)th_range(&bed->rng, 0, 255);
    for (int64_t i = 0; i < M; i++) /* ctx <= p < corpus_len; both ends drawn on purpose */
        pos[i] = i == 0 ? ctx : i == 1 ? corpus_len - 1 : th_range(&bed->rng, ctx, corpus_len - 1);
    th_ref_gather_context(corpus, pos, M, ctx, ridx, rtarget);
    int ok = run_gather(&c, bed->be, corpus, corpus_len, pos, M, ctx, idx, target) &&
             th_check_exact_i32(&c, "idx", idx, ridx, (size_t)(M * ctx)) &&
             th_check_exact_i32(&c, "target", target, rtarget, (size_t)M);
    if (ok && bed->cpu) {
        th_case cc = mk("gather_context", M, 0, 0, 0, mode, bed->cpu);
        ok = run_gather(&cc, bed->cpu, corpus, corpus_len, pos, M, ctx, ridx, rtarget) &&
             th_check_exact_i32(&c, "idx vs cpu", idx, ridx, (size_t)(M * ctx)) &&
             th_check_exact_i32(&c, "target vs cpu", target, rtarget, (size_t)M);
    }
    if (ok)
        th_pass(&c, "exact");
    free(corpus);
    free(pos);
    free(idx);
    free(target);
    free(ridx);
    free(rtarget);
    return ok;
}

int th_case_sample_positions(th_bed *bed, int64_t M, int64_t lo, int64_t hi)
{
    char mode[48];
    snprintf(mode, sizeof(mode), "[%lld,%lld)", (long long)lo, (long long)hi);
    arb_backend *be = bed->be;
    th_case c = mk("sample_positions", M, 0, 0, 0, mode, be);
    uint64_t seed = th_u64(&bed->rng);
    int64_t step0 = th_range(&bed->rng, 0, 1000000);
    int64_t *pos = NEW(int64_t, M);
    th_buf bstep = th_buf_from(be, &step0, sizeof(step0));
    th_buf bpos = th_buf_alloc(be, (size_t)M * sizeof(int64_t));
    int ok = 1;
    for (int k = 0; k < 3 && ok; k++) {
        th_buf_poison(&bpos, TH_POISON_F32); /* -1: below any lo */
        ok = done(&c, be, arb_op_sample_positions(be, seed, bstep.p, lo, hi, M, bpos.p),
                  "sample_positions");
        if (!ok)
            break;
        th_buf_download(&bpos, pos);
        int64_t step = 0;
        th_buf_download(&bstep, &step);
        if (step != step0 + k) {
            th_fail(&c, "step_counter", "is %lld after %d step_advance calls from %lld",
                    (long long)step, k, (long long)step0);
            ok = 0;
            break;
        }
        for (int64_t i = 0; i < M && ok; i++) {
            int64_t want = th_ref_sample_position(seed, step, i, lo, hi);
            if (pos[i] != want || pos[i] != arb_sample_position(seed, step, i, lo, hi) ||
                pos[i] < lo || pos[i] >= hi) {
                th_fail(&c, "pos", "pos[%lld] = %lld at step %lld, want %lld (host API %lld)",
                        (long long)i, (long long)pos[i], (long long)step, (long long)want,
                        (long long)arb_sample_position(seed, step, i, lo, hi));
                ok = 0;
            }
        }
        ok = ok && th_buf_guards_ok(&c, "pos", &bpos) &&
             done(&c, be, arb_op_step_advance(be, bstep.p), "step_advance") &&
             th_buf_guards_ok(&c, "step_counter", &bstep);
    }
    if (ok)
        th_pass(&c, "exact over 3 steps");
    th_buf_free(&bstep);
    th_buf_free(&bpos);
    free(pos);
    return ok;
}

/* relu_fwd (kind 0), relu_bwd (1), add (2) on one backend. */
static int run_elementwise(const th_case *c, arb_backend *be, int kind, int residual,
                           const float *a, const float *b, int64_t n, float *out)
{
    size_t bytes = (size_t)n * sizeof(float);
    th_buf ba = th_buf_from(be, a, bytes), bb = th_buf_from(be, b, bytes);
    th_buf bo = th_buf_alloc(be, bytes);
    arb_status st;
    const float *untouched = NULL;
    th_buf *checked = NULL;
    if (kind == 0) { /* h = relu(z) or h += relu(z): a = z, b = h before */
        if (residual)
            th_buf_upload(&bo, b);
        else
            th_buf_poison(&bo, TH_POISON_F32);
        st = arb_op_relu_fwd(be, ba.p, bo.p, n, residual);
        untouched = a;
        checked = &ba;
    } else if (kind == 1) { /* gz = gh * (z > 0): a = gh, b = z */
        th_buf_poison(&bo, TH_POISON_F32);
        st = arb_op_relu_bwd(be, ba.p, bb.p, bo.p, n);
    } else { /* a += b, in place: the output is a */
        st = arb_op_add(be, ba.p, bb.p, n);
        untouched = b;
        checked = &bb;
    }
    int ok = done(c, be, st, c->op);
    if (ok) {
        th_buf *res = kind == 2 ? &ba : &bo;
        th_buf_download(res, out);
        ok &= th_buf_guards_ok(c, "out", res);
        if (checked)
            ok &= intact(c, "input", checked, untouched);
        if (kind == 1)
            ok &= intact(c, "gh", &ba, a) & intact(c, "z", &bb, b);
    }
    th_buf_free(&ba);
    th_buf_free(&bb);
    th_buf_free(&bo);
    return ok;
}

static int case_elementwise(th_bed *bed, int kind, int64_t n, int residual)
{
    static const char *const ops[] = {"relu_fwd", "relu_bwd", "add"};
    th_case c = mk(ops[kind], n, 0, 0, 0, kind == 0 ? (residual ? "residual" : "plain") : NULL,
                   bed->be);
    float *a = NEW(float, n), *b = NEW(float, n), *out = NEW(float, n);
    double *ref = NEW(double, n);
    /* Dyadic values: every result is exact in fp32, so compare exactly. */
    th_fill_dyadic(&bed->rng, a, (size_t)n);
    th_fill_dyadic(&bed->rng, b, (size_t)n);
    /* Exact zeros in z, where relu's "> 0" decides. */
    float *z = kind == 0 ? a : kind == 1 ? b : NULL;
    if (z) {
        for (int64_t i = 3; i < n; i += 7)
            z[i] = (i / 7) % 2 ? 0.0f : -0.0f;
        z[0] = fabsf(z[0]) + 0.125f; /* one positive z: a nonzero reference */
    }
    if (kind == 0)
        th_ref_relu_fwd(a, b, n, residual, ref);
    else if (kind == 1)
        th_ref_relu_bwd(a, b, n, ref);
    else
        th_ref_add(a, b, n, ref);
    int ok = th_nonzero_d(&c, "reference", ref, (size_t)n) &&
             run_elementwise(&c, bed->be, kind, residual, a, b, n, out) &&
             th_check_exact_fd(&c, "out", out, ref, (size_t)n);
    if (ok && bed->cpu) {
        th_case cc = mk(ops[kind], n, 0, 0, 0, c.mode, bed->cpu);
        float *cpu = NEW(float, n);
        ok = run_elementwise(&cc, bed->cpu, kind, residual, a, b, n, cpu) &&
             th_check_exact_fd(&cc, "out", cpu, ref, (size_t)n);
        free(cpu);
    }
    if (ok)
        th_pass(&c, "exact");
    free(a);
    free(b);
    free(out);
    free(ref);
    return ok;
}

int th_case_relu_fwd(th_bed *bed, int64_t n, int residual)
{
    return case_elementwise(bed, 0, n, residual);
}

int th_case_relu_bwd(th_bed *bed, int64_t n) { return case_elementwise(bed, 1, n, 0); }

int th_case_add(th_bed *bed, int64_t n) { return case_elementwise(bed, 2, n, 0); }

/* ---- cross-entropy ------------------------------------------------------------------- */

static int run_xent(const th_case *c, arb_backend *be, const float *logits,
                    const int32_t *target, int64_t M, int64_t V, float *loss, int32_t *guard,
                    float *g)
{
    size_t n = (size_t)(M * V);
    th_buf bl = th_buf_from(be, logits, n * sizeof(float));
    th_buf bt = th_buf_from(be, target, (size_t)M * sizeof(int32_t));
    th_buf bloss = th_buf_alloc(be, sizeof(float));
    th_buf bguard = th_buf_from(be, guard, sizeof(int32_t));
    th_buf bg = th_buf_alloc(be, n * sizeof(float));
    th_buf_poison(&bloss, TH_POISON_F32);
    th_buf_poison(&bg, TH_POISON_F32);
    int ok = done(c, be, arb_op_xent_fwd(be, bl.p, bt.p, M, V, bloss.p, bguard.p), "xent_fwd");
    if (ok && g)
        ok = done(c, be, arb_op_xent_bwd(be, bl.p, bt.p, M, V, bg.p), "xent_bwd");
    if (ok) {
        th_buf_download(&bloss, loss);
        th_buf_download(&bguard, guard);
        if (g)
            th_buf_download(&bg, g);
        ok &= th_buf_guards_ok(c, "loss_sum", &bloss) & th_buf_guards_ok(c, "guard", &bguard) &
              th_buf_guards_ok(c, "glogits", &bg);
        ok &= intact(c, "logits", &bl, logits) & intact(c, "target", &bt, target);
    }
    th_buf_free(&bl);
    th_buf_free(&bt);
    th_buf_free(&bloss);
    th_buf_free(&bguard);
    th_buf_free(&bg);
    return ok;
}

int th_case_xent(th_bed *bed, int64_t M, int64_t V, int extreme)
{
    th_case c = mk("xent", M, V, 0, 0, extreme ? "logits +-80" : "normal", bed->be);
    size_t n = (size_t)(M * V);
    float *logits = NEW(float, n), *g = NEW(float, n);
    int32_t *target = NEW(int32_t, M);
    double *gref = NEW(double, n);
    for (size_t i = 0; i < n; i++) {
        if (!extreme)
            logits[i] = (float)(3.0 * th_normal(&bed->rng));
        else /* a quarter exactly at +-80, the rest spread over [-80, 80] */
            logits[i] = th_range(&bed->rng, 0, 3) == 0
                            ? (th_range(&bed->rng, 0, 1) ? 80.0f : -80.0f)
                            : (float)(160.0 * th_unit(&bed->rng) - 80.0);
    }
    fill_idx(&bed->rng, target, M, V);
    if (extreme && V > 1) /* a row whose target logit is -80 while another is +80 */
        logits[(size_t)target[0]] = -80.0f, logits[(size_t)(target[0] + 1) % (size_t)V] = 80.0f;
    double lref = th_ref_xent_fwd(logits, target, M, V);
    th_ref_xent_bwd(logits, target, M, V, gref);
    float loss = 0.0f;
    int32_t guard = 0;
    int ok = run_xent(&c, bed->be, logits, target, M, V, &loss, &guard, g);
    /* Not in SPEC §3: the loss and gradient get RMSNorm's 1e-5. */
    if (ok && !(isfinite(loss) && fabs(loss - lref) <= TH_TOL_XENT * fabs(lref))) {
        th_fail(&c, "loss_sum", "%.9g, want %.9g (rel %.2e)", loss, lref,
                fabs(loss - lref) / fabs(lref));
        ok = 0;
    }
    if (ok && guard != 0) {
        th_fail(&c, "guard", "set to %d for a finite loss", guard);
        ok = 0;
    }
    ok = ok && th_check_rel(&c, "glogits", g, gref, n, TH_TOL_XENT);
    if (ok && bed->cpu) {
        th_case cc = mk("xent", M, V, 0, 0, c.mode, bed->cpu);
        float closs = 0.0f, *cg = NEW(float, n);
        int32_t cguard = 0;
        ok = run_xent(&cc, bed->cpu, logits, target, M, V, &closs, &cguard, cg) &&
             th_check_rel_f(&c, "glogits vs cpu", g, cg, n, TH_TOL_XENT);
        if (ok && !(fabs(loss - closs) <= TH_TOL_XENT * fabs(closs))) {
            th_fail(&c, "loss_sum vs cpu", "%.9g, cpu %.9g", loss, closs);
            ok = 0;
        }
        free(cg);
    }
    if (ok)
        th_pass(&c, "loss rel=%.2e, glogits rel=%.2e", fabs(loss - lref) / fabs(lref),
                rel_err(g, gref, n));
    free(logits);
    free(g);
    free(target);
    free(gref);
    return ok;
}

int th_case_xent_guard(th_bed *bed, int64_t M, int64_t V)
{
    th_case c = mk("xent_fwd", M, V, 0, 0, "non-finite", bed->be);
    size_t n = (size_t)(M * V);
    float *logits = NEW(float, n);
    int32_t *target = NEW(int32_t, M);
    th_fill_normal(&bed->rng, logits, n);
    fill_idx(&bed->rng, target, M, V);
    int ok = 1;
    /* +inf, NaN, and -inf at the target: each makes the loss non-finite. */
    const float bad[3] = {INFINITY, NAN, -INFINITY};
    for (int k = 0; k < 3 && ok; k++) {
        int64_t row = th_range(&bed->rng, 0, M - 1);
        int64_t col = k == 2 ? target[row] : th_range(&bed->rng, 0, V - 1);
        size_t at = (size_t)(row * V + col);
        float saved = logits[at];
        logits[at] = bad[k];
        float loss = 0.0f;
        int32_t guard = 0;
        ok = run_xent(&c, bed->be, logits, target, M, V, &loss, &guard, NULL);
        if (ok && guard != 1) {
            th_fail(&c, "guard", "is %d after a loss of %g (logit %g in row %lld); want 1", guard,
                    loss, bad[k], (long long)row);
            ok = 0;
        }
        logits[at] = saved;
    }
    if (ok)
        th_pass(&c, "guard set for +inf, NaN and -inf logits");
    free(logits);
    free(target);
    return ok;
}

/* ---- sweeps over th_shapes ----------------------------------------------------------- */

/* The cases that take a shape and its group size, and those that take a
 * shape and the kind of data (0 normal, 1 small integers). */
typedef int (*case_mnk_gs)(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs);
typedef int (*case_mnk_data)(th_bed *bed, int64_t M, int64_t N, int64_t K, int small_int);
typedef int (*case_update_E)(th_bed *bed, int64_t N, int64_t K, int64_t gs, int phi,
                             arb_e_score score);

static int sweep_mnk_gs(th_bed *bed, case_mnk_gs run)
{
    int ok = 1;
    TH_FOR_EACH_SHAPE(s) ok &= run(bed, s->M, s->N, s->K, th_shape_gs(s));
    return ok;
}

/* Every shape on normal data, then every shape on small integers (exact
 * zeros of gW, where sign(0) = 0 must hold). */
static int sweep_mnk_data(th_bed *bed, case_mnk_data run)
{
    int ok = 1;
    TH_FOR_EACH_SHAPE(s) ok &= run(bed, s->M, s->N, s->K, 0);
    TH_FOR_EACH_SHAPE(s) ok &= run(bed, s->M, s->N, s->K, 1);
    return ok;
}

static int sweep_update_E(th_bed *bed, case_update_E run)
{
    int ok = 1, i = 0;
    TH_FOR_EACH_SHAPE(s)
    {
        int phi = 1 + i++ % 3;
        ok &= run(bed, s->N, s->K, th_shape_gs(s), phi, ARB_E_SCORE_GRAD);
        ok &= run(bed, s->N, s->K, th_shape_gs(s), phi, ARB_E_SCORE_SIGN);
    }
    return ok;
}

int th_sweep_ternary_fwd(th_bed *bed) { return sweep_mnk_gs(bed, th_case_ternary_fwd); }
int th_sweep_ternary_grad_x(th_bed *bed) { return sweep_mnk_gs(bed, th_case_ternary_grad_x); }
int th_sweep_guard(th_bed *bed) { return sweep_mnk_gs(bed, th_case_guard); }
int th_sweep_grad_weight(th_bed *bed) { return sweep_mnk_data(bed, th_case_grad_weight); }
int th_sweep_grad_sign(th_bed *bed) { return sweep_mnk_data(bed, th_case_grad_sign); }
int th_sweep_update_E(th_bed *bed) { return sweep_update_E(bed, th_case_update_E); }
int th_sweep_update_E_split(th_bed *bed) { return sweep_update_E(bed, th_case_update_E_split); }

int th_sweep_ternary_step(th_bed *bed)
{
    static const int thetas[] = {1, 2, 5, 127};
    int ok = 1, i = 0;
    TH_FOR_EACH_SHAPE(s)
    {
        ok &= th_case_ternary_step(bed, s->N, s->K, th_shape_gs(s), thetas[i++ % 4]);
    }
    return ok;
}

int th_sweep_embed_fwd(th_bed *bed)
{
    int ok = 1;
    /* the table is V x D = N x K of the shape list: all six scale types */
    TH_FOR_EACH_SHAPE(s) ok &= th_case_embed_fwd(bed, 3 * s->M + 1, s->N, s->K, th_shape_gs(s));
    return ok;
}

void th_sweep_on_cpu(const char *name, int (*sweep)(th_bed *bed))
{
    th_bed bed = th_cpu_bed(name);
    int ok = sweep(&bed);
    arb_backend_close(bed.be);
    cr_assert(ok, "see the FAIL lines above");
}
