/*
 * schema.c - the tables, the schema version and its migrations, and opening
 * a layer: checking what the file holds, creating, migrating, rebuilding.
 *
 * A file is recognised by PRAGMA application_id (CACHE_APPLICATION_ID) and
 * versioned by PRAGMA user_version (ARB_CACHE_SCHEMA_VERSION). Opening the
 * writable layer sorts the file into one of:
 *   empty (a new file)        -> create the schema (migration from version 0)
 *   ours, older version       -> run the migrations, in one transaction
 *   ours, this version        -> use it
 *   ours, newer version       -> leave it untouched, open it read-only, warn
 *   not a database / corrupt / foreign / ours but a version below 1 or
 *   tables missing
 *                             -> copy its bytes to <path>.corrupt-<unix time>,
 *                                reset it in place through SQLite, create the
 *                                schema, warn
 * The file is never renamed or unlinked: other processes may hold it open,
 * and a renamed SQLite file loses its -wal (sqlite.org/howtocorrupt.html).
 * The reset runs under an flock on <path>.lock and re-checks the file first,
 * so of several processes that find the same damage only one rebuilds it.
 *
 * A full integrity check reads every page, so it runs from arb-cache verify
 * and after an operation met SQLITE_CORRUPT (cache_recover), not at open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_internal.h"

/* The columns of entries; quarantine repeats them without constraints (a
 * damaged row must still fit there). */
#define ENTRY_TABLE_COLS                                                                        \
    "kernel TEXT NOT NULL, name_expr TEXT NOT NULL, "                                           \
    "M INTEGER NOT NULL, N INTEGER NOT NULL, K INTEGER NOT NULL, gs INTEGER NOT NULL, "         \
    "bm INTEGER NOT NULL, bn INTEGER NOT NULL, bk INTEGER NOT NULL, "                           \
    "tm INTEGER NOT NULL, tn INTEGER NOT NULL, warps INTEGER NOT NULL, "                        \
    "stages INTEGER NOT NULL, precision TEXT NOT NULL, arch TEXT NOT NULL, "                    \
    "nvrtc_version TEXT NOT NULL, template_sha TEXT NOT NULL, options TEXT NOT NULL, "          \
    "env TEXT NOT NULL, "                                                                       \
    "cubin BLOB NOT NULL, cubin_len INTEGER NOT NULL, checksum TEXT NOT NULL, "                 \
    "lowered_name TEXT NOT NULL, block_x INTEGER NOT NULL, block_y INTEGER NOT NULL, "          \
    "block_z INTEGER NOT NULL, shared_bytes INTEGER NOT NULL, registers INTEGER NOT NULL, "     \
    "spill_bytes INTEGER NOT NULL, compile_log TEXT NOT NULL, compile_ms REAL NOT NULL, "       \
    "created INTEGER NOT NULL, last_used INTEGER NOT NULL"

#define QUARANTINE_TABLE_COLS                                                                   \
    "kernel TEXT, name_expr TEXT, M INTEGER, N INTEGER, K INTEGER, gs INTEGER, "                \
    "bm INTEGER, bn INTEGER, bk INTEGER, tm INTEGER, tn INTEGER, warps INTEGER, "               \
    "stages INTEGER, precision TEXT, arch TEXT, nvrtc_version TEXT, template_sha TEXT, "        \
    "options TEXT, env TEXT, cubin BLOB, cubin_len INTEGER, checksum TEXT, "                    \
    "lowered_name TEXT, block_x INTEGER, block_y INTEGER, block_z INTEGER, "                    \
    "shared_bytes INTEGER, registers INTEGER, spill_bytes INTEGER, compile_log TEXT, "          \
    "compile_ms REAL, created INTEGER, last_used INTEGER"

/* migrations[v] takes a file from user_version v to v + 1. Append only: a
 * released step is never edited, since files in the field ran it. */
