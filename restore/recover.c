/*
 * recover — start, wait, check, promote (recover.h).
 */
#include "recover.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "pginst.h"
#include "util.h"

#define POLL_US 250000
#define CONNECT_EVERY_MS 2000

/* ---- the server log (ours: pg_ctl -l, logging_collector off) ---- */

static const char *const why_patterns[] = {
    "recovery stopping", "recovery ended before", "redo done at", "last completed transaction",
    "invalid record length", "unexpected pageaddr", "incorrect prev-link", "invalid magic number",
    "invalid resource manager", "contrecord", "out-of-sequence timeline", "unexpected timeline",
    "record with incorrect", "is not a child", "recovery has paused", "insufficient parameter",
    "could not", "FATAL", "PANIC", "ERROR", "restore_command", "does not exist",
    "pausing at the end of recovery", "consistent recovery state reached",
};

/* Lines (from byte `off` on) that say why recovery stopped, the last ones
 * when there are many. */
static void logfile_why(const char *path, long off, char *out, size_t n)
{
    FILE *f = fopen(path, "re");
    char line[1024];
    char *keep[12];
    int k = 0, i;
    size_t len = 0;

    out[0] = '\0';
    if (f == NULL)
        return;
    memset(keep, 0, sizeof keep);
    if (off > 0)
        fseek(f, off, SEEK_SET);
    while (fgets(line, sizeof line, f) != NULL) {
        size_t j;

        for (j = 0; j < sizeof why_patterns / sizeof *why_patterns; j++)
            if (strstr(line, why_patterns[j]) != NULL)
                break;
        if (j == sizeof why_patterns / sizeof *why_patterns)
            continue;
        free(keep[k % 12]);
        keep[k % 12] = strdup(line);
        k++;
    }
    fclose(f);
    for (i = k > 12 ? k - 12 : 0; i < k; i++) {
        const char *l = keep[i % 12];

        if (l != NULL && len + strlen(l) + 1 < n) {
            memcpy(out + len, l, strlen(l) + 1);
            len += strlen(l);
        }
    }
    for (i = 0; i < 12; i++)
        free(keep[i]);
}

/* The text after the last `needle` in the log (from `off`), up to `stop`
 * characters; 1 when found. */
static int logfile_last(const char *path, long off, const char *needle, const char *stop, char *out, size_t n)
{
    FILE *f = fopen(path, "re");
    char line[1024];
    int found = 0;

    if (f == NULL)
        return 0;
    if (off > 0)
        fseek(f, off, SEEK_SET);
    while (fgets(line, sizeof line, f) != NULL) {
        char *p = strstr(line, needle);
        size_t k;

        if (p == NULL)
            continue;
        p += strlen(needle);
        k = strcspn(p, stop);
        if (k >= n)
            k = n - 1;
        memcpy(out, p, k);
        out[k] = '\0';
        found = 1;
    }
    fclose(f);
    return found;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "re");
    long n = 0;

    if (f != NULL) {
        if (fseek(f, 0, SEEK_END) == 0)
            n = ftell(f);
        fclose(f);
    }
    return n < 0 ? 0 : n;
}

/* What the log says about where replay stopped, when no query could. */
static void from_log(const char *path, long off, struct rcv_result *r)
{
    char seg[64];

    if (logfile_last(path, off, "redo done at ", " \n", r->lsn, sizeof r->lsn) == 0 && r->lsn[0] == '\0')
        logfile_last(path, off, "recovery stopping after WAL location (LSN) \"", "\"", r->lsn, sizeof r->lsn);
    logfile_last(path, off, "last completed transaction was at log time ", "\n", r->xact_time, sizeof r->xact_time);
    if (logfile_last(path, off, "restored log file \"", "\"", seg, sizeof seg) && strlen(seg) >= 8) {
        seg[8] = '\0';
        snprintf(r->tli, sizeof r->tli, "%lu", strtoul(seg, NULL, 16));
    }
}

/* ---- connecting: one connection, few attempts ---- */

struct login_state {
    const char *users[3];
    int nusers, next_user;
    const char *db;
    uint64_t next_try;
    char last_msg[512];
};

