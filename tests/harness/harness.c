/*
 * harness.c - seed and RNG, random data, backend buffers with guard zones,
 * ternary weights in backend memory, and the comparators (see harness.h).
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- tolerances -------------------------------------------------------------- */

double th_tol_prec(arb_precision prec)
{
    switch (prec) {
    case ARB_PREC_FP32:   return TH_TOL_FP32;
    case ARB_PREC_TF32:   return 1e-3;
    case ARB_PREC_BF16:   return 1e-2;
    case ARB_PREC_BF16X2: return 1e-5;
    case ARB_PREC_BF16X3: return 2e-6;
    default:              return 0.0; /* an unknown mode passes nothing */
    }
}

double th_tol_gemm(const arb_backend *be) { return th_tol_prec(arb_backend_precision(be)); }

/* ---- seed and random numbers ---------------------------------------------- */

uint64_t th_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t th_run_seed(void)
{
    static int chosen = 0;
    static uint64_t seed = 0;
    if (chosen)
        return seed;
    const char *env = getenv("ARB_TEST_SEED");
    if (env && *env) {
        seed = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t mix = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
                       ((uint64_t)getpid() << 32);
        seed = th_splitmix64(&mix);
    }
    chosen = 1;
    fprintf(stderr, "arb-test: seed 0x%016" PRIx64 " (replay with ARB_TEST_SEED=0x%016" PRIx64
                    ")\n",
            seed, seed);
    return seed;
}

void th_rng_seed(th_rng *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = th_splitmix64(&st);
}

th_rng th_rng_for(const char *test_name)
{
    uint64_t h = 0xCBF29CE484222325ULL; /* FNV-1a of the name */
    for (const char *p = test_name; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001B3ULL;
    th_rng r;
    th_rng_seed(&r, th_run_seed() ^ h);
    return r;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t th_u64(th_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double th_unit(th_rng *r) { return (double)(th_u64(r) >> 11) * 0x1.0p-53; }

int64_t th_range(th_rng *r, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(th_u64(r) % span); /* bias < 2^-40 for our spans */
}

double th_normal(th_rng *r)
{
    /* Box-Muller; 1 - unit keeps the log's argument in (0, 1]. */
    double u1 = 1.0 - th_unit(r), u2 = th_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

void th_fill_normal(th_rng *r, float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (float)th_normal(r);
}

void th_fill_int(th_rng *r, float *a, size_t n, int lo, int hi)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (float)th_range(r, lo, hi);
}

void th_fill_dyadic(th_rng *r, float *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v = round(th_normal(r) * 65536.0) / 65536.0;
        if (v >= 4.0 || v <= -4.0)
            v = fmod(v, 4.0);
        a[i] = (float)v;
    }
}

void th_fill_trits(th_rng *r, int8_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        t[i] = (int8_t)th_range(r, -1, 1);
}

void th_fill_i8(th_rng *r, int8_t *a, size_t n, int lo, int hi)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (int8_t)th_range(r, lo, hi);
}

/* ---- case descriptions and failure reports --------------------------------- */

static int quiet = 0;

void th_set_quiet(int q) { quiet = q; }

void th_case_describe(const th_case *c, char *buf, size_t len)
{
    size_t used = 0;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (used < len) {                                                                          \
            int w_ = snprintf(buf + used, len - used, __VA_ARGS__);                                \
            used += w_ > 0 ? (size_t)w_ : 0;                                                       \
        }                                                                                          \
    } while (0)
    const char *sep = "";
    APPEND("%s(", c->op ? c->op : "?");
    if (c->M) {
        APPEND("%sM=%lld", sep, (long long)c->M);
        sep = ",";
    }
    if (c->N) {
        APPEND("%sN=%lld", sep, (long long)c->N);
        sep = ",";
    }
    if (c->K) {
        APPEND("%sK=%lld", sep, (long long)c->K);
        sep = ",";
    }
    if (c->gs) {
        APPEND("%sgs=%lld", sep, (long long)c->gs);
        sep = ",";
    }
    if (c->mode) {
        APPEND("%s%s", sep, c->mode);
        sep = ",";
    }
    if (c->backend)
        APPEND("%s%s", sep, c->backend);
    APPEND(")");
#undef APPEND
}

void th_fail(const th_case *c, const char *what, const char *fmt, ...)
{
    if (quiet)
        return;
    char desc[256], msg[1024];
    th_case_describe(c, desc, sizeof(desc));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    uint64_t seed = th_run_seed();
    fprintf(stderr, "FAIL %s %s: %s (replay: ARB_TEST_SEED=0x%016" PRIx64 ")\n", desc, what, msg,
            seed);
}

