/*
 * upgrade — bind a repository written by walship 0.1.0 (format 1: objects
 * not bound to their key or cluster, no repository identity) into format 2,
 * in place, so that this version can read it (docs/FORMAT.md, "Repositories
 * of walship 0.1.0"; docs/OPERATIONS.md says when to run it).
 *
 * upg_region() works on one region:
 *   - a region with an identity is already upgraded (or was born in format
 *     2): nothing to do;
 *   - the cluster is learnt from the newest manifest (system identifier,
 *     version, segment size), else from the page header of a WAL segment;
 *   - every object under wal/ and backups/ still in format 1 is decoded
 *     (authenticated with the configured keys), checked where it can be
 *     (a segment's page header must be that segment of that cluster; a
 *     manifest must name its folder and the cluster), encoded again bound
 *     to its key and the cluster with the current key, and put back in
 *     place (the one write in walship that replaces an object); objects
 *     already in format 2 are skipped, so an interrupted upgrade is
 *     finished by running it again;
 *   - the identity is written last: a region becomes readable only once
 *     every object in it is bound.
 * A format 1 object that does not decode, or fails its check, stops the
 * region's upgrade and is named: it is not bound blindly.
 *
 * upg_spool() moves the entries 0.1.0 left in its flat spool layout
 * (spool_dir/queue/REGION/NAME) into the cluster's spool, encoded again
 * and queued for the configured region of that name; an entry for a
 * region no longer configured is left where it is and counted.
 *
 * Library code: never prints; `progress` (may be NULL) is told each object.
 */
#ifndef WALSHIP_UPGRADE_H
#define WALSHIP_UPGRADE_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "keys.h"
#include "note.h"
#include "repo.h"

struct upg_stats {
    int already;                /* the region had an identity */
    int empty;                  /* nothing to upgrade */
    uint64_t rewritten, skipped;    /* objects bound now / already bound */
    uint64_t bytes;             /* plaintext bytes re-encoded */
    struct repo_ident ident;    /* the identity written (or found) */
};

typedef void (*upg_progress_fn)(const char *key, int rewritten, void *arg);

/* `notes` (may be NULL) hears what the region's driver reports. */
int upg_region(const struct config *c, const struct region_conf *reg, const struct keyring *kr,
               const struct note_sink *notes, int dry_run, upg_progress_fn progress, void *arg, struct upg_stats *st,
               struct err *e);

struct upg_spool_stats {
    uint64_t moved;             /* entries re-encoded into the cluster's spool */
    uint64_t left;              /* entries left in place: regions not configured, and foreign */
    uint64_t foreign;           /* of them: segments whose first page names another cluster or segment */
};

/* Move 0.1.0's spool entries into the spool of cluster `ident`. */
int upg_spool(const struct config *c, const struct keyring *kr, const struct repo_ident *ident, int dry_run,
              struct upg_spool_stats *st, struct err *e);

#endif
