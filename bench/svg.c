/*
 * svg.c - the sweep as a picture: one panel per kernel and shape, one bar
 * per candidate configuration (height = median time per launch, a whisker
 * from p20 to p80), so a person sees at a glance how much the block
 * configuration matters and which one won.
 *
 * Plain SVG 1.1 written with fprintf: no plotting dependency. The default
 * configuration has a black outline, the winner is green, a candidate that
 * failed (wrong result, compile or launch failure, unsupported) is a grey
 * cross on the axis with its status in the tooltip. Each candidate is one
 * <g class="cand"> element (the tests count them).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define PANEL_W 600
#define PANEL_H 400
#define PLOT_X 110  /* left margin inside a panel: y axis labels, and room for the first
                       slanted configuration label */
#define PLOT_Y 40   /* top margin (title) */
#define PLOT_W 470
#define PLOT_H 200  /* the slanted labels below take up to ~130 px */
#define COLUMNS 2

static void xml_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, out);
        }
    }
}

static int is_kernel(const bench_row *r) { return strcmp(r->kind, "kernel") == 0; }

static int timed(const bench_row *r)
{
    return strcmp(r->status, "ok") == 0 && isfinite(r->median_us);
}

/* A round step for about five ticks up to `max`. */
static double tick_step(double max)
{
    double raw = max / 5.0;
    double p = pow(10.0, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void panel(FILE *out, const bench_report *r, const char *group, double px, double py)
{
    int n = 0;
    double max = 0.0;
    for (int i = 0; i < r->count; i++) {
        const bench_row *row = &r->rows[i];
        if (!is_kernel(row) || strcmp(row->group, group) != 0)
            continue;
        n++;
        if (timed(row)) {
            double top = isfinite(row->p80_us) && row->p80_us > row->median_us ? row->p80_us
                                                                               : row->median_us;
            if (top > max)
                max = top;
        }
    }
    if (!(max > 0))
        max = 1.0;
    double step = tick_step(max * 1.05);
    double ymax = ceil(max * 1.05 / step) * step;
    double x0 = px + PLOT_X, y0 = py + PLOT_Y, base = y0 + PLOT_H;

    fprintf(out, "<g class=\"panel\">\n");
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\">", px + 10,
            py + 20);
    xml_text(out, group);
    fprintf(out, "</text>\n");
    /* Axes, ticks and grid. */
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
            x0, y0, x0, base, x0, base, x0 + PLOT_W, base);
    for (double t = 0; t <= ymax + step * 0.01; t += step) {
        double y = base - t / ymax * PLOT_H;
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                x0, y, x0 + PLOT_W, y, x0 - 4, y + 3, t);
    }
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.1f %.1f)\">us per launch (median, p20-p80)</text>\n",
            px + 40, y0 + PLOT_H / 2, px + 40, y0 + PLOT_H / 2);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">block configuration</text>\n",
            x0 + PLOT_W / 2, py + PANEL_H - 12);

    double slot = n ? (double)PLOT_W / n : PLOT_W;
    double bar = slot * 0.7;
    int k = 0;
    for (int i = 0; i < r->count; i++) {
        const bench_row *row = &r->rows[i];
        if (!is_kernel(row) || strcmp(row->group, group) != 0)
            continue;
        double cx = x0 + slot * (k + 0.5);
        char label[64];
        bench_format_blocks_short(&row->spec.blocks, label, sizeof(label));
        fprintf(out, "<g class=\"cand\"><title>");
        xml_text(out, label);
        if (timed(row))
            fprintf(out, ": %.3f us (p20 %.3f, p80 %.3f)", row->median_us, row->p20_us,
                    row->p80_us);
        fprintf(out, " %s", row->status);
        if (row->reason[0]) {
            fputs(": ", out);
            xml_text(out, row->reason);
        }
        fprintf(out, "</title>");
        if (timed(row)) {
            double h = row->median_us / ymax * PLOT_H;
            const char *fill = row->is_winner ? "#2e8b57" : "#4682b4";
            fprintf(out,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"%s/>",
                    cx - bar / 2, base - h, bar, h, fill,
                    row->is_default ? " stroke=\"black\" stroke-width=\"2\"" : "");
            if (isfinite(row->p20_us) && isfinite(row->p80_us))
                fprintf(out,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                        "stroke=\"black\"/>",
                        cx, base - row->p20_us / ymax * PLOT_H, cx,
                        base - row->p80_us / ymax * PLOT_H);
        } else {
            fprintf(out,
                    "<path d=\"M%.1f %.1f l8 -8 M%.1f %.1f l8 8\" stroke=\"#888\" "
                    "stroke-width=\"2\"/>",
                    cx - 4, base - 2, cx - 4, base - 10);
        }
        fprintf(out,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                "transform=\"rotate(-45 %.1f %.1f)\">",
                cx + 3, base + 12, cx + 3, base + 12);
        xml_text(out, label);
        fprintf(out, "%s</text></g>\n", row->is_default ? " *" : "");
        k++;
    }
    fprintf(out, "</g>\n");
}

arb_status bench_write_svg(const bench_report *r, FILE *out)
{
    /* Groups in order of first appearance. */
    const char **groups = calloc((size_t)(r->count > 0 ? r->count : 1), sizeof(*groups));
    if (!groups)
        return ARB_ERR_NOMEM;
    int n = 0;
    for (int i = 0; i < r->count; i++) {
        if (!is_kernel(&r->rows[i]))
            continue;
        int seen = 0;
        for (int g = 0; g < n && !seen; g++)
            seen = strcmp(groups[g], r->rows[i].group) == 0;
        if (!seen)
            groups[n++] = r->rows[i].group;
    }
    int rows = (n + COLUMNS - 1) / COLUMNS;
    int width = COLUMNS * PANEL_W + 20, height = rows * PANEL_H + 60;
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"10\">\n",
            width, height, width, height);
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width,
            height);
    fprintf(out, "<text x=\"10\" y=\"22\" font-size=\"14\" font-weight=\"bold\">arb-bench: ");
    xml_text(out, r->has_device ? r->device : "no device");
    fprintf(out, " (build %.12s); black outline = default, green = fastest, cross = failed"
                 "</text>\n",
            r->build);
    for (int g = 0; g < n; g++)
        panel(out, r, groups[g], 10.0 + (g % COLUMNS) * PANEL_W, 40.0 + (g / COLUMNS) * PANEL_H);
    if (n == 0)
        fprintf(out, "<text x=\"10\" y=\"50\">no kernel rows</text>\n");
    fprintf(out, "</svg>\n");
    free(groups);
    return ferror(out) ? ARB_ERR_IO : ARB_OK;
}
