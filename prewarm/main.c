/*
 * main.c - arb-prewarm: compile every kernel specialization a shapes.txt
 * needs into the kernel cache, in parallel, so a training run never waits on
 * NVRTC (the seeds measured 34 s + 51 s of cold JIT compile before their
 * first step).
 *
 * The shapes expand through the same plans the trainer launches
 * (arb_shapes_expand), in the block configuration the trainer would choose
 * (arb_engine_resolve_blocks), and a pool of workers calls
 * arb_engine_prepare on each: an existence check first, so a rerun compiles
 * nothing and reads no cubin bytes, and an interrupted prewarm resumes.
 * Each cache write is one transaction with first-writer-wins, so several
 * prewarms may fill one cache at once.
 *
 * The engine is always compile-only: the target comes from --arch or
 * ARB_ARCH, else from device 0's compute capability, read without creating
 * a CUDA context (a context would cost a warm rerun ~0.1 s for nothing: a
 * prewarm loads no kernel).
 *
 * Exit status: 0 every kernel is cached; 1 a kernel failed (its NVRTC log is
 * printed) or the run failed; 2 a usage error, or an unreadable or malformed
 * shapes file; 130 interrupted (SIGINT or SIGTERM; rerun to resume).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arb/cuda_driver.h"
#include "arb/engine.h"
#include "arb/settings.h"
#include "arb/shapes.h"
#include "progress.h"

#ifndef ARB_VERSION
#define ARB_VERSION "0"
#endif

#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130
#define JOBS_MAX 1024

static const char *const program = "arb-prewarm";

/* The signal that asked us to stop (0: none). Written by the handler, read
 * by the workers between compiles. */
static atomic_int stop_signal;

static void on_signal(int sig) { atomic_store(&stop_signal, sig); }

typedef struct options {
    const char *shapes;
    const char *arch;
    const char *cache;
    const char *precision;
    int jobs;
    int dry_run;
    int quiet;
} options;

/* The work of one run, shared by the workers. */
typedef struct prewarm {
    arb_engine *engine;
    const char *file;           /* shapes file, for messages */
    const arb_expanded *items;
    int count;
    progress prog;
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t changed;     /* a worker finished an item or stopped */
    int next;                   /* next item to hand out */
    int running;                /* workers still running */
    int compiled, cached, failed;
    int warnings;
} prewarm;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s [options] SHAPES.txt\n"
            "\n"
            "Compile every kernel specialization SHAPES.txt needs into the kernel cache, so a\n"
            "training run never waits on NVRTC. Kernels already cached are skipped: a rerun\n"
            "compiles nothing, and an interrupted prewarm resumes where it stopped.\n"
            "\n"
            "Options:\n"
            "  -j, --jobs N          compile N kernels at a time (default: the number of cores)\n"
            "      --arch ARCH       target architecture, e.g. sm_90 (default: ARB_ARCH, else the\n"
            "                        GPU's); with it no GPU is needed\n"
            "      --cache FILE      the cache file to fill (default: ARB_CACHE, else\n"
            "                        $XDG_CACHE_HOME/arb/kernels.sqlite or ~/.cache/arb/...)\n"
            "      --precision MODE  GEMM precision of lines without precision= (default:\n"
            "                        ARB_PRECISION, else bf16x2): fp32, tf32, bf16, bf16x2, bf16x3\n"
            "  -n, --dry-run         list each kernel and whether it is cached; compile nothing\n"
            "  -q, --quiet           no progress output (failures and the summary still print)\n"
            "  -h, --help            print this help and exit\n"
            "  -V, --version         print the version and exit\n"
            "\n"
            "SHAPES.txt ('-' reads standard input; `arb-train --dump-shapes` writes one), one\n"
            "shape per line, '#' starts a comment:\n"
            "  linear  M=1024 N=4096 K=4096 gs=64 [update=grad|sign|step|none] [precision=MODE]\n"
            "  rmsnorm M=1024 D=4096 gs=64\n"
            "  embed   M=1024 V=256 D=256 gs=64 [update=grad|sign|step|none]\n"
            "  kernel=ternary_fwd M=1024 N=4096 K=4096 gs=64 [variant=N] [precision=MODE]\n"
            "          [bm=N bn=N bk=N tm=N tn=N warps=N stages=N]\n"
            "\n"
            "Progress goes to stderr (a bar on a terminal, else one line per compiled kernel),\n"
            "then one line to stdout:\n"
            "  prewarm: compiled=N cached=M failed=F seconds=S\n"
            "\n"
            "Environment: ARB_CACHE, ARB_CACHE_READONLY (layers whose entries count as cached),\n"
            "ARB_ARCH, ARB_PRECISION, ARB_NVRTC_FLAGS, ARB_KERNEL_DEBUG, ARB_KERNEL_DIR (all part\n"
            "of the kernel key: use the trainer's). ARB_CACHE_MODE is ignored: prewarm compiles.\n"
            "\n"
            "Exit status: 0 all cached; 1 a kernel failed (its NVRTC log is printed); 2 usage\n"
            "error, unreadable or malformed SHAPES.txt; 130 interrupted (rerun to resume).\n",
            program);
}

