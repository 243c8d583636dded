/*
 * copy — copying a region's backups and the WAL they need into another
 * region, byte for byte (src/maint/copy.c, docs/COPY.md).  Library code:
 * never prints; a dry run reports what it would copy through a callback.
 */
#ifndef WALSHIP_COPY_H
#define WALSHIP_COPY_H

#include <stdint.h>

#include "catalog.h"
#include "err.h"
#include "note.h"
#include "repo.h"

struct copy_opts {
    const char *since;          /* first backup to copy; NULL: every complete one */
    int dry_run;                /* copy nothing: report each object instead */
    /* dry run: called for each object that would be copied (may be NULL) */
    void (*would_copy)(const char *key, uint64_t size, void *arg);
    void *arg;
    /* what the copy reports as it goes (each backup copied, a replaced or
     * conflicting WAL file); NULL: nothing */
    const struct note_sink *notes;
};

struct copy_tally {
    uint64_t copied, copied_bytes, skipped, skipped_bytes;
};

struct copy_result {
    int nbackups;               /* complete backups considered */
    int present;                /* ... of which R2 already had whole */
    char floor_wal[25];         /* the oldest selected backup's start segment, "" for none */
    struct copy_tally backups, manifests, wal;
};

/* Copy from `src` (opened with its identity) into `dst`: the identity
 * first (R2 must have R1's, or none and nothing else), then each selected
 * complete backup R2 lacks (its manifest last), then the WAL from the
 * oldest selected backup's start segment on and every .history file. */
int copy_regions(struct repo *src, struct repo *dst, const struct copy_opts *o, struct copy_result *res,
                 struct err *e);

#endif
