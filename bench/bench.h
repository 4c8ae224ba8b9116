/*
 * bench.h - arb-bench's internal interfaces: options, the list of specs to
 * measure, candidate block configurations, per-kernel buffer layouts, result
 * rows and the writers (table, JSON, CSV, SVG).
 *
 * The files split into two halves:
 *   pure (no GPU; unit-tested by tests/test_bench.c through arb_bench_core):
 *     options.c  flags, --shape/--blocks text, replay commands
 *     plan.c     specs from shapes.txt / flags, candidate lists, --dry-run
 *     stats.c    median and percentiles, how many repeats, row-status helpers
 *     data.c     random inputs, dense dequantization, bf16, comparisons,
 *                float64 reference rows
 *     layout.c   every kernel's parameter list as buffers and scalars
 *     report.c   rows, the aligned table, JSON, CSV
 *     svg.c      time per configuration, one panel per kernel and shape
 *   GPU (only in the program):
 *     gpu.c      stream, checked driver calls, rotated buffer sets
 *     timing.c   CUDA-event sampling (graphs for short kernels)
 *     cublas.c   dlopen'ed cuBLAS GEMMs (the dense peers)
 *     peers.c    ceilings (copy rate, cuBLAS) and peer measurements
 *     measure.c  check, time and record one spec's candidates
 *     ops.c      --gemm: whole ops in every mode as the trainer runs them
 *                (staged or fused), checked, timed, beside cuBLAS
 *     jit.c      compile, cache-hit and launch-overhead figures
 *     step.c     one training step by kernel (needs the trainer's model)
 *     main.c     modes and exit codes
 *
 * Exit codes of the program: 0 every measurement ok; 1 a failure (a wrong
 * result, a compile or launch failure, an error while measuring); 2 usage
 * error or no GPU.
 */
#ifndef ARB_BENCH_H
#define ARB_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arb/backend.h"
#include "arb/cache.h"
#include "arb/engine.h"
#include "arb/kernels.h"
#include "arb/shapes.h"
#include "arb/status.h"

enum { BENCH_EXIT_OK = 0, BENCH_EXIT_FAIL = 1, BENCH_EXIT_USAGE = 2 };

/* The H100/H200 L2 is 50 MB: inputs are rotated over copies totalling at
 * least twice that, so a memory-bound kernel reads DRAM, not L2. */
#define BENCH_L2_BYTES (50.0 * 1000 * 1000)
#define BENCH_ROTATE_BYTES (2.0 * BENCH_L2_BYTES)
#define BENCH_MAX_COPIES 1024

/* Ceilings documented for the H100 (shared/device/README.md), used when the
 * run cannot measure its own: D2D copy 3.0 TB/s; cuBLAS at M=8192,
 * N=K=4096: fp32 50, tf32 310, bf16 650 TFLOP/s. */
#define BENCH_DOC_COPY_GBPS 3000.0
#define BENCH_DOC_FP32_TFLOPS 50.0
#define BENCH_DOC_TF32_TFLOPS 310.0
#define BENCH_DOC_BF16_TFLOPS 650.0

/* ---- options (options.c) ---------------------------------------------------- */

typedef enum bench_mode {
    BENCH_MODE_DEFAULT = 0, /* every kernel of the shapes, resolved configuration, with peers */
    BENCH_MODE_SWEEP = 1,   /* --sweep-blocks: every candidate, checked, timed, recorded */
    BENCH_MODE_JIT = 2,     /* --jit: compile / cache-hit / launch-overhead figures */
    BENCH_MODE_STEP = 3,    /* --step: one training step by kernel */
} bench_mode;

#define BENCH_MAX_GEMM 16

typedef struct bench_gemm_shape {
    int64_t M, N, K, gs;
} bench_gemm_shape;

typedef struct bench_options {
    bench_mode mode;
    int help, version, dry_run, quiet, no_record, no_peers, no_ceilings;
    const char *shapes_path; /* NULL: prewarm/shapes/base.txt, else the built-in base shapes */
    const char *kernel;      /* --kernel: one kernel (with --shape), or a filter */
    int has_shape;
    int64_t M, N, K, gs;     /* --shape */
    int has_variant;
    int32_t variant;         /* --variant */
    int has_blocks;
    arb_blocks blocks;       /* --blocks: measure exactly this configuration */
    int has_precision;
    arb_precision precision; /* --precision (default ARB_PRECISION) */
    bench_gemm_shape gemm[BENCH_MAX_GEMM];
    int n_gemm;              /* --gemm M N K gs, repeatable */
    const char *json_path, *csv_path, *plot_path;
    const char *cache_path;  /* --cache: the writable kernel cache */
    const char *step_config; /* --config for --step */
    int device;
    int min_repeats;         /* at least this many timed samples (20) */
    double min_ms;           /* and at least this much timed GPU time per measurement (50) */
    double warmup_ms;        /* untimed launches first (10) */
    long launches;           /* --jit: launches for the overhead figures (100000) */
    char command[1024];      /* the command line, for the JSON header */
} bench_options;

