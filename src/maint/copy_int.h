/*
 * copy_int — what the parts of the copy engine share (copy.c: the
 * backups and their chains; copy_wal.c: the WAL).  Not an interface for
 * others.
 */
#ifndef WALSHIP_COPY_INT_H
#define WALSHIP_COPY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "copy.h"
#include "manifest.h"
#include "repo.h"

/* ---- a listing: keys and sizes, sorted ---- */

struct obj {
    char *key;
    uint64_t size;
    int done;                   /* WAL copied (or to be, in a dry run) before a manifest */
};

struct objlist {
    struct obj *v;
    size_t n, cap;
    int oom;
};

struct copy_run {
    struct repo *src, *dst;
    const struct copy_opts *o;
    int dry_run;
    struct copy_result *res;
    struct objlist wsrc, wdst;  /* wal/ of R1 and of R2 (as it was before the copy) */
};

int objlist_load(struct repo *r, const char *prefix, struct objlist *l, struct err *e);
const struct obj *objlist_find(const struct objlist *l, const char *key);
void objlist_free(struct objlist *l);

/* Copy one object byte for byte (over R2's with `replace`), counted in
 * `t`; a dry run only reports it. */
int copy_object(struct copy_run *r, const char *key, uint64_t size, int replace, struct copy_tally *t,
                struct err *e);
void skip_object(uint64_t size, struct copy_tally *t);

/* The WAL backup `m` needs (start to stop segment, and .history files)
 * that R2 lacks: copied before its manifest, marked done in r->wsrc. */
int copy_backup_wal(struct copy_run *r, const struct manifest *m, struct err *e);
/* ... and just before its manifest, all of it still in R2? */
int copy_backup_wal_check(struct copy_run *r, const struct manifest *m, struct err *e);
/* Every wal/ object from `floor_wal`'s position on (all when NULL), and
 * every .history file, but those copied with a backup. */
int copy_wal(struct copy_run *r, const char *floor_wal, struct err *e);

#endif
