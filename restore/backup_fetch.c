/*
 * backup_fetch — see backup_fetch.h for the contract.
 *
 * Per part: a downloader thread runs stor_get → decoder → pipe sink, the
 * worker thread reads the pipe with libarchive and writes entries.  The pipe
 * (bkf_pipe.h) hands the bytes to libarchive without a copy and carries
 * cancellation both ways (a failed part stops every other part).
 */
#include "backup_fetch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bkf_chain.h"
#include "bkf_fs.h"
#include "bkf_small.h"
#include "bkf_pipe.h"
#include "bkf_tar.h"
#include "catalog.h"
#include "obj.h"
#include "pool.h"
#include "util.h"
#include "wal.h"
#include "ar_dl.h"  /* last: libarchive calls go through its table */

#define PIPE_CAP ((size_t)4 << 20)
#define PROGRESS_MS 100

struct worker {
    struct bkf *c;
    struct stor *s;
    int own_stor;
    pthread_t dl_th;
    struct bkf_pipe pipe;
    uint32_t part;
    char key[300];
    int dl_rc;
    struct err dl_err;
    uint64_t stored, raw;           /* this part's bytes: encoded, decoded */
    struct bkf_tar_worker tw;
};

struct bkf {
    const struct manifest *m;
    const struct keyring *kr;
    uint64_t sysid;                 /* the repository's cluster: every part is bound to it */
    const char *region;
    int *rootfd;                    /* [0] DIR, [1 + i] tablespace i */
    char **ts_target;               /* where each tablespace goes */
    char *tsmap;                    /* the tablespace_map to write (bkf_build_tsmap), or NULL */
    size_t tsmap_len;
    struct bkf_tar tar;             /* the manifest's index, the directories */
    const struct manifest *cur;     /* the backup whose parts are read: m, or a link of its chain */
    struct bkf_tar *ltar;           /* its index: &tar, or the link's */
    struct bkf_chain chain;         /* m is incremental */
    atomic_int abort;
    pthread_mutex_t mu;             /* everything below */
    int next_slot;                  /* the next worker slot a pool worker takes */
    size_t *order;                  /* indexes of cur's parts, largest first */
    int failed;
    struct err err;
    struct bkf_progress prog;
    uint64_t last_prog_ms;
    bkf_progress_fn progress;
    void *progress_arg;
    const struct note_sink *notes;
    struct worker *w;
    int nw;
};

/* ---- errors shared between threads ---- */

static void fail(struct bkf *c, const struct err *e)
{
    int i;

    pthread_mutex_lock(&c->mu);
    if (!c->failed) {
        c->failed = 1;
        c->err = *e;
    }
    pthread_mutex_unlock(&c->mu);
    atomic_store(&c->abort, 1);
    for (i = 0; i < c->nw; i++)
        bkf_pipe_wake(&c->w[i].pipe);
}

/* stor_get → at most stored_size bytes → decoder → at most raw_size
 * bytes → the pipe: a part longer than its manifest entry stops at the
 * first byte too many, before libarchive sees it. */
