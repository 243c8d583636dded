/*
 * spool — the local, crash-safe queue of encoded WAL objects for async
 * regions, and the small state files wal-push keeps beside it.
 *
 * Layout under spool_dir: one directory per cluster, named by its system
 * identifier, so clusters that share a spool_dir never see each other's
 * files; in it:
 *   identity.json       the cluster's repository identity (repo.h), for
 *                       the shipper to create in a region that has none
 *   queue/QUEUE/NAME    one hard link per async region still lacking NAME,
 *                       all to the same encoded object (stored once);
 *                       QUEUE is the region's name and a hash of its url
 *                       and endpoint (spool_queue_name), so an entry is
 *                       shipped only to the very storage it was queued for
 *   pushed/NAME         push-ahead marker: identity and SHA-256 of the
 *                       file that was archived in every region
 *   claims/NAME         flock()ed by whoever is pushing NAME right now
 *   tmp/                objects being written (removed at start-up if old)
 *   conflicts/QUEUE/    files a region refused because it holds another
 *                       file of the same name (kept for the operator)
 *   state/QUEUE.json    the shipper's view of each region: last success,
 *                       last error and its code, backlog (spool_state)
 *   ship.lock           flock()ed by the running shipper
 *   backup.lock         flock()ed by the running backup-push
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

#define SPOOL_QUEUE_MAX 160

/* Open the spool of cluster `sysid` under `dir` (created as needed).  Its
 * directories must be real, ours and writable by nobody else; root is
 * refused a spool another user owns before anything is made (ERR_CONFIG). */
int spool_open(const char *dir, uint64_t max_bytes, uint64_t sysid, struct spool **out, struct err *e);
/* The same spool to read only (status): nothing is made or swept; its
 * directories may be missing (nothing spooled) or another user's, but
 * not links nor writable by group or others.  Not for writing. */
int spool_open_ro(const char *dir, uint64_t sysid, struct spool **out, struct err *e);
void spool_free(struct spool *sp);
/* The cluster's directory (spool_dir/SYSID). */
const char *spool_dir(const struct spool *sp);
uint64_t spool_sysid(const struct spool *sp);

/* The queue of an async region: "NAME-" and 16 hex digits of SHA-256 of
 * its url and endpoint. */
void spool_queue_name(const char *region, const char *url, const char *endpoint, char out[SPOOL_QUEUE_MAX]);

/* The clusters that have a spool under `dir` (decimal system identifiers,
 * sorted), and the entries walship 0.1.0 left in its flat layout
 * (dir/queue/REGION/NAME), which this version neither ships nor counts. */
int spool_clusters(const char *dir, char ***names, size_t *n, struct err *e);
uint64_t spool_legacy_entries(const char *dir);

/* The cluster's identity, kept beside its queues for the shipper. */
int spool_save_identity(struct spool *sp, const char *json, size_t len, struct err *e);
int spool_load_identity(struct spool *sp, char **json, size_t *len, struct err *e);

/* A sink for the encoded object NAME; close links it into each of
 * `queues`.  `size_hint` (an upper bound of the object's size, or 0) is
 * checked against spool_max_bytes before anything is written. */
int spool_put(struct spool *sp, const char *name, char *const *queues, size_t nqueues, uint64_t size_hint,
              struct sink **out, struct err *e);
/* After a successful close: queue `i` already held NAME (another push
 * queued it first), so nothing was linked there.  The caller must compare
 * contents before counting it as queued. */
int spool_put_existed(const struct sink *s, size_t i);

struct spool_usage {
    uint64_t bytes;     /* distinct objects */
    uint64_t objects;
    uint64_t entries;   /* queue entries over all regions */
    time_t oldest;      /* mtime of the oldest entry, 0 if none */
};
/* Usage of one queue, or of all (`queue` NULL). */
int spool_usage(struct spool *sp, const char *queue, struct spool_usage *u, struct err *e);

/* Queued names in a queue, sorted (archive order).  Free with
 * spool_names_free. */
int spool_list(struct spool *sp, const char *queue, char ***names, size_t *n, struct err *e);
void spool_names_free(char **names, size_t n);
/* The queues that exist (configured regions or not). */
int spool_queues(struct spool *sp, char ***names, size_t *n, struct err *e);
int spool_entry_path(struct spool *sp, const char *queue, const char *name, char *buf, size_t len);
int spool_is_queued(struct spool *sp, const char *queue, const char *name);
/* The region has NAME now: drop the entry durably. */
int spool_done(struct spool *sp, const char *queue, const char *name, struct err *e);

/* Files set aside for a queue (spool_set_aside): never shipped, so the
 * region misses them until the operator acts. */
uint64_t spool_conflicts(struct spool *sp, const char *queue);

/* Move a queue entry the region cannot take (it holds different content)
 * to conflicts/QUEUE/NAME, for the operator; never over a copy set aside
 * before (then NAME.1, NAME.2, ...).  `kept` (if not NULL) gets the path. */
int spool_set_aside(struct spool *sp, const char *queue, const char *name, char *kept, size_t kept_len,
                    struct err *e);

/* What the shipper knows of one async region, for `status`: written after
 * every pass over the region's queue (replacing the file atomically). */
struct spool_state {
    char region[128];
    int64_t updated;            /* Unix seconds */
    int64_t last_success;       /* 0: never */
    int64_t last_error_time;    /* 0: no error since the last success */
    char last_error_code[32];   /* err_code_name(), "" when none */
    char last_error[512];
    uint64_t backlog_files, backlog_bytes;
};
int spool_state_write(struct spool *sp, const char *queue, const struct spool_state *st, struct err *e);
/* ERR_NOTFOUND when the shipper never wrote one. */
int spool_state_read(struct spool *sp, const char *queue, struct spool_state *st, struct err *e);

/* Push-ahead markers: the identity (device, inode, size, mtime, ctime to
 * the nanosecond) of the file that was archived, and its SHA-256. */
struct stat;
int spool_mark_pushed(struct spool *sp, const char *name, const char *sha256_hex, const struct stat *st,
                      struct err *e);
/* 1 if a marker for NAME records exactly this identity. */
int spool_pushed_matches(struct spool *sp, const char *name, const struct stat *st);
int spool_has_marker(struct spool *sp, const char *name);
/* The same with a tag (one line, no newline): written as the marker's third
 * line; matching requires it (a marker from another configuration or
 * binary does not count).  A NULL tag writes none and ignores any. */
int spool_mark_pushed_tag(struct spool *sp, const char *name, const char *sha256_hex, const struct stat *st,
                          const char *tag, struct err *e);
int spool_pushed_matches_tag(struct spool *sp, const char *name, const struct stat *st, const char *tag);
/* Same identity (the file was not written to or replaced in between)? */
int spool_same_file(const struct stat *a, const struct stat *b);
void spool_unmark_pushed(struct spool *sp, const char *name);

/* Locks: flock on spool_dir/NAME (claims/X or ship.lock).  `wait_ms` 0 =
 * try once; returns 1 locked (fd in *fd), 0 held by someone else.  While
 * held, the file holds the holder's PID and a newline (util.h lock_note_holder);
 * spool_unlock empties it (docs/OPERATIONS.md). */
int spool_lock(struct spool *sp, const char *lockname, unsigned wait_ms, int *fd, struct err *e);
void spool_unlock(int fd);

#endif
