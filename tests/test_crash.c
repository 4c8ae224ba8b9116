/*
 * test_crash.c - crash tests: arb's programs killed with kill -9 at random
 * moments, then what they left on disk is checked.
 *
 *   - Several arb-prewarm processes fill one kernel cache at once and are
 *     killed at random delays, round after round. After every round the
 *     cache passes `arb-cache verify`, and every kernel a killed prewarm
 *     reported compiled (its "[i/n] compiled ..." line on stderr, printed
 *     only once the entry was committed and read back: check_stored() in
 *     prewarm/main.c) is in the cache, as `arb-prewarm --dry-run` sees it.
 *     A last, unkilled prewarm then finds everything: compiled + cached =
 *     all, failed = 0.
 *   - arb-train --checkpoint F --checkpoint-every 1 is killed at random
 *     moments (start-up, steps, checkpoint writes), resuming from F each
 *     round. After every kill F is absent (no checkpoint completed yet) or
 *     complete: its size field, magic, version and SHA-256 check here
 *     (docs/checkpoint-format.md), its step never goes back (the old or the
 *     new one), and `arb-train --resume F` loads it (exit 0). A last clean
 *     run sweeps every stale F.tmp.<pid> (a killed writer's), keeps a live
 *     process's, and leaves none of its own.
 *
 * Each test prints its figures (kills, entries reported stored, entries
 * lost, checkpoints verified) on stderr. The kill delays come from a seed
 * printed there too; ARB_CRASH_SEED=N repeats a run's delays. Each test
 * first times one unkilled run of the program and draws its kill delays
 * over about that span, so a slow (sanitizer) build is killed at the same
 * points of its work as a fast one; the number of rounds is a minimum, then
 * as many more as fit a time budget of 12-15 s a test (on 2 cores the file
 * takes about 10 s in a Release build, 15-20 s in Debug, 30 s under ASan).
 * ARB_CRASH_SCALE=N multiplies the rounds and the budget (the long run:
 * ARB_CRASH_SCALE=10, a few minutes).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint_doc.h"
#include "files.h"
#include "harness.h"
#include "proc.h"

#define PREWARM ARB_BINARY_DIR "/prewarm/arb-prewarm"
#define CACHE_TOOL ARB_BINARY_DIR "/tools/arb-cache"
#define TRAIN ARB_BINARY_DIR "/train/arb-train"

/* ---- randomness, time, processes ------------------------------------------------- */

static uint64_t rng; /* the state of th_splitmix64: kill delays, shuffles, the corpus */

