/*
 * report.c - result rows and their three outputs: the aligned table on
 * stdout, JSON and CSV.
 *
 * JSON schema ("arb-bench/1"), one object:
 *   {
 *     "schema": "arb-bench/1",
 *     "mode": "resolved" | "sweep-blocks" | "jit" | "step",
 *     "command": string,                 the command line
 *     "build": string,                   engine build id (tuning rows of another are stale)
 *     "device": null | {"name": string, "sm_count": int, "cc": "9.0", "memory_bytes": number,
 *                       "arch": "sm_90", "driver": "13.0", "nvrtc": "13.0"},
 *     "cache": string,                   the writable kernel cache ("" when none)
 *     "ceilings": {"copy_gbps": number, "copy_measured": bool,
 *                  "cublas_fp32_tflops": number, "cublas_tf32_tflops": number,
 *                  "cublas_bf16_tflops": number, "cublas_measured": bool},
 *     "rows": [ row, ... ]
 *   }
 *   row = {
 *     "kind": "kernel" | "peer" | "ceiling" | "jit" | "step" | "op",
 *     "name": string,                    kernel stem, peer, ceiling or figure name
 *     "group": string,                   "<kernel> M=.. N=.. K=.. gs=.. <precision>[ variant=v]"
 *     "kernel", "precision": string | null;  "M", "N", "K", "gs", "variant": int | null
 *     "config": null | {"bm","bn","bk","tm","tn","warps","stages": int},
 *     "config_text": string,             "bm=..,bn=..,..." ("" when none)
 *     "origin": "default" | "tuned" | "nearest" | "candidate" | "",
 *     "is_default", "is_winner": bool,
 *     "status": "ok" | "wrong" | "compile_failed" | "launch_failed" | "unsupported"
 *               | "unverified" | "skipped",
 *     "reason": string,                  why not ok ("" when ok)
 *     "median_us", "p20_us", "p80_us": number | null,   per launch
 *     "repeats": int,                    timed samples; "per_sample": launches per sample
 *     "method": "graph" | "stream" | "",
 *     "bytes", "flops": number | null,   minimum work of one launch
 *     "gbps", "tflops", "pct_ceiling": number | null,
 *     "bound": "memory" | "compute" | "",
 *     "peer": string, "peer_us", "peer_ratio": number | null   (ratio = peer / ours)
 *     "rel_err": number | null,          vs the trusted reference (null: exact or none)
 *     "value": number | null, "unit": string,                  jit, step, ceiling figures
 *     "command": string                  replays the measurement
 *   }
 * An "op" row (--gemm) times a whole op as the trainer runs it: name and
 * kernel are the op (ternary_fwd, ternary_grad_x), precision its mode,
 * config_text the kernels of its plan ("ternary_decode+act_split+tc_gemm"),
 * bytes and flops the op's minimum work, peer the cuBLAS GEMM of the mode,
 * rel_err the error against the fp32 op of the same run (null for fp32
 * itself), value the error against float64 rows (unit "f64_rel_err").
 * Non-finite numbers are written as null. CSV has the same fields (config
 * as seven columns), one header line, RFC 4180 quoting.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arb/json.h"
#include "bench.h"

#ifndef ARB_VERSION
#define ARB_VERSION "unknown"
#endif

void bench_row_init(bench_row *row)
{
    memset(row, 0, sizeof(*row));
    row->median_us = row->p20_us = row->p80_us = NAN;
    row->bytes = row->flops = NAN;
    row->gbps = row->tflops = row->pct_ceiling = NAN;
    row->peer_us = row->peer_ratio = NAN;
    row->rel_err = NAN;
    row->value = NAN;
}

static void ceilings_documented(bench_ceilings *c)
{
    memset(c, 0, sizeof(*c));
    c->copy_gbps = BENCH_DOC_COPY_GBPS;
    c->fp32_tflops = BENCH_DOC_FP32_TFLOPS;
    c->tf32_tflops = BENCH_DOC_TF32_TFLOPS;
    c->bf16_tflops = BENCH_DOC_BF16_TFLOPS;
}

void bench_report_init(bench_report *r, const char *mode, const char *command)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->mode, sizeof(r->mode), "%s", mode);
    snprintf(r->command, sizeof(r->command), "%s", command ? command : "");
    snprintf(r->build, sizeof(r->build), "%s", arb_engine_build_id());
    ceilings_documented(&r->ceil);
}

void bench_report_free(bench_report *r)
{
    free(r->rows);
    r->rows = NULL;
    r->count = r->cap = 0;
}

int bench_report_add(bench_report *r, const bench_row *row)
{
    if (r->count == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        bench_row *grown = realloc(r->rows, (size_t)cap * sizeof(*grown));
        if (!grown)
            return -1;
        r->rows = grown;
        r->cap = cap;
    }
    r->rows[r->count] = *row;
    return r->count++;
}

static double peak_tflops(const bench_ceilings *c, arb_precision prec)
{
    switch (prec) {
    case ARB_PREC_TF32: return c->tf32_tflops;
    case ARB_PREC_BF16:
    case ARB_PREC_BF16X2:
    case ARB_PREC_BF16X3: return c->bf16_tflops;
    default: return c->fp32_tflops;
    }
}

void bench_row_derive(bench_row *row, const bench_ceilings *c)
{
    double t = row->median_us * 1e-6; /* seconds per launch */
    if (!(t > 0) || !isfinite(t))
        return;
    if (isfinite(row->bytes))
        row->gbps = row->bytes / t / 1e9;
    if (isfinite(row->flops))
        row->tflops = row->flops / t / 1e12;
    /* Roofline: the launch cannot beat bytes / copy rate nor flops / peak. */
    double t_mem = isfinite(row->bytes) && c->copy_gbps > 0 ? row->bytes / (c->copy_gbps * 1e9)
                                                              : 0.0;
    double peak = peak_tflops(c, row->has_spec ? row->spec.prec : ARB_PREC_FP32);
    if (strcmp(row->name, "cublas_tf32") == 0)
        peak = c->tf32_tflops;
    else if (strcmp(row->name, "cublas_bf16") == 0)
        peak = c->bf16_tflops;
    else if (strcmp(row->name, "cublas_fp32") == 0)
        peak = c->fp32_tflops;
    double t_flop = isfinite(row->flops) && peak > 0 ? row->flops / (peak * 1e12) : 0.0;
    double ideal = t_mem > t_flop ? t_mem : t_flop;
    if (ideal > 0) {
        row->pct_ceiling = 100.0 * ideal / t;
        snprintf(row->bound, sizeof(row->bound), "%s", t_mem >= t_flop ? "memory" : "compute");
    }
}

