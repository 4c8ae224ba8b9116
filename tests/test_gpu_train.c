/*
 * test_gpu_train.c - arb-train on the jit backend against the cpu backend:
 * `tiny` from the same seed for 20 steps, the loss of every step compared
 * (the JSON log of each run), and the integer state bytes that differ
 * after 20 steps reported. They do differ: the embedding's values are
 * T * 2^0 and the first layer's weights T * 2^-3, so many pre-activations
 * of the second layer are sums that cancel to zero up to rounding; the
 * sign of that rounding (GPU reductions add in another order) decides the
 * ReLU mask, and with it a few gradient rows and the votes that follow.
 * Each op agrees with the cpu to ~1e-7 from the same inputs (checked op by
 * op on an H200); the losses agree until T flips (step ~29 at theta 31).
 * Also the non-finite guard on the device: a forced NaN exits 3 naming the
 * step and leaves the checkpoint untouched, though the host only looks at
 * log points.
 *
 * Without a driver or a device each test prints "arb-skip: <reason>" and
 * skips. Every test compiles into a fresh kernel cache of its own.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/backend.h"
#include "files.h"
#include "harness.h"
#include "proc.h"

#define TRAIN ARB_BINARY_DIR "/train/arb-train"

static char corpus[512], cache_env[600];

static void write_corpus(const char *path, size_t bytes)
{
    static const char *const words[] = {"the", "river", "garden", "opens", "slowly", "a",
                                        "teacher", "finds", "letter", "morning", "green", "old"};
    uint64_t z = 99;
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    size_t written = 0;
    while (written < bytes) {
        z = z * 6364136223846793005ULL + 1442695040888963407ULL;
        const char *w = words[(z >> 33) % 12];
        written += (size_t)fprintf(f, "%s%s", w, (z >> 20) % 7 == 0 ? ".\n" : " ");
    }
    fclose(f);
}

static void setup(void)
{
    th_dir_make("arb-gpu-train");
    th_path(corpus, sizeof(corpus), "corpus.txt");
    snprintf(cache_env, sizeof(cache_env), "ARB_CACHE=%s", th_in_dir("kernels.sqlite"));
    write_corpus(corpus, 100 * 1000);
}

/* Skip the test ("arb-skip: ...") unless the jit backend can open. */
static void need_gpu(void) { arb_backend_close(th_open_jit_or_skip()); }

/* Run arb-train on `backend` with tiny, the test corpus and this test's
 * kernel cache, plus `args`; nan_env ("ARB_TEST_FORCE_NAN_STEP=N") may be NULL. */
static void train(th_result *r, const char *backend, const char *const *args, const char *nan_env)
{
    const char *argv[48] = {"arb-train", "--backend",        backend, "--config", "tiny", "--data",
                            corpus,      "--eval-positions", "1024"};
    int n = 9;
    for (int i = 0; args[i] && n < 47; i++)
        argv[n++] = args[i];
    *r = th_run(&(th_cmd){
        .prog = TRAIN, .argv = argv, .env = (const char *const[]){cache_env, nan_env, NULL}});
}

/* The "loss" of each JSON line of a --log file, indexed by step. */
static int read_losses(const char *path, double *loss, int max)
{
    char *text = th_file_slurp(path, NULL);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *s = strstr(line, "\"step\":"), *l = strstr(line, "\"loss\":");
        cr_assert(s && l, "log line: %s", line);
        int step = atoi(s + 7);
        if (step >= 1 && step <= max) {
            loss[step - 1] = strtod(l + 7, NULL);
            n++;
        }
    }
    free(text);
    return n;
}

TestSuite(gpu_train, .init = setup, .fini = th_dir_remove, .timeout = 600);