/* Seed the delays (printed, so a failing run can be repeated). */
static void seed_random(const char *test)
{
    const char *s = getenv("ARB_CRASH_SEED");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rng = s && s[0] ? strtoull(s, NULL, 10)
                    : (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
    fprintf(stderr, "%s: ARB_CRASH_SEED=%llu\n", test, (unsigned long long)rng);
}

static int scale(void)
{
    const char *s = getenv("ARB_CRASH_SCALE");
    int n = s && s[0] ? atoi(s) : 1;
    return n < 1 ? 1 : n;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void make_dir(void) { th_dir_make("arb-crash-test"); }

/* Run `prog` with argv (argv[0] given) to its end, the output captured. */
static th_result run(const char *prog, const char *const *argv)
{
    return th_run(&(th_cmd){.prog = prog, .argv = argv});
}

/* Start `prog` with argv, stdout and stderr into the named files. */
static pid_t spawn(const char *prog, const char *const *argv, const char *out, const char *err)
{
    return th_spawn(&(th_cmd){.prog = prog, .argv = argv, .out = out, .err = err});
}

/* ---- prewarm ---------------------------------------------------------------------- */

#define PW_PROCS 3        /* prewarms on one cache at a time */
#define PW_KERNELS 8      /* new kernels each round */
#define PW_MIN_ROUNDS 8   /* killing rounds: at least this many, */
#define PW_MAX_ROUNDS 24  /* and up to this many while within */
#define PW_BUDGET_S 12.0  /* this many seconds (all three times ARB_CRASH_SCALE) */

/* The kernel of round r, index i: an elementwise relu_fwd (~0.05 s of NVRTC
 * each), with an element count of its own so every one is a new entry. */
static int kernel_m(int round, int i) { return 1024 + 8 * (round * PW_KERNELS + i); }

static void write_shapes(const char *path, const int *ms, int n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    fprintf(f, "# crash test: relu_fwd kernels\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "kernel=relu_fwd M=%d\n", ms[i]);
    cr_assert_eq(fclose(f), 0);
}

/* The kernels a prewarm reported compiled: "[i/n] compiled WHAT (S s)\n"
 * lines (complete ones only: a line cut by the kill is not a report). */
static int reported(const char *err, char (*what)[320], int max)
{
    int n = 0;
    for (const char *p = err; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        const char *c = strstr(p, "] compiled ");
        if (p[0] == '[' && c && c < nl) {
            const char *start = c + strlen("] compiled ");
            const char *end = nl;
            while (end > start && *end != '(')
                end--;
            cr_assert(end > start + 1 && n < max, "odd progress line: %.*s", (int)(nl - p), p);
            snprintf(what[n], sizeof(what[n]), "%.*s", (int)(end - 1 - start), start);
            n++;
        }
        p = nl + 1;
    }
    return n;
}

/* Is WHAT listed as "cached  FILE:LINE: WHAT" by a dry run? */
static int dry_run_cached(const char *listing, const char *what)
{
    size_t wl = strlen(what);
    for (const char *p = listing; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, "cached ", 7) == 0 && len >= wl + 2 &&
            strncmp(p + len - wl - 2, ": ", 2) == 0 && strncmp(p + len - wl, what, wl) == 0)
            return 1;
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static void expect_cache_verifies(const char *cache, const char *when)
{
    th_result r =
        run(CACHE_TOOL, (const char *const[]){"arb-cache", "--cache", cache, "verify", NULL});
    cr_assert_eq(r.status, 0, "arb-cache verify %s exited %d\n%s%s", when, r.status, r.out,
                 r.err);
    th_result_free(&r);
}

Test(crash, killed_prewarms_lose_no_reported_kernel, .init = make_dir, .fini = th_dir_remove,
     .timeout = 600)
{
    seed_random("crash.prewarm");
    const int min_rounds = PW_MIN_ROUNDS * scale(), max_rounds = PW_MAX_ROUNDS * scale();
    const double budget_ms = PW_BUDGET_S * 1e3 * scale();
    char cache[128], all_shapes[128];
    th_path(cache, sizeof(cache), "kernels.sqlite");
    th_path(all_shapes, sizeof(all_shapes), "all.txt");
    int *all = calloc((size_t)max_rounds * PW_KERNELS, sizeof(int));
    char *claimed = calloc((size_t)max_rounds * PW_KERNELS, 1); /* reported by anyone */
    cr_assert(all && claimed);
    static char what[PW_KERNELS * PW_PROCS][320];
    int kills = 0, finished = 0, stored = 0, stored_by_killed = 0, lost = 0, rounds = 0;

    /* How long one prewarm of a round's kernels takes here, alone, on a
     * cache of its own (a sanitizer build is several times slower): the
     * kill delays are drawn from [0, 1.2 x that): three processes share
     * the cores, so each takes longer than that, and the kills fall in
     * start-up, in compiles, in cache writes, and now and then after the
     * end. */
    char calib[128], calib_cache[128];
    th_path(calib, sizeof(calib), "calibrate.txt");
    th_path(calib_cache, sizeof(calib_cache), "calibrate.sqlite");
    for (int i = 0; i < PW_KERNELS; i++)
        all[i] = kernel_m(0, i);
    write_shapes(calib, all, PW_KERNELS);
    double t0 = now_ms();
    th_result cr = run(PREWARM, (const char *const[]){"arb-prewarm", "--arch", "sm_90", "--cache",
                                                      calib_cache, "--jobs", "1", calib, NULL});
    cr_assert_eq(cr.status, 0, "calibration prewarm exited %d\n%s%s", cr.status, cr.out, cr.err);
    th_result_free(&cr);
    int64_t window = (int64_t)(1.2 * (now_ms() - t0)) + 1;
    t0 = now_ms();

    for (int round = 0; round < max_rounds && (round < min_rounds || now_ms() - t0 < budget_ms);
         round++) {
        rounds = round + 1;
        for (int i = 0; i < PW_KERNELS; i++)
            all[round * PW_KERNELS + i] = kernel_m(round, i);
        pid_t pid[PW_PROCS];
        int64_t kill_at[PW_PROCS];
        char err[PW_PROCS][128];
        for (int p = 0; p < PW_PROCS; p++) {
            /* Each process its own order of this round's kernels: they race
             * for the same entries and write different ones at once. */
            int ms[PW_KERNELS];
            for (int i = 0; i < PW_KERNELS; i++)
                ms[i] = kernel_m(round, i);
            for (int i = PW_KERNELS - 1; i > 0; i--) {
                int j = (int)(th_splitmix64(&rng) % (uint64_t)(i + 1)), t = ms[i];
                ms[i] = ms[j];
                ms[j] = t;
            }
            char shapes[128], out[128], name[32];
            snprintf(name, sizeof(name), "shapes.%d.%d", round, p);
            th_path(shapes, sizeof(shapes), name);
            write_shapes(shapes, ms, PW_KERNELS);
            snprintf(name, sizeof(name), "out.%d.%d", round, p);
            th_path(out, sizeof(out), name);
            snprintf(name, sizeof(name), "err.%d.%d", round, p);
            th_path(err[p], sizeof(err[p]), name);
            pid[p] = spawn(PREWARM,
                           (const char *const[]){"arb-prewarm", "--arch", "sm_90", "--cache",
                                                 cache, "--jobs", "1", shapes, NULL},
                           out, err[p]);
            kill_at[p] = (int64_t)(th_splitmix64(&rng) % (uint64_t)window);
        }
        /* Kill each at its moment (in order of the moments). */
        double start = now_ms();
        int done[PW_PROCS] = {0};
        for (int k = 0; k < PW_PROCS; k++) {
            int first = -1;
            for (int p = 0; p < PW_PROCS; p++)
                if (!done[p] && (first < 0 || kill_at[p] < kill_at[first]))
                    first = p;
            int64_t wait = kill_at[first] - (int64_t)(now_ms() - start);
            if (wait > 0)
                sleep_ms(wait);
            kill(pid[first], SIGKILL); /* a finished one is a zombie: harmless */
            done[first] = 1;
        }
        int n = 0, round_kills = 0; /* kernels reported compiled this round, kills */
        for (int p = 0; p < PW_PROCS; p++) {
            int status = th_reap(pid[p]);
            char *text = th_file_slurp(err[p], NULL);
            int got = reported(text, what + n, (int)(sizeof(what) / sizeof(what[0])) - n);
            if (status == 128 + SIGKILL) {
                kills++;
                round_kills++;
                stored_by_killed += got;
            } else {
                cr_assert_eq(status, 0, "an unkilled prewarm exited %d:\n%s", status, text);
                finished++;
            }
            n += got;
            free(text);
        }
        /* The load of the machine may change under us (ctest -j): when most
         * processes finished the window was too long, when none got as far
         * as a kernel too short. */
        if (round_kills < (PW_PROCS + 1) / 2)
            window = window * 3 / 4 + 1;
        else if (n == 0)
            window = window * 3 / 2;
        /* Every kernel any of them reported must now be in the cache. */
        stored += n;
        if (n > 0) {
            write_shapes(all_shapes, all, (round + 1) * PW_KERNELS);
            th_result dry =
                run(PREWARM, (const char *const[]){"arb-prewarm", "--arch", "sm_90", "--cache",
                                                   cache, "--dry-run", all_shapes, NULL});
            cr_assert_eq(dry.status, 0, "dry run exited %d\n%s%s", dry.status, dry.out, dry.err);
            for (int i = 0; i < n; i++) {
                int m = 0;
                cr_assert_eq(sscanf(what[i], "relu_fwd M=%d", &m), 1, "%s", what[i]);
                int index = (m - kernel_m(0, 0)) / (kernel_m(0, 1) - kernel_m(0, 0));
                cr_assert(index >= 0 && index < rounds * PW_KERNELS, "%s", what[i]);
                claimed[index] = 1;
                if (!dry_run_cached(dry.out, what[i])) {
                    lost++;
                    fprintf(stderr, "crash.prewarm: LOST: %s (round %d)\n", what[i], round);
                }
            }
            th_result_free(&dry);
        }
        expect_cache_verifies(cache, "after a round of kills");
    }

    /* A last prewarm of everything, not killed, completes it. */
    write_shapes(all_shapes, all, rounds * PW_KERNELS);
    th_result r = run(PREWARM, (const char *const[]){"arb-prewarm", "--arch", "sm_90", "--cache",
                                                     cache, "--jobs", "2", all_shapes, NULL});
    cr_assert_eq(r.status, 0, "final prewarm exited %d\n%s%s", r.status, r.out, r.err);
    int compiled = -1, cached = -1, failed = -1;
    const char *line = strstr(r.out, "prewarm: compiled=");
    cr_assert_not_null(line, "no summary:\n%s%s", r.out, r.err);
    cr_assert_eq(sscanf(line, "prewarm: compiled=%d cached=%d failed=%d", &compiled, &cached,
                        &failed),
                 3, "%s", line);
    cr_assert_eq(compiled + cached, rounds * PW_KERNELS, "%s", r.out);
    cr_assert_eq(failed, 0, "%s%s", r.out, r.err);
    int distinct = 0;
    for (int i = 0; i < rounds * PW_KERNELS; i++)
        distinct += claimed[i];
    /* Everything ever reported is among what the last run found cached. */
    cr_assert_geq(cached, distinct, "%s", r.out);
    th_result_free(&r);
    expect_cache_verifies(cache, "after the final prewarm");
    free(all);
    free(claimed);

    fprintf(stderr,
            "crash.prewarm: rounds=%d processes=%d kill_window_ms=%lld kills=%d finished=%d "
            "reports=%d (by killed processes %d) entries_reported_stored=%d entries_lost=%d "
            "final_compiled=%d final_cached=%d seconds=%.1f\n",
            rounds, rounds * PW_PROCS, (long long)window, kills, finished, stored,
            stored_by_killed, distinct, lost, compiled, cached,
            (now_ms() - t0) / 1e3);
    cr_assert_eq(lost, 0, "entries reported stored were lost");
    cr_assert_geq(kills, rounds / 2, "too few kills to mean anything");
    cr_assert_gt(stored_by_killed, 0, "no killed prewarm got as far as storing a kernel");
}

/* ---- arb-train checkpoints ---------------------------------------------------------- */

#define TR_MIN_KILLS 30   /* kills: at least this many, */
#define TR_MAX_KILLS 100  /* and up to this many while within */
#define TR_BUDGET_S 15.0  /* this many seconds (all three times ARB_CRASH_SCALE) */

/* Sentences of a small grammar: enough for a tiny model to train on. */
static void write_corpus(const char *path, size_t bytes)
{
    static const char *const words[] = {"the",   "a",      "old",    "dog",     "sees",
                                        "river", "house",  "slowly", "finds",   "city",
                                        "green", "letter", "market", "follows", "again"};
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t saved = rng;
    rng = 99;
    for (size_t n = 0; n < bytes;) {
        const char *w = words[th_splitmix64(&rng) % (sizeof(words) / sizeof(words[0]))];
        n += (size_t)fprintf(f, "%s%s", w, th_splitmix64(&rng) % 7 == 0 ? ".\n" : " ");
    }
    rng = saved;
    cr_assert_eq(fclose(f), 0);
}

/* Check a checkpoint file is complete, independently of train/checkpoint.c
 * (tests/harness/checkpoint_doc.c reads it as docs/checkpoint-format.md
 * describes: magic, version 1, the size field equal to the length, the
 * trailing SHA-256, the tensor table). Returns its step. */
static int64_t checkpoint_step(const char *path)
{
    th_ckpt v;
    th_ckpt_load(path, &v);
    int64_t step = (int64_t)v.step;
    th_ckpt_free(&v);
    return step;
}

/* The temporary files of writers to `base` in th_dir: "<base>.tmp.<pid>". */
static int count_temps(const char *base)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s.tmp.", base);
    DIR *d = opendir(th_dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* argv of arb-train: the common flags, then `extra` (NULL-terminated). */
static const char **train_argv(const char **argv, const char *corpus, const char *const *extra)
{
    int n = 0;
    static const char *const common[] = {"arb-train", "--backend",        "cpu", "--threads",
                                         "1",         "--eval-positions", "256", "--data"};
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        argv[n++] = common[i];
    argv[n++] = corpus;
    for (int i = 0; extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return argv;
}

Test(crash, killed_trainer_leaves_old_or_new_checkpoint, .init = make_dir, .fini = th_dir_remove,
     .timeout = 600)
{
    seed_random("crash.train");
    const int min_rounds = TR_MIN_KILLS * scale(), max_rounds = TR_MAX_KILLS * scale();
    const double budget_ms = TR_BUDGET_S * 1e3 * scale();
    char corpus[128], ck[128], out[128], err[128];
    th_path(corpus, sizeof(corpus), "corpus.txt");
    th_path(ck, sizeof(ck), "ck");
    th_path(out, sizeof(out), "train.out");
    th_path(err, sizeof(err), "train.err");
    write_corpus(corpus, 60 * 1000);
    int64_t last = -1; /* step of the last checkpoint seen; -1: none yet */
    int kills = 0, verified = 0, absent = 0, temps_seen = 0, advanced = 0, rounds = 0;

    /* How long a run of five steps, a checkpoint each, takes here (a
     * sanitizer build is several times slower): the kill delays are drawn
     * from [0, that), so about a quarter of the kills fall in start-up
     * (reading, applying, sweeping) and the rest in steps and checkpoint
     * writes. */
    char calib[128];
    th_path(calib, sizeof(calib), "calibrate.ck");
    const char *cargv0[32];
    double t0 = now_ms();
    th_result cr = run(
        TRAIN, train_argv(cargv0, corpus,
                          (const char *const[]){"--config", "tiny", "--steps", "5", "--checkpoint",
                                                calib, "--checkpoint-every", "1", NULL}));
    cr_assert_eq(cr.status, 0, "calibration run exited %d\n%s%s", cr.status, cr.out, cr.err);
    th_result_free(&cr);
    cr_assert_eq(checkpoint_step(calib), 5);
    int64_t window = (int64_t)(now_ms() - t0) + 1;
    t0 = now_ms();

    for (int round = 0; round < max_rounds && (round < min_rounds || now_ms() - t0 < budget_ms);
         round++) {
        rounds = round + 1;
        /* Resume from F when there is one: the runs go on where the killed
         * one stopped, and their start-up (read, apply, sweep) is killed too. */
        const char *argv[32];
        if (last >= 0)
            train_argv(argv, corpus,
                       (const char *const[]){"--resume", ck, "--steps", "1000000", "--checkpoint",
                                             ck, "--checkpoint-every", "1", NULL});
        else
            train_argv(argv, corpus,
                       (const char *const[]){"--config", "tiny", "--steps", "1000000",
                                             "--checkpoint", ck, "--checkpoint-every", "1", NULL});
        pid_t pid = spawn(TRAIN, argv, out, err);
        /* The first rounds die young (start-up, the first step), so the
         * "no checkpoint yet" case is met too. */
        int64_t span = round < 3 ? window / 5 + 1 : window;
        sleep_ms((int64_t)(th_splitmix64(&rng) % (uint64_t)span));
        kill(pid, SIGKILL);
        int status = th_reap(pid);
        char *text = th_file_slurp(err, NULL);
        cr_assert_eq(status, 128 + SIGKILL, "arb-train ended before its kill (exit %d):\n%s",
                     status, text);
        free(text);
        kills++;
        char temp[192];
        snprintf(temp, sizeof(temp), "%s.tmp.%ld", ck, (long)pid);
        temps_seen += th_exists(temp); /* killed inside a checkpoint write */

        if (!th_exists(ck)) {
            /* Only before the first checkpoint ever completed. */
            cr_assert_eq(last, -1, "the checkpoint (step %lld) vanished", (long long)last);
            absent++;
            if (round >= 3)
                window = window * 5 / 4; /* too short for a first checkpoint, at this load */
            continue;
        }
        int64_t step = checkpoint_step(ck);
        cr_assert_geq(step, last, "the checkpoint went back from step %lld to %lld",
                      (long long)last, (long long)step);
        advanced += step > last;
        last = step;
        /* It loads: read, every check, applied to a model (nothing to train). */
        char steps[32];
        snprintf(steps, sizeof(steps), "%lld", (long long)step);
        const char *rargv[32];
        th_result r =
            run(TRAIN, train_argv(rargv, corpus,
                                  (const char *const[]){"--resume", ck, "--steps", steps, NULL}));
        cr_assert_eq(r.status, 0, "--resume %s (step %lld) exited %d\n%s%s", ck,
                     (long long)step, r.status, r.out, r.err);
        cr_assert_not_null(strstr(r.out, "resumed from"), "%s", r.out);
        th_result_free(&r);
        verified++;
    }
    cr_assert_geq(last, 1, "no checkpoint completed in %d rounds", rounds);

    /* Stale temp files: a killed writer's (plant one: a pid that has
     * exited) goes; a live process's (ours) stays. */
    pid_t dead = fork();
    cr_assert_geq(dead, 0);
    if (dead == 0)
        _exit(0);
    cr_assert_eq(th_reap(dead), 0);
    char stale[192], live[192];
    snprintf(stale, sizeof(stale), "%s.tmp.%ld", ck, (long)dead);
    snprintf(live, sizeof(live), "%s.tmp.%ld", ck, (long)getpid());
    FILE *f = fopen(stale, "wb");
    cr_assert_not_null(f);
    fputs("half a checkpoint", f);
    fclose(f);
    f = fopen(live, "wb");
    cr_assert_not_null(f);
    fputs("a live writer's", f);
    fclose(f);
    int temps_before = count_temps("ck") - 1; /* all but the live one are stale */

    /* A clean run: three more steps, a checkpoint each. */
    char steps[32];
    snprintf(steps, sizeof(steps), "%lld", (long long)last + 3);
    const char *cargv[32];
    th_result r = run(
        TRAIN, train_argv(cargv, corpus,
                          (const char *const[]){"--resume", ck, "--steps", steps, "--checkpoint",
                                                ck, "--checkpoint-every", "1", NULL}));
    cr_assert_eq(r.status, 0, "clean run exited %d\n%s%s", r.status, r.out, r.err);
    cr_assert_not_null(strstr(r.err, "stale temporary file"), "no sweep reported:\n%s", r.err);
    th_result_free(&r);
    cr_assert_eq(checkpoint_step(ck), last + 3);
    cr_assert(!th_exists(stale), "%s survived the sweep", stale);
    cr_assert(th_exists(live), "the sweep removed a live process's %s", live);
    unlink(live);
    cr_assert_eq(count_temps("ck"), 0, "temporary files survived a clean run");

    fprintf(stderr,
            "crash.train: kill_window_ms=%lld kills=%d checkpoints_verified=%d "
            "checkpoints_advanced=%d absent_before_first=%d temp_files_left_by_kills=%d "
            "stale_swept=%d final_step=%lld torn=0 seconds=%.1f\n",
            (long long)window, kills, verified, advanced, absent, temps_seen, temps_before,
            (long long)last + 3,
            (now_ms() - t0) / 1e3);
}
