/*
 * ternary.h - the packed ternary format and its int8 log2 scales (SPEC §2).
 *
 * A ternary matrix T in {-1,0,+1}^(N x K) is stored row-major: element (n,k)
 * has linear index lin = n*K + k. Five trits share a byte, base 3, lowest
 * digit first: with v = T + 1 in {0,1,2}, byte b holds
 *     sum_{i=0..4} v(5b+i) * 3^i.
 * Padding trits past N*K are T = 0 (v = 1). A byte >= 243 is invalid.
 *
 * Scales: one int8 E per group of `gs` consecutive linear indices,
 * g = lin / gs, and the weight is W[n,k] = T[n,k] * 2^E[g], E in [-32, 31].
 * gs divides K (element, g32, g64, g128, row) or is a multiple of K that
 * divides N*K (tensor, or several rows).
 *
 * Training state is integer only: T_packed (uint8), E, T_accum, E_accum (int8).
 */
#ifndef ARB_TERNARY_H
#define ARB_TERNARY_H

#include <stddef.h>
#include <stdint.h>

#include "arb/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ARB_E_MIN (-32)
#define ARB_E_MAX 31
#define ARB_TRITS_PER_BYTE 5
#define ARB_PACKED_BYTE_MAX 242 /* 3^5 - 1 */

/* A ternary weight with its scales and training state. The pointers live in
 * the memory of the backend that uses it (host for cpu, device for jit).
 * T_accum and E_accum may be NULL for frozen weights (RMSNorm). */
typedef struct arb_ternary {
    int64_t N;          /* rows (outputs) */
    int64_t K;          /* columns (inputs) */
    int64_t gs;         /* scale group size, in linear indices */
    uint8_t *T_packed;  /* arb_packed_size(N*K) bytes */
    int8_t *E;          /* N*K/gs log2 scales */
    int8_t *T_accum;    /* N*K flip accumulators, or NULL */
    int8_t *E_accum;    /* N*K/gs scale accumulators, or NULL */
} arb_ternary;

/* The six scale types every kernel test covers (SPEC §2). */
typedef enum arb_scale_kind {
    ARB_SCALE_ELEMENT = 0, /* gs = 1 */
    ARB_SCALE_G32     = 1, /* gs = 32 */
    ARB_SCALE_G64     = 2, /* gs = 64 */
    ARB_SCALE_G128    = 3, /* gs = 128 */
    ARB_SCALE_ROW     = 4, /* gs = K */
    ARB_SCALE_TENSOR  = 5, /* gs = N*K */
    ARB_SCALE_KIND_COUNT
} arb_scale_kind;

/* Bytes needed for `count` packed trits: ceil(count / 5). */
static inline size_t arb_packed_size(size_t count) { return (count + 4) / 5; }

/* Bytes to allocate for `count` packed trits on a device: the packed size
 * rounded up to a multiple of 4. GPU kernels update trits in place with
 * 32-bit atomics on the aligned word holding a byte, so the word of the last
 * byte must lie inside the allocation. The extra bytes hold no trits. */
static inline size_t arb_packed_alloc_size(size_t count)
{
    return (arb_packed_size(count) + 3) & ~(size_t)3;
}

/* Number of scale groups of a weight: N*K/gs (gs already checked). */
static inline size_t arb_scale_groups(int64_t N, int64_t K, int64_t gs)
{
    return (size_t)(N * K / gs);
}

/* Powers of three, for digit arithmetic on packed bytes. */
extern const uint8_t arb_pow3[5];

/* The trit at linear index `lin` (-1, 0 or +1). The byte must be valid. */
static inline int arb_ternary_get(const uint8_t *packed, size_t lin)
{
    unsigned byte = packed[lin / 5];
    unsigned digit = (byte / arb_pow3[lin % 5]) % 3;
    return (int)digit - 1;
}

/* Overwrite the trit at `lin` with t in {-1,0,+1}, keeping the other four. */
static inline void arb_ternary_set(uint8_t *packed, size_t lin, int t)
{
    uint8_t *byte = &packed[lin / 5];
    unsigned p = arb_pow3[lin % 5];
    unsigned old = (*byte / p) % 3;
    *byte = (uint8_t)(*byte + ((unsigned)(t + 1) - old) * p);
}

/* Pack `count` trits from T (each -1, 0 or +1) into arb_packed_size(count)
 * bytes, padding the last byte with zeros (v = 1). */
void arb_ternary_pack(const int8_t *T, size_t count, uint8_t *packed);

/* Unpack `count` trits. The packed bytes must be valid. */
void arb_ternary_unpack(const uint8_t *packed, size_t count, int8_t *T);

/* Check packed data loaded from outside: every byte < 243 and every padding
 * trit zero. On failure names the first bad byte's offset. */
arb_status arb_ternary_validate(const uint8_t *packed, size_t count, arb_err *err);

/* Check that gs is a valid group size for an N x K weight (SPEC §2):
 * gs >= 1 and either gs divides K, or gs is a multiple of K dividing N*K. */
arb_status arb_scale_check(int64_t N, int64_t K, int64_t gs, arb_err *err);

/* The group size of a scale kind for an N x K weight. */
int64_t arb_scale_gs(arb_scale_kind kind, int64_t N, int64_t K);

/* Short name of a scale kind ("element", "g32", ..., "tensor"). */
const char *arb_scale_name(arb_scale_kind kind);

/* Check that every E lies in [ARB_E_MIN, ARB_E_MAX]. */
arb_status arb_scale_validate(const int8_t *E, size_t groups, arb_err *err);

#ifdef __cplusplus
}
#endif
#endif /* ARB_TERNARY_H */
