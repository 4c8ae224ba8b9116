/*
 * test_engine.c - the JIT engine without a GPU: every template compiles for
 * sm_90 through NVRTC into a valid CUDA ELF; compiled entries round-trip
 * through the cache; every key field invalidates; strict mode refuses
 * misses; concurrent processes fill one cache without losing an entry; a
 * damaged cubin is quarantined and recompiled.
 *
 * All engines here are compile-only (ARB_ARCH=sm_90), as on the CI machine.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arb/cache.h"
#include "arb/engine.h"
#include "arb/kernels.h"
#include "cache_fixture.h"
#include "files.h"

/* ---- fixtures -------------------------------------------------------------- */

static char cache_path[512];

static void make_tmpdir(void)
{
    th_dir_make("arb-test-engine");
    th_path(cache_path, sizeof(cache_path), "kernels.sqlite");
}

TestSuite(engine, .init = make_tmpdir, .fini = th_dir_remove);

/* Settings for a compile-only engine on the test cache. */
static void test_settings(arb_settings *s)
{
    arb_settings_load(s);
    arb_settings_set(s, ARB_SET_CACHE, cache_path, NULL);
    arb_settings_set(s, ARB_SET_ARCH, "sm_90", NULL);
    arb_settings_set(s, ARB_SET_CACHE_READONLY, "", NULL);
    arb_settings_set(s, ARB_SET_CACHE_MODE, "normal", NULL);
    arb_settings_set(s, ARB_SET_CACHE_DISABLE, "0", NULL);
    arb_settings_set(s, ARB_SET_RECACHE, "0", NULL);
    arb_settings_set(s, ARB_SET_KERNEL_DIR, "", NULL);
    arb_settings_set(s, ARB_SET_NVRTC_FLAGS, "", NULL);
    arb_settings_set(s, ARB_SET_KERNEL_DEBUG, "0", NULL);
}

/* Collected warnings, so tests can check what a user would see. */
static char warnings[8192];
static void collect_warning(void *ctx, const char *msg)
{
    (void)ctx;
    strncat(warnings, msg, sizeof(warnings) - strlen(warnings) - 2);
    strncat(warnings, "\n", sizeof(warnings) - strlen(warnings) - 1);
}

static arb_engine *open_engine(const arb_settings *s, const char *nvrtc_version)
{
    arb_engine_options opt;
    arb_engine_options_init(&opt);
    opt.settings = s;
    opt.compile_only = 1;
    opt.warn = collect_warning;
    opt.nvrtc_version = nvrtc_version;
    arb_engine *engine = NULL;
    arb_err err = {0};
    arb_status st = arb_engine_open(&engine, &opt, &err);
    cr_assert_eq(st, ARB_OK, "arb_engine_open: %s", err.msg);
    return engine;
}

/* A small ternary_fwd spec with tails in every dimension. */
static arb_spec small_fwd(void)
{
    arb_spec spec;
    arb_err err = {0};
    cr_assert_eq(arb_spec_init(&spec, "ternary_fwd", 37, 53, 130, 65, ARB_PREC_FP32, 0, &err),
                 ARB_OK, "%s", err.msg);
    return spec;
}

static int prepare(arb_engine *engine, const arb_spec *spec)
{
    int compiled = -1;
    double ms = 0;
    arb_err err = {0};
    arb_status st = arb_engine_prepare(engine, spec, &compiled, &ms, &err);
    cr_assert_eq(st, ARB_OK, "prepare %s: %s", spec->kernel, err.msg);
    return compiled;
}

/* Prepare `spec` in an engine of its own (opened with settings s and NVRTC
 * version nvrtc, closed after): 1 if it compiled, 0 if it came from the cache. */
static int prepare_fresh(const arb_settings *s, const char *nvrtc, const arb_spec *spec)
{
    arb_engine *engine = open_engine(s, nvrtc);
    int compiled = prepare(engine, spec);
    arb_engine_close(engine);
    return compiled;
}

/* A copy of kernel_templates/ in <tmp>/<name> with `line` appended to
 * `file`, for ARB_KERNEL_DIR. Returns the folder (a ring slot of th_in_dir). */
static const char *edited_templates(const char *name, const char *file, const char *line)
{
    const char *dir = th_in_dir(name);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s' && cp %s/kernel_templates/* '%s' && echo '%s' >> '%s/%s'", dir,
             ARB_SOURCE_DIR, dir, line, dir, file);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    return dir;
}

/* Read the writable cache's entry of `spec` (a fresh cache handle). */
static int fetch_entry(arb_engine *engine, const arb_spec *spec, arb_cache_entry *entry)
{
    arb_cache_key key;
    char hash[ARB_CACHE_HASH_LEN];
    arb_err err = {0};
    cr_assert_eq(arb_engine_key(engine, spec, &key, hash, &err), ARB_OK, "%s", err.msg);
    int found = 0;
    cr_assert_eq(arb_cache_get(arb_engine_cache(engine), hash, entry, &found, &err), ARB_OK, "%s",
                 err.msg);
    return found;
}

