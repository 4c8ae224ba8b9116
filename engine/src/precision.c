/*
 * precision.c - names of the precision modes (backend.h), on their own so
 * that code which only names modes (the shapes parser, its fuzz target)
 * needs nothing else of the engine.
 */
#include <string.h>

#include "arb/backend.h"

static const char *const precision_names[ARB_PREC_COUNT] = {"fp32", "tf32", "bf16", "bf16x2",
                                                            "bf16x3"};

const char *arb_precision_name(arb_precision prec)
{
    if ((int)prec < 0 || prec >= ARB_PREC_COUNT)
        return "unknown";
    return precision_names[prec];
}

arb_status arb_precision_parse(const char *name, arb_precision *out, arb_err *err)
{
    for (int i = 0; i < ARB_PREC_COUNT; i++) {
        if (name && strcmp(name, precision_names[i]) == 0) {
            *out = (arb_precision)i;
            return ARB_OK;
        }
    }
    return ARB_FAIL(err, ARB_ERR_PARSE,
                    "unknown precision '%s': expected fp32, tf32, bf16, bf16x2 or bf16x3",
                    name ? name : "(null)");
}
