/*
 * test_ternary_format.c - the packed ternary format and its scales (SPEC §2):
 * pack/unpack, padding, validation of loaded data, single-trit access, the
 * six scale types and the size helpers.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* The byte SPEC §2 defines for five trits, computed digit by digit. */
static unsigned spec_byte(const int8_t *T, size_t count, size_t b)
{
    unsigned value = 0, p = 1;
    for (size_t i = 0; i < 5; i++, p *= 3) {
        size_t lin = 5 * b + i;
        unsigned v = lin < count ? (unsigned)(T[lin] + 1) : 1u; /* padding: T = 0 */
        value += v * p;
    }
    return value;
}

/* Counts that are not multiples of 5 leave 1..4 padding trits in the last
 * byte; pack must write exactly ceil(count/5) bytes, each the SPEC's base-3
 * number, and unpack must give the trits back. */
Test(ternary_format, pack_unpack_round_trip)
{
    th_rng r = th_rng_for("ternary_format/pack_unpack_round_trip");
    size_t counts[26];
    int n_counts = 0;
    for (size_t c = 1; c <= 23; c++)
        counts[n_counts++] = c;
    counts[n_counts++] = 1003;
    counts[n_counts++] = 1000;
    counts[n_counts++] = 4099;
    for (int ci = 0; ci < n_counts; ci++) {
        size_t count = counts[ci], bytes = arb_packed_size(count);
        int8_t *T = malloc(count), *back = malloc(count);
        uint8_t *packed = malloc(bytes + 8);
        th_fill_trits(&r, T, count);
        memset(packed, 0xEE, bytes + 8); /* sentinel past the packed size */
        arb_ternary_pack(T, count, packed);
        for (size_t b = 0; b < bytes; b++)
            cr_assert_eq(packed[b], spec_byte(T, count, b),
                         "count %zu: byte %zu is %u, SPEC says %u (seed 0x%llx)", count, b,
                         packed[b], spec_byte(T, count, b), (unsigned long long)th_run_seed());
        for (size_t b = bytes; b < bytes + 8; b++)
            cr_assert_eq(packed[b], 0xEE, "count %zu: pack wrote byte %zu past its %zu bytes",
                         count, b, bytes);
        for (size_t lin = count; lin < 5 * bytes; lin++)
            cr_assert_eq(arb_ternary_get(packed, lin), 0, "count %zu: padding trit %zu is %d",
                         count, lin, arb_ternary_get(packed, lin));
        cr_assert_eq(arb_ternary_validate(packed, count, NULL), ARB_OK, "count %zu", count);
        memset(back, 0x55, count);
        arb_ternary_unpack(packed, count, back);
        cr_assert_arr_eq(back, T, count, "count %zu: unpack(pack(T)) != T (seed 0x%llx)", count,
                         (unsigned long long)th_run_seed());
        free(T);
        free(back);
        free(packed);
    }
}

/* Hand-computed bytes: digit i weighs 3^i, v = T + 1, lowest digit first. */
Test(ternary_format, known_bytes)
{
    const int8_t a[5] = {-1, 0, 1, -1, 0}; /* v = 0,1,2,0,1: 0 + 3 + 18 + 0 + 81 */
    const int8_t ones[5] = {1, 1, 1, 1, 1}; /* 2 * (1+3+9+27+81) = 242, the largest byte */
    const int8_t minus[5] = {-1, -1, -1, -1, -1};
    const int8_t zero[1] = {0};  /* 1 + padding 3 + 9 + 27 + 81 */
    const int8_t plus[1] = {1};  /* 2 + 120 */
    uint8_t b[1];
    arb_ternary_pack(a, 5, b);
    cr_assert_eq(b[0], 102);
    arb_ternary_pack(ones, 5, b);
    cr_assert_eq(b[0], 242);
    arb_ternary_pack(minus, 5, b);
    cr_assert_eq(b[0], 0);
    arb_ternary_pack(zero, 1, b);
    cr_assert_eq(b[0], 121);
    arb_ternary_pack(plus, 1, b);
    cr_assert_eq(b[0], 122);
}

