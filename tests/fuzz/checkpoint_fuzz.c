/*
 * checkpoint_fuzz.c - libFuzzer target for arb-train's checkpoint loader
 * (train/checkpoint.c; format in docs/checkpoint-format.md): the input
 * bytes become a checkpoint file, read with train_checkpoint_read; when the
 * read succeeds, the checkpoint is applied with train_checkpoint_apply onto
 * a freshly created cpu-backend model of the configuration its header
 * names, exactly as `arb-train --resume` does, then everything is freed.
 *
 * Each input is tried twice:
 *   1. as it is;
 *   2. "repaired": the header's file-size field set to the input's length
 *      and the trailing SHA-256 recomputed. Mutations can never forge a
 *      SHA-256, so without this step nearly every input would stop at the
 *      checksum and the table, tensor and model checks behind it would go
 *      unfuzzed; a repaired file is what a buggy writer could leave.
 *
 * Any bytes must give a status, never a crash, a leak or undefined
 * behaviour. On top of the sanitizers it checks the loader's promises, and
 * aborts (a crash to libFuzzer) when one breaks:
 *   - a refusal records the status it returns and a message naming the file;
 *   - a successful read describes a configuration that passes
 *     train_model_config_check (the loader checked it), with at most
 *     TRAIN_MAX_TENSORS contiguous tensors ending at the checksum;
 *   - a successful apply sets the model's step to the header's.
 *
 * A model is only created when it is small (model_bytes() <= MODEL_CAP):
 * a fuzzed header may name a configuration of many gigabytes, which is the
 * backend's allocation to refuse, not the loader's, and would only make the
 * fuzzer slow or hit its RSS limit. The tiny configuration is far below it.
 * Nor is a model above SMALL_MODEL created for a checkpoint whose tensor
 * count differs from the model's (4 + 6L + 2 + 4, the format page): apply's
 * first check refuses it, and creating a large model only to see that
 * refusal would cost most of the fuzzing time (small models still see it).
 *
 * The file lives in a folder of its own (on /dev/shm when there is one).
 * Build and run with tests/fuzz/run-checkpoint-fuzz.sh, or with CMake
 * (-DARB_FUZZ=ON, CC=clang; target checkpoint_fuzz).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arb/backend.h"
#include "arb/sha256.h"
#include "checkpoint.h"
#include "config.h"
#include "model.h"

/* The most backend memory a fuzzed configuration may make us allocate, and
 * the size below which a model is cheap enough to create just to see apply
 * refuse a wrong tensor count. */
#define MODEL_CAP ((int64_t)48 << 20)
#define SMALL_MODEL ((int64_t)1 << 20)

static char dir[256];
static char path[320];
static arb_backend *cpu; /* one cpu backend for the whole run: opening one per input is waste */
static int verbose;      /* ARB_FUZZ_VERBOSE=1: print what each input got (to audit seeds) */

static void say(const char *what, arb_status st, const char *msg)
{
    if (verbose)
        fprintf(stderr, "checkpoint_fuzz: %s: %s%s%s\n", what, arb_status_name(st),
                msg[0] ? ": " : "", msg);
}

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "checkpoint_fuzz: broken promise: %s\n", what);
        abort();
    }
}

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
    if (cpu)
        arb_backend_close(cpu);
    cpu = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/dev/shm/arb-checkpoint-fuzz-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof(dir), "/tmp/arb-checkpoint-fuzz-XXXXXX");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "checkpoint_fuzz: mkdtemp: %s\n", strerror(errno));
            abort();
        }
    }
    snprintf(path, sizeof(path), "%s/fuzzed.ckpt", dir);
    const char *v = getenv("ARB_FUZZ_VERBOSE");
    verbose = v && v[0] == '1';

    arb_backend_options bo;
    arb_backend_options_init(&bo);
    bo.kind = ARB_BACKEND_CPU;
    bo.threads = 1; /* libFuzzer runs one input at a time; threads only add noise */
    arb_err err = {0};
    if (arb_backend_open(&cpu, &bo, NULL, 0, &err) != ARB_OK) {
        fprintf(stderr, "checkpoint_fuzz: cannot open the cpu backend: %s\n", err.msg);
        abort();
    }
    atexit(cleanup);
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    require(f != NULL, "the fuzz folder is writable");
    if (size)
        require(fwrite(data, 1, size, f) == size, "the input is written");
    require(fclose(f) == 0, "the input is written");
}

/* An upper bound of the backend bytes train_model_create allocates for a
 * configuration that passed train_model_config_check (whose limits keep
 * every product here far inside int64). */