static void login_init(struct login_state *ls, const char *user)
{
    memset(ls, 0, sizeof *ls);
    ls->db = "postgres";
    if (user != NULL) {
        ls->users[ls->nusers++] = user;
    } else {
        ls->users[ls->nusers++] = NULL;         /* libpq: PGUSER or the OS user */
        ls->users[ls->nusers++] = "postgres";   /* initdb's usual bootstrap superuser */
    }
}

/* One connection attempt when due.  -1: no role we may try can log in. */
static int login_step(struct login_state *ls, const struct pg_pidfile *pf, PGconn **c, char *user_out, size_t n,
                      struct err *e)
{
    enum pginst_login l;
    const char *u = ls->users[ls->next_user];

    if (now_ms() < ls->next_try)
        return 0;
    ls->next_try = now_ms() + CONNECT_EVERY_MS;
    l = pginst_connect(pf, u, ls->db, "walship restore", c, ls->last_msg, sizeof ls->last_msg);
    if (l == PGINST_OK) {
        snprintf(user_out, n, "%s", PQuser(*c));
        return 0;
    }
    if (l == PGINST_RETRY)
        return 0;
    if (l == PGINST_NOLIB)      /* not a login problem: no --pg-user hint */
        return err_setf(e, ERR_IO, "cannot follow the restored instance's recovery: %s", ls->last_msg);
    if (strstr(ls->last_msg, "database \"postgres\" does not exist") && strcmp(ls->db, "postgres") == 0) {
        ls->db = "template1";
        ls->next_try = 0;
        return 0;
    }
    if (ls->next_user + 1 < ls->nusers && (strstr(ls->last_msg, "role") || strstr(ls->last_msg, "authentication"))) {
        ls->next_user++;
        ls->next_try = 0;
        return 0;
    }
    return err_setf(e, ERR_IO,
                    "cannot log in to the restored instance (port %d) to follow its recovery: %s — give the role "
                    "to log in as with --pg-user (the backed-up cluster's superuser)",
                    pf->port, ls->last_msg);
}

/* ---- queries ---- */

/* ---- the check ---- */

/* Paused: is this the target?  0 yes, -1 no (e says why). */
static int check_target(PGconn *c, const struct rcv_opts *o, long off, const struct pg_replay *s, struct err *e)
{
    const struct pitr_target *t = o->target;
    char stopping[256], ok[8];
    uint64_t lsn = 0;
    struct err pe = ERR_INIT;

    if (!logfile_last(o->logpath, off, "recovery stopping ", "\n", stopping, sizeof stopping))
        return err_setf(e, ERR_IO,
                        "recovery paused at LSN %s, but PostgreSQL did not say it reached the recovery target (no "
                        "\"recovery stopping\" in %s)",
                        s->lsn[0] ? s->lsn : "?", o->logpath);
    if (t->kind == PITR_LSN || t->kind == PITR_LATEST) {
        char want[24];

        wal_format_lsn(t->lsn, want);
        if (wal_parse_lsn(s->lsn, &lsn, &pe) < 0 || lsn <= t->lsn)
            return err_setf(e, ERR_IO, "recovery paused at LSN %s, before the %s %s", s->lsn[0] ? s->lsn : "?",
                            t->kind == PITR_LATEST ? "end of the archive, the last record at" : "target LSN", want);
    }
    if (t->kind == PITR_TIME && s->xact_time[0]) {
        pginst_query_one(c, "select pg_last_xact_replay_timestamp() <= $1::timestamptz", t->value, ok, sizeof ok);
        if (strcmp(ok, "t") != 0)
            return err_setf(e, ERR_IO, "recovery replayed a transaction of %s, after the target time %s",
                            s->xact_time, t->value);
    }
    return 0;
}

/* Paused at the target: end recovery.  By resuming, not pg_promote():
 * PostgreSQL 15's pause loop sleeps on a condition variable that a promotion
 * request does not wake, so promoting from the pause waited 1.00 s every
 * time (seen in the drill's logs: "pausing at the end of recovery", then
 * "received promote request" one second later).  Resuming wakes the loop at
 * once, and with recovery_target_action = pause PostgreSQL then ends
 * recovery exactly as a promotion does (a new timeline). */
