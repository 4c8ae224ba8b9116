/*
 * test_prewarm.c - arb-prewarm end to end, as a user runs it: the built
 * program on a small shapes file with --arch sm_90 (NVRTC only, no GPU) and
 * a temporary --cache. Cold run compiles all, a rerun compiles nothing, two
 * concurrent runs leave exactly one entry per kernel, --dry-run compiles
 * nothing, errors exit with the documented codes, and Ctrl-C stops cleanly
 * with a resumable cache.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arb/cache.h"
#include "cache_fixture.h"
#include "files.h"
#include "proc.h"

#define PREWARM ARB_BINARY_DIR "/prewarm/arb-prewarm"

/* rmsnorm 2 + add + relu_bwd + linear (no update) 2 = 6 kernels; the last
 * line repeats the first and adds nothing. */
static const char small_shapes[] = "# a handful of kernels\n"
                                   "rmsnorm M=4 D=64 gs=32\n"
                                   "kernel=add M=1024\n"
                                   "kernel=relu_bwd M=1024\n"
                                   "linear M=16 N=32 K=32 gs=32 update=none\n"
                                   "rmsnorm M=4 D=64 gs=32   # duplicate: compiled once\n";
#define SMALL_COUNT 6

typedef struct run {
    int status; /* exit code, or 128 + signal */
    char out[16384];
    char err[65536];
} run;

typedef struct spawned {
    pid_t pid;
    char out_path[512], err_path[512];
} spawned;

static void make_dir(void) { th_dir_make("arb-prewarm-test"); }

static void write_file(const char *path, const char *text)
{
    th_file_write(path, text, strlen(text));
}

/* Start the program with argv (argv[0] is set here) and `env` as extra
 * NAME=value settings over a clean ARB_* environment (proc.h). */
static spawned spawn(const char *const *args, const char *const *env)
{
    spawned s;
    static int counter;
    counter++;
    snprintf(s.out_path, sizeof(s.out_path), "%s/out.%d", th_dir, counter);
    snprintf(s.err_path, sizeof(s.err_path), "%s/err.%d", th_dir, counter);
    const char *argv[32] = {"arb-prewarm"};
    for (int n = 1; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    s.pid = th_spawn(
        &(th_cmd){.prog = PREWARM, .argv = argv, .env = env, .out = s.out_path, .err = s.err_path});
    return s;
}

/* The file's text into buf (len bytes, cut short to fit); "" when it does
 * not exist. */
static void slurp(const char *path, char *buf, size_t len)
{
    char *text = th_file_slurp(path, NULL);
    snprintf(buf, len, "%s", text);
    free(text);
}

static void finish(spawned *s, run *r)
{
    r->status = th_reap(s->pid);
    slurp(s->out_path, r->out, sizeof(r->out));
    slurp(s->err_path, r->err, sizeof(r->err));
}

static void prewarm(run *r, const char *const *args, const char *const *env)
{
    spawned s = spawn(args, env);
    finish(&s, r);
}

typedef struct summary {
    int compiled, cached, failed;
    double seconds;
} summary;

static summary summary_of(const run *r)
{
    summary s = {-1, -1, -1, -1};
    const char *line = strstr(r->out, "prewarm: compiled=");
    cr_assert_not_null(line, "no summary line on stdout (exit %d)\nstdout:\n%s\nstderr:\n%s",
                       r->status, r->out, r->err);
    cr_assert_eq(sscanf(line, "prewarm: compiled=%d cached=%d failed=%d seconds=%lf", &s.compiled,
                        &s.cached, &s.failed, &s.seconds),
                 4, "summary: %s", line);
    return s;
}

static int64_t cache_entries(const char *path)
{
    arb_cache *cache = th_cache_open(path, NULL);
    arb_cache_summary sum;
    arb_err err = {0};
    cr_assert_eq(arb_cache_summarize(cache, &sum, &err), ARB_OK, "%s", err.msg);
    int64_t n = sum.entries;
    arb_cache_close(cache);
    return n;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, len) == 0)
            n++;
    return n;
}

