/*
 * shapes.c - shapes.txt (SPEC §5, grammar in arb/shapes.h): the parser, the
 * file loader, the expansion of each line into the kernel specializations
 * the trainer launches for it (through the plans of kernels.h, so prewarm
 * compiles exactly what training runs), and the formatter.
 *
 * The parser reads untrusted text (it has a libFuzzer target): it never
 * trusts a length, a number or a byte. Every byte is checked where it is
 * read, numbers are accumulated with an overflow check, and each error names
 * its place as `file:line:column` (1-based byte columns, GNU style).
 */
#include "arb/shapes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arb/ternary.h"

#define SHAPES_FILE_MAX ((size_t)16 << 20) /* bytes of text, at most */
#define SHAPES_LINE_MAX 4096               /* bytes on one line, at most */
#define SHAPES_MAX_ERRORS 20               /* errors reported per parse */
#define SHAPES_INT_MAX 2147483647LL        /* every number fits a signed 32-bit int */

/* ---- keys --------------------------------------------------------------------- */

enum {
    KEY_M, KEY_N, KEY_K, KEY_GS, KEY_V, KEY_D, KEY_UPDATE, KEY_PRECISION, KEY_VARIANT,
    KEY_BM, KEY_BN, KEY_BK, KEY_TM, KEY_TN, KEY_WARPS, KEY_STAGES, KEY_COUNT
};

static const char *const key_names[KEY_COUNT] = {
    "M", "N", "K", "gs", "V", "D", "update", "precision", "variant",
    "bm", "bn", "bk", "tm", "tn", "warps", "stages",
};

#define BIT(k) (1u << (k))
#define BLOCK_KEYS                                                                                 \
    (BIT(KEY_BM) | BIT(KEY_BN) | BIT(KEY_BK) | BIT(KEY_TM) | BIT(KEY_TN) | BIT(KEY_WARPS) |        \
     BIT(KEY_STAGES))

typedef struct op_def {
    const char *name;
    unsigned allowed;  /* keys the op takes */
    unsigned required; /* keys it must have */
} op_def;

/* Indexed by arb_shape_op. */
static const op_def ops[] = {
    [ARB_SHAPE_LINEAR] = {"linear",
                          BIT(KEY_M) | BIT(KEY_N) | BIT(KEY_K) | BIT(KEY_GS) | BIT(KEY_UPDATE) |
                              BIT(KEY_PRECISION),
                          BIT(KEY_M) | BIT(KEY_N) | BIT(KEY_K) | BIT(KEY_GS)},
    [ARB_SHAPE_RMSNORM] = {"rmsnorm", BIT(KEY_M) | BIT(KEY_D) | BIT(KEY_GS),
                           BIT(KEY_M) | BIT(KEY_D) | BIT(KEY_GS)},
    [ARB_SHAPE_EMBED] = {"embed",
                         BIT(KEY_M) | BIT(KEY_V) | BIT(KEY_D) | BIT(KEY_GS) | BIT(KEY_UPDATE),
                         BIT(KEY_M) | BIT(KEY_V) | BIT(KEY_D) | BIT(KEY_GS)},
    [ARB_SHAPE_KERNEL] = {"kernel=",
                          BIT(KEY_M) | BIT(KEY_N) | BIT(KEY_K) | BIT(KEY_GS) | BIT(KEY_VARIANT) |
                              BIT(KEY_PRECISION) | BLOCK_KEYS,
                          BIT(KEY_M)},
};

static const char *const update_names[] = {"grad", "sign", "step", "none"};

/* ---- messages ------------------------------------------------------------------- */

/* Collects the errors of one parse into err: the first through ARB_FAIL,
 * later ones appended as further lines (a file with many mistakes is fixed
 * in one round, as a compiler's diagnostics allow). */
typedef struct parser {
    const char *file;
    arb_err *err;
    int errors;
} parser;

static void report(parser *p, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void report(parser *p, int line, int col, const char *fmt, ...)
{
    char text[1200];
    int n = snprintf(text, sizeof(text), "%s:%d:%d: ", p->file, line, col);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(text))
        vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    p->errors++;
    if (!p->err)
        return;
    if (p->errors == 1) {
        ARB_FAIL(p->err, ARB_ERR_PARSE, "%s", text);
        return;
    }
    size_t used = strlen(p->err->msg);
    if (p->errors <= SHAPES_MAX_ERRORS)
        snprintf(p->err->msg + used, sizeof(p->err->msg) - used, "\n%s", text);
    else if (p->errors == SHAPES_MAX_ERRORS + 1)
        snprintf(p->err->msg + used, sizeof(p->err->msg) - used,
                 "\n%s: too many errors, stopping", p->file);
}

