/*
 * data.h - the training text: loading a corpus file, the train / held-out
 * split, the unigram entropy baseline and the evaluation positions.
 *
 * A corpus is raw bytes (byte-level model, vocabulary 256). The last 5% is
 * held out: positions p (the index of the predicted byte) of training
 * batches lie in [ctx, train_len), held-out positions in
 * [train_len + ctx, len), so no held-out prediction sees a training byte in
 * its context and vice versa.
 */
#ifndef ARB_TRAIN_DATA_H
#define ARB_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "arb/status.h"

typedef struct train_corpus {
    uint8_t *bytes;       /* host copy (malloc'ed) */
    int64_t len;          /* total bytes */
    int64_t train_len;    /* first 95%: the training split */
    uint8_t sha256[32];   /* of the whole file: identifies the data in checkpoints */
} train_corpus;

/* Read a whole file. ARB_ERR_NOT_FOUND when it does not exist, ARB_ERR_IO
 * when it cannot be read; the message names the path. */
arb_status train_corpus_load(const char *path, train_corpus *out, arb_err *err);

/* Split: train_len = len - len / 20. ARB_ERR_INVALID_ARG when either part
 * is too short for a context of ctx bytes plus one prediction. */
arb_status train_corpus_split(train_corpus *c, int ctx, const char *path, arb_err *err);

void train_corpus_free(train_corpus *c);

/* Entropy of the byte distribution of bytes[0, n), in bits per byte: the
 * loss of the best model that ignores the context. */
double train_unigram_entropy(const uint8_t *bytes, int64_t n);

/* `count` positions evenly spaced over [lo, hi), ascending, the first at lo:
 * p_i = lo + floor(i * (hi - lo) / count). count <= hi - lo. */
void train_even_positions(int64_t lo, int64_t hi, int64_t count, int64_t *out);

/* How many evaluation positions to use from a range of `avail` positions:
 * at most `max_positions`, rounded down to a multiple of the batch so that
 * evaluation runs the training forward's shapes; all of them when fewer than
 * one batch exist. */
int64_t train_eval_count(int64_t avail, int64_t max_positions, int64_t batch);

#endif /* ARB_TRAIN_DATA_H */
