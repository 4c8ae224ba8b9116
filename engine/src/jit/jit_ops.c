/*
 * jit_ops.c - the ops on the GPU: each runs exactly the kernels of its plan
 * (kernels.c), with the parameters its template declares, on the backend's
 * stream. No host synchronization happens here.
 */
#include <stdint.h>
#include <string.h>

#include "arb/kernels.h"
#include "jit_internal.h"

#define DPTR(p) ((CUdeviceptr)(uintptr_t)(p))

/* Launch plan[i] with args; stop at the first failure. */
#define LAUNCH(be, spec, ...)                                                                      \
    do {                                                                                           \
        void *args_[] = {__VA_ARGS__};                                                             \
        arb_status st_ = arb_jit_launch((be), (spec), args_);                                      \
        if (st_ != ARB_OK)                                                                         \
            return st_;                                                                            \
    } while (0)

static arb_status zero(arb_backend *be, CUdeviceptr p, size_t words)
{
    CUresult rc = be->jit->cu->MemsetD32Async(p, 0u, words, be->jit->stream);
    return rc == CUDA_SUCCESS ? ARB_OK : arb_jit_cuda_fail(be, rc, "cuMemsetD32Async");
}

/* The staged plan (ternary_decode, act_split, tc_gemm; see kernels.h): the
 * decoded weight and the activation pieces live in the backend's scratch,
 * weight first (both sizes are multiples of 256 bytes: padded rows of 64+
 * elements). */
static arb_status launch_staged(arb_backend *be, const arb_spec plan[3], const arb_ternary *W,
                                const float *a, float *out, int trans)
{
    size_t w_bytes = arb_staged_weight_bytes(W->N, W->K, plan[0].prec, trans);
    size_t a_bytes = arb_staged_act_bytes(plan[1].M, plan[1].K, plan[1].prec);
    CUdeviceptr scratch = 0;
    arb_status st = arb_jit_scratch(be, w_bytes + a_bytes, &scratch);
    if (st)
        return st;
    CUdeviceptr dense = scratch, pieces = scratch + w_bytes;
    LAUNCH(be, &plan[0], (void *)&W->T_packed, (void *)&W->E, &dense);
    LAUNCH(be, &plan[1], &a, &pieces);
    LAUNCH(be, &plan[2], &pieces, &dense, (void *)&W->E, &out); /* (E: scale-after only) */
    return ARB_OK;
}

arb_status arb_jit_ternary_fwd(arb_backend *be, const arb_ternary *W, const float *x, float *y,
                               int64_t M)
{
    arb_spec plan[ARB_PLAN_MAX];
    int n = arb_plan_ternary_fwd(M, W->N, W->K, W->gs, be->precision,
                                 arb_engine_arch(be->jit->engine), plan);
    if (n == 3)
        return launch_staged(be, plan, W, x, y, 0);
    LAUNCH(be, &plan[0], &x, (void *)&W->T_packed, (void *)&W->E, &y);
    return ARB_OK;
}

arb_status arb_jit_ternary_grad_x(arb_backend *be, const arb_ternary *W, const float *gy,
                                  float *gx, int64_t M)
{
    arb_spec plan[ARB_PLAN_MAX];
    int n = arb_plan_ternary_grad_x(M, W->N, W->K, W->gs, be->precision,
                                    arb_engine_arch(be->jit->engine), plan);
    if (n == 3)
        return launch_staged(be, plan, W, gy, gx, 1);
    LAUNCH(be, &plan[0], &gy, (void *)&W->T_packed, (void *)&W->E, &gx);
    return ARB_OK;
}

arb_status arb_jit_grad_weight(arb_backend *be, const float *gy, const float *x, float *gW,
                               int64_t M, int64_t N, int64_t K)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_grad_weight(M, N, K, plan);
    LAUNCH(be, &plan[0], &gy, &x, &gW);
    return ARB_OK;
}

arb_status arb_jit_grad_sign(arb_backend *be, const float *gy, const float *x, int8_t *s,
                             int64_t M, int64_t N, int64_t K)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_grad_sign(M, N, K, plan);
    LAUNCH(be, &plan[0], &gy, &x, &s);
    return ARB_OK;
}

arb_status arb_jit_ternary_step(arb_backend *be, arb_ternary *W, const int8_t *s, int theta,
                                const int32_t *guard, uint64_t *flips)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_ternary_step(W->N, W->K, W->gs, plan);
    LAUNCH(be, &plan[0], &W->T_packed, &W->T_accum, &s, &theta, &guard, &flips);
    return ARB_OK;
}