/* A sample spec of every registry kernel, with awkward sizes. */
static arb_spec sample_spec(const arb_kernel_def *def)
{
    arb_spec spec;
    const char *k = def->name;
    int64_t M = 37, N = 53, K = 130, gs = 65;
    int32_t variant = 0;
    if (!strcmp(k, "grad_weight") || !strcmp(k, "grad_sign"))
        gs = 1;
    if (!strcmp(k, "ternary_update_direct"))
        variant = ARB_VARIANT_STEP | ARB_VARIANT_E_GRAD;
    if (!strcmp(k, "update_E"))
        variant = ARB_VARIANT_E_SIGN;
    if (!strcmp(k, "rmsnorm_fwd") || !strcmp(k, "rmsnorm_bwd"))
        N = 1;
    if (!strcmp(k, "embed_fwd") || !strcmp(k, "embed_bwd_accum") || !strcmp(k, "embed_bwd_sign"))
        N = 7;
    if (!strcmp(k, "act_split") || !strcmp(k, "tc_gemm"))
        gs = 1;
    if (!strcmp(k, "act_split"))
        N = 1;
    /* The staged kernels have tensor-core modes only. */
    arb_precision prec = (def->precisions & 1u) ? ARB_PREC_FP32 : ARB_PREC_BF16X2;
    arb_err err = {0};
    cr_assert_eq(arb_spec_init(&spec, k, M, N, K, gs, prec, variant, &err), ARB_OK,
                 "%s: %s", k, err.msg);
    cr_assert_eq(arb_spec_check(&spec, &err), ARB_OK, "%s: %s", k, err.msg);
    return spec;
}

/* ELF64 header fields of a cubin: magic, class, machine (EM_CUDA = 190). */
static void assert_cuda_elf(const uint8_t *cubin, size_t len, const char *what)
{
    cr_assert_geq(len, 64, "%s: cubin of %zu bytes is too short for an ELF header", what, len);
    cr_assert(cubin[0] == 0x7f && cubin[1] == 'E' && cubin[2] == 'L' && cubin[3] == 'F',
              "%s: cubin lacks the ELF magic", what);
    cr_assert_eq(cubin[4], 2, "%s: cubin is not ELF64", what);
    unsigned machine = (unsigned)cubin[18] | (unsigned)cubin[19] << 8;
    cr_assert_eq(machine, 190u, "%s: e_machine = %u, want EM_CUDA (190)", what, machine);
    uint32_t flags;
    memcpy(&flags, cubin + 48, 4);
    /* The SM version sits in e_flags: bits 0-7 (older ABI) or 8-15 (newer). */
    cr_assert((flags & 0xff) == 90 || ((flags >> 8) & 0xff) == 90,
              "%s: e_flags 0x%x does not name sm_90", what, flags);
}

/* ---- every template compiles for sm_90 --------------------------------------- */

