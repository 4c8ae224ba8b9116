/*
 * config.h - what one arb-train run is: the model configuration (tiny,
 * small, base; SPEC §6), the integer update rule, and every command-line
 * option, with the parser that fills them.
 *
 * Precedence (SPEC §1): a flag beats the environment (ARB_BACKEND,
 * ARB_PRECISION), which beats the defaults. Defaults that depend on the
 * backend (the configuration, the step counts) are applied by
 * train_options_finish() once the backend is known.
 */
#ifndef ARB_TRAIN_CONFIG_H
#define ARB_TRAIN_CONFIG_H

#include <stdint.h>

#include "arb/backend.h"
#include "arb/ops.h"
#include "arb/status.h"

#define TRAIN_VOCAB 256          /* byte-level: one class per byte value */
#define TRAIN_MAX_LAYERS 16      /* hidden layers a configuration may have */
#define TRAIN_CONFIG_NAME_MAX 16

/* The model's shape. in_dim = ctx * D is the first layer's input width. */
typedef struct train_model_config {
    char name[TRAIN_CONFIG_NAME_MAX]; /* "tiny", "small", "base" */
    int ctx;   /* context bytes */
    int D;     /* embedding width */
    int H;     /* hidden width */
    int L;     /* hidden layers (1..TRAIN_MAX_LAYERS) */
    int gs;    /* scale group size of every weight */
    int batch; /* positions per step */
} train_model_config;

/* Look a configuration up by name; returns 0 when there is none. */
int train_model_config_named(const char *name, train_model_config *out);

/* Layers --e-layers can name (bit flags). */
enum {
    TRAIN_E_EMB = 1,
    TRAIN_E_HIDDEN = 2,
    TRAIN_E_OUT = 4,
};

/* The integer update rule (SPEC §3, §6). theta_steps == 0: theta is
 * constant; otherwise it moves linearly from theta_start to theta_end over
 * theta_steps steps, then stays at theta_end. */
typedef struct train_rule {
    int theta;
    int theta_start, theta_end, theta_steps;
    int phi;           /* 0: E frozen everywhere */
    unsigned e_layers; /* TRAIN_E_* bits */
    arb_e_score e_score;
} train_rule;

/* The defaults of SPEC §6: theta 31 constant, phi 32 on the embedding and
 * hidden layers, the grad score (the rule that learns best). */
void train_rule_defaults(train_rule *rule);

/* theta for the step whose 0-based index is `step` (the value of the step
 * counter while the step runs). Integer arithmetic only, so every backend
 * and every resume sees the same value. */
int train_rule_theta_at(const train_rule *rule, int64_t step);

/* phi for a layer kind (TRAIN_E_EMB, ...): rule->phi when the layer is in
 * --e-layers, else 0 (E frozen). */
int train_rule_phi_for(const train_rule *rule, unsigned layer);

/* "emb,hidden" (or "none") into buf. */
void train_e_layers_format(unsigned layers, char *buf, size_t len);

/* Which options the user set explicitly (flag or environment): a resumed
 * run takes the others from the checkpoint. */
enum {
    TRAIN_GIVEN_CONFIG = 1u << 0,
    TRAIN_GIVEN_BATCH = 1u << 1,
    TRAIN_GIVEN_SEED = 1u << 2,
    TRAIN_GIVEN_THETA = 1u << 3,     /* --theta or the schedule */
    TRAIN_GIVEN_PHI = 1u << 4,
    TRAIN_GIVEN_E_LAYERS = 1u << 5,
    TRAIN_GIVEN_E_SCORE = 1u << 6,
    TRAIN_GIVEN_STEPS = 1u << 7,
    TRAIN_GIVEN_EVAL_EVERY = 1u << 8,
    TRAIN_GIVEN_LOG_EVERY = 1u << 9,
    TRAIN_GIVEN_CKPT_EVERY = 1u << 10,
};

/* What main() should do after parsing. */
typedef enum train_action {
    TRAIN_ACTION_TRAIN = 0,
    TRAIN_ACTION_HELP,
    TRAIN_ACTION_VERSION,
    TRAIN_ACTION_DUMP_SHAPES,
} train_action;

typedef struct train_options {
    train_action action;
    train_model_config model;
    train_rule rule;
    uint64_t seed;
    int64_t steps;            /* total steps of the run (a resumed run counts from 0 too) */
    int64_t eval_every;       /* held-out evaluation interval (and at the end) */
    int64_t log_every;        /* report interval; default: eval_every */
    int64_t checkpoint_every; /* 0: only at the end */
    int64_t eval_positions;   /* held-out positions per evaluation (at most) */
    const char *data_path;
    const char *eval_path;    /* NULL: none */
    const char *log_path;     /* NULL: none */
    const char *checkpoint_path;
    const char *resume_path;
    arb_backend_kind backend;
    const char *backend_origin; /* "flag", "environment", "default" */
    arb_precision precision;
    int threads;              /* cpu; 0 = all cores */
    int graphs;               /* jit: replay each step from a captured CUDA graph */
    int gpus;                 /* --gpus N: launch N ranks (one process per GPU) */
    int rank, world;          /* this process's rank of `world` (world 0: not data-parallel) */
    int device;               /* CUDA device of this process (default: the local rank) */
    const char *init_file;    /* where the ranks meet (rank 0 writes the NCCL id) */
    int quiet;
    unsigned given;           /* TRAIN_GIVEN_* */
} train_options;

/* Defaults, then ARB_BACKEND / ARB_PRECISION, then the flags in argv.
 * ARB_ERR_PARSE with a message for a bad flag or value (exit 2). */
arb_status train_options_parse(train_options *opt, int argc, char **argv, arb_err *err);

/* Fill the defaults that depend on the backend actually opened: the
 * configuration (small on cpu, base on jit) and the step counts. */
void train_options_finish(train_options *opt, arb_backend_kind kind);

/* Check the model configuration fits the kernels (gs divides the widths,
 * sizes in range); ARB_ERR_INVALID_ARG with the reason. */
arb_status train_model_config_check(const train_model_config *m, arb_err *err);

/* The --help text (stdout). */
void train_print_help(void);

#endif /* ARB_TRAIN_CONFIG_H */
