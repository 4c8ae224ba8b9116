/*
 * gpu.c - the stream and event pool every measurement uses, checked driver
 * calls, and rotated buffer sets.
 *
 * Rotation: a kernel whose working set fits the 50 MB L2 would be timed
 * out of L2 if it ran on the same buffers every launch. Each set holds
 * enough copies of all of a kernel's buffers to total >= 100 MB (2x L2) and
 * consecutive launches use consecutive copies, so every launch reads DRAM,
 * as in training where the previous layer's output evicts the weights.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gpu.h"

#define ALIGN 256
#define MEM_RESERVE ((size_t)1 << 30) /* left free for cuBLAS workspaces and the engine */
#define EVENT_POOL 2048

static int sticky(CUresult rc)
{
    switch (rc) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_ECC_UNCORRECTABLE:
    case CUDA_ERROR_CONTEXT_IS_DESTROYED:
        return 1;
    default:
        return 0;
    }
}

arb_status bench_cu_fail(bench_gpu *g, CUresult rc, const char *call, const char *what,
                         arb_err *err)
{
    char text[256];
    arb_cuda_error_text(g->cu, rc, text, sizeof(text));
    if (sticky(rc) && !g->context_lost) {
        g->context_lost = 1;
        snprintf(g->lost_reason, sizeof(g->lost_reason), "%s (%s): %s", call, what ? what : "",
                 text);
    }
    return ARB_FAIL(err, ARB_ERR_CUDA, "%s (%s): %s", call, what ? what : "", text);
}

#define CU(g, expr, call, what, err)                                                               \
    do {                                                                                           \
        CUresult rc_ = (expr);                                                                     \
        if (rc_ != CUDA_SUCCESS)                                                                   \
            return bench_cu_fail((g), rc_, (call), (what), (err));                                 \
    } while (0)

arb_status bench_gpu_init(bench_gpu *g, arb_engine *engine, const bench_options *opt,
                          arb_err *err)
{
    g->engine = engine;
    g->cu = arb_engine_cuda(engine);
    g->info = arb_engine_device(engine);
    g->opt = opt;
    if (!g->cu || !g->info)
        return ARB_FAIL(err, ARB_ERR_NO_DEVICE, "the engine has no GPU");
    CU(g, g->cu->CtxSetCurrent(arb_engine_context(engine)), "cuCtxSetCurrent", "opening", err);
    CU(g, g->cu->StreamCreate(&g->stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate", "opening",
       err);
    g->events = calloc(EVENT_POOL, sizeof(*g->events));
    if (!g->events)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory for CUDA events");
    for (int i = 0; i < EVENT_POOL; i++) {
        CU(g, g->cu->EventCreate(&g->events[i], CU_EVENT_DEFAULT), "cuEventCreate", "opening",
           err);
        g->n_events = i + 1;
    }
    return ARB_OK;
}

void bench_gpu_close(bench_gpu *g)
{
    if (!g->cu)
        return;
    if (g->stream)
        g->cu->StreamSynchronize(g->stream);
    for (int i = 0; i < g->n_events; i++)
        g->cu->EventDestroy(g->events[i]);
    free(g->events);
    g->events = NULL;
    g->n_events = 0;
    if (g->stream)
        g->cu->StreamDestroy(g->stream);
    g->stream = NULL;
}

static size_t align_up(size_t x) { return (x + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

arb_status bench_dset_alloc(bench_gpu *g, const size_t *bytes, int n, int copies, bench_dset *s,
                            const char *what, arb_err *err)
{
    memset(s, 0, sizeof(*s));
    if (n > BENCH_MAX_BUFS)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s: too many buffers", what);
    size_t stride = 0;
    for (int b = 0; b < n; b++) {
        s->offset[b] = stride;
        s->bytes[b] = bytes[b];
        stride += align_up(bytes[b] ? bytes[b] : 1);
    }
    s->n = n;
    s->stride = stride;
    size_t free_bytes = 0, total = 0;
    CU(g, g->cu->MemGetInfo(&free_bytes, &total), "cuMemGetInfo", what, err);
    size_t usable = free_bytes > MEM_RESERVE ? free_bytes - MEM_RESERVE : free_bytes / 2;
    if (copies < 1)
        copies = 1;
    if ((size_t)copies * stride > usable)
        copies = (int)(usable / stride);
    if (copies < 1)
        return ARB_FAIL(err, ARB_ERR_UNSUPPORTED,
                        "%s needs %.2f GiB of device memory for one copy of its buffers; %.2f GiB "
                        "of %.2f GiB is free",
                        what, (double)stride / (1 << 30), (double)free_bytes / (1 << 30),
                        (double)total / (1 << 30));
    CUresult rc = g->cu->MemAlloc(&s->base, (size_t)copies * stride);
    while (rc == CUDA_ERROR_OUT_OF_MEMORY && copies > 1) { /* fragmentation: ask for less */
        copies /= 2;
        rc = g->cu->MemAlloc(&s->base, (size_t)copies * stride);
    }
    if (rc != CUDA_SUCCESS) {
        char call[96];
        snprintf(call, sizeof(call), "cuMemAlloc(%.3f GiB)",
                 (double)copies * (double)stride / (1 << 30));
        s->base = 0;
        return bench_cu_fail(g, rc, call, what, err);
    }
    s->copies = copies;
    return ARB_OK;
}

void bench_dset_free(bench_gpu *g, bench_dset *s)
{
    if (s->base)
        g->cu->MemFree(s->base);
    s->base = 0;
    s->copies = 0;
}

CUdeviceptr bench_dset_ptr(const bench_dset *s, int copy, int buf)
{
    return s->base + (CUdeviceptr)((size_t)(copy % s->copies) * s->stride + s->offset[buf]);
}

arb_status bench_dset_upload(bench_gpu *g, const bench_dset *s, int copy, int buf,
                             const void *host, const char *what, arb_err *err)
{
    CU(g, g->cu->MemcpyHtoDAsync(bench_dset_ptr(s, copy, buf), host, s->bytes[buf], g->stream),
       "cuMemcpyHtoDAsync", what, err);
    CU(g, g->cu->StreamSynchronize(g->stream), "cuStreamSynchronize after an upload", what, err);
    return ARB_OK;
}

arb_status bench_dset_replicate(bench_gpu *g, const bench_dset *s, const char *what, arb_err *err)
{
    for (int c = 1; c < s->copies; c++)
        CU(g,
           g->cu->MemcpyDtoDAsync(s->base + (CUdeviceptr)((size_t)c * s->stride), s->base,
                                  s->stride, g->stream),
           "cuMemcpyDtoDAsync (replicating inputs)", what, err);
    CU(g, g->cu->StreamSynchronize(g->stream), "cuStreamSynchronize after replicating", what, err);
    return ARB_OK;
}

arb_status bench_download(bench_gpu *g, void *host, CUdeviceptr src, size_t bytes,
                          const char *what, arb_err *err)
{
    CU(g, g->cu->MemcpyDtoHAsync(host, src, bytes, g->stream), "cuMemcpyDtoHAsync", what, err);
    CU(g, g->cu->StreamSynchronize(g->stream), "cuStreamSynchronize after a download", what, err);
    return ARB_OK;
}

arb_status bench_sync(bench_gpu *g, const char *what, arb_err *err)
{
    CU(g, g->cu->StreamSynchronize(g->stream), "cuStreamSynchronize", what, err);
    return ARB_OK;
}
