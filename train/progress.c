/*
 * progress.c - a one-line progress bar with rate and ETA on a terminal.
 */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double train_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void train_progress_init(train_progress *p, int64_t first, int64_t total, int quiet)
{
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->drawn = 0;
    p->first = first;
    p->total = total;
    p->t0 = train_now();
    p->last_draw = 0.0;
}

static void format_duration(double s, char *buf, size_t len)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, len, "%lds", t);
}

void train_progress_update(train_progress *p, int64_t step)
{
    if (!p->enabled)
        return;
    double now = train_now();
    if (p->drawn && now - p->last_draw < 0.1 && step < p->total)
        return;
    p->last_draw = now;
    enum { WIDTH = 30 };
    int64_t span = p->total - p->first, done = step - p->first;
    double frac = span > 0 ? (double)done / (double)span : 1.0;
    int fill = (int)(frac * WIDTH);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    double elapsed = now - p->t0;
    double rate = elapsed > 0 && done > 0 ? (double)done / elapsed : 0.0;
    char eta[32] = "?";
    if (rate > 0)
        format_duration((double)(p->total - step) / rate, eta, sizeof(eta));
    /* \r and erase-to-end-of-line: the bar overwrites itself. */
    fprintf(stderr, "\r[%s] %3d%% %lld/%lld  %.1f steps/s  ETA %s\033[K", bar,
            (int)(frac * 100.0), (long long)step, (long long)p->total, rate, eta);
    fflush(stderr);
    p->drawn = 1;
}

void train_progress_clear(train_progress *p)
{
    if (!p->enabled || !p->drawn)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->drawn = 0;
}