Test(engine, every_template_compiles_for_sm90, .timeout = 240)
{
    arb_settings s, s_a;
    test_settings(&s);
    test_settings(&s_a);
    arb_settings_set(&s_a, ARB_SET_ARCH, "sm_90a", NULL);
    arb_engine *engine = open_engine(&s, NULL);
    arb_engine *engine_a = open_engine(&s_a, NULL); /* wgmma kernels: sm_90a only */
    cr_assert_gt(arb_kernel_count(), 15);
    int arch_specific = 0;
    for (int i = 0; i < arb_kernel_count(); i++) {
        const arb_kernel_def *def = arb_kernel_at(i);
        arb_spec spec = sample_spec(def);
        arb_engine *e = def->arch ? engine_a : engine;
        if (def->arch) {
            arb_err err = {0};
            int compiled = 0;
            cr_assert_eq(arb_engine_prepare(engine, &spec, &compiled, NULL, &err),
                         ARB_ERR_UNSUPPORTED, "%s must be refused for sm_90", def->name);
            cr_assert(strstr(err.msg, def->arch) && strstr(err.msg, "ARB_ARCH"), "%s", err.msg);
            arch_specific++;
        }
        cr_assert_eq(prepare(e, &spec), 1, "%s was not compiled", def->name);
        arb_cache_entry entry;
        cr_assert(fetch_entry(e, &spec, &entry), "%s: no cache entry after compile", def->name);
        assert_cuda_elf(entry.cubin, entry.cubin_len, def->name);
        cr_assert_neq(entry.lowered_name[0], '\0');
        cr_assert_geq(entry.registers, 1, "%s: ptxas register count missing", def->name);
        cr_assert_eq(entry.spill_bytes, 0, "%s spills %d bytes", def->name, entry.spill_bytes);
        arb_cache_entry_free(&entry);
    }
    /* The tensor-core modes of the two GEMMs, in their default tiles. */
    static const char *const gemms[] = {"ternary_fwd", "ternary_grad_x"};
    int tensor_core_specs = 0;
    for (int g = 0; g < 2; g++) {
        for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
            arb_spec spec;
            arb_err err = {0};
            cr_assert_eq(arb_spec_init(&spec, gemms[g], 300, 200, 160, 32, (arb_precision)p, 0,
                                       &err),
                         ARB_OK, "%s", err.msg);
            cr_assert_eq(arb_spec_check(&spec, &err), ARB_OK, "%s %s: %s", gemms[g],
                         arb_precision_name((arb_precision)p), err.msg);
            cr_assert_eq(prepare(engine, &spec), 1);
            arb_cache_entry entry;
            cr_assert(fetch_entry(engine, &spec, &entry));
            assert_cuda_elf(entry.cubin, entry.cubin_len, gemms[g]);
            cr_assert_eq(entry.spill_bytes, 0, "%s %s spills %d bytes", gemms[g],
                         arb_precision_name((arb_precision)p), entry.spill_bytes);
            cr_assert(strstr(entry.compile_log, "registers") != NULL);
            arb_cache_entry_free(&entry);
            tensor_core_specs++;
        }
    }
    /* The tensor-core update, with in-tile E groups and with global scores. */
    static const int64_t update_gs[] = {32, 160};
    for (int u = 0; u < 2; u++) {
        arb_spec plan[ARB_PLAN_MAX];
        int n = arb_plan_update_direct(300, 200, 160, update_gs[u], ARB_PREC_BF16X2, NULL, 1, 1,
                                       ARB_E_SCORE_GRAD, plan);
        cr_assert_geq(n, 1);
        cr_assert_eq(plan[0].prec, ARB_PREC_BF16X2);
        arb_err err = {0};
        cr_assert_eq(arb_spec_check(&plan[0], &err), ARB_OK, "%s", err.msg);
        cr_assert_eq(prepare(engine, &plan[0]), 1);
        arb_cache_entry entry;
        cr_assert(fetch_entry(engine, &plan[0], &entry));
        cr_assert_eq(entry.spill_bytes, 0, "tensor-core update spills %d bytes",
                     entry.spill_bytes);
        arb_cache_entry_free(&entry);
        tensor_core_specs++;
    }
    int staged_update_specs = 0;
    /* The staged update: transposed splits and tc_update, in-tile E groups
     * and global scores. */
    for (int u = 0; u < 2; u++) {
        arb_spec plan[ARB_PLAN_MAX];
        int n = arb_plan_update_direct(300, 200, 160, update_gs[u], ARB_PREC_BF16X2, "sm_90a", 1,
                                       1, ARB_E_SCORE_GRAD, plan);
        cr_assert_geq(n, 3);
        cr_assert_str_eq(plan[2].kernel, "tc_update");
        for (int i = 0; i < 3; i++) {
            arb_err err = {0};
            cr_assert_eq(arb_spec_check(&plan[i], &err), ARB_OK, "%s", err.msg);
            arb_engine *e = i == 2 ? engine_a : engine;
            if (prepare(e, &plan[i]) != 1)
                continue; /* the same transposed split compiled already */
            arb_cache_entry entry;
            cr_assert(fetch_entry(e, &plan[i], &entry));
            cr_assert_eq(entry.spill_bytes, 0, "%s spills %d bytes", plan[i].kernel,
                         entry.spill_bytes);
            arb_cache_entry_free(&entry);
            if (i == 2)
                staged_update_specs++;
            else
                tensor_core_specs++;
        }
    }
    /* tc_gemm scaling after the MMA (one- and multi-piece modes). */
    for (int p = ARB_PREC_BF16; p <= ARB_PREC_BF16X2; p++) {
        arb_spec spec;
        cr_assert_eq(arb_spec_init(&spec, "tc_gemm", 300, 200, 256, 64, (arb_precision)p,
                                   ARB_VARIANT_SCALE_AFTER, NULL),
                     ARB_OK);
        arb_err err = {0};
        cr_assert_eq(arb_spec_check(&spec, &err), ARB_OK, "%s", err.msg);
        cr_assert_eq(prepare(engine_a, &spec), 1);
        arb_cache_entry entry;
        cr_assert(fetch_entry(engine_a, &spec, &entry));
        cr_assert_eq(entry.spill_bytes, 0, "scale-after tc_gemm spills %d bytes",
                     entry.spill_bytes);
        arb_cache_entry_free(&entry);
        staged_update_specs++;
    }
    /* The staged kernels in every tensor-core mode, for sm_90a. */
    static const char *const staged[] = {"ternary_decode", "act_split", "tc_gemm"};
    int staged_specs = 0;
    for (int k = 0; k < 3; k++) {
        for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
            arb_spec spec;
            int64_t M = k == 0 ? 1 : 300, N = k == 1 ? 1 : 200, gs = k == 0 ? 32 : 1;
            cr_assert_eq(arb_spec_init(&spec, staged[k], M, N, 160, gs, (arb_precision)p,
                                       k == 0 && p % 2 ? ARB_VARIANT_TRANS : 0, NULL),
                         ARB_OK);
            cr_assert_eq(prepare(engine_a, &spec), 1, "%s %s", staged[k],
                         arb_precision_name((arb_precision)p));
            arb_cache_entry entry;
            cr_assert(fetch_entry(engine_a, &spec, &entry));
            cr_assert_eq(entry.spill_bytes, 0, "%s %s spills %d bytes", staged[k],
                         arb_precision_name((arb_precision)p), entry.spill_bytes);
            arb_cache_entry_free(&entry);
            staged_specs++;
        }
    }
    arb_engine_stats stats;
    arb_engine_stats_get(engine, &stats);
    cr_assert_eq(stats.compiles, arb_kernel_count() - arch_specific + tensor_core_specs);
    arb_engine_stats_get(engine_a, &stats);
    cr_assert_eq(stats.compiles, arch_specific + staged_specs + staged_update_specs);
    arb_engine_close(engine_a);
    arb_engine_close(engine);
}

