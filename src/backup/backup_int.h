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
    const struct note_sink *notes;  /* the command's (bk_opts.notes), for the regions the workers open */
    struct repo *const *checked;   /* the regions whose identity bk_push checked (NULL: failed) */
    uint64_t sysid;                 /* the cluster's: every object is bound to it */
    const struct bk_list *list;
    const char *name;
    struct bk_part *parts;
    size_t nparts;
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

/* The parts on the worker pool (pool.h), `parallel` workers counting the
 * caller, each with its own connections to the regions.  Region failures
 * are recorded per region (j->region_failed); -1 with the first local
 * fault, which stops the other workers. */
int bk_run_parts(struct bk_job *j, int parallel, struct err *e);

#endif