/* `text` quoted for a message: printable ASCII as is, other bytes as \xNN,
 * at most ~40 bytes of it. */
static const char *quote(const char *s, size_t n, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    buf[o++] = '\'';
    size_t i = 0;
    for (; i < n && o + 8 < len && i < 40; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o++] = '\'';
    if (i < n && o + 4 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static void list_keys(unsigned mask, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int k = 0; k < KEY_COUNT; k++) {
        if (!(mask & BIT(k)))
            continue;
        int n = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", key_names[k]);
        if (n < 0 || (size_t)n >= len - o)
            return;
        o += (size_t)n;
    }
}

static void list_kernels(char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < arb_kernel_count(); i++) {
        int n = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", arb_kernel_at(i)->name);
        if (n < 0 || (size_t)n >= len - o)
            return;
        o += (size_t)n;
    }
}

/* ---- expansion of one line ---------------------------------------------------------- */

static void update_of(arb_shape_update u, arb_linear_update *out)
{
    out->step = u != ARB_UPDATE_NONE;
    out->e_enabled = u == ARB_UPDATE_GRAD || u == ARB_UPDATE_SIGN;
    out->score = u == ARB_UPDATE_SIGN ? ARB_E_SCORE_SIGN : ARB_E_SCORE_GRAD;
}

static int kernel_has_precision(const char *kernel, arb_precision prec)
{
    const arb_kernel_def *def = arb_kernel_find(kernel);
    return def && (int)prec >= 0 && prec < ARB_PREC_COUNT && (def->precisions & (1u << prec));
}

/* The specs of one line, each checked by its kernel. The message says what
 * is wrong without the place (the caller adds it). Plans skip a spec whose
 * init fails, so the precision of the GEMMs is checked first: a silently
 * shorter plan would prewarm less than training needs. */
static arb_status expand_line(const arb_shape_line *l, arb_precision default_prec,
                              const char *arch, arb_spec out[ARB_PLAN_MAX], int *n,
                              arb_err *err)
{
    arb_precision prec = l->has_precision ? l->precision : default_prec;
    arb_linear_update update;
    update_of(l->update, &update);
    *n = 0;
    switch (l->op) {
    case ARB_SHAPE_LINEAR: {
        static const char *const gemms[] = {"ternary_fwd", "ternary_grad_x"};
        for (int i = 0; i < 2; i++)
            if (!kernel_has_precision(gemms[i], prec))
                return ARB_FAIL(err, ARB_ERR_UNSUPPORTED, "%s has no %s mode", gemms[i],
                                arb_precision_name(prec));
        *n = arb_plan_linear(l->M, l->N, l->K, l->gs, prec, arch,
                             l->update == ARB_UPDATE_NONE ? NULL : &update, out);
        break;
    }
    case ARB_SHAPE_RMSNORM:
        *n = arb_plan_rmsnorm(l->M, l->D, l->gs, out);
        break;
    case ARB_SHAPE_EMBED:
        *n = arb_plan_embed(l->M, l->V, l->D, l->gs,
                            l->update == ARB_UPDATE_NONE ? NULL : &update, out);
        break;
    case ARB_SHAPE_KERNEL: {
        if (!l->has_precision && !kernel_has_precision(l->kernel, prec))
            prec = ARB_PREC_FP32;
        arb_status st =
            arb_spec_init(&out[0], l->kernel, l->M, l->N, l->K, l->gs, prec, l->variant, err);
        if (st)
            return st;
        if (l->has_blocks)
            out[0].blocks = l->blocks;
        *n = 1;
        break;
    }
    default:
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "unknown shape op %d", (int)l->op);
    }
    for (int i = 0; i < *n; i++) {
        arb_status st = arb_spec_check(&out[i], err);
        if (st)
            return st;
    }
    return ARB_OK;
}

/* ---- one line ------------------------------------------------------------------------ */

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* End of a token: a blank, a comment or the end of the line. */
static size_t token_end(const char *s, size_t n, size_t i)
{
    while (i < n && !is_blank(s[i]) && s[i] != '#')
        i++;
    return i;
}

