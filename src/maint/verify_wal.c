/*
 * verify_wal — WAL continuity for verify (docs/VERIFY.md §2), asked of the
 * timeline model (src/repo/timeline.h): the path is the one
 * recovery_target_timeline = latest takes from each backup's start, and a
 * segment must be archived on the timeline that owns it (TL_STRICT: the
 * switch segment on the child).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "verify_int.h"
#include "wal.h"

/* The smallest encoded object: the fixed header and one chunk header
 * and tag (docs/FORMAT.md), with no bound name and no payload. */
#define VFY_OBJ_MIN (OBJ_HEADER_FIXED_LEN + 16 + 16)

static int bad_history(void *arg, const char *key, const char *why)
{
    return vfy_problem(arg, key, "history file %s is unusable: %s", key + strlen(REPO_WAL_DIR), why);
}

int vfy_wal_model(struct repo *rp, const struct vfy_objs *wal, struct tl_model *tm, struct vfy_report *r,
                  struct err *e)
{
    size_t i;

    for (i = 0; i < wal->n; i++) {
        const char *name = wal->v[i].key + strlen(REPO_WAL_DIR);
        struct wal_name wn;
        struct err ignored = ERR_INIT;

        if (tl_model_add(tm, name) < 0)
            return err_setf(e, ERR_NOMEM, "out of memory");
        /* what cannot hold even an empty object's header and final chunk
         * (an upload cut at 0 bytes, a truncated file) is found without
         * --full: recovery would stop at it */
        if (wal->v[i].size < VFY_OBJ_MIN && wal_parse(name, &wn, &ignored) == 0 &&
            vfy_problem(r, wal->v[i].key, "%s is %" PRIu64 " bytes, too few to be an encoded object: it is "
                        "damaged (wal-fetch would refuse it)", name, wal->v[i].size) < 0)
            return err_setf(e, ERR_NOMEM, "out of memory");
    }
    r->wal_segments += tm->nsegs;
    if (tl_model_read_histories(tm, rp, bad_history, r, e) < 0)
        return -1;
    tl_model_finish(tm);
    return 0;
}

static int usable_history(const struct tl_timeline *t)
{
    return t != NULL && t->has_history && t->hist_error == NULL;
}

int vfy_check_histories(const struct tl_model *tm, struct vfy_report *r)
{
    size_t i;

    for (i = 0; i < tm->ntls; i++) {
        char key[64];

        if (tm->tls[i].tli <= 1 || usable_history(&tm->tls[i]))
            continue;
        snprintf(key, sizeof key, "wal/%08X.history", (unsigned)tm->tls[i].tli);
        if (vfy_problem(r, key, "timeline %u has WAL but its history file %08X.history is not archived (a "
                        "timeline promoted while archiving was off: PostgreSQL keeps the file in pg_wal, and "
                        "`walship wal-push pg_wal/%08X.history` run in that data directory archives it)",
                        (unsigned)tm->tls[i].tli, (unsigned)tm->tls[i].tli, (unsigned)tm->tls[i].tli) < 0)
            return -1;
    }
    return 0;
}

/* Report every missing run of [from, to] on `tli`. */
static int check_range(const struct tl_model *tm, const char *bname, uint32_t tli, uint64_t from, uint64_t to,
                       struct vfy_report *r)
{
    struct tl_step one = { tli, 0, UINT64_MAX };
    struct tl_gap g;

    if (to < from)
        return 0;
    r->wal_needed += to - from + 1;
    while (from <= to && tl_first_gap(tm, &one, 1, from, to, TL_STRICT, &g)) {
        char a[WAL_NAME_LEN + 1], b[WAL_NAME_LEN + 1], key[64];
        int rc;

        wal_segment_name(tli, g.first, tm->seg_size, a);
        wal_segment_name(tli, g.last, tm->seg_size, b);
        snprintf(key, sizeof key, "wal/%s", a);
        if (g.last == g.first)
            rc = vfy_problem(r, key, "WAL segment %s is missing: backup %s needs it (recovery would stop there)", a,
                             bname);
        else
            rc = vfy_problem(r, key,
                             "WAL segments %s to %s (%" PRIu64 ") are missing: backup %s needs them (recovery "
                             "would stop there)", a, b, g.last - g.first + 1, bname);
        if (rc < 0)
            return -1;
        from = g.last + 1;
    }
    return 0;
}

