/*
 * test_cache_tool.c - the arb-cache program, run as a user runs it: exit
 * codes, JSON that parses, every setting in `config`, and the maintenance
 * commands end to end.
 *
 * The cache is filled through cache.h, then the built program
 * (ARB_BINARY_DIR/tools/arb-cache) is run on it with --cache.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arb/cache.h"
#include "arb/settings.h"
#include "cache_fixture.h"
#include "files.h"
#include "proc.h"

static const char tool[] = ARB_BINARY_DIR "/tools/arb-cache";

/* ---- Fixtures --------------------------------------------------------------- */

static void make_dir(void) { th_dir_make("arb-cache-tool"); }

TestSuite(cache_tool, .init = make_dir, .fini = th_dir_remove);

/* What a run printed. */
typedef struct run_out {
    int code;
    char out[65536];
    char err[8192];
} run_out;

/* Run arb-cache with `args` (NULL-terminated) and environment assignments
 * `env` ("NAME=value", NULL-terminated; may be NULL), over an environment
 * without ARB_* settings (proc.h), so the caller's cannot leak in. */
static void run_tool(run_out *r, const char *const *args, const char *const *env)
{
    const char *argv[32] = {tool};
    for (int n = 1; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    th_result o = th_run(&(th_cmd){.prog = tool, .argv = argv, .env = env});
    r->code = o.status;
    cr_assert_lt(r->code, 128, "arb-cache died");
    cr_assert_neq(r->code, 127, "cannot run %s", tool);
    snprintf(r->out, sizeof(r->out), "%s", o.out);
    snprintf(r->err, sizeof(r->err), "%s", o.err);
    th_result_free(&o);
}

/* ---- A small JSON checker (RFC 8259 grammar, no semantics) ------------------- */

static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"') {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *json_number(const char *p)
{
    const char *start = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p > start ? p : NULL;
}

static const char *json_members(const char *p, char close, int keyed)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (keyed) {
            p = json_string(json_ws(p));
            if (!p)
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(p);
        if (!p)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    switch (*p) {
    case '{': return json_members(p, '}', 1);
    case '[': return json_members(p, ']', 0);
    case '"': return json_string(p);
    case 't': return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return json_number(p);
    }
}

static int is_json(const char *text)
{
    const char *end = json_value(text);
    return end && *json_ws(end) == '\0';
}

Test(cache_tool, json_checker_rejects_bad_json)
{
    cr_assert(is_json("{\"a\": [1, 2.5, -3e2, true, null, \"x\\\"y\"], \"b\": {}}"));
    cr_assert_not(is_json("{\"a\": 1,}"));
    cr_assert_not(is_json("{\"a\": 1"));
    cr_assert_not(is_json("{\"a\" 1}"));
    cr_assert_not(is_json("[\"tab\there\"]"));
    cr_assert_not(is_json("{} {}"));
}

/* ---- Filling a cache ---------------------------------------------------------- */

/* n entries of 1000 bytes, counters for two kernels, one tuning row per build. */
static void fill_cache(const char *path, int n)
{
    arb_cache *c = th_cache_open(path, NULL);
    for (int i = 0; i < n; i++) {
        uint8_t b[1000];
        memset(b, i, sizeof(b));
        arb_cache_key k = {
            .kernel = i % 2 ? "ternary_grad_x" : "ternary_fwd",
            .name_expr = "k<\"quoted\"\tname>", /* JSON output must escape these */
            .M = 64 + i, .N = 128, .K = 256, .gs = 32,
            .bm = 64, .bn = 64, .bk = 32, .tm = 4, .tn = 4, .warps = 4, .stages = 2,
            .precision = "fp32", .arch = "sm_90", .nvrtc_version = "13.0",
            .template_sha = "abc", .options = "-default-device", .env = "",
        };
        arb_cache_entry e = {.cubin = b, .cubin_len = sizeof(b), .lowered_name = "_Z1kv",
                             .compile_log = "", .block_x = 128, .block_y = 1, .block_z = 1,
                             .registers = 64, .spill_bytes = 0, .compile_ms = 100.0};
        int inserted = 0;
        arb_err err = {0};
        cr_assert_eq(arb_cache_put(c, &k, &e, &inserted, &err), ARB_OK, "%s", err.msg);
        cr_assert_eq(inserted, 1);
    }
    arb_cache_stats_add(c, "ternary_fwd", "miss", 3);
    arb_cache_stats_add(c, "ternary_fwd", "compile", 3);
    arb_cache_stats_add(c, "ternary_fwd", "compile_ms", 1234.5);
    arb_cache_stats_add(c, "ternary_grad_x", "hit_writable", 7);
    const char *builds[] = {"old-build", "other-build"};
    for (int i = 0; i < 2; i++) {
        arb_tune_row t = {
            .kernel = "ternary_fwd", .M = 64, .N = 128, .K = 256, .gs = 32,
            .precision = "fp32", .arch = "sm_90", .device = "NVIDIA H100", .sm_count = 132,
            .driver = "13.0", .nvrtc = "13.0", .build = builds[i],
            .bm = 64, .bn = 64 * (i + 1), .bk = 32, .tm = 4, .tn = 4, .warps = 4, .stages = 2,
            .median_us = 10, .p20_us = 9, .p80_us = 11, .repeats = 20, .status = "ok",
            .reason = "", .command = "arb-bench --sweep-blocks",
        };
        arb_err err = {0};
        cr_assert_eq(arb_tune_put(c, &t, &err), ARB_OK, "%s", err.msg);
    }
    arb_cache_close(c);
}

/* ---- Usage --------------------------------------------------------------------- */

Test(cache_tool, help_and_version_exit_0)
{
    static run_out r;
    run_tool(&r, (const char *[]){"--help", NULL}, NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, "usage: arb-cache"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "verify"));
    cr_assert_str_eq(r.err, "");
    run_tool(&r, (const char *[]){"--version", NULL}, NULL);
    cr_assert_eq(r.code, 0);
    cr_assert(strncmp(r.out, "arb-cache ", 10) == 0, "%s", r.out);
}

