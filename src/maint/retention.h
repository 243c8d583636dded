/*
 * retention — which backups and WAL files a region no longer needs, and
 * removing them (`walship delete`, and backup-push with
 * delete_after_backup).  docs/RETENTION.md states the rules.
 *
 * ret_plan() reads a region (catalog with manifests, the wal/ listing) and
 * decides; ret_plan_backups() and ret_wal_expired() are the pure parts it
 * uses, so the rules can be tested on synthetic catalogs.  ret_apply()
 * carries a plan out: each expired backup loses its manifest first (so a
 * half-deleted backup is invisible), then its other objects; then the WAL.
 * Nothing here prints.
 *
 * A struct ret_plan owns its arrays; ret_plan_free() releases them (and is
 * a no-op on a zeroed plan).  Not thread-safe; one plan per region.
 */
#ifndef WALSHIP_RETENTION_H
#define WALSHIP_RETENTION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "catalog.h"
#include "err.h"
#include "keys.h"
#include "note.h"
#include "stor.h"

struct ret_policy {
    int retain_full;            /* newest N complete backups; 0 = not set */
    uint64_t retain_days;       /* backups that stopped less than N days ago; 0 = not set */
    uint64_t garbage_hours;     /* incomplete backups older than this go; 0 = any age */
    time_t now;
    const char *protect;        /* a backup never deleted, whatever the rules (the one
                                   backup-push just took), or NULL; it must be listed */
};

struct ret_backup {
    char name[CAT_NAME_MAX];
    int incomplete;             /* 1: no manifest (garbage), 0: expired complete backup */
    uint64_t objects, bytes;
    char start_wal[25];         /* complete backups: its first WAL segment ("" if unknown) */
    char parent[CAT_NAME_MAX];  /* an incremental's parent ("" for a full or incomplete backup) */
    int locked;                 /* ret_apply: kept whole, 1: its manifest is under Object Lock,
                                   2: a backup kept whole is built on it */
};

struct ret_wal {
    char *key;                  /* "wal/NAME" */
    uint64_t bytes;
};

/* A backup kept beyond the policy because it is the only way to a living
 * branch (retention_branch.c). */
struct ret_branch {
    char name[CAT_NAME_MAX];
    uint32_t tli;               /* the living timeline it reaches */
    char newest_wal[25];        /* that timeline's newest archived segment */
};

struct ret_plan {
    int policy_set;             /* retain_full or retain_days given */
    size_t kept;                /* complete backups retained */
    char oldest_kept[CAT_NAME_MAX];     /* "" when no complete backup */
    /* WAL cut: a segment goes when its timeline <= cut_tli and its segment
     * number < cut_segno (valid when have_cut). */
    int have_cut;
    uint32_t cut_tli;
    uint64_t cut_segno;
    uint64_t seg_size;
    char cut_wal[25];           /* start_wal of the oldest retained backup */

    struct ret_backup *backups; /* to delete: expired and garbage, oldest first */
    size_t nbackups;
    struct ret_wal *wal;        /* to delete, in key order */
    size_t nwal, wal_cap;
    uint64_t bytes;             /* everything the plan would free */
    struct ret_branch *branch;  /* kept as the only way to a living branch */
    size_t nbranch;
    /* the backups/ folders the plan was made from (retention_spare.c), and
     * how many planned backups a backup completed since then needed */
    char (*listed)[CAT_NAME_MAX];
    size_t nlisted;
    size_t spared;
};

struct ret_done {
    size_t backups, wal;
    uint64_t bytes;
    uint64_t tmp_swept;         /* temp files / multipart uploads of dead writers removed */
    uint64_t kept_locked;       /* objects the server keeps under Object Lock (not failures) */
    size_t backups_locked;      /* backups left whole: their manifest is under Object Lock */
    char sweep_error[256];      /* the sweep failed (not the retention): why */
};

/* Temp files (file://) untouched this long are a dead writer's. */
#define RET_TMP_AGE 3600

/* A backup whose start or stop time is further than this ahead of the
 * local clock means a clock is wrong (here, or where it was taken):
 * retain_days refuses to run, status raises its clock alarm. */
#define RET_CLOCK_SKEW_MAX 300
/* A branch with no kept backup whose last segment was stored less than
 * this before the newest kept backup began counts as living (retention
 * keeps its newest backup): a production that archived nothing yet since a
 * drill's backup began looks like an old primary that stopped, and only
 * time tells them apart (docs/RETENTION.md "Two branches"). */
#define RET_BRANCH_QUIET (24 * 3600)

/* Policy for one region from the configuration. */
void ret_policy_from_conf(const struct config *c, const struct region_conf *rc, time_t now,
                          struct ret_policy *out);

/* Decide on backups from a catalog loaded with manifests (oldest first):
 * fills plan->backups, kept, oldest_kept and the WAL cut.  The newest
 * complete backup is always kept, and p->protect (an error when it is not
 * a complete backup of the catalog); with retain_days, so is the window's
 * anchor, and a catalog failing ret_clock_check() is an error (nothing
 * planned).  With the region's timeline model `m` (may be NULL), so is
 * the only way to each living branch (ret_keep_branches). */
