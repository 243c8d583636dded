/*
 * cmd_status — `walship status [--json | --prometheus]`: per region the
 * newest backup and its age, the newest archived WAL, the lag behind the
 * primary, the spool backlog and the last error (src/maint/status.h).  Exit 2
 * when any region lags past rpo_seconds or its newest backup is older than
 * backup_max_age (a monitoring check), 3 when the status could not be taken
 * at all, 0 otherwise; a newest backup, or the WAL the lag is timed from,
 * stamped more than RET_CLOCK_SKEW_MAX ahead of this host's clock is an
 * alarm too (retain_days refuses then; the lag's seconds would read 0).
 * --prometheus prints the text exposition format for node_exporter's
 * textfile collector.  --standby DIR adds the warm standby
 * in DIR: its replay lag behind the region and why it stalls
 * (cmd_status_standby.c).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "cmd.h"
#include "cmd_standby.h"
#include "cmd_status_int.h"
#include "keys.h"
#include "log.h"
#include "manifest.h"
#include "note.h"
#include "pgconn.h"
#include "retention.h"
#include "ship.h"
#include "spool.h"
#include "status.h"
#include "stor.h"

enum fmt { FMT_TEXT, FMT_JSON, FMT_PROM };

static void primary_get(const struct config *c, struct st_primary *p, struct archiver_view *av)
{
    struct pgconn *pc = NULL;
    struct pg_info info;
    struct err e = ERR_INIT;

    memset(p, 0, sizeof *p);
    memset(av, 0, sizeof *av);
    if (c->pg_conninfo == NULL || c->pg_conninfo[0] == '\0')
        return;
    if (pg_connect(c->pg_conninfo, &note_log_sink, &pc, &e) < 0 || pg_get_info(pc, &info, &e) < 0 ||
        pg_current_lsn(pc, &p->lsn, &p->tli, &e) < 0) {
        snprintf(p->error, sizeof p->error, "%s", e.msg);
        log_warning("lag behind the primary is unknown: %s", e.msg);
        pg_disconnect(pc);
        return;
    }
    p->seg_size = info.wal_segment_size;
    p->known = 1;
    if (pg_archiver_stat(pc, &av->a, &e) < 0) {
        snprintf(p->error, sizeof p->error, "PostgreSQL's archiver statistics are unknown: %s", e.msg);
        log_warning("%s", p->error);
    } else {
        av->known = 1;
        if (!info.in_recovery && !info.archive_mode)
            av->off = "archive_mode is off (set it to on and restart PostgreSQL)";
        else if (!info.in_recovery && av->a.no_command)
            av->off = "archive_command is empty (PostgreSQL keeps every WAL file in pg_wal)";
    }
    pg_disconnect(pc);
}

static void fmt_time(int64_t t, char out[32])
{
    man_format_time(t, out);
}

/* ---- text ---- */

/* The shipper's last error (its state file), also for a region status
 * could not open: the shipper's view is local. */
static void print_last_error(const struct st_region *r)
{
    char t[32];

    if (r->last_error[0] == '\0')
        return;
    fmt_time(r->last_error_time, t);
    printf("  last error:     [%s] %s (at %s)\n", cmd_line(r->last_error_code), cmd_line(r->last_error), t);
}

/* What would stop restore --target-latest (status.h, branch_kind). */
static void print_branch(const struct st_region *r)
{
    if (r->branch_kind == ST_BRANCH_TWO)
        printf("  branches:       two living branches: at LSN %s the way to the latest timeline (%u) leaves "
               "timeline %u, which went on (up to %s)  <- alarm: restore to latest refuses until "
               "--target-timeline names production's\n",
               r->branch_fork, (unsigned)r->branch_latest, (unsigned)r->branch_other, r->branch_newest);
    else if (r->branch_kind == ST_BRANCH_NOT_CHILD)
        printf("  branches:       the latest timeline (%u) forked off before the newest backup (on timeline %u) "
               "started  <- alarm: restore to latest fails; --target-timeline %u restores production's line "
               "(a drill's or an abandoned timeline's history file?)\n",
               (unsigned)r->branch_latest, (unsigned)r->branch_other, (unsigned)r->branch_other);
    else if (r->branch_kind == ST_BRANCH_HISTORY)
        printf("  branches:       the way to the latest timeline (%u) cannot be read: %s  <- alarm: restore to "
               "latest fails\n", (unsigned)r->branch_latest, cmd_line(r->branch_why));
}

