/*
 * template_set.c - include closure and hashes of the kernel templates.
 */
#include "template_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/sha256.h"

int arb_template_find(const arb_template_file *files, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(files[i].name, name) == 0)
            return i;
    return -1;
}

/* Scan `text` for #include directives; for each quoted one call visit().
 * Returns nonzero (with err set) on an angle-bracket include or a missing
 * file. */
static arb_status scan_includes(const arb_template_file *files, int n, int self, char *in_closure,
                                arb_err *err)
{
    const char *p = files[self].text;
    int line = 1;
    while (*p) {
        const char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '#') {
            q++;
            while (*q == ' ' || *q == '\t')
                q++;
            if (strncmp(q, "include", 7) == 0) {
                q += 7;
                while (*q == ' ' || *q == '\t')
                    q++;
                if (*q == '<')
                    return ARB_FAIL(err, ARB_ERR_COMPILE,
                                    "%s:%d: templates may include only the project's own headers "
                                    "(\"x.cuh\"), not system headers",
                                    files[self].name, line);
                if (*q == '"') {
                    const char *start = q + 1;
                    const char *end = strchr(start, '"');
                    const char *eol = strchr(start, '\n');
                    if (!end || (eol && end > eol))
                        return ARB_FAIL(err, ARB_ERR_COMPILE, "%s:%d: unterminated #include",
                                        files[self].name, line);
                    char name[256];
                    size_t len = (size_t)(end - start);
                    if (len >= sizeof(name))
                        len = sizeof(name) - 1;
                    memcpy(name, start, len);
                    name[len] = '\0';
                    int idx = arb_template_find(files, n, name);
                    if (idx < 0)
                        return ARB_FAIL(err, ARB_ERR_COMPILE,
                                        "%s:%d: includes \"%s\", which is not in kernel_templates/",
                                        files[self].name, line, name);
                    if (!in_closure[idx]) {
                        in_closure[idx] = 1;
                        arb_status st = scan_includes(files, n, idx, in_closure, err);
                        if (st)
                            return st;
                    }
                }
            }
        }
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
        line++;
    }
    return ARB_OK;
}

static int compare_names(const void *a, const void *b)
{
    const arb_template_file *const *fa = a;
    const arb_template_file *const *fb = b;
    return strcmp((*fa)->name, (*fb)->name);
}

static void hash_files(arb_sha256_ctx *ctx, const arb_template_file **sorted, int count)
{
    for (int i = 0; i < count; i++) {
        char len[32];
        int len_chars = snprintf(len, sizeof(len), "%zu", sorted[i]->len);
        arb_sha256_update(ctx, sorted[i]->name, strlen(sorted[i]->name) + 1);
        arb_sha256_update(ctx, len, (size_t)len_chars + 1);
        arb_sha256_update(ctx, sorted[i]->text, sorted[i]->len);
    }
}

arb_status arb_template_closure_hash(const arb_template_file *files, int n, const char *name,
                                     char hex[65], arb_err *err)
{
    int self = arb_template_find(files, n, name);
    if (self < 0)
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND, "no kernel template named %s", name);
    char *in_closure = calloc((size_t)n, 1);
    const arb_template_file **sorted = calloc((size_t)n, sizeof(*sorted));
    arb_status st = ARB_OK;
    if (!in_closure || !sorted) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory hashing %s", name);
        goto out;
    }
    in_closure[self] = 1;
    st = scan_includes(files, n, self, in_closure, err);
    if (st)
        goto out;
    int count = 0;
    for (int i = 0; i < n; i++)
        if (in_closure[i])
            sorted[count++] = &files[i];
    qsort(sorted, (size_t)count, sizeof(*sorted), compare_names);
    arb_sha256_ctx ctx;
    arb_sha256_init(&ctx);
    hash_files(&ctx, sorted, count);
    uint8_t digest[32];
    arb_sha256_final(&ctx, digest);
    arb_sha256_hex(digest, hex);
out:
    free(in_closure);
    free(sorted);
    return st;
}

void arb_template_build_id(const arb_template_file *files, int n, const char *version,
                           char hex[65])
{
    const arb_template_file **sorted = calloc((size_t)(n > 0 ? n : 1), sizeof(*sorted));
    arb_sha256_ctx ctx;
    arb_sha256_init(&ctx);
    arb_sha256_update(&ctx, version, strlen(version) + 1);
    if (sorted) {
        for (int i = 0; i < n; i++)
            sorted[i] = &files[i];
        qsort(sorted, (size_t)n, sizeof(*sorted), compare_names);
        hash_files(&ctx, sorted, n);
        free(sorted);
    }
    uint8_t digest[32];
    arb_sha256_final(&ctx, digest);
    arb_sha256_hex(digest, hex);
}