/* A decimal integer in [min, max]: digits only (no sign, no space, no
 * prefix), accumulated with an overflow check so 10^30 is an error, not UB. */
static int parse_number(parser *p, int line, int col, const char *key, const char *v, size_t n,
                        int64_t min, int64_t max, int64_t *out)
{
    char q[200];
    if (n == 0) {
        report(p, line, col, "expected a number after '%s=', got nothing", key);
        return -1;
    }
    int64_t value = 0;
    int overflow = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            report(p, line, col + (int)i, "expected a decimal integer for %s, got %s", key,
                   quote(v, n, q, sizeof(q)));
            return -1;
        }
        if (!overflow) {
            value = value * 10 + (v[i] - '0');
            if (value > max)
                overflow = 1; /* keep scanning: a junk byte later is the better message */
        }
    }
    if (overflow || value < min) {
        report(p, line, col, "expected %s in %lld..%lld, got %s", key, (long long)min,
               (long long)max, quote(v, n, q, sizeof(q)));
        return -1;
    }
    *out = value;
    return 0;
}

static int find_key(const char *k, size_t n, int case_insensitive)
{
    for (int i = 0; i < KEY_COUNT; i++) {
        size_t len = strlen(key_names[i]);
        if (len != n)
            continue;
        if (case_insensitive ? strncasecmp(key_names[i], k, n) == 0
                             : memcmp(key_names[i], k, n) == 0)
            return i;
    }
    return -1;
}

/* Parse one line (no newline, CR stripped). *has = 1 when it held a shape.
 * Returns 0, or -1 after reporting. */
