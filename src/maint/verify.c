/*
 * verify — see verify.h and docs/VERIFY.md.
 */
#include <archive.h>
#include <archive_entry.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bkf_pipe.h"
#include "catalog.h"
#include "manifest.h"
#include "util.h"
#include "verify.h"
#include "wal.h"

#define VFY_PIPE_CAP ((size_t)4 << 20)
#define VFY_HISTORY_MAX ((size_t)1 << 20)

/* ---- the report ---- */

static int problem(struct vfy_report *r, const char *object, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int problem(struct vfy_report *r, const char *object, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (i = 0; i < r->n; i++)
        if (strcmp(r->v[i].object, object) == 0)
            return 0;   /* one report per object (several backups share WAL) */
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        void *nv = realloc(r->v, cap * sizeof *r->v);

        if (nv == NULL)
            return -1;
        r->v = nv;
        r->cap = cap;
    }
    r->v[r->n].object = xstrdup(object);
    r->v[r->n].msg = xstrdup(msg);
    if (r->v[r->n].object == NULL || r->v[r->n].msg == NULL) {
        free(r->v[r->n].object);
        free(r->v[r->n].msg);
        return -1;
    }
    r->n++;
    return 0;
}

void vfy_report_free(struct vfy_report *r)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->v[i].object);
        free(r->v[i].msg);
    }
    free(r->v);
    for (i = 0; i < r->nnotes; i++) {
        free(r->notes[i].object);
        free(r->notes[i].msg);
    }
    free(r->notes);
    memset(r, 0, sizeof *r);
}

/* ---- listing ---- */

struct obj {
    char *key;
    uint64_t size;
};

struct objs {
    struct obj *v;
    size_t n, cap;
    int failed;
};

static int objs_collect(const struct stor_entry *ent, void *arg)
{
    struct objs *l = arg;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        void *nv = realloc(l->v, cap * sizeof *l->v);

        if (nv == NULL) {
            l->failed = 1;
            return 1;
        }
        l->v = nv;
        l->cap = cap;
    }
    if ((l->v[l->n].key = xstrdup(ent->key)) == NULL) {
        l->failed = 1;
        return 1;
    }
    l->v[l->n++].size = ent->size;
    return 0;
}

static void objs_free(struct objs *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i].key);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int objs_list(struct stor *s, const char *prefix, struct objs *l, struct err *e)
{
    if (stor_list(s, prefix, objs_collect, l, e) < 0)
        return err_prefix(e, "could not list \"%s\" in region %s", prefix, s->region);
    if (l->failed)
        return err_setf(e, ERR_NOMEM, "out of memory listing \"%s\" in region %s", prefix, s->region);
    return 0;
}

static const struct obj *objs_find(const struct objs *l, const char *key)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i].key, key) == 0)
            return &l->v[i];
    return NULL;
}

/* ---- history files ---- */