static int promote(PGconn *c, struct rcv_result *r, struct err *e)
{
    char done[8];
    uint64_t deadline = now_ms() + 120000;
    PGresult *res = PQexec(c, "select pg_wal_replay_resume()");
    int resumed = PQresultStatus(res) == PGRES_TUPLES_OK;

    PQclear(res);
    if (!resumed) {
        pginst_query_one(c, "select pg_promote(true, 120)", NULL, done, sizeof done);
        if (strcmp(done, "t") != 0)
            return err_setf(e, ERR_IO, "pg_promote() failed or timed out: %s", PQerrorMessage(c));
    }
    for (;;) {
        pginst_query_one(c, "select pg_is_in_recovery()", NULL, done, sizeof done);
        if (strcmp(done, "f") == 0)
            break;
        if (done[0] == '\0' || now_ms() > deadline)
            return err_setf(e, ERR_IO, "PostgreSQL did not end recovery within 120 s of being resumed at the "
                            "target%s%s", done[0] == '\0' ? ": " : "", done[0] == '\0' ? PQerrorMessage(c) : "");
        usleep(20000);
    }
    pginst_query_one(c,
              "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
              NULL, r->new_tli, sizeof r->new_tli);
    /* The end-of-recovery checkpoint PostgreSQL requests is spread out
     * (minutes): make it now, so pg_control names the new timeline and a
     * crash right after does not replay the whole restore again.  Not
     * being allowed to is no failure. */
    {
        PGresult *cp = PQexec(c, "checkpoint");

        r->checkpointed = PQresultStatus(cp) == PGRES_COMMAND_OK;
        PQclear(cp);
    }
    return 0;
}

/* ---- start and the wait ---- */

static int start(const struct rcv_opts *o, struct err *e)
{
    char pg_ctl[PATH_MAX], opts[256];
    char *argv[12];
    int n = 0;

    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", o->pg_bin);
    /* for this run: connections while paused (pause needs hot_standby),
     * one log walship reads, in a language it reads, with the LOG lines
     * it reads ("recovery stopping", "shutdown at recovery target"): a
     * backup whose log_min_messages is fatal or panic leaves them out, and
     * every restore from it failed at its target (adversarial pass S) */
    snprintf(opts, sizeof opts, "%s%.0d -c hot_standby=on -c logging_collector=off -c log_destination=stderr "
             "-c lc_messages=C -c log_min_messages=warning", o->port > 0 ? "-p " : "", o->port);
    argv[n++] = pg_ctl;
    argv[n++] = "-D";
    argv[n++] = (char *)o->pgdata;
    argv[n++] = "-l";
    argv[n++] = (char *)o->logpath;
    argv[n++] = "-o";
    argv[n++] = opts;
    argv[n++] = "-W";
    argv[n++] = "start";
    argv[n] = NULL;
    if (o->run(o->run_arg, argv, NULL) != 0)
        return err_setf(e, ERR_IO, "pg_ctl could not start PostgreSQL in \"%s\" (see %s)", o->pgdata, o->logpath);
    return 0;
}

static int failed(const struct rcv_opts *o, long off, struct rcv_result *r, struct err *e)
{
    struct pg_pidfile pf;

    pginst_read_pidfile(o->pgdata, &pf);
    r->outcome = RCV_FAILED;
    r->running = pf.alive;
    if (!pf.alive)
        r->in_recovery = 0;
    from_log(o->logpath, off, r);
    logfile_why(o->logpath, off, r->why, sizeof r->why);
    return err_prefix(e, "%s", r->running ? "the instance was NOT promoted: it is left in recovery"
                                         : "the instance was NOT promoted");
}

