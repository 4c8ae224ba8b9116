/*
 * test_shapes.c - the shapes.txt parser, loader, expansion and formatter
 * (engine/src/shapes.c): every op parses, every error kind names its
 * file:line:column, expansion yields exactly the plans' kernels with
 * duplicates once, and formatting round-trips.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arb/shapes.h"

static arb_shapes parse_ok(const char *text)
{
    arb_shapes s;
    arb_err err = {0};
    arb_status st = arb_shapes_parse(text, strlen(text), "t.txt", &s, &err);
    cr_assert_eq(st, ARB_OK, "parse failed: %s\n--- text:\n%s", err.msg, text);
    return s;
}

/* Parse must fail with `want` in the message, and leave *out empty. */
static void parse_fails_n(const char *text, size_t len, const char *want)
{
    arb_shapes s;
    memset(&s, 0x5a, sizeof(s));
    arb_err err = {0};
    arb_status st = arb_shapes_parse(text, len, "t.txt", &s, &err);
    cr_assert_eq(st, ARB_ERR_PARSE, "expected a parse error containing \"%s\", got status %d (%s)",
                 want, (int)st, err.msg);
    cr_assert(strstr(err.msg, want) != NULL, "message \"%s\" lacks \"%s\"", err.msg, want);
    cr_assert_eq(s.count, 0);
    cr_assert_null(s.lines);
    cr_assert_null(s.file);
}

static void parse_fails(const char *text, const char *want) { parse_fails_n(text, strlen(text), want); }

static int expand_count(const char *text, arb_precision prec, arb_expanded **items)
{
    arb_shapes s = parse_ok(text);
    arb_err err = {0};
    int n = -1;
    cr_assert_eq(arb_shapes_expand(&s, prec, NULL, items, &n, &err), ARB_OK, "expand: %s", err.msg);
    arb_shapes_free(&s);
    return n;
}

static void expect_kernels(const arb_expanded *items, int n, const char *const *names, int count)
{
    cr_assert_eq(n, count, "expanded into %d specs, expected %d", n, count);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(items[i].spec.kernel, names[i], "spec %d", i);
}

/* ---- every op ---------------------------------------------------------------------- */

Test(shapes, parses_every_op)
{
    arb_shapes s = parse_ok("linear M=1024 N=4096 K=4096 gs=64\n"
                            "linear M=8 N=16 K=32 gs=1 update=sign precision=tf32\n"
                            "rmsnorm M=1024 D=4096 gs=64\n"
                            "embed M=1024 V=256 D=256 gs=64 update=step\n"
                            "kernel=ternary_fwd M=64 N=64 K=64 gs=32\n"
                            "kernel=add M=4096\n"
                            "kernel=ternary_fwd M=64 N=64 K=64 gs=64 bm=64 bn=64 bk=16 tm=4 tn=4 "
                            "warps=8 stages=1\n"
                            "kernel=update_E M=1 N=64 K=64 gs=64 variant=2 bm=0 bn=0 bk=0 tm=8 "
                            "tn=0 warps=8 stages=0\n");
    cr_assert_eq(s.count, 8);
    cr_assert_str_eq(s.file, "t.txt");
    const arb_shape_line *l = s.lines;
    cr_assert_eq(l[0].op, ARB_SHAPE_LINEAR);
    cr_assert_eq(l[0].M, 1024);
    cr_assert_eq(l[0].N, 4096);
    cr_assert_eq(l[0].K, 4096);
    cr_assert_eq(l[0].gs, 64);
    cr_assert_eq(l[0].update, ARB_UPDATE_GRAD, "update defaults to grad");
    cr_assert_eq(l[0].has_precision, 0);
    cr_assert_eq(l[0].line, 1);
    cr_assert_eq(l[1].update, ARB_UPDATE_SIGN);
    cr_assert_eq(l[1].has_precision, 1);
    cr_assert_eq(l[1].precision, ARB_PREC_TF32);
    cr_assert_eq(l[2].op, ARB_SHAPE_RMSNORM);
    cr_assert_eq(l[2].M, 1024);
    cr_assert_eq(l[2].D, 4096);
    cr_assert_eq(l[2].gs, 64);
    cr_assert_eq(l[3].op, ARB_SHAPE_EMBED);
    cr_assert_eq(l[3].V, 256);
    cr_assert_eq(l[3].D, 256);
    cr_assert_eq(l[3].update, ARB_UPDATE_STEP);
    cr_assert_eq(l[4].op, ARB_SHAPE_KERNEL);
    cr_assert_str_eq(l[4].kernel, "ternary_fwd");
    cr_assert_eq(l[4].has_blocks, 0);
    cr_assert_eq(l[5].N, 1, "kernel= lines default N, K, gs to 1");
    cr_assert_eq(l[5].K, 1);
    cr_assert_eq(l[5].gs, 1);
    cr_assert_eq(l[6].has_blocks, 1);
    cr_assert_eq(l[6].blocks.bm, 64);
    cr_assert_eq(l[6].blocks.bk, 16);
    cr_assert_eq(l[6].blocks.warps, 8);
    cr_assert_eq(l[6].blocks.stages, 1);
    cr_assert_eq(l[7].variant, 2);
    cr_assert_eq(l[7].blocks.bm, 0, "block keys accept 0 (fields a kernel does not use)");
    cr_assert_eq(l[7].line, 8);
    arb_shapes_free(&s);
}

