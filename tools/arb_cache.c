/*
 * arb-cache - look after the kernel cache: counters, settings, entries,
 * checks, size, export and import (like ccache -s, -p, -C, -M).
 *
 * A thin program over cache.h: settings come from arb_settings_load() (the
 * environment), then flags; the cache opened is ARB_CACHE (writable) plus the
 * ':'-separated ARB_CACHE_READONLY layers, capped by ARB_CACHE_MAX_SIZE.
 *
 * Exit codes: 0 ok, 1 failure (or damage found by verify), 2 usage error.
 * Errors go to stderr as "arb-cache: error: <message>"; results to stdout.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "arb/json.h"
#include "arb/cache.h"
#include "arb/engine.h"
#include "arb/settings.h"
#include "arb/status.h"

#ifndef ARB_VERSION
#define ARB_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: arb-cache [--cache FILE] COMMAND [OPTIONS]\n"
    "\n"
    "Look after arb's kernel cache (ARB_CACHE, plus the read-only layers of\n"
    "ARB_CACHE_READONLY).\n"
    "\n"
    "commands:\n"
    "  stats [--json] [--zero]   entries, size against the cap, hits, misses, compiles,\n"
    "                            loads and a per-kernel table; --zero then resets the\n"
    "                            counters\n"
    "  config                    every setting with its value, origin, and whether it\n"
    "                            changes generated code\n"
    "  list [--json]             one line per cached kernel, in every layer\n"
    "  verify                    SQLite integrity check and every cubin's checksum;\n"
    "                            damaged rows are quarantined; exit 1 on damage\n"
    "  prune --max-size SIZE     evict least-recently-used kernels until the cubins\n"
    "                            take at most SIZE (e.g. 500MiB, 2GiB)\n"
    "  clear [--tuning]          delete every kernel (and the tuning table with\n"
    "                            --tuning) from the writable cache\n"
    "  export FILE               write every valid kernel and tuning row to a new FILE\n"
    "  import FILE               copy the valid kernels of FILE into the cache\n"
    "  tune [--json]             the tuning table; rows of another build are stale\n"
    "\n"
    "options:\n"
    "  --cache FILE              the writable cache file (overrides ARB_CACHE)\n"
    "  --help                    this text\n"
    "  --version                 arb, SQLite and cache schema versions\n"
    "\n"
    "exit status: 0 ok, 1 failure or damage found, 2 usage error\n";

/* ---- Output helpers --------------------------------------------------------- */

static void error_line(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void error_line(const char *fmt, ...)
{
    va_list ap;
    fputs("arb-cache: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int usage_error(const char *fmt, const char *what)
{
    fputs("arb-cache: error: ", stderr);
    fprintf(stderr, fmt, what);
    fputs("; see arb-cache --help\n", stderr);
    return EXIT_USAGE;
}

static int fail(const arb_err *err)
{
    error_line("%s", err->msg[0] ? err->msg : arb_status_str(err->status));
    return EXIT_FAIL;
}

static void warn_line(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "arb-cache: warning: %s\n", msg);
}

/* A JSON number (integers print without a fraction). */
static void json_num(FILE *out, double v)
{
    if (v == (double)(int64_t)v && v > -9e15 && v < 9e15)
        fprintf(out, "%" PRId64, (int64_t)v);
    else
        fprintf(out, "%.3f", v);
}

/* A member whose value is a time or size with three decimals. */
static void json_kv_fixed3(FILE *out, const char *key, double v, int *first)
{
    arb_json_key(out, key, first);
    fprintf(out, "%.3f", v);
}

static const char *human_size(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f B", bytes);
    else
        snprintf(buf, len, "%.1f %s", bytes, units[u]);
    return buf;
}

static const char *utc_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm))
        snprintf(buf, len, "-");
    else
        strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

/* ---- Command line ------------------------------------------------------------ */

typedef struct cli {
    arb_settings settings;
    const char *cmd;
    const char *file;     /* export/import */
    const char *max_size; /* prune, as given */
    int64_t max_bytes;    /* prune, parsed */
    int json, zero, tuning;
} cli;

