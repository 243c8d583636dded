/*
 * spool — the local, crash-safe queue of encoded WAL objects for async
 * regions, and the small state files wal-push keeps beside it.
 *
 * Layout under spool_dir:
 *   queue/REGION/NAME   one hard link per async region still lacking NAME,
 *                       all to the same encoded object (stored once)
 *   pushed/NAME         push-ahead marker: identity and SHA-256 of the
 *                       file that was archived in every region
 *   claims/NAME         flock()ed by whoever is pushing NAME right now
 *   tmp/                objects being written (removed at start-up if old)
 *   conflicts/REGION/   files a region refused because it holds another
 *                       file of the same name (kept for the operator)
 *   ship.lock           flock()ed by the running shipper
 *
 * An object enters the queues only once it is fsync'd, and every queue
 * entry is made durable (directory fsync) before spool_put's close returns,
 * so a crash at any point loses nothing acknowledged and leaves at worst a
 * stray temp file.  The spool's size is the sum of its distinct objects;
 * spool_put refuses new objects past spool_max_bytes (PostgreSQL keeps the
 * WAL and retries).  Separate processes share a spool safely; one struct
 * spool is used by one thread at a time.
 */
#ifndef WALSHIP_SPOOL_H
#define WALSHIP_SPOOL_H

#include <stdint.h>
#include <time.h>

#include "err.h"
#include "stream.h"

struct spool;

int spool_open(const char *dir, uint64_t max_bytes, struct spool **out, struct err *e);
void spool_free(struct spool *sp);
const char *spool_dir(const struct spool *sp);

/* A sink for the encoded object NAME; close links it into the queue of
 * each of `regions`.  `size_hint` (an upper bound of the object's size, or
 * 0) is checked against spool_max_bytes before anything is written. */
int spool_put(struct spool *sp, const char *name, char *const *regions, size_t nregions, uint64_t size_hint,
              struct sink **out, struct err *e);

struct spool_usage {
    uint64_t bytes;     /* distinct objects */
    uint64_t objects;
    uint64_t entries;   /* queue entries over all regions */
    time_t oldest;      /* mtime of the oldest entry, 0 if none */
};
int spool_usage(struct spool *sp, const char *region, struct spool_usage *u, struct err *e);

/* Queued names for a region, sorted (archive order).  Free with
 * spool_names_free. */
int spool_list(struct spool *sp, const char *region, char ***names, size_t *n, struct err *e);
void spool_names_free(char **names, size_t n);
/* Names of regions that have a queue directory. */
int spool_regions(struct spool *sp, char ***names, size_t *n, struct err *e);
int spool_entry_path(struct spool *sp, const char *region, const char *name, char *buf, size_t len);
int spool_is_queued(struct spool *sp, const char *region, const char *name);
/* The region has NAME now: drop the entry durably. */
int spool_done(struct spool *sp, const char *region, const char *name, struct err *e);

/* Move a queue entry the region cannot take (it holds different content)
 * to conflicts/REGION/NAME, for the operator. */
int spool_set_aside(struct spool *sp, const char *region, const char *name, struct err *e);

/* Push-ahead markers: the identity (device, inode, size, mtime, ctime to
 * the nanosecond) of the file that was archived, and its SHA-256. */
struct stat;
int spool_mark_pushed(struct spool *sp, const char *name, const char *sha256_hex, const struct stat *st,
                      struct err *e);
/* 1 if a marker for NAME records exactly this identity. */
int spool_pushed_matches(struct spool *sp, const char *name, const struct stat *st);
int spool_has_marker(struct spool *sp, const char *name);
/* Same identity (the file was not written to or replaced in between)? */
int spool_same_file(const struct stat *a, const struct stat *b);
void spool_unmark_pushed(struct spool *sp, const char *name);

/* Locks: flock on spool_dir/NAME (claims/X or ship.lock).  `wait_ms` 0 =
 * try once; returns 1 locked (fd in *fd), 0 held by someone else. */
int spool_lock(struct spool *sp, const char *lockname, unsigned wait_ms, int *fd, struct err *e);
void spool_unlock(int fd);

#endif
