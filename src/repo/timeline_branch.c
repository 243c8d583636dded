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
#include <string.h>

int tl_model_add_stored(struct tl_model *m, const char *name, int64_t stored)
{
    size_t n = m->nsegs;
    int rc = tl_model_add(m, name);

    if (rc == 1 && m->nsegs == n + 1)
        m->segs[n].stored = stored;
    return rc;
}

int tl_model_load_stored(struct repo *rp, uint64_t seg_size, struct tl_model *m, struct err *e)
{
    size_t i, k;

    if (tl_model_load_times(rp, seg_size, 1, m, e) < 0)
        return -1;
    for (i = 0, k = 0; i < m->nsegs; i++) {
        while (k < m->ntls && m->tls[k].tli < m->segs[i].tli)
            k++;
        if (k < m->ntls && m->tls[k].tli == m->segs[i].tli && m->segs[i].stored > m->tls[k].newest_time)
            m->tls[k].newest_time = m->segs[i].stored;
    }
    return 0;
}

/* When the segment recovery starts with (segno, read as PostgreSQL reads
 * it on path p) was stored, or a later one of p's target timeline if
 * later; 0 unknown.  Another branch stored after that went on after the
 * backup began and after the timeline 'latest' follows last wrote.  (The
 * target's own last write counts because `walship copy` stores a backup's
 * WAL first and the rest by name later: an old primary's last segments
 * arrive after the new timeline's backup began, but before the new
 * timeline's later segments.) */
static int64_t start_stored(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t segno)
{
    uint32_t tli = tl_read_from(m, p, n, segno, TL_AS_POSTGRES);
    int64_t t = 0;
    size_t i;

    for (i = 0; tli != 0 && i < m->nsegs; i++)
        if (m->segs[i].tli == tli && m->segs[i].segno == segno)
            t = m->segs[i].stored;
    for (i = 0; t > 0 && i < m->nsegs; i++)
        if (m->segs[i].tli == p[n - 1].tli && m->segs[i].stored > t)
            t = m->segs[i].stored;
    return t;
}

/* Timeline tli has a segment past `after` stored after `began` (known). */
static int stored_after(const struct tl_model *m, uint32_t tli, uint64_t after, int64_t began)
{
    size_t i;

    for (i = 0; began > 0 && i < m->nsegs; i++)
        if (m->segs[i].tli == tli && m->segs[i].segno > after && m->segs[i].stored > began)
            return 1;
    return 0;
}

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
    int64_t began;

    if (n == 0)
        return 0;
    began = start_stored(m, p, n, from_lsn / m->seg_size);
    for (k = 0; k < m->ntls; k++) {
        const struct tl_timeline *t = &m->tls[k];
        struct tl_step *q = NULL;
        struct err e = ERR_INIT;
        uint64_t d, limit;
        uint32_t ours = 0;
        size_t nq = 0;
        int went_on;

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
         * new timeline later), unless it was stored after the backup's
         * first segment: a production that wrote less since the fork than
         * a drill whose backup began ahead went on all the same. */
        limit = (d - 1) / m->seg_size;
        went_on = stored_after(m, t->tli, limit, began);
        if (from_lsn / m->seg_size > limit)
            limit = from_lsn / m->seg_size;
        if (went_on || t->newest > limit) {
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
                    "forked off before that backup ended (a drill restored with --keep-archive, a timeline abandoned "
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
