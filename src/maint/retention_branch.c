/*
 * retention_branch — the backup that is the only way to a living branch.
 *
 * retain_full counts backups by name, whatever their timeline.  When the
 * archive holds two living branches (a drill restored with --keep-archive
 * that promoted and took a backup into production's region while
 * production kept writing; an old primary still archiving after a
 * failover), the newest backups may all sit on one branch, and the rules
 * alone would delete the only backup from which the other branch's WAL
 * can be replayed: production's last writes, with nothing said.
 *
 * A timeline is living when WAL was written on it after the newest kept
 * backup began, or may still be: its newest archived segment is past the
 * start of every kept backup, or one of its segments was stored less than
 * RET_BRANCH_QUIET before the newest kept backup began, or later.
 * Positions alone cannot tell: a production that wrote less WAL since the
 * fork than a drill whose backup started far ahead on its own branch went
 * on, but ends below that start (an adversarial pass saw its backups and
 * WAL planned for deletion); and when the drill's own backup-push applies
 * retention, production may not have archived since that backup began.
 * Both times are the storage's: a backup began when its manifest was
 * stored less its own duration (stop_time - start_time), so the clocks
 * of the hosts do not enter.
 * For each living timeline whose history is archived, some kept backup
 * must start on its path (before its newest segment); when none does, the
 * newest complete backup that does is kept too, and recorded in the plan
 * so the command says why.  A branch that stopped before the newest kept
 * backup began (the old primary's last segments after a failover, a drill
 * that ended) is not living: its backups go by the rules, as before.
 * docs/RETENTION.md, "Two branches".
 */
#include "retention.h"

#include <stdlib.h>
#include <string.h>

#include "timeline.h"
#include "wal.h"