/* Every candidate configuration a sweep may try either passes the kernel's
 * check for some precision or is rejected with a reason; the passing ones
 * compile without spills (checked for the tensor-core tiles of ternary_fwd). */
Test(engine, tensor_core_candidates_compile_without_spills, .timeout = 300)
{
    arb_settings s;
    test_settings(&s);
    arb_engine *engine = open_engine(&s, NULL);
    const arb_kernel_def *def = arb_kernel_find("ternary_fwd");
    int compiled = 0;
    for (int c = 0; c < def->n_candidates; c++) {
        arb_spec spec;
        cr_assert_eq(arb_spec_init(&spec, "ternary_fwd", 1024, 512, 512, 64, ARB_PREC_BF16X2, 0,
                                   NULL),
                     ARB_OK);
        spec.blocks = def->candidates[c];
        arb_err err = {0};
        if (arb_spec_check(&spec, &err) != ARB_OK) {
            cr_assert_neq(err.msg[0], '\0', "a rejected candidate must say why");
            continue;
        }
        cr_assert_eq(prepare(engine, &spec), 1);
        arb_cache_entry entry;
        cr_assert(fetch_entry(engine, &spec, &entry));
        cr_assert_eq(entry.spill_bytes, 0, "candidate %d spills %d bytes", c, entry.spill_bytes);
        arb_cache_entry_free(&entry);
        compiled++;
    }
    cr_assert_geq(compiled, 8, "too few tensor-core candidates pass the check");
    arb_engine_close(engine);
}

/* ---- round trip ------------------------------------------------------------- */

Test(engine, round_trip_through_a_new_engine)
{
    arb_settings s;
    test_settings(&s);
    arb_spec spec = small_fwd();
    arb_engine *first = open_engine(&s, NULL);
    cr_assert_eq(prepare(first, &spec), 1);
    arb_cache_entry a;
    cr_assert(fetch_entry(first, &spec, &a));
    arb_engine_close(first);

    arb_engine *second = open_engine(&s, NULL);
    cr_assert_eq(prepare(second, &spec), 0, "a second engine recompiled a cached kernel");
    arb_cache_entry b;
    cr_assert(fetch_entry(second, &spec, &b));
    cr_assert_eq(a.cubin_len, b.cubin_len);
    cr_assert_eq(memcmp(a.cubin, b.cubin, a.cubin_len), 0, "cubin bytes changed in the cache");
    cr_assert_str_eq(a.lowered_name, b.lowered_name);
    arb_engine_stats stats;
    arb_engine_stats_get(second, &stats);
    cr_assert_eq(stats.compiles, 0);
    arb_cache_entry_free(&a);
    arb_cache_entry_free(&b);
    arb_engine_close(second);
}

/* ---- invalidation: every key field --------------------------------------------- */

/* Compile once, change one thing, expect a miss (compile); change it back and
 * expect the original entry again (nothing stale, nothing lost). */
static void expect_miss_after(void (*change)(arb_settings *s, arb_spec *spec, const char **nvrtc))
{
    arb_settings s;
    test_settings(&s);
    arb_spec spec = small_fwd();
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 1);

    arb_settings changed = s;
    arb_spec changed_spec = spec;
    const char *nvrtc = NULL;
    change(&changed, &changed_spec, &nvrtc);
    cr_assert_eq(prepare_fresh(&changed, nvrtc, &changed_spec), 1,
                 "the change did not cause a cache miss");
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 0, "the original entry was lost");
}

static void change_arch(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)spec, (void)nvrtc;
    arb_settings_set(s, ARB_SET_ARCH, "sm_89", NULL);
}

static void change_options(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)spec, (void)nvrtc;
    arb_settings_set(s, ARB_SET_NVRTC_FLAGS, "-DARB_TEST_OPTION=1", NULL);
}

static void change_debug(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)spec, (void)nvrtc;
    arb_settings_set(s, ARB_SET_KERNEL_DEBUG, "1", NULL);
}

static void change_nvrtc(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)s, (void)spec;
    *nvrtc = "99.9";
}

static void change_shape(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)s, (void)nvrtc;
    spec->M += 1;
}

static void change_gs(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)s, (void)nvrtc;
    spec->gs = 130;
}

static void change_blocks(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)s, (void)nvrtc;
    spec->blocks = (arb_blocks){64, 64, 16, 4, 4, 8, 1};
}

