/*
 * cmd_promote — `walship promote DIR`: end a warm standby made by `restore
 * --standby` (docs/RESTORE.md "A warm standby").
 *
 *   running standby made by walship? → wal-fetch not failing (else
 *   --force) → promotion marked (restore/standby.h) → pg_promote() → wait
 *   until writable (measured) → CHECKPOINT → restore's settings removed
 *   from postgresql.auto.conf, as restore --start does
 *
 * PostgreSQL, asked to promote a standby, first replays whatever the archive
 * still holds (it stops at the first file restore_command cannot give), so
 * promotion ends at the end of the region's archive.  A standby whose
 * fetches fail would end there instead, short of what the region may hold:
 * that is refused unless --force (the region is gone for good), and a
 * failure noted while the promotion ran is reported (exit 3, the instance
 * promoted all the same).  No configuration is needed: everything comes
 * from DIR (its postmaster.pid, walship-standby.state).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "cmd.h"
#include "cmd_restore_conf.h"
#include "log.h"
#include "pginst.h"
#include "pitr.h"
#include "standby.h"
#include "util.h"
#include "wal.h"

#define PROMOTE_POLL_US 10000

struct promote_opts {
    const char *pgdata, *pg_user;
    int force, keep_restore_command, timeout_s;
};

static int parse_args(struct cmd_ctx *ctx, struct promote_opts *o)
{
    static const struct option opts[] = {
        { "pg-user", required_argument, NULL, 'U' },
        { "force", no_argument, NULL, 'f' },
        { "keep-restore-command", no_argument, NULL, 'K' },
        { "timeout", required_argument, NULL, 'W' },
        { NULL, 0, NULL, 0 },
    };
    struct err e = ERR_INIT;
    const char *why;
    int c, li = 0;

    memset(o, 0, sizeof *o);
    o->timeout_s = 600;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(ctx->argc, ctx->argv, "", opts, &li)) != -1) {
        if (c != '?' && c != ':' && (why = cmd_option_misused(ctx->argv, optind, opts, li)) != NULL)
            return cmd_usage("promote", "%s", why);
        switch (c) {
        case 'U': o->pg_user = optarg; break;
        case 'f': o->force = 1; break;
        case 'K': o->keep_restore_command = 1; break;
        case 'W':
            if (parse_int(optarg, 1, 7 * 86400, &o->timeout_s, &e) < 0)
                return cmd_usage("promote", "--timeout takes seconds (1 to 604800)");
            break;
        default:
            return cmd_usage("promote", "unknown or incomplete option \"%s\"", ctx->argv[optind - 1]);
        }
    }
    if (optind + 1 != ctx->argc)
        return cmd_usage("promote", "give the standby's data directory, once");
    o->pgdata = ctx->argv[optind];
    return 0;
}

/* Wait until the session's server is out of recovery; -1 on timeout or a
 * lost session. */
static int wait_writable(PGconn *c, int timeout_s, struct err *e)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000;
    char v[8];

    for (;;) {
        pginst_query_one(c, "select pg_is_in_recovery()", NULL, v, sizeof v);
        if (strcmp(v, "f") == 0)
            break;
        if (strcmp(v, "t") != 0)
            return err_setf(e, ERR_IO, "lost the session while waiting for the promotion: %s", PQerrorMessage(c));
        if (now_ms() > deadline)
            return err_setf(e, ERR_IO, "still in recovery %d s after the promotion request (--timeout): it may be "
                                       "replaying the rest of the archive; it promotes once that is done",
                            timeout_s);
        usleep(PROMOTE_POLL_US);
    }
    /* out of recovery; an xid is the proof that it writes */
    pginst_query_one(c, "select txid_current()", NULL, v, sizeof v);
    if (v[0] == '\0')
        return err_setf(e, ERR_IO, "out of recovery but cannot write: %s", PQerrorMessage(c));
    return 0;
}

