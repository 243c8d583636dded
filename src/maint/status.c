/*
 * status — see status.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockmap.h"
#include "retention.h"
#include "status.h"
#include "timeline.h"
#include "util.h"


/* The newest segment of one timeline. */
struct tl_newest {
    uint32_t tli;
    uint64_t segno;
    time_t mtime;
};

struct newest_wal {
    int have;
    uint64_t segno;
    uint32_t tli;
    char name[WAL_NAME_MAX];
    time_t mtime;
    uint64_t seg_size;
    struct tl_model *model;     /* every name goes into it too */
    struct tl_newest *per;      /* per timeline, for the primary's lag: below `cap` only */
    size_t nper, per_cap;
    uint64_t cap;               /* the segment the primary writes: one at or past it is not its WAL */
    int nomem;
};

/* Note segment (tli, segno) stored at mtime as its timeline's newest. */
static void per_timeline(struct newest_wal *n, uint32_t tli, uint64_t segno, time_t mtime)
{
    size_t i;

    for (i = 0; i < n->nper && n->per[i].tli != tli; i++)
        ;
    if (i == n->nper) {
        if (array_reserve(&n->per, &n->per_cap, n->nper + 1, sizeof *n->per) < 0) {
            n->nomem = 1;
            return;
        }
        n->per[n->nper++] = (struct tl_newest){ tli, segno, mtime };
    } else if (segno > n->per[i].segno) {
        n->per[i].segno = segno;
        n->per[i].mtime = mtime;
    }
}

static int newest_collect(const struct stor_entry *ent, void *arg)
{
    struct newest_wal *n = arg;
    const char *name = ent->key + 4;
    struct wal_name w;
    struct err e = ERR_INIT;
    uint64_t segno;

    if (strchr(name, '/') == NULL && tl_model_add_stored(n->model, name, (int64_t)ent->mtime) < 0)
        n->nomem = 1;
    if (wal_parse(name, &w, &e) < 0 || w.kind != WAL_SEGMENT || !wal_name_fits(&w, n->seg_size))
        return 0;
    segno = wal_segno(&w, n->seg_size);
    /* archived past where the primary writes (its data directory restored
     * from a snapshot, or reset): another history's, which made the lag
     * read 0 while the primary's own archiving had stopped */
    if (segno < n->cap)
        per_timeline(n, w.tli, segno, ent->mtime);
    if (!n->have || segno > n->segno || (segno == n->segno && w.tli > n->tli)) {
        n->have = 1;
        n->segno = segno;
        n->tli = w.tli;
        n->mtime = ent->mtime;
        snprintf(n->name, sizeof n->name, "%s", name);
    }
    return 0;
}

void st_local(const struct region_conf *rc, struct spool *sp, time_t now, struct st_region *o)
{
    struct spool_usage u;
    struct spool_state ss;
    struct err le = ERR_INIT;
    char queue[SPOOL_QUEUE_MAX];

    o->name = rc->name;
    o->async = rc->mode == REGION_ASYNC;
    if (sp == NULL)
        return;
    spool_queue_name(rc->name, rc->url, rc->endpoint, queue);
    o->spool_conflicts = spool_conflicts(sp, queue);
    if (spool_usage(sp, queue, &u, &le) == 0) {
        o->spool_files = u.entries;
        o->spool_bytes = u.bytes;
        o->spool_oldest_age = u.entries && u.oldest && now > u.oldest ? (uint64_t)(now - u.oldest) : 0;
        o->wal_ahead = u.entries && u.oldest > now ? (int64_t)(u.oldest - now) : 0;
    }
    err_clear(&le);
    if (o->async && spool_state_read(sp, queue, &ss, &le) == 0) {
        o->ship_success = ss.last_success;
        if (ss.last_error_time != 0) {
            snprintf(o->last_error, sizeof o->last_error, "%s", ss.last_error);
            snprintf(o->last_error_code, sizeof o->last_error_code, "%s", ss.last_error_code);
            o->last_error_time = ss.last_error_time;
        }
    }
}

/* Where the newest backup starts (timeline 0: unknown). */
struct backup_start {
    uint32_t timeline;
    uint64_t start_lsn, seg_size;
};

/* The newest complete backup whose manifest loads, from the catalog (its
 * manifest's stop time).  Names are start times: a backup taken with a
 * clock ahead sorts newest, so its manifest is the one to hold against
 * this host's clock.  A newer one whose manifest does not load (damaged,
 * another key, a stray folder whose name sorts last) cannot be restored:
 * it is named in o->error and passed over, so that its object's mtime
 * never stands for a fresh backup; none that loads is no backup. */
/* An incremental's chain down to its full backup: every link's manifest
 * there and the one its child was taken against (as restore loads it;
 * parts are verify's).  0, or -1 with le set naming the link. */