Test(cache_tool, usage_errors_exit_2)
{
    static run_out r;
    const char *cache = th_in_dir("k.sqlite");
    run_tool(&r, (const char *[]){"--cache", cache, "frobnicate", NULL}, NULL);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "arb-cache: error: unknown command 'frobnicate'"), "%s",
                       r.err);
    cr_assert_not_null(strstr(r.err, "--help"), "%s", r.err);
    cr_assert_str_eq(r.out, "");

    run_tool(&r, (const char *[]){"--cache", cache, "stats", "--bogus", NULL}, NULL);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "--bogus"), "%s", r.err);
    run_tool(&r, (const char *[]){NULL}, NULL);
    cr_assert_eq(r.code, 2);
    run_tool(&r, (const char *[]){"--cache", cache, "prune", NULL}, NULL);
    cr_assert_eq(r.code, 2);
    run_tool(&r, (const char *[]){"--cache", cache, "prune", "--max-size", "lots", NULL}, NULL);
    cr_assert_eq(r.code, 2);
    run_tool(&r, (const char *[]){"--cache", cache, "export", NULL}, NULL);
    cr_assert_eq(r.code, 2);
    run_tool(&r, (const char *[]){"--cache", cache, "verify", "--json", NULL}, NULL);
    cr_assert_eq(r.code, 2);
}

/* ---- stats --------------------------------------------------------------------- */

Test(cache_tool, stats_json_is_json)
{
    static run_out r;
    const char *cache = th_in_dir("k.sqlite");
    fill_cache(cache, 3);
    run_tool(&r, (const char *[]){"--cache", cache, "stats", "--json", NULL},
             (const char *[]){"ARB_CACHE_MAX_SIZE=1MiB", NULL});
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(r.out[0], '{');
    cr_assert(is_json(r.out), "not JSON:\n%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"entries\": 3"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"cubin_bytes\": 3000"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"max_bytes\": 1048576"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"tuning_rows\": 2"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"miss\": 3"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"compile_ms\": 1234.5"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"ternary_grad_x\": {\"hit_writable\": 7}"), "%s", r.out);
    cr_assert_str_eq(r.err, "");

    /* The text form says the same, with the size against the cap. */
    run_tool(&r, (const char *[]){"--cache", cache, "stats", NULL},
             (const char *[]){"ARB_CACHE_MAX_SIZE=1MiB", NULL});
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "2.9 KiB / 1.0 MiB (0.3%)"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "NVRTC compiles        3 (1234.5 ms in total)"), "%s",
                       r.out);
    cr_assert_not_null(strstr(r.out, "ternary_grad_x"), "%s", r.out);
}

