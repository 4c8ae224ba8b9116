/*
 * vote.h - how data-parallel ranks combine their updates: sums over all
 * ranks of device buffers, in place.
 *
 * Ranks exchange signs, not floats: each rank computes s[N,K] = sign(gW) on
 * its own batch, the int8 sums are added across ranks, and every rank steps
 * T with sign(sum) - the majority vote of signSGD. The grad scores of the E
 * update (one float per group, 1/gs of the weights) are summed as floats:
 * the score of the union batch is the sum of the ranks' scores. The guard
 * is summed too, so a non-finite loss on any rank stops every rank's update.
 * Every rank then holds identical integer state.
 *
 * A vote is NCCL across processes (train_vote_nccl) or, in tests, R ranks
 * as threads of one process summing through shared memory.
 */
#ifndef ARB_TRAIN_VOTE_H
#define ARB_TRAIN_VOTE_H

#include <stddef.h>
#include <stdint.h>

#include "arb/backend.h"
#include "arb/status.h"

typedef struct train_vote {
    int rank, world; /* world 1: no exchange (the fused update path) */
    void *ctx;
    /* In-place sums over all ranks of buffers in the caller's backend memory.
     * They may return before the sum is done (queued on the backend's
     * stream); later ops on the same backend see the result. */
    arb_status (*sum_i8)(void *ctx, int8_t *buf, size_t count, arb_err *err);
    arb_status (*sum_i32)(void *ctx, int32_t *buf, size_t count, arb_err *err);
    arb_status (*sum_f32)(void *ctx, float *buf, size_t count, arb_err *err);
} train_vote;

/* Open a vote over NCCL for `rank` of `world` on a jit backend. The ranks
 * meet through `init_file`: rank 0 writes a fresh NCCL id there (temporary
 * file, then rename), the others wait up to `timeout_s` for it. */
arb_status train_vote_nccl_open(train_vote *vote, arb_backend *be, int rank, int world,
                                const char *init_file, double timeout_s, arb_err *err);
void train_vote_nccl_close(train_vote *vote);

#endif /* ARB_TRAIN_VOTE_H */
