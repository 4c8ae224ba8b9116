/*
 * mma_gemm.cuh - the tensor-core mainloop of ternary_fwd and ternary_grad_x
 * (precision modes tf32, bf16, bf16x2, bf16x3), with mma.sync through inline
 * PTX (sm_80+; compiled for sm_90).
 *
 * C[m, c] = sum_r A[m, r] * W(r, c) over one BM x BN output tile, where
 *   A is fp32 activations, row-major [M_ROWS][R] (x for fwd, gy for grad_x);
 *   W is the packed ternary weight: fwd    W(r=k, c=n) = W[n][k], lin = c*R + r
 *                                   grad_x W(r=n, c=k) = W[n][k], lin = r*N_COLS + c
 *
 * Why it is exact where it matters: a decoded weight T * 2^E (E in [-32, 31])
 * is exactly representable in bf16 and tf32 (both keep fp32's 8-bit
 * exponent), so the weight operand loses nothing. Only the activations are
 * rounded: split into 1 (bf16), 2 (bf16x2) or 3 (bf16x3) bf16 pieces, each
 * multiplied by the same exact weight fragment. bf16x3 represents fp32
 * activations exactly; its remaining error is the tensor core's truncating
 * accumulation, so bf16x2 and bf16x3 add each 128-long K chunk's partial
 * sums into separate fp32 registers ("promotion", as DeepGEMM does for fp8).
 *
 * Data path per K step (BK wide): the A slab goes global -> shared with
 * cp.async (16-byte chunks, zero-filled past the edges) one step ahead; the
 * W slab's packed bytes are fetched into registers one step ahead and decoded
 * into shared memory (bf16 or tf32 bits built from the trit and E with
 * integer ops; a 243-entry table gives the five digits of a byte) after the
 * current step's MMAs. Fragments: A from shared fp32 (converted per use), B
 * with ldmatrix (bf16; .trans for grad_x) or 32-bit loads (tf32).
 *
 * Block configuration: BM x BN block tile, BK reduction step, TM x TN warp
 * tile, WARPS = (BM/TM) * (BN/TN). Shared memory (dynamic) = 2 stages of
 * A (BM x (BK+XPAD) fp32) and W, plus the digit table: see arb_mma_smem.
 */
#ifndef ARB_MMA_GEMM_CUH
#define ARB_MMA_GEMM_CUH

#include "arb_common.cuh"
#include "mma_ptx.cuh"

/* ---- the weight slab: fetch packed bytes, decode to bf16/tf32 bits ---------- */

/* A run of RUN consecutive trits (lin0 .. lin0+RUN-1, the first `valid` of
 * them inside the weight) held in registers between fetch and decode. */
template <int RUN>
struct arb_w_run {
    static constexpr int BYTES = RUN / 5 + 2;
    u32 bytes[BYTES];
    int e_first, e_last; /* E of the first and last valid trit */
    int lin0, valid;
};

template <int RUN, int GS>
__device__ __forceinline__ void arb_w_fetch(arb_w_run<RUN> &w, const u8 *__restrict__ packed,
                                            const i8 *__restrict__ E, int lin0, int valid)
{
    w.lin0 = lin0;
    w.valid = valid;
    if (valid <= 0)
        return;
    const int b0 = lin0 / 5, b_last = (lin0 + valid - 1) / 5;
#pragma unroll
    for (int i = 0; i < arb_w_run<RUN>::BYTES; i++)
        w.bytes[i] = b0 + i <= b_last ? (u32)packed[b0 + i] : 121u; /* 121: five zero trits */
    w.e_first = E[lin0 / GS];
    w.e_last = E[(lin0 + valid - 1) / GS];
}