static int parse_line(parser *p, const char *s, size_t n, int line, arb_shape_line *out,
                      int *has)
{
    char q[200], list[768];
    *has = 0;
    memset(out, 0, sizeof(*out));
    out->line = line;
    out->update = ARB_UPDATE_GRAD;

    size_t i = 0;
    while (i < n && is_blank(s[i]))
        i++;
    if (i == n || s[i] == '#')
        return 0;

    /* The op. */
    size_t op_start = i, op_end = token_end(s, n, i);
    const char *tok = s + op_start;
    size_t tok_n = op_end - op_start;
    int op_col = (int)op_start + 1;
    if (tok_n >= 7 && memcmp(tok, "kernel=", 7) == 0) {
        out->op = ARB_SHAPE_KERNEL;
        const char *name = tok + 7;
        size_t name_n = tok_n - 7;
        if (name_n == 0) {
            report(p, line, op_col + 7, "expected a kernel name after 'kernel=', got nothing");
            return -1;
        }
        if (name_n < sizeof(out->kernel)) {
            memcpy(out->kernel, name, name_n);
            out->kernel[name_n] = '\0';
        }
        if (name_n >= sizeof(out->kernel) || !arb_kernel_find(out->kernel)) {
            list_kernels(list, sizeof(list));
            report(p, line, op_col + 7, "expected a kernel name (%s), got %s", list,
                   quote(name, name_n, q, sizeof(q)));
            return -1;
        }
    } else if (tok_n == 6 && memcmp(tok, "linear", 6) == 0) {
        out->op = ARB_SHAPE_LINEAR;
    } else if (tok_n == 7 && memcmp(tok, "rmsnorm", 7) == 0) {
        out->op = ARB_SHAPE_RMSNORM;
    } else if (tok_n == 5 && memcmp(tok, "embed", 5) == 0) {
        out->op = ARB_SHAPE_EMBED;
    } else {
        report(p, line, op_col, "expected an op (linear, rmsnorm, embed or kernel=<name>), got %s",
               quote(tok, tok_n, q, sizeof(q)));
        return -1;
    }
    const op_def *def = &ops[out->op];
    if (out->op == ARB_SHAPE_KERNEL)
        out->N = out->K = out->gs = 1; /* kernel= defaults */

    /* key=value fields. */
    unsigned seen = 0;
    int value_col[KEY_COUNT] = {0};
    int64_t num[KEY_COUNT] = {0};
    size_t last_end = op_end;
    i = op_end;
    for (;;) {
        while (i < n && is_blank(s[i]))
            i++;
        if (i == n || s[i] == '#')
            break;
        size_t start = i, end = token_end(s, n, i);
        i = end;
        last_end = end;
        const char *f = s + start;
        size_t fn = end - start;
        int col = (int)start + 1;
        const char *eq = memchr(f, '=', fn);
        if (!eq) {
            report(p, line, col, "expected key=value, got %s", quote(f, fn, q, sizeof(q)));
            return -1;
        }
        size_t kn = (size_t)(eq - f);
        if (kn == 0) {
            report(p, line, col, "expected a key before '=', got %s", quote(f, fn, q, sizeof(q)));
            return -1;
        }
        int key = find_key(f, kn, 0);
        if (key < 0 || !(def->allowed & BIT(key))) {
            list_keys(def->allowed, list, sizeof(list));
            int near = find_key(f, kn, 1);
            if (near >= 0 && (def->allowed & BIT(near)) && near != key)
                report(p, line, col,
                       "expected a key of %s (%s), got %s (keys are case-sensitive: did you "
                       "mean '%s'?)",
                       def->name, list, quote(f, kn, q, sizeof(q)), key_names[near]);
            else
                report(p, line, col, "expected a key of %s (%s), got %s", def->name, list,
                       quote(f, kn, q, sizeof(q)));
            return -1;
        }
        if (seen & BIT(key)) {
            report(p, line, col, "expected each key once, got a second '%s='", key_names[key]);
            return -1;
        }
        seen |= BIT(key);
        const char *v = eq + 1;
        size_t vn = fn - kn - 1;
        int vcol = col + (int)kn + 1;
        value_col[key] = vcol;
        if (key == KEY_UPDATE) {
            int found = -1;
            for (int u = 0; u < 4; u++)
                if (strlen(update_names[u]) == vn && memcmp(update_names[u], v, vn) == 0)
                    found = u;
            if (found < 0) {
                report(p, line, vcol, "expected update=grad, sign, step or none, got %s",
                       vn ? quote(v, vn, q, sizeof(q)) : "nothing");
                return -1;
            }
            out->update = (arb_shape_update)found;
        } else if (key == KEY_PRECISION) {
            char name[16] = "";
            if (vn < sizeof(name))
                memcpy(name, v, vn);
            if (vn >= sizeof(name) || arb_precision_parse(name, &out->precision, NULL) != ARB_OK) {
                size_t o = 0;
                list[0] = '\0';
                for (int m = 0; m < ARB_PREC_COUNT && o < sizeof(list); m++) {
                    int w = snprintf(list + o, sizeof(list) - o, "%s%s", m ? ", " : "",
                                     arb_precision_name((arb_precision)m));
                    o += w > 0 ? (size_t)w : 0;
                }
                report(p, line, vcol, "expected a precision (%s), got %s", list,
                       vn ? quote(v, vn, q, sizeof(q)) : "nothing");
                return -1;
            }
            out->has_precision = 1;
        } else {
            /* Block fields a kernel does not use are 0, and variants are flags. */
            int64_t min = (key == KEY_VARIANT || (BIT(key) & BLOCK_KEYS)) ? 0 : 1;
            if (parse_number(p, line, vcol, key_names[key], v, vn, min, SHAPES_INT_MAX,
                             &num[key]))
                return -1;
        }
    }

    int end_col = (int)last_end + 1;
    unsigned missing = def->required & ~seen;
    if (missing) {
        int k = 0;
        while (!(missing & BIT(k)))
            k++;
        list_keys(def->required, list, sizeof(list));
        report(p, line, end_col, "expected %s=<n> (%s%s needs %s), got end of line",
               key_names[k], def->name, out->op == ARB_SHAPE_KERNEL ? "<name>" : "", list);
        return -1;
    }
    if ((seen & BLOCK_KEYS) && (seen & BLOCK_KEYS) != BLOCK_KEYS) {
        int k = KEY_BM;
        while (seen & BIT(k))
            k++;
        report(p, line, end_col,
               "expected all seven block keys (bm, bn, bk, tm, tn, warps, stages) once any is "
               "given, got no '%s='",
               key_names[k]);
        return -1;
    }

    /* Values, now that they are known to be in range. */
    if (seen & BIT(KEY_M))
        out->M = num[KEY_M];
    if (seen & BIT(KEY_N))
        out->N = num[KEY_N];
    if (seen & BIT(KEY_K))
        out->K = num[KEY_K];
    if (seen & BIT(KEY_GS))
        out->gs = num[KEY_GS];
    out->V = num[KEY_V];
    out->D = num[KEY_D];
    out->variant = (int32_t)num[KEY_VARIANT];
    if (out->op != ARB_SHAPE_LINEAR && out->op != ARB_SHAPE_EMBED)
        out->update = ARB_UPDATE_GRAD;
    if ((seen & BLOCK_KEYS) == BLOCK_KEYS) {
        out->has_blocks = 1;
        out->blocks = (arb_blocks){(int32_t)num[KEY_BM], (int32_t)num[KEY_BN],
                                   (int32_t)num[KEY_BK], (int32_t)num[KEY_TM],
                                   (int32_t)num[KEY_TN], (int32_t)num[KEY_WARPS],
                                   (int32_t)num[KEY_STAGES]};
    }

    /* The group size against the weight it scales (SPEC §2): linear N x K,
     * embed V x D, rmsnorm a 1 x D row. */
    int64_t wN = out->op == ARB_SHAPE_LINEAR ? out->N : out->op == ARB_SHAPE_EMBED ? out->V : 1;
    int64_t wK = out->op == ARB_SHAPE_LINEAR ? out->K : out->D;
    if (out->op != ARB_SHAPE_KERNEL && arb_scale_check(wN, wK, out->gs, NULL) != ARB_OK) {
        const char *k = out->op == ARB_SHAPE_LINEAR ? "K" : "D";
        if (out->op == ARB_SHAPE_RMSNORM)
            report(p, line, value_col[KEY_GS], "expected gs to divide D=%lld, got gs=%lld",
                   (long long)wK, (long long)out->gs);
        else
            report(p, line, value_col[KEY_GS],
                   "expected gs to divide %s=%lld, or to be a multiple of %s dividing %s*%s=%lld, "
                   "got gs=%lld",
                   k, (long long)wK, k, out->op == ARB_SHAPE_LINEAR ? "N" : "V", k,
                   (long long)(wN * wK), (long long)out->gs);
        return -1;
    }

    /* Everything the kernels themselves reject (tensors past 2^31 elements, a
     * block configuration, a precision, a variant), with the run's precision
     * unknown yet: fp32 stands in, and expansion checks again. */
    arb_spec specs[ARB_PLAN_MAX];
    int count = 0;
    arb_err check = {0};
    if (expand_line(out, ARB_PREC_FP32, NULL, specs, &count, &check) != ARB_OK) {
        if (out->op == ARB_SHAPE_KERNEL)
            report(p, line, op_col, "expected a specialization %s accepts, got one it rejects: %s",
                   out->kernel, check.msg);
        else
            report(p, line, op_col, "expected a shape the kernels accept, got one they reject: %s",
                   check.msg);
        return -1;
    }
    *has = 1;
    return 0;
}