arb_status arb_jit_update_E(arb_backend *be, arb_ternary *W, const int8_t *s, const float *gW,
                            int phi, arb_e_score score, const int32_t *guard)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_update_E(W->N, W->K, W->gs, score, plan);
    size_t groups = arb_scale_groups(W->N, W->K, W->gs);
    CUdeviceptr scores = 0;
    arb_status st = arb_jit_scratch(be, groups * sizeof(float), &scores);
    if (!st)
        st = zero(be, scores, groups);
    if (st)
        return st;
    LAUNCH(be, &plan[0], &W->T_packed, &gW, &s, &scores, &guard);
    LAUNCH(be, &plan[1], &W->E, &W->E_accum, &scores, &phi, &guard);
    return ARB_OK;
}

/* Scratch of the staged update (plan: act_split gy, act_split x, tc_update):
 * `before` bytes (E scores) first, then gy^T and x^T in two bf16 pieces. */
static arb_status stage_update(arb_backend *be, const arb_spec *plan, const float *gy,
                               const float *x, size_t before, CUdeviceptr *scratch,
                               CUdeviceptr *gyT, CUdeviceptr *xT)
{
    const arb_spec *u = &plan[2];
    size_t before_aligned = (before + 255) & ~(size_t)255;
    size_t gy_bytes = arb_staged_act_bytes_trans(u->M, u->N, u->prec);
    size_t x_bytes = arb_staged_act_bytes_trans(u->M, u->K, u->prec);
    arb_status st = arb_jit_scratch(be, before_aligned + gy_bytes + x_bytes, scratch);
    if (st)
        return st;
    *gyT = *scratch + before_aligned;
    *xT = *gyT + gy_bytes;
    LAUNCH(be, &plan[0], &gy, gyT);
    LAUNCH(be, &plan[1], &x, xT);
    return ARB_OK;
}

static int is_staged_update(const arb_spec *plan, int n)
{
    return n >= 3 && strcmp(plan[0].kernel, "act_split") == 0;
}

arb_status arb_jit_ternary_update_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                         const float *x, int64_t M, int theta, int phi,
                                         arb_e_score score, const int32_t *guard,
                                         uint64_t *flips)
{
    arb_spec plan[ARB_PLAN_MAX];
    int n = arb_plan_update_direct(M, W->N, W->K, W->gs, be->precision,
                                   arb_engine_arch(be->jit->engine), theta > 0, phi, score, plan);
    int staged = is_staged_update(plan, n);
    int applies = n > (staged ? 3 : 1); /* scores cross threads: accumulate, then apply */
    size_t groups = arb_scale_groups(W->N, W->K, W->gs);
    size_t score_bytes = applies ? groups * sizeof(float) : 0;
    /* The update's operands: gy and x, or (staged) their split transposes. */
    CUdeviceptr scratch = 0, a = DPTR(gy), b = DPTR(x);
    arb_status st = staged ? stage_update(be, plan, gy, x, score_bytes, &scratch, &a, &b)
                           : (applies ? arb_jit_scratch(be, score_bytes, &scratch) : ARB_OK);
    if (!st && applies)
        st = zero(be, scratch, groups);
    if (st)
        return st;
    CUdeviceptr scores = applies ? scratch : 0;
    LAUNCH(be, &plan[staged ? 2 : 0], &a, &b, &W->T_packed, &W->T_accum, &W->E, &W->E_accum,
           &scores, &theta, &phi, &guard, &flips);
    if (applies)
        LAUNCH(be, &plan[n - 1], &W->E, &W->E_accum, &scores, &phi, &guard);
    return ARB_OK;
}

arb_status arb_jit_update_E_scores(arb_backend *be, const arb_ternary *W, const int8_t *s,
                                   const float *gW, arb_e_score score, float *scores)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_update_E_scores(W->N, W->K, W->gs, score, plan);
    arb_status st = zero(be, DPTR(scores), arb_scale_groups(W->N, W->K, W->gs));
    if (st)
        return st;
    const int32_t *no_guard = NULL;
    LAUNCH(be, &plan[0], (void *)&W->T_packed, &gW, &s, &scores, &no_guard);
    return ARB_OK;
}

arb_status arb_jit_update_E_scores_direct(arb_backend *be, const arb_ternary *W, const float *gy,
                                          const float *x, int64_t M, arb_e_score score,
                                          float *scores)
{
    arb_spec plan[ARB_PLAN_MAX];
    int n = arb_plan_update_E_scores_direct(M, W->N, W->K, W->gs, be->precision,
                                            arb_engine_arch(be->jit->engine), score, plan);
    arb_status st = zero(be, DPTR(scores), arb_scale_groups(W->N, W->K, W->gs));
    if (st)
        return st;
    /* Scores only: the kernel writes no trit, E or accumulator. */
    int theta = 0, phi = 0;
    const int32_t *no_guard = NULL;
    uint64_t *no_flips = NULL;
    int staged = is_staged_update(plan, n);
    CUdeviceptr scratch = 0, a = DPTR(gy), b = DPTR(x);
    if (staged && (st = stage_update(be, plan, gy, x, 0, &scratch, &a, &b)))
        return st;
    LAUNCH(be, &plan[staged ? 2 : 0], &a, &b, (void *)&W->T_packed, (void *)&W->T_accum,
           (void *)&W->E, (void *)&W->E_accum, &scores, &theta, &phi, &no_guard, &no_flips);
    return ARB_OK;
}

