/*
 * archive — archiving one WAL file to every region (wal-push's engine).
 *
 * archive_push_file() reads the file once: a SHA-256 tee and the object
 * encoder feed a fan-out whose branches are the upload sinks of the sync
 * regions that lack the file and, when there are async regions, one spool
 * file queued for each of them.  A region that already holds the name is
 * checked for identical content (decoded and compared by SHA-256): the same
 * content succeeds without an upload, different content is ERR_EXISTS and is
 * never overwritten.
 *
 * Success (0) means: durable in every sync region, and in every async region
 * or fsync'd in the spool.  On failure the healthy regions still received
 * the file, and the report says which region failed and why.
 *
 * An archiver is used by one thread; open one per thread for parallel
 * pushes (they may share the config, keyring and spool directory).
 */
#ifndef WALSHIP_ARCHIVER_H
#define WALSHIP_ARCHIVER_H

#include <semaphore.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "keys.h"
#include "note.h"
#include "repo.h"
#include "spool.h"

#define ARCHIVE_MAX_REGIONS 16

struct archiver {
    const struct config *conf;
    const struct keyring *kr;
    struct spool *sp;               /* NULL when no region is async */
    struct repo_ident cluster;      /* the cluster being archived */
    struct repo *rp[ARCHIVE_MAX_REGIONS];   /* sync regions only; NULL for async */
    int bad[ARCHIVE_MAX_REGIONS];   /* the region could not be opened or is not this cluster's */
    struct err bad_err[ARCHIVE_MAX_REGIONS];
    char queue[ARCHIVE_MAX_REGIONS][SPOOL_QUEUE_MAX];  /* async regions' spool queues */
    int zstd_workers;
    const struct note_sink *notes;  /* a region's failure, a same-content skip; NULL: none */
    /* Slots shared by the threads of one process (NULL: none): one of
     * encode_slots is held while the file is read and encoded, one of
     * commit_slots while the regions and the spool commit it (the upload,
     * the fsync).  With twice as many threads as slots of each, a thread
     * encodes while another one's upload waits on the network or disk. */
    sem_t *encode_slots, *commit_slots;
    /* Opened with `like` (the identities checked by another archiver, maybe
     * long ago): each sync region's identity is read again right before
     * every commit to it (repo_ident_recheck). */
    int recheck_ident;
};

struct archive_report {
    char sha256_hex[65];
    uint64_t size;
    uint64_t stored_bytes;          /* encoded size */
    int uploaded;                   /* regions that received an upload */
    int already;                    /* regions that already had it */
    int spooled;                    /* async regions queued */
    int failed;                     /* regions that failed */
    char failed_regions[256];
};

/* Open every sync region and check (or create) its repository identity
 * against `cluster`.  A region that cannot be opened, or whose identity
 * names another cluster, fails every push of this archiver (named in the
 * report) while the others still receive the file.  With `like` (an
 * archiver opened before, in another thread) the regions are opened again
 * and the identities it checked are taken as they are, then read again
 * before each commit: a region whose identity is gone or changed since
 * fails that push (ERR_NOREPO, ERR_FOREIGN) and receives nothing.  `sp` may be NULL if
 * no region is async.  `notes` (may be NULL) hears what the archiver and the
 * regions' drivers report as they work. */
int archiver_open(const struct config *conf, const struct keyring *kr, const struct note_sink *notes, struct spool *sp,
                  const struct repo_ident *cluster, const struct archiver *like, struct archiver *a, struct err *e);
void archiver_close(struct archiver *a);

/* Archive one file.  A segment (or .partial) must be one of the cluster's,
 * and the very segment its name says: its first page header is checked
 * (cluster.h) before anything is uploaded. */
int archive_push_file(struct archiver *a, const char *path, const char *name, struct archive_report *rep,
                      struct err *e);

#endif