static int timed_ok(const bench_row *row)
{
    return strcmp(row->kind, "kernel") == 0 && strcmp(row->status, "ok") == 0 &&
           isfinite(row->median_us);
}

void bench_mark_winners(bench_report *r)
{
    for (int i = 0; i < r->count; i++)
        r->rows[i].is_winner = 0;
    /* One winner per group: the first of the fastest (ties keep list order). */
    for (int i = 0; i < r->count; i++) {
        if (!timed_ok(&r->rows[i]))
            continue;
        int first_of_group = 1;
        for (int j = 0; j < i && first_of_group; j++)
            if (timed_ok(&r->rows[j]) && strcmp(r->rows[j].group, r->rows[i].group) == 0)
                first_of_group = 0;
        if (!first_of_group)
            continue;
        int best = i;
        for (int j = i + 1; j < r->count; j++)
            if (timed_ok(&r->rows[j]) && strcmp(r->rows[j].group, r->rows[i].group) == 0 &&
                r->rows[j].median_us < r->rows[best].median_us)
                best = j;
        r->rows[best].is_winner = 1;
    }
}

/* ---- the table ------------------------------------------------------------------- */

#define COLS 14
#define CELL 128

static void fmt_num(char *buf, size_t len, double v, int decimals)
{
    if (!isfinite(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.*f", decimals, v);
}

static void fmt_us(char *buf, size_t len, double us)
{
    fmt_num(buf, len, us, us < 10 ? 2 : us < 1000 ? 1 : 0);
}

/* "p20..p80" of a row's samples, or "-". */
static void fmt_spread(char *cell, size_t len, const bench_row *row)
{
    if (!isfinite(row->p20_us)) {
        snprintf(cell, len, "-");
        return;
    }
    char a[32], b[32];
    fmt_us(a, sizeof(a), row->p20_us);
    fmt_us(b, sizeof(b), row->p80_us);
    snprintf(cell, len, "%s..%s", a, b);
}

static void row_cells(const bench_row *row, char cells[COLS][CELL])
{
    char shape[96] = "", variant[16] = "";
    if (row->has_spec) {
        if (row->spec.variant)
            snprintf(variant, sizeof(variant), " v%d", row->spec.variant);
        snprintf(shape, sizeof(shape), "M=%" PRId64 " N=%" PRId64 " K=%" PRId64 " gs=%" PRId64 "%s",
                 row->spec.M, row->spec.N, row->spec.K, row->spec.gs, variant);
    }
    snprintf(cells[0], CELL, "%s", row->name);
    snprintf(cells[1], CELL, "%s", shape);
    snprintf(cells[2], CELL, "%s", row->has_spec ? arb_precision_name(row->spec.prec) : "");
    char brief[96] = "-";
    if (strcmp(row->kind, "kernel") == 0)
        bench_format_blocks_short(&row->spec.blocks, brief, sizeof(brief));
    else if (row->config[0])
        bench_copy(brief, sizeof(brief), row->config);
    snprintf(cells[3], CELL, "%s%s", row->is_winner ? "+" : row->is_default ? "*" : " ", brief);
    snprintf(cells[4], CELL, "%s", row->status);
    snprintf(cells[13], CELL, "%s", row->origin);
    fmt_us(cells[5], CELL, row->median_us);
    fmt_spread(cells[6], CELL, row);
    fmt_num(cells[7], CELL, row->tflops, row->tflops < 10 ? 2 : 1);
    fmt_num(cells[8], CELL, row->gbps, 0);
    if (isfinite(row->pct_ceiling))
        snprintf(cells[9], CELL, "%.0f%% %s", row->pct_ceiling, row->bound[0] == 'c' ? "cmp" : "mem");
    else
        snprintf(cells[9], CELL, "-");
    snprintf(cells[10], CELL, "%s", row->peer[0] ? row->peer : "-");
    fmt_us(cells[11], CELL, row->peer_us);
    if (isfinite(row->peer_ratio))
        snprintf(cells[12], CELL, "%.2fx", row->peer_ratio);
    else
        snprintf(cells[12], CELL, "-");
}

static const char *const headers[COLS] = {"kernel", "shape",   "prec",    " config", "status",
                                          "us",     "p20..p80", "TFLOP/s", "GB/s",    "%ceil",
                                          "peer",   "peer us",  "vs peer", "origin"};
/* Numeric columns align right. */
static const int right[COLS] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0};

/* One line; the last column is not padded (no trailing blanks). */
static void print_cells(FILE *out, char cells[COLS][CELL], const int widths[COLS])
{
    for (int c = 0; c < COLS; c++) {
        if (c == COLS - 1 && !cells[c][0])
            break;
        int w = c == COLS - 1 && !right[c] ? 0 : widths[c];
        fprintf(out, "%s%*s", c ? "  " : "", right[c] ? w : -w, cells[c]);
    }
    fputc('\n', out);
}

static void print_section(FILE *out, const bench_report *r, const char *kind, const char *title)
{
    int widths[COLS];
    int any = 0;
    for (int c = 0; c < COLS; c++)
        widths[c] = (int)strlen(headers[c]);
    char cells[COLS][CELL];
    for (int i = 0; i < r->count; i++) {
        if (strcmp(r->rows[i].kind, kind) != 0)
            continue;
        any = 1;
        row_cells(&r->rows[i], cells);
        for (int c = 0; c < COLS; c++)
            if ((int)strlen(cells[c]) > widths[c])
                widths[c] = (int)strlen(cells[c]);
    }
    if (!any)
        return;
    fprintf(out, "\n%s\n", title);
    for (int c = 0; c < COLS; c++)
        snprintf(cells[c], CELL, "%s", headers[c]);
    print_cells(out, cells, widths);
    for (int i = 0; i < r->count; i++) {
        if (strcmp(r->rows[i].kind, kind) != 0)
            continue;
        row_cells(&r->rows[i], cells);
        print_cells(out, cells, widths);
    }
}

/* ---- the op rows (--gemm) ------------------------------------------------------------ */

#define OP_COLS 13

static void op_cells(const bench_row *row, char cells[OP_COLS][CELL])
{
    snprintf(cells[0], CELL, "%s", row->name);
    snprintf(cells[1], CELL, "M=%" PRId64 " N=%" PRId64 " K=%" PRId64 " gs=%" PRId64, row->spec.M,
             row->spec.N, row->spec.K, row->spec.gs);
    snprintf(cells[2], CELL, "%s", arb_precision_name(row->spec.prec));
    snprintf(cells[3], CELL, "%s", row->config);
    snprintf(cells[4], CELL, "%s", row->status);
    fmt_us(cells[5], CELL, row->median_us);
    fmt_spread(cells[6], CELL, row);
    fmt_num(cells[7], CELL, row->tflops, row->tflops < 10 ? 2 : 1);
    /* The fp32 op is the reference of the others: its own error is none. */
    if (isfinite(row->rel_err))
        snprintf(cells[8], CELL, "%.2e", row->rel_err);
    else
        snprintf(cells[8], CELL, "%s", row->spec.prec == ARB_PREC_FP32 ? "ref" : "-");
    if (isfinite(row->value))
        snprintf(cells[9], CELL, "%.2e", row->value);
    else
        snprintf(cells[9], CELL, "-");
    snprintf(cells[10], CELL, "%s", row->peer[0] ? row->peer : "-");
    fmt_us(cells[11], CELL, row->peer_us);
    if (isfinite(row->peer_ratio))
        snprintf(cells[12], CELL, "%.2fx", row->peer_ratio);
    else
        snprintf(cells[12], CELL, "-");
}

static const char *const op_headers[OP_COLS] = {
    "op", "shape", "mode", "plan", "status", "us", "p20..p80", "TFLOP/s", "vs fp32", "vs f64",
    "peer", "peer us", "vs peer"};
static const int op_right[OP_COLS] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1};

