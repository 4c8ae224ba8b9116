/*
 * backend_impl.h - the inside of arb_backend, shared by the dispatcher
 * (ops.c, backend.c) and the two implementations (cpu/, jit/).
 *
 * ops.c checks every argument once, backend-independently, then calls
 * arb_cpu_<stem> or arb_jit_<stem>. Implementations may assume checked
 * arguments: shapes valid, element counts below 2^31, pointers non-NULL
 * where the op needs them.
 */
#ifndef ARB_BACKEND_IMPL_H
#define ARB_BACKEND_IMPL_H

#include "arb/backend.h"
#include "arb/ops.h"

typedef struct arb_cpu_state arb_cpu_state;
typedef struct arb_jit_state arb_jit_state;

struct arb_backend {
    arb_backend_kind kind;   /* CPU or JIT, never AUTO once open */
    arb_precision precision; /* GEMM mode (jit) */
    arb_err err;             /* first error on this backend */
    arb_cpu_state *cpu;      /* set when kind == CPU */
    arb_jit_state *jit;      /* set when kind == JIT */
};

/* Record an error on the backend (first wins) and return its status. */
#define ARB_BE_FAIL(be, status, ...) ARB_FAIL(&(be)->err, (status), __VA_ARGS__)

/* Largest element count a single tensor may have: kernels index with int32. */
#define ARB_MAX_ELEMENTS 2147483647LL

/* The direct update implementations do all three direct ops: theta == 0
 * skips the T step, phi == 0 skips the E step. */

/* ---- cpu backend (engine/src/cpu) ---- */
arb_status arb_cpu_open(arb_backend *be, int threads);
void arb_cpu_close(arb_backend *be);
/* Grow-only scratch of at least `bytes`, owned by the backend. Not
 * re-entrant: one op at a time per backend. */
void *arb_cpu_scratch(arb_backend *be, size_t bytes);
int arb_cpu_threads(const arb_backend *be);

arb_status arb_cpu_ternary_fwd(arb_backend *be, const arb_ternary *W, const float *x, float *y,
                               int64_t M);
arb_status arb_cpu_ternary_grad_x(arb_backend *be, const arb_ternary *W, const float *gy,
                                  float *gx, int64_t M);
arb_status arb_cpu_grad_weight(arb_backend *be, const float *gy, const float *x, float *gW,
                               int64_t M, int64_t N, int64_t K);
arb_status arb_cpu_grad_sign(arb_backend *be, const float *gy, const float *x, int8_t *s,
                             int64_t M, int64_t N, int64_t K);
arb_status arb_cpu_ternary_step(arb_backend *be, arb_ternary *W, const int8_t *s, int theta,
                                uint64_t *flips);
arb_status arb_cpu_update_E(arb_backend *be, arb_ternary *W, const int8_t *s, const float *gW,
                            int phi, arb_e_score score);
arb_status arb_cpu_update_E_scores(arb_backend *be, const arb_ternary *W, const int8_t *s,
                                   const float *gW, arb_e_score score, float *scores);
arb_status arb_cpu_update_E_scores_direct(arb_backend *be, const arb_ternary *W, const float *gy,
                                          const float *x, int64_t M, arb_e_score score,
                                          float *scores);
arb_status arb_cpu_update_E_apply(arb_backend *be, arb_ternary *W, const float *scores, int phi);
arb_status arb_cpu_ternary_update_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                         const float *x, int64_t M, int theta, int phi,
                                         arb_e_score score, uint64_t *flips);
arb_status arb_cpu_rmsnorm_fwd(arb_backend *be, const arb_ternary *w, const float *x, float *out,
                               int64_t B);
arb_status arb_cpu_rmsnorm_bwd(arb_backend *be, const arb_ternary *w, const float *x,
                               const float *gy, float *gx, int64_t B);
arb_status arb_cpu_embed_fwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                             float *out, int64_t M);
arb_status arb_cpu_embed_bwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                             const float *gout, int64_t M, float *acc, int8_t *s);
arb_status arb_cpu_gather_context(arb_backend *be, const uint8_t *corpus, int64_t corpus_len,
                                  const int64_t *pos, int64_t M, int ctx, int32_t *idx,
                                  int32_t *target);
arb_status arb_cpu_sample_positions(arb_backend *be, uint64_t seed, const int64_t *step_counter,
                                    int64_t lo, int64_t hi, int64_t M, int64_t *pos);
arb_status arb_cpu_step_advance(arb_backend *be, int64_t *step_counter);
arb_status arb_cpu_relu_fwd(arb_backend *be, const float *z, float *h, int64_t n, int residual);
arb_status arb_cpu_relu_bwd(arb_backend *be, const float *gh, const float *z, float *gz,
                            int64_t n);
arb_status arb_cpu_add(arb_backend *be, float *a, const float *b, int64_t n);
arb_status arb_cpu_xent_fwd(arb_backend *be, const float *logits, const int32_t *target,
                            int64_t M, int64_t V, float *loss_sum, int32_t *guard);
