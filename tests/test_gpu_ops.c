/*
 * test_gpu_ops.c - every op on the jit backend (NVRTC-specialized kernels on
 * a CUDA GPU), label `gpu`.
 *
 * Each case of the harness testbed runs with the jit backend under test and
 * a cpu backend beside it: the same random inputs go to both, the jit's
 * outputs are poisoned and guarded, and the jit is checked against the
 * float64 reference and against the cpu with SPEC §3 tolerances. Integer
 * updates are compared exactly given the same s (the two-pass ternary_step
 * gets the s the GPU's grad_sign produced, on both backends); the direct ops
 * are compared byte for byte with the two-pass path on small-integer gy and
 * x, where every sum is exact in fp32 so no sign can depend on the order of
 * a GPU reduction.
 *
 * Without a driver or a device each test prints "arb-skip: <reason>" and
 * skips (ctest counts it as skipped, not passed). Every process compiles
 * into a fresh cache file of its own (ARB_CACHE, removed at the end).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "harness.h"

static arb_backend *jit_be, *cpu_be; /* of the open bed */

TestSuite(gpu_ops, .fini = th_gpu_bed_close);

/* A bed with the jit backend under test and the cpu beside it; skips the
 * test when no GPU can be used. */
static th_bed gpu_bed(const char *name)
{
    th_bed bed = th_gpu_bed("arb-gpu-test", name);
    jit_be = bed.be;
    cpu_be = bed.cpu;
    return bed;
}

/* A whole test: `sweep` on gpu_bed(name), asserting that it passed. */
static void gpu_sweep(const char *name, int (*sweep)(th_bed *bed))
{
    th_bed bed = gpu_bed(name);
    cr_assert(sweep(&bed), "see the FAIL lines above");
}

/* ---- GEMMs (fp32 SIMT: SPEC §3 fp32 <= 2e-6) ------------------------------------ */

Test(gpu_ops, ternary_fwd) { gpu_sweep("gpu_ops/ternary_fwd", th_sweep_ternary_fwd); }

Test(gpu_ops, ternary_grad_x) { gpu_sweep("gpu_ops/ternary_grad_x", th_sweep_ternary_grad_x); }

Test(gpu_ops, grad_weight) { gpu_sweep("gpu_ops/grad_weight", th_sweep_grad_weight); }

Test(gpu_ops, grad_sign) { gpu_sweep("gpu_ops/grad_sign", th_sweep_grad_sign); }

/* ---- integer updates (exact given the same s) ------------------------------------ */

Test(gpu_ops, ternary_step) { gpu_sweep("gpu_ops/ternary_step", th_sweep_ternary_step); }

Test(gpu_ops, update_E) { gpu_sweep("gpu_ops/update_E", th_sweep_update_E); }

Test(gpu_ops, update_E_split) { gpu_sweep("gpu_ops/update_E_split", th_sweep_update_E_split); }

/* Small-integer gy and x: the two-pass chain, the three direct ops and the
 * split forms byte for byte against it, and all of it against the cpu. */
Test(gpu_ops, update_direct_equals_two_pass)
{
    th_bed bed = gpu_bed("gpu_ops/update_direct_equals_two_pass");
    int ok = 1, i = 0;
    TH_FOR_EACH_SHAPE(s)
    {
        int theta = 1 + i % 3, phi = 1 + i % 2;
        i++;
        ok &= th_case_update_chain(&bed, s->M, s->N, s->K, th_shape_gs(s), theta, phi,
                                   ARB_E_SCORE_GRAD, 1);
        ok &= th_case_update_chain(&bed, s->M, s->N, s->K, th_shape_gs(s), theta, phi,
                                   ARB_E_SCORE_SIGN, 1);
    }
    cr_assert(ok, "see the FAIL lines above");
}

/* Normal data: the two-pass chain (signs by the rule, steps exact given the
 * GPU's own s, E within the score tolerance); the direct ops are skipped
 * there (their internal signs may legitimately differ in ties). */