/* Copy the templates to a folder, edit a comment in ternary_fwd.cu, and point
 * ARB_KERNEL_DIR at it: the template hash must change. */
static void change_template(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)spec, (void)nvrtc;
    arb_settings_set(s, ARB_SET_KERNEL_DIR,
                     edited_templates("templates", "ternary_fwd.cu", "/* edited */"), NULL);
}

/* Editing a header a template includes must change that template's hash. */
static void change_header(arb_settings *s, arb_spec *spec, const char **nvrtc)
{
    (void)spec, (void)nvrtc;
    arb_settings_set(s, ARB_SET_KERNEL_DIR,
                     edited_templates("templates-h", "simt_gemm.cuh", "/* edited */"), NULL);
}

Test(engine, arch_change_misses) { expect_miss_after(change_arch); }
Test(engine, option_change_misses) { expect_miss_after(change_options); }
Test(engine, debug_setting_misses) { expect_miss_after(change_debug); }
Test(engine, nvrtc_version_change_misses) { expect_miss_after(change_nvrtc); }
Test(engine, shape_change_misses) { expect_miss_after(change_shape); }
Test(engine, group_size_change_misses) { expect_miss_after(change_gs); }
Test(engine, block_change_misses) { expect_miss_after(change_blocks); }
Test(engine, template_edit_misses) { expect_miss_after(change_template); }
Test(engine, included_header_edit_misses) { expect_miss_after(change_header); }

/* Every codegen setting of the registry reaches the key. */
Test(engine, codegen_settings_change_the_key)
{
    arb_settings base;
    test_settings(&base);
    arb_spec spec = small_fwd();
    arb_engine *engine = open_engine(&base, NULL);
    arb_cache_key key;
    char base_hash[ARB_CACHE_HASH_LEN], hash[ARB_CACHE_HASH_LEN];
    cr_assert_eq(arb_engine_key(engine, &spec, &key, base_hash, NULL), ARB_OK);
    arb_engine_close(engine);
    int checked = 0;
    for (int id = 0; id < ARB_SET_COUNT; id++) {
        const arb_setting_info *info = arb_setting_info_of((arb_setting_id)id);
        if (!info->codegen)
            continue;
        arb_settings s = base;
        arb_spec changed = spec;
        if (id == ARB_SET_ARCH)
            arb_settings_set(&s, id, "sm_80", NULL);
        else if (id == ARB_SET_KERNEL_DIR)
            change_template(&s, &changed, NULL);
        else if (id == ARB_SET_KERNEL_DEBUG)
            arb_settings_set(&s, id, "1", NULL);
        else if (id == ARB_SET_NVRTC_FLAGS)
            arb_settings_set(&s, id, "-DX=1", NULL);
        else if (id == ARB_SET_PRECISION)
            changed.prec = ARB_PREC_BF16X2; /* the precision column carries it */
        else
            cr_assert_fail("codegen setting %s has no case in this test: add one", info->name);
        engine = open_engine(&s, NULL);
        cr_assert_eq(arb_engine_key(engine, &changed, &key, hash, NULL), ARB_OK);
        cr_assert_str_neq(hash, base_hash, "%s does not change the key", info->name);
        arb_engine_close(engine);
        checked++;
    }
    cr_assert_geq(checked, 4);
}

/* ---- modes ------------------------------------------------------------------ */

Test(engine, strict_mode_refuses_a_miss_then_accepts_a_hit)
{
    arb_settings s;
    test_settings(&s);
    arb_settings_set(&s, ARB_SET_CACHE_MODE, "strict", NULL);
    arb_spec spec = small_fwd();
    arb_engine *engine = open_engine(&s, NULL);
    int compiled = -1;
    arb_err err = {0};
    cr_assert_eq(arb_engine_prepare(engine, &spec, &compiled, NULL, &err), ARB_ERR_CACHE_MISS);
    cr_assert(strstr(err.msg, "strict") && strstr(err.msg, "arb-prewarm"),
              "unhelpful strict-miss message: %s", err.msg);
    arb_engine_stats stats;
    arb_engine_stats_get(engine, &stats);
    cr_assert_eq(stats.strict_misses, 1);
    cr_assert_eq(stats.compiles, 0);
    arb_engine_close(engine);

    arb_settings normal;
    test_settings(&normal);
    cr_assert_eq(prepare_fresh(&normal, NULL, &spec), 1);
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 0, "strict mode must accept a cached kernel");
}

Test(engine, disabled_cache_compiles_in_memory)
{
    arb_settings s;
    test_settings(&s);
    arb_settings_set(&s, ARB_SET_CACHE_DISABLE, "1", NULL);
    arb_spec spec = small_fwd();
    arb_engine *engine = open_engine(&s, NULL);
    cr_assert_null(arb_engine_cache(engine));
    cr_assert_eq(prepare(engine, &spec), 1);
    cr_assert_eq(prepare(engine, &spec), 1, "with the cache disabled every prepare compiles");
    arb_engine_close(engine);
    struct stat st;
    cr_assert_neq(stat(cache_path, &st), 0, "ARB_CACHE_DISABLE=1 still created %s", cache_path);
}

