/*
 * main.c - arb-train: flags, orchestration and output.
 *
 * Order of a run: parse flags; read the --resume checkpoint and the corpus
 * (both validated before anything is written); open the backend and say
 * which and why; build the model (from the seed, or the checkpoint); print
 * the configuration and the unigram entropy baseline; train, with a line
 * per interval, evaluations, checkpoints; print the one `final:` line.
 *
 * Exit status (requirement 18 of the UX research): 0 success, 1 failure,
 * 2 bad flags or input (data, checkpoint), 3 non-finite loss (no checkpoint
 * written, the last one untouched), 130 interrupted (a checkpoint written
 * first when --checkpoint is set). main() is the only place that exits.
 *
 * On jit the host synchronizes only at read points (a log line, an
 * evaluation, a checkpoint, the loss buffer full, the end): the losses and
 * the guard are read there, and a set guard names the first bad step.
 *
 * Test hook: ARB_TEST_FORCE_NAN_STEP=N makes the loss of step N (1-based)
 * NaN by writing a NaN logit before xent_fwd, so the guard path runs for
 * real on both backends (tests/test_train.c, tests/test_gpu_train.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arb/backend.h"
#include "arb/engine.h"
#include "arb/ops.h"
#include "checkpoint.h"
#include "config.h"
#include "data.h"
#include "model.h"
#include "vote.h"
#include "progress.h"
#include "shapes_dump.h"

#ifndef ARB_TRAIN_VERSION
#define ARB_TRAIN_VERSION "0"
#endif

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_NONFINITE = 3,
    EXIT_INTERRUPTED = 130,
};

#define MAX_LOSS_SLOTS 1024 /* steps between two forced reads of the losses */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* A set of evaluation positions in backend memory. */
typedef struct eval_set {
    const uint8_t *corpus; /* backend memory */
    int64_t corpus_len;
    int64_t count;
    int64_t *pos;          /* backend memory, count entries */
    float *losses;         /* backend memory, one per batch */
} eval_set;

typedef struct run_state {
    train_options *opt;
    arb_backend *be;
    train_model model;
    int have_model;
    train_corpus corpus, extra;
    uint8_t *corpus_dev, *extra_dev;
    eval_set held, other;
    FILE *log;
    train_progress progress;
    int64_t start_step;
    double unigram;        /* entropy of the training bytes, bits per byte */
    double t_start;
    train_vote vote;       /* data-parallel ranks (vote.world > 1), else unused */
    int lead;              /* rank 0 (or the only rank): evaluates, logs, checkpoints */
    uint64_t batch_seed;   /* the seed this rank draws its batches from */
} run_state;

static const train_vote *rank_vote(const run_state *r)
{
    return r->vote.world > 1 ? &r->vote : NULL;
}

/* Ranks training at once: each step trains ranks() batches. */
static int ranks(const run_state *r)
{
    return r->vote.world > 1 ? r->vote.world : 1;
}