static const char *const migrations[ARB_CACHE_SCHEMA_VERSION] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE entries (hash TEXT PRIMARY KEY NOT NULL, " ENTRY_TABLE_COLS ");"
    "CREATE INDEX entries_lru ON entries (last_used, created);"
    "CREATE INDEX entries_shape ON entries (kernel, M, N, K, gs);"
    "CREATE TABLE quarantine (id INTEGER PRIMARY KEY, hash TEXT, " QUARANTINE_TABLE_COLS ", "
    "reason TEXT NOT NULL, quarantined_at INTEGER NOT NULL);"
    "CREATE TABLE tuning (id INTEGER PRIMARY KEY, kernel TEXT NOT NULL, "
    "M INTEGER NOT NULL, N INTEGER NOT NULL, K INTEGER NOT NULL, gs INTEGER NOT NULL, "
    "precision TEXT NOT NULL, arch TEXT NOT NULL, device TEXT NOT NULL, "
    "sm_count INTEGER NOT NULL, driver TEXT NOT NULL, nvrtc TEXT NOT NULL, "
    "build TEXT NOT NULL, bm INTEGER NOT NULL, bn INTEGER NOT NULL, bk INTEGER NOT NULL, "
    "tm INTEGER NOT NULL, tn INTEGER NOT NULL, warps INTEGER NOT NULL, "
    "stages INTEGER NOT NULL, median_us REAL NOT NULL, p20_us REAL NOT NULL, "
    "p80_us REAL NOT NULL, repeats INTEGER NOT NULL, status TEXT NOT NULL, "
    "reason TEXT NOT NULL, command TEXT NOT NULL, created INTEGER NOT NULL, "
    "UNIQUE (kernel, M, N, K, gs, precision, arch, device, driver, nvrtc, build, "
    "bm, bn, bk, tm, tn, warps, stages));"
    "CREATE TABLE stats (scope TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, "
    "PRIMARY KEY (scope, name)) WITHOUT ROWID;",
    /* 1 -> 2: tuning rows carry the kernel's variant (two variants of one kernel at
     * one shape tune apart). SQLite cannot change a UNIQUE constraint in place, so
     * the table is copied; version-1 rows were measured as variant 0. */
    "CREATE TABLE tuning_v2 (id INTEGER PRIMARY KEY, kernel TEXT NOT NULL, "
    "M INTEGER NOT NULL, N INTEGER NOT NULL, K INTEGER NOT NULL, gs INTEGER NOT NULL, "
    "variant INTEGER NOT NULL DEFAULT 0, "
    "precision TEXT NOT NULL, arch TEXT NOT NULL, device TEXT NOT NULL, "
    "sm_count INTEGER NOT NULL, driver TEXT NOT NULL, nvrtc TEXT NOT NULL, "
    "build TEXT NOT NULL, bm INTEGER NOT NULL, bn INTEGER NOT NULL, bk INTEGER NOT NULL, "
    "tm INTEGER NOT NULL, tn INTEGER NOT NULL, warps INTEGER NOT NULL, "
    "stages INTEGER NOT NULL, median_us REAL NOT NULL, p20_us REAL NOT NULL, "
    "p80_us REAL NOT NULL, repeats INTEGER NOT NULL, status TEXT NOT NULL, "
    "reason TEXT NOT NULL, command TEXT NOT NULL, created INTEGER NOT NULL, "
    "UNIQUE (kernel, M, N, K, gs, variant, precision, arch, device, driver, nvrtc, build, "
    "bm, bn, bk, tm, tn, warps, stages));"
    "INSERT INTO tuning_v2 (kernel, M, N, K, gs, precision, arch, device, sm_count, driver, "
    "nvrtc, build, bm, bn, bk, tm, tn, warps, stages, median_us, p20_us, p80_us, repeats, "
    "status, reason, command, created) SELECT kernel, M, N, K, gs, precision, arch, device, "
    "sm_count, driver, nvrtc, build, bm, bn, bk, tm, tn, warps, stages, median_us, p20_us, "
    "p80_us, repeats, status, reason, command, created FROM tuning;"
    "DROP TABLE tuning;"
    "ALTER TABLE tuning_v2 RENAME TO tuning;",
};

/* The tables a file of any version from 1 up has (version 1 created all of
 * them). A migration that adds a table must make classify()'s check depend
 * on the version, or older files would be rebuilt instead of migrated. */
