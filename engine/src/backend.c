/*
 * backend.c - open/close a backend and route its memory calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"

const char *arb_backend_kind_name(arb_backend_kind kind)
{
    switch (kind) {
    case ARB_BACKEND_AUTO: return "auto";
    case ARB_BACKEND_CPU:  return "cpu";
    case ARB_BACKEND_JIT:  return "jit";
    }
    return "unknown";
}

arb_status arb_backend_kind_parse(const char *name, arb_backend_kind *out, arb_err *err)
{
    static const arb_backend_kind kinds[] = {ARB_BACKEND_AUTO, ARB_BACKEND_CPU, ARB_BACKEND_JIT};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (name && strcmp(name, arb_backend_kind_name(kinds[i])) == 0) {
            *out = kinds[i];
            return ARB_OK;
        }
    }
    return ARB_FAIL(err, ARB_ERR_PARSE, "unknown backend '%s': expected auto, jit or cpu",
                    name ? name : "(null)");
}

void arb_backend_options_init(arb_backend_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->kind = ARB_BACKEND_AUTO;
    opt->precision = ARB_PREC_FP32;
}

static void say_why(char *why, size_t why_len, const char *fmt, const char *detail)
{
    if (why && why_len > 0)
        snprintf(why, why_len, fmt, detail);
}

arb_status arb_backend_open(arb_backend **out, const arb_backend_options *opt, char *why,
                            size_t why_len, arb_err *err)
{
    *out = NULL;
    arb_backend_options defaults;
    if (!opt) {
        arb_backend_options_init(&defaults);
        opt = &defaults;
    }
    if ((int)opt->precision < 0 || opt->precision >= ARB_PREC_COUNT)
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "unknown precision mode %d", (int)opt->precision);
    arb_backend *be = calloc(1, sizeof(*be));
    if (!be)
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory allocating a backend");
    be->precision = opt->precision;

    arb_status st = ARB_OK;
    if (opt->kind == ARB_BACKEND_JIT || opt->kind == ARB_BACKEND_AUTO) {
        be->kind = ARB_BACKEND_JIT;
        st = arb_jit_open(be, opt);
        if (st == ARB_OK) {
            say_why(why, why_len, "%s", opt->kind == ARB_BACKEND_AUTO
                                            ? "auto: a CUDA driver and device are present, using jit"
                                            : "jit");
            *out = be;
            return ARB_OK;
        }
        int no_gpu = st == ARB_ERR_NO_DRIVER || st == ARB_ERR_NO_DEVICE;
        if (opt->kind == ARB_BACKEND_JIT || !no_gpu) {
            arb_err_copy(err, &be->err);
            free(be);
            return ARB_FAIL(err, st, "could not open the jit backend");
        }
        say_why(why, why_len, "auto: no GPU (%s), using cpu", be->err.msg);
        arb_err_clear(&be->err);
        be->jit = NULL;
    }
    be->kind = ARB_BACKEND_CPU;
    st = arb_cpu_open(be, opt->threads);
    if (st != ARB_OK) {
        arb_err_copy(err, &be->err);
        free(be);
        return st;
    }
    if (opt->kind == ARB_BACKEND_CPU)
        say_why(why, why_len, "%s", "cpu");
    *out = be;
    return ARB_OK;
}

void arb_backend_close(arb_backend *be)
{
    if (!be)
        return;
    if (be->kind == ARB_BACKEND_CPU)
        arb_cpu_close(be);
    else
        arb_jit_close(be);
    free(be);
}

arb_backend_kind arb_backend_kind_of(const arb_backend *be) { return be->kind; }
arb_precision arb_backend_precision(const arb_backend *be) { return be->precision; }
const char *arb_backend_errmsg(const arb_backend *be) { return be->err.msg; }
arb_status arb_backend_status(const arb_backend *be) { return be->err.status; }
void arb_backend_clear_error(arb_backend *be) { arb_err_clear(&be->err); }

arb_status arb_backend_alloc(arb_backend *be, size_t bytes, void **ptr)
{
    *ptr = NULL;
    if (bytes == 0)
        bytes = 1; /* a distinct, freeable pointer even for empty tensors */
    if (be->kind == ARB_BACKEND_JIT)
        return arb_jit_alloc(be, bytes, ptr);
    *ptr = malloc(bytes);
    if (!*ptr)
        return ARB_BE_FAIL(be, ARB_ERR_NOMEM, "out of host memory allocating %zu bytes", bytes);
    return ARB_OK;
}

void arb_backend_free(arb_backend *be, void *ptr)
{
    if (!ptr)
        return;
    if (be->kind == ARB_BACKEND_JIT)
        arb_jit_free(be, ptr);
    else
        free(ptr);
}

arb_status arb_backend_upload(arb_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0)
        return ARB_OK;
    if (be->kind == ARB_BACKEND_JIT)
        return arb_jit_upload(be, dst, src, bytes);
    memcpy(dst, src, bytes);
    return ARB_OK;
}

arb_status arb_backend_download(arb_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0)
        return ARB_OK;
    if (be->kind == ARB_BACKEND_JIT)
        return arb_jit_download(be, dst, src, bytes);
    memcpy(dst, src, bytes);
    return ARB_OK;
}

arb_status arb_backend_copy(arb_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0)
        return ARB_OK;
    if (be->kind == ARB_BACKEND_JIT)
        return arb_jit_copy(be, dst, src, bytes);
    memmove(dst, src, bytes);
    return ARB_OK;
}

arb_status arb_backend_memset(arb_backend *be, void *ptr, int byte, size_t bytes)
{
    if (bytes == 0)
        return ARB_OK;
    if (be->kind == ARB_BACKEND_JIT)
        return arb_jit_memset(be, ptr, byte, bytes);
    memset(ptr, byte, bytes);
    return ARB_OK;
}

arb_status arb_backend_sync(arb_backend *be)
{
    return be->kind == ARB_BACKEND_JIT ? arb_jit_sync(be) : ARB_OK;
}

static arb_status cpu_has_no_graphs(arb_backend *be)
{
    return ARB_BE_FAIL(be, ARB_ERR_UNSUPPORTED, "CUDA graphs need the jit backend");
}

arb_status arb_backend_graph_begin(arb_backend *be)
{
    return be->kind == ARB_BACKEND_JIT ? arb_jit_graph_begin(be) : cpu_has_no_graphs(be);
}

arb_status arb_backend_graph_end(arb_backend *be)
{
    return be->kind == ARB_BACKEND_JIT ? arb_jit_graph_end(be) : cpu_has_no_graphs(be);
}

arb_status arb_backend_graph_launch(arb_backend *be)
{
    return be->kind == ARB_BACKEND_JIT ? arb_jit_graph_launch(be) : cpu_has_no_graphs(be);
}

int arb_backend_graph_ready(const arb_backend *be)
{
    return be->kind == ARB_BACKEND_JIT ? arb_jit_graph_ready(be) : 0;
}

arb_status arb_backend_profile_enable(arb_backend *be, int on)
{
    if (be->kind == ARB_BACKEND_JIT)
        return arb_jit_profile_enable(be, on);
    return ARB_BE_FAIL(be, ARB_ERR_UNSUPPORTED, "per-kernel profiling needs the jit backend");
}

int arb_backend_profile_rows(arb_backend *be, arb_profile_row *rows, int max_rows)
{
    return be->kind == ARB_BACKEND_JIT ? arb_jit_profile_rows(be, rows, max_rows) : 0;
}

void arb_backend_profile_reset(arb_backend *be)
{
    if (be->kind == ARB_BACKEND_JIT)
        arb_jit_profile_reset(be);
}