static void say(run_state *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An informational line on stdout (not with --quiet), under the bar. */
static void say(run_state *r, const char *fmt, ...)
{
    if (r->opt->quiet)
        return;
    train_progress_clear(&r->progress);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void warn(run_state *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(run_state *r, const char *fmt, ...)
{
    train_progress_clear(&r->progress);
    fputs("arb-train: warning: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- setup ------------------------------------------------------------------ */

static arb_status setup_eval_set(run_state *r, eval_set *e, const uint8_t *corpus_dev,
                                 int64_t corpus_len, int64_t lo, int64_t hi, arb_err *err)
{
    arb_status st = ARB_OK;
    const int64_t batch = r->opt->model.batch;
    e->corpus = corpus_dev;
    e->corpus_len = corpus_len;
    e->count = train_eval_count(hi - lo, r->opt->eval_positions, batch);
    int64_t *host = malloc((size_t)e->count * sizeof(int64_t));
    if (!host)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory for evaluation positions");
    train_even_positions(lo, hi, e->count, host);
    int64_t batches = (e->count + batch - 1) / batch;
    if ((st = arb_backend_alloc(r->be, (size_t)e->count * sizeof(int64_t), (void **)&e->pos)) ||
        (st = arb_backend_upload(r->be, e->pos, host, (size_t)e->count * sizeof(int64_t))) ||
        (st = arb_backend_alloc(r->be, (size_t)batches * sizeof(float), (void **)&e->losses)))
        train_backend_fail(r->be, st, err, "preparing evaluation");
    free(host);
    return st;
}

static void free_eval_set(run_state *r, eval_set *e)
{
    if (!r->be)
        return;
    arb_backend_free(r->be, e->pos);
    arb_backend_free(r->be, e->losses);
    memset(e, 0, sizeof(*e));
}

static arb_status upload_corpus(run_state *r, const train_corpus *c, uint8_t **dev, arb_err *err)
{
    arb_status st = arb_backend_alloc(r->be, (size_t)c->len, (void **)dev);
    if (!st)
        st = arb_backend_upload(r->be, *dev, c->bytes, (size_t)c->len);
    if (st)
        return train_backend_fail(r->be, st, err, "uploading the corpus");
    return ARB_OK;
}

/* Reconcile the options with a checkpoint: its model must match any
 * --config/--batch given; options not given come from it. Returns nonzero
 * when the run will not continue the checkpoint's run exactly. */
static arb_status reconcile(run_state *r, const train_ckpt_meta *meta, const char *path,
                            arb_err *err)
{
    train_options *opt = r->opt;
    const train_model_config *a = &meta->model;
    if (opt->given & (TRAIN_GIVEN_CONFIG | TRAIN_GIVEN_BATCH)) {
        const train_model_config *b = &opt->model;
        if (((opt->given & TRAIN_GIVEN_CONFIG) &&
             (a->ctx != b->ctx || a->D != b->D || a->H != b->H || a->L != b->L ||
              a->gs != b->gs || strcmp(a->name, b->name) != 0)) ||
            ((opt->given & TRAIN_GIVEN_BATCH) && a->batch != b->batch))
            return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                            "checkpoint %s holds config %s (ctx %d, D %d, H %d, L %d, gs %d, "
                            "batch %d), which does not match --config/--batch (%s, batch %d)",
                            path, a->name, a->ctx, a->D, a->H, a->L, a->gs, a->batch, b->name,
                            b->batch);
    }
    opt->model = *a;
    int differs = 0;
    const train_rule *cr = &meta->rule;
    train_rule *rr = &opt->rule;
    /* A value given on this run is kept (and noted when it differs from the
     * checkpoint's); one not given is taken from the checkpoint. */
#define RECONCILE(bit, ours, theirs)                                                               \
    do {                                                                                           \
        if (opt->given & (bit))                                                                    \
            differs |= (ours) != (theirs);                                                         \
        else                                                                                       \
            (ours) = (theirs);                                                                     \
    } while (0)
    RECONCILE(TRAIN_GIVEN_THETA, rr->theta, cr->theta);
    RECONCILE(TRAIN_GIVEN_THETA, rr->theta_start, cr->theta_start);
    RECONCILE(TRAIN_GIVEN_THETA, rr->theta_end, cr->theta_end);
    RECONCILE(TRAIN_GIVEN_THETA, rr->theta_steps, cr->theta_steps);
    RECONCILE(TRAIN_GIVEN_PHI, rr->phi, cr->phi);
    RECONCILE(TRAIN_GIVEN_E_LAYERS, rr->e_layers, cr->e_layers);
    RECONCILE(TRAIN_GIVEN_E_SCORE, rr->e_score, cr->e_score);
    RECONCILE(TRAIN_GIVEN_SEED, opt->seed, meta->seed);
#undef RECONCILE
    if (differs)
        warn(r, "the update rule or seed given differs from checkpoint %s's; the run will not "
                "match an uninterrupted one",
             path);
    if (meta->data_len != (uint64_t)r->corpus.len ||
        memcmp(meta->data_sha256, r->corpus.sha256, 32) != 0)
        warn(r, "checkpoint %s was trained on other data (%" PRIu64 " bytes) than %s (%lld "
                "bytes); continuing on %s",
             path, meta->data_len, opt->data_path, (long long)r->corpus.len, opt->data_path);
    return ARB_OK;
}

/* ---- reporting ---------------------------------------------------------------- */

static void print_config(run_state *r, const char *why)
{
    const train_options *opt = r->opt;
    const train_model_config *c = &opt->model;
    char e_layers[64];
    train_e_layers_format(opt->rule.e_layers, e_layers, sizeof(e_layers));
    say(r, "arb-train %s\n", ARB_TRAIN_VERSION);
    say(r, "config: %s (ctx %d, D %d, H %d, L %d, gs %d), batch %d, %lld ternary weights\n",
        c->name, c->ctx, c->D, c->H, c->L, c->gs, c->batch,
        (long long)train_model_parameters(&r->model));
    if (arb_backend_kind_of(r->be) == ARB_BACKEND_JIT) {
        arb_engine *engine = arb_backend_engine(r->be);
        const arb_device_info *dev = engine ? arb_engine_device(engine) : NULL;
        say(r, "backend: jit on %s (%s), precision %s, CUDA graphs %s [%s]\n",
            dev ? dev->name : "a GPU", engine ? arb_engine_arch(engine) : "?",
            arb_precision_name(opt->precision),
            opt->graphs && r->vote.world <= 1 ? "on" : "off", why);
    } else {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        say(r, "backend: cpu, %d threads [%s]\n", opt->threads > 0 ? opt->threads : (int)cores,
            why);
    }
    const train_rule *rule = &opt->rule;
    char theta[96];
    if (rule->theta_steps > 0)
        snprintf(theta, sizeof(theta), "theta %d -> %d over %d steps", rule->theta_start,
                 rule->theta_end, rule->theta_steps);
    else
        snprintf(theta, sizeof(theta), "theta %d", rule->theta);
    if (rule->phi > 0 && rule->e_layers)
        say(r, "rule: %s; E updated on %s (%s score, phi %d)\n", theta, e_layers,
            arb_e_score_name(rule->e_score), rule->phi);
    else
        say(r, "rule: %s; E frozen\n", theta);
    say(r, "data: %s, %lld bytes: %lld train, %lld held out; %lld held-out positions per "
           "evaluation\n",
        opt->data_path, (long long)r->corpus.len, (long long)r->corpus.train_len,
        (long long)(r->corpus.len - r->corpus.train_len), (long long)r->held.count);
    if (opt->eval_path)
        say(r, "eval: %s, %lld bytes; %lld positions per evaluation\n", opt->eval_path,
            (long long)r->extra.len, (long long)r->other.count);
    if (r->start_step > 0)
        say(r, "resumed from %s at step %lld\n", opt->resume_path, (long long)r->start_step);
    say(r, "steps: %lld, evaluation every %lld, seed %" PRIu64 "%s%s\n", (long long)opt->steps,
        (long long)opt->eval_every, opt->seed, opt->checkpoint_path ? ", checkpoints to " : "",
        opt->checkpoint_path ? opt->checkpoint_path : "");
    say(r, "unigram entropy of the training bytes: %.4f bits/byte\n", r->unigram);
}

static void print_jit_stats(run_state *r)
{
    arb_engine *engine = arb_backend_engine(r->be);
    if (!engine)
        return;
    arb_engine_stats s;
    arb_engine_stats_get(engine, &s);
    int64_t hits = s.hits_readonly + s.hits_writable;
    say(r, "jit: %lld kernels, %lld from cache, %lld compiled (%.1f s compiling, %.2f s "
           "loading)\n",
        (long long)(hits + s.compiles), (long long)hits, (long long)s.compiles,
        s.compile_ms / 1000.0, (s.hit_ms + s.load_ms) / 1000.0);
}

static void json_number(FILE *f, const char *key, double v, int comma)
{
    if (isfinite(v))
        fprintf(f, "\"%s\":%.6g%s", key, v, comma ? "," : "");
    else
        fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
}

/* ---- the loop ------------------------------------------------------------------- */

/* Read the losses of the last `pending` steps (the first of which had
 * 0-based index first_step) and the guard. Sets *bad_step (1-based) when a
 * loss was not finite. */
static arb_status read_losses(run_state *r, int64_t pending, int64_t first_step, double *sum,
                              int64_t *bad_step, double *bad_value, arb_err *err)
{
    arb_status st;
    float host[MAX_LOSS_SLOTS];
    int32_t guard = 0;
    *sum = 0.0;
    *bad_step = 0;
    /* Ranks log the mean loss of the union batch. */
    const int world = ranks(r);
    if (world > 1 && (st = r->vote.sum_f32(r->vote.ctx, r->model.losses, (size_t)pending, err)))
        return st;
    if ((st = arb_backend_download(r->be, host, r->model.losses, (size_t)pending * sizeof(float))) ||
        (st = arb_backend_download(r->be, &guard, r->model.guard, sizeof(guard))))
        return train_backend_fail(r->be, st, err, "reading the losses");
    for (int64_t i = 0; i < pending; i++) {
        double loss = (double)host[i] / ((double)r->opt->model.batch * world);
        if (!isfinite(loss) && !*bad_step) {
            *bad_step = first_step + i + 1;
            *bad_value = loss;
        }
        *sum += loss;
    }
    if (guard && !*bad_step) {
        /* The guard was set before these steps (cannot happen: every read
         * checks it), so name the first step read. */
        *bad_step = first_step + 1;
        *bad_value = NAN;
    }
    return ARB_OK;
}

static arb_status evaluate(run_state *r, eval_set *e, double *bpb, arb_err *err)
{
    if (!e->count || !r->lead) { /* ranks hold the same state: rank 0 evaluates */
        *bpb = NAN;
        return ARB_OK;
    }
    return train_model_eval(&r->model, e->corpus, e->corpus_len, e->pos, e->count, e->losses, bpb,
                            err);
}

static arb_status checkpoint(run_state *r, int64_t step, arb_err *err)
{
    train_ckpt_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.model = r->opt->model;
    meta.rule = r->opt->rule;
    meta.seed = r->opt->seed;
    meta.step = step;
    meta.data_len = (uint64_t)r->corpus.len;
    memcpy(meta.data_sha256, r->corpus.sha256, 32);
    return train_checkpoint_write(r->opt->checkpoint_path, &meta, &r->model, err);
}

static int nonfinite_exit(run_state *r, int64_t step, double value, arb_err *err)
{
    const char *ck = r->opt->checkpoint_path;
    ARB_FAIL(err, ARB_ERR_NONFINITE,
             "the loss of step %lld is %g (not finite); stopping before its update, without "
             "writing a checkpoint%s%s%s",
             (long long)step, value, ck ? " (" : "", ck ? ck : "",
             ck ? " keeps its last complete state)" : "");
    return EXIT_NONFINITE;
}

/* Read the `pending` losses since step first_step into *sum. Returns -1 to
 * go on, else the exit status (a failed read, or a loss that was not finite). */
static int drain_losses(run_state *r, int64_t pending, int64_t first_step, double *sum,
                        arb_err *err)
{
    double bad_value = NAN;
    int64_t bad_step;
    if (read_losses(r, pending, first_step, sum, &bad_step, &bad_value, err))
        return EXIT_FAIL;
    if (bad_step)
        return nonfinite_exit(r, bad_step, bad_value, err);
    return -1;
}

static int train_loop(run_state *r, arb_err *err)
{
    train_options *opt = r->opt;
    train_model *m = &r->model;
    arb_status st;
    const int is_jit = arb_backend_kind_of(r->be) == ARB_BACKEND_JIT;
    const char *force = getenv("ARB_TEST_FORCE_NAN_STEP");
    const int64_t force_nan = force ? strtoll(force, NULL, 10) : 0;
    const int width = snprintf(NULL, 0, "%lld", (long long)opt->steps);

    int64_t step = r->start_step, pending = 0;
    double interval_loss = 0.0, interval_time = 0.0, train_time = 0.0, first_time = 0.0;
    int64_t interval_steps = 0, trained = 0;
    double last_loss = NAN, heldout = NAN, other = NAN;
    int evaluated_last = 0;

    train_progress_init(&r->progress, step, opt->steps, opt->quiet);
    while (step < opt->steps && !interrupted) {
        double t = train_now();
        int poison = force_nan > 0 && step + 1 == force_nan;
        /* The first step runs eagerly (it compiles and loads the kernels);
         * later ones replay a captured graph, unless voting or poisoned. */
        const int graph = is_jit && opt->graphs && !rank_vote(r) && !poison &&
                          step > r->start_step;
        if (graph)
            st = train_model_step_graph(m, &opt->rule, r->batch_seed, step, r->corpus_dev,
                                        r->corpus.len, r->corpus.train_len, pending, err);
        else
            st = train_model_step(m, &opt->rule, r->batch_seed, step, r->corpus_dev,
                                  r->corpus.len, r->corpus.train_len, pending, poison,
                                  rank_vote(r), err);
        if (st == ARB_ERR_NONFINITE) {
            arb_err_clear(err);
            return nonfinite_exit(r, step + 1, NAN, err);
        }
        if (st != ARB_OK)
            return EXIT_FAIL;
        pending++;
        step++;
        trained++;
        const int first = step == r->start_step + 1;
        const int do_eval = step % opt->eval_every == 0 || step == opt->steps;
        /* Step 1 of a fresh run is logged (the loss at initialization); a
         * resumed run keeps the intervals of an uninterrupted one. */
        const int do_log = (first && r->start_step == 0) || step % opt->log_every == 0 ||
                           step == opt->steps;
        const int do_ckpt = opt->checkpoint_path && r->lead &&
                            ((opt->checkpoint_every > 0 && step % opt->checkpoint_every == 0) ||
                             step == opt->steps);
        if (pending == m->loss_cap || do_eval || do_log || do_ckpt || interrupted) {
            double sum;
            int code = drain_losses(r, pending, step - pending, &sum, err);
            if (code >= 0)
                return code;
            interval_loss += sum;
            interval_steps += pending;
            pending = 0;
        }
        double dt = train_now() - t;
        interval_time += dt;
        if (first)
            first_time = dt; /* kernel compiles and loads, on jit */
        else
            train_time += dt;
        if (first && is_jit)
            print_jit_stats(r);

        evaluated_last = do_eval;
        if (do_eval) {
            if (evaluate(r, &r->held, &heldout, err) || evaluate(r, &r->other, &other, err))
                return EXIT_FAIL;
        }
        if (do_log) {
            uint64_t flips = 0;
            if ((st = arb_backend_download(r->be, &flips, m->flips, sizeof(flips)))) {
                train_backend_fail(r->be, st, err, "reading the flip count");
                return EXIT_FAIL;
            }
            last_loss = interval_loss / (double)interval_steps;
            double rate = interval_time > 0 ? (double)(interval_steps * opt->model.batch *
                                                       ranks(r)) / interval_time
                                            : 0.0;
            char held_text[32] = "-", other_text[48] = "";
            if (do_eval)
                snprintf(held_text, sizeof(held_text), "%.4f", heldout);
            if (do_eval && opt->eval_path)
                snprintf(other_text, sizeof(other_text), " | eval %.4f bpb", other);
            say(r, "step %*lld/%lld | loss %.4f | heldout %s bpb%s | flips %" PRIu64
                   " | %.0f tok/s\n",
                width, (long long)step, (long long)opt->steps, last_loss, held_text, other_text,
                flips, rate);
            if (r->log) {
                fprintf(r->log, "{\"step\":%lld,", (long long)step);
                json_number(r->log, "loss", last_loss, 1);
                json_number(r->log, "heldout_bpb", do_eval ? heldout : NAN, 1);
                if (opt->eval_path)
                    json_number(r->log, "eval_bpb", do_eval ? other : NAN, 1);
                fprintf(r->log, "\"flips\":%" PRIu64 ",", flips);
                json_number(r->log, "tokens_per_s", rate, 1);
                json_number(r->log, "wall_s", train_now() - r->t_start, 0);
                fputs("}\n", r->log);
                fflush(r->log);
            }
            interval_loss = 0.0;
            interval_steps = 0;
            interval_time = 0.0;
        }
        if (do_ckpt && checkpoint(r, step, err))
            return EXIT_FAIL;
        train_progress_update(&r->progress, step);
    }
    train_progress_clear(&r->progress);

    if (interrupted) {
        if (pending > 0) {
            double sum;
            int code = drain_losses(r, pending, step - pending, &sum, err);
            if (code >= 0)
                return code;
        }
        if (opt->checkpoint_path && r->lead) {
            if (checkpoint(r, step, err))
                return EXIT_FAIL;
            fprintf(stderr, "arb-train: interrupted at step %lld; checkpoint written to %s "
                            "(continue with --resume %s)\n",
                    (long long)step, opt->checkpoint_path, opt->checkpoint_path);
        } else {
            fprintf(stderr, "arb-train: interrupted at step %lld (no --checkpoint: state "
                            "discarded)\n",
                    (long long)step);
        }
        return EXIT_INTERRUPTED;
    }

    if (trained == 0) {
        /* Nothing to train (--steps 0, or resumed at the end): report the
         * loss of the next batch and evaluate, and checkpoint if asked. */
        if (train_model_batch_loss(m, opt->seed, r->corpus_dev, r->corpus.len,
                                   r->corpus.train_len, &last_loss, err))
            return EXIT_FAIL;
        if (opt->checkpoint_path && r->lead && checkpoint(r, step, err))
            return EXIT_FAIL;
    }
    if (!evaluated_last) {
        if (evaluate(r, &r->held, &heldout, err) || evaluate(r, &r->other, &other, err))
            return EXIT_FAIL;
    }
    if (opt->eval_path && !opt->quiet)
        say(r, "eval: %s: %.4f bits/byte\n", opt->eval_path, other);
    /* The rate leaves out the first step (on jit it compiles and loads the
     * kernels) unless it was the only one. */
    int64_t timed = trained > 1 ? trained - 1 : trained;
    if (trained == 1)
        train_time = first_time;
    double rate =
        train_time > 0 ? (double)(timed * opt->model.batch * ranks(r)) / train_time : 0.0;
    if (r->vote.world > 1) {
        /* Ranks must hold identical state: each says its state's hash. */
        char hex[65];
        if (train_model_state_sha256(m, hex, err))
            return EXIT_FAIL;
        fprintf(stderr, "arb-train: rank %d of %d: state sha256 %s at step %lld\n",
                r->vote.rank, r->vote.world, hex, (long long)step);
    }
    if (!r->lead)
        return EXIT_OK;
    printf("final: step=%lld loss=%.4f heldout_bpb=%.4f unigram_bpb=%.4f tokens_per_s=%.0f\n",
           (long long)step, last_loss, heldout, r->unigram, rate);
    fflush(stdout);
    return EXIT_OK;
}

/* ---- the run -------------------------------------------------------------------- */

static int run(train_options *opt, arb_err *err)
{
    run_state r;
    memset(&r, 0, sizeof(r));
    r.opt = opt;
    r.t_start = train_now();
    r.progress.enabled = 0;
    train_ckpt ck;
    memset(&ck, 0, sizeof(ck));
    int have_ck = 0, code = EXIT_FAIL;
    arb_status st;
    arb_err local = {0};

    /* Inputs first, so a bad one costs no backend start. */
    if (opt->resume_path) {
        if (train_checkpoint_read(opt->resume_path, &ck, err)) {
            code = EXIT_USAGE;
            goto done;
        }
        have_ck = 1;
    }
    st = train_corpus_load(opt->data_path, &r.corpus, &local);
    if (st != ARB_OK) {
        if (st == ARB_ERR_NOT_FOUND)
            ARB_FAIL(err, st, "%s; fetch the default corpus with tools/fetch-corpus.sh (from "
                              "the repository root), or name a text file with --data FILE",
                     local.msg);
        else
            arb_err_copy(err, &local);
        code = EXIT_USAGE;
        goto done;
    }
    if (opt->eval_path && train_corpus_load(opt->eval_path, &r.extra, err)) {
        code = EXIT_USAGE;
        goto done;
    }

    r.lead = opt->rank == 0;
    r.batch_seed = opt->seed;
    if (opt->world > 1) {
        if (opt->backend == ARB_BACKEND_CPU) {
            ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                     "data-parallel ranks run on GPUs: --world-size/--gpus need --backend jit");
            code = EXIT_USAGE;
            goto done;
        }
        opt->backend = ARB_BACKEND_JIT;
        /* Each rank draws its own batches (rank 0 those of a one-GPU run). */
        r.batch_seed = opt->seed ^ ((uint64_t)opt->rank * 0x9E3779B97F4A7C15ULL);
        if (!r.lead)
            opt->quiet = 1;
    }
    arb_backend_options bo;
    arb_backend_options_init(&bo);
    bo.kind = opt->backend;
    bo.precision = opt->precision;
    bo.threads = opt->threads;
    bo.device = opt->device;
    char why[256] = "";
    arb_err_clear(&local);
    if ((st = arb_backend_open(&r.be, &bo, why, sizeof(why), &local)) != ARB_OK) {
        ARB_FAIL(err, st, "cannot open the %s backend (%s): %s",
                 arb_backend_kind_name(opt->backend), opt->backend_origin, local.msg);
        goto done;
    }
    if (!why[0])
        snprintf(why, sizeof(why), "%s", arb_backend_kind_name(arb_backend_kind_of(r.be)));
    if (opt->backend != ARB_BACKEND_AUTO)
        snprintf(why + strlen(why), sizeof(why) - strlen(why), ", chosen by %s",
                 opt->backend_origin);
    train_options_finish(opt, arb_backend_kind_of(r.be));
    if (have_ck && reconcile(&r, &ck.meta, opt->resume_path, err)) {
        code = EXIT_USAGE;
        goto done;
    }
    if (train_model_config_check(&opt->model, err) ||
        train_corpus_split(&r.corpus, opt->model.ctx, opt->data_path, err)) {
        code = EXIT_USAGE;
        goto done;
    }
    r.unigram = train_unigram_entropy(r.corpus.bytes, r.corpus.train_len);
    if (opt->eval_path && r.extra.len <= opt->model.ctx) {
        ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s has %lld bytes: too short for a context of %d",
                 opt->eval_path, (long long)r.extra.len, opt->model.ctx);
        code = EXIT_USAGE;
        goto done;
    }

    int64_t cap = opt->log_every < MAX_LOSS_SLOTS ? opt->log_every : MAX_LOSS_SLOTS;
    if (train_model_create(&r.model, r.be, &opt->model, cap, err))
        goto done;
    r.have_model = 1;
    if (have_ck) {
        st = train_checkpoint_apply(&ck, opt->resume_path, &r.model, err);
        if (st != ARB_OK) {
            code = st == ARB_ERR_FORMAT ? EXIT_USAGE : EXIT_FAIL;
            goto done;
        }
        r.start_step = ck.meta.step;
        train_checkpoint_free(&ck);
        have_ck = 0;
    } else if (train_model_init(&r.model, opt->seed, err)) {
        goto done;
    }

    if (opt->world > 1) {
        if (train_model_enable_vote(&r.model, err) ||
            train_vote_nccl_open(&r.vote, r.be, opt->rank, opt->world, opt->init_file, 300.0,
                                 err))
            goto done;
        say(&r, "data-parallel: %d ranks over NCCL, rank %d on device %d (signs voted, E "
                "scores summed)\n",
            opt->world, opt->rank, opt->device);
    }
    if (upload_corpus(&r, &r.corpus, &r.corpus_dev, err) ||
        setup_eval_set(&r, &r.held, r.corpus_dev, r.corpus.len,
                       r.corpus.train_len + opt->model.ctx, r.corpus.len, err))
        goto done;
    if (opt->eval_path &&
        (upload_corpus(&r, &r.extra, &r.extra_dev, err) ||
         setup_eval_set(&r, &r.other, r.extra_dev, r.extra.len, opt->model.ctx, r.extra.len,
                        err)))
        goto done;

    if (opt->log_path && r.lead) {
        r.log = fopen(opt->log_path, r.start_step > 0 ? "a" : "w");
        if (!r.log) {
            ARB_FAIL(err, ARB_ERR_IO, "cannot open the log %s: %s", opt->log_path,
                     strerror(errno));
            code = EXIT_USAGE;
            goto done;
        }
    }
    if (opt->checkpoint_path && r.lead) {
        int swept = train_checkpoint_sweep(opt->checkpoint_path);
        if (swept > 0)
            warn(&r, "removed %d stale temporary file%s of %s left by a killed run", swept,
                 swept == 1 ? "" : "s", opt->checkpoint_path);
    }

    print_config(&r, why);
    if (r.start_step >= opt->steps && r.start_step > 0)
        say(&r, "the checkpoint is at step %lld, the run's --steps is %lld: nothing to train\n",
            (long long)r.start_step, (long long)opt->steps);
    code = train_loop(&r, err);

done:
    train_vote_nccl_close(&r.vote);
    if (have_ck)
        train_checkpoint_free(&ck);
    if (r.log)
        fclose(r.log);
    free_eval_set(&r, &r.held);
    free_eval_set(&r, &r.other);
    if (r.have_model)
        train_model_destroy(&r.model);
    if (r.be) {
        arb_backend_free(r.be, r.corpus_dev);
        arb_backend_free(r.be, r.extra_dev);
        arb_backend_close(r.be);
    }
    train_corpus_free(&r.corpus);
    train_corpus_free(&r.extra);
    return code;
}

/* ---- --gpus N: one process per GPU -------------------------------------------------- */

/* Start N copies of this program as ranks 0..N-1 (device r each), meeting
 * through a fresh init file; wait for all. When one fails, stop the others
 * (they would wait forever in a collective) and return its exit code. */
static int launch_ranks(const train_options *opt, int argc, char **argv)
{
    char dir[] = "/tmp/arb-train-ranks-XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "arb-train: error: cannot make a folder for the ranks' init file: %s\n",
                strerror(errno));
        return EXIT_FAIL;
    }
    char init[sizeof(dir) + 16];
    snprintf(init, sizeof(init), "%s/nccl-id", dir);
    setenv("NCCL_NVLS_ENABLE", "0", 0); /* NVLink multicast stays off on these machines */
    const int n = opt->gpus;
    pid_t pids[128];
    int code = EXIT_OK, alive = 0;
    for (int r = 0; r < n; r++) {
        char rank[16], world[16];
        snprintf(rank, sizeof(rank), "%d", r);
        snprintf(world, sizeof(world), "%d", n);
        char **args = calloc((size_t)argc + 10, sizeof(char *));
        if (!args) {
            code = EXIT_FAIL;
            break;
        }
        int k = 0;
        for (int i = 0; i < argc; i++)
            args[k++] = argv[i];
        args[k++] = "--rank";
        args[k++] = rank;
        args[k++] = "--world-size";
        args[k++] = world;
        args[k++] = "--init-file";
        args[k++] = init;
        args[k++] = "--device";
        args[k++] = rank;
        args[k] = NULL;
        pids[r] = fork();
        if (pids[r] == 0) {
            execv("/proc/self/exe", args);
            fprintf(stderr, "arb-train: error: cannot start rank %d: %s\n", r, strerror(errno));
            _exit(EXIT_FAIL);
        }
        free(args);
        if (pids[r] < 0) {
            code = EXIT_FAIL;
            break;
        }
        alive++;
    }
    while (alive > 0) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        alive--;
        int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (rc != EXIT_OK && code == EXIT_OK) {
            code = rc;
            for (int r = 0; r < n; r++)
                if (pids[r] > 0 && pids[r] != pid)
                    kill(pids[r], SIGTERM);
        }
    }
    unlink(init);
    rmdir(dir);
    return code;
}

