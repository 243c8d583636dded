/*
 * ret_fixture — synthetic catalogs for the retention tests: an entry, a
 * full backup's manifest, and the names a plan deletes.
 */
#ifndef WALSHIP_RET_FIXTURE_H
#define WALSHIP_RET_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "retention.h"
#include "wal.h"

#define RF_SEG (16u << 20)

/* A catalog entry (3 objects, 1000 bytes) whose newest object is `newest`. */
static inline struct cat_entry *rf_add(struct catalog *c, const char *name, int complete, time_t newest)
{
    struct cat_entry *ce;

    c->v = realloc(c->v, (c->n + 1) * sizeof *c->v);
    ce = &c->v[c->n++];
    memset(ce, 0, sizeof *ce);
    snprintf(ce->name, sizeof ce->name, "%s", name);
    ce->complete = complete;
    ce->objects = 3;
    ce->bytes = 1000;
    ce->newest = newest;
    return ce;
}

/* A complete full backup that stopped at `stop`, started 60 s before at
 * segment `segno` of timeline `tli` (16 MiB segments). */
static inline struct manifest *rf_add_full(struct catalog *c, const char *name, time_t stop, uint32_t tli,
                                           uint64_t segno)
{
    struct cat_entry *ce = rf_add(c, name, 1, stop);
    struct manifest *m = man_new();

    m->stop_time = (int64_t)stop;
    m->start_time = m->stop_time - 60;
    m->timeline = tli;
    m->wal_segment_size = RF_SEG;
    m->start_lsn = segno * RF_SEG + 0x28;
    wal_segment_name(tli, segno, RF_SEG, m->start_wal);
    wal_segment_name(tli, segno + 1, RF_SEG, m->stop_wal);
    ce->man = m;
    return m;
}

/* The backups a plan deletes, joined by "," (a static buffer). */
static inline const char *rf_gone(const struct ret_plan *plan)
{
    static char buf[512];
    size_t i;

    buf[0] = '\0';
    for (i = 0; i < plan->nbackups; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "", plan->backups[i].name);
    return buf;
}

#endif
