/*
 * staged.cuh - the padded operand layout that ternary_decode and act_split
 * write and tc_gemm reads (mirrored by arb_staged_* in engine kernels.h).
 *
 * Why stage at all: a ternary weight must be decoded before a tensor core can
 * use it, and decoding inside the GEMM's main loop costs integer instructions
 * that compete with the MMAs for issue slots (the mma.sync kernels of
 * mma_gemm.cuh measured 664 instructions per 32 HMMA). Decoding once per call
 * into a dense operand costs one memory-bound pass (3.4 MB read and 32 MB
 * written for a 4096 x 4096 weight in bf16), after which the GEMM is a plain
 * dense one that Hopper's asynchronous wgmma can run from shared memory.
 *
 * Layout: every operand is row-major with rows along the output (M for the
 * activations, the output column for the weight) and the reduction
 * contiguous ("K-major"); rows are padded to a multiple of ARB_STAGE_ROWS and
 * the reduction to a multiple of ARB_STAGE_COLS, with zeros, so the GEMM
 * needs no bounds checks until it stores C.
 */
#ifndef ARB_STAGED_CUH
#define ARB_STAGED_CUH

#include "arb_common.cuh"

#define ARB_STAGE_ROWS 256 /* the largest block tile tc_gemm takes (bm 128, bn 256) */
#define ARB_STAGE_COLS 64  /* a multiple of 64 bf16 / 32 fp32: whole 128-byte rows */
#define ARB_PAD(x, m) (((x) + (m) - 1) / (m) * (m))

/* ternary_decode's variant: write the transpose (grad_x reduces over n). */
#define ARB_VARIANT_TRANS 32
/* Scale after the MMA: ternary_decode writes T alone (E = 0), tc_gemm
 * multiplies each K-group's partial sums by 2^E (forward only, gs a multiple
 * of the 128-byte K slab dividing K). */
#define ARB_VARIANT_SCALE_AFTER 64

/* Activation pieces of a mode: fp32 = bf16 hi + bf16 lo (+ bf16 lo2). tf32
 * keeps one fp32 plane (rounded to tf32 on the way). */
template <int PREC>
struct arb_staged {
    static constexpr bool TF32 = PREC == ARB_PREC_TF32;
    static constexpr int PIECES = PREC == ARB_PREC_BF16X3 ? 3 : PREC == ARB_PREC_BF16X2 ? 2 : 1;
    static constexpr int ELEM = TF32 ? 4 : 2; /* bytes per staged element */
};

#endif /* ARB_STAGED_CUH */
