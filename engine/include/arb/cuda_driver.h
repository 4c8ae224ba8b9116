/*
 * cuda_driver.h - the CUDA driver API, loaded at run time.
 *
 * arb never links libcuda: it dlopen()s libcuda.so.1 on first use, so every
 * program starts, and the cpu backend works, on machines without a driver.
 * The table below holds the entry points arb uses, resolved by their
 * versioned names (cuMemAlloc_v2, ...), the ABI that cuda.h's macros select.
 * Programs that need raw driver access (arb-bench's cuBLAS peers and event
 * timing) use the same table.
 */
#ifndef ARB_CUDA_DRIVER_H
#define ARB_CUDA_DRIVER_H

#include <cuda.h> /* types and enums only; no symbol of libcuda is linked */

#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct arb_cuda {
    void *lib; /* dlopen handle of libcuda.so.1 */
    int driver_version; /* cuDriverGetVersion, e.g. 13000 */
    CUresult (*Init)(unsigned int flags);
    CUresult (*DriverGetVersion)(int *version);
    CUresult (*GetErrorName)(CUresult error, const char **str);
    CUresult (*GetErrorString)(CUresult error, const char **str);
    CUresult (*DeviceGetCount)(int *count);
    CUresult (*DeviceGet)(CUdevice *device, int ordinal);
    CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
    CUresult (*DeviceGetAttribute)(int *pi, CUdevice_attribute attrib, CUdevice dev);
    CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice dev);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *pctx, CUdevice dev);
    CUresult (*DevicePrimaryCtxRelease)(CUdevice dev);
    CUresult (*CtxSetCurrent)(CUcontext ctx);
    CUresult (*CtxSynchronize)(void);
    CUresult (*StreamCreate)(CUstream *stream, unsigned int flags);
    CUresult (*StreamDestroy)(CUstream stream);
    CUresult (*StreamSynchronize)(CUstream stream);
    CUresult (*MemAlloc)(CUdeviceptr *dptr, size_t bytes);
    CUresult (*MemFree)(CUdeviceptr dptr);
    CUresult (*MemGetInfo)(size_t *free_bytes, size_t *total_bytes);
    CUresult (*MemAllocHost)(void **pp, size_t bytes);
    CUresult (*MemFreeHost)(void *p);
    CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes, CUstream s);
    CUresult (*MemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t bytes, CUstream s);
    CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s);
    CUresult (*MemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t n, CUstream s);
    CUresult (*MemsetD32Async)(CUdeviceptr dst, unsigned int value, size_t n, CUstream s);
    CUresult (*ModuleLoadData)(CUmodule *module, const void *image);
    CUresult (*ModuleUnload)(CUmodule module);
    CUresult (*ModuleGetFunction)(CUfunction *fn, CUmodule module, const char *name);
    CUresult (*FuncGetAttribute)(int *pi, CUfunction_attribute attrib, CUfunction fn);
    CUresult (*FuncSetAttribute)(CUfunction fn, CUfunction_attribute attrib, int value);
    CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                             unsigned by, unsigned bz, unsigned smem, CUstream s, void **params,
                             void **extra);
    CUresult (*EventCreate)(CUevent *event, unsigned int flags);
    CUresult (*EventDestroy)(CUevent event);
    CUresult (*EventRecord)(CUevent event, CUstream stream);
    CUresult (*EventSynchronize)(CUevent event);
    CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);
    CUresult (*StreamBeginCapture)(CUstream stream, CUstreamCaptureMode mode);
    CUresult (*StreamEndCapture)(CUstream stream, CUgraph *graph);
    CUresult (*GraphInstantiate)(CUgraphExec *exec, CUgraph graph, unsigned long long flags);
    CUresult (*GraphLaunch)(CUgraphExec exec, CUstream stream);
    CUresult (*GraphExecDestroy)(CUgraphExec exec);
    CUresult (*GraphDestroy)(CUgraph graph);
} arb_cuda;

/* Load libcuda.so.1 and resolve the table (once per process, thread-safe),
 * then cuInit(0). ARB_ERR_NO_DRIVER when the library or a symbol is
 * missing, ARB_ERR_NO_DEVICE when cuInit reports no device. */
arb_status arb_cuda_load(const arb_cuda **out, arb_err *err);

/* "CUDA_ERROR_OUT_OF_MEMORY: out of memory" for messages. */
const char *arb_cuda_error_text(const arb_cuda *cu, CUresult rc, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* ARB_CUDA_DRIVER_H */