Test(gpu_ops, update_two_pass_normal_data)
{
    th_bed bed = gpu_bed("gpu_ops/update_two_pass_normal_data");
    int ok = 1, i = 0;
    TH_FOR_EACH_SHAPE(s)
    {
        arb_e_score mode = i % 2 ? ARB_E_SCORE_SIGN : ARB_E_SCORE_GRAD;
        ok &= th_case_update_chain(&bed, s->M, s->N, s->K, th_shape_gs(s), 2, 2, mode, 0);
        i++;
    }
    cr_assert(ok, "see the FAIL lines above");
}

Test(gpu_ops, guard_blocks_every_update)
{
    gpu_sweep("gpu_ops/guard_blocks_every_update", th_sweep_guard);
}

/* ---- RMSNorm, embedding, glue ---------------------------------------------------- */

/* RMSNorm backward at D = 1 is gy*w*(1 - xhat^2)/r with 1 - xhat^2 =
 * 1e-6/(x^2 + 1e-6): an fp32 kernel loses most digits to that cancellation
 * (seen: rel 1.4e-2), while the cpu works in double. The backward cases
 * therefore start at D = 2, where the projection is well conditioned. */
Test(gpu_ops, rmsnorm_fwd_bwd)
{
    static const struct {
        int64_t B, D;
        arb_scale_kind kind;
    } shapes[] = {
        {1, 1, ARB_SCALE_ELEMENT},   {1, 2, ARB_SCALE_ELEMENT},    {37, 131, ARB_SCALE_ELEMENT},
        {37, 96, ARB_SCALE_G32},
        {5, 192, ARB_SCALE_G64},     {37, 384, ARB_SCALE_G128},    {37, 131, ARB_SCALE_ROW},
        {3, 2053, ARB_SCALE_TENSOR}, {129, 513, ARB_SCALE_ELEMENT}, {2, 4099, ARB_SCALE_ROW},
        /* D a multiple of 4 x threads: the row-in-registers path */
        {37, 1024, ARB_SCALE_G64},   {5, 4096, ARB_SCALE_ELEMENT}, {3, 2048, ARB_SCALE_TENSOR},
    };
    th_bed bed = gpu_bed("gpu_ops/rmsnorm_fwd_bwd");
    int ok = 1;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        int64_t gs = arb_scale_gs(shapes[i].kind, 1, shapes[i].D);
        ok &= th_case_rmsnorm_fwd(&bed, shapes[i].B, shapes[i].D, gs);
        if (shapes[i].D > 1)
            ok &= th_case_rmsnorm_bwd(&bed, shapes[i].B, shapes[i].D, gs);
    }
    cr_assert(ok, "see the FAIL lines above");
}

Test(gpu_ops, embed_fwd) { gpu_sweep("gpu_ops/embed_fwd", th_sweep_embed_fwd); }

/* Heavy duplicates meet in the GPU's atomic adds: small integers make the
 * sums exact in any order, so acc and s must equal the cpu's exactly. */
Test(gpu_ops, embed_bwd_duplicates)
{
    th_bed bed = gpu_bed("gpu_ops/embed_bwd_duplicates");
    int ok = th_case_embed_bwd(&bed, 500, 7, 131, 1) & th_case_embed_bwd(&bed, 500, 7, 131, 0) &
             th_case_embed_bwd(&bed, 4096, 3, 256, 1) & th_case_embed_bwd(&bed, 1, 1, 1, 0) &
             th_case_embed_bwd(&bed, 300, 256, 65, 0);
    cr_assert(ok, "see the FAIL lines above");
}

Test(gpu_ops, gather_context)
{
    th_bed bed = gpu_bed("gpu_ops/gather_context");
    int ok = th_case_gather_context(&bed, 1, 1, 2) & th_case_gather_context(&bed, 37, 8, 1000) &
             th_case_gather_context(&bed, 1025, 33, 4099);
    cr_assert(ok, "see the FAIL lines above");
}

Test(gpu_ops, sample_positions_and_step_advance)
{
    th_bed bed = gpu_bed("gpu_ops/sample_positions_and_step_advance");
    int ok = th_case_sample_positions(&bed, 1, 0, 1) &
             th_case_sample_positions(&bed, 257, 8, 1000003) &
             th_case_sample_positions(&bed, 1025, 5, 7);
    cr_assert(ok, "see the FAIL lines above");
}