void bench_options_init(bench_options *o);

/* Parse argv. Returns 0, or BENCH_EXIT_USAGE with a one-line message in err. */
int bench_parse_args(int argc, char **argv, bench_options *o, char *err, size_t err_len);

/* The --help text. */
void bench_usage(FILE *out);

/* "M=1024,N=4096,K=4096,gs=64" <-> values. Keys M, N, K, gs (N, K, gs
 * default to 1). Returns 0 or -1 with a message. */
int bench_parse_shape(const char *text, int64_t *M, int64_t *N, int64_t *K, int64_t *gs, char *err,
                      size_t err_len);
void bench_format_shape(const arb_spec *spec, char *buf, size_t len);

/* "bm=128,bn=128,bk=8,tm=8,tn=8,warps=8,stages=1" <-> blocks. Missing keys
 * are 0. Returns 0 or -1 with a message. */
int bench_parse_blocks(const char *text, arb_blocks *out, char *err, size_t err_len);
void bench_format_blocks(const arb_blocks *b, char *buf, size_t len);
/* Short form for the table and plot: "128x128x8/8x8 w8", "tm8 w8", "w8". */
void bench_format_blocks_short(const arb_blocks *b, char *buf, size_t len);

/* The command that replays one measurement:
 * "arb-bench --kernel K --shape M=..,N=..,K=..,gs=.. --precision p [--variant v] --blocks ..." */
void bench_replay_command(const arb_spec *spec, char *buf, size_t len);

/* "ternary_fwd M=1024 N=4096 K=4096 gs=64 fp32" (+ " variant=3"): one plot
 * panel and one table group. */
void bench_group_name(const arb_spec *spec, char *buf, size_t len);

/* ---- the specs to measure (plan.c) ------------------------------------------ */

typedef struct bench_item {
    arb_spec spec; /* default blocks, or the pinned ones (exact) */
    int exact;     /* the blocks were pinned (shapes line or --blocks) */
    int line;      /* shapes.txt line, 0 when from flags */
} bench_item;

typedef struct bench_plan {
    bench_item *items;
    int count;
    char source[512]; /* where the shapes came from, for messages */
    char arch[16];    /* the target the plans were made for ("" when none) */
} bench_plan;

/* The built-in base shapes (SPEC §6 `base`: batch 1024, ctx 16, D 256,
 * H 4096, L 4, gs 64) in shapes.txt grammar. */
extern const char bench_builtin_shapes[];

/* The specs the options ask for: --gemm shapes, or --kernel with --shape,
 * or a shapes file (given, else prewarm/shapes/base.txt under
 * `source_dir` when present, else the built-in base shapes), filtered by
 * --kernel. `arch` is the target the trainer's plans are made for (ARB_ARCH
 * or the device's, e.g. "sm_90a"; NULL: none, so no arch-specific kernel):
 * shapes expand to what the trainer launches there, and --gemm lists the
 * fused ternary_fwd / ternary_grad_x plus the staged kernels where the
 * plan on `arch` is staged. ARB_ERR_PARSE etc. with the message in err. */
arb_status bench_plan_build(const bench_options *o, const char *source_dir, arb_precision prec,
                            const char *arch, bench_plan *plan, arb_err *err);
void bench_plan_free(bench_plan *plan);

/* The kernels an op ("ternary_fwd" or "ternary_grad_x") launches at this
 * shape and mode on target `arch` (NULL: none), as the jit backend plans
 * it, joined by '+' ("ternary_decode+act_split+tc_gemm"). Returns how many
 * (0 for another op or a mode the op lacks). */
int bench_op_plan(const char *op, int64_t M, int64_t N, int64_t K, int64_t gs, arb_precision prec,
                  const char *arch, char *buf, size_t len);

/* One candidate configuration of a spec. */
typedef struct bench_candidate {
    arb_blocks blocks;
    int is_default;   /* the kernel's default for this spec */
    int supported;    /* arb_spec_check passed */
    char reason[512]; /* why not, when !supported */
} bench_candidate;

/* Every candidate of the kernel's list, plus its default when the list
 * lacks it (first), each with the check's verdict. With `only` non-NULL,
 * just that configuration. Returns the count (<= max), -1 for an unknown
 * kernel. */
