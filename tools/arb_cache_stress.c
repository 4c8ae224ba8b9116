/*
 * arb-cache-stress - hammer one kernel cache from many processes, then prove
 * that nothing reported stored was lost. tools/stress-cache.sh runs it: N
 * writers (killed with kill -9 at random and restarted), then one check.
 *
 *   arb-cache-stress writer --cache FILE --log FILE --keys M [--seed S]
 *                           [--seconds T] [--busy-ms MS] [--no-sync]
 *   arb-cache-stress check  --cache FILE --keys M LOG...
 *
 * writer: until killed (or T seconds), pick a key in [0, M) and either put it
 * or get it. Key k's cubin (length and bytes) follows from k alone, so any
 * process can tell a right entry from a wrong one. Every key the cache
 * reported stored (put said inserted, or put found it already there and
 * contains confirms it) is appended to the writer's own log as "I k" or
 * "P k", one line per write(2) and fdatasync'ed, after the call returned
 * (a kill -9 cannot lose a write(2) that returned; the sync covers a machine
 * that stops).
 * Other lines: "S k" (put stored nothing: busy or degraded), "H k" (a get
 * hit with the right bytes), "X k" (a get hit with WRONG bytes), "E ..." (a
 * call returned an error status), "W ..." (a cache warning), "O" (the cache
 * was opened), "C" (closed cleanly).
 *
 * check: open the cache, run arb_cache_verify, then get every key any log
 * says was stored and compare its bytes. Prints the figures as one line of
 * "name=value" pairs and exits 1 when anything was lost or wrong, or verify
 * failed; 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arb/cache.h"
#include "arb/status.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: arb-cache-stress writer --cache FILE --log FILE --keys M [--seed S]\n"
    "                               [--seconds T] [--busy-ms MS] [--no-sync]\n"
    "       arb-cache-stress check --cache FILE --keys M LOG...\n"
    "(run by tools/stress-cache.sh)\n";

/* ---- Keys and cubins ------------------------------------------------------------ */

static arb_cache_key key_of(int64_t k)
{
    arb_cache_key key = {
        .kernel = k % 3 == 0 ? "ternary_fwd" : (k % 3 == 1 ? "ternary_grad_x" : "update_E"),
        .name_expr = "stress_kernel<64, 64, 32>",
        .M = 1 + k,
        .N = 4096,
        .K = 4096,
        .gs = 64,
        .bm = 64, .bn = 64, .bk = 32, .tm = 4, .tn = 4, .warps = 4, .stages = 2,
        .precision = "fp32",
        .arch = "sm_90",
        .nvrtc_version = "13.0",
        .template_sha = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed",
        .options = "--gpu-architecture=sm_90 -default-device",
        .env = "",
    };
    return key;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* 200 B to 64 KB: a quarter of them span several 16 KB pages. */
static size_t cubin_len_of(int64_t k)
{
    uint64_t h = mix((uint64_t)k + 1);
    if (h % 4 == 0)
        return 16384 + (size_t)(h >> 8) % 49152;
    return 200 + (size_t)(h >> 8) % 4000;
}

static void fill_cubin(uint8_t *buf, size_t n, int64_t k)
{
    uint64_t x = mix((uint64_t)k * 7919 + 17);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0)
            x = mix(x + i);
        buf[i] = (uint8_t)(x >> (8 * (i % 8)));
    }
}

/* ---- Small helpers ------------------------------------------------------------------- */

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end || end == s || v < 0)
        return -1;
    *out = v;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- writer -------------------------------------------------------------------------------- */

typedef struct writer {
    int log_fd;
    int sync;
} writer;

/* One complete line per write(2), then fdatasync: a kill leaves at most a
 * missing line, never a torn one in the middle of the file. */
