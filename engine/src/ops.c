/*
 * ops.c - the op API's front door: check every argument, then dispatch to
 * the cpu or jit implementation (CUTLASS's can_implement before run).
 *
 * Checks here are the only ones: implementations trust them. A failed check
 * touches no memory and names the op, the argument and the rule broken.
 */
#include <math.h>

#include "arb/ops.h"
#include "backend_impl.h"

const char *arb_e_score_name(arb_e_score score)
{
    return score == ARB_E_SCORE_SIGN ? "sign" : "grad";
}

/* ---- argument checks ------------------------------------------------------- */

static arb_status check_backend(arb_backend *be)
{
    if (!be)
        return ARB_ERR_INVALID_ARG;
    return ARB_OK;
}

static arb_status check_count(arb_backend *be, const char *op, const char *what, int64_t count)
{
    if (count < 1)
        return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG, "%s: %s = %lld must be >= 1", op, what,
                           (long long)count);
    if (count > ARB_MAX_ELEMENTS)
        return ARB_BE_FAIL(be, ARB_ERR_UNSUPPORTED,
                           "%s: %s = %lld elements exceeds the limit of 2^31-1 per tensor", op,
                           what, (long long)count);
    return ARB_OK;
}

static arb_status check_ptr(arb_backend *be, const char *op, const char *what, const void *p)
{
    if (!p)
        return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG, "%s: %s is NULL", op, what);
    return ARB_OK;
}

/* A weight: shape, group size, packed trits and scales present; the
 * accumulators when the op updates them. */
static arb_status check_weight(arb_backend *be, const char *op, const arb_ternary *W,
                               int need_T_accum, int need_E_accum)
{
    arb_status st = check_ptr(be, op, "weight", W);
    if (st)
        return st;
    if (W->N < 1 || W->K < 1)
        return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG, "%s: weight shape %lldx%lld must be >= 1x1",
                           op, (long long)W->N, (long long)W->K);
    if (W->N > ARB_MAX_ELEMENTS / W->K)
        return ARB_BE_FAIL(be, ARB_ERR_UNSUPPORTED,
                           "%s: weight %lldx%lld exceeds 2^31-1 elements", op, (long long)W->N,
                           (long long)W->K);
    arb_err local = {0};
    if (arb_scale_check(W->N, W->K, W->gs, &local) != ARB_OK)
        return ARB_BE_FAIL(be, local.status, "%s: %s", op, local.msg);
    if ((st = check_ptr(be, op, "weight T_packed", W->T_packed)) ||
        (st = check_ptr(be, op, "weight E", W->E)))
        return st;
    if (need_T_accum && (st = check_ptr(be, op, "weight T_accum", W->T_accum)))
        return st;
    if (need_E_accum && (st = check_ptr(be, op, "weight E_accum", W->E_accum)))
        return st;
    return ARB_OK;
}

static arb_status check_threshold(arb_backend *be, const char *op, const char *name, int value,
                                  int allow_zero)
{
    if ((allow_zero && value == 0) || (value >= 1 && value <= 127))
        return ARB_OK;
    return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG, "%s: %s = %d must be in 1..127%s", op, name,
                       value, allow_zero ? " (or 0 to disable)" : "");
}

static arb_status check_score(arb_backend *be, const char *op, arb_e_score score)
{
    if (score == ARB_E_SCORE_GRAD || score == ARB_E_SCORE_SIGN)
        return ARB_OK;
    return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG, "%s: unknown E score mode %d", op, (int)score);
}

/* The guard is read on the host only for the cpu backend. */
static int guard_blocks_cpu(const arb_backend *be, const int32_t *guard)
{
    return be->kind == ARB_BACKEND_CPU && guard && *guard != 0;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        arb_status try_st_ = (expr);                                                               \
        if (try_st_ != ARB_OK)                                                                     \
            return try_st_;                                                                        \
    } while (0)

