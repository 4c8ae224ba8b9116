/*
 * cuda_driver.c - dlopen libcuda.so.1 and resolve the driver entry points.
 *
 * Names are the versioned ABI symbols that cuda.h's macros map to (e.g.
 * cuMemAlloc -> cuMemAlloc_v2), so the signatures in arb_cuda match.
 */
#include "arb/cuda_driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static arb_cuda driver;
static arb_err load_error;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

#define RESOLVE(field, symbol)                                                                     \
    do {                                                                                           \
        void *sym_ = dlsym(driver.lib, symbol);                                                   \
        if (!sym_) {                                                                               \
            ARB_FAIL(&load_error, ARB_ERR_NO_DRIVER,                                               \
                     "libcuda.so.1 lacks %s: the CUDA driver is too old (arb needs a CUDA 12 "     \
                     "or newer driver)",                                                           \
                     symbol);                                                                      \
            return;                                                                                \
        }                                                                                          \
        memcpy(&driver.field, &sym_, sizeof(sym_));                                                \
    } while (0)

static void load_driver(void)
{
    driver.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!driver.lib) {
        const char *why = dlerror();
        ARB_FAIL(&load_error, ARB_ERR_NO_DRIVER,
                 "cannot load the CUDA driver (libcuda.so.1: %s); the cpu backend still works, "
                 "and arb-prewarm can compile for a GPU with --arch sm_90a",
                 why ? why : "not found");
        return;
    }
    RESOLVE(Init, "cuInit");
    RESOLVE(DriverGetVersion, "cuDriverGetVersion");
    RESOLVE(GetErrorName, "cuGetErrorName");
    RESOLVE(GetErrorString, "cuGetErrorString");
    RESOLVE(DeviceGetCount, "cuDeviceGetCount");
    RESOLVE(DeviceGet, "cuDeviceGet");
    RESOLVE(DeviceGetName, "cuDeviceGetName");
    RESOLVE(DeviceGetAttribute, "cuDeviceGetAttribute");
    RESOLVE(DeviceTotalMem, "cuDeviceTotalMem_v2");
    RESOLVE(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    RESOLVE(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    RESOLVE(CtxSetCurrent, "cuCtxSetCurrent");
    RESOLVE(CtxSynchronize, "cuCtxSynchronize");
    RESOLVE(StreamCreate, "cuStreamCreate");
    RESOLVE(StreamDestroy, "cuStreamDestroy_v2");
    RESOLVE(StreamSynchronize, "cuStreamSynchronize");
    RESOLVE(MemAlloc, "cuMemAlloc_v2");
    RESOLVE(MemFree, "cuMemFree_v2");
    RESOLVE(MemGetInfo, "cuMemGetInfo_v2");
    RESOLVE(MemAllocHost, "cuMemAllocHost_v2");
    RESOLVE(MemFreeHost, "cuMemFreeHost");
    RESOLVE(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    RESOLVE(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    RESOLVE(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    RESOLVE(MemsetD8Async, "cuMemsetD8Async");
    RESOLVE(MemsetD32Async, "cuMemsetD32Async");
    RESOLVE(ModuleLoadData, "cuModuleLoadData");
    RESOLVE(ModuleUnload, "cuModuleUnload");
    RESOLVE(ModuleGetFunction, "cuModuleGetFunction");
    RESOLVE(FuncGetAttribute, "cuFuncGetAttribute");
    RESOLVE(FuncSetAttribute, "cuFuncSetAttribute");
    RESOLVE(LaunchKernel, "cuLaunchKernel");
    RESOLVE(EventCreate, "cuEventCreate");
    RESOLVE(EventDestroy, "cuEventDestroy_v2");
    RESOLVE(EventRecord, "cuEventRecord");
    RESOLVE(EventSynchronize, "cuEventSynchronize");
    RESOLVE(EventElapsedTime, "cuEventElapsedTime");
    RESOLVE(StreamBeginCapture, "cuStreamBeginCapture_v2");
    RESOLVE(StreamEndCapture, "cuStreamEndCapture");
    RESOLVE(GraphInstantiate, "cuGraphInstantiateWithFlags");
    RESOLVE(GraphLaunch, "cuGraphLaunch");
    RESOLVE(GraphExecDestroy, "cuGraphExecDestroy");
    RESOLVE(GraphDestroy, "cuGraphDestroy");

    CUresult rc = driver.Init(0);
    if (rc == CUDA_ERROR_NO_DEVICE) {
        ARB_FAIL(&load_error, ARB_ERR_NO_DEVICE, "the CUDA driver found no GPU (cuInit: no device)");
        return;
    }
    if (rc != CUDA_SUCCESS) {
        char text[256];
        ARB_FAIL(&load_error, ARB_ERR_NO_DEVICE, "cuInit failed: %s",
                 arb_cuda_error_text(&driver, rc, text, sizeof(text)));
        return;
    }
    driver.DriverGetVersion(&driver.driver_version);
    int count = 0;
    if (driver.DeviceGetCount(&count) != CUDA_SUCCESS || count < 1)
        ARB_FAIL(&load_error, ARB_ERR_NO_DEVICE, "the CUDA driver reports no GPU");
}

arb_status arb_cuda_load(const arb_cuda **out, arb_err *err)
{
    pthread_once(&load_once, load_driver);
    if (load_error.status != ARB_OK) {
        *out = NULL;
        arb_err_copy(err, &load_error);
        return load_error.status;
    }
    *out = &driver;
    return ARB_OK;
}

const char *arb_cuda_error_text(const arb_cuda *cu, CUresult rc, char *buf, size_t len)
{
    const char *name = NULL, *text = NULL;
    if (cu && cu->GetErrorName)
        cu->GetErrorName(rc, &name);
    if (cu && cu->GetErrorString)
        cu->GetErrorString(rc, &text);
    snprintf(buf, len, "%s (%d): %s", name ? name : "CUDA error", (int)rc,
             text ? text : "unknown");
    return buf;
}
