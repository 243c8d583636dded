/*
 * bk_walk — the list of what a base backup copies from PGDATA and its
 * tablespaces, with the exclusions pg_basebackup applies.
 *
 * Excluded, as PostgreSQL documents for backups: the contents of pg_wal
 * (the directory and pg_wal/archive_status are kept, empty),
 * pg_dynshmem, pg_notify, pg_replslot, pg_serial, pg_snapshots,
 * pg_stat_tmp and pg_subtrans; the files postmaster.pid, postmaster.opts,
 * backup_label, tablespace_map, backup_manifest, current_logfiles,
 * postgresql.auto.conf.tmp and every pg_internal.init; temporary files and
 * directories (pgsql_tmp*); and the main, fsm and vm forks of unlogged
 * relations (those with an _init fork), whose init fork is kept.
 *
 * Tablespaces (symlinks in pg_tblspc) are walked through their links and
 * listed as pg_tblspc/OID/...; the link itself is recorded separately.
 * A tablespace whose directory is inside PGDATA (PostgreSQL warns, but
 * allows it) is listed there only, not also as a directory of PGDATA: a
 * second copy is a file restore would write twice.
 * Directories come first in the list, then files sorted by path.
 */
#ifndef WALSHIP_BK_WALK_H
#define WALSHIP_BK_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct bk_item {
    char *path;         /* relative: "base/1/1259", "pg_tblspc/16385/PG_15_.../5/16386" */
    char *src;          /* absolute source path */
    int is_dir;
    uint64_t size;      /* at walk time */
    mode_t mode;
    int64_t mtime;
};

struct bk_tablespace {
    uint32_t oid;
    char *target;       /* where the pg_tblspc link points */
    dev_t dev;          /* that directory's identity: a tablespace inside */
    ino_t ino;          /* PGDATA is carried once, as the tablespace */
};

struct bk_list {
    struct bk_item *items;
    size_t n, cap;
    size_t ndirs;       /* items[0 .. ndirs-1] are directories */
    struct bk_tablespace *tbs;
    size_t ntbs;
    uint64_t total_bytes;
    /* symbolic links left out (not a tablespace, not pg_wal): how many,
     * and the first one's PGDATA-relative path, for a warning */
    size_t nlinks_skipped;
    char first_link_skipped[256];
    /* PGDATA and the directories reached through a link so far: each is
     * walked once, so links that loop cannot multiply the walk */
    struct bk_dirid {
        dev_t dev;
        ino_t ino;
    } *walked;
    size_t nwalked;
};

int bk_walk(const char *pgdata, struct bk_list *out, struct err *e);
void bk_list_free(struct bk_list *l);

/* The tablespaces in PGDATA/pg_tblspc (links; an in-place one is a
 * directory inside PGDATA) that `spcmap` (the tablespace_map
 * pg_backup_stop returned, made when the backup started) does not name:
 * created while the backup ran, their CREATE TABLESPACE is in the WAL a
 * restore replays.  Their number (0 when pg_tblspc cannot be read), and
 * the first one's OID in `first`. */
size_t bk_tablespaces_new(const char *pgdata, const char *spcmap, char *first, size_t n);

/* Exposed for tests: is this PGDATA-relative path excluded? */
int bk_excluded(const char *relpath, int is_dir);

#endif
