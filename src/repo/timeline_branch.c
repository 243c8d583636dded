/*
 * timeline_branch — a branch that recovery to "latest" would leave behind.
 *
 * PostgreSQL's 'latest' follows the highest timeline whose history file is
 * archived.  When the parent of a timeline on that path went on writing
 * after the switch point (a drill restored with --keep-archive, a failover
 * while the old primary kept archiving), the archive holds two living
 * branches and 'latest' silently picks the newer number, not the newer
 * data.  Only the operator can say which one is production.
 */
#include "timeline.h"

#include <stdio.h>

int tl_path_left_branch(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t from_lsn,
                        struct tl_branch *b)
{
    size_t i;

    for (i = 0; i + 1 < n; i++) {
        const struct tl_timeline *t;
        uint64_t fork_seg;

        if (p[i].end <= from_lsn)
            continue;
        /* the parent's last segment before the switch (the one holding
         * it, or the one before a switch at a segment boundary) is normal;
         * one after it is WAL the parent wrote after the fork */
        if (p[i].end == 0)
            continue;
        fork_seg = (p[i].end - 1) / m->seg_size;
        t = tl_find(m, p[i].tli);
        if (t != NULL && t->nsegs > 0 && t->newest > fork_seg) {
            b->parent = p[i].tli;
            b->child = p[i + 1].tli;
            b->fork_lsn = p[i].end;
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
                    "%s: the archive holds two branches: timeline %u forked from timeline %u at LSN %s, but "
                    "timeline %u went on after it (up to %s).  Recovery to the latest timeline (%u) would leave "
                    "that WAL behind.  Was a drill restored with --keep-archive, or did the old primary keep "
                    "archiving after a failover?  Say which branch is production: --target-timeline %u (the "
                    "newer timeline, PostgreSQL's 'latest') or --target-timeline %u",
                    where, (unsigned)b->child, (unsigned)b->parent, lsn, (unsigned)b->parent, parent_seg,
                    (unsigned)target, (unsigned)target, (unsigned)b->parent);
}