void th_pass(const th_case *c, const char *fmt, ...)
{
    if (quiet)
        return;
    char desc[256], msg[512];
    th_case_describe(c, desc, sizeof(desc));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    printf("%s %s\n", desc, msg);
    fflush(stdout);
}

int th_ok(const th_case *c, arb_backend *be, arb_status st, const char *call)
{
    if (st == ARB_OK)
        return 1;
    th_fail(c, call, "returned %s: %s", arb_status_name(st), arb_backend_errmsg(be));
    return 0;
}

/* ---- evidence files --------------------------------------------------------- */

typedef enum { TY_F32, TY_F64, TY_I8, TY_U8, TY_I32, TY_I64 } th_ty;

static double get_val(const void *a, th_ty t, size_t i)
{
    switch (t) {
    case TY_F32: return ((const float *)a)[i];
    case TY_F64: return ((const double *)a)[i];
    case TY_I8:  return ((const int8_t *)a)[i];
    case TY_U8:  return ((const uint8_t *)a)[i];
    case TY_I32: return ((const int32_t *)a)[i];
    case TY_I64: return (double)((const int64_t *)a)[i];
    }
    return 0.0;
}

/* Write the whole output and its reference to
 * arb-fail-<op>-<M>x<N>x<K>-gs<gs>-<what>.txt (in ARB_TEST_FAIL_DIR, else the
 * working directory) and say where. Inputs are not dumped: the seed
 * regenerates them. */