static int chain_loads(struct repo *r, const struct manifest *m, struct err *le)
{
    struct manifest *cur = NULL;
    const struct manifest *kid = m;
    unsigned steps;
    int rc = 0;

    for (steps = 0; kid->incremental && rc == 0; steps++) {
        struct manifest *up = NULL;
        char sha[65];

        if (steps > BM_MAX_DEPTH || kid->parent == NULL)
            rc = err_setf(le, ERR_CORRUPT, "backup %s: its chain does not end in a full backup", m->name);
        else if (cat_load_headers(r, kid->parent, &up, sha, le) < 0)
            rc = err_prefix(le, "backup %s cannot be restored: it needs backup %s (the parent of %s)", m->name,
                            kid->parent, kid->name);
        else if (strcmp(sha, kid->parent_sha256) != 0)
            rc = err_setf(le, ERR_CORRUPT, "backup %s cannot be restored: the manifest of backup %s is not the one "
                          "backup %s was taken against", m->name, kid->parent, kid->name);
        man_free(cur);
        cur = up;
        kid = cur;
        if (kid == NULL)
            break;
    }
    man_free(cur);
    return rc;
}

static void newest_backup(struct repo *r, const struct catalog *cat, time_t now, struct st_region *o,
                          struct backup_start *start)
{
    struct err le = ERR_INIT;
    size_t i;

    for (i = cat->n; i > 0; i--) {
        struct manifest *m = NULL;

        if (!cat->v[i - 1].complete)
            continue;
        /* an incremental whose chain is broken cannot be restored either
         * (adversarial pass P): it does not stand for a fresh backup */
        if (cat_load_headers(r, cat->v[i - 1].name, &m, NULL, &le) < 0 || chain_loads(r, m, &le) < 0) {
            if (le.code == ERR_NET && m != NULL)
                err_prefix(&le, "backup %s: its chain could not be read", m->name);
            man_free(m);
            if (o->error[0] == '\0')
                snprintf(o->error, sizeof o->error, "%s (passed over: not counted as the newest backup)",
                         le.msg);
            err_clear(&le);
            continue;
        }
        o->has_backup = 1;
        snprintf(o->backup, sizeof o->backup, "%s", cat->v[i - 1].name);
        o->backup_time = m->stop_time;
        o->backup_ahead = ret_backup_ahead(m, now);
        start->timeline = m->timeline;
        start->start_lsn = m->start_lsn;
        start->seg_size = m->wal_segment_size;
        man_free(m);
        o->backup_age = (int64_t)now - o->backup_time;
        if (o->backup_age < 0)
            o->backup_age = 0;
        return;
    }
}

/* A hole between the newest backup's start and the newest segment on the
 * way to 'latest' (adversarial pass V: a segment deleted in the middle of
 * the archive; status looked at the newest segment only and said OK while
 * a restore to latest from this region stopped at the hole). */
static void find_gap(const struct tl_model *m, const struct backup_start *start, uint32_t latest,
                     struct st_region *o)
{
    struct tl_reach rch;
    struct err le = ERR_INIT;

    if (tl_reach(m, start->timeline, start->start_lsn, latest, &rch, &le) < 0)
        return;
    if (rch.status == TL_REACH_GAP) {
        o->gap = 1;
        wal_segment_name(rch.gap.tli, rch.gap.first, m->seg_size, o->gap_wal);
        o->gap_segments = rch.gap.last - rch.gap.first + 1;
    } else if (rch.status == TL_REACH_NO_START) {
        o->gap = 1;
        wal_segment_name(start->timeline, start->start_lsn / m->seg_size, m->seg_size, o->gap_wal);
        o->gap_segments = 1;
    }
    o->alarm_gap = o->gap && o->spool_files == 0;
    tl_reach_free(&rch);
}

/* What would stop restore --target-latest from the newest backup
 * (`start`; timeline 0 when its manifest could not be read): two living
 * branches, a 'latest' that forked off before the backup, or the history
 * of 'latest' unreadable (status.h, branch_kind).  A living branch whose
 * own history cannot be read is left out, as restore leaves it. */
