/*
 * jit_backend.c - the jit backend's stream, memory, graphs and profiling,
 * and the launch helper every jit op goes through.
 *
 * Nothing here synchronizes the host except sync, download and profiling
 * reads: ops queue work on the backend's stream and return.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit_internal.h"

#define DPTR(p) ((CUdeviceptr)(uintptr_t)(p))

arb_status arb_jit_cuda_fail(arb_backend *be, CUresult rc, const char *what)
{
    char text[256];
    arb_cuda_error_text(be->jit ? be->jit->cu : NULL, rc, text, sizeof(text));
    return ARB_BE_FAIL(be, ARB_ERR_CUDA, "%s: %s", what, text);
}

arb_status arb_jit_open(arb_backend *be, const arb_backend_options *opt)
{
    arb_jit_state *j = calloc(1, sizeof(*j));
    if (!j)
        return ARB_BE_FAIL(be, ARB_ERR_NOMEM, "out of memory opening the jit backend");
    be->jit = j;
    arb_status st = ARB_OK;
    if (opt->engine) {
        j->engine = opt->engine;
    } else {
        arb_engine_options eopt;
        arb_engine_options_init(&eopt);
        eopt.device = opt->device;
        st = arb_engine_open(&j->engine, &eopt, &be->err);
        if (st)
            goto fail;
        j->owns_engine = 1;
    }
    j->cu = arb_engine_cuda(j->engine);
    if (!j->cu) {
        st = ARB_BE_FAIL(be, ARB_ERR_NO_DEVICE,
                         "the engine was opened compile-only; the jit backend needs a GPU");
        goto fail;
    }
    j->cu->CtxSetCurrent(arb_engine_context(j->engine));
    CUresult rc = j->cu->StreamCreate(&j->stream, CU_STREAM_NON_BLOCKING);
    if (rc != CUDA_SUCCESS) {
        st = arb_jit_cuda_fail(be, rc, "cuStreamCreate");
        goto fail;
    }
    return ARB_OK;
fail:
    arb_jit_close(be);
    return st;
}

void arb_jit_close(arb_backend *be)
{
    arb_jit_state *j = be->jit;
    if (!j)
        return;
    if (j->cu) {
        j->cu->CtxSetCurrent(arb_engine_context(j->engine));
        if (j->stream)
            j->cu->StreamSynchronize(j->stream);
        for (int i = 0; i < j->n_pending; i++) {
            j->cu->EventDestroy(j->pending[i].start);
            j->cu->EventDestroy(j->pending[i].end);
        }
        if (j->graph_exec)
            j->cu->GraphExecDestroy(j->graph_exec);
        if (j->graph)
            j->cu->GraphDestroy(j->graph);
        if (j->scratch)
            j->cu->MemFree(j->scratch);
        if (j->stream)
            j->cu->StreamDestroy(j->stream);
    }
    if (j->owns_engine)
        arb_engine_close(j->engine);
    free(j);
    be->jit = NULL;
}

arb_engine *arb_backend_engine(arb_backend *be)
{
    return be->kind == ARB_BACKEND_JIT && be->jit ? be->jit->engine : NULL;
}

arb_status arb_jit_alloc(arb_backend *be, size_t bytes, void **ptr)
{
    CUdeviceptr d = 0;
    CUresult rc = be->jit->cu->MemAlloc(&d, bytes);
    if (rc != CUDA_SUCCESS) {
        char what[96];
        snprintf(what, sizeof(what), "cuMemAlloc(%zu bytes)", bytes);
        return arb_jit_cuda_fail(be, rc, what);
    }
    *ptr = (void *)(uintptr_t)d;
    return ARB_OK;
}

void arb_jit_free(arb_backend *be, void *ptr) { be->jit->cu->MemFree(DPTR(ptr)); }

arb_status arb_jit_upload(arb_backend *be, void *dst, const void *src, size_t bytes)
{
    CUresult rc = be->jit->cu->MemcpyHtoDAsync(DPTR(dst), src, bytes, be->jit->stream);
    if (rc == CUDA_SUCCESS) /* pageable source: wait so the caller may reuse it */
        rc = be->jit->cu->StreamSynchronize(be->jit->stream);
    return rc == CUDA_SUCCESS ? ARB_OK : arb_jit_cuda_fail(be, rc, "upload (cuMemcpyHtoD)");
}