static void log_line(writer *w, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    for (int i = 0; i < n; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    line[n++] = '\n';
    ssize_t done = write(w->log_fd, line, (size_t)n);
    (void)done;
    /* What the check relies on (stored keys, failures) is synced. */
    if (w->sync && strchr("IPEX", line[0]))
        fdatasync(w->log_fd);
}

static void on_warning(void *ctx, const char *msg)
{
    log_line(ctx, "W %s", msg);
}

static int run_writer(const char *cache_path, const char *log_path, int64_t keys, int64_t seed,
                      int64_t seconds, int64_t busy_ms, int sync)
{
    writer w = {-1, sync};
    w.log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (w.log_fd < 0) {
        fprintf(stderr, "arb-cache-stress: cannot open %s: %s\n", log_path, strerror(errno));
        return EXIT_FAIL;
    }
    uint64_t rng = mix((uint64_t)seed ^ ((uint64_t)getpid() << 20) ^ (uint64_t)time(NULL));
    double end = seconds > 0 ? now_s() + (double)seconds : 0;
    uint8_t *cubin = malloc(65536);
    uint8_t *want = malloc(65536);
    arb_cache *cache = NULL;
    if (!cubin || !want) {
        fprintf(stderr, "arb-cache-stress: out of memory\n");
        free(cubin);
        free(want);
        close(w.log_fd);
        return EXIT_FAIL;
    }

    while (!end || now_s() < end) {
        arb_err err = {0};
        if (!cache) {
            arb_cache_options opt;
            arb_cache_options_init(&opt);
            opt.path = cache_path;
            opt.busy_timeout_ms = (int)busy_ms;
            opt.warn = on_warning;
            opt.warn_ctx = &w;
            arb_status st = arb_cache_open(&cache, &opt, &err);
            if (st != ARB_OK) {
                log_line(&w, "E open %s: %s", arb_status_name(st), err.msg);
                usleep(10000);
                continue;
            }
            log_line(&w, "O");
        }
        rng = mix(rng + 1);
        int64_t k = (int64_t)(rng % (uint64_t)keys);
        unsigned what = (unsigned)(rng >> 40) % 100;
        arb_cache_key key = key_of(k);
        char hash[ARB_CACHE_HASH_LEN];
        arb_cache_key_hash(&key, hash);

        if (what < 60) {
            size_t n = cubin_len_of(k);
            fill_cubin(cubin, n, k);
            arb_cache_entry e = {
                .cubin = cubin,
                .cubin_len = n,
                .lowered_name = "_Z13stress_kernelv",
                .block_x = 128, .block_y = 1, .block_z = 1,
                .registers = 64, .spill_bytes = 0,
                .compile_log = "",
                .compile_ms = 1.0,
            };
            int inserted = 0;
            arb_status st = arb_cache_put(cache, &key, &e, &inserted, &err);
            if (st != ARB_OK) {
                log_line(&w, "E put %" PRId64 " %s: %s", k, arb_status_name(st), err.msg);
                continue;
            }
            if (inserted) {
                log_line(&w, "I %" PRId64, k);
                continue;
            }
            int found = 0;
            arb_err cerr = {0};
            st = arb_cache_contains(cache, hash, &found, &cerr);
            if (st != ARB_OK)
                log_line(&w, "E contains %" PRId64 " %s: %s", k, arb_status_name(st), cerr.msg);
            else if (found)
                log_line(&w, "P %" PRId64, k);
            else
                log_line(&w, "S %" PRId64, k);
        } else if (what < 97) {
            arb_cache_entry got;
            int found = 0;
            arb_status st = arb_cache_get(cache, hash, &got, &found, &err);
            if (st != ARB_OK) {
                log_line(&w, "E get %" PRId64 " %s: %s", k, arb_status_name(st), err.msg);
                continue;
            }
            if (found) {
                size_t n = cubin_len_of(k);
                fill_cubin(want, n, k);
                if (got.cubin_len == n && memcmp(got.cubin, want, n) == 0)
                    log_line(&w, "H %" PRId64, k);
                else
                    log_line(&w, "X %" PRId64 " got %zu bytes", k, got.cubin_len);
            }
            arb_cache_entry_free(&got);
        } else if (what < 99) {
            arb_cache_stats_add(cache, "stress", "ops", 1);
            arb_status st = arb_cache_stats_flush(cache, &err);
            if (st != ARB_OK)
                log_line(&w, "E stats %s: %s", arb_status_name(st), err.msg);
        } else {
            /* Now and then start over: opens race with the others' writes. */
            arb_cache_close(cache);
            cache = NULL;
            log_line(&w, "C");
        }
    }
    arb_cache_close(cache);
    log_line(&w, "C");
    close(w.log_fd);
    free(cubin);
    free(want);
    return EXIT_OK;
}

/* ---- check --------------------------------------------------------------------------------- */

typedef struct tally {
    int64_t inserted, present, skipped, hits, wrong, errors, warnings, opens, closes, torn;
    char first_error[600];
} tally;

static void read_log(const char *path, int64_t keys, uint8_t *stored, tally *t)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "arb-cache-stress: cannot read %s: %s\n", path, strerror(errno));
        t->errors++;
        return;
    }
    char line[1400];
    while (fgets(line, sizeof(line), f)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') {
            t->torn++; /* the last line of a killed writer: never completed */
            continue;
        }
        line[n - 1] = '\0';
        int64_t k = -1;
        if ((line[0] == 'I' || line[0] == 'P' || line[0] == 'S' || line[0] == 'H' ||
             line[0] == 'X') &&
            line[1] == ' ') {
            char *end = NULL;
            k = strtoll(line + 2, &end, 10);
            if (k < 0 || k >= keys) {
                t->errors++;
                continue;
            }
        }
        switch (line[0]) {
        case 'I': t->inserted++; stored[k] = 1; break;
        case 'P': t->present++; stored[k] = 1; break;
        case 'S': t->skipped++; break;
        case 'H': t->hits++; break;
        case 'X':
            t->wrong++;
            if (!t->first_error[0])
                snprintf(t->first_error, sizeof(t->first_error), "%.200s: %.380s", path, line);
            break;
        case 'E':
            t->errors++;
            if (!t->first_error[0])
                snprintf(t->first_error, sizeof(t->first_error), "%.200s: %.380s", path, line);
            break;
        case 'W': t->warnings++; break;
        case 'O': t->opens++; break;
        case 'C': t->closes++; break;
        default: t->errors++; break;
        }
    }
    fclose(f);
}

