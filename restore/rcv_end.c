/*
 * rcv_end — the end of the archive along the timeline recovery follows
 * (recover.h).  It mirrors PostgreSQL's choices: recovery_target_timeline
 * 'latest' is the newest timeline reached by probing history files upward
 * from the backup's; a segment is read from the newest timeline of the
 * path that began at or before it and has it archived.
 */
#include "recover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "verify.h"

struct seg {
    uint32_t tli;
    uint64_t segno;
};

struct wal_index {
    struct seg *v;
    size_t n, cap;
    uint32_t *hist;                     /* timelines with a history file */
    size_t nhist, hcap;
    uint64_t seg_size;
    int failed;
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    void *nv;
    size_t c;

    if (n < *cap)
        return 0;
    c = *cap ? *cap * 2 : 256;
    if ((nv = realloc(*v, c * size)) == NULL)
        return -1;
    *v = nv;
    *cap = c;
    return 0;
}

static int collect(const struct stor_entry *ent, void *arg)
{
    struct wal_index *w = arg;
    struct wal_name wn;
    struct err e = ERR_INIT;

    if (strncmp(ent->key, REPO_WAL_DIR, strlen(REPO_WAL_DIR)) != 0 ||
        wal_parse(ent->key + strlen(REPO_WAL_DIR), &wn, &e) < 0)
        return 0;
    if (wn.kind == WAL_SEGMENT) {
        if (grow((void **)&w->v, &w->cap, w->n, sizeof *w->v) < 0)
            return w->failed = 1;
        w->v[w->n].tli = wn.tli;
        w->v[w->n].segno = wal_segno(&wn, w->seg_size);
        w->n++;
    } else if (wn.kind == WAL_HISTORY) {
        if (grow((void **)&w->hist, &w->hcap, w->nhist, sizeof *w->hist) < 0)
            return w->failed = 1;
        w->hist[w->nhist++] = wn.tli;
    }
    return 0;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;

    if (x->tli != y->tli)
        return x->tli < y->tli ? -1 : 1;
    return x->segno < y->segno ? -1 : x->segno > y->segno;
}

static int has_seg(const struct wal_index *w, uint32_t tli, uint64_t segno)
{
    struct seg k = { tli, segno };

    return bsearch(&k, w->v, w->n, sizeof k, seg_cmp) != NULL;
}

static int has_hist(const struct wal_index *w, uint32_t tli)
{
    size_t i;

    for (i = 0; i < w->nhist; i++)
        if (w->hist[i] == tli)
            return 1;
    return 0;
}

/* One timeline of the path: it begins at `begin` and ends at `end`
 * (UINT64_MAX for the target). */
struct path_tl {
    uint32_t tli;
    uint64_t begin, end;
};

/* The path: the target's history (oldest first), then the target. */
static int build_path(struct repo *r, const struct wal_index *w, const struct manifest *m, uint32_t target,
                      struct path_tl **out, size_t *n, struct err *e)
{
    struct vfy_hist_entry *h = NULL;
    size_t nh = 0, i;
    struct path_tl *p;
    uint64_t begin = 0;

    if (target != m->timeline || has_hist(w, target)) {
        char key[REPO_KEY_MAX], name[24];
        unsigned char *buf = NULL;
        size_t len = 0;

        if (target > 1 && !has_hist(w, target))
            return err_setf(e, ERR_NOTFOUND, "region %s: the history file of timeline %u is not archived", r->name,
                            (unsigned)target);
        if (target > 1) {
            snprintf(name, sizeof name, "%08X.history", (unsigned)target);
            if (repo_key_wal(key, sizeof key, name) < 0 || repo_get_buf(r, key, 1 << 20, &buf, &len, e) < 0)
                return err_prefix(e, "could not read the history of timeline %u", (unsigned)target);
            if (vfy_parse_history((const char *)buf, len, &h, &nh, e) < 0) {
                free(buf);
                return err_prefix(e, "history file %s", name);
            }
            free(buf);
        }
    }
    if ((p = calloc(nh + 1, sizeof *p)) == NULL) {
        free(h);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    for (i = 0; i < nh; i++) {
        p[i].tli = h[i].tli;
        p[i].begin = begin;
        p[i].end = h[i].end_lsn;
        begin = h[i].end_lsn;
    }
    p[nh].tli = target;
    p[nh].begin = begin;
    p[nh].end = UINT64_MAX;
    free(h);
    for (i = 0; i <= nh; i++)
        if (p[i].tli == m->timeline)
            break;
    if (i > nh) {
        free(p);
        return err_setf(e, ERR_NOTFOUND,
                        "region %s: timeline %u does not descend from timeline %u, where backup %s was taken", r->name,
                        (unsigned)target, (unsigned)m->timeline, m->name);
    }
    *out = p;
    *n = nh + 1;
    return 0;
}

/* The timeline PostgreSQL reads segment `segno` from: the newest on the
 * path that began at or before it and has it archived; 0 when none. */
static uint32_t read_from(const struct wal_index *w, const struct path_tl *p, size_t n, uint64_t segno)
{
    size_t i;

    for (i = n; i-- > 0;)
        if (segno >= p[i].begin / w->seg_size && has_seg(w, p[i].tli, segno))
            return p[i].tli;
    return 0;
}

static uint32_t choose_target(const struct wal_index *w, const struct manifest *m, const char *timeline,
                              struct err *e)
{
    int n;