Test(engine, recache_compiles_again_and_keeps_the_row)
{
    arb_settings s;
    test_settings(&s);
    arb_spec spec = small_fwd();
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 1);
    arb_settings_set(&s, ARB_SET_RECACHE, "1", NULL);
    arb_engine *engine = open_engine(&s, NULL);
    cr_assert_eq(prepare(engine, &spec), 1, "ARB_RECACHE=1 must compile");
    arb_cache_entry entry;
    cr_assert(fetch_entry(engine, &spec, &entry), "the cached row is gone after a recache");
    arb_cache_entry_free(&entry);
    arb_engine_close(engine);
}

Test(engine, compile_only_without_arch_says_what_to_do)
{
    arb_settings s;
    test_settings(&s);
    arb_settings_set(&s, ARB_SET_ARCH, "", NULL);
    arb_engine_options opt;
    arb_engine_options_init(&opt);
    opt.settings = &s;
    opt.compile_only = 1;
    arb_engine *engine = NULL;
    arb_err err = {0};
    cr_assert_eq(arb_engine_open(&engine, &opt, &err), ARB_ERR_INVALID_ARG);
    cr_assert(strstr(err.msg, "--arch sm_90"), "message: %s", err.msg);
}

Test(engine, bad_template_reports_the_nvrtc_log)
{
    arb_settings s;
    test_settings(&s);
    arb_settings_set(&s, ARB_SET_KERNEL_DIR,
                     edited_templates("broken", "relu_bwd.cu", "this is not C++;"), NULL);
    arb_engine *engine = open_engine(&s, NULL);
    arb_spec spec;
    cr_assert_eq(arb_spec_init(&spec, "relu_bwd", 100, 1, 1, 1, ARB_PREC_FP32, 0, NULL), ARB_OK);
    int compiled = 0;
    arb_err err = {0};
    cr_assert_eq(arb_engine_prepare(engine, &spec, &compiled, NULL, &err), ARB_ERR_COMPILE);
    cr_assert(strstr(err.msg, "relu_bwd.cu") && strstr(err.msg, "error"),
              "the message lacks the NVRTC log: %s", err.msg);
    arb_engine_close(engine);
}

/* ---- faults ----------------------------------------------------------------- */

/* Flip a cubin byte through SQL: the engine must notice (checksum),
 * quarantine the row, warn, and compile a fresh one. */
Test(engine, flipped_cubin_byte_is_quarantined_and_recompiled)
{
    arb_settings s;
    test_settings(&s);
    arb_spec spec = small_fwd();
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 1);
    th_sql_exec(cache_path, "UPDATE entries SET cubin = CAST(substr(cubin, 1, 100) || "
                            "x'00' || substr(cubin, 102) AS BLOB)");

    warnings[0] = '\0';
    arb_engine *engine = open_engine(&s, NULL);
    cr_assert_eq(prepare(engine, &spec), 1, "a damaged cubin was trusted");
    arb_engine_stats stats;
    arb_engine_stats_get(engine, &stats);
    cr_assert_eq(stats.quarantined, 1);
    cr_assert_neq(warnings[0], '\0', "no warning about the damaged entry");
    arb_engine_close(engine);
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 0, "the recompiled entry was not stored");
}

Test(engine, garbage_cache_file_is_rebuilt)
{
    FILE *f = fopen(cache_path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 8192; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    arb_settings s;
    test_settings(&s);
    warnings[0] = '\0';
    arb_spec spec = small_fwd();
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 1);
    cr_assert_neq(warnings[0], '\0', "no warning about the garbage cache file");
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 0);
}

Test(engine, missing_cache_folder_is_created)
{
    arb_settings s;
    test_settings(&s);
    char nested[600];
    th_path(nested, sizeof(nested), "a/b/c/kernels.sqlite");
    arb_settings_set(&s, ARB_SET_CACHE, nested, NULL);
    arb_spec spec = small_fwd();
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 1);
    cr_assert_eq(prepare_fresh(&s, NULL, &spec), 0);
}

/* An unwritable cache location degrades to compiling in memory with a warning. */
Test(engine, unwritable_cache_compiles_in_memory)
{
    arb_settings s;
    test_settings(&s);
    arb_settings_set(&s, ARB_SET_CACHE, "/proc/arb-no-such-dir/kernels.sqlite", NULL);
    warnings[0] = '\0';
    arb_engine *engine = open_engine(&s, NULL);
    arb_spec spec = small_fwd();
    cr_assert_eq(prepare(engine, &spec), 1);
    cr_assert_neq(warnings[0], '\0', "no warning about the unwritable cache");
    arb_engine_close(engine);
}

/* ---- concurrency --------------------------------------------------------------- */

/* Several processes compile overlapping key sets into one file at once: all
 * succeed, and the cache ends with exactly the union. */
