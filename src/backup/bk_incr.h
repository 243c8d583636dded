/*
 * bk_incr — the incremental side of backup-push (docs/BACKUP.md
 * "Incremental backups").
 *
 * Every backup records the hash of each block of every file larger than one
 * block (blockmap.h) in backups/NAME/blockhash.  An incremental backup
 * loads its parent's manifest and block hashes (bk_incr_choose), reads every
 * file once, and stores only the blocks whose hash differs from the
 * parent's hash of that block (or that lie beyond the parent's size); the
 * others are referred to by depth in the file's block map, composed with
 * the parent's own map.  The changed blocks are staged in a temporary file
 * (the tar header needs their total size first) so that the file is read
 * exactly once: the hashes, the whole-file SHA-256 and the stored bytes all
 * describe the same read.
 *
 * Library code: logs nothing, never prints.
 */
#ifndef WALSHIP_BK_INCR_H
#define WALSHIP_BK_INCR_H

#include <archive.h>
#include <stdint.h>
#include <sys/stat.h>

#include "blockmap.h"
#include "catalog.h"
#include "err.h"
#include "manifest.h"
#include "repo.h"

struct bk_incr {
    uint32_t block_size;
    int have_parent;
    char parent[CAT_NAME_MAX];
    char parent_sha[65];            /* of the parent's manifest.json */
    uint32_t parent_depth;
    struct manifest *pman;
    const struct man_file **pidx;
    struct bh_set phash;            /* the parent's block hashes, sorted */
};

/* The parent of an incremental: the newest complete backup present in every
 * region of `rp` (NULL entries are skipped), with the same manifest in each.
 * 1: found (inc filled); 0: none usable, or the policy (max_chain,
 * full_every) asks for a full backup: `why` says why (the caller takes a
 * full backup); -1: e (a region could not be read). */
struct bk_incr_policy {
    int max_chain;              /* 0: no limit (but BM_MAX_DEPTH) */
    uint64_t full_every;        /* seconds; 0: never */
    int64_t now;
};

int bk_incr_choose(struct bk_incr *inc, struct repo *const *rp, int n, const struct bk_incr_policy *pol, char *why,
                   size_t whylen, struct err *e);
void bk_incr_free(struct bk_incr *inc);
/* Just before an incremental's manifest is written to `r`: is its parent
 * still there, the same manifest, its chain whole?  A `delete` (another
 * host's, or one whose regions diverged) may have taken a link while the
 * backup ran.  0 yes (or not incremental), 1 no (why set), -1 e (could not
 * be read: a network error). */
int bk_incr_recheck(const struct bk_incr *inc, struct repo *r, char *why, size_t whylen, struct err *e);
/* Just after the manifest of incremental backup `name` was written to
 * `r`: is its parent's manifest still there, the same?  A `delete` that
 * took the parent between bk_incr_recheck and the write left a visible
 * backup that can never be restored: its manifest is removed again (it is
 * an incomplete backup there) and 1 returned (why set).  0 yes (or not
 * incremental), -1 e (could not be read, or the manifest not removed). */
int bk_incr_confirm(const struct bk_incr *inc, struct repo *r, const char *name, char *why, size_t whylen,
                    struct err *e);

/* Block hashes of a file read in arbitrary pieces. */
struct bh_acc {
    uint32_t bs;
    uint64_t size, b;
    uint32_t fill;
    void *md;                       /* EVP_MD_CTX */
    unsigned char *h;               /* NULL when the file is not hashed (size <= bs) */
};

int bh_acc_init(struct bh_acc *a, uint64_t size, uint32_t bs, struct err *e);
void bh_acc_update(struct bh_acc *a, const unsigned char *p, size_t n);
/* The hashes (malloc'd, ownership to the caller), or NULL when not hashed. */
unsigned char *bh_acc_take(struct bh_acc *a);
void bh_acc_free(struct bh_acc *a);

struct bk_incr_file {
    char sha[65];                   /* of the whole file as read */
    uint64_t stored;                /* bytes of its own blocks */
    char stored_sha[65];
    char *map;                      /* malloc'd */
    unsigned char *hashes;          /* malloc'd, every block's */
};

/* Does `path` (of `size` bytes) go as a block map? */
const struct bh_file *bk_incr_parent_of(const struct bk_incr *inc, const char *path, uint64_t size,
                                        const struct man_file **pf);

/* Read `fd` (`size` bytes, zero-padded if it shrank) once: hash, compare
 * with the parent's, stage own blocks in `tmpfd`.  `done` counts bytes read. */
int bk_incr_read(const struct bk_incr *inc, int fd, const char *src, uint64_t size, const struct bh_file *ph,
                 const struct man_file *pf, int tmpfd, unsigned char *buf, size_t buflen, uint64_t *done,
                 struct bk_incr_file *out, struct err *e);
void bk_incr_file_free(struct bk_incr_file *f);

/* Copy `len` bytes staged in tmpfd into the current tar entry. */
int bk_incr_emit(struct archive *a, int tmpfd, uint64_t len, unsigned char *buf, size_t buflen, const char *path,
                 struct err *e);

/* The file being backed up: open descriptor, paths, its fstat. */
struct bk_incr_src {
    int fd;
    const char *src;                /* absolute, for errors */
    const char *path;               /* in the backup */
    const struct stat *st;
};

/* bk_incr_read, then a tar entry of the own blocks (none when nothing
 * changed).  `sink_failed`: the archive's output has failed and set `e`
 * already.  0, or -1 with e. */
int bk_incr_tar(const struct bk_incr *inc, struct archive *a, const int *sink_failed, const struct bk_incr_src *s,
                const struct bh_file *ph, const struct man_file *pf, int tmpfd, unsigned char *buf, size_t buflen,
                uint64_t *done, struct bk_incr_file *out, struct err *e);

/* An anonymous staging file in `dir` (spool_dir). */
int bk_incr_staging_open(const char *dir, struct err *e);

/* The manifest's chain fields (inc NULL: a full backup) and the block
 * hashes `own` it binds, encoded into *bh for backups/NAME/blockhash. */
int bk_incr_manifest(const struct bk_incr *inc, struct bh_set *own, uint32_t bs, struct manifest *m,
                     unsigned char **bh, size_t *bhlen, struct err *e);

#endif
