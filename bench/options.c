/*
 * options.c - arb-bench's flags, the --shape / --blocks texts, and the
 * command line that replays one measurement.
 *
 * Every tuning row records its replay command, built here, and the same
 * parser reads it back: `bench_parse_shape(bench_format_shape(x)) == x`.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void bench_options_init(bench_options *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = BENCH_MODE_DEFAULT;
    o->precision = ARB_PREC_FP32;
    o->min_repeats = 20;
    o->min_ms = 50.0;
    o->warmup_ms = 10.0;
    o->launches = 100000;
}

void bench_usage(FILE *out)
{
    fputs(
        "usage: arb-bench [MODE] [OPTIONS]\n"
        "\n"
        "Measure arb's kernels on a CUDA GPU: each configuration is checked against a\n"
        "trusted result first, then timed with CUDA events (median of >= 20 samples and\n"
        ">= 50 ms, inputs rotated over copies >= 2x the 50 MB L2), beside its peer\n"
        "(dense cuBLAS for GEMMs, a device copy of the same bytes otherwise).\n"
        "\n"
        "modes:\n"
        "  (none)                   every kernel of the shapes in its resolved configuration\n"
        "                           (tuned or default) beside its peers\n"
        "  --sweep-blocks [FILE]    every candidate block configuration of every kernel of\n"
        "                           the shapes in FILE (default prewarm/shapes/base.txt, else\n"
        "                           the built-in base model shapes); each result is a row of\n"
        "                           the cache's tuning table; prints the winners\n"
        "  --gemm M N K GS          ternary_fwd and ternary_grad_x at one shape vs cuBLAS\n"
        "                           fp32 / tf32 / bf16, plus the staged kernels the trainer\n"
        "                           runs instead on sm_90a (ternary_decode, act_split,\n"
        "                           tc_gemm); then both whole ops in every mode as the\n"
        "                           trainer runs them (\"ops\" rows) beside cuBLAS\n"
        "                           (repeatable; with --sweep-blocks, sweeps the kernels)\n"
        "  --kernel NAME --shape M=..,N=..,K=..,gs=.. [--blocks bm=..,bn=..,...]\n"
        "                           one kernel at one shape (the replay command of a row);\n"
        "                           with --blocks exactly that configuration, recorded\n"
        "  --jit                    NVRTC compile time per template (fresh cache), cache-hit\n"
        "                           time (SQLite read + module load), launch overhead\n"
        "                           through the engine vs a raw cuLaunchKernel\n"
        "  --step [--config tiny|small|base]\n"
        "                           one training step broken down by kernel, tokens/s\n"
        "\n"
        "options:\n"
        "  --shapes FILE            shapes file for the default mode\n"
        "  --kernel NAME            with --shape: that kernel; else only that kernel\n"
        "  --precision MODE         GEMM mode: fp32, tf32, bf16, bf16x2, bf16x3 (default\n"
        "                           ARB_PRECISION, else bf16x2), for --gemm, --shape and shapes\n"
        "                           lines without precision=\n"
        "  --variant N              kernel variant with --shape (default 0)\n"
        "  --json FILE              every figure as JSON (one object with a `rows` array)\n"
        "  --csv FILE               every figure as CSV\n"
        "  --plot FILE.svg          time per configuration, one panel per kernel and shape\n"
        "  --dry-run                list the shapes, kernels and candidates (and why the\n"
        "                           check rejects some) without a GPU\n"
        "  --no-record              do not write tuning rows\n"
        "  --no-peers               skip cuBLAS and copy peers\n"
        "  --no-ceilings            skip measuring ceilings (use the documented H100 ones)\n"
        "  --repeats N              at least N timed samples (default 20)\n"
        "  --min-ms MS              at least MS of timed GPU time per measurement (50)\n"
        "  --warmup-ms MS           untimed launches first (10)\n"
        "  --launches N             --jit: launches for the overhead figures (100000)\n"
        "  --cache FILE             the writable kernel cache (overrides ARB_CACHE)\n"
        "  --device N               CUDA device ordinal (0)\n"
        "  --quiet                  no progress on stderr\n"
        "  --help                   this text\n"
        "  --version                arb version and engine build\n"
        "\n"
        "Device benchmarks (on the GPU machine):\n"
        "  arb-bench --sweep-blocks --json sweep.json --csv sweep.csv --plot sweep.svg\n"
        "  arb-bench --json resolved.json\n"
        "  arb-bench --gemm 1024 4096 4096 64 --gemm 8192 4096 4096 64 \\\n"
        "            --gemm 16 16384 16384 64 --gemm 1 16384 16384 64\n"
        "  arb-bench --jit\n"
        "\n"
        "exit status: 0 all ok; 1 a wrong result, a compile or launch failure, or an\n"
        "error while measuring; 2 usage error or no GPU\n",
        out);
}

static int fail(char *err, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Write a message into err; returns -1. */
static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A decimal integer in [lo, hi], the whole string. */
static int parse_i64(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < lo || v > hi)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_double(const char *text, double lo, double hi, double *out)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || end == text || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* Split "k=v,k=v" and hand each pair to `take`; -1 on a malformed pair. */
typedef int (*pair_fn)(void *ctx, const char *key, const char *value, char *err, size_t len);