#define DISPATCH(be, stem, ...)                                                                    \
    ((be)->kind == ARB_BACKEND_CPU ? arb_cpu_##stem(be, __VA_ARGS__) : arb_jit_##stem(be, __VA_ARGS__))

/* ---- GEMMs ---------------------------------------------------------------- */

arb_status arb_op_ternary_fwd(arb_backend *be, const arb_ternary *W, const float *x, float *y,
                              int64_t M)
{
    static const char op[] = "ternary_fwd";
    TRY(check_backend(be));
    TRY(check_weight(be, op, W, 0, 0));
    TRY(check_count(be, op, "M", M));
    TRY(check_count(be, op, "M*K", M * W->K));
    TRY(check_count(be, op, "M*N", M * W->N));
    TRY(check_ptr(be, op, "x", x));
    TRY(check_ptr(be, op, "y", y));
    return DISPATCH(be, ternary_fwd, W, x, y, M);
}

arb_status arb_op_ternary_grad_x(arb_backend *be, const arb_ternary *W, const float *gy,
                                 float *gx, int64_t M)
{
    static const char op[] = "ternary_grad_x";
    TRY(check_backend(be));
    TRY(check_weight(be, op, W, 0, 0));
    TRY(check_count(be, op, "M", M));
    TRY(check_count(be, op, "M*K", M * W->K));
    TRY(check_count(be, op, "M*N", M * W->N));
    TRY(check_ptr(be, op, "gy", gy));
    TRY(check_ptr(be, op, "gx", gx));
    return DISPATCH(be, ternary_grad_x, W, gy, gx, M);
}

static arb_status check_outer(arb_backend *be, const char *op, const float *gy, const float *x,
                              const void *out, int64_t M, int64_t N, int64_t K)
{
    TRY(check_count(be, op, "M", M));
    TRY(check_count(be, op, "N", N));
    TRY(check_count(be, op, "K", K));
    TRY(check_count(be, op, "M*N", M * N));
    TRY(check_count(be, op, "M*K", M * K));
    TRY(check_count(be, op, "N*K", N * K));
    TRY(check_ptr(be, op, "gy", gy));
    TRY(check_ptr(be, op, "x", x));
    return check_ptr(be, op, "output", out);
}

arb_status arb_op_grad_weight(arb_backend *be, const float *gy, const float *x, float *gW,
                              int64_t M, int64_t N, int64_t K)
{
    TRY(check_backend(be));
    TRY(check_outer(be, "grad_weight", gy, x, gW, M, N, K));
    return DISPATCH(be, grad_weight, gy, x, gW, M, N, K);
}

arb_status arb_op_grad_sign(arb_backend *be, const float *gy, const float *x, int8_t *s,
                            int64_t M, int64_t N, int64_t K)
{
    TRY(check_backend(be));
    TRY(check_outer(be, "grad_sign", gy, x, s, M, N, K));
    return DISPATCH(be, grad_sign, gy, x, s, M, N, K);
}

/* ---- Integer updates ------------------------------------------------------ */

arb_status arb_op_ternary_step(arb_backend *be, arb_ternary *W, const int8_t *s, int theta,
                               const int32_t *guard, uint64_t *flips)
{
    static const char op[] = "ternary_step";
    TRY(check_backend(be));
    TRY(check_weight(be, op, W, 1, 0));
    TRY(check_ptr(be, op, "s", s));
    TRY(check_threshold(be, op, "theta", theta, 0));
    if (guard_blocks_cpu(be, guard))
        return ARB_OK;
    if (be->kind == ARB_BACKEND_CPU)
        return arb_cpu_ternary_step(be, W, s, theta, flips);
    return arb_jit_ternary_step(be, W, s, theta, guard, flips);
}

arb_status arb_op_update_E(arb_backend *be, arb_ternary *W, const int8_t *s, const float *gW,
                           int phi, arb_e_score score, const int32_t *guard)
{
    static const char op[] = "update_E";
    TRY(check_backend(be));
    TRY(check_weight(be, op, W, 0, 1));
    TRY(check_threshold(be, op, "phi", phi, 0));
    TRY(check_score(be, op, score));
    if (score == ARB_E_SCORE_GRAD)
        TRY(check_ptr(be, op, "gW (grad score)", gW));
    else
        TRY(check_ptr(be, op, "s (sign score)", s));
    if (guard_blocks_cpu(be, guard))
        return ARB_OK;
    if (be->kind == ARB_BACKEND_CPU)
        return arb_cpu_update_E(be, W, s, gW, phi, score);
    return arb_jit_update_E(be, W, s, gW, phi, score, guard);
}

/* The three direct ops share one implementation per backend. */
static arb_status update_direct(arb_backend *be, const char *op, arb_ternary *W, const float *gy,
                                const float *x, int64_t M, int theta, int phi, arb_e_score score,
                                const int32_t *guard, uint64_t *flips)
{
    TRY(check_backend(be));
    TRY(check_weight(be, op, W, theta > 0, phi > 0));
    TRY(check_outer(be, op, gy, x, W->T_packed, M, W->N, W->K));
    TRY(check_threshold(be, op, "theta", theta, 1));
    TRY(check_threshold(be, op, "phi", phi, 1));
    TRY(check_score(be, op, score));
    if (guard_blocks_cpu(be, guard))
        return ARB_OK;
    if (be->kind == ARB_BACKEND_CPU)
        return arb_cpu_ternary_update_direct(be, W, gy, x, M, theta, phi, score, flips);
    return arb_jit_ternary_update_direct(be, W, gy, x, M, theta, phi, score, guard, flips);
}

arb_status arb_op_ternary_step_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                      const float *x, int64_t M, int theta,
                                      const int32_t *guard, uint64_t *flips)
{
    TRY(check_backend(be));
    TRY(check_threshold(be, "ternary_step_direct", "theta", theta, 0));
    return update_direct(be, "ternary_step_direct", W, gy, x, M, theta, 0, ARB_E_SCORE_GRAD,
                         guard, flips);
}

