/*
 * standby — what a warm standby fed from the archive knows about itself
 * (restore --standby, docs/RESTORE.md "A warm standby").
 *
 *  - The state file PGDATA/walship-standby.state: wal-fetch, run by a
 *    standby's startup process, notes each answer it gives — a file
 *    fetched, a segment no region has yet (the standby waits for it), a
 *    failure and its cause.  In standby mode a failure is answered with 1
 *    (DESIGN.md §5), so PostgreSQL's log says only "not found"; this file
 *    is where `walship status --standby` and `walship promote` read why a
 *    standby stalls.  Advisory: written by rename, not fsync'd; a missing
 *    or unreadable file only means "nothing known".  JSON (jansson).
 *
 *  - The replay lag behind a region: from the standby's last replayed LSN
 *    and the region's WAL listing, how many segments the archive holds
 *    beyond it and since when the oldest of them waits.
 *
 * Library code: never prints.  One writer at a time: PostgreSQL runs one
 * restore_command at a time.
 */
#ifndef WALSHIP_STANDBY_H
#define WALSHIP_STANDBY_H

#include <stdint.h>
#include <time.h>

#include "err.h"
#include "repo.h"
#include "wal.h"

#define SBY_STATE_FILE "walship-standby.state"

struct sby_state {
    int64_t fetched_time;               /* last file served (Unix seconds), 0 never */
    char fetched[WAL_NAME_MAX];
    int64_t missing_time;               /* last segment asked for that no region has */
    char missing[WAL_NAME_MAX];
    int64_t error_time;                 /* last failure */
    char error_name[WAL_NAME_MAX];
    char error[ERR_MSG_MAX];
    int failing;                        /* a failure stands (sby_state_failing) */
    /* The failures that stand, until what resolves each (sby_state_note):
     * a segment's, and another file's (a history file's) */
    char failing_seg[WAL_NAME_MAX];
    char failing_other[WAL_NAME_MAX];
    int other_with_seg;                 /* failing_other failed while failing_seg stood */
    /* Failures noted so far: `walship promote` compares the count before
     * and after the promotion, not error_time with its own clock (a clock
     * stepped back during the promotion hid the failure). */
    int64_t failures;
};

enum sby_event { SBY_FETCHED, SBY_MISSING, SBY_FAILED };

/* The state in `pgdata`; ERR_NOTFOUND when there is none yet. */
int sby_state_read(const char *pgdata, struct sby_state *s, struct err *e);

/* Note one answer of wal-fetch (`msg` for SBY_FAILED) at `now`.
 *
 * A failure stands until what it stalled is resolved, not until the next
 * answer: a standby that cannot get segment N also probes for history
 * files, and a history file fetched (or a segment of another timeline found
 * missing) says nothing about N.  So:
 *  - a segment's failure stands until a segment at or past it is fetched,
 *    it is found missing itself (the object is gone: the standby waits), or
 *    a later segment is found missing;
 *  - another file's failure (a history file's) stands until that file is
 *    fetched or found missing; one that failed while a segment's failure
 *    stood (one outage) is resolved with it.
 * A missing file that is not a segment and resolves nothing is not written
 * down: a standby probes for one every time it waits. */
int sby_state_note(const char *pgdata, enum sby_event ev, const char *name, const char *msg, int64_t now,
                   struct err *e);

/* Does a failure stand (see sby_state_note)? */
int sby_state_failing(const struct sby_state *s);

/* ---- a promotion under way ----
 *
 * PostgreSQL, asked to promote, replays what restore_command still gives
 * and ends recovery at the first file it does not get.  A standby's
 * wal-fetch answers a failure with 1 (it must wait, not shut down), which
 * during a promotion would end recovery early, before WAL the region
 * holds, and fork the new timeline there for good.  So `walship promote`
 * marks the promotion (PGDATA/walship-promoting, naming the running
 * postmaster) and, while the mark stands, wal-fetch answers a failure as
 * a cold restore does (250): PostgreSQL stops instead, the instance stays
 * a standby, and the operator restarts it and promotes again.  The mark
 * stands only for the postmaster it names (PID and start time from
 * postmaster.pid): a restarted server, or one started after a promote was
 * killed, is a plain standby again. */
#define SBY_PROMOTING_FILE "walship-promoting"

/* Mark a promotion of the server running in `pgdata`, durably. */
int sby_promoting_begin(const char *pgdata, struct err *e);
/* Remove the mark. */
void sby_promoting_end(const char *pgdata);
/* Does a mark stand for the server running in `pgdata`? */
int sby_promoting(const char *pgdata);

struct sby_lag {
    int have_wal;                       /* the region holds a segment */
    char newest[WAL_NAME_MAX];          /* its newest segment */
    int64_t newest_time;                /* stored at (Unix seconds) */
    uint64_t segments;                  /* segments the archive holds past the replayed one */
    uint64_t seconds;                   /* how long the oldest of them has waited, 0 when none */
    int64_t ahead;                      /* the oldest of them stored ahead of `now` (seconds, 0 when not): the
                                         * seconds then read 0 however long it waits (a clock is wrong) */
    /* A hole: the first segment past the replayed one that the region
     * lacks (on any timeline) while it holds a later one.  The standby
     * waits there, and a promotion would end recovery there. */
    int have_gap;
    char gap[WAL_NAME_MAX];
};

/* Compare `replay_lsn` (pg_last_wal_replay_lsn(), the end of the last
 * record replayed) with the WAL segments in region `r`, of `seg_size`
 * bytes, on any timeline. */
int sby_lag(struct repo *r, uint64_t replay_lsn, uint64_t seg_size, time_t now, struct sby_lag *out, struct err *e);

/* ---- a second branch ----
 *
 * A standby follows recovery_target_timeline 'latest': a drill restored
 * to latest with --keep-archive, promoted while the standby waited for
 * production's next segment, takes it along, and it never reads
 * production's timeline again.  The check restore makes without
 * --target-timeline (timeline_branch.c), for the timeline the standby
 * follows (that of the newest segment its wal-fetch served or found
 * missing) from the start of its backup (backup_label.old).  A standby
 * told its timeline (restore --standby --target-timeline N) is not
 * checked: the operator chose the branch. */
struct sby_branch {
    uint32_t tli;                       /* the standby's timeline */
    uint32_t child;                     /* its path goes on as this at the fork */
    uint32_t parent;                    /* ... while this one went on too */
    char fork[24];                      /* the LSN of the fork */
    char parent_newest[WAL_NAME_MAX];   /* how far it went */
};

/* 1 and *out when region `r` holds another branch that went on past the
 * point where the standby's path leaves it; 0 when not; -1 (e) when it
 * cannot be told (no segment in the state file, the region unreadable). */
int sby_branch(struct repo *r, const char *pgdata, uint64_t seg_size, struct sby_branch *out, struct err *e);

#endif