static void dump_evidence(const th_case *c, const char *what, const void *got, th_ty gt,
                          const void *want, th_ty wt, const double *extra, const char *extra_name,
                          size_t n)
{
    if (quiet)
        return;
    char name[160];
    char safe[48];
    size_t j = 0;
    for (const char *p = what; *p && j + 1 < sizeof(safe); p++)
        safe[j++] = isalnum((unsigned char)*p) ? *p : '_';
    safe[j] = '\0';
    snprintf(name, sizeof(name), "arb-fail-%s-%lldx%lldx%lld-gs%lld-%s.txt", c->op,
             (long long)c->M, (long long)c->N, (long long)c->K, (long long)c->gs, safe);
    const char *dir = getenv("ARB_TEST_FAIL_DIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : ".", name);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    char desc[256];
    th_case_describe(c, desc, sizeof(desc));
    fprintf(f, "# %s %s, seed 0x%016" PRIx64 " (ARB_TEST_SEED regenerates the inputs)\n", desc,
            what, th_run_seed());
    fprintf(f, "# index got want%s%s\n", extra ? " " : "", extra ? extra_name : "");
    size_t limit = n < 1000000 ? n : 1000000;
    for (size_t i = 0; i < limit; i++) {
        fprintf(f, "%zu %.9g %.17g", i, get_val(got, gt, i), get_val(want, wt, i));
        if (extra)
            fprintf(f, " %.6g", extra[i]);
        fputc('\n', f);
    }
    fclose(f);
    fprintf(stderr, "  evidence: %s\n", path);
}

/* Mismatch bookkeeping: print the first 5, stop counting at 10. */
#define SHOW_MISMATCHES 5
#define STOP_MISMATCHES 10

typedef struct mismatches {
    int count;
} mismatches;

static int mism_add(mismatches *m, size_t i, double got, double want)
{
    if (m->count < SHOW_MISMATCHES && !quiet)
        fprintf(stderr, "  [%zu] got %.9g want %.9g\n", i, got, want);
    m->count++;
    return m->count >= STOP_MISMATCHES;
}

static void mism_end(const mismatches *m)
{
    if (m->count >= STOP_MISMATCHES && !quiet)
        fprintf(stderr, "  (stopped at %d mismatches)\n", STOP_MISMATCHES);
    else if (m->count > SHOW_MISMATCHES && !quiet)
        fprintf(stderr, "  (%d mismatches in all)\n", m->count);
}

/* ---- buffers ---------------------------------------------------------------- */

static void *at(void *base, size_t offset) { return (uint8_t *)base + offset; }

th_buf th_buf_alloc(arb_backend *be, size_t bytes)
{
    th_buf b = {be, NULL, NULL, bytes};
    arb_status st = arb_backend_alloc(be, bytes + 2 * TH_GUARD_BYTES, &b.base);
    cr_assert(st == ARB_OK, "allocating %zu bytes: %s", bytes, arb_backend_errmsg(be));
    b.p = at(b.base, TH_GUARD_BYTES);
    uint8_t guard[TH_GUARD_BYTES];
    memset(guard, TH_GUARD_BYTE, sizeof(guard));
    st = arb_backend_upload(be, b.base, guard, TH_GUARD_BYTES);
    if (st == ARB_OK)
        st = arb_backend_upload(be, at(b.p, bytes), guard, TH_GUARD_BYTES);
    cr_assert(st == ARB_OK, "writing guard zones: %s", arb_backend_errmsg(be));
    return b;
}

void th_buf_free(th_buf *b)
{
    if (b->base)
        arb_backend_free(b->be, b->base);
    b->base = b->p = NULL;
}

void th_buf_upload(th_buf *b, const void *src)
{
    arb_status st = arb_backend_upload(b->be, b->p, src, b->bytes);
    cr_assert(st == ARB_OK, "upload of %zu bytes: %s", b->bytes, arb_backend_errmsg(b->be));
}

void th_buf_download(th_buf *b, void *dst)
{
    arb_status st = arb_backend_download(b->be, dst, b->p, b->bytes);
    cr_assert(st == ARB_OK, "download of %zu bytes: %s", b->bytes, arb_backend_errmsg(b->be));
}

void th_buf_poison(th_buf *b, int byte)
{
    arb_status st = arb_backend_memset(b->be, b->p, byte, b->bytes);
    if (st == ARB_OK)
        st = arb_backend_sync(b->be);
    cr_assert(st == ARB_OK, "poisoning %zu bytes: %s", b->bytes, arb_backend_errmsg(b->be));
}

th_buf th_buf_from(arb_backend *be, const void *src, size_t bytes)
{
    th_buf b = th_buf_alloc(be, bytes);
    th_buf_upload(&b, src);
    return b;
}

int th_buf_guards_ok(const th_case *c, const char *what, th_buf *b)
{
    uint8_t lo[TH_GUARD_BYTES], hi[TH_GUARD_BYTES];
    arb_status st = arb_backend_download(b->be, lo, b->base, TH_GUARD_BYTES);
    if (st == ARB_OK)
        st = arb_backend_download(b->be, hi, at(b->p, b->bytes), TH_GUARD_BYTES);
    if (!th_ok(c, b->be, st, "download of guard zones"))
        return 0;
    for (int i = 0; i < TH_GUARD_BYTES; i++) {
        if (lo[i] != TH_GUARD_BYTE) {
            th_fail(c, what, "guard zone before the buffer was overwritten: byte -%d is 0x%02x",
                    TH_GUARD_BYTES - i, lo[i]);
            return 0;
        }
        if (hi[i] != TH_GUARD_BYTE) {
            th_fail(c, what,
                    "guard zone after the buffer was overwritten: byte %zu (end + %d) is 0x%02x",
                    b->bytes + (size_t)i, i, hi[i]);
            return 0;
        }
    }
    return 1;
}

/* ---- weights ---------------------------------------------------------------- */

size_t th_hw_count(const th_hw *w) { return (size_t)(w->N * w->K); }
size_t th_hw_groups(const th_hw *w) { return (size_t)(w->N * w->K / w->gs); }

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    cr_assert(p != NULL, "out of host memory (%zu bytes)", bytes);
    return p;
}

th_hw th_hw_random(th_rng *r, int64_t N, int64_t K, int64_t gs, int e_lo, int e_hi, int theta,
                   int phi)
{
    th_hw w = {N, K, gs, NULL, NULL, NULL, NULL};
    cr_assert(arb_scale_check(N, K, gs, NULL) == ARB_OK, "bad test shape %lldx%lld gs=%lld",
              (long long)N, (long long)K, (long long)gs);
    size_t count = th_hw_count(&w), groups = th_hw_groups(&w);
    w.T = xmalloc(count);
    w.E = xmalloc(groups);
    th_fill_trits(r, w.T, count);
    /* An all-zero T (likely for tiny shapes) would make every output zero
     * and the case prove nothing: plant one nonzero trit. */
    size_t nonzero = 0;
    for (size_t i = 0; i < count; i++)
        nonzero += w.T[i] != 0;
    if (nonzero == 0)
        w.T[th_range(r, 0, (int64_t)count - 1)] = th_range(r, 0, 1) ? 1 : -1;
    th_fill_i8(r, w.E, groups, e_lo, e_hi);
    if (theta > 0) {
        w.T_accum = xmalloc(count);
        th_fill_i8(r, w.T_accum, count, -theta, theta);
    }
    if (phi > 0) {
        w.E_accum = xmalloc(groups);
        th_fill_i8(r, w.E_accum, groups, -phi, phi);
    }
    return w;
}