static const char *const commands[] = {"stats",  "config", "list",   "verify", "prune",
                                       "clear",  "export", "import", "tune"};

static int is_command(const char *s)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(s, commands[i]) == 0)
            return 1;
    return 0;
}

/* Parse argv into `c`. Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, cli *c)
{
    arb_err err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("arb-cache %s (SQLite %s, cache schema %d)\n", ARB_VERSION, sqlite3_libversion(),
                   ARB_CACHE_SCHEMA_VERSION);
            return EXIT_OK;
        }
        if (strcmp(a, "--cache") == 0 || strncmp(a, "--cache=", 8) == 0) {
            const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !v[0])
                return usage_error("%s needs a file name", "--cache");
            if (arb_settings_set(&c->settings, ARB_SET_CACHE, v, &err) != ARB_OK)
                return fail(&err);
        } else if (strcmp(a, "--max-size") == 0 || strncmp(a, "--max-size=", 11) == 0) {
            const char *v = a[10] == '=' ? a + 11 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !v[0])
                return usage_error("%s needs a size, e.g. 2GiB", "--max-size");
            c->max_size = v;
        } else if (strcmp(a, "--json") == 0) {
            c->json = 1;
        } else if (strcmp(a, "--zero") == 0) {
            c->zero = 1;
        } else if (strcmp(a, "--tuning") == 0) {
            c->tuning = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option '%s'", a);
        } else if (!c->cmd) {
            if (!is_command(a))
                return usage_error("unknown command '%s'", a);
            c->cmd = a;
        } else if (!c->file) {
            c->file = a;
        } else {
            return usage_error("unexpected argument '%s'", a);
        }
    }
    if (!c->cmd)
        return usage_error("%s", "no command given");

    /* Each option belongs to some commands only. */
    const char *cmd = c->cmd;
    int wants_file = strcmp(cmd, "export") == 0 || strcmp(cmd, "import") == 0;
    if (c->json && strcmp(cmd, "stats") != 0 && strcmp(cmd, "list") != 0 &&
        strcmp(cmd, "tune") != 0)
        return usage_error("--json does not apply to '%s'", cmd);
    if (c->zero && strcmp(cmd, "stats") != 0)
        return usage_error("--zero does not apply to '%s'", cmd);
    if (c->tuning && strcmp(cmd, "clear") != 0)
        return usage_error("--tuning does not apply to '%s'", cmd);
    if (c->max_size && strcmp(cmd, "prune") != 0)
        return usage_error("--max-size does not apply to '%s'", cmd);
    if (strcmp(cmd, "prune") == 0 && !c->max_size)
        return usage_error("%s", "prune needs --max-size SIZE");
    if (c->max_size && arb_parse_size(c->max_size, &c->max_bytes, &err) != ARB_OK)
        return usage_error("--max-size: %s", err.msg);
    if (wants_file && !c->file)
        return usage_error("'%s' needs a FILE", cmd);
    if (!wants_file && c->file)
        return usage_error("unexpected argument '%s'", c->file);
    return -1;
}

/* ---- Opening the cache ------------------------------------------------------- */

static arb_status open_cache(const cli *c, arb_cache **cache, arb_err *err)
{
    return arb_settings_cache_open(&c->settings, warn_line, NULL, cache, err);
}

/* ---- stats ------------------------------------------------------------------- */

/* The counters the engine writes, in display order. */
static const char *const stat_names[] = {
    "hit_readonly", "hit_writable", "miss",        "compile", "compile_ms",    "load",
    "load_ms",      "quarantined",  "strict_miss", "tuned",   "nearest_tuned", "default_config",
};
#define N_STAT_NAMES ((int)(sizeof(stat_names) / sizeof(stat_names[0])))

typedef struct stat_row {
    char *scope;
    char *name;
    double value;
} stat_row;

typedef struct stat_rows {
    stat_row *row;
    size_t n, cap;
    int nomem;
} stat_rows;

