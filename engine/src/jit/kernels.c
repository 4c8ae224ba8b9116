/*
 * kernels.c - the kernel registry (one row per template) and the plans that
 * say which kernels each op launches.
 *
 * Shape conventions per kernel (the template's header says the same):
 *   GEMM-shaped   ternary_fwd, ternary_grad_x: x/gy [M, K or N], W N x K
 *                 grad_weight, grad_sign, ternary_update_direct: gy [M,N], x [M,K]
 *   per weight    ternary_step, update_E, update_E_apply: N x K, gs
 *   per row       rmsnorm_fwd/bwd: M = rows, K = D; xent_fwd/bwd: M rows, N = V
 *   elementwise   embed_fwd, embed_bwd_accum: M lookups, N = V, K = D;
 *                 embed_bwd_sign: N = V, K = D; gather_context: M, K = ctx;
 *                 relu_fwd, relu_bwd, add: M = element count
 *   staged        ternary_decode: W N x K, gs (variant TRANS: writes W^T);
 *                 act_split: M rows of K; tc_gemm: M x N output, K reduction
 */
#include "arb/kernels.h"

#include <stdio.h>
#include <string.h>

#define PREC_BIT(p) (1u << (p))
#define FP32_ONLY PREC_BIT(ARB_PREC_FP32)
#define ALL_PRECISIONS ((1u << ARB_PREC_COUNT) - 1)

/* Shared memory a block may use without opting in (static __shared__). */
#define STATIC_SMEM_LIMIT (48 * 1024)
/* Dynamic shared memory a block may use after opting in (sm_90: 227 KiB). */
#define OPTIN_SMEM_LIMIT (227 * 1024)

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- block configurations ------------------------------------------------- */

/* SIMT GEMM tiles: (BM/TM) * (BN/TN) == 32 * warps. */
#define SIMT_TILES                                                                                 \
    {32, 32, 16, 2, 2, 8, 1}, {32, 64, 16, 2, 4, 8, 1}, {64, 32, 16, 4, 2, 8, 1},                  \
        {64, 64, 16, 4, 4, 8, 1}, {64, 64, 32, 4, 4, 8, 1}, {128, 64, 16, 8, 4, 8, 1},             \
        {64, 128, 16, 4, 8, 8, 1}, {128, 128, 8, 8, 8, 8, 1}, {128, 128, 16, 8, 8, 8, 1},          \
        {64, 64, 16, 4, 8, 4, 1}

static const arb_blocks gemm_candidates[] = {SIMT_TILES};

/* ternary_fwd / ternary_grad_x: the SIMT tiles (fp32) and the tensor-core
 * tiles (tf32, bf16*: TM x TN is the warp tile, stages = 2). The check keeps
 * those that fit the spec's precision. */
static const arb_blocks fwd_candidates[] = {
    SIMT_TILES,
    {128, 128, 32, 64, 32, 8, 2},  {128, 128, 32, 32, 64, 8, 2}, {128, 64, 32, 32, 32, 8, 2},
    {64, 128, 32, 32, 32, 8, 2},   {64, 64, 32, 32, 32, 4, 2},   {128, 256, 32, 64, 64, 8, 2},
    {256, 128, 32, 64, 64, 8, 2},  {16, 64, 32, 16, 16, 4, 2},
    {16, 128, 32, 16, 32, 4, 2},   {32, 64, 32, 16, 32, 4, 2},   {128, 128, 64, 64, 32, 8, 2},
    {64, 256, 32, 32, 64, 8, 2},
};

static const arb_blocks elementwise_candidates[] = {
    {0, 0, 0, 0, 0, 2, 0}, {0, 0, 0, 0, 0, 4, 0}, {0, 0, 0, 0, 0, 8, 0}, {0, 0, 0, 0, 0, 16, 0},
};

static const arb_blocks row_candidates[] = {
    {0, 0, 0, 0, 0, 1, 0}, {0, 0, 0, 0, 0, 2, 0},  {0, 0, 0, 0, 0, 4, 0},
    {0, 0, 0, 0, 0, 8, 0}, {0, 0, 0, 0, 0, 16, 0},
};

/* update_E: TM consecutive elements per thread. */
static const arb_blocks run_candidates[] = {
    {0, 0, 0, 4, 0, 8, 0}, {0, 0, 0, 8, 0, 8, 0}, {0, 0, 0, 16, 0, 8, 0}, {0, 0, 0, 8, 0, 4, 0},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static arb_blocks gemm_default_for(int64_t rows, int64_t cols)
{
    if (rows >= 512 && cols >= 512)
        return (arb_blocks){128, 128, 8, 8, 8, 8, 1};
    if (rows >= 64 && cols >= 64)
        return (arb_blocks){64, 64, 16, 4, 4, 8, 1};
    return (arb_blocks){32, 32, 16, 2, 2, 8, 1};
}

static arb_blocks mma_default_for(int64_t rows, int64_t cols)
{
    if (rows <= 16)
        return (arb_blocks){16, 64, 32, 16, 16, 4, 2};
    if (rows >= 128 && cols >= 128)
        return (arb_blocks){128, 128, 32, 64, 32, 8, 2};
    return (arb_blocks){64, 64, 32, 32, 32, 4, 2};
}

/* Output tile rows x cols of each GEMM-shaped kernel. */
static arb_blocks default_fwd(const arb_spec *s)
{
    return s->prec == ARB_PREC_FP32 ? gemm_default_for(s->M, s->N) : mma_default_for(s->M, s->N);
}
static arb_blocks default_grad_x(const arb_spec *s)
{
    return s->prec == ARB_PREC_FP32 ? gemm_default_for(s->M, s->K) : mma_default_for(s->M, s->K);
}
static arb_blocks default_outer(const arb_spec *s) { return gemm_default_for(s->N, s->K); }

/* The update's default must also fit in-tile E groups (bn a multiple of gs). */
static arb_blocks default_update(const arb_spec *s)
{
    int simt = s->prec == ARB_PREC_FP32;
    arb_blocks b = simt ? gemm_default_for(s->N, s->K) : mma_default_for(s->N, s->K);
    if ((s->variant & ARB_VARIANT_E_IN_TILE) && b.bn % s->gs)
        b = simt ? (arb_blocks){128, 128, 8, 8, 8, 8, 1} : (arb_blocks){128, 128, 32, 64, 32, 8, 2};
    return b;
}

static arb_blocks default_elementwise(const arb_spec *s)
{
    (void)s;
    return (arb_blocks){0, 0, 0, 0, 0, 8, 0};
}

static arb_blocks default_single(const arb_spec *s)
{
    (void)s;
    return (arb_blocks){0, 0, 0, 0, 0, 1, 0};
}

static arb_blocks default_rows(const arb_spec *s)
{
    int64_t width = s->K > 1 ? s->K : s->N; /* D for rmsnorm, V for xent */
    int warps = width >= 2048 ? 8 : width >= 512 ? 4 : 2;
    return (arb_blocks){0, 0, 0, 0, 0, warps, 0};
}

static arb_blocks default_run(const arb_spec *s)
{
    (void)s;
    return (arb_blocks){0, 0, 0, 8, 0, 8, 0};
}

/* ---- checks ---------------------------------------------------------------- */

static arb_status check_warps(const arb_spec *s, arb_err *err)
{
    if (s->blocks.warps < 1 || s->blocks.warps > 32)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED, "%s: warps = %d must be in 1..32", s->kernel,
                        s->blocks.warps);
    return ARB_OK;
}

