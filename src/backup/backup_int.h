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

struct bk_part {
    size_t first, last;         /* items[first .. last-1] */
    uint64_t planned;           /* file bytes at listing time */
    uint64_t raw, stored;
    uint32_t files;
};

struct bk_job {
    const struct config *c;
    const struct keyring *kr;
    struct repo *const *checked;   /* the regions whose identity bk_push checked (NULL: failed) */
    uint64_t sysid;                 /* the cluster's: every object is bound to it */
    const struct bk_list *list;
    const char *name;
    struct bk_part *parts;
    size_t nparts;
    size_t next_part;
    uint64_t target;            /* planned bytes per part */
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

/* Cut the listing into parts: enough to keep `parallel` workers busy, none
 * above part_size (j->parts has room for l->n + 1). */
void bk_plan_parts(struct bk_job *j, const struct bk_list *l, uint64_t part_size, int parallel);

/* A worker thread: takes parts from the job until none is left or the job
 * failed; region failures are recorded per region, others stop the job. */
void *bk_part_worker(void *arg);

#endif