static const char *const our_tables[] = {"entries", "quarantine", "stats", "tuning"};
#define N_OUR_TABLES ((int)(sizeof(our_tables) / sizeof(our_tables[0])))

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_GET] = "SELECT " CACHE_ENTRY_COLS " FROM entries WHERE hash = ?1",
    [STMT_TOUCH] = "UPDATE entries SET last_used = ?1 WHERE hash = ?2 AND last_used < ?1 - "
                   CACHE_SQL_NUM(CACHE_TOUCH_SECONDS),
    [STMT_INSERT] = "INSERT OR IGNORE INTO entries (hash, " CACHE_KEY_COLS ", " CACHE_ENTRY_COLS
                    ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                    "?,?)",
    [STMT_QUARANTINE_COPY] = "INSERT INTO quarantine (hash, " CACHE_KEY_COLS ", " CACHE_ENTRY_COLS
                             ", reason, quarantined_at) SELECT hash, " CACHE_KEY_COLS
                             ", " CACHE_ENTRY_COLS ", ?1, ?2 FROM entries WHERE hash = ?3",
    [STMT_DELETE] = "DELETE FROM entries WHERE hash = ?1",
    /* length(cubin), not cubin_len: SQLite reads a BLOB's length from the
     * record header, while cubin_len, stored after the BLOB, sits at the end
     * of its overflow chain, so summing it read the whole file on every put. */
    [STMT_BYTES] = "SELECT coalesce(sum(length(cubin)), 0) FROM entries",
    [STMT_STATS_UPSERT] = "INSERT INTO stats (scope, name, value) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT (scope, name) DO UPDATE SET value = value + excluded.value",
    [STMT_TUNE_PUT] = "INSERT OR REPLACE INTO tuning (" CACHE_TUNE_COLS ") VALUES ("
                      CACHE_TUNE_PARAMS ")",
};

_Static_assert(CACHE_KEY_NCOLS + CACHE_ENTRY_NCOLS + 1 == 34, "STMT_INSERT has 34 parameters");
_Static_assert(CACHE_TUNE_NCOLS == 28 && sizeof(CACHE_TUNE_PARAMS) == 2 * 28,
               "STMT_TUNE_PUT has 28 parameters");

const char *cache_stmt_sql(cache_stmt_id id)
{
    return stmt_sql[id];
}

/* ---- What a file holds ---------------------------------------------------- */

typedef enum file_state {
    FILE_EMPTY,   /* no tables and no ids: a new file */
    FILE_OURS,    /* ours, 1 <= user_version <= ARB_CACHE_SCHEMA_VERSION, every table */
    FILE_NEWER,   /* ours, written by a newer arb */
    FILE_NOTADB,  /* not an SQLite database */
    FILE_CORRUPT, /* SQLite reports it malformed */
    FILE_FOREIGN, /* another program's database */
    FILE_DAMAGED, /* ours, but tables missing or a version no arb wrote */
} file_state;

typedef struct file_info {
    file_state state;
    int64_t version;  /* user_version */
    char detail[512]; /* what was seen, for the warning */
} file_info;

/* A phrase for a bad state, completing "kernel cache <path> ...". */
static const char *state_phrase(file_state state)
{
    switch (state) {
    case FILE_NOTADB: return "is not an SQLite database";
    case FILE_CORRUPT: return "is damaged";
    case FILE_FOREIGN: return "belongs to another program";
    case FILE_DAMAGED: return "is damaged (our id, but not our schema)";
    default: return "is unusable";
    }
}

/* Sort a corrupt-class SQLite error into a state. */
static int classify_error(arb_cache *c, sqlite3 *db, int rc, file_info *info)
{
    if (!cache_rc_corrupt(rc))
        return rc;
    cache_note(c, db);
    info->state = (rc & 0xff) == SQLITE_NOTADB ? FILE_NOTADB : FILE_CORRUPT;
    snprintf(info->detail, sizeof(info->detail), "%s", c->sqlmsg);
    return SQLITE_OK;
}

/* Read the ids and the table names. Returns SQLITE_OK with info filled, or
 * an error that says nothing about the content (busy, I/O, no memory). */
