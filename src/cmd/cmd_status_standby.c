/*
 * cmd_status_standby — the standby section of `walship status --standby
 * DIR` (cmd_standby.h): is the standby running and in recovery, where its
 * replay is, how far behind the region's archive (segments and seconds),
 * and what wal-fetch last answered there (restore/standby.h), so a stall
 * shows with its cause.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cmd.h"
#include "cmd_standby.h"
#include "manifest.h"
#include "pginst.h"
#include "repo.h"
#include "retention.h"
#include "standby.h"
#include "utf8.h"

struct status_standby {
    char pgdata[PATH_MAX];
    char region[64];
    uint64_t rpo_seconds;
    int running;                /* a live postmaster */
    int known;                  /* logged in and asked */
    char error[ERR_MSG_MAX];    /* why it is not known */
    struct pg_replay rp;
    int have_state;
    char state_error[ERR_MSG_MAX];  /* the state file exists but cannot be read: unknown, not "fine" */
    struct sby_state st;
    int failing;                /* wal-fetch's last answer was a failure */
    int lag_known;
    struct sby_lag lag;
    char lag_error[ERR_MSG_MAX];
    int branch;                 /* the region holds a second branch (sby_branch) */
    struct sby_branch br;
};

static void take_lag(struct cmd_ctx *ctx, const struct keyring *kr, const struct cluster_info *ci,
                     struct status_standby *s, time_t now)
{
    const struct config *c = ctx->conf;
    const struct region_conf *rc = ctx->region ? config_region(c, ctx->region) : c->nregions ? &c->regions[0] : NULL;
    struct repo *r = NULL;
    struct err e = ERR_INIT;
    uint64_t lsn = 0;

    if (rc == NULL) {
        snprintf(s->lag_error, sizeof s->lag_error, "no region configured");
        return;
    }
    snprintf(s->region, sizeof s->region, "%s", rc->name);
    if (!s->known || wal_parse_lsn(s->rp.lsn, &lsn, &e) < 0) {
        snprintf(s->lag_error, sizeof s->lag_error, "the standby's replay position is unknown");
        return;
    }
    if (cmd_repo_open(ctx, rc, kr, REPO_OPEN_IDENTITY, &r, &e) == 0) {
        if (ci->sysid != 0 && r->have_id && r->id.sysid != ci->sysid)
            err_setf(&e, ERR_FOREIGN, "region %s holds the archive of cluster %llu, the standby is cluster %llu",
                     rc->name, (unsigned long long)r->id.sysid, (unsigned long long)ci->sysid);
        else if (sby_lag(r, lsn, ci->seg_size ? ci->seg_size : (16u << 20), now, &s->lag, &e) == 0)
            s->lag_known = 1;
        /* a drill's timeline that took the standby along: replay moves,
         * no lag, and promote would leave production's WAL behind */
        if (s->lag_known)
            s->branch = sby_branch(r, s->pgdata, ci->seg_size ? ci->seg_size : (16u << 20), &s->br,
                                   &(struct err)ERR_INIT) == 1;
    }
    if (!s->lag_known)
        snprintf(s->lag_error, sizeof s->lag_error, "%s", e.msg);
    repo_free(r);
}

struct status_standby *status_standby_take(struct cmd_ctx *ctx, const struct keyring *kr, const char *pgdata,
                                           const char *pg_user, time_t now)
{
    struct status_standby *s = calloc(1, sizeof *s);
    struct cluster_info ci;
    struct pg_pidfile pf;
    struct err e = ERR_INIT;
    PGconn *c = NULL;

    if (s == NULL)
        return NULL;
    if (realpath(pgdata, s->pgdata) == NULL)
        snprintf(s->pgdata, sizeof s->pgdata, "%s", pgdata);
    s->rpo_seconds = ctx->conf->rpo_seconds;
    memset(&ci, 0, sizeof ci);
    if (cluster_read_datadir(s->pgdata, &ci, &e) < 0)
        err_clear(&e);          /* not readable by this user: the segment size defaults */
    pginst_read_pidfile(s->pgdata, &pf);
    s->running = pf.alive;
    if (!s->running)
        snprintf(s->error, sizeof s->error, "not running (no live postmaster.pid in %.900s)", s->pgdata);
    else if (pginst_open(s->pgdata, pg_user, "walship status", &c, &e) < 0 || pginst_replay(c, 10000, &s->rp, &e) < 0)
        snprintf(s->error, sizeof s->error, "%s", e.msg);
    else
        s->known = 1;
    if (c != NULL)
        PQfinish(c);
    err_clear(&e);
    if (sby_state_read(s->pgdata, &s->st, &e) == 0) {
        s->have_state = 1;
        s->failing = sby_state_failing(&s->st);
    } else if (e.code != ERR_NOTFOUND) {
        snprintf(s->state_error, sizeof s->state_error, "%s", e.msg);
    }
    take_lag(ctx, kr, &ci, s, now);
    return s;
}