int main(int argc, char **argv)
{
    train_options opt;
    arb_err err = {0};
    if (train_options_parse(&opt, argc, argv, &err) != ARB_OK) {
        fprintf(stderr, "arb-train: error: %s\n", err.msg);
        return EXIT_USAGE;
    }
    switch (opt.action) {
    case TRAIN_ACTION_HELP:
        train_print_help();
        return EXIT_OK;
    case TRAIN_ACTION_VERSION:
        printf("arb-train %s (engine build %s)\n", ARB_TRAIN_VERSION, arb_engine_build_id());
        return EXIT_OK;
    case TRAIN_ACTION_DUMP_SHAPES:
        /* The shapes are for arb-prewarm, i.e. for jit: without --config
         * (or --backend cpu) they describe the jit default, base. */
        train_options_finish(&opt, opt.backend == ARB_BACKEND_CPU ? ARB_BACKEND_CPU
                                                                  : ARB_BACKEND_JIT);
        if (train_model_config_check(&opt.model, &err) != ARB_OK) {
            fprintf(stderr, "arb-train: error: %s\n", err.msg);
            return EXIT_USAGE;
        }
        train_dump_shapes(stdout, &opt);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
    case TRAIN_ACTION_TRAIN:
        break;
    }

    if (opt.gpus > 1 && opt.world == 0)
        return launch_ranks(&opt, argc, argv);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int code = run(&opt, &err);
    if (code != EXIT_OK && code != EXIT_INTERRUPTED && err.status != ARB_OK)
        fprintf(stderr, "arb-train: error: %s\n", err.msg);
    else if (code != EXIT_OK && code != EXIT_INTERRUPTED)
        fprintf(stderr, "arb-train: error: failed (no detail recorded)\n");
    return code;
}