static int64_t model_bytes(const train_model_config *c)
{
    const int64_t in = (int64_t)c->ctx * c->D, H = c->H, M = c->batch, L = c->L;
    const int64_t wide = in > H ? in : H;
    /* Trits of every weight; each costs at most 1/5 packed + 1 accumulator
     * + 2 (E and E_accum at gs >= 1) bytes: 4 is an upper bound. */
    int64_t trits = 256 * (int64_t)c->D + in * H + (L - 1) * H * H + 256 * H + in + L * H;
    int64_t acts = 4 * M * (4 + c->ctx + in + L * (2 * H + wide) + 3 * H + 2 * 256 + 2 * wide);
    return 4 * trits + acts + 5 * 256 * (int64_t)c->D + 64;
}

static void check_read(const train_ckpt *ck, size_t size)
{
    arb_err e = {0};
    require(train_model_config_check(&ck->meta.model, &e) == ARB_OK,
            "a checkpoint that reads has a valid configuration");
    require(ck->n_tensors >= 0 && ck->n_tensors <= TRAIN_MAX_TENSORS,
            "a checkpoint that reads has at most TRAIN_MAX_TENSORS tensors");
    require(ck->file_len == size, "the whole file is read");
    uint64_t expect = TRAIN_CKPT_HEADER_SIZE + (uint64_t)ck->n_tensors * TRAIN_CKPT_ENTRY_SIZE;
    for (int i = 0; i < ck->n_tensors; i++) {
        require(ck->tensors[i].offset == expect, "tensors are contiguous");
        require(memchr(ck->tensors[i].name, '\0', TRAIN_TENSOR_NAME_MAX) != NULL,
                "tensor names are terminated");
        expect += ck->tensors[i].bytes;
    }
    require(expect + TRAIN_CKPT_HASH_SIZE == size, "the last tensor ends at the checksum");
}

static void apply(const train_ckpt *ck)
{
    const train_model_config *c = &ck->meta.model;
    int64_t bytes = model_bytes(c);
    if (bytes > MODEL_CAP || (bytes > SMALL_MODEL && ck->n_tensors != 4 + 6 * c->L + 2 + 4)) {
        say("apply skipped (too large, or a tensor count not the model's)", ARB_OK, "");
        return;
    }
    train_model m;
    arb_err err = {0};
    arb_status st = train_model_create(&m, cpu, c, 1, &err);
    if (st != ARB_OK) {
        /* Only memory may refuse a configuration the loader accepted. */
        require(st == ARB_ERR_NOMEM && err.msg[0], "a checked configuration gets a model");
        return;
    }
    require(m.n_tensors == 4 + 6 * c->L + 2 + 4, "the format page's tensor count is the model's");
    st = train_checkpoint_apply(ck, path, &m, &err);
    say("apply", st, err.msg);
    if (st != ARB_OK) {
        require(err.status == st && err.msg[0] != '\0', "a refused apply says why");
        require(st != ARB_ERR_FORMAT || strstr(err.msg, path) != NULL,
                "a refused apply names the file");
    } else {
        int64_t step = -1;
        require(arb_backend_download(cpu, &step, m.step_counter, sizeof(step)) == ARB_OK,
                "the step counter reads back");
        require(step == ck->meta.step, "apply sets the header's step");
    }
    train_model_destroy(&m);
}

static void load(const uint8_t *data, size_t size)
{
    write_input(data, size);
    train_ckpt ck;
    arb_err err = {0};
    arb_status st = train_checkpoint_read(path, &ck, &err);
    say("read", st, err.msg);
    if (st != ARB_OK) {
        require(err.status == st && err.msg[0] != '\0', "a refused read says why");
        require(strstr(err.msg, path) != NULL, "a refused read names the file");
        require(ck.file == NULL, "a refused read keeps nothing");
        return;
    }
    check_read(&ck, size);
    apply(&ck);
    train_checkpoint_free(&ck);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load(data, size);

    /* The repaired copy (see the top): size field and checksum made right. */
    if (size < TRAIN_CKPT_HEADER_SIZE + TRAIN_CKPT_HASH_SIZE)
        return 0;
    uint8_t *fixed = malloc(size);
    require(fixed != NULL, "memory for a copy");
    memcpy(fixed, data, size);
    for (int i = 0; i < 8; i++)
        fixed[16 + i] = (uint8_t)((uint64_t)size >> (8 * i)); /* header offset 16: file size */
    arb_sha256(fixed, size - TRAIN_CKPT_HASH_SIZE, fixed + size - TRAIN_CKPT_HASH_SIZE);
    if (memcmp(fixed, data, size) != 0) {
        say("repaired", ARB_OK, "size field and checksum recomputed");
        load(fixed, size);
    }
    free(fixed);
    return 0;
}