/* Decode into RUN consecutive shared-memory elements (ELEM = u16 for bf16,
 * u32 for tf32); trits past `valid` become zeros.
 *
 * Eight trits at a time: their (at most three) bytes' digit codes from the
 * table are joined into one 30-bit stream, shifted once by the run's digit
 * offset, and trit j is then the constant-shift field j of the stream. So a
 * trit costs a handful of integer ops instead of a division by a run-time
 * power of three, and the eight results leave in 16-byte stores.
 * GS < RUN reads E per trit (element scales); otherwise a run spans at most
 * two groups, whose exponents were fetched with the bytes. */
template <int RUN, int GS, bool TF32, class ELEM>
__device__ __forceinline__ void arb_w_decode(const arb_w_run<RUN> &w, const i8 *__restrict__ E,
                                             const unsigned short *lut, ELEM *dst)
{
    static_assert(RUN % 8 == 0, "runs are whole chunks of eight trits");
    const int d0 = w.lin0 % 5;                     /* digit of the first trit in bytes[0] */
    const int split = (w.lin0 / GS + 1) * GS - w.lin0; /* first trit of the next group */
    const u32 e_first = (u32)(w.e_first + 127), e_last = (u32)(w.e_last + 127);
#pragma unroll
    for (int c = 0; c < RUN / 8; c++) {
        /* Trits 8c .. 8c+7 sit at digit positions d0 + 8c .. d0 + 8c + 7 of the
         * bytes: from byte f0 = (8c)/5 or the next one, as d0 decides. */
        const int f0 = (8 * c) / 5;
        const int next = d0 >= 5 * (f0 + 1) - 8 * c; /* the chunk starts in byte f0 + 1 */
        u32 b0 = next ? w.bytes[f0 + 1] : w.bytes[f0];
        u32 b1 = next ? w.bytes[f0 + 2] : w.bytes[f0 + 1];
        u32 b2 = next ? w.bytes[f0 + 3 < arb_w_run<RUN>::BYTES ? f0 + 3 : f0 + 2] : w.bytes[f0 + 2];
        u32 stream = (u32)lut[b0] | (u32)lut[b1] << 10 | (u32)lut[b2] << 20;
        stream >>= 2 * (d0 + 8 * c - 5 * (f0 + next));
        u32 out[TF32 ? 8 : 4];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int i = 8 * c + j;
            u32 code = (stream >> (2 * j)) & 3u; /* T + 1 */
            if (i >= w.valid)
                code = 1u;
            u32 ebits;
            if (GS < RUN)
                ebits = (u32)(i < w.valid ? E[(w.lin0 + i) / GS] : 0) + 127u;
            else
                ebits = i < split ? e_first : e_last;
            u32 bits = TF32 ? ((code == 0u) << 31 | ebits << 23) : ((code == 0u) << 15 | ebits << 7);
            bits = code == 1u ? 0u : bits;
            if (TF32)
                out[j] = bits;
            else if (j & 1)
                out[j / 2] |= bits << 16;
            else
                out[j / 2] = bits;
        }
        uint4 *vec = (uint4 *)(dst + 8 * c);
        vec[0] = make_uint4(out[0], out[1], out[2], out[3]);
        if (TF32)
            vec[1] = make_uint4(out[TF32 ? 4 : 0], out[TF32 ? 5 : 0], out[TF32 ? 6 : 0],
                                out[TF32 ? 7 : 0]);
    }
}

/* ---- layout --------------------------------------------------------------------- */

/* std::conditional without <type_traits> (no system headers under NVRTC). */
template <bool C, class A, class B> struct arb_if { typedef A type; };
template <class A, class B> struct arb_if<false, A, B> { typedef B type; };

