/*
 * shapes_dump.c - the shapes.txt lines of a training run (shapes_dump.h).
 *
 * The lines mirror model.c's step op for op: the embedding (M = batch*ctx
 * lookups), each RMSNorm and linear (M = batch), and the glue kernels as
 * explicit kernel= lines with the shape conventions of
 * engine/src/jit/kernels.c (elementwise kernels: M = element count).
 * Evaluation runs the training forward at the training batch, so it adds no
 * shape. Identical lines (small's first and second layers) are written once.
 */
#include "shapes_dump.h"

#include <string.h>

#include "arb/backend.h"

#define MAX_LINES 64
#define LINE_MAX_LEN 160

typedef struct line_set {
    char lines[MAX_LINES][LINE_MAX_LEN];
    int count;
} line_set;

static void add_line(line_set *s, FILE *out, const char *line)
{
    for (int i = 0; i < s->count; i++)
        if (strcmp(s->lines[i], line) == 0)
            return;
    if (s->count < MAX_LINES)
        snprintf(s->lines[s->count++], LINE_MAX_LEN, "%s", line);
    fprintf(out, "%s\n", line);
}

/* shapes.h's update names for a weight with E updates on or off. */
static const char *update_name(const train_rule *rule, unsigned layer)
{
    if (train_rule_phi_for(rule, layer) == 0)
        return "step";
    return rule->e_score == ARB_E_SCORE_SIGN ? "sign" : "grad";
}

void train_dump_shapes(FILE *out, const train_options *opt)
{
    const train_model_config *c = &opt->model;
    const train_rule *r = &opt->rule;
    const long long M = c->batch, H = c->H, in = (long long)c->ctx * c->D;
    const char *prec = arb_precision_name(opt->precision);
    char e_layers[64], line[LINE_MAX_LEN];
    line_set set = {.count = 0};
    train_e_layers_format(r->e_layers, e_layers, sizeof(e_layers));

    fprintf(out, "# arb-train --dump-shapes: config %s (ctx %d, D %d, H %d, L %d, gs %d), "
                 "batch %d\n",
            c->name, c->ctx, c->D, c->H, c->L, c->gs, c->batch);
    fprintf(out, "# rule: E on %s (%s score, phi %d); precision %s\n", e_layers,
            arb_e_score_name(r->e_score), r->phi, prec);

    snprintf(line, sizeof(line), "embed M=%lld V=256 D=%d gs=%d update=%s", M * c->ctx, c->D,
             c->gs, update_name(r, TRAIN_E_EMB));
    add_line(&set, out, line);
    for (int l = 0; l < c->L; l++) {
        long long k = l == 0 ? in : H;
        snprintf(line, sizeof(line), "rmsnorm M=%lld D=%lld gs=%d", M, k, c->gs);
        add_line(&set, out, line);
        snprintf(line, sizeof(line), "linear M=%lld N=%lld K=%lld gs=%d update=%s precision=%s",
                 M, H, k, c->gs, update_name(r, TRAIN_E_HIDDEN), prec);
        add_line(&set, out, line);
    }
    snprintf(line, sizeof(line), "rmsnorm M=%lld D=%lld gs=%d", M, H, c->gs);
    add_line(&set, out, line);
    snprintf(line, sizeof(line), "linear M=%lld N=256 K=%lld gs=%d update=%s precision=%s", M, H,
             c->gs, update_name(r, TRAIN_E_OUT), prec);
    add_line(&set, out, line);

    snprintf(line, sizeof(line), "kernel=sample_positions M=%lld", M);
    add_line(&set, out, line);
    add_line(&set, out, "kernel=step_advance M=1");
    snprintf(line, sizeof(line), "kernel=gather_context M=%lld K=%d", M, c->ctx);
    add_line(&set, out, line);
    snprintf(line, sizeof(line), "kernel=relu_fwd M=%lld variant=0", M * H);
    add_line(&set, out, line);
    if (c->L > 1) {
        snprintf(line, sizeof(line), "kernel=relu_fwd M=%lld variant=1", M * H);
        add_line(&set, out, line);
    }
    snprintf(line, sizeof(line), "kernel=relu_bwd M=%lld", M * H);
    add_line(&set, out, line);
    if (c->L > 1) {
        snprintf(line, sizeof(line), "kernel=add M=%lld", M * H);
        add_line(&set, out, line);
    }
    snprintf(line, sizeof(line), "kernel=xent_fwd M=%lld N=256", M);
    add_line(&set, out, line);
    snprintf(line, sizeof(line), "kernel=xent_bwd M=%lld N=256", M);
    add_line(&set, out, line);
}
