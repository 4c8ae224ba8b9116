/*
 * checkpoint.c - write and read arb-train checkpoints (checkpoint.h;
 * byte layout in docs/checkpoint-format.md). All integers little-endian,
 * serialized byte by byte so the file does not depend on struct layout or
 * host byte order.
 */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "arb/sha256.h"
#include "arb/ternary.h"

/* ---- little-endian fields ------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Header field offsets (docs/checkpoint-format.md). */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 8,
    OFF_HEADER_SIZE = 12,
    OFF_FILE_SIZE = 16,
    OFF_CONFIG_NAME = 24,
    OFF_CTX = 40,
    OFF_D = 44,
    OFF_H = 48,
    OFF_L = 52,
    OFF_GS = 56,
    OFF_BATCH = 60,
    OFF_VOCAB = 64,
    OFF_THETA = 68,
    OFF_THETA_START = 72,
    OFF_THETA_END = 76,
    OFF_THETA_STEPS = 80,
    OFF_PHI = 84,
    OFF_E_LAYERS = 88,
    OFF_E_SCORE = 92,
    OFF_SEED = 96,
    OFF_STEP = 104,
    OFF_DATA_LEN = 112,
    OFF_DATA_SHA = 120,
    OFF_N_TENSORS = 152,
    OFF_ENTRY_SIZE = 156,
};

/* Tensor table entry offsets. */
enum {
    ENT_NAME = 0,
    ENT_DTYPE = 32,
    ENT_NDIM = 36,
    ENT_DIM0 = 40,
    ENT_DIM1 = 48,
    ENT_OFFSET = 56,
    ENT_BYTES = 64,
};

/* ---- writing ---------------------------------------------------------------- */

static void encode_header(uint8_t *h, const train_ckpt_meta *meta, uint64_t file_size,
                          int n_tensors)
{
    memset(h, 0, TRAIN_CKPT_HEADER_SIZE);
    memcpy(h + OFF_MAGIC, TRAIN_CKPT_MAGIC, 8);
    put_u32(h + OFF_VERSION, TRAIN_CKPT_VERSION);
    put_u32(h + OFF_HEADER_SIZE, TRAIN_CKPT_HEADER_SIZE);
    put_u64(h + OFF_FILE_SIZE, file_size);
    /* NUL-padded: at most 15 characters, the rest of the field stays 0. */
    memcpy(h + OFF_CONFIG_NAME, meta->model.name,
           strnlen(meta->model.name, TRAIN_CONFIG_NAME_MAX - 1));
    put_u32(h + OFF_CTX, (uint32_t)meta->model.ctx);
    put_u32(h + OFF_D, (uint32_t)meta->model.D);
    put_u32(h + OFF_H, (uint32_t)meta->model.H);
    put_u32(h + OFF_L, (uint32_t)meta->model.L);
    put_u32(h + OFF_GS, (uint32_t)meta->model.gs);
    put_u32(h + OFF_BATCH, (uint32_t)meta->model.batch);
    put_u32(h + OFF_VOCAB, TRAIN_VOCAB);
    put_u32(h + OFF_THETA, (uint32_t)meta->rule.theta);
    put_u32(h + OFF_THETA_START, (uint32_t)meta->rule.theta_start);
    put_u32(h + OFF_THETA_END, (uint32_t)meta->rule.theta_end);
    put_u32(h + OFF_THETA_STEPS, (uint32_t)meta->rule.theta_steps);
    put_u32(h + OFF_PHI, (uint32_t)meta->rule.phi);
    put_u32(h + OFF_E_LAYERS, meta->rule.e_layers);
    put_u32(h + OFF_E_SCORE, (uint32_t)meta->rule.e_score);
    put_u64(h + OFF_SEED, meta->seed);
    put_u64(h + OFF_STEP, (uint64_t)meta->step);
    put_u64(h + OFF_DATA_LEN, meta->data_len);
    memcpy(h + OFF_DATA_SHA, meta->data_sha256, 32);
    put_u32(h + OFF_N_TENSORS, (uint32_t)n_tensors);
    put_u32(h + OFF_ENTRY_SIZE, TRAIN_CKPT_ENTRY_SIZE);
}

static arb_status write_all(int fd, const void *data, size_t n, const char *tmp, arb_err *err)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ARB_FAIL(err, ARB_ERR_IO, "cannot write %s: %s", tmp,
                            w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return ARB_OK;
}

/* The folder holding `path` ("." when it has no slash). */
static void dir_of(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, len, ".");
    else if (slash == path)
        snprintf(buf, len, "/");
    else
        snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

