/*
 * ship — drain the spool to the async regions.
 *
 * One shipper at a time per spool (flock on ship.lock).  For each region
 * with queued files, in name order (so a region that comes back after an
 * outage is caught up oldest first): upload the already-encoded object
 * byte for byte, then drop the queue entry.  A name the region already has
 * is compared by content (decoded SHA-256) before the entry is dropped;
 * different content is reported and kept in the spool.  A failing region is
 * retried with exponential backoff (capped at 15 s) while the others go on.
 */
#ifndef WALSHIP_SHIP_H
#define WALSHIP_SHIP_H

#include "config.h"
#include "err.h"
#include "keys.h"
#include "spool.h"

struct ship_opts {
    int once;               /* one pass; fail if anything is left */
    unsigned max_idle_s;    /* give up after this long without progress (0 = 600) */
};

struct ship_stats {
    unsigned long shipped;
    unsigned long already;
    unsigned long left;
    int ran;                /* 0: another shipper holds the lock */
};

int ship_run(const struct config *conf, const struct keyring *kr, struct spool *sp, const struct ship_opts *o,
             struct ship_stats *stats, struct err *e);

/* Start a detached `walship ship` unless one runs; never fails wal-push. */
void ship_spawn(const struct config *conf, struct spool *sp);

#endif
