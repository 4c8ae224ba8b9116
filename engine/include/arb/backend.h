/*
 * backend.h - where ops run: the C reference on the CPU, or JIT-compiled
 * kernels on a CUDA GPU.
 *
 * Every op in ops.h takes an arb_backend. Memory passed to an op belongs to
 * that backend: host pointers for `cpu`, device pointers (CUdeviceptr values
 * carried in typed C pointers) for `jit`. Use the backend's own alloc, copy
 * and memset calls so the same trainer code drives both.
 *
 * Ops on `jit` are asynchronous on the backend's stream and never synchronize
 * the host; arb_backend_sync() and arb_backend_download() do. Ops on `cpu`
 * complete before they return.
 *
 * Errors: a backend keeps the first error's detail (arb_backend_errmsg) until
 * arb_backend_clear_error().
 */
#ifndef ARB_BACKEND_H
#define ARB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct arb_backend arb_backend;
typedef struct arb_engine arb_engine;

typedef enum arb_backend_kind {
    ARB_BACKEND_AUTO = 0, /* jit when a driver and a device are present, else cpu */
    ARB_BACKEND_CPU  = 1, /* the C reference (engine/src/cpu) */
    ARB_BACKEND_JIT  = 2, /* NVRTC-specialized kernels through the CUDA driver */
} arb_backend_kind;

/* Precision modes of the GEMM kernels (SPEC §3 accuracy, issue 9). Each is a
 * field of the kernel key: kernels of two modes never share a cache entry. */
typedef enum arb_precision {
    ARB_PREC_FP32   = 0, /* SIMT fp32 FMA: rel. error <= 2e-6 */
    ARB_PREC_TF32   = 1, /* tensor cores, tf32 activations: <= 1e-3 */
    ARB_PREC_BF16   = 2, /* tensor cores, one bf16 piece: <= 1e-2 */
    ARB_PREC_BF16X2 = 3, /* tensor cores, activations split in two bf16 pieces: <= 1e-5 */
    ARB_PREC_BF16X3 = 4, /* three bf16 pieces, partial sums promoted to fp32: <= 2e-6 */
    ARB_PREC_COUNT
} arb_precision;

/* "fp32", "tf32", "bf16", "bf16x2", "bf16x3". */
const char *arb_precision_name(arb_precision prec);
/* Parse a precision name; ARB_ERR_PARSE on an unknown name. */
arb_status arb_precision_parse(const char *name, arb_precision *out, arb_err *err);

/* "auto", "cpu", "jit". */
const char *arb_backend_kind_name(arb_backend_kind kind);
arb_status arb_backend_kind_parse(const char *name, arb_backend_kind *out, arb_err *err);

typedef struct arb_backend_options {
    arb_backend_kind kind;   /* ARB_BACKEND_AUTO picks, and says why in `why` */
    arb_engine *engine;      /* jit: engine to use (borrowed); NULL opens a default one */
    int device;              /* jit: CUDA device ordinal */
    arb_precision precision; /* jit: mode of ternary_fwd / ternary_grad_x */
    int threads;             /* cpu: worker threads, 0 = all cores */
} arb_backend_options;

/* Defaults: auto, device 0, fp32, all cores. */
void arb_backend_options_init(arb_backend_options *opt);

/* Open a backend. With kind AUTO, `why` (may be NULL, 256 bytes) receives a
 * sentence saying which backend was chosen and why. */
arb_status arb_backend_open(arb_backend **out, const arb_backend_options *opt, char *why,
                            size_t why_len, arb_err *err);
void arb_backend_close(arb_backend *be);

arb_backend_kind arb_backend_kind_of(const arb_backend *be);
arb_engine *arb_backend_engine(arb_backend *be); /* jit only, else NULL */
arb_precision arb_backend_precision(const arb_backend *be);

/* First error recorded on this backend, or "" if none. */
const char *arb_backend_errmsg(const arb_backend *be);
arb_status arb_backend_status(const arb_backend *be);
void arb_backend_clear_error(arb_backend *be);

/* Memory of the backend. alloc zero-fills nothing; free(NULL) is a no-op. */
arb_status arb_backend_alloc(arb_backend *be, size_t bytes, void **ptr);
void arb_backend_free(arb_backend *be, void *ptr);
arb_status arb_backend_upload(arb_backend *be, void *dst, const void *host_src, size_t bytes);
arb_status arb_backend_download(arb_backend *be, void *host_dst, const void *src, size_t bytes);
arb_status arb_backend_copy(arb_backend *be, void *dst, const void *src, size_t bytes);
arb_status arb_backend_memset(arb_backend *be, void *ptr, int byte, size_t bytes);
/* Wait for all queued work; reports an asynchronous kernel fault, if any. */
arb_status arb_backend_sync(arb_backend *be);

/* CUDA graphs (jit only; cpu returns ARB_ERR_UNSUPPORTED): capture the ops
 * issued between begin and end once, then replay them. Shapes and pointers
 * are frozen into the graph. */
arb_status arb_backend_graph_begin(arb_backend *be);
arb_status arb_backend_graph_end(arb_backend *be);
arb_status arb_backend_graph_launch(arb_backend *be);
int arb_backend_graph_ready(const arb_backend *be);

/* Per-op timing (jit: CUDA events around each launch, read at sync). When
 * enabled, ops record into a table that arb_backend_profile_* reads. */
typedef struct arb_profile_row {
    const char *kernel; /* kernel stem, e.g. "ternary_fwd" */
    int64_t launches;
    double ms;          /* total GPU time */
} arb_profile_row;
arb_status arb_backend_profile_enable(arb_backend *be, int on);
int arb_backend_profile_rows(arb_backend *be, arb_profile_row *rows, int max_rows);
void arb_backend_profile_reset(arb_backend *be);

#ifdef __cplusplus
}
#endif
#endif /* ARB_BACKEND_H */
