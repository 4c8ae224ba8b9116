/*
 * shapes.h - shapes.txt (SPEC §5): the production shapes a run needs, and
 * their expansion into kernel specializations.
 *
 * Grammar (one shape per line; '#' starts a comment; blank lines ignored;
 * fields separated by spaces or tabs; keys are case-sensitive):
 *
 *   linear  M=<n> N=<n> K=<n> gs=<n> [update=grad|sign|step|none] [precision=<mode>]
 *   rmsnorm M=<n> D=<n> gs=<n>
 *   embed   M=<n> V=<n> D=<n> gs=<n> [update=grad|sign|step|none]
 *   kernel=<stem> M=<n> [N=<n>] [K=<n>] [gs=<n>] [variant=<n>] [precision=<mode>]
 *           [bm=<n> bn=<n> bk=<n> tm=<n> tn=<n> warps=<n> stages=<n>]
 *
 * `linear` is a layer y = x W^T with W: N x K and batch M; `embed` a V x D
 * table with M lookups per step. `update` says which update the trainer runs
 * on the weight: grad (T step, then E with the grad score: the default),
 * sign (E with the sign score), step (T only, E frozen), none (no update).
 * `precision` defaults to the run's (ARB_PRECISION). An explicit `kernel=`
 * line names one specialization; N, K, gs default to 1; giving any block key
 * pins the configuration (all seven must then be given), else the tuned or
 * default one is used. A `kernel=` line without precision takes the run's
 * when the kernel has that mode, else fp32 (as the plans do for non-GEMM
 * kernels). <n> is a decimal integer in 1..2^31-1 (variant and the block
 * keys: 0..2^31-1, since kernels leave unused block fields 0). A line is at
 * most 4096 bytes, a file at most 16 MiB; CRLF line ends are accepted.
 *
 * Errors name the place as `file:line:column: expected ..., got ...`
 * (1-based; GNU style): unknown ops and keys, missing or repeated keys,
 * malformed or out-of-range numbers, a gs that does not fit K, an unknown
 * kernel or precision, and a block configuration the kernel rejects.
 * Duplicate shapes are kept once.
 */
#ifndef ARB_SHAPES_H
#define ARB_SHAPES_H

#include <stddef.h>
#include <stdint.h>

#include "arb/backend.h"
#include "arb/kernels.h"
#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum arb_shape_op {
    ARB_SHAPE_LINEAR = 0,
    ARB_SHAPE_RMSNORM = 1,
    ARB_SHAPE_EMBED = 2,
    ARB_SHAPE_KERNEL = 3,
} arb_shape_op;

typedef enum arb_shape_update {
    ARB_UPDATE_GRAD = 0, /* T step, E step with the grad score (default) */
    ARB_UPDATE_SIGN = 1, /* T step, E step with the sign score */
    ARB_UPDATE_STEP = 2, /* T step only */
    ARB_UPDATE_NONE = 3, /* no update */
} arb_shape_update;

typedef struct arb_shape_line {
    arb_shape_op op;
    int line;                         /* 1-based line number in the file */
    char kernel[ARB_KERNEL_NAME_MAX]; /* ARB_SHAPE_KERNEL only */
    int64_t M, N, K, gs;              /* linear: M N K gs; kernel: M N K gs */
    int64_t V, D;                     /* embed: V D; rmsnorm: D */
    arb_shape_update update;          /* linear, embed */
    int has_precision;
    arb_precision precision;
    int32_t variant;                  /* kernel */
    int has_blocks;                   /* kernel: all seven block keys given */
    arb_blocks blocks;
} arb_shape_line;

typedef struct arb_shapes {
    arb_shape_line *lines;
    int count;
    int capacity;
    char *file; /* name used in messages (malloc'ed; NULL: "shapes.txt") */
} arb_shapes;

/* Parse shapes text; `filename` is used in messages. All lines must parse:
 * on an error *out is left empty and err says where and why (ARB_ERR_PARSE);
 * its message holds up to 20 errors, one per line, the first one first. */
arb_status arb_shapes_parse(const char *text, size_t len, const char *filename, arb_shapes *out,
                            arb_err *err);

/* Read and parse a file (at most 16 MiB). */
arb_status arb_shapes_load(const char *path, arb_shapes *out, arb_err *err);

void arb_shapes_free(arb_shapes *shapes);

/* One kernel specialization a shape needs. `exact` is set when the line
 * pinned its blocks; otherwise the blocks are the kernel's default, to be
 * replaced by the tuned ones (arb_engine_resolve_blocks). */
typedef struct arb_expanded {
    arb_spec spec;
    int exact;
    int line; /* the shapes.txt line it came from */
} arb_expanded;

/* Expand every line through the plans in kernels.h (exactly the kernels the
 * trainer launches for it on target `arch`, e.g. arb_engine_arch; NULL: no
 * arch-specific kernels), removing duplicates (first occurrence kept).
 * `*out` is malloc'ed; free it with free(). */
arb_status arb_shapes_expand(const arb_shapes *shapes, arb_precision default_precision,
                             const char *arch, arb_expanded **out, int *count, arb_err *err);

/* Remove later duplicates (same spec and exact flag) in place, keeping the
 * order of first occurrences (arb-prewarm calls it again after resolving
 * tuned blocks). */
arb_status arb_expanded_dedupe(arb_expanded *items, int *count, arb_err *err);

/* Write one line in the grammar above (no newline) for a parsed line. */
void arb_shape_line_format(const arb_shape_line *line, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* ARB_SHAPES_H */
