/*
 * bkf_tar — the tar path of backup-fetch: one part's tar stream, read by
 * libarchive, turned into files below the restore roots.  Every entry is
 * checked against the manifest BEFORE any work proportional to its size is
 * done, so that a forged part (one a key holder encrypted correctly, with
 * bad content) costs at most what the manifest's sizes allow:
 *
 *   - a file must be listed in the manifest, for this part, once, with the
 *     size the tar header declares (so the number of file entries of a part
 *     is bounded by the manifest's files for it);
 *   - sparse entries (old GNU 'S', PAX GNU.sparse 0.0, 0.1 and 1.0) are
 *     refused from their header: walship writes pax_restricted archives
 *     without sparse entries, and a sparse map lets a few bytes of tar
 *     declare terabytes of holes;
 *   - the data of a file must arrive in order and without gaps, and stop
 *     exactly at its size: every byte hashed is a byte that was in the
 *     stream (no hole is hashed or written);
 *   - paths must be relative and clean, only files and directories.
 *
 * The caller bounds the stream itself (backup_fetch: the part's encoded
 * bytes against the manifest's stored_size, its tar bytes against
 * raw_size); directory entries are bounded by those bytes (512 each).
 * bkf_tar_init() also refuses a manifest whose files do not fit in their
 * part's raw_size.
 *
 * `work` counts the file bytes hashed and written by every worker: tests
 * and the fuzz target use it to check that work is bounded by the stream
 * and the manifest.
 *
 * Thread safety: one struct bkf_tar per fetch, one struct bkf_tar_worker per
 * thread; a part is read by one worker.  The directory list is under `mu`.
 * Library code: never prints.
 */
#ifndef WALSHIP_BKF_TAR_H
#define WALSHIP_BKF_TAR_H

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "err.h"
#include "manifest.h"

/* The permission bits a restored file or directory may get: PostgreSQL
 * makes files 0600 (0640 with group access) and directories 0700 (0750);
 * write for group or others, setuid, setgid and sticky are not taken from
 * a backup, whose manifest and tar a key holder may have written (read
 * bits stay: a file someone made 0644 in PGDATA comes back 0644). */
#define BKF_MODE_MASK 0755

struct bkf_dir {
    int root;               /* 0 = DIR, 1 + i = tablespace i */
    char *rel;
    uint32_t mode;
    int64_t mtime;
};

struct bkf_fidx {
    const char *path;
    size_t i;
};

struct bkf_tar {
    const struct manifest *m;
    const char *region;
    const int *rootfd;              /* [0] DIR, [1 + i] tablespace i */
    atomic_int *abort;              /* may be NULL: stops between entries */
    struct bkf_fidx *idx;           /* manifest files sorted by path */
    unsigned char *done;            /* per manifest file: found */
    size_t *pbase;                  /* per manifest file: its first piece in pdone */
    unsigned char *pdone;           /* per piece (format 3): found */
    atomic_uint_least64_t work;     /* file bytes hashed and written */
    pthread_mutex_t mu;             /* the directory list */
    struct bkf_dir *dirs;
    size_t ndirs, capdirs;
    /* Restoring an incremental (bkf_chain.h): m is link `depth` of `chain`;
     * only the parts with want[part] are read.  NULL for a full backup. */
    struct bkf_chain *chain;
    uint32_t depth;
    const unsigned char *want;
};

struct bkf_tar_worker {
    struct bkf_tar *t;
    uint32_t part;
    const struct man_piece *piece;      /* the current entry is this piece of its file, or NULL */
    int cache_root, cache_fd;
    char cache_path[PATH_MAX];
    EVP_MD_CTX *md;
    uint64_t pend_bytes, pend_files;    /* progress not yet reported */
    void (*tick)(struct bkf_tar_worker *w, void *arg);  /* after each block; may be NULL */
    void *tick_arg;
    char file[PATH_MAX];                /* the entry that failed, or "" */
    struct bkf_dio *dio;                /* large files' direct writer, made on first use */
    int no_dio;                         /* it could not be made: write through the page cache */
};

/* Index and check the manifest (parts in range, no path twice, the files of
 * each part fit in its raw_size).  `rootfd` may be set later. */
int bkf_tar_init(struct bkf_tar *t, const struct manifest *m, const char *region, const int *rootfd,
                 atomic_int *abort, struct err *e);
void bkf_tar_free(struct bkf_tar *t);

/* Indexes 0..nparts-1 of m's parts, largest raw_size first (then by
 * number): a part is read by one worker, so a big part taken last would run
 * alone while the others idle.  malloc'ed; NULL with `e` on out-of-memory. */
size_t *bkf_part_order(const struct manifest *m, struct err *e);

int bkf_tar_worker_init(struct bkf_tar_worker *w, struct bkf_tar *t);
void bkf_tar_worker_free(struct bkf_tar_worker *w);

/* Read part `part`'s entries from `a` (opened by the caller, tar format)
 * up to its end-of-archive mark.  0, or -1 with `e` naming the backup, the
 * region, the part and the entry (w->file). */
int bkf_tar_part(struct bkf_tar_worker *w, struct archive *a, uint32_t part, struct err *e);

/* Copy the current entry's data into fd at base + its offset, hashing it
 * into w->md: in order, no gap, exactly `size` bytes. */
int bkf_tar_copy(struct bkf_tar_worker *w, struct archive *a, uint64_t base, uint64_t size, int fd, const char *name,
                 struct err *e);

/* Files stored as pieces (format 3, restore/bkf_piece.c): created at their
 * size before any part is read (the pieces are written by several workers
 * at once); one piece written and checked against its SHA-256; after every
 * part, their mode and mtime. */
int bkf_piece_prepare(struct bkf_tar *t, struct err *e);
int bkf_piece_extract(struct bkf_tar_worker *w, struct archive *a, const struct man_file *mf, const char *name,
                      struct err *e);
int bkf_piece_finish(struct bkf_tar *t, struct err *e);

/* After every part: each manifest file was found (ERR_CORRUPT otherwise). */
int bkf_tar_check_done(const struct bkf_tar *t, struct err *e);

/* A chain: create `path` (a manifest path) empty at `size` bytes, its
 * directories as needed (0700, set later from the tar). */
int bkf_tar_precreate(struct bkf_tar_worker *w, const char *path, uint64_t size, struct err *e);
/* Open a file made by bkf_tar_precreate (no symlink followed); -1 and errno. */
int bkf_tar_open_existing(struct bkf_tar_worker *w, const char *path, int flags);

#endif
