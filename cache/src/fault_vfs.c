/*
 * fault_vfs.c - "arb-fault", a VFS shim for the tests (cache_testing.h): it
 * passes everything to the unix VFS and, once armed, fails the n-th xWrite,
 * xSync or xTruncate (once, or from then on) without performing it, the way
 * SQLite's own I/O-error tests do (sqlite.org/testing.html, "I/O error
 * testing").
 *
 * No program links this file: it is pulled out of the static library only
 * by the tests that call cache_testing_vfs_install().
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cache_internal.h"
#include "cache_testing.h"

typedef struct fault_file {
    sqlite3_file base;  /* pMethods = &fault_methods */
    sqlite3_file *real; /* the unix VFS's file, stored right after this struct */
    int watched;        /* its path starts with the armed prefix */
} fault_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static sqlite3_io_methods fault_methods;

static atomic_uint armed_ops; /* CACHE_FAULT_* bits; 0: disarmed */
static atomic_long armed_at;  /* the operation number to fail */
static atomic_int armed_always;
static int armed_rc = SQLITE_IOERR;
static char armed_prefix[1024]; /* "" = every file */
static atomic_long op_count;
static atomic_long fault_count;

void cache_testing_vfs_arm(unsigned ops, long n, int always, int rc, const char *prefix)
{
    atomic_store(&armed_ops, 0);
    if (n <= 0 || ops == 0)
        return; /* disarmed; the counters keep what the last arming saw */
    atomic_store(&op_count, 0);
    atomic_store(&fault_count, 0);
    armed_rc = rc;
    snprintf(armed_prefix, sizeof(armed_prefix), "%s", prefix ? prefix : "");
    atomic_store(&armed_always, always ? 1 : 0);
    atomic_store(&armed_at, n);
    atomic_store(&armed_ops, ops);
}

long cache_testing_vfs_faults(void)
{
    return atomic_load(&fault_count);
}

/* Count an operation of kind `op`: the error to return, or SQLITE_OK to
 * perform it. */
static int fault_check(const fault_file *f, unsigned op, int ioerr)
{
    if (!f->watched || !(atomic_load(&armed_ops) & op))
        return SQLITE_OK;
    long n = atomic_fetch_add(&op_count, 1) + 1;
    long at = atomic_load(&armed_at);
    if (n == at || (n > at && atomic_load(&armed_always))) {
        atomic_fetch_add(&fault_count, 1);
        return armed_rc == SQLITE_FULL ? SQLITE_FULL : ioerr;
    }
    return SQLITE_OK;
}

/* ---- Files ------------------------------------------------------------------- */

static int f_close(sqlite3_file *file)
{
    fault_file *f = (fault_file *)file;
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    file->pMethods = NULL;
    return rc;
}

static int f_read(sqlite3_file *file, void *buf, int amount, sqlite3_int64 offset)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xRead(f->real, buf, amount, offset);
}

static int f_write(sqlite3_file *file, const void *buf, int amount, sqlite3_int64 offset)
{
    fault_file *f = (fault_file *)file;
    int rc = fault_check(f, CACHE_FAULT_WRITE, SQLITE_IOERR_WRITE);
    if (rc != SQLITE_OK)
        return rc;
    return f->real->pMethods->xWrite(f->real, buf, amount, offset);
}

static int f_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    fault_file *f = (fault_file *)file;
    int rc = fault_check(f, CACHE_FAULT_TRUNCATE, SQLITE_IOERR_TRUNCATE);
    if (rc != SQLITE_OK)
        return rc;
    return f->real->pMethods->xTruncate(f->real, size);
}

static int f_sync(sqlite3_file *file, int flags)
{
    fault_file *f = (fault_file *)file;
    int rc = fault_check(f, CACHE_FAULT_SYNC, SQLITE_IOERR_FSYNC);
    if (rc != SQLITE_OK)
        return rc;
    return f->real->pMethods->xSync(f->real, flags);
}

static int f_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xFileSize(f->real, size);
}