static int8_t *dup_i8(const int8_t *a, size_t n)
{
    if (!a)
        return NULL;
    int8_t *p = xmalloc(n);
    memcpy(p, a, n);
    return p;
}

th_hw th_hw_clone(const th_hw *w)
{
    size_t count = th_hw_count(w), groups = th_hw_groups(w);
    th_hw c = {w->N, w->K, w->gs, dup_i8(w->T, count), dup_i8(w->E, groups),
               dup_i8(w->T_accum, count), dup_i8(w->E_accum, groups)};
    return c;
}

void th_hw_free(th_hw *w)
{
    free(w->T);
    free(w->E);
    free(w->T_accum);
    free(w->E_accum);
    w->T = w->E = w->T_accum = w->E_accum = NULL;
}

th_dw th_dw_create(arb_backend *be, const th_hw *w)
{
    th_dw d;
    memset(&d, 0, sizeof(d));
    size_t count = th_hw_count(w), groups = th_hw_groups(w);
    size_t alloc = arb_packed_alloc_size(count);
    uint8_t *packed = calloc(alloc, 1); /* bytes past the packed size stay zero */
    cr_assert(packed != NULL);
    arb_ternary_pack(w->T, count, packed);
    d.T_packed = th_buf_from(be, packed, alloc);
    free(packed);
    d.E = th_buf_from(be, w->E, groups);
    if (w->T_accum)
        d.T_accum = th_buf_from(be, w->T_accum, count);
    if (w->E_accum)
        d.E_accum = th_buf_from(be, w->E_accum, groups);
    d.w = (arb_ternary){w->N, w->K, w->gs, d.T_packed.p, d.E.p, d.T_accum.p, d.E_accum.p};
    return d;
}

int th_dw_read(const th_case *c, th_dw *d, th_hw *out, uint8_t *packed_out)
{
    size_t count = (size_t)(d->w.N * d->w.K);
    size_t size = arb_packed_size(count), alloc = arb_packed_alloc_size(count);
    uint8_t *packed = xmalloc(alloc);
    th_buf_download(&d->T_packed, packed);
    int ok = 1;
    arb_err err = {0};
    if (arb_ternary_validate(packed, count, &err) != ARB_OK) {
        th_fail(c, "T_packed", "invalid packed data: %s", err.msg);
        ok = 0;
    }
    for (size_t b = size; b < alloc && ok; b++) {
        if (packed[b] != 0) {
            th_fail(c, "T_packed", "alloc tail byte %zu (past the %zu packed bytes) is 0x%02x",
                    b, size, packed[b]);
            ok = 0;
        }
    }
    if (ok)
        arb_ternary_unpack(packed, count, out->T);
    if (packed_out)
        memcpy(packed_out, packed, alloc);
    free(packed);
    th_buf_download(&d->E, out->E);
    ok &= th_buf_guards_ok(c, "T_packed", &d->T_packed);
    ok &= th_buf_guards_ok(c, "E", &d->E);
    if (d->T_accum.base) {
        cr_assert(out->T_accum != NULL);
        th_buf_download(&d->T_accum, out->T_accum);
        ok &= th_buf_guards_ok(c, "T_accum", &d->T_accum);
    }
    if (d->E_accum.base) {
        cr_assert(out->E_accum != NULL);
        th_buf_download(&d->E_accum, out->E_accum);
        ok &= th_buf_guards_ok(c, "E_accum", &d->E_accum);
    }
    return ok;
}

void th_dw_free(th_dw *d)
{
    th_buf_free(&d->T_packed);
    th_buf_free(&d->E);
    th_buf_free(&d->T_accum);
    th_buf_free(&d->E_accum);
}

/* ---- comparators ------------------------------------------------------------ */