/* ---- whole texts ------------------------------------------------------------------------ */

static void place_of(const char *text, size_t offset, int *line, int *col)
{
    int l = 1;
    size_t start = 0;
    for (const char *q = text; (q = memchr(q, '\n', offset - (size_t)(q - text))) != NULL; q++) {
        l++;
        start = (size_t)(q - text) + 1;
    }
    *line = l;
    *col = (int)(offset - start) + 1;
}

static arb_status shapes_parse(const char *text, size_t len, const char *filename,
                               long long total_size, arb_shapes *out, arb_err *err)
{
    memset(out, 0, sizeof(*out));
    parser p = {.file = filename ? filename : "shapes.txt", .err = err};
    arb_status st = ARB_OK;

    if (len > SHAPES_FILE_MAX) {
        int line = 0, col = 0;
        place_of(text, SHAPES_FILE_MAX, &line, &col);
        char size[64] = "more";
        if (total_size > 0)
            snprintf(size, sizeof(size), "%lld bytes", total_size);
        report(&p, line, col, "expected at most 16 MiB (%zu bytes) of shapes, got %s",
               SHAPES_FILE_MAX, size);
        return ARB_ERR_PARSE;
    }

    size_t pos = 0;
    int lineno = 0;
    while (pos < len && !(p.errors && !err) && p.errors <= SHAPES_MAX_ERRORS) {
        lineno++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && s[n - 1] == '\r') /* CRLF */
            n--;
        if (n > SHAPES_LINE_MAX) {
            report(&p, lineno, SHAPES_LINE_MAX + 1,
                   "expected at most %d bytes on a line, got %zu", SHAPES_LINE_MAX, n);
            continue;
        }
        const char *nul = memchr(s, '\0', n);
        if (nul) {
            report(&p, lineno, (int)(nul - s) + 1, "expected text, got a NUL byte");
            continue;
        }
        arb_shape_line line;
        int has = 0;
        if (parse_line(&p, s, n, lineno, &line, &has) || !has || p.errors)
            continue; /* after an error, keep reporting but store nothing */
        if (out->count == out->capacity) {
            int cap = out->capacity ? 2 * out->capacity : 64;
            arb_shape_line *grown = realloc(out->lines, (size_t)cap * sizeof(*grown));
            if (!grown) {
                st = ARB_FAIL(err, ARB_ERR_NOMEM, "%s: out of memory at line %d", p.file, lineno);
                goto fail;
            }
            out->lines = grown;
            out->capacity = cap;
        }
        out->lines[out->count++] = line;
    }
    if (p.errors) {
        st = ARB_ERR_PARSE;
        goto fail;
    }
    out->file = strdup(p.file);
    if (!out->file) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "%s: out of memory", p.file);
        goto fail;
    }
    return ARB_OK;
