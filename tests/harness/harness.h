/*
 * harness.h - the shared test harness of arb's op suites: one testbed that
 * runs every op of ops.h on any backend (cpu or jit) against independent
 * float64 references written here, never against engine/src/cpu.
 *
 * Pieces (each in its own file):
 *   harness.c    seeded RNG, random data, backend buffers with guard zones
 *                and poison, ternary weights in backend memory, comparators
 *                that print the first mismatches and leave an evidence file
 *   reference.c  naive float64 references of every op, in SPEC §3 order
 *   cases.c      the testbed: one function per op that draws fresh inputs,
 *                runs the op on the backend under test (and on a cpu backend
 *                beside it, for GPU runs), and checks every output; and the
 *                sweeps of a case over every shape that the cpu and GPU
 *                suites both run
 *
 * The suites that work on files and programs have their own headers here:
 * files.h (a test's temp folder), proc.h (running the built programs),
 * cache_fixture.h (cache keys, entries, SQL) and checkpoint_doc.h (a
 * checkpoint reader written from docs/checkpoint-format.md).
 *
 * Reproducibility: the run's seed comes from ARB_TEST_SEED (decimal or 0x
 * hex) or is fresh per run (time ^ pid). Every failure message prints it;
 * rerunning with ARB_TEST_SEED=<seed> replays the same inputs. Each test
 * draws from its own stream (the seed mixed with the test's name), so a test
 * replays the same way alone or in a full run.
 *
 * Checking (aesthetics anchors 9-11): outputs are poisoned before each run
 * (0xFF: a NaN in every float, -1 in every int index; 0x7F in int8 sign
 * outputs, where 0xFF would read as a valid -1), every buffer carries guard
 * zones that are checked after the op, inputs and references are asserted
 * non-zero, and a failure prints op, shape, scale type, seed and the first 5
 * mismatches (index, got, want), stops counting at 10, and writes
 * arb-fail-<op>-<M>x<N>x<K>-gs<gs>-<output>.txt with the whole output.
 *
 * Comparators and cases return 1 on success and 0 on failure (after printing
 * why), so a self-test can plant a fault and expect 0. Setup failures
 * (allocation, upload) abort the test through Criterion.
 */
#ifndef ARB_TEST_HARNESS_H
#define ARB_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "arb/backend.h"
#include "arb/ops.h"
#include "arb/ternary.h"

/* ---- tolerances (SPEC §3, Accuracy) --------------------------------------- */

#define TH_TOL_FP32 2e-6    /* fp32 GEMMs: ||out-ref|| / ||ref|| */
#define TH_TOL_RMSNORM 1e-5 /* RMSNorm forward and backward */
#define TH_TOL_XENT 1e-5    /* not in SPEC §3: cross-entropy gets RMSNorm's figure */
#define TH_SIGN_REL 1e-4    /* signs exact where |ref| > 1e-4 * ||gy col|| * ||x col|| */

/* The GEMM bound of a precision mode (SPEC §3): fp32 2e-6, tf32 1e-3, bf16
 * 1e-2, bf16x2 1e-5, bf16x3 2e-6 (backend.h); 0 for an unknown mode. */
double th_tol_prec(arb_precision prec);
/* The same for a backend's precision mode. */
double th_tol_gemm(const arb_backend *be);

/* ---- seed and random numbers ---------------------------------------------- */

/* The run's seed (ARB_TEST_SEED, or time ^ pid), chosen once per process. */
uint64_t th_run_seed(void);

/* One step of splitmix64: advances *state, returns the next number. Also
 * the plain generator of the end-to-end suites (corpora, kill delays). */
uint64_t th_splitmix64(uint64_t *state);

/* xoshiro256** seeded through splitmix64. */
typedef struct th_rng {
    uint64_t s[4];
} th_rng;

void th_rng_seed(th_rng *r, uint64_t seed);
/* The stream of one test: the run's seed mixed with the test's name. */
th_rng th_rng_for(const char *test_name);
uint64_t th_u64(th_rng *r);
double th_unit(th_rng *r);                          /* uniform in [0, 1) */
int64_t th_range(th_rng *r, int64_t lo, int64_t hi); /* uniform in [lo, hi], inclusive */
double th_normal(th_rng *r);                        /* standard normal */

void th_fill_normal(th_rng *r, float *a, size_t n);
/* Small integers in [lo, hi] as floats: sums of few of them are exact in fp32. */
void th_fill_int(th_rng *r, float *a, size_t n, int lo, int hi);
/* Normal values rounded to multiples of 2^-16 and clipped to (-4, 4): a sum
 * of two is exact in fp32 and fp64, so elementwise adds compare exactly. */
