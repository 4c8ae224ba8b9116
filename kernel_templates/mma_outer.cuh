/*
 * mma_outer.cuh - one BM x BN tile of the weight gradient gW[N,K] = gy^T . x
 * on tensor cores, for the fused update. Tile rows are n, columns k; the
 * reduction runs over the batch M in steps of BK.
 *
 * Both operands are fp32 activations, so both are split into two bf16
 * pieces and three products are summed (hi*hi + hi*lo + lo*hi; lo*lo is
 * below the rounding of the rest). The error of each gW is then about
 * 2^-16 * sum_m |gy||x| <= 2^-16 * |gy col| |x col|, under the 1e-4 bound of
 * SPEC §3 within which signs must be exact; the update needs only signs (and
 * group sums of gW * T for the grad score).
 *
 * Shared memory: two stages of gy [BK][BM+4] and x [BK][BN+4] fp32 (rows m,
 * filled with cp.async). The row pitch is 4 mod 32 words, so the fragments'
 * column reads (elements m = 2t, 2t+1 of column g) hit 32 distinct banks.
 * Accumulators: acc[i][j][q] holds n = wm + 16i + g + 8(q/2),
 * k = wn + 8j + 2t + (q%2) (the mma.sync m16n8 layout).
 */
#ifndef ARB_MMA_OUTER_CUH
#define ARB_MMA_OUTER_CUH

#include "arb_common.cuh"
#include "mma_ptx.cuh"

template <int BM, int BN, int BK>
struct arb_outer_smem {
    static constexpr int GY_LD = BM + 4, X_LD = BN + 4;
    static constexpr int GY_STAGE = BK * GY_LD * 4, X_STAGE = BK * X_LD * 4;
    static constexpr int TOTAL = 2 * GY_STAGE + 2 * X_STAGE;
};

/* Split a pair of fp32 values into hi and lo bf16x2 pieces. */
__device__ __forceinline__ void arb_split2(float a, float b, u32 &hi, u32 &lo)
{
    hi = arb_pack_bf16x2(a, b);
    lo = arb_pack_bf16x2(a - arb_bf16_lo(hi), b - arb_bf16_hi(hi));
}

template <int M, int N, int K, int BM, int BN, int BK, int TM, int TN, int WARPS>
__device__ __forceinline__ void arb_mma_outer(const float *__restrict__ gy,
                                              const float *__restrict__ x, int n0, int k0,
                                              char *smem, float (&acc)[TM / 16][TN / 8][4])
{
    typedef arb_outer_smem<BM, BN, BK> S;
    constexpr int THREADS = WARPS * 32, MT = TM / 16, NT = TN / 8;
    constexpr int KT = (M + BK - 1) / BK;
    static_assert((BM / TM) * (BN / TN) == WARPS, "warp tiles must cover the block tile");
    static_assert(TM % 16 == 0 && TN % 8 == 0 && BK % 16 == 0, "tile sizes");
    float *gys = (float *)smem;                   /* [2][BK][GY_LD] */
    float *xs = (float *)(smem + 2 * S::GY_STAGE); /* [2][BK][X_LD] */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wm = (warp / (BN / TN)) * TM, wn = (warp % (BN / TN)) * TN;

    /* Stage rows m0 .. m0+BK of gy (columns n0..) and x (columns k0..). */
    auto stage_rows = [&](int stage, int m0) {
        float *gdst = gys + stage * BK * S::GY_LD;
        float *xdst = xs + stage * BK * S::X_LD;
        if (N % 4 == 0) {
            for (int ch = tid; ch < BK * BM / 4; ch += THREADS) {
                int r = ch / (BM / 4), c = (ch % (BM / 4)) * 4;
                bool ok = m0 + r < M && n0 + c < N;
                arb_cp_async16(gdst + r * S::GY_LD + c, ok ? gy + (i64)(m0 + r) * N + n0 + c : gy,
                               ok ? 16 : 0);
            }
        } else {
            for (int e = tid; e < BK * BM; e += THREADS) {
                int r = e / BM, c = e % BM;
                bool ok = m0 + r < M && n0 + c < N;
                gdst[r * S::GY_LD + c] = ok ? gy[(i64)(m0 + r) * N + n0 + c] : 0.0f;
            }
        }
        if (K % 4 == 0) {
            for (int ch = tid; ch < BK * BN / 4; ch += THREADS) {
                int r = ch / (BN / 4), c = (ch % (BN / 4)) * 4;
                bool ok = m0 + r < M && k0 + c < K;
                arb_cp_async16(xdst + r * S::X_LD + c, ok ? x + (i64)(m0 + r) * K + k0 + c : x,
                               ok ? 16 : 0);
            }
        } else {
            for (int e = tid; e < BK * BN; e += THREADS) {
                int r = e / BN, c = e % BN;
                bool ok = m0 + r < M && k0 + c < K;
                xdst[r * S::X_LD + c] = ok ? x[(i64)(m0 + r) * K + k0 + c] : 0.0f;
            }
        }
        arb_cp_async_commit();
    };

#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int q = 0; q < 4; q++)
                acc[i][j][q] = 0.0f;

    stage_rows(0, 0);
    for (int kt = 0; kt < KT; kt++) {
        const int stage = kt & 1;
        arb_cp_async_wait_all();
        __syncthreads(); /* stage kt landed; everyone left stage kt+1's buffers */
        if (kt + 1 < KT)
            stage_rows(stage ^ 1, (kt + 1) * BK);
        const float *gs_ = gys + stage * BK * S::GY_LD;
        const float *xs_ = xs + stage * BK * S::X_LD;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            /* B = x: b0 = (m = kk+2t, kk+2t+1; k = wn+8j+g), b1 = the same 8 rows on */
            u32 bh[NT][2], bl[NT][2];
#pragma unroll
            for (int j = 0; j < NT; j++) {
                const float *col = xs_ + wn + 8 * j + g;
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    int m = kk + 2 * t + 8 * h;
                    arb_split2(col[m * S::X_LD], col[(m + 1) * S::X_LD], bh[j][h], bl[j][h]);
                }
            }
#pragma unroll
            for (int i = 0; i < MT; i++) {
                /* A = gy^T: a0 = (n = wm+16i+g; m = kk+2t..), a1 = (n+8; ..),
                 * a2 = (n; m+8..), a3 = (n+8; m+8..) */
                const float *col = gs_ + wm + 16 * i + g;
                u32 ah[4], al[4];
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    int m = kk + 2 * t + 8 * (q >> 1);
                    int dn = 8 * (q & 1);
                    arb_split2(col[m * S::GY_LD + dn], col[(m + 1) * S::GY_LD + dn], ah[q], al[q]);
                }
#pragma unroll
                for (int j = 0; j < NT; j++) {
                    arb_mma_bf16(acc[i][j], al, bh[j][0], bh[j][1]);
                    arb_mma_bf16(acc[i][j], ah, bl[j][0], bl[j][1]);
                    arb_mma_bf16(acc[i][j], ah, bh[j][0], bh[j][1]);
                }
            }
        }
    }
}

#endif /* ARB_MMA_OUTER_CUH */