/* Bytes of the 243-entry digit table (u16) every trit-decoding kernel keeps
 * in shared memory. */
#define LUT_BYTES (2 * 243)

/* Static shared memory of the SIMT tiles (simt_gemm.cuh, outer_tile.cuh): a
 * BK x (BM+4) and a BK x (BN+4) fp32 slab, and the digit table. */
static int64_t simt_smem_bytes(const arb_blocks *b)
{
    return (int64_t)b->bk * (b->bm + 4 + b->bn + 4) * 4 + LUT_BYTES;
}

static arb_status check_gemm_blocks(const arb_spec *s, arb_err *err)
{
    const arb_blocks *b = &s->blocks;
    arb_status st = check_warps(s, err);
    if (st)
        return st;
    if (b->bm < 1 || b->bn < 1 || b->bk < 1 || b->tm < 1 || b->tn < 1 || b->bm % b->tm ||
        b->bn % b->tn)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s: block tile %dx%dx%d with thread tile %dx%d: the thread tile must "
                        "divide the block tile",
                        s->kernel, b->bm, b->bn, b->bk, b->tm, b->tn);
    if ((b->bm / b->tm) * (b->bn / b->tn) != 32 * b->warps)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s: (bm/tm)*(bn/tn) = %d threads, but %d warps give %d", s->kernel,
                        (b->bm / b->tm) * (b->bn / b->tn), b->warps, 32 * b->warps);
    int64_t smem = simt_smem_bytes(b);
    if (smem > STATIC_SMEM_LIMIT)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s: tiles need %lld bytes of shared memory, above the %d-byte limit",
                        s->kernel, (long long)smem, STATIC_SMEM_LIMIT);
    return ARB_OK;
}

static arb_status check_shape_common(const arb_spec *s, arb_err *err)
{
    if (s->M < 1 || s->N < 1 || s->K < 1 || s->gs < 1)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "%s: M=%lld N=%lld K=%lld gs=%lld must all be >= 1", s->kernel,
                        (long long)s->M, (long long)s->N, (long long)s->K, (long long)s->gs);
    const int64_t limit = 2147483647LL;
    if (s->M > limit / s->K || s->M > limit / s->N || s->N > limit / s->K)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s: M=%lld N=%lld K=%lld: each tensor must hold fewer than 2^31 elements",
                        s->kernel, (long long)s->M, (long long)s->N, (long long)s->K);
    return ARB_OK;
}

static arb_status check_gs(const arb_spec *s, int64_t N, int64_t K, arb_err *err)
{
    if (K % s->gs == 0 || (s->gs % K == 0 && (N * K) % s->gs == 0))
        return ARB_OK;
    return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                    "%s: gs=%lld must divide K=%lld or be a multiple of K dividing N*K=%lld",
                    s->kernel, (long long)s->gs, (long long)K, (long long)(N * K));
}

/* The three tensor-core kernels, for the checks and sizes they differ in:
 * ternary_fwd and ternary_grad_x share the mainloop (grad_x reads W
 * transposed: W_TRANS), ternary_update_direct has its own (mma_outer.cuh). */
typedef enum mma_role { MMA_FWD, MMA_GRAD_X, MMA_OUTER } mma_role;

/* Dynamic shared memory of the tensor-core mainloop: mirrors arb_mma_smem in
 * kernel_templates/mma_gemm.cuh (two stages of the A and W slabs and the
 * 243-entry digit table). */
static int64_t mma_smem_bytes(const arb_spec *s, mma_role role)
{
    const arb_blocks *b = &s->blocks;
    int tf32 = s->prec == ARB_PREC_TF32;
    int trans = role == MMA_GRAD_X;
    int64_t xpad = tf32 ? 4 : 8, welem = tf32 ? 4 : 2, wpad = (tf32 && !trans) ? 4 : 8;
    int64_t w_rows = trans ? b->bk : b->bn, w_cols = trans ? b->bn : b->bk;
    int64_t a_stage = (int64_t)b->bm * (b->bk + xpad) * 4;
    int64_t w_stage = w_rows * (w_cols + wpad) * welem;
    return 2 * a_stage + 2 * w_stage + 512;
}

/* Dynamic shared memory of the tensor-core update: mirrors arb_outer_smem in
 * kernel_templates/mma_outer.cuh (two stages of gy and x rows). */
static int64_t outer_smem_bytes(const arb_spec *s)
{
    const arb_blocks *b = &s->blocks;
    return 2 * (int64_t)b->bk * (b->bm + 4) * 4 + 2 * (int64_t)b->bk * (b->bn + 4) * 4;
}

static arb_status check_mma_blocks(const arb_spec *s, mma_role role, arb_err *err)
{
    const arb_blocks *b = &s->blocks;
    arb_status st = check_warps(s, err);
    if (st)
        return st;
    if (b->stages != 2)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED, "%s (%s): stages = %d, the mainloop has 2",
                        s->kernel, arb_precision_name(s->prec), b->stages);
    if (b->bm < 16 || b->bn < 16 || b->bk < 16 || b->tm < 16 || b->tn < 16 || b->bk % 16 ||
        b->tm % 16 || b->tn % 16 || b->bm % b->tm || b->bn % b->tn)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s (%s): block %dx%dx%d with warp tile %dx%d: the warp tile must be a "
                        "multiple of 16 dividing the block tile, bk a multiple of 16",
                        s->kernel, arb_precision_name(s->prec), b->bm, b->bn, b->bk, b->tm,
                        b->tn);
    if ((b->bm / b->tm) * (b->bn / b->tn) != b->warps)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s (%s): %d warp tiles but %d warps", s->kernel,
                        arb_precision_name(s->prec), (b->bm / b->tm) * (b->bn / b->tn), b->warps);
    int outer = role == MMA_OUTER;
    int trans = role == MMA_GRAD_X;
    int w_rows = trans ? b->bk : b->bn, w_cols = trans ? b->bn : b->bk;
    int threads = 32 * b->warps;
    int run = (w_rows * w_cols) / threads;
    if (!outer && ((w_rows * w_cols) % threads || run % 8 || w_cols % run))
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s (%s): the %dx%d weight slab does not split into runs of 8k trits "
                        "per thread",
                        s->kernel, arb_precision_name(s->prec), w_rows, w_cols);
    int promoted = !outer && (s->prec == ARB_PREC_BF16X2 || s->prec == ARB_PREC_BF16X3);
    int accumulators = (b->tm / 16) * (b->tn / 8) * 4 * (promoted ? 2 : 1);
    if (accumulators > 128)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s (%s): a %dx%d warp tile needs %d accumulator registers per thread "
                        "(limit 128, to stay clear of spills)",
                        s->kernel, arb_precision_name(s->prec), b->tm, b->tn, accumulators);
    int64_t smem = outer ? outer_smem_bytes(s) : mma_smem_bytes(s, role);
    if (smem > OPTIN_SMEM_LIMIT)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s (%s): needs %lld bytes of shared memory, above %d", s->kernel,
                        arb_precision_name(s->prec), (long long)smem, OPTIN_SMEM_LIMIT);
    return ARB_OK;
}

static arb_status check_gemm(const arb_spec *s, mma_role role, arb_err *err)
{
    arb_status st = check_shape_common(s, err);
    if (!st)
        st = check_gs(s, s->N, s->K, err);
    if (!st)
        st = s->prec == ARB_PREC_FP32 ? check_gemm_blocks(s, err) : check_mma_blocks(s, role, err);
    return st;
}

