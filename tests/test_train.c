/*
 * test_train.c - arb-train end to end on the cpu backend, as a user runs it:
 * the built program on a generated English-like corpus in a temporary
 * folder. It learns (loss falls, held-out bits per byte below the unigram
 * entropy); each update-rule flag takes effect (checked on the checkpoints'
 * integer tensors); a resumed run is byte-identical to a straight one; the
 * non-finite guard exits 3 leaving the last checkpoint untouched; damaged
 * checkpoints are refused with exit 2 and nothing written; checkpoints hold
 * only integer tensors; flags, --help, --dump-shapes and the shipped
 * prewarm/shapes files behave as documented.
 *
 * Checkpoints are read with tests/harness/checkpoint_doc.c, written from
 * docs/checkpoint-format.md, not from train/checkpoint.c, so these tests
 * also check that the page is complete.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arb/shapes.h"
#include "checkpoint_doc.h"
#include "files.h"
#include "harness.h"
#include "proc.h"

#define TRAIN ARB_BINARY_DIR "/train/arb-train"

static char corpus[512];

/* ---- a corpus with structure -------------------------------------------------- */

static uint64_t rng_state;

static const char *pick(const char *const *list, size_t n)
{
    return list[th_splitmix64(&rng_state) % n];
}
#define PICK(list) pick(list, sizeof(list) / sizeof(list[0]))

/* Sentences from a small grammar: frequent words, fixed word order,
 * punctuation and capitals, so a byte model has much to learn. */
static void write_corpus(const char *path, size_t bytes)
{
    static const char *const det[] = {"the", "a", "this", "every", "that", "one"};
    static const char *const adj[] = {"old",   "young", "small", "quiet", "bright",
                                      "green", "tired", "happy", "long",  "cold"};
    static const char *const noun[] = {"dog",    "teacher", "river", "house",  "garden",
                                       "farmer", "city",    "letter", "window", "morning",
                                       "child",  "market"};
    static const char *const verb[] = {"sees",   "finds", "likes", "watches", "opens",
                                       "paints", "helps", "leaves", "carries", "follows"};
    static const char *const adv[] = {"slowly", "again", "today", "quietly", "at noon"};
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    rng_state = 12345;
    size_t written = 0;
    while (written < bytes) {
        char s[256];
        int n = snprintf(s, sizeof(s), "%s %s %s %s %s %s %s%s", PICK(det), PICK(adj), PICK(noun),
                         PICK(verb), PICK(det), PICK(noun), PICK(adv),
                         th_splitmix64(&rng_state) % 4 == 0 ? ".\n" : ". ");
        s[0] = (char)(s[0] - 'a' + 'A');
        fputs(s, f);
        written += (size_t)n;
    }
    fclose(f);
}

static void setup(void)
{
    th_dir_make("arb-train-test");
    th_path(corpus, sizeof(corpus), "corpus.txt");
    write_corpus(corpus, 200 * 1000);
}

/* ---- running the program ------------------------------------------------------- */

/* When nonzero, the child's address space is capped at this many bytes
 * (RLIMIT_AS) before it runs arb-train. */
static long long child_address_limit;

/* Run arb-train with the common flags (cpu backend, one thread, the test
 * corpus, a small evaluation) plus `args`, and extra environment `env`. */
