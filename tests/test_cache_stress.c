/*
 * test_cache_stress.c - the short stress run: tools/stress-cache.sh with 4
 * writer processes hammering one cache for 6 s while they are killed with
 * kill -9 at random moments and restarted. Afterwards the cache must pass
 * arb_cache_verify and arb-cache verify and hold every entry any writer was
 * told was stored, with its bytes (entries lost: 0).
 *
 * The long run is the same script with more processes and time:
 *   bash tools/stress-cache.sh --procs 8 --keys 20000 --seconds 120
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static long figure(const char *out, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), " %s=", name);
    const char *p = strstr(out, key);
    cr_assert_not_null(p, "no %s in: %s", name, out);
    return strtol(p + strlen(key), NULL, 10);
}

Test(cache_stress, four_killed_writers_lose_nothing, .timeout = 120)
{
    static char out[1 << 16];
    const char *cmd = "bash " ARB_SOURCE_DIR "/tools/stress-cache.sh --procs 4 --keys 3000 "
                      "--seconds 6 --kill-ms 150:500 --bin " ARB_BINARY_DIR
                      "/tools/arb-cache-stress --tool " ARB_BINARY_DIR "/tools/arb-cache 2>&1";
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "stress run failed:\n%s", out);
    fprintf(stderr, "%s", out);
    cr_assert_eq(figure(out, "entries_lost"), 0, "%s", out);
    cr_assert_eq(figure(out, "errors"), 0, "%s", out);
    cr_assert_eq(figure(out, "wrong_bytes"), 0, "%s", out);
    cr_assert(figure(out, "kills") >= 6, "too few kills to mean anything: %s", out);
    cr_assert(figure(out, "entries_reported_stored") >= 50, "the writers stored too little: %s",
              out);
    cr_assert_eq(figure(out, "entries_verified"), figure(out, "entries_reported_stored"), "%s",
                 out);
    cr_assert_not_null(strstr(out, "verify=ok"), "%s", out);
    cr_assert_not_null(strstr(out, "arb_cache_verify_tool=ok"), "%s", out);
}