static void print_op_cells(FILE *out, char cells[OP_COLS][CELL], const int widths[OP_COLS])
{
    for (int c = 0; c < OP_COLS; c++) {
        int w = c == OP_COLS - 1 ? 0 : widths[c];
        fprintf(out, "%s%*s", c ? "  " : "", op_right[c] ? widths[c] : -w, cells[c]);
    }
    fputc('\n', out);
}

static void print_ops(FILE *out, const bench_report *r)
{
    int widths[OP_COLS];
    int any = 0;
    char cells[OP_COLS][CELL];
    for (int c = 0; c < OP_COLS; c++)
        widths[c] = (int)strlen(op_headers[c]);
    for (int i = 0; i < r->count; i++) {
        if (strcmp(r->rows[i].kind, "op") != 0)
            continue;
        any = 1;
        op_cells(&r->rows[i], cells);
        for (int c = 0; c < OP_COLS; c++)
            if ((int)strlen(cells[c]) > widths[c])
                widths[c] = (int)strlen(cells[c]);
    }
    if (!any)
        return;
    fprintf(out, "\nops (whole plan as the trainer runs it; us per op call; vs fp32 / vs f64 = "
                 "rel err against the fp32 op / float64 rows; peer = cuBLAS of the mode on the "
                 "dense weight, fp32 SGEMM for fp32, bf16x2, bf16x3)\n");
    for (int c = 0; c < OP_COLS; c++)
        snprintf(cells[c], CELL, "%s", op_headers[c]);
    print_op_cells(out, cells, widths);
    for (int i = 0; i < r->count; i++) {
        if (strcmp(r->rows[i].kind, "op") != 0)
            continue;
        op_cells(&r->rows[i], cells);
        print_op_cells(out, cells, widths);
    }
}

