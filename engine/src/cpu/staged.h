/*
 * staged.h - C references of the staged tensor-core kernels (sm_90a):
 * ternary_decode, act_split and tc_gemm (kernel_templates/staged.cuh says
 * why they exist and how their operands are laid out). The first two are
 * exact, so a GPU test compares them byte for byte; tc_gemm sums in float64.
 *
 * These are not ops: the cpu backend computes ternary_fwd / ternary_grad_x
 * directly. They exist so each GPU kernel has its reference beside it.
 */
#ifndef ARB_CPU_STAGED_H
#define ARB_CPU_STAGED_H

#include <stdint.h>

#include "arb/backend.h"

/* The dense operand of W (N x K, packed trits, scales of group size gs):
 * arb_staged_weight_bytes(N, K, prec, trans) bytes of bf16 bits (tf32: fp32
 * bits) of T * 2^E, W[n][k] (trans: W^T[k][n]), zero padding. */
void arb_cpu_ternary_decode(const uint8_t *packed, const int8_t *E, int64_t N, int64_t K,
                            int64_t gs, arb_precision prec, int trans, void *out);

/* The activation pieces of x (M x R fp32): arb_staged_act_bytes(M, R, prec)
 * bytes; bf16 modes: PIECES planes of round-to-nearest-even bf16 remainders;
 * tf32: one plane of fp32 rounded to tf32 (nearest, ties away from zero).
 * trans: the transpose, planes [R][M] (arb_staged_act_bytes_trans bytes). */
void arb_cpu_act_split(const float *x, int64_t M, int64_t R, arb_precision prec, int trans,
                       void *out);

/* C[M][N] = sum_p A_p . B^T over R, from staged operands, summed in float64. */
void arb_cpu_tc_gemm(const void *pieces, const void *dense, int64_t M, int64_t N, int64_t R,
                     arb_precision prec, float *C);

/* Round-to-nearest-even bf16 bits of a finite float (cvt.rn.bf16.f32). */
uint16_t arb_cpu_bf16_bits(float f);

#endif /* ARB_CPU_STAGED_H */
