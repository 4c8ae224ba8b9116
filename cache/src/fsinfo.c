/*
 * fsinfo.c - where the cache file lives: network file system detection
 * (statfs) and creating the folder.
 *
 * SQLite's WAL needs shared memory between the processes that use a file,
 * so "WAL does not work over a network filesystem" (sqlite.org/wal.html),
 * and POSIX locks over NFS are often broken (howtocorrupt.html). We warn and
 * recommend a local path; the cache still runs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "cache_internal.h"

/* statfs f_type magic numbers (linux/magic.h and the file systems' own
 * sources) of network, cluster and FUSE file systems. */
static const struct {
    uint64_t magic;
    const char *name;
} network_fs[] = {
    {0x6969, "NFS"},
    {0x517B, "SMB"},
    {0xFF534D42, "CIFS"},
    {0xFE534D42, "SMB2"},
    {0x0BD00BD0, "Lustre"},
    {0x47504653, "GPFS"},
    {0x00C36400, "CephFS"},
    {0x01021997, "9P"},
    {0x65735546, "FUSE"},
    {0x65735543, "FUSE control"},
    {0x5346414F, "AFS"},
    {0x6B414653, "kAFS"},
    {0x73757245, "Coda"},
    {0x564C, "NCP"},
    {0x19830326, "BeeGFS"},
    {0xAAD7AAEA, "PanFS"},
    {0x20030528, "OrangeFS"},
    {0x01161970, "GFS2"},
    {0x7461636F, "OCFS2"},
};

const char *cache_network_fs_name(uint64_t magic)
{
    for (size_t i = 0; i < sizeof(network_fs) / sizeof(network_fs[0]); i++)
        if (network_fs[i].magic == (magic & 0xFFFFFFFFull))
            return network_fs[i].name;
    return NULL;
}

void cache_check_network_fs(arb_cache *c, const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return;
    const char *name = cache_network_fs_name((uint64_t)(unsigned long)sf.f_type);
    if (!name)
        return;
    cache_warn(c,
               "kernel cache folder %s is on a network file system (%s): SQLite's WAL does not "
               "work over a network file system and concurrent writers may corrupt the cache; "
               "set ARB_CACHE to a path on a local disk",
               dir, name);
}

int cache_mkdir_p(const char *dir)
{
    int result = 0;
    char *path = cache_strdup(dir);
    if (!path)
        return ENOMEM;
    size_t n = strlen(path);
    if (n == 0) {
        free(path);
        return 0;
    }
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    /* Create each prefix in turn; existing folders are fine. */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            result = errno;
            break;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    if (result == 0) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            result = errno;
        else if (!S_ISDIR(sb.st_mode))
            result = ENOTDIR;
    }
    free(path);
    return result;
}

char *cache_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return cache_strdup(".");
    if (slash == path)
        return cache_strdup("/");
    return cache_strndup(path, (size_t)(slash - path));
}
