/*
 * proc.h - running arb's built programs from a test, as a user runs them:
 * a fork and exec with the output in files, the exit status, the output
 * read back.
 *
 * Every child starts from a clean environment: each ARB_* variable of the
 * test's own environment is removed (a developer's ARB_CACHE or ARB_BACKEND
 * must not leak into a test), then the command's `env` assignments are set.
 */
#ifndef ARB_TEST_PROC_H
#define ARB_TEST_PROC_H

#include <sys/types.h>

/* What to run. Unset fields are zero: th_spawn(&(th_cmd){.prog = P, .argv = A}). */
typedef struct th_cmd {
    const char *prog;        /* the executable, e.g. ARB_BINARY_DIR "/tools/arb-cache" */
    const char *const *argv; /* argv[0] included, NULL-terminated */
    const char *const *env;  /* "NAME=value" to set, NULL-terminated; may be NULL */
    const char *out, *err;   /* files for stdout and stderr; NULL: see th_spawn, th_run */
    long long address_limit; /* the child's address space cap (RLIMIT_AS), bytes; 0: none */
} th_cmd;

/* How a run ended and what it printed. */
typedef struct th_result {
    int status;      /* exit code, or 128 + the signal that ended it */
    char *out, *err; /* stdout and stderr, malloc'd and NUL-terminated */
} th_result;

/* Start the program with stdout and stderr going to cmd->out and cmd->err
 * (/dev/null where NULL). Aborts the test when cmd->prog is not an
 * executable (build it first). A child that cannot be set up exits 127. */
pid_t th_spawn(const th_cmd *cmd);
/* Wait for a child: its exit code, or 128 + the signal that ended it. */
int th_reap(pid_t pid);
/* Spawn, wait, and read back both outputs. Where cmd->out or cmd->err is
 * NULL the output goes to a fresh file in th_dir (stdout.N, stderr.N). */
th_result th_run(const th_cmd *cmd);
void th_result_free(th_result *r);

#endif /* ARB_TEST_PROC_H */