arb_status train_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                   arb_err *err)
{
    arb_status st = ARB_OK;
    int fd = -1, dfd = -1;
    char tmp[4096 + 64], dir[4096];

    /* Temp file in the same folder (rename is atomic only within a file
     * system), named after our pid so a later run can sweep it. */
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return ARB_FAIL(err, ARB_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    if ((st = write_all(fd, data, len, tmp, err)))
        goto done;
    if (fsync(fd) != 0) {
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot fsync %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot close %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    tmp[0] = '\0'; /* renamed: nothing to remove */
    /* The rename is durable only once the folder's entry is on disk. */
    dir_of(path, dir, sizeof(dir));
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot fsync the folder %s: %s", dir, strerror(errno));
done:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tmp[0])
        unlink(tmp);
    return st;
}

arb_status train_checkpoint_write(const char *path, const train_ckpt_meta *meta,
                                  train_model *m, arb_err *err)
{
    arb_status st = ARB_OK;
    size_t data_bytes = 0;
    for (int i = 0; i < m->n_tensors; i++)
        data_bytes += m->tensors[i].bytes;
    size_t table = (size_t)m->n_tensors * TRAIN_CKPT_ENTRY_SIZE;
    size_t size = TRAIN_CKPT_HEADER_SIZE + table + data_bytes + TRAIN_CKPT_HASH_SIZE;
    uint8_t *buf = calloc(size, 1);
    if (!buf)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory for a checkpoint of %zu bytes", size);
    encode_header(buf, meta, size, m->n_tensors);
    size_t offset = TRAIN_CKPT_HEADER_SIZE + table;
    for (int i = 0; i < m->n_tensors; i++) {
        const train_tensor *t = &m->tensors[i];
        uint8_t *e = buf + TRAIN_CKPT_HEADER_SIZE + (size_t)i * TRAIN_CKPT_ENTRY_SIZE;
        memcpy(e + ENT_NAME, t->name, strnlen(t->name, TRAIN_TENSOR_NAME_MAX - 1));
        put_u32(e + ENT_DTYPE, (uint32_t)t->dtype);
        put_u32(e + ENT_NDIM, 2);
        put_u64(e + ENT_DIM0, (uint64_t)t->dims[0]);
        put_u64(e + ENT_DIM1, (uint64_t)t->dims[1]);
        put_u64(e + ENT_OFFSET, offset);
        put_u64(e + ENT_BYTES, t->bytes);
        st = arb_backend_download(m->be, buf + offset, t->data, t->bytes);
        if (st != ARB_OK) {
            train_backend_fail(m->be, st, err, "reading the model state for a checkpoint");
            goto done;
        }
        offset += t->bytes;
    }
    arb_sha256(buf, size - TRAIN_CKPT_HASH_SIZE, buf + size - TRAIN_CKPT_HASH_SIZE);
    st = train_write_file_atomic(path, buf, size, 0644, err);
done:
    free(buf);
    return st;
}

/* ---- reading ---------------------------------------------------------------- */

void train_checkpoint_free(train_ckpt *ck)
{
    free(ck->file);
    memset(ck, 0, sizeof(*ck));
}

/* Validation steps 1-4 of docs/checkpoint-format.md (magic, version,
 * header size, the size field against the file's length `n`) on the first
 * `have` bytes of the file: read_file runs them on the first
 * FRONT_BYTES before it reads the rest, train_checkpoint_read again on the
 * whole file (which may have changed in between). */
#define FRONT_BYTES (OFF_FILE_SIZE + 8)

static arb_status check_front(const char *path, const uint8_t *f, size_t have, size_t n,
                              arb_err *err)
{
    if (have < 8 || memcmp(f + OFF_MAGIC, TRAIN_CKPT_MAGIC, 8) != 0)
        return ARB_FAIL(err, ARB_ERR_FORMAT,
                        "%s is not an arb-train checkpoint (bad magic: expected \"ARBCKPT\\0\")",
                        path);
    if (have < OFF_HEADER_SIZE + 4)
        return ARB_FAIL(err, ARB_ERR_FORMAT, "checkpoint %s is truncated (%zu bytes)", path, n);
    uint32_t version = get_u32(f + OFF_VERSION);
    if (version > TRAIN_CKPT_VERSION)
        return ARB_FAIL(err, ARB_ERR_FORMAT,
                        "checkpoint %s has format version %u, newer than this arb-train reads "
                        "(%d): use a newer arb-train",
                        path, version, TRAIN_CKPT_VERSION);
    if (version != TRAIN_CKPT_VERSION)
        return ARB_FAIL(err, ARB_ERR_FORMAT, "checkpoint %s has unknown format version %u", path,
                        version);
    uint32_t header_size = get_u32(f + OFF_HEADER_SIZE);
    if (header_size != TRAIN_CKPT_HEADER_SIZE)
        return ARB_FAIL(err, ARB_ERR_FORMAT,
                        "checkpoint %s: header size %u, expected %d for format version %d", path,
                        header_size, TRAIN_CKPT_HEADER_SIZE, TRAIN_CKPT_VERSION);
    /* n >= 192 past this test, so `have` (n, or FRONT_BYTES) holds the size field. */
    if (n < TRAIN_CKPT_HEADER_SIZE + TRAIN_CKPT_HASH_SIZE || have < FRONT_BYTES)
        return ARB_FAIL(err, ARB_ERR_FORMAT,
                        "checkpoint %s is truncated: %zu bytes, shorter than a header and "
                        "checksum",
                        path, n);
    uint64_t declared = get_u64(f + OFF_FILE_SIZE);
    if (declared != n)
        return ARB_FAIL(err, ARB_ERR_FORMAT,
                        "checkpoint %s is %s: %zu bytes, its header says %llu", path,
                        n < declared ? "truncated" : "longer than written", n,
                        (unsigned long long)declared);
    return ARB_OK;
}

static arb_status read_file(const char *path, uint8_t **out, size_t *len, arb_err *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return ARB_FAIL(err, e == ENOENT ? ARB_ERR_NOT_FOUND : ARB_ERR_IO,
                        "cannot open checkpoint %s: %s", path, strerror(e));
    }
    arb_status st = ARB_OK;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = ARB_FAIL(err, ARB_ERR_IO, "checkpoint %s is not a regular file", path);
        goto done;
    }
    /* A checkpoint of the largest configuration is well under 1 GiB. */
    if (sb.st_size > ((off_t)1 << 34)) {
        st = ARB_FAIL(err, ARB_ERR_FORMAT, "checkpoint %s is %lld bytes: too large to be one",
                      path, (long long)sb.st_size);
        goto done;
    }
    size_t n = (size_t)sb.st_size;
    /* Check the fixed fields first: a huge file that is no checkpoint (a
     * corpus named by mistake) is refused after FRONT_BYTES, not read whole
     * into memory (gigabytes, minutes) only to fail at its magic. */
    uint8_t front[FRONT_BYTES];
    size_t have = fread(front, 1, n < sizeof(front) ? n : sizeof(front), f);
    if (have != (n < sizeof(front) ? n : sizeof(front))) {
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot read checkpoint %s", path);
        goto done;
    }
    if ((st = check_front(path, front, have, n, err)) != ARB_OK)
        goto done;
    if (fseek(f, 0, SEEK_SET) != 0) {
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot read checkpoint %s: %s", path, strerror(errno));
        goto done;
    }
    *out = malloc(n ? n : 1);
    if (!*out) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory reading checkpoint %s", path);
        goto done;
    }
    if (n && fread(*out, 1, n, f) != n) {
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot read checkpoint %s", path);
        goto done;
    }
    *len = n;
