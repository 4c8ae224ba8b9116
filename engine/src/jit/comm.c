/*
 * comm.c - NCCL, loaded at run time, for arb_comm's in-place sums.
 */
#include "arb/comm.h"

#include <dlfcn.h>
#include <nccl.h> /* types only: libnccl is dlopen'ed */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../backend_impl.h"

_Static_assert(sizeof(ncclUniqueId) == ARB_COMM_ID_BYTES, "arb_comm_id must hold an ncclUniqueId");

typedef struct nccl_api {
    void *lib;
    ncclResult_t (*GetUniqueId)(ncclUniqueId *id);
    ncclResult_t (*CommInitRank)(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
    ncclResult_t (*CommDestroy)(ncclComm_t comm);
    ncclResult_t (*AllReduce)(const void *send, void *recv, size_t count, ncclDataType_t type,
                              ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
    const char *(*GetErrorString)(ncclResult_t result);
} nccl_api;

static nccl_api nccl;
static arb_err nccl_error;
static pthread_once_t nccl_once = PTHREAD_ONCE_INIT;

struct arb_comm {
    arb_backend *be;
    ncclComm_t comm;
};

#define RESOLVE(field, name)                                                                       \
    do {                                                                                           \
        void *sym_ = dlsym(nccl.lib, name);                                                        \
        if (!sym_) {                                                                               \
            ARB_FAIL(&nccl_error, ARB_ERR_NO_DRIVER, "libnccl.so.2 lacks %s", name);              \
            return;                                                                                \
        }                                                                                          \
        memcpy(&nccl.field, &sym_, sizeof(sym_));                                                  \
    } while (0)

static void load_nccl(void)
{
    /* NVLink multicast must stay off on the shared GPU machines; respect an
     * explicit setting but default to off before NCCL reads it. */
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    nccl.lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!nccl.lib) {
        const char *why = dlerror();
        ARB_FAIL(&nccl_error, ARB_ERR_NO_DRIVER,
                 "cannot load NCCL (libnccl.so.2: %s): several GPUs need NCCL; one GPU does not",
                 why ? why : "not found");
        return;
    }
    RESOLVE(GetUniqueId, "ncclGetUniqueId");
    RESOLVE(CommInitRank, "ncclCommInitRank");
    RESOLVE(CommDestroy, "ncclCommDestroy");
    RESOLVE(AllReduce, "ncclAllReduce");
    RESOLVE(GetErrorString, "ncclGetErrorString");
}

arb_status arb_comm_available(arb_err *err)
{
    pthread_once(&nccl_once, load_nccl);
    arb_err_copy(err, &nccl_error);
    return nccl_error.status;
}

static arb_status nccl_fail(arb_err *err, ncclResult_t rc, const char *what)
{
    return ARB_FAIL(err, ARB_ERR_CUDA, "%s: %s", what,
                    nccl.GetErrorString ? nccl.GetErrorString(rc) : "NCCL error");
}

arb_status arb_comm_id_new(arb_comm_id *id, arb_err *err)
{
    arb_status st = arb_comm_available(err);
    if (st)
        return st;
    ncclUniqueId nid;
    ncclResult_t rc = nccl.GetUniqueId(&nid);
    if (rc != ncclSuccess)
        return nccl_fail(err, rc, "ncclGetUniqueId");
    memcpy(id->bytes, &nid, sizeof(nid));
    return ARB_OK;
}

arb_status arb_comm_open(arb_comm **out, arb_backend *be, int rank, int world,
                         const arb_comm_id *id, arb_err *err)
{
    *out = NULL;
    arb_status st = arb_comm_available(err);
    if (st)
        return st;
    if (arb_backend_kind_of(be) != ARB_BACKEND_JIT)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "collectives need the jit backend");
    if (world < 1 || world > 127 || rank < 0 || rank >= world)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "rank %d of world size %d: need 0 <= rank < world <= 127", rank, world);
    arb_comm *c = calloc(1, sizeof(*c));
    if (!c)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory opening a communicator");
    ncclUniqueId nid;
    memcpy(&nid, id->bytes, sizeof(nid));
    ncclResult_t rc = nccl.CommInitRank(&c->comm, world, nid, rank);
    if (rc != ncclSuccess) {
        free(c);
        return nccl_fail(err, rc, "ncclCommInitRank");
    }
    c->be = be;
    *out = c;
    return ARB_OK;
}

void arb_comm_close(arb_comm *c)
{
    if (!c)
        return;
    if (c->comm)
        nccl.CommDestroy(c->comm);
    free(c);
}

static arb_status sum(arb_comm *c, void *buf, size_t count, ncclDataType_t type, arb_err *err)
{
    if (count == 0)
        return ARB_OK;
    ncclResult_t rc = nccl.AllReduce(buf, buf, count, type, ncclSum, c->comm,
                                     (cudaStream_t)arb_jit_stream(c->be));
    return rc == ncclSuccess ? ARB_OK : nccl_fail(err, rc, "ncclAllReduce");
}

arb_status arb_comm_sum_i8(arb_comm *c, int8_t *buf, size_t count, arb_err *err)
{
    return sum(c, buf, count, ncclInt8, err);
}

arb_status arb_comm_sum_i32(arb_comm *c, int32_t *buf, size_t count, arb_err *err)
{
    return sum(c, buf, count, ncclInt32, err);
}

arb_status arb_comm_sum_f32(arb_comm *c, float *buf, size_t count, arb_err *err)
{
    return sum(c, buf, count, ncclFloat32, err);
}
