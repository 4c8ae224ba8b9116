/*
 * kernels.h - the kernel registry: every template, how a specialization is
 * named, which block configurations it accepts, and which kernels each op
 * launches ("plans").
 *
 * A specialization (arb_spec) is a kernel stem plus the values the compiler
 * sees as constants: the shape (M, N, K, gs), the block configuration, the
 * precision mode and a kernel-specific variant. Every template is a
 *     template <int M, int N, int K, int GS, int BM, int BN, int BK, int TM,
 *               int TN, int WARPS, int STAGES, int PREC, int VARIANT>
 *     __global__ void <stem>_kernel(...)
 * (ARB_SPEC_PARAMS in kernel_templates/arb_common.cuh), so the NVRTC name
 * expression of any spec is `<stem>_kernel<M,N,K,...,VARIANT>`.
 *
 * Plans are the single source of truth for "which kernels does this op run":
 * the jit backend launches exactly its plan, and arb-prewarm / arb-bench
 * expand shapes.txt lines through the same functions.
 */
#ifndef ARB_KERNELS_H
#define ARB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "arb/backend.h"
#include "arb/ops.h"
#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A block configuration. Fields a kernel does not use are 0. */
typedef struct arb_blocks {
    int32_t bm, bn, bk; /* block tile (rows of the output, columns, reduction step) */
    int32_t tm, tn;     /* per-thread (SIMT) or per-warp (MMA) tile */
    int32_t warps;      /* warps per block (threads = 32 * warps) */
    int32_t stages;     /* pipeline stages of the main loop */
} arb_blocks;

#define ARB_KERNEL_NAME_MAX 32
#define ARB_NAME_EXPR_MAX 256

typedef struct arb_spec {
    char kernel[ARB_KERNEL_NAME_MAX]; /* stem, e.g. "ternary_fwd" */
    int64_t M, N, K, gs;              /* shape; meaning per kernel (see the template) */
    arb_blocks blocks;                /* block configuration */
    arb_precision prec;               /* precision mode (fp32 for non-GEMM kernels) */
    int32_t variant;                  /* kernel-specific flags (see the template) */
} arb_spec;

/* Variants of ternary_update_direct and update_E (bit flags). */
#define ARB_VARIANT_STEP 1       /* do the T step */
#define ARB_VARIANT_E_GRAD 2     /* accumulate grad scores for E */
#define ARB_VARIANT_E_SIGN 4     /* accumulate sign scores for E */
#define ARB_VARIANT_E_IN_TILE 8  /* groups lie inside a block tile: reduce their scores in
                                    shared memory and step E in the epilogue */
#define ARB_VARIANT_E_SCORES_ONLY 16 /* write every group's score to global memory and step
                                        no E (data-parallel ranks sum them first) */
/* Variant of ternary_decode and act_split: write the transpose (W^T for
 * grad_x; gy^T and x^T for tc_update, which reduces over the batch). */
#define ARB_VARIANT_TRANS 32
/* Variant of ternary_decode and tc_gemm: the weight operand holds T alone
 * and tc_gemm applies 2^E to each K-group's partial sums after the MMA (the
 * alternative to decoding T * 2^E into the operand; forward only, gs a
 * multiple of the K slab (64 bf16, 32 tf32) dividing K). Measured by
 * arb-bench; the plans use the decoded operand. */
#define ARB_VARIANT_SCALE_AFTER 64

typedef struct arb_kernel_def {
    const char *name;          /* stem */
    const char *template_file; /* file in kernel_templates/ */
    unsigned precisions;       /* bit (1 << arb_precision) per supported mode */
    const arb_blocks *candidates; /* block configurations arb-bench sweeps */
    int n_candidates;
    /* Default configuration for a spec (used when nothing is tuned). */
    arb_blocks (*default_blocks)(const arb_spec *spec);
    /* Can this kernel run this spec (shape, blocks, precision)? Says why not. */
    arb_status (*check)(const arb_spec *spec, arb_err *err);
    /* Grid, block and dynamic shared memory of a launch. */
    void (*launch_dims)(const arb_spec *spec, unsigned grid[3], unsigned block[3],
                        unsigned *smem_bytes);
    /* Bytes a launch must move at least, and flops it must do (for arb-bench). */
    void (*work)(const arb_spec *spec, double *bytes, double *flops);
    /* The only target it compiles for (NULL: any): tc_gemm's wgmma needs
     * "sm_90a". The engine refuses the kernel for any other target. */
    const char *arch;
} arb_kernel_def;