static int each_pair(const char *text, pair_fn take, void *ctx, char *err, size_t len)
{
    char buf[512];
    if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
        return fail(err, len, "'%s' is too long", text);
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1])
            return fail(err, len, "expected key=value, got '%s'", tok);
        *eq = '\0';
        if (take(ctx, tok, eq + 1, err, len))
            return -1;
        n++;
    }
    if (n == 0)
        return fail(err, len, "expected key=value pairs, got '%s'", text);
    return 0;
}

typedef struct shape_ctx {
    int64_t v[4];
    int seen[4];
} shape_ctx;

static int take_shape(void *vctx, const char *key, const char *value, char *err, size_t len)
{
    static const char *const keys[4] = {"M", "N", "K", "gs"};
    shape_ctx *c = vctx;
    for (int i = 0; i < 4; i++) {
        if (strcmp(key, keys[i]) != 0)
            continue;
        if (c->seen[i])
            return fail(err, len, "--shape: %s given twice", key);
        if (parse_i64(value, 1, INT32_MAX, &c->v[i]))
            return fail(err, len, "--shape: %s=%s is not an integer in 1..2^31-1", key, value);
        c->seen[i] = 1;
        return 0;
    }
    return fail(err, len, "--shape: unknown key '%s' (expected M, N, K, gs)", key);
}

int bench_parse_shape(const char *text, int64_t *M, int64_t *N, int64_t *K, int64_t *gs, char *err,
                      size_t err_len)
{
    shape_ctx c = {{1, 1, 1, 1}, {0, 0, 0, 0}};
    if (each_pair(text, take_shape, &c, err, err_len))
        return -1;
    if (!c.seen[0])
        return fail(err, err_len, "--shape %s: M is required", text);
    *M = c.v[0];
    *N = c.v[1];
    *K = c.v[2];
    *gs = c.v[3];
    return 0;
}

void bench_format_shape(const arb_spec *s, char *buf, size_t len)
{
    snprintf(buf, len, "M=%" PRId64 ",N=%" PRId64 ",K=%" PRId64 ",gs=%" PRId64, s->M, s->N, s->K,
             s->gs);
}

static const char *const block_keys[7] = {"bm", "bn", "bk", "tm", "tn", "warps", "stages"};

static int32_t *block_field(arb_blocks *b, int i)
{
    int32_t *f[7] = {&b->bm, &b->bn, &b->bk, &b->tm, &b->tn, &b->warps, &b->stages};
    return f[i];
}

static int take_block(void *vctx, const char *key, const char *value, char *err, size_t len)
{
    arb_blocks *b = vctx;
    for (int i = 0; i < 7; i++) {
        if (strcmp(key, block_keys[i]) != 0)
            continue;
        int64_t v = 0;
        if (parse_i64(value, 0, 65536, &v))
            return fail(err, len, "--blocks: %s=%s is not an integer in 0..65536", key, value);
        *block_field(b, i) = (int32_t)v;
        return 0;
    }
    return fail(err, len,
                "--blocks: unknown key '%s' (expected bm, bn, bk, tm, tn, warps, stages)", key);
}

int bench_parse_blocks(const char *text, arb_blocks *out, char *err, size_t err_len)
{
    arb_blocks b;
    memset(&b, 0, sizeof(b));
    if (each_pair(text, take_block, &b, err, err_len))
        return -1;
    *out = b;
    return 0;
}

void bench_format_blocks(const arb_blocks *b, char *buf, size_t len)
{
    snprintf(buf, len, "bm=%d,bn=%d,bk=%d,tm=%d,tn=%d,warps=%d,stages=%d", b->bm, b->bn, b->bk,
             b->tm, b->tn, b->warps, b->stages);
}

void bench_format_blocks_short(const arb_blocks *b, char *buf, size_t len)
{
    char stages[16] = "";
    if (b->stages > 1)
        snprintf(stages, sizeof(stages), " s%d", b->stages);
    if (b->bm || b->bn || b->bk)
        snprintf(buf, len, "%dx%dx%d/%dx%d w%d%s", b->bm, b->bn, b->bk, b->tm, b->tn, b->warps,
                 stages);
    else if (b->tm)
        snprintf(buf, len, "tm%d w%d%s", b->tm, b->warps, stages);
    else
        snprintf(buf, len, "w%d%s", b->warps, stages);
}