int vfy_parse_history(const char *text, size_t len, struct vfy_hist_entry **out, size_t *n, struct err *e)
{
    struct vfy_hist_entry *v = NULL;
    size_t nv = 0, pos = 0;

    *out = NULL;
    *n = 0;
    while (pos < len) {
        char line[512], tok[64];
        size_t end = pos, l, i = 0, j;
        uint64_t tli, lsn;

        while (end < len && text[end] != '\n')
            end++;
        l = end - pos < sizeof line - 1 ? end - pos : sizeof line - 1;
        memcpy(line, text + pos, l);
        line[l] = '\0';
        pos = end + 1;
        while (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')
            i++;
        if (line[i] == '\0' || line[i] == '#')
            continue;
        for (j = 0; line[i] && line[i] != ' ' && line[i] != '\t' && j < sizeof tok - 1; i++)
            tok[j++] = line[i];
        tok[j] = '\0';
        if (parse_u64(tok, 1, UINT32_MAX, &tli, e) < 0)
            goto bad;
        while (line[i] == ' ' || line[i] == '\t')
            i++;
        for (j = 0; line[i] && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && j < sizeof tok - 1; i++)
            tok[j++] = line[i];
        tok[j] = '\0';
        if (wal_parse_lsn(tok, &lsn, e) < 0)
            goto bad;
        {
            void *nvp = realloc(v, (nv + 1) * sizeof *v);

            if (nvp == NULL) {
                free(v);
                return err_setf(e, ERR_NOMEM, "out of memory");
            }
            v = nvp;
        }
        v[nv].tli = (uint32_t)tli;
        v[nv].end_lsn = lsn;
        nv++;
    }
    *out = v;
    *n = nv;
    return 0;
bad:
    free(v);
    return err_prefix(e, "bad history line");
}

/* ---- the WAL archive ---- */

struct seg {
    uint32_t tli;
    uint64_t segno;
};

struct tl {
    uint32_t tli;
    int has_history;
    struct vfy_hist_entry *hist;    /* ancestry from the history file */
    size_t nhist;
    uint64_t newest;                /* newest archived segno, if nsegs */
    uint64_t nsegs;
};

struct walarch {
    struct seg *segs;               /* sorted: names sort by (tli, segno) */
    size_t nsegs;
    struct tl *tls;
    size_t ntls;
    uint64_t seg_size;
};

static struct tl *tl_get(struct walarch *w, uint32_t tli)
{
    size_t i;
    void *nv;

    for (i = 0; i < w->ntls; i++)
        if (w->tls[i].tli == tli)
            return &w->tls[i];
    nv = realloc(w->tls, (w->ntls + 1) * sizeof *w->tls);
    if (nv == NULL)
        return NULL;
    w->tls = nv;
    memset(&w->tls[w->ntls], 0, sizeof w->tls[0]);
    w->tls[w->ntls].tli = tli;
    return &w->tls[w->ntls++];
}

static const struct tl *tl_find(const struct walarch *w, uint32_t tli)
{
    size_t i;

    for (i = 0; i < w->ntls; i++)
        if (w->tls[i].tli == tli)
            return &w->tls[i];
    return NULL;
}

static void walarch_free(struct walarch *w)
{
    size_t i;

    for (i = 0; i < w->ntls; i++)
        free(w->tls[i].hist);
    free(w->tls);
    free(w->segs);
    memset(w, 0, sizeof *w);
}

static int fetch_small(struct repo *rp, const char *key, unsigned char **buf, size_t *len, struct err *e)
{
    struct sink *m = mem_sink_new(VFY_HISTORY_MAX), *b;

    if (m == NULL || (b = borrow_sink_new(m)) == NULL) {
        sink_free(m);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (repo_get(rp, key, b, e) < 0) {
        sink_free(m);
        return -1;
    }
    *buf = mem_sink_take(m, len);
    sink_free(m);
    return 0;
}

/* Index wal/: segments, and the ancestry of every timeline with a history
 * file (decoded).  A history file that does not decode is a problem. */
static int walarch_load(struct repo *rp, const struct objs *wal, struct walarch *w, struct vfy_report *r,
                        struct err *e)
{
    size_t i;

    for (i = 0; i < wal->n; i++) {
        const char *name = wal->v[i].key + 4;
        struct wal_name wn;
        struct err pe = ERR_INIT;
        struct tl *t;

        if (wal_parse(name, &wn, &pe) < 0)
            continue;
        if (wn.kind == WAL_SEGMENT) {
            if (w->nsegs % 1024 == 0) {
                void *nv = realloc(w->segs, (w->nsegs + 1024) * sizeof *w->segs);

                if (nv == NULL)
                    return err_setf(e, ERR_NOMEM, "out of memory");
                w->segs = nv;
            }
            w->segs[w->nsegs].tli = wn.tli;
            w->segs[w->nsegs].segno = wal_segno(&wn, w->seg_size);
            if ((t = tl_get(w, wn.tli)) == NULL)
                return err_setf(e, ERR_NOMEM, "out of memory");
            if (t->nsegs == 0 || w->segs[w->nsegs].segno > t->newest)
                t->newest = w->segs[w->nsegs].segno;
            t->nsegs++;
            w->nsegs++;
            r->wal_segments++;
        } else if (wn.kind == WAL_HISTORY) {
            unsigned char *buf = NULL;
            size_t len = 0;
            struct err he = ERR_INIT;

            if ((t = tl_get(w, wn.tli)) == NULL)
                return err_setf(e, ERR_NOMEM, "out of memory");
            if (fetch_small(rp, wal->v[i].key, &buf, &len, &he) < 0 ||
                vfy_parse_history((const char *)buf, len, &t->hist, &t->nhist, &he) < 0) {
                free(buf);
                if (he.code == ERR_NOMEM)
                    return err_setf(e, ERR_NOMEM, "out of memory");
                if (problem(r, wal->v[i].key, "history file %s is unusable: %s", name, he.msg) < 0)
                    return err_setf(e, ERR_NOMEM, "out of memory");
                continue;
            }
            free(buf);
            t->has_history = 1;
        }
    }
    return 0;
}

/* Does timeline `x`'s ancestry pass through `tli` at or after `lsn`?  Then
 * *end gets the LSN where `tli` ends on that path (UINT64_MAX: x == tli). */
static int descends(const struct tl *x, uint32_t tli, uint64_t lsn, uint64_t *end)
{
    size_t i;

    if (x->tli == tli) {
        *end = UINT64_MAX;
        return 1;
    }
    for (i = 0; i < x->nhist; i++)
        if (x->hist[i].tli == tli && x->hist[i].end_lsn > lsn) {
            *end = x->hist[i].end_lsn;
            return 1;
        }
    return 0;
}

/* Report the segments of [from, to] on `tli` that are not archived. */
static int check_range(const struct walarch *w, const char *bname, uint32_t tli, uint64_t from, uint64_t to,
                       struct vfy_report *r)
{
    uint64_t expect = from;
    size_t i;

    if (to < from)
        return 0;
    r->wal_needed += to - from + 1;
    for (i = 0; i <= w->nsegs; i++) {
        uint64_t got;

        if (i < w->nsegs) {
            if (w->segs[i].tli != tli || w->segs[i].segno < from)
                continue;
            if (w->segs[i].segno > to)
                continue;
            got = w->segs[i].segno;
        } else {
            got = to + 1;
        }
        if (got > expect) {
            char a[WAL_NAME_LEN + 1], b[WAL_NAME_LEN + 1], key[64];
            int rc;

            wal_segment_name(tli, expect, w->seg_size, a);
            wal_segment_name(tli, got - 1, w->seg_size, b);
            snprintf(key, sizeof key, "wal/%s", a);
            if (got - 1 == expect)
                rc = problem(r, key, "WAL segment %s is missing: backup %s needs it (recovery would stop there)", a,
                             bname);
            else
                rc = problem(r, key,
                             "WAL segments %s to %s (%" PRIu64 ") are missing: backup %s needs them (recovery would "
                             "stop there)", a, b, got - expect, bname);
            if (rc < 0)
                return -1;
        }
        if (got >= expect)
            expect = got + 1;
    }
    return 0;
}

static int check_backup_wal(const struct walarch *w, const struct manifest *m, struct vfy_report *r)
{
    const struct tl *target = NULL;
    uint64_t start_seg, stop_seg, from, end;
    uint32_t tli = m->timeline;
    size_t i, k;

    {
        struct wal_name wn;
        struct err pe = ERR_INIT;
        if (wal_parse(m->start_wal, &wn, &pe) < 0)
            return problem(r, m->start_wal, "backup %s: bad start_wal \"%s\" in its manifest", m->name, m->start_wal);
        start_seg = wal_segno(&wn, w->seg_size);
        if (wal_parse(m->stop_wal, &wn, &pe) < 0)
            return problem(r, m->stop_wal, "backup %s: bad stop_wal \"%s\" in its manifest", m->name, m->stop_wal);
        stop_seg = wal_segno(&wn, w->seg_size);
    }
    /* recovery_target_timeline = latest: the newest timeline that descends
     * from the backup's start point */
    for (i = 0; i < w->ntls; i++) {
        if (!descends(&w->tls[i], tli, m->start_lsn, &end))
            continue;
        if (target == NULL || w->tls[i].tli > target->tli)
            target = &w->tls[i];
    }
    if (target == NULL) {
        char key[64];

        snprintf(key, sizeof key, "wal/%s", m->start_wal);
        return problem(r, key, "WAL segment %s, where backup %s starts, is not archived (no WAL on timeline %u)",
                       m->start_wal, m->name, (unsigned)tli);
    }
    /* walk the target's ancestry from the backup's timeline */
    from = start_seg;
    k = 0;
    if (target->tli != tli) {
        for (k = 0; k < target->nhist; k++)
            if (target->hist[k].tli == tli)
                break;
    }
    for (;;) {
        const struct tl *cur;
        uint64_t to;

        if (target->tli == tli) {
            cur = target;
            to = cur->nsegs ? cur->newest : 0;
            if (tli == m->stop_timeline && tli == m->timeline && stop_seg > to)
                to = stop_seg;
            if (cur->nsegs == 0 && to == 0)
                break;
            if (check_range(w, m->name, tli, from, to, r) < 0)
                return -1;
            break;
        }
        end = target->hist[k].end_lsn;
        to = end / w->seg_size;     /* the switch segment is on the child */
        if (to > 0 && check_range(w, m->name, tli, from, to - 1, r) < 0)
            return -1;
        if (end / w->seg_size > from)
            from = end / w->seg_size;
        k++;
        tli = k < target->nhist ? target->hist[k].tli : target->tli;
        cur = tl_find(w, tli);
        if (tli > 1 && (cur == NULL || !cur->has_history) && cur != target) {
            char key[64];

            snprintf(key, sizeof key, "wal/%08X.history", (unsigned)tli);
            if (problem(r, key, "history file of timeline %u is missing (backup %s's WAL goes through it)",
                        (unsigned)tli, m->name) < 0)
                return -1;
        }
    }
    return 0;
}

/* Timelines above 1 with WAL but no history file: recovery cannot follow
 * them. */
static int check_histories(const struct walarch *w, struct vfy_report *r)
{
    size_t i;

    for (i = 0; i < w->ntls; i++) {
        char key[64];

        if (w->tls[i].tli <= 1 || w->tls[i].has_history)
            continue;
        snprintf(key, sizeof key, "wal/%08X.history", (unsigned)w->tls[i].tli);
        if (problem(r, key, "timeline %u has WAL but its history file %08X.history is not archived",
                    (unsigned)w->tls[i].tli, (unsigned)w->tls[i].tli) < 0)
            return -1;
    }
    return 0;
}

/* ---- --full: one part through libarchive ---- */

struct part_read {
    struct repo *rp;
    const char *key;
    struct bkf_pipe pipe;
    atomic_int abort;
    uint64_t decoded;
    int dl_rc;
    struct err dl_err;
};

static void *part_download(void *arg)
{
    struct part_read *p = arg;
    struct sink *ps = bkf_pipe_sink_new(&p->pipe), *cs;

    p->dl_rc = -1;
    if (ps == NULL || (cs = count_sink_new(ps, &p->decoded)) == NULL) {
        sink_free(ps);
        err_setf(&p->dl_err, ERR_NOMEM, "out of memory");
    } else if (repo_get(p->rp, p->key, cs, &p->dl_err) == 0) {
        p->dl_rc = 0;
    }
    bkf_pipe_writer_done(&p->pipe, p->dl_rc == 0);
    return NULL;
}

static int hash_entry(struct archive *a, char hex[65], uint64_t *size)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    const void *buf;
    size_t len;
    la_int64_t off;
    int r, rc = -1;

    *size = 0;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto out;
    while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
        if (EVP_DigestUpdate(md, buf, len) != 1)
            goto out;
        *size += len;
    }
    if (r != ARCHIVE_EOF || EVP_DigestFinal_ex(md, d, &dn) != 1 || dn != 32)
        goto out;
    hex_encode(d, 32, hex);
    hex[64] = '\0';
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

static int full_part(struct repo *rp, const struct manifest *m, const struct man_part *mp, const char *key,
                     unsigned char *seen, struct vfy_report *r, struct err *e)
{
    struct part_read p;
    struct archive *a = NULL;
    struct archive_entry *ent;
    pthread_t th;
    char why[1024] = "";
    int rc = -1, ok = 0, hard = 0, refused;
    size_t i;

    memset(&p, 0, sizeof p);
    p.rp = rp;
    p.key = key;
    atomic_init(&p.abort, 0);
    if (bkf_pipe_init(&p.pipe, VFY_PIPE_CAP, &p.abort) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (pthread_create(&th, NULL, part_download, &p) != 0) {
        bkf_pipe_destroy(&p.pipe);
        return err_setf(e, ERR_INTERNAL, "could not start a download thread");
    }
    a = archive_read_new();
    if (a == NULL || archive_read_support_format_tar(a) != ARCHIVE_OK) {
        hard = 1;
        goto join;
    }
    if (archive_read_open(a, &p.pipe, NULL, bkf_pipe_read, NULL) != ARCHIVE_OK) {
        snprintf(why, sizeof why, "not a tar stream: %s", archive_error_string(a));
        goto join;
    }
    for (;;) {
        const struct man_file *f;
        const char *path;
        char hex[65];
        uint64_t size;
        int h = archive_read_next_header(a, &ent);

        if (h == ARCHIVE_EOF) {
            ok = 1;
            break;
        }
        if (h != ARCHIVE_OK && h != ARCHIVE_WARN) {
            snprintf(why, sizeof why, "bad tar stream: %s", archive_error_string(a));
            break;
        }
        if (archive_entry_filetype(ent) != AE_IFREG)
            continue;
        path = archive_entry_pathname(ent);
        if (path == NULL)
            path = "";
        f = man_find_file(m, path);
        if (f == NULL || f->part != mp->number) {
            char obj[1200];

            snprintf(obj, sizeof obj, "%s:%s", key, path);
            if (problem(r, obj, "backup %s: part %u holds \"%s\", which the manifest %s", m->name,
                        (unsigned)mp->number, path, f ? "lists in another part" : "does not list") < 0)
                hard = 1;
            continue;
        }
        seen[f - m->files] = 1;
        if (hash_entry(a, hex, &size) < 0) {
            snprintf(why, sizeof why, "could not read \"%s\": %s", path, archive_error_string(a));
            break;
        }
        r->files_checked++;
        if (size != f->stored || strcmp(hex, man_file_stored_sha(f)) != 0) {
            char obj[1200];

            snprintf(obj, sizeof obj, "%s:%s", key, path);
            if (problem(r, obj, "backup %s: file \"%s\" in part %u is damaged: %s (manifest: %" PRIu64
                        " bytes, sha256 %.16s…; archive: %" PRIu64 " bytes, sha256 %.16s…)", m->name, path,
                        (unsigned)mp->number, size != f->stored ? "size differs" : "SHA-256 differs", f->stored,
                        man_file_stored_sha(f), size, hex) < 0)
                hard = 1;
        }
    }
join:
    bkf_pipe_reader_done(&p.pipe, ok ? BKF_PIPE_DISCARD : BKF_PIPE_ABORT);
    pthread_join(th, NULL);
    archive_read_free(a);
    refused = bkf_pipe_writer_refused(&p.pipe);
    bkf_pipe_destroy(&p.pipe);
    if (hard) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    r->objects_decoded++;
    if (p.dl_rc < 0 && !refused) {
        if (problem(r, key, "backup %s: part %u does not decode: %s", m->name, (unsigned)mp->number,
                    p.dl_err.msg) < 0)
            goto nomem;
    } else if (!ok) {
        if (problem(r, key, "backup %s: part %u: %s", m->name, (unsigned)mp->number, why) < 0)
            goto nomem;
    } else {
        r->bytes_decoded += p.decoded;
        if (p.decoded != mp->raw_size &&
            problem(r, key, "backup %s: part %u decodes to %" PRIu64 " bytes, the manifest says %" PRIu64,
                    m->name, (unsigned)mp->number, p.decoded, mp->raw_size) < 0)
            goto nomem;
        for (i = 0; i < m->nfiles; i++) {
            char obj[1200];

            if (m->files[i].part != mp->number || seen[i])
                continue;
            snprintf(obj, sizeof obj, "%s:%s", key, m->files[i].path);
            if (problem(r, obj, "backup %s: file \"%s\" is missing from part %u", m->name, m->files[i].path,
                        (unsigned)mp->number) < 0)
                goto nomem;
        }
    }
    rc = 0;
    goto out;
nomem:
    err_setf(e, ERR_NOMEM, "out of memory");
out:
    return rc;
}

/* Decode an object fully and count its plaintext; a decode failure is a
 * problem, not an error.  With `segment` (a WAL segment's name) the first
 * page must also say it is that segment of this region's cluster. */
static int full_object(struct repo *rp, const char *key, uint64_t want, const char *segment, const char *what,
                       struct vfy_report *r, struct err *e)
{
    struct sink *n = null_sink_new(), *b;
    struct err de = ERR_INIT;
    uint64_t got;

    if (n == NULL || (b = borrow_sink_new(n)) == NULL) {
        sink_free(n);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (segment != NULL && rp->have_id && repo_segment_check_new(b, segment, rp->id.sysid, rp->id.pg_major, &b, e) < 0) {
        sink_free(n);
        return -1;
    }
    r->objects_decoded++;
    if (repo_get(rp, key, b, &de) < 0) {
        sink_free(n);
        if (de.code == ERR_NOMEM)
            return err_setf(e, ERR_NOMEM, "out of memory");
        return problem(r, key, "%s does not decode: %s", what, de.msg) < 0 ? err_setf(e, ERR_NOMEM, "out of memory")
                                                                          : 0;
    }
    got = null_sink_count(n);
    sink_free(n);
    r->bytes_decoded += got;
    if (want && got != want &&
        problem(r, key, "%s decodes to %" PRIu64 " bytes instead of %" PRIu64, what, got, want) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}

/* ---- one backup ---- */

static int check_backup(struct repo *rp, const struct manifest *m, int full, struct vfy_report *r, struct err *e)
{
    struct objs l = { NULL, 0, 0, 0 };
    char prefix[CAT_NAME_MAX + 16], key[CAT_NAME_MAX + 32];
    unsigned char *seen = NULL;
    size_t i;
    int rc = -1;

    snprintf(prefix, sizeof prefix, "backups/%s/", m->name);
    if (objs_list(rp->st, prefix, &l, e) < 0)
        goto out;
    if (full && m->nfiles && (seen = calloc(m->nfiles, 1)) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < m->nparts; i++) {
        const struct man_part *mp = &m->parts[i];
        const struct obj *o;
        char what[32];

        snprintf(what, sizeof what, "part-%04u", (unsigned)mp->number);
        repo_key_backup(key, sizeof key, m->name, what);
        r->parts++;
        o = objs_find(&l, key);
        if (o == NULL) {
            if (problem(r, key, "backup %s: part %u (%s) is missing", m->name, (unsigned)mp->number, key) < 0)
                goto nomem;
            continue;
        }
        if (o->size != mp->stored_size) {
            if (problem(r, key, "backup %s: part %u (%s) is %" PRIu64 " bytes, the manifest says %" PRIu64,
                        m->name, (unsigned)mp->number, key, o->size, mp->stored_size) < 0)
                goto nomem;
            continue;
        }
        if (full && full_part(rp, m, mp, key, seen, r, e) < 0)
            goto out;
    }
    for (i = 0; i < 3; i++) {
        const char *what = i == 0 ? "backup_label" : i == 1 ? "tablespace_map" : "blockhash";

        if ((i == 1 && !m->has_tablespace_map) || (i == 2 && m->block_size == 0))
            continue;
        repo_key_backup(key, sizeof key, m->name, what);
        if (objs_find(&l, key) == NULL) {
            if (problem(r, key, "backup %s: %s is missing", m->name, what) < 0)
                goto nomem;
        } else if (full) {
            char w[CAT_NAME_MAX + 32];

            snprintf(w, sizeof w, "backup %s: %s", m->name, what);
            if (full_object(rp, key, i == 2 ? m->blockhash_size : 0, NULL, w, r, e) < 0)
                goto out;
        }
    }
    rc = 0;
    goto out;
nomem:
    err_setf(e, ERR_NOMEM, "out of memory");
out:
    free(seen);
    objs_free(&l);
    return rc;
}

/* A backup made from a cluster that still holds recovery_target* and friends
 * (a restored primary): restorable, since restore comments them out, but
 * worth knowing. */
static int note_recovery(struct vfy_report *r, const struct manifest *m)
{
    char key[CAT_NAME_MAX + 32];
    struct vfy_problem *nv = realloc(r->notes, (r->nnotes + 1) * sizeof *r->notes);

    if (nv == NULL)
        return -1;
    r->notes = nv;
    repo_key_backup(key, sizeof key, m->name, CAT_MANIFEST);
    nv[r->nnotes].object = xstrdup(key);
    nv[r->nnotes].msg = xasprintf("backup %s carries recovery settings in its configuration: %s (walship restore "
                                  "comments them out)", m->name, m->recovery_settings);
    if (nv[r->nnotes].object == NULL || nv[r->nnotes].msg == NULL) {
        free(nv[r->nnotes].object);
        free(nv[r->nnotes].msg);
        return -1;
    }
    r->nnotes++;
    return 0;
}

/* An incremental restores only with its parent (whose manifest restore
 * checks against the SHA-256 recorded here). */
static int check_parent(struct repo *rp, const struct catalog *cat, struct manifest *const *mans,
                        const struct manifest *m, struct vfy_report *r)
{
    char key[CAT_NAME_MAX + 32], sha[65];
    struct manifest *pm = NULL;
    struct err le = ERR_INIT;
    size_t i;
    int same;

    repo_key_backup(key, sizeof key, m->name, CAT_MANIFEST);
    for (i = 0; i < cat->n && !(strcmp(cat->v[i].name, m->parent) == 0 && mans[i] != NULL); i++)
        ;
    if (i == cat->n)
        return problem(r, key, "backup %s is an incremental of backup %s, which is missing or does not load: it "
                       "cannot be restored", m->name, m->parent);
    if (cat_load_manifest_sha(rp, m->parent, &pm, sha, &le) < 0)
        return problem(r, key, "backup %s: its parent %s does not load: %s", m->name, m->parent, le.msg);
    man_free(pm);
    same = strcmp(sha, m->parent_sha256) == 0;
    return same ? 0 : problem(r, key, "backup %s: the manifest of its parent %s is not the one it was taken against "
                              "(SHA-256 differs): it cannot be restored", m->name, m->parent);
}

/* ---- the region ---- */

int vfy_region(struct repo *rp, int full, struct vfy_report *r, struct err *e)
{
    struct catalog cat = { NULL, 0, 0 };
    struct objs wal = { NULL, 0, 0, 0 };
    struct walarch w;
    struct manifest **mans = NULL;
    size_t i;
    int rc = -1;

    memset(&w, 0, sizeof w);
    /* the identity's segment size: a repository of 1 MiB segments is not
     * measured in 16 MiB ones */
    w.seg_size = rp->have_id && wal_seg_size_valid(rp->id.seg_size) ? rp->id.seg_size : (16u << 20);
    if (cat_list(rp, 0, &cat, e) < 0)
        goto out;
    if (cat.n && (mans = calloc(cat.n, sizeof *mans)) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < cat.n; i++) {
        struct err me = ERR_INIT;
        char key[CAT_NAME_MAX + 32];

        if (!cat.v[i].complete) {
            r->incomplete++;
            continue;
        }
        if (cat_load_manifest(rp, cat.v[i].name, &mans[i], &me) < 0) {
            mans[i] = NULL;
            if (me.code == ERR_NOMEM) {
                *e = me;
                goto out;
            }
            repo_key_backup(key, sizeof key, cat.v[i].name, CAT_MANIFEST);
            if (problem(r, key, "backup %s: the manifest does not load: %s", cat.v[i].name, me.msg) < 0)
                goto nomem;
            continue;
        }
        if (wal_seg_size_valid(mans[i]->wal_segment_size))
            w.seg_size = mans[i]->wal_segment_size;
    }
    if (objs_list(rp->st, REPO_WAL_DIR, &wal, e) < 0)
        goto out;
    if (walarch_load(rp, &wal, &w, r, e) < 0)
        goto out;
    if (check_histories(&w, r) < 0)
        goto nomem;
    for (i = 0; i < cat.n; i++) {
        if (mans[i] == NULL)
            continue;
        r->backups++;
        if (mans[i]->recovery_settings != NULL && note_recovery(r, mans[i]) < 0)
            goto nomem;
        if (check_backup(rp, mans[i], full, r, e) < 0)
            goto out;
        if (mans[i]->incremental && check_parent(rp, &cat, mans, mans[i], r) < 0)
            goto nomem;
        if (check_backup_wal(&w, mans[i], r) < 0)
            goto nomem;
    }
    if (full) {
        for (i = 0; i < wal.n; i++) {
            struct wal_name wn;
            struct err pe = ERR_INIT;
            char what[128];

            if (wal_parse(wal.v[i].key + 4, &wn, &pe) < 0)
                continue;
            snprintf(what, sizeof what, "WAL file %s", wal.v[i].key + 4);
            if (full_object(rp, wal.v[i].key, wn.kind == WAL_SEGMENT ? w.seg_size : 0,
                            wn.kind == WAL_SEGMENT ? wal.v[i].key + 4 : NULL, what, r, e) < 0)
                goto out;
        }
    }
    rc = 0;
    goto out;
nomem:
    err_setf(e, ERR_NOMEM, "out of memory");
out:
    if (rc < 0)
        err_prefix(e, "could not verify region %s", rp->name);
    for (i = 0; mans && i < cat.n; i++)
        man_free(mans[i]);
    free(mans);
    walarch_free(&w);
    objs_free(&wal);
    cat_free(&cat);
    return rc;
}
