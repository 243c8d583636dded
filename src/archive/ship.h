/*
 * ship — drain the spool to the async regions.
 *
 * One shipper at a time per cluster's spool (flock on ship.lock).  For
 * each queue with files, in name order (so a region that comes back after
 * an outage is caught up oldest first): the queue's region must be
 * configured (in either mode: a region switched from async to sync keeps
 * its backlog) with the very url and endpoint it was queued for, and its
 * repository identity must be this cluster's (created from the spool's copy
 * when the region has none); then each already-encoded object is uploaded
 * byte for byte, never replacing one, and its queue entry dropped.  A name
 * the region already has is compared by content (decoded SHA-256) before
 * the entry is dropped; different content is reported and kept in the
 * spool.  A queue whose region is not configured is reported and left
 * alone, never shipped elsewhere.  A failing region is retried with
 * exponential backoff (capped at 15 s) while the others go on.
 */
#ifndef WALSHIP_SHIP_H
#define WALSHIP_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "keys.h"
#include "note.h"
#include "spool.h"

struct ship_opts {
    int once;               /* one pass; fail if anything is left */
    unsigned max_idle_s;    /* give up after this long without progress (0 = 600) */
    /* What the shipper reports as it goes (a region retrying, a file set
     * aside, a queue without a region); NULL: nothing.  The command sets
     * it; the background shipper's log is ship.log. */
    const struct note_sink *notes;
    unsigned lock_wait_ms;  /* --once: how long to wait for a running shipper (0 = 120 s) */
};

struct ship_stats {
    unsigned long shipped;
    unsigned long already;
    unsigned long left;
    unsigned long orphaned; /* files in queues of regions not configured */
    unsigned long set_aside;    /* moved to conflicts/: different content, or damaged */
    int ran;                /* 0: another shipper holds the lock */
};

int ship_run(const struct config *conf, const struct keyring *kr, struct spool *sp, const struct ship_opts *o,
             struct ship_stats *stats, struct err *e);

/* 1 when a configured region's queue holds a file: wal-push starts the
 * shipper then, also when every region is sync now (a region switched
 * from async to sync keeps its backlog, which only the shipper sends). */
int ship_has_work(const struct config *conf, struct spool *sp);

/* Files waiting in queues whose region is not configured (removed, or its
 * url or endpoint changed): they are never shipped anywhere else.  `names`
 * gets the queues, comma-separated (cut at `len`). */
uint64_t ship_orphans(const struct config *conf, struct spool *sp, char *names, size_t len);

#endif
