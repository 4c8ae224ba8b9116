/*
 * ops.h - the op API: one call per kernel of SPEC §3, on any backend.
 *
 * Shapes: x[M,K] activations, W an N x K ternary weight (arb_ternary),
 * y[M,N] outputs, all row-major fp32. Integer state is updated in place.
 * Pointers belong to the backend (see backend.h). Every op checks its
 * arguments before it does any work and returns ARB_ERR_INVALID_ARG or
 * ARB_ERR_UNSUPPORTED without touching memory when they do not fit.
 *
 * `guard` (may be NULL) is an int32 in backend memory: when it is nonzero,
 * update ops leave all state untouched. arb_op_xent_fwd sets it when the loss
 * is not finite, so a GPU step can refuse a bad update without a host sync.
 *
 * `flips` (may be NULL) is a uint64 counter in backend memory that
 * ternary_step adds the number of changed trits to.
 *
 * Stems: each op's name here is the kernel stem used by its template
 * (kernel_templates/<stem>.cu), its C reference (engine/src/cpu/<stem>.c),
 * its tests and its arb-bench row.
 */
#ifndef ARB_OPS_H
#define ARB_OPS_H

#include <stdint.h>

#include "arb/backend.h"
#include "arb/status.h"
#include "arb/ternary.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How update_E scores a group (SPEC §3). */
typedef enum arb_e_score {
    ARB_E_SCORE_GRAD = 0, /* score[g] = sum_{lin in g} gW * T  (default) */
    ARB_E_SCORE_SIGN = 1, /* score[g] = sum_{lin in g} s * T   (the seeds') */
} arb_e_score;

const char *arb_e_score_name(arb_e_score score);

/* The integer update rule of one weight. */
typedef struct arb_update_rule {
    int theta;         /* T flip threshold, 1..127 */
    int phi;           /* E threshold, 1..127; 0 = E frozen */
    arb_e_score score; /* how update_E scores a group */
} arb_update_rule;

/* ---- GEMMs ---------------------------------------------------------------- */

/* ternary_fwd: y[M,N] = x[M,K] . W^T, W[n,k] = T[n,k] * 2^E[(n*K+k)/gs]. */
arb_status arb_op_ternary_fwd(arb_backend *be, const arb_ternary *W, const float *x, float *y,
                              int64_t M);

/* ternary_grad_x: gx[M,K] = gy[M,N] . W. */
arb_status arb_op_ternary_grad_x(arb_backend *be, const arb_ternary *W, const float *gy,
                                 float *gx, int64_t M);

/* grad_weight: gW[N,K] = gy^T . x, the weight gradient, materialized. Used
 * by the two-pass update path and tests; the trainer uses the _direct ops. */
arb_status arb_op_grad_weight(arb_backend *be, const float *gy, const float *x, float *gW,
                              int64_t M, int64_t N, int64_t K);

/* grad_sign: s[N,K] = sign(gy^T . x) as int8, sign(0) = 0. */
arb_status arb_op_grad_sign(arb_backend *be, const float *gy, const float *x, int8_t *s,
                            int64_t M, int64_t N, int64_t K);

/* ---- Integer updates ------------------------------------------------------ */

/* ternary_step from s: with s = sign(s_in) (so a sum of ranks' signs votes),
 * a = T_accum - s; if a >= theta and T < 1: T += 1, a = 0;
 * else if a <= -theta and T > -1: T -= 1, a = 0; T_accum = clamp(a, -theta,
 * theta). T is repacked in place. Needs W->T_accum. */
arb_status arb_op_ternary_step(arb_backend *be, arb_ternary *W, const int8_t *s, int theta,
                               const int32_t *guard, uint64_t *flips);

/* update_E, after ternary_step, with the new T: score each group from gW
 * (mode grad; gW[N,K] float) or s (mode sign), then a = E_accum - sign(score);
 * a >= phi: E = min(E+1, E_MAX), a = 0; a <= -phi: E = max(E-1, E_MIN), a = 0;
 * E_accum = clamp(a, -phi, phi). The input the mode does not use may be NULL. */
arb_status arb_op_update_E(arb_backend *be, arb_ternary *W, const int8_t *s, const float *gW,
                           int phi, arb_e_score score, const int32_t *guard);

/* ternary_step_direct: ternary_step with s computed from gy[M,N] and x[M,K]
 * tile by tile; s[N,K] is never materialized. */
arb_status arb_op_ternary_step_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                      const float *x, int64_t M, int theta,
                                      const int32_t *guard, uint64_t *flips);

/* update_E_direct: update_E with gW (or s) computed from gy and x inside. */
arb_status arb_op_update_E_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                  const float *x, int64_t M, int phi, arb_e_score score,
                                  const int32_t *guard);

/* ternary_update_direct: the fused update the trainer uses: one pass
 * computing each gW tile, s, the T step, then the group scores with the new
 * T and the E step (skipped when rule->phi == 0). Identical to
 * ternary_step_direct followed by update_E_direct. */
arb_status arb_op_ternary_update_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                        const float *x, int64_t M, const arb_update_rule *rule,
                                        const int32_t *guard, uint64_t *flips);