done:
    fclose(f);
    if (st != ARB_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

arb_status train_checkpoint_read(const char *path, train_ckpt *ck, arb_err *err)
{
    memset(ck, 0, sizeof(*ck));
    arb_status st = read_file(path, &ck->file, &ck->file_len, err);
    if (st != ARB_OK)
        return st;
    const uint8_t *f = ck->file;
    const size_t n = ck->file_len;
    train_ckpt_meta *meta = &ck->meta;

    st = check_front(path, f, n, n, err);
    if (st != ARB_OK)
        goto done;
    uint8_t digest[32];
    arb_sha256(f, n - TRAIN_CKPT_HASH_SIZE, digest);
    if (memcmp(digest, f + n - TRAIN_CKPT_HASH_SIZE, TRAIN_CKPT_HASH_SIZE) != 0) {
        st = ARB_FAIL(err, ARB_ERR_CORRUPT,
                      "checkpoint %s is corrupt: its SHA-256 does not match its contents", path);
        goto done;
    }

    /* The checksum holds: the rest is checked as a malformed writer's output. */
    memcpy(meta->model.name, f + OFF_CONFIG_NAME, TRAIN_CONFIG_NAME_MAX);
    meta->model.name[TRAIN_CONFIG_NAME_MAX - 1] = '\0';
    meta->model.ctx = (int)get_u32(f + OFF_CTX);
    meta->model.D = (int)get_u32(f + OFF_D);
    meta->model.H = (int)get_u32(f + OFF_H);
    meta->model.L = (int)get_u32(f + OFF_L);
    meta->model.gs = (int)get_u32(f + OFF_GS);
    meta->model.batch = (int)get_u32(f + OFF_BATCH);
    meta->rule.theta = (int)get_u32(f + OFF_THETA);
    meta->rule.theta_start = (int)get_u32(f + OFF_THETA_START);
    meta->rule.theta_end = (int)get_u32(f + OFF_THETA_END);
    meta->rule.theta_steps = (int)get_u32(f + OFF_THETA_STEPS);
    meta->rule.phi = (int)get_u32(f + OFF_PHI);
    meta->rule.e_layers = get_u32(f + OFF_E_LAYERS);
    meta->rule.e_score = (arb_e_score)get_u32(f + OFF_E_SCORE);
    meta->seed = get_u64(f + OFF_SEED);
    meta->step = (int64_t)get_u64(f + OFF_STEP);
    meta->data_len = get_u64(f + OFF_DATA_LEN);
    memcpy(meta->data_sha256, f + OFF_DATA_SHA, 32);

    arb_err local = {0};
    if (get_u32(f + OFF_VOCAB) != TRAIN_VOCAB ||
        train_model_config_check(&meta->model, &local) != ARB_OK) {
        st = ARB_FAIL(err, ARB_ERR_FORMAT, "checkpoint %s: invalid model configuration%s%s", path,
                      local.msg[0] ? ": " : "", local.msg);
        goto done;
    }
    const train_rule *r = &meta->rule;
    if (r->theta < 1 || r->theta > 127 || r->theta_start < 1 || r->theta_start > 127 ||
        r->theta_end < 1 || r->theta_end > 127 || r->theta_steps < 0 || r->phi < 0 ||
        r->phi > 127 || (r->e_layers & ~7u) ||
        (r->e_score != ARB_E_SCORE_GRAD && r->e_score != ARB_E_SCORE_SIGN) || meta->step < 0) {
        st = ARB_FAIL(err, ARB_ERR_FORMAT, "checkpoint %s: invalid update rule or step", path);
        goto done;
    }

    uint32_t count = get_u32(f + OFF_N_TENSORS);
    if (count > TRAIN_MAX_TENSORS || get_u32(f + OFF_ENTRY_SIZE) != TRAIN_CKPT_ENTRY_SIZE) {
        st = ARB_FAIL(err, ARB_ERR_FORMAT,
                      "checkpoint %s: tensor table of %u entries of %u bytes is malformed", path,
                      count, get_u32(f + OFF_ENTRY_SIZE));
        goto done;
    }
    uint64_t expect = TRAIN_CKPT_HEADER_SIZE + (uint64_t)count * TRAIN_CKPT_ENTRY_SIZE;
    if (expect + TRAIN_CKPT_HASH_SIZE > n) {
        st = ARB_FAIL(err, ARB_ERR_FORMAT, "checkpoint %s: the tensor table runs past the end",
                      path);
        goto done;
    }
    ck->n_tensors = (int)count;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = f + TRAIN_CKPT_HEADER_SIZE + (size_t)i * TRAIN_CKPT_ENTRY_SIZE;
        train_ckpt_entry *t = &ck->tensors[i];
        memcpy(t->name, e + ENT_NAME, TRAIN_TENSOR_NAME_MAX);
        if (memchr(t->name, '\0', TRAIN_TENSOR_NAME_MAX) == NULL) {
            st = ARB_FAIL(err, ARB_ERR_FORMAT, "checkpoint %s: tensor %u has an unterminated name",
                          path, i);
            goto done;
        }
        uint32_t dtype = get_u32(e + ENT_DTYPE);
        t->dtype = (train_dtype)dtype;
        t->dims[0] = (int64_t)get_u64(e + ENT_DIM0);
        t->dims[1] = (int64_t)get_u64(e + ENT_DIM1);
        t->offset = get_u64(e + ENT_OFFSET);
        t->bytes = get_u64(e + ENT_BYTES);
        if (dtype != TRAIN_DTYPE_TRIT5 && dtype != TRAIN_DTYPE_INT8) {
            st = ARB_FAIL(err, ARB_ERR_FORMAT,
                          "checkpoint %s: tensor %s has element type %u; only packed trits (1) "
                          "and int8 (2) exist",
                          path, t->name, dtype);
            goto done;
        }
        /* Data are contiguous, in table order, ending at the checksum. */
        if (get_u32(e + ENT_NDIM) != 2 || t->offset != expect ||
            t->bytes > n - TRAIN_CKPT_HASH_SIZE - expect) {
            st = ARB_FAIL(err, ARB_ERR_FORMAT,
                          "checkpoint %s: tensor %s has a malformed table entry (offset %llu, "
                          "%llu bytes)",
                          path, t->name, (unsigned long long)t->offset,
                          (unsigned long long)t->bytes);
            goto done;
        }
        expect += t->bytes;
    }
    if (expect + TRAIN_CKPT_HASH_SIZE != n) {
        st = ARB_FAIL(err, ARB_ERR_FORMAT,
                      "checkpoint %s: %llu bytes between the last tensor and the checksum", path,
                      (unsigned long long)(n - TRAIN_CKPT_HASH_SIZE - expect));
        goto done;
    }
done:
    if (st != ARB_OK)
        train_checkpoint_free(ck);
    return st;
}