void bench_print_table(FILE *out, const bench_report *r)
{
    if (r->has_device)
        fprintf(out, "device: %s (%d SMs, %s), driver %s, NVRTC %s, build %.12s\n", r->device,
                r->sm_count, r->arch, r->driver, r->nvrtc, r->build);
    const bench_ceilings *c = &r->ceil;
    fprintf(out,
            "ceilings: copy %.0f GB/s (%s); cuBLAS at M=8192 N=K=4096: fp32 %.1f, tf32 %.0f, "
            "bf16 %.0f TFLOP/s (%s)\n",
            c->copy_gbps, c->copy_measured ? "measured on 1 GiB" : "documented H100",
            c->fp32_tflops, c->tf32_tflops, c->bf16_tflops,
            c->blas_measured ? "measured" : "documented H100");
    fprintf(out, "%%ceil = max(bytes / copy rate, flops / cuBLAS peak of the mode) / time; "
                 "vs peer = peer time / ours (> 1: arb is faster); * default, + fastest (sweeps)\n");
    print_section(out, r, "kernel", "kernels");
    print_section(out, r, "peer", "peers (dense cuBLAS on the dequantized weight; device copy "
                                  "of the same bytes)");
    print_ops(out, r);
    int notes = 0;
    for (int i = 0; i < r->count; i++) {
        const bench_row *row = &r->rows[i];
        if (!row->reason[0] ||
            (strcmp(row->kind, "kernel") && strcmp(row->kind, "peer") && strcmp(row->kind, "op")))
            continue;
        if (!notes++)
            fprintf(out, "\nnotes:\n");
        char brief[96] = "";
        if (strcmp(row->kind, "kernel") == 0)
            bench_format_blocks_short(&row->spec.blocks, brief, sizeof(brief));
        else if (strcmp(row->kind, "op") == 0) /* the op's plan */
            bench_copy(brief, sizeof(brief), row->config);
        fprintf(out, "  %s %s: %s: %s\n", row->group[0] ? row->group : row->name, brief,
                row->status, row->reason);
    }
}