/* update_E split in two, so data-parallel ranks can sum their scores in
 * between (the grad score of a union batch is the sum of the ranks' scores):
 * update_E_scores writes each group's score (mode grad from gW, sign from s)
 * with the current T into scores[N*K/gs] (fp32, backend memory, overwritten);
 * update_E_scores_direct does the same from gy and x without gW;
 * update_E_apply applies the E rule of update_E from scores. */
arb_status arb_op_update_E_scores(arb_backend *be, const arb_ternary *W, const int8_t *s,
                                  const float *gW, arb_e_score score, float *scores);
arb_status arb_op_update_E_scores_direct(arb_backend *be, const arb_ternary *W, const float *gy,
                                         const float *x, int64_t M, arb_e_score score,
                                         float *scores);
arb_status arb_op_update_E_apply(arb_backend *be, arb_ternary *W, const float *scores, int phi,
                                 const int32_t *guard);

/* ---- RMSNorm with a frozen ternary weight --------------------------------- */

/* rmsnorm_fwd: out[b,d] = x[b,d] / r_b * w[d], r_b = sqrt(mean_d x[b,d]^2 + 1e-6),
 * w = T * 2^E over a 1 x D weight (w->N == 1, w->K == D). */
arb_status arb_op_rmsnorm_fwd(arb_backend *be, const arb_ternary *w, const float *x, float *out,
                              int64_t B);

/* rmsnorm_bwd: gx = (gy*w - xhat * mean_d(xhat*gy*w)) / r, xhat = x / r. */
arb_status arb_op_rmsnorm_bwd(arb_backend *be, const arb_ternary *w, const float *x,
                              const float *gy, float *gx, int64_t B);

/* ---- Embedding ------------------------------------------------------------ */

/* embed_fwd: out[i,d] = W[idx_i, d] for a V x D ternary table (N = V, K = D).
 * Indices outside [0, V) are an error on cpu; jit kernels clamp nothing and
 * must be given valid indices. */
arb_status arb_op_embed_fwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                            float *out, int64_t M);

/* embed_bwd: acc[v,d] = sum_{i: idx_i = v} gout[i,d] (fp32 scatter-add into
 * `acc`, V x D, overwritten), then s = sign(acc) as int8 [V,D]. `acc` is the
 * gradient of the effective weight and feeds update_E's grad score. */
arb_status arb_op_embed_bwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                            const float *gout, int64_t M, float *acc, int8_t *s);

/* ---- Trainer glue --------------------------------------------------------- */

/* gather_context: for each of M positions p = pos[i] (ctx <= p < corpus_len),
 * idx[i*ctx + c] = corpus[p - ctx + c] and target[i] = corpus[p]. With idx
 * laid out so, embed_fwd over M*ctx indices yields the [M, ctx*D] input. */
arb_status arb_op_gather_context(arb_backend *be, const uint8_t *corpus, int64_t corpus_len,
                                 const int64_t *pos, int64_t M, int ctx, int32_t *idx,
                                 int32_t *target);

/* sample_positions: the training batch's positions, drawn on the backend so
 * that a step needs no host-to-device copy (and a captured CUDA graph draws
 * a fresh batch at every replay): for i < M,
 *     z = splitmix64(seed + step * 0x9E3779B97F4A7C15 + i * 0xD1B54A32D192ED03)
 *     pos[i] = lo + z % (hi - lo)
 * where step = *step_counter, an int64 in backend memory. Identical on every
 * backend (see arb_sample_position). */
arb_status arb_op_sample_positions(arb_backend *be, uint64_t seed, const int64_t *step_counter,
                                   int64_t lo, int64_t hi, int64_t M, int64_t *pos);

/* step_advance: *step_counter += 1 (in backend memory). */
arb_status arb_op_step_advance(arb_backend *be, int64_t *step_counter);

/* The position sample_positions draws for (seed, step, i), on the host. */
int64_t arb_sample_position(uint64_t seed, int64_t step, int64_t i, int64_t lo, int64_t hi);

/* relu_fwd: h = relu(z), or h += relu(z) when `residual` is nonzero. */
arb_status arb_op_relu_fwd(arb_backend *be, const float *z, float *h, int64_t n, int residual);

/* relu_bwd: gz = gh * (z > 0). */
arb_status arb_op_relu_bwd(arb_backend *be, const float *gh, const float *z, float *gz,
                           int64_t n);

/* add: a += b (the residual's backward joins two gradients). */
arb_status arb_op_add(arb_backend *be, float *a, const float *b, int64_t n);

/* xent_fwd: *loss_sum = sum_i (logsumexp(logits[i,:]) - logits[i, target_i])
 * over M rows of V logits. Sets *guard = 1 when the loss is not finite. */
arb_status arb_op_xent_fwd(arb_backend *be, const float *logits, const int32_t *target,
                           int64_t M, int64_t V, float *loss_sum, int32_t *guard);

/* xent_bwd: glogits = (softmax(logits) - onehot(target)) / M. */
arb_status arb_op_xent_bwd(arb_backend *be, const float *logits, const int32_t *target,
                           int64_t M, int64_t V, float *glogits);

#ifdef __cplusplus
}
#endif
#endif /* ARB_OPS_H */
