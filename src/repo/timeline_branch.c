/*
 * timeline_branch — a branch that recovery to "latest" would leave behind.
 *
 * PostgreSQL's 'latest' follows the highest timeline whose history file is
 * archived.  When another history goes on past the point where the path to
 * that timeline leaves it — the parent went on after its switch point (a
 * drill restored with --keep-archive while production kept writing, an
 * old primary that kept archiving after a failover), or a sibling
 * timeline forked off the path and kept writing — the archive holds two
 * living branches, and 'latest' silently picks the higher number, not the
 * newer data.  Only the operator can say which one is production.
 */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>

/* Where path q leaves path p: the LSN, and in *ours the timeline p goes on
 * with from there.  UINT64_MAX when q never leaves p (q is p's target). */
static uint64_t diverge(const struct tl_step *p, size_t n, const struct tl_step *q, size_t nq, uint32_t *ours)
{
    size_t i;

    for (i = 0; i < n && i < nq; i++) {
        if (p[i].tli != q[i].tli) {
            *ours = p[i].tli;
            return p[i].begin;
        }
        if (p[i].end != q[i].end) {
            if (p[i].end < q[i].end) {     /* p switches away from q's history */
                *ours = i + 1 < n ? p[i + 1].tli : p[i].tli;
                return p[i].end;
            }
            *ours = p[i].tli;              /* q switches away from p's timeline */
            return q[i].end;
        }
    }
    return UINT64_MAX;
}

int tl_path_left_branch(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t from_lsn,
                        struct tl_branch *b)
{
    size_t k;

    if (n == 0)
        return 0;
    for (k = 0; k < m->ntls; k++) {
        const struct tl_timeline *t = &m->tls[k];
        struct tl_step *q = NULL;
        struct err e = ERR_INIT;
        uint64_t d, limit;
        uint32_t ours = 0;
        size_t nq = 0;

        if (t->tli == p[n - 1].tli || t->nsegs == 0)
            continue;
        if (tl_path(m, t->tli, &q, &nq, &e) < 0)
            continue;   /* no usable history: recovery cannot be on it */
        d = diverge(p, n, q, nq, &ours);
        free(q);
        if (d == UINT64_MAX || d == 0)
            continue;
        /* The other branch's own copy of the segment holding the point
         * (or, at a segment boundary, of the one before) is normal: it was
         * archived before the promotion.  WAL it wrote before the backup
         * starts does not make the restore ambiguous either (the old
         * primary's last segments after a failover, a backup taken on the
         * new timeline later). */
        limit = (d - 1) / m->seg_size;
        if (from_lsn / m->seg_size > limit)
            limit = from_lsn / m->seg_size;
        if (t->newest > limit) {
            b->parent = t->tli;
            b->child = ours;
            b->fork_lsn = d;
            b->parent_newest = t->newest;
            return 1;
        }
    }
    return 0;
}

int tl_branch_refuse(const struct tl_model *m, const struct tl_branch *b, uint32_t target, const char *where,
                     struct err *e)
{
    char lsn[24], parent_seg[WAL_NAME_LEN + 1];

    wal_format_lsn(b->fork_lsn, lsn);
    wal_segment_name(b->parent, b->parent_newest, m->seg_size, parent_seg);
    return err_setf(e, ERR_USAGE,
                    "%s: the archive holds two branches: at LSN %s recovery to the latest timeline (%u) goes on "
                    "as timeline %u, but timeline %u went on past that point too (up to %s), and that WAL would "
                    "be left behind.  Was a drill restored with --keep-archive, or did the old primary keep "
                    "archiving after a failover?  Say which branch is production: --target-timeline %u "
                    "(PostgreSQL's 'latest') or --target-timeline %u (each restores from the newest backup on "
                    "its way)",
                    where, lsn, (unsigned)target, (unsigned)b->child, (unsigned)b->parent, parent_seg,
                    (unsigned)target, (unsigned)b->parent);
}

int tl_not_child_refuse(uint32_t target, uint32_t tli, const char *backup, const char *where, struct err *e)
{
    return err_setf(e, ERR_NOTFOUND,
                    "%s: timeline %u does not descend from timeline %u, where backup %s was taken: timeline %u "
                    "forked off before that backup (a drill restored with --keep-archive, a timeline abandoned "
                    "by an earlier restore?), and recovery cannot reach it from there.  Say which: "
                    "--target-timeline %u (the backup's own), or a backup on timeline %u's way (--backup, or "
                    "--target-timeline %u alone picks one)",
                    where, (unsigned)target, (unsigned)tli, backup, (unsigned)target, (unsigned)tli,
                    (unsigned)target, (unsigned)target);
}

const struct tl_timeline *tl_orphan_above(const struct tl_model *m, uint32_t target, uint64_t from_seg)
{
    size_t k;

    for (k = 0; k < m->ntls; k++) {
        const struct tl_timeline *t = &m->tls[k];

        if (t->tli > target && t->nsegs > 0 && t->newest >= from_seg && (!t->has_history || t->hist_error != NULL))
            return t;
    }
    return NULL;
}

int tl_orphan_refuse(const struct tl_model *m, const struct tl_timeline *t, uint32_t target, const char *where,
                     struct err *e)
{
    char newest[WAL_NAME_LEN + 1];

    wal_segment_name(t->tli, t->newest, m->seg_size, newest);
    return err_setf(e, ERR_NOTFOUND,
                    "%s: timeline %u has WAL (up to %s) but its history file %08X.history is %s: recovery to "
                    "the latest timeline cannot follow it and would end on timeline %u, leaving that WAL behind.  "
                    "Put the history file back (walship copy from a region that has it), or restore timeline "
                    "%u's end knowingly with --target-timeline %u",
                    where, (unsigned)t->tli, newest, (unsigned)t->tli,
                    t->has_history ? "unreadable" : "not archived", (unsigned)target, (unsigned)target,
                    (unsigned)target);
}