void bench_replay_command(const arb_spec *spec, char *buf, size_t len)
{
    char shape[128], blocks[128], variant[32] = "";
    bench_format_shape(spec, shape, sizeof(shape));
    bench_format_blocks(&spec->blocks, blocks, sizeof(blocks));
    if (spec->variant)
        snprintf(variant, sizeof(variant), " --variant %d", spec->variant);
    snprintf(buf, len, "arb-bench --kernel %s --shape %s --precision %s%s --blocks %s",
             spec->kernel, shape, arb_precision_name(spec->prec), variant, blocks);
}

void bench_group_name(const arb_spec *s, char *buf, size_t len)
{
    char variant[32] = "";
    if (s->variant)
        snprintf(variant, sizeof(variant), " variant=%d", s->variant);
    snprintf(buf, len, "%s M=%" PRId64 " N=%" PRId64 " K=%" PRId64 " gs=%" PRId64 " %s%s",
             s->kernel, s->M, s->N, s->K, s->gs, arb_precision_name(s->prec), variant);
}

/* ---- argv ------------------------------------------------------------------------ */

static int is_flag(const char *s) { return s[0] == '-'; }

/* When argv[*i] is `name`, take its value: 1 with *value set, -1 when the
 * value is missing (message in err); 0 when argv[*i] is another flag. */
static int take_value(int argc, char **argv, int *i, const char *name, const char **value,
                      char *err, size_t len)
{
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc)
        return fail(err, len, "%s needs a value", name);
    *value = argv[++*i];
    return 1;
}

static int parse_int_flag(const char *name, const char *v, int64_t lo, int64_t hi, int64_t *out,
                          char *err, size_t len)
{
    if (parse_i64(v, lo, hi, out) == 0)
        return 0;
    return fail(err, len, "%s: '%s' is not an integer in %" PRId64 "..%" PRId64, name, v, lo, hi);
}

/* One flag with a value; 0 when handled, -1 on error. */
static int value_flag(bench_options *o, const char *name, const char *v, char *err, size_t len)
{
    int64_t x = 0;
    if (strcmp(name, "--shapes") == 0) {
        o->shapes_path = v;
    } else if (strcmp(name, "--kernel") == 0) {
        if (!arb_kernel_find(v))
            return fail(err, len, "--kernel: unknown kernel '%s'", v);
        o->kernel = v;
    } else if (strcmp(name, "--shape") == 0) {
        if (bench_parse_shape(v, &o->M, &o->N, &o->K, &o->gs, err, len))
            return -1;
        o->has_shape = 1;
    } else if (strcmp(name, "--blocks") == 0) {
        if (bench_parse_blocks(v, &o->blocks, err, len))
            return -1;
        o->has_blocks = 1;
    } else if (strcmp(name, "--variant") == 0) {
        if (parse_int_flag(name, v, 0, INT32_MAX, &x, err, len))
            return -1;
        o->variant = (int32_t)x;
        o->has_variant = 1;
    } else if (strcmp(name, "--precision") == 0) {
        arb_err e = {0};
        if (arb_precision_parse(v, &o->precision, &e))
            return fail(err, len, "--precision: %s", e.msg);
        o->has_precision = 1;
    } else if (strcmp(name, "--json") == 0) {
        o->json_path = v;
    } else if (strcmp(name, "--csv") == 0) {
        o->csv_path = v;
    } else if (strcmp(name, "--plot") == 0) {
        o->plot_path = v;
    } else if (strcmp(name, "--cache") == 0) {
        o->cache_path = v;
    } else if (strcmp(name, "--config") == 0) {
        if (strcmp(v, "tiny") && strcmp(v, "small") && strcmp(v, "base"))
            return fail(err, len, "--config: expected tiny, small or base, got '%s'", v);
        o->step_config = v;
    } else if (strcmp(name, "--device") == 0) {
        if (parse_int_flag(name, v, 0, 1024, &x, err, len))
            return -1;
        o->device = (int)x;
    } else if (strcmp(name, "--repeats") == 0) {
        if (parse_int_flag(name, v, 1, 100000, &x, err, len))
            return -1;
        o->min_repeats = (int)x;
    } else if (strcmp(name, "--min-ms") == 0) {
        if (parse_double(v, 0.0, 1e6, &o->min_ms))
            return fail(err, len, "--min-ms: '%s' is not a number of milliseconds", v);
    } else if (strcmp(name, "--warmup-ms") == 0) {
        if (parse_double(v, 0.0, 1e6, &o->warmup_ms))
            return fail(err, len, "--warmup-ms: '%s' is not a number of milliseconds", v);
    } else if (strcmp(name, "--launches") == 0) {
        if (parse_int_flag(name, v, 1, 100000000, &x, err, len))
            return -1;
        o->launches = (long)x;
    }
    return 0;
}