/* Was `pgdata` made a standby by `walship restore --standby`: its
 * settings block in postgresql.auto.conf (ALTER SYSTEM drops comments),
 * or the state file its wal-fetch keeps.  Not an ordinary streaming
 * replica, and not a primary `promote` was pointed at by mistake. */
static int made_by_walship(const char *pgdata)
{
    char path[PATH_MAX];
    unsigned char *text = NULL;
    size_t len;
    struct err e = ERR_INIT;
    int found;

    if (snprintf(path, sizeof path, "%s/%s", pgdata, SBY_STATE_FILE) < (int)sizeof path && access(path, F_OK) == 0)
        return 1;
    if (snprintf(path, sizeof path, "%s/postgresql.auto.conf", pgdata) >= (int)sizeof path ||
        read_file_all(path, 1 << 20, &text, &len, &e) < 0)
        return 0;
    found = strstr((char *)text, PITR_CONF_MARK) != NULL;
    free(text);
    return found;
}

/* In recovery and a standby: 0.  Else -1 (e), or 1 when already promoted. */
static int check_standby(PGconn *c, const char *pgdata, const struct promote_opts *o, struct err *e)
{
    struct pg_replay rp;
    struct sby_state st;
    struct err se = ERR_INIT;
    char sig[PATH_MAX];

    if (pginst_replay(c, 30000, &rp, e) < 0)
        return -1;
    if (!rp.in_recovery)
        return 1;
    if (snprintf(sig, sizeof sig, "%s/standby.signal", pgdata) >= (int)sizeof sig || access(sig, F_OK) != 0)
        return err_setf(e, ERR_USAGE,
                        "\"%s\" is in archive recovery toward a target, not a standby: restore --start promotes it "
                        "once it checked the target (a restore --start that was interrupted does not: check where "
                        "recovery stopped, then select pg_wal_replay_resume(); docs/RESTORE.md)", pgdata);
    if (!made_by_walship(pgdata))
        return err_setf(e, ERR_USAGE,
                        "\"%s\" is a standby, but not one walship restore --standby made (no walship settings in "
                        "its postgresql.auto.conf, no %s): promote it with pg_ctl promote", pgdata, SBY_STATE_FILE);
    if (rp.paused) {
        /* PostgreSQL pauses a standby itself when the primary raised
         * max_connections (or a like setting) above the standby's; asked to
         * promote then, PostgreSQL 15 shuts the standby down instead */
        if (!o->force)
            return err_setf(e, ERR_IO,
                            "replay on \"%s\" is paused at LSN %s: by pg_wal_replay_pause(), or by PostgreSQL when "
                            "the primary's max_connections or a like setting exceeds this standby's (its log says "
                            "which), and then a promotion shuts the standby down; resume it (select "
                            "pg_wal_replay_resume()) or raise the setting and restart it, then promote, or promote "
                            "anyway with --force",
                            pgdata, rp.lsn[0] ? rp.lsn : "?");
        log_warning("promoting although replay is paused (--force)");
    }
    if (sby_state_read(pgdata, &st, &se) < 0 && se.code != ERR_NOTFOUND) {
        /* unknown is not "not failing" */
        if (!o->force)
            return err_setf(e, ERR_IO, "cannot tell whether wal-fetch on this standby is failing (%s): promote "
                                       "with --force if the region is known to be complete", se.msg);
        log_warning("promoting without knowing whether wal-fetch is failing (--force): %s", se.msg);
    } else if (se.code == ERR_OK && sby_state_failing(&st)) {
        char t[32];
        struct tm tm;
        time_t tt = (time_t)st.error_time;

        gmtime_r(&tt, &tm);
        strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S UTC", &tm);
        if (!o->force)
            return err_setf(e, ERR_IO,
                            "wal-fetch on this standby is failing (%s, at %s: %s): promoting now would end recovery "
                            "at LSN %s, before WAL the region may hold; fix the region, or promote anyway with "
                            "--force",
                            st.error_name, t, st.error, rp.lsn[0] ? rp.lsn : "?");
        log_warning("promoting although wal-fetch is failing (--force): %s: %s", st.error_name, st.error);
    }
    return 0;
}