template <int PREC>
struct arb_mma_traits {
    static constexpr bool TF32 = PREC == ARB_PREC_TF32;
    static constexpr int PIECES = PREC == ARB_PREC_BF16X3 ? 3 : PREC == ARB_PREC_BF16X2 ? 2 : 1;
    static constexpr int KSTEP = TF32 ? 8 : 16;       /* k of one mma */
    static constexpr int XPAD = TF32 ? 4 : 8;         /* fp32 words of A-row padding */
    static constexpr int WELEM = TF32 ? 4 : 2;        /* bytes per decoded weight */
    /* The tensor core truncates as it accumulates, and the bias grows with K:
     * at K = 16384 bf16x2 measured 2e-5 without promotion (its bound is
     * 1e-5). Multi-piece modes therefore add each 128-long K chunk's partial
     * sums into separate fp32 registers. */
    static constexpr bool PROMOTE = PIECES >= 2;
    static constexpr int PROMOTE_STEPS = 128 / KSTEP;
};

/* Shared memory of one launch, in bytes (mirrored by the engine's registry). */
template <int BM, int BN, int BK, int PREC, bool W_TRANS>
struct arb_mma_smem {
    typedef arb_mma_traits<PREC> T;
    static constexpr int WPAD = (T::TF32 && !W_TRANS) ? 4 : 8;
    static constexpr int W_ROWS = W_TRANS ? BK : BN;
    static constexpr int W_COLS = W_TRANS ? BN : BK;
    static constexpr int A_STAGE = BM * (BK + T::XPAD) * 4;
    static constexpr int W_STAGE = W_ROWS * (W_COLS + WPAD) * T::WELEM;
    static constexpr int LUT = 512;
    static constexpr int TOTAL = 2 * A_STAGE + 2 * W_STAGE + LUT;
};

/* ---- the mainloop ------------------------------------------------------------------ */

template <int M_ROWS, int N_COLS, int R, int GS, int BM, int BN, int BK, int TM, int TN, int WARPS,
          int PREC, bool W_TRANS>
