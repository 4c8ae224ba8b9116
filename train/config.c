/*
 * config.c - the three model configurations, the update rule's helpers and
 * the command-line parser of arb-train.
 *
 * The parser never exits and never prints: it fills train_options or returns
 * ARB_ERR_PARSE with a message, and main() decides (exit 2). Numbers are
 * parsed strictly (the whole text, in range), so "--steps 1e3" or
 * "--batch -4" are errors, not surprises.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/settings.h"

/* SPEC §6. batch is the configuration's default; --batch overrides it. */
static const train_model_config configs[] = {
    {"tiny", 4, 16, 64, 2, 16, 64},
    {"small", 8, 32, 256, 2, 32, 256},
    {"base", 16, 256, 4096, 4, 64, 1024},
};

int train_model_config_named(const char *name, train_model_config *out)
{
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        if (name && strcmp(name, configs[i].name) == 0) {
            *out = configs[i];
            return 1;
        }
    }
    return 0;
}

void train_rule_defaults(train_rule *rule)
{
    memset(rule, 0, sizeof(*rule));
    rule->theta = rule->theta_start = rule->theta_end = 31;
    rule->theta_steps = 0;
    rule->phi = 32;
    rule->e_layers = TRAIN_E_EMB | TRAIN_E_HIDDEN;
    rule->e_score = ARB_E_SCORE_GRAD;
}

int train_rule_theta_at(const train_rule *rule, int64_t step)
{
    if (rule->theta_steps <= 0)
        return rule->theta;
    if (step >= rule->theta_steps)
        return rule->theta_end;
    /* start + (end - start) * step / steps, rounded half away from zero. */
    int64_t num = (int64_t)(rule->theta_end - rule->theta_start) * step;
    int64_t den = rule->theta_steps;
    int64_t q = num >= 0 ? (2 * num + den) / (2 * den) : -((-2 * num + den) / (2 * den));
    return rule->theta_start + (int)q;
}

int train_rule_phi_for(const train_rule *rule, unsigned layer)
{
    return (rule->e_layers & layer) ? rule->phi : 0;
}

void train_e_layers_format(unsigned layers, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s%s", (layers & TRAIN_E_EMB) ? "emb" : "",
             (layers & TRAIN_E_EMB) && (layers & (TRAIN_E_HIDDEN | TRAIN_E_OUT)) ? "," : "",
             (layers & TRAIN_E_HIDDEN) ? "hidden" : "",
             (layers & TRAIN_E_HIDDEN) && (layers & TRAIN_E_OUT) ? "," : "",
             (layers & TRAIN_E_OUT) ? "out" : "", layers ? "" : "none");
}

arb_status train_model_config_check(const train_model_config *m, arb_err *err)
{
    if (m->ctx < 1 || m->ctx > 4096 || m->D < 1 || m->H < 1 || m->L < 1 ||
        m->L > TRAIN_MAX_LAYERS || m->gs < 1 || m->batch < 1)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "configuration %s: ctx %d, D %d, H %d, L %d, gs %d, batch %d out of range",
                        m->name, m->ctx, m->D, m->H, m->L, m->gs, m->batch);
    int64_t in_dim = (int64_t)m->ctx * m->D;
    if (m->D % m->gs || in_dim % m->gs || m->H % m->gs)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "configuration %s: the group size %d must divide D = %d, ctx*D = %lld "
                        "and H = %d",
                        m->name, m->gs, m->D, (long long)in_dim, m->H);
    /* Every tensor is indexed with 32-bit integers by the kernels. */
    int64_t widest = in_dim > m->H ? in_dim : m->H;
    if ((int64_t)m->batch * widest > INT32_MAX || (int64_t)m->batch * m->ctx > INT32_MAX ||
        (int64_t)m->H * widest > INT32_MAX)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                        "configuration %s with batch %d: a tensor would exceed 2^31-1 elements",
                        m->name, m->batch);
    return ARB_OK;
}

/* ---- the parser ------------------------------------------------------------ */

static arb_status parse_i64(const char *flag, const char *text, int64_t lo, int64_t hi,
                            int64_t *out, arb_err *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!text[0] || errno || *end || v < lo || v > hi)
        return ARB_FAIL(err, ARB_ERR_PARSE, "%s expects an integer in %lld..%lld, got '%s'", flag,
                        (long long)lo, (long long)hi, text);
    *out = v;
    return ARB_OK;
}