/* With --region R: refuse when R holds two living branches, the standby on
 * one and WAL written past the fork on the other (after the backup the
 * standby was made from began): what restore refuses without
 * --target-timeline.  A standby follows the latest timeline, so a drill
 * restored with --keep-archive that promoted while the standby waited for
 * production's next segment takes it along; promoted, it held the drill's
 * rows and not production's last ones, exit 0 (an adversarial pass).  The
 * old primary's segments after a failover look the same until the standby
 * was made from a backup that starts past them: --force then. */
static int check_branch(const struct region_conf *rc, struct repo *r, const char *pgdata, uint64_t seg_size,
                        const struct promote_opts *o, struct err *e)
{
    struct sby_branch b;
    struct err we = ERR_INIT;
    int found = sby_branch(r, pgdata, seg_size, &b, &we);

    if (found < 0) {
        log_warning("could not check region %s for a second branch before promoting: %s", rc->name, we.msg);
        return 0;
    }
    if (found == 0)
        return 0;
    if (o->force) {
        log_warning("promoting although timeline %u went on past LSN %s (up to %s) in region %s (--force): that "
                    "WAL is left behind", (unsigned)b.parent, b.fork, b.parent_newest, rc->name);
        return 0;
    }
    return err_setf(e, ERR_IO,
                    "region %s holds two branches: the standby follows timeline %u, which goes on as timeline %u "
                    "at LSN %s, but timeline %u went on past that point too (up to %s), and promoting would leave "
                    "that WAL behind.  Was a drill restored with --keep-archive, or did an old primary keep "
                    "archiving after a failover?  If timeline %u is production, promote with --force; if "
                    "timeline %u is, make a new standby with restore --standby --target-timeline %u",
                    rc->name, (unsigned)b.tli, (unsigned)b.child, b.fork, (unsigned)b.parent, b.parent_newest,
                    (unsigned)b.tli, (unsigned)b.parent, (unsigned)b.parent);
}

/* With --region R (and --from or --config): refuse when R holds a
 * hole past the standby's replay position, where the promotion would end
 * recovery.  A region that cannot be read is only a warning: the fetches
 * during the promotion then fail, and the promotion mark stops it. */
static int check_gap(struct cmd_ctx *ctx, PGconn *c, const char *pgdata, const struct promote_opts *o,
                     struct err *e)
{
    const struct config *conf = ctx->conf;
    const struct region_conf *rc = config_region(conf, ctx->region);
    struct keyring *kr = NULL;
    struct repo *r = NULL;
    struct cluster_info ci;
    struct pg_replay rp;
    struct sby_lag lag;
    struct err we = ERR_INIT;
    uint64_t lsn;
    int rc_ = 0;

    if (rc == NULL)     /* a misspelt --region must not skip the check quietly */
        return err_setf(e, ERR_USAGE, "no region named \"%s\" is configured: nothing to check for a gap",
                        ctx->region);
    if (cluster_read_datadir(pgdata, &ci, &we) < 0 || pginst_replay(c, 30000, &rp, &we) < 0 ||
        wal_parse_lsn(rp.lsn, &lsn, &we) < 0 || cmd_load_keyring(ctx, &kr, &we) < 0 ||
        cmd_repo_open(ctx, rc, kr, REPO_OPEN_IDENTITY, &r, &we) < 0 ||
        sby_lag(r, lsn, ci.seg_size ? ci.seg_size : (16u << 20), time(NULL), &lag, &we) < 0) {
        log_warning("could not check region %s for a gap before promoting: %s", rc->name, we.msg);
    } else if (lag.have_gap && !o->force) {
        rc_ = err_setf(e, ERR_IO,
                       "region %s lacks %s while it holds later WAL (up to %s): promoting now would end recovery "
                       "at %s, before that WAL; put the segment back (walship copy from another region) or promote "
                       "anyway with --force",
                       rc->name, lag.gap, lag.newest, lag.gap);
    } else {
        if (lag.have_gap)
            log_warning("promoting although region %s lacks %s (--force): recovery ends there", rc->name, lag.gap);
        rc_ = check_branch(rc, r, pgdata, ci.seg_size ? ci.seg_size : (16u << 20), o, e);
    }
    repo_free(r);
    keys_free(kr);
    return rc_;
}

