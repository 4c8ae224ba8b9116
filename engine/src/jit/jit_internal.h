/*
 * jit_internal.h - state of the jit backend, shared by jit_backend.c
 * (memory, stream, graphs, profiling) and jit_ops.c (the ops).
 */
#ifndef ARB_JIT_INTERNAL_H
#define ARB_JIT_INTERNAL_H

#include "../backend_impl.h"
#include "arb/engine.h"

#define ARB_PROFILE_MAX_KERNELS 64
#define ARB_PROFILE_MAX_PENDING 4096

typedef struct arb_profile_slot {
    const char *kernel; /* registry name (static storage) */
    int64_t launches;
    double ms;
} arb_profile_slot;

typedef struct arb_pending_event {
    int slot;         /* index into profile slots */
    CUevent start, end;
} arb_pending_event;

struct arb_jit_state {
    arb_engine *engine;
    int owns_engine;
    const arb_cuda *cu;
    CUstream stream;
    CUdeviceptr scratch;       /* grow-only device scratch (E scores, staged GEMM operands) */
    size_t scratch_bytes;
    CUgraph graph;
    CUgraphExec graph_exec;
    int capturing;
    int profiling;
    arb_profile_slot slots[ARB_PROFILE_MAX_KERNELS];
    int n_slots;
    arb_pending_event pending[ARB_PROFILE_MAX_PENDING];
    int n_pending;
};

/* Record a CUDA failure on the backend: "<what>: <driver message>". */
arb_status arb_jit_cuda_fail(arb_backend *be, CUresult rc, const char *what);

/* Device scratch of at least `bytes` (grow-only; growing synchronizes). */
arb_status arb_jit_scratch(arb_backend *be, size_t bytes, CUdeviceptr *out);

/* Launch one spec on the backend's stream with kernel parameters `args`. */
arb_status arb_jit_launch(arb_backend *be, const arb_spec *spec, void **args);

#endif /* ARB_JIT_INTERNAL_H */
