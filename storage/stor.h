/*
 * stor — the storage interface, and opening a region's driver.
 *
 * A driver is a struct stor: a versioned table of operations plus its own
 * state.  Keys are relative to the region's prefix ("wal/0000...",
 * "backups/NAME/part-0001"); a driver never sees anything above its prefix.
 *
 * Operations return 0 or -1 with `e` filled: ERR_NOTFOUND for a definite
 * "no such object", e->transient set when a later retry may succeed (the
 * drivers already retried within the configured deadline), ERR_AUTH /
 * ERR_NOBUCKET for permanent faults.  Every message names the region, the
 * bucket or directory, and the key.
 *
 * put() hands back an upload sink: write the object's bytes, then
 * sink_close() makes the object durable and visible in one step (file://:
 * temp file, fsync, link into place without replacing, fsync of the
 * directory; s3://: a conditional PUT or the multipart upload's conditional
 * completion).  Publishing never replaces an object: when the key exists,
 * close fails with ERR_EXISTS and the existing object is left as it was
 * (the caller decides whether it holds the same content).  Where a server
 * cannot do this atomically (S3 servers without conditional writes, such
 * as Swift), the driver checks before and reads back after; docs/S3.md
 * describes the window that remains.  STOR_PUT_REPLACE (walship upgrade
 * only) replaces.  sink_free() without a successful close leaves nothing
 * behind (temp removed, multipart upload aborted).
 *
 * get() streams the object (or a byte range of it) into `out` without
 * closing it; a transfer interrupted by a transient fault resumes where it
 * stopped, so `out` never sees a byte twice.
 *
 * A struct stor is used by one thread at a time.
 */
#ifndef WALSHIP_STOR_H
#define WALSHIP_STOR_H

#include <stdint.h>
#include <time.h>

#include "creds.h"
#include "err.h"
#include "note.h"
#include "stream.h"

#define STOR_OPS_VERSION 3
#define STOR_PUT_REPLACE 0x1     /* put(): replace an existing object */
#define STOR_TO_END UINT64_MAX

struct stor_stat {
    uint64_t size;
    time_t mtime;
    char etag[80];
};

struct stor_entry {
    const char *key;        /* relative to the region prefix */
    uint64_t size;
    time_t mtime;
};

/* Return 0 to continue listing, non-zero to stop (list() then returns 0). */
typedef int (*stor_list_fn)(const struct stor_entry *ent, void *arg);

struct stor;

struct stor_ops {
    unsigned version;
    int (*put)(struct stor *s, const char *key, unsigned flags, struct sink **out, struct err *e);
    int (*get)(struct stor *s, const char *key, uint64_t off, uint64_t len, struct sink *out, struct err *e);
    int (*head)(struct stor *s, const char *key, struct stor_stat *st, struct err *e);
    /* Every key starting with `prefix`, in byte order; with `after`
     * (NULL: none) only the keys that sort after it (S3's start-after). */
    int (*list)(struct stor *s, const char *prefix, const char *after, stor_list_fn fn, void *arg, struct err *e);
    /* Removing a key that does not exist succeeds.  So does removing one the
     * server keeps under Object Lock (retention or legal hold): it stays, and
     * counts in kept_locked (docs/S3.md). */
    int (*remove)(struct stor *s, const char *key, struct err *e);
    int (*remove_many)(struct stor *s, const char *const *keys, size_t n, struct err *e);
    /* Optional (NULL: nothing to sweep): remove what writers that died left
     * behind (temp files) untouched since before `older_than`, never what a
     * live writer may still own; *removed counts them. */
    int (*sweep)(struct stor *s, time_t older_than, uint64_t *removed, struct err *e);
    void (*free)(struct stor *s);
};

struct stor {
    const struct stor_ops *ops;
    char *region;           /* region name, for messages */
    char *where;            /* "bucket acme-pg prefix prod" or "/srv/backup" */
    const char *creds;      /* where the credentials came from ("imds (role r)"), NULL if none */
    uint64_t kept_locked;   /* objects remove()/remove_many() left under Object Lock, since open */
    /* Where the driver reports what an operator should see while it works
     * (a request retried, a multipart upload aborted, credentials
     * refreshed, an object kept under Object Lock): the opts' sink, set by
     * the driver's open; NULL: dropped.  Drivers never log. */
    const struct note_sink *notes;
};

enum s3_checksum { S3_CHECKSUM_MD5 = 0, S3_CHECKSUM_SHA256 };