int arb_kernel_count(void);
const arb_kernel_def *arb_kernel_at(int i);
const arb_kernel_def *arb_kernel_find(const char *name);

/* Fill a spec with the default block configuration. Fails on an unknown
 * kernel or a precision the kernel lacks. */
arb_status arb_spec_init(arb_spec *spec, const char *kernel, int64_t M, int64_t N, int64_t K,
                         int64_t gs, arb_precision prec, int32_t variant, arb_err *err);

/* The kernel's check (shape, blocks, precision, arch needs). */
arb_status arb_spec_check(const arb_spec *spec, arb_err *err);

/* The NVRTC name expression, "<stem>_kernel<M,N,...>". */
void arb_spec_name_expr(const arb_spec *spec, char *buf, size_t len);

/* "ternary_fwd M=1024 N=4096 K=4096 gs=64 fp32 bm=64 bn=64 ..." for messages. */
void arb_spec_describe(const arb_spec *spec, char *buf, size_t len);

/* Whether two specs are the same specialization. */
int arb_spec_equal(const arb_spec *a, const arb_spec *b);

/* A hash of every field arb_spec_equal compares, and of `exact` (a table
 * may keep a spec with pinned blocks apart from the same spec to resolve):
 * the function table and arb_expanded_dedupe use it. Not stable across builds. */
uint64_t arb_spec_hash(const arb_spec *spec, int exact);

/* ---- Staged tensor-core GEMMs (sm_90a) ------------------------------------- *
 *
 * On a target with wgmma (sm_90a) a tensor-core ternary_fwd / ternary_grad_x
 * with at least ARB_STAGED_MIN_ROWS rows runs as three kernels:
 * ternary_decode (the weight, decoded exactly into a dense bf16/fp32 operand),
 * act_split (the activations, split into the mode's pieces) and tc_gemm
 * (wgmma on the two). Both operands are row-major, reduction contiguous, rows
 * padded to ARB_STAGE_ROWS and the reduction to ARB_STAGE_COLS (zeros), as
 * kernel_templates/staged.cuh says. Fewer rows keep the fused kernel, which
 * reads the 1.6-bit packed weight directly: at M = 16 the dense operand's
 * bytes would cost more than the whole GEMM. The fused update stages the
 * same way (act_split of gy and x, transposed, then tc_update). */
#define ARB_STAGED_MIN_ROWS 128
#define ARB_STAGE_ROWS 256
#define ARB_STAGE_COLS 64

/* Whether this op shape takes the staged path on target `arch` (NULL: none). */
int arb_staged_applies(int64_t M, arb_precision prec, const char *arch);
int64_t arb_staged_pad(int64_t n, int64_t multiple);
/* Activation pieces of a mode (tf32: one fp32 plane) and bytes per element. */
int arb_staged_pieces(arb_precision prec);
int arb_staged_elem_bytes(arb_precision prec);
/* Bytes of the decoded weight (trans: W^T) and of the activation pieces. */
size_t arb_staged_weight_bytes(int64_t N, int64_t K, arb_precision prec, int trans);
size_t arb_staged_act_bytes(int64_t M, int64_t R, arb_precision prec);
/* The transposed pieces (act_split with ARB_VARIANT_TRANS: R rows, the batch
 * M contiguous), the operands of tc_update. */
size_t arb_staged_act_bytes_trans(int64_t M, int64_t R, arb_precision prec);

/* ---- Plans: the kernels each op launches ---------------------------------- */

#define ARB_PLAN_MAX 12 /* a staged linear layer: 3 + 3 + 3 (update) + 1 (E apply) */