arb_status arb_op_update_E_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                  const float *x, int64_t M, int phi, arb_e_score score,
                                  const int32_t *guard)
{
    TRY(check_backend(be));
    TRY(check_threshold(be, "update_E_direct", "phi", phi, 0));
    return update_direct(be, "update_E_direct", W, gy, x, M, 0, phi, score, guard, NULL);
}

arb_status arb_op_ternary_update_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                        const float *x, int64_t M, const arb_update_rule *rule,
                                        const int32_t *guard, uint64_t *flips)
{
    static const char op[] = "ternary_update_direct";
    TRY(check_backend(be));
    TRY(check_ptr(be, op, "rule", rule));
    if (rule->theta == 0)
        return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG, "%s: theta must be >= 1", op);
    return update_direct(be, op, W, gy, x, M, rule->theta, rule->phi, rule->score, guard, flips);
}

static arb_status check_scores(arb_backend *be, const char *op, const arb_ternary *W,
                               arb_e_score score, const float *scores)
{
    TRY(check_weight(be, op, W, 0, 0));
    TRY(check_score(be, op, score));
    return check_ptr(be, op, "scores", scores);
}

arb_status arb_op_update_E_scores(arb_backend *be, const arb_ternary *W, const int8_t *s,
                                  const float *gW, arb_e_score score, float *scores)
{
    static const char op[] = "update_E_scores";
    TRY(check_backend(be));
    TRY(check_scores(be, op, W, score, scores));
    if (score == ARB_E_SCORE_GRAD)
        TRY(check_ptr(be, op, "gW (grad score)", gW));
    else
        TRY(check_ptr(be, op, "s (sign score)", s));
    return DISPATCH(be, update_E_scores, W, s, gW, score, scores);
}

arb_status arb_op_update_E_scores_direct(arb_backend *be, const arb_ternary *W, const float *gy,
                                         const float *x, int64_t M, arb_e_score score,
                                         float *scores)
{
    static const char op[] = "update_E_scores_direct";
    TRY(check_backend(be));
    TRY(check_scores(be, op, W, score, scores));
    TRY(check_outer(be, op, gy, x, scores, M, W->N, W->K));
    return DISPATCH(be, update_E_scores_direct, W, gy, x, M, score, scores);
}

