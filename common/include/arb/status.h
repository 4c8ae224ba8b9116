/*
 * status.h - arb's status codes and the error buffer every fallible call fills.
 *
 * Every fallible function in arb returns an arb_status. ARB_OK is 0; anything
 * else is an error whose phrase comes from arb_status_str(). The detail (what
 * failed, where, what to do) goes into an arb_err buffer owned by the caller or
 * by a handle. The first error recorded wins: later failures while unwinding
 * do not overwrite the message that explains the root cause (curl's
 * Curl_failf, SQLite's error string).
 *
 * Invariants:
 *   - Codes are append-only. Never renumber or remove one: programs map them
 *     to exit codes and users quote them in reports.
 *   - The library never exits or aborts; only a program's main() does.
 */
#ifndef ARB_STATUS_H
#define ARB_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum arb_status {
    ARB_OK               = 0,  /* success */
    ARB_ERR_INVALID_ARG  = 1,  /* a caller broke a documented precondition */
    ARB_ERR_NOMEM        = 2,  /* an allocation failed */
    ARB_ERR_IO           = 3,  /* open/read/write/sync/rename failed */
    ARB_ERR_PARSE        = 4,  /* malformed text input (shapes.txt, flags) */
    ARB_ERR_FORMAT       = 5,  /* malformed binary data (packed trits, checkpoint) */
    ARB_ERR_UNSUPPORTED  = 6,  /* a shape or configuration a kernel cannot run */
    ARB_ERR_NO_DRIVER    = 7,  /* libcuda.so.1 could not be loaded */
    ARB_ERR_NO_DEVICE    = 8,  /* the driver loaded but no usable GPU exists */
    ARB_ERR_CUDA         = 9,  /* a CUDA driver call failed */
    ARB_ERR_COMPILE      = 10, /* NVRTC rejected a kernel template */
    ARB_ERR_CACHE        = 11, /* the SQLite cache failed */
    ARB_ERR_CACHE_MISS   = 12, /* a miss where ARB_CACHE_MODE=strict forbids compiling */
    ARB_ERR_CORRUPT      = 13, /* a checksum did not match the data it guards */
    ARB_ERR_NONFINITE    = 14, /* a loss or activation became NaN or infinite */
    ARB_ERR_BUSY         = 15, /* a lock was held past its timeout */
    ARB_ERR_INTERRUPTED  = 16, /* the user interrupted the operation */
    ARB_ERR_READONLY     = 17, /* a write was asked of something read-only */
    ARB_ERR_NOT_FOUND    = 18, /* a named item (file, entry, kernel) does not exist */
    ARB_STATUS_COUNT           /* keep last; not a status */
} arb_status;

/* A fixed phrase for a status ("I/O error"), never NULL. */
const char *arb_status_str(arb_status status);

/* The code's name as written above ("ARB_ERR_IO"), never NULL. */
const char *arb_status_name(arb_status status);

#define ARB_ERR_MSG_MAX 4096

/* The detail of the first error. `file`/`line` name the place in arb's own
 * source that raised it: the one spot to put a breakpoint. */
typedef struct arb_err {
    arb_status status;          /* ARB_OK while no error is recorded */
    char msg[ARB_ERR_MSG_MAX];  /* what failed, where, what to do */
    const char *file;           /* arb source file that raised it */
    int line;                   /* line in that file */
} arb_err;

/* Record an error unless one is already recorded (first error wins).
 * Returns `status` so callers can write `return ARB_FAIL(err, ...)`.
 * `err` may be NULL: the status is still returned. */
arb_status arb_err_set(arb_err *err, arb_status status, const char *file, int line,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#define ARB_FAIL(err, status, ...) arb_err_set((err), (status), __FILE__, __LINE__, __VA_ARGS__)

/* Forget any recorded error. */
void arb_err_clear(arb_err *err);

/* Copy the first error of `from` into `to` (if `to` has none yet). */
void arb_err_copy(arb_err *to, const arb_err *from);

#ifdef __cplusplus
}
#endif
#endif /* ARB_STATUS_H */