static int branches(struct repo *r, struct tl_model *m, const struct backup_start *start, struct st_region *o)
{
    struct tl_step *p = NULL;
    struct tl_branch b;
    struct err le = ERR_INIT;
    size_t n = 0;
    uint32_t latest;

    if (start->timeline == 0 || start->seg_size != m->seg_size ||
        tl_model_read_histories(m, r, NULL, NULL, &le) < 0)
        return 0;
    tl_model_finish(m);
    latest = tl_latest_probe(m, start->timeline);
    o->branch_latest = latest;
    o->branch_other = start->timeline;
    /* from the backup's own timeline: one promoted while archiving was off
     * (a DR restore made production) has no history file, and restore
     * reads it alone as 'current' (tl_reach): restore to latest works
     * there, verify reports the missing file */
    if (tl_path_from(m, start->timeline, latest, &p, &n, &le) < 0) {
        if (le.code == ERR_NOMEM)
            return 1;
        o->branch_kind = ST_BRANCH_HISTORY;
        snprintf(o->branch_why, sizeof o->branch_why, "%s", le.msg);
    } else if (tl_path_index(p, n, start->timeline, start->start_lsn) < 0) {
        o->branch_kind = ST_BRANCH_NOT_CHILD;
    } else if (tl_path_left_branch(m, p, n, start->start_lsn, &b)) {
        o->branch_kind = ST_BRANCH_TWO;
        o->branch_other = b.parent;
        wal_format_lsn(b.fork_lsn, o->branch_fork);
        wal_segment_name(b.parent, b.parent_newest, m->seg_size, o->branch_newest);
    }
    o->branch = o->alarm_branch = o->branch_kind != 0;
    free(p);
    if (o->branch_kind == 0)
        find_gap(m, start, latest, o);
    return 1;   /* the model holds the history files now */
}

/* The newest segment on the primary's own timeline path, in place of the
 * region's newest (kept when that path cannot be known): segments of
 * another branch — a drill's timeline, or an old primary that went on
 * archiving its timeline past the fork — are not the primary's WAL, and
 * when they numbered higher the lag read 0 while the primary's own
 * archiving had stopped (an adversarial pass: split brain, the new
 * primary's archive_command failing, status said "lag: 0 segments"). */
static void primary_newest(const struct tl_model *m, const struct st_primary *p, struct newest_wal *nw)
{
    struct tl_step *path = NULL;
    struct err le = ERR_INIT;
    size_t n = 0, i, k;
    int found = 0;

    if (p == NULL || !p->known || p->tli == 0 || m->seg_size != nw->seg_size || tl_path(m, p->tli, &path, &n, &le) < 0)
        return;
    for (i = 0; i < n; i++) {
        uint64_t lo = path[i].begin / m->seg_size, hi, cand;

        hi = path[i].end == UINT64_MAX ? UINT64_MAX : (path[i].end - 1) / m->seg_size;
        for (k = 0; k < nw->nper && nw->per[k].tli != path[i].tli; k++)
            ;
        if (k == nw->nper || nw->per[k].segno < lo)
            continue;
        cand = nw->per[k].segno < hi ? nw->per[k].segno : hi;
        if (!found || cand >= nw->segno) {
            nw->segno = cand;
            nw->tli = path[i].tli;
            nw->mtime = nw->per[k].mtime;
            found = 1;
        }
    }
    nw->have = found;
    free(path);
}

/* Without the primary's path (no history read, or none for it): the
 * region's newest segment below where the primary writes, of any timeline. */
static void newest_below_cap(struct newest_wal *nw)
{
    size_t k;

    nw->have = 0;
    for (k = 0; k < nw->nper; k++)
        if (!nw->have || nw->per[k].segno > nw->segno ||
            (nw->per[k].segno == nw->segno && nw->per[k].tli > nw->tli)) {
            nw->have = 1;
            nw->segno = nw->per[k].segno;
            nw->tli = nw->per[k].tli;
            nw->mtime = nw->per[k].mtime;
        }
}

/* Lag behind the primary (completed segments the region lacks) and the
 * two alarms. */
static void lag_and_alarms(const struct config *conf, const struct st_primary *p, const struct newest_wal *nw,
                           time_t now, struct st_region *o)
{
    if (p != NULL && p->known) {
        uint64_t cur = p->lsn / nw->seg_size;   /* segment being written */

        o->lag_known = 1;
        if (!nw->have) {
            o->lag_segments = cur;
            o->lag_bytes = p->lsn;
            o->alarm_rpo = cur > 0;
        } else if (cur > nw->segno + 1) {
            o->lag_segments = cur - nw->segno - 1;
            o->lag_bytes = o->lag_segments * nw->seg_size;
            o->lag_seconds = now > nw->mtime ? (uint64_t)(now - nw->mtime) : 0;
        }
    }
    /* a time ahead of the clock makes the lag read 0 s however long
     * archiving has stopped (the clock stepped back, a file server's ran
     * fast): the seconds cannot be judged, which is the clock alarm */
    if (nw->have && nw->mtime > now && (int64_t)(nw->mtime - now) > o->wal_ahead)
        o->wal_ahead = (int64_t)(nw->mtime - now);
    if (o->spool_oldest_age > o->lag_seconds)
        o->lag_seconds = o->spool_oldest_age;
    if (conf->rpo_seconds > 0 && o->lag_seconds > conf->rpo_seconds)
        o->alarm_rpo = 1;
    if (o->spool_conflicts > 0)
        o->alarm_rpo = 1;   /* WAL this region will not receive without the operator */
    if (conf->backup_max_age > 0 && (!o->has_backup || (uint64_t)o->backup_age > conf->backup_max_age))
        o->alarm_backup = 1;
    if (o->backup_ahead > RET_CLOCK_SKEW_MAX || o->wal_ahead > RET_CLOCK_SKEW_MAX)
        o->alarm_clock = 1;
}

