/*
 * walfetch — fetch one archived WAL file from the first region that has it
 * (wal-fetch, PostgreSQL's restore_command), and prefetch the next ones.
 *
 * walfetch_one() tries the regions in the given order.  The object is
 * decoded into a temp file beside DEST, fsync'd, and renamed onto DEST only
 * after the decoder has authenticated the whole object as the one stored
 * under that name for this cluster, and (for a segment) its first page
 * header says it is that segment of that cluster: so PostgreSQL never reads
 * a byte that was not verified, nor another segment's or another cluster's
 * WAL.  "Not there" counts only from a region whose repository identity is
 * this cluster's: an empty or unmounted directory or a wrong prefix is a
 * failure, never the end of the archive.  Result:
 *   0                found and written
 *   WALFETCH_MISSING every region answered a definite "no such object"
 *   -1               anything else (corrupt, foreign, wrong key, no
 *                    identity, region unreachable past the retry
 *                    deadline): e says which region and why
 * A corrupt or unreachable copy in one region does not stop the search: a
 * good copy in another region is used (and the fault is reported to
 * `notes`, with the regions that lack the file at debug level, and what
 * the regions' drivers report; NULL: nothing).
 *
 * Prefetch: prefetched files live, decoded and verified, in
 * DIR/.walship-prefetch/ where DIR is DEST's directory (pg_wal), so serving
 * one is a rename on the same file system.
 */
#ifndef WALSHIP_WALFETCH_H
#define WALSHIP_WALFETCH_H

#include <stdint.h>

#include "cluster.h"
#include "config.h"
#include "err.h"
#include "keys.h"
#include "note.h"

#define WALFETCH_MISSING 1
#define WALFETCH_PREFETCH_DIR ".walship-prefetch"

/* `order`: region indexes into conf->regions, n of them.  `ci`: the
 * cluster being recovered (sysid 0 = not known yet: learnt from the first
 * region's identity, and filled in for the next calls). */
int walfetch_one(const struct config *conf, const struct keyring *kr, const struct note_sink *notes, const int *order,
                 int n, const char *name, const char *dest, struct cluster_info *ci, int *served_by, struct err *e);

/* The same, keeping each region's repository open in cache[region index]
 * (conf->nregions slots, NULL at first; the caller frees them with
 * repo_free) so that consecutive fetches reuse their connections. */
struct repo;
int walfetch_one_cached(const struct config *conf, const struct keyring *kr, const struct note_sink *notes,
                        const int *order, int n, const char *name, const char *dest, struct cluster_info *ci,
                        struct repo **cache, int *served_by, struct err *e);

/* If NAME was prefetched into DEST's directory, move it onto DEST: 1 served,
 * 0 not there.  While a prefetcher is still downloading NAME, waits up to
 * wait_ms for it. */
int walfetch_from_prefetch(const char *name, const char *dest, const struct cluster_info *ci, unsigned wait_ms,
                           struct err *e);

/* NAME is not in the prefetch directory: if a prefetcher serves there, ask
 * it (walfetch_ask.c): 1 it fetched NAME and it is now on DEST,
 * WALFETCH_ASK_MISSING every region answered that it has no NAME (e says
 * so), 0 no answer (no prefetcher, another cluster's or configuration's,
 * it failed, or wait_ms passed): fetch it yourself; -1 moving the answer
 * onto DEST failed.  ci: the cluster being recovered (sysid 0: not asked);
 * fingerprint: walfetch_fingerprint of the caller's configuration. */
#define WALFETCH_ASK_MISSING 2
int walfetch_ask(const char *name, const char *dest, const struct cluster_info *ci, const char *fingerprint,
                 unsigned wait_ms, struct err *e);

/* 16 hex digits naming the regions asked (name, url, endpoint, prefix;
 * `order`, n of them, in that order) and the key file: a prefetcher
 * answers only its own configuration. */
void walfetch_fingerprint(const struct config *conf, const int *order, int n, char out[17]);

/* Keep `count` segments after `name` (segments of `seg_size` bytes) ready
 * in the prefetch directory, `parallel` downloads at a time, and follow
 * recovery as it takes them (a sliding window, one connection per worker
 * and region for the whole run).  The window closes at the first missing
 * segment, or when recovery has taken nothing for two minutes; a question
 * that then finds a segment (a standby's archive grew) opens it again from
 * there, for up to WALFETCH_FOLLOW_MS.  Returns when its question server
 * leaves (walfetch_int.h).  Runs in the calling process (wal-fetch calls
 * it in a detached child). */
void walfetch_prefetch(const struct config *conf, const struct keyring *kr, const struct note_sink *notes,
                       const int *order, int n, const struct cluster_info *ci, const char *name, const char *dest,
                       uint64_t seg_size, int count, int parallel);

#endif