void bench_print_winners(FILE *out, const bench_report *r)
{
    int printed = 0;
    for (int i = 0; i < r->count; i++) {
        const bench_row *w = &r->rows[i];
        if (!w->is_winner)
            continue;
        const bench_row *d = NULL;
        for (int j = 0; j < r->count; j++)
            if (r->rows[j].is_default && strcmp(r->rows[j].kind, "kernel") == 0 &&
                strcmp(r->rows[j].group, w->group) == 0)
                d = &r->rows[j];
        if (!printed++)
            fprintf(out, "\nwinners (fastest correct configuration of each kernel and shape; "
                         "the engine picks the fastest current tuning row):\n");
        char wb[64], db[64] = "-";
        bench_format_blocks_short(&w->spec.blocks, wb, sizeof(wb));
        if (d)
            bench_format_blocks_short(&d->spec.blocks, db, sizeof(db));
        if (d && timed_ok(d))
            fprintf(out, "  %-66s %-22s %9.2f us  %5.2fx vs default %s (%.2f us)\n", w->group,
                    wb, w->median_us, d->median_us / w->median_us, db, d->median_us);
        else
            fprintf(out, "  %-66s %-22s %9.2f us  (default %s: %s)\n", w->group, wb, w->median_us,
                    db, d ? d->status : "not measured");
    }
}

/* ---- JSON -------------------------------------------------------------------------- */

