/*
 * checkpoint_doc.c - the checkpoint reader of docs/checkpoint-format.md
 * (see checkpoint_doc.h). Offsets are the page's; integers little-endian.
 */
#include "checkpoint_doc.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "arb/sha256.h"
#include "files.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

void th_ckpt_load(const char *path, th_ckpt *v)
{
    memset(v, 0, sizeof(*v));
    v->len = th_file_read(path, &v->data);
    const uint8_t *d = v->data;
    cr_assert_geq(v->len, 160u + 32u, "%s is torn: %zu bytes", path, v->len);
    cr_assert_eq(memcmp(d, "ARBCKPT", 8), 0, "%s: bad magic", path);
    cr_assert_eq(le32(d + 8), 1u, "%s: not version 1", path);
    cr_assert_eq(le32(d + 12), 160u, "%s: header size", path);
    cr_assert_eq(le64(d + 16), v->len, "%s is torn: %zu bytes, its header says %llu", path, v->len,
                 (unsigned long long)le64(d + 16));
    uint8_t digest[32];
    arb_sha256(d, v->len - 32, digest);
    cr_assert_eq(memcmp(digest, d + v->len - 32, 32), 0, "%s: SHA-256 mismatch (torn)", path);
    v->step = le64(d + 104);
    v->count = le32(d + 152);
    cr_assert_eq(le32(d + 156), 72u, "%s: table entry size", path);
    cr_assert_leq(v->count, 128u, "%s: %u tensors", path, v->count);
    uint64_t expect = 160 + 72 * (uint64_t)v->count;
    cr_assert_leq(expect + 32, v->len, "%s: the table runs past the end", path);
    for (uint32_t i = 0; i < v->count; i++) {
        const uint8_t *e = d + 160 + 72 * i;
        th_ckpt_tensor *t = &v->t[i];
        memcpy(t->name, e, 32);
        t->name[32] = '\0';
        t->dtype = le32(e + 32);
        cr_assert_eq(le32(e + 36), 2u, "%s: ndim", t->name);
        t->dims[0] = le64(e + 40);
        t->dims[1] = le64(e + 48);
        t->offset = le64(e + 56);
        t->bytes = le64(e + 64);
        cr_assert_eq(t->offset, expect, "%s: not contiguous", t->name);
        expect += t->bytes;
    }
    cr_assert_eq(expect + 32, v->len, "%s: data do not end at the checksum", path);
}

const th_ckpt_tensor *th_ckpt_find(const th_ckpt *v, const char *name)
{
    for (uint32_t i = 0; i < v->count; i++)
        if (strcmp(v->t[i].name, name) == 0)
            return &v->t[i];
    cr_assert_fail("no tensor %s in the checkpoint", name);
    return NULL;
}

void th_ckpt_free(th_ckpt *v)
{
    free(v->data);
    v->data = NULL;
}
