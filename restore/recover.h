/*
 * recover — bring a restored PGDATA through recovery, check where it
 * stopped, and only then promote (DESIGN.md §7: a restore never ends
 * short silently; issue 11: restore --start never waits forever).
 *
 * Two halves:
 *
 *  - the end of the archive (rcv_archive_end, rcv_last_record): before
 *    starting, for --target-latest, the newest archived segment along the
 *    timeline recovery will follow, and the start of the last WAL record in
 *    it.  The restore then asks PostgreSQL for exactly that point
 *    (recovery_target_lsn, inclusive), so PostgreSQL itself refuses to end
 *    recovery short of it ("recovery ended before configured recovery
 *    target was reached").
 *
 *  - rcv_run: start PostgreSQL (recovery_target_action = pause), wait for
 *    it without logging in (postmaster.pid: alive, status line) until it
 *    accepts connections, then through one connection kept open; check the
 *    pause point against the target and the server log's "recovery
 *    stopping" line; then pg_promote() and a CHECKPOINT.  Every wait is
 *    bounded: a start timeout (until the instance accepts connections) and
 *    a stall timeout (no replay progress).  For a standby (o->standby)
 *    the wait ends once it accepts read-only connections, in recovery.  A server that exits, a login that fails, a
 *    pause anywhere but the target: an error at once, never a promotion.
 *
 * Library code: it never prints, and runs programs (pg_ctl) only through
 * the caller's rcv_run_fn.  Not thread-safe (one restore per process).
 */
#ifndef WALSHIP_RECOVER_H
#define WALSHIP_RECOVER_H

#include <stdint.h>

#include "err.h"
#include "manifest.h"
#include "pitr.h"
#include "repo.h"
#include "wal.h"

/* ---- the end of the archive ---- */

struct rcv_end {
    uint32_t tli;                       /* the timeline recovery ends on */
    char newest[WAL_NAME_LEN + 1];      /* newest segment along it */
    uint64_t limit;                     /* records on `newest` count only below this LSN
                                         * (a parent timeline's switch point), else UINT64_MAX */
    unsigned long nsegments;            /* segments from the backup's start on the path */
    char asked[512];                    /* the regions listed, "r1, r2" */
    char skipped[1024];                 /* the regions that could not be listed, and why */
    int no_timeline;                    /* failed: the numbered target timeline does not exist, or
                                         * does not descend from the backup's */
    int no_start;                       /* failed: the backup's own start segment is not archived */
};

struct tl_model;

/* The WAL of regions rs[0..n) as one model, as rcv_archive_end lists it
 * (the first must be listed; the others are skipped when they cannot be,
 * and named in *skipped; history files two regions hold differently are
 * unusable).  `where` gets "region r1" or "regions r1, r2" for messages.
 * The caller frees tm (tl_model_free). */
int rcv_model(struct repo *const *rs, size_t n, uint64_t seg_size, struct tl_model *tm, char where[544],
              char skipped[1024], struct err *e);

/* List the WAL of regions rs[0..n) as one archive (recovery's
 * restore_command asks each in turn, so a segment any of them holds is
 * there) and follow `timeline` ("latest", "current" or a number) from
 * backup `m`'s timeline, as PostgreSQL will (the newest timeline with a
 * history file, its ancestry from that file).  rs[0] must be listed; a
 * later region that cannot be is named in out->skipped.  Every segment from
 * the backup's start to the newest one on that path must be archived: a
 * gap is ERR_NOTFOUND naming the missing segment and the LSN where
 * recovery would stop. */
int rcv_archive_end(struct repo *const *rs, size_t n, const struct manifest *m, const char *timeline,
                    struct rcv_end *out, struct err *e);

/* From pg_waldump's output (a file): the start LSN of the last record that
 * starts below `limit`.  ERR_NOTFOUND when none does. */
int rcv_last_record(const char *waldump_output, uint64_t limit, uint64_t *lsn, struct err *e);

/* ---- start, wait, check, promote ---- */

/* Run argv[0] with argv, stdout and stderr to `out` (NULL: /dev/null);
 * returns its exit status, or -1. */
typedef int (*rcv_run_fn)(void *arg, char *const argv[], const char *out);

#define RCV_START_TIMEOUT_S 600
#define RCV_STALL_TIMEOUT_S 300

struct rcv_opts {
    const char *pgdata;                 /* absolute */
    const char *pg_bin;
    const char *logpath;                /* the server's log (pg_ctl -l) */
    int port;                           /* 0: as configured */
    const char *user;                   /* NULL: libpq's default, then "postgres" */
    unsigned start_timeout_s;           /* until it accepts connections */
    unsigned stall_timeout_s;           /* replay LSN does not move */
    const struct pitr_target *target;   /* as asked; PITR_LATEST with the end in lsn */
    int promote;                        /* promote after a good check (else leave it paused) */
    int shutdown;                       /* recovery_target_action = shutdown was written */
    int standby;                        /* standby.signal: done once it accepts read-only
                                         * connections (consistent), left running */
    rcv_run_fn run;
    void *run_arg;
};

enum rcv_outcome { RCV_FAILED, RCV_PROMOTED, RCV_PAUSED, RCV_SHUT_DOWN, RCV_STANDBY };

struct rcv_result {
    enum rcv_outcome outcome;
    int running;                        /* the server still runs */
    int in_recovery;                    /* ... and is still in recovery */
    char lsn[32];                       /* where replay stopped ("" unknown) */
    char tli[16];                       /* the timeline it replayed last */
    char xact_time[64];                 /* last replayed transaction's time */
    char new_tli[16];                   /* after promotion */
    int checkpointed;                   /* a CHECKPOINT after promotion succeeded */
    char user[64];                      /* the role it logged in as */
    char why[2048];                     /* server log lines saying why it stopped */
    double seconds;                     /* from start to the end of the wait */
};

/* Start the server and see it through recovery.  On failure e says what
 * happened (and that the instance was not promoted); r is filled as far as
 * known either way. */
int rcv_run(const struct rcv_opts *o, struct rcv_result *r, struct err *e);

#endif