static arb_status parse_int(const char *flag, const char *text, int lo, int hi, int *out,
                            arb_err *err)
{
    int64_t v = 0;
    arb_status st = parse_i64(flag, text, lo, hi, &v, err);
    if (st == ARB_OK)
        *out = (int)v;
    return st;
}

static arb_status parse_u64(const char *flag, const char *text, uint64_t *out, arb_err *err)
{
    char *end = NULL;
    errno = 0;
    if (!text[0] || text[0] == '-')
        return ARB_FAIL(err, ARB_ERR_PARSE, "%s expects a non-negative integer, got '%s'", flag,
                        text);
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end)
        return ARB_FAIL(err, ARB_ERR_PARSE, "%s expects a non-negative integer, got '%s'", flag,
                        text);
    *out = v;
    return ARB_OK;
}

static arb_status parse_e_layers(const char *text, unsigned *out, arb_err *err)
{
    unsigned layers = 0;
    if (strcmp(text, "none") == 0 || text[0] == '\0') {
        *out = 0;
        return ARB_OK;
    }
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 3 && strncmp(p, "emb", 3) == 0)
            layers |= TRAIN_E_EMB;
        else if (n == 6 && strncmp(p, "hidden", 6) == 0)
            layers |= TRAIN_E_HIDDEN;
        else if (n == 3 && strncmp(p, "out", 3) == 0)
            layers |= TRAIN_E_OUT;
        else
            return ARB_FAIL(err, ARB_ERR_PARSE,
                            "--e-layers: unknown layer '%.*s' in '%s' (expected a comma list of "
                            "emb, hidden, out, or none)",
                            (int)n, p, text);
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            return ARB_FAIL(err, ARB_ERR_PARSE, "--e-layers: trailing comma in '%s'", text);
    }
    *out = layers;
    return ARB_OK;
}

/* Flags that take a value. */
static const char *const valued[] = {
    "--config",     "--backend",     "--data",        "--eval",        "--steps",
    "--batch",      "--seed",        "--eval-every",  "--log-every",   "--eval-positions",
    "--log",        "--checkpoint",  "--checkpoint-every", "--resume", "--theta",
    "--theta-start", "--theta-end",  "--theta-steps", "--e-threshold", "--e-layers",
    "--e-score",    "--precision",   "--threads",     "--gpus",        "--rank",
    "--world-size", "--init-file",   "--device",      "--graphs",
};

static int takes_value(const char *flag)
{
    for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++)
        if (strcmp(flag, valued[i]) == 0)
            return 1;
    return 0;
}

static void defaults(train_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->action = TRAIN_ACTION_TRAIN;
    train_model_config_named("small", &opt->model); /* replaced in finish() unless given */
    train_rule_defaults(&opt->rule);
    opt->seed = 1;
    opt->steps = -1; /* -1: chosen in finish() */
    opt->eval_every = -1;
    opt->log_every = -1;
    opt->checkpoint_every = -1;
    opt->eval_positions = 65536;
    opt->data_path = "data/brown.txt";
    opt->backend = ARB_BACKEND_AUTO;
    opt->backend_origin = "default";
    opt->precision = ARB_PREC_FP32;
    opt->graphs = 1;
}