Test(gpu_train, tiny_jit_matches_cpu_for_20_steps)
{
    need_gpu();
    char cpu_log[160], jit_log[160], cpu_ck[160], jit_ck[160];
    th_path(cpu_log, sizeof(cpu_log), "cpu.jsonl");
    th_path(jit_log, sizeof(jit_log), "jit.jsonl");
    th_path(cpu_ck, sizeof(cpu_ck), "cpu.ck");
    th_path(jit_ck, sizeof(jit_ck), "jit.ck");
    th_result r;
    train(&r, "cpu",
          (const char *const[]){"--steps", "20", "--log-every", "1", "--log", cpu_log,
                                "--checkpoint", cpu_ck, NULL},
          NULL);
    cr_assert_eq(r.status, 0, "cpu run exited %d:\n%s%s", r.status, r.out, r.err);
    th_result_free(&r);
    train(&r, "jit",
          (const char *const[]){"--steps", "20", "--log-every", "1", "--log", jit_log,
                                "--checkpoint", jit_ck, NULL},
          NULL);
    cr_assert_eq(r.status, 0, "jit run exited %d:\n%s%s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "backend: jit") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "jit: ") != NULL, "no kernel statistics line:\n%s", r.out);
    printf("%s", r.out);
    th_result_free(&r);

    double lc[20], lj[20];
    cr_assert_eq(read_losses(cpu_log, lc, 20), 20);
    cr_assert_eq(read_losses(jit_log, lj, 20), 20);
    double worst = 0.0;
    for (int i = 0; i < 20; i++) {
        double rel = fabs(lj[i] - lc[i]) / fabs(lc[i]);
        if (rel > worst)
            worst = rel;
        cr_assert_leq(rel, 1e-3, "step %d: cpu loss %.6f, jit loss %.6f (rel %.2e)", i + 1,
                      lc[i], lj[i], rel);
    }

    size_t na, nb;
    char *a = th_file_slurp(cpu_ck, &na), *b = th_file_slurp(jit_ck, &nb);
    cr_assert_eq(na, nb, "checkpoint sizes differ");
    /* The state lies between the tensor table and the checksum; the header
     * is the same by construction (same config, rule, seed, step, data). */
    uint32_t count = (uint32_t)(unsigned char)a[152] | (uint32_t)(unsigned char)a[153] << 8;
    size_t begin = 160 + 72 * (size_t)count, end = na - 32, differ = 0;
    for (size_t i = begin; i < end; i++)
        differ += a[i] != b[i];
    cr_assert_eq(memcmp(a, b, begin), 0, "checkpoint headers differ");
    printf("gpu_train: 20 steps of tiny: worst loss difference %.2e relative; %zu of %zu integer "
           "state bytes differ between jit and cpu\n",
           worst, differ, end - begin);
    fflush(stdout);
    free(a);
    free(b);
}

Test(gpu_train, nonfinite_guard_on_the_device)
{
    need_gpu();
    char ck[160];
    th_path(ck, sizeof(ck), "guard.ck");
    th_result r;
    train(&r, "jit", (const char *const[]){"--steps", "10", "--checkpoint", ck, NULL}, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    th_result_free(&r);
    size_t n0, n1;
    char *before = th_file_slurp(ck, &n0);
    /* The host reads the guard only at step 20 (log and checkpoint point):
     * the device must have refused every update since step 13. */
    train(&r, "jit",
          (const char *const[]){"--steps", "40", "--resume", ck, "--checkpoint", ck,
                                "--log-every", "10", "--eval-every", "10", NULL},
          "ARB_TEST_FORCE_NAN_STEP=13");
    cr_assert_eq(r.status, 3, "exit %d\n%s%s", r.status, r.out, r.err);
    cr_assert(strstr(r.err, "step 13") != NULL, "%s", r.err);
    th_result_free(&r);
    char *after = th_file_slurp(ck, &n1);
    cr_assert_eq(n0, n1);
    cr_assert_eq(memcmp(before, after, n0), 0, "the checkpoint changed");
    free(before);
    free(after);
}

/* A step replayed from a captured CUDA graph computes what the eager step
 * computes: 30 steps of tiny (the first eager, then replays; the batch moves
 * on through the device step counter) against --graphs off. */
Test(gpu_train, graph_replay_matches_eager_steps)
{
    need_gpu();
    char eager_log[160], graph_log[160];
    th_path(eager_log, sizeof(eager_log), "eager.jsonl");
    th_path(graph_log, sizeof(graph_log), "graph.jsonl");
    th_result r;
    train(&r, "jit",
          (const char *const[]){"--steps", "30", "--log-every", "1", "--log", eager_log,
                                "--graphs", "off", NULL},
          NULL);
    cr_assert_eq(r.status, 0, "eager run exited %d:\n%s%s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "CUDA graphs off") != NULL, "%s", r.out);
    th_result_free(&r);
    train(&r, "jit",
          (const char *const[]){"--steps", "30", "--log-every", "1", "--log", graph_log,
                                "--graphs", "on", NULL},
          NULL);
    cr_assert_eq(r.status, 0, "graph run exited %d:\n%s%s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "CUDA graphs on") != NULL, "%s", r.out);
    th_result_free(&r);
    double le[30], lg[30];
    cr_assert_eq(read_losses(eager_log, le, 30), 30);
    cr_assert_eq(read_losses(graph_log, lg, 30), 30);
    int distinct = 0;
    for (int i = 0; i < 30; i++) {
        double rel = fabs(lg[i] - le[i]) / fabs(le[i]);
        cr_assert_leq(rel, 1e-3, "step %d: eager loss %.6f, graph loss %.6f", i + 1, le[i], lg[i]);
        distinct += i > 0 && lg[i] != lg[i - 1];
    }
    cr_assert_geq(distinct, 20, "graph replays repeated one batch's loss");
}