Test(cache_tool, stats_zero_resets_the_counters)
{
    static run_out r;
    const char *cache = th_in_dir("k.sqlite");
    fill_cache(cache, 1);
    run_tool(&r, (const char *[]){"--cache", cache, "stats", "--json", "--zero", NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(is_json(r.out), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"miss\": 3"), "printed before zeroing: %s", r.out);
    run_tool(&r, (const char *[]){"--cache", cache, "stats", "--json", NULL}, NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, "\"miss\": 0"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"kernels\": {}"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"entries\": 1"), "entries stay: %s", r.out);
}

/* ---- config --------------------------------------------------------------------- */

Test(cache_tool, config_shows_every_setting_with_its_origin)
{
    static run_out r;
    const char *cache = th_in_dir("k.sqlite");
    run_tool(&r, (const char *[]){"--cache", cache, "config", NULL},
             (const char *[]){"ARB_ARCH=sm_90a", NULL});
    cr_assert_eq(r.code, 0, "%s", r.err);
    for (int i = 0; i < ARB_SET_COUNT; i++) {
        const arb_setting_info *info = arb_setting_info_of((arb_setting_id)i);
        const char *line = strstr(r.out, info->name);
        cr_assert_not_null(line, "%s missing from:\n%s", info->name, r.out);
        cr_assert_not_null(strstr(r.out, info->description), "%s", info->description);
    }
    const char *arch = strstr(r.out, "(environment) ARB_ARCH ");
    cr_assert_not_null(arch, "%s", r.out);
    cr_assert(strncmp(strchr(arch, '\n') - 6, "sm_90a", 6) == 0, "%.60s", arch);
    cr_assert_not_null(strstr(arch, "yes"), "ARB_ARCH changes generated code");
    cr_assert_not_null(strstr(r.out, "(flag)        ARB_CACHE "), "%s", r.out);
    cr_assert_not_null(strstr(r.out, cache));
    cr_assert_not_null(strstr(r.out, "(default)     ARB_BACKEND"), "%s", r.out);
    struct stat sb;
    cr_assert_neq(stat(cache, &sb), 0, "config does not create the cache");
}

/* ---- list, verify, tune --------------------------------------------------------- */