Test(shapes, comments_blank_lines_crlf_and_tabs)
{
    arb_shapes s = parse_ok("# a comment\r\n"
                            "\r\n"
                            "   \t  \n"
                            "\tlinear\tM=4  N=8 K=16\tgs=16   # trailing comment\r\n"
                            "rmsnorm M=2 D=32 gs=32#glued comment\n"
                            "   # indented comment\n"
                            "embed M=3 V=5 D=8 gs=8"); /* no final newline */
    cr_assert_eq(s.count, 3);
    cr_assert_eq(s.lines[0].line, 4);
    cr_assert_eq(s.lines[0].gs, 16);
    cr_assert_eq(s.lines[1].line, 5);
    cr_assert_eq(s.lines[1].gs, 32);
    cr_assert_eq(s.lines[2].line, 7);
    cr_assert_eq(s.lines[2].D, 8);
    arb_shapes_free(&s);

    arb_shapes empty = parse_ok("");
    cr_assert_eq(empty.count, 0);
    arb_shapes_free(&empty);
    empty = parse_ok("# only comments\n\n");
    cr_assert_eq(empty.count, 0);
    arb_shapes_free(&empty);
}

Test(shapes, numbers_at_the_limits)
{
    arb_shapes s = parse_ok("kernel=add M=2147483647\n"
                            "linear M=0001 N=1 K=1 gs=1\n");
    cr_assert_eq(s.lines[0].M, 2147483647);
    cr_assert_eq(s.lines[1].M, 1, "leading zeros are still decimal");
    arb_shapes_free(&s);
}

/* ---- errors -------------------------------------------------------------------------- */

Test(shapes, error_unknown_op_and_kernel)
{
    parse_fails("lineer M=1", "t.txt:1:1: expected an op (linear, rmsnorm, embed or "
                              "kernel=<name>), got 'lineer'");
    parse_fails("\n  M=4 N=4", "t.txt:2:3: expected an op");
    parse_fails("kernel=foo M=1", "t.txt:1:8: expected a kernel name (ternary_fwd, ");
    parse_fails("kernel=foo M=1", "got 'foo'");
    parse_fails("kernel= M=1", "t.txt:1:8: expected a kernel name after 'kernel=', got nothing");
    parse_fails("kernel=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa M=1",
                "t.txt:1:8: expected a kernel name");
}