Test(engine, concurrent_processes_lose_no_entry, .timeout = 240)
{
    enum { PROCS = 3, PER = 4 };
    static const int64_t Ms[PROCS + PER] = {17, 18, 19, 20, 21, 22, 23};
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            arb_settings s;
            test_settings(&s);
            arb_engine_options opt;
            arb_engine_options_init(&opt);
            opt.settings = &s;
            opt.compile_only = 1;
            opt.warn = collect_warning;
            arb_engine *engine = NULL;
            if (arb_engine_open(&engine, &opt, NULL) != ARB_OK)
                _exit(10);
            for (int i = 0; i < PER; i++) { /* process p takes Ms[p .. p+PER) */
                arb_spec spec;
                arb_spec_init(&spec, "relu_fwd", Ms[p + i], 1, 1, 1, ARB_PREC_FP32, 0, NULL);
                int compiled = 0;
                arb_err err = {0};
                if (arb_engine_prepare(engine, &spec, &compiled, NULL, &err) != ARB_OK) {
                    fprintf(stderr, "child %d: %s\n", p, err.msg);
                    _exit(11);
                }
            }
            arb_engine_close(engine);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        waitpid(pids[p], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed (status %d)",
                  p, status);
    }
    arb_settings s;
    test_settings(&s);
    arb_engine *engine = open_engine(&s, NULL);
    for (int i = 0; i < PROCS + PER - 1; i++) {
        arb_spec spec;
        arb_spec_init(&spec, "relu_fwd", Ms[i], 1, 1, 1, ARB_PREC_FP32, 0, NULL);
        cr_assert_eq(prepare(engine, &spec), 0, "entry M=%lld was lost", (long long)Ms[i]);
    }
    arb_cache_summary summary;
    cr_assert_eq(arb_cache_summarize(arb_engine_cache(engine), &summary, NULL), ARB_OK);
    cr_assert_eq(summary.entries, PROCS + PER - 1, "cache holds %lld entries, want %d",
                 (long long)summary.entries, PROCS + PER - 1);
    arb_engine_close(engine);
}

Test(engine, plan_expansion_matches_the_jit_ops)
{
    /* The linear plan is what the trainer launches: fwd, grad_x, fused update,
     * and the E apply kernel when groups span threads. */
    arb_spec plan[ARB_PLAN_MAX];
    arb_linear_update update = {1, 1, ARB_E_SCORE_GRAD};
    cr_assert_eq(arb_plan_linear(1024, 4096, 4096, 4096, ARB_PREC_FP32, NULL, &update, plan), 4,
                 "row groups meet in global memory and need the apply kernel");
    cr_assert_str_eq(plan[0].kernel, "ternary_fwd");
    cr_assert_str_eq(plan[1].kernel, "ternary_grad_x");
    cr_assert_str_eq(plan[2].kernel, "ternary_update_direct");
    cr_assert_eq(plan[2].variant, ARB_VARIANT_STEP | ARB_VARIANT_E_GRAD);
    cr_assert_str_eq(plan[3].kernel, "update_E_apply");
    cr_assert_eq(arb_plan_linear(1024, 4096, 4096, 64, ARB_PREC_FP32, NULL, &update, plan), 3,
                 "groups inside a tile step E inside the update kernel");
    cr_assert_eq(plan[2].variant, ARB_VARIANT_STEP | ARB_VARIANT_E_GRAD | ARB_VARIANT_E_IN_TILE);
    cr_assert_eq(plan[2].blocks.bn % 64, 0);
    cr_assert_eq(arb_plan_linear(1024, 4096, 4096, 1, ARB_PREC_FP32, NULL, &update, plan), 3,
                 "gs=1 steps E inside the update kernel");
    arb_linear_update step_only = {1, 0, ARB_E_SCORE_GRAD};
    cr_assert_eq(arb_plan_linear(1024, 256, 4096, 64, ARB_PREC_FP32, NULL, &step_only, plan), 3);
    cr_assert_eq(plan[2].variant, ARB_VARIANT_STEP);
}

/* The staged plans: only on sm_90a, only for tensor-core modes, from
 * ARB_STAGED_MIN_ROWS rows on; fwd decodes W, grad_x decodes W^T and
 * reduces over N. */