static void train(th_result *r, const char *const *args, const char *const *env)
{
    const char *argv[64] = {"arb-train",        "--backend", "cpu",    "--threads", "1",
                            "--eval-positions", "2048",      "--data", corpus};
    int n = 9;
    for (int i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    *r = th_run(
        &(th_cmd){.prog = TRAIN, .argv = argv, .env = env, .address_limit = child_address_limit});
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void expect_ok(const th_result *r)
{
    cr_assert_eq(r->status, 0, "arb-train exited %d\nstdout:\n%s\nstderr:\n%s", r->status,
                 r->out, r->err);
}

typedef struct final_line {
    long long step;
    double loss, heldout, unigram, rate;
} final_line;

static final_line final_of(const th_result *r)
{
    final_line f;
    const char *line = strstr(r->out, "final: ");
    cr_assert_not_null(line, "no final line\nstdout:\n%s\nstderr:\n%s", r->out, r->err);
    cr_assert_eq(sscanf(line, "final: step=%lld loss=%lf heldout_bpb=%lf unigram_bpb=%lf "
                              "tokens_per_s=%lf",
                        &f.step, &f.loss, &f.heldout, &f.unigram, &f.rate),
                 5, "final line: %s", line);
    /* Exactly one final line. */
    cr_assert_null(strstr(line + 1, "final: "), "two final lines:\n%s", r->out);
    return f;
}

/* ---- the JSON log ------------------------------------------------------------------ */

typedef struct log_row {
    long long step;
    double loss, heldout;
    unsigned long long flips;
} log_row;

/* Parse the --log JSON lines (the fields arb-train writes, in its order). */
static int read_log(const char *path, log_row *rows, int max)
{
    char *text = th_file_slurp(path, NULL);
    int n = 0;
    for (char *line = strtok(text, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        log_row *row = &rows[n];
        const char *p;
        cr_assert_not_null(p = strstr(line, "\"step\":"), "log line: %s", line);
        row->step = atoll(p + 7);
        cr_assert_not_null(p = strstr(line, "\"loss\":"), "log line: %s", line);
        row->loss = strtod(p + 7, NULL);
        cr_assert_not_null(p = strstr(line, "\"heldout_bpb\":"), "log line: %s", line);
        row->heldout = strncmp(p + 14, "null", 4) == 0 ? NAN : strtod(p + 14, NULL);
        cr_assert_not_null(p = strstr(line, "\"flips\":"), "log line: %s", line);
        row->flips = strtoull(p + 8, NULL, 10);
        cr_assert_not_null(strstr(line, "\"tokens_per_s\":"), "log line: %s", line);
        cr_assert_not_null(strstr(line, "\"wall_s\":"), "log line: %s", line);
        n++;
    }
    free(text);
    return n;
}

/* ---- checkpoints, read from docs/checkpoint-format.md ------------------------------ */

/* Whether tensor `name` has the same bytes in two checkpoints. */
static int same_tensor(const th_ckpt *a, const th_ckpt *b, const char *name)
{
    const th_ckpt_tensor *ta = th_ckpt_find(a, name), *tb = th_ckpt_find(b, name);
    cr_assert_eq(ta->bytes, tb->bytes);
    return memcmp(a->data + ta->offset, b->data + tb->offset, ta->bytes) == 0;
}

static int all_zero(const th_ckpt *v, const char *name)
{
    const th_ckpt_tensor *t = th_ckpt_find(v, name);
    for (uint64_t i = 0; i < t->bytes; i++)
        if (v->data[t->offset + i])
            return 0;
    return 1;
}

/* Train tiny from scratch for `steps`, checkpointing to `path`; it must succeed. */
static void train_checkpoint(const char *path, const char *steps)
{
    th_result r;
    train(&r, ARGS("--config", "tiny", "--steps", steps, "--checkpoint", path), NULL);
    expect_ok(&r);
    th_result_free(&r);
}

/* Train tiny for `steps` with extra flags, checkpointing to `name`. */
static void train_to(const char *name, const char *steps, const char *const *extra, th_ckpt *v)
{
    char path[160];
    th_path(path, sizeof(path), name);
    const char *args[32] = {"--config", "tiny", "--steps", steps, "--eval-every", "1000",
                            "--checkpoint", path};
    int n = 8;
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    th_result r;
    train(&r, args, NULL);
    expect_ok(&r);
    cr_assert(strstr(r.out, "flips") != NULL || steps[0] == '0', "no flips reported:\n%s",
              r.out);
    th_result_free(&r);
    th_ckpt_load(path, v);
}

/* ---- tests ------------------------------------------------------------------------- */

TestSuite(train, .init = setup, .fini = th_dir_remove, .timeout = 240);

Test(train, tiny_learns_below_unigram_entropy)
{
    char log[160];
    th_path(log, sizeof(log), "log.jsonl");
    th_result r;
    train(&r,
          ARGS("--config", "tiny", "--steps", "1000", "--eval-every", "500", "--log-every",
               "50", "--log", log),
          NULL);
    expect_ok(&r);
    cr_assert(strstr(r.out, "unigram entropy of the training bytes: ") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "backend: cpu") != NULL, "%s", r.out);
    final_line f = final_of(&r);
    cr_assert_eq(f.step, 1000);
    cr_assert(f.heldout < f.unigram, "held-out %.4f bpb is not below the unigram %.4f\n%s",
              f.heldout, f.unigram, r.out);
    log_row rows[64];
    int n = read_log(log, rows, 64);
    cr_assert_geq(n, 10, "%d log lines", n);
    cr_assert_eq(rows[0].step, 1);
    cr_assert_eq(rows[n - 1].step, 1000);
    cr_assert(rows[n - 1].loss < rows[0].loss - 1.0, "loss did not fall: %.4f -> %.4f",
              rows[0].loss, rows[n - 1].loss);
    cr_assert(isnan(rows[1].heldout), "step %lld has a held-out figure", rows[1].step);
    cr_assert(fabs(rows[n - 1].heldout - f.heldout) < 1e-3);
    th_result_free(&r);
}

Test(train, seeds_theta_schedule_flips_early)
{
    /* With theta warming from 7 and T_accum in [-2, 2], trits flip within
     * the first few steps (the seeds' spike); with the default theta 31 none
     * can flip before step 29. */
    char log_sched[160], log_default[160];
    th_path(log_sched, sizeof(log_sched), "sched.jsonl");
    th_path(log_default, sizeof(log_default), "default.jsonl");
    th_result r;
    train(&r,
          ARGS("--config", "tiny", "--steps", "12", "--log-every", "1", "--log", log_sched,
               "--theta-start", "7", "--theta-end", "3", "--theta-steps", "100"),
          NULL);
    expect_ok(&r);
    cr_assert(strstr(r.out, "theta 7 -> 3 over 100 steps") != NULL, "%s", r.out);
    log_row rows[16];
    int n = read_log(log_sched, rows, 16);
    cr_assert_eq(n, 12);
    unsigned long long early = 0;
    for (int i = 0; i < n; i++)
        early += rows[i].flips;
    cr_assert_gt(early, 100, "only %llu flips in 12 steps with theta 7 -> 3", early);
    th_result_free(&r);

    train(&r, ARGS("--config", "tiny", "--steps", "12", "--log-every", "1", "--log", log_default),
          NULL);
    expect_ok(&r);
    n = read_log(log_default, rows, 16);
    cr_assert_eq(n, 12);
    for (int i = 0; i < n; i++)
        cr_assert_eq(rows[i].flips, 0, "step %lld flipped %llu trits with theta 31", rows[i].step,
                     rows[i].flips);
    th_result_free(&r);
}

Test(train, e_score_sign_changes_E_differently)
{
    th_ckpt init, grad, sign;
    train_to("init.ck", "0", NULL, &init);
    train_to("grad.ck", "200", NULL, &grad);
    train_to("sign.ck", "200", ARGS("--e-score", "sign"), &sign);
    cr_assert(!same_tensor(&init, &sign, "linear.1.E") || !same_tensor(&init, &sign, "embed.E") ||
                  !same_tensor(&init, &sign, "linear.0.E"),
              "--e-score sign changed no hidden or embedding E in 200 steps");
    cr_assert(!same_tensor(&grad, &sign, "linear.0.E_accum") ||
                  !same_tensor(&grad, &sign, "linear.1.E_accum"),
              "sign and grad scores gave identical E accumulators");
    cr_assert(same_tensor(&init, &sign, "out.E"), "the output layer's E moved by default");
    th_ckpt_free(&init);
    th_ckpt_free(&grad);
    th_ckpt_free(&sign);
}

Test(train, e_layers_out_updates_output_E_only_when_named)
{
    th_ckpt init, with_out, without;
    train_to("init.ck", "0", NULL, &init);
    train_to("out.ck", "200", ARGS("--e-layers", "emb,hidden,out"), &with_out);
    train_to("no.ck", "200", ARGS("--e-layers", "emb,hidden"), &without);
    cr_assert(!same_tensor(&init, &with_out, "out.E"),
              "--e-layers emb,hidden,out left the output layer's E unchanged");
    cr_assert(!all_zero(&with_out, "out.E_accum") || !same_tensor(&init, &with_out, "out.E"));
    cr_assert(same_tensor(&init, &without, "out.E"), "out.E moved without 'out' in --e-layers");
    cr_assert(all_zero(&without, "out.E_accum"), "out.E_accum moved without 'out'");
    th_ckpt_free(&init);
    th_ckpt_free(&with_out);
    th_ckpt_free(&without);
}

Test(train, e_threshold_zero_freezes_every_E)
{
    th_ckpt init, frozen;
    train_to("init.ck", "0", NULL, &init);
    train_to("frozen.ck", "200", ARGS("--e-threshold", "0", "--e-layers", "emb,hidden,out"),
             &frozen);
    const char *names[] = {"embed.E", "linear.0.E", "linear.1.E", "out.E"};
    const char *accums[] = {"embed.E_accum", "linear.0.E_accum", "linear.1.E_accum",
                            "out.E_accum"};
    for (int i = 0; i < 4; i++) {
        cr_assert(same_tensor(&init, &frozen, names[i]), "%s changed with phi = 0", names[i]);
        cr_assert(all_zero(&frozen, accums[i]), "%s moved with phi = 0", accums[i]);
    }
    cr_assert(!same_tensor(&init, &frozen, "linear.0.T"), "T did not train");
    th_ckpt_free(&init);
    th_ckpt_free(&frozen);
}

Test(train, resume_is_byte_identical_to_a_straight_run)
{
    char a[160], b[160], c[160];
    th_path(a, sizeof(a), "a.ck");
    th_path(b, sizeof(b), "b.ck");
    th_path(c, sizeof(c), "c.ck");
    train_checkpoint(a, "100");
    th_result r;
    train(&r, ARGS("--config", "tiny", "--steps", "200", "--resume", a, "--checkpoint", b), NULL);
    expect_ok(&r);
    cr_assert(strstr(r.out, "resumed from") != NULL, "%s", r.out);
    final_line resumed = final_of(&r);
    th_result_free(&r);
    train(&r, ARGS("--config", "tiny", "--steps", "200", "--checkpoint", c), NULL);
    expect_ok(&r);
    final_line straight = final_of(&r);
    th_result_free(&r);

    uint8_t *bb, *bc;
    size_t lb = th_file_read(b, &bb), lc = th_file_read(c, &bc);
    cr_assert_eq(lb, lc);
    cr_assert_eq(memcmp(bb, bc, lb), 0, "resumed and straight checkpoints differ");
    cr_assert_eq(resumed.step, 200);
    cr_assert_eq(resumed.heldout, straight.heldout);
    cr_assert_eq(resumed.loss, straight.loss);
    free(bb);
    free(bc);
}

Test(train, nonfinite_loss_exits_3_and_keeps_the_checkpoint)
{
    char ck[160];
    th_path(ck, sizeof(ck), "guard.ck");
    train_checkpoint(ck, "40");
    uint8_t *before, *after;
    size_t before_len = th_file_read(ck, &before);

    /* Resumed onto the same file: step 55's loss is NaN, so the run stops
     * before its update and the step-40 checkpoint stays as it was. */
    th_result r;
    train(&r,
          ARGS("--config", "tiny", "--steps", "100", "--resume", ck, "--checkpoint", ck,
               "--checkpoint-every", "100"),
          (const char *const[]){"ARB_TEST_FORCE_NAN_STEP=55", NULL});
    cr_assert_eq(r.status, 3, "exit %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
    cr_assert(strstr(r.err, "step 55") != NULL, "the error does not name step 55:\n%s", r.err);
    cr_assert(strstr(r.err, "arb-train: error:") != NULL, "%s", r.err);
    cr_assert_null(strstr(r.out, "final:"), "a final line after a NaN:\n%s", r.out);
    th_result_free(&r);
    size_t after_len = th_file_read(ck, &after);
    cr_assert_eq(before_len, after_len);
    cr_assert_eq(memcmp(before, after, before_len), 0, "the checkpoint changed");
    free(before);
    free(after);

    /* A fresh run: no checkpoint file appears at all. */
    char none[160];
    th_path(none, sizeof(none), "none.ck");
    train(&r, ARGS("--config", "tiny", "--steps", "30", "--checkpoint", none),
          (const char *const[]){"ARB_TEST_FORCE_NAN_STEP=3", NULL});
    cr_assert_eq(r.status, 3, "exit %d\n%s", r.status, r.err);
    cr_assert(strstr(r.err, "step 3 ") != NULL, "%s", r.err);
    struct stat sb;
    cr_assert_neq(stat(none, &sb), 0, "a checkpoint was written after a NaN");
    th_result_free(&r);
}

/* Write a damaged copy of `good` and check --resume refuses it. */
static void expect_refused(const char *good, const char *name, void (*damage)(uint8_t *, size_t *),
                           const char *phrase)
{
    uint8_t *data;
    size_t len = th_file_read(good, &data);
    damage(data, &len);
    char bad[160], out[160];
    th_path(bad, sizeof(bad), name);
    th_path(out, sizeof(out), "must-not-exist.ck");
    th_file_write(bad, data, len);
    th_result r;
    train(&r, ARGS("--config", "tiny", "--steps", "60", "--resume", bad, "--checkpoint", out),
          NULL);
    cr_assert_eq(r.status, 2, "%s: exit %d\nstderr:\n%s", name, r.status, r.err);
    cr_assert(strstr(r.err, "arb-train: error:") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, bad) != NULL, "%s: the message does not name the file:\n%s", name,
              r.err);
    cr_assert(strstr(r.err, phrase) != NULL, "%s: expected '%s' in:\n%s", name, phrase, r.err);
    cr_assert_null(strstr(r.out, "final:"));
    struct stat sb;
    cr_assert_neq(stat(out, &sb), 0, "%s: something was written", name);
    uint8_t *after;
    size_t after_len = th_file_read(bad, &after);
    cr_assert_eq(after_len, len);
    cr_assert_eq(memcmp(after, data, len), 0, "%s: the refused file changed", name);
    free(after);
    free(data);
    th_result_free(&r);
}

static void flip_middle(uint8_t *d, size_t *len) { d[*len / 2] ^= 0x10; }
static void truncate_half(uint8_t *d, size_t *len)
{
    (void)d;
    *len /= 2;
}
static void wrong_magic(uint8_t *d, size_t *len)
{
    (void)len;
    memcpy(d, "NOTACKPT", 8);
}
static void future_version(uint8_t *d, size_t *len)
{
    (void)len;
    d[8] = 2;
}
static void flip_last(uint8_t *d, size_t *len) { d[*len - 1] ^= 1; }

Test(train, damaged_checkpoints_are_refused)
{
    char good[160];
    th_path(good, sizeof(good), "good.ck");
    train_checkpoint(good, "20");
    expect_refused(good, "flipped.ck", flip_middle, "corrupt");
    expect_refused(good, "checksum.ck", flip_last, "corrupt");
    expect_refused(good, "truncated.ck", truncate_half, "truncated");
    expect_refused(good, "magic.ck", wrong_magic, "not an arb-train checkpoint");
    expect_refused(good, "future.ck", future_version, "newer");

    /* A missing checkpoint and a mismatched configuration are refused too. */
    char missing[160];
    th_path(missing, sizeof(missing), "missing.ck");
    th_result r;
    train(&r, ARGS("--resume", missing), NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, missing) != NULL, "%s", r.err);
    th_result_free(&r);
    train(&r, ARGS("--config", "small", "--resume", good), NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "does not match") != NULL, "%s", r.err);
    th_result_free(&r);
}

