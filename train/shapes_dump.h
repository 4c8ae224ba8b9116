/*
 * shapes_dump.h - `arb-train --dump-shapes`: the shapes.txt lines (SPEC §5,
 * grammar in engine/include/arb/shapes.h) of every kernel a run of a
 * configuration launches, for arb-prewarm.
 */
#ifndef ARB_TRAIN_SHAPES_DUMP_H
#define ARB_TRAIN_SHAPES_DUMP_H

#include <stdio.h>

#include "config.h"

/* Write the lines for the configuration, batch, rule and precision of
 * `opt` to `out`: comments first, then each distinct shape once. */
void train_dump_shapes(FILE *out, const train_options *opt);

#endif /* ARB_TRAIN_SHAPES_DUMP_H */