arb_status train_checkpoint_apply(const train_ckpt *ck, const char *path, train_model *m,
                                  arb_err *err)
{
    arb_status st = ARB_OK;
    if (ck->n_tensors != m->n_tensors)
        return ARB_FAIL(err, ARB_ERR_FORMAT,
                        "checkpoint %s holds %d tensors; the %s model has %d", path,
                        ck->n_tensors, m->cfg.name, m->n_tensors);
    /* First every check, then every upload: a refusal changes nothing. */
    for (int i = 0; i < m->n_tensors; i++) {
        const train_tensor *want = &m->tensors[i];
        const uint8_t *data = ck->file + ck->tensors[i].offset;
        if (strcmp(ck->tensors[i].name, want->name) != 0 || ck->tensors[i].dtype != want->dtype ||
            ck->tensors[i].dims[0] != want->dims[0] || ck->tensors[i].dims[1] != want->dims[1] ||
            ck->tensors[i].bytes != want->bytes)
            return ARB_FAIL(err, ARB_ERR_FORMAT,
                            "checkpoint %s: tensor %d is %s %lldx%lld (%llu bytes); the model "
                            "expects %s %lldx%lld (%zu bytes)",
                            path, i, ck->tensors[i].name, (long long)ck->tensors[i].dims[0],
                            (long long)ck->tensors[i].dims[1],
                            (unsigned long long)ck->tensors[i].bytes, want->name,
                            (long long)want->dims[0], (long long)want->dims[1], want->bytes);
        arb_err local = {0};
        const char *suffix = strrchr(want->name, '.');
        if (want->dtype == TRAIN_DTYPE_TRIT5) {
            st = arb_ternary_validate(data, (size_t)(want->dims[0] * want->dims[1]), &local);
        } else if (suffix && strcmp(suffix, ".E") == 0) {
            st = arb_scale_validate((const int8_t *)data, want->bytes, &local);
        } else {
            /* Accumulators are clamped to +-threshold <= 127. */
            for (size_t j = 0; j < want->bytes && st == ARB_OK; j++)
                if ((int8_t)data[j] == -128)
                    st = ARB_FAIL(&local, ARB_ERR_FORMAT, "accumulator %zu is -128", j);
        }
        if (st != ARB_OK)
            return ARB_FAIL(err, ARB_ERR_FORMAT, "checkpoint %s: tensor %s: %s", path, want->name,
                            local.msg);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        st = arb_backend_upload(m->be, m->tensors[i].data, ck->file + ck->tensors[i].offset,
                                m->tensors[i].bytes);
        if (st != ARB_OK)
            return train_backend_fail(m->be, st, err, "loading a checkpoint");
    }
    return train_model_set_step(m, ck->meta.step, err);
}

int train_checkpoint_sweep(const char *path)
{
    char dir[4096];
    dir_of(path, dir, sizeof(dir));
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char prefix[4096];
    snprintf(prefix, sizeof(prefix), "%s.tmp.", base);
    size_t plen = strlen(prefix);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strncmp(ent->d_name, prefix, plen) != 0)
            continue;
        char *end = NULL;
        long pid = strtol(ent->d_name + plen, &end, 10);
        if (!end || *end || pid <= 0)
            continue;
        /* Leave a live writer's file alone (two runs on one target). */
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char full[8192];
        snprintf(full, sizeof(full), "%s/%s", dir, ent->d_name);
        if (unlink(full) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