/* AddressSanitizer reserves terabytes of shadow address space, so the
 * address-space cap below is only set in builds without it. */
#if defined(__SANITIZE_ADDRESS__)
#define ARB_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARB_TEST_ASAN 1
#endif
#endif

/* A huge file that is no checkpoint (a corpus named by mistake) is refused
 * on its first bytes. The 4 GiB file is sparse; the trainer runs under a
 * 2 GiB address-space cap, so a reader that loaded the whole file before
 * checking its magic would fail with "out of memory" instead. */
Test(train, huge_non_checkpoint_is_refused_on_its_magic)
{
    char big[160], out[160];
    th_path(big, sizeof(big), "corpus-not-a-checkpoint.txt");
    th_path(out, sizeof(out), "must-not-exist.ck");
    FILE *f = fopen(big, "wb");
    cr_assert_not_null(f);
    fputs("The quick brown fox. ", f);
    cr_assert_eq(ftruncate(fileno(f), (off_t)4 << 30), 0, "cannot make a sparse 4 GiB file");
    fclose(f);
#ifndef ARB_TEST_ASAN
    child_address_limit = 2LL << 30;
#endif
    th_result r;
    train(&r, ARGS("--config", "tiny", "--steps", "10", "--resume", big, "--checkpoint", out),
          NULL);
    child_address_limit = 0;
    unlink(big);
    cr_assert_eq(r.status, 2, "exit %d\n%s", r.status, r.err);
    cr_assert(strstr(r.err, "not an arb-train checkpoint") != NULL, "%s", r.err);
    struct stat sb;
    cr_assert_neq(stat(out, &sb), 0, "something was written");
    th_result_free(&r);
}