/* On the target (the path's last step): from where the path enters it up
 * to its newest segment, and at least to the backup's stop segment when
 * the backup was taken on it. */
static int check_last(const struct tl_model *tm, const struct manifest *m, uint32_t tli, uint64_t from,
                      uint64_t stop_seg, struct vfy_report *r)
{
    const struct tl_timeline *cur = tl_find(tm, tli);
    uint64_t to = cur != NULL && cur->nsegs ? cur->newest : 0;

    if (tli == m->stop_timeline && tli == m->timeline && stop_seg > to)
        to = stop_seg;
    if ((cur == NULL || cur->nsegs == 0) && to == 0)
        return 0;
    return check_range(tm, m->name, tli, from, to, r);
}

/* Walk the path from the backup's step to the target. */
static int walk(const struct tl_model *tm, const struct manifest *m, const struct tl_step *p, size_t n, size_t k,
                uint64_t start_seg, uint64_t stop_seg, struct vfy_report *r)
{
    uint64_t from = start_seg;

    for (; k + 1 < n; k++) {
        uint64_t to = p[k].end / tm->seg_size;    /* the switch segment is on the child */
        const struct tl_timeline *next = tl_find(tm, p[k + 1].tli);

        if (to > 0 && check_range(tm, m->name, p[k].tli, from, to - 1, r) < 0)
            return -1;
        if (to > from)
            from = to;
        if (p[k + 1].tli > 1 && !usable_history(next) && k + 2 < n) {
            char key[64];

            snprintf(key, sizeof key, "wal/%08X.history", (unsigned)p[k + 1].tli);
            if (vfy_problem(r, key, "history file of timeline %u is missing (backup %s's WAL goes through it)",
                            (unsigned)p[k + 1].tli, m->name) < 0)
                return -1;
        }
    }
    return check_last(tm, m, p[n - 1].tli, from, stop_seg, r);
}

int vfy_check_backup_wal(const struct tl_model *tm, const struct manifest *m, struct vfy_report *r)
{
    struct tl_step *p = NULL;
    struct wal_name wn;
    struct err pe = ERR_INIT;
    uint64_t start_seg, stop_seg;
    uint32_t target;
    size_t n = 0;
    int k, rc;

    if (wal_parse(m->start_wal, &wn, &pe) < 0)
        return vfy_problem(r, m->start_wal, "backup %s: bad start_wal \"%s\" in its manifest", m->name, m->start_wal);
    start_seg = wal_segno(&wn, tm->seg_size);
    if (wal_parse(m->stop_wal, &wn, &pe) < 0)
        return vfy_problem(r, m->stop_wal, "backup %s: bad stop_wal \"%s\" in its manifest", m->name, m->stop_wal);
    stop_seg = wal_segno(&wn, tm->seg_size);
    /* recovery_target_timeline = latest: the newest timeline that descends
     * from the backup's end point (one that forked off while the backup
     * ran cannot be replayed from it: its own timeline is checked then,
     * adversarial pass AA) */
    target = tl_latest_descendant(tm, m->timeline, tl_backup_end(m->start_lsn, m->stop_lsn));
    if (target == 0) {
        char key[64];

        snprintf(key, sizeof key, "wal/%s", m->start_wal);
        return vfy_problem(r, key, "WAL segment %s, where backup %s starts, is not archived (no WAL on timeline %u)",
                           m->start_wal, m->name, (unsigned)m->timeline);
    }
    if (target == m->timeline) {
        struct tl_step one = { target, 0, UINT64_MAX };

        return walk(tm, m, &one, 1, 0, start_seg, stop_seg, r);
    }
    if (tl_path(tm, target, &p, &n, &pe) < 0)
        return pe.code == ERR_NOMEM ? -1 : 0;   /* cannot happen: the target descends through its history */
    k = tl_path_index(p, n, m->timeline, 0);
    rc = k < 0 ? 0 : walk(tm, m, p, n, (size_t)k, start_seg, stop_seg, r);
    free(p);
    return rc;
}
