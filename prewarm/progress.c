/*
 * progress.c - arb-prewarm's progress report (see progress.h).
 */
#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#define REDRAW_MS 100.0 /* at most ten redraws a second */
#define BAR_WIDTH 24

double progress_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void progress_init(progress *p, progress_style style, int total)
{
    pthread_mutex_init(&p->lock, NULL);
    p->style = style;
    p->total = total;
    p->done = 0;
    p->start_ms = progress_now_ms();
    p->last_draw_ms = 0;
    p->bar_shown = 0;
}

static void format_duration(double seconds, char *buf, size_t len)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
}

/* Called with the lock held. */
static void draw(progress *p, double now)
{
    double elapsed = (now - p->start_ms) / 1e3;
    double rate = elapsed > 0 ? p->done / elapsed : 0;
    int filled = p->total > 0 ? (int)((long long)BAR_WIDTH * p->done / p->total) : BAR_WIDTH;
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    char eta[32] = "?", spent[32];
    if (rate > 0)
        format_duration((p->total - p->done) / rate, eta, sizeof(eta));
    format_duration(elapsed, spent, sizeof(spent));
    int percent = p->total > 0 ? (int)(100LL * p->done / p->total) : 100;
    /* \r and erase-to-end-of-line: one line, redrawn in place. */
    fprintf(stderr, "\rprewarm [%s] %d/%d %3d%% %.1f kernels/s %s ETA %s\033[K", bar, p->done,
            p->total, percent, rate, spent, eta);
    fflush(stderr);
    p->bar_shown = 1;
    p->last_draw_ms = now;
}

static void clear_bar(progress *p)
{
    if (p->bar_shown) {
        fputs("\r\033[K", stderr);
        p->bar_shown = 0;
    }
}

void progress_item(progress *p, const char *what, int compiled, double ms)
{
    pthread_mutex_lock(&p->lock);
    p->done++;
    if (p->style == PROGRESS_LINES && compiled)
        fprintf(stderr, "[%d/%d] compiled %s (%.2f s)\n", p->done, p->total, what, ms / 1e3);
    else if (p->style == PROGRESS_BAR) {
        double now = progress_now_ms();
        if (now - p->last_draw_ms >= REDRAW_MS || p->done == p->total)
            draw(p, now);
    }
    pthread_mutex_unlock(&p->lock);
}

void progress_tick(progress *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->style == PROGRESS_BAR) {
        double now = progress_now_ms();
        if (now - p->last_draw_ms >= REDRAW_MS)
            draw(p, now);
    }
    pthread_mutex_unlock(&p->lock);
}

void progress_message(progress *p, const char *fmt, ...)
{
    pthread_mutex_lock(&p->lock);
    int redraw = p->bar_shown;
    clear_bar(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (redraw)
        draw(p, progress_now_ms());
    fflush(stderr);
    pthread_mutex_unlock(&p->lock);
}

void progress_finish(progress *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->style == PROGRESS_BAR && p->bar_shown) {
        draw(p, progress_now_ms()); /* the final count stays on screen */
        fputc('\n', stderr);
        p->bar_shown = 0;
    }
    fflush(stderr);
    pthread_mutex_unlock(&p->lock);
}

void progress_destroy(progress *p) { pthread_mutex_destroy(&p->lock); }