/* Loaders must reject a byte >= 243 and say which byte. */
Test(ternary_format, validate_rejects_bytes_above_242)
{
    const int8_t T[15] = {1, 0, -1, 1, 1, 0, 0, 1, -1, -1, 1, 1, 1, 1, 1};
    uint8_t packed[3];
    arb_ternary_pack(T, 15, packed);
    cr_assert_eq(arb_ternary_validate(packed, 15, NULL), ARB_OK);
    cr_assert_eq(packed[2], 242, "the largest valid byte");
    const unsigned bad[] = {243, 250, 255};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t copy[3];
        memcpy(copy, packed, 3);
        copy[1] = (uint8_t)bad[i];
        arb_err err = {0};
        cr_assert_eq(arb_ternary_validate(copy, 15, &err), ARB_ERR_FORMAT, "byte %u accepted",
                     bad[i]);
        char want[64];
        snprintf(want, sizeof(want), "byte 1 is %u", bad[i]);
        cr_assert(strstr(err.msg, want) != NULL, "message '%s' does not say '%s'", err.msg,
                  want);
    }
}

/* Padding trits past N*K must be T = 0; anything else is damaged data. */
Test(ternary_format, validate_rejects_nonzero_padding)
{
    const int8_t T[7] = {1, -1, 0, 1, -1, 0, 1};
    uint8_t packed[2];
    arb_ternary_pack(T, 7, packed);
    cr_assert_eq(arb_ternary_validate(packed, 7, NULL), ARB_OK);
    for (size_t lin = 7; lin < 10; lin++) {
        for (int t = -1; t <= 1; t += 2) {
            uint8_t copy[2];
            memcpy(copy, packed, 2);
            arb_ternary_set(copy, lin, t);
            arb_err err = {0};
            cr_assert_eq(arb_ternary_validate(copy, 7, &err), ARB_ERR_FORMAT,
                         "padding trit %zu = %d accepted", lin, t);
            char want[64];
            snprintf(want, sizeof(want), "padding trit %zu", lin);
            cr_assert(strstr(err.msg, want) != NULL, "message '%s' does not say '%s'", err.msg,
                      want);
        }
    }
    /* A count that fills its last byte has no padding to check. */
    const int8_t full[10] = {1, 1, 1, 1, 1, -1, -1, -1, -1, -1};
    arb_ternary_pack(full, 10, packed);
    cr_assert_eq(arb_ternary_validate(packed, 10, NULL), ARB_OK);
}

/* get/set address one trit and leave the other four of its byte alone. */
Test(ternary_format, get_and_set_single_trits)
{
    th_rng r = th_rng_for("ternary_format/get_and_set_single_trits");
    const size_t count = 137;
    int8_t model[137], back[137];
    uint8_t packed[28];
    th_fill_trits(&r, model, count);
    arb_ternary_pack(model, count, packed);
    for (size_t lin = 0; lin < count; lin++)
        cr_assert_eq(arb_ternary_get(packed, lin), model[lin], "get(%zu)", lin);
    for (int round = 0; round < 2000; round++) {
        size_t lin = (size_t)th_range(&r, 0, (int64_t)count - 1);
        int t = (int)th_range(&r, -1, 1);
        arb_ternary_set(packed, lin, t);
        model[lin] = (int8_t)t;
        arb_ternary_unpack(packed, count, back);
        cr_assert_arr_eq(back, model, count, "after set(%zu, %d) (seed 0x%llx)", lin, t,
                         (unsigned long long)th_run_seed());
    }
    cr_assert_eq(arb_ternary_validate(packed, count, NULL), ARB_OK);
}

/* The six scale types of SPEC §2, on shapes where each fits. */
Test(ternary_format, scale_check_accepts_the_six_types)
{
    static const char *const names[ARB_SCALE_KIND_COUNT] = {"element", "g32", "g64",
                                                            "g128",    "row", "tensor"};
    for (int k = 0; k < ARB_SCALE_KIND_COUNT; k++)
        cr_assert_str_eq(arb_scale_name((arb_scale_kind)k), names[k]);
    cr_assert_eq(arb_scale_gs(ARB_SCALE_ELEMENT, 53, 384), 1);
    cr_assert_eq(arb_scale_gs(ARB_SCALE_G32, 53, 384), 32);
    cr_assert_eq(arb_scale_gs(ARB_SCALE_G64, 53, 384), 64);
    cr_assert_eq(arb_scale_gs(ARB_SCALE_G128, 53, 384), 128);
    cr_assert_eq(arb_scale_gs(ARB_SCALE_ROW, 53, 384), 384);
    cr_assert_eq(arb_scale_gs(ARB_SCALE_TENSOR, 53, 384), 53 * 384);
    for (int i = 0; i < th_shape_count; i++) {
        const th_shape *s = &th_shapes[i];
        arb_err err = {0};
        cr_assert_eq(arb_scale_check(s->N, s->K, th_shape_gs(s), &err), ARB_OK,
                     "%s %lldx%lld gs=%lld: %s", arb_scale_name(s->kind), (long long)s->N,
                     (long long)s->K, (long long)th_shape_gs(s), err.msg);
    }
    /* gs a multiple of K that divides N*K: groups of whole rows. */
    cr_assert_eq(arb_scale_check(6, 32, 64, NULL), ARB_OK);
    cr_assert_eq(arb_scale_check(6, 32, 96, NULL), ARB_OK);
    cr_assert_eq(arb_scale_check(6, 32, 192, NULL), ARB_OK);
}