arb_status arb_op_update_E_apply(arb_backend *be, arb_ternary *W, const float *scores, int phi,
                                 const int32_t *guard)
{
    static const char op[] = "update_E_apply";
    TRY(check_backend(be));
    TRY(check_weight(be, op, W, 0, 1));
    TRY(check_ptr(be, op, "scores", scores));
    TRY(check_threshold(be, op, "phi", phi, 0));
    if (guard_blocks_cpu(be, guard))
        return ARB_OK;
    if (be->kind == ARB_BACKEND_CPU)
        return arb_cpu_update_E_apply(be, W, scores, phi);
    return arb_jit_update_E_apply(be, W, scores, phi, guard);
}

/* ---- RMSNorm -------------------------------------------------------------- */

static arb_status check_norm_weight(arb_backend *be, const char *op, const arb_ternary *w)
{
    TRY(check_weight(be, op, w, 0, 0));
    if (w->N != 1)
        return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG,
                           "%s: the RMSNorm weight must be 1 x D, got %lld x %lld", op,
                           (long long)w->N, (long long)w->K);
    return ARB_OK;
}

arb_status arb_op_rmsnorm_fwd(arb_backend *be, const arb_ternary *w, const float *x, float *out,
                              int64_t B)
{
    static const char op[] = "rmsnorm_fwd";
    TRY(check_backend(be));
    TRY(check_norm_weight(be, op, w));
    TRY(check_count(be, op, "B", B));
    TRY(check_count(be, op, "B*D", B * w->K));
    TRY(check_ptr(be, op, "x", x));
    TRY(check_ptr(be, op, "out", out));
    return DISPATCH(be, rmsnorm_fwd, w, x, out, B);
}

arb_status arb_op_rmsnorm_bwd(arb_backend *be, const arb_ternary *w, const float *x,
                              const float *gy, float *gx, int64_t B)
{
    static const char op[] = "rmsnorm_bwd";
    TRY(check_backend(be));
    TRY(check_norm_weight(be, op, w));
    TRY(check_count(be, op, "B", B));
    TRY(check_count(be, op, "B*D", B * w->K));
    TRY(check_ptr(be, op, "x", x));
    TRY(check_ptr(be, op, "gy", gy));
    TRY(check_ptr(be, op, "gx", gx));
    return DISPATCH(be, rmsnorm_bwd, w, x, gy, gx, B);
}

/* ---- Embedding ------------------------------------------------------------ */

arb_status arb_op_embed_fwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                            float *out, int64_t M)
{
    static const char op[] = "embed_fwd";
    TRY(check_backend(be));
    TRY(check_weight(be, op, table, 0, 0));
    TRY(check_count(be, op, "M", M));
    TRY(check_count(be, op, "M*D", M * table->K));
    TRY(check_ptr(be, op, "idx", idx));
    TRY(check_ptr(be, op, "out", out));
    return DISPATCH(be, embed_fwd, table, idx, out, M);
}

arb_status arb_op_embed_bwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                            const float *gout, int64_t M, float *acc, int8_t *s)
{
    static const char op[] = "embed_bwd";
    TRY(check_backend(be));
    TRY(check_weight(be, op, table, 0, 0));
    TRY(check_count(be, op, "M", M));
    TRY(check_count(be, op, "M*D", M * table->K));
    TRY(check_ptr(be, op, "idx", idx));
    TRY(check_ptr(be, op, "gout", gout));
    TRY(check_ptr(be, op, "acc", acc));
    TRY(check_ptr(be, op, "s", s));
    return DISPATCH(be, embed_bwd, table, idx, gout, M, acc, s);
}

/* ---- Trainer glue --------------------------------------------------------- */

arb_status arb_op_gather_context(arb_backend *be, const uint8_t *corpus, int64_t corpus_len,
                                 const int64_t *pos, int64_t M, int ctx, int32_t *idx,
                                 int32_t *target)
{
    static const char op[] = "gather_context";
    TRY(check_backend(be));
    TRY(check_count(be, op, "M", M));
    if (ctx < 1 || (int64_t)ctx >= corpus_len)
        return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG,
                           "%s: ctx = %d must be >= 1 and below the corpus length %lld", op, ctx,
                           (long long)corpus_len);
    TRY(check_count(be, op, "M*ctx", M * ctx));
    TRY(check_ptr(be, op, "corpus", corpus));
    TRY(check_ptr(be, op, "pos", pos));
    TRY(check_ptr(be, op, "idx", idx));
    TRY(check_ptr(be, op, "target", target));
    return DISPATCH(be, gather_context, corpus, corpus_len, pos, M, ctx, idx, target);
}