static void print_warning(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "arb-cache-stress: check: cache warning: %s\n", msg);
}

static int run_check(const char *cache_path, int64_t keys, char **logs, int n_logs)
{
    tally t;
    memset(&t, 0, sizeof(t));
    uint8_t *stored = calloc((size_t)keys, 1);
    uint8_t *want = malloc(65536);
    if (!stored || !want) {
        fprintf(stderr, "arb-cache-stress: check: out of memory\n");
        free(stored);
        free(want);
        return EXIT_FAIL;
    }
    for (int i = 0; i < n_logs; i++)
        read_log(logs[i], keys, stored, &t);

    arb_cache *cache = NULL;
    arb_err err = {0};
    arb_cache_options opt;
    arb_cache_options_init(&opt);
    opt.path = cache_path;
    opt.warn = print_warning;
    arb_status st = arb_cache_open(&cache, &opt, &err);
    if (st != ARB_OK) {
        fprintf(stderr, "arb-cache-stress: check: cannot open %s: %s\n", cache_path, err.msg);
        free(stored);
        free(want);
        return EXIT_FAIL;
    }
    arb_cache_verify_report r;
    memset(&r, 0, sizeof(r));
    int verify_ok = 0;
    st = arb_cache_verify(cache, &r, &err);
    if (st != ARB_OK)
        fprintf(stderr, "arb-cache-stress: check: verify: %s\n", err.msg);
    else
        verify_ok = r.integrity_ok && r.bad == 0;
    if (st == ARB_OK && !verify_ok)
        fprintf(stderr, "arb-cache-stress: check: verify: %s\n", r.detail);
    arb_cache_summary sum;
    arb_err serr = {0};
    memset(&sum, 0, sizeof(sum));
    arb_cache_summarize(cache, &sum, &serr);

    int64_t reported = 0;
    int64_t verified = 0;
    int64_t lost = 0;
    for (int64_t k = 0; k < keys; k++) {
        if (!stored[k])
            continue;
        reported++;
        arb_cache_key key = key_of(k);
        char hash[ARB_CACHE_HASH_LEN];
        arb_cache_key_hash(&key, hash);
        arb_cache_entry got;
        int found = 0;
        arb_err gerr = {0};
        st = arb_cache_get(cache, hash, &got, &found, &gerr);
        size_t n = cubin_len_of(k);
        fill_cubin(want, n, k);
        if (st == ARB_OK && found && got.cubin_len == n && memcmp(got.cubin, want, n) == 0) {
            verified++;
        } else {
            lost++;
            if (lost <= 5)
                fprintf(stderr, "arb-cache-stress: check: key %" PRId64 " was reported stored "
                                "but is %s\n",
                        k, st != ARB_OK ? gerr.msg : (found ? "wrong" : "missing"));
        }
        arb_cache_entry_free(&got);
    }
    arb_cache_close(cache);
    free(stored);
    free(want);

    printf("entries_reported_stored=%" PRId64 " entries_verified=%" PRId64 " entries_lost=%" PRId64
           " entries_in_cache=%" PRId64 " rows_checked=%" PRId64 " verify=%s puts_inserted=%" PRId64
           " puts_found_present=%" PRId64 " puts_skipped=%" PRId64 " get_hits=%" PRId64
           " wrong_bytes=%" PRId64 " errors=%" PRId64 " warnings=%" PRId64 " opens=%" PRId64
           " torn_lines=%" PRId64 "\n",
           reported, verified, lost, sum.entries, r.checked,
           verify_ok ? "ok" : "FAILED", t.inserted, t.present, t.skipped, t.hits, t.wrong,
           t.errors, t.warnings, t.opens, t.torn);
    if (t.first_error[0])
        fprintf(stderr, "arb-cache-stress: check: first error: %s\n", t.first_error);
    return lost == 0 && t.wrong == 0 && t.errors == 0 && verify_ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *cache_path = NULL;
    const char *log_path = NULL;
    int64_t keys = 0, seed = 1, seconds = 0, busy_ms = 0;
    int sync = 1;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n_rest = 0;
    if (argc < 2 || !rest) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, stdout);
        free(rest);
        return EXIT_OK;
    }
    const char *mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t *num = NULL;
        if (strcmp(a, "--cache") == 0 && v) {
            cache_path = v;
            i++;
        } else if (strcmp(a, "--log") == 0 && v) {
            log_path = v;
            i++;
        } else if (strcmp(a, "--keys") == 0) {
            num = &keys;
        } else if (strcmp(a, "--seed") == 0) {
            num = &seed;
        } else if (strcmp(a, "--seconds") == 0) {
            num = &seconds;
        } else if (strcmp(a, "--busy-ms") == 0) {
            num = &busy_ms;
        } else if (strcmp(a, "--no-sync") == 0) {
            sync = 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "arb-cache-stress: unknown or incomplete option %s\n%s", a,
                    usage_text);
            free(rest);
            return EXIT_USAGE;
        } else {
            rest[n_rest++] = argv[i];
        }
        if (num) {
            if (!v || parse_i64(v, num) != 0) {
                fprintf(stderr, "arb-cache-stress: %s needs a number >= 0\n", a);
                free(rest);
                return EXIT_USAGE;
            }
            i++;
        }
    }
    int code = EXIT_USAGE;
    if (!cache_path || keys <= 0 || keys > 100000000) {
        fprintf(stderr, "arb-cache-stress: --cache and --keys (1 to 1e8) are required\n%s",
                usage_text);
    } else if (strcmp(mode, "writer") == 0 && log_path && n_rest == 0) {
        code = run_writer(cache_path, log_path, keys, seed, seconds, busy_ms, sync);
    } else if (strcmp(mode, "check") == 0 && n_rest > 0) {
        code = run_check(cache_path, keys, rest, n_rest);
    } else {
        fputs(usage_text, stderr);
    }
    free(rest);
    return code;
}
