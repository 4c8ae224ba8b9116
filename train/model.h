/*
 * model.h - the byte-level ternary language model of SPEC §6 on one backend:
 * its integer parameters, their initialization, the activations a step
 * keeps, and the step itself (forward, loss, backward, integer updates),
 * all through the op API so that the cpu and jit backends run the same code.
 *
 *   h0 = concat_c Embed[b_{p-ctx+c}]           [M, ctx*D]
 *   for l in 0..L-1:
 *       a_l = RMSNorm_l(h_l); z_l = a_l W_l^T   [M, H]
 *       h_{l+1} = relu(z_l) if l == 0 else h_l + relu(z_l)
 *   logits = RMSNorm_out(h_L) W_out^T          [M, 256]
 *   loss = mean cross-entropy(logits, b_p)
 *
 * Invariants:
 *   - every parameter and every piece of optimizer state is integer (packed
 *     trits, int8 E / T_accum / E_accum) in backend memory; floats exist only
 *     as activations and gradients of the current step;
 *   - the host never synchronizes inside a step on jit: the batch is drawn
 *     on the device from (seed, step counter), the loss is written to a
 *     device slot, and a non-finite loss sets the device guard that turns
 *     every update of this and later steps into a no-op;
 *   - every grad_x reads its weight before that weight's update.
 */
#ifndef ARB_TRAIN_MODEL_H
#define ARB_TRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "arb/backend.h"
#include "arb/ternary.h"
#include "config.h"

/* Element types of checkpointed tensors (docs/checkpoint-format.md). */
typedef enum train_dtype {
    TRAIN_DTYPE_TRIT5 = 1, /* uint8 bytes, five packed trits each (SPEC §2) */
    TRAIN_DTYPE_INT8 = 2,  /* int8 */
} train_dtype;

#define TRAIN_TENSOR_NAME_MAX 32
#define TRAIN_MAX_TENSORS (4 * (TRAIN_MAX_LAYERS + 2) + 2 * (TRAIN_MAX_LAYERS + 1))

/* One integer tensor of the model's state, as the checkpoint sees it. */
typedef struct train_tensor {
    char name[TRAIN_TENSOR_NAME_MAX]; /* "embed.T", "linear.0.E_accum", ... */
    train_dtype dtype;
    int64_t dims[2];  /* logical shape: trits / scale groups */
    size_t bytes;     /* stored bytes (packed: ceil(dims[0]*dims[1]/5)) */
    void *data;       /* backend memory */
} train_tensor;

typedef struct train_model {
    arb_backend *be;
    train_model_config cfg;
    int64_t in_dim; /* ctx * D */

    /* Parameters (backend memory). norm weights are frozen: no accumulators. */
    arb_ternary embed;                   /* 256 x D */
    arb_ternary norm[TRAIN_MAX_LAYERS];  /* 1 x in_l */
    arb_ternary lin[TRAIN_MAX_LAYERS];   /* H x in_l */
    arb_ternary norm_out;                /* 1 x H */
    arb_ternary out;                     /* 256 x H */

    /* The step's tensors (backend memory), sized for cfg.batch rows. */
    int64_t *pos;     /* [M] positions of the batch */
    int32_t *idx;     /* [M*ctx] context bytes */
    int32_t *target;  /* [M] predicted bytes */
    float *h[TRAIN_MAX_LAYERS + 1]; /* h[0] [M, in_dim]; h[l>0] [M, H] */
    float *a[TRAIN_MAX_LAYERS];     /* normalized layer inputs */
    float *z[TRAIN_MAX_LAYERS];     /* pre-activations [M, H] */
    float *a_out;                   /* [M, H] */
    float *logits, *glogits;        /* [M, 256] */
    float *g_h;                     /* gradient w.r.t. the residual stream [M, H] */
    float *g_z;                     /* [M, H] */
    float *g_a;                     /* [M, max(in_dim, H)] */
    float *g_in;                    /* [M, max(in_dim, H)]: rmsnorm_bwd output */
    float *emb_acc;                 /* [256, D] fp32 scratch of embed_bwd */
    int8_t *emb_s;                  /* [256, D] signs of embed_bwd */

    int8_t *vote_s;        /* data-parallel only: summed signs [max N*K] (train_model_enable_vote) */
    float *vote_scores;    /* data-parallel only: summed E scores [max groups] */

    int64_t *step_counter; /* the 0-based index of the next step (sample_positions reads it) */
    int32_t *guard;        /* nonzero once a loss was not finite */
    uint64_t *flips;       /* trits changed by the current step */
    float *losses;         /* loss_cap summed losses of steps not yet read by the host */
    int64_t loss_cap;

    int graph_ready;       /* a captured CUDA graph of one step exists (jit) */
    int graph_theta;       /* the theta captured into it */

    train_tensor tensors[TRAIN_MAX_TENSORS]; /* the checkpointed state, in file order */
    int n_tensors;
} train_model;

