/*
 * repo — one region's repository: the layout of the bucket (every object
 * key is built here), the repository identity, and encoded objects bound to
 * their key and their cluster (docs/FORMAT.md).
 *
 *   PREFIX/identity.json                   the repository identity
 *   PREFIX/wal/NAME                        one object per WAL file
 *   PREFIX/backups/NAME/part-0001 …        a backup's parts
 *   PREFIX/backups/NAME/backup_label, tablespace_map, manifest.json
 *
 * The identity records the repository format, the PostgreSQL system
 * identifier, major version and WAL segment size of the one cluster the
 * repository belongs to, and when and by which walship it was created.
 * Pushes create it on first use and refuse a region whose identity names
 * another cluster; readers refuse a region that has none (ERR_NOREPO): an
 * empty or unmounted directory or a wrong prefix is an error, never "not
 * found".
 *
 * Every object is encoded with its key and the identity's system
 * identifier in its authenticated header: repo_get() decodes an object only
 * where it was written and for the cluster it was written for (ERR_FOREIGN
 * otherwise).  Publishing never replaces an existing object (stor.h).
 *
 * A struct repo owns its storage driver and borrows the keyring; it is used
 * by one thread at a time (open one per thread).
 */
#ifndef WALSHIP_REPO_H
#define WALSHIP_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "keys.h"
#include "obj.h"
#include "stor.h"
#include "stor_conf.h"
#include "stream.h"

#define REPO_FORMAT 2
#define REPO_KEY_IDENTITY "identity.json"
#define REPO_WAL_DIR "wal/"
#define REPO_BACKUP_DIR "backups/"
#define REPO_KEY_MAX 256

struct repo_ident {
    unsigned format;            /* REPO_FORMAT */
    uint64_t sysid;             /* PostgreSQL system identifier */
    unsigned pg_major;          /* 15 */
    uint32_t seg_size;          /* wal_segment_size */
    int64_t created;            /* Unix seconds */
    char created_by[64];        /* "walship 0.2.0" */
};

struct repo {
    struct stor *st;            /* owned */
    const struct keyring *kr;   /* borrowed; may be NULL (nothing to decrypt) */
    const char *name;           /* the region's name (st->region) */
    struct repo_ident id;       /* valid when have_id */
    int have_id;
    char id_key[KEYS_ID_HEX_LEN + 1];   /* the identity's key id when have_id, "" unencrypted */
    const char *spool_dir;      /* borrowed from the config; may be NULL */
    char region_id[160];        /* name-hash of url and endpoint (repo_region_id) */
};

/* A region's local name: "NAME-" and 16 hex digits of SHA-256 over its url
 * (trailing slashes dropped) and endpoint.  Spool queues and the memory of
 * known regions use it, so that a region keeps its name only while it is
 * the same place. */
#define REPO_REGION_ID_MAX 160
void repo_region_id(const char *name, const char *url, const char *endpoint, char out[REPO_REGION_ID_MAX]);

/* Keys.  -1 when the result does not fit (REPO_KEY_MAX). */
int repo_key_wal(char *buf, size_t n, const char *walname);
int repo_key_backup(char *buf, size_t n, const char *backup, const char *what);
/* backups/NAME/part-NNNN: part `number` (from 1) of a backup. */
int repo_key_part(char *buf, size_t n, const char *backup, unsigned number);

/* Open a region: the driver, and with REPO_OPEN_IDENTITY its identity too
 * (a region without one fails with ERR_NOREPO).  `notes` (may be NULL) is
 * the sink the driver reports to as it works (stor_open). */
#define REPO_OPEN_IDENTITY 0x1
int repo_open(const struct region_conf *rc, const struct config *c, const struct note_sink *notes,
              const struct keyring *kr, unsigned flags, struct repo **out, struct err *e);
void repo_free(struct repo *r);

/* Read the identity (again).  ERR_NOREPO says whether the region is empty
 * or holds objects of walship 0.1.0 (then `walship upgrade` is the way). */
int repo_ident_load(struct repo *r, struct err *e);
/* For pushes: the identity must say `want`'s cluster; created (never
 * replacing one a racing writer made first) when the region has none and
 * holds nothing else.  ERR_FOREIGN names both system identifiers. */
int repo_ident_ensure(struct repo *r, const struct repo_ident *want, struct err *e);
/* r takes the identity another handle on the same region has read or
 * created (its key id too): a worker's own handle, not read again. */
void repo_adopt_identity(struct repo *r, const struct repo *from);
/* For long-running processes, right before they commit an object to a
 * region whose identity they read earlier: read it again.  ERR_NOREPO when
 * it is gone (an unmounted file system, a changed prefix), ERR_FOREIGN when
 * it is another repository's (any field differs); r->id is kept, so a
 * region that comes back as it was passes again. */