int st_region(struct repo *r, const struct config *conf, const struct region_conf *rc, const struct st_primary *p,
              struct spool *sp, time_t now, struct st_region *o, struct err *e)
{
    struct catalog cat = { NULL, 0, 0 };
    struct newest_wal nw;
    struct tl_model model;
    struct backup_start start;
    struct err le = ERR_INIT;
    struct wal_name wn;
    int histories;

    memset(o, 0, sizeof *o);
    memset(&nw, 0, sizeof nw);
    memset(&start, 0, sizeof start);
    /* the primary's segment size, else the repository's (a name that does
     * not fit the size stands for no segment: wal_name_fits) */
    nw.seg_size = p && p->known && wal_seg_size_valid(p->seg_size) ? p->seg_size
                  : r->have_id && wal_seg_size_valid(r->id.seg_size) ? r->id.seg_size : (16u << 20);
    nw.cap = p && p->known ? p->lsn / nw.seg_size : UINT64_MAX;

    /* spool backlog and the shipper's last complaint: local, always */
    st_local(rc, sp, now, o);

    /* the region */
    if (cat_list(r, 0, &cat, &le) < 0) {
        snprintf(o->error, sizeof o->error, "%s", le.msg);
        o->alarm_rpo = o->alarm_backup = 1;
        return 0;
    }
    o->readable = 1;
    newest_backup(r, &cat, now, o, &start);
    cat_free(&cat);
    tl_model_init(&model, start.seg_size ? start.seg_size : nw.seg_size);
    nw.model = &model;
    if (stor_list(r->st, REPO_WAL_DIR, newest_collect, &nw, &le) < 0 || nw.nomem) {
        snprintf(o->error, sizeof o->error, "%s", nw.nomem ? "out of memory listing the WAL archive" : le.msg);
        tl_model_free(&model);
        free(nw.per);
        o->readable = o->has_backup = 0;
        o->backup_ahead = 0;
        o->alarm_rpo = o->alarm_backup = 1;
        return 0;
    }
    histories = branches(r, &model, &start, o);
    if (nw.have) {
        o->has_wal = 1;
        snprintf(o->wal, sizeof o->wal, "%s", nw.name);
        o->wal_time = (int64_t)nw.mtime;
    }
    /* the position in the repository's own segment size, for st_compare_regions */
    o->wal_seg_size = r->have_id && wal_seg_size_valid(r->id.seg_size) ? r->id.seg_size : nw.seg_size;
    if (nw.have && wal_parse(nw.name, &wn, &le) == 0)
        o->wal_segno = wal_segno(&wn, o->wal_seg_size);
    if (histories)
        primary_newest(&model, p, &nw);
    tl_model_free(&model);
    if (nw.have && nw.segno >= nw.cap)
        newest_below_cap(&nw);
    lag_and_alarms(conf, p, &nw, now, o);
    free(nw.per);
    (void)e;
    return 0;
}

void st_compare_regions(const struct config *conf, struct st_region *v, size_t n, time_t now)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        struct st_region *o = &v[i];
        const struct st_region *ahead = NULL;
        uint64_t age;

        if (!o->readable || o->lag_known)
            continue;
        for (j = 0; j < n; j++)
            if (j != i && v[j].readable && v[j].has_wal && v[j].wal_seg_size == o->wal_seg_size &&
                (!o->has_wal || v[j].wal_segno > o->wal_segno) && (ahead == NULL || v[j].wal_segno > ahead->wal_segno))
                ahead = &v[j];
        if (ahead == NULL)
            continue;
        o->behind = ahead->name;
        snprintf(o->behind_wal, sizeof o->behind_wal, "%s", ahead->wal);
        o->lag_segments = o->has_wal ? ahead->wal_segno - o->wal_segno : ahead->wal_segno;
        o->lag_bytes = o->lag_segments * o->wal_seg_size;
        age = now > ahead->wal_time ? (uint64_t)(now - ahead->wal_time) : 0;
        if (age > o->lag_seconds)
            o->lag_seconds = age;
        if (conf->rpo_seconds > 0 && o->lag_seconds > conf->rpo_seconds)
            o->alarm_rpo = 1;
    }
}
