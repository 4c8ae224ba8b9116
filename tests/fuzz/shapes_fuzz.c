/*
 * shapes_fuzz.c - libFuzzer target for the shapes.txt parser
 * (arb_shapes_parse): any bytes must give either a parsed list or an error
 * naming its place, never a crash, a leak or undefined behaviour. On top of
 * the sanitizers it checks the parser's promises:
 *   - an error leaves the output empty and starts with "fuzz.txt:";
 *   - every parsed line formats to text that parses back to the same line;
 *   - expansion of a parsed list succeeds and holds no duplicate.
 * A broken promise aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/shapes.h"

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "shapes_fuzz: broken promise: %s\n", what);
        abort();
    }
}

static int same_line(const arb_shape_line *a, const arb_shape_line *b)
{
    return a->op == b->op && strcmp(a->kernel, b->kernel) == 0 && a->M == b->M && a->N == b->N &&
           a->K == b->K && a->gs == b->gs && a->V == b->V && a->D == b->D &&
           a->update == b->update && a->has_precision == b->has_precision &&
           (!a->has_precision || a->precision == b->precision) && a->variant == b->variant &&
           a->has_blocks == b->has_blocks &&
           memcmp(&a->blocks, &b->blocks, sizeof(a->blocks)) == 0;
}

static void check_round_trip(const arb_shape_line *line)
{
    char text[1024];
    arb_shape_line_format(line, text, sizeof(text));
    arb_shapes again;
    arb_err err = {0};
    require(arb_shapes_parse(text, strlen(text), "fuzz.txt", &again, &err) == ARB_OK,
            "a formatted line parses");
    require(again.count == 1, "a formatted line is one shape");
    require(same_line(line, &again.lines[0]), "format then parse gives the same line");
    arb_shapes_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arb_shapes shapes;
    arb_err err = {0};
    arb_status st = arb_shapes_parse((const char *)data, size, "fuzz.txt", &shapes, &err);
    if (st != ARB_OK) {
        require(st == ARB_ERR_PARSE || st == ARB_ERR_NOMEM, "errors are parse errors");
        require(shapes.count == 0 && shapes.lines == NULL, "an error leaves the output empty");
        require(strncmp(err.msg, "fuzz.txt:", 9) == 0, "an error names its place");
        return 0;
    }
    for (int i = 0; i < shapes.count; i++)
        check_round_trip(&shapes.lines[i]);

    /* Every precision as the run's default (lines were checked with fp32),
     * for no target in particular and for sm_90a (staged GEMM plans). */
    arb_precision prec = (arb_precision)(size % ARB_PREC_COUNT);
    const char *arch = (size / ARB_PREC_COUNT) % 2 ? "sm_90a" : NULL;
    arb_expanded *items = NULL;
    int count = 0;
    arb_err expand_err = {0};
    if (arb_shapes_expand(&shapes, prec, arch, &items, &count, &expand_err) == ARB_OK) {
        for (int i = 0; i < count && i < 64; i++)
            for (int j = i + 1; j < count; j++)
                require(!(items[i].exact == items[j].exact &&
                          arb_spec_equal(&items[i].spec, &items[j].spec)),
                        "expansion holds no duplicate");
        free(items);
    } else {
        require(strncmp(expand_err.msg, "fuzz.txt:", 9) == 0, "an expansion error names its line");
    }
    arb_shapes_free(&shapes);
    return 0;
}
