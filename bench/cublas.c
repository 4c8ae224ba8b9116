/*
 * cublas.c - the dense peers: cuBLAS loaded at run time with
 * dlopen("libcublas.so.13"), like the driver, so arb-bench starts (and
 * --dry-run works) where cuBLAS is missing; peers are then skipped with the
 * reason.
 *
 * Modes: fp32 = cublasSgemm with the default math mode (SIMT fp32); tf32 =
 * cublasGemmEx with CUBLAS_COMPUTE_32F_FAST_TF32 on fp32 data; bf16 =
 * cublasGemmEx on bf16 A and B with fp32 output and CUBLAS_COMPUTE_32F.
 * Types and enums come from the toolkit's headers; no symbol is linked.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_api.h>

#include "bench_gpu.h"

typedef cublasStatus_t (*create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*set_stream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*set_math_fn)(cublasHandle_t, cublasMath_t);
typedef cublasStatus_t (*sgemm_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                   int, const float *, const float *, int, const float *, int,
                                   const float *, float *, int);
typedef cublasStatus_t (*gemm_ex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                     int, int, const void *, const void *, cudaDataType, int,
                                     const void *, cudaDataType, int, const void *, void *,
                                     cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
typedef const char *(*status_string_fn)(cublasStatus_t);

struct bench_cublas {
    void *lib;
    cublasHandle_t handle;
    create_fn create;
    destroy_fn destroy;
    set_stream_fn set_stream;
    set_math_fn set_math;
    sgemm_fn sgemm;
    gemm_ex_fn gemm_ex;
    status_string_fn status_string; /* optional */
};

static const char *status_text(const bench_cublas *b, cublasStatus_t s, char *buf, size_t len)
{
    const char *text = b && b->status_string ? b->status_string(s) : NULL;
    snprintf(buf, len, "cuBLAS status %d%s%s", (int)s, text ? ": " : "", text ? text : "");
    return buf;
}

static void *resolve(void *lib, const char *name, int required, char *missing, size_t len)
{
    void *sym = dlsym(lib, name);
    if (!sym && required && !missing[0])
        snprintf(missing, len, "%s", name);
    return sym;
}

arb_status bench_cublas_open(CUstream stream, bench_cublas **out, arb_err *err)
{
    *out = NULL;
    static const char *const names[] = {"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13",
                                        "libcublas.so"};
    void *lib = NULL;
    const char *why = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !lib; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib && !why)
            why = dlerror();
    }
    if (!lib)
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND,
                        "cannot load cuBLAS (libcublas.so.13: %s); add /usr/local/cuda/lib64 to "
                        "LD_LIBRARY_PATH",
                        why ? why : "not found");
    bench_cublas *b = calloc(1, sizeof(*b));
    if (!b) {
        dlclose(lib);
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory loading cuBLAS");
    }
    b->lib = lib;
    char missing[64] = "";
    void *p;
#define RESOLVE(field, name, required)                                                             \
    p = resolve(lib, name, required, missing, sizeof(missing));                                    \
    memcpy(&b->field, &p, sizeof(p));
    RESOLVE(create, "cublasCreate_v2", 1);
    RESOLVE(destroy, "cublasDestroy_v2", 1);
    RESOLVE(set_stream, "cublasSetStream_v2", 1);
    RESOLVE(set_math, "cublasSetMathMode", 1);
    RESOLVE(sgemm, "cublasSgemm_v2", 1);
    RESOLVE(gemm_ex, "cublasGemmEx", 1);
    RESOLVE(status_string, "cublasGetStatusString", 0);
#undef RESOLVE
    if (missing[0]) {
        bench_cublas_close(b);
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND, "libcublas.so.13 lacks %s", missing);
    }
    char text[160];
    cublasStatus_t s = b->create(&b->handle);
    if (s != CUBLAS_STATUS_SUCCESS) {
        b->handle = NULL;
        bench_cublas_close(b);
        return ARB_FAIL(err, ARB_ERR_CUDA, "cublasCreate: %s",
                        status_text(NULL, s, text, sizeof(text)));
    }
    s = b->set_stream(b->handle, (cudaStream_t)stream);
    const char *call = "cublasSetStream";
    /* Every mode runs in the default math mode (tf32 is asked for by the
     * compute type of cublasGemmEx): set once, not on every timed call. */
    if (s == CUBLAS_STATUS_SUCCESS) {
        s = b->set_math(b->handle, CUBLAS_DEFAULT_MATH);
        call = "cublasSetMathMode";
    }
    if (s != CUBLAS_STATUS_SUCCESS) {
        arb_status st =
            ARB_FAIL(err, ARB_ERR_CUDA, "%s: %s", call, status_text(b, s, text, sizeof(text)));
        bench_cublas_close(b);
        return st;
    }
    *out = b;
    return ARB_OK;
}

void bench_cublas_close(bench_cublas *b)
{
    if (!b)
        return;
    if (b->handle && b->destroy)
        b->destroy(b->handle);
    if (b->lib)
        dlclose(b->lib);
    free(b);
}

const char *bench_blas_name(bench_blas_mode mode)
{
    switch (mode) {
    case BLAS_TF32: return "cublas_tf32";
    case BLAS_BF16: return "cublas_bf16";
    default: return "cublas_fp32";
    }
}

arb_status bench_cublas_gemm(bench_gpu *g, bench_blas_mode mode, int ta, int tb, int m, int n,
                             int k, CUdeviceptr A, int lda, CUdeviceptr B, int ldb, CUdeviceptr C,
                             int ldc, const char *what, arb_err *err)
{
    bench_cublas *b = g->blas;
    if (!b)
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND, "cuBLAS is not loaded: %s", g->blas_error);
    const float one = 1.0f, zero = 0.0f;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const void *pa = (const void *)(uintptr_t)A, *pb = (const void *)(uintptr_t)B;
    void *pc = (void *)(uintptr_t)C;
    cublasStatus_t s;
    const char *call;
    if (mode == BLAS_FP32) {
        call = "cublasSgemm";
        s = b->sgemm(b->handle, opa, opb, m, n, k, &one, pa, lda, pb, ldb, &zero, pc, ldc);
    } else {
        int tf32 = mode == BLAS_TF32;
        cudaDataType in = tf32 ? CUDA_R_32F : CUDA_R_16BF;
        call = tf32 ? "cublasGemmEx (tf32)" : "cublasGemmEx (bf16)";
        s = b->gemm_ex(b->handle, opa, opb, m, n, k, &one, pa, in, lda, pb, in, ldb, &zero, pc,
                       CUDA_R_32F, ldc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT);
    }
    if (s != CUBLAS_STATUS_SUCCESS) {
        char text[160];
        return ARB_FAIL(err, ARB_ERR_CUDA, "%s m=%d n=%d k=%d (%s): %s", call, m, n, k,
                        what ? what : "", status_text(b, s, text, sizeof(text)));
    }
    return ARB_OK;
}
