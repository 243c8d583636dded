/*
 * cmd_restore_pick — which region and which backup `walship restore`
 * restores: --region or the first region whose catalog answers, and
 * --backup or the newest backup that reaches the target (on the way to a
 * numbered --target-timeline); and, when the chosen backup's own start
 * segment is not archived (an async region whose WAL has not arrived
 * yet), the next older one.  Kept out of cmd_restore.c so that file only
 * calls in.
 */
#ifndef WALSHIP_CMD_RESTORE_PICK_H
#define WALSHIP_CMD_RESTORE_PICK_H

#include <stdio.h>

#include "catalog.h"
#include "err.h"
#include "pitr.h"

struct cmd_ctx;
struct keyring;
struct region_conf;
struct repo;

/* The region (*s, *rc, its catalog in *cat) and the backup in it (index
 * into *cat).  A region that answers but lacks the backup (an async region
 * being seeded, one whose copy lags) is passed over without --region, as
 * backup-fetch does.  `backup` is --backup (NULL: chosen). */
int restore_pick(struct cmd_ctx *ctx, const struct keyring *kr, const struct pitr_target *t, const char *backup,
                 struct repo **s, struct catalog *cat, const struct region_conf **rc, struct err *e);

/* The newest backup of `cat` (region s) that reaches `t`, leaving out
 * those `excluded` marks (one flag per catalog entry); -1 (e) when none. */
int restore_pick_other(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *s, const struct catalog *cat,
                       const struct pitr_target *t, const unsigned char *excluded, struct err *e);

/* After PostgreSQL stopped (`why`: the server log lines restore quotes),
 * what the operator needs to know about backup `m` and target `t`: a
 * stop before the backup was consistent, or an xid or restore point never
 * met in the WAL after the backup began, may lie before it (an older
 * backup, with --backup); a target xid that was rolled back.  Printed to
 * `f`; nothing when none applies. */
void restore_stop_hint(const struct pitr_target *t, const struct manifest *m, const char *why, FILE *f);

#endif
