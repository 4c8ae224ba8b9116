/*
 * checkpoint.h - arb-train checkpoints: a versioned header (the
 * configuration, the update rule, the seed and step, the data's identity),
 * a tensor table, the integer tensors, and a trailing SHA-256 of everything
 * before it. The byte layout is docs/checkpoint-format.md.
 *
 * Writing is atomic and durable: a temporary file in the same folder,
 * fsync'ed, renamed over the target, then the folder fsync'ed; after a crash
 * at any point the target holds the old or the new checkpoint, complete.
 *
 * Reading validates everything (magic, version, sizes, checksum, table,
 * every packed byte and every scale) into host memory before the caller
 * changes any state; a refusal names the file and the problem.
 */
#ifndef ARB_TRAIN_CHECKPOINT_H
#define ARB_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arb/status.h"
#include "config.h"
#include "model.h"

#define TRAIN_CKPT_MAGIC "ARBCKPT" /* 8 bytes with its NUL */
#define TRAIN_CKPT_VERSION 1
#define TRAIN_CKPT_HEADER_SIZE 160
#define TRAIN_CKPT_ENTRY_SIZE 72
#define TRAIN_CKPT_HASH_SIZE 32

/* Everything in a checkpoint besides the tensors. */
typedef struct train_ckpt_meta {
    train_model_config model;
    train_rule rule;
    uint64_t seed;
    int64_t step;             /* steps completed = the step counter's value */
    uint64_t data_len;        /* bytes of the corpus file trained on */
    uint8_t data_sha256[32];  /* its SHA-256 */
} train_ckpt_meta;

/* One entry of a checkpoint's tensor table. */
typedef struct train_ckpt_entry {
    char name[TRAIN_TENSOR_NAME_MAX];
    train_dtype dtype;
    int64_t dims[2];
    uint64_t offset, bytes; /* where its bytes lie in the file */
} train_ckpt_entry;

/* A checkpoint read into memory (validated by train_checkpoint_read). */
typedef struct train_ckpt {
    train_ckpt_meta meta;
    uint8_t *file; /* the whole file */
    size_t file_len;
    int n_tensors;
    train_ckpt_entry tensors[TRAIN_MAX_TENSORS];
} train_ckpt;

/* Write the model's state (downloaded from its backend; the caller has
 * checked the guard) atomically to `path`. */
arb_status train_checkpoint_write(const char *path, const train_ckpt_meta *meta,
                                  train_model *m, arb_err *err);

/* Read and validate a checkpoint: ARB_ERR_NOT_FOUND, ARB_ERR_IO,
 * ARB_ERR_FORMAT (bad magic, future version, truncated, malformed) or
 * ARB_ERR_CORRUPT (checksum). On success free it with train_checkpoint_free. */
arb_status train_checkpoint_read(const char *path, train_ckpt *ck, arb_err *err);

/* Check the checkpoint's tensors against a model built from its meta:
 * names, types, shapes, sizes, valid packed trits, scales in range. Then
 * upload them and set the step counter. Nothing is uploaded unless every
 * check passes. */
arb_status train_checkpoint_apply(const train_ckpt *ck, const char *path, train_model *m,
                                  arb_err *err);

void train_checkpoint_free(train_ckpt *ck);

/* Write `len` bytes to `path` atomically and durably: a temporary file
 * "<path>.tmp.<pid>" in the same folder (permissions `mode`), fsync'ed,
 * renamed over `path`, then the folder fsync'ed. On failure the temporary
 * file is removed and `path` is untouched. Checkpoints and the
 * data-parallel init file (vote.c) are written with it. */
arb_status train_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                   arb_err *err);

/* Remove temporary files "<path>.tmp.<pid>" left by killed writers (their
 * pid no longer runs). Returns how many were removed. */
int train_checkpoint_sweep(const char *path);

#endif /* ARB_TRAIN_CHECKPOINT_H */
