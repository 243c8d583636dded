/*
 * pginst — the PostgreSQL instance that runs in a data directory on this
 * host, found without a connection string: its postmaster.pid says whether
 * it is alive, its port, its socket directory and its status line; a login
 * goes over that socket.
 *
 * Users: restore --start (restore/recover.c), the standby's status and
 * `walship promote` (docs/RESTORE.md).  Library code: never prints.  A
 * PGconn it hands out belongs to the caller (PQfinish).  Thread-safe (no
 * state of its own).
 */
#ifndef WALSHIP_PGINST_H
#define WALSHIP_PGINST_H

#include "pq_dl.h"
#include <limits.h>
#include <stdint.h>

#include "err.h"

struct pg_pidfile {
    int alive;                  /* the postmaster's PID exists */
    long pid;
    int port;
    char sockdir[PATH_MAX];
    char listen[256];
    char status[16];            /* starting, standby, ready (15: also in hot standby), stopping; "" */
};

/* postmaster.pid of `pgdata`: all zero when there is none. */
void pginst_read_pidfile(const char *pgdata, struct pg_pidfile *p);

enum pginst_login { PGINST_OK, PGINST_RETRY, PGINST_REFUSED, PGINST_NOLIB };

/* One login to the instance of `pf` as `user` (NULL: libpq's default) into
 * `db`.  PGINST_RETRY: not accepting connections yet (or any more);
 * PGINST_REFUSED: the server's answer is final (msg says why);
 * PGINST_NOLIB: libpq could not be loaded (msg says why), nothing was
 * asked of the server. */
enum pginst_login pginst_connect(const struct pg_pidfile *pf, const char *user, const char *db, const char *appname,
                                 PGconn **out, char *msg, size_t n);

/* Log in to the running instance of `pgdata` once: as `user`, or libpq's
 * default and then "postgres"; database postgres, else template1.  Checks
 * that the session is on that data directory.  ERR_NOTFOUND when nothing
 * runs there. */
int pginst_open(const char *pgdata, const char *user, const char *appname, PGconn **out, struct err *e);

/* Is the session's data directory `pgdata`?  (1 when it may not see it.) */
int pginst_same_dir(PGconn *c, const char *pgdata);

/* Where a server in recovery is (or a primary, in_recovery 0). */
struct pg_replay {
    int in_recovery;
    int paused;                 /* pg_get_wal_replay_pause_state() = 'paused' */
    char lsn[32];               /* pg_last_wal_replay_lsn(), "" unknown */
    char xact_time[64];         /* pg_last_xact_replay_timestamp(), "" none */
    int64_t xact_unix;          /* the same as Unix seconds, 0 none */
};

/* 0, or -1 when the query failed or had no answer within timeout_ms
 * (ERR_NET): either way the session is unusable after -1; drop it. */
int pginst_replay(PGconn *c, unsigned timeout_ms, struct pg_replay *r, struct err *e);

/* One value of a one-row query with up to one parameter; "" on error or
 * when no answer came within timeout_ms (the session is then unusable). */
void pginst_query_one_within(PGconn *c, const char *sql, const char *param, unsigned timeout_ms, char *out, size_t n);

/* The same within PGINST_QUERY_MS: longer than any server-side wait
 * walship asks for (pg_promote(true, 120)). */
#define PGINST_QUERY_MS 180000u
void pginst_query_one(PGconn *c, const char *sql, const char *param, char *out, size_t n);

#endif
