/*
 * progress.h - the progress bar of arb-train: drawn on stderr only when
 * stderr is a terminal (tqdm's convention), redrawn at most ten times a
 * second, erased before any line is printed so lines and bar never mix.
 */
#ifndef ARB_TRAIN_PROGRESS_H
#define ARB_TRAIN_PROGRESS_H

#include <stdint.h>

typedef struct train_progress {
    int enabled;        /* stderr is a terminal and the run is not --quiet */
    int drawn;          /* a bar is on screen now */
    int64_t first, total; /* steps: the run goes from `first` to `total` */
    double t0;          /* when the first step started */
    double last_draw;
} train_progress;

/* Monotonic seconds. */
double train_now(void);

void train_progress_init(train_progress *p, int64_t first, int64_t total, int quiet);

/* `step` steps are done; redraws when 0.1 s passed since the last draw. */
void train_progress_update(train_progress *p, int64_t step);

/* Erase the bar (before printing a line). */
void train_progress_clear(train_progress *p);

#endif /* ARB_TRAIN_PROGRESS_H */