static int check_rel(const th_case *c, const char *what, const float *got, const void *want,
                     th_ty wt, size_t n, double tol)
{
    double num = 0.0, den = 0.0;
    size_t nonfinite = 0, first_nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        double w = get_val(want, wt, i);
        if (!isfinite(got[i])) {
            if (nonfinite++ == 0)
                first_nonfinite = i;
            continue;
        }
        num += (got[i] - w) * (got[i] - w);
        den += w * w;
    }
    if (den == 0.0 && nonfinite == 0) {
        th_fail(c, what, "the reference is all zeros: this case proves nothing");
        return 0;
    }
    double rel = nonfinite ? INFINITY : sqrt(num) / sqrt(den);
    if (nonfinite == 0 && rel <= tol)
        return 1;
    if (nonfinite)
        th_fail(c, what, "%zu non-finite outputs (first at %zu; unwritten outputs are NaN)",
                nonfinite, first_nonfinite);
    else
        th_fail(c, what, "relative error %.3g > %.3g", rel, tol);
    /* Element mismatches: off by more than tol relative to the element or
     * to the output's rms, or not finite. */
    double rms = sqrt(den / (double)n);
    mismatches m = {0};
    for (size_t i = 0; i < n; i++) {
        double w = get_val(want, wt, i);
        if (!isfinite(got[i]) || fabs(got[i] - w) > tol * (fabs(w) + rms))
            if (mism_add(&m, i, got[i], w))
                break;
    }
    mism_end(&m);
    dump_evidence(c, what, got, TY_F32, want, wt, NULL, NULL, n);
    return 0;
}

int th_check_rel(const th_case *c, const char *what, const float *got, const double *want,
                 size_t n, double tol)
{
    return check_rel(c, what, got, want, TY_F64, n, tol);
}

int th_check_rel_f(const th_case *c, const char *what, const float *got, const float *want,
                   size_t n, double tol)
{
    return check_rel(c, what, got, want, TY_F32, n, tol);
}

/* Exact comparison of two arrays of any element types (values compared as
 * doubles, which hold every int8..int64 value used here exactly). */
static int check_exact(const th_case *c, const char *what, const void *got, th_ty gt,
                       const void *want, th_ty wt, size_t n)
{
    mismatches m = {0};
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = get_val(got, gt, i), w = get_val(want, wt, i);
        int differ = gt == TY_I64 && wt == TY_I64
                         ? ((const int64_t *)got)[i] != ((const int64_t *)want)[i]
                         : !(g == w); /* NaN never matches */
        if (differ) {
            if (!bad)
                th_fail(c, what, "not exactly equal to the reference");
            bad = 1;
            if (mism_add(&m, i, g, w))
                break;
        }
    }
    if (!bad)
        return 1;
    mism_end(&m);
    dump_evidence(c, what, got, gt, want, wt, NULL, NULL, n);
    return 0;
}

int th_check_exact_f(const th_case *c, const char *what, const float *got, const float *want,
                     size_t n)
{
    /* Bitwise: -0 against +0 counts as a difference too, NaN never matches. */
    mismatches m = {0};
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0 || isnan(got[i])) {
            if (!bad)
                th_fail(c, what, "not bitwise equal");
            bad = 1;
            if (mism_add(&m, i, got[i], want[i]))
                break;
        }
    }
    if (!bad)
        return 1;
    mism_end(&m);
    dump_evidence(c, what, got, TY_F32, want, TY_F32, NULL, NULL, n);
    return 0;
}

int th_check_exact_fd(const th_case *c, const char *what, const float *got, const double *want,
                      size_t n)
{
    float *w = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        w[i] = (float)want[i];
    int ok = check_exact(c, what, got, TY_F32, w, TY_F32, n);
    free(w);
    return ok;
}

int th_check_exact_i8(const th_case *c, const char *what, const int8_t *got, const int8_t *want,
                      size_t n)
{
    return memcmp(got, want, n) == 0 || check_exact(c, what, got, TY_I8, want, TY_I8, n);
}

int th_check_exact_u8(const th_case *c, const char *what, const uint8_t *got,
                      const uint8_t *want, size_t n)
{
    return memcmp(got, want, n) == 0 || check_exact(c, what, got, TY_U8, want, TY_U8, n);
}

int th_check_exact_i32(const th_case *c, const char *what, const int32_t *got,
                       const int32_t *want, size_t n)
{
    return memcmp(got, want, n * sizeof(int32_t)) == 0 ||
           check_exact(c, what, got, TY_I32, want, TY_I32, n);
}

int th_check_exact_i64(const th_case *c, const char *what, const int64_t *got,
                       const int64_t *want, size_t n)
{
    return memcmp(got, want, n * sizeof(int64_t)) == 0 ||
           check_exact(c, what, got, TY_I64, want, TY_I64, n);
}