static void print_text(const struct st_region *r, const struct st_primary *p)
{
    char a[32];

    printf("region %s%s: %s\n", r->name, r->async ? " (async)" : "",
           ST_ALARM(r) ? "ALARM" : "OK");
    if (!r->readable) {
        printf("  ERROR: %s\n", cmd_line(r->error));
        print_last_error(r);
        return;
    }
    if (r->has_backup) {
        fmt_time(r->backup_time, a);
        printf("  newest backup:  %s (stopped %s, %" PRId64 " s ago)%s\n", cmd_line(r->backup), a, r->backup_age,
               r->alarm_backup ? "  <- older than backup_max_age" : "");
    } else {
        printf("  newest backup:  none%s\n", r->alarm_backup ? "  <- alarm" : "");
    }
    if (r->backup_ahead > 0)
        printf("  clock:          backup %s is %" PRId64 " s ahead of this host's clock%s\n", r->backup,
               r->backup_ahead, r->alarm_clock ? "  <- alarm: a clock is wrong; retain_days deletes nothing" : "");
    if (r->wal_ahead > 0)
        printf("  clock:          WAL is stamped %" PRId64 " s ahead of this host's clock%s\n", r->wal_ahead,
               r->wal_ahead > RET_CLOCK_SKEW_MAX ? "  <- alarm: a clock is wrong; the lag's seconds cannot be judged"
                                                 : "");
    if (r->has_wal) {
        fmt_time(r->wal_time, a);
        printf("  newest WAL:     %s (archived %s)\n", r->wal, a);
    } else {
        printf("  newest WAL:     none\n");
    }
    if (r->lag_known)
        printf("  lag:            %" PRIu64 " segments, %" PRIu64 " bytes, %" PRIu64 " s%s\n", r->lag_segments,
               r->lag_bytes, r->lag_seconds, r->alarm_rpo ? "  <- past rpo_seconds" : "");
    else if (r->behind != NULL)
        printf("  lag:            %" PRIu64 " segments behind region %s (its newest WAL: %s), %" PRIu64
               " s (primary %s)%s\n", r->lag_segments, r->behind, r->behind_wal, r->lag_seconds,
               p->error[0] ? "unreachable" : "not configured", r->alarm_rpo ? "  <- past rpo_seconds" : "");
    else
        printf("  lag:            %" PRIu64 " s (spool only; primary %s)%s\n", r->lag_seconds,
               p->error[0] ? "unreachable" : "not configured", r->alarm_rpo ? "  <- past rpo_seconds" : "");
    printf("  spool:          %" PRIu64 " files, %" PRIu64 " bytes, oldest %" PRIu64 " s\n", r->spool_files,
           r->spool_bytes, r->spool_oldest_age);
    if (r->spool_conflicts)
        printf("  set aside:      %" PRIu64 " files the region could not take (see the spool's conflicts/)  <- alarm\n",
               r->spool_conflicts);
    print_branch(r);
    if (r->gap)
        printf("  gap:            %s is missing (%" PRIu64 " segment%s) between the newest backup's start and the "
               "newest WAL%s\n", r->gap_wal, r->gap_segments, r->gap_segments == 1 ? "" : "s",
               r->alarm_gap ? "  <- alarm: restore to latest from this region stops there"
                            : " (the spool still holds files for the region)");
    print_last_error(r);
    if (r->error[0])
        printf("  error:          %s\n", cmd_line(r->error));
}

/* ---- JSON ---- */

static json_t *branch_json(const struct st_region *r)
{
    static const char *const kinds[] = { "", "two_branches", "not_a_child", "history_unreadable" };

    if (!r->branch)
        return json_null();
    return json_pack("{s:s, s:I, s:I, s:s?, s:s?, s:o}", "kind", kinds[r->branch_kind], "latest_timeline",
                     (json_int_t)r->branch_latest, "other_timeline", (json_int_t)r->branch_other, "fork_lsn",
                     r->branch_kind == ST_BRANCH_TWO ? r->branch_fork : NULL, "other_newest_wal",
                     r->branch_kind == ST_BRANCH_TWO ? r->branch_newest : NULL, "why",
                     cmd_json_str(r->branch_kind == ST_BRANCH_HISTORY ? r->branch_why : NULL));
}