/* The server went away: a shutdown at the target, or a failure. */
static int server_gone(const struct rcv_opts *o, long off, struct rcv_result *r, struct err *e)
{
    char stopping[256], x[256];

    /* "shutdown at recovery target" is the postmaster's word that the
     * startup process asked for it, which it does only once consistent
     * at the target: "recovery stopping" then "database system is shut
     * down" is also what a stop before the consistent point looks like
     * (its FATAL in between), taken for success until adversarial pass S.
     * Not "no FATAL": the shutdown ends walship's own session with one */
    if (o->shutdown && logfile_last(o->logpath, off, "recovery stopping ", "\n", stopping, sizeof stopping) &&
        logfile_last(o->logpath, off, "shutdown at recovery target", "\n", x, sizeof x) &&
        logfile_last(o->logpath, off, "database system is shut down", "\n", x, sizeof x) &&
        !logfile_last(o->logpath, off, "recovery ended before", "\n", x, sizeof x)) {
        /* the last poll ran before the stop: only the log says where it was */
        r->lsn[0] = r->xact_time[0] = '\0';
        from_log(o->logpath, off, r);
        logfile_why(o->logpath, off, r->why, sizeof r->why);
        r->outcome = RCV_SHUT_DOWN;
        return 0;
    }
    err_setf(e, ERR_IO, "PostgreSQL exited during startup or recovery, short of the target (see %s)", o->logpath);
    return failed(o, off, r, e);
}

/* Not connected yet: a login attempt when the server accepts connections
 * and one is due.  -1 on a refused login, another instance, or the start
 * timeout. */
static int connect_step(const struct rcv_opts *o, struct login_state *ls, const struct pg_pidfile *pf,
                        uint64_t deadline, PGconn **c, struct rcv_result *r, struct err *e)
{
    if (now_ms() > deadline)
        return err_setf(e, ERR_IO,
                        "PostgreSQL did not accept connections within %u s of starting (--start-timeout; status "
                        "\"%s\"%s%s)",
                        o->start_timeout_s, pf->status[0] ? pf->status : "not started", ls->last_msg[0] ? ", " : "",
                        ls->last_msg);
    if (!pf->alive || (strcmp(pf->status, "standby") != 0 && strcmp(pf->status, "ready") != 0))
        return 0;       /* not consistent yet: do not knock (each refusal is a line in its log) */
    if (login_step(ls, pf, c, r->user, sizeof r->user, e) < 0)
        return -1;
    if (*c != NULL && !pginst_same_dir(*c, o->pgdata))
        return err_setf(e, ERR_IO, "port %d answers for another PostgreSQL instance, not the one in \"%s\"",
                        pf->port, o->pgdata);
    return 0;
}

/* Paused: check, then promote (or leave it paused when asked to). */
static int at_pause(PGconn *c, const struct rcv_opts *o, long off, const struct pg_replay *s, struct rcv_result *r,
                    struct err *e)
{
    from_log(o->logpath, off, r);
    snprintf(r->lsn, sizeof r->lsn, "%s", s->lsn);
    if (check_target(c, o, off, s, e) < 0)
        return -1;
    logfile_why(o->logpath, off, r->why, sizeof r->why);
    r->running = 1;
    if (!o->promote) {
        r->outcome = RCV_PAUSED;
        return 0;
    }
    if (promote(c, r, e) < 0)
        return -1;
    r->outcome = RCV_PROMOTED;
    r->in_recovery = 0;
    return 0;
}

/* How long one "where is replay" may take: what is left of the stall
 * bound, at least 1 s and at most 10 s, so a server that stops answering
 * (a startup process stopped while it holds the lock that query needs)
 * is a stall too, not a wait without end. */
static unsigned query_ms(const struct rcv_opts *o, uint64_t last_progress)
{
    uint64_t bound = last_progress + (uint64_t)o->stall_timeout_s * 1000, now = now_ms();
    uint64_t left = bound > now ? bound - now : 0;

    return (unsigned)(left < 1000 ? 1000 : left > 10000 ? 10000 : left);
}

/* Past --stall-timeout without progress: 1, with e set (naming the last
 * LSN seen, and the query that had no answer when that is why). */
static int stalled(const struct rcv_opts *o, uint64_t last_progress, const char *lsn, const struct err *qe,
                   struct err *e)
{
    if (now_ms() - last_progress <= (uint64_t)o->stall_timeout_s * 1000)
        return 0;
    err_setf(e, ERR_IO, "recovery made no progress for %u s %s%s (--stall-timeout)%s%s", o->stall_timeout_s,
             lsn[0] ? "at LSN " : "before PostgreSQL said where replay is", lsn, qe != NULL ? "; " : "",
             qe != NULL ? qe->msg : "");
    return 1;
}

