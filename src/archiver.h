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

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "keys.h"
#include "spool.h"
#include "stor.h"

#define ARCHIVE_MAX_REGIONS 16

struct archiver {
    const struct config *conf;
    const struct keyring *kr;
    struct spool *sp;               /* NULL when no region is async */
    struct stor *st[ARCHIVE_MAX_REGIONS];   /* sync regions only; NULL for async */
    int zstd_workers;
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

/* `sp` may be NULL if no region is async. */
int archiver_open(const struct config *conf, const struct keyring *kr, struct spool *sp, struct archiver *a,
                  struct err *e);
void archiver_close(struct archiver *a);

int archive_push_file(struct archiver *a, const char *path, const char *name, struct archive_report *rep,
                      struct err *e);

/* SHA-256 (hex) and size of a local file; with `decode_kr` the file is an
 * encoded object and both are of its plaintext. */
int archive_hash_file(const char *path, const struct keyring *decode_kr, char hex[65], uint64_t *size,
                      struct err *e);
/* SHA-256 (hex) of the plaintext of object `key` in a region. */
int archive_hash_remote(struct stor *s, const char *key, const struct keyring *kr, char hex[65], struct err *e);

/* Download and decode `key` from a region into `next` (decoder errors
 * prefixed with the region and key).  Takes ownership of `next`: the chain
 * is closed (on success) and freed in every case. */
int archive_fetch_decoded(struct stor *s, const char *key, const struct keyring *kr, struct sink *next,
                          struct err *e);

/* Download `key` (decoded and authenticated unless kr is NULL) to an open
 * file descriptor. */
int archive_fetch_to_fd(struct stor *s, const char *key, const struct keyring *kr, int fd, struct err *e);
/* Download `key` into DEST through DEST.walship-tmp.PID: fsync'd, then
 * renamed, so DEST appears only complete (and, with kr, authenticated). */
int archive_fetch_to_file(struct stor *s, const char *key, const struct keyring *kr, const char *dest,
                          struct err *e);

#endif