int status_standby_alarm(const struct status_standby *s)
{
    /* paused replay is a stall: by an operator (pg_wal_replay_pause()), or
     * by PostgreSQL itself when the primary raised a setting above the
     * standby's (max_connections...), which resuming or promoting then
     * answers by shutting the standby down */
    return !s->known || !s->rp.in_recovery || s->rp.paused || s->failing || s->state_error[0] != '\0' ||
           !s->lag_known || s->lag.have_gap || s->branch || s->lag.ahead > RET_CLOCK_SKEW_MAX ||
           (s->rpo_seconds > 0 && s->lag.seconds > s->rpo_seconds);
}

static const char *fmt_t(int64_t t, char out[32])
{
    man_format_time(t, out);
    return out;
}

void status_standby_text(const struct status_standby *s)
{
    char a[32];

    printf("standby %s: %s\n", s->pgdata, status_standby_alarm(s) ? "ALARM" : "OK");
    if (!s->known)
        printf("  ERROR: %s\n", s->error);
    else if (!s->rp.in_recovery)
        printf("  replay:         not in recovery: promoted, not a standby any more\n");
    else
        printf("  replay:         in recovery%s, replayed up to LSN %s%s%s%s\n", s->rp.paused ? " (PAUSED)" : "",
               s->rp.lsn[0] ? s->rp.lsn : "?", s->rp.xact_time[0] ? ", last transaction at " : "", s->rp.xact_time,
               s->rp.paused ? "  <- stalled: replay is paused (pg_wal_replay_pause(), or by PostgreSQL when the "
                              "primary's max_connections or a like setting exceeds this standby's: see its log)"
                            : "");
    if (s->lag_known)
        printf("  behind region %s: %" PRIu64 " segments, %" PRIu64 " s (newest archived %s)%s\n", s->region,
               s->lag.segments, s->lag.seconds, s->lag.have_wal ? s->lag.newest : "none",
               s->rpo_seconds > 0 && s->lag.seconds > s->rpo_seconds ? "  <- past rpo_seconds" : "");
    else
        printf("  behind region %s: unknown (%s)\n", s->region[0] ? s->region : "?", s->lag_error);
    if (s->lag_known && s->lag.ahead > 0)
        printf("  clock:          the oldest segment waiting is stamped %" PRId64 " s ahead of this host's clock%s\n",
               s->lag.ahead, s->lag.ahead > RET_CLOCK_SKEW_MAX
                                 ? "  <- alarm: a clock is wrong; the lag's seconds cannot be judged" : "");
    if (s->lag_known && s->lag.have_gap)
        printf("  gap in region %s: %s is missing while later WAL is there  <- the standby waits at it, and a "
               "promotion would end recovery there\n", s->region, s->lag.gap);
    if (s->branch)
        printf("  branch:         the standby follows timeline %u, which goes on as timeline %u at LSN %s, but "
               "timeline %u went on past that point too (up to %s)  <- promote refuses: a promotion would leave "
               "that WAL behind\n", (unsigned)s->br.tli, (unsigned)s->br.child, s->br.fork, (unsigned)s->br.parent,
               s->br.parent_newest);
    if (s->state_error[0] != '\0') {
        printf("  wal-fetch:      unknown: %s  <- cannot tell whether fetches fail\n", s->state_error);
        return;
    }
    if (!s->have_state) {
        printf("  wal-fetch:      no answer noted yet\n");
        return;
    }
    if (s->st.fetched_time)
        printf("  last fetched:   %s at %s\n", s->st.fetched, fmt_t(s->st.fetched_time, a));
    if (s->st.missing_time && s->st.missing_time >= s->st.fetched_time)
        printf("  waiting for:    %s (not archived yet, asked at %s)\n", s->st.missing, fmt_t(s->st.missing_time, a));
    if (s->st.error_time)
        printf("  %s %s at %s: %s%s\n", s->failing ? "fetch failing:" : "last error:   ", s->st.error_name,
               fmt_t(s->st.error_time, a), s->st.error,
               s->failing ? "  <- stalled: the standby waits and retries, it does not promote" : "");
}

