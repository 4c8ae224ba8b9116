/*
 * files.c - a test's temp folder and whole-file helpers (see files.h).
 */
#include "files.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char th_dir[256];

int th_dir_make_in(const char *parent, const char *stem)
{
    snprintf(th_dir, sizeof(th_dir), "%s/%s-XXXXXX", parent, stem);
    if (mkdtemp(th_dir))
        return 1;
    th_dir[0] = '\0';
    return 0;
}

void th_dir_make(const char *stem)
{
    cr_assert(th_dir_make_in("/tmp", stem), "mkdtemp /tmp/%s-XXXXXX: %s", stem, strerror(errno));
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    chmod(path, 0700); /* a test may have made it read-only */
    return remove(path);
}

void th_dir_remove(void)
{
    if (!th_dir[0])
        return;
    chmod(th_dir, 0700);
    if (nftw(th_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", th_dir);
    th_dir[0] = '\0';
}

const char *th_in_dir(const char *name)
{
    static char paths[64][512];
    static int next;
    char *p = paths[next++ % 64];
    th_path(p, sizeof(paths[0]), name);
    return p;
}

void th_path(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", th_dir, name); }

/* Read an open file to its end into a malloc'd, NUL-terminated buffer. */
static size_t read_all(FILE *f, const char *path, uint8_t **out)
{
    cr_assert_eq(fseek(f, 0, SEEK_END), 0, "seek %s: %s", path, strerror(errno));
    long n = ftell(f);
    cr_assert_geq(n, 0, "size of %s: %s", path, strerror(errno));
    rewind(f);
    *out = malloc((size_t)n + 1);
    cr_assert_not_null(*out);
    cr_assert_eq(fread(*out, 1, (size_t)n, f), (size_t)n, "read %s", path);
    (*out)[n] = '\0';
    return (size_t)n;
}

size_t th_file_read(const char *path, uint8_t **out)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
    size_t n = read_all(f, path, out);
    fclose(f);
    return n;
}

char *th_file_slurp(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        n = read_all(f, path, &buf);
        fclose(f);
    } else {
        buf = calloc(1, 1);
        cr_assert_not_null(buf);
    }
    if (len)
        *len = n;
    return (char *)buf;
}

void th_file_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, n, f), n, "write %s", path);
    cr_assert_eq(fclose(f), 0, "close %s", path);
}

int th_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}
