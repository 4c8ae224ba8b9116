/*
 * progress.h - arb-prewarm's progress report on stderr: a bar with
 * done/total, rate and ETA on a terminal (redrawn at most ten times a
 * second, like tqdm), plain lines elsewhere (one per compiled kernel, so a
 * CI log shows what took the time). Messages (failures, warnings) print
 * above the bar. All calls are thread-safe.
 */
#ifndef ARB_PREWARM_PROGRESS_H
#define ARB_PREWARM_PROGRESS_H

#include <pthread.h>

typedef enum progress_style {
    PROGRESS_NONE = 0,  /* --quiet: messages only */
    PROGRESS_LINES = 1, /* not a terminal: one line per compiled kernel */
    PROGRESS_BAR = 2,   /* a terminal: one redrawn line */
} progress_style;

typedef struct progress {
    pthread_mutex_t lock;
    progress_style style;
    int total, done;
    double start_ms, last_draw_ms;
    int bar_shown; /* a bar is on the screen (cleared before a message) */
} progress;

void progress_init(progress *p, progress_style style, int total);
/* One kernel finished: `what` describes it; `compiled` says NVRTC ran. */
void progress_item(progress *p, const char *what, int compiled, double ms);
/* Redraw the bar if ~0.1 s passed (the main thread calls it while waiting). */
void progress_tick(progress *p);
/* A line above the bar (always printed, whatever the style). */
void progress_message(progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Clear the bar for good. */
void progress_finish(progress *p);
void progress_destroy(progress *p);

double progress_now_ms(void);

#endif /* ARB_PREWARM_PROGRESS_H */