int repo_ident_recheck(struct repo *r, struct err *e);
/* A stage that runs repo_ident_recheck() at close, before it closes (and so
 * commits) `next`; on failure `next` is left unclosed, so freeing the chain
 * aborts it.  Takes `next` (freed on error); `r` must outlive the stage. */
int repo_ident_guard_new(struct repo *r, struct sink *next, struct sink **out, struct err *e);
/* -1 (ERR_NOREPO, e says what to do) when this host's spool remembers the
 * region as cluster `sysid`'s (spool_dir/SYSID/known/REGION-ID): a region
 * without an identity that held one is a lost mount, never a repository to
 * create or to bind by `walship upgrade`.  `what` says what the region
 * lacks ("has no repository identity").  0 when not remembered. */
int repo_ident_lost(const struct repo *r, uint64_t sysid, const char *what, struct err *e);
/* Before creating the region's identity (repo_ident_ensure, copy's seeding
 * of an empty region): this host's lock on creating it, so that two
 * creators never each keep an identity of their own (a store without
 * conditional writes takes both PUTs).  1 with *fd locked (let go with
 * lock_file_release; the identity may have been created meanwhile: read it
 * again), 0 without a spool to lock in (*fd -1), -1 (ERR_LOCKED) when
 * another process held it for a minute. */
int repo_ident_create_lock(const struct repo *r, uint64_t sysid, int *fd, struct err *e);
/* The region's identity must belong to cluster `sysid` (ERR_FOREIGN). */
int repo_ident_check(const struct repo *r, uint64_t sysid, struct err *e);
/* A new identity for a cluster (format, created, created_by filled). */
void repo_ident_init(struct repo_ident *id, uint64_t sysid, unsigned pg_major, uint32_t seg_size);
int repo_ident_to_json(const struct repo_ident *id, char **out, size_t *len, struct err *e);
int repo_ident_from_json(const char *buf, size_t len, struct repo_ident *id, struct err *e);

/* Encoder options for an object of this repository: bound to `key` and
 * the identity's cluster; `level` and `kr` from the caller. */
void repo_obj_opts(const struct repo *r, const char *key, int level, struct obj_opts *o);

/* Download `key` and decode it, bound to its key and this repository's
 * cluster, into `next` (closed on success; freed in every case).  Errors
 * are prefixed with the region and key. */
int repo_get(struct repo *r, const char *key, struct sink *next, struct err *e);
/* ... into a file descriptor, or into DEST through a temp file (fsync'd and
 * renamed only once the whole object authenticated). */
int repo_get_to_fd(struct repo *r, const char *key, int fd, struct err *e);
int repo_get_to_file(struct repo *r, const char *key, const char *dest, struct err *e);
/* The same, with CHECK run on the decoded temp file (open read-write) before it
 * is synced and renamed to DEST: a failed check leaves DEST untouched.
 * no_dir_sync skips the directory fsync after the rename (a restore_command
 * target that PostgreSQL reads at once needs no durability). */
struct repo_file_check {
    int (*check)(int fd, void *arg, struct err *e);
    void *arg;
    int no_dir_sync;
};
int repo_get_to_file_checked(struct repo *r, const char *key, const char *dest, const struct repo_file_check *chk,
                             struct err *e);
/* ... into memory, at most `max` bytes (caller frees *buf). */
int repo_get_buf(struct repo *r, const char *key, size_t max, unsigned char **buf, size_t *len, struct err *e);
/* SHA-256 (hex) of the plaintext of `key`. */
int repo_hash(struct repo *r, const char *key, char hex[65], struct err *e);

/* Encode and publish a small object (never replacing one). */
int repo_put_buf(struct repo *r, const char *key, int level, const void *buf, size_t len, struct err *e);

/* A stage for a WAL segment's plaintext on its way to `next`: at close it
 * checks the segment's first page (magic, timeline, page address matching
 * `name`, system identifier; size) and fails without closing `next` when
 * the segment is not what its name says.  Takes `next` (freed on error). */
int repo_segment_check_new(struct sink *next, const char *name, uint64_t sysid, unsigned pg_major,
                           struct sink **out, struct err *e);

/* SHA-256 (hex) and size of a local file; with `bind` the file is an
 * encoded object (a spool entry) and both are of its plaintext. */
int repo_hash_file(const char *path, const struct keyring *kr, struct obj_bind *bind, char hex[65], uint64_t *size,
                   struct err *e);

#endif