Test(shapes, error_unknown_missing_and_repeated_keys)
{
    parse_fails("linear M=1 N=1 K=1 gs=1 Q=4",
                "t.txt:1:25: expected a key of linear (M, N, K, gs, update, precision), got 'Q'");
    parse_fails("rmsnorm M=1 D=32 gs=32 precision=fp32", "t.txt:1:24: expected a key of rmsnorm");
    parse_fails("embed M=1 V=2 D=32 gs=32 N=4", "t.txt:1:26: expected a key of embed");
    parse_fails("kernel=ternary_fwd M=64 N=64 K=64 BM=64",
                "t.txt:1:35: expected a key of kernel= (");
    parse_fails("kernel=ternary_fwd M=64 N=64 K=64 BM=64", "did you mean 'bm'?");
    parse_fails("linear M=1 N=1 K=1", "t.txt:1:19: expected gs=<n> (linear needs M, N, K, gs), "
                                      "got end of line");
    parse_fails("linear N=1 K=1 gs=1 # no M", "t.txt:1:20: expected M=<n>");
    parse_fails("embed M=1 D=8 gs=8", "t.txt:1:19: expected V=<n>");
    parse_fails("rmsnorm M=1 gs=8", "t.txt:1:17: expected D=<n>");
    parse_fails("kernel=add N=4", "t.txt:1:15: expected M=<n>");
    parse_fails("linear M=1 M=2 N=1 K=1 gs=1",
                "t.txt:1:12: expected each key once, got a second 'M='");
    parse_fails("linear M", "t.txt:1:8: expected key=value, got 'M'");
    parse_fails("linear M=1 =5", "t.txt:1:12: expected a key before '=', got '=5'");
    parse_fails("linear linear", "t.txt:1:8: expected key=value, got 'linear'");
}

Test(shapes, error_malformed_numbers)
{
    parse_fails("linear M= N=1 K=1 gs=1", "t.txt:1:10: expected a number after 'M=', got nothing");
    parse_fails("linear M=+5 N=1 K=1 gs=1",
                "t.txt:1:10: expected a decimal integer for M, got '+5'");
    parse_fails("linear M=-5 N=1 K=1 gs=1",
                "t.txt:1:10: expected a decimal integer for M, got '-5'");
    parse_fails("linear M=x5 N=1 K=1 gs=1",
                "t.txt:1:10: expected a decimal integer for M, got 'x5'");
    parse_fails("linear M=5x N=1 K=1 gs=1",
                "t.txt:1:11: expected a decimal integer for M, got '5x'");
    parse_fails("linear M=0x10 N=1 K=1 gs=1", "t.txt:1:11: expected a decimal integer for M");
    parse_fails("linear M=1.5 N=1 K=1 gs=1", "t.txt:1:11: expected a decimal integer for M");
    parse_fails("linear M=0 N=1 K=1 gs=1", "t.txt:1:10: expected M in 1..2147483647, got '0'");
    parse_fails("linear M=2147483648 N=1 K=1 gs=1",
                "t.txt:1:10: expected M in 1..2147483647, got '2147483648'");
    parse_fails("linear M=99999999999999999999999999 N=1 K=1 gs=1",
                "t.txt:1:10: expected M in 1..2147483647, got '99999999999999999999999999'");
    parse_fails("linear M=9223372036854775808 N=1 K=1 gs=1", "expected M in 1..2147483647");
    parse_fails("kernel=add M=4 variant=-1", "t.txt:1:24: expected a decimal integer for variant");
    parse_fails("kernel=add M=4 variant=2147483648", "expected variant in 0..2147483647");
    /* A junk byte after an overflow is the better message. */
    parse_fails("linear M=99999999999999999999x N=1 K=1 gs=1",
                "t.txt:1:30: expected a decimal integer for M");
}

Test(shapes, error_bad_update_and_precision)
{
    parse_fails("linear M=1 N=1 K=1 gs=1 update=adam",
                "t.txt:1:32: expected update=grad, sign, step or none, got 'adam'");
    parse_fails("linear M=1 N=1 K=1 gs=1 update=", "got nothing");
    parse_fails("linear M=1 N=1 K=1 gs=1 precision=fp16",
                "t.txt:1:35: expected a precision (fp32, tf32, bf16, bf16x2, bf16x3), got 'fp16'");
    parse_fails("linear M=1 N=1 K=1 gs=1 update=GRAD", "got 'GRAD'");
    /* A precision the kernel lacks (elementwise kernels are fp32 only). */
    parse_fails("kernel=add M=4 precision=tf32",
                "t.txt:1:1: expected a specialization add accepts, got one it rejects: add has "
                "no tf32 mode");
}