static int record(struct ret_plan *plan, const struct cat_entry *ce, const struct tl_timeline *t,
                  uint64_t seg_size, struct err *e)
{
    struct ret_branch *nv = realloc(plan->branch, (plan->nbranch + 1) * sizeof *nv);

    if (nv == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    plan->branch = nv;
    nv += plan->nbranch++;
    memset(nv, 0, sizeof *nv);
    memcpy(nv->name, ce->name, sizeof nv->name);
    nv->name[sizeof nv->name - 1] = '\0';
    nv->tli = t->tli;
    wal_segment_name(t->tli, t->newest, seg_size, nv->newest_wal);
    return 0;
}

/* Placeable: complete, with a manifest of the model's segment size. */
static const struct manifest *placed(const struct cat_entry *ce, const struct tl_model *m)
{
    if (!ce->complete || ce->man == NULL || ce->man->wal_segment_size != m->seg_size)
        return NULL;
    return ce->man;
}

/* The newest restorable backup on path p, starting at or before segment
 * `newest`: its index, or cat->n; *served when a kept one is.  On the
 * path means up to its end, not only its start: a timeline that forked
 * off inside a backup's run (a point-in-time restore to a moment while it
 * ran) cannot be replayed from it (tl_backup_end); counted as a way in, it
 * let retention delete the only backup that led there (adversarial pass AA). */
static size_t way_in(const struct catalog *cat, const struct tl_model *m, const unsigned char *keep,
                     const struct tl_step *p, size_t n, uint64_t newest, int *served)
{
    size_t i, best = cat->n;

    *served = 0;
    for (i = 0; i < cat->n; i++) {
        const struct manifest *man = placed(&cat->v[i], m);

        if (man == NULL || man->start_lsn / m->seg_size > newest ||
            tl_path_index(p, n, man->timeline, tl_backup_end(man->start_lsn, man->stop_lsn)) < 0 ||
            !ret_restorable(cat, i))
            continue;
        if (keep[i]) {
            *served = 1;
            return i;
        }
        if (best == cat->n || man->start_lsn > cat->v[best].man->start_lsn)
            best = i;
    }
    return best;
}

/* A kept backup starts on timeline `tli` itself, at or before `newest`
 * (no history needed to see that it leads there). */
static int kept_on(const struct catalog *cat, const struct tl_model *m, const unsigned char *keep, uint32_t tli,
                   uint64_t newest)
{
    size_t i;

    for (i = 0; i < cat->n; i++) {
        const struct manifest *man = placed(&cat->v[i], m);

        if (keep[i] && man != NULL && man->timeline == tli && man->start_lsn / m->seg_size <= newest)
            return 1;
    }
    return 0;
}

/* Written on after the newest kept backup began (see the top). */
static int living(const struct tl_timeline *t, uint64_t kept_start, int64_t kept_time)
{
    return t->nsegs > 0 &&
           (t->newest > kept_start || (t->newest_time > 0 && t->newest_time + RET_BRANCH_QUIET > kept_time));
}

/* When backup i began, by the storage's clock (see the top). */
static int64_t began_stored(const struct cat_entry *ce, const struct manifest *man)
{
    int64_t took = man->stop_time > man->start_time ? man->stop_time - man->start_time : 0;

    return (int64_t)ce->newest - took;
}

int ret_keep_branches(const struct catalog *cat, const struct tl_model *m, unsigned char *keep,
                      struct ret_plan *plan, struct err *e)
{
    uint64_t kept_start = 0;
    int64_t kept_time = 0;
    int any = 0;
    size_t i, k;

    if (m == NULL || m->seg_size == 0)
        return 0;
    for (i = 0; i < cat->n; i++) {
        const struct manifest *man = placed(&cat->v[i], m);

        if (keep[i] && man != NULL && (!any || man->start_lsn / m->seg_size > kept_start)) {
            kept_start = man->start_lsn / m->seg_size;
            any = 1;
        }
        if (keep[i] && man != NULL && began_stored(&cat->v[i], man) > kept_time)
            kept_time = began_stored(&cat->v[i], man);
    }
    if (!any)
        return 0;
    for (k = 0; k < m->ntls; k++) {
        const struct tl_timeline *t = &m->tls[k];
        struct tl_step *p = NULL;
        struct err pe = ERR_INIT;
        size_t n = 0, best;
        int served;

        if (!living(t, kept_start, kept_time))
            continue;       /* nothing written after the newest kept backup began */
        if (kept_on(cat, m, keep, t->tli, t->newest))
            continue;
        if (tl_path(m, t->tli, &p, &n, &pe) < 0) {
            if (t->hist_error == NULL)
                continue;   /* no history archived: no restore can reach it either */
            return err_setf(e, pe.code, "timeline %u went on past the newest kept backup, but %s, so which "
                            "backups lead to it cannot be told: nothing is deleted in this region",
                            (unsigned)t->tli, pe.msg);
        }
        best = way_in(cat, m, keep, p, n, t->newest, &served);
        free(p);
        if (served || best == cat->n)
            continue;
        keep[best] = 1;
        if (record(plan, &cat->v[best], t, m->seg_size, e) < 0)
            return -1;
    }
    return 0;
}

int ret_keep_anchors(const struct catalog *cat, const struct tl_model *m, int64_t start, unsigned char *keep,
                     struct err *e)
{
    size_t i, k;

    if (m == NULL || m->seg_size == 0)
        return 0;
    for (k = 0; k < m->ntls; k++) {
        const struct tl_timeline *t = &m->tls[k];
        struct tl_step *p = NULL;
        struct err pe = ERR_INIT;
        size_t n = 0, best = cat->n;

        if (t->nsegs == 0 || t->newest_time < start)
            continue;       /* not written on inside the window (or no times) */
        if (tl_path(m, t->tli, &p, &n, &pe) < 0) {
            if (pe.code == ERR_NOMEM)
                return err_setf(e, ERR_NOMEM, "out of memory");
            continue;       /* no usable history: no restore can follow it */
        }
        for (i = 0; i < cat->n; i++) {
            const struct manifest *man = placed(&cat->v[i], m);

            if (man == NULL || man->incremental || man->stop_time > start ||
                man->start_lsn / m->seg_size > t->newest ||
                tl_path_index(p, n, man->timeline, tl_backup_end(man->start_lsn, man->stop_lsn)) < 0)
                continue;
            if (best == cat->n || man->stop_time >= cat->v[best].man->stop_time)
                best = i;
        }
        free(p);
        if (best < cat->n)
            keep[best] = 1;
    }
    return 0;
}

static int wal_missing(const struct cat_entry *ce, const struct tl_model *m)
{
    struct wal_name a, b;
    struct err pe = ERR_INIT;
    uint64_t s, from, to;

    if (m == NULL || ce->man == NULL || m->seg_size == 0 || wal_parse(ce->man->start_wal, &a, &pe) < 0 ||
        wal_parse(ce->man->stop_wal, &b, &pe) < 0)
        return 0;
    from = wal_segno(&a, m->seg_size);
    to = wal_segno(&b, m->seg_size);
    if (!tl_has_seg(m, a.tli, from) || !tl_has_seg(m, b.tli, to))
        return 1;
    for (s = from + 1; a.tli == b.tli && s < to; s++)
        if (!tl_has_seg(m, a.tli, s))
            return 1;
    return 0;
}

size_t ret_late(const struct catalog *cat, const struct tl_model *m, unsigned char *late)
{
    size_t i, n = 0;
    int newer = 0;      /* a complete backup whose WAL is all here is newer */

    for (i = cat->n; i > 0; i--) {
        if (!cat->v[i - 1].complete)
            continue;
        if (!wal_missing(&cat->v[i - 1], m))
            newer = 1;
        else if ((late[i - 1] = newer ? 1 : 2) == 1)
            n++;
    }
    return n;
}