static arb_status check_fwd(const arb_spec *s, arb_err *err) { return check_gemm(s, MMA_FWD, err); }

static arb_status check_grad_x(const arb_spec *s, arb_err *err)
{
    return check_gemm(s, MMA_GRAD_X, err);
}

static arb_status check_outer(const arb_spec *s, arb_err *err)
{
    arb_status st = check_shape_common(s, err);
    if (!st)
        st = check_gemm_blocks(s, err);
    return st;
}

/* Whether a weight's E groups can meet inside the update kernel's tiles:
 * gs divides K and a power-of-two tile width (every candidate's bn is one,
 * and the default falls back to bn = 128), so groups never straddle tiles. */
static int e_in_tile(int64_t K, int64_t gs)
{
    return gs >= 2 && gs <= 128 && K % gs == 0 && 128 % gs == 0;
}

/* The update's variant bits and in-tile E groups (ternary_update_direct and
 * tc_update); `static_smem`: the kernel's static shared bytes besides the
 * in-tile scores. */
static arb_status check_update_variant(const arb_spec *s, int64_t static_smem, arb_err *err)
{
    arb_status st = ARB_OK;
    if (s->variant & ARB_VARIANT_E_IN_TILE) {
        const arb_blocks *b = &s->blocks;
        int64_t smem = static_smem + (int64_t)b->bm * (b->bn / s->gs) * 4;
        if (!e_in_tile(s->K, s->gs) || b->bn % s->gs)
            st = ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                          "%s: in-tile E scores need gs (%lld) to divide K (%lld) and bn (%d)",
                          s->kernel, (long long)s->gs, (long long)s->K, b->bn);
        else if (smem > STATIC_SMEM_LIMIT)
            st = ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                          "%s: tiles and in-tile scores need %lld bytes of shared memory", s->kernel,
                          (long long)smem);
    }
    if (!st && (s->variant & ~(ARB_VARIANT_STEP | ARB_VARIANT_E_GRAD | ARB_VARIANT_E_SIGN |
                               ARB_VARIANT_E_IN_TILE | ARB_VARIANT_E_SCORES_ONLY)))
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: unknown variant bits 0x%x", s->kernel,
                      (unsigned)s->variant);
    if (!st && (s->variant & ARB_VARIANT_E_GRAD) && (s->variant & ARB_VARIANT_E_SIGN))
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: choose one E score (grad or sign)",
                      s->kernel);
    return st;
}

static arb_status check_update(const arb_spec *s, arb_err *err)
{
    arb_status st = check_shape_common(s, err);
    if (!st)
        st = s->prec == ARB_PREC_FP32 ? check_gemm_blocks(s, err)
                                      : check_mma_blocks(s, MMA_OUTER, err);
    if (!st)
        st = check_gs(s, s->N, s->K, err);
    /* Static: the SIMT tiles or (tensor cores: dynamic slabs) the digit table alone. */
    if (!st)
        st = check_update_variant(s, s->prec == ARB_PREC_FP32 ? simt_smem_bytes(&s->blocks)
                                                               : LUT_BYTES,
                                  err);
    return st;
}

static arb_status check_weight_elementwise(const arb_spec *s, arb_err *err)
{
    arb_status st = check_shape_common(s, err);
    if (!st)
        st = check_gs(s, s->N, s->K, err);
    if (!st)
        st = check_warps(s, err);
    return st;
}

static arb_status check_run(const arb_spec *s, arb_err *err)
{
    arb_status st = check_weight_elementwise(s, err);
    if (!st && (s->blocks.tm < 1 || s->blocks.tm > 64))
        st = ARB_FAIL(err, ARB_ERR_UNSUPPORTED, "%s: tm = %d elements per thread must be 1..64",
                      s->kernel, s->blocks.tm);
    if (!st && !(s->variant & (ARB_VARIANT_E_GRAD | ARB_VARIANT_E_SIGN)))
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: the variant must name a score mode",
                      s->kernel);
    return st;
}

static arb_status check_rows_norm(const arb_spec *s, arb_err *err)
{
    arb_status st = check_shape_common(s, err);
    if (!st)
        st = check_gs(s, 1, s->K, err);
    if (!st)
        st = check_warps(s, err);
    return st;
}

static arb_status check_plain(const arb_spec *s, arb_err *err)
{
    arb_status st = check_shape_common(s, err);
    if (!st)
        st = check_warps(s, err);
    return st;
}

static arb_status check_embed(const arb_spec *s, arb_err *err)
{
    arb_status st = check_plain(s, err);
    if (!st)
        st = check_gs(s, s->N, s->K, err);
    return st;
}

/* ---- launch dimensions ------------------------------------------------------ */

static void dims(unsigned grid[3], unsigned block[3], int64_t gx, int64_t gy, int warps)
{
    grid[0] = (unsigned)gx;
    grid[1] = (unsigned)gy;
    grid[2] = 1;
    block[0] = (unsigned)(32 * warps);
    block[1] = 1;
    block[2] = 1;
}

static void dims_fwd(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims(g, b, ceil_div(s->N, s->blocks.bn), ceil_div(s->M, s->blocks.bm), s->blocks.warps);
    *smem = s->prec == ARB_PREC_FP32 ? 0 : (unsigned)mma_smem_bytes(s, MMA_FWD);
}

static void dims_grad_x(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims(g, b, ceil_div(s->K, s->blocks.bn), ceil_div(s->M, s->blocks.bm), s->blocks.warps);
    *smem = s->prec == ARB_PREC_FP32 ? 0 : (unsigned)mma_smem_bytes(s, MMA_GRAD_X);
}

static void dims_outer(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims(g, b, ceil_div(s->K, s->blocks.bn), ceil_div(s->N, s->blocks.bm), s->blocks.warps);
    *smem = s->prec == ARB_PREC_FP32 ? 0 : (unsigned)outer_smem_bytes(s);
}

static void dims_rows(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims(g, b, s->M, 1, s->blocks.warps);
    *smem = 0;
}

static void dims_count(int64_t count, const arb_spec *s, unsigned g[3], unsigned b[3],
                       unsigned *smem)
{
    dims(g, b, ceil_div(count, 32 * s->blocks.warps), 1, s->blocks.warps);
    *smem = 0;
}

static void dims_m(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims_count(s->M, s, g, b, smem);
}

/* The glue kernels take 4 elements a thread (kernel_templates/elementwise.cuh). */
static void dims_m4(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims_count(ceil_div(s->M, 4), s, g, b, smem);
}

static void dims_mk(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims_count(s->M * s->K, s, g, b, smem);
}

static void dims_nk(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims_count(s->N * s->K, s, g, b, smem);
}

static void dims_groups(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims_count(s->N * s->K / s->gs, s, g, b, smem);
}

static void dims_bytes(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims_count(ceil_div(s->N * s->K, 5), s, g, b, smem);
}

static void dims_run(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims_count(ceil_div(s->N * s->K, s->blocks.tm), s, g, b, smem);
}

/* ---- the staged tensor-core path (sm_90a): ternary_decode, act_split, tc_gemm --- */

#define TC_PRECISIONS (ALL_PRECISIONS & ~FP32_ONLY)

int64_t arb_staged_pad(int64_t n, int64_t multiple) { return ceil_div(n, multiple) * multiple; }

int arb_staged_pieces(arb_precision prec)
{
    return prec == ARB_PREC_BF16X3 ? 3 : prec == ARB_PREC_BF16X2 ? 2 : 1;
}