/* A number member, null when not finite (arb/json.h writes strings,
 * integers and booleans). */
static void json_kv_num(FILE *out, const char *key, double v, int *first)
{
    arb_json_key(out, key, first);
    if (isfinite(v))
        fprintf(out, "%.9g", v);
    else
        fputs("null", out);
}

static void json_row(FILE *out, const bench_row *row)
{
    int first = 1;
    fputs("{", out);
    arb_json_kv_str(out, "kind", row->kind, &first);
    arb_json_kv_str(out, "name", row->name, &first);
    arb_json_kv_str(out, "group", row->group, &first);
    if (row->has_spec) {
        arb_json_kv_str(out, "kernel", row->spec.kernel, &first);
        arb_json_kv_str(out, "precision", arb_precision_name(row->spec.prec), &first);
        arb_json_kv_int(out, "M", row->spec.M, &first);
        arb_json_kv_int(out, "N", row->spec.N, &first);
        arb_json_kv_int(out, "K", row->spec.K, &first);
        arb_json_kv_int(out, "gs", row->spec.gs, &first);
        arb_json_kv_int(out, "variant", row->spec.variant, &first);
    } else {
        static const char *const nulls[] = {"kernel", "precision", "M", "N", "K", "gs", "variant"};
        for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
            arb_json_key(out, nulls[i], &first);
            fputs("null", out);
        }
    }
    arb_json_key(out, "config", &first);
    if (strcmp(row->kind, "kernel") == 0 && row->has_spec) {
        const arb_blocks *b = &row->spec.blocks;
        fprintf(out,
                "{\"bm\": %d, \"bn\": %d, \"bk\": %d, \"tm\": %d, \"tn\": %d, \"warps\": %d, "
                "\"stages\": %d}",
                b->bm, b->bn, b->bk, b->tm, b->tn, b->warps, b->stages);
    } else {
        fputs("null", out);
    }
    arb_json_kv_str(out, "config_text", row->config, &first);
    arb_json_kv_str(out, "origin", row->origin, &first);
    arb_json_kv_bool(out, "is_default", row->is_default, &first);
    arb_json_kv_bool(out, "is_winner", row->is_winner, &first);
    arb_json_kv_str(out, "status", row->status, &first);
    arb_json_kv_str(out, "reason", row->reason, &first);
    json_kv_num(out, "median_us", row->median_us, &first);
    json_kv_num(out, "p20_us", row->p20_us, &first);
    json_kv_num(out, "p80_us", row->p80_us, &first);
    arb_json_kv_int(out, "repeats", row->repeats, &first);
    arb_json_kv_int(out, "per_sample", row->per_sample, &first);
    arb_json_kv_str(out, "method", row->method, &first);
    json_kv_num(out, "bytes", row->bytes, &first);
    json_kv_num(out, "flops", row->flops, &first);
    json_kv_num(out, "gbps", row->gbps, &first);
    json_kv_num(out, "tflops", row->tflops, &first);
    json_kv_num(out, "pct_ceiling", row->pct_ceiling, &first);
    arb_json_kv_str(out, "bound", row->bound, &first);
    arb_json_kv_str(out, "peer", row->peer, &first);
    json_kv_num(out, "peer_us", row->peer_us, &first);
    json_kv_num(out, "peer_ratio", row->peer_ratio, &first);
    json_kv_num(out, "rel_err", row->rel_err, &first);
    json_kv_num(out, "value", row->value, &first);
    arb_json_kv_str(out, "unit", row->unit, &first);
    arb_json_kv_str(out, "command", row->command, &first);
    fputs("}", out);
}