static void *download_main(void *arg)
{
    struct worker *w = arg;
    const struct man_part *mp = &w->c->cur->parts[w->part - 1];
    struct sink *ps = bkf_pipe_sink_new(&w->pipe), *dec = NULL, *raw = NULL;
    struct obj_bind bind = { w->key, w->c->sysid, 0, "" };

    w->dl_rc = -1;
    err_clear(&w->dl_err);
    if (ps == NULL || (raw = bkf_limit_sink_new(ps, mp->raw_size, &w->raw, "the decoded part")) == NULL) {
        sink_free(ps);
        err_setf(&w->dl_err, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (obj_decoder_new(raw, w->c->kr, 0, &bind, &dec, &w->dl_err) < 0) {
        sink_free(raw);
        goto out;
    }
    raw = dec;
    if ((dec = bkf_limit_sink_new(dec, mp->stored_size, &w->stored, "the stored part")) == NULL) {
        sink_free(raw);
        err_setf(&w->dl_err, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (stor_get(w->s, w->key, dec, &w->dl_err) < 0)
        goto out;
    if (sink_close(dec, &w->dl_err) < 0)
        goto out;
    w->dl_rc = 0;
out:
    sink_free(dec);
    if (w->dl_err.code == ERR_NOTFOUND)
        w->dl_err.code = ERR_CORRUPT;       /* a complete backup lacks a part */
    bkf_pipe_writer_done(&w->pipe, w->dl_rc == 0);
    return NULL;
}

/* ---- progress ---- */

static void progress_add(struct worker *w, int force)
{
    struct bkf *c = w->c;
    uint64_t now;

    if (!force && w->tw.pend_bytes < ((uint64_t)4 << 20))
        return;
    pthread_mutex_lock(&c->mu);
    c->prog.bytes_done += w->tw.pend_bytes;
    c->prog.files_done += w->tw.pend_files;
    w->tw.pend_bytes = w->tw.pend_files = 0;
    now = now_ms();
    if (c->progress != NULL && (force || now - c->last_prog_ms >= PROGRESS_MS)) {
        c->last_prog_ms = now;
        c->progress(&c->prog, c->progress_arg);
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_tick(struct bkf_tar_worker *tw, void *arg)
{
    (void)tw;
    progress_add(arg, 0);
}

/* ---- one part ---- */

static int run_part(struct worker *w, struct err *e)
{
    struct bkf *c = w->c;
    struct archive *a = NULL;
    int rc = -1, started = 0;

    if (ar_dl_load(e) < 0)
        return -1;
    bkf_pipe_reset(&w->pipe);
    if (pthread_create(&w->dl_th, NULL, download_main, w) != 0)
        return err_setf(e, ERR_INTERNAL, "could not start a download thread");
    started = 1;
    w->tw.file[0] = '\0';
    a = archive_read_new();
    if (a == NULL || archive_read_support_format_tar(a) != ARCHIVE_OK) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (archive_read_open(a, &w->pipe, NULL, bkf_pipe_read, NULL) != ARCHIVE_OK) {
        err_setf(e, ERR_CORRUPT, "backup %s in region %s, part %u: not a tar stream: %s", c->cur->name, c->region,
                 w->part, archive_error_string(a));
        goto out;
    }
    rc = bkf_tar_part(&w->tw, a, w->part, e);
out:
    bkf_pipe_reader_done(&w->pipe, rc == 0 ? BKF_PIPE_DISCARD : BKF_PIPE_ABORT);
    if (started)
        pthread_join(w->dl_th, NULL);
    archive_read_free(a);
    if (w->dl_rc < 0 && !bkf_pipe_writer_refused(&w->pipe)) {
        /* the download or the decoder failed: that is the cause */
        const char *file = w->tw.file;

        *e = w->dl_err;
        err_prefix(e, "backup %s in region %s: part %u (%s)%s%s%s", c->cur->name, c->region, w->part, w->key,
                   file[0] ? ": while writing \"" : "", file, file[0] ? "\"" : "");
        return -1;
    }
    return rc;
}

/* A pool worker takes a worker slot of its own (its storage, its pipe, its
 * tar state): there are as many slots as the pool has workers at most. */
static int worker_open(void *arg, void **ws, struct err *e)
{
    struct bkf *c = arg;
    struct worker *w = NULL;

    pthread_mutex_lock(&c->mu);
    if (c->next_slot < c->nw)
        w = &c->w[c->next_slot++];
    pthread_mutex_unlock(&c->mu);
    if (w == NULL)
        return err_setf(e, ERR_INTERNAL, "backup %s: more restore workers than slots", c->m->name);
    w->tw.t = c->ltar;
    *ws = w;
    return 0;
}

/* Part index i of c->cur; a failure stops the other workers (fail). */
static int worker_item(void *arg, void *ws, size_t i, struct err *e)
{
    struct bkf *c = arg;
    struct worker *w = ws;

    if (atomic_load(&c->abort))
        return 0;   /* stopped: fail() has the error */
    i = c->order[i];    /* the largest parts first: none runs alone at the end */
    w->part = c->cur->parts[i].number;
    if (c->ltar->want != NULL && !c->ltar->want[w->part])
        return 0;   /* nothing in it that the target needs */
    if (repo_key_part(w->key, sizeof w->key, c->cur->name, w->part) < 0)
        return err_setf(e, ERR_INTERNAL, "backup name too long: %s", c->cur->name);
    if (run_part(w, e) < 0) {
        fail(c, e);
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    c->prog.parts_done++;
    pthread_mutex_unlock(&c->mu);
    progress_add(w, 1);
    return 0;
}

/* ---- preparation and finishing ---- */

static int depth_cmp(const void *a, const void *b)
{
    const struct bkf_dir *x = a, *y = b;
    size_t dx = *x->rel != '\0', dy = *y->rel != '\0';
    const char *p;

    for (p = x->rel; *p; p++)
        dx += *p == '/';
    for (p = y->rel; *p; p++)
        dy += *p == '/';
    if (dx != dy)
        return dx > dy ? -1 : 1;
    return strcmp(x->rel, y->rel);
}

static int finish(struct bkf *c, const char *dir, struct sink *label, struct err *e)
{
    const struct manifest *m = c->m;
    const unsigned char *data;
    size_t i, len;
    int fd;

    if (bkf_tar_check_done(&c->tar, e) < 0 || bkf_piece_finish(&c->tar, e) < 0)
        return -1;
    if (m->ntablespaces > 0) {
        if (bkf_open_dir(c->rootfd[0], "pg_tblspc", 1, &fd) < 0)
            return err_errno(e, ERR_IO, errno, "could not create \"%s/pg_tblspc\"", dir);
        for (i = 0; i < m->ntablespaces; i++) {
            char oid[16];

            snprintf(oid, sizeof oid, "%u", (unsigned)m->tablespaces[i].oid);
            if (symlinkat(c->ts_target[i], fd, oid) < 0) {
                err_errno(e, ERR_IO, errno, "could not create the symlink \"%s/pg_tblspc/%s\"", dir, oid);
                close(fd);
                return -1;
            }
        }
        close(fd);
    }
    if (c->tar.ndirs > 1)
        qsort(c->tar.dirs, c->tar.ndirs, sizeof *c->tar.dirs, depth_cmp);
    for (i = 0; i < c->tar.ndirs; i++) {
        const struct bkf_dir *d = &c->tar.dirs[i];
        struct timespec ts[2];

        fd = -1;
        ts[0].tv_sec = ts[1].tv_sec = (time_t)d->mtime;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        if (bkf_open_dir(c->rootfd[d->root], d->rel, 0, &fd) < 0 || fchmod(fd, (mode_t)d->mode) < 0 ||
            futimens(fd, ts) < 0 || fsync(fd) < 0) {
            err_errno(e, ERR_IO, errno, "could not set mode and mtime of directory \"%s\"%s%s", d->rel,
                      d->root ? " in tablespace directory " : "", d->root ? c->ts_target[d->root - 1] : "");
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
    }
    /* a tablespace's directory as PostgreSQL's CREATE TABLESPACE leaves it:
     * the data directory's mode, whatever its entry in the tar said */
    for (i = 0; i <= m->ntablespaces; i++)
        if (fchmod(c->rootfd[i], bkf_data_dir_mode(c->tar.dirs, c->tar.ndirs)) < 0)
            return err_errno(e, ERR_IO, errno, "could not set the mode of \"%s\"", i ? c->ts_target[i - 1] : dir);
    for (i = 0; i <= m->ntablespaces; i++)
        if (syncfs(c->rootfd[i]) < 0 || fsync(c->rootfd[i]) < 0)
            return err_errno(e, ERR_IO, errno, "could not flush \"%s\" to disk", i ? c->ts_target[i - 1] : dir);
    if (c->tsmap != NULL && bkf_write_small(c->rootfd[0], dir, "tablespace_map", c->tsmap, c->tsmap_len, e) < 0)
        return -1;
    data = mem_sink_data(label, &len);
    return bkf_write_small(c->rootfd[0], dir, "backup_label", data, len, e);
}

/* Read every wanted part of c->cur on the worker pool (pool.h), c->nw
 * workers counting the caller. */
static int run_workers(struct bkf *c, struct err *e)
{
    struct pool_job job = { c->cur->nparts, c, worker_open, worker_item, NULL };
    struct err pe = ERR_INIT;

    c->next_slot = 0;
    free(c->order);
    if ((c->order = bkf_part_order(c->cur, e)) == NULL)
        return -1;
    if (pool_run(&job, c->nw, &pe) < 0 && !c->failed)
        fail(c, &pe);   /* a worker that found no slot */
    if (c->failed) {
        *e = c->err;
        return -1;
    }
    return 0;
}

/* The target's parts, then (an incremental) each link's wanted parts,
 * newest first; then every assembled file is checked. */
static int run_links(struct bkf *c, struct err *e)
{
    uint32_t d;

    c->cur = c->m;
    c->ltar = &c->tar;
    if (run_workers(c, e) < 0)
        return -1;
    for (d = 1; d < c->chain.n; d++) {
        struct bkf_tar lt;
        int rc;

        if (bkf_tar_init(&lt, c->chain.links[d], c->region, c->rootfd, &c->abort, e) < 0) {
            bkf_tar_free(&lt);
            return -1;
        }
        lt.chain = &c->chain;
        lt.depth = d;
        lt.want = c->chain.want[d];
        c->cur = c->chain.links[d];
        c->ltar = &lt;
        rc = run_workers(c, e);
        if (rc == 0)
            rc = bkf_tar_check_done(&lt, e);
        c->cur = c->m;
        c->ltar = &c->tar;
        bkf_tar_free(&lt);
        if (rc < 0)
            return -1;
    }
    if (c->chain.n == 0)
        return 0;
    if (bkf_chain_finish(&c->chain, &c->tar, c->nw, e) < 0)
        return -1;
    /* every file of the target is there and checked (links may have
     * counted a file once each) */
    c->prog.files_done = c->m->nfiles;
    c->prog.bytes_done = c->m->original_size;
    return 0;
}

/* The job: its arrays, the tablespaces' targets, the chain (checked before
 * anything is created: a missing link is refused here). */
static int setup(struct bkf *c, struct repo *r, const struct manifest *m, const struct bkf_opts *o, struct err *e)
{
    size_t i, nroots = 1 + m->ntablespaces;

    c->m = m;
    c->kr = r->kr;
    c->sysid = r->id.sysid;
    c->region = r->name;
    c->progress = o->progress;
    c->progress_arg = o->progress_arg;
    c->notes = o->notes;
    atomic_init(&c->abort, 0);
    pthread_mutex_init(&c->mu, NULL);
    c->rootfd = malloc(nroots * sizeof *c->rootfd);
    c->ts_target = calloc(m->ntablespaces + 1, sizeof *c->ts_target);
    c->nw = o->parallel < 1 ? 1 : o->parallel;
    if ((size_t)c->nw > m->nparts && !m->incremental)    /* a chain's links have parts of their own */
        c->nw = m->nparts ? (int)m->nparts : 1;
    c->w = calloc((size_t)c->nw, sizeof *c->w);
    if (c->rootfd == NULL || c->ts_target == NULL || c->w == NULL) {
        free(c->w);
        c->w = NULL;
        c->nw = 0;
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    for (i = 0; i < nroots; i++)
        c->rootfd[i] = -1;
    if (bkf_tar_init(&c->tar, m, r->name, c->rootfd, &c->abort, e) < 0 || bkf_plan_tablespaces(m, o, c->ts_target, e) < 0 ||
        (m->incremental && bkf_chain_load(r, m, &c->chain, e) < 0))
        return -1;
    c->prog.bytes_total = m->original_size;
    c->prog.files_total = m->nfiles;
    c->prog.parts_total = (uint32_t)m->nparts;
    return 0;
}

/* Refuse a directory that is not empty before creating anything, then
 * create DIR and the tablespaces' directories. */
static int prepare_dirs(struct bkf *c, const char *dir, int allow_unmounted, struct err *e)
{
    const struct manifest *m = c->m;
    size_t i;
    int k;

    if (bkf_check_roots(dir, m, (const char *const *)c->ts_target, allow_unmounted, e) < 0)
        return -1;
    if ((k = bkf_dir_state(dir, e)) != 0)
        return k > 0 ? err_setf(e, ERR_USAGE, "directory \"%s\" is not empty: refusing to restore into it", dir) : -1;
    for (i = 0; i < m->ntablespaces; i++) {
        if ((k = bkf_dir_state(c->ts_target[i], e)) < 0)
            return -1;
        if (k > 0)
            return err_setf(e, ERR_USAGE, "tablespace directory \"%s\" (tablespace %u) is not empty: refusing to "
                            "restore into it (use --tablespace-map OLD=NEW)", c->ts_target[i],
                            (unsigned)m->tablespaces[i].oid);
    }
    if (bkf_prepare_dir(dir, "directory", &c->rootfd[0], e) < 0)
        return -1;
    for (i = 0; i < m->ntablespaces; i++)
        if (bkf_prepare_dir(c->ts_target[i], "tablespace directory", &c->rootfd[1 + i], e) < 0)
            return -1;
    return 0;
}

/* The workers: the first reads through the caller's storage, the others
 * open their own. */
static int init_workers(struct bkf *c, struct repo *r, const struct region_conf *rc, const struct config *conf,
                        struct err *e)
{
    int k;

    for (k = 0; k < c->nw; k++) {
        struct worker *w = &c->w[k];

        w->c = c;
        if (bkf_tar_worker_init(&w->tw, &c->tar) < 0 || bkf_pipe_init(&w->pipe, PIPE_CAP, &c->abort) < 0)
            return err_setf(e, ERR_NOMEM, "out of memory");
        w->tw.tick = on_tick;
        w->tw.tick_arg = w;
        if (k == 0) {
            w->s = r->st;
        } else if (stor_open(rc, conf, c->notes, &w->s, e) < 0) {
            return err_prefix(e, "backup %s", c->m->name);
        } else {
            w->own_stor = 1;
        }
    }
    return 0;
}

static void teardown(struct bkf *c)
{
    size_t i, nroots = 1 + c->m->ntablespaces;
    int k;

    for (k = 0; k < c->nw; k++) {
        struct worker *w = &c->w[k];

        if (w->c == NULL)
            continue;
        if (w->own_stor)
            stor_free(w->s);
        bkf_tar_worker_free(&w->tw);
        bkf_pipe_destroy(&w->pipe);
    }
    for (i = 0; c->rootfd != NULL && i < nroots; i++)
        if (c->rootfd[i] >= 0)
            close(c->rootfd[i]);
    for (i = 0; c->ts_target != NULL && i < c->m->ntablespaces; i++)
        free(c->ts_target[i]);
    free(c->ts_target);
    free(c->tsmap);
    free(c->rootfd);
    bkf_tar_free(&c->tar);
    bkf_chain_free(&c->chain);
    free(c->order);
    free(c->w);
    pthread_mutex_destroy(&c->mu);
}

static int build_tsmap(struct bkf *c, struct sink *tsmap, struct err *e)
{
    size_t len;
    const unsigned char *data = mem_sink_data(tsmap, &len);

    return bkf_build_tsmap(data, len, c->m, (const char *const *)c->ts_target, c->notes, &c->tsmap, &c->tsmap_len,
                           e);
}

int bkf_fetch(struct repo *r, const struct region_conf *rc, const struct config *conf, const struct manifest *m,
              const char *dir, const struct bkf_opts *o, struct bkf_stats *st, struct err *e)
{
    struct bkf c;
    struct sink *label = NULL, *tsmap = NULL;
    uint64_t t0 = now_ms();
    int rcode = -1;

    memset(&c, 0, sizeof c);
    /* libarchive first: a host without it fails before anything is written */
    if (ar_dl_load(e) < 0)
        return -1;
    /* the tablespace_map checked against the manifest before anything is
     * created: PostgreSQL links each tablespace where the map says */
    if (setup(&c, r, m, o, e) < 0 ||
        (m->has_tablespace_map && bkf_fetch_small(r, m->name, "tablespace_map", &tsmap, e) < 0) ||
        (tsmap != NULL && build_tsmap(&c, tsmap, e) < 0) || prepare_dirs(&c, dir, o->allow_unmounted, e) < 0 ||
        bkf_fetch_small(r, m->name, "backup_label", &label, e) < 0 || bkf_check_label(m, label, e) < 0 ||
        (m->incremental && bkf_chain_prepare(&c.chain, &c.tar, e) < 0) ||
        (!m->incremental && bkf_piece_prepare(&c.tar, e) < 0) || init_workers(&c, r, rc, conf, e) < 0 ||
        run_links(&c, e) < 0 || finish(&c, dir, label, e) < 0)
        goto out;
    if (c.progress != NULL)
        c.progress(&c.prog, c.progress_arg);
    if (st != NULL) {
        st->files = c.prog.files_done;
        st->bytes = c.prog.bytes_done;
        st->dirs = c.tar.ndirs;
        st->parts = (uint32_t)m->nparts;
        st->tablespaces = (uint32_t)m->ntablespaces;
        st->ms = now_ms() - t0;
        st->reread = c.chain.n ? atomic_load(&c.chain.reread) : 0;
    }
    rcode = 0;
out:
    teardown(&c);
    sink_free(label);
    sink_free(tsmap);
    return rcode;
}