Test(shapes, error_group_size_does_not_fit)
{
    parse_fails("linear M=4 N=4 K=100 gs=64",
                "t.txt:1:25: expected gs to divide K=100, or to be a multiple of K dividing "
                "N*K=400, got gs=64");
    parse_fails("rmsnorm M=4 D=100 gs=64", "t.txt:1:22: expected gs to divide D=100, got gs=64");
    parse_fails("rmsnorm M=4 D=32 gs=64", "expected gs to divide D=32, got gs=64");
    parse_fails("embed M=4 V=3 D=32 gs=64",
                "t.txt:1:23: expected gs to divide D=32, or to be a multiple of D dividing "
                "V*D=96, got gs=64");
    /* gs may be a multiple of K that divides N*K (row and tensor scales). */
    arb_shapes s = parse_ok("linear M=4 N=4 K=32 gs=64\n"
                            "linear M=4 N=4 K=32 gs=128\n"
                            "embed M=4 V=4 D=32 gs=64\n"
                            "rmsnorm M=4 D=32 gs=32\n");
    cr_assert_eq(s.count, 4);
    arb_shapes_free(&s);
}

Test(shapes, error_blocks_and_shapes_the_kernels_reject)
{
    parse_fails("kernel=ternary_fwd M=64 N=64 K=64 bm=64",
                "t.txt:1:40: expected all seven block keys (bm, bn, bk, tm, tn, warps, stages) "
                "once any is given, got no 'bn='");
    parse_fails("kernel=ternary_fwd M=64 N=64 K=64 gs=64 bm=64 bn=64 bk=16 tm=4 tn=4 warps=7 "
                "stages=1",
                "t.txt:1:1: expected a specialization ternary_fwd accepts, got one it rejects: ");
    parse_fails("kernel=update_E M=1 N=64 K=64 gs=64",
                "expected a specialization update_E accepts, got one it rejects: update_E: the "
                "variant must name a score mode");
    /* Each tensor must hold fewer than 2^31 elements. */
    parse_fails("linear M=2147483647 N=2 K=2 gs=1",
                "t.txt:1:1: expected a shape the kernels accept, got one they reject: ");
}

Test(shapes, error_nul_bytes_control_bytes_and_long_lines)
{
    static const char nul[] = "linear M=1\0 N=1 K=1 gs=1\n";
    parse_fails_n(nul, sizeof(nul) - 1, "t.txt:1:11: expected text, got a NUL byte");
    static const char nul_comment[] = "# ok\n# comment \0 too\n";
    parse_fails_n(nul_comment, sizeof(nul_comment) - 1, "t.txt:2:11: expected text, got a NUL");
    parse_fails("linear M=1 N=1\x01 K=1 gs=1", "t.txt:1:15: expected a decimal integer for N, "
                                               "got '1\\x01'");
    parse_fails("linear M=1 N=1 K=1 gs=1 \xff\xfe", "t.txt:1:25: expected key=value, got "
                                                    "'\\xff\\xfe'");
    parse_fails("linear M=1 N=1 K=1 gs=1\r\r\n", "t.txt:1:24: expected a decimal integer for gs, got "
                                                  "'1\\x0d'");

    size_t n = 5000;
    char *text = malloc(n + 32);
    memcpy(text, "# fine\n#", 8);
    memset(text + 8, 'x', n);
    strcpy(text + 8 + n, "\nkernel=add M=1\n");
    parse_fails(text, "t.txt:2:4097: expected at most 4096 bytes on a line, got 5001");
    free(text);
}

Test(shapes, error_huge_text_names_the_place)
{
    /* 16 MiB of newlines and then some: the cap is crossed on line 2^24 + 1. */
    size_t n = ((size_t)16 << 20) + 100;
    char *text = malloc(n);
    cr_assert_not_null(text);
    memset(text, '\n', n);
    parse_fails_n(text, n, "t.txt:16777217:1: expected at most 16 MiB (16777216 bytes) of shapes");
    free(text);
}

