/*
 * status — one region's health for `walship status` (docs/VERIFY.md):
 * newest backup and its age, newest archived WAL segment and its time, lag
 * behind the primary, spool backlog, the shipper's last complaint, and the
 * alarms a monitoring check acts on (rpo_seconds, backup_max_age, a
 * newest backup stamped ahead of this host's clock, two living
 * branches that a restore to 'latest' would have to choose between, and a
 * WAL segment missing between the newest backup's start and the newest
 * archived one).
 *
 * st_region() only reads: the region's listing (wal/ and backups/, plus the
 * newest backup's manifest and the history files), the spool's queue for the region and the
 * shipper's state file for it (spool.h, spool_state), never ship.log.
 * Library code: never prints.  One thread at a time per struct stor.
 */
#ifndef WALSHIP_STATUS_H
#define WALSHIP_STATUS_H

#include <stdint.h>
#include <time.h>

#include "catalog.h"
#include "config.h"
#include "err.h"
#include "keys.h"
#include "repo.h"
#include "spool.h"
#include "wal.h"

/* What the primary said (pg_current_wal_lsn()); known = 0 when no
 * pg_conninfo is configured or the connection failed. */
struct st_primary {
    int known;
    uint64_t lsn;
    uint32_t tli;
    uint64_t seg_size;
    char error[ERR_MSG_MAX];    /* why it is not known, "" when not configured */
};

struct st_region {
    const char *name;
    int readable;                   /* the region could be listed */
    char error[ERR_MSG_MAX];        /* why not */

    int has_backup;
    char backup[CAT_NAME_MAX];
    int64_t backup_time;            /* its stop time (Unix seconds) */
    int64_t backup_age;             /* now - backup_time (0 when ahead) */
    int64_t backup_ahead;           /* its start or stop time ahead of `now` (seconds, 0 when not) */

    int has_wal;
    char wal[WAL_NAME_MAX];         /* newest archived segment */
    int64_t wal_time;               /* its object's mtime */
    uint64_t wal_segno;             /* its position (segment number) */
    uint64_t wal_seg_size;          /* the segment size positions are counted in */
    const char *behind;             /* primary unknown: the region holding the newest WAL this one lacks
                                     * (st_compare_regions; not owned), NULL */
    char behind_wal[WAL_NAME_MAX];  /* that region's newest segment */
    int64_t wal_ahead;              /* the WAL the lag is timed from (newest archived segment, oldest spooled
                                     * file) stamped ahead of `now` (seconds, 0 when not) */

    int lag_known;                  /* primary known */
    uint64_t lag_segments;          /* completed segments the region lacks */
    uint64_t lag_bytes;
    uint64_t lag_seconds;           /* now - wal_time when lagging, else 0; at least the spool's oldest age */

    int async;
    uint64_t spool_files, spool_bytes;
    uint64_t spool_conflicts;       /* set aside by the shipper: the region misses them (an alarm) */
    uint64_t spool_oldest_age;      /* seconds, 0 when empty */

    /* the shipper's state for an async region (spool.h: spool_state) */
    int64_t ship_success;           /* last file shipped (Unix seconds), 0: never */
    char last_error[512];           /* the shipper's last error since its last success, or "" */
    char last_error_code[32];
    int64_t last_error_time;

    /* restore --target-latest from the newest backup would not run
     * (src/repo/timeline_branch.c), branch_kind says why:
     *   ST_BRANCH_TWO: recovery to 'latest' would leave timeline
     *     branch_other's WAL behind (two living branches), refused until
     *     told which;
     *   ST_BRANCH_NOT_CHILD: 'latest' (branch_latest) forked off before the
     *     backup on branch_other started: PostgreSQL cannot reach it;
     *   ST_BRANCH_HISTORY: the history file of 'latest' cannot be read
     *     (branch_why). */
    int branch, branch_kind;
    uint32_t branch_latest, branch_other;
    char branch_fork[24];           /* ST_BRANCH_TWO: the LSN where the path to 'latest' leaves branch_other */
    char branch_newest[WAL_NAME_MAX];   /* ST_BRANCH_TWO: branch_other's newest archived segment */
    char branch_why[256];

    /* restore --target-latest from the newest backup would stop short:
     * gap_wal, the first segment missing on the way from the backup's
     * start to the newest archived segment (or the start itself when
     * nothing from it on is archived), gap_segments the run missing from
     * its timeline there.  An alarm unless the spool still holds files
     * for the region (an async region catching up fills it). */
    int gap;
    char gap_wal[WAL_NAME_MAX];
    uint64_t gap_segments;

    int alarm_rpo;                  /* lag_seconds > rpo_seconds (or nothing archived while the primary has WAL) */
    int alarm_backup;               /* no backup, or newest older than backup_max_age */
    int alarm_clock;                /* backup_ahead or wal_ahead > RET_CLOCK_SKEW_MAX: a clock is wrong (retain_days
                                     * refuses; lag_seconds reads 0 however long archiving has stopped) */
    int alarm_branch;               /* branch: the archive holds two living branches */
    int alarm_gap;                  /* gap, with nothing spooled for the region */
};

enum { ST_BRANCH_TWO = 1, ST_BRANCH_NOT_CHILD, ST_BRANCH_HISTORY };

/* Any of the region's alarms. */
#define ST_ALARM(r) ((r)->alarm_rpo || (r)->alarm_backup || (r)->alarm_clock || (r)->alarm_branch || (r)->alarm_gap)

/* The local facts of a region, read even when the region cannot be opened:
 * its spool backlog and set-aside files, and for an async region the
 * shipper's state file (last success, last error and its code).  Fills
 * name, async, spool_* and the shipper's fields of `out` (the caller
 * zeroes it); `sp` may be NULL. */
void st_local(const struct region_conf *rc, struct spool *sp, time_t now, struct st_region *out);

/* `r` is opened with its identity (a region without one is reported as
 * unreadable by the caller); `p` and `sp` may be NULL. */
int st_region(struct repo *r, const struct config *conf, const struct region_conf *rc, const struct st_primary *p,
              struct spool *sp, time_t now, struct st_region *out, struct err *e);

/* Without the primary, the regions are judged against one another: a
 * readable region whose newest segment is behind another region's lacks
 * WAL that was archived (an async region not caught up, a region whose
 * newest objects were deleted or rolled back).  Its lag becomes the
 * segments it lacks, `behind` names the region ahead, lag_seconds is at
 * least the age of that region's newest segment (the missing WAL is at
 * least that old), and alarm_rpo is raised past rpo_seconds.  Regions
 * whose lag behind the primary is known are left as they are. */
void st_compare_regions(const struct config *conf, struct st_region *v, size_t n, time_t now);


#endif
