/*
 * cache_testing.h - fault injection for the cache's tests (private; no
 * program calls these). Two hooks, in the manner of SQLite's own tests
 * (sqlite.org/testing.html):
 *
 * Allocation failures. Every allocation of cache/src goes through
 * cache_malloc() and its siblings (alloc.c), which consult one countdown:
 * cache_testing_fail_alloc(n, always) makes the n-th allocation from now
 * fail, and with `always` every one after it too. A test loops n = 1, 2, ...
 * until an operation runs with no failure injected. Tests that also want
 * SQLite's own allocations to fail install SQLITE_CONFIG_MALLOC methods that
 * ask cache_testing_alloc_fault() first, so that one countdown covers both.
 *
 * I/O failures. cache_testing_vfs_install() registers "arb-fault", a shim
 * over SQLite's default (unix) VFS, as the process's default VFS. The cache
 * opens every file with the default VFS, so it needs no switch of its own:
 * no path, URI or option of the cache changes for a test. Once armed, the
 * shim fails the n-th xWrite, xSync or xTruncate (of the kinds selected)
 * on files under a path prefix, once or always, with SQLITE_IOERR_* or
 * SQLITE_FULL, and does not perform a failed operation. Uninstall it (after
 * closing every connection opened through it) to get the unix VFS back.
 *
 * None of this is thread-safe against concurrent arming; the counters
 * themselves are atomic, so a threaded test can still count.
 */
#ifndef ARB_CACHE_TESTING_H
#define ARB_CACHE_TESTING_H

/* ---- Allocation failures ---------------------------------------------------- */

/* The n-th allocation from now fails (n >= 1; 1 = the next one), and with
 * `always` every later one too; the counter below starts again from 0.
 * n = 0 disarms and leaves the counter as it is. */
void cache_testing_fail_alloc(long n, int always);

/* Count one allocation against the countdown: 1 when it must fail. The
 * cache's wrappers call this; a test's SQLite allocator may too. */
int cache_testing_alloc_fault(void);

/* Failures injected since the last arming. */
long cache_testing_alloc_faults(void);

/* ---- I/O failures (the "arb-fault" VFS) --------------------------------------- */

enum {
    CACHE_FAULT_WRITE = 1,    /* xWrite */
    CACHE_FAULT_SYNC = 2,     /* xSync */
    CACHE_FAULT_TRUNCATE = 4, /* xTruncate */
};

/* Register the shim as the default VFS (idempotent). SQLITE_OK or an error. */
int cache_testing_vfs_install(void);

/* Unregister it; the unix VFS is the default again. */
void cache_testing_vfs_uninstall(void);

/* Arm: among the operations of kinds `ops` (CACHE_FAULT_* bits) on files
 * whose full path starts with `prefix` (NULL: every file), the n-th from now
 * fails (n >= 1), and with `always` every later one too. `rc` is
 * SQLITE_IOERR (each operation's own extended code is returned) or
 * SQLITE_FULL; the counter below starts again from 0. n = 0 disarms and
 * leaves the counter as it is. */
void cache_testing_vfs_arm(unsigned ops, long n, int always, int rc, const char *prefix);

/* Failures injected since arming. */
long cache_testing_vfs_faults(void);

#endif /* ARB_CACHE_TESTING_H */