int arb_staged_elem_bytes(arb_precision prec) { return prec == ARB_PREC_TF32 ? 4 : 2; }

size_t arb_staged_weight_bytes(int64_t N, int64_t K, arb_precision prec, int trans)
{
    int64_t rows = arb_staged_pad(trans ? K : N, ARB_STAGE_ROWS);
    int64_t cols = arb_staged_pad(trans ? N : K, ARB_STAGE_COLS);
    return (size_t)rows * (size_t)cols * (size_t)arb_staged_elem_bytes(prec);
}

size_t arb_staged_act_bytes(int64_t M, int64_t R, arb_precision prec)
{
    return (size_t)arb_staged_pieces(prec) * (size_t)arb_staged_pad(M, ARB_STAGE_ROWS) *
           (size_t)arb_staged_pad(R, ARB_STAGE_COLS) * (size_t)arb_staged_elem_bytes(prec);
}

size_t arb_staged_act_bytes_trans(int64_t M, int64_t R, arb_precision prec)
{
    return (size_t)arb_staged_pieces(prec) * (size_t)arb_staged_pad(R, ARB_STAGE_ROWS) *
           (size_t)arb_staged_pad(M, ARB_STAGE_COLS) * (size_t)arb_staged_elem_bytes(prec);
}

int arb_staged_applies(int64_t M, arb_precision prec, const char *arch)
{
    return prec != ARB_PREC_FP32 && M >= ARB_STAGED_MIN_ROWS && arch && strcmp(arch, "sm_90a") == 0;
}

/* tc_gemm: BM x BN block tile (BM / 64 warpgroups, WARPS = BM / 16) and the
 * stages of its cp.async ring; bk, tm, tn are implied (a 128-byte K slab, a
 * 64 x BN warpgroup tile) and stay 0. */
static const arb_blocks tc_candidates[] = {
    {128, 128, 0, 0, 0, 8, 3}, {128, 128, 0, 0, 0, 8, 4}, {128, 128, 0, 0, 0, 8, 5},
    {128, 128, 0, 0, 0, 8, 6}, {128, 64, 0, 0, 0, 8, 4},  {128, 64, 0, 0, 0, 8, 6},
    {64, 128, 0, 0, 0, 4, 4},  {64, 128, 0, 0, 0, 4, 6},  {64, 64, 0, 0, 0, 4, 6},
    {128, 256, 0, 0, 0, 8, 3}, {128, 256, 0, 0, 0, 8, 4}, {64, 256, 0, 0, 0, 4, 4},
};

/* tc_update: 3 stages of 128 x 128 fill the SM (192 KiB); the smaller tiles
 * leave room for a second block, whose main loop overlaps this one's
 * epilogue (the trit and E steps). */
static const arb_blocks tc_update_candidates[] = {
    {128, 128, 0, 0, 0, 8, 3}, {128, 64, 0, 0, 0, 8, 3}, {128, 64, 0, 0, 0, 8, 4},
    {64, 128, 0, 0, 0, 4, 3},  {64, 128, 0, 0, 0, 4, 4}, {64, 64, 0, 0, 0, 4, 3},
    {64, 64, 0, 0, 0, 4, 4},   {64, 64, 0, 0, 0, 4, 6},
};

/* Dynamic shared memory of tc_gemm: mirrors tc_gemm.cu (STAGES slabs of
 * every A piece and of B, 128 bytes a row, plus 1024 to align the base). */
static int64_t tc_smem_bytes(const arb_spec *s)
{
    const arb_blocks *b = &s->blocks;
    int64_t stage = ((int64_t)arb_staged_pieces(s->prec) * b->bm + b->bn) * 128;
    return b->stages * stage + 1024;
}

/* Dynamic shared memory of tc_update: STAGES slabs of the two pieces of
 * gy^T (bm rows) and of x^T (bn rows), plus 1024 to align the base. */
static int64_t tc_update_smem_bytes(const arb_spec *s)
{
    const arb_blocks *b = &s->blocks;
    return b->stages * (2 * (int64_t)b->bm + 2 * (int64_t)b->bn) * 128 + 1024;
}

/* Measured with arb-bench --sweep-blocks at M=8192 N=K=4096 (H200): one
 * piece (bf16, tf32) fastest at 128x256 with 4 stages (16% over 128x128);
 * bf16x2 at 128x128 with 4 stages, bf16x3 with 3 (the most that fit). A
 * grid of fewer blocks than the GPU's SMs (132 on H100/H200) leaves SMs
 * idle, so smaller outputs take the largest tile that still gives 128
 * blocks, down to 64x64. */
static arb_blocks default_tc(const arb_spec *s)
{
    int pieces = arb_staged_pieces(s->prec);
    int32_t stages = pieces == 3 ? 3 : 4;
    static const int32_t tiles[][2] = {{128, 256}, {128, 128}, {64, 128}, {64, 64}};
    int widest = pieces == 1 && !(s->variant & ARB_VARIANT_SCALE_AFTER) ? 0 : 1;
    for (int i = widest; i < 4; i++) {
        int32_t bm = tiles[i][0], bn = tiles[i][1];
        if (ceil_div(s->M, bm) * ceil_div(s->N, bn) >= 128 || i == 3)
            return (arb_blocks){bm, bn, 0, 0, 0, bm / 16, bm == 64 && pieces < 3 ? 6 : stages};
    }
    return (arb_blocks){64, 64, 0, 0, 0, 4, 6};
}

static arb_status check_tc(const arb_spec *s, arb_err *err)
{
    const arb_blocks *b = &s->blocks;
    arb_status st = check_shape_common(s, err);
    if (st)
        return st;
    if ((b->bm != 64 && b->bm != 128) || (b->bn != 64 && b->bn != 128 && b->bn != 256) ||
        b->bk || b->tm || b->tn || b->warps != b->bm / 16)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s (%s): block %dx%d with %d warps (bk %d, tm %d, tn %d): bm must be 64 "
                        "or 128, bn 64, 128 or 256, warps = bm/16 (a warpgroup per 64 rows), "
                        "bk = tm = tn = 0",
                        s->kernel, arb_precision_name(s->prec), b->bm, b->bn, b->warps, b->bk,
                        b->tm, b->tn);
    if (s->variant & ~ARB_VARIANT_SCALE_AFTER)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: unknown variant bits 0x%x", s->kernel,
                        (unsigned)s->variant);
    if (s->variant & ARB_VARIANT_SCALE_AFTER) {
        int64_t slab = 128 / arb_staged_elem_bytes(s->prec);
        if (s->gs % slab || s->K % s->gs || b->bn > 128)
            return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                            "%s (%s): scaling after the MMA needs gs (%lld) a multiple of %lld "
                            "dividing K (%lld), and bn <= 128 (bn %d)",
                            s->kernel, arb_precision_name(s->prec), (long long)s->gs,
                            (long long)slab, (long long)s->K, b->bn);
    }
    if (b->bn == 256 && arb_staged_pieces(s->prec) > 1)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s (%s): bn = 256 is for one-piece modes (promoted partial sums would "
                        "need 256 accumulator registers per thread)",
                        s->kernel, arb_precision_name(s->prec));
    if (b->stages < 3 || b->stages > 8)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED, "%s (%s): stages = %d must be 3..8", s->kernel,
                        arb_precision_name(s->prec), b->stages);
    int64_t smem = tc_smem_bytes(s);
    if (smem > OPTIN_SMEM_LIMIT)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s (%s): %d stages of a %dx%d tile need %lld bytes of shared memory, "
                        "above %d",
                        s->kernel, arb_precision_name(s->prec), b->stages, b->bm, b->bn,
                        (long long)smem, OPTIN_SMEM_LIMIT);
    return ARB_OK;
}