Test(engine, staged_plans_need_sm90a_and_enough_rows)
{
    arb_spec plan[ARB_PLAN_MAX];
    const int64_t rows = ARB_STAGED_MIN_ROWS;
    cr_assert_eq(arb_plan_ternary_fwd(rows, 300, 200, 40, ARB_PREC_BF16X2, NULL, plan), 1);
    cr_assert_eq(arb_plan_ternary_fwd(rows, 300, 200, 40, ARB_PREC_BF16X2, "sm_90", plan), 1);
    cr_assert_eq(arb_plan_ternary_fwd(rows - 1, 300, 200, 40, ARB_PREC_BF16X2, "sm_90a", plan),
                 1);
    cr_assert_eq(arb_plan_ternary_fwd(rows, 300, 200, 40, ARB_PREC_FP32, "sm_90a", plan), 1);
    cr_assert_str_eq(plan[0].kernel, "ternary_fwd");

    cr_assert_eq(arb_plan_ternary_fwd(rows, 300, 200, 40, ARB_PREC_TF32, "sm_90a", plan), 3);
    cr_assert_str_eq(plan[0].kernel, "ternary_decode");
    cr_assert(plan[0].N == 300 && plan[0].K == 200 && plan[0].gs == 40 && plan[0].variant == 0);
    cr_assert_str_eq(plan[1].kernel, "act_split");
    cr_assert(plan[1].M == rows && plan[1].K == 200);
    cr_assert_str_eq(plan[2].kernel, "tc_gemm");
    cr_assert(plan[2].M == rows && plan[2].N == 300 && plan[2].K == 200);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(plan[i].prec, ARB_PREC_TF32);

    cr_assert_eq(arb_plan_ternary_grad_x(rows, 300, 200, 40, ARB_PREC_BF16X3, "sm_90a", plan), 3);
    cr_assert_eq(plan[0].variant, ARB_VARIANT_TRANS);
    cr_assert(plan[1].M == rows && plan[1].K == 300, "gy rows are N long");
    cr_assert(plan[2].M == rows && plan[2].N == 200 && plan[2].K == 300, "gx: K columns over N");

    arb_linear_update update = {1, 1, ARB_E_SCORE_GRAD};
    int n = arb_plan_linear(1024, 4096, 4096, 64, ARB_PREC_BF16X2, "sm_90a", &update, plan);
    cr_assert_eq(n, 9, "fwd 3 + grad_x 3 + the staged update 3 (E in tile)");
    cr_assert_str_eq(plan[8].kernel, "tc_update");
    cr_assert_eq(arb_plan_linear(1024, 4096, 4096, 4096, ARB_PREC_BF16X2, "sm_90a", &update, plan),
                 10, "E groups across rows: the E apply kernel after the update");
    cr_assert_leq(10, ARB_PLAN_MAX);
    for (int i = 0; i < n; i++) {
        arb_err err = {0};
        cr_assert_eq(arb_spec_check(&plan[i], &err), ARB_OK, "%s: %s", plan[i].kernel, err.msg);
    }
}

/* tc_gemm's default tile fits every shape and mode (the check passes) and
 * shrinks for small outputs, so the grid still fills the GPU. */
Test(engine, tc_gemm_defaults_pass_their_check)
{
    static const int64_t rows[] = {1, 128, 300, 1024, 8192}, cols[] = {5, 256, 1024, 4096};
    for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++)
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 4; j++) {
                arb_spec spec;
                arb_err err = {0};
                cr_assert_eq(arb_spec_init(&spec, "tc_gemm", rows[i], cols[j], 4096, 1,
                                           (arb_precision)p, 0, &err),
                             ARB_OK, "%s", err.msg);
                cr_assert_eq(arb_spec_check(&spec, &err), ARB_OK, "%s", err.msg);
            }
    arb_spec big, small;
    arb_spec_init(&big, "tc_gemm", 8192, 4096, 4096, 1, ARB_PREC_BF16, 0, NULL);
    arb_spec_init(&small, "tc_gemm", 1024, 256, 4096, 1, ARB_PREC_BF16, 0, NULL);
    cr_assert(big.blocks.bm == 128 && big.blocks.bn == 256);
    cr_assert(small.blocks.bm == 64 && small.blocks.bn == 64, "16 x 4 = 64 blocks at most");
}

/* Every spec of a staged update plan passes its check, whatever the scale
 * type (in-tile E groups must fit the default tile's width). */
Test(engine, staged_update_plans_pass_their_checks)
{
    static const int64_t shapes[][3] = {{130, 384, 128}, {4096, 4096, 64}, {256, 4096, 64},
                                        {68, 32, 128},   {257, 160, 32},   {130, 192, 64},
                                        {53, 131, 1},    {65, 63, 63}};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        for (int score = 0; score < 2; score++)
            for (int phi = 0; phi < 2; phi++) {
                arb_spec plan[ARB_PLAN_MAX];
                int n = arb_plan_update_direct(1024, shapes[i][0], shapes[i][1], shapes[i][2],
                                               ARB_PREC_BF16X2, "sm_90a", 1, phi,
                                               (arb_e_score)score, plan);
                cr_assert_geq(n, 3);
                for (int k = 0; k < n; k++) {
                    arb_err err = {0};
                    cr_assert_eq(arb_spec_check(&plan[k], &err), ARB_OK, "%s", err.msg);
                }
            }
}

/* Staged operand sizes: rows padded to 256 (the widest tile), the
 * reduction to 64. */
Test(engine, staged_operand_sizes)
{
    cr_assert_eq(arb_staged_weight_bytes(300, 131, ARB_PREC_BF16, 0), (size_t)512 * 192 * 2);
    cr_assert_eq(arb_staged_weight_bytes(300, 131, ARB_PREC_TF32, 1), (size_t)256 * 320 * 4);
    cr_assert_eq(arb_staged_act_bytes(257, 64, ARB_PREC_BF16X3), (size_t)3 * 512 * 64 * 2);
    cr_assert_eq(arb_staged_act_bytes(1, 1, ARB_PREC_TF32), (size_t)256 * 64 * 4);
}