arb_status bench_write_json(const bench_report *r, FILE *out)
{
    int first = 1;
    fputs("{", out);
    arb_json_kv_str(out, "schema", "arb-bench/1", &first);
    arb_json_kv_str(out, "mode", r->mode, &first);
    arb_json_kv_str(out, "command", r->command, &first);
    arb_json_kv_str(out, "arb_version", ARB_VERSION, &first);
    arb_json_kv_str(out, "build", r->build, &first);
    arb_json_key(out, "device", &first);
    if (r->has_device) {
        int f2 = 1;
        char cc[16];
        snprintf(cc, sizeof(cc), "%d.%d", r->cc_major, r->cc_minor);
        fputs("{", out);
        arb_json_kv_str(out, "name", r->device, &f2);
        arb_json_kv_int(out, "sm_count", r->sm_count, &f2);
        arb_json_kv_str(out, "cc", cc, &f2);
        json_kv_num(out, "memory_bytes", r->memory_bytes, &f2);
        arb_json_kv_str(out, "arch", r->arch, &f2);
        arb_json_kv_str(out, "driver", r->driver, &f2);
        arb_json_kv_str(out, "nvrtc", r->nvrtc, &f2);
        fputs("}", out);
    } else {
        fputs("null", out);
    }
    arb_json_kv_str(out, "cache", r->cache, &first);
    arb_json_key(out, "ceilings", &first);
    {
        int f2 = 1;
        fputs("{", out);
        json_kv_num(out, "copy_gbps", r->ceil.copy_gbps, &f2);
        arb_json_kv_bool(out, "copy_measured", r->ceil.copy_measured, &f2);
        json_kv_num(out, "cublas_fp32_tflops", r->ceil.fp32_tflops, &f2);
        json_kv_num(out, "cublas_tf32_tflops", r->ceil.tf32_tflops, &f2);
        json_kv_num(out, "cublas_bf16_tflops", r->ceil.bf16_tflops, &f2);
        arb_json_kv_bool(out, "cublas_measured", r->ceil.blas_measured, &f2);
        fputs("}", out);
    }
    arb_json_key(out, "rows", &first);
    fputs("[", out);
    for (int i = 0; i < r->count; i++) {
        fputs(i ? ",\n  " : "\n  ", out);
        json_row(out, &r->rows[i]);
    }
    fputs(r->count ? "\n]}\n" : "]}\n", out);
    return ferror(out) ? ARB_ERR_IO : ARB_OK;
}

/* ---- CSV ----------------------------------------------------------------------------- */

static void csv_str(FILE *out, const char *s, int last)
{
    int quote = strpbrk(s, ",\"\n\r") != NULL;
    if (quote) {
        fputc('"', out);
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                fputc('"', out);
            fputc(*p, out);
        }
        fputc('"', out);
    } else {
        fputs(s, out);
    }
    fputc(last ? '\n' : ',', out);
}

static void csv_num(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.9g,", v);
    else
        fputc(',', out);
}

static const char csv_header[] =
    "kind,name,group,kernel,precision,M,N,K,gs,variant,bm,bn,bk,tm,tn,warps,stages,config_text,"
    "origin,is_default,is_winner,status,reason,median_us,p20_us,p80_us,repeats,per_sample,method,"
    "bytes,flops,gbps,tflops,pct_ceiling,bound,peer,peer_us,peer_ratio,rel_err,value,unit,command\n";