/* Forget the standby state: this is no standby any more. */
static void drop_state(const char *pgdata)
{
    char state[PATH_MAX];

    if (snprintf(state, sizeof state, "%s/%s", pgdata, SBY_STATE_FILE) < (int)sizeof state)
        unlink(state);
}

/* Not in recovery (check_standby said 1): clean up after a promotion done
 * another way (pg_ctl promote), only on an instance walship made. */
static int already_promoted(const char *pgdata, const struct promote_opts *o)
{
    sby_promoting_end(pgdata);
    if (!made_by_walship(pgdata)) {
        printf("%s is not in recovery: already promoted, or a primary; it holds no walship standby settings: "
               "nothing to do\n", pgdata);
        return 0;
    }
    printf("%s is not in recovery: already promoted\n", pgdata);
    restore_conf_after_promote(pgdata, o->keep_restore_command);
    drop_state(pgdata);
    return 0;
}

/* Mark the promotion, ask for it, wait until writable: 0, or -1 (e) with
 * the session closed. */
static int promote_and_wait(PGconn *c, const char *pgdata, const struct promote_opts *o, int64_t failures,
                            struct err *e)
{
    struct sby_state st;
    char ok[8];
    int gone;

    /* until it is writable, a failing wal-fetch stops PostgreSQL instead
     * of ending recovery short (restore/standby.h); --force: end it there */
    if (o->force) {
        sby_promoting_end(pgdata);
    } else {
        if (sby_promoting_begin(pgdata, e) < 0) {
            err_prefix(e, "could not mark the promotion (needed so that a failing fetch cannot end recovery "
                          "early; --force promotes without it)");
            return -1;
        }
        /* a failure noted since check_standby looked: wal-fetch notes it
         * before it looks for the mark, so one of the two sees the other */
        if (sby_state_read(pgdata, &st, &(struct err)ERR_INIT) == 0 && sby_state_failing(&st)) {
            sby_promoting_end(pgdata);
            return err_setf(e, ERR_IO, "wal-fetch on this standby started failing just now (%s: %s): not "
                                       "promoting; fix the region, or promote anyway with --force",
                            st.error_name, st.error);
        }
    }
    pginst_query_one(c, "select pg_promote(false)", NULL, ok, sizeof ok);
    if (strcmp(ok, "t") != 0) {
        err_setf(e, ERR_IO, "pg_promote() failed: %s", PQerrorMessage(c));
        sby_promoting_end(pgdata);
        return -1;
    }
    if (wait_writable(c, o->timeout_s, e) == 0) {
        sby_promoting_end(pgdata);
        return 0;
    }
    /* the server gone: no promotion runs any more, and its next start is
     * a standby's; one still replaying keeps its mark (it names that server) */
    gone = PQstatus(c) != CONNECTION_OK || strncmp(e->msg, "lost the session", 16) == 0;
    if (sby_state_read(pgdata, &st, &(struct err)ERR_INIT) == 0 && st.failures > failures)
        err_setf(e, ERR_IO,
                 "wal-fetch failed while the standby promoted (%s: %s): PostgreSQL stopped rather than end "
                 "recovery before WAL the region may hold; the instance is still a standby: start it again, "
                 "fix the region, and promote again (or with --force to end recovery where it can)",
                 st.error_name, st.error);
    if (gone)
        sby_promoting_end(pgdata);
    return -1;
}