static void setup_small(char *shapes, size_t shapes_len, char *cache, size_t cache_len)
{
    make_dir();
    th_path(shapes, shapes_len, "small.txt");
    th_path(cache, cache_len, "kernels.sqlite");
    write_file(shapes, small_shapes);
}

/* ---- tests -------------------------------------------------------------------------- */

Test(prewarm, compiles_all_then_rerun_compiles_nothing, .fini = th_dir_remove)
{
    char shapes[128], cache[128];
    setup_small(shapes, sizeof(shapes), cache, sizeof(cache));
    run r;
    prewarm(&r, (const char *const[]){"--arch", "sm_90", "--cache", cache, shapes, NULL}, NULL);
    cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
    summary s = summary_of(&r);
    cr_assert_eq(s.compiled, SMALL_COUNT, "%s%s", r.out, r.err);
    cr_assert_eq(s.cached, 0);
    cr_assert_eq(s.failed, 0);
    /* Not a terminal: one plain line per compiled kernel. */
    cr_assert_eq(count_lines_starting(r.err, "["), SMALL_COUNT, "%s", r.err);
    cr_assert(strstr(r.err, "compiled rmsnorm_fwd M=4 N=1 K=64 gs=32") != NULL, "%s", r.err);
    cr_assert_eq(cache_entries(cache), SMALL_COUNT);

    prewarm(&r, (const char *const[]){"--arch", "sm_90", "--cache", cache, "--jobs", "1", shapes,
                                      NULL},
            NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    s = summary_of(&r);
    cr_assert_eq(s.compiled, 0);
    cr_assert_eq(s.cached, SMALL_COUNT);
    cr_assert_eq(s.failed, 0);
    cr_assert_eq(count_lines_starting(r.err, "["), 0, "a rerun prints no kernel lines: %s", r.err);
}

Test(prewarm, env_settings_and_strict_mode, .fini = th_dir_remove)
{
    char shapes[128], cache[128], env_cache[192];
    setup_small(shapes, sizeof(shapes), cache, sizeof(cache));
    snprintf(env_cache, sizeof(env_cache), "ARB_CACHE=%s", cache);
    run r;
    /* ARB_ARCH and ARB_CACHE as the environment gives them; strict mode is
     * overridden (a prewarm exists to compile). */
    prewarm(&r, (const char *const[]){"-q", shapes, NULL},
            (const char *const[]){"ARB_ARCH=sm_90", "ARB_CACHE_MODE=strict", env_cache, NULL});
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    summary s = summary_of(&r);
    cr_assert_eq(s.compiled, SMALL_COUNT);
    cr_assert_str_eq(r.err, "", "--quiet prints no progress: %s", r.err);
    cr_assert_eq(cache_entries(cache), SMALL_COUNT);
}

Test(prewarm, concurrent_runs_share_one_cache, .fini = th_dir_remove)
{
    char shapes[128], cache[128];
    setup_small(shapes, sizeof(shapes), cache, sizeof(cache));
    const char *const args[] = {"--arch", "sm_90", "--cache", cache, "--jobs", "2", shapes, NULL};
    spawned a = spawn(args, NULL);
    spawned b = spawn(args, NULL);
    run ra, rb;
    finish(&a, &ra);
    finish(&b, &rb);
    cr_assert_eq(ra.status, 0, "first: %s%s", ra.out, ra.err);
    cr_assert_eq(rb.status, 0, "second: %s%s", rb.out, rb.err);
    summary sa = summary_of(&ra), sb = summary_of(&rb);
    cr_assert_eq(sa.failed + sb.failed, 0);
    cr_assert_eq(sa.compiled + sa.cached, SMALL_COUNT);
    cr_assert_eq(sb.compiled + sb.cached, SMALL_COUNT);
    cr_assert_eq(cache_entries(cache), SMALL_COUNT, "exactly one entry per kernel");

    run rc;
    prewarm(&rc, args, NULL);
    summary sc = summary_of(&rc);
    cr_assert_eq(sc.compiled, 0);
    cr_assert_eq(sc.cached, SMALL_COUNT);
}

Test(prewarm, dry_run_lists_without_compiling, .fini = th_dir_remove)
{
    char shapes[128], cache[128];
    setup_small(shapes, sizeof(shapes), cache, sizeof(cache));
    run r;
    const char *const dry[] = {"--arch", "sm_90", "--cache", cache, "--dry-run", shapes, NULL};
    prewarm(&r, dry, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_eq(count_lines_starting(r.out, "compile "), SMALL_COUNT, "%s", r.out);
    cr_assert(strstr(r.out, "small.txt:2: rmsnorm_fwd M=4 N=1 K=64 gs=32") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "prewarm: dry-run to_compile=6 cached=0") != NULL, "%s", r.out);
    struct stat sb;
    cr_assert_neq(stat(cache, &sb), 0, "a dry run creates no cache file");

    /* Fill part of the cache, then the dry run tells cached from not. */
    char part[128];
    th_path(part, sizeof(part), "part.txt");
    write_file(part, "kernel=add M=1024\n");
    prewarm(&r, (const char *const[]){"--arch", "sm_90", "--cache", cache, part, NULL}, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    prewarm(&r, dry, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_eq(count_lines_starting(r.out, "cached "), 1, "%s", r.out);
    cr_assert(strstr(r.out, "prewarm: dry-run to_compile=5 cached=1") != NULL, "%s", r.out);
    cr_assert_eq(cache_entries(cache), 1, "the dry run compiled nothing");
}

Test(prewarm, parse_error_exits_2_with_the_place, .fini = th_dir_remove)
{
    make_dir();
    char bad[128];
    th_path(bad, sizeof(bad), "bad.txt");
    write_file(bad, "linear M=4 N=8 K=16 gs=16\n"
                    "linear M=4 N=8 K=16 gs=16 Q=1\n");
    run r;
    prewarm(&r, (const char *const[]){"--arch", "sm_90", "--cache", "/nonexistent/x.sqlite", bad,
                                      NULL},
            NULL);
    cr_assert_eq(r.status, 2, "exit %d\n%s", r.status, r.err);
    char want[192];
    snprintf(want, sizeof(want), "%s:2:27: expected a key of linear", bad);
    cr_assert(strstr(r.err, want) != NULL, "stderr lacks \"%s\":\n%s", want, r.err);
    cr_assert_eq(strstr(r.out, "prewarm: compiled="), NULL, "no summary after a usage error");

    /* A missing shapes file is an input error too. */
    char missing[128];
    th_path(missing, sizeof(missing), "missing.txt");
    prewarm(&r, (const char *const[]){"--arch", "sm_90", missing, NULL}, NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, missing) != NULL, "%s", r.err);
}

Test(prewarm, usage_errors_exit_2, .fini = th_dir_remove)
{
    make_dir();
    run r;
    prewarm(&r, (const char *const[]){"--no-such-flag", "x.txt", NULL}, NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "--no-such-flag") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "--help") != NULL, "points at --help: %s", r.err);

    prewarm(&r, (const char *const[]){"--arch", "sm_90", NULL}, NULL);
    cr_assert_eq(r.status, 2, "no shapes file: %s", r.err);
    prewarm(&r, (const char *const[]){"a.txt", "b.txt", NULL}, NULL);
    cr_assert_eq(r.status, 2, "two shapes files: %s", r.err);
    prewarm(&r, (const char *const[]){"--jobs", "0", "a.txt", NULL}, NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    prewarm(&r, (const char *const[]){"-j", "2x", "a.txt", NULL}, NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    prewarm(&r, (const char *const[]){"--jobs", NULL}, NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    prewarm(&r, (const char *const[]){"--arch", "compute_90", "a.txt", NULL}, NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
}

Test(prewarm, help_and_version_go_to_stdout, .fini = th_dir_remove)
{
    make_dir();
    run r;
    prewarm(&r, (const char *const[]){"--help", NULL}, NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "Usage: arb-prewarm [options] SHAPES.txt") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "--dry-run") != NULL);
    cr_assert_str_eq(r.err, "");
    prewarm(&r, (const char *const[]){"--version", NULL}, NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strncmp(r.out, "arb-prewarm (arb) ", 18) == 0, "%s", r.out);
    cr_assert_str_eq(r.err, "");
}

Test(prewarm, compile_failures_print_the_log_and_exit_1, .fini = th_dir_remove)
{
    char shapes[128], cache[128];
    make_dir();
    th_path(shapes, sizeof(shapes), "one.txt");
    th_path(cache, sizeof(cache), "kernels.sqlite");
    write_file(shapes, "\nkernel=add M=1024\n");
    run r;
    /* An option NVRTC rejects fails every compile (and is part of the key,
     * so nothing cached under other options is mistaken for it). */
    prewarm(&r, (const char *const[]){"--arch", "sm_90", "--cache", cache, shapes, NULL},
            (const char *const[]){"ARB_NVRTC_FLAGS=--no-such-nvrtc-option", NULL});
    cr_assert_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
    summary s = summary_of(&r);
    cr_assert_eq(s.failed, 1);
    cr_assert_eq(s.compiled, 0);
    char want[192];
    snprintf(want, sizeof(want), "%s:2: error: add M=1024", shapes);
    cr_assert(strstr(r.err, want) != NULL, "stderr lacks \"%s\":\n%s", want, r.err);
    cr_assert(strstr(r.err, "NVRTC") != NULL || strstr(r.err, "nvrtc") != NULL, "%s", r.err);
    cr_assert_eq(cache_entries(cache), 0);
}

Test(prewarm, interrupt_stops_cleanly_and_resumes, .fini = th_dir_remove)
{
    char shapes[128], cache[128];
    make_dir();
    th_path(shapes, sizeof(shapes), "many.txt");
    th_path(cache, sizeof(cache), "kernels.sqlite");
    /* 16 GEMM kernels, one job: several seconds of work, cut short. */
    char text[1024] = "";
    for (int m = 1; m <= 8; m++) {
        char line[96];
        snprintf(line, sizeof(line), "linear M=%d N=32 K=32 gs=32 update=none\n", 16 * m);
        strcat(text, line);
    }
    write_file(shapes, text);
    const char *const args[] = {"--arch", "sm_90", "--cache", cache, "--jobs", "1", shapes, NULL};
    /* The driver's compute cache (~/.nv) would make repeat compiles ~20 ms
     * each on a GPU machine: too fast to interrupt. */
    spawned p = spawn(args, (const char *const[]){"CUDA_CACHE_DISABLE=1", NULL});
    /* Interrupt once the first kernel is done: mid-run, whatever the speed. */
    char progress[4096] = "";
    for (int waited = 0; !strstr(progress, "[1/16] compiled") && waited < 60000; waited += 10) {
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
        slurp(p.err_path, progress, sizeof(progress));
    }
    kill(p.pid, SIGINT);
    run r;
    finish(&p, &r);
    cr_assert_eq(r.status, 130, "exit %d\n%s%s", r.status, r.out, r.err);
    summary s = summary_of(&r);
    cr_assert_eq(s.failed, 0);
    cr_assert_geq(s.compiled, 1, "%s", r.out);
    cr_assert_lt(s.compiled, 16, "stopped early: %s", r.out);
    cr_assert(strstr(r.err, "interrupted") != NULL, "%s", r.err);
    cr_assert_eq(cache_entries(cache), s.compiled, "every finished compile is in the cache");

    run again;
    prewarm(&again, args, NULL);
    cr_assert_eq(again.status, 0, "%s%s", again.out, again.err);
    summary t = summary_of(&again);
    cr_assert_eq(t.cached, s.compiled, "the rerun resumes");
    cr_assert_eq(t.compiled, 16 - s.compiled);
    cr_assert_eq(cache_entries(cache), 16);
}

Test(prewarm, without_arch_needs_a_gpu, .fini = th_dir_remove)
{
    char shapes[128], cache[128];
    setup_small(shapes, sizeof(shapes), cache, sizeof(cache));
    run r;
    prewarm(&r, (const char *const[]){"--cache", cache, "-n", shapes, NULL}, NULL);
    if (strstr(r.err, "no GPU") != NULL) {
        cr_assert_eq(r.status, 2, "%s", r.err);
        cr_assert(strstr(r.err, "no GPU: pass --arch sm_90") != NULL, "%s", r.err);
    } else {
        cr_assert_eq(r.status, 0, "with a GPU the device's arch is used: %s", r.err);
    }
}