Test(cache_tool, list_shows_every_entry)
{
    static run_out r;
    const char *cache = th_in_dir("k.sqlite");
    fill_cache(cache, 4);
    run_tool(&r, (const char *[]){"--cache", cache, "list", NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    int lines = 0;
    for (const char *p = r.out; (p = strstr(p, "\nrw ")); p++)
        lines++;
    cr_assert_eq(lines, 4, "%s", r.out);
    cr_assert_not_null(strstr(r.out, "64 128 256 32"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "64x64x32/4x4/w4/s2"), "%s", r.out);

    run_tool(&r, (const char *[]){"--cache", cache, "list", "--json", NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(is_json(r.out), "not JSON:\n%s", r.out);
    cr_assert_not_null(strstr(r.out, "k<\\\"quoted\\\"\\tname>"), "escaped: %s", r.out);
}

Test(cache_tool, verify_exits_1_on_damage)
{
    static run_out r;
    const char *cache = th_in_dir("k.sqlite");
    fill_cache(cache, 3);
    run_tool(&r, (const char *[]){"--cache", cache, "verify", NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "checked 3 entries: 0 damaged"), "%s", r.out);

    th_sql_exec(cache, "UPDATE entries SET checksum = 'bad' WHERE M = 65");
    run_tool(&r, (const char *[]){"--cache", cache, "verify", NULL}, NULL);
    cr_assert_eq(r.code, 1, "%s", r.out);
    cr_assert_not_null(strstr(r.out, "1 damaged"), "%s", r.out);
    cr_assert_not_null(strstr(r.err, "arb-cache: error:"), "%s", r.err);
}

Test(cache_tool, tune_marks_other_builds_stale)
{
    static run_out r;
    const char *cache = th_in_dir("k.sqlite");
    fill_cache(cache, 1);
    run_tool(&r, (const char *[]){"--cache", cache, "tune", "--json", NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(is_json(r.out), "not JSON:\n%s", r.out);
    /* Neither row comes from this build. */
    cr_assert_not_null(strstr(r.out, "\"build\": \"old-build\""), "%s", r.out);
    cr_assert_null(strstr(r.out, "\"stale\": false"), "%s", r.out);
    run_tool(&r, (const char *[]){"--cache", cache, "tune", NULL}, NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, "[stale"), "%s", r.out);
}

/* ---- prune, clear, export, import -------------------------------------------------- */

Test(cache_tool, prune_clear_export_import)
{
    static run_out r;
    const char *cache = th_in_dir("k.sqlite");
    const char *out = th_in_dir("exported.sqlite");
    const char *other = th_in_dir("other.sqlite");
    fill_cache(cache, 6);

    run_tool(&r, (const char *[]){"--cache", cache, "export", out, NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "exported 6 entries"), "%s", r.out);
    run_tool(&r, (const char *[]){"--cache", cache, "export", out, NULL}, NULL);
    cr_assert_eq(r.code, 1, "export never overwrites");
    cr_assert_not_null(strstr(r.err, "already exists"), "%s", r.err);

    run_tool(&r, (const char *[]){"--cache", cache, "prune", "--max-size", "2500", NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "evicted 4 entries; 2 left"), "%s", r.out);

    run_tool(&r, (const char *[]){"--cache", cache, "clear", NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    run_tool(&r, (const char *[]){"--cache", cache, "stats", "--json", NULL}, NULL);
    cr_assert_not_null(strstr(r.out, "\"entries\": 0"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"tuning_rows\": 2"), "%s", r.out);
    run_tool(&r, (const char *[]){"--cache", cache, "clear", "--tuning", NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    run_tool(&r, (const char *[]){"--cache", cache, "stats", "--json", NULL}, NULL);
    cr_assert_not_null(strstr(r.out, "\"tuning_rows\": 0"), "%s", r.out);

    run_tool(&r, (const char *[]){"--cache", other, "import", out, NULL}, NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "imported 6 entries"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "0 skipped"), "%s", r.out);
    run_tool(&r, (const char *[]){"--cache", other, "import", th_in_dir("missing"), NULL}, NULL);
    cr_assert_eq(r.code, 1);
    cr_assert_not_null(strstr(r.err, "arb-cache: error:"), "%s", r.err);

    /* The read-only layers come from ARB_CACHE_READONLY. */
    char env[600];
    snprintf(env, sizeof(env), "ARB_CACHE_READONLY=%s", out);
    run_tool(&r, (const char *[]){"--cache", cache, "stats", "--json", NULL},
             (const char *[]){env, NULL});
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(is_json(r.out), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"entries\": 6}"), "read-only layer counted: %s", r.out);
    snprintf(env, sizeof(env), "ARB_CACHE_READONLY=%s", th_in_dir("missing.sqlite"));
    run_tool(&r, (const char *[]){"--cache", cache, "stats", NULL}, (const char *[]){env, NULL});
    cr_assert_eq(r.code, 1, "a missing read-only layer is an error");
    cr_assert_not_null(strstr(r.err, "missing.sqlite"), "%s", r.err);
}

/* ---- Where ARB_CACHE points ------------------------------------------------------ */

Test(cache_tool, arb_cache_in_a_missing_folder)
{
    /* ARB_CACHE names a file in folders that do not exist yet: they are
     * created, and the new cache verifies. */
    static run_out r;
    char env[700];
    char path[600];
    th_path(path, sizeof(path), "not/there/yet/kernels.sqlite");
    snprintf(env, sizeof(env), "ARB_CACHE=%s", path);
    run_tool(&r, (const char *[]){"stats", NULL}, (const char *[]){env, NULL});
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_eq(r.err, "", "no warning for a folder that can be made");
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "the cache file was created");
    run_tool(&r, (const char *[]){"verify", NULL}, (const char *[]){env, NULL});
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "checked 0 entries"), "%s", r.out);
}

Test(cache_tool, arb_cache_under_a_file)
{
    /* ARB_CACHE names a folder that cannot be made (a file is in the way):
     * reading commands warn once, naming the path, and still work; commands
     * that must write fail with exit 1 and say why. */
    static run_out r;
    char env[700];
    char path[600];
    const char *blocker = th_in_dir("a-file");
    FILE *f = fopen(blocker, "w");
    cr_assert_not_null(f);
    fputs("not a folder\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/kernels.sqlite", blocker);
    snprintf(env, sizeof(env), "ARB_CACHE=%s", path);
    run_tool(&r, (const char *[]){"stats", NULL}, (const char *[]){env, NULL});
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.err, path), "the warning names the path: %s", r.err);
    cr_assert_not_null(strstr(r.err, "cannot create folder"), "%s", r.err);
    run_tool(&r, (const char *[]){"verify", NULL}, (const char *[]){env, NULL});
    cr_assert_eq(r.code, 0, "nothing to verify is not damage: %s%s", r.out, r.err);
    run_tool(&r, (const char *[]){"clear", NULL}, (const char *[]){env, NULL});
    cr_assert_eq(r.code, 1, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "not writable"), "%s", r.err);
}