int64_t arb_sample_position(uint64_t seed, int64_t step, int64_t i, int64_t lo, int64_t hi)
{
    uint64_t z = seed + (uint64_t)step * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 0xD1B54A32D192ED03ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return lo + (int64_t)(z % (uint64_t)(hi - lo));
}

arb_status arb_op_sample_positions(arb_backend *be, uint64_t seed, const int64_t *step_counter,
                                   int64_t lo, int64_t hi, int64_t M, int64_t *pos)
{
    static const char op[] = "sample_positions";
    TRY(check_backend(be));
    TRY(check_count(be, op, "M", M));
    if (lo < 0 || hi <= lo)
        return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG, "%s: the range [%lld, %lld) is empty", op,
                           (long long)lo, (long long)hi);
    TRY(check_ptr(be, op, "step_counter", step_counter));
    TRY(check_ptr(be, op, "pos", pos));
    return DISPATCH(be, sample_positions, seed, step_counter, lo, hi, M, pos);
}

arb_status arb_op_step_advance(arb_backend *be, int64_t *step_counter)
{
    TRY(check_backend(be));
    TRY(check_ptr(be, "step_advance", "step_counter", step_counter));
    if (be->kind == ARB_BACKEND_CPU)
        return arb_cpu_step_advance(be, step_counter);
    return arb_jit_step_advance(be, step_counter);
}

arb_status arb_op_relu_fwd(arb_backend *be, const float *z, float *h, int64_t n, int residual)
{
    TRY(check_backend(be));
    TRY(check_count(be, "relu_fwd", "n", n));
    TRY(check_ptr(be, "relu_fwd", "z", z));
    TRY(check_ptr(be, "relu_fwd", "h", h));
    return DISPATCH(be, relu_fwd, z, h, n, residual);
}

arb_status arb_op_relu_bwd(arb_backend *be, const float *gh, const float *z, float *gz, int64_t n)
{
    TRY(check_backend(be));
    TRY(check_count(be, "relu_bwd", "n", n));
    TRY(check_ptr(be, "relu_bwd", "gh", gh));
    TRY(check_ptr(be, "relu_bwd", "z", z));
    TRY(check_ptr(be, "relu_bwd", "gz", gz));
    return DISPATCH(be, relu_bwd, gh, z, gz, n);
}

arb_status arb_op_add(arb_backend *be, float *a, const float *b, int64_t n)
{
    TRY(check_backend(be));
    TRY(check_count(be, "add", "n", n));
    TRY(check_ptr(be, "add", "a", a));
    TRY(check_ptr(be, "add", "b", b));
    return DISPATCH(be, add, a, b, n);
}

arb_status arb_op_xent_fwd(arb_backend *be, const float *logits, const int32_t *target,
                           int64_t M, int64_t V, float *loss_sum, int32_t *guard)
{
    static const char op[] = "xent_fwd";
    TRY(check_backend(be));
    TRY(check_count(be, op, "M", M));
    TRY(check_count(be, op, "V", V));
    TRY(check_count(be, op, "M*V", M * V));
    TRY(check_ptr(be, op, "logits", logits));
    TRY(check_ptr(be, op, "target", target));
    TRY(check_ptr(be, op, "loss_sum", loss_sum));
    return DISPATCH(be, xent_fwd, logits, target, M, V, loss_sum, guard);
}

arb_status arb_op_xent_bwd(arb_backend *be, const float *logits, const int32_t *target,
                           int64_t M, int64_t V, float *glogits)
{
    static const char op[] = "xent_bwd";
    TRY(check_backend(be));
    TRY(check_count(be, op, "M", M));
    TRY(check_count(be, op, "V", V));
    TRY(check_count(be, op, "M*V", M * V));
    TRY(check_ptr(be, op, "logits", logits));
    TRY(check_ptr(be, op, "target", target));
    TRY(check_ptr(be, op, "glogits", glogits));
    return DISPATCH(be, xent_bwd, logits, target, M, V, glogits);
}