Test(shapes, reports_several_errors_at_once)
{
    arb_shapes s;
    arb_err err = {0};
    const char *text = "linear M=1 N=1 K=1 gs=1\n"
                       "lineer M=1\n"
                       "linear M=1 N=1 K=1 gs=1\n"
                       "rmsnorm M=4 D=100 gs=64\n";
    cr_assert_eq(arb_shapes_parse(text, strlen(text), "t.txt", &s, &err), ARB_ERR_PARSE);
    cr_assert(strncmp(err.msg, "t.txt:2:1: expected an op", 25) == 0, "first error first: %s",
              err.msg);
    cr_assert(strstr(err.msg, "\nt.txt:4:22: expected gs to divide D=100") != NULL, "%s",
              err.msg);
    cr_assert_eq(s.count, 0);

    /* Capped at 20 errors. */
    char big[64 * 30 + 1] = "";
    for (int i = 0; i < 30; i++)
        strcat(big, "bogus\n");
    arb_err err2 = {0};
    cr_assert_eq(arb_shapes_parse(big, strlen(big), "t.txt", &s, &err2), ARB_ERR_PARSE);
    cr_assert(strstr(err2.msg, "t.txt:20:1:") != NULL);
    cr_assert(strstr(err2.msg, "t.txt:21:1:") == NULL);
    cr_assert(strstr(err2.msg, "t.txt: too many errors, stopping") != NULL, "%s", err2.msg);

    /* With no err buffer, the first error still fails the parse. */
    cr_assert_eq(arb_shapes_parse(text, strlen(text), "t.txt", &s, NULL), ARB_ERR_PARSE);
}

/* ---- loading ------------------------------------------------------------------------- */