static const char *const value_flags[] = {
    "--shapes", "--kernel", "--shape",  "--blocks", "--variant", "--precision", "--json",
    "--csv",    "--plot",   "--cache",  "--config", "--device",  "--repeats",   "--min-ms",
    "--warmup-ms", "--launches",
};

/* Flags without a value; 1 when `a` was one. */
static int bool_flag(bench_options *o, const char *a, int *modes)
{
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        o->help = 1;
    else if (strcmp(a, "--version") == 0)
        o->version = 1;
    else if (strcmp(a, "--dry-run") == 0)
        o->dry_run = 1;
    else if (strcmp(a, "--quiet") == 0)
        o->quiet = 1;
    else if (strcmp(a, "--no-record") == 0)
        o->no_record = 1;
    else if (strcmp(a, "--no-peers") == 0)
        o->no_peers = 1;
    else if (strcmp(a, "--no-ceilings") == 0)
        o->no_ceilings = 1;
    else if (strcmp(a, "--jit") == 0)
        o->mode = BENCH_MODE_JIT, ++*modes;
    else if (strcmp(a, "--step") == 0)
        o->mode = BENCH_MODE_STEP, ++*modes;
    else
        return 0;
    return 1;
}

static void join_command(int argc, char **argv, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < argc && used + 1 < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
}

int bench_parse_args(int argc, char **argv, bench_options *o, char *err, size_t err_len)
{
    join_command(argc, argv, o->command, sizeof(o->command));
    err[0] = '\0';
    int modes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (bool_flag(o, a, &modes))
            continue;
        if (strcmp(a, "--sweep-blocks") == 0) {
            o->mode = BENCH_MODE_SWEEP;
            modes++;
            if (i + 1 < argc && !is_flag(argv[i + 1]))
                o->shapes_path = argv[++i];
            continue;
        }
        if (strcmp(a, "--gemm") == 0) {
            if (i + 4 >= argc)
                return fail(err, err_len, "--gemm needs four values: M N K GS"), BENCH_EXIT_USAGE;
            if (o->n_gemm == BENCH_MAX_GEMM)
                return fail(err, err_len, "--gemm: at most %d shapes", BENCH_MAX_GEMM),
                       BENCH_EXIT_USAGE;
            int64_t d[4];
            for (int k = 0; k < 4; k++)
                if (parse_int_flag("--gemm", argv[i + 1 + k], 1, INT32_MAX, &d[k], err, err_len))
                    return BENCH_EXIT_USAGE;
            o->gemm[o->n_gemm++] = (bench_gemm_shape){d[0], d[1], d[2], d[3]};
            i += 4;
            continue;
        }
        int handled = 0;
        for (size_t f = 0; f < sizeof(value_flags) / sizeof(value_flags[0]) && !handled; f++) {
            const char *v = NULL;
            int got = take_value(argc, argv, &i, value_flags[f], &v, err, err_len);
            if (got < 0)
                return BENCH_EXIT_USAGE;
            if (got > 0) {
                if (value_flag(o, value_flags[f], v, err, err_len))
                    return BENCH_EXIT_USAGE;
                handled = 1;
            }
        }
        if (handled)
            continue;
        if (is_flag(a))
            return fail(err, err_len, "unknown option '%s'", a), BENCH_EXIT_USAGE;
        return fail(err, err_len,
                    "unexpected argument '%s' (a shapes file follows --sweep-blocks or --shapes)",
                    a),
               BENCH_EXIT_USAGE;
    }
    if (o->help || o->version)
        return 0;
    const char *why = NULL;
    if (modes > 1)
        why = "choose one of --sweep-blocks, --jit, --step";
    else if (o->has_shape && !o->kernel)
        why = "--shape needs --kernel NAME";
    else if (o->has_blocks && !(o->kernel && o->has_shape))
        why = "--blocks needs --kernel NAME and --shape M=..,N=..,K=..,gs=..";
    else if (o->has_variant && !o->has_shape)
        why = "--variant goes with --kernel and --shape";
    else if (o->n_gemm && o->has_shape)
        why = "--gemm and --shape both name shapes: choose one";
    else if ((o->n_gemm || o->has_shape) && o->shapes_path)
        why = "a shapes file and --gemm/--shape both name shapes: choose one";
    else if (o->step_config && o->mode != BENCH_MODE_STEP)
        why = "--config goes with --step";
    if (why)
        return fail(err, err_len, "%s", why), BENCH_EXIT_USAGE;
    return 0;
}