static int f_lock(sqlite3_file *file, int lock)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xLock(f->real, lock);
}

static int f_unlock(sqlite3_file *file, int lock)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xUnlock(f->real, lock);
}

static int f_check_reserved(sqlite3_file *file, int *out)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int f_file_control(sqlite3_file *file, int op, void *arg)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int f_sector_size(sqlite3_file *file)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int f_device_characteristics(sqlite3_file *file)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int f_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **p)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xShmMap(f->real, page, size, extend, p);
}

static int f_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *file)
{
    fault_file *f = (fault_file *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static int f_shm_unmap(sqlite3_file *file, int delete_flag)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int f_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **p)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xFetch(f->real, offset, amount, p);
}

static int f_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *p)
{
    fault_file *f = (fault_file *)file;
    return f->real->pMethods->xUnfetch(f->real, offset, p);
}

static sqlite3_io_methods fault_methods = {
    .iVersion = 3,
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_file_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_check_reserved,
    .xFileControl = f_file_control,
    .xSectorSize = f_sector_size,
    .xDeviceCharacteristics = f_device_characteristics,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
    .xFetch = f_fetch,
    .xUnfetch = f_unfetch,
};

/* ---- The VFS ----------------------------------------------------------------- */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out)
{
    (void)vfs;
    fault_file *f = (fault_file *)file;
    f->real = (sqlite3_file *)(f + 1);
    memset(f->real, 0, (size_t)real_vfs->szOsFile);
    f->watched = !armed_prefix[0] ||
                 (name && strncmp(name, armed_prefix, strlen(armed_prefix)) == 0);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out);
    /* SQLite calls xClose exactly when pMethods is set. */
    file->pMethods = f->real->pMethods ? &fault_methods : NULL;
    return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    real_vfs->xDlError(real_vfs, n, msg);
}

static void (*v_dlsym(sqlite3_vfs *vfs, void *handle, const char *sym))(void)
{
    (void)vfs;
    return real_vfs->xDlSym(real_vfs, handle, sym);
}

static void v_dlclose(sqlite3_vfs *vfs, void *handle)
{
    (void)vfs;
    real_vfs->xDlClose(real_vfs, handle);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static int v_set_syscall(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr p)
{
    (void)vfs;
    return real_vfs->xSetSystemCall(real_vfs, name, p);
}

static sqlite3_syscall_ptr v_get_syscall(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return real_vfs->xGetSystemCall(real_vfs, name);
}

static const char *v_next_syscall(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return real_vfs->xNextSystemCall(real_vfs, name);
}

int cache_testing_vfs_install(void)
{
    int rc = sqlite3_initialize();
    if (rc != SQLITE_OK)
        return rc;
    if (sqlite3_vfs_find("arb-fault") == &fault_vfs)
        return sqlite3_vfs_register(&fault_vfs, 1); /* make it the default again */
    real_vfs = sqlite3_vfs_find("unix");
    if (!real_vfs)
        return SQLITE_ERROR;
    fault_vfs = (sqlite3_vfs){
        .iVersion = 3,
        .szOsFile = (int)sizeof(fault_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = "arb-fault",
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_pathname,
        .xDlOpen = v_dlopen,
        .xDlError = v_dlerror,
        .xDlSym = v_dlsym,
        .xDlClose = v_dlclose,
        .xRandomness = v_randomness,
        .xSleep = v_sleep,
        .xCurrentTime = v_current_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_current_time64,
        .xSetSystemCall = v_set_syscall,
        .xGetSystemCall = v_get_syscall,
        .xNextSystemCall = v_next_syscall,
    };
    return sqlite3_vfs_register(&fault_vfs, 1);
}

void cache_testing_vfs_uninstall(void)
{
    cache_testing_vfs_arm(0, 0, 0, SQLITE_IOERR, NULL);
    if (sqlite3_vfs_find("arb-fault") == &fault_vfs)
        sqlite3_vfs_unregister(&fault_vfs);
}
