/*
 * cmd_standby — the warm standby fed from the archive at the program's
 * edge (docs/RESTORE.md "A warm standby"): what `restore --standby` prints,
 * the standby section of `walship status --standby DIR`, and `walship
 * promote` (cmd_promote.c).  Kept out of cmd_restore.c and cmd_status.c so
 * those only call in.
 */
#ifndef WALSHIP_CMD_STANDBY_H
#define WALSHIP_CMD_STANDBY_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "recover.h"

struct cmd_ctx;
struct config;
struct keyring;

/* ---- restore --standby ---- */

/* Without --start: how to start it, and what to watch. */
void restore_standby_not_started(const char *pg_bin, const char *pgdata);
/* Without a configuration file (--from), the standby's restore_command
 * names no credentials: warn when this run takes S3 credentials from the
 * environment, which a server started another way after a restart lacks. */
void restore_standby_env_warning(const struct config *c);
/* With --start: it accepts read-only connections, in recovery. */
void restore_standby_started(const struct rcv_result *st, const char *backup, const char *region, const char *pgdata,
                             double fetch_s, double ready_s);

/* ---- status --standby DIR ---- */

struct status_standby;

/* Look at the standby in `pgdata` (running? where is replay? what did
 * wal-fetch last say?) and its lag behind the first region (or --region).
 * `pg_user`: the role to log in as (NULL: libpq's default, then postgres).
 * NULL only when out of memory. */
struct status_standby *status_standby_take(struct cmd_ctx *ctx, const struct keyring *kr, const char *pgdata,
                                           const char *pg_user, time_t now);
/* 1 when it is an alarm: not running, not in recovery, fetches failing,
 * or replay lag past rpo_seconds. */
int status_standby_alarm(const struct status_standby *s);
void status_standby_text(const struct status_standby *s);
json_t *status_standby_json(const struct status_standby *s);
void status_standby_prom(const struct status_standby *s);
void status_standby_free(struct status_standby *s);

#endif