void th_fill_dyadic(th_rng *r, float *a, size_t n);
void th_fill_trits(th_rng *r, int8_t *t, size_t n); /* -1, 0, +1 uniformly */
/* Integers in [lo, hi] as int8 (accumulators, scales). */
void th_fill_i8(th_rng *r, int8_t *a, size_t n, int lo, int hi);

/* ---- the case being checked, for messages --------------------------------- */

typedef struct th_case {
    const char *op;      /* op stem, e.g. "ternary_fwd" */
    int64_t M, N, K, gs; /* shape; 0 where the op has no such dimension */
    const char *mode;    /* scale type, score mode or variant; may be NULL */
    const char *backend; /* "cpu" or "jit" */
} th_case;

/* "ternary_fwd(M=37,N=53,K=160,gs=32,g32,cpu) seed=0x..." */
void th_case_describe(const th_case *c, char *buf, size_t len);

/* Silence failure reports (for self-tests that plant a fault on purpose). */
void th_set_quiet(int quiet);
/* Report a failure of case c: "FAIL <case> <what>: <message> (replay: ARB_TEST_SEED=...)". */
void th_fail(const th_case *c, const char *what, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Report a passing case on stdout: one line "op(...) <detail>". */
void th_pass(const th_case *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A backend call that must succeed; on failure reports the backend's error
 * message and returns 0. */
int th_ok(const th_case *c, arb_backend *be, arb_status st, const char *call);

/* ---- backend buffers with guard zones ------------------------------------- */

#define TH_GUARD_BYTES 64   /* on each side of every buffer (keeps 64-byte alignment) */
#define TH_GUARD_BYTE 0xA5  /* what the guard zones hold */
#define TH_POISON_F32 0xFF  /* NaN in every float, -1 in every int32/int64 */
#define TH_POISON_I8 0x7F   /* 127: not a sign, not a trit */

typedef struct th_buf {
    arb_backend *be;
    void *base;   /* the allocation: guard | payload | guard */
    void *p;      /* the payload, what ops see */
    size_t bytes; /* payload bytes */
} th_buf;

/* Allocate `bytes` (0 allowed) in the backend's memory with both guard zones
 * filled. Aborts the test on failure. */
th_buf th_buf_alloc(arb_backend *be, size_t bytes);
void th_buf_free(th_buf *b);
void th_buf_upload(th_buf *b, const void *src);   /* the whole payload */
void th_buf_download(th_buf *b, void *dst);       /* the whole payload */
void th_buf_poison(th_buf *b, int byte);          /* memset the payload */
/* Allocate and upload in one call. */
th_buf th_buf_from(arb_backend *be, const void *src, size_t bytes);
/* Check that both guard zones still hold TH_GUARD_BYTE (nothing wrote past
 * either end). Reports and returns 0 otherwise. */
int th_buf_guards_ok(const th_case *c, const char *what, th_buf *b);

/* ---- ternary weights ------------------------------------------------------ */

/* A weight on the host, unpacked: the harness's own view of the state. */
typedef struct th_hw {
    int64_t N, K, gs;
    int8_t *T;       /* N*K trits */
    int8_t *E;       /* N*K/gs log2 scales */
    int8_t *T_accum; /* N*K, or NULL (frozen weight) */
    int8_t *E_accum; /* N*K/gs, or NULL */
} th_hw;

size_t th_hw_count(const th_hw *w);  /* N*K */
size_t th_hw_groups(const th_hw *w); /* N*K/gs */
/* Random trits, E in [e_lo, e_hi], T_accum in [-theta, theta] (theta 0:
 * none) and E_accum in [-phi, phi] (phi 0: none). */
th_hw th_hw_random(th_rng *r, int64_t N, int64_t K, int64_t gs, int e_lo, int e_hi, int theta,
                   int phi);
th_hw th_hw_clone(const th_hw *w);
void th_hw_free(th_hw *w);

/* The same weight in a backend's memory: T_packed has
 * arb_packed_alloc_size(N*K) bytes (the jit kernels update trits with
 * 32-bit atomics on the word holding a byte), every array has guard zones. */
typedef struct th_dw {
    arb_ternary w; /* points into the buffers below */
    th_buf T_packed, E, T_accum, E_accum;
} th_dw;

th_dw th_dw_create(arb_backend *be, const th_hw *w);
/* Download the state into `out` (which must have the same shape and arrays)
 * and, when `packed` is non-NULL, the raw packed bytes
 * (arb_packed_alloc_size(N*K)). Checks that the packed data is valid (every
 * byte < 243, padding trits zero, the alloc tail untouched) and the guard
 * zones intact; reports and returns 0 otherwise. */
int th_dw_read(const th_case *c, th_dw *d, th_hw *out, uint8_t *packed);
void th_dw_free(th_dw *d);

/* ---- comparators ---------------------------------------------------------- */

/* ||got - want|| / ||want|| <= tol, every got finite, ||want|| > 0. */
int th_check_rel(const th_case *c, const char *what, const float *got, const double *want,
                 size_t n, double tol);
/* The same against another backend's fp32 output. */
int th_check_rel_f(const th_case *c, const char *what, const float *got, const float *want,
                   size_t n, double tol);
/* Bitwise-equal floats (and no NaN). */
int th_check_exact_f(const th_case *c, const char *what, const float *got, const float *want,
                     size_t n);
/* Equal to the fp32 rounding of a float64 reference (exact ops). */
int th_check_exact_fd(const th_case *c, const char *what, const float *got, const double *want,
                      size_t n);
int th_check_exact_i8(const th_case *c, const char *what, const int8_t *got, const int8_t *want,
                      size_t n);
int th_check_exact_u8(const th_case *c, const char *what, const uint8_t *got,
                      const uint8_t *want, size_t n);
int th_check_exact_i32(const th_case *c, const char *what, const int32_t *got,
                       const int32_t *want, size_t n);
int th_check_exact_i64(const th_case *c, const char *what, const int64_t *got,
                       const int64_t *want, size_t n);
/* Every state array of two weights byte-identical (T, E, T_accum, E_accum
 * where present). */
int th_check_state(const th_case *c, const char *what, const th_hw *got, const th_hw *want);

/* Signs (SPEC §3): s[i] must equal sign(ref[i]) wherever |ref[i]| >
 * bound[i]; elsewhere any of -1, 0, +1 is accepted. */
int th_check_signs(const th_case *c, const char *what, const int8_t *got, const double *ref,
                   const double *bound, size_t n);

/* All-zero data proves nothing: assert some element is nonzero. */
int th_nonzero_f(const th_case *c, const char *what, const float *a, size_t n);
int th_nonzero_d(const th_case *c, const char *what, const double *a, size_t n);

/* ---- float64 references (reference.c) ------------------------------------- */

/* W[n,k] = T[n,k] * 2^E[(n*K+k)/gs] in double. */
void th_ref_weight(const th_hw *w, double *W);
/* y[M,N] = x[M,K] . W^T */
void th_ref_ternary_fwd(const th_hw *w, const float *x, int64_t M, double *y);
/* gx[M,K] = gy[M,N] . W */
void th_ref_ternary_grad_x(const th_hw *w, const float *gy, int64_t M, double *gx);
/* gW[N,K] = gy^T . x */
void th_ref_grad_weight(const float *gy, const float *x, int64_t M, int64_t N, int64_t K,
                        double *gW);
/* The sign rule's bound for gW[n,k]: 1e-4 * ||gy[:,n]|| * ||x[:,k]||. */
void th_ref_sign_bounds(const float *gy, const float *x, int64_t M, int64_t N, int64_t K,
                        double *bound);
void th_ref_signs(const double *v, size_t n, int8_t *s);
/* ternary_step on the host state: returns the number of changed trits.
 * s may be a sum of data-parallel ranks' signs: its sign votes (ops.h). */
uint64_t th_ref_ternary_step(th_hw *w, const int8_t *s, int theta);
/* One E rule step of a group (SPEC §3) from the sign of its score. */
void th_ref_E_rule(int8_t *E, int8_t *E_accum, int score_sign, int phi);
/* Group scores with the current T: score[g] = sum_{lin in g} v[lin] * T[lin]
 * and mag[g] = sum |v * T| (for the score-sign rule), in double. */
void th_ref_group_scores(const th_hw *w, const double *v, double *score, double *mag);

/* update_E's outcome, checked with the SPEC's tolerance: every group whose
 * |score| > rel * mag (or whose mag is 0) must match the rule applied with
 * sign(score) exactly; a group inside that band may match the rule with any
 * sign. rel = 0 demands exact signs everywhere (sign mode, small integers).
 * `before` is the state before update_E (E, E_accum), `got` after. */
int th_check_update_E(const th_case *c, const th_hw *before, const th_hw *got,
                      const double *score, const double *mag, int phi, double rel);

/* update_E_scores' output: every group's fp32 score within rel * mag[g] of
 * the reference (rel = 0: exactly; mag 0: exactly 0). */
int th_check_scores(const th_case *c, const char *what, const float *got, const double *ref,
                    const double *mag, size_t groups, double rel);

void th_ref_rmsnorm_fwd(const th_hw *w, const float *x, int64_t B, double *out);
void th_ref_rmsnorm_bwd(const th_hw *w, const float *x, const float *gy, int64_t B, double *gx);
void th_ref_embed_fwd(const th_hw *table, const int32_t *idx, int64_t M, double *out);
/* acc[v,d] = sum_{i: idx_i = v} gout[i,d]; bound[v,d] = 1e-4 * sqrt(count_v)
 * * ||gout[:,d]|| (the sign rule with gy = onehot(idx), x = gout). */
void th_ref_embed_bwd(int64_t V, int64_t D, const int32_t *idx, const float *gout, int64_t M,
                      double *acc, double *bound);
void th_ref_gather_context(const uint8_t *corpus, const int64_t *pos, int64_t M, int ctx,
                           int32_t *idx, int32_t *target);
/* The position SPEC's sample_positions draws, written out here (splitmix64). */
int64_t th_ref_sample_position(uint64_t seed, int64_t step, int64_t i, int64_t lo, int64_t hi);
void th_ref_relu_fwd(const float *z, const float *h_in, int64_t n, int residual, double *h);
void th_ref_relu_bwd(const float *gh, const float *z, int64_t n, double *gz);
void th_ref_add(const float *a, const float *b, int64_t n, double *out);
double th_ref_xent_fwd(const float *logits, const int32_t *target, int64_t M, int64_t V);
void th_ref_xent_bwd(const float *logits, const int32_t *target, int64_t M, int64_t V,
                     double *g);

/* ---- shapes --------------------------------------------------------------- */

/* A weight shape with its scale type: gs = arb_scale_gs(kind, N, K). */
typedef struct th_shape {
    int64_t M, N, K;
    arb_scale_kind kind;
    const char *why; /* what the shape pins down */
} th_shape;

/* Awkward shapes covering all six scale types, minimal sizes, tile +-1,
 * K % 5 != 0 and gs a multiple of K. */
extern const th_shape th_shapes[];
extern const int th_shape_count;
int64_t th_shape_gs(const th_shape *s);

/* for (const th_shape *s = every shape of th_shapes) */
#define TH_FOR_EACH_SHAPE(s)                                                                       \
    for (const th_shape *s = th_shapes; s < th_shapes + th_shape_count; s++)

/* ---- the testbed (cases.c) ------------------------------------------------ */

typedef struct th_bed {
    arb_backend *be;  /* the backend under test */
    arb_backend *cpu; /* a cpu backend to compare with as well (GPU runs), or NULL */
    th_rng rng;       /* this test's stream */
    int e_lo, e_hi;   /* E range of the GEMM cases' weights; both 0: [-3, 3] */
} th_bed;

/* Open a cpu backend (threads 0 = all cores); aborts the test on failure. */
arb_backend *th_open_cpu(int threads);
/* Open the jit backend (its settings from the environment). Without a CUDA
 * driver or device, prints "arb-skip: <reason>" (ctest counts the test as
 * skipped), removes the test's folder (files.h; a skipped test runs no
 * .fini) and skips the test; any other failure aborts it. */
arb_backend *th_open_jit_or_skip(void);
/* A bed on a fresh one-thread cpu backend, drawing from the stream of the
 * test `name` (close bed.be after). */
th_bed th_cpu_bed(const char *name);
/* The GPU suites' bed: a fresh folder `dir_stem` (files.h) holding the run's
 * kernel cache (ARB_CACHE), the jit backend under test (skips without a GPU)
 * and a 4-thread cpu backend beside it, drawing from the stream of the test
 * `name`. th_gpu_bed_close (a suite's .fini) closes both, removes the folder. */
th_bed th_gpu_bed(const char *dir_stem, const char *name);
void th_gpu_bed_close(void);
/* A jit backend in precision mode `prec` on the engine of `sharing` (one
 * engine, one cache); aborts the test on failure. Close it before `sharing`. */
arb_backend *th_open_jit_mode(arb_backend *sharing, arb_precision prec);

/* Each case draws fresh inputs, runs the op on bed->be with poisoned
 * outputs, checks every output against the float64 reference (SPEC
 * tolerances) and the guard zones, and, with bed->cpu, runs the same
 * inputs on the cpu backend and compares the two. Returns 1 on success. */
int th_case_ternary_fwd(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs);
int th_case_ternary_grad_x(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs);
int th_case_grad_weight(th_bed *bed, int64_t M, int64_t N, int64_t K, int small_int);
/* small_int: gy and x from {-2, -1, 1, 2}, so gW is exact in fp32 (with
 * many exact zeros) and every sign, sign(0) = 0 included, must match exactly. */
int th_case_grad_sign(th_bed *bed, int64_t M, int64_t N, int64_t K, int small_int);
/* ternary_step from random s on a random state; exact. A quarter of the s
 * are vote sums (any int8, as data-parallel ranks' summed signs) whose sign
 * must count. */
int th_case_ternary_step(th_bed *bed, int64_t N, int64_t K, int64_t gs, int theta);
/* update_E from random gW (grad) or s (sign) on a random state. */
int th_case_update_E(th_bed *bed, int64_t N, int64_t K, int64_t gs, int phi, arb_e_score score);
/* The split form: update_E_scores (checked against the reference scores),
 * then update_E_apply on those scores (the E rule exactly, from the scores'
 * signs), and the pair against update_E on the same inputs. */
int th_case_update_E_split(th_bed *bed, int64_t N, int64_t K, int64_t gs, int phi,
                           arb_e_score score);
/* The whole two-pass chain grad_sign -> ternary_step -> grad_weight ->
 * update_E against the references, and the three direct ops against it
 * byte for byte (T_packed, T_accum, E, E_accum, flips); likewise the split
 * forms (update_E_scores[_direct] + update_E_apply). small_int draws gy
 * and x from {-2, -1, 1, 2}, so every sum is exact in fp32 and no sign can
 * depend on summation order (required for the direct ops on a GPU, which
 * are skipped there without it). With bed->cpu, the cpu gets the same s
 * and gW and must reach the same state. */
int th_case_update_chain(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs, int theta,
                         int phi, arb_e_score score, int small_int);
/* A nonzero guard leaves every state byte and the flips counter untouched
 * (ternary_step, update_E, the three direct ops). */
int th_case_guard(th_bed *bed, int64_t M, int64_t N, int64_t K, int64_t gs);
int th_case_rmsnorm_fwd(th_bed *bed, int64_t B, int64_t D, int64_t gs);
int th_case_rmsnorm_bwd(th_bed *bed, int64_t B, int64_t D, int64_t gs);
int th_case_embed_fwd(th_bed *bed, int64_t M, int64_t V, int64_t D, int64_t gs);
/* small_int: gout from small integers, so acc and s are exact whatever the
 * order of the (atomic) adds. */
int th_case_embed_bwd(th_bed *bed, int64_t M, int64_t V, int64_t D, int small_int);
int th_case_gather_context(th_bed *bed, int64_t M, int ctx, int64_t corpus_len);
/* sample_positions at a few steps, with step_advance between them. */
int th_case_sample_positions(th_bed *bed, int64_t M, int64_t lo, int64_t hi);
int th_case_relu_fwd(th_bed *bed, int64_t n, int residual);
int th_case_relu_bwd(th_bed *bed, int64_t n);
int th_case_add(th_bed *bed, int64_t n);
/* xent_fwd and xent_bwd; extreme: logits at +-80. Also checks the guard:
 * untouched (0) for finite logits. */
int th_case_xent(th_bed *bed, int64_t M, int64_t V, int extreme);
/* xent_fwd sets the guard when a row's loss is not finite. */
int th_case_xent_guard(th_bed *bed, int64_t M, int64_t V);

/* Sweeps: one case over every shape of th_shapes, in order, the schedule
 * of its parameters fixed here so the cpu and GPU suites check the same
 * cases. Every case runs even after one fails; 1 when all passed. */
int th_sweep_ternary_fwd(th_bed *bed);
int th_sweep_ternary_grad_x(th_bed *bed);
int th_sweep_grad_weight(th_bed *bed);    /* normal data, then small integers */
int th_sweep_grad_sign(th_bed *bed);      /* normal data, then small integers */
int th_sweep_ternary_step(th_bed *bed);   /* theta 1, 2, 5, 127 in turn */
int th_sweep_update_E(th_bed *bed);       /* phi 1, 2, 3 in turn; grad, then sign */
int th_sweep_update_E_split(th_bed *bed); /* the same through the split form */
int th_sweep_guard(th_bed *bed);
int th_sweep_embed_fwd(th_bed *bed);      /* V x D = N x K, 3M + 1 lookups */
/* A whole cpu test: `sweep` on th_cpu_bed(name), asserting that it passed. */
void th_sweep_on_cpu(const char *name, int (*sweep)(th_bed *bed));

#endif /* ARB_TEST_HARNESS_H */
