/*
 * comm.h - collectives for data-parallel training across GPUs: in-place sums
 * over all ranks, queued on the jit backend's stream, through NCCL.
 *
 * NCCL is loaded with dlopen("libnccl.so.2") on first use, so a build
 * without NCCL still runs on one GPU. NVLink multicast (NVLS) is switched off
 * (NCCL_NVLS_ENABLE=0) before NCCL initializes: the GPU machines this project
 * runs on require it.
 *
 * Ranks meet through an id made by rank 0 (arb_comm_id_new) and handed to
 * the others out of band (arb-train writes it to an init file).
 */
#ifndef ARB_COMM_H
#define ARB_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "arb/backend.h"
#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ARB_COMM_ID_BYTES 128 /* = sizeof(ncclUniqueId) */

typedef struct arb_comm_id {
    unsigned char bytes[ARB_COMM_ID_BYTES];
} arb_comm_id;

typedef struct arb_comm arb_comm;

/* Whether libnccl.so.2 can be loaded (the message says why not). */
arb_status arb_comm_available(arb_err *err);

/* A fresh id for a new group of ranks (call on rank 0 only). */
arb_status arb_comm_id_new(arb_comm_id *id, arb_err *err);

/* Join the group as `rank` of `world` (blocks until all ranks joined). The
 * backend must be jit; its device and stream are used. */
arb_status arb_comm_open(arb_comm **out, arb_backend *be, int rank, int world,
                         const arb_comm_id *id, arb_err *err);
void arb_comm_close(arb_comm *comm);

/* In-place sums over all ranks of device buffers, queued on the backend's
 * stream (no host synchronization). int8 sums hold up to 127 ranks' signs. */
arb_status arb_comm_sum_i8(arb_comm *comm, int8_t *buf, size_t count, arb_err *err);
arb_status arb_comm_sum_i32(arb_comm *comm, int32_t *buf, size_t count, arb_err *err);
arb_status arb_comm_sum_f32(arb_comm *comm, float *buf, size_t count, arb_err *err);

#ifdef __cplusplus
}
#endif
#endif /* ARB_COMM_H */