/* tc_update: the tc_gemm tile rules on two-piece operands (4 planes a
 * stage) and the update's variant rules. */
static arb_status check_tc_update(const arb_spec *s, arb_err *err)
{
    const arb_blocks *b = &s->blocks;
    arb_status st = check_shape_common(s, err);
    if (!st)
        st = check_gs(s, s->N, s->K, err);
    if (!st && ((b->bm != 64 && b->bm != 128) || (b->bn != 64 && b->bn != 128) || b->bk ||
                b->tm || b->tn || b->warps != b->bm / 16 || b->stages < 3 || b->stages > 8))
        st = ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                      "%s: block %dx%d, %d warps, %d stages (bk %d, tm %d, tn %d): bm and bn must "
                      "be 64 or 128, warps = bm/16, stages 3..8, bk = tm = tn = 0",
                      s->kernel, b->bm, b->bn, b->warps, b->stages, b->bk, b->tm, b->tn);
    if (!st && tc_update_smem_bytes(s) > OPTIN_SMEM_LIMIT - 4096)
        st = ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                      "%s: %d stages of a %dx%d tile need %lld bytes of shared memory", s->kernel,
                      b->stages, b->bm, b->bn, (long long)tc_update_smem_bytes(s));
    if (!st)
        st = check_update_variant(s, LUT_BYTES, err);
    return st;
}

/* Measured (arb-bench --sweep-blocks, base shapes, H200): 128x128 with 3
 * stages at N=K=4096 (354 us; 128x64: 460); at N=256, K=4096 (64 such tiles)
 * 128x64 with 4 stages (27 us against 41). So: the larger tile while it
 * still gives 128 blocks. */
static arb_blocks default_tc_update(const arb_spec *s)
{
    int narrow_ok = !(s->variant & ARB_VARIANT_E_IN_TILE) || (s->gs >= 1 && 64 % s->gs == 0);
    if (ceil_div(s->N, 128) * ceil_div(s->K, 128) >= 128 || !narrow_ok)
        return (arb_blocks){128, 128, 0, 0, 0, 8, 3}; /* (in-tile E groups must fit bn) */
    return (arb_blocks){128, 64, 0, 0, 0, 8, 4};
}

static void dims_tc_update(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims(g, b, ceil_div(s->K, s->blocks.bn), ceil_div(s->N, s->blocks.bm), s->blocks.warps);
    *smem = (unsigned)tc_update_smem_bytes(s);
}

static void work_tc_update(const arb_spec *s, double *bytes, double *flops)
{
    double M = (double)s->M, N = (double)s->N, K = (double)s->K;
    *flops = 2.0 * M * N * K;
    *bytes = 4.0 * M * (N + K) /* two bf16 pieces of each */ + 2.0 * N * K +
             2.0 * N * K / 5.0 + 4.0 * N * K / (double)s->gs;
}

static arb_status check_split(const arb_spec *s, arb_err *err)
{
    arb_status st = check_plain(s, err);
    if (!st && (s->variant & ~ARB_VARIANT_TRANS))
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: unknown variant bits 0x%x", s->kernel,
                      (unsigned)s->variant);
    if (!st && (s->variant & ARB_VARIANT_TRANS) && s->blocks.warps != 8)
        st = ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                      "%s: the transposed split has 8 warps (64 x 64 tiles), not %d", s->kernel,
                      s->blocks.warps);
    return st;
}

static arb_status check_decode(const arb_spec *s, arb_err *err)
{
    arb_status st = check_shape_common(s, err);
    if (!st)
        st = check_gs(s, s->N, s->K, err);
    if (!st && s->blocks.warps != 8)
        st = ARB_FAIL(err, ARB_ERR_UNSUPPORTED, "%s: warps = %d, the kernel has 8 (64 x 64 tiles)",
                      s->kernel, s->blocks.warps);
    if (!st && (s->variant & ~(ARB_VARIANT_TRANS | ARB_VARIANT_SCALE_AFTER)))
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: unknown variant bits 0x%x", s->kernel,
                      (unsigned)s->variant);
    return st;
}

static arb_blocks default_decode(const arb_spec *s)
{
    (void)s;
    return (arb_blocks){0, 0, 0, 0, 0, 8, 0};
}

static void dims_tc(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    dims(g, b, ceil_div(s->N, s->blocks.bn), ceil_div(s->M, s->blocks.bm), s->blocks.warps);
    *smem = (unsigned)tc_smem_bytes(s);
}

/* ternary_decode: one block per 64 x 64 tile of W over its padded extents. */
static void dims_decode(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    int trans = (s->variant & ARB_VARIANT_TRANS) != 0;
    int64_t n_extent = arb_staged_pad(s->N, trans ? ARB_STAGE_COLS : ARB_STAGE_ROWS);
    int64_t k_extent = arb_staged_pad(s->K, trans ? ARB_STAGE_ROWS : ARB_STAGE_COLS);
    dims(g, b, k_extent / 64, n_extent / 64, 8);
    *smem = 0;
}

/* act_split: a thread per 8 elements of the padded planes. */
static void dims_split(const arb_spec *s, unsigned g[3], unsigned b[3], unsigned *smem)
{
    if (s->variant & ARB_VARIANT_TRANS) { /* 64 x 64 tiles over padded M x K */
        dims(g, b, arb_staged_pad(s->M, ARB_STAGE_COLS) / 64,
             arb_staged_pad(s->K, ARB_STAGE_ROWS) / 64, 8);
        *smem = 0;
        return;
    }
    int64_t count = arb_staged_pad(s->M, ARB_STAGE_ROWS) * arb_staged_pad(s->K, ARB_STAGE_COLS);
    dims_count(count / 8, s, g, b, smem);
}

/* ---- work (minimum bytes moved, flops) for arb-bench ------------------------ */

static double packed_bytes(const arb_spec *s) { return (double)s->N * (double)s->K / 5.0; }
static double scale_bytes(const arb_spec *s) { return (double)s->N * (double)s->K / (double)s->gs; }

static void work_fwd(const arb_spec *s, double *bytes, double *flops)
{
    double M = (double)s->M, N = (double)s->N, K = (double)s->K;
    *flops = 2.0 * M * N * K;
    *bytes = 4.0 * M * K + 4.0 * M * N + packed_bytes(s) + scale_bytes(s);
}

static void work_outer(const arb_spec *s, double *bytes, double *flops)
{
    double M = (double)s->M, N = (double)s->N, K = (double)s->K;
    *flops = 2.0 * M * N * K;
    *bytes = 4.0 * M * N + 4.0 * M * K;
    if (strcmp(s->kernel, "grad_weight") == 0)
        *bytes += 4.0 * N * K;
    else if (strcmp(s->kernel, "grad_sign") == 0)
        *bytes += N * K;
    else /* update: T_accum read+write, packed read+write, E and E_accum */
        *bytes += 2.0 * N * K + 2.0 * packed_bytes(s) + 4.0 * scale_bytes(s);
}

static void work_step(const arb_spec *s, double *bytes, double *flops)
{
    double NK = (double)s->N * (double)s->K;
    *flops = 0;
    *bytes = NK + 2.0 * NK + 2.0 * packed_bytes(s); /* s, T_accum rw, packed rw */
}

