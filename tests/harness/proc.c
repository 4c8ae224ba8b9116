/*
 * proc.c - running the built programs (see proc.h).
 */
#include "proc.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"

extern char **environ;

/* In the child: remove every ARB_* variable (unsetenv reshapes environ, so
 * the scan starts over after each). */
static void clear_arb_environment(void)
{
    for (size_t i = 0; environ[i];) {
        if (strncmp(environ[i], "ARB_", 4) != 0) {
            i++;
            continue;
        }
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(environ[i], "="), environ[i]);
        unsetenv(name);
        i = 0;
    }
}

/* In the child: point descriptor fd at `path` (NULL: /dev/null). */
static int redirect(int fd, const char *path)
{
    int f = open(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f < 0 || dup2(f, fd) < 0)
        return 0;
    close(f);
    return 1;
}

pid_t th_spawn(const th_cmd *cmd)
{
    cr_assert_eq(access(cmd->prog, X_OK), 0, "%s is missing: build it first", cmd->prog);
    fflush(NULL); /* or the child's exit would write our buffers again */
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork");
    if (pid == 0) {
        clear_arb_environment();
        for (int i = 0; cmd->env && cmd->env[i]; i++)
            putenv((char *)cmd->env[i]);
        if (!redirect(1, cmd->out) || !redirect(2, cmd->err))
            _exit(127);
        if (cmd->address_limit) {
            struct rlimit lim = {(rlim_t)cmd->address_limit, (rlim_t)cmd->address_limit};
            if (setrlimit(RLIMIT_AS, &lim) != 0)
                _exit(127);
        }
        execv(cmd->prog, (char *const *)cmd->argv);
        _exit(127);
    }
    return pid;
}

int th_reap(pid_t pid)
{
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

th_result th_run(const th_cmd *cmd)
{
    static int counter;
    char out[512], err[512];
    th_cmd c = *cmd;
    counter++;
    if (!c.out) {
        snprintf(out, sizeof(out), "%s/stdout.%d", th_dir, counter);
        c.out = out;
    }
    if (!c.err) {
        snprintf(err, sizeof(err), "%s/stderr.%d", th_dir, counter);
        c.err = err;
    }
    th_result r;
    r.status = th_reap(th_spawn(&c));
    r.out = th_file_slurp(c.out, NULL);
    r.err = th_file_slurp(c.err, NULL);
    return r;
}

void th_result_free(th_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}
