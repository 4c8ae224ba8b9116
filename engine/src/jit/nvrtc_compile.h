/*
 * nvrtc_compile.h - compile one kernel template to a cubin with NVRTC.
 */
#ifndef ARB_NVRTC_COMPILE_H
#define ARB_NVRTC_COMPILE_H

#include <stddef.h>
#include <stdint.h>

#include "arb/status.h"
#include "template_set.h"

typedef struct arb_compiled {
    uint8_t *cubin;      /* malloc'ed */
    size_t cubin_len;
    char *lowered_name;  /* malloc'ed mangled name of the name expression */
    char *log;           /* malloc'ed NVRTC log (ptxas -v lines included) */
    double compile_ms;
    int registers;       /* from the ptxas report, -1 if absent */
    int spill_bytes;     /* spill stores + loads, -1 if absent */
} arb_compiled;

void arb_compiled_free(arb_compiled *c);

/* NVRTC's version, "13.0". */
const char *arb_nvrtc_version(void);

/* Compile `templates[index]` (with every other file of the set available as
 * a header) for the name expression, with `options` (argv-style). On a
 * compile error the status is ARB_ERR_COMPILE and the message carries the
 * NVRTC log. */
arb_status arb_nvrtc_compile(const arb_template_file *templates, int n_templates, int index,
                             const char *name_expr, const char *const *options, int n_options,
                             arb_compiled *out, arb_err *err);

#endif /* ARB_NVRTC_COMPILE_H */
