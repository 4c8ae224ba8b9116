/*
 * key.c - the canonical text of a cache key and its SHA-256 (the row's
 * primary key).
 *
 * The text names every field, one per line, in a fixed order. Strings are
 * escaped ('\\' -> "\\\\", newline -> "\\n") so that no value can forge the
 * next line: two different keys never share a text. Changing the order or
 * the format changes every hash, i.e. invalidates every cache: don't.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "arb/sha256.h"
#include "cache_internal.h"

/* Where the text goes: a caller's buffer (which may be too small; `used`
 * counts the full length) and/or a running SHA-256 (staged in `stage`). */
typedef struct text_out {
    char *buf;
    size_t len;  /* capacity of buf */
    size_t used; /* characters the full text needs so far */
    arb_sha256_ctx *sha;
    char stage[256];
    size_t staged;
} text_out;

static void out_char(text_out *o, char ch)
{
    if (o->buf && o->used + 1 < o->len)
        o->buf[o->used] = ch;
    o->used++;
    if (o->sha) {
        o->stage[o->staged++] = ch;
        if (o->staged == sizeof(o->stage)) {
            arb_sha256_update(o->sha, o->stage, o->staged);
            o->staged = 0;
        }
    }
}

static void out_raw(text_out *o, const char *s)
{
    for (; *s; s++)
        out_char(o, *s);
}

static void out_str(text_out *o, const char *name, const char *value)
{
    out_raw(o, name);
    out_char(o, '=');
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\')
            out_raw(o, "\\\\");
        else if (*p == '\n')
            out_raw(o, "\\n");
        else
            out_char(o, *p);
    }
    out_char(o, '\n');
}

static void out_int(text_out *o, const char *name, int64_t value)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRId64, value);
    out_raw(o, name);
    out_char(o, '=');
    out_raw(o, num);
    out_char(o, '\n');
}

/* The one definition of the canonical order. */
static void key_write(const arb_cache_key *key, text_out *o)
{
    out_str(o, "kernel", key->kernel);
    out_str(o, "name_expr", key->name_expr);
    out_int(o, "M", key->M);
    out_int(o, "N", key->N);
    out_int(o, "K", key->K);
    out_int(o, "gs", key->gs);
    out_int(o, "bm", key->bm);
    out_int(o, "bn", key->bn);
    out_int(o, "bk", key->bk);
    out_int(o, "tm", key->tm);
    out_int(o, "tn", key->tn);
    out_int(o, "warps", key->warps);
    out_int(o, "stages", key->stages);
    out_str(o, "precision", key->precision);
    out_str(o, "arch", key->arch);
    out_str(o, "nvrtc_version", key->nvrtc_version);
    out_str(o, "template_sha", key->template_sha);
    out_str(o, "options", key->options);
    out_str(o, "env", key->env);
}

size_t arb_cache_key_text(const arb_cache_key *key, char *buf, size_t len)
{
    text_out o = {.buf = buf, .len = len};
    if (buf && len > 0)
        buf[0] = '\0';
    if (!key)
        return 0;
    key_write(key, &o);
    if (buf && len > 0)
        buf[o.used < len ? o.used : len - 1] = '\0';
    return o.used;
}

void arb_cache_key_hash(const arb_cache_key *key, char hash[ARB_CACHE_HASH_LEN])
{
    arb_sha256_ctx sha;
    uint8_t digest[32];
    text_out o = {.sha = &sha};
    arb_sha256_init(&sha);
    if (key)
        key_write(key, &o);
    arb_sha256_update(&sha, o.stage, o.staged);
    arb_sha256_final(&sha, digest);
    arb_sha256_hex(digest, hash);
}