static void work_update_E(const arb_spec *s, double *bytes, double *flops)
{
    double NK = (double)s->N * (double)s->K;
    *flops = 2.0 * NK;
    *bytes = ((s->variant & ARB_VARIANT_E_GRAD) ? 4.0 : 1.0) * NK + packed_bytes(s) +
             4.0 * scale_bytes(s);
}

static void work_apply(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 0;
    *bytes = scale_bytes(s) * (4.0 + 4.0); /* score read, E and E_accum read+write */
}

static void work_rmsnorm_fwd(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 4.0 * (double)s->M * (double)s->K;
    *bytes = 8.0 * (double)s->M * (double)s->K;
}

static void work_rmsnorm_bwd(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 8.0 * (double)s->M * (double)s->K;
    *bytes = 12.0 * (double)s->M * (double)s->K;
}

static void work_embed_fwd(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 0;
    *bytes = 4.0 * (double)s->M * (double)s->K + 4.0 * (double)s->M;
}

static void work_embed_accum(const arb_spec *s, double *bytes, double *flops)
{
    *flops = (double)s->M * (double)s->K;
    *bytes = 4.0 * (double)s->M * (double)s->K + 4.0 * (double)s->M +
             8.0 * (double)s->N * (double)s->K;
}

static void work_embed_sign(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 0;
    *bytes = 5.0 * (double)s->N * (double)s->K;
}

static void work_gather(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 0;
    *bytes = 5.0 * (double)s->M * (double)s->K + 12.0 * (double)s->M;
}

static void work_sample(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 10.0 * (double)s->M;
    *bytes = 8.0 * (double)s->M;
}

static void work_none(const arb_spec *s, double *bytes, double *flops)
{
    (void)s;
    *flops = 0;
    *bytes = 16;
}

static void work_relu_fwd(const arb_spec *s, double *bytes, double *flops)
{
    *flops = (double)s->M;
    *bytes = (s->variant ? 12.0 : 8.0) * (double)s->M;
}

static void work_three(const arb_spec *s, double *bytes, double *flops)
{
    *flops = (double)s->M;
    *bytes = 12.0 * (double)s->M;
}

static void work_xent(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 4.0 * (double)s->M * (double)s->N;
    *bytes = (strcmp(s->kernel, "xent_bwd") == 0 ? 8.0 : 4.0) * (double)s->M * (double)s->N;
}

static void work_tc(const arb_spec *s, double *bytes, double *flops)
{
    double M = (double)s->M, N = (double)s->N, K = (double)s->K;
    double elem = arb_staged_elem_bytes(s->prec);
    *flops = 2.0 * M * N * K; /* the useful GEMM, whatever the number of pieces */
    *bytes = arb_staged_pieces(s->prec) * M * K * elem + N * K * elem + 4.0 * M * N;
}

static void work_decode(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 0;
    *bytes = packed_bytes(s) + scale_bytes(s) +
             (double)arb_staged_weight_bytes(s->N, s->K, s->prec,
                                             (s->variant & ARB_VARIANT_TRANS) != 0);
}

static void work_split(const arb_spec *s, double *bytes, double *flops)
{
    *flops = 0;
    *bytes = 4.0 * (double)s->M * (double)s->K +
             (double)((s->variant & ARB_VARIANT_TRANS)
                          ? arb_staged_act_bytes_trans(s->M, s->K, s->prec)
                          : arb_staged_act_bytes(s->M, s->K, s->prec));
}

/* ---- the registry ------------------------------------------------------------ */

#define GEMM_CANDS gemm_candidates, COUNT(gemm_candidates)
#define FWD_CANDS fwd_candidates, COUNT(fwd_candidates)
#define ELEM_CANDS elementwise_candidates, COUNT(elementwise_candidates)
#define ROW_CANDS row_candidates, COUNT(row_candidates)
#define RUN_CANDS run_candidates, COUNT(run_candidates)

static const arb_kernel_def registry[] = {
    {"ternary_fwd", "ternary_fwd.cu", ALL_PRECISIONS, FWD_CANDS, default_fwd, check_fwd,
     dims_fwd, work_fwd, NULL},
    {"ternary_grad_x", "ternary_grad_x.cu", ALL_PRECISIONS, FWD_CANDS, default_grad_x,
     check_grad_x, dims_grad_x, work_fwd, NULL},
    {"grad_weight", "grad_weight.cu", FP32_ONLY, GEMM_CANDS, default_outer, check_outer,
     dims_outer, work_outer, NULL},
    {"grad_sign", "grad_sign.cu", FP32_ONLY, GEMM_CANDS, default_outer, check_outer, dims_outer,
     work_outer, NULL},
    {"ternary_update_direct", "ternary_update_direct.cu",
     PREC_BIT(ARB_PREC_FP32) | PREC_BIT(ARB_PREC_BF16X2), FWD_CANDS, default_update, check_update,
     dims_outer, work_outer, NULL},
    {"ternary_step", "ternary_step.cu", FP32_ONLY, ELEM_CANDS, default_elementwise,
     check_weight_elementwise, dims_bytes, work_step, NULL},
    {"update_E", "update_E.cu", FP32_ONLY, RUN_CANDS, default_run, check_run, dims_run,
     work_update_E, NULL},
    {"update_E_apply", "update_E_apply.cu", FP32_ONLY, ELEM_CANDS, default_elementwise,
     check_weight_elementwise, dims_groups, work_apply, NULL},
    {"rmsnorm_fwd", "rmsnorm_fwd.cu", FP32_ONLY, ROW_CANDS, default_rows, check_rows_norm,
     dims_rows, work_rmsnorm_fwd, NULL},
    {"rmsnorm_bwd", "rmsnorm_bwd.cu", FP32_ONLY, ROW_CANDS, default_rows, check_rows_norm,
     dims_rows, work_rmsnorm_bwd, NULL},
    {"embed_fwd", "embed_fwd.cu", FP32_ONLY, ELEM_CANDS, default_elementwise, check_embed,
     dims_mk, work_embed_fwd, NULL},
    {"embed_bwd_accum", "embed_bwd_accum.cu", FP32_ONLY, ELEM_CANDS, default_elementwise,
     check_plain, dims_mk, work_embed_accum, NULL},
    {"embed_bwd_sign", "embed_bwd_sign.cu", FP32_ONLY, ELEM_CANDS, default_elementwise,
     check_plain, dims_nk, work_embed_sign, NULL},
    {"gather_context", "gather_context.cu", FP32_ONLY, ELEM_CANDS, default_elementwise,
     check_plain, dims_mk, work_gather, NULL},
    {"sample_positions", "sample_positions.cu", FP32_ONLY, ELEM_CANDS, default_elementwise,
     check_plain, dims_m, work_sample, NULL},
    {"step_advance", "step_advance.cu", FP32_ONLY, NULL, 0, default_single, check_plain, dims_m,
     work_none, NULL},
    {"relu_fwd", "relu_fwd.cu", FP32_ONLY, ELEM_CANDS, default_elementwise, check_plain, dims_m4,
     work_relu_fwd, NULL},
    {"relu_bwd", "relu_bwd.cu", FP32_ONLY, ELEM_CANDS, default_elementwise, check_plain, dims_m4,
     work_three, NULL},
    {"add", "add.cu", FP32_ONLY, ELEM_CANDS, default_elementwise, check_plain, dims_m4,
     work_three, NULL},
    {"xent_fwd", "xent_fwd.cu", FP32_ONLY, ROW_CANDS, default_rows, check_plain, dims_rows,
     work_xent, NULL},
    {"xent_bwd", "xent_bwd.cu", FP32_ONLY, ROW_CANDS, default_rows, check_plain, dims_rows,
     work_xent, NULL},
    {"ternary_decode", "ternary_decode.cu", TC_PRECISIONS, NULL, 0, default_decode, check_decode,
     dims_decode, work_decode, NULL},
    {"act_split", "act_split.cu", TC_PRECISIONS, ELEM_CANDS, default_elementwise, check_split,
     dims_split, work_split, NULL},
    {"tc_gemm", "tc_gemm.cu", TC_PRECISIONS, tc_candidates, COUNT(tc_candidates), default_tc,
     check_tc, dims_tc, work_tc, "sm_90a"},
    {"tc_update", "tc_update.cu", PREC_BIT(ARB_PREC_BF16X2), tc_update_candidates,
     COUNT(tc_update_candidates), default_tc_update, check_tc_update, dims_tc_update,
     work_tc_update, "sm_90a"},
};