    if (timeline == NULL || strcmp(timeline, "latest") == 0 || timeline[0] == '\0') {
        uint32_t t = m->timeline;

        while (has_hist(w, t + 1))
            t++;
        return t;
    }
    if (strcmp(timeline, "current") == 0)
        return m->timeline;
    if (parse_int(timeline, 1, 0x7fffffff, &n, e) < 0) {
        err_prefix(e, "bad recovery target timeline");
        return 0;
    }
    return (uint32_t)n;
}

int rcv_archive_end(struct repo *r, const struct manifest *m, const char *timeline, struct rcv_end *out,
                    struct err *e)
{
    struct wal_index w;
    struct path_tl *p = NULL;
    size_t np = 0, i;
    uint64_t first, last = 0, s;
    uint32_t target;
    int rc = -1, found = 0;

    memset(&w, 0, sizeof w);
    memset(out, 0, sizeof *out);
    w.seg_size = m->wal_segment_size ? m->wal_segment_size : (16u << 20);
    if (stor_list(r->st, REPO_WAL_DIR, collect, &w, e) < 0) {
        err_prefix(e, "could not list the WAL archive");
        goto out;
    }
    if (w.failed) {
        err_setf(e, ERR_NOMEM, "out of memory listing the WAL archive");
        goto out;
    }
    if (w.n > 0)
        qsort(w.v, w.n, sizeof *w.v, seg_cmp);
    if ((target = choose_target(&w, m, timeline, e)) == 0 || build_path(r, &w, m, target, &p, &np, e) < 0)
        goto out;
    /* the newest segment on the path */
    for (i = 0; i < w.n; i++) {
        size_t j;

        for (j = 0; j < np; j++)
            if (w.v[i].tli == p[j].tli && w.v[i].segno >= p[j].begin / w.seg_size &&
                (p[j].end == UINT64_MAX || w.v[i].segno <= (p[j].end - 1) / w.seg_size) && w.v[i].segno > last) {
                last = w.v[i].segno;
                found = 1;
            }
    }
    first = m->start_lsn / w.seg_size;
    if (!found || last < first) {
        char name[WAL_NAME_LEN + 1];

        wal_segment_name(m->timeline, first, w.seg_size, name);
        err_setf(e, ERR_NOTFOUND, "region %s: WAL segment %s, where backup %s starts, is not archived", r->name,
                 name, m->name);
        goto out;
    }
    for (s = first; s <= last; s++) {
        if (read_from(&w, p, np, s) == 0) {
            char name[WAL_NAME_LEN + 1], lsn[24];
            size_t j = np;

            while (j > 1 && s < p[j - 1].begin / w.seg_size)
                j--;
            wal_segment_name(p[j - 1].tli, s, w.seg_size, name);
            wal_format_lsn(s * w.seg_size, lsn);
            err_setf(e, ERR_NOTFOUND,
                     "region %s: WAL segment %s is missing from the archive (it has later segments on timeline %u): "
                     "recovery would stop at LSN %s, before the end of the archive",
                     r->name, name, (unsigned)target, lsn);
            goto out;
        }
        out->nsegments++;
    }
    out->tli = read_from(&w, p, np, last);
    wal_segment_name(out->tli, last, w.seg_size, out->newest);
    out->limit = UINT64_MAX;
    for (i = 0; i + 1 < np; i++)
        if (p[i].tli == out->tli)
            out->limit = p[i].end;
    rc = 0;
out:
    free(p);
    free(w.v);
    free(w.hist);
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
