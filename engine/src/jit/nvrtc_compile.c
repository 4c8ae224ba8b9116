/*
 * nvrtc_compile.c - one NVRTC compile: program from an embedded template,
 * every sibling header passed by name (no include path), a name expression
 * for the specialization, a cubin out. NVRTC is thread-safe, so workers of
 * arb-prewarm call this in parallel.
 */
#include "nvrtc_compile.h"

#include <nvrtc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void arb_compiled_free(arb_compiled *c)
{
    if (!c)
        return;
    free(c->cubin);
    free(c->lowered_name);
    free(c->log);
    memset(c, 0, sizeof(*c));
}

static char version_text[32];
static pthread_once_t version_once = PTHREAD_ONCE_INIT;

static void read_version(void)
{
    int major = 0, minor = 0;
    if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS)
        snprintf(version_text, sizeof(version_text), "unknown");
    else
        snprintf(version_text, sizeof(version_text), "%d.%d", major, minor);
}

const char *arb_nvrtc_version(void)
{
    pthread_once(&version_once, read_version);
    return version_text;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* "ptxas info    : Used 40 registers" and "N bytes spill stores, M bytes
 * spill loads" from the -v report; the last kernel reported wins (one
 * kernel per program here). */
static void parse_ptxas(const char *log, int *registers, int *spill_bytes)
{
    *registers = -1;
    *spill_bytes = -1;
    for (const char *p = log; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        const char *used = strstr(p, "Used ");
        const char *eol = strchr(p, '\n');
        int value = 0;
        if (used && (!eol || used < eol) && sscanf(used, "Used %d registers", &value) == 1)
            *registers = value;
        const char *spill = strstr(p, "bytes spill stores");
        if (spill && (!eol || spill < eol)) {
            int stores = 0, loads = 0;
            const char *start = spill;
            while (start > p && start[-1] != ',' && start[-1] != ':')
                start--;
            if (sscanf(start, " %d bytes spill stores, %d bytes spill loads", &stores, &loads) == 2)
                *spill_bytes = stores + loads;
        }
    }
}

arb_status arb_nvrtc_compile(const arb_template_file *templates, int n_templates, int index,
                             const char *name_expr, const char *const *options, int n_options,
                             arb_compiled *out, arb_err *err)
{
    memset(out, 0, sizeof(*out));
    arb_status st = ARB_OK;
    nvrtcProgram prog = NULL;
    const char **header_texts = calloc((size_t)n_templates, sizeof(char *));
    const char **header_names = calloc((size_t)n_templates, sizeof(char *));
    if (!header_texts || !header_names) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory compiling %s", templates[index].name);
        goto out;
    }
    int n_headers = 0;
    for (int i = 0; i < n_templates; i++) {
        if (i == index)
            continue;
        header_texts[n_headers] = templates[i].text;
        header_names[n_headers] = templates[i].name;
        n_headers++;
    }
    double start = now_ms();
    nvrtcResult rc = nvrtcCreateProgram(&prog, templates[index].text, templates[index].name,
                                        n_headers, header_texts, header_names);
    if (rc != NVRTC_SUCCESS) {
        st = ARB_FAIL(err, ARB_ERR_COMPILE, "nvrtcCreateProgram(%s): %s", templates[index].name,
                      nvrtcGetErrorString(rc));
        goto out;
    }
    rc = nvrtcAddNameExpression(prog, name_expr);
    if (rc != NVRTC_SUCCESS) {
        st = ARB_FAIL(err, ARB_ERR_COMPILE, "nvrtcAddNameExpression(%s): %s", name_expr,
                      nvrtcGetErrorString(rc));
        goto out;
    }
    nvrtcResult compile_rc = nvrtcCompileProgram(prog, n_options, options);
    out->compile_ms = now_ms() - start;

    size_t log_len = 0;
    nvrtcGetProgramLogSize(prog, &log_len);
    out->log = malloc(log_len + 1);
    if (!out->log) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory reading the NVRTC log");
        goto out;
    }
    out->log[0] = '\0';
    if (log_len > 0)
        nvrtcGetProgramLog(prog, out->log);
    if (compile_rc != NVRTC_SUCCESS) {
        st = ARB_FAIL(err, ARB_ERR_COMPILE, "NVRTC could not compile %s for %s (%s):\n%s",
                      templates[index].name, name_expr, nvrtcGetErrorString(compile_rc), out->log);
        goto out;
    }
    parse_ptxas(out->log, &out->registers, &out->spill_bytes);

    const char *lowered = NULL;
    rc = nvrtcGetLoweredName(prog, name_expr, &lowered);
    if (rc != NVRTC_SUCCESS || !lowered) {
        st = ARB_FAIL(err, ARB_ERR_COMPILE, "nvrtcGetLoweredName(%s): %s", name_expr,
                      nvrtcGetErrorString(rc));
        goto out;
    }
    out->lowered_name = strdup(lowered);
    rc = nvrtcGetCUBINSize(prog, &out->cubin_len);
    if (rc != NVRTC_SUCCESS || out->cubin_len == 0) {
        st = ARB_FAIL(err, ARB_ERR_COMPILE,
                      "NVRTC produced no cubin for %s (%s): the target must be a real "
                      "architecture such as sm_90, not compute_90",
                      name_expr, nvrtcGetErrorString(rc));
        goto out;
    }
    out->cubin = malloc(out->cubin_len);
    if (!out->cubin || !out->lowered_name) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory copying a %zu-byte cubin",
                      out->cubin_len);
        goto out;
    }
    rc = nvrtcGetCUBIN(prog, (char *)out->cubin);
    if (rc != NVRTC_SUCCESS)
        st = ARB_FAIL(err, ARB_ERR_COMPILE, "nvrtcGetCUBIN(%s): %s", name_expr,
                      nvrtcGetErrorString(rc));
out:
    if (prog)
        nvrtcDestroyProgram(&prog);
    free(header_texts);
    free(header_names);
    if (st != ARB_OK)
        arb_compiled_free(out);
    return st;
}