int arb_kernel_count(void) { return COUNT(registry); }

const arb_kernel_def *arb_kernel_at(int i)
{
    return i >= 0 && i < COUNT(registry) ? &registry[i] : NULL;
}

const arb_kernel_def *arb_kernel_find(const char *name)
{
    for (int i = 0; i < COUNT(registry); i++)
        if (strcmp(registry[i].name, name) == 0)
            return &registry[i];
    return NULL;
}

arb_status arb_spec_init(arb_spec *spec, const char *kernel, int64_t M, int64_t N, int64_t K,
                         int64_t gs, arb_precision prec, int32_t variant, arb_err *err)
{
    memset(spec, 0, sizeof(*spec));
    const arb_kernel_def *def = arb_kernel_find(kernel);
    if (!def)
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND, "unknown kernel '%s'", kernel);
    snprintf(spec->kernel, sizeof(spec->kernel), "%s", kernel);
    spec->M = M;
    spec->N = N;
    spec->K = K;
    spec->gs = gs;
    spec->prec = prec;
    spec->variant = variant;
    if (!(def->precisions & PREC_BIT(prec)))
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED, "%s has no %s mode", kernel,
                        arb_precision_name(prec));
    spec->blocks = def->default_blocks(spec);
    return ARB_OK;
}

arb_status arb_spec_check(const arb_spec *spec, arb_err *err)
{
    const arb_kernel_def *def = arb_kernel_find(spec->kernel);
    if (!def)
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND, "unknown kernel '%s'", spec->kernel);
    if ((int)spec->prec < 0 || spec->prec >= ARB_PREC_COUNT || !(def->precisions & PREC_BIT(spec->prec)))
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED, "%s has no %s mode", spec->kernel,
                        arb_precision_name(spec->prec));
    return def->check(spec, err);
}

void arb_spec_name_expr(const arb_spec *s, char *buf, size_t len)
{
    const arb_blocks *b = &s->blocks;
    snprintf(buf, len, "%s_kernel<%lld,%lld,%lld,%lld,%d,%d,%d,%d,%d,%d,%d,%d,%d>", s->kernel,
             (long long)s->M, (long long)s->N, (long long)s->K, (long long)s->gs, b->bm, b->bn,
             b->bk, b->tm, b->tn, b->warps, b->stages, (int)s->prec, s->variant);
}

void arb_spec_describe(const arb_spec *s, char *buf, size_t len)
{
    const arb_blocks *b = &s->blocks;
    snprintf(buf, len,
             "%s M=%lld N=%lld K=%lld gs=%lld %s variant=%d bm=%d bn=%d bk=%d tm=%d tn=%d "
             "warps=%d stages=%d",
             s->kernel, (long long)s->M, (long long)s->N, (long long)s->K, (long long)s->gs,
             arb_precision_name(s->prec), s->variant, b->bm, b->bn, b->bk, b->tm, b->tn, b->warps,
             b->stages);
}

int arb_spec_equal(const arb_spec *a, const arb_spec *b)
{
    return strcmp(a->kernel, b->kernel) == 0 && a->M == b->M && a->N == b->N && a->K == b->K &&
           a->gs == b->gs && a->prec == b->prec && a->variant == b->variant &&
           memcmp(&a->blocks, &b->blocks, sizeof(a->blocks)) == 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

uint64_t arb_spec_hash(const arb_spec *s, int exact)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = s->kernel; *p && p < s->kernel + sizeof(s->kernel); p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    h = mix(h, (uint64_t)s->M);
    h = mix(h, (uint64_t)s->N);
    h = mix(h, (uint64_t)s->K);
    h = mix(h, (uint64_t)s->gs);
    h = mix(h, (uint64_t)(uint32_t)s->blocks.bm << 32 | (uint32_t)s->blocks.bn);
    h = mix(h, (uint64_t)(uint32_t)s->blocks.bk << 32 | (uint32_t)s->blocks.tm);
    h = mix(h, (uint64_t)(uint32_t)s->blocks.tn << 32 | (uint32_t)s->blocks.warps);
    h = mix(h, (uint64_t)(uint32_t)s->blocks.stages << 32 | (uint32_t)s->prec);
    h = mix(h, (uint64_t)(uint32_t)s->variant << 1 | (uint64_t)(exact != 0));
    return h;
}

/* ---- plans ------------------------------------------------------------------ */

/* Plans name the kernels only; blocks are the defaults here and are replaced
 * by tuned ones when the engine resolves a spec. A spec that fails to init
 * (never, for registry names) is skipped. */
static int add(arb_spec *out, int n, const char *kernel, int64_t M, int64_t N, int64_t K,
               int64_t gs, arb_precision prec, int32_t variant)
{
    if (arb_spec_init(&out[n], kernel, M, N, K, gs, prec, variant, NULL) == ARB_OK)
        return n + 1;
    return n;
}

static int32_t e_variant(int e_enabled, arb_e_score score)
{
    if (!e_enabled)
        return 0;
    return score == ARB_E_SCORE_SIGN ? ARB_VARIANT_E_SIGN : ARB_VARIANT_E_GRAD;
}

/* y[M,N] = x[M,K] W^T staged: decode W (N x K), split x (M x K), then a
 * GEMM over K with N output columns. */
int arb_plan_ternary_fwd(int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                         const char *arch, arb_spec *out)
{
    if (!arb_staged_applies(M, prec, arch))
        return add(out, 0, "ternary_fwd", M, N, K, gs, prec, 0);
    int n = add(out, 0, "ternary_decode", 1, N, K, gs, prec, 0);
    n = add(out, n, "act_split", M, 1, K, 1, prec, 0);
    return add(out, n, "tc_gemm", M, N, K, 1, prec, 0);
}

/* gx[M,K] = gy[M,N] W staged: decode W^T (K x N), split gy (M x N), then a
 * GEMM over N with K output columns. */
int arb_plan_ternary_grad_x(int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                            const char *arch, arb_spec *out)
{
    if (!arb_staged_applies(M, prec, arch))
        return add(out, 0, "ternary_grad_x", M, N, K, gs, prec, 0);
    int n = add(out, 0, "ternary_decode", 1, N, K, gs, prec, ARB_VARIANT_TRANS);
    n = add(out, n, "act_split", M, 1, N, 1, prec, 0);
    return add(out, n, "tc_gemm", M, K, N, 1, prec, 0);
}

