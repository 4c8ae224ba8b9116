/*
 * test_train_vote.c - the data-parallel vote on the cpu backend: R ranks
 * are threads of this process, each with its own backend and model, and a
 * plain in-memory sum (behind barriers) stands in for NCCL's all-reduce.
 *
 * - Where all ranks agree (the same batch on every rank), R ranks end
 *   byte-identical to one rank trained on that batch alone: the vote of R
 *   equal signs is that sign, and R equal scores sum to the same sign.
 * - With different batches per rank, every rank holds byte-identical state
 *   after every step, and the state does move.
 * - A non-finite loss on one rank stops every rank's update.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "vote.h"

enum { RANKS = 3, STEPS = 6, MAX_SUM = 1 << 20 };

/* ---- the simulated all-reduce --------------------------------------------- */

typedef struct sim_group {
    pthread_barrier_t barrier;
    pthread_mutex_t lock;
    double acc[MAX_SUM]; /* exact for the few terms summed here */
} sim_group;

typedef struct sim_rank {
    sim_group *group;
    int rank;
} sim_rank;

/* All ranks arrive; rank 0 clears; each adds its buffer; all read the sum.
 * The first barrier also keeps a rank from clearing while another still
 * reads the previous sum. */
#define SIM_SUM(name, type)                                                                        \
    static arb_status name(void *ctx, type *buf, size_t count, arb_err *err)                      \
    {                                                                                              \
        sim_rank *me = ctx;                                                                        \
        sim_group *g = me->group;                                                                  \
        if (count > MAX_SUM)                                                                       \
            return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "sum of %zu elements", count);              \
        pthread_barrier_wait(&g->barrier);                                                         \
        if (me->rank == 0)                                                                         \
            memset(g->acc, 0, count * sizeof(double));                                             \
        pthread_barrier_wait(&g->barrier);                                                         \
        pthread_mutex_lock(&g->lock);                                                              \
        for (size_t i = 0; i < count; i++)                                                         \
            g->acc[i] += (double)buf[i];                                                           \
        pthread_mutex_unlock(&g->lock);                                                            \
        pthread_barrier_wait(&g->barrier);                                                         \
        for (size_t i = 0; i < count; i++)                                                         \
            buf[i] = (type)g->acc[i];                                                              \
        return ARB_OK;                                                                             \
    }

SIM_SUM(sim_sum_i8, int8_t)
SIM_SUM(sim_sum_i32, int32_t)
SIM_SUM(sim_sum_f32, float)

/* ---- fixtures ----------------------------------------------------------------- */

static uint8_t *corpus;
static int64_t corpus_len, train_len;

/* Text with structure (so gradients are not noise): repeated words. */
static void make_corpus(void)
{
    static const char *const words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ",
                                        "dogs ", "run ", "fast ", "and ", "far. "};
    corpus_len = 40000;
    corpus = malloc((size_t)corpus_len);
    cr_assert_not_null(corpus);
    uint64_t z = 12345;
    int64_t i = 0;
    while (i < corpus_len) {
        z = z * 6364136223846793005ULL + 1442695040888963407ULL;
        const char *w = words[(z >> 33) % (sizeof(words) / sizeof(words[0]))];
        for (const char *p = w; *p && i < corpus_len; p++)
            corpus[i++] = (uint8_t)*p;
    }
    train_len = corpus_len * 95 / 100;
}

static void free_corpus(void) { free(corpus); }

TestSuite(vote, .init = make_corpus, .fini = free_corpus);

typedef struct rank_state {
    arb_backend *be;
    train_model model;
    train_vote vote;
    sim_rank sim;
    uint64_t batch_seed;
    int poison_step; /* 1-based step whose loss this rank makes NaN, or 0 */
    arb_status result[STEPS];
    char hash[STEPS][65];
} rank_state;

static train_rule default_rule(void)
{
    train_rule rule;
    memset(&rule, 0, sizeof(rule));
    rule.theta = rule.theta_start = rule.theta_end = 2; /* low: flips within a few steps */
    rule.phi = 2;
    rule.e_layers = TRAIN_E_EMB | TRAIN_E_HIDDEN | TRAIN_E_OUT;
    rule.e_score = ARB_E_SCORE_GRAD;
    return rule;
}

