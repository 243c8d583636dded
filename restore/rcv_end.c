/*
 * rcv_end — the end of the archive along the timeline recovery follows
 * (recover.h).  It mirrors PostgreSQL's choices: recovery_target_timeline
 * 'latest' is the newest timeline reached by probing history files upward
 * from the backup's; a segment is read from the newest timeline of the
 * path that began at or before it and has it archived.  The model of the
 * archive and those rules are src/repo/timeline.h (TL_AS_POSTGRES).
 */
#include "recover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"
#include "util.h"

/* A history file two regions hold with different contents: two
 * promotions to one timeline number, one per region (a split brain
 * across regions, a region fed by another primary's configuration).
 * Which of the two PostgreSQL follows depends on the region wal-fetch
 * asks first, and restore would judge the path by the other: the
 * timeline's history counts as unusable (tl_path fails on it), so a
 * restore that needs it refuses instead of choosing silently. */
struct disagreement {
    uint32_t tli;
    char why[200];
};

#define DISAGREE_MAX 16

static void disagree(const struct tl_model *tm, const struct tl_model *one, const char *name,
                     struct disagreement *dv, size_t *nd)
{
    size_t i, j;

    for (i = 0; i < one->ntls && *nd < DISAGREE_MAX; i++) {
        const struct tl_timeline *s = &one->tls[i], *d = tl_find(tm, s->tli);
        int same;

        if (d == NULL || !d->has_history || d->hist_error != NULL || !s->has_history || s->hist_error != NULL)
            continue;
        same = d->nhist == s->nhist;
        for (j = 0; same && j < s->nhist; j++)
            same = d->hist[j].tli == s->hist[j].tli && d->hist[j].end_lsn == s->hist[j].end_lsn;
        if (same)
            continue;
        dv[*nd].tli = s->tli;
        snprintf(dv[*nd].why, sizeof dv[*nd].why, "region %s holds another %08X.history than the region before "
                 "it (two promotions to timeline %u?)", name, (unsigned)s->tli, (unsigned)s->tli);
        (*nd)++;
    }
}

/* Every region's WAL in one model: the first must be listed, the others
 * are skipped when they cannot be (named in out->skipped). */
static int load_all(struct repo *const *rs, size_t n, uint64_t seg_size, struct tl_model *tm, struct rcv_end *out,
                    struct err *e)
{
    struct disagreement dv[DISAGREE_MAX];
    size_t i, nd = 0;

    tl_model_init(tm, seg_size);
    for (i = 0; i < n; i++) {
        struct tl_model one;
        struct err le = ERR_INIT;
        size_t k = strlen(out->skipped);

        if (tl_model_load_stored(rs[i], seg_size, &one, &le) < 0) {
            tl_model_free(&one);
            if (i == 0 || le.code == ERR_NOMEM) {
                *e = le;
                return err_prefix(e, "region %s", rs[i]->name);
            }
            snprintf(out->skipped + k, sizeof out->skipped - k, "%s%s (%s)", k ? "; " : "", rs[i]->name, le.msg);
            continue;
        }
        disagree(tm, &one, rs[i]->name, dv, &nd);
        if (tl_model_merge(tm, &one, e) < 0) {
            tl_model_free(&one);
            return -1;
        }
        tl_model_free(&one);
        k = strlen(out->asked);
        snprintf(out->asked + k, sizeof out->asked - k, "%s%s", k ? ", " : "", rs[i]->name);
    }
    for (i = 0; i < nd; i++)
        if (tl_model_history_failed(tm, dv[i].tli, dv[i].why) < 0)
            return err_setf(e, ERR_NOMEM, "out of memory");
    tl_model_finish(tm);
    return 0;
}

int rcv_model(struct repo *const *rs, size_t n, uint64_t seg_size, struct tl_model *tm, char where[544],
              char skipped[1024], struct err *e)
{
    struct rcv_end tmp;

    memset(&tmp, 0, sizeof tmp);
    memset(tm, 0, sizeof *tm);
    where[0] = skipped[0] = '\0';
    if (n == 0)
        return err_setf(e, ERR_INTERNAL, "no region to list");
    if (load_all(rs, n, seg_size, tm, &tmp, e) < 0)
        return -1;
    snprintf(where, 544, "%s %s", strchr(tmp.asked, ',') ? "regions" : "region", tmp.asked);
    snprintf(skipped, 1024, "%s", tmp.skipped);
    return 0;
}

int rcv_archive_end(struct repo *const *rs, size_t n, const struct manifest *m, const char *timeline,
                    struct rcv_end *out, struct err *e)
{
    struct tl_model tm;
    struct tl_reach re;
    struct tl_branch br;
    const struct tl_timeline *t;
    uint32_t target;
    int rc = -1;
    char where[sizeof out->asked + 16];