static int collect_stat(void *ctx, const char *scope, const char *name, double value)
{
    stat_rows *rows = ctx;
    if (rows->n == rows->cap) {
        size_t grow = rows->cap ? 2 * rows->cap : 64;
        stat_row *p = realloc(rows->row, grow * sizeof(*p));
        if (!p) {
            rows->nomem = 1;
            return 1;
        }
        rows->row = p;
        rows->cap = grow;
    }
    stat_row *r = &rows->row[rows->n];
    r->scope = strdup(scope);
    r->name = strdup(name);
    r->value = value;
    if (!r->scope || !r->name) {
        free(r->scope);
        free(r->name);
        rows->nomem = 1;
        return 1;
    }
    rows->n++;
    return 0;
}

static void free_stats(stat_rows *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        free(rows->row[i].scope);
        free(rows->row[i].name);
    }
    free(rows->row);
}

static double total_of(const stat_rows *rows, const char *name)
{
    double sum = 0;
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(rows->row[i].name, name) == 0)
            sum += rows->row[i].value;
    return sum;
}

static double value_of(const stat_rows *rows, const char *scope, const char *name)
{
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(rows->row[i].scope, scope) == 0 && strcmp(rows->row[i].name, name) == 0)
            return rows->row[i].value;
    return 0;
}

static void stats_json(const arb_cache *cache, const arb_cache_summary *s, const stat_rows *rows)
{
    FILE *out = stdout;
    int first = 1;
    fputs("{", out);
    if (s->path) {
        arb_json_kv_str(out, "path", s->path, &first);
    } else {
        arb_json_key(out, "path", &first);
        fputs("null", out);
    }
    arb_json_kv_bool(out, "writable", arb_cache_writable(cache), &first);
    arb_json_kv_int(out, "entries", s->entries, &first);
    arb_json_kv_int(out, "cubin_bytes", s->cubin_bytes, &first);
    arb_json_kv_int(out, "max_bytes", s->max_bytes, &first);
    arb_json_kv_int(out, "file_bytes", s->file_bytes, &first);
    arb_json_kv_int(out, "quarantined_rows", s->quarantined, &first);
    arb_json_kv_int(out, "tuning_rows", s->tune_rows, &first);
    arb_json_key(out, "readonly", &first);
    fputs("[", out);
    for (int i = 0; i < s->n_readonly; i++) {
        int first_member = 1;
        fputs(i ? ", {" : "{", out);
        arb_json_kv_str(out, "layer", arb_cache_layer_name(cache, i), &first_member);
        arb_json_kv_int(out, "entries", s->readonly_entries[i], &first_member);
        fputs("}", out);
    }
    fputs("]", out);
    arb_json_key(out, "totals", &first);
    fputs("{", out);
    int first_total = 1;
    for (int k = 0; k < N_STAT_NAMES; k++) {
        arb_json_key(out, stat_names[k], &first_total);
        json_num(out, total_of(rows, stat_names[k]));
    }
    fputs("}", out);
    arb_json_key(out, "kernels", &first);
    fputs("{", out);
    int first_kernel = 1;
    int first_counter = 1;
    for (size_t i = 0; i < rows->n; i++) {
        if (i == 0 || strcmp(rows->row[i - 1].scope, rows->row[i].scope) != 0) {
            fputs(i ? "}" : "", out);
            arb_json_key(out, rows->row[i].scope, &first_kernel);
            fputs("{", out);
            first_counter = 1;
        }
        arb_json_key(out, rows->row[i].name, &first_counter);
        json_num(out, rows->row[i].value);
    }
    fputs(rows->n ? "}}}\n" : "}}\n", out);
}