static char *temp_file(const char *content, size_t len)
{
    char *path = strdup("/tmp/arb-shapes-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

Test(shapes, load_reads_files_and_names_them)
{
    const char *text = "linear M=4 N=8 K=16 gs=16\r\nbogus\r\n";
    char *path = temp_file(text, strlen(text));
    arb_shapes s;
    arb_err err = {0};
    cr_assert_eq(arb_shapes_load(path, &s, &err), ARB_ERR_PARSE);
    char want[128];
    snprintf(want, sizeof(want), "%s:2:1: expected an op", path);
    cr_assert(strstr(err.msg, want) != NULL, "%s", err.msg);
    unlink(path);
    free(path);

    text = "linear M=4 N=8 K=16 gs=16\r\n";
    path = temp_file(text, strlen(text));
    arb_err_clear(&err);
    cr_assert_eq(arb_shapes_load(path, &s, &err), ARB_OK, "%s", err.msg);
    cr_assert_eq(s.count, 1);
    cr_assert_str_eq(s.file, path);
    arb_shapes_free(&s);
    unlink(path);

    arb_err missing = {0};
    cr_assert_eq(arb_shapes_load(path, &s, &missing), ARB_ERR_NOT_FOUND);
    cr_assert(strstr(missing.msg, path) != NULL, "%s", missing.msg);
    free(path);

    arb_err dir = {0};
    cr_assert_neq(arb_shapes_load("/tmp", &s, &dir), ARB_OK);
    cr_assert(strstr(dir.msg, "/tmp") != NULL, "%s", dir.msg);
}

Test(shapes, load_rejects_a_file_past_16_mib)
{
    size_t n = ((size_t)16 << 20) + 4096;
    char *text = malloc(n);
    memset(text, '#', n);
    for (size_t i = 99; i < n; i += 100)
        text[i] = '\n'; /* 100-byte comment lines */
    char *path = temp_file(text, n);
    free(text);
    arb_shapes s;
    arb_err err = {0};
    cr_assert_eq(arb_shapes_load(path, &s, &err), ARB_ERR_PARSE);
    /* Byte 16 MiB (0-based) sits on line 167773, column 17. */
    char want[256];
    snprintf(want, sizeof(want), "%s:167773:17: expected at most 16 MiB (16777216 bytes) of "
                                 "shapes, got %zu bytes",
             path, n);
    cr_assert(strstr(err.msg, want) != NULL, "%s\nwanted %s", err.msg, want);
    unlink(path);
    free(path);
}

/* ---- expansion --------------------------------------------------------------------------- */

Test(shapes, expand_linear_counts)
{
    /* gs=256 > 128: E groups do not fit the update kernel's tiles, so E is
     * applied by its own kernel. */
    arb_expanded *items = NULL;
    int n = expand_count("linear M=64 N=128 K=256 gs=256 update=grad", ARB_PREC_FP32, &items);
    static const char *const grad[] = {"ternary_fwd", "ternary_grad_x", "ternary_update_direct",
                                       "update_E_apply"};
    expect_kernels(items, n, grad, 4);
    cr_assert_eq(items[2].spec.variant & (ARB_VARIANT_STEP | ARB_VARIANT_E_GRAD),
                 ARB_VARIANT_STEP | ARB_VARIANT_E_GRAD);
    cr_assert_eq(items[0].exact, 0);
    cr_assert_eq(items[0].line, 1);
    free(items);

    /* gs=64 divides K and fits a tile: the scores meet inside the update
     * kernel (ARB_VARIANT_E_IN_TILE), no apply kernel. */
    n = expand_count("linear M=64 N=128 K=256 gs=64 update=grad", ARB_PREC_FP32, &items);
    expect_kernels(items, n, grad, 3);
    free(items);

    n = expand_count("linear M=64 N=128 K=256 gs=1", ARB_PREC_FP32, &items);
    expect_kernels(items, n, grad, 3); /* gs=1: E is stepped inside the update kernel */
    free(items);

    n = expand_count("linear M=64 N=128 K=256 gs=256 update=sign", ARB_PREC_FP32, &items);
    expect_kernels(items, n, grad, 4);
    cr_assert_eq(items[2].spec.variant & (ARB_VARIANT_STEP | ARB_VARIANT_E_SIGN),
                 ARB_VARIANT_STEP | ARB_VARIANT_E_SIGN);
    free(items);

    n = expand_count("linear M=64 N=128 K=256 gs=64 update=step", ARB_PREC_FP32, &items);
    expect_kernels(items, n, grad, 3);
    cr_assert_eq(items[2].spec.variant, ARB_VARIANT_STEP);
    free(items);

    n = expand_count("linear M=64 N=128 K=256 gs=64 update=none", ARB_PREC_FP32, &items);
    expect_kernels(items, n, grad, 2);
    free(items);
}

Test(shapes, expand_follows_the_plans)
{
    /* Exactly what the plans give, fields and all. */
    static const struct {
        const char *text;
        int64_t gs;
        int step, e;
        arb_e_score score;
    } linears[] = {
        {"linear M=64 N=128 K=256 gs=64", 64, 1, 1, ARB_E_SCORE_GRAD},
        {"linear M=64 N=128 K=256 gs=256 update=sign", 256, 1, 1, ARB_E_SCORE_SIGN},
        {"linear M=64 N=128 K=256 gs=1 update=step", 1, 1, 0, ARB_E_SCORE_GRAD},
    };
    arb_expanded *items = NULL;
    arb_spec plan[ARB_PLAN_MAX];
    int n, pn;
    for (size_t t = 0; t < sizeof(linears) / sizeof(linears[0]); t++) {
        n = expand_count(linears[t].text, ARB_PREC_FP32, &items);
        arb_linear_update u = {linears[t].step, linears[t].e, linears[t].score};
        pn = arb_plan_linear(64, 128, 256, linears[t].gs, ARB_PREC_FP32, NULL, &u, plan);
        cr_assert_eq(n, pn, "%s", linears[t].text);
        for (int i = 0; i < n; i++)
            cr_assert(arb_spec_equal(&items[i].spec, &plan[i]), "%s: spec %d differs from the plan",
                      linears[t].text, i);
        free(items);
    }
    arb_linear_update upd = {1, 1, ARB_E_SCORE_GRAD};

    n = expand_count("rmsnorm M=1024 D=4096 gs=64", ARB_PREC_FP32, &items);
    static const char *const norm[] = {"rmsnorm_fwd", "rmsnorm_bwd"};
    expect_kernels(items, n, norm, 2);
    pn = arb_plan_rmsnorm(1024, 4096, 64, plan);
    for (int i = 0; i < n; i++)
        cr_assert(arb_spec_equal(&items[i].spec, &plan[i]));
    free(items);

    n = expand_count("embed M=1024 V=256 D=256 gs=64", ARB_PREC_FP32, &items);
    static const char *const emb[] = {"embed_fwd",    "embed_bwd_accum", "embed_bwd_sign",
                                      "ternary_step", "update_E",        "update_E_apply"};
    expect_kernels(items, n, emb, 6);
    pn = arb_plan_embed(1024, 256, 256, 64, &upd, plan);
    cr_assert_eq(n, pn);
    for (int i = 0; i < n; i++)
        cr_assert(arb_spec_equal(&items[i].spec, &plan[i]));
    free(items);

    n = expand_count("embed M=1024 V=256 D=256 gs=64 update=step", ARB_PREC_FP32, &items);
    expect_kernels(items, n, emb, 4);
    free(items);
    n = expand_count("embed M=1024 V=256 D=256 gs=64 update=none", ARB_PREC_FP32, &items);
    expect_kernels(items, n, emb, 3);
    free(items);
    n = expand_count("embed M=1024 V=256 D=256 gs=64 update=sign", ARB_PREC_FP32, &items);
    expect_kernels(items, n, emb, 6);
    cr_assert_eq(items[4].spec.variant, ARB_VARIANT_E_SIGN);
    free(items);
}

Test(shapes, expand_kernel_lines_and_pinned_blocks)
{
    arb_expanded *items = NULL;
    int n = expand_count("kernel=ternary_fwd M=64 N=64 K=64 gs=64 bm=32 bn=32 bk=16 tm=2 tn=2 "
                         "warps=8 stages=1\n"
                         "kernel=ternary_fwd M=64 N=64 K=64 gs=64\n",
                         ARB_PREC_FP32, &items);
    cr_assert_eq(n, 2);
    cr_assert_eq(items[0].exact, 1);
    arb_blocks pinned = {32, 32, 16, 2, 2, 8, 1};
    cr_assert(memcmp(&items[0].spec.blocks, &pinned, sizeof(pinned)) == 0, "blocks pinned");
    cr_assert_eq(items[1].exact, 0);
    arb_spec def;
    cr_assert_eq(arb_spec_init(&def, "ternary_fwd", 64, 64, 64, 64, ARB_PREC_FP32, 0, NULL),
                 ARB_OK);
    cr_assert(arb_spec_equal(&items[1].spec, &def), "no blocks: the kernel's default");
    cr_assert_eq(items[1].line, 2);
    free(items);
}

Test(shapes, expand_precision_default_and_line)
{
    arb_expanded *items = NULL;
    int n = expand_count("linear M=64 N=128 K=256 gs=64 update=none\n"
                         "linear M=64 N=128 K=256 gs=64 update=none precision=fp32\n"
                         "kernel=add M=64\n"
                         "kernel=ternary_fwd M=64 N=64 K=64\n",
                         ARB_PREC_TF32, &items);
    cr_assert_eq(n, 6);
    cr_assert_eq(items[0].spec.prec, ARB_PREC_TF32, "lines without precision take the run's");
    cr_assert_eq(items[1].spec.prec, ARB_PREC_TF32);
    cr_assert_eq(items[2].spec.prec, ARB_PREC_FP32, "the line's precision wins");
    cr_assert_eq(items[4].spec.prec, ARB_PREC_FP32, "fp32-only kernels fall back to fp32");
    cr_assert_eq(items[5].spec.prec, ARB_PREC_TF32);
    free(items);
}

Test(shapes, expand_removes_duplicates_first_kept)
{
    arb_expanded *items = NULL;
    /* Two identical layers, a kernel= line naming one of their kernels (same
     * spec, not pinned), and a pinned copy of the default (kept: exact). */
    int n = expand_count("linear M=64 N=128 K=256 gs=64\n"
                         "rmsnorm M=64 D=256 gs=64\n"
                         "linear M=64 N=128 K=256 gs=64\n"
                         "rmsnorm M=64 D=256 gs=64\n"
                         "kernel=ternary_fwd M=64 N=128 K=256 gs=64\n",
                         ARB_PREC_FP32, &items);
    arb_spec plan[ARB_PLAN_MAX];
    arb_linear_update upd = {1, 1, ARB_E_SCORE_GRAD};
    int linear = arb_plan_linear(64, 128, 256, 64, ARB_PREC_FP32, NULL, &upd, plan);
    cr_assert_eq(n, linear + 2, "one linear and one rmsnorm: %d specs", n);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            cr_assert(!arb_spec_equal(&items[i].spec, &items[j].spec) ||
                      items[i].exact != items[j].exact);
    cr_assert_eq(items[0].line, 1);
    cr_assert_str_eq(items[linear].spec.kernel, "rmsnorm_fwd");
    cr_assert_eq(items[linear].line, 2, "first occurrence kept");
    free(items);

    n = expand_count("kernel=ternary_fwd M=64 N=128 K=256 gs=64\n"
                     "kernel=ternary_fwd M=64 N=128 K=256 gs=64 bm=64 bn=64 bk=16 tm=4 tn=4 "
                     "warps=8 stages=1\n"
                     "kernel=ternary_fwd M=64 N=128 K=256 gs=64 bm=64 bn=64 bk=16 tm=4 tn=4 "
                     "warps=8 stages=1\n",
                     ARB_PREC_FP32, &items);
    cr_assert_eq(n, 2, "a pinned spec is not the same item as a resolvable one");
    cr_assert_eq(items[0].exact, 0);
    cr_assert_eq(items[1].exact, 1);
    free(items);
}

Test(shapes, dedupe_many_items)
{
    /* The hash table path: 3000 items of 1000 distinct specs. */
    int n = 3000;
    arb_expanded *items = calloc((size_t)n, sizeof(*items));
    for (int i = 0; i < n; i++) {
        cr_assert_eq(arb_spec_init(&items[i].spec, "add", 1 + i % 1000, 1, 1, 1, ARB_PREC_FP32, 0,
                                   NULL),
                     ARB_OK);
        items[i].line = i + 1;
    }
    cr_assert_eq(arb_expanded_dedupe(items, &n, NULL), ARB_OK);
    cr_assert_eq(n, 1000);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(items[i].spec.M, 1 + i);
        cr_assert_eq(items[i].line, i + 1);
    }
    free(items);
}

Test(shapes, expand_empty_list)
{
    arb_expanded *items = (arb_expanded *)1;
    int n = expand_count("# nothing\n", ARB_PREC_FP32, &items);
    cr_assert_eq(n, 0);
    free(items);
}

/* ---- formatting ---------------------------------------------------------------------------- */

static void expect_same_line(const arb_shape_line *a, const arb_shape_line *b)
{
    cr_assert_eq(a->op, b->op);
    cr_assert_str_eq(a->kernel, b->kernel);
    cr_assert_eq(a->M, b->M);
    cr_assert_eq(a->N, b->N);
    cr_assert_eq(a->K, b->K);
    cr_assert_eq(a->gs, b->gs);
    cr_assert_eq(a->V, b->V);
    cr_assert_eq(a->D, b->D);
    cr_assert_eq(a->update, b->update);
    cr_assert_eq(a->has_precision, b->has_precision);
    if (a->has_precision)
        cr_assert_eq(a->precision, b->precision);
    cr_assert_eq(a->variant, b->variant);
    cr_assert_eq(a->has_blocks, b->has_blocks);
    cr_assert(memcmp(&a->blocks, &b->blocks, sizeof(a->blocks)) == 0);
}

Test(shapes, format_round_trips)
{
    const char *text = "linear M=1024 N=4096 K=4096 gs=64\n"
                       "linear M=8 N=16 K=32 gs=1 update=none precision=bf16x2\n"
                       "linear M=8 N=16 K=32 gs=512 update=sign\n"
                       "rmsnorm M=1024 D=4096 gs=64\n"
                       "embed M=1024 V=256 D=256 gs=64 update=step\n"
                       "kernel=add M=4096\n"
                       "kernel=relu_fwd M=4096 variant=1\n"
                       "kernel=ternary_fwd M=64 N=64 K=64 gs=64 precision=fp32 bm=64 bn=64 "
                       "bk=16 tm=4 tn=4 warps=8 stages=1\n";
    arb_shapes a = parse_ok(text);
    char joined[4096] = "";
    for (int i = 0; i < a.count; i++) {
        char line[512];
        arb_shape_line_format(&a.lines[i], line, sizeof(line));
        cr_assert(strchr(line, '\n') == NULL);
        strcat(joined, line);
        strcat(joined, "\n");
    }
    arb_shapes b = parse_ok(joined);
    cr_assert_eq(b.count, a.count);
    for (int i = 0; i < a.count; i++)
        expect_same_line(&a.lines[i], &b.lines[i]);

    char line[512];
    arb_shape_line_format(&a.lines[0], line, sizeof(line));
    cr_assert_str_eq(line, "linear M=1024 N=4096 K=4096 gs=64 update=grad");
    arb_shape_line_format(&a.lines[3], line, sizeof(line));
    cr_assert_str_eq(line, "rmsnorm M=1024 D=4096 gs=64");

    /* A short buffer truncates, never overflows. */
    char tiny[8];
    arb_shape_line_format(&a.lines[0], tiny, sizeof(tiny));
    cr_assert_str_eq(tiny, "linear ");
    arb_shapes_free(&a);
    arb_shapes_free(&b);
}
