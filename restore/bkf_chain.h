/*
 * bkf_chain — restoring an incremental backup: its chain of manifests, and
 * which link writes which block (docs/BACKUP.md "Incremental backups").
 *
 * bkf_chain_load() follows the parent links from the target backup to its
 * full backup: each parent's manifest must decode, be the one its child was
 * taken against (SHA-256 of the manifest's plaintext), have the depth one
 * less and the same block size.  A missing or damaged link is refused,
 * naming it.  It then parses the target's block maps and checks that every
 * link a map refers to lists the file with blocks of its own, and notes
 * which parts of each link hold something the target needs (the others
 * are not downloaded).
 *
 * The target's files with a map are created empty at their final size
 * before any part is read; every link then writes only the blocks the
 * target's map assigns to it, at their offsets (bkf_tar.c).  At the end
 * bkf_chain_finish() checks that every block was written exactly once and
 * the SHA-256 of every such file against the target's manifest: computed
 * as the file is assembled, in block order (struct bkf_cfile), or read
 * back when that was given up.
 *
 * Memory: the manifests of the chain and the target's parsed maps: it
 * does not depend on the size of the data.  Library code: never prints.
 */
#ifndef WALSHIP_BKF_CHAIN_H
#define WALSHIP_BKF_CHAIN_H

#include <archive.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "blockmap.h"
#include "err.h"
#include "manifest.h"
#include "repo.h"

/* Link `depth` has written its blocks of a file below block `next` (a
 * link's entry writes them in increasing order). */
struct bkf_lprog {
    uint32_t depth;
    uint64_t next;
};

struct bkf_cfile {
    struct bm_map map;              /* the target's map (files with one) */
    atomic_uint_least64_t blocks;   /* blocks written */
    atomic_int verified;            /* its SHA-256 was checked in a stream */
    /* The file's SHA-256 computed in block order as it is assembled, so
     * that bkf_chain_finish need not read it back: a block is hashed from
     * the stream that writes it when it is the next one, else read back
     * (while hot) once its link has written it and every block before it is
     * hashed.  Under c->locks[index % BKF_LOCKS]. */
    struct bkf_lprog *lp;           /* per depth the map uses */
    uint32_t nlp;
    uint64_t hashed;                /* blocks 0..hashed-1 are in md */
    struct bm_cursor hc;            /* the map at `hashed` */
    EVP_MD_CTX *md;                 /* NULL until the first block is hashed */
    int hash_off;                   /* given up (an error): read back at the end */
};

#define BKF_LOCKS 64

struct bkf_chain {
    struct manifest **links;        /* [0] the target (not owned), [d] depth d */
    uint32_t n;
    uint32_t bs;
    const struct man_file **tidx;   /* the target's files by path */
    const struct man_file ***lidx;  /* each link's files by path */
    struct bkf_cfile *cf;           /* per target file (index in links[0]->files) */
    unsigned char **want;           /* want[d][part]: link d's part is needed */
    pthread_mutex_t locks[BKF_LOCKS];   /* the files' hashing state, striped by index */
    atomic_uint_least64_t reread;       /* bytes read back to hash assembled files */
    int locks_init;
};

int bkf_chain_load(struct repo *r, const struct manifest *target, struct bkf_chain *c, struct err *e);
void bkf_chain_free(struct bkf_chain *c);

/* The target's file at `path` and its state, or NULL. */
const struct man_file *bkf_chain_target(const struct bkf_chain *c, const char *path, struct bkf_cfile **cf);

/* One file entry of a link's part (bkf_tar.c calls it for every file of
 * a chain but the target's whole files): writes the blocks the target
 * assigns to this link.  When the entry is the whole target file it checks
 * the entry's stored SHA-256 and marks the file verified; otherwise
 * bkf_chain_finish checks what it wrote. */
struct bkf_tar_worker;
int bkf_chain_entry(struct bkf_tar_worker *w, struct archive *a, const struct man_file *mf, const char *name,
                    struct err *e);

struct bkf_tar;
/* Before any part: `t` (the target's index) set up for the chain, and
 * every file with a map created empty at its final size. */
int bkf_chain_prepare(struct bkf_chain *c, struct bkf_tar *t, struct err *e);

/* Every mapped file complete and verified (read back and hashed by
 * `nthreads` threads); mode and mtime set.  Paths routed as in bkf_tar. */
int bkf_chain_finish(struct bkf_chain *c, struct bkf_tar *t, int nthreads, struct err *e);

#endif
