/*
 * cmd_status_int — what cmd_status.c shares with cmd_status_prom.c (the
 * Prometheus text format of `walship status --prometheus`).
 */
#ifndef WALSHIP_CMD_STATUS_INT_H
#define WALSHIP_CMD_STATUS_INT_H

#include <stddef.h>

#include "config.h"
#include "pgconn.h"
#include "status.h"

/* PostgreSQL's own archiver, beside the primary's position: archive_command
 * failing (every wal-push refused, whatever the cause) is seen at once,
 * not only once the lag passes rpo_seconds. */
struct archiver_view {
    int known;                      /* pg_stat_archiver could be read */
    const char *off;                /* why a primary archives nothing, NULL when it does */
    struct pg_archiver a;
};

#define ARCH_ALARM(v) ((v)->known && ((v)->a.failing || (v)->off != NULL))
/* pg_conninfo names a primary that could not be asked (down, a password or
 * pg_hba changed): the lag behind it and its archiver are unknown, not
 * fine (adversarial pass V: status said OK, exit 0, and with
 * walship_archiver_failing absent no alert rule could fire). */
#define PRIMARY_CONF(c) ((c)->pg_conninfo != NULL && (c)->pg_conninfo[0] != '\0')
#define PRIMARY_ALARM(c, p, v) (PRIMARY_CONF(c) && (!(p)->known || !(v)->known))

/* The regions' gauges, labelled region. */
void status_prom_regions(const struct st_region *rs, size_t n);
/* The primary's and its archiver's gauges, without a region label. */
void status_prom_primary(const struct config *c, const struct st_primary *p, const struct archiver_view *av);

#endif