static void open_rank(rank_state *r, sim_group *group, int rank, int world)
{
    arb_backend_options opt;
    arb_backend_options_init(&opt);
    opt.kind = ARB_BACKEND_CPU;
    opt.threads = 1;
    arb_err err = {0};
    cr_assert_eq(arb_backend_open(&r->be, &opt, NULL, 0, &err), ARB_OK, "%s", err.msg);
    train_model_config cfg;
    cr_assert(train_model_config_named("tiny", &cfg));
    cfg.batch = 32;
    cr_assert_eq(train_model_create(&r->model, r->be, &cfg, 8, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(train_model_init(&r->model, 7, &err), ARB_OK, "%s", err.msg);
    if (world > 1) {
        cr_assert_eq(train_model_enable_vote(&r->model, &err), ARB_OK, "%s", err.msg);
        r->sim.group = group;
        r->sim.rank = rank;
        r->vote = (train_vote){rank, world, &r->sim, sim_sum_i8, sim_sum_i32, sim_sum_f32};
    }
}

static void close_rank(rank_state *r)
{
    train_model_destroy(&r->model);
    arb_backend_close(r->be);
}

static const train_rule *the_rule;

static void *run_rank(void *arg)
{
    rank_state *r = arg;
    const train_vote *vote = r->vote.world > 1 ? &r->vote : NULL;
    for (int step = 0; step < STEPS; step++) {
        arb_err err = {0};
        r->result[step] =
            train_model_step(&r->model, the_rule, r->batch_seed, step, corpus, corpus_len,
                             train_len, step % 8, r->poison_step == step + 1, vote, &err);
        if (train_model_state_sha256(&r->model, r->hash[step], &err) != ARB_OK)
            r->hash[step][0] = '\0';
        if (r->result[step] != ARB_OK && r->result[step] != ARB_ERR_NONFINITE)
            break;
    }
    return NULL;
}

static void run_ranks(rank_state *ranks, int world, sim_group *group)
{
    pthread_barrier_init(&group->barrier, NULL, (unsigned)world);
    pthread_mutex_init(&group->lock, NULL);
    pthread_t threads[RANKS];
    for (int r = 0; r < world; r++)
        cr_assert_eq(pthread_create(&threads[r], NULL, run_rank, &ranks[r]), 0);
    for (int r = 0; r < world; r++)
        pthread_join(threads[r], NULL);
    pthread_barrier_destroy(&group->barrier);
    pthread_mutex_destroy(&group->lock);
}

static sim_group *shared_group(void)
{
    static sim_group *g;
    if (!g)
        g = calloc(1, sizeof(*g));
    return g;
}

/* Open the RANKS ranks of the shared group, rank r drawing its batches from
 * seed0 + r * stride (stride 0: every rank the same batches). */
static sim_group *open_ranks(rank_state *ranks, uint64_t seed0, uint64_t stride)
{
    memset(ranks, 0, RANKS * sizeof(*ranks));
    sim_group *group = shared_group();
    for (int r = 0; r < RANKS; r++) {
        open_rank(&ranks[r], group, r, RANKS);
        ranks[r].batch_seed = seed0 + (uint64_t)r * stride;
    }
    return group;
}

static void close_ranks(rank_state *ranks)
{
    for (int r = 0; r < RANKS; r++)
        close_rank(&ranks[r]);
}

/* One rank alone (no exchange: the fused direct update) on the batches of
 * `seed`, run through every step. */
static void run_alone(rank_state *single, uint64_t seed)
{
    memset(single, 0, sizeof(*single));
    open_rank(single, NULL, 0, 1);
    single->batch_seed = seed;
    run_rank(single);
}

/* ---- tests ------------------------------------------------------------------------- */

Test(vote, ranks_that_agree_equal_one_rank_on_the_union_batch)
{
    train_rule rule = default_rule();
    the_rule = &rule;
    rank_state single;
    run_alone(&single, 99);

    /* Three ranks, the same batches: a union batch on which all agree. */
    static rank_state ranks[RANKS];
    sim_group *group = open_ranks(ranks, 99, 0);
    run_ranks(ranks, RANKS, group);
    for (int step = 0; step < STEPS; step++) {
        cr_assert_eq(single.result[step], ARB_OK);
        for (int r = 0; r < RANKS; r++) {
            cr_assert_eq(ranks[r].result[step], ARB_OK, "rank %d step %d", r, step + 1);
            cr_assert_str_eq(ranks[r].hash[step], single.hash[step],
                             "rank %d differs from the single rank after step %d", r, step + 1);
        }
    }
    cr_assert_str_neq(single.hash[0], single.hash[STEPS - 1], "the state never moved");
    close_rank(&single);
    close_ranks(ranks);
}

Test(vote, ranks_with_their_own_batches_hold_identical_state)
{
    train_rule rule = default_rule();
    the_rule = &rule;
    static rank_state ranks[RANKS];
    sim_group *group = open_ranks(ranks, 1000, 1); /* different data per rank */
    run_ranks(ranks, RANKS, group);
    for (int step = 0; step < STEPS; step++)
        for (int r = 0; r < RANKS; r++) {
            cr_assert_eq(ranks[r].result[step], ARB_OK);
            cr_assert_str_eq(ranks[r].hash[step], ranks[0].hash[step],
                             "rank %d's state differs from rank 0's after step %d", r, step + 1);
        }
    cr_assert_str_neq(ranks[0].hash[0], ranks[0].hash[STEPS - 1], "the state never moved");

    /* The vote is not the single-rank update of rank 0's batch alone. */
    rank_state single;
    run_alone(&single, 1000);
    cr_assert_str_neq(single.hash[STEPS - 1], ranks[0].hash[STEPS - 1],
                      "different batches voted exactly like one batch: no exchange happened?");
    close_rank(&single);
    close_ranks(ranks);
}

Test(vote, a_nonfinite_loss_on_one_rank_stops_every_rank)
{
    train_rule rule = default_rule();
    the_rule = &rule;
    static rank_state ranks[RANKS];
    sim_group *group = open_ranks(ranks, 2000, 1);
    ranks[1].poison_step = 3;
    run_ranks(ranks, RANKS, group);
    for (int r = 0; r < RANKS; r++) {
        cr_assert_eq(ranks[r].result[0], ARB_OK);
        cr_assert_eq(ranks[r].result[2], ARB_ERR_NONFINITE,
                     "rank %d went on updating after rank 1's loss was NaN", r);
        cr_assert_str_eq(ranks[r].hash[2], ranks[r].hash[1],
                         "rank %d's state changed in the step whose loss was NaN", r);
    }
    close_ranks(ranks);
}