arb_status arb_jit_download(arb_backend *be, void *dst, const void *src, size_t bytes)
{
    CUresult rc = be->jit->cu->MemcpyDtoHAsync(dst, DPTR(src), bytes, be->jit->stream);
    if (rc == CUDA_SUCCESS)
        rc = be->jit->cu->StreamSynchronize(be->jit->stream);
    return rc == CUDA_SUCCESS ? ARB_OK : arb_jit_cuda_fail(be, rc, "download (cuMemcpyDtoH)");
}

arb_status arb_jit_copy(arb_backend *be, void *dst, const void *src, size_t bytes)
{
    CUresult rc = be->jit->cu->MemcpyDtoDAsync(DPTR(dst), DPTR(src), bytes, be->jit->stream);
    return rc == CUDA_SUCCESS ? ARB_OK : arb_jit_cuda_fail(be, rc, "cuMemcpyDtoDAsync");
}

arb_status arb_jit_memset(arb_backend *be, void *ptr, int byte, size_t bytes)
{
    CUresult rc = be->jit->cu->MemsetD8Async(DPTR(ptr), (unsigned char)byte, bytes, be->jit->stream);
    return rc == CUDA_SUCCESS ? ARB_OK : arb_jit_cuda_fail(be, rc, "cuMemsetD8Async");
}

arb_status arb_jit_sync(arb_backend *be)
{
    CUresult rc = be->jit->cu->StreamSynchronize(be->jit->stream);
    return rc == CUDA_SUCCESS ? ARB_OK
                              : arb_jit_cuda_fail(be, rc, "a kernel failed (cuStreamSynchronize)");
}

arb_status arb_jit_scratch(arb_backend *be, size_t bytes, CUdeviceptr *out)
{
    arb_jit_state *j = be->jit;
    if (bytes > j->scratch_bytes) {
        if (j->capturing)
            return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG,
                               "scratch memory must grow during graph capture: run the step "
                               "once before capturing it");
        if (j->scratch) {
            j->cu->StreamSynchronize(j->stream);
            j->cu->MemFree(j->scratch);
            j->scratch = 0;
            j->scratch_bytes = 0;
        }
        CUresult rc = j->cu->MemAlloc(&j->scratch, bytes);
        if (rc != CUDA_SUCCESS)
            return arb_jit_cuda_fail(be, rc, "cuMemAlloc (scratch)");
        j->scratch_bytes = bytes;
    }
    *out = j->scratch;
    return ARB_OK;
}

/* ---- graphs ----------------------------------------------------------------- */

arb_status arb_jit_graph_begin(arb_backend *be)
{
    arb_jit_state *j = be->jit;
    if (j->graph_exec) {
        j->cu->GraphExecDestroy(j->graph_exec);
        j->graph_exec = NULL;
    }
    if (j->graph) {
        j->cu->GraphDestroy(j->graph);
        j->graph = NULL;
    }
    CUresult rc = j->cu->StreamBeginCapture(j->stream, CU_STREAM_CAPTURE_MODE_RELAXED);
    if (rc != CUDA_SUCCESS)
        return arb_jit_cuda_fail(be, rc, "cuStreamBeginCapture");
    j->capturing = 1;
    return ARB_OK;
}

arb_status arb_jit_graph_end(arb_backend *be)
{
    arb_jit_state *j = be->jit;
    j->capturing = 0;
    CUresult rc = j->cu->StreamEndCapture(j->stream, &j->graph);
    if (rc != CUDA_SUCCESS)
        return arb_jit_cuda_fail(be, rc, "cuStreamEndCapture");
    rc = j->cu->GraphInstantiate(&j->graph_exec, j->graph, 0);
    if (rc != CUDA_SUCCESS)
        return arb_jit_cuda_fail(be, rc, "cuGraphInstantiate");
    return ARB_OK;
}