int rcv_run(const struct rcv_opts *o, struct rcv_result *r, struct err *e)
{
    struct login_state ls;
    struct pg_pidfile pf;
    PGconn *c = NULL;
    char fatal[256];
    uint64_t t0 = now_ms(), last_progress, deadline;
    long off = file_size(o->logpath);
    int seen = 0, rc = -1;

    memset(r, 0, sizeof *r);
    login_init(&ls, o->user);
    if (start(o, e) < 0)
        return failed(o, off, r, e);
    last_progress = now_ms();
    deadline = t0 + (uint64_t)o->start_timeout_s * 1000;
    for (;;) {
        struct pg_replay s;
        struct err qe = ERR_INIT;

        usleep(POLL_US);
        pginst_read_pidfile(o->pgdata, &pf);
        if (pf.alive) {
            seen = 1;
        } else if (seen || now_ms() - t0 > 10000 ||
                   logfile_last(o->logpath, off, "FATAL:", "\n", fatal, sizeof fatal) ||
                   logfile_last(o->logpath, off, "database system is shut down", "\n", fatal, sizeof fatal)) {
            /* gone, or (a postmaster that failed at once, never seen) never
             * came; or one that shut down at its target within a poll (a
             * --target-immediate shutdown took 10 s more, waiting for it) */
            usleep(POLL_US);
            pginst_read_pidfile(o->pgdata, &pf);
            if (!pf.alive) {
                rc = server_gone(o, off, r, e);
                goto out;
            }
        }
        if (c == NULL) {
            if (connect_step(o, &ls, &pf, deadline, &c, r, e) < 0)
                goto fail;
            if (c != NULL)
                last_progress = now_ms();
            continue;
        }
        if (pginst_replay(c, query_ms(o, last_progress), &s, &qe) < 0) {
            PQfinish(c);        /* the server died, the session did, or it did not answer */
            c = NULL;
            if (stalled(o, last_progress, r->lsn, &qe, e))
                goto fail;
            deadline = now_ms() + (uint64_t)o->start_timeout_s * 1000;
            continue;
        }
        r->in_recovery = s.in_recovery;
        if (strcmp(s.lsn, r->lsn) != 0) {
            last_progress = now_ms();
            snprintf(r->lsn, sizeof r->lsn, "%s", s.lsn);
        }
        snprintf(r->xact_time, sizeof r->xact_time, "%s", s.xact_time);
        if (!s.in_recovery) {
            err_setf(e, ERR_IO, "PostgreSQL left recovery by itself before walship could check where it stopped "
                                "(a recovery_target_action other than pause in its configuration?)");
            r->outcome = RCV_FAILED;
            r->running = 1;
            logfile_why(o->logpath, off, r->why, sizeof r->why);
            goto out;
        }
        if (o->standby && s.lsn[0] != '\0') {
            /* a hot standby accepting read-only connections: consistent
             * (PostgreSQL allows them only from then on); left running */
            r->outcome = RCV_STANDBY;
            r->running = 1;
            from_log(o->logpath, off, r);
            snprintf(r->lsn, sizeof r->lsn, "%s", s.lsn);
            rc = 0;
            goto out;
        }
        if (s.paused) {
            if (at_pause(c, o, off, &s, r, e) < 0)
                goto fail;
            rc = 0;
            goto out;
        }
        if (stalled(o, last_progress, r->lsn, NULL, e))
            goto fail;
    }
fail:
    failed(o, off, r, e);
out:
    if (r->outcome != RCV_PROMOTED && r->outcome != RCV_SHUT_DOWN && c != NULL) {
        char tli[16];

        pginst_query_one_within(c, "select min_recovery_end_timeline::text from pg_control_recovery()", NULL, 5000,
                                tli, sizeof tli);
        if (r->tli[0] == '\0' && tli[0] != '\0' && strcmp(tli, "0") != 0)
            snprintf(r->tli, sizeof r->tli, "%s", tli);
    }
    PQfinish(c);
    r->seconds = (double)(now_ms() - t0) / 1000.0;
    return rc;
}
