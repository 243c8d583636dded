/*
 * timeline — see timeline.h.
 */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- building the model ---- */

void tl_model_init(struct tl_model *m, uint64_t seg_size)
{
    memset(m, 0, sizeof *m);
    m->seg_size = wal_seg_size_valid(seg_size) ? seg_size : (16u << 20);
}

void tl_model_free(struct tl_model *m)
{
    size_t i;

    for (i = 0; i < m->ntls; i++) {
        free(m->tls[i].hist);
        free(m->tls[i].hist_error);
    }
    free(m->tls);
    free(m->segs);
    memset(m, 0, sizeof *m);
}

static struct tl_timeline *tl_get(struct tl_model *m, uint32_t tli)
{
    size_t i;

    for (i = 0; i < m->ntls; i++)
        if (m->tls[i].tli == tli)
            return &m->tls[i];
    if (array_reserve(&m->tls, &m->tls_cap, m->ntls + 1, sizeof *m->tls) < 0)
        return NULL;
    memset(&m->tls[m->ntls], 0, sizeof m->tls[0]);
    m->tls[m->ntls].tli = tli;
    return &m->tls[m->ntls++];
}

int tl_model_add(struct tl_model *m, const char *name)
{
    struct wal_name wn;
    struct err pe = ERR_INIT;
    struct tl_timeline *t;
    uint64_t segno;

    if (wal_parse(name, &wn, &pe) < 0 || (wn.kind != WAL_SEGMENT && wn.kind != WAL_HISTORY) ||
        !wal_name_fits(&wn, m->seg_size))
        return 0;   /* not a segment of this size: it must not stand for another (wal_name_fits) */
    if ((t = tl_get(m, wn.tli)) == NULL)
        return -1;
    if (wn.kind == WAL_HISTORY) {
        t->has_history = 1;
        return 1;
    }
    if (array_reserve(&m->segs, &m->segs_cap, m->nsegs + 1, sizeof *m->segs) < 0)
        return -1;
    segno = wal_segno(&wn, m->seg_size);
    m->segs[m->nsegs] = (struct tl_seg){ wn.tli, segno, 0 };
    m->nsegs++;
    if (t->nsegs == 0 || segno > t->newest)
        t->newest = segno;
    if (t->nsegs == 0 || segno < t->oldest)
        t->oldest = segno;
    t->nsegs++;
    return 1;
}

int tl_model_history_failed(struct tl_model *m, uint32_t tli, const char *why)
{
    struct tl_timeline *t = tl_get(m, tli);

    if (t == NULL)
        return -1;
    t->has_history = 1;
    free(t->hist);
    t->hist = NULL;
    t->nhist = 0;
    free(t->hist_error);
    return (t->hist_error = xstrdup(why)) == NULL ? -1 : 0;
}

