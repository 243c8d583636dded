/*
 * cmd_status_prom — `walship status --prometheus`: the text exposition
 * format for node_exporter's textfile collector (docs/VERIFY.md lists the
 * metrics; contrib/prometheus/walship-alerts.yml the rules on them).
 */
#include <inttypes.h>
#include <stdio.h>

#include "cmd_status_int.h"

/* ---- Prometheus ---- */

struct metric {
    const char *name, *type, *help;
};

static const struct metric metrics[] = {
    { "walship_up", "gauge", "1 when the region could be listed" },
    { "walship_last_backup_timestamp_seconds", "gauge", "stop time of the newest complete backup" },
    { "walship_last_backup_age_seconds", "gauge", "age of the newest complete backup" },
    { "walship_last_wal_timestamp_seconds", "gauge", "time the newest archived WAL segment was stored" },
    { "walship_wal_lag_segments", "gauge", "completed WAL segments the region lacks" },
    { "walship_wal_lag_bytes", "gauge", "bytes of completed WAL the region lacks" },
    { "walship_wal_lag_seconds", "gauge", "seconds the region is behind the primary" },
    { "walship_spool_files", "gauge", "files queued in the local spool for the region" },
    { "walship_spool_bytes", "gauge", "bytes queued in the local spool for the region" },
    { "walship_spool_oldest_age_seconds", "gauge", "age of the oldest file queued for the region" },
    { "walship_last_error", "gauge", "1 when the shipper's last attempt for the region failed (state file)" },
    { "walship_backup_ahead_seconds", "gauge", "seconds the newest backup's times are ahead of this host's clock" },
    { "walship_branches", "gauge",
      "1 when restore to latest would not run: two living branches, a latest timeline that forked off before "
      "the newest backup, or its history unreadable" },
    { "walship_alarm", "gauge",
      "1 when the region lags past rpo_seconds, its newest backup is too old or ahead of the clock, its "
      "archive holds two living branches or a gap, or it cannot be listed" },
    { "walship_wal_gap", "gauge",
      "1 when a WAL segment is missing between the newest backup's start and the newest archived segment" },
};

#define NMETRICS (sizeof metrics / sizeof metrics[0])

static void prom_escape(const char *in, char *out, size_t len)
{
    size_t j = 0;

    for (; *in && j + 3 < len; in++) {
        if (*in == '\\' || *in == '"') {
            out[j++] = '\\';
            out[j++] = *in;
        } else if (*in == '\n') {
            out[j++] = '\\';
            out[j++] = 'n';
        } else {
            out[j++] = *in;
        }
    }
    out[j] = '\0';
}

static int prom_value(const struct st_region *r, size_t k, double *v)
{
    switch (k) {
    case 0: *v = r->readable; return 1;
    case 1: *v = (double)r->backup_time; return r->has_backup;
    case 2: *v = (double)r->backup_age; return r->has_backup;
    case 3: *v = (double)r->wal_time; return r->has_wal;
    case 4: *v = (double)r->lag_segments; return r->lag_known;
    case 5: *v = (double)r->lag_bytes; return r->lag_known;
    case 6: *v = (double)r->lag_seconds; return r->readable;    /* unknown, not 0, for a region not listed */
    case 7: *v = (double)r->spool_files; return 1;
    case 8: *v = (double)r->spool_bytes; return 1;
    case 9: *v = (double)r->spool_oldest_age; return 1;
    case 10: *v = r->last_error[0] != '\0'; return 1;
    case 11: *v = (double)r->backup_ahead; return r->has_backup;
    case 12: *v = r->branch; return r->readable;
    case 13: *v = ST_ALARM(r); return 1;
    case 14: *v = r->gap; return r->readable;
    }
    return 0;
}

void status_prom_regions(const struct st_region *rs, size_t n)
{
    size_t k, i;

    for (k = 0; k < NMETRICS; k++) {
        printf("# HELP %s %s\n# TYPE %s %s\n", metrics[k].name, metrics[k].help, metrics[k].name, metrics[k].type);
        for (i = 0; i < n; i++) {
            char lab[512];
            double v;

            if (!prom_value(&rs[i], k, &v))
                continue;
            prom_escape(rs[i].name, lab, sizeof lab);
            printf("%s{region=\"%s\"} %.17g\n", metrics[k].name, lab, v);
        }
    }
}

/* Without a region label: the primary's archiver. */
void status_prom_primary(const struct config *c, const struct st_primary *p, const struct archiver_view *av)
{
    if (PRIMARY_CONF(c))
        printf("# HELP walship_primary_up 1 when the primary named by pg_conninfo answered (its position and "
               "pg_stat_archiver); absent without pg_conninfo\n# TYPE walship_primary_up gauge\n"
               "walship_primary_up %d\n", !PRIMARY_ALARM(c, p, av));
    if (!av->known)
        return;
    printf("# HELP walship_archiver_failing 1 when PostgreSQL's last archive_command attempt failed "
           "(pg_stat_archiver), or it archives nothing (archive_mode off, archive_command empty)\n# TYPE walship_archiver_failing gauge\n"
           "walship_archiver_failing %d\n", ARCH_ALARM(av));
    printf("# HELP walship_archiver_failed_count failed archive_command attempts (pg_stat_archiver)\n"
           "# TYPE walship_archiver_failed_count counter\nwalship_archiver_failed_count %" PRIu64 "\n", av->a.failed);
    if (av->a.archived_at > 0)
        printf("# HELP walship_archiver_last_archived_timestamp_seconds when PostgreSQL last archived a file\n"
               "# TYPE walship_archiver_last_archived_timestamp_seconds gauge\n"
               "walship_archiver_last_archived_timestamp_seconds %" PRId64 "\n", av->a.archived_at);
}

