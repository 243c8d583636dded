/*
 * cmd_restore_conf — the restore command's side of restore/rconf.h: it
 * neutralises the recovery settings a fetched backup carries, and removes
 * restore's own once the instance is promoted, and says what it changed on
 * stdout and in the restore log (RESTORE_CONF_LOG inside PGDATA).  Kept out
 * of cmd_restore.c so that file only calls in (docs/RESTORE.md).
 */
#ifndef WALSHIP_CMD_RESTORE_CONF_H
#define WALSHIP_CMD_RESTORE_CONF_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "manifest.h"
#include "rconf.h"

#define RESTORE_CONF_LOG "walship-restore.log"

/* Before the settings are written: comment out every recovery setting in
 * PGDATA's configuration (and restore's own `port`/`archive_mode` when it is
 * about to write them), remove the signal files, print and log the list.
 * `found` receives it, for pitr_write_recovery(). */
int restore_conf_prepare(const char *pgdata, int writes_port, int writes_archive_mode, struct rconf_list *found,
                         struct err *e);

/* After --start saw the promotion: remove the recovery settings from
 * postgresql.auto.conf (restore_command stays with keep_restore_command),
 * print and log what went.  A failure is a warning: the restore is done. */
void restore_conf_after_promote(const char *pgdata, int keep_restore_command);

/* `a` then `b` as one shell word for a command line restore prints: bare
 * when it holds only [A-Za-z0-9_./:=@%+,-], else '...' with ' as '\''. */
void restore_conf_shell_quote(char *out, size_t n, const char *a, const char *b);

/* The restore_command the restored instance runs, into buf: this binary,
 * the same configuration (or the --from options of a bare host), the region
 * chosen first, each argument shell-quoted with % doubled. */
int restore_conf_command(const struct config *c, const char *region, const char *unasked, char *buf, size_t n,
                         struct err *e);

/* A cluster that keeps its configuration outside its data directory
 * (Debian's /etc/postgresql/15/main) has backups without it, and
 * PostgreSQL does not start without postgresql.conf and pg_hba.conf.
 * `missing` gets the names backup `m` lacks ("" when none); with `start`
 * that is refused (-1, ERR_USAGE, before anything is fetched). */
int restore_conf_outside(const struct manifest *m, int start, const char *pgdata, char *missing, size_t n,
                         struct err *e);

/* What to do about it, without --start: printed after the restore. */
void restore_conf_outside_hint(const char *pgdata, const char *missing);

/* Run as root: --start is refused before anything is fetched (PostgreSQL
 * never runs as root), ERR_USAGE; 0 otherwise. */
int restore_root_check(int start, const char *pgdata, struct err *e);

/* Run as root, after a fetch: a warning that the files belong to root and
 * the chown PostgreSQL needs before it starts on them. */
void restore_root_note(const char *pgdata);

#endif