int bench_candidates(const arb_spec *spec, const arb_blocks *only, bench_candidate *out, int max);
#define BENCH_MAX_CANDIDATES 64

/* The spec of the trusted result every candidate of `spec` is compared
 * with: the kernel's default configuration in fp32, or, for a spec fp32
 * cannot run (a kernel or variant without it), the default configuration in
 * the spec's own mode. */
arb_spec bench_reference_spec(const arb_spec *spec);

/* --dry-run: every spec with its candidates and the check's verdicts. */
void bench_print_dry_run(FILE *out, const bench_options *o, const bench_plan *plan);

/* Copy text, truncating to the buffer (`a` then `b`; NULL counts as ""). */
void bench_copy(char *dst, size_t len, const char *src);

/* The row status of a failed compile or launch: "unsupported" (the kernel
 * refused the spec), "launch_failed" (a CUDA error) or "compile_failed". */
const char *bench_failure_status(arb_status st);
/* Whether a row status counts as a failure ("ok" and "unsupported" do not). */
int bench_status_is_failure(const char *status);
void bench_join(char *dst, size_t len, const char *a, const char *b);

/* ---- statistics (stats.c) ----------------------------------------------------- */

/* Monotonic host time in milliseconds (wall-clock intervals of the host). */
double bench_now_ms(void);

/* Percentile q in [0,1] of n values by linear interpolation between order
 * statistics (q = 0.5 is the median). Sorts `v` in place. NAN when n == 0. */
double bench_percentile(double *v, int n, double q);

/* How many launches one timed sample averages, from a rough time per
 * launch: enough that a sample lasts >= 100 us (events resolve ~0.5 us and
 * the launch gap stays small), at most 1000. */
int bench_launches_per_sample(double est_us);

/* How many samples: >= min_repeats and >= min_ms of GPU time in total, at
 * most 2000. */
int bench_sample_count(double sample_us, int min_repeats, double min_ms);

/* Copies of a working set of `bytes` so all copies total >= 2x L2 (at
 * least 1, at most BENCH_MAX_COPIES). */
int bench_copies_for(double bytes);

/* ---- data (data.c) ------------------------------------------------------------ */

/* splitmix64: a small, fast, reproducible generator. */
typedef struct bench_rng {
    uint64_t s;
} bench_rng;
uint64_t bench_rng_next(bench_rng *r);
/* Uniform in [lo, hi] (integers). */
int64_t bench_rng_int(bench_rng *r, int64_t lo, int64_t hi);
/* Uniform in [-1, 1), never exactly zero. */
float bench_rng_float(bench_rng *r);

/* T * 2^E of an N x K weight as dense fp32 (row-major N x K). */
void bench_dequantize(const uint8_t *packed, const int8_t *E, int64_t N, int64_t K, int64_t gs,
                      float *out);
/* fp32 -> bf16, round to nearest even (NaN kept quiet). */
uint16_t bench_bf16(float x);
float bench_bf16_to_float(uint16_t h);

/* ||a - b|| / ||b|| over n floats, in double. Non-finite values in `a`
 * where `b` is finite give INFINITY; ||b|| == 0 gives ||a||. */
double bench_rel_err(const float *a, const float *b, size_t n);

/* Byte-exact comparison of n elements of `elem` bytes. Returns -1 when
 * equal, else the first differing element index. */
int64_t bench_first_diff(const void *a, const void *b, size_t n, size_t elem);

/* float64 rows of y[M,N] = x[M,K] . W^T (W = T * 2^E) for the rows listed. */
void bench_ref_fwd_rows(const float *x, const float *W, int64_t N, int64_t K, const int64_t *rows,
                        int n_rows, double *out);
/* float64 rows of gx[M,K] = gy[M,N] . W. */
void bench_ref_grad_x_rows(const float *gy, const float *W, int64_t N, int64_t K,
                           const int64_t *rows, int n_rows, double *out);
/* float64 rows n of gW[N,K] = gy[M,N]^T . x[M,K]. */
void bench_ref_outer_rows(const float *gy, const float *x, int64_t M, int64_t N, int64_t K,
                          const int64_t *rows, int n_rows, double *out);
/* ||got - ref|| / ||ref|| of float rows against float64 ones. */
double bench_rel_err_rows(const float *got, int64_t row_len, const int64_t *rows, int n_rows,
                          const double *ref);

/* The SPEC §3 accuracy bound of a GEMM precision mode. */
double bench_tolerance(arb_precision prec);

/* ---- kernel parameter layouts (layout.c) --------------------------------------- */