static void stats_text(const arb_cache *cache, const arb_cache_summary *s, const stat_rows *rows)
{
    char a[32];
    char b[32];
    printf("cache                 %s%s\n", s->path ? s->path : "(none)",
           s->path && !arb_cache_writable(cache) ? " (not writable)" : "");
    for (int i = 0; i < s->n_readonly; i++)
        printf("read-only layer       %s (%" PRId64 " entries)\n", arb_cache_layer_name(cache, i),
               s->readonly_entries[i]);
    printf("entries               %" PRId64 "\n", s->entries);
    if (s->max_bytes > 0)
        printf("cubin size            %s / %s (%.1f%%)\n", human_size((double)s->cubin_bytes, a, 32),
               human_size((double)s->max_bytes, b, 32),
               100.0 * (double)s->cubin_bytes / (double)s->max_bytes);
    else
        printf("cubin size            %s (no limit)\n", human_size((double)s->cubin_bytes, a, 32));
    printf("file size             %s\n", human_size((double)s->file_bytes, a, 32));
    printf("quarantined rows      %" PRId64 "\n", s->quarantined);
    printf("tuning rows           %" PRId64 "\n", s->tune_rows);

    double hro = total_of(rows, "hit_readonly");
    double hrw = total_of(rows, "hit_writable");
    double miss = total_of(rows, "miss");
    double lookups = hro + hrw + miss;
    printf("\n");
    printf("hits (read-only)      %.0f\n", hro);
    printf("hits (writable)       %.0f\n", hrw);
    printf("misses                %.0f\n", miss);
    if (lookups > 0)
        printf("hit rate              %.1f%%\n", 100.0 * (hro + hrw) / lookups);
    printf("NVRTC compiles        %.0f (%.1f ms in total)\n", total_of(rows, "compile"),
           total_of(rows, "compile_ms"));
    printf("module loads          %.0f (%.1f ms in total)\n", total_of(rows, "load"),
           total_of(rows, "load_ms"));
    printf("quarantined           %.0f\n", total_of(rows, "quarantined"));
    printf("strict misses         %.0f\n", total_of(rows, "strict_miss"));
    printf("block configurations  %.0f tuned, %.0f nearest tuned, %.0f default\n",
           total_of(rows, "tuned"), total_of(rows, "nearest_tuned"),
           total_of(rows, "default_config"));

    if (rows->n == 0)
        return;
    printf("\n%-24s %8s %8s %8s %8s %12s %8s %10s\n", "kernel", "hits_ro", "hits_rw", "misses",
           "compiles", "compile_ms", "loads", "load_ms");
    for (size_t i = 0; i < rows->n; i++) {
        const char *scope = rows->row[i].scope;
        if (i > 0 && strcmp(rows->row[i - 1].scope, scope) == 0)
            continue;
        printf("%-24s %8.0f %8.0f %8.0f %8.0f %12.1f %8.0f %10.1f\n", scope,
               value_of(rows, scope, "hit_readonly"), value_of(rows, scope, "hit_writable"),
               value_of(rows, scope, "miss"), value_of(rows, scope, "compile"),
               value_of(rows, scope, "compile_ms"), value_of(rows, scope, "load"),
               value_of(rows, scope, "load_ms"));
    }
}

static int cmd_stats(const cli *c, arb_cache *cache, arb_err *err)
{
    arb_cache_summary s;
    stat_rows rows = {0};
    int code = EXIT_OK;
    if (arb_cache_summarize(cache, &s, err) != ARB_OK ||
        arb_cache_stats_each(cache, collect_stat, &rows, err) != ARB_OK) {
        code = fail(err);
        goto out;
    }
    if (rows.nomem) {
        error_line("out of memory reading the counters");
        code = EXIT_FAIL;
        goto out;
    }
    if (c->json)
        stats_json(cache, &s, &rows);
    else
        stats_text(cache, &s, &rows);
    if (c->zero) {
        if (arb_cache_stats_zero(cache, err) != ARB_OK) {
            code = fail(err);
            goto out;
        }
        fprintf(stderr, "arb-cache: counters zeroed\n");
    }
out:
    free_stats(&rows);
    return code;
}

/* ---- config ------------------------------------------------------------------ */

static int cmd_config(const cli *c)
{
    printf("%-13s %-22s %-8s %s\n", "# origin", "setting", "codegen", "value");
    for (int i = 0; i < ARB_SET_COUNT; i++) {
        const arb_setting_info *info = arb_setting_info_of((arb_setting_id)i);
        char origin[32];
        snprintf(origin, sizeof(origin), "(%s)", arb_origin_name(c->settings.origin[i]));
        const char *value = arb_settings_get(&c->settings, (arb_setting_id)i);
        printf("%-13s %-22s %-8s %s\n", origin, info->name, info->codegen ? "yes" : "no",
               value[0] ? value : "\"\"");
    }
    printf("\n");
    for (int i = 0; i < ARB_SET_COUNT; i++) {
        const arb_setting_info *info = arb_setting_info_of((arb_setting_id)i);
        printf("# %-22s %s\n", info->name, info->description);
    }
    printf("# codegen = yes: the value is part of every kernel key (changing it compiles "
           "again)\n");
    return EXIT_OK;
}