arb_status bench_write_csv(const bench_report *r, FILE *out)
{
    fputs(csv_header, out);
    for (int i = 0; i < r->count; i++) {
        const bench_row *row = &r->rows[i];
        csv_str(out, row->kind, 0);
        csv_str(out, row->name, 0);
        csv_str(out, row->group, 0);
        if (row->has_spec) {
            csv_str(out, row->spec.kernel, 0);
            csv_str(out, arb_precision_name(row->spec.prec), 0);
            fprintf(out, "%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%d,", row->spec.M,
                    row->spec.N, row->spec.K, row->spec.gs, row->spec.variant);
        } else {
            fputs(",,,,,,,", out);
        }
        if (strcmp(row->kind, "kernel") == 0 && row->has_spec) {
            const arb_blocks *b = &row->spec.blocks;
            fprintf(out, "%d,%d,%d,%d,%d,%d,%d,", b->bm, b->bn, b->bk, b->tm, b->tn, b->warps,
                    b->stages);
        } else {
            fputs(",,,,,,,", out);
        }
        csv_str(out, row->config, 0);
        csv_str(out, row->origin, 0);
        fprintf(out, "%d,%d,", row->is_default, row->is_winner);
        csv_str(out, row->status, 0);
        csv_str(out, row->reason, 0);
        csv_num(out, row->median_us);
        csv_num(out, row->p20_us);
        csv_num(out, row->p80_us);
        fprintf(out, "%d,%d,", row->repeats, row->per_sample);
        csv_str(out, row->method, 0);
        csv_num(out, row->bytes);
        csv_num(out, row->flops);
        csv_num(out, row->gbps);
        csv_num(out, row->tflops);
        csv_num(out, row->pct_ceiling);
        csv_str(out, row->bound, 0);
        csv_str(out, row->peer, 0);
        csv_num(out, row->peer_us);
        csv_num(out, row->peer_ratio);
        csv_num(out, row->rel_err);
        csv_num(out, row->value);
        csv_str(out, row->unit, 0);
        csv_str(out, row->command, 1);
    }
    return ferror(out) ? ARB_ERR_IO : ARB_OK;
}

typedef arb_status (*writer_fn)(const bench_report *r, FILE *out);

static arb_status write_file(const bench_report *r, const char *path, writer_fn fn,
                             const char *what, arb_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return ARB_FAIL(err, ARB_ERR_IO, "cannot write the %s to %s", what, path);
    arb_status st = fn(r, f);
    if (fclose(f) != 0 || st)
        return ARB_FAIL(err, ARB_ERR_IO, "writing the %s to %s failed (disk full?)", what, path);
    return ARB_OK;
}

arb_status bench_write_json_file(const bench_report *r, const char *path, arb_err *err)
{
    return write_file(r, path, bench_write_json, "JSON report", err);
}

arb_status bench_write_csv_file(const bench_report *r, const char *path, arb_err *err)
{
    return write_file(r, path, bench_write_csv, "CSV report", err);
}

arb_status bench_write_svg_file(const bench_report *r, const char *path, arb_err *err)
{
    return write_file(r, path, bench_write_svg, "plot", err);
}

/* ---- tuning rows --------------------------------------------------------------------- */

int bench_tune_row_from(const bench_row *row, const bench_report *r, arb_tune_row *out)
{
    static const char *const recordable[] = {"ok", "wrong", "compile_failed", "launch_failed",
                                             "unsupported"};
    int ok = 0;
    for (size_t i = 0; i < sizeof(recordable) / sizeof(recordable[0]); i++)
        if (strcmp(row->status, recordable[i]) == 0)
            ok = 1;
    if (!ok || !row->has_spec || strcmp(row->kind, "kernel") != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    const arb_spec *s = &row->spec;
    out->kernel = s->kernel;
    out->M = s->M;
    out->N = s->N;
    out->K = s->K;
    out->gs = s->gs;
    out->variant = s->variant;
    out->precision = arb_precision_name(s->prec);
    out->arch = r->arch;
    out->device = r->device;
    out->sm_count = r->sm_count;
    out->driver = r->driver;
    out->nvrtc = r->nvrtc;
    out->build = r->build;
    out->bm = s->blocks.bm;
    out->bn = s->blocks.bn;
    out->bk = s->blocks.bk;
    out->tm = s->blocks.tm;
    out->tn = s->blocks.tn;
    out->warps = s->blocks.warps;
    out->stages = s->blocks.stages;
    /* A failed candidate never ran: it records an infinite time (Triton's convention). */
    int timed = strcmp(row->status, "ok") == 0 && isfinite(row->median_us);
    out->median_us = timed ? row->median_us : INFINITY;
    out->p20_us = timed ? row->p20_us : INFINITY;
    out->p80_us = timed ? row->p80_us : INFINITY;
    out->repeats = timed ? row->repeats : 0;
    out->status = row->status;
    out->reason = row->reason;
    out->command = row->command;
    out->created = 0;
    return 0;
}