static int classify(arb_cache *c, sqlite3 *db, file_info *info)
{
    int64_t app = 0;
    int64_t version = 0;
    int rc;
    int n_tables = 0;
    int ours_found = 0;
    char names[256] = "";
    size_t names_len = 0;
    sqlite3_stmt *st = NULL;

    memset(info, 0, sizeof(*info));
    rc = cache_query_int(c, db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = cache_query_int(c, db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK)
        return classify_error(c, db, rc, info);
    info->version = version;

    rc = sqlite3_prepare_v2(db,
                            "SELECT name FROM sqlite_master WHERE type = 'table' "
                            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        for (rc = cache_step(c, st); rc == SQLITE_ROW; rc = sqlite3_step(st)) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            if (!name)
                continue;
            n_tables++;
            for (int i = 0; i < N_OUR_TABLES; i++)
                if (strcmp(name, our_tables[i]) == 0)
                    ours_found++;
            int w = snprintf(names + names_len, sizeof(names) - names_len, "%s%s",
                             names_len ? ", " : "", name);
            if (w > 0 && names_len + (size_t)w < sizeof(names))
                names_len += (size_t)w;
        }
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        else
            cache_note(c, db);
    } else {
        cache_note(c, db);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return classify_error(c, db, rc, info);

    if (app == CACHE_APPLICATION_ID) {
        if (version > ARB_CACHE_SCHEMA_VERSION) {
            info->state = FILE_NEWER;
        } else if (version < 1) {
            /* Every version from 1 up is written in one transaction with
             * the id, so an id beside a version below 1 was never ours. */
            info->state = FILE_DAMAGED;
            snprintf(info->detail, sizeof(info->detail), "schema version %lld",
                     (long long)version);
        } else if (ours_found < N_OUR_TABLES) {
            info->state = FILE_DAMAGED;
            snprintf(info->detail, sizeof(info->detail), "found only: %s",
                     names_len ? names : "no tables");
        } else {
            info->state = FILE_OURS;
        }
    } else if (app == 0 && version == 0 && n_tables == 0) {
        info->state = FILE_EMPTY;
    } else {
        info->state = FILE_FOREIGN;
        snprintf(info->detail, sizeof(info->detail), "application_id 0x%08llx, tables: %s",
                 (unsigned long long)app, names_len ? names : "none");
    }
    return SQLITE_OK;
}

/* classify(), and with `deep` a quick_check of every page of a file that
 * looks like ours (after an operation met SQLITE_CORRUPT). */
static int inspect(arb_cache *c, sqlite3 *db, file_info *info, int deep)
{
    int rc = classify(c, db, info);
    if (rc != SQLITE_OK || !deep || info->state != FILE_OURS)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = cache_step(c, st);
    if (rc == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        if (!text || strcmp(text, "ok") != 0) {
            info->state = FILE_CORRUPT;
            snprintf(info->detail, sizeof(info->detail), "quick_check: %.400s",
                     text ? text : "no answer");
        }
        rc = SQLITE_OK;
    } else if (cache_rc_corrupt(rc)) {
        cache_note(c, db);
        info->state = FILE_CORRUPT;
        snprintf(info->detail, sizeof(info->detail), "quick_check: %.400s", c->sqlmsg);
        rc = SQLITE_OK;
    } else {
        cache_note(c, db);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- Creating and migrating ------------------------------------------------ */

static int migrate_body(arb_cache *c, cache_layer *l, void *ctx)
{
    (void)ctx;
    int64_t version = 0;
    int rc = cache_query_int(c, l->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK)
        return rc;
    /* Another process may have migrated (or created) the file since we
     * looked; classify() sent no version outside [0, current] here, and the
     * bound is checked again because the file may have changed since. */
    if (version < 0 || version > ARB_CACHE_SCHEMA_VERSION)
        return SQLITE_CORRUPT;
    for (; version < ARB_CACHE_SCHEMA_VERSION; version++) {
        char sql[64];
        rc = sqlite3_exec(l->db, migrations[version], NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return rc;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)version + 1);
        rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", CACHE_APPLICATION_ID);
    return sqlite3_exec(l->db, sql, NULL, NULL, NULL);
}

/* Settings of a writable connection, then the schema when the file is new
 * or older. */
static int prepare_file(arb_cache *c, cache_layer *l, const file_info *info)
{
    int rc;
    if (info->state == FILE_EMPTY)
        cache_exec(c, l->db, CACHE_PAGE_SIZE_PRAGMA); /* a hint: ignored once the file has pages */
    rc = cache_exec(c, l->db, "PRAGMA journal_mode = WAL");
    if (rc == SQLITE_OK)
        rc = cache_exec(c, l->db, "PRAGMA synchronous = NORMAL");
    if (rc == SQLITE_OK && (info->state == FILE_EMPTY || info->version < ARB_CACHE_SCHEMA_VERSION))
        rc = cache_write_txn(c, l, migrate_body, NULL);
    return rc;
}

int cache_create_schema(arb_cache *c, sqlite3 *db)
{
    cache_layer tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.db = db;
    return cache_write_txn(c, &tmp, migrate_body, NULL);
}

/* ---- Rebuilding --------------------------------------------------------- */

/* Take an flock on <path>.lock, so that one process at a time checks and
 * rebuilds. Returns the fd, or -1 to go on unlocked (no folder rights, or a
 * holder that does not let go within the busy budget). */
static int lock_sidecar(arb_cache *c, const char *path)
{
    size_t n = strlen(path);
    char *name = cache_malloc(n + 6);
    if (!name)
        return -1;
    memcpy(name, path, n);
    memcpy(name + n, ".lock", 6);
    int fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(name);
    if (fd < 0)
        return -1;
    int64_t start = cache_now_ms();
    for (int attempt = 0;; attempt++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if ((errno != EWOULDBLOCK && errno != EINTR) || !cache_backoff(c, attempt, start))
            break;
    }
    close(fd);
    return -1;
}

static void unlock_sidecar(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Copy the database file's bytes to <path>.corrupt-<unix time> (a new file).
 * The bytes are read through SQLite's own file handle: opening and closing
 * another descriptor on the file would drop this process's POSIX locks on
 * it. Returns 0 or an errno. */
static int copy_aside(cache_layer *l, char *copy, size_t copy_len)
{
    int result = 0;
    int fd = -1;
    char *buf = NULL;
    sqlite3_file *file = NULL;
    sqlite3_int64 size = 0;

    if (sqlite3_file_control(l->db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
        !file || !file->pMethods || file->pMethods->xFileSize(file, &size) != SQLITE_OK) {
        result = EIO;
        goto out;
    }
    long long now = (long long)time(NULL);
    for (int n = 0; fd < 0 && n < 100; n++) {
        if (n == 0)
            snprintf(copy, copy_len, "%s.corrupt-%lld", l->path, now);
        else
            snprintf(copy, copy_len, "%s.corrupt-%lld-%d", l->path, now, n);
        fd = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) {
            result = errno;
            goto out;
        }
    }
    if (fd < 0) {
        result = EEXIST;
        goto out;
    }
    enum { CHUNK = 1 << 16 };
    buf = cache_malloc(CHUNK);
    if (!buf) {
        result = ENOMEM;
        goto out;
    }
    for (sqlite3_int64 off = 0; off < size && result == 0; off += CHUNK) {
        int amount = size - off < CHUNK ? (int)(size - off) : CHUNK;
        int rc = file->pMethods->xRead(file, buf, amount, off);
        if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
            result = EIO;
            break;
        }
        result = write_all(fd, buf, (size_t)amount);
    }
    if (result == 0 && fsync(fd) != 0)
        result = errno;
out:
    free(buf);
    if (fd >= 0) {
        close(fd);
        if (result != 0)
            unlink(copy); /* our own half-written copy, never the database */
    }
    return result;
}

/* The writable file is damaged or foreign: keep a copy, reset it in place,
 * create the schema. With the copy impossible the file is left untouched
 * and the cache degrades (db closed). */
static int rebuild(arb_cache *c, cache_layer *l, const file_info *seen, int deep)
{
    int rc = SQLITE_OK;
    file_info now;
    char copy[4096];
    int lock_fd = lock_sidecar(c, l->path);

    /* Under the lock, look again: another process may have rebuilt it. */
    rc = inspect(c, l->db, &now, deep);
    if (rc != SQLITE_OK)
        goto out;
    if (now.state == FILE_OURS || now.state == FILE_EMPTY) {
        rc = prepare_file(c, l, &now);
        goto out;
    }
    if (now.state == FILE_NEWER) {
        /* Rebuilt meanwhile by a newer arb: not ours to touch. */
        cache_layer_finalize(l);
        sqlite3_close_v2(l->db);
        l->db = NULL;
        cache_degrade(c, "it was just rebuilt by a newer arb");
        goto out;
    }

    int e = copy_aside(l, copy, sizeof(copy));
    if (e != 0) {
        char reason[1024];
        snprintf(reason, sizeof(reason),
                 "it %s (%s) and could not be copied aside before a rebuild: %s; it was left "
                 "untouched",
                 state_phrase(seen->state), seen->detail, strerror(e));
        cache_layer_finalize(l);
        sqlite3_close_v2(l->db);
        l->db = NULL;
        cache_degrade(c, reason);
        goto out;
    }

    cache_layer_finalize(l);
    sqlite3_db_config(l->db, SQLITE_DBCONFIG_RESET_DATABASE, 1, 0);
    cache_exec(c, l->db, CACHE_PAGE_SIZE_PRAGMA); /* a hint for the VACUUM that follows */
    rc = cache_exec(c, l->db, "VACUUM");
    sqlite3_db_config(l->db, SQLITE_DBCONFIG_RESET_DATABASE, 0, 0);
    if (rc != SQLITE_OK)
        goto out;
    now.state = FILE_EMPTY;
    now.version = 0;
    rc = prepare_file(c, l, &now);
    if (rc != SQLITE_OK)
        goto out;
    cache_warn(c,
               "kernel cache %s %s (%s); kept a copy at %s and rebuilt the cache empty: its "
               "kernels will be compiled again",
               l->path, state_phrase(seen->state), seen->detail, copy);
out:
    unlock_sidecar(lock_fd);
    return rc;
}

void cache_recover(arb_cache *c, cache_layer *l)
{
    file_info info;
    if (!l || l->readonly || !l->db || !c->writable)
        return;
    int rc = inspect(c, l->db, &info, 1);
    if (rc != SQLITE_OK || info.state == FILE_OURS || info.state == FILE_EMPTY ||
        info.state == FILE_NEWER)
        return;
    rc = rebuild(c, l, &info, 1);
    if (rc != SQLITE_OK) {
        char reason[1024];
        if (cache_rc_busy(rc))
            snprintf(reason, sizeof(reason),
                     "it %s (%s) and another process holds it open, so it cannot be rebuilt "
                     "now",
                     state_phrase(info.state), info.detail);
        else
            snprintf(reason, sizeof(reason), "it %s and rebuilding it failed: %s",
                     state_phrase(info.state), cache_rc_detail(c, rc));
        cache_degrade(c, reason);
        /* Damaged, or reset but without its tables: nothing to read there
         * any more (lookups would only fail again, each with its own
         * warning). The next process to open it rebuilds it. */
        cache_layer_finalize(l);
        sqlite3_close_v2(l->db);
        l->db = NULL;
    }
}

/* ---- Opening ------------------------------------------------------------- */

static char *join2(const char *a, const char *b)
{
    size_t na = strlen(a);
    size_t nb = strlen(b);
    char *s = cache_malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

static void configure(arb_cache *c, sqlite3 *db)
{
    sqlite3_busy_timeout(db, c->busy_ms);
    sqlite3_extended_result_codes(db, 1);
}

/* Open `path` read-only and classify it: mode=ro first; when that cannot
 * read (a WAL file whose -shm cannot be created in a read-only folder),
 * immutable=1. *db is NULL on failure. */
static int open_ro(arb_cache *c, const char *path, sqlite3 **db, file_info *info)
{
    static const char *const queries[] = {"mode=ro", "mode=ro&immutable=1"};
    int rc = SQLITE_CANTOPEN;
    *db = NULL;
    for (int i = 0; i < 2; i++) {
        char *uri = cache_file_uri(path, queries[i]);
        if (!uri)
            return SQLITE_NOMEM;
        rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        free(uri);
        if (rc == SQLITE_OK) {
            configure(c, *db);
            rc = classify(c, *db, info);
        } else {
            cache_note(c, *db);
        }
        if (rc == SQLITE_OK)
            return SQLITE_OK;
        sqlite3_close_v2(*db);
        *db = NULL;
        if (cache_rc_nomem(rc))
            break;
    }
    return rc;
}

/* The writable file belongs to a newer arb: reopen it read-only. */
static arb_status use_newer(arb_cache *c, cache_layer *l, int64_t version, arb_err *err)
{
    file_info info;
    cache_layer_finalize(l);
    sqlite3_close_v2(l->db);
    l->db = NULL;
    l->readonly = 1;
    c->writable = 0;
    int rc = open_ro(c, l->path, &l->db, &info);
    if (cache_rc_nomem(rc))
        return ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: out of memory", l->path);
    cache_warn(c,
               "kernel cache %s was written by a newer arb (schema version %lld; this arb "
               "reads version %d): it is left untouched and used read-only, and kernels "
               "missing from it are compiled in memory; upgrade arb, or set ARB_CACHE to "
               "another file",
               l->path, (long long)version, ARB_CACHE_SCHEMA_VERSION);
    return ARB_OK;
}

/* Setting up the writable file failed with `rc`: degrade, keeping the
 * connection for reads when the file is ours. */
static arb_status setup_failed(arb_cache *c, cache_layer *l, int rc, const file_info *info,
                               int readable, arb_err *err)
{
    char reason[1024];
    int bad = info->state != FILE_EMPTY && info->state != FILE_OURS && info->state != FILE_NEWER;
    if (cache_rc_nomem(rc))
        return ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: out of memory", l->path);
    if (cache_rc_busy(rc) && bad)
        snprintf(reason, sizeof(reason),
                 "it %s (%s) and another process holds it open, so it cannot be rebuilt now; "
                 "it is rebuilt once no process uses it",
                 state_phrase(info->state), info->detail);
    else if (cache_rc_busy(rc))
        snprintf(reason, sizeof(reason), "locked by another process for more than %d ms",
                 c->busy_ms);
    else
        snprintf(reason, sizeof(reason), "setting up its tables failed: %s",
                 cache_rc_detail(c, rc));
    cache_degrade(c, reason);
    l->readonly = 1;
    if (!readable && l->db) {
        cache_layer_finalize(l);
        sqlite3_close_v2(l->db);
        l->db = NULL;
    }
    return ARB_OK;
}

/* Check, create, migrate or rebuild the writable file behind l->db. */
static arb_status setup_writable(arb_cache *c, cache_layer *l, arb_err *err)
{
    file_info info;
    int readable = 0;
    int rc = classify(c, l->db, &info); /* on failure info says FILE_EMPTY */
    if (rc == SQLITE_OK && info.state == FILE_NEWER)
        return use_newer(c, l, info.version, err);
    if (rc == SQLITE_OK && (info.state == FILE_EMPTY || info.state == FILE_OURS)) {
        readable = info.state == FILE_OURS;
        rc = prepare_file(c, l, &info);
    } else if (rc == SQLITE_OK) {
        rc = rebuild(c, l, &info, 0);
        readable = rc == SQLITE_OK;
    }
    if (rc == SQLITE_OK)
        return ARB_OK;
    return setup_failed(c, l, rc, &info, readable, err);
}

arb_status cache_open_writable(arb_cache *c, const char *path, arb_err *err)
{
    arb_status st = ARB_OK;
    char *dir = NULL;
    char reason[1024];
    cache_layer *l = &c->layer[c->n_readonly];

    l->path = cache_strdup(path);
    l->name = cache_strdup(path);
    dir = cache_parent_dir(path);
    if (!l->path || !l->name || !dir) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: out of memory", path);
        goto out;
    }
    int e = cache_mkdir_p(dir);
    if (e != 0) {
        snprintf(reason, sizeof(reason), "cannot create folder %s: %s", dir, strerror(e));
        cache_degrade(c, reason);
        goto out;
    }
    cache_check_network_fs(c, dir);

    int rc = sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        cache_note(c, l->db);
        sqlite3_close_v2(l->db);
        l->db = NULL;
        if (cache_rc_nomem(rc)) {
            st = ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: out of memory", path);
            goto out;
        }
        snprintf(reason, sizeof(reason), "cannot open or create the file: %s", c->sqlmsg);
        cache_degrade(c, reason);
        goto out;
    }
    configure(c, l->db);
    if (sqlite3_db_readonly(l->db, "main") == 1) {
        /* SQLite fell back to read-only: the file exists but we may not write
         * it. Read it the way read-only layers are read (a WAL file in a
         * folder we cannot write needs immutable=1). */
        file_info info;
        l->readonly = 1;
        sqlite3_close_v2(l->db);
        l->db = NULL;
        rc = open_ro(c, path, &l->db, &info);
        if (cache_rc_nomem(rc)) {
            st = ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: out of memory", path);
            goto out;
        }
        if (rc == SQLITE_OK && info.state == FILE_NEWER) {
            st = use_newer(c, l, info.version, err);
            goto out;
        }
        if (rc == SQLITE_OK && info.state != FILE_OURS) {
            sqlite3_close_v2(l->db);
            l->db = NULL;
        }
        cache_degrade(c, "the file is read-only for this user");
        goto out;
    }
    st = setup_writable(c, l, err);
out:
    free(dir);
    return st;
}

arb_status cache_open_readonly(arb_cache *c, int index, const char *path, arb_err *err)
{
    arb_status st = ARB_OK;
    file_info info;
    struct stat sb;
    cache_layer *l = &c->layer[index];

    l->readonly = 1;
    l->path = cache_strdup(path);
    l->name = join2("readonly:", path);
    if (!l->path || !l->name) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: out of memory", path);
        goto out;
    }
    if (stat(path, &sb) != 0) {
        st = ARB_FAIL(err, ARB_ERR_NOT_FOUND,
                      "read-only kernel cache %s (ARB_CACHE_READONLY) cannot be opened: %s; "
                      "fix the path or remove it from ARB_CACHE_READONLY",
                      path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = ARB_FAIL(err, ARB_ERR_INVALID_ARG,
                      "read-only kernel cache %s (ARB_CACHE_READONLY) is a folder; name the "
                      "cache file in it",
                      path);
        goto out;
    }
    int rc = open_ro(c, path, &l->db, &info);
    if (cache_rc_nomem(rc)) {
        st = ARB_FAIL(err, ARB_ERR_NOMEM, "kernel cache %s: out of memory", path);
        goto out;
    }
    if (rc != SQLITE_OK) {
        cache_warn(c, "cannot read read-only kernel cache %s: %s; skipping it", path,
                   cache_rc_detail(c, rc));
        goto out;
    }
    switch (info.state) {
    case FILE_OURS:
        break;
    case FILE_NEWER:
        cache_warn(c,
                   "read-only kernel cache %s was written by a newer arb (schema version %lld; "
                   "this arb reads version %d); using what this arb can read",
                   path, (long long)info.version, ARB_CACHE_SCHEMA_VERSION);
        break;
    case FILE_EMPTY:
        cache_warn(c, "read-only kernel cache %s is empty (no arb tables); skipping it", path);
        sqlite3_close_v2(l->db);
        l->db = NULL;
        break;
    default:
        cache_warn(c, "read-only kernel cache %s %s (%s); skipping it (it is never modified)",
                   path, state_phrase(info.state), info.detail);
        sqlite3_close_v2(l->db);
        l->db = NULL;
        break;
    }
out:
    return st;
}

arb_status cache_open_source(arb_cache *c, const char *path, sqlite3 **db, arb_err *err)
{
    file_info info;
    struct stat sb;
    *db = NULL;
    if (stat(path, &sb) != 0)
        return ARB_FAIL(err, ARB_ERR_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return ARB_FAIL(err, ARB_ERR_INVALID_ARG, "%s is a folder, not a cache file", path);
    int rc = open_ro(c, path, db, &info);
    if (cache_rc_nomem(rc))
        return ARB_FAIL(err, ARB_ERR_NOMEM, "opening %s: out of memory", path);
    if (rc != SQLITE_OK)
        return ARB_FAIL(err, ARB_ERR_IO, "cannot read %s: %s", path, cache_rc_detail(c, rc));
    if (info.state == FILE_OURS || info.state == FILE_NEWER)
        return ARB_OK;
    sqlite3_close_v2(*db);
    *db = NULL;
    if (info.state == FILE_EMPTY)
        return ARB_FAIL(err, ARB_ERR_FORMAT, "%s is not an arb kernel cache (it has no tables)",
                        path);
    return ARB_FAIL(err, ARB_ERR_FORMAT, "%s is not an arb kernel cache: it %s (%s)", path,
                    state_phrase(info.state), info.detail);
}
