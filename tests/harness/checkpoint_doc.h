/*
 * checkpoint_doc.h - an arb-train checkpoint reader written from
 * docs/checkpoint-format.md alone, never from train/checkpoint.c: the tests
 * that read checkpoints with it (test_train.c, test_crash.c) check the page
 * as much as the program. If the writer and this reader disagree, one of
 * them no longer follows the page.
 */
#ifndef ARB_TEST_CHECKPOINT_DOC_H
#define ARB_TEST_CHECKPOINT_DOC_H

#include <stddef.h>
#include <stdint.h>

/* One entry of the tensor table. */
typedef struct th_ckpt_tensor {
    char name[33];
    uint32_t dtype; /* 1 packed trits, 2 int8 */
    uint64_t dims[2], offset, bytes;
} th_ckpt_tensor;

/* A whole checkpoint file and its parsed header and table. */
typedef struct th_ckpt {
    uint8_t *data; /* the file */
    size_t len;
    uint64_t step;
    uint32_t count; /* tensors */
    th_ckpt_tensor t[128];
} th_ckpt;

/* Read `path` and check it against the page, aborting the test on any
 * mismatch: at least header + checksum long, the magic "ARBCKPT\0",
 * version 1, header size 160, the size field equal to the length, the
 * trailing SHA-256, 72-byte table entries of 2 dimensions each, and tensor
 * data contiguous in table order up to the checksum. */
void th_ckpt_load(const char *path, th_ckpt *v);
/* The tensor named `name`; aborts the test when there is none. */
const th_ckpt_tensor *th_ckpt_find(const th_ckpt *v, const char *name);
void th_ckpt_free(th_ckpt *v);

#endif /* ARB_TEST_CHECKPOINT_DOC_H */