Test(gpu_ops, relu_and_add)
{
    th_bed bed = gpu_bed("gpu_ops/relu_and_add");
    int ok = 1;
    const int64_t sizes[] = {1, 1003, 65537};
    for (size_t i = 0; i < 3; i++) {
        ok &= th_case_relu_fwd(&bed, sizes[i], 0) & th_case_relu_fwd(&bed, sizes[i], 1);
        ok &= th_case_relu_bwd(&bed, sizes[i]) & th_case_add(&bed, sizes[i]);
    }
    cr_assert(ok, "see the FAIL lines above");
}

/* Logits at +-80: exp of raw logits would overflow fp32; the kernels must
 * subtract the row max and stay finite. */
Test(gpu_ops, xent)
{
    th_bed bed = gpu_bed("gpu_ops/xent");
    int ok = th_case_xent(&bed, 1, 2, 0) & th_case_xent(&bed, 37, 131, 0) &
             th_case_xent(&bed, 37, 257, 1) & th_case_xent(&bed, 3, 2053, 1) &
             th_case_xent(&bed, 129, 256, 1) & th_case_xent_guard(&bed, 9, 65);
    cr_assert(ok, "see the FAIL lines above");
}

/* ---- tensor-core precision modes ------------------------------------------------------ */

/* Each named mode (backend.h) on every shape, with its own SPEC §3 bound:
 * tf32 1e-3, bf16 1e-2, bf16x2 1e-5, bf16x3 2e-6. The fused update then
 * runs its gW tile on tensor cores (bf16x2); with small integers both bf16
 * pieces are exact, so it must still equal the fp32 two-pass path byte for
 * byte.
 *
 * The reduced-precision bounds hold for an output's norm, not for each of a
 * few cancelling sums: a 2-element gx (M=2, K=1, sums of 32 terms) came out
 * at 1.07e-3 in tf32, whose inputs alone carry up to 4.9e-4 each. So these
 * cases run on outputs of 64 elements or more. */
Test(gpu_ops, precision_modes)
{
    th_bed bed = gpu_bed("gpu_ops/precision_modes");
    int ok = 1;
    for (int p = ARB_PREC_TF32; p < ARB_PREC_COUNT; p++) {
        arb_backend *be = th_open_jit_mode(jit_be, (arb_precision)p);
        th_bed pb = {be, cpu_be, bed.rng, 0, 0};
        TH_FOR_EACH_SHAPE(s)
        {
            if (s->M * s->N >= 64)
                ok &= th_case_ternary_fwd(&pb, s->M, s->N, s->K, th_shape_gs(s));
            if (s->M * s->K >= 64)
                ok &= th_case_ternary_grad_x(&pb, s->M, s->N, s->K, th_shape_gs(s));
        }
        ok &= th_case_update_chain(&pb, 37, 53, 131, 1, 2, 1, ARB_E_SCORE_GRAD, 1);
        ok &= th_case_update_chain(&pb, 37, 53, 192, 64, 1, 2, ARB_E_SCORE_SIGN, 1);
        ok &= th_case_update_chain(&pb, 17, 65, 63, 65 * 63, 2, 2, ARB_E_SCORE_GRAD, 1);
        ok &= th_case_ternary_fwd(&pb, 1024, 512, 512, 64);
        bed.rng = pb.rng;
        arb_backend_close(be);
    }
    cr_assert(ok, "see the FAIL lines above");
}

/* ---- one larger shape: many blocks in every grid dimension -------------------------- */

Test(gpu_ops, large_shape)
{
    th_bed bed = gpu_bed("gpu_ops/large_shape");
    const int64_t M = 1024, N = 512, K = 512, gs = 64;
    int ok = th_case_ternary_fwd(&bed, M, N, K, gs) & th_case_ternary_grad_x(&bed, M, N, K, gs) &
             th_case_grad_weight(&bed, M, N, K, 0) & th_case_grad_sign(&bed, M, N, K, 1) &
             th_case_ternary_step(&bed, N, K, gs, 3) &
             th_case_update_E(&bed, N, K, gs, 2, ARB_E_SCORE_GRAD) &
             th_case_update_chain(&bed, M, N, K, gs, 3, 2, ARB_E_SCORE_GRAD, 1) &
             th_case_update_chain(&bed, M, N, K, gs, 2, 1, ARB_E_SCORE_SIGN, 1);
    cr_assert(ok, "see the FAIL lines above");
}