fail:
    arb_shapes_free(out);
    return st;
}

arb_status arb_shapes_parse(const char *text, size_t len, const char *filename, arb_shapes *out,
                            arb_err *err)
{
    if (!out)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_shapes_parse: out is NULL");
    if (!text && len > 0) {
        memset(out, 0, sizeof(*out));
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_shapes_parse: text is NULL");
    }
    return shapes_parse(text ? text : "", len, filename, -1, out, err);
}

arb_status arb_shapes_load(const char *path, arb_shapes *out, arb_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!path)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_shapes_load: path is NULL");
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return ARB_FAIL(err, errno == ENOENT ? ARB_ERR_NOT_FOUND : ARB_ERR_IO,
                        "%s: cannot open: %s", path, strerror(errno));
    arb_status st = ARB_OK;
    long long total = -1;
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode))
        total = (long long)sb.st_size;
    /* One byte past the cap is enough to say where the cap was crossed. */
    size_t cap = 0, n = 0, limit = SHAPES_FILE_MAX + 1;
    char *buf = NULL;
    while (n < limit) {
        if (n == cap) {
            size_t next = cap ? 2 * cap : 65536;
            if (next > limit)
                next = limit;
            char *grown = realloc(buf, next);
            if (!grown) {
                st = ARB_FAIL(err, ARB_ERR_NOMEM, "%s: out of memory reading the file", name);
                goto out;
            }
            buf = grown;
            cap = next;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        st = ARB_FAIL(err, ARB_ERR_IO, "%s: cannot read: %s", name, strerror(errno));
        goto out;
    }
    st = shapes_parse(buf ? buf : "", n, name, total, out, err);
out:
    free(buf);
    if (!is_stdin)
        fclose(f);
    return st;
}

void arb_shapes_free(arb_shapes *shapes)
{
    if (!shapes)
        return;
    free(shapes->lines);
    free(shapes->file);
    memset(shapes, 0, sizeof(*shapes));
}

/* ---- expansion of a list ------------------------------------------------------------------ */

static int same_item(const arb_expanded *a, const arb_expanded *b)
{
    return !a->exact == !b->exact && arb_spec_equal(&a->spec, &b->spec);
}

arb_status arb_expanded_dedupe(arb_expanded *items, int *count, arb_err *err)
{
    if (*count < 2)
        return ARB_OK;
    /* Open addressing over indexes (+1, 0 = empty): linear in the count, so
     * a 16 MiB shapes file dedupes in milliseconds. */
    size_t slots = 16;
    while (slots < 2 * (size_t)*count)
        slots *= 2;
    int *table = calloc(slots, sizeof(int));
    if (!table)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory removing duplicate shapes");
    int kept = 0;
    for (int i = 0; i < *count; i++) {
        size_t s = (size_t)arb_spec_hash(&items[i].spec, items[i].exact) & (slots - 1);
        int dup = 0;
        while (table[s]) {
            if (same_item(&items[table[s] - 1], &items[i])) {
                dup = 1;
                break;
            }
            s = (s + 1) & (slots - 1);
        }
        if (dup)
            continue;
        items[kept] = items[i];
        table[s] = ++kept;
    }
    free(table);
    *count = kept;
    return ARB_OK;
}

