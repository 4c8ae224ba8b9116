/*
 * template_set.h - the kernel templates as a set of named texts, and the
 * hash that goes into every kernel key.
 *
 * Templates include only the project's own headers (`#include "x.cuh"`), all
 * embedded beside them: NVRTC then needs no include path, and no file outside
 * the key can change generated code. The template hash of a kernel covers
 * its template and every header it includes, transitively.
 *
 * This file is compiled twice: into the build-time embedder
 * (tools/embed_templates.c) and into libarb (for ARB_KERNEL_DIR), so both
 * compute the same hash for the same bytes.
 */
#ifndef ARB_TEMPLATE_SET_H
#define ARB_TEMPLATE_SET_H

#include <stddef.h>

#include "arb/status.h"

typedef struct arb_template_file {
    const char *name; /* file name within kernel_templates/, e.g. "ternary_fwd.cu" */
    const char *text; /* contents, NUL-terminated */
    size_t len;       /* strlen(text) */
    const char *sha;  /* closure hash (64 hex), or NULL until computed */
} arb_template_file;

/* Index of `name` in files, or -1. */
int arb_template_find(const arb_template_file *files, int n, const char *name);

/* SHA-256 hex over the file and every project header it includes,
 * transitively: for each file of the closure in name order, its name, a NUL,
 * its length in decimal, a NUL and its bytes. Fails (ARB_ERR_COMPILE) on an
 * include of a file outside the set or of a system header. */
arb_status arb_template_closure_hash(const arb_template_file *files, int n, const char *name,
                                     char hex[65], arb_err *err);

/* The engine build id: SHA-256 over every file of the set, in name order,
 * and the engine version. Tuning rows from another build are stale. */
void arb_template_build_id(const arb_template_file *files, int n, const char *version,
                           char hex[65]);

#endif /* ARB_TEMPLATE_SET_H */
