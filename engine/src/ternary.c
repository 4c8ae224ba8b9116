/*
 * ternary.c - pack, unpack and validate the packed ternary format (SPEC §2).
 */
#include "arb/ternary.h"

const uint8_t arb_pow3[5] = {1, 3, 9, 27, 81};

void arb_ternary_pack(const int8_t *T, size_t count, uint8_t *packed)
{
    size_t bytes = arb_packed_size(count);
    for (size_t b = 0; b < bytes; b++) {
        unsigned value = 0;
        for (int i = 4; i >= 0; i--) {
            size_t lin = 5 * b + (size_t)i;
            unsigned v = lin < count ? (unsigned)(T[lin] + 1) : 1u; /* padding: T = 0 */
            value = value * 3 + v;
        }
        packed[b] = (uint8_t)value;
    }
}

void arb_ternary_unpack(const uint8_t *packed, size_t count, int8_t *T)
{
    for (size_t lin = 0; lin < count; lin++)
        T[lin] = (int8_t)arb_ternary_get(packed, lin);
}

arb_status arb_ternary_validate(const uint8_t *packed, size_t count, arb_err *err)
{
    size_t bytes = arb_packed_size(count);
    for (size_t b = 0; b < bytes; b++) {
        if (packed[b] > ARB_PACKED_BYTE_MAX)
            return ARB_FAIL(err, ARB_ERR_FORMAT,
                            "packed ternary byte %zu is %u; valid bytes are 0..242 "
                            "(five base-3 trits): the data is damaged or not packed ternary",
                            b, (unsigned)packed[b]);
    }
    for (size_t lin = count; lin < 5 * bytes; lin++) {
        if (arb_ternary_get(packed, lin) != 0)
            return ARB_FAIL(err, ARB_ERR_FORMAT,
                            "padding trit %zu of packed ternary data (count %zu) is nonzero; "
                            "padding must be T = 0",
                            lin, count);
    }
    return ARB_OK;
}

arb_status arb_scale_check(int64_t N, int64_t K, int64_t gs, arb_err *err)
{
    if (N < 1 || K < 1)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "weight shape %lldx%lld: N and K must be >= 1",
                        (long long)N, (long long)K);
    if (gs < 1)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "group size gs=%lld must be >= 1", (long long)gs);
    if (K % gs == 0)
        return ARB_OK;
    if (gs % K == 0 && (N * K) % gs == 0)
        return ARB_OK;
    return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                    "group size gs=%lld does not fit a %lldx%lld weight: gs must divide K=%lld, "
                    "or be a multiple of K that divides N*K=%lld",
                    (long long)gs, (long long)N, (long long)K, (long long)K, (long long)(N * K));
}

int64_t arb_scale_gs(arb_scale_kind kind, int64_t N, int64_t K)
{
    switch (kind) {
    case ARB_SCALE_ELEMENT: return 1;
    case ARB_SCALE_G32:     return 32;
    case ARB_SCALE_G64:     return 64;
    case ARB_SCALE_G128:    return 128;
    case ARB_SCALE_ROW:     return K;
    case ARB_SCALE_TENSOR:  return N * K;
    default:                return 0;
    }
}

const char *arb_scale_name(arb_scale_kind kind)
{
    static const char *const names[ARB_SCALE_KIND_COUNT] = {"element", "g32", "g64",
                                                            "g128",    "row", "tensor"};
    if ((int)kind < 0 || kind >= ARB_SCALE_KIND_COUNT)
        return "unknown";
    return names[kind];
}

arb_status arb_scale_validate(const int8_t *E, size_t groups, arb_err *err)
{
    for (size_t g = 0; g < groups; g++) {
        if (E[g] < ARB_E_MIN || E[g] > ARB_E_MAX)
            return ARB_FAIL(err, ARB_ERR_FORMAT, "scale E[%zu] = %d is outside [%d, %d]", g,
                            (int)E[g], ARB_E_MIN, ARB_E_MAX);
    }
    return ARB_OK;
}