int tl_model_set_history(struct tl_model *m, uint32_t tli, const char *text, size_t len, struct err *e)
{
    struct tl_timeline *t = tl_get(m, tli);

    if (t == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    t->has_history = 1;
    free(t->hist);
    t->hist = NULL;
    t->nhist = 0;
    if (tl_parse_history(text, len, &t->hist, &t->nhist, e) < 0) {
        if (e->code != ERR_NOMEM && tl_model_history_failed(m, tli, e->msg) < 0)
            return err_setf(e, ERR_NOMEM, "out of memory");
        return -1;
    }
    return 0;
}

int tl_model_read_histories(struct tl_model *m, struct repo *rp,
                            int (*bad)(void *arg, const char *key, const char *why), void *arg, struct err *e)
{
    size_t i;

    for (i = 0; i < m->ntls; i++) {
        char name[24], key[REPO_KEY_MAX];
        unsigned char *buf = NULL;
        size_t len = 0;
        struct err he = ERR_INIT;
        uint32_t tli = m->tls[i].tli;

        if (!m->tls[i].has_history || m->tls[i].hist != NULL || m->tls[i].hist_error != NULL)
            continue;
        snprintf(name, sizeof name, "%08X.history", (unsigned)tli);
        if (repo_key_wal(key, sizeof key, name) < 0)
            return err_setf(e, ERR_INTERNAL, "WAL key too long");
        if (repo_get_buf(rp, key, TL_HISTORY_MAX, &buf, &len, &he) == 0)
            tl_model_set_history(m, tli, (const char *)buf, len, &he);
        else if (he.code != ERR_NOMEM && tl_model_history_failed(m, tli, he.msg) < 0)
            he.code = ERR_NOMEM;
        free(buf);
        if (he.code == ERR_NOMEM)
            return err_setf(e, ERR_NOMEM, "out of memory");
        if (m->tls[i].hist_error != NULL && bad != NULL && bad(arg, key, m->tls[i].hist_error) != 0)
            return err_setf(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct tl_seg *x = a, *y = b;

    if (x->tli != y->tli)
        return x->tli < y->tli ? -1 : 1;
    return x->segno < y->segno ? -1 : x->segno > y->segno;
}

static int tli_cmp(const void *a, const void *b)
{
    const struct tl_timeline *x = a, *y = b;

    return x->tli < y->tli ? -1 : x->tli > y->tli;
}

void tl_model_finish(struct tl_model *m)
{
    size_t i, j = 0, k = 0;

    if (m->nsegs > 1)
        qsort(m->segs, m->nsegs, sizeof *m->segs, seg_cmp);
    for (i = 0; i < m->nsegs; i++)     /* a segment merged from two regions counts once, stored first */
        if (k == 0 || seg_cmp(&m->segs[i], &m->segs[k - 1]) != 0)
            m->segs[k++] = m->segs[i];
        else if (m->segs[i].stored > 0 && (m->segs[k - 1].stored == 0 || m->segs[i].stored < m->segs[k - 1].stored))
            m->segs[k - 1].stored = m->segs[i].stored;
    m->nsegs = k;
    if (m->ntls > 1)
        qsort(m->tls, m->ntls, sizeof *m->tls, tli_cmp);
    /* each timeline's count and range, from the segments (both sorted) */
    for (i = 0; i < m->ntls; i++) {
        struct tl_timeline *t = &m->tls[i];

        t->nsegs = 0;
        while (j < m->nsegs && m->segs[j].tli < t->tli)
            j++;
        for (; j < m->nsegs && m->segs[j].tli == t->tli; j++) {
            if (t->nsegs == 0)
                t->oldest = m->segs[j].segno;
            t->newest = m->segs[j].segno;
            t->nsegs++;
        }
    }
}

/* A timeline whose history was read and parsed. */
static int history_good(const struct tl_timeline *t)
{
    return t->has_history && t->hist_error == NULL;
}

int tl_model_merge(struct tl_model *dst, const struct tl_model *src, struct err *e)
{
    size_t i;

    for (i = 0; i < src->ntls; i++) {
        const struct tl_timeline *s = &src->tls[i];
        struct tl_timeline *d = tl_get(dst, s->tli);

        if (d == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        if (!s->has_history || history_good(d) || (d->has_history && !history_good(s)))
            continue;
        if (history_good(s)) {
            struct tl_hist_entry *h = NULL;

            if (s->nhist > 0 && (h = malloc(s->nhist * sizeof *h)) == NULL)
                return err_setf(e, ERR_NOMEM, "out of memory");
            if (s->nhist > 0)
                memcpy(h, s->hist, s->nhist * sizeof *h);
            free(d->hist);
            free(d->hist_error);
            d->hist = h;
            d->nhist = s->nhist;
            d->hist_error = NULL;
            d->has_history = 1;
        } else if (tl_model_history_failed(dst, s->tli, s->hist_error) < 0) {
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
    }
    if (src->nsegs > 0) {
        if (array_reserve(&dst->segs, &dst->segs_cap, dst->nsegs + src->nsegs, sizeof *dst->segs) < 0)
            return err_setf(e, ERR_NOMEM, "out of memory");
        memcpy(dst->segs + dst->nsegs, src->segs, src->nsegs * sizeof *src->segs);
        dst->nsegs += src->nsegs;
    }
    return 0;
}

struct load_walk {
    struct tl_model *m;
    int times;                  /* record each object's time (tl_model_add_stored) */
    int failed;
};

static int load_collect(const struct stor_entry *ent, void *arg)
{
    struct load_walk *w = arg;
    const char *name = ent->key + strlen(REPO_WAL_DIR);

    if (strncmp(ent->key, REPO_WAL_DIR, strlen(REPO_WAL_DIR)) != 0)
        return 0;
    if ((w->times ? tl_model_add_stored(w->m, name, (int64_t)ent->mtime) : tl_model_add(w->m, name)) < 0)
        return w->failed = 1;
    return 0;
}

int tl_model_load_times(struct repo *rp, uint64_t seg_size, int times, struct tl_model *m, struct err *e)
{
    struct load_walk w = { m, times, 0 };

    tl_model_init(m, seg_size);
    if (stor_list(rp->st, REPO_WAL_DIR, load_collect, &w, e) < 0)
        return err_prefix(e, "could not list the WAL archive");
    if (w.failed)
        return err_setf(e, ERR_NOMEM, "out of memory listing the WAL archive");
    if (tl_model_read_histories(m, rp, NULL, NULL, e) < 0)
        return -1;
    tl_model_finish(m);
    return 0;
}

int tl_model_load(struct repo *rp, uint64_t seg_size, struct tl_model *m, struct err *e)
{
    return tl_model_load_times(rp, seg_size, 0, m, e);
}

/* ---- asking ---- */

const struct tl_timeline *tl_find(const struct tl_model *m, uint32_t tli)
{
    size_t i;

    for (i = 0; i < m->ntls; i++)
        if (m->tls[i].tli == tli)
            return &m->tls[i];
    return NULL;
}

int tl_has_seg(const struct tl_model *m, uint32_t tli, uint64_t segno)
{
    struct tl_seg k = { tli, segno, 0 };

    return m->nsegs > 0 && bsearch(&k, m->segs, m->nsegs, sizeof k, seg_cmp) != NULL;
}

uint32_t tl_latest_probe(const struct tl_model *m, uint32_t tli)
{
    const struct tl_timeline *t;

    while ((t = tl_find(m, tli + 1)) != NULL && t->has_history)
        tli++;
    return tli;
}

/* Does timeline x's ancestry pass through `tli` at or after `lsn`? */
static int descends(const struct tl_timeline *x, uint32_t tli, uint64_t lsn)
{
    size_t i;

    if (x->tli == tli)
        return 1;
    for (i = 0; i < x->nhist; i++)
        if (x->hist[i].tli == tli && x->hist[i].end_lsn > lsn)
            return 1;
    return 0;
}

uint32_t tl_latest_descendant(const struct tl_model *m, uint32_t tli, uint64_t lsn)
{
    uint32_t best = 0;
    size_t i;

    for (i = 0; i < m->ntls; i++)
        if (descends(&m->tls[i], tli, lsn) && m->tls[i].tli > best)
            best = m->tls[i].tli;
    return best;
}

uint32_t tl_target(const struct tl_model *m, uint32_t tli, const char *timeline, struct err *e)
{
    int n;

    if (timeline == NULL || timeline[0] == '\0' || strcmp(timeline, "latest") == 0)
        return tl_latest_probe(m, tli);
    if (strcmp(timeline, "current") == 0)
        return tli;
    if (parse_int(timeline, 1, 0x7fffffff, &n, e) < 0) {
        err_prefix(e, "bad recovery target timeline");
        return 0;
    }
    return (uint32_t)n;
}

int tl_path(const struct tl_model *m, uint32_t target, struct tl_step **out, size_t *n, struct err *e)
{
    const struct tl_timeline *t = tl_find(m, target);
    const struct tl_hist_entry *h = NULL;
    struct tl_step *p;
    size_t nh = 0, i;
    uint64_t begin = 0;

    *out = NULL;
    *n = 0;
    if (target > 1) {
        if (t == NULL || !t->has_history)
            return err_setf(e, ERR_NOTFOUND, "the history file of timeline %u is not archived", (unsigned)target);
        if (t->hist_error != NULL)
            return err_setf(e, ERR_IO, "history file %08X.history is unusable: %s", (unsigned)target,
                            t->hist_error);
        h = t->hist;
        nh = t->nhist;
    }
    if ((p = calloc(nh + 1, sizeof *p)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < nh; i++) {
        p[i].tli = h[i].tli;
        p[i].begin = begin;
        p[i].end = h[i].end_lsn;
        begin = h[i].end_lsn;
    }
    p[nh].tli = target;
    p[nh].begin = begin;
    p[nh].end = UINT64_MAX;
    *out = p;
    *n = nh + 1;
    return 0;
}

int tl_path_from(const struct tl_model *m, uint32_t tli, uint32_t target, struct tl_step **out, size_t *n,
                 struct err *e)
{
    if (target != tli || tl_has_history(m, target))
        return tl_path(m, target, out, n, e);
    /* the backup's own timeline, no history: the path is that timeline */
    if ((*out = calloc(1, sizeof **out)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    (*out)->tli = tli;
    (*out)->end = UINT64_MAX;
    *n = 1;
    return 0;
}

int tl_path_index(const struct tl_step *p, size_t n, uint32_t tli, uint64_t lsn)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i].tli == tli && (lsn == 0 || p[i].end > lsn))
            return (int)i;
    return -1;
}

uint64_t tl_backup_end(uint64_t start_lsn, uint64_t stop_lsn)
{
    return stop_lsn > start_lsn ? stop_lsn - 1 : start_lsn;
}

size_t tl_path_owner(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t segno)
{
    size_t j = n;

    while (j > 1 && segno < p[j - 1].begin / m->seg_size)
        j--;
    return j - 1;
}

/* The timeline segment `segno` is read from, considering only timelines
 * of at least `min` (PostgreSQL never goes back to an older one). */
static uint32_t read_from_min(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t segno,
                              enum tl_mode mode, uint32_t min)
{
    size_t i;

    if (n == 0)
        return 0;
    i = tl_path_owner(m, p, n, segno) + 1;
    if (mode == TL_STRICT)
        return tl_has_seg(m, p[i - 1].tli, segno) ? p[i - 1].tli : 0;
    while (i-- > 0)
        if (p[i].tli >= min && segno >= p[i].begin / m->seg_size && tl_has_seg(m, p[i].tli, segno))
            return p[i].tli;
    return 0;
}

uint32_t tl_read_from(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t segno,
                      enum tl_mode mode)
{
    return read_from_min(m, p, n, segno, mode, 0);
}

int tl_path_newest(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t *segno)
{
    size_t i, j;
    int found = 0;

    for (i = 0; i < m->nsegs; i++)
        for (j = 0; j < n; j++) {
            const struct tl_seg *s = &m->segs[i];

            if (s->tli == p[j].tli && s->segno >= p[j].begin / m->seg_size &&
                (p[j].end == UINT64_MAX || s->segno <= (p[j].end - 1) / m->seg_size) &&
                (!found || s->segno > *segno)) {
                *segno = s->segno;
                found = 1;
            }
        }
    return found;
}

/* The first segment number >= x that any timeline of the path holds
 * (UINT64_MAX: none).  Nothing before it can be read. */
static uint64_t next_present(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t x)
{
    uint64_t best = UINT64_MAX;
    size_t k;

    for (k = 0; k < n; k++) {
        size_t lo = 0, hi = m->nsegs;

        while (lo < hi) {   /* the first (tli, segno) >= (p[k].tli, x) */
            size_t mid = lo + (hi - lo) / 2;
            const struct tl_seg *g = &m->segs[mid];

            if (g->tli < p[k].tli || (g->tli == p[k].tli && g->segno < x))
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < m->nsegs && m->segs[lo].tli == p[k].tli && m->segs[lo].segno < best)
            best = m->segs[lo].segno;
    }
    return best;
}

/* Read [from, to] in order as recovery does: 1 and *gap at the first
 * segment that cannot be read, else 0 and *last_tli (the timeline `to` is
 * read from).  As PostgreSQL, once a segment came from a timeline, older
 * timelines are not looked at any more (XLogFileReadAnyTLI). */
static int walk_path(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t from, uint64_t to,
                     enum tl_mode mode, struct tl_gap *gap, uint32_t *last_tli)
{
    uint32_t cur = 0, t;
    uint64_t s;

    for (s = from; s <= to && n > 0; s++) {
        size_t o;
        uint64_t end;

        if ((t = read_from_min(m, p, n, s, mode, cur)) != 0) {
            cur = t;
            continue;
        }
        o = tl_path_owner(m, p, n, s);
        gap->tli = p[o].tli;
        gap->first = gap->last = s;
        /* the gap runs to the segment before the next one the path holds,
         * within its owner's stretch: skipped over, not walked one segment
         * at a time (a stray object billions of segments ahead made verify
         * and restore spin for hours: adversarial pass O) */
        end = o + 1 < n && p[o + 1].begin / m->seg_size > 0 ? p[o + 1].begin / m->seg_size - 1 : UINT64_MAX;
        if (end > to)
            end = to;
        while (gap->last < end && read_from_min(m, p, n, gap->last + 1, mode, cur) == 0) {
            uint64_t nx = next_present(m, p, n, gap->last + 2);

            gap->last = nx - 1 < end ? nx - 1 : end;
        }
        return 1;
    }
    if (last_tli != NULL)
        *last_tli = cur;
    return 0;
}

int tl_first_gap(const struct tl_model *m, const struct tl_step *p, size_t n, uint64_t from, uint64_t to,
                 enum tl_mode mode, struct tl_gap *gap)
{
    return walk_path(m, p, n, from, to, mode, gap, NULL);
}

/* ---- from a backup to the end of the archive ---- */

void tl_reach_free(struct tl_reach *r)
{
    free(r->path);
    memset(r, 0, sizeof *r);
}

int tl_reach(const struct tl_model *m, uint32_t tli, uint64_t start_lsn, uint32_t target, struct tl_reach *r,
             struct err *e)
{
    size_t i;

    memset(r, 0, sizeof *r);
    if (tl_path_from(m, tli, target, &r->path, &r->npath, e) < 0)
        return -1;
    /* the backup must start on the path: on its timeline before the point
     * where the path leaves it (PostgreSQL: "requested timeline is not a
     * child of this server's history") */
    if (tl_path_index(r->path, r->npath, tli, start_lsn) < 0) {
        r->status = TL_REACH_NOT_DESCENDANT;
        return 0;
    }
    r->first = start_lsn / m->seg_size;
    if (!tl_path_newest(m, r->path, r->npath, &r->last) || r->last < r->first) {
        r->status = TL_REACH_NO_START;
        return 0;
    }
    if (walk_path(m, r->path, r->npath, r->first, r->last, TL_AS_POSTGRES, &r->gap, &r->last_tli)) {
        r->status = TL_REACH_GAP;
        return 0;
    }
    r->nsegments = (unsigned long)(r->last - r->first + 1);
    r->limit = UINT64_MAX;
    for (i = 0; i + 1 < r->npath; i++)
        if (r->path[i].tli == r->last_tli)
            r->limit = r->path[i].end;
    r->status = TL_REACH_OK;
    return 0;
}

/* ---- retention ---- */

void tl_need_add(struct tl_need *n, const char *start_wal, uint64_t seg_size)
{
    struct wal_name w;
    struct err ignored = ERR_INIT;
    uint64_t segno;

    if (!wal_seg_size_valid(seg_size) || wal_parse(start_wal, &w, &ignored) < 0 || w.kind != WAL_SEGMENT ||
        (n->seg_size != 0 && n->seg_size != seg_size)) {
        n->unplaceable = 1;
        return;
    }
    n->seg_size = seg_size;
    segno = wal_segno(&w, seg_size);
    if (!n->have || w.tli < n->tli)
        n->tli = w.tli;
    if (!n->have || segno < n->segno) {
        n->segno = segno;
        memcpy(n->start_wal, start_wal, WAL_NAME_LEN);
        n->start_wal[WAL_NAME_LEN] = '\0';
    }
    n->have = 1;
}

int tl_need_expired(const struct tl_need *n, const char *name)
{
    struct wal_name w;
    struct err ignored = ERR_INIT;

    if (!n->have || n->unplaceable || wal_parse(name, &w, &ignored) < 0 || w.kind == WAL_HISTORY)
        return 0;
    return w.tli <= n->tli && wal_segno(&w, n->seg_size) < n->segno;
}