static int usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static int usage_error(const char *fmt, ...)
{
    fprintf(stderr, "%s: ", program);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", program);
    return EXIT_USAGE;
}

static int default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > JOBS_MAX ? JOBS_MAX : (int)n;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, options *o)
{
    enum { OPT_ARCH = 256, OPT_CACHE, OPT_PRECISION };
    static const struct option longs[] = {
        {"jobs", required_argument, NULL, 'j'},
        {"arch", required_argument, NULL, OPT_ARCH},
        {"cache", required_argument, NULL, OPT_CACHE},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"dry-run", no_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->jobs = default_jobs();
    int c;
    while ((c = getopt_long(argc, argv, "j:nqhV", longs, NULL)) != -1) {
        switch (c) {
        case 'j': {
            char *end = NULL;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || !end || *end || end == optarg || v < 1 || v > JOBS_MAX)
                return usage_error("--jobs: expected a number in 1..%d, got '%s'", JOBS_MAX,
                                   optarg);
            o->jobs = (int)v;
            break;
        }
        case OPT_ARCH: o->arch = optarg; break;
        case OPT_CACHE: o->cache = optarg; break;
        case OPT_PRECISION: o->precision = optarg; break;
        case 'n': o->dry_run = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("%s (arb) %s\ntemplates %s\n", program, ARB_VERSION, arb_engine_build_id());
            return 0;
        default: /* getopt_long said what was wrong */
            fprintf(stderr, "Try '%s --help' for more information.\n", program);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return usage_error("expected a shapes file (SHAPES.txt), got none");
    if (optind + 1 < argc)
        return usage_error("expected one shapes file, got another: '%s'", argv[optind + 1]);
    o->shapes = argv[optind];
    if (o->arch && !o->arch[0])
        return usage_error("--arch: expected an architecture such as sm_90, got '%s'", o->arch);
    if (o->cache && !o->cache[0])
        return usage_error("--cache: expected a file, got '%s'", o->cache);
    return -1;
}

static void on_warn(void *ctx, const char *msg)
{
    prewarm *pw = ctx;
    pthread_mutex_lock(&pw->lock);
    pw->warnings++;
    pthread_mutex_unlock(&pw->lock);
    progress_message(&pw->prog, "%s: warning: %s", program, msg);
}

/* ---- the worker pool ----------------------------------------------------------- */

/* Whether the engine's cache holds a valid entry for the spec (blocks as
 * given). A cache that is not open holds nothing. */
static arb_status spec_cached(arb_engine *engine, const arb_spec *spec, int *found, arb_err *err)
{
    *found = 0;
    arb_cache *cache = arb_engine_cache(engine);
    if (!cache)
        return ARB_OK;
    arb_cache_key key;
    char hash[ARB_CACHE_HASH_LEN];
    arb_status st = arb_engine_key(engine, spec, &key, hash, err);
    if (!st)
        st = arb_cache_contains(cache, hash, found, err);
    return st;
}

/* After NVRTC ran, the entry must be in the cache: the engine only warns
 * when a put fails (a training run goes on without it), but a prewarm that
 * leaves its kernels out has failed, and must say so. */
static arb_status check_stored(prewarm *pw, const arb_spec *spec, arb_err *err)
{
    arb_cache *cache = arb_engine_cache(pw->engine);
    if (!cache)
        return ARB_FAIL(err, ARB_ERR_CACHE, "compiled, but no kernel cache is open");
    int found = 0;
    arb_status st = spec_cached(pw->engine, spec, &found, err);
    if (!st && !found)
        st = ARB_FAIL(err, ARB_ERR_CACHE,
                      "compiled, but the cache %s did not keep it (see the warning above)",
                      arb_cache_path(cache) ? arb_cache_path(cache) : "(none)");
    return st;
}

static void *worker(void *arg)
{
    prewarm *pw = arg;
    for (;;) {
        pthread_mutex_lock(&pw->lock);
        if (atomic_load(&stop_signal) || pw->next >= pw->count) {
            pw->running--;
            pthread_cond_broadcast(&pw->changed);
            pthread_mutex_unlock(&pw->lock);
            return NULL;
        }
        int i = pw->next++;
        pthread_mutex_unlock(&pw->lock);

        const arb_expanded *item = &pw->items[i];
        arb_err err = {0};
        int compiled = 0;
        double ms = 0;
        arb_status st = arb_engine_prepare(pw->engine, &item->spec, &compiled, &ms, &err);
        if (!st && compiled)
            st = check_stored(pw, &item->spec, &err);
        char what[320];
        arb_spec_describe(&item->spec, what, sizeof(what));
        if (st)
            progress_message(&pw->prog, "%s:%d: error: %s: %s", pw->file, item->line, what,
                             err.msg);

        pthread_mutex_lock(&pw->lock);
        if (st)
            pw->failed++;
        else if (compiled)
            pw->compiled++;
        else
            pw->cached++;
        pthread_cond_broadcast(&pw->changed);
        pthread_mutex_unlock(&pw->lock);
        progress_item(&pw->prog, what, compiled && !st, ms);
    }
}

/* Run the pool to the end or to a signal. Returns nonzero if the threads
 * could not start. */
static int run_pool(prewarm *pw, int jobs)
{
    if (jobs > pw->count)
        jobs = pw->count;
    pthread_t *threads = calloc((size_t)(jobs > 0 ? jobs : 1), sizeof(*threads));
    if (!threads) {
        fprintf(stderr, "%s: out of memory\n", program);
        return 1;
    }
    /* Signals go to the main thread only: a compile in a worker is never
     * interrupted (the workers finish what they hold, then stop). */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int started = 0, create_rc = 0;
    pthread_mutex_lock(&pw->lock);
    for (; started < jobs; started++) {
        create_rc = pthread_create(&threads[started], NULL, worker, pw);
        if (create_rc != 0)
            break; /* fewer workers still finish the job */
        pw->running++;
    }
    pthread_mutex_unlock(&pw->lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started == 0 && jobs > 0) {
        fprintf(stderr, "%s: cannot start a worker thread: %s\n", program, strerror(create_rc));
        free(threads);
        return 1;
    }

    int announced = 0;
    pthread_mutex_lock(&pw->lock);
    while (pw->running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&pw->changed, &pw->lock, &until);
        int sig = atomic_load(&stop_signal);
        int running = pw->running;
        pthread_mutex_unlock(&pw->lock);
        if (sig && !announced && running > 0) {
            announced = 1;
            progress_message(&pw->prog,
                             "%s: %s: finishing the %d compile%s in flight, then stopping "
                             "(again to quit at once)",
                             program, sig == SIGTERM ? "terminated" : "interrupted", running,
                             running == 1 ? "" : "s");
        }
        progress_tick(&pw->prog);
        pthread_mutex_lock(&pw->lock);
    }
    pthread_mutex_unlock(&pw->lock);
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    free(threads);
    return 0;
}

/* ---- setup ----------------------------------------------------------------------- */

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* A second Ctrl-C gets the default action: quit now. The cache stays
     * consistent even then (each write is one SQLite transaction). */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Device 0's target ("sm_90"), read without creating a context: a prewarm
 * loads no kernel, and a context costs a warm rerun most of its time. */
/* The settings: defaults, the environment, then the flags. Returns -1 to go
 * on, else the exit status. */
static int make_settings(const options *o, arb_settings *settings)
{
    arb_err err = {0};
    arb_settings_load(settings);
    arb_status st = ARB_OK;
    if (o->cache)
        st = arb_settings_set(settings, ARB_SET_CACHE, o->cache, &err);
    if (!st && o->arch)
        st = arb_settings_set(settings, ARB_SET_ARCH, o->arch, &err);
    if (!st && o->precision)
        st = arb_settings_set(settings, ARB_SET_PRECISION, o->precision, &err);
    /* A prewarm exists to compile: ARB_CACHE_MODE=strict would refuse every miss. */
    if (!st)
        st = arb_settings_set(settings, ARB_SET_CACHE_MODE, "normal", &err);
    if (st) {
        fprintf(stderr, "%s: %s\n", program, err.msg);
        return EXIT_USAGE;
    }
    if (arb_settings_flag(settings, ARB_SET_CACHE_DISABLE)) {
        fprintf(stderr, "%s: ARB_CACHE_DISABLE=%s: there is no cache to prewarm; unset it\n",
                program, arb_settings_get(settings, ARB_SET_CACHE_DISABLE));
        return EXIT_USAGE;
    }
    /* A dry run creates no cache file: with none there, nothing is cached. */
    if (o->dry_run && !file_exists(arb_settings_get(settings, ARB_SET_CACHE)) &&
        !arb_settings_get(settings, ARB_SET_CACHE_READONLY)[0])
        arb_settings_set(settings, ARB_SET_CACHE_DISABLE, "1", NULL);
    return -1;
}

/* Read the shapes and expand them through the plans, before anything else
 * (a typo is reported at once, GPU or not). Returns -1 to go on, else the
 * exit status. */
static int load_shapes(const options *o, const arb_settings *settings, arb_shapes *shapes,
                       arb_expanded **items, int *count)
{
    arb_err err = {0};
    arb_precision prec;
    const char *mode = arb_settings_get(settings, ARB_SET_PRECISION);
    if (arb_precision_parse(mode, &prec, &err)) {
        fprintf(stderr, "%s: %s%s\n", program, o->precision ? "--precision: " : "ARB_PRECISION: ",
                err.msg);
        return EXIT_USAGE;
    }
    if (arb_shapes_load(o->shapes, shapes, &err)) {
        if (err.status == ARB_ERR_PARSE)
            fprintf(stderr, "%s\n", err.msg); /* file:line:col: ... already */
        else
            fprintf(stderr, "%s: %s\n", program, err.msg);
        return EXIT_USAGE;
    }
    /* Checked here for no target in particular; expanded again for the
     * engine's target once it is open (expand_for_target). */
    if (arb_shapes_expand(shapes, prec, NULL, items, count, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return err.status == ARB_ERR_NOMEM ? 1 : EXIT_USAGE;
    }
    return -1;
}

/* The kernels the trainer launches on the engine's target (sm_90a adds the
 * staged tensor-core GEMMs). Returns -1 to go on, else the exit status. */
static int expand_for_target(prewarm *pw, const arb_settings *settings, const arb_shapes *shapes,
                             arb_expanded **items, int *count)
{
    arb_err err = {0};
    arb_precision prec;
    if (arb_precision_parse(arb_settings_get(settings, ARB_SET_PRECISION), &prec, &err))
        return EXIT_USAGE; /* reported by load_shapes */
    free(*items);
    *items = NULL;
    *count = 0;
    if (arb_shapes_expand(shapes, prec, arb_engine_arch(pw->engine), items, count, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return err.status == ARB_ERR_NOMEM ? 1 : EXIT_USAGE;
    }
    return -1;
}

/* Open the engine, always compile-only: the arch comes from --arch or
 * ARB_ARCH (no GPU needed), else from device 0. Returns -1 on success, else
 * the exit status. */
static int open_engine(prewarm *pw, arb_settings *settings)
{
    arb_err err = {0};
    arb_status st = ARB_OK;
    if (!arb_settings_get(settings, ARB_SET_ARCH)[0]) {
        char arch[32];
        st = arb_device_arch(0, arch, sizeof(arch), &err);
        if (st == ARB_ERR_NO_DRIVER || st == ARB_ERR_NO_DEVICE) {
            fprintf(stderr,
                    "%s: no GPU: pass --arch sm_90a (or set ARB_ARCH) to compile without one; %s\n",
                    program, err.msg);
            return EXIT_USAGE;
        }
        if (!st)
            st = arb_settings_set(settings, ARB_SET_ARCH, arch, &err);
        if (st) {
            fprintf(stderr, "%s: %s\n", program, err.msg);
            return 1;
        }
    }

    arb_engine_options eo;
    arb_engine_options_init(&eo);
    eo.settings = settings;
    eo.compile_only = 1;
    eo.warn = on_warn;
    eo.warn_ctx = pw;
    st = arb_engine_open(&pw->engine, &eo, &err);
    if (st) {
        fprintf(stderr, "%s: %s\n", program, err.msg);
        return st == ARB_ERR_INVALID_ARG ? EXIT_USAGE : 1;
    }
    return -1;
}

/* The blocks the trainer would launch: tuned where the tuning table has
 * them. Two plans may then land on one configuration: dedupe once more. */
static int resolve(prewarm *pw, arb_expanded *items, int *count)
{
    for (int i = 0; i < *count; i++)
        if (!items[i].exact)
            arb_engine_resolve_blocks(pw->engine, &items[i].spec);
    arb_err err = {0};
    if (arb_expanded_dedupe(items, count, &err)) {
        fprintf(stderr, "%s: %s\n", program, err.msg);
        return 1;
    }
    return -1;
}

/* Longest first (LPT scheduling): the block-tiled GEMM kernels (bm > 0)
 * compile several times slower than the elementwise ones, so they start
 * first and the short ones fill the gaps at the end. Stable: file order
 * within each kind. Without memory for the copy, the file order stays. */
static void heavy_first(arb_expanded *items, int count)
{
    arb_expanded *sorted = malloc((size_t)(count > 0 ? count : 1) * sizeof(*sorted));
    if (!sorted)
        return;
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < count; i++)
            if ((items[i].spec.blocks.bm > 0) == (pass == 0))
                sorted[n++] = items[i];
    memcpy(items, sorted, (size_t)count * sizeof(*items));
    free(sorted);
}

static int dry_run(prewarm *pw)
{
    int cached = 0;
    for (int i = 0; i < pw->count; i++) {
        const arb_spec *spec = &pw->items[i].spec;
        int found = 0;
        arb_err err = {0};
        if (spec_cached(pw->engine, spec, &found, &err) != ARB_OK)
            found = 0;
        char what[320];
        arb_spec_describe(spec, what, sizeof(what));
        printf("%-7s %s:%d: %s\n", found ? "cached" : "compile", pw->file, pw->items[i].line, what);
        cached += found;
    }
    printf("prewarm: dry-run to_compile=%d cached=%d\n", pw->count - cached, cached);
    return 0;
}

int main(int argc, char **argv)
{
    double start = progress_now_ms();
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    install_signals();

    prewarm pw;
    memset(&pw, 0, sizeof(pw));
    pthread_mutex_init(&pw.lock, NULL);
    pthread_cond_init(&pw.changed, NULL);
    progress_style style = o.quiet || o.dry_run ? PROGRESS_NONE
                           : isatty(STDERR_FILENO) ? PROGRESS_BAR
                                                   : PROGRESS_LINES;
    progress_init(&pw.prog, style, 0);

    arb_settings settings;
    arb_shapes shapes = {0};
    arb_expanded *items = NULL;
    int count = 0;
    rc = make_settings(&o, &settings);
    if (rc < 0)
        rc = load_shapes(&o, &settings, &shapes, &items, &count);
    if (rc < 0)
        rc = open_engine(&pw, &settings);
    if (rc < 0)
        rc = expand_for_target(&pw, &settings, &shapes, &items, &count);
    if (rc < 0)
        rc = resolve(&pw, items, &count);
    if (rc >= 0)
        goto out;
    pw.file = shapes.file ? shapes.file : o.shapes;
    pw.items = items;
    pw.count = count;
    pw.prog.total = count;

    if (o.dry_run) {
        rc = dry_run(&pw);
        goto out;
    }
    heavy_first(items, count);
    int jobs = o.jobs < count ? o.jobs : count;
    if (!o.quiet) {
        arb_cache *cache = arb_engine_cache(pw.engine);
        progress_message(&pw.prog,
                         "%s: %d kernel%s from %d shape%s for %s, cache %s, %d job%s",
                         program, count, count == 1 ? "" : "s", shapes.count,
                         shapes.count == 1 ? "" : "s", arb_engine_arch(pw.engine),
                         cache && arb_cache_path(cache) ? arb_cache_path(cache) : "(none)",
                         jobs, jobs == 1 ? "" : "s");
    }
    if (run_pool(&pw, o.jobs)) {
        rc = 1;
        goto out;
    }
    progress_finish(&pw.prog);
    int sig = atomic_load(&stop_signal);
    int not_done = count - pw.compiled - pw.cached - pw.failed;
    if (sig)
        fprintf(stderr, "%s: %s: %d of %d kernels not prepared; run the same command again to "
                        "resume\n",
                program, sig == SIGTERM ? "terminated" : "interrupted", not_done, count);
    if (pw.failed)
        fprintf(stderr, "%s: %d kernel%s failed (errors above)\n", program, pw.failed,
                pw.failed == 1 ? "" : "s");
    if (pw.warnings)
        fprintf(stderr, "%s: %d warning%s (above)\n", program, pw.warnings,
                pw.warnings == 1 ? "" : "s");
    printf("prewarm: compiled=%d cached=%d failed=%d seconds=%.2f\n", pw.compiled, pw.cached,
           pw.failed, (progress_now_ms() - start) / 1e3);
    fflush(stdout);
    rc = sig ? EXIT_INTERRUPTED : pw.failed ? 1 : 0;
out:
    arb_engine_close(pw.engine);
    free(items);
    arb_shapes_free(&shapes);
    progress_destroy(&pw.prog);
    pthread_cond_destroy(&pw.changed);
    pthread_mutex_destroy(&pw.lock);
    return rc;
}