static void expect_bad_gs(int64_t N, int64_t K, int64_t gs, const char *needle)
{
    arb_err err = {0};
    cr_assert_eq(arb_scale_check(N, K, gs, &err), ARB_ERR_INVALID_ARG,
                 "%lldx%lld gs=%lld accepted", (long long)N, (long long)K, (long long)gs);
    cr_assert(strstr(err.msg, needle) != NULL, "%lldx%lld gs=%lld: message '%s' lacks '%s'",
              (long long)N, (long long)K, (long long)gs, err.msg, needle);
}

/* A group size that neither divides K nor is a multiple of K dividing N*K
 * is rejected with a message naming gs and the shape. */
Test(ternary_format, scale_check_rejects_bad_group_sizes)
{
    expect_bad_gs(53, 131, 7, "gs=7");            /* divides neither K nor a row multiple */
    expect_bad_gs(53, 131, 132, "K=131");         /* K + 1 */
    expect_bad_gs(53, 32, 64, "N*K=1696");        /* 2 rows, but N is odd */
    expect_bad_gs(4, 32, 256, "gs=256");          /* 8 rows of a 4-row weight */
    expect_bad_gs(53, 131, 0, "gs=0 must be >= 1");
    expect_bad_gs(53, 131, -32, "gs=-32");
    expect_bad_gs(0, 131, 1, "must be >= 1");
    expect_bad_gs(53, 0, 1, "must be >= 1");
}

/* Scales outside [E_MIN, E_MAX] = [-32, 31] are damaged data. */
Test(ternary_format, scale_validate_range)
{
    int8_t E[4] = {ARB_E_MIN, 0, ARB_E_MAX, 5};
    cr_assert_eq(arb_scale_validate(E, 4, NULL), ARB_OK);
    E[3] = ARB_E_MAX + 1;
    arb_err err = {0};
    cr_assert_eq(arb_scale_validate(E, 4, &err), ARB_ERR_FORMAT);
    cr_assert(strstr(err.msg, "E[3] = 32") != NULL, "message: %s", err.msg);
    E[3] = ARB_E_MIN - 1;
    cr_assert_eq(arb_scale_validate(E, 4, NULL), ARB_ERR_FORMAT);
}

/* packed size = ceil(count / 5); the device allocation rounds it up to a
 * whole 32-bit word so atomics on the last byte's word stay inside. */
Test(ternary_format, packed_sizes)
{
    cr_assert_eq(arb_packed_size(0), 0);
    cr_assert_eq(arb_packed_size(1), 1);
    cr_assert_eq(arb_packed_size(5), 1);
    cr_assert_eq(arb_packed_size(6), 2);
    cr_assert_eq(arb_packed_size(1003), 201);
    cr_assert_eq(arb_packed_alloc_size(1), 4);
    cr_assert_eq(arb_packed_alloc_size(20), 4);
    cr_assert_eq(arb_packed_alloc_size(21), 8);
    for (size_t count = 0; count < 2000; count++) {
        size_t size = arb_packed_size(count), alloc = arb_packed_alloc_size(count);
        cr_assert_eq(size, (count + 4) / 5, "count %zu", count);
        cr_assert(size * 5 >= count && (size == 0 || (size - 1) * 5 < count), "count %zu", count);
        cr_assert_eq(alloc % 4, 0, "count %zu: alloc %zu", count, alloc);
        cr_assert(alloc >= size && alloc - size < 4, "count %zu: alloc %zu, size %zu", count,
                  alloc, size);
        /* the word holding the last byte lies inside the allocation */
        if (size)
            cr_assert((size - 1) / 4 * 4 + 4 <= alloc, "count %zu", count);
    }
    cr_assert_eq(arb_scale_groups(53, 384, 64), 53 * 6);
    cr_assert_eq(arb_scale_groups(54, 32, 64), 27);
}