arb_status train_options_parse(train_options *opt, int argc, char **argv, arb_err *err)
{
    defaults(opt);

    /* The environment, through the engine's settings registry; read after
     * the flags so that a flag overrides even a malformed variable. */
    arb_settings settings;
    arb_settings_load(&settings);
    arb_err local = {0};
    int precision_flag = 0;

    int rank_given = 0, device_given = 0;
    int theta_parts = 0; /* bits: 1 start, 2 end, 4 steps */
    int theta_const = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        char flag[64];
        const char *value = NULL;
        if (strncmp(arg, "--", 2) != 0) {
            if (strcmp(arg, "-h") == 0) {
                opt->action = TRAIN_ACTION_HELP;
                return ARB_OK;
            }
            if (strcmp(arg, "-V") == 0) {
                opt->action = TRAIN_ACTION_VERSION;
                return ARB_OK;
            }
            return ARB_FAIL(err, ARB_ERR_PARSE,
                            "unexpected argument '%s' (arb-train takes only --flags; see "
                            "--help)",
                            arg);
        }
        const char *eq = strchr(arg, '=');
        size_t flag_len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (flag_len >= sizeof(flag))
            return ARB_FAIL(err, ARB_ERR_PARSE, "unknown flag '%.40s...' (see --help)", arg);
        memcpy(flag, arg, flag_len);
        flag[flag_len] = '\0';
        if (takes_value(flag)) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return ARB_FAIL(err, ARB_ERR_PARSE, "%s needs a value (see --help)", flag);
        } else if (eq) {
            return ARB_FAIL(err, ARB_ERR_PARSE, "%s takes no value, got '%s'", flag, arg);
        }

        arb_status st = ARB_OK;
        if (strcmp(flag, "--help") == 0) {
            opt->action = TRAIN_ACTION_HELP;
            return ARB_OK;
        } else if (strcmp(flag, "--version") == 0) {
            opt->action = TRAIN_ACTION_VERSION;
            return ARB_OK;
        } else if (strcmp(flag, "--dump-shapes") == 0) {
            opt->action = TRAIN_ACTION_DUMP_SHAPES;
        } else if (strcmp(flag, "--quiet") == 0) {
            opt->quiet = 1;
        } else if (strcmp(flag, "--config") == 0) {
            int batch = opt->model.batch;
            if (!train_model_config_named(value, &opt->model))
                return ARB_FAIL(err, ARB_ERR_PARSE,
                                "--config: unknown configuration '%s' (expected tiny, small or "
                                "base)",
                                value);
            if (opt->given & TRAIN_GIVEN_BATCH)
                opt->model.batch = batch; /* --batch before --config still counts */
            opt->given |= TRAIN_GIVEN_CONFIG;
        } else if (strcmp(flag, "--backend") == 0) {
            if (arb_backend_kind_parse(value, &opt->backend, &local) != ARB_OK)
                return ARB_FAIL(err, ARB_ERR_PARSE, "--backend: %s", local.msg);
            opt->backend_origin = "flag";
        } else if (strcmp(flag, "--precision") == 0) {
            if (arb_precision_parse(value, &opt->precision, &local) != ARB_OK)
                return ARB_FAIL(err, ARB_ERR_PARSE, "--precision: %s", local.msg);
            precision_flag = 1;
        } else if (strcmp(flag, "--data") == 0) {
            opt->data_path = value;
        } else if (strcmp(flag, "--eval") == 0) {
            opt->eval_path = value;
        } else if (strcmp(flag, "--log") == 0) {
            opt->log_path = value;
        } else if (strcmp(flag, "--checkpoint") == 0) {
            opt->checkpoint_path = value;
        } else if (strcmp(flag, "--resume") == 0) {
            opt->resume_path = value;
        } else if (strcmp(flag, "--steps") == 0) {
            st = parse_i64(flag, value, 0, INT64_C(1) << 40, &opt->steps, err);
            opt->given |= TRAIN_GIVEN_STEPS;
        } else if (strcmp(flag, "--batch") == 0) {
            st = parse_int(flag, value, 1, 1 << 24, &opt->model.batch, err);
            opt->given |= TRAIN_GIVEN_BATCH;
        } else if (strcmp(flag, "--seed") == 0) {
            st = parse_u64(flag, value, &opt->seed, err);
            opt->given |= TRAIN_GIVEN_SEED;
        } else if (strcmp(flag, "--eval-every") == 0) {
            st = parse_i64(flag, value, 1, INT64_C(1) << 40, &opt->eval_every, err);
            opt->given |= TRAIN_GIVEN_EVAL_EVERY;
        } else if (strcmp(flag, "--log-every") == 0) {
            st = parse_i64(flag, value, 1, INT64_C(1) << 40, &opt->log_every, err);
            opt->given |= TRAIN_GIVEN_LOG_EVERY;
        } else if (strcmp(flag, "--checkpoint-every") == 0) {
            st = parse_i64(flag, value, 0, INT64_C(1) << 40, &opt->checkpoint_every, err);
            opt->given |= TRAIN_GIVEN_CKPT_EVERY;
        } else if (strcmp(flag, "--eval-positions") == 0) {
            st = parse_i64(flag, value, 1, INT64_C(1) << 30, &opt->eval_positions, err);
        } else if (strcmp(flag, "--theta") == 0) {
            st = parse_int(flag, value, 1, 127, &opt->rule.theta, err);
            theta_const = 1;
        } else if (strcmp(flag, "--theta-start") == 0) {
            st = parse_int(flag, value, 1, 127, &opt->rule.theta_start, err);
            theta_parts |= 1;
        } else if (strcmp(flag, "--theta-end") == 0) {
            st = parse_int(flag, value, 1, 127, &opt->rule.theta_end, err);
            theta_parts |= 2;
        } else if (strcmp(flag, "--theta-steps") == 0) {
            st = parse_int(flag, value, 1, INT32_MAX, &opt->rule.theta_steps, err);
            theta_parts |= 4;
        } else if (strcmp(flag, "--e-threshold") == 0) {
            st = parse_int(flag, value, 0, 127, &opt->rule.phi, err);
            opt->given |= TRAIN_GIVEN_PHI;
        } else if (strcmp(flag, "--e-layers") == 0) {
            st = parse_e_layers(value, &opt->rule.e_layers, err);
            opt->given |= TRAIN_GIVEN_E_LAYERS;
        } else if (strcmp(flag, "--e-score") == 0) {
            if (strcmp(value, "grad") == 0)
                opt->rule.e_score = ARB_E_SCORE_GRAD;
            else if (strcmp(value, "sign") == 0)
                opt->rule.e_score = ARB_E_SCORE_SIGN;
            else
                return ARB_FAIL(err, ARB_ERR_PARSE, "--e-score expects grad or sign, got '%s'",
                                value);
            opt->given |= TRAIN_GIVEN_E_SCORE;
        } else if (strcmp(flag, "--threads") == 0) {
            st = parse_int(flag, value, 1, 4096, &opt->threads, err);
        } else if (strcmp(flag, "--graphs") == 0) {
            if (strcmp(value, "on") == 0)
                opt->graphs = 1;
            else if (strcmp(value, "off") == 0)
                opt->graphs = 0;
            else
                return ARB_FAIL(err, ARB_ERR_PARSE, "--graphs expects on or off, got '%s'",
                                value);
        } else if (strcmp(flag, "--gpus") == 0) {
            st = parse_int(flag, value, 1, 127, &opt->gpus, err);
        } else if (strcmp(flag, "--rank") == 0) {
            st = parse_int(flag, value, 0, 126, &opt->rank, err);
            rank_given = 1;
        } else if (strcmp(flag, "--world-size") == 0) {
            st = parse_int(flag, value, 1, 127, &opt->world, err);
        } else if (strcmp(flag, "--init-file") == 0) {
            opt->init_file = value;
        } else if (strcmp(flag, "--device") == 0) {
            st = parse_int(flag, value, 0, 1023, &opt->device, err);
            device_given = 1;
        } else {
            return ARB_FAIL(err, ARB_ERR_PARSE, "unknown flag '%s' (see --help)", flag);
        }
        if (st != ARB_OK)
            return st;
    }

    if (strcmp(opt->backend_origin, "flag") != 0 &&
        settings.origin[ARB_SET_BACKEND] == ARB_ORIGIN_ENV) {
        if (arb_backend_kind_parse(arb_settings_get(&settings, ARB_SET_BACKEND), &opt->backend,
                                   &local) != ARB_OK)
            return ARB_FAIL(err, ARB_ERR_PARSE, "ARB_BACKEND: %s", local.msg);
        opt->backend_origin = "environment";
    }
    if (!precision_flag &&
        arb_precision_parse(arb_settings_get(&settings, ARB_SET_PRECISION), &opt->precision,
                            &local) != ARB_OK)
        return ARB_FAIL(err, ARB_ERR_PARSE, "ARB_PRECISION: %s", local.msg);

    /* Data-parallel ranks: flags, else the launcher convention users know
     * from torchrun (RANK, WORLD_SIZE, LOCAL_RANK) plus ARB_INIT_FILE. */
    const char *env;
    if (!rank_given && ((env = getenv("ARB_RANK")) || (env = getenv("RANK")))) {
        if (parse_int("RANK", env, 0, 126, &opt->rank, err))
            return ARB_ERR_PARSE;
        rank_given = 1;
    }
    if (!opt->world && ((env = getenv("ARB_WORLD_SIZE")) || (env = getenv("WORLD_SIZE"))) &&
        parse_int("WORLD_SIZE", env, 1, 127, &opt->world, err))
        return ARB_ERR_PARSE;
    if (!opt->init_file && (env = getenv("ARB_INIT_FILE")))
        opt->init_file = env;
    if (!device_given && (env = getenv("LOCAL_RANK"))) {
        if (parse_int("LOCAL_RANK", env, 0, 1023, &opt->device, err))
            return ARB_ERR_PARSE;
        device_given = 1;
    }
    if (opt->world > 1 || rank_given) {
        if (opt->world < 1 || opt->rank >= opt->world)
            return ARB_FAIL(err, ARB_ERR_PARSE,
                            "rank %d needs a world size above it (--world-size or WORLD_SIZE)",
                            opt->rank);
        if (opt->world > 1 && !opt->init_file)
            return ARB_FAIL(err, ARB_ERR_PARSE,
                            "data-parallel ranks meet through --init-file PATH (or "
                            "ARB_INIT_FILE), the same fresh path for every rank");
        if (!device_given)
            opt->device = opt->rank;
    }
    if (opt->world == 1)
        opt->world = 0; /* one rank: the ordinary single-process run */

    if (theta_parts && theta_parts != 7)
        return ARB_FAIL(err, ARB_ERR_PARSE,
                        "a theta schedule needs all of --theta-start, --theta-end and "
                        "--theta-steps");
    if (theta_parts && theta_const)
        return ARB_FAIL(err, ARB_ERR_PARSE,
                        "--theta (constant) and --theta-start/--theta-end/--theta-steps (a "
                        "schedule) exclude each other");
    if (theta_parts) {
        opt->rule.theta = opt->rule.theta_end; /* the value after the schedule */
        opt->given |= TRAIN_GIVEN_THETA;
    } else {
        opt->rule.theta_start = opt->rule.theta_end = opt->rule.theta;
        opt->rule.theta_steps = 0;
        if (theta_const)
            opt->given |= TRAIN_GIVEN_THETA;
    }
    return ARB_OK;
}

