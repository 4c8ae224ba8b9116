/*
 * sha256.h - SHA-256 (FIPS 180-4), used for cache keys, template hashes and
 * the checksums on cubins and checkpoints.
 *
 * One implementation shared by the build-time template embedder, the cache
 * and the engine, so that a hash computed at build time equals the hash the
 * engine computes at run time for the same bytes.
 */
#ifndef ARB_SHA256_H
#define ARB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct arb_sha256_ctx {
    uint32_t state[8];
    uint64_t length;       /* bytes hashed so far */
    uint8_t block[64];     /* pending input */
    size_t block_len;      /* bytes used in `block` */
} arb_sha256_ctx;

void arb_sha256_init(arb_sha256_ctx *ctx);
void arb_sha256_update(arb_sha256_ctx *ctx, const void *data, size_t len);
void arb_sha256_final(arb_sha256_ctx *ctx, uint8_t digest[32]);

/* One-shot digest of `len` bytes. */
void arb_sha256(const void *data, size_t len, uint8_t digest[32]);

/* Lower-case hex of a digest: `hex` receives 64 characters and a NUL. */
void arb_sha256_hex(const uint8_t digest[32], char hex[65]);

/* One-shot hex digest. */
void arb_sha256_hex_of(const void *data, size_t len, char hex[65]);

#ifdef __cplusplus
}
#endif
#endif /* ARB_SHA256_H */