/* ---- list -------------------------------------------------------------------- */

typedef struct list_ctx {
    const arb_cache *cache;
    int json;
    int64_t n;
} list_ctx;

static const char *layer_tag(int layer, char *buf, size_t len)
{
    if (layer == ARB_CACHE_LAYER_WRITABLE)
        snprintf(buf, len, "rw");
    else
        snprintf(buf, len, "ro%d", layer);
    return buf;
}

static int list_row(void *ctx, const arb_cache_listing *r)
{
    list_ctx *x = ctx;
    char tag[16];
    char when[32];
    char blocks[96];
    const arb_cache_key *k = &r->key;
    snprintf(blocks, sizeof(blocks), "%dx%dx%d/%dx%d/w%d/s%d", k->bm, k->bn, k->bk, k->tm, k->tn,
             k->warps, k->stages);
    if (x->json) {
        FILE *out = stdout;
        int first = 1;
        fputs(x->n ? ",\n {" : "{", out);
        arb_json_kv_str(out, "layer", arb_cache_layer_name(x->cache, r->layer), &first);
        arb_json_kv_str(out, "hash", r->hash, &first);
        arb_json_kv_str(out, "kernel", k->kernel, &first);
        arb_json_kv_str(out, "name_expr", k->name_expr, &first);
        arb_json_kv_int(out, "M", k->M, &first);
        arb_json_kv_int(out, "N", k->N, &first);
        arb_json_kv_int(out, "K", k->K, &first);
        arb_json_kv_int(out, "gs", k->gs, &first);
        arb_json_kv_int(out, "bm", k->bm, &first);
        arb_json_kv_int(out, "bn", k->bn, &first);
        arb_json_kv_int(out, "bk", k->bk, &first);
        arb_json_kv_int(out, "tm", k->tm, &first);
        arb_json_kv_int(out, "tn", k->tn, &first);
        arb_json_kv_int(out, "warps", k->warps, &first);
        arb_json_kv_int(out, "stages", k->stages, &first);
        arb_json_kv_str(out, "precision", k->precision, &first);
        arb_json_kv_str(out, "arch", k->arch, &first);
        arb_json_kv_str(out, "nvrtc_version", k->nvrtc_version, &first);
        arb_json_kv_str(out, "template_sha", k->template_sha, &first);
        arb_json_kv_str(out, "options", k->options, &first);
        arb_json_kv_str(out, "env", k->env, &first);
        arb_json_kv_int(out, "cubin_bytes", (int64_t)r->cubin_len, &first);
        arb_json_kv_int(out, "registers", r->registers, &first);
        arb_json_kv_int(out, "spill_bytes", r->spill_bytes, &first);
        arb_json_kv_int(out, "shared_bytes", r->shared_bytes, &first);
        json_kv_fixed3(out, "compile_ms", r->compile_ms, &first);
        arb_json_kv_int(out, "created", r->created, &first);
        arb_json_kv_int(out, "last_used", r->last_used, &first);
        fputs("}", out);
    } else {
        if (x->n == 0)
            printf("%-5s %-22s %-28s %-26s %-9s %-7s %10s %5s %6s %10s  %s\n", "layer", "kernel",
                   "M N K gs", "blocks", "precision", "arch", "bytes", "regs", "spills",
                   "compile_ms", "last used (UTC)");
        char shape[80];
        snprintf(shape, sizeof(shape), "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64, k->M, k->N,
                 k->K, k->gs);
        printf("%-5s %-22s %-28s %-26s %-9s %-7s %10zu %5d %6d %10.1f  %s\n",
               layer_tag(r->layer, tag, sizeof(tag)), k->kernel, shape, blocks,
               k->precision, k->arch, r->cubin_len, r->registers, r->spill_bytes, r->compile_ms,
               utc_time(r->last_used, when, sizeof(when)));
    }
    x->n++;
    return 0;
}