void train_options_finish(train_options *opt, arb_backend_kind kind)
{
    if (!(opt->given & TRAIN_GIVEN_CONFIG)) {
        int batch = opt->model.batch;
        train_model_config_named(kind == ARB_BACKEND_JIT ? "base" : "small", &opt->model);
        if (opt->given & TRAIN_GIVEN_BATCH)
            opt->model.batch = batch;
    }
    /* Step counts: a few minutes of useful training on the default device.
     * small on an idle 2-core CPU runs about 60 steps/s (Release build) and
     * an evaluation of 65536 positions takes under 2 s, so 3000 steps take
     * about a minute (held-out 3.10 bpb; 5000 steps reach only 3.09); base
     * on a GPU matches the SPEC's 1500-step figures. */
    int64_t steps = 3000, every = 500;
    if (strcmp(opt->model.name, "tiny") == 0) {
        steps = 1000;
        every = 100;
    } else if (strcmp(opt->model.name, "base") == 0) {
        steps = 1500;
        every = 100;
    }
    if (opt->steps < 0)
        opt->steps = steps;
    if (opt->eval_every < 0)
        opt->eval_every = every;
    if (opt->log_every < 0)
        opt->log_every = opt->eval_every;
    if (opt->checkpoint_every < 0)
        opt->checkpoint_every = opt->eval_every;
}