int arb_plan_grad_weight(int64_t M, int64_t N, int64_t K, arb_spec *out)
{
    return add(out, 0, "grad_weight", M, N, K, 1, ARB_PREC_FP32, 0);
}

int arb_plan_grad_sign(int64_t M, int64_t N, int64_t K, arb_spec *out)
{
    return add(out, 0, "grad_sign", M, N, K, 1, ARB_PREC_FP32, 0);
}

int arb_plan_ternary_step(int64_t N, int64_t K, int64_t gs, arb_spec *out)
{
    return add(out, 0, "ternary_step", 1, N, K, gs, ARB_PREC_FP32, 0);
}

int arb_plan_update_E(int64_t N, int64_t K, int64_t gs, arb_e_score score, arb_spec *out)
{
    int n = arb_plan_update_E_scores(N, K, gs, score, out);
    return n + arb_plan_update_E_apply(N, K, gs, out + n);
}

arb_precision arb_update_precision(arb_precision gemm)
{
    return gemm == ARB_PREC_FP32 ? ARB_PREC_FP32 : ARB_PREC_BF16X2;
}

/* The staged update (sm_90a): gy^T and x^T split into two bf16 pieces each,
 * then tc_update. */
static int plan_update_staged(int64_t M, int64_t N, int64_t K, int64_t gs, int32_t variant,
                              arb_spec *out)
{
    int n = add(out, 0, "act_split", M, 1, N, 1, ARB_PREC_BF16X2, ARB_VARIANT_TRANS);
    n = add(out, n, "act_split", M, 1, K, 1, ARB_PREC_BF16X2, ARB_VARIANT_TRANS);
    return add(out, n, "tc_update", M, N, K, gs, ARB_PREC_BF16X2, variant);
}

int arb_plan_update_direct(int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                           const char *arch, int step, int phi, arb_e_score score,
                           arb_spec *out)
{
    int32_t variant = (step ? ARB_VARIANT_STEP : 0) | e_variant(phi > 0, score);
    int in_tile = phi > 0 && e_in_tile(K, gs);
    if (in_tile)
        variant |= ARB_VARIANT_E_IN_TILE;
    arb_precision up = arb_update_precision(prec);
    int n = arb_staged_applies(M, up, arch)
                ? plan_update_staged(M, N, K, gs, variant, out)
                : add(out, 0, "ternary_update_direct", M, N, K, gs, up, variant);
    /* gs == 1 and in-tile groups: E is stepped inside the update kernel */
    if (phi > 0 && gs != 1 && !in_tile)
        n += arb_plan_update_E_apply(N, K, gs, out + n);
    return n;
}

int arb_plan_update_E_scores_direct(int64_t M, int64_t N, int64_t K, int64_t gs,
                                    arb_precision prec, const char *arch, arb_e_score score,
                                    arb_spec *out)
{
    int32_t variant = e_variant(1, score) | ARB_VARIANT_E_SCORES_ONLY;
    arb_precision up = arb_update_precision(prec);
    if (arb_staged_applies(M, up, arch))
        return plan_update_staged(M, N, K, gs, variant, out);
    return add(out, 0, "ternary_update_direct", M, N, K, gs, up, variant);
}

int arb_plan_update_E_scores(int64_t N, int64_t K, int64_t gs, arb_e_score score, arb_spec *out)
{
    return add(out, 0, "update_E", 1, N, K, gs, ARB_PREC_FP32, e_variant(1, score));
}

int arb_plan_update_E_apply(int64_t N, int64_t K, int64_t gs, arb_spec *out)
{
    return add(out, 0, "update_E_apply", 1, N, K, gs, ARB_PREC_FP32, 0);
}

int arb_plan_rmsnorm_fwd(int64_t B, int64_t D, int64_t gs, arb_spec *out)
{
    return add(out, 0, "rmsnorm_fwd", B, 1, D, gs, ARB_PREC_FP32, 0);
}

int arb_plan_rmsnorm_bwd(int64_t B, int64_t D, int64_t gs, arb_spec *out)
{
    return add(out, 0, "rmsnorm_bwd", B, 1, D, gs, ARB_PREC_FP32, 0);
}

int arb_plan_embed_fwd(int64_t M, int64_t V, int64_t D, int64_t gs, arb_spec *out)
{
    return add(out, 0, "embed_fwd", M, V, D, gs, ARB_PREC_FP32, 0);
}

int arb_plan_embed_bwd(int64_t M, int64_t V, int64_t D, arb_spec *out)
{
    int n = add(out, 0, "embed_bwd_accum", M, V, D, 1, ARB_PREC_FP32, 0);
    return add(out, n, "embed_bwd_sign", 1, V, D, 1, ARB_PREC_FP32, 0);
}

int arb_plan_gather_context(int64_t M, int ctx, arb_spec *out)
{
    return add(out, 0, "gather_context", M, 1, ctx, 1, ARB_PREC_FP32, 0);
}

int arb_plan_sample_positions(int64_t M, arb_spec *out)
{
    return add(out, 0, "sample_positions", M, 1, 1, 1, ARB_PREC_FP32, 0);
}

int arb_plan_step_advance(arb_spec *out)
{
    return add(out, 0, "step_advance", 1, 1, 1, 1, ARB_PREC_FP32, 0);
}

int arb_plan_relu_fwd(int64_t n, int residual, arb_spec *out)
{
    return add(out, 0, "relu_fwd", n, 1, 1, 1, ARB_PREC_FP32, residual ? 1 : 0);
}

int arb_plan_relu_bwd(int64_t n, arb_spec *out)
{
    return add(out, 0, "relu_bwd", n, 1, 1, 1, ARB_PREC_FP32, 0);
}

int arb_plan_add(int64_t n, arb_spec *out) { return add(out, 0, "add", n, 1, 1, 1, ARB_PREC_FP32, 0); }

int arb_plan_xent_fwd(int64_t M, int64_t V, arb_spec *out)
{
    return add(out, 0, "xent_fwd", M, V, 1, 1, ARB_PREC_FP32, 0);
}

int arb_plan_xent_bwd(int64_t M, int64_t V, arb_spec *out)
{
    return add(out, 0, "xent_bwd", M, V, 1, 1, ARB_PREC_FP32, 0);
}

int arb_plan_linear(int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                    const char *arch, const arb_linear_update *update, arb_spec *out)
{
    int n = arb_plan_ternary_fwd(M, N, K, gs, prec, arch, out);
    n += arb_plan_ternary_grad_x(M, N, K, gs, prec, arch, out + n);
    if (update && (update->step || update->e_enabled))
        n += arb_plan_update_direct(M, N, K, gs, prec, arch, update->step, update->e_enabled ? 1 : 0,
                                    update->score, out + n);
    return n;
}

int arb_plan_rmsnorm(int64_t B, int64_t D, int64_t gs, arb_spec *out)
{
    int n = arb_plan_rmsnorm_fwd(B, D, gs, out);
    return n + arb_plan_rmsnorm_bwd(B, D, gs, out + n);
}

int arb_plan_embed(int64_t M, int64_t V, int64_t D, int64_t gs, const arb_linear_update *update,
                   arb_spec *out)
{
    int n = arb_plan_embed_fwd(M, V, D, gs, out);
    n += arb_plan_embed_bwd(M, V, D, out + n);
    if (update && update->step)
        n += arb_plan_ternary_step(V, D, gs, out + n);
    if (update && update->e_enabled)
        n += arb_plan_update_E(V, D, gs, update->score, out + n);
    return n;
}
