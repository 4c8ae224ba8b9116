/*
 * status.c - phrases for arb_status and the first-error-wins buffer.
 */
#include "arb/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Indexed by arb_status; one row per code, in order (append only). */
static const char *const status_phrases[ARB_STATUS_COUNT] = {
    /* ARB_OK              */ "success",
    /* ARB_ERR_INVALID_ARG */ "invalid argument",
    /* ARB_ERR_NOMEM       */ "out of memory",
    /* ARB_ERR_IO          */ "I/O error",
    /* ARB_ERR_PARSE       */ "parse error",
    /* ARB_ERR_FORMAT      */ "malformed data",
    /* ARB_ERR_UNSUPPORTED */ "unsupported shape or configuration",
    /* ARB_ERR_NO_DRIVER   */ "CUDA driver not available",
    /* ARB_ERR_NO_DEVICE   */ "no CUDA device",
    /* ARB_ERR_CUDA        */ "CUDA driver call failed",
    /* ARB_ERR_COMPILE     */ "kernel compile failed",
    /* ARB_ERR_CACHE       */ "kernel cache error",
    /* ARB_ERR_CACHE_MISS  */ "cache miss in strict mode",
    /* ARB_ERR_CORRUPT     */ "checksum mismatch",
    /* ARB_ERR_NONFINITE   */ "non-finite value",
    /* ARB_ERR_BUSY        */ "resource busy",
    /* ARB_ERR_INTERRUPTED */ "interrupted",
    /* ARB_ERR_READONLY    */ "read-only",
    /* ARB_ERR_NOT_FOUND   */ "not found",
};

static const char *const status_names[ARB_STATUS_COUNT] = {
    "ARB_OK",           "ARB_ERR_INVALID_ARG", "ARB_ERR_NOMEM",     "ARB_ERR_IO",
    "ARB_ERR_PARSE",    "ARB_ERR_FORMAT",      "ARB_ERR_UNSUPPORTED", "ARB_ERR_NO_DRIVER",
    "ARB_ERR_NO_DEVICE", "ARB_ERR_CUDA",       "ARB_ERR_COMPILE",   "ARB_ERR_CACHE",
    "ARB_ERR_CACHE_MISS", "ARB_ERR_CORRUPT",   "ARB_ERR_NONFINITE", "ARB_ERR_BUSY",
    "ARB_ERR_INTERRUPTED", "ARB_ERR_READONLY", "ARB_ERR_NOT_FOUND",
};

_Static_assert(sizeof(status_phrases) / sizeof(status_phrases[0]) == ARB_STATUS_COUNT,
               "one phrase per status code");
_Static_assert(sizeof(status_names) / sizeof(status_names[0]) == ARB_STATUS_COUNT,
               "one name per status code");

const char *arb_status_str(arb_status status)
{
    if ((int)status < 0 || status >= ARB_STATUS_COUNT)
        return "unknown status";
    return status_phrases[status];
}

const char *arb_status_name(arb_status status)
{
    if ((int)status < 0 || status >= ARB_STATUS_COUNT)
        return "ARB_ERR_UNKNOWN";
    return status_names[status];
}

arb_status arb_err_set(arb_err *err, arb_status status, const char *file, int line,
                       const char *fmt, ...)
{
    if (!err || err->status != ARB_OK || status == ARB_OK)
        return status;
    err->status = status;
    err->file = file;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return status;
}

void arb_err_clear(arb_err *err)
{
    if (!err)
        return;
    err->status = ARB_OK;
    err->msg[0] = '\0';
    err->file = NULL;
    err->line = 0;
}

void arb_err_copy(arb_err *to, const arb_err *from)
{
    if (!to || !from || from->status == ARB_OK || to->status != ARB_OK)
        return;
    *to = *from;
}