void train_print_help(void)
{
    fputs(
        "Usage: arb-train [FLAG]...\n"
        "Train the byte-level strict-ternary language model (SPEC section 6): given the\n"
        "previous ctx bytes, predict the next one. All parameters and optimizer state\n"
        "are integers (packed trits, int8 scales and accumulators).\n"
        "\n"
        "Model and backend:\n"
        "  --config tiny|small|base   model configuration (default: small on cpu, base on jit)\n"
        "                               tiny:  ctx 4,  D 16,  H 64,   L 2, gs 16, batch 64\n"
        "                               small: ctx 8,  D 32,  H 256,  L 2, gs 32, batch 256\n"
        "                               base:  ctx 16, D 256, H 4096, L 4, gs 64, batch 1024\n"
        "  --backend auto|jit|cpu     where to run (env ARB_BACKEND; default auto: jit when a\n"
        "                             CUDA driver and GPU are present, else cpu)\n"
        "  --precision MODE           GEMM mode on jit: fp32, tf32, bf16, bf16x2, bf16x3\n"
        "                             (env ARB_PRECISION; default bf16x2)\n"
        "  --threads N                cpu worker threads (default: all cores)\n"
        "  --graphs on|off            jit: capture a step as a CUDA graph once and replay it\n"
        "                             (default on; a theta schedule recaptures when theta\n"
        "                             changes; data-parallel runs launch eagerly)\n"
        "  --gpus N                   data-parallel training on N GPUs: launches one process\n"
        "                             per GPU; ranks exchange gradient signs (a majority vote)\n"
        "                             and E scores over NCCL, and hold identical state\n"
        "  --rank R --world-size W --init-file PATH [--device D]\n"
        "                             run one rank yourself (env RANK, WORLD_SIZE, LOCAL_RANK,\n"
        "                             ARB_INIT_FILE, as under torchrun); PATH must be new\n"
        "  --batch N                  positions per step (default: the configuration's)\n"
        "  --seed N                   seed of the initialization and the batches (default 1)\n"
        "\n"
        "Data and schedule:\n"
        "  --data FILE                training text (default data/brown.txt; fetch it with\n"
        "                             tools/fetch-corpus.sh). The last 5% is held out.\n"
        "  --eval FILE                also report bits per byte on this file\n"
        "  --steps N                  total steps of the run (default: tiny 1000, small 3000,\n"
        "                             base 1500); a resumed run stops at the same total\n"
        "  --eval-every N             held-out evaluation interval, also at the end (default:\n"
        "                             tiny 100, small 500, base 100)\n"
        "  --eval-positions N         held-out positions per evaluation (default 65536,\n"
        "                             evenly spaced)\n"
        "  --log-every N              report interval (default: --eval-every)\n"
        "  --log FILE                 append JSON lines: step, loss, heldout_bpb, flips,\n"
        "                             tokens_per_s, wall_s (truncated unless resuming)\n"
        "\n"
        "Update rule (defaults: SPEC section 6):\n"
        "  --theta N                  constant T flip threshold, 1..127 (default 31)\n"
        "  --theta-start A --theta-end B --theta-steps S\n"
        "                             theta moves linearly from A to B over S steps, then B\n"
        "  --e-threshold PHI          E threshold, 0..127 (default 32; 0 freezes E)\n"
        "  --e-layers LIST            layers whose E is updated: comma list of emb, hidden,\n"
        "                             out, or none (default emb,hidden)\n"
        "  --e-score grad|sign        E score (default grad)\n"
        "\n"
        "Checkpoints:\n"
        "  --checkpoint FILE          write checkpoints here (atomically: temp file, fsync,\n"
        "                             rename); format: docs/checkpoint-format.md\n"
        "  --checkpoint-every N       checkpoint interval (default: --eval-every; 0: only at\n"
        "                             the end)\n"
        "  --resume FILE              continue from a checkpoint (bit for bit on cpu); options\n"
        "                             not given are taken from it\n"
        "\n"
        "Other:\n"
        "  --dump-shapes              write the shapes.txt lines of the configuration (and\n"
        "                             --batch, rule, --precision) to stdout and exit\n"
        "  --quiet                    only errors and the final line\n"
        "  --help, -h                 this text\n"
        "  --version, -V              the version\n"
        "\n"
        "Output: the configuration and backend, the unigram entropy of the training bytes\n"
        "(the no-context baseline), then a line per interval (step, mean training loss in\n"
        "nats since the previous line, held-out bits per byte, trits flipped in that step,\n"
        "tokens/s), and last one line:\n"
        "  final: step=N loss=L heldout_bpb=B unigram_bpb=U tokens_per_s=R\n"
        "(L: the last interval's mean loss; R: the mean rate of the run's steps after its\n"
        "first, which on jit compiles or loads the kernels).\n"
        "\n"
        "Exit status: 0 success, 1 failure, 2 bad flags or input (data, checkpoint),\n"
        "3 non-finite loss (no checkpoint is written).\n",
        stdout);
}
