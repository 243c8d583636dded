/*
 * verify_int — what the parts of verify share (verify.c: the region and
 * each backup's objects; verify_wal.c: WAL continuity through the timeline
 * model; verify_full.c: --full decoding).  Not an interface for others.
 */
#ifndef WALSHIP_VERIFY_INT_H
#define WALSHIP_VERIFY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "manifest.h"
#include "timeline.h"
#include "verify.h"

/* Add a problem about `object` (one per object: several backups share
 * WAL).  -1 only when out of memory. */
int vfy_problem(struct vfy_report *r, const char *object, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A listing: keys relative to the region prefix, with stored sizes. */
struct vfy_obj {
    char *key;
    uint64_t size;
};

struct vfy_objs {
    struct vfy_obj *v;
    size_t n, cap;
    int failed;
};

int vfy_objs_list(struct stor *s, const char *prefix, struct vfy_objs *l, struct err *e);
const struct vfy_obj *vfy_objs_find(const struct vfy_objs *l, const char *key);
void vfy_objs_free(struct vfy_objs *l);

/* ---- verify_wal.c ---- */

/* The model of wal/ from its listing; an unusable history file is a
 * problem.  Counts r->wal_segments. */
int vfy_wal_model(struct repo *rp, const struct vfy_objs *wal, struct tl_model *tm, struct vfy_report *r,
                  struct err *e);
/* Timelines above 1 without a usable history file.  -1: out of memory. */
int vfy_check_histories(const struct tl_model *tm, struct vfy_report *r);
/* The WAL backup `m` needs, to the newest timeline that descends from it.
 * -1: out of memory. */
int vfy_check_backup_wal(const struct tl_model *tm, const struct manifest *m, struct vfy_report *r);

/* ---- verify_full.c ---- */

/* Stream part `mp` of `m` (at `key`) through the decoder and libarchive:
 * sizes and SHA-256 against the manifest; seen[i] set for each file found. */
int vfy_full_part(struct repo *rp, const struct manifest *m, const struct man_part *mp, const char *key,
                  unsigned char *seen, struct vfy_report *r, struct err *e);
/* Decode an object fully; with `segment` its first page must say it is
 * that segment of this cluster; `want` (0: any) is the decoded size. */
int vfy_full_object(struct repo *rp, const char *key, uint64_t want, const char *segment, const char *what,
                    struct vfy_report *r, struct err *e);

/* ---- verify_chain.c ---- */

/* The chain of incremental `m` as restore loads it: every link present,
 * the manifest its child was taken against, one depth less, the same block
 * size; every block its maps assign to a link held by that link itself;
 * and no link with damaged[k] set (k: its index in `cat`; its own check
 * found a problem).  A broken chain is a problem on m's manifest naming the
 * link.  -1: out of memory. */
int vfy_check_chain(struct repo *rp, const struct catalog *cat, const unsigned char *damaged,
                    const struct manifest *m, struct vfy_report *r, struct err *e);

#endif