arb_status arb_jit_update_E_apply(arb_backend *be, arb_ternary *W, const float *scores, int phi,
                                  const int32_t *guard)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_update_E_apply(W->N, W->K, W->gs, plan);
    LAUNCH(be, &plan[0], &W->E, &W->E_accum, &scores, &phi, &guard);
    return ARB_OK;
}

arb_status arb_jit_rmsnorm_fwd(arb_backend *be, const arb_ternary *w, const float *x, float *out,
                               int64_t B)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_rmsnorm_fwd(B, w->K, w->gs, plan);
    LAUNCH(be, &plan[0], &x, (void *)&w->T_packed, (void *)&w->E, &out);
    return ARB_OK;
}

arb_status arb_jit_rmsnorm_bwd(arb_backend *be, const arb_ternary *w, const float *x,
                               const float *gy, float *gx, int64_t B)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_rmsnorm_bwd(B, w->K, w->gs, plan);
    LAUNCH(be, &plan[0], &x, &gy, (void *)&w->T_packed, (void *)&w->E, &gx);
    return ARB_OK;
}

arb_status arb_jit_embed_fwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                             float *out, int64_t M)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_embed_fwd(M, table->N, table->K, table->gs, plan);
    LAUNCH(be, &plan[0], &idx, (void *)&table->T_packed, (void *)&table->E, &out);
    return ARB_OK;
}

arb_status arb_jit_embed_bwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                             const float *gout, int64_t M, float *acc, int8_t *s)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_embed_bwd(M, table->N, table->K, plan);
    arb_status st = zero(be, DPTR(acc), (size_t)(table->N * table->K));
    if (st)
        return st;
    LAUNCH(be, &plan[0], &idx, &gout, &acc);
    LAUNCH(be, &plan[1], &acc, &s);
    return ARB_OK;
}

arb_status arb_jit_gather_context(arb_backend *be, const uint8_t *corpus, int64_t corpus_len,
                                  const int64_t *pos, int64_t M, int ctx, int32_t *idx,
                                  int32_t *target)
{
    (void)corpus_len; /* positions are the caller's to keep in range on jit */
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_gather_context(M, ctx, plan);
    LAUNCH(be, &plan[0], &corpus, &pos, &idx, &target);
    return ARB_OK;
}

arb_status arb_jit_sample_positions(arb_backend *be, uint64_t seed, const int64_t *step_counter,
                                    int64_t lo, int64_t hi, int64_t M, int64_t *pos)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_sample_positions(M, plan);
    unsigned long long seed_arg = seed;
    long long lo_arg = lo, hi_arg = hi;
    LAUNCH(be, &plan[0], &seed_arg, &step_counter, &lo_arg, &hi_arg, &pos);
    return ARB_OK;
}

arb_status arb_jit_step_advance(arb_backend *be, int64_t *step_counter)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_step_advance(plan);
    LAUNCH(be, &plan[0], &step_counter);
    return ARB_OK;
}

arb_status arb_jit_relu_fwd(arb_backend *be, const float *z, float *h, int64_t n, int residual)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_relu_fwd(n, residual, plan);
    LAUNCH(be, &plan[0], &z, &h);
    return ARB_OK;
}

arb_status arb_jit_relu_bwd(arb_backend *be, const float *gh, const float *z, float *gz,
                            int64_t n)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_relu_bwd(n, plan);
    LAUNCH(be, &plan[0], &gh, &z, &gz);
    return ARB_OK;
}

arb_status arb_jit_add(arb_backend *be, float *a, const float *b, int64_t n)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_add(n, plan);
    LAUNCH(be, &plan[0], &a, &b);
    return ARB_OK;
}

arb_status arb_jit_xent_fwd(arb_backend *be, const float *logits, const int32_t *target,
                            int64_t M, int64_t V, float *loss_sum, int32_t *guard)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_xent_fwd(M, V, plan);
    arb_status st = zero(be, DPTR(loss_sum), 1);
    if (st)
        return st;
    LAUNCH(be, &plan[0], &logits, &target, &loss_sum, &guard);
    return ARB_OK;
}

arb_status arb_jit_xent_bwd(arb_backend *be, const float *logits, const int32_t *target,
                            int64_t M, int64_t V, float *glogits)
{
    arb_spec plan[ARB_PLAN_MAX];
    arb_plan_xent_bwd(M, V, plan);
    LAUNCH(be, &plan[0], &logits, &target, &glogits);
    return ARB_OK;
}