int cmd_promote_run(struct cmd_ctx *ctx)
{
    struct promote_opts o;
    struct sby_state st;
    struct err e = ERR_INIT;
    PGconn *c = NULL;
    char pgdata[PATH_MAX], tli[16] = "", lsn[32] = "", archive_mode[16] = "";
    uint64_t t0, t_writable, t_cp;
    int64_t failures;
    int rc, cp_ok;

    if ((rc = parse_args(ctx, &o)) != 0)
        return rc;
    if (realpath(o.pgdata, pgdata) == NULL) {
        err_errno(&e, ERR_USAGE, errno, "bad data directory \"%s\"", o.pgdata);
        return cmd_fail(&e);
    }
    if (pginst_open(pgdata, o.pg_user, "walship promote", &c, &e) < 0) {
        if (e.code == ERR_NOTFOUND)
            e.code = ERR_IO;    /* nothing runs there: start it first */
        return cmd_fail(&e);
    }
    rc = check_standby(c, pgdata, &o, &e);
    if (rc != 0) {
        PQfinish(c);
        return rc < 0 ? cmd_fail(&e) : already_promoted(pgdata, &o);
    }
    if (ctx->region != NULL && ctx->conf != NULL && ctx->conf->nregions > 0 &&
        check_gap(ctx, c, pgdata, &o, &e) < 0) {
        PQfinish(c);
        return cmd_fail(&e);
    }
    /* failures noted from here on happened while it promoted (a count, not
     * a time: the clock may be stepped meanwhile) */
    failures = sby_state_read(pgdata, &st, &(struct err)ERR_INIT) == 0 ? st.failures : 0;
    t0 = now_ms();
    if (promote_and_wait(c, pgdata, &o, failures, &e) < 0) {
        PQfinish(c);
        return cmd_fail(&e);
    }
    t_writable = now_ms() - t0;
    pginst_query_one(c, "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int", NULL,
                     tli, sizeof tli);
    pginst_query_one(c, "select pg_last_wal_replay_lsn()", NULL, lsn, sizeof lsn);
    pginst_query_one(c, "show archive_mode", NULL, archive_mode, sizeof archive_mode);
    /* as restore does: pg_control names the new timeline now, not after a
     * spread checkpoint, so a crash does not replay everything again */
    t_cp = now_ms();
    {
        PGresult *r = PQexec(c, "checkpoint");

        cp_ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    t_cp = now_ms() - t_cp;
    PQfinish(c);
    printf("promoted %s to timeline %s: writable %.3f s after the promotion request\n", pgdata, tli[0] ? tli : "?",
           (double)t_writable / 1000.0);
    printf("  recovery ended at LSN %s (the end of the archive the standby could read)\n", lsn[0] ? lsn : "?");
    if (cp_ok)
        printf("  checkpoint %.3f s\n", (double)t_cp / 1000.0);
    else
        log_warning("the CHECKPOINT after promotion failed: pg_control names the new timeline only after "
                    "PostgreSQL's own checkpoint");
    if (strcmp(archive_mode, "off") == 0)
        log_warning("the promoted instance has archive_mode = off (restore --standby without --keep-archive): it "
                    "archives nothing; point walship at this region's new primary and set archive_mode = on (a "
                    "restart) before it takes writes you cannot lose");
    restore_conf_after_promote(pgdata, o.keep_restore_command);
    rc = 0;
    if (sby_state_read(pgdata, &st, &e) == 0 && st.failures > failures) {
        err_setf(&e, ERR_IO,
                 "the instance IS promoted, but wal-fetch failed while it promoted (%s: %s): recovery may have "
                 "ended before the end of the region's archive",
                 st.error_name, st.error);
        rc = cmd_fail(&e);
    }
    drop_state(pgdata);
    return rc;
}