Test(train, checkpoints_hold_only_integer_tensors)
{
    th_ckpt v;
    train_to("strict.ck", "20", NULL, &v);
    /* tiny: L = 2, so 4 + 6*2 + 2 + 4 tensors. */
    cr_assert_eq(v.count, 22u);
    cr_assert_eq(v.step, 20u);
    for (uint32_t i = 0; i < v.count; i++) {
        const th_ckpt_tensor *t = &v.t[i];
        cr_assert(t->dtype == 1 || t->dtype == 2, "tensor %s has element type %u", t->name,
                  t->dtype);
        uint64_t elems = t->dims[0] * t->dims[1];
        if (t->dtype == 1) {
            cr_assert_eq(t->bytes, (elems + 4) / 5, "%s", t->name);
            for (uint64_t b = 0; b < t->bytes; b++)
                cr_assert_leq(v.data[t->offset + b], 242, "%s byte %llu", t->name,
                              (unsigned long long)b);
        } else {
            cr_assert_eq(t->bytes, elems, "%s", t->name);
        }
    }
    const th_ckpt_tensor *emb = th_ckpt_find(&v, "embed.T");
    cr_assert_eq(emb->dims[0], 256u);
    cr_assert_eq(emb->dims[1], 16u);
    const th_ckpt_tensor *l0 = th_ckpt_find(&v, "linear.0.T");
    cr_assert_eq(l0->dims[0], 64u);
    cr_assert_eq(l0->dims[1], 64u);
    /* Frozen RMSNorm weights: every trit +1 (v = 2), every E 0. */
    const th_ckpt_tensor *norm = th_ckpt_find(&v, "norm.1.T");
    cr_assert_eq(v.data[norm->offset], 2 + 2 * 3 + 2 * 9 + 2 * 27 + 2 * 81);
    cr_assert(all_zero(&v, "norm.1.E"));
    th_ckpt_free(&v);
}