/* Which update a linear layer gets in training. */
typedef struct arb_linear_update {
    int step;          /* nonzero: T step (always, in training) */
    int e_enabled;     /* nonzero: E step (phi > 0 and the layer is in --e-layers) */
    arb_e_score score; /* E score mode */
} arb_linear_update;

/* A linear layer y = x W^T with W: N x K, batch M: forward, grad_x, the fused
 * direct update and (E enabled) the E apply kernel. */
int arb_plan_linear(int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                    const char *arch, const arb_linear_update *update, arb_spec *out);

/* An RMSNorm over D with a frozen 1 x D weight of group size gs, B rows. */
int arb_plan_rmsnorm(int64_t B, int64_t D, int64_t gs, arb_spec *out);

/* An embedding table V x D, M lookups per step: forward, backward (scatter
 * and sign), the two-pass T step and (E enabled) update_E + its apply. */
int arb_plan_embed(int64_t M, int64_t V, int64_t D, int64_t gs, const arb_linear_update *update,
                   arb_spec *out);

/* Individual ops (single kernels unless noted). The GEMMs take the target
 * (arb_engine_arch; NULL: none in particular): on sm_90a they are staged
 * (three kernels: ternary_decode, act_split, tc_gemm) from
 * ARB_STAGED_MIN_ROWS rows on. */
int arb_plan_ternary_fwd(int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                         const char *arch, arb_spec *out);
int arb_plan_ternary_grad_x(int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                            const char *arch, arb_spec *out);
int arb_plan_grad_weight(int64_t M, int64_t N, int64_t K, arb_spec *out);
int arb_plan_grad_sign(int64_t M, int64_t N, int64_t K, arb_spec *out);
int arb_plan_ternary_step(int64_t N, int64_t K, int64_t gs, arb_spec *out);
int arb_plan_update_E(int64_t N, int64_t K, int64_t gs, arb_e_score score, arb_spec *out);
/* The fused update's mode for a GEMM mode: fp32 stays SIMT (exact sums);
 * every tensor-core mode updates with bf16x2 tensor-core tiles (both
 * operands split in two pieces: signs robust to SPEC §3's tolerance). */
arb_precision arb_update_precision(arb_precision gemm);
int arb_plan_update_direct(int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                           const char *arch, int step, int phi, arb_e_score score,
                           arb_spec *out);
/* Scores only (no T or E step), for data-parallel ranks to sum. */
int arb_plan_update_E_scores_direct(int64_t M, int64_t N, int64_t K, int64_t gs,
                                    arb_precision prec, const char *arch, arb_e_score score,
                                    arb_spec *out);
int arb_plan_update_E_scores(int64_t N, int64_t K, int64_t gs, arb_e_score score, arb_spec *out);
int arb_plan_update_E_apply(int64_t N, int64_t K, int64_t gs, arb_spec *out);
int arb_plan_rmsnorm_fwd(int64_t B, int64_t D, int64_t gs, arb_spec *out);
int arb_plan_rmsnorm_bwd(int64_t B, int64_t D, int64_t gs, arb_spec *out);
int arb_plan_embed_fwd(int64_t M, int64_t V, int64_t D, int64_t gs, arb_spec *out);
int arb_plan_embed_bwd(int64_t M, int64_t V, int64_t D, arb_spec *out);
int arb_plan_gather_context(int64_t M, int ctx, arb_spec *out);
int arb_plan_sample_positions(int64_t M, arb_spec *out);
int arb_plan_step_advance(arb_spec *out);
int arb_plan_relu_fwd(int64_t n, int residual, arb_spec *out);
int arb_plan_relu_bwd(int64_t n, arb_spec *out);
int arb_plan_add(int64_t n, arb_spec *out);
int arb_plan_xent_fwd(int64_t M, int64_t V, arb_spec *out);
int arb_plan_xent_bwd(int64_t M, int64_t V, arb_spec *out);

#ifdef __cplusplus
}
#endif
#endif /* ARB_KERNELS_H */
