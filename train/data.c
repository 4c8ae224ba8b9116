/*
 * data.c - corpus loading, the 95/5 split, the unigram entropy baseline and
 * evenly spaced evaluation positions.
 */
#include "data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arb/sha256.h"

arb_status train_corpus_load(const char *path, train_corpus *out, arb_err *err)
{
    memset(out, 0, sizeof(*out));
    arb_status st = ARB_OK;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return ARB_FAIL(err, e == ENOENT ? ARB_ERR_NOT_FOUND : ARB_ERR_IO, "cannot open %s: %s",
                        path, strerror(e));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = ARB_FAIL(err, ARB_ERR_IO, "%s is not a regular file", path);
        goto done;
    }
    int64_t len = (int64_t)sb.st_size;
    out->bytes = malloc(len > 0 ? (size_t)len : 1);
    if (!out->bytes) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory reading %s (%lld bytes)", path,
                      (long long)len);
        goto done;
    }
    if (len > 0 && fread(out->bytes, 1, (size_t)len, f) != (size_t)len) {
        st = ARB_FAIL(err, ARB_ERR_IO, "cannot read %s: %s", path,
                      ferror(f) ? strerror(errno) : "the file shrank while being read");
        goto done;
    }
    out->len = len;
    out->train_len = len;
    arb_sha256(out->bytes, (size_t)len, out->sha256);
done:
    fclose(f);
    if (st != ARB_OK)
        train_corpus_free(out);
    return st;
}

arb_status train_corpus_split(train_corpus *c, int ctx, const char *path, arb_err *err)
{
    int64_t held = c->len / 20;
    c->train_len = c->len - held;
    /* Training needs a position in [ctx, train_len); evaluation one in
     * [train_len + ctx, len). */
    if (c->train_len <= ctx || held <= ctx)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "%s has %lld bytes: too short for a context of %d bytes (the held-out "
                        "5%% must exceed the context; use at least %lld bytes)",
                        path, (long long)c->len, ctx, (long long)(20 * (ctx + 1)));
    return ARB_OK;
}

void train_corpus_free(train_corpus *c)
{
    free(c->bytes);
    memset(c, 0, sizeof(*c));
}

double train_unigram_entropy(const uint8_t *bytes, int64_t n)
{
    int64_t count[256] = {0};
    for (int64_t i = 0; i < n; i++)
        count[bytes[i]]++;
    double h = 0.0;
    for (int v = 0; v < 256; v++) {
        if (count[v] == 0)
            continue;
        double p = (double)count[v] / (double)n;
        h -= p * log2(p);
    }
    return h;
}

void train_even_positions(int64_t lo, int64_t hi, int64_t count, int64_t *out)
{
    /* floor(i * span / count) without overflow: with span = q * count + r,
     * i * span / count = i * q + (i * r) / count exactly, and i * r < count^2
     * stays far inside 64 bits for count <= 2^30. */
    int64_t span = hi - lo, q = span / count, r = span % count;
    for (int64_t i = 0; i < count; i++)
        out[i] = lo + i * q + (i * r) / count;
}

int64_t train_eval_count(int64_t avail, int64_t max_positions, int64_t batch)
{
    int64_t n = avail < max_positions ? avail : max_positions;
    if (n >= batch)
        return n / batch * batch;
    return n;
}