static int cmd_list(const cli *c, arb_cache *cache, arb_err *err)
{
    list_ctx x = {cache, c->json, 0};
    if (c->json)
        printf("[");
    if (arb_cache_list(cache, list_row, &x, err) != ARB_OK) {
        if (c->json)
            printf("]\n");
        return fail(err);
    }
    if (c->json)
        printf("]\n");
    else if (x.n == 0)
        printf("no cached kernels\n");
    return EXIT_OK;
}

/* ---- verify, prune, clear, export, import ----------------------------------- */

static int cmd_verify(arb_cache *cache, arb_err *err)
{
    arb_cache_verify_report r;
    if (arb_cache_verify(cache, &r, err) != ARB_OK)
        return fail(err);
    printf("checked %" PRId64 " entries: %" PRId64 " damaged%s; SQLite integrity check: %s\n",
           r.checked, r.bad, r.bad ? " (moved to quarantine where writable)" : "",
           r.integrity_ok ? "ok" : "FAILED");
    if (r.detail[0])
        printf("first problem: %s\n", r.detail);
    if (r.bad || !r.integrity_ok) {
        error_line("the cache is damaged; damaged kernels are compiled again on their next use "
                   "(run arb-cache clear to start over)");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

static int cmd_prune(const cli *c, arb_cache *cache, arb_err *err)
{
    int64_t evicted = 0;
    arb_cache_summary s;
    char a[32];
    if (arb_cache_prune(cache, c->max_bytes, &evicted, err) != ARB_OK ||
        arb_cache_summarize(cache, &s, err) != ARB_OK)
        return fail(err);
    printf("evicted %" PRId64 " entries; %" PRId64 " left, %s of cubins\n", evicted, s.entries,
           human_size((double)s.cubin_bytes, a, sizeof(a)));
    return EXIT_OK;
}

static int cmd_clear(const cli *c, arb_cache *cache, arb_err *err)
{
    if (arb_cache_clear(cache, c->tuning, err) != ARB_OK)
        return fail(err);
    printf("cleared %s%s\n", arb_cache_path(cache), c->tuning ? " (and its tuning table)" : "");
    return EXIT_OK;
}

static int cmd_export(const cli *c, arb_cache *cache, arb_err *err)
{
    int64_t n = 0;
    if (arb_cache_export(cache, c->file, &n, err) != ARB_OK)
        return fail(err);
    printf("exported %" PRId64 " entries to %s\n", n, c->file);
    return EXIT_OK;
}

static int cmd_import(const cli *c, arb_cache *cache, arb_err *err)
{
    int64_t imported = 0;
    int64_t skipped = 0;
    if (arb_cache_import(cache, c->file, &imported, &skipped, err) != ARB_OK)
        return fail(err);
    printf("imported %" PRId64 " entries from %s (%" PRId64
           " skipped: already present or damaged)\n",
           imported, c->file, skipped);
    return EXIT_OK;
}

/* ---- tune -------------------------------------------------------------------- */

typedef struct tune_ctx {
    int json;
    int64_t n;
} tune_ctx;

static int tune_row(void *ctx, const arb_tune_row *r)
{
    tune_ctx *x = ctx;
    char blocks[96];
    snprintf(blocks, sizeof(blocks), "%dx%dx%d/%dx%d/w%d/s%d", r->bm, r->bn, r->bk, r->tm, r->tn,
             r->warps, r->stages);
    if (x->json) {
        FILE *out = stdout;
        int first = 1;
        fputs(x->n ? ",\n {" : "{", out);
        arb_json_kv_str(out, "kernel", r->kernel, &first);
        arb_json_kv_int(out, "M", r->M, &first);
        arb_json_kv_int(out, "N", r->N, &first);
        arb_json_kv_int(out, "K", r->K, &first);
        arb_json_kv_int(out, "gs", r->gs, &first);
        arb_json_kv_int(out, "variant", r->variant, &first);
        arb_json_kv_str(out, "precision", r->precision, &first);
        arb_json_kv_str(out, "arch", r->arch, &first);
        arb_json_kv_str(out, "device", r->device, &first);
        arb_json_kv_int(out, "sm_count", r->sm_count, &first);
        arb_json_kv_str(out, "driver", r->driver, &first);
        arb_json_kv_str(out, "nvrtc", r->nvrtc, &first);
        arb_json_kv_str(out, "build", r->build, &first);
        arb_json_kv_int(out, "bm", r->bm, &first);
        arb_json_kv_int(out, "bn", r->bn, &first);
        arb_json_kv_int(out, "bk", r->bk, &first);
        arb_json_kv_int(out, "tm", r->tm, &first);
        arb_json_kv_int(out, "tn", r->tn, &first);
        arb_json_kv_int(out, "warps", r->warps, &first);
        arb_json_kv_int(out, "stages", r->stages, &first);
        json_kv_fixed3(out, "median_us", r->median_us, &first);
        json_kv_fixed3(out, "p20_us", r->p20_us, &first);
        json_kv_fixed3(out, "p80_us", r->p80_us, &first);
        arb_json_kv_int(out, "repeats", r->repeats, &first);
        arb_json_kv_str(out, "status", r->status, &first);
        arb_json_kv_str(out, "reason", r->reason, &first);
        arb_json_kv_str(out, "command", r->command, &first);
        arb_json_kv_int(out, "created", r->created, &first);
        arb_json_kv_bool(out, "stale", r->stale, &first);
        fputs("}", out);
    } else {
        if (x->n == 0)
            printf("%-22s %-28s %-9s %-7s %-26s %10s %10s %10s %-14s %s\n", "kernel", "M N K gs",
                   "precision", "arch", "blocks", "median_us", "p20_us", "p80_us", "status",
                   "device");
        char shape[96];
        int n = snprintf(shape, sizeof(shape), "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64,
                         r->M, r->N, r->K, r->gs);
        if (r->variant && n > 0 && (size_t)n < sizeof(shape))
            snprintf(shape + n, sizeof(shape) - (size_t)n, " v%d", (int)r->variant);
        printf("%-22s %-28s %-9s %-7s %-26s %10.2f %10.2f %10.2f %-14s %s%s\n", r->kernel, shape,
               r->precision, r->arch, blocks, r->median_us, r->p20_us, r->p80_us, r->status,
               r->device, r->stale ? "  [stale: another build]" : "");
    }
    x->n++;
    return 0;
}

static int cmd_tune(const cli *c, arb_cache *cache, arb_err *err)
{
    tune_ctx x = {c->json, 0};
    if (c->json)
        printf("[");
    arb_status st = arb_tune_each(cache, arb_engine_build_id(), NULL, tune_row, &x, err);
    if (c->json)
        printf("]\n");
    if (st != ARB_OK)
        return fail(err);
    if (!c->json && x.n == 0)
        printf("no tuning rows (arb-bench --sweep-blocks records them)\n");
    return EXIT_OK;
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static cli c; /* arb_settings is large: keep it off the stack */
    arb_err err = {0};
    arb_cache *cache = NULL;
    int code;

    arb_settings_load(&c.settings);
    code = parse_args(argc, argv, &c);
    if (code >= 0)
        return code;
    if (strcmp(c.cmd, "config") == 0)
        return cmd_config(&c);

    if (open_cache(&c, &cache, &err) != ARB_OK)
        return fail(&err);
    if (strcmp(c.cmd, "stats") == 0)
        code = cmd_stats(&c, cache, &err);
    else if (strcmp(c.cmd, "list") == 0)
        code = cmd_list(&c, cache, &err);
    else if (strcmp(c.cmd, "verify") == 0)
        code = cmd_verify(cache, &err);
    else if (strcmp(c.cmd, "prune") == 0)
        code = cmd_prune(&c, cache, &err);
    else if (strcmp(c.cmd, "clear") == 0)
        code = cmd_clear(&c, cache, &err);
    else if (strcmp(c.cmd, "export") == 0)
        code = cmd_export(&c, cache, &err);
    else if (strcmp(c.cmd, "import") == 0)
        code = cmd_import(&c, cache, &err);
    else
        code = cmd_tune(&c, cache, &err);
    arb_cache_close(cache);
    return code;
}