static json_t *lag_json(const struct st_region *r, uint64_t v)
{
    return r->readable ? json_integer((json_int_t)v) : json_null();
}

static json_t *region_json(const struct st_region *r, const struct config *c)
{
    char bt[32] = "", wt[32] = "";
    json_t *o;

    if (r->has_backup)
        fmt_time(r->backup_time, bt);
    if (r->has_wal)
        fmt_time(r->wal_time, wt);
    /* an unreadable region's lag is unknown: null, not 0 (adversarial pass V) */
    o = json_pack("{s:s, s:b, s:b, s:o, s:o, s:s?, s:o, s:s?, s:s?, s:o, s:b, s:o, s:o, s:o, s:I, s:I, s:I,"
                     " s:o, s:b, s:b, s:b, s:I, s:I}",
                     "region", r->name, "async", r->async, "readable", r->readable,
                     "error", cmd_json_str(r->error[0] ? r->error : NULL),
                     "backup", cmd_json_str(r->has_backup ? r->backup : NULL), "backup_time", r->has_backup ? bt : NULL,
                     "backup_age_seconds", r->has_backup ? json_integer(r->backup_age) : json_null(),
                     "wal", r->has_wal ? r->wal : NULL, "wal_time", r->has_wal ? wt : NULL,
                     "wal_time_unix", r->has_wal ? json_integer(r->wal_time) : json_null(),
                     "lag_known", r->lag_known, "lag_segments", lag_json(r, r->lag_segments),
                     "lag_bytes", lag_json(r, r->lag_bytes), "lag_seconds", lag_json(r, r->lag_seconds),
                     "spool_files", (json_int_t)r->spool_files, "spool_bytes", (json_int_t)r->spool_bytes,
                     "spool_oldest_age_seconds", (json_int_t)r->spool_oldest_age,
                     "last_error", cmd_json_str(r->last_error[0] ? r->last_error : NULL),
                     "alarm", ST_ALARM(r), "alarm_rpo", r->alarm_rpo,
                     "alarm_backup_age", r->alarm_backup, "rpo_seconds", (json_int_t)c->rpo_seconds,
                     "backup_max_age_seconds", (json_int_t)c->backup_max_age);
    if (o != NULL && r->async) {
        json_object_set_new(o, "last_error_code", cmd_json_str(r->last_error[0] ? r->last_error_code : NULL));
        json_object_set_new(o, "last_error_time_unix",
                            r->last_error[0] ? json_integer(r->last_error_time) : json_null());
        json_object_set_new(o, "last_shipped_unix", r->ship_success ? json_integer(r->ship_success) : json_null());
    }
    if (o != NULL) {
        json_object_set_new(o, "spool_conflicts", json_integer((json_int_t)r->spool_conflicts));
        json_object_set_new(o, "backup_ahead_seconds", r->has_backup ? json_integer(r->backup_ahead) : json_null());
        json_object_set_new(o, "wal_ahead_seconds", json_integer(r->wal_ahead));
        json_object_set_new(o, "alarm_clock", json_boolean(r->alarm_clock));
        json_object_set_new(o, "alarm_branch", json_boolean(r->alarm_branch));
        json_object_set_new(o, "gap", r->gap ? json_string(r->gap_wal) : json_null());
        json_object_set_new(o, "alarm_gap", json_boolean(r->alarm_gap));
        json_object_set_new(o, "branch", branch_json(r));
        json_object_set_new(o, "lag_behind_region", cmd_json_str(r->behind));
    }
    return o;
}