arb_status arb_jit_graph_launch(arb_backend *be)
{
    arb_jit_state *j = be->jit;
    if (!j->graph_exec)
        return ARB_BE_FAIL(be, ARB_ERR_INVALID_ARG, "no graph captured");
    CUresult rc = j->cu->GraphLaunch(j->graph_exec, j->stream);
    return rc == CUDA_SUCCESS ? ARB_OK : arb_jit_cuda_fail(be, rc, "cuGraphLaunch");
}

int arb_jit_graph_ready(const arb_backend *be) { return be->jit->graph_exec != NULL; }

void *arb_jit_stream(arb_backend *be) { return be->jit->stream; }

/* ---- profiling -------------------------------------------------------------- */

arb_status arb_jit_profile_enable(arb_backend *be, int on)
{
    be->jit->profiling = on != 0;
    return ARB_OK;
}

static void profile_drain(arb_backend *be)
{
    arb_jit_state *j = be->jit;
    if (j->n_pending == 0)
        return;
    j->cu->StreamSynchronize(j->stream);
    for (int i = 0; i < j->n_pending; i++) {
        float ms = 0.0f;
        if (j->cu->EventElapsedTime(&ms, j->pending[i].start, j->pending[i].end) == CUDA_SUCCESS)
            j->slots[j->pending[i].slot].ms += ms;
        j->cu->EventDestroy(j->pending[i].start);
        j->cu->EventDestroy(j->pending[i].end);
    }
    j->n_pending = 0;
}

int arb_jit_profile_rows(arb_backend *be, arb_profile_row *rows, int max_rows)
{
    arb_jit_state *j = be->jit;
    profile_drain(be);
    int n = 0;
    for (int i = 0; i < j->n_slots && n < max_rows; i++, n++) {
        rows[n].kernel = j->slots[i].kernel;
        rows[n].launches = j->slots[i].launches;
        rows[n].ms = j->slots[i].ms;
    }
    return n;
}

void arb_jit_profile_reset(arb_backend *be)
{
    arb_jit_state *j = be->jit;
    profile_drain(be);
    j->n_slots = 0;
}

static int profile_slot(arb_jit_state *j, const char *kernel)
{
    const arb_kernel_def *def = arb_kernel_find(kernel);
    const char *name = def ? def->name : "other";
    for (int i = 0; i < j->n_slots; i++)
        if (j->slots[i].kernel == name)
            return i;
    if (j->n_slots == ARB_PROFILE_MAX_KERNELS)
        return -1;
    j->slots[j->n_slots] = (arb_profile_slot){name, 0, 0.0};
    return j->n_slots++;
}

/* ---- launch ----------------------------------------------------------------- */

arb_status arb_jit_launch(arb_backend *be, const arb_spec *spec, void **args)
{
    arb_jit_state *j = be->jit;
    const arb_function *f = NULL;
    arb_status st = arb_engine_function(j->engine, spec, 0, &f, &be->err);
    if (st)
        return st;
    int profile = j->profiling && !j->capturing;
    arb_pending_event *ev = NULL;
    if (profile) {
        if (j->n_pending == ARB_PROFILE_MAX_PENDING)
            profile_drain(be);
        int slot = profile_slot(j, spec->kernel);
        if (slot >= 0) {
            ev = &j->pending[j->n_pending];
            ev->slot = slot;
            if (j->cu->EventCreate(&ev->start, CU_EVENT_DEFAULT) != CUDA_SUCCESS ||
                j->cu->EventCreate(&ev->end, CU_EVENT_DEFAULT) != CUDA_SUCCESS) {
                ev = NULL;
            } else {
                j->cu->EventRecord(ev->start, j->stream);
                j->slots[slot].launches++;
            }
        }
    }
    CUresult rc = j->cu->LaunchKernel(f->fn, f->grid[0], f->grid[1], f->grid[2], f->block[0],
                                      f->block[1], f->block[2], f->smem_bytes, j->stream, args,
                                      NULL);
    if (ev) {
        j->cu->EventRecord(ev->end, j->stream);
        j->n_pending++;
    }
    if (rc != CUDA_SUCCESS) {
        char what[ARB_NAME_EXPR_MAX + 32];
        arb_spec_describe(&f->spec, what, sizeof(what));
        return arb_jit_cuda_fail(be, rc, what);
    }
    return ARB_OK;
}