/* Allocate everything on `be` for configuration `cfg`; loss_cap is how many
 * steps may pass between two host reads of the losses. */
arb_status train_model_create(train_model *m, arb_backend *be, const train_model_config *cfg,
                              int64_t loss_cap, arb_err *err);
void train_model_destroy(train_model *m);

/* SPEC §6 initialization from one seed, and the step counter set to 0. */
arb_status train_model_init(train_model *m, uint64_t seed, arb_err *err);

/* Parameter count (trits) of the model. */
int64_t train_model_parameters(const train_model *m);

/* Set the step counter (resume) and clear the guard. */
arb_status train_model_set_step(train_model *m, int64_t step, arb_err *err);

/* Allocate the buffers of the data-parallel vote (summed signs and scores). */
arb_status train_model_enable_vote(train_model *m, arb_err *err);

/* One training step, the step whose 0-based index is `step` (equal to the
 * device step counter). Writes the summed loss to m->losses[slot], zeroes
 * and then counts m->flips, and advances the step counter.
 * corpus/corpus_len: the whole corpus in backend memory (positions are drawn
 * from [ctx, train_len)). poison: test hook, make this step's loss NaN.
 * vote: NULL (or world 1) for one rank; else the updates follow the
 * majority vote of vote.h (needs train_model_enable_vote).
 * On cpu a non-finite loss stops the step before backward with
 * ARB_ERR_NONFINITE (the state untouched); on jit the guard does that. */
struct train_vote;
arb_status train_model_step(train_model *m, const train_rule *rule, uint64_t seed, int64_t step,
                            const uint8_t *corpus, int64_t corpus_len, int64_t train_len,
                            int64_t slot, int poison, const struct train_vote *vote,
                            arb_err *err);

/* The same step replayed from a CUDA graph (jit, one rank): the first call
 * (and any call whose theta differs from the captured one) captures one
 * step, every call launches it. The graph writes the loss to m->losses[0];
 * a device copy moves it to m->losses[slot]. Shapes, pointers and the seed
 * are frozen into the graph; the batch still changes every step, since
 * sample_positions reads the device step counter that the step advances.
 * Run one eager step first (it compiles and loads the kernels). */
arb_status train_model_step_graph(train_model *m, const train_rule *rule, uint64_t seed,
                                  int64_t step, const uint8_t *corpus, int64_t corpus_len,
                                  int64_t train_len, int64_t slot, arb_err *err);

/* Mean loss in bits per byte over `count` positions (backend memory) of a
 * corpus, in batches of at most cfg.batch rows through the training forward.
 * batch_losses: backend scratch of ceil(count / batch) floats. Synchronizes. */
arb_status train_model_eval(train_model *m, const uint8_t *corpus, int64_t corpus_len,
                            const int64_t *positions, int64_t count, float *batch_losses,
                            double *bpb, arb_err *err);

/* The mean loss (nats) of the batch the next step would train on, forward
 * only: no update, the step counter unchanged. Uses m->losses[0]. */
arb_status train_model_batch_loss(train_model *m, uint64_t seed, const uint8_t *corpus,
                                  int64_t corpus_len, int64_t train_len, double *loss,
                                  arb_err *err);

/* SHA-256 (hex) of every checkpointed tensor's bytes, in file order:
 * data-parallel ranks compare these to prove they hold identical state. */
arb_status train_model_state_sha256(train_model *m, char hex[65], arb_err *err);

/* Copy the backend's first error into err (status st) if err has none. */
arb_status train_backend_fail(arb_backend *be, arb_status st, arb_err *err, const char *what);

#endif /* ARB_TRAIN_MODEL_H */