Test(train, bad_flags_exit_2_and_help_exits_0)
{
    static const char *const bad[][4] = {
        {"--bogus", NULL},
        {"--config", "huge", NULL},
        {"--steps", "ten", NULL},
        {"--steps", "-5", NULL},
        {"--theta", "0", NULL},
        {"--theta", "200", NULL},
        {"--theta-start", "7", NULL},
        {"--e-layers", "emb,attention", NULL},
        {"--e-score", "magic", NULL},
        {"--backend", "tpu", NULL},
        {"--precision", "fp8", NULL},
        {"--batch", NULL},
        {"stray", NULL},
    };
    th_result r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        train(&r, bad[i], NULL);
        cr_assert_eq(r.status, 2, "%s: exit %d\n%s", bad[i][0], r.status, r.err);
        cr_assert(strncmp(r.err, "arb-train: error: ", 18) == 0, "%s: stderr:\n%s", bad[i][0],
                  r.err);
        th_result_free(&r);
    }
    train(&r, ARGS("--help"), NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "Usage: arb-train") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "--e-layers") != NULL);
    cr_assert_eq(r.err[0], '\0', "--help wrote to stderr: %s", r.err);
    th_result_free(&r);
    train(&r, ARGS("--version"), NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strncmp(r.out, "arb-train ", 10) == 0, "%s", r.out);
    th_result_free(&r);

    /* The environment is read, and a flag beats it. */
    train(&r, ARGS("--config", "tiny", "--steps", "1"),
          (const char *const[]){"ARB_BACKEND=nonsense", NULL});
    cr_assert_eq(r.status, 0, "--backend cpu must beat ARB_BACKEND:\n%s", r.err);
    th_result_free(&r);
}

