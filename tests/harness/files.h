/*
 * files.h - the temp folder of a test and whole-file reads and writes, for
 * the suites that work on files (the cache, the programs run end to end).
 *
 * One folder per test: a suite's .init makes it (th_dir_make), its .fini
 * removes it with everything below (th_dir_remove). Paths in it come from
 * th_in_dir (a short-lived pointer) or th_path (a copy the caller keeps).
 *
 * Helpers that can fail abort the test through Criterion, except
 * th_dir_make_in and th_file_slurp, which say so instead.
 */
#ifndef ARB_TEST_FILES_H
#define ARB_TEST_FILES_H

#include <stddef.h>
#include <stdint.h>

/* The current test's folder ("" before th_dir_make). */
extern char th_dir[256];

/* Make the folder <parent>/<stem>-XXXXXX (mkdtemp); returns 0 when it
 * cannot (errno set), leaving th_dir empty. */
int th_dir_make_in(const char *parent, const char *stem);
/* The same in /tmp; aborts the test when it cannot. */
void th_dir_make(const char *stem);
/* Remove th_dir and everything below it, read-only files and folders too
 * (each is made writable first). Nothing happens when there is none. */
void th_dir_remove(void);

/* "<th_dir>/<name>", from a ring of 64 buffers: use it at once or copy it
 * (a caller may hold at most 64 at a time). */
const char *th_in_dir(const char *name);
/* "<th_dir>/<name>" into buf (len bytes), for paths kept a long time. */
void th_path(char *buf, size_t len, const char *name);

/* The whole file: *out gets a malloc'd copy with a NUL after the last
 * byte (free it); returns its length. Aborts when it cannot be read. */
size_t th_file_read(const char *path, uint8_t **out);
/* The whole file as text (malloc'd, NUL-terminated): "" when it does not
 * exist. *len (may be NULL) gets its length. */
char *th_file_slurp(const char *path, size_t *len);
/* Create or overwrite `path` with n bytes. Aborts when it cannot. */
void th_file_write(const char *path, const void *data, size_t n);
/* Whether `path` exists. */
int th_exists(const char *path);

#endif /* ARB_TEST_FILES_H */
