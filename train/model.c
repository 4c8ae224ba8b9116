/*
 * model.c - parameters, initialization, the training step and evaluation of
 * the byte-level ternary LM (model.h), through the op API only.
 */
#include "arb/sha256.h"
#include "model.h"
#include "vote.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/ops.h"

arb_status train_backend_fail(arb_backend *be, arb_status st, arb_err *err, const char *what)
{
    const char *msg = be ? arb_backend_errmsg(be) : "";
    if (msg && msg[0])
        return ARB_FAIL(err, st, "%s: %s", what, msg);
    return ARB_FAIL(err, st, "%s: %s", what, arb_status_str(st));
}

/* Run an op; on failure record the backend's message and jump to `done`. */
#define OP(expr)                                                                                   \
    do {                                                                                           \
        st = (expr);                                                                               \
        if (st != ARB_OK) {                                                                        \
            train_backend_fail(m->be, st, err, #expr);                                             \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* ---- allocation ------------------------------------------------------------ */

static arb_status alloc(train_model *m, void **p, size_t bytes, arb_err *err)
{
    arb_status st = arb_backend_alloc(m->be, bytes, p);
    if (st != ARB_OK)
        return train_backend_fail(m->be, st, err, "allocating model memory");
    return ARB_OK;
}

static void add_tensor(train_model *m, const char *name, train_dtype dtype, int64_t d0,
                       int64_t d1, size_t bytes, void *data)
{
    train_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->dtype = dtype;
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->bytes = bytes;
    t->data = data;
}

/* A weight N x K with group size gs; `trainable` adds the accumulators.
 * Registers its tensors under `prefix` in checkpoint order. */
static arb_status alloc_weight(train_model *m, arb_ternary *W, const char *prefix, int64_t N,
                               int64_t K, int64_t gs, int trainable, arb_err *err)
{
    arb_status st;
    size_t count = (size_t)(N * K), groups = arb_scale_groups(N, K, gs);
    W->N = N;
    W->K = K;
    W->gs = gs;
    if ((st = alloc(m, (void **)&W->T_packed, arb_packed_alloc_size(count), err)) ||
        (st = alloc(m, (void **)&W->E, groups, err)))
        return st;
    if (trainable && ((st = alloc(m, (void **)&W->T_accum, count, err)) ||
                      (st = alloc(m, (void **)&W->E_accum, groups, err))))
        return st;
    char name[TRAIN_TENSOR_NAME_MAX];
    snprintf(name, sizeof(name), "%s.T", prefix);
    add_tensor(m, name, TRAIN_DTYPE_TRIT5, N, K, arb_packed_size(count), W->T_packed);
    snprintf(name, sizeof(name), "%s.E", prefix);
    add_tensor(m, name, TRAIN_DTYPE_INT8, (int64_t)groups, 1, groups, W->E);
    if (trainable) {
        snprintf(name, sizeof(name), "%s.T_accum", prefix);
        add_tensor(m, name, TRAIN_DTYPE_INT8, N, K, count, W->T_accum);
        snprintf(name, sizeof(name), "%s.E_accum", prefix);
        add_tensor(m, name, TRAIN_DTYPE_INT8, (int64_t)groups, 1, groups, W->E_accum);
    }
    return ARB_OK;
}

static void free_weight(train_model *m, arb_ternary *W)
{
    arb_backend_free(m->be, W->T_packed);
    arb_backend_free(m->be, W->E);
    arb_backend_free(m->be, W->T_accum);
    arb_backend_free(m->be, W->E_accum);
    memset(W, 0, sizeof(*W));
}

arb_status train_model_create(train_model *m, arb_backend *be, const train_model_config *cfg,
                              int64_t loss_cap, arb_err *err)
{
    memset(m, 0, sizeof(*m));
    m->be = be;
    m->cfg = *cfg;
    m->in_dim = (int64_t)cfg->ctx * cfg->D;
    m->loss_cap = loss_cap;
    arb_status st = train_model_config_check(cfg, err);
    if (st != ARB_OK)
        return st;

    const int64_t M = cfg->batch, H = cfg->H, in = m->in_dim;
    const int64_t wide = in > H ? in : H;
    const size_t f = sizeof(float);
    char prefix[TRAIN_TENSOR_NAME_MAX];

    /* Checkpoint order: embed, then per layer norm and linear, then out. */
    if ((st = alloc_weight(m, &m->embed, "embed", TRAIN_VOCAB, cfg->D, cfg->gs, 1, err)))
        goto done;
    for (int l = 0; l < cfg->L; l++) {
        int64_t k = l == 0 ? in : H;
        snprintf(prefix, sizeof(prefix), "norm.%d", l);
        if ((st = alloc_weight(m, &m->norm[l], prefix, 1, k, cfg->gs, 0, err)))
            goto done;
        snprintf(prefix, sizeof(prefix), "linear.%d", l);
        if ((st = alloc_weight(m, &m->lin[l], prefix, H, k, cfg->gs, 1, err)))
            goto done;
    }
    if ((st = alloc_weight(m, &m->norm_out, "norm_out", 1, H, cfg->gs, 0, err)) ||
        (st = alloc_weight(m, &m->out, "out", TRAIN_VOCAB, H, cfg->gs, 1, err)))
        goto done;

    if ((st = alloc(m, (void **)&m->pos, (size_t)M * sizeof(int64_t), err)) ||
        (st = alloc(m, (void **)&m->idx, (size_t)(M * cfg->ctx) * sizeof(int32_t), err)) ||
        (st = alloc(m, (void **)&m->target, (size_t)M * sizeof(int32_t), err)) ||
        (st = alloc(m, (void **)&m->h[0], (size_t)(M * in) * f, err)))
        goto done;
    for (int l = 0; l < cfg->L; l++) {
        int64_t k = l == 0 ? in : H;
        if ((st = alloc(m, (void **)&m->h[l + 1], (size_t)(M * H) * f, err)) ||
            (st = alloc(m, (void **)&m->a[l], (size_t)(M * k) * f, err)) ||
            (st = alloc(m, (void **)&m->z[l], (size_t)(M * H) * f, err)))
            goto done;
    }
    if ((st = alloc(m, (void **)&m->a_out, (size_t)(M * H) * f, err)) ||
        (st = alloc(m, (void **)&m->logits, (size_t)(M * TRAIN_VOCAB) * f, err)) ||
        (st = alloc(m, (void **)&m->glogits, (size_t)(M * TRAIN_VOCAB) * f, err)) ||
        (st = alloc(m, (void **)&m->g_h, (size_t)(M * H) * f, err)) ||
        (st = alloc(m, (void **)&m->g_z, (size_t)(M * H) * f, err)) ||
        (st = alloc(m, (void **)&m->g_a, (size_t)(M * wide) * f, err)) ||
        (st = alloc(m, (void **)&m->g_in, (size_t)(M * wide) * f, err)) ||
        (st = alloc(m, (void **)&m->emb_acc, (size_t)(TRAIN_VOCAB * cfg->D) * f, err)) ||
        (st = alloc(m, (void **)&m->emb_s, (size_t)(TRAIN_VOCAB * cfg->D), err)) ||
        (st = alloc(m, (void **)&m->step_counter, sizeof(int64_t), err)) ||
        (st = alloc(m, (void **)&m->guard, sizeof(int32_t), err)) ||
        (st = alloc(m, (void **)&m->flips, sizeof(uint64_t), err)) ||
        (st = alloc(m, (void **)&m->losses, (size_t)loss_cap * f, err)))
        goto done;
done:
    if (st != ARB_OK)
        train_model_destroy(m);
    return st;
}

void train_model_destroy(train_model *m)
{
    if (!m->be)
        return;
    free_weight(m, &m->embed);
    for (int l = 0; l < TRAIN_MAX_LAYERS; l++) {
        free_weight(m, &m->norm[l]);
        free_weight(m, &m->lin[l]);
        arb_backend_free(m->be, m->h[l + 1]);
        arb_backend_free(m->be, m->a[l]);
        arb_backend_free(m->be, m->z[l]);
    }
    free_weight(m, &m->norm_out);
    free_weight(m, &m->out);
    void *bufs[] = {m->pos,     m->idx,     m->target,  m->h[0],    m->a_out,
                    m->logits,  m->glogits, m->g_h,     m->g_z,     m->g_a,
                    m->g_in,    m->emb_acc, m->emb_s,   m->step_counter, m->guard,
                    m->flips,   m->losses,  m->vote_s,  m->vote_scores};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        arb_backend_free(m->be, bufs[i]);
    memset(m, 0, sizeof(*m));
}

arb_status train_model_enable_vote(train_model *m, arb_err *err)
{
    /* Room for the largest weight: its signs, and its groups' scores. */
    const arb_ternary *ws[TRAIN_MAX_LAYERS + 2];
    int n = 0;
    ws[n++] = &m->embed;
    ws[n++] = &m->out;
    for (int l = 0; l < m->cfg.L; l++)
        ws[n++] = &m->lin[l];
    size_t signs = 0, groups = 0;
    for (int i = 0; i < n; i++) {
        size_t nk = (size_t)(ws[i]->N * ws[i]->K);
        size_t g = arb_scale_groups(ws[i]->N, ws[i]->K, ws[i]->gs);
        signs = nk > signs ? nk : signs;
        groups = g > groups ? g : groups;
    }
    arb_status st = alloc(m, (void **)&m->vote_s, signs, err);
    if (!st)
        st = alloc(m, (void **)&m->vote_scores, groups * sizeof(float), err);
    return st;
}

int64_t train_model_parameters(const train_model *m)
{
    int64_t n = m->embed.N * m->embed.K + m->out.N * m->out.K;
    for (int l = 0; l < m->cfg.L; l++)
        n += m->lin[l].N * m->lin[l].K;
    return n;
}

/* ---- initialization --------------------------------------------------------- */

/* A counter-based generator: value i of stream s under a seed. Streams keep
 * tensors independent of each other's sizes. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rng_at(uint64_t seed, uint64_t stream, uint64_t i)
{
    return mix64(mix64(seed + 0x9E3779B97F4A7C15ULL * (stream + 1)) + i * 0xD1B54A32D192ED03ULL);
}

/* E = round(-1/2 * log2(fan_in * 2/3)): unit output variance for unit input
 * variance with T uniform over {-1,0,1} (variance 2/3). */
static int e_init(int64_t fan_in)
{
    long e = lround(-0.5 * log2((double)fan_in * 2.0 / 3.0));
    if (e < ARB_E_MIN)
        e = ARB_E_MIN;
    if (e > ARB_E_MAX)
        e = ARB_E_MAX;
    return (int)e;
}

/* Fill one weight on the host and upload it. frozen: T = +1, E = 0. */
static arb_status init_weight(train_model *m, arb_ternary *W, uint64_t seed, uint64_t stream,
                              int64_t fan_in, int frozen, arb_err *err)
{
    size_t count = (size_t)(W->N * W->K), groups = arb_scale_groups(W->N, W->K, W->gs);
    size_t packed_alloc = arb_packed_alloc_size(count);
    int8_t *T = malloc(count), *E = malloc(groups), *Ta = NULL, *Ea = NULL;
    uint8_t *packed = calloc(packed_alloc, 1); /* bytes past the trits stay 0 */
    arb_status st = ARB_OK;
    if (!T || !E || !packed) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory initializing a %lldx%lld weight",
                      (long long)W->N, (long long)W->K);
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        T[i] = frozen ? 1 : (int8_t)((int)(rng_at(seed, stream, i) % 3) - 1);
    arb_ternary_pack(T, count, packed);
    memset(E, frozen ? 0 : e_init(fan_in), groups);
    OP(arb_backend_upload(m->be, W->T_packed, packed, packed_alloc));
    OP(arb_backend_upload(m->be, W->E, E, groups));
    if (W->T_accum) {
        /* T_accum uniform in [-2, 2] breaks the step-2 mass flip (seeds). */
        Ta = malloc(count);
        Ea = calloc(groups, 1);
        if (!Ta || !Ea) {
            st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory initializing accumulators");
            goto done;
        }
        for (size_t i = 0; i < count; i++)
            Ta[i] = (int8_t)((int)(rng_at(seed, stream + 1000, i) % 5) - 2);
        OP(arb_backend_upload(m->be, W->T_accum, Ta, count));
        OP(arb_backend_upload(m->be, W->E_accum, Ea, groups));
    }
done:
    free(T);
    free(E);
    free(Ta);
    free(Ea);
    free(packed);
    return st;
}

arb_status train_model_init(train_model *m, uint64_t seed, arb_err *err)
{
    arb_status st;
    /* The embedding's fan-in is 1: unit-variance rows feed the first RMSNorm. */
    if ((st = init_weight(m, &m->embed, seed, 0, 1, 0, err)))
        return st;
    for (int l = 0; l < m->cfg.L; l++) {
        if ((st = init_weight(m, &m->norm[l], seed, 0, 1, 1, err)) ||
            (st = init_weight(m, &m->lin[l], seed, (uint64_t)(1 + l), m->lin[l].K, 0, err)))
            return st;
    }
    if ((st = init_weight(m, &m->norm_out, seed, 0, 1, 1, err)) ||
        (st = init_weight(m, &m->out, seed, 100, m->out.K, 0, err)))
        return st;
    return train_model_set_step(m, 0, err);
}

arb_status train_model_set_step(train_model *m, int64_t step, arb_err *err)
{
    arb_status st;
    int32_t zero = 0;
    OP(arb_backend_upload(m->be, m->step_counter, &step, sizeof(step)));
    OP(arb_backend_upload(m->be, m->guard, &zero, sizeof(zero)));
done:
    return st;
}

/* ---- forward ------------------------------------------------------------------ */

/* Forward of M rows at positions pos of a corpus: leaves h, a, z, a_out and
 * logits for backward, and writes the summed loss to *loss. */
static arb_status forward(train_model *m, const uint8_t *corpus, int64_t corpus_len,
                          const int64_t *pos, int64_t M, float *loss, int32_t *guard,
                          int poison, arb_err *err)
{
    arb_status st;
    arb_backend *be = m->be;
    const train_model_config *c = &m->cfg;
    const int64_t H = c->H;
    OP(arb_op_gather_context(be, corpus, corpus_len, pos, M, c->ctx, m->idx, m->target));
    OP(arb_op_embed_fwd(be, &m->embed, m->idx, m->h[0], M * c->ctx));
    for (int l = 0; l < c->L; l++) {
        OP(arb_op_rmsnorm_fwd(be, &m->norm[l], m->h[l], m->a[l], M));
        OP(arb_op_ternary_fwd(be, &m->lin[l], m->a[l], m->z[l], M));
        if (l == 0) {
            OP(arb_op_relu_fwd(be, m->z[l], m->h[l + 1], M * H, 0));
        } else {
            /* h_{l+1} = h_l + relu(z_l): h_l stays for rmsnorm_bwd. */
            OP(arb_backend_copy(be, m->h[l + 1], m->h[l], (size_t)(M * H) * sizeof(float)));
            OP(arb_op_relu_fwd(be, m->z[l], m->h[l + 1], M * H, 1));
        }
    }
    OP(arb_op_rmsnorm_fwd(be, &m->norm_out, m->h[c->L], m->a_out, M));
    OP(arb_op_ternary_fwd(be, &m->out, m->a_out, m->logits, M));
    if (poison) {
        /* Test hook (ARB_TEST_FORCE_NAN_STEP): one NaN logit makes the loss
         * NaN through the real path (xent_fwd sets the guard). */
        const float nan = NAN;
        OP(arb_backend_upload(be, m->logits, &nan, sizeof(nan)));
    }
    OP(arb_op_xent_fwd(be, m->logits, m->target, M, TRAIN_VOCAB, loss, guard));
done:
    return st;
}

/* ---- the step ------------------------------------------------------------------ */

static int voting(const train_vote *vote) { return vote && vote->world > 1; }

/* The update of one linear weight from its output gradient gy [M,N] and
 * input x [M,K]. One rank: the fused direct update. Several: the vote of
 * vote.h - local signs summed over ranks, T stepped by their sign, then E
 * from summed scores (sign scores of summed signs are the sum of the ranks'
 * sign scores, since every rank holds the same T). */
static arb_status update_linear(train_model *m, arb_ternary *W, const float *gy, const float *x,
                                int64_t M, const arb_update_rule *rule, const train_vote *vote,
                                arb_err *err)
{
    arb_status st;
    arb_backend *be = m->be;
    if (!voting(vote)) {
        OP(arb_op_ternary_update_direct(be, W, gy, x, M, rule, m->guard, m->flips));
        return ARB_OK;
    }
    const size_t nk = (size_t)(W->N * W->K), groups = arb_scale_groups(W->N, W->K, W->gs);
    OP(arb_op_grad_sign(be, gy, x, m->vote_s, M, W->N, W->K));
    if ((st = vote->sum_i8(vote->ctx, m->vote_s, nk, err)))
        return st;
    OP(arb_op_ternary_step(be, W, m->vote_s, rule->theta, m->guard, m->flips));
    if (rule->phi > 0) {
        if (rule->score == ARB_E_SCORE_SIGN) {
            OP(arb_op_update_E_scores(be, W, m->vote_s, NULL, ARB_E_SCORE_SIGN, m->vote_scores));
        } else {
            OP(arb_op_update_E_scores_direct(be, W, gy, x, M, ARB_E_SCORE_GRAD, m->vote_scores));
            if ((st = vote->sum_f32(vote->ctx, m->vote_scores, groups, err)))
                return st;
        }
        OP(arb_op_update_E_apply(be, W, m->vote_scores, rule->phi, m->guard));
    }
done:
    return st;
}

/* The embedding's update from embed_bwd's accumulator and signs. */
static arb_status update_embed(train_model *m, int theta, int phi, arb_e_score score,
                               const train_vote *vote, arb_err *err)
{
    arb_status st;
    arb_backend *be = m->be;
    arb_ternary *W = &m->embed;
    const size_t vd = (size_t)(W->N * W->K), groups = arb_scale_groups(W->N, W->K, W->gs);
    if (voting(vote) && (st = vote->sum_i8(vote->ctx, m->emb_s, vd, err)))
        return st;
    OP(arb_op_ternary_step(be, W, m->emb_s, theta, m->guard, m->flips));
    if (phi <= 0)
        return ARB_OK;
    if (!voting(vote)) {
        OP(arb_op_update_E(be, W, m->emb_s, m->emb_acc, phi, score, m->guard));
        return ARB_OK;
    }
    OP(arb_op_update_E_scores(be, W, m->emb_s, m->emb_acc, score, m->vote_scores));
    if (score == ARB_E_SCORE_GRAD && (st = vote->sum_f32(vote->ctx, m->vote_scores, groups, err)))
        return st;
    OP(arb_op_update_E_apply(be, W, m->vote_scores, phi, m->guard));
done:
    return st;
}

arb_status train_model_step(train_model *m, const train_rule *rule, uint64_t seed, int64_t step,
                            const uint8_t *corpus, int64_t corpus_len, int64_t train_len,
                            int64_t slot, int poison, const train_vote *vote, arb_err *err)
{
    arb_status st;
    arb_backend *be = m->be;
    const train_model_config *c = &m->cfg;
    const int64_t M = c->batch, H = c->H;
    const int theta = train_rule_theta_at(rule, step);
    float *loss = m->losses + slot;

    OP(arb_backend_memset(be, m->flips, 0, sizeof(uint64_t)));
    OP(arb_op_sample_positions(be, seed, m->step_counter, c->ctx, train_len, M, m->pos));
    if ((st = forward(m, corpus, corpus_len, m->pos, M, loss, m->guard, poison, err)))
        goto done;
    /* A non-finite loss on any rank stops every rank's update. */
    if (voting(vote) && (st = vote->sum_i32(vote->ctx, m->guard, 1, err)))
        goto done;

    if (arb_backend_kind_of(be) == ARB_BACKEND_CPU) {
        /* The cpu backend can look now: stop before backward. */
        int32_t guard = 0;
        float value = 0.0f;
        OP(arb_backend_download(be, &guard, m->guard, sizeof(guard)));
        OP(arb_backend_download(be, &value, loss, sizeof(value)));
        if (guard) {
            st = ARB_FAIL(err, ARB_ERR_NONFINITE, "the loss of step %lld is %g (not finite)",
                          (long long)(step + 1), (double)value);
            goto done;
        }
    }

    /* Backward. Output layer: its grad_x reads W_out before the update. */
    arb_update_rule hidden_rule = {theta, train_rule_phi_for(rule, TRAIN_E_HIDDEN), rule->e_score};
    arb_update_rule out_rule = {theta, train_rule_phi_for(rule, TRAIN_E_OUT), rule->e_score};
    OP(arb_op_xent_bwd(be, m->logits, m->target, M, TRAIN_VOCAB, m->glogits));
    OP(arb_op_ternary_grad_x(be, &m->out, m->glogits, m->g_a, M));
    if ((st = update_linear(m, &m->out, m->glogits, m->a_out, M, &out_rule, vote, err)))
        goto done;
    OP(arb_op_rmsnorm_bwd(be, &m->norm_out, m->h[c->L], m->g_a, m->g_h, M));

    for (int l = c->L - 1; l >= 0; l--) {
        /* g_h holds dL/dh_{l+1}. */
        OP(arb_op_relu_bwd(be, m->g_h, m->z[l], m->g_z, M * H));
        OP(arb_op_ternary_grad_x(be, &m->lin[l], m->g_z, m->g_a, M));
        if ((st = update_linear(m, &m->lin[l], m->g_z, m->a[l], M, &hidden_rule, vote, err)))
            goto done;
        if (l > 0) {
            /* h_{l+1} = h_l + relu(z_l): dL/dh_l = g_h + rmsnorm_bwd(...). */
            OP(arb_op_rmsnorm_bwd(be, &m->norm[l], m->h[l], m->g_a, m->g_in, M));
            OP(arb_op_add(be, m->g_h, m->g_in, M * H));
        } else {
            OP(arb_op_rmsnorm_bwd(be, &m->norm[0], m->h[0], m->g_a, m->g_in, M));
        }
    }

    /* Embedding: g_in is dL/dh_0 = [M*ctx, D] rows, one per looked-up byte. */
    OP(arb_op_embed_bwd(be, &m->embed, m->idx, m->g_in, M * c->ctx, m->emb_acc, m->emb_s));
    if ((st = update_embed(m, theta, train_rule_phi_for(rule, TRAIN_E_EMB), rule->e_score, vote,
                           err)))
        goto done;
    OP(arb_op_step_advance(be, m->step_counter));
done:
    return st;
}

arb_status train_model_step_graph(train_model *m, const train_rule *rule, uint64_t seed,
                                  int64_t step, const uint8_t *corpus, int64_t corpus_len,
                                  int64_t train_len, int64_t slot, arb_err *err)
{
    arb_status st;
    arb_backend *be = m->be;
    const int theta = train_rule_theta_at(rule, step);
    if (!m->graph_ready || m->graph_theta != theta) {
        OP(arb_backend_graph_begin(be));
        st = train_model_step(m, rule, seed, step, corpus, corpus_len, train_len, 0, 0, NULL, err);
        /* End the capture even after a failure, so the stream works again. */
        arb_status end = arb_backend_graph_end(be);
        if (st)
            goto done;
        OP(end);
        m->graph_ready = 1;
        m->graph_theta = theta;
    }
    OP(arb_backend_graph_launch(be));
    if (slot != 0)
        OP(arb_backend_copy(be, m->losses + slot, m->losses, sizeof(float)));
done:
    return st;
}

/* ---- evaluation ---------------------------------------------------------------- */

arb_status train_model_eval(train_model *m, const uint8_t *corpus, int64_t corpus_len,
                            const int64_t *positions, int64_t count, float *batch_losses,
                            double *bpb, arb_err *err)
{
    arb_status st = ARB_OK;
    const int64_t M = m->cfg.batch, batches = (count + M - 1) / M;
    float *host = malloc((size_t)batches * sizeof(float));
    if (!host)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory for %lld evaluation losses",
                        (long long)batches);
    for (int64_t b = 0; b < batches; b++) {
        int64_t rows = count - b * M < M ? count - b * M : M;
        /* No guard: a bad evaluation must not block training's updates. */
        if ((st = forward(m, corpus, corpus_len, positions + b * M, rows, batch_losses + b, NULL,
                          0, err)))
            goto done;
    }
    OP(arb_backend_download(m->be, host, batch_losses, (size_t)batches * sizeof(float)));
    double sum = 0.0;
    for (int64_t b = 0; b < batches; b++)
        sum += host[b];
    *bpb = sum / (double)count / log(2.0);
done:
    free(host);
    return st;
}

arb_status train_model_batch_loss(train_model *m, uint64_t seed, const uint8_t *corpus,
                                  int64_t corpus_len, int64_t train_len, double *loss,
                                  arb_err *err)
{
    arb_status st;
    float sum = 0.0f;
    const int64_t M = m->cfg.batch;
    OP(arb_op_sample_positions(m->be, seed, m->step_counter, m->cfg.ctx, train_len, M, m->pos));
    if ((st = forward(m, corpus, corpus_len, m->pos, M, m->losses, NULL, 0, err)))
        goto done;
    OP(arb_backend_download(m->be, &sum, m->losses, sizeof(sum)));
    *loss = (double)sum / (double)M;
done:
    return st;
}

arb_status train_model_state_sha256(train_model *m, char hex[65], arb_err *err)
{
    arb_sha256_ctx ctx;
    arb_sha256_init(&ctx);
    for (int i = 0; i < m->n_tensors; i++) {
        const train_tensor *t = &m->tensors[i];
        void *host = malloc(t->bytes ? t->bytes : 1);
        if (!host)
            return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory hashing %s", t->name);
        arb_status st = arb_backend_download(m->be, host, t->data, t->bytes);
        if (st != ARB_OK) {
            free(host);
            return train_backend_fail(m->be, st, err, "downloading the state");
        }
        arb_sha256_update(&ctx, host, t->bytes);
        free(host);
    }
    uint8_t digest[32];
    arb_sha256_final(&ctx, digest);
    arb_sha256_hex(digest, hex);
    return ARB_OK;
}