struct tl_model;
int ret_plan_backups(const struct catalog *cat, const struct ret_policy *p, const struct tl_model *m,
                     struct ret_plan *plan, struct err *e);

/* 1 when complete backup i of `cat` (manifests loaded) can be restored: a
 * full backup, or an incremental whose parents are all complete backups of
 * the catalog, down to a full one. */
int ret_restorable(const struct catalog *cat, size_t i);

/* retain_days' anchor on each branch: for every timeline of `m` written
 * on inside the window (a segment stored at or after `start`, the
 * window's start), keep the newest complete full backup that stopped at
 * or before `start` and lies on its path, start to end.  The window's
 * anchor by stop time alone may be on another branch (a drill's backup);
 * the oldest points of the window on this one were then restorable from
 * nothing.  Storage times (the model's) against this host's clock. */
int ret_keep_anchors(const struct catalog *cat, const struct tl_model *m, int64_t start, unsigned char *keep,
                     struct err *e);
/* retention_branch.c: in keep[] (one flag per catalog entry, the kept
 * ones set), also keep the newest complete backup starting on the path of
 * each living timeline of `m` that no kept backup starts on, and record
 * it in plan->branch.  Living: its newest segment is past the start of
 * every kept backup, or (when the model has the segments' times) a
 * segment of it was stored less than RET_BRANCH_QUIET before the newest
 * kept backup began (its manifest's mtime less its duration: the
 * storage's clock), or later. */
int ret_keep_branches(const struct catalog *cat, const struct tl_model *m, unsigned char *keep,
                      struct ret_plan *plan, struct err *e);

/* retention_branch.c: the complete backups a segment of whose own WAL
 * (its start to its stop segment) is missing from the region's listing
 * `m` (none when `m` is NULL).  Such a backup cannot be restored from the
 * region yet: an async region whose shipper has not caught up
 * (backup-push accepts a stop segment still queued in the spool), or a
 * backup folder put there from another repository of the cluster.  It
 * takes no retain_full place, so the backups that restore the region
 * today stay until it can be restored (adversarial pass N: with
 * retain_full = 1 the retention after backup-push deleted an async
 * region's only restorable backup while the new one's WAL was still in
 * the spool).  late[i] (one flag per catalog entry) is set to 2 for such
 * a backup newer than every other complete backup (in flight: it stays as
 * the newest), to 1 for the others (no rank either: kept only by age);
 * returns the number of 1s. */
size_t ret_late(const struct catalog *cat, const struct tl_model *m, unsigned char *late);

/* 1 when the WAL file `name` (bare name) is to be deleted under the plan's
 * cut, 0 when it is kept (history files, anything unparsable, no cut). */
int ret_wal_expired(const struct ret_plan *plan, const char *name);

/* Read the region and build the whole plan. */
int ret_plan(struct repo *r, const struct ret_policy *p, struct ret_plan *out, struct err *e);

/* retention_spare.c: drop from the plan every backup the chain of a
 * complete backup that is not in plan->listed runs through (one pushed
 * after the plan was made: an incremental whose parent the plan would
 * delete).  `now` is a later listing, with the manifests of its new
 * complete backups loaded (others may be NULL).  Counts plan->spared. */
void ret_spare_new(struct ret_plan *plan, const struct catalog *now);
/* List backups/ again, load the new complete backups' manifests (header
 * fields) and ret_spare_new: run just before ret_apply, it narrows the
 * window in which a `delete` on one host removes the parent of an
 * incremental another host has just pushed to the time apply takes. */
int ret_spare_relist(struct repo *r, struct ret_plan *plan, struct err *e);

/* Carry out a plan; `done` counts what was removed even on failure. */
int ret_apply(struct stor *s, struct ret_plan *plan, struct ret_done *done, struct err *e);

void ret_plan_free(struct ret_plan *plan);

/* retention_clock.c: seconds the later of m's start and stop time is ahead
 * of `now` (0 when not ahead, or m is NULL). */
int64_t ret_backup_ahead(const struct manifest *m, time_t now);

/* -1 (naming the backup and the skew) when a complete backup of `cat`
 * (manifests loaded) is more than RET_CLOCK_SKEW_MAX ahead of `now`. */
int ret_clock_check(const struct catalog *cat, time_t now, struct err *e);

/* Open region `rc` (its identity must be readable: retention never runs on
 * a region that is not a walship repository), plan with its policy at time
 * `now`, and apply the plan unless `dry_run`.  `protect` (may be NULL)
 * names a backup that stays with the WAL it needs, whatever the policy:
 * backup-push passes the backup it has just taken.  `plan` is filled (caller frees) so the caller can say
 * what went or would go.  `notes` (may be NULL) hears what the region's
 * driver reports (an object kept under Object Lock, a request retried). */
int ret_region(const struct config *c, const struct region_conf *rc, const struct keyring *kr,
               const struct note_sink *notes, time_t now, int dry_run, const char *protect, struct ret_plan *plan,
               struct ret_done *done, struct err *e);

#endif
