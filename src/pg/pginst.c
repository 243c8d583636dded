/*
 * pginst — the instance in a data directory (pginst.h).
 */
#include "pginst.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "util.h"

/* postmaster.pid: pid, data directory, start time, port, socket directory,
 * listen address, shared memory key, status. */
void pginst_read_pidfile(const char *pgdata, struct pg_pidfile *p)
{
    char path[PATH_MAX], line[PATH_MAX];
    FILE *f;
    int n = 0;

    memset(p, 0, sizeof *p);
    if (snprintf(path, sizeof path, "%s/postmaster.pid", pgdata) >= (int)sizeof path)
        return;
    if ((f = fopen(path, "re")) == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        switch (++n) {
        case 1: p->pid = strtol(line, NULL, 10); break;
        case 4: p->port = (int)strtol(line, NULL, 10); break;
        case 5: snprintf(p->sockdir, sizeof p->sockdir, "%s", line); break;
        case 6: snprintf(p->listen, sizeof p->listen, "%.255s", line); break;
        case 8: sscanf(line, "%15s", p->status); break;
        default: break;
        }
    }
    fclose(f);
    p->alive = p->pid > 0 && kill((pid_t)p->pid, 0) == 0;
}

enum pginst_login pginst_connect(const struct pg_pidfile *pf, const char *user, const char *db, const char *appname,
                                 PGconn **out, char *msg, size_t n)
{
    const char *kw[8], *val[8];
    char port[16];
    int i = 0;
    PGconn *c;
    const char *m;
    int transient;
    struct err le = ERR_INIT;

    *out = NULL;
    if (pq_dl_load(&le) < 0) {
        snprintf(msg, n, "%s", le.msg);
        return PGINST_NOLIB;
    }
    snprintf(port, sizeof port, "%d", pf->port);
    kw[i] = "host";
    val[i++] = pf->sockdir[0] ? pf->sockdir
               : (pf->listen[0] && strcmp(pf->listen, "*") != 0 ? pf->listen : "localhost");
    kw[i] = "port";
    val[i++] = port;
    kw[i] = "dbname";
    val[i++] = db;
    kw[i] = "connect_timeout";
    val[i++] = "5";
    kw[i] = "application_name";
    val[i++] = appname;
    if (user != NULL) {
        kw[i] = "user";
        val[i++] = user;
    }
    kw[i] = NULL;
    val[i] = NULL;
    c = PQconnectdbParams(kw, val, 0);
    if (PQstatus(c) == CONNECTION_OK) {
        *out = c;
        return PGINST_OK;
    }
    m = PQerrorMessage(c);
    snprintf(msg, n, "%s", m);
    msg[strcspn(msg, "\n")] = '\0';
    /* transient: not yet accepting connections, or not listening yet, or
     * shutting down (a login that arrives as the postmaster stops, e.g. at
     * a target with --target-action shutdown, is terminated "due to
     * administrator command", or its backend is gone before it could say
     * why: "server closed the connection unexpectedly", seen in CI under
     * ASan); read before PQfinish, which frees it.  The caller looks at
     * the postmaster again before it retries, and retries only so long */
    transient = strstr(m, "starting up") || strstr(m, "not yet accepting") || strstr(m, "Connection refused") ||
                strstr(m, "No such file") || strstr(m, "shutting down") || strstr(m, "timeout") ||
                strstr(m, "administrator command") || strstr(m, "closed the connection unexpectedly");
    PQfinish(c);
    return transient ? PGINST_RETRY : PGINST_REFUSED;
}

/* Send one query and wait at most timeout_ms for its whole answer, so a
 * server whose backend waits forever (a startup process stopped while it
 * holds a lock or spinlock the query needs; an I/O hang) cannot hold the
 * caller: on time-out NULL comes back; the session is then unusable and
 * the caller drops it. */
static PGresult *exec_within(PGconn *c, const char *sql, const char *param, unsigned timeout_ms, struct err *e)
{
    uint64_t deadline = now_ms() + timeout_ms;
    PGresult *r, *last = NULL;

    if (!PQsendQueryParams(c, sql, param ? 1 : 0, NULL, param ? &param : NULL, NULL, NULL, 0)) {
        err_setf(e, ERR_IO, "%s", PQerrorMessage(c));
        return NULL;
    }
    for (;;) {
        struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
        uint64_t now = now_ms();

        if (!PQconsumeInput(c)) {
            err_setf(e, ERR_IO, "%s", PQerrorMessage(c));
            break;
        }
        while (!PQisBusy(c)) {          /* never blocks: the next result is read */
            if ((r = PQgetResult(c)) == NULL) {
                if (last == NULL)
                    err_setf(e, ERR_IO, "%s", PQerrorMessage(c));
                return last;
            }
            PQclear(last);              /* keep the last, as PQexec does */
            last = r;
        }
        if (now >= deadline && last != NULL)
            return last;                /* answered; the rest of the exchange is late */
        if (now >= deadline) {
            /* no PQcancel: it waits, without a limit, for the postmaster
             * to close its connection, and a stopped postmaster never
             * does; the caller drops the session instead */
            err_setf(e, ERR_NET, "no answer within %u s", (timeout_ms + 999) / 1000);
            break;
        }
        if (p.fd < 0 || (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)) {
            err_setf(e, ERR_IO, "%s", p.fd < 0 ? "the session is gone" : strerror(errno));
            break;
        }
    }
    PQclear(last);
    return NULL;
}

