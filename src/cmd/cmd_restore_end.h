/*
 * cmd_restore_end — the target of `restore --target-latest`: the end of
 * the archive over every region that recovery's restore_command asks
 * (restore/recover.h, rcv_archive_end), as the LSN of its last record
 * (pg_waldump on the newest segment); for the other targets, the WAL
 * check on the same union.  Kept out of cmd_restore.c so that file only
 * calls in (docs/RESTORE.md "The end of the archive").
 */
#ifndef WALSHIP_CMD_RESTORE_END_H
#define WALSHIP_CMD_RESTORE_END_H

#include "err.h"
#include "manifest.h"
#include "pitr.h"
#include "recover.h"

struct cmd_ctx;
struct keyring;
struct repo;

#define END_MAX_REGIONS 64

/* rs[0] = `first` (the region restore chose), then every other configured
 * region that opens as this cluster's (restore_command asks them all); one
 * that does not is a warning that names it.  The caller frees rs[1..n). */
size_t restore_open_regions(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *first,
                            struct repo *rs[END_MAX_REGIONS]);

/* Whether `name` is a word of the space-separated `list` (cmd_ctx's
 * unasked: the regions restore_open_regions could not open, which the
 * restore_command restore writes does not ask). */
int restore_name_listed(const char *list, const char *name);

/* `first` is the region restore chose (restore_command asks it first);
 * every other configured region of the cluster is asked too, and one that
 * cannot be is a warning that names it.  Sets t->lsn and t->value; *nseg
 * is the number of segments from the backup's start.  A gap in the union
 * is a failure (ERR_IO: "latest" would end short), before anything is
 * fetched; *no_start when the gap is the backup's own start segment.
 * `run` runs pg_waldump from `pg_bin`. */
int restore_latest_end(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *first, const struct manifest *m,
                       const char *pg_bin, rcv_run_fn run, struct pitr_target *t, unsigned long *nseg,
                       int *no_start, struct err *e);

/* Any other target: the WAL from backup `m` on, judged on the union of
 * every region as for "latest".  A gap is a warning (recovery fails only
 * if the target lies beyond it; a standby waits there), except for
 * --target-immediate; a target timeline PostgreSQL would refuse, two
 * living branches, or a gap no recovery to the target can pass (before
 * the backup's end, or before an LSN target) are errors.  So is, but for
 * a standby (it waits for it), the backup's own start segment missing:
 * *no_start (ERR_IO), as in restore_latest_end.  With no
 * --target-timeline (and not a standby), t->timeline becomes the number
 * of the timeline the path was judged for; restore_latest_end does the
 * same with the end's. */
int restore_target_wal(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *first, const struct manifest *m,
                       struct pitr_target *t, int standby, int *no_start, struct err *e);

#endif