static int parse_args(struct cmd_ctx *ctx, enum fmt *fmt, const char **standby_dir, const char **pg_user)
{
    int k;

    *fmt = FMT_TEXT;
    for (k = 1; k < ctx->argc; k++) {
        if (strcmp(ctx->argv[k], "--json") == 0 && *fmt == FMT_TEXT)
            *fmt = FMT_JSON;
        else if (strcmp(ctx->argv[k], "--prometheus") == 0 && *fmt == FMT_TEXT)
            *fmt = FMT_PROM;
        else if (strcmp(ctx->argv[k], "--json") == 0 || strcmp(ctx->argv[k], "--prometheus") == 0)
            return cmd_usage("status", "--json and --prometheus exclude each other");
        else if (strcmp(ctx->argv[k], "--standby") == 0 || strcmp(ctx->argv[k], "--pg-user") == 0) {
            int rc = cmd_option_value(ctx, &k, strcmp(ctx->argv[k], "--standby") == 0 ? standby_dir : pg_user);

            if (rc != 0)
                return rc;
        } else if (ctx->argv[k][0] == '-')
            return cmd_usage("status", "unknown option \"%s\"", ctx->argv[k]);
        else
            return cmd_usage("status", "takes no arguments (\"%s\")", ctx->argv[k]);
    }
    return 0;
}

/* The cluster's spool, for the backlog and the shipper's state files; NULL
 * (a warning) when there is none to read. */
static struct spool *open_spool(struct cmd_ctx *ctx, const struct keyring *kr)
{
    const struct config *c = ctx->conf;
    struct cluster_info ci;
    struct spool *sp = NULL;
    struct err e = ERR_INIT;

    if (c->spool_dir == NULL || cmd_cluster(ctx, kr, CMD_CLUSTER_FROM_REGIONS, &ci, &e) < 0 ||
        spool_open_ro(c->spool_dir, ci.sysid, &sp, &e) < 0) {
        log_warning("spool backlog unknown: %s", e.msg);
        return NULL;
    }
    return sp;
}

/* One region's status into `o`; an unreadable region is an alarm and still
 * shows what is known locally (spool, the shipper's state file). */
static void region_status(struct cmd_ctx *ctx, const struct region_conf *rc, const struct keyring *kr,
                          const struct st_primary *prim, struct spool *sp, time_t now, struct st_region *o)
{
    struct repo *r = NULL;
    struct err re = ERR_INIT;

    if (cmd_repo_open(ctx, rc, kr, REPO_OPEN_IDENTITY, &r, &re) < 0) {
        memset(o, 0, sizeof *o);
        st_local(rc, sp, now, o);
        snprintf(o->error, sizeof o->error, "%s", re.msg);
        o->alarm_rpo = o->alarm_backup = 1;
    } else if (st_region(r, ctx->conf, rc, prim, sp, now, o, &re) < 0) {
        snprintf(o->error, sizeof o->error, "%s", re.msg);
        o->name = rc->name;
    }
    repo_free(r);
}

static json_t *archiver_json(const struct archiver_view *av)
{
    const struct pg_archiver *a = &av->a;

    if (!av->known)
        return json_null();
    return json_pack("{s:s?, s:I, s:s?, s:o, s:I, s:s?, s:o, s:b, s:b}", "not_archiving", av->off,
                     "archived_count", (json_int_t)a->archived,
                     "last_archived_wal", a->last_archived[0] ? a->last_archived : NULL, "last_archived_time_unix",
                     a->archived_at > 0 ? json_integer(a->archived_at) : json_null(), "failed_count",
                     (json_int_t)a->failed, "last_failed_wal", a->last_failed[0] ? a->last_failed : NULL,
                     "last_failed_time_unix", a->failed_at > 0 ? json_integer(a->failed_at) : json_null(),
                     "failing", a->failing, "alarm", ARCH_ALARM(av));
}