void pginst_query_one_within(PGconn *c, const char *sql, const char *param, unsigned timeout_ms, char *out, size_t n)
{
    struct err e = ERR_INIT;
    PGresult *r = exec_within(c, sql, param, timeout_ms, &e);

    out[0] = '\0';
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        snprintf(out, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

void pginst_query_one(PGconn *c, const char *sql, const char *param, char *out, size_t n)
{
    pginst_query_one_within(c, sql, param, PGINST_QUERY_MS, out, n);
}

int pginst_same_dir(PGconn *c, const char *pgdata)
{
    char dir[PATH_MAX], a[PATH_MAX], b[PATH_MAX];

    pginst_query_one(c, "select current_setting('data_directory')", NULL, dir, sizeof dir);
    if (dir[0] == '\0')
        return 1;       /* not allowed to see it: trust the socket from postmaster.pid */
    return strcmp(realpath(dir, a) ? a : dir, realpath(pgdata, b) ? b : pgdata) == 0;
}

int pginst_open(const char *pgdata, const char *user, const char *appname, PGconn **out, struct err *e)
{
    const char *users[2] = { user, "postgres" };
    const char *db = "postgres";
    struct pg_pidfile pf;
    char msg[512] = "";
    int i;

    *out = NULL;
    if (pq_dl_load(e) < 0)      /* not a login problem: no --pg-user hint */
        return -1;
    pginst_read_pidfile(pgdata, &pf);
    if (!pf.alive)
        return err_setf(e, ERR_NOTFOUND, "no PostgreSQL runs in \"%s\" (no live postmaster.pid)", pgdata);
    for (i = 0; i < (user != NULL ? 1 : 2); i++) {
        enum pginst_login l = pginst_connect(&pf, users[i], db, appname, out, msg, sizeof msg);

        if (l == PGINST_OK)
            break;
        if (l == PGINST_REFUSED && strstr(msg, "database \"postgres\" does not exist") && strcmp(db, "postgres") == 0) {
            db = "template1";
            i--;
            continue;
        }
        if (l == PGINST_RETRY || !(strstr(msg, "role") || strstr(msg, "authentication")))
            break;
    }
    if (*out == NULL)
        return err_setf(e, ERR_IO, "cannot log in to the PostgreSQL instance in \"%s\" (port %d): %s%s", pgdata,
                        pf.port, msg, user == NULL ? " (give the role with --pg-user)" : "");
    if (!pginst_same_dir(*out, pgdata)) {
        PQfinish(*out);
        *out = NULL;
        return err_setf(e, ERR_IO, "port %d answers for another PostgreSQL instance, not the one in \"%s\"", pf.port,
                        pgdata);
    }
    return 0;
}

int pginst_replay(PGconn *c, unsigned timeout_ms, struct pg_replay *s, struct err *e)
{
    struct err qe = ERR_INIT;
    PGresult *r;
    int ok = 0;

    memset(s, 0, sizeof *s);
    r = exec_within(c, "select pg_is_in_recovery(), "
                  "case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() = 'paused' end, "
                  "coalesce(pg_last_wal_replay_lsn()::text, ''), "
                  "coalesce(pg_last_xact_replay_timestamp()::text, ''), "
                  "coalesce(extract(epoch from pg_last_xact_replay_timestamp())::bigint, 0)",
                    NULL, timeout_ms, &qe);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        struct err pe = ERR_INIT;
        uint64_t t = 0;

        s->in_recovery = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        s->paused = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
        snprintf(s->lsn, sizeof s->lsn, "%s", PQgetvalue(r, 0, 2));
        snprintf(s->xact_time, sizeof s->xact_time, "%s", PQgetvalue(r, 0, 3));
        if (parse_u64(PQgetvalue(r, 0, 4), 0, UINT64_MAX, &t, &pe) == 0)
            s->xact_unix = (int64_t)t;
        ok = 1;
    } else {
        char msg[512];

        snprintf(msg, sizeof msg, "%s", r != NULL ? PQresultErrorMessage(r) : qe.msg);
        msg[strcspn(msg, "\n")] = '\0';
        err_setf(e, qe.code == ERR_NET ? ERR_NET : ERR_IO, "could not ask PostgreSQL where replay is: %s", msg);
    }
    PQclear(r);
    return ok ? 0 : -1;
}