json_t *status_standby_json(const struct status_standby *s)
{
    json_t *o = json_pack("{s:o, s:b, s:b, s:o, s:b, s:s?, s:s?, s:s?, s:b, s:b}", "pgdata", cmd_json_str(s->pgdata),
                          "running", s->running, "known", s->known, "error", cmd_json_str(s->known ? NULL : s->error),
                          "in_recovery",
                          s->known && s->rp.in_recovery, "replay_lsn", s->rp.lsn[0] ? s->rp.lsn : NULL,
                          "last_replay_xact_time", s->rp.xact_time[0] ? s->rp.xact_time : NULL, "region",
                          s->region[0] ? s->region : NULL, "lag_known", s->lag_known, "alarm",
                          status_standby_alarm(s));

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "replay_paused", json_boolean(s->known && s->rp.in_recovery && s->rp.paused));
    json_object_set_new(o, "replay_lag_segments", s->lag_known ? json_integer((json_int_t)s->lag.segments)
                                                                : json_null());
    json_object_set_new(o, "replay_lag_seconds", s->lag_known ? json_integer((json_int_t)s->lag.seconds)
                                                               : json_null());
    json_object_set_new(o, "replay_lag_ahead_seconds", s->lag_known ? json_integer(s->lag.ahead) : json_null());
    json_object_set_new(o, "lag_error", cmd_json_str(s->lag_known ? NULL : s->lag_error));
    json_object_set_new(o, "newest_wal", s->lag.have_wal ? json_string(s->lag.newest) : json_null());
    json_object_set_new(o, "gap", s->lag_known && s->lag.have_gap ? json_string(s->lag.gap) : json_null());
    json_object_set_new(o, "branch", s->branch ? json_pack("{s:i, s:i, s:s, s:s}", "timeline", (json_int_t)s->br.tli,
                                                           "went_on", (json_int_t)s->br.parent, "fork_lsn",
                                                           s->br.fork, "went_on_to", s->br.parent_newest)
                                               : json_null());
    json_object_set_new(o, "fetch_failing", s->state_error[0] ? json_null() : json_boolean(s->failing));
    json_object_set_new(o, "state_error", cmd_json_str(s->state_error[0] ? s->state_error : NULL));
    json_object_set_new(o, "last_fetched", s->st.fetched_time ? json_string(s->st.fetched) : json_null());
    json_object_set_new(o, "last_fetched_unix", s->st.fetched_time ? json_integer(s->st.fetched_time) : json_null());
    json_object_set_new(o, "waiting_for", s->st.missing_time ? json_string(s->st.missing) : json_null());
    json_object_set_new(o, "last_error", cmd_json_str(s->st.error_time ? s->st.error : NULL));
    json_object_set_new(o, "last_error_file", cmd_json_str(s->st.error_time ? s->st.error_name : NULL));
    json_object_set_new(o, "last_error_unix", s->st.error_time ? json_integer(s->st.error_time) : json_null());
    return o;
}

static void prom_label(const char *in, char *out, size_t len)
{
    size_t j = 0;

    for (; *in && j + 3 < len; in++) {
        size_t n = utf8_seq_len(in);

        if (*in == '\\' || *in == '"' || *in == '\n') {
            out[j++] = '\\';
            out[j++] = *in == '\n' ? 'n' : *in;
        } else if (n == 0) {
            out[j++] = '?';     /* the text format is UTF-8 */
        } else if (j + n + 1 < len) {
            memcpy(out + j, in, n);
            j += n;
            in += n - 1;
        } else {
            break;
        }
    }
    out[j] = '\0';
}

void status_standby_prom(const struct status_standby *s)
{
    static const struct {
        const char *name, *help;
    } m[] = {
        { "walship_standby_up", "1 when the standby runs and is in recovery" },
        { "walship_standby_replay_lag_segments", "WAL segments the region holds beyond the standby's replay" },
        { "walship_standby_replay_lag_seconds", "how long the oldest archived segment not replayed has waited" },
        { "walship_standby_last_replay_timestamp_seconds", "commit time of the last transaction replayed" },
        { "walship_standby_fetch_failing", "1 when wal-fetch's last answer on the standby was a failure; absent when its state cannot be read" },
        { "walship_standby_alarm", "1 when the standby is down, promoted, paused, failing to fetch, facing a gap or a second branch in the region, or lagging" },
    };
    char dir[PATH_MAX * 2], reg[160];
    size_t k;

    prom_label(s->pgdata, dir, sizeof dir);
    prom_label(s->region, reg, sizeof reg);
    for (k = 0; k < sizeof m / sizeof m[0]; k++) {
        double v = 0;
        int have = 1;

        switch (k) {
        case 0: v = s->known && s->rp.in_recovery; break;
        case 1: v = (double)s->lag.segments; have = s->lag_known; break;
        case 2: v = (double)s->lag.seconds; have = s->lag_known; break;
        case 3: v = (double)s->rp.xact_unix; have = s->rp.xact_unix != 0; break;
        case 4: v = s->failing; have = s->state_error[0] == '\0'; break;
        default: v = status_standby_alarm(s); break;
        }
        printf("# HELP %s %s\n# TYPE %s gauge\n", m[k].name, m[k].help, m[k].name);
        if (have)
            printf("%s{pgdata=\"%s\",region=\"%s\"} %.17g\n", m[k].name, dir, reg, v);
    }
}

void status_standby_free(struct status_standby *s)
{
    free(s);
}