int th_check_state(const th_case *c, const char *what, const th_hw *got, const th_hw *want)
{
    char name[96];
    size_t count = th_hw_count(want), groups = th_hw_groups(want);
    int ok = 1;
    snprintf(name, sizeof(name), "%s T", what);
    ok &= th_check_exact_i8(c, name, got->T, want->T, count);
    snprintf(name, sizeof(name), "%s E", what);
    ok &= th_check_exact_i8(c, name, got->E, want->E, groups);
    if (want->T_accum && got->T_accum) {
        snprintf(name, sizeof(name), "%s T_accum", what);
        ok &= th_check_exact_i8(c, name, got->T_accum, want->T_accum, count);
    }
    if (want->E_accum && got->E_accum) {
        snprintf(name, sizeof(name), "%s E_accum", what);
        ok &= th_check_exact_i8(c, name, got->E_accum, want->E_accum, groups);
    }
    return ok;
}

int th_check_signs(const th_case *c, const char *what, const int8_t *got, const double *ref,
                   const double *bound, size_t n)
{
    mismatches m = {0};
    int bad = 0;
    size_t decided = 0;
    for (size_t i = 0; i < n; i++) {
        int valid = got[i] >= -1 && got[i] <= 1;
        int want = (ref[i] > 0.0) - (ref[i] < 0.0);
        int sure = fabs(ref[i]) > bound[i];
        decided += sure;
        if (!valid || (sure && got[i] != want)) {
            if (!bad)
                th_fail(c, what,
                        "signs differ where |ref| > 1e-4*||gy col||*||x col|| (or are not "
                        "-1/0/+1; 127 = never written)");
            bad = 1;
            if (mism_add(&m, i, got[i], ref[i]))
                break;
        }
    }
    if (!bad && decided == 0) {
        th_fail(c, what, "no sign is decided by the rule: this case proves nothing");
        return 0;
    }
    if (!bad)
        return 1;
    mism_end(&m);
    dump_evidence(c, what, got, TY_I8, ref, TY_F64, bound, "bound", n);
    return 0;
}

int th_nonzero_f(const th_case *c, const char *what, const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != 0.0f)
            return 1;
    th_fail(c, what, "all %zu values are zero: this case proves nothing", n);
    return 0;
}

int th_nonzero_d(const th_case *c, const char *what, const double *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != 0.0)
            return 1;
    th_fail(c, what, "all %zu reference values are zero: this case proves nothing", n);
    return 0;
}

/* ---- shapes ----------------------------------------------------------------- */

const th_shape th_shapes[] = {
    {1, 1, 1, ARB_SCALE_ELEMENT, "minimal"},
    {1, 1, 1, ARB_SCALE_ROW, "minimal"},
    {1, 1, 1, ARB_SCALE_TENSOR, "minimal"},
    {2, 32, 1, ARB_SCALE_G32, "minimal g32: one group spans 32 one-trit rows"},
    {37, 53, 131, ARB_SCALE_ELEMENT, "K prime, K % 5 != 0: rows start mid-byte"},
    {129, 65, 63, ARB_SCALE_ELEMENT, "tile + 1 in M and N, tile - 1 in K"},
    {37, 53, 96, ARB_SCALE_G32, "K % 5 != 0, K not a multiple of 64"},
    {33, 31, 160, ARB_SCALE_G32, "K % 5 == 0: rows end on byte boundaries"},
    {37, 53, 192, ARB_SCALE_G64, "K % 5 != 0, K not a multiple of 128"},
    {37, 54, 32, ARB_SCALE_G64, "gs a multiple of K: a group spans 2 rows"},
    {37, 53, 384, ARB_SCALE_G128, "K % 5 != 0, 3 groups a row"},
    {65, 68, 32, ARB_SCALE_G128, "gs a multiple of K: a group spans 4 rows"},
    {37, 53, 131, ARB_SCALE_ROW, "row scale, K prime"},
    {129, 65, 31, ARB_SCALE_ROW, "K = 2*BK - 1"},
    {37, 53, 37, ARB_SCALE_TENSOR, "one scale for 1961 trits"},
    {17, 65, 63, ARB_SCALE_TENSOR, "tile + 1 in N"},
};
const int th_shape_count = (int)(sizeof(th_shapes) / sizeof(th_shapes[0]));

int64_t th_shape_gs(const th_shape *s) { return arb_scale_gs(s->kind, s->N, s->K); }