__device__ __forceinline__ void arb_mma_gemm(const float *__restrict__ A,
                                             const u8 *__restrict__ packed,
                                             const i8 *__restrict__ E, float *__restrict__ C,
                                             char *smem)
{
    typedef arb_mma_traits<PREC> T;
    typedef arb_mma_smem<BM, BN, BK, PREC, W_TRANS> S;
    typedef typename arb_if<T::TF32, u32, unsigned short>::type welem_t;
    constexpr int THREADS = WARPS * 32;
    constexpr int MT = TM / 16, NT = TN / 8; /* mma tiles per warp */
    constexpr int A_LD = BK + T::XPAD;       /* fp32 words per A row in shared memory */
    constexpr int W_LD = S::W_COLS + S::WPAD;
    constexpr int RUN = S::W_ROWS * S::W_COLS / THREADS; /* trits decoded per thread per step */
    constexpr int RUNS_PER_ROW = S::W_COLS / RUN;
    constexpr int KT = (R + BK - 1) / BK;
    static_assert((BM / TM) * (BN / TN) == WARPS, "warp tiles must cover the block tile");
    static_assert(TM % 16 == 0 && TN % 16 == 0 && BK % 16 == 0, "tile sizes: multiples of 16");
    static_assert(S::W_ROWS * S::W_COLS % THREADS == 0 && S::W_COLS % RUN == 0 && RUN % 8 == 0,
                  "each thread decodes a whole run of 8k trits inside one row");

    float *As = (float *)smem;                                /* [2][BM][A_LD] */
    welem_t *Ws = (welem_t *)(smem + 2 * S::A_STAGE);         /* [2][W_ROWS][W_LD] */
    unsigned short *lut = (unsigned short *)(smem + 2 * S::A_STAGE + 2 * S::W_STAGE);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int m0 = blockIdx.y * BM, c0 = blockIdx.x * BN;
    const int wm = (warp / (BN / TN)) * TM, wn = (warp % (BN / TN)) * TN;

    arb_trit_lut_build<THREADS>(lut);

    /* -- staging: A by cp.async (or plain loads when rows are not 16-byte aligned) -- */
    auto load_a = [&](int stage, int r0) {
        float *dst = As + stage * BM * A_LD;
        if (R % 4 == 0) {
            constexpr int CHUNKS = BM * BK / 4;
#pragma unroll
            for (int ch = tid; ch < CHUNKS; ch += THREADS) {
                int row = ch / (BK / 4), col = (ch % (BK / 4)) * 4;
                int m = m0 + row, r = r0 + col;
                bool ok = m < M_ROWS && r < R;
                const float *src = ok ? A + (i64)m * R + r : A;
                arb_cp_async16(dst + row * A_LD + col, src, ok ? 16 : 0);
            }
        } else {
            for (int e = tid; e < BM * BK; e += THREADS) {
                int row = e / BK, col = e % BK;
                int m = m0 + row, r = r0 + col;
                dst[row * A_LD + col] = (m < M_ROWS && r < R) ? A[(i64)m * R + r] : 0.0f;
            }
        }
        arb_cp_async_commit();
    };

    /* -- the weight run this thread owns at step r0 -- */
    const int w_row = tid / RUNS_PER_ROW, w_col = (tid % RUNS_PER_ROW) * RUN;
    auto fetch_w = [&](arb_w_run<RUN> &w, int r0) {
        int lin0, valid;
        if (!W_TRANS) { /* row = output column c, run along r */
            int c = c0 + w_row, r = r0 + w_col;
            lin0 = c * R + r;
            valid = c < N_COLS ? min(RUN, R - r) : 0;
        } else { /* row = reduction index r (W's n), run along c (W's k) */
            int r = r0 + w_row, c = c0 + w_col;
            lin0 = r * N_COLS + c;
            valid = r < R ? min(RUN, N_COLS - c) : 0;
        }
        arb_w_fetch<RUN, GS>(w, packed, E, lin0, valid);
    };
    auto decode_w = [&](const arb_w_run<RUN> &w, int stage) {
        welem_t *dst = Ws + stage * S::W_ROWS * W_LD + w_row * W_LD + w_col;
        if (w.valid <= 0) {
#pragma unroll
            for (int i = 0; i < RUN; i++)
                dst[i] = 0;
        } else {
            arb_w_decode<RUN, GS, T::TF32>(w, E, lut, dst);
        }
    };

    float acc[MT][NT][4];
    float total[T::PROMOTE ? MT : 1][T::PROMOTE ? NT : 1][4]; /* promoted partial sums */
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                acc[i][j][q] = 0.0f;
                if (T::PROMOTE)
                    total[i][j][q] = 0.0f;
            }
    int since_promote = 0;

    /* prologue: step 0 */
    arb_w_run<RUN> wnext;
    load_a(0, 0);
    fetch_w(wnext, 0);
    __syncthreads(); /* digit table ready */
    decode_w(wnext, 0);

    for (int kt = 0; kt < KT; kt++) {
        const int stage = kt & 1;
        arb_cp_async_wait_all();
        __syncthreads(); /* step kt staged; everyone is done reading stage kt+1's buffers */
        const bool more = kt + 1 < KT;
        if (more) {
            load_a(stage ^ 1, (kt + 1) * BK);
            fetch_w(wnext, (kt + 1) * BK);
        }
        const float *as = As + stage * BM * A_LD;
        const welem_t *ws = Ws + stage * S::W_ROWS * W_LD;
#pragma unroll
        for (int kk = 0; kk < BK; kk += T::KSTEP) {
            /* B fragments for the warp's NT n8-tiles */
            u32 b[NT][2];
            if (T::TF32) {
#pragma unroll
                for (int j = 0; j < NT; j++) {
                    int c = wn + 8 * j + g;
                    if (!W_TRANS) {
                        b[j][0] = ((const u32 *)ws)[c * W_LD + kk + t];
                        b[j][1] = ((const u32 *)ws)[c * W_LD + kk + t + 4];
                    } else {
                        b[j][0] = ((const u32 *)ws)[(kk + t) * W_LD + c];
                        b[j][1] = ((const u32 *)ws)[(kk + t + 4) * W_LD + c];
                    }
                }
            } else {
#pragma unroll
                for (int j = 0; j < NT; j += 2) {
                    u32 r[4];
                    int q = lane >> 3, row8 = lane & 7;
                    if (!W_TRANS) {
                        const welem_t *p = ws + (wn + 8 * (j + (q >> 1)) + row8) * W_LD + kk +
                                           8 * (q & 1);
                        arb_ldmatrix_x4(r, p);
                    } else {
                        const welem_t *p = ws + (kk + 8 * (q & 1) + row8) * W_LD + wn +
                                           8 * (j + (q >> 1));
                        arb_ldmatrix_x4_trans(r, p);
                    }
                    b[j][0] = r[0];
                    b[j][1] = r[1];
                    b[j + 1][0] = r[2];
                    b[j + 1][1] = r[3];
                }
            }
#pragma unroll
            for (int i = 0; i < MT; i++) {
                const float *a_row0 = as + (wm + 16 * i + g) * A_LD + kk;
                const float *a_row8 = a_row0 + 8 * A_LD;
                if (T::TF32) {
                    u32 a[4] = {arb_to_tf32(a_row0[t]), arb_to_tf32(a_row8[t]),
                                arb_to_tf32(a_row0[t + 4]), arb_to_tf32(a_row8[t + 4])};
#pragma unroll
                    for (int j = 0; j < NT; j++)
                        arb_mma_tf32(acc[i][j], a, b[j][0], b[j][1]);
                } else {
                    /* a0: (g, 2t..2t+1), a1: (g+8, ..), a2: (g, 2t+8..), a3: (g+8, 2t+8..) */
                    float2 v[4] = {*(const float2 *)(a_row0 + 2 * t),
                                   *(const float2 *)(a_row8 + 2 * t),
                                   *(const float2 *)(a_row0 + 2 * t + 8),
                                   *(const float2 *)(a_row8 + 2 * t + 8)};
                    u32 piece[4];
#pragma unroll
                    for (int p = 0; p < T::PIECES; p++) {
#pragma unroll
                        for (int q = 0; q < 4; q++) {
                            piece[q] = arb_pack_bf16x2(v[q].x, v[q].y);
                            v[q].x -= arb_bf16_lo(piece[q]); /* the exact remainder */
                            v[q].y -= arb_bf16_hi(piece[q]);
                        }
#pragma unroll
                        for (int j = 0; j < NT; j++)
                            arb_mma_bf16(acc[i][j], piece, b[j][0], b[j][1]);
                    }
                }
            }
            if (T::PROMOTE && ++since_promote == T::PROMOTE_STEPS) {
                since_promote = 0;
#pragma unroll
                for (int i = 0; i < MT; i++)
#pragma unroll
                    for (int j = 0; j < NT; j++)
#pragma unroll
                        for (int q = 0; q < 4; q++) {
                            total[i][j][q] += acc[i][j][q];
                            acc[i][j][q] = 0.0f;
                        }
            }
        }
        if (more)
            decode_w(wnext, stage ^ 1);
    }

    /* epilogue */
#pragma unroll
    for (int i = 0; i < MT; i++) {
#pragma unroll
        for (int j = 0; j < NT; j++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                int m = m0 + wm + 16 * i + g + 8 * h;
                int c = c0 + wn + 8 * j + 2 * t;
                float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
                if (T::PROMOTE) {
                    v0 += total[i][j][2 * h];
                    v1 += total[i][j][2 * h + 1];
                }
                if (m < M_ROWS) {
                    if (c < N_COLS)
                        C[(i64)m * N_COLS + c] = v0;
                    if (c + 1 < N_COLS)
                        C[(i64)m * N_COLS + c + 1] = v1;
                }
            }
        }
    }
}

#endif /* ARB_MMA_GEMM_CUH */
