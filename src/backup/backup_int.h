/*
 * backup_int — what the two halves of backup-push share: the job that the
 * part workers (backup.c: tar, count, encode, fan out) take parts from, and
 * that bk_push (bk_push.c: the server, the regions, the manifest) plans and
 * finishes.  Not for use outside src/backup/.
 */
#ifndef WALSHIP_BACKUP_INT_H
#define WALSHIP_BACKUP_INT_H

#include <pthread.h>
#include <stdint.h>

#include "backup.h"
#include "bk_incr.h"
#include "bk_walk.h"
#include "manifest.h"
#include "repo.h"

/* What goes into a part: a directory, a whole file, or a piece of a big
 * file (bk_piece.c). */
struct bk_unit {
    size_t item;                /* in the listing */
    uint64_t off, len;          /* a piece: its bytes; else 0 and the listed size */
    int big;                    /* index in bk_job.bigs, or -1 (not a piece) */
    uint32_t piece;             /* the piece's index in its file */
};

/* A file of a full backup stored as pieces: filled as its parts finish. */
struct bk_big {
    size_t item;
    uint64_t size;              /* at listing time: the file's size in the backup */
    uint32_t npieces, done;
    struct man_piece *pieces;   /* offset and size planned, part and sha256 when stored */
    unsigned char *hashes;      /* the whole file's block hashes, or NULL */
};

struct bk_part {
    size_t first, last;         /* units[first .. last-1] */
    uint64_t planned;           /* file bytes at listing time */
    int pieces;                 /* holds a piece of a big file */
    uint64_t raw, stored;
    uint32_t files;
};

struct bk_job {
    const struct config *c;
    const struct keyring *kr;
    const struct note_sink *notes;  /* the command's (bk_opts.notes), for the regions the workers open */
    struct repo *const *checked;   /* the regions whose identity bk_push checked (NULL: failed) */
    uint64_t sysid;                 /* the cluster's: every object is bound to it */
    const struct bk_list *list;
    const char *name;
    struct bk_part *parts;
    size_t nparts;
    struct bk_unit *units;
    size_t nunits;
    struct bk_big *bigs;
    size_t nbigs;
    uint64_t target;            /* planned bytes per part */
    uint64_t piece_size;        /* a file above it is stored as pieces (full backups) */
    struct manifest *man;       /* files added under lock */
    pthread_mutex_t lock;
    int region_failed[BK_MAX_REGIONS];
    struct err region_err[BK_MAX_REGIONS];
    int fatal;                  /* a local fault: stop everything */
    struct err fatal_err;
    uint64_t done;              /* bytes of files read, atomically updated */
    uint32_t bs;                /* block size of the block hashes */
    const struct bk_incr *inc;  /* the parent, when incremental */
    struct bh_set own;          /* this backup's block hashes, under lock */
};

/* The parts on the worker pool (pool.h), `parallel` workers counting the
 * caller, each with its own connections to the regions.  Region failures
 * are recorded per region (j->region_failed); -1 with the first local
 * fault, which stops the other workers. */
int bk_run_parts(struct bk_job *j, int parallel, struct err *e);

/* bk_piece.c: the parts, units and big files of the listing (j->bs and
 * j->inc set); bk_plan_free releases them. */
int bk_plan(struct bk_job *j, const struct bk_list *l, uint64_t part_size, int parallel, struct err *e);
void bk_plan_free(struct bk_job *j);
/* One piece of a big file into the tar: 1, or -1 (`failed`: the sink's
 * own failure, already in `e`).  sha (hex) and block hashes (malloc'd). */
struct archive;
int bk_tar_piece(struct bk_job *j, struct archive *a, const int *failed, const struct bk_unit *u,
                 unsigned char *buf, size_t buflen, char sha[65], unsigned char **hashes, struct err *e);
/* Under j->lock: piece `piece` of big file `big` stored in `part`. */
void bk_big_record(struct bk_job *j, int big, uint32_t piece, uint32_t part, const char sha[65],
                   const unsigned char *hashes);
/* After every part: the big files into the manifest (format 3) and the
 * block hashes. */
int bk_bigs_finish(struct bk_job *j, struct err *e);

#endif
