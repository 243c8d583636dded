/*
 * wal_push — archiving one WAL file as PostgreSQL's archive_command, with
 * push-ahead of the next .ready segments (src/archive/wal_push.c says how).
 * Library code: never prints and never forks; the caller starts the
 * background shipper when the result hands it the spool.
 */
#ifndef WALSHIP_WAL_PUSH_H
#define WALSHIP_WAL_PUSH_H

#include "archd.h"
#include "archiver.h"
#include "config.h"
#include "err.h"
#include "keys.h"
#include "note.h"
#include "spool.h"

#define WAL_PUSH_MAX_THREADS 64

struct wal_push_result {
    struct archive_report rep;      /* the file's own push */
    uint64_t pushed_ms;             /* now_ms() when it was durable (before helping push ahead) */
    int pushed_ahead_before;        /* it had been pushed ahead as this very file: nothing was done */
    int via_process;                /* ... by the archiver process (archd.h) */
    unsigned long ahead_pushed, ahead_failed;   /* push-ahead of the next segments */
    struct err ahead_err;           /* why push-ahead stopped early (ERR_OK: it did not) */
    /* Not NULL when async regions have spooled files to ship: the caller
     * starts the shipper for this spool and frees it. */
    struct spool *shipper_spool;
};

/* Archive the WAL file at `path` (pg_wal/NAME; PGDATA is the config's
 * pgdata, else the working directory) to every region: the cluster comes
 * from PGDATA's pg_control, every region's identity is checked (or
 * created) against it.  What an operator should see as it goes (a region
 * failing, a pushed-ahead file that changed) goes to `notes` (may be NULL).
 * 0 when the file is durable in every sync region
 * and in the spool of every async region.  With `spawn` and
 * archive_async_process, a segment PostgreSQL marked .ready is handed to
 * the archiver process (started through `spawn`) and acknowledged only by
 * its marker for this very file; else it is pushed here. */
int wal_push(const struct config *c, const struct keyring *kr, const char *path, const struct archd_spawn *spawn,
             const struct note_sink *notes, struct wal_push_result *res, struct err *e);

/* The .ready segments of `statusdir` after `after` ("" for all), oldest
 * first, at most `max`.  Free with spool_names_free. */
int wal_push_ready(const char *statusdir, const char *after, size_t max, char ***out, size_t *nout);

#endif