/* What a driver needs of a region.  Drivers never see struct config: the
 * edge builds this (stor_open() in src/repo/stor_conf.c is the one place
 * that turns a region's configuration into it) and the driver copies what
 * it keeps.  Fields a driver has no use for are ignored (file:// reads only
 * name and url).  `version` is STOR_OPTS_VERSION of the code that built the
 * struct: a driver opened with another refuses (ERR_INTERNAL). */
#define STOR_OPTS_VERSION 2
struct stor_opts {
    unsigned version;               /* STOR_OPTS_VERSION */
    const char *name;               /* region (section) name, for messages */
    /* The command's note sink (note.h), or NULL: the driver reports through
     * it and never logs.  Borrowed: it must outlive the driver. */
    const struct note_sink *notes;
    const char *url;                /* file:///PATH or s3://BUCKET[/PREFIX] */
    /* s3:// */
    const char *endpoint;           /* NULL = https://s3.<aws_region>.amazonaws.com */
    const char *aws_region;         /* SigV4 region; NULL = name */
    int path_style;
    const char *storage_class;
    const char *ca_file;
    int unsigned_payload;
    uint64_t part_size;             /* 0 = default */
    int parallel;                   /* 0 = 1 */
    long connect_timeout, io_timeout;   /* seconds; 0 = the engine's defaults */
    uint64_t retry_deadline;
    struct creds_opts creds;
    enum s3_checksum checksum;
    const char *sse;                /* NULL, "AES256" or "aws:kms" */
    const char *sse_kms_key_id;
    int sse_bucket_key;
};

/* A driver: the url scheme it serves and how to open it.  `version` is the
 * STOR_DRIVER_VERSION the driver was built against; stor_driver_open()
 * refuses a driver of another version, and a struct stor whose ops table
 * has another STOR_OPS_VERSION, with a message that names both. */
#define STOR_DRIVER_VERSION 1
struct stor_driver {
    unsigned version;               /* STOR_DRIVER_VERSION */
    const char *scheme;             /* "file://" */
    int (*open)(const struct stor_opts *o, struct stor **out, struct err *e);
};

extern const struct stor_driver stor_driver_fs;      /* storage/fs/fs.c */
extern const struct stor_driver stor_driver_s3;      /* storage/s3/s3.c */

/* Open the driver whose scheme starts o->url (ERR_CONFIG for none). */
int stor_open_opts(const struct stor_opts *o, struct stor **out, struct err *e);
/* Open driver `d`, checking the versions of the driver, the options and
 * the ops table it hands back. */
int stor_driver_open(const struct stor_driver *d, const struct stor_opts *o, struct stor **out, struct err *e);
void stor_free(struct stor *s);

static inline int stor_put(struct stor *s, const char *key, struct sink **out, struct err *e)
{ return s->ops->put(s, key, 0, out, e); }
static inline int stor_put_replace(struct stor *s, const char *key, struct sink **out, struct err *e)
{ return s->ops->put(s, key, STOR_PUT_REPLACE, out, e); }
static inline int stor_get(struct stor *s, const char *key, struct sink *out, struct err *e)
{ return s->ops->get(s, key, 0, STOR_TO_END, out, e); }
static inline int stor_get_range(struct stor *s, const char *key, uint64_t off, uint64_t len,
                                 struct sink *out, struct err *e)
{ return s->ops->get(s, key, off, len, out, e); }
static inline int stor_head(struct stor *s, const char *key, struct stor_stat *st, struct err *e)
{ return s->ops->head(s, key, st, e); }
static inline int stor_list(struct stor *s, const char *prefix, stor_list_fn fn, void *arg, struct err *e)
{ return s->ops->list(s, prefix, NULL, fn, arg, e); }
static inline int stor_list_after(struct stor *s, const char *prefix, const char *after, stor_list_fn fn, void *arg,
                                  struct err *e)
{ return s->ops->list(s, prefix, after, fn, arg, e); }
static inline int stor_remove(struct stor *s, const char *key, struct err *e)
{ return s->ops->remove(s, key, e); }
static inline int stor_remove_many(struct stor *s, const char *const *keys, size_t n, struct err *e)
{ return s->ops->remove_many(s, keys, n, e); }

static inline int stor_sweep(struct stor *s, time_t older_than, uint64_t *removed, struct err *e)
{
    *removed = 0;
    return s->ops->sweep != NULL ? s->ops->sweep(s, older_than, removed, e) : 0;
}

/* Put a whole buffer (small objects: probes, manifests). */
int stor_put_buf(struct stor *s, const char *key, const void *buf, size_t len, struct err *e);

/* Validate a key: relative, no "..", no "//", no control chars. */
int stor_key_valid(const char *key, struct err *e);

#endif