arb_status arb_cpu_xent_bwd(arb_backend *be, const float *logits, const int32_t *target,
                            int64_t M, int64_t V, float *glogits);

/* ---- jit backend (engine/src/jit) ---- */
arb_status arb_jit_open(arb_backend *be, const arb_backend_options *opt);
void arb_jit_close(arb_backend *be);
arb_status arb_jit_alloc(arb_backend *be, size_t bytes, void **ptr);
void arb_jit_free(arb_backend *be, void *ptr);
arb_status arb_jit_upload(arb_backend *be, void *dst, const void *src, size_t bytes);
arb_status arb_jit_download(arb_backend *be, void *dst, const void *src, size_t bytes);
arb_status arb_jit_copy(arb_backend *be, void *dst, const void *src, size_t bytes);
arb_status arb_jit_memset(arb_backend *be, void *ptr, int byte, size_t bytes);
arb_status arb_jit_sync(arb_backend *be);
arb_status arb_jit_graph_begin(arb_backend *be);
arb_status arb_jit_graph_end(arb_backend *be);
arb_status arb_jit_graph_launch(arb_backend *be);
int arb_jit_graph_ready(const arb_backend *be);
/* The jit backend's stream (for collectives queued beside its ops). */
void *arb_jit_stream(arb_backend *be);
arb_status arb_jit_profile_enable(arb_backend *be, int on);
int arb_jit_profile_rows(arb_backend *be, arb_profile_row *rows, int max_rows);
void arb_jit_profile_reset(arb_backend *be);

arb_status arb_jit_ternary_fwd(arb_backend *be, const arb_ternary *W, const float *x, float *y,
                               int64_t M);
arb_status arb_jit_ternary_grad_x(arb_backend *be, const arb_ternary *W, const float *gy,
                                  float *gx, int64_t M);
arb_status arb_jit_grad_weight(arb_backend *be, const float *gy, const float *x, float *gW,
                               int64_t M, int64_t N, int64_t K);
arb_status arb_jit_grad_sign(arb_backend *be, const float *gy, const float *x, int8_t *s,
                             int64_t M, int64_t N, int64_t K);
arb_status arb_jit_ternary_step(arb_backend *be, arb_ternary *W, const int8_t *s, int theta,
                                const int32_t *guard, uint64_t *flips);
arb_status arb_jit_update_E(arb_backend *be, arb_ternary *W, const int8_t *s, const float *gW,
                            int phi, arb_e_score score, const int32_t *guard);
arb_status arb_jit_update_E_scores(arb_backend *be, const arb_ternary *W, const int8_t *s,
                                   const float *gW, arb_e_score score, float *scores);
arb_status arb_jit_update_E_scores_direct(arb_backend *be, const arb_ternary *W, const float *gy,
                                          const float *x, int64_t M, arb_e_score score,
                                          float *scores);
arb_status arb_jit_update_E_apply(arb_backend *be, arb_ternary *W, const float *scores, int phi,
                                  const int32_t *guard);
arb_status arb_jit_ternary_update_direct(arb_backend *be, arb_ternary *W, const float *gy,
                                         const float *x, int64_t M, int theta, int phi,
                                         arb_e_score score, const int32_t *guard,
                                         uint64_t *flips);
arb_status arb_jit_rmsnorm_fwd(arb_backend *be, const arb_ternary *w, const float *x, float *out,
                               int64_t B);
arb_status arb_jit_rmsnorm_bwd(arb_backend *be, const arb_ternary *w, const float *x,
                               const float *gy, float *gx, int64_t B);
arb_status arb_jit_embed_fwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                             float *out, int64_t M);
arb_status arb_jit_embed_bwd(arb_backend *be, const arb_ternary *table, const int32_t *idx,
                             const float *gout, int64_t M, float *acc, int8_t *s);
arb_status arb_jit_gather_context(arb_backend *be, const uint8_t *corpus, int64_t corpus_len,
                                  const int64_t *pos, int64_t M, int ctx, int32_t *idx,
                                  int32_t *target);
arb_status arb_jit_sample_positions(arb_backend *be, uint64_t seed, const int64_t *step_counter,
                                    int64_t lo, int64_t hi, int64_t M, int64_t *pos);
arb_status arb_jit_step_advance(arb_backend *be, int64_t *step_counter);
arb_status arb_jit_relu_fwd(arb_backend *be, const float *z, float *h, int64_t n, int residual);
arb_status arb_jit_relu_bwd(arb_backend *be, const float *gh, const float *z, float *gz,
                            int64_t n);
arb_status arb_jit_add(arb_backend *be, float *a, const float *b, int64_t n);
arb_status arb_jit_xent_fwd(arb_backend *be, const float *logits, const int32_t *target,
                            int64_t M, int64_t V, float *loss_sum, int32_t *guard);
arb_status arb_jit_xent_bwd(arb_backend *be, const float *logits, const int32_t *target,
                            int64_t M, int64_t V, float *glogits);

#endif /* ARB_BACKEND_IMPL_H */
