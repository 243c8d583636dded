/*
 * pitr — point-in-time restore: choosing the backup, checking the WAL it
 * needs, and writing the recovery settings into a fetched PGDATA.
 *
 * Pure decisions and file writes; the command (src/cmd/cmd_restore.c) fetches,
 * starts PostgreSQL and reports.  Targets follow PostgreSQL's
 * recovery_target_* settings.  A target time without a zone is taken as UTC
 * and written with "+00" so walship and PostgreSQL agree on it.
 */
#ifndef WALSHIP_PITR_H
#define WALSHIP_PITR_H

#include <stdint.h>

#include "catalog.h"
#include "err.h"
#include "rconf.h"
#include "stor.h"

/* The line that opens the settings restore appends to postgresql.auto.conf;
 * promote recognises a standby restore --standby made by it. */
#define PITR_CONF_MARK "# Added by walship restore"

/* PITR_STANDBY: no target at all; a standby that follows the archive until
 * it is promoted (standby.signal, hot_standby; restore --standby). */
enum pitr_kind { PITR_LATEST, PITR_TIME, PITR_LSN, PITR_XID, PITR_NAME, PITR_IMMEDIATE, PITR_STANDBY };

struct pitr_target {
    enum pitr_kind kind;
    char value[128];        /* as written to recovery_target_*; PITR_LATEST: the
                             * end of the archive (an LSN) when known, else "" */
    int64_t time;           /* PITR_TIME: Unix seconds (UTC) */
    uint64_t lsn;           /* PITR_LSN; PITR_LATEST: the end when known */
    char action[16];        /* promote | pause | shutdown */
    char timeline[16];      /* "latest", "current" or a number */
};

/* Parse "2026-11-22 05:32:30[.123][ ](Z|UTC|GMT|+-H[H][:MM]|+-[H]HMM)", the offset as
 * PostgreSQL reads it (three or four digits run together are [H]HMM). */
int pitr_parse_time(const char *s, int64_t *out, char *normalized, size_t n, struct err *e);

/* --target-xid: decimal digits of a transaction id (an xid8 as
 * pg_current_xact_id() gives it is taken, its epoch dropped as PostgreSQL
 * does), a normal one (>= 3 in its low 32 bits).  An empty value would
 * mean no target at all to PostgreSQL: recovery to the end. */
int pitr_check_xid(const char *s, struct err *e);
/* --target-name: 1 to 63 bytes, what pg_create_restore_point() accepts; a
 * longer one could never be reached, an empty one means no target. */
int pitr_check_name(const char *s, struct err *e);

/* Pick the newest complete backup that can reach the target (catalog with
 * manifests loaded), among those `usable` marks (NULL: all).  `name` forces
 * one.  ERR_NOTFOUND says what the oldest reachable point is. */
int pitr_choose(const struct catalog *c, const struct pitr_target *t, const char *name,
                const unsigned char *usable, struct err *e);

/* For a numbered target timeline (`timeline`, as in struct pitr_target):
 * *usable (malloc'd, one flag per catalog entry) marks the complete
 * backups that start on its path in the union of regions rs[0..nrs), as
 * restore_command reads them (on it, or on an ancestor
 * before the point where the path leaves it), and *tli the timeline.  A
 * newer backup on another branch (a drill's) cannot reach it.  *usable is
 * NULL for "latest", "current" and "", and when the timeline's history is
 * not archived or unusable (the WAL check says so).  -1 only when the
 * region's WAL cannot be listed or memory runs out.  `skipped` names the
 * other regions that could not be listed ("" when none). */
int pitr_on_path(struct repo *const *rs, size_t nrs, const struct catalog *c, const char *timeline,
                 unsigned char **usable, uint32_t *tli, char skipped[1024], struct err *e);

/* What pitr_check_wal found. */
struct pitr_wal {
    char newest[32];            /* the newest segment on the path */
    unsigned long nsegments;    /* how many there are from the backup's start */
    int no_timeline;            /* the target timeline does not exist or is no child (below) */
    int no_start;               /* the backup's own start segment is not archived */
    uint64_t gap_lsn;           /* where the first gap begins, where recovery would stop; 0: none */
    char skipped[1024];         /* the other regions that could not be listed ("" when none) */
    uint32_t tli;               /* the target timeline the path was judged for (0: none) */
};

/* The WAL from backup `m`'s start to the newest segment on the path to
 * `timeline` ("latest", "current", "" or a number) must be archived, as
 * PostgreSQL reads it (src/repo/timeline.h): a gap would make recovery
 * stop early; gaps on branches the path does not use do not count.
 * ERR_NOTFOUND names the first missing segment (out->gap_lsn, and
 * out->no_start when it is the backup's own start segment).  A numbered
 * target timeline, other than the backup's, whose history file is not
 * archived sets out->no_timeline too: PostgreSQL stops at startup
 * ("recovery target timeline N does not exist"), so that is no gap to
 * warn about; so does a target timeline that does not descend from the
 * backup's ("requested timeline is not a child of this server's history"),
 * whatever the target.  rs[0] is the region restore chose; the others are
 * the rest of the cluster's regions, which restore_command asks too: the
 * path is judged on their union (rcv_model), as PostgreSQL will read it;
 * those that could not be listed are named in out->skipped (the caller
 * warns, since restore_command will ask them too). */
int pitr_check_wal(struct repo *const *rs, size_t n, const struct manifest *m, const char *timeline,
                   struct pitr_wal *out, struct err *e);

/* Add the recovery settings to DIR/postgresql.auto.conf, in one block and
 * one atomic write, and create DIR/recovery.signal (PITR_STANDBY: no target
 * and no action, hot_standby = on, and DIR/standby.signal).  `restore_command` is
 * the full command line (quoted here for the configuration file).  Unless
 * keep_archive, archive_mode is turned off in the restored instance so a
 * drill never writes into the production prefix.  `found` (NULL or what
 * rconf_neutralise() reported): each setting it lists as RCONF_OVERRIDDEN
 * is set back to its default first, so a file outside PGDATA cannot add a
 * recovery target. */
int pitr_write_recovery(const char *dir, const struct pitr_target *t, const char *restore_command, int keep_archive,
                        int port, const struct rconf_list *found, struct err *e);

#endif