    memset(out, 0, sizeof *out);
    memset(&re, 0, sizeof re);
    memset(&tm, 0, sizeof tm);
    if (n == 0)
        return err_setf(e, ERR_INTERNAL, "no region to ask for the end of the archive");
    if (load_all(rs, n, m->wal_segment_size, &tm, out, e) < 0)
        goto out;
    snprintf(where, sizeof where, "%s %s", strchr(out->asked, ',') ? "regions" : "region", out->asked);
    if ((target = tl_target(&tm, m->timeline, timeline, e)) == 0)
        goto out;
    if (target > 1 && target != m->timeline && ((t = tl_find(&tm, target)) == NULL || !t->has_history)) {
        out->no_timeline = 1;
        err_setf(e, ERR_NOTFOUND, "%s: timeline %u does not exist: %08X.history is not archived", where,
                 (unsigned)target, (unsigned)target);
        goto out;
    }
    if (tl_reach(&tm, m->timeline, m->start_lsn, target, &re, e) < 0) {
        if (e->code == ERR_NOTFOUND || e->code == ERR_IO)
            err_prefix(e, "%s", where);
        goto out;
    }
    /* nor before the backup's end: PostgreSQL replays its end-of-backup
     * record on its timeline ("online backup was canceled"; pass AA) */
    if (tl_path_index(re.path, re.npath, m->timeline, tl_backup_end(m->start_lsn, m->stop_lsn)) < 0)
        re.status = TL_REACH_NOT_DESCENDANT;
    switch (re.status) {
    case TL_REACH_NOT_DESCENDANT:
        tl_not_child_refuse(target, m->timeline, m->name, where, e);
        out->no_timeline = 1;   /* not a short archive: the operator must choose (exit 1) */
        goto out;
    case TL_REACH_NO_START: {
        char name[WAL_NAME_LEN + 1];

        wal_segment_name(m->timeline, re.first, tm.seg_size, name);
        out->no_start = 1;
        err_setf(e, ERR_NOTFOUND, "%s: WAL segment %s, where backup %s starts, is not archived (an async region "
                 "behind?  An older backup may restore from the WAL there is: --backup NAME, see backup-list)",
                 where, name, m->name);
        goto out;
    }
    case TL_REACH_GAP: {
        char name[WAL_NAME_LEN + 1], lsn[24];

        wal_segment_name(re.gap.tli, re.gap.first, tm.seg_size, name);
        wal_format_lsn(re.gap.first * tm.seg_size, lsn);
        out->no_start = re.gap.first == re.first;
        err_setf(e, ERR_NOTFOUND,
                 "%s: WAL segment %s is missing from the archive (it has later segments on timeline %u): "
                 "recovery would stop at LSN %s, before the end of the archive",
                 where, name, (unsigned)target, lsn);
        goto out;
    }
    case TL_REACH_OK:
        break;
    }
    if ((timeline == NULL || timeline[0] == '\0') &&
        (t = tl_orphan_above(&tm, target, m->start_lsn / tm.seg_size)) != NULL) {
        tl_orphan_refuse(&tm, t, target, where, e);
        goto out;
    }
    if ((timeline == NULL || timeline[0] == '\0') &&
        tl_path_left_branch(&tm, re.path, re.npath, m->start_lsn, &br)) {
        tl_branch_refuse(&tm, &br, target, where, e);
        goto out;
    }
    out->nsegments = re.nsegments;
    out->tli = re.last_tli;
    wal_segment_name(out->tli, re.last, tm.seg_size, out->newest);
    out->limit = re.limit;
    rc = 0;
out:
    tl_reach_free(&re);
    tl_model_free(&tm);
    return rc;
}

int rcv_last_record(const char *waldump_output, uint64_t limit, uint64_t *lsn, struct err *e)
{
    FILE *f = fopen(waldump_output, "re");
    char line[4096];
    int found = 0;

    if (f == NULL)
        return err_errno(e, ERR_IO, errno, "could not read \"%s\"", waldump_output);
    *lsn = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        /* "rmgr: XLOG len (rec/tot): ..., tx: 0, lsn: 0/03000028, prev 0/..., desc: ..." */
        const char *p = strncmp(line, "rmgr:", 5) == 0 ? strstr(line, ", lsn: ") : NULL;
        char buf[32];
        uint64_t v;
        struct err pe = ERR_INIT;
        size_t k;

        if (p == NULL)
            continue;
        p += 7;
        k = strcspn(p, ", \n");
        if (k == 0 || k >= sizeof buf)
            continue;
        memcpy(buf, p, k);
        buf[k] = '\0';
        if (wal_parse_lsn(buf, &v, &pe) < 0 || v >= limit)
            continue;
        if (!found || v > *lsn)
            *lsn = v;
        found = 1;
    }
    fclose(f);
    if (!found)
        return err_setf(e, ERR_NOTFOUND, "pg_waldump found no WAL record");
    return 0;
}