Test(train, missing_data_names_fetch_corpus)
{
    char missing[160];
    th_path(missing, sizeof(missing), "no-such-corpus.txt");
    th_result r;
    train(&r, ARGS("--data", missing), NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, missing) != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "tools/fetch-corpus.sh") != NULL, "%s", r.err);
    th_result_free(&r);
}

/* Parse dump-shapes output with the engine's own shapes.txt parser. */
static void parse_shapes(const char *text, const char *name)
{
    arb_shapes shapes = {0};
    arb_err err = {0};
    cr_assert_eq(arb_shapes_parse(text, strlen(text), name, &shapes, &err), ARB_OK, "%s: %s",
                 name, err.msg);
    arb_expanded *specs = NULL;
    int count = 0;
    cr_assert_eq(arb_shapes_expand(&shapes, ARB_PREC_FP32, NULL, &specs, &count, &err), ARB_OK,
                 "%s", err.msg);
    cr_assert_gt(count, 10, "%s expands to %d kernels", name, count);
    free(specs);
    arb_shapes_free(&shapes);
}

Test(train, dump_shapes_base)
{
    th_result r;
    train(&r, ARGS("--dump-shapes", "--config", "base"), NULL);
    expect_ok(&r);
    const char *want[] = {
        "embed M=16384 V=256 D=256 gs=64 update=grad\n",
        "rmsnorm M=1024 D=4096 gs=64\n",
        "linear M=1024 N=4096 K=4096 gs=64 update=grad precision=bf16x2\n",
        "linear M=1024 N=256 K=4096 gs=64 update=step precision=bf16x2\n",
        "kernel=gather_context M=1024 K=16\n",
        "kernel=relu_fwd M=4194304 variant=1\n",
        "kernel=xent_bwd M=1024 N=256\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert(strstr(r.out, want[i]) != NULL, "missing '%s' in:\n%s", want[i], r.out);
    parse_shapes(r.out, "dump-shapes base");
    th_result_free(&r);
}

Test(train, shipped_prewarm_shapes_match_dump_shapes)
{
    const char *configs[] = {"tiny", "small", "base"};
    for (int i = 0; i < 3; i++) {
        th_result r;
        train(&r, ARGS("--dump-shapes", "--config", configs[i]), NULL);
        expect_ok(&r);
        char path[512];
        snprintf(path, sizeof(path), "%s/prewarm/shapes/%s.txt", ARB_SOURCE_DIR, configs[i]);
        uint8_t *shipped;
        size_t len = th_file_read(path, &shipped);
        cr_assert_eq(len, strlen(r.out), "%s differs from --dump-shapes --config %s", path,
                     configs[i]);
        cr_assert_eq(memcmp(shipped, r.out, len), 0, "%s differs from --dump-shapes --config %s",
                     path, configs[i]);
        parse_shapes(r.out, path);
        free(shipped);
        th_result_free(&r);
    }
}