/* BT_BF16: bf16 bit patterns (u16), the staged tensor-core operands. */
typedef enum bench_type { BT_F32, BT_I8, BT_U8, BT_I32, BT_I64, BT_U64, BT_BF16 } bench_type;

typedef enum bench_gen {
    GEN_ZERO,     /* all zero */
    GEN_FLOAT,    /* uniform [-1,1) * scale, never zero */
    GEN_SMALLINT, /* integers in [lo,hi] as floats: sums are exact in any order */
    GEN_INT,      /* integers in [lo,hi] (i8, i32, i64) */
    GEN_TRITS,    /* packed ternary, `count` trits uniform over {-1,0,1} */
    GEN_BYTES,    /* uniform bytes (u8) */
    GEN_CONST,    /* every element = lo */
    GEN_BF16,     /* bf16 bits (BT_BF16) of GEN_FLOAT values: valid tensor-core operands */
    GEN_BF16_INT, /* two-piece bf16 planes (BT_BF16) of integers in [lo,hi]: the first
                     half holds them (exact in bf16), the second (the lo piece) zeros */
} bench_gen;

typedef enum bench_role {
    ROLE_IN = 0,    /* read only */
    ROLE_OUT = 1,   /* written: poisoned with 0xFF before the check run */
    ROLE_STATE = 2, /* read and written: restored before the check run */
} bench_role;

typedef enum bench_cmp {
    CMP_NONE = 0,  /* not compared */
    CMP_EXACT = 1, /* byte-exact */
    CMP_REL = 2,   /* ||out - ref|| / ||ref|| <= tol (fp32) */
} bench_cmp;

typedef struct bench_buf {
    const char *name;  /* the template's parameter name */
    bench_type type;
    size_t count;      /* elements (trits for GEN_TRITS) */
    size_t bytes;      /* allocation */
    bench_role role;
    bench_gen gen;
    int64_t lo, hi;    /* generator range */
    double scale;      /* GEN_FLOAT */
    bench_cmp cmp;
    double tol;        /* CMP_REL */
} bench_buf;

typedef enum bench_arg_kind { ARG_BUF, ARG_I32, ARG_I64, ARG_U64 } bench_arg_kind;

typedef struct bench_arg {
    bench_arg_kind kind;
    int buf;           /* ARG_BUF: index into bufs */
    int64_t value;     /* scalars */
} bench_arg;

/* How a GEMM-shaped kernel maps to a dense cuBLAS GEMM (its peer). */
typedef enum bench_gemm_map {
    GEMM_NONE = 0,   /* memory-bound: the peer is a device copy of the same bytes */
    GEMM_FWD = 1,    /* y[M,N] = x[M,K] . W^T */
    GEMM_GRAD_X = 2, /* gx[M,K] = gy[M,N] . W */
    GEMM_OUTER = 3,  /* gW[N,K] = gy[M,N]^T . x[M,K] */
} bench_gemm_map;

#define BENCH_MAX_BUFS 12
#define BENCH_MAX_ARGS 16

typedef struct bench_layout {
    bench_buf bufs[BENCH_MAX_BUFS];
    int n_bufs;
    bench_arg args[BENCH_MAX_ARGS]; /* in the template's parameter order */
    int n_args;
    bench_gemm_map gemm;
    /* For GEMM peers and float64 checks: which buffers hold what (-1: none). */
    int buf_a;       /* x (FWD), gy (GRAD_X, OUTER) */
    int buf_b;       /* x (OUTER) */
    int buf_packed, buf_E;
    int buf_out;     /* y, gx or gW */
    double total_bytes; /* one copy of every buffer */
} bench_layout;

/* The layout of a spec's kernel: parameters in template order, buffers
 * with sizes, contents and how results are compared. ARB_ERR_NOT_FOUND for
 * a kernel without one. */
arb_status bench_layout_for(const arb_spec *spec, bench_layout *out, arb_err *err);

/* Generate a buffer's initial contents on the host (bytes of buf->bytes). */
void bench_fill(const bench_buf *buf, bench_rng *rng, void *host);

/* Compare a candidate's results (`got`, per buffer) with the trusted ones
 * (`ref`) for every buffer with a comparison: 0 when they agree, else -1
 * with the first disagreement in `reason` ("y: rel err 3e-4 > 2e-06 ...",
 * "s[17] = 1, the default configuration gives -1"). *rel_err gets the
 * largest relative error of the CMP_REL buffers (NAN when none). */
int bench_compare(const bench_layout *l, void *const *got, void *const *ref, double *rel_err,
                  char *reason, size_t len);

/* ---- result rows (report.c) ----------------------------------------------------- */

