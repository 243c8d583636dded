/*
 * backup — a full base backup of a running cluster to every region.
 *
 * bk_push() takes the backup lock (spool_dir/backup.lock), starts a
 * non-exclusive backup through libpq, lists PGDATA and its tablespaces
 * (bk_walk.h), and builds pax tar parts `parallel` at a time.  Each part is
 * read once, checksummed per file, compressed and encrypted once, and fanned
 * out to every region's upload sink.  After pg_backup_stop (which waits for
 * the stop segment to be archived) it checks that each region has that
 * segment, then writes backup_label, tablespace_map and, last, the
 * manifest to every region whose parts all succeeded.  A region that failed
 * gets no manifest, so the backup does not exist there; the result says
 * which and why.
 *
 * Files that vanish during the backup are skipped; files that shrink are
 * padded with zeros and files that grow are cut at their size when listed
 * (WAL replay from the start point repairs both, as PostgreSQL documents).
 */
#ifndef WALSHIP_BACKUP_H
#define WALSHIP_BACKUP_H

#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "err.h"
#include "keys.h"
#include "note.h"

#define BK_MAX_REGIONS 16

struct bk_progress {
    uint64_t done, total;
};

struct bk_opts {
    uint64_t part_size;         /* tar bytes per part (upper bound); 0 = 1 GiB */
    void (*progress)(const struct bk_progress *p, void *arg);  /* called about twice a second */
    void *progress_arg;
    int incremental;            /* only the blocks changed since the parent (docs/BACKUP.md) */
    /* What the backup reports as it goes (its start, a region that cannot
     * take it, a full backup instead of an incremental, the regions'
     * drivers and the server's notices); NULL: nothing.  The command sets it. */
    const struct note_sink *notes;
};

struct bk_region_result {
    int ok;
    struct err err;
};

struct bk_result {
    char name[CAT_NAME_MAX];
    uint64_t original_size, stored_size;
    size_t nfiles, nparts;
    uint64_t start_lsn, stop_lsn;
    double seconds;
    char recovery_settings[1024];   /* recovery settings the backup carries, or "" */
    int nregions;
    struct bk_region_result regions[BK_MAX_REGIONS];
    int incremental;                /* the backup is an incremental of `parent` */
    char parent[CAT_NAME_MAX];
    char full_because[512];         /* --incremental fell back to a full backup: why */
};

/* 0: the backup is complete in every region; -1: e says why (and res->regions
 * which regions have it, if it got that far). */
int bk_push(const struct config *c, const struct keyring *kr, const struct bk_opts *o, struct bk_result *res,
            struct err *e);

#endif