/* 0, or -1 when out of memory. */
static int print_json(const struct st_region *rs, size_t n, const struct st_primary *prim,
                      const struct archiver_view *av, const struct config *c, uint64_t orphaned,
                      const char *orphan_queues, const struct status_standby *sb)
{
    json_t *jr = json_array(), *top = NULL;
    char *text = NULL;
    size_t i;

    for (i = 0; jr != NULL && i < n; i++)
        json_array_append_new(jr, region_json(&rs[i], c));
    if (jr != NULL) {
        top = json_pack("{s:b, s:o, s:o}", "primary_known", prim->known, "primary_error",
                        cmd_json_str(prim->error[0] ? prim->error : NULL), "regions", jr);
        if (top != NULL && prim->known) {
            char l[24];

            wal_format_lsn(prim->lsn, l);
            json_object_set_new(top, "primary_lsn", json_string(l));
            json_object_set_new(top, "primary_timeline", json_integer(prim->tli));
        }
        if (top != NULL)
            json_object_set_new(top, "archiver", archiver_json(av));
        if (top != NULL) {
            json_object_set_new(top, "orphaned_spool_files", json_integer((json_int_t)orphaned));
            json_object_set_new(top, "orphaned_queues", cmd_json_str(orphan_queues));
        }
        if (top != NULL && sb != NULL)
            json_object_set_new(top, "standby", status_standby_json(sb));
        text = top ? json_dumps(top, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(top);
    }
    if (text == NULL) {
        log_error("out of memory");
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static void print_archiver(const struct archiver_view *av)
{
    const struct pg_archiver *a = &av->a;
    char t[32] = "never";

    if (!av->known)
        return;
    if (a->archived_at > 0)
        fmt_time(a->archived_at, t);
    if (av->off != NULL)
        printf("archiver: %s  <- alarm: PostgreSQL archives nothing\n", av->off);
    if (a->failing) {
        char f[32];

        fmt_time(a->failed_at, f);
        printf("archiver: FAILING: the last attempt failed, on %s at %s (%" PRIu64 " failures counted); last "
               "archived %s at %s  <- alarm: PostgreSQL keeps WAL in pg_wal until archive_command succeeds; its "
               "log has walship's message\n",
               a->last_failed, f, a->failed, a->last_archived[0] ? a->last_archived : "nothing", t);
    } else if (av->off == NULL) {
        printf("archiver: last archived %s at %s (%" PRIu64 " archived, %" PRIu64 " failed attempts counted)\n",
               a->last_archived[0] ? a->last_archived : "nothing", t, a->archived, a->failed);
    }
}

static void print_all_text(const struct config *c, const struct st_region *rs, size_t n,
                           const struct st_primary *prim, const struct archiver_view *av, uint64_t orphaned,
                           const char *orphan_queues)
{
    size_t i;

    if (PRIMARY_ALARM(c, prim, av))
        printf("primary: ERROR: %s  <- alarm: the lag behind the primary and PostgreSQL's archiver are unknown\n",
               cmd_line(prim->error));
    if (prim->known) {
        char l[24];

        wal_format_lsn(prim->lsn, l);
        printf("primary: LSN %s on timeline %u\n", l, (unsigned)prim->tli);
    }
    print_archiver(av);
    for (i = 0; i < n; i++)
        print_text(&rs[i], prim);
    if (orphaned > 0)
        printf("spool: ALARM: %llu files wait for regions that are not configured (%s)\n",
               (unsigned long long)orphaned, orphan_queues);
}

/* --prometheus without the key: no region can be looked at.  Each one
 * configured (or --region) is printed down and alarming, so that the rules
 * on walship_up page; before, nothing was printed, the textfile line
 * published an empty file and only absent() fired, after 30 minutes
 * (adversarial pass V). */
static void prom_no_key(const struct cmd_ctx *ctx, const struct err *why)
{
    const struct config *c = ctx->conf;
    struct st_region *rs = calloc((size_t)c->nregions, sizeof *rs);
    size_t n = 0;
    int k;

    if (rs == NULL)
        return;
    for (k = 0; k < c->nregions; k++) {
        if (ctx->region != NULL && strcmp(ctx->region, c->regions[k].name) != 0)
            continue;
        st_local(&c->regions[k], NULL, 0, &rs[n]);
        snprintf(rs[n].error, sizeof rs[n].error, "%s", why->msg);
        rs[n].alarm_rpo = rs[n].alarm_backup = 1;
        n++;
    }
    status_prom_regions(rs, n);
    fflush(stdout);
    free(rs);
}

/* The primary's alarms: it cannot be asked, or its archiver fails or
 * archives nothing (0 to 2). */
static int primary_alarms(const struct config *c, const struct st_primary *prim, const struct archiver_view *av)
{
    int alarm = PRIMARY_ALARM(c, prim, av);

    if (ARCH_ALARM(av)) {
        if (av->off != NULL)
            log_warning("the primary archives nothing: %s", av->off);
        else
            log_warning("PostgreSQL's archive_command is failing: the last attempt, on %s, failed", av->a.last_failed);
        alarm++;
    }
    return alarm;
}

int cmd_status_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    enum fmt fmt;
    struct st_primary prim;
    struct archiver_view av;
    struct st_region *rs = NULL;
    struct keyring *kr = NULL;
    struct spool *sp = NULL;
    struct status_standby *sb = NULL;
    const char *standby_dir = NULL, *pg_user = NULL;
    struct err e = ERR_INIT;
    time_t now = time(NULL);
    char orphan_queues[512] = "";
    uint64_t orphaned = 0;
    size_t n = 0;
    int k, alarm = 0, failed = 0;

    if ((k = parse_args(ctx, &fmt, &standby_dir, &pg_user)) != 0)
        return k;
    if (config_require_regions(c, &e) < 0)
        return cmd_fail(&e);
    if (ctx->region != NULL && config_region(c, ctx->region) == NULL) {
        err_setf(&e, ERR_CONFIG, "no region named \"%s\" is configured", ctx->region);
        return cmd_fail(&e);
    }
    if (cmd_load_keyring(ctx, &kr, &e) < 0) {
        if (fmt == FMT_PROM)
            prom_no_key(ctx, &e);
        cmd_fail(&e);
        return EXIT_FAILURE3;
    }
    sp = open_spool(ctx, kr);
    primary_get(c, &prim, &av);
    if ((rs = calloc((size_t)c->nregions, sizeof *rs)) == NULL) {
        spool_free(sp);
        keys_free(kr);
        err_setf(&e, ERR_NOMEM, "out of memory");
        cmd_fail(&e);
        return EXIT_FAILURE3;
    }
    for (k = 0; k < c->nregions; k++) {
        const struct region_conf *rc = &c->regions[k];

        if (ctx->region != NULL && strcmp(ctx->region, rc->name) != 0)
            continue;
        region_status(ctx, rc, kr, &prim, sp, now, &rs[n]);
        if (!rs[n].readable) {
            log_error("region %s: %s", rc->name, rs[n].error);
            failed++;
        }
        n++;
    }
    st_compare_regions(c, rs, n, now);
    for (k = 0; k < (int)n; k++)
        if (ST_ALARM(&rs[k]))
            alarm++;
    if (standby_dir != NULL) {
        if ((sb = status_standby_take(ctx, kr, standby_dir, pg_user, now)) == NULL)
            failed++;
        else
            alarm += status_standby_alarm(sb);
    }
    alarm += primary_alarms(c, &prim, &av);
    if (sp != NULL && (orphaned = ship_orphans(c, sp, orphan_queues, sizeof orphan_queues)) > 0) {
        log_warning("%llu spooled files wait in queues of regions that are not configured (%s): they are never "
                    "shipped anywhere else; see %s/queue", (unsigned long long)orphaned, orphan_queues,
                    spool_dir(sp));
        alarm++;
    }
    if (fmt == FMT_JSON) {
        if (print_json(rs, n, &prim, &av, c, orphaned, orphan_queues, sb) < 0)
            failed++;
    } else if (fmt == FMT_PROM) {
        status_prom_regions(rs, n);
        status_prom_primary(c, &prim, &av);
        printf("# HELP walship_spool_orphaned_files Spooled files whose region is not configured (never shipped)\n"
               "# TYPE walship_spool_orphaned_files gauge\nwalship_spool_orphaned_files %llu\n",
               (unsigned long long)orphaned);
        if (sb != NULL)
            status_standby_prom(sb);
    } else {
        print_all_text(c, rs, n, &prim, &av, orphaned, orphan_queues);
        if (sb != NULL)
            status_standby_text(sb);
    }
    fflush(stdout);
    status_standby_free(sb);
    free(rs);
    spool_free(sp);
    keys_free(kr);
    /* an unreadable region is an alarm for monitoring; nothing readable at all means status could not run */
    if (failed && (size_t)failed == n && standby_dir == NULL)
        return EXIT_FAILURE3;
    return alarm ? EXIT_USAGE : 0;
}
