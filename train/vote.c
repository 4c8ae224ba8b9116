/*
 * vote.c - the NCCL vote: ranks meet through an init file, then sum device
 * buffers in place with arb_comm on the jit backend's stream.
 */
#include "vote.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "arb/comm.h"
#include "checkpoint.h"

static arb_status nccl_sum_i8(void *ctx, int8_t *buf, size_t count, arb_err *err)
{
    return arb_comm_sum_i8(ctx, buf, count, err);
}

static arb_status nccl_sum_i32(void *ctx, int32_t *buf, size_t count, arb_err *err)
{
    return arb_comm_sum_i32(ctx, buf, count, err);
}

static arb_status nccl_sum_f32(void *ctx, float *buf, size_t count, arb_err *err)
{
    return arb_comm_sum_f32(ctx, buf, count, err);
}

/* Other ranks: wait for the whole id to appear. */
static arb_status read_id(const char *init_file, double timeout_s, arb_comm_id *id, arb_err *err)
{
    struct timespec pause = {0, 20 * 1000 * 1000};
    double waited = 0.0;
    for (;;) {
        FILE *f = fopen(init_file, "rb");
        if (f) {
            size_t got = fread(id->bytes, 1, sizeof(id->bytes), f);
            fclose(f);
            if (got == sizeof(id->bytes))
                return ARB_OK;
        }
        if (waited >= timeout_s)
            return ARB_FAIL(err, ARB_ERR_BUSY,
                            "rank 0 did not write the init file %s within %.0f s: is rank 0 "
                            "running with the same --init-file?",
                            init_file, timeout_s);
        nanosleep(&pause, NULL);
        waited += 0.02;
    }
}

arb_status train_vote_nccl_open(train_vote *vote, arb_backend *be, int rank, int world,
                                const char *init_file, double timeout_s, arb_err *err)
{
    memset(vote, 0, sizeof(*vote));
    arb_comm_id id;
    arb_status st;
    if (rank == 0) {
        /* Written atomically: the others poll until the whole id is there. */
        if ((st = arb_comm_id_new(&id, err)) ||
            (st = train_write_file_atomic(init_file, id.bytes, sizeof(id.bytes), 0600, err)))
            return st;
    } else if ((st = read_id(init_file, timeout_s, &id, err))) {
        return st;
    }
    arb_comm *comm = NULL;
    if ((st = arb_comm_open(&comm, be, rank, world, &id, err)))
        return st;
    vote->rank = rank;
    vote->world = world;
    vote->ctx = comm;
    vote->sum_i8 = nccl_sum_i8;
    vote->sum_i32 = nccl_sum_i32;
    vote->sum_f32 = nccl_sum_f32;
    return ARB_OK;
}

void train_vote_nccl_close(train_vote *vote)
{
    if (vote->ctx)
        arb_comm_close(vote->ctx);
    memset(vote, 0, sizeof(*vote));
}