arb_status arb_shapes_expand(const arb_shapes *shapes, arb_precision default_precision,
                             const char *arch, arb_expanded **out, int *count, arb_err *err)
{
    *out = NULL;
    *count = 0;
    const char *file = shapes->file ? shapes->file : "shapes.txt";
    if ((int)default_precision < 0 || default_precision >= ARB_PREC_COUNT)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "arb_shapes_expand: precision %d is unknown",
                        (int)default_precision);
    size_t cap = (size_t)(shapes->count > 0 ? shapes->count : 1) * ARB_PLAN_MAX;
    arb_expanded *items = malloc(cap * sizeof(*items));
    if (!items)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory expanding %d shapes", shapes->count);
    arb_status st = ARB_OK;
    int n = 0;
    for (int i = 0; i < shapes->count; i++) {
        const arb_shape_line *l = &shapes->lines[i];
        arb_spec specs[ARB_PLAN_MAX];
        int k = 0;
        arb_err line_err = {0};
        if (expand_line(l, default_precision, arch, specs, &k, &line_err) != ARB_OK) {
            st = ARB_FAIL(err, line_err.status ? line_err.status : ARB_ERR_PARSE,
                          "%s:%d:1: expected a shape the kernels accept at precision %s, got "
                          "one they reject: %s",
                          file, l->line, arb_precision_name(default_precision), line_err.msg);
            goto fail;
        }
        for (int j = 0; j < k; j++) {
            items[n].spec = specs[j];
            items[n].exact = l->op == ARB_SHAPE_KERNEL && l->has_blocks;
            items[n].line = l->line;
            n++;
        }
    }
    st = arb_expanded_dedupe(items, &n, err);
    if (st)
        goto fail;
    *out = items;
    *count = n;
    return ARB_OK;
fail:
    free(items);
    return st;
}

/* ---- formatting ------------------------------------------------------------------------------ */

typedef struct sink {
    char *buf;
    size_t len, used;
} sink;

static void put(sink *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put(sink *s, const char *fmt, ...)
{
    if (s->used >= s->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->used, s->len - s->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->used += (size_t)n;
}

void arb_shape_line_format(const arb_shape_line *l, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    sink s = {buf, len, 0};
    const char *update =
        (unsigned)l->update < 4 ? update_names[l->update] : update_names[ARB_UPDATE_GRAD];
    switch (l->op) {
    case ARB_SHAPE_LINEAR:
        put(&s, "linear M=%lld N=%lld K=%lld gs=%lld update=%s", (long long)l->M, (long long)l->N,
            (long long)l->K, (long long)l->gs, update);
        break;
    case ARB_SHAPE_RMSNORM:
        put(&s, "rmsnorm M=%lld D=%lld gs=%lld", (long long)l->M, (long long)l->D,
            (long long)l->gs);
        break;
    case ARB_SHAPE_EMBED:
        put(&s, "embed M=%lld V=%lld D=%lld gs=%lld update=%s", (long long)l->M, (long long)l->V,
            (long long)l->D, (long long)l->gs, update);
        break;
    case ARB_SHAPE_KERNEL:
        put(&s, "kernel=%.*s M=%lld N=%lld K=%lld gs=%lld", ARB_KERNEL_NAME_MAX - 1, l->kernel,
            (long long)l->M, (long long)l->N, (long long)l->K, (long long)l->gs);
        if (l->variant)
            put(&s, " variant=%d", (int)l->variant);
        break;
    default:
        put(&s, "# unknown shape op %d", (int)l->op);
        return;
    }
    if (l->has_precision && (l->op == ARB_SHAPE_LINEAR || l->op == ARB_SHAPE_KERNEL))
        put(&s, " precision=%s", arb_precision_name(l->precision));
    if (l->op == ARB_SHAPE_KERNEL && l->has_blocks) {
        const arb_blocks *b = &l->blocks;
        put(&s, " bm=%d bn=%d bk=%d tm=%d tn=%d warps=%d stages=%d", b->bm, b->bn, b->bk, b->tm,
            b->tn, b->warps, b->stages);
    }
}