typedef struct bench_row {
    char kind[12];     /* "kernel", "peer", "ceiling", "jit", "step", "op" (a whole op,
                          --gemm: see report.c) */
    char name[48];     /* kernel stem, peer ("cublas_fp32", "cublas_tf32", "cublas_bf16",
                          "copy"), ceiling or jit figure name */
    char group[192];   /* table group / plot panel (bench_group_name), "" for ceilings */
    int has_spec;
    arb_spec spec;     /* kernel rows */
    char config[96];   /* "bm=..,bn=..,..." for kernel rows */
    char origin[12];   /* "default", "tuned", "nearest", "candidate", "" */
    int is_default;    /* this configuration is the kernel's default */
    int is_winner;     /* fastest ok candidate of its group (sweeps) */
    char status[16];   /* "ok", "wrong", "compile_failed", "launch_failed", "unsupported",
                          "unverified", "skipped" */
    char reason[512];  /* why not ok, "" when ok */
    double median_us, p20_us, p80_us; /* per launch; NAN when not timed */
    int repeats;       /* timed samples */
    int per_sample;    /* launches averaged per sample */
    char method[8];    /* "graph" (a captured batch), "stream" (plain launches) */
    double bytes, flops;    /* minimum work of one launch (kernels.h work()) */
    double gbps, tflops;    /* achieved: bytes / time, flops / time */
    double pct_ceiling;     /* roofline: max(bytes / copy rate, flops / GEMM peak) / time */
    char bound[8];          /* "memory" or "compute": which term of the roofline is larger */
    char peer[24];          /* the peer beside this row */
    double peer_us, peer_ratio; /* ratio = peer time / our time (> 1: we are faster) */
    double rel_err;         /* vs the trusted reference; NAN when exact or not compared */
    double value;           /* jit / ceiling rows: the figure */
    char unit[12];          /* its unit ("ms", "ns", "GB/s", "TFLOP/s") */
    char command[512];      /* replays this measurement */
} bench_row;

/* Fill a row with NANs, empty strings and zeros. */
void bench_row_init(bench_row *row);

typedef struct bench_ceilings {
    double copy_gbps;   /* device-to-device copy, read + write bytes per second */
    double fp32_tflops, tf32_tflops, bf16_tflops; /* cuBLAS at M=8192, N=K=4096 */
    int copy_measured;  /* 0: the documented figure */
    int blas_measured;
} bench_ceilings;

typedef struct bench_report {
    bench_row *rows;
    int count, cap;
    char mode[24];
    char command[1024];
    int has_device;
    char device[128];
    int sm_count, cc_major, cc_minor;
    double memory_bytes;
    char arch[16], driver[16], nvrtc[16], build[80];
    char cache[512];
    bench_ceilings ceil;
} bench_report;

void bench_report_init(bench_report *r, const char *mode, const char *command);
void bench_report_free(bench_report *r);
/* Append a copy; returns its index, or -1 when out of memory. */
int bench_report_add(bench_report *r, const bench_row *row);

/* Derived figures of a timed kernel row: gbps, tflops, pct_ceiling, bound. */
void bench_row_derive(bench_row *row, const bench_ceilings *c);

/* Mark the fastest ok row of each group as the winner. */
void bench_mark_winners(bench_report *r);

/* The aligned table (stdout). */
void bench_print_table(FILE *out, const bench_report *r);
/* After a sweep: per group, the winner and its speedup over the default. */
void bench_print_winners(FILE *out, const bench_report *r);

/* JSON (schema in report.c) and CSV (one header line, one line per row). */
arb_status bench_write_json(const bench_report *r, FILE *out);
arb_status bench_write_csv(const bench_report *r, FILE *out);
/* Open `path`, write, close; errors name the path. */
arb_status bench_write_json_file(const bench_report *r, const char *path, arb_err *err);
arb_status bench_write_csv_file(const bench_report *r, const char *path, arb_err *err);

/* A tuning-table row from a measured kernel row (strings point into `row`
 * and `r`). Returns 0, or -1 when the row's status is not recordable. */
int bench_tune_row_from(const bench_row *row, const bench_report *r, arb_tune_row *out);

/* ---- the plot (svg.c) ----------------------------------------------------------- */

/* One panel per group of kernel rows: a bar per candidate (median, p20-p80
 * whisker), the default outlined, the winner highlighted, failures marked.
 * Each candidate is one <g class="cand"> element. */
arb_status bench_write_svg(const bench_report *r, FILE *out);
arb_status bench_write_svg_file(const bench_report *r, const char *path, arb_err *err);

#endif /* ARB_BENCH_H */
