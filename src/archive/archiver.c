#include "archiver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "fault.h"
#include "mapread.h"
#include "multi.h"
#include "obj.h"
#include "timeline.h"
#include "util.h"
#include "wal.h"

int archiver_open(const struct config *conf, const struct keyring *kr, const struct note_sink *notes, struct spool *sp,
                  const struct repo_ident *cluster, const struct archiver *like, struct archiver *a, struct err *e)
{
    int i;

    memset(a, 0, sizeof *a);
    a->conf = conf;
    a->kr = kr;
    a->notes = notes;
    a->sp = sp;
    a->cluster = *cluster;
    a->recheck_ident = like != NULL;
    if (conf->nregions > ARCHIVE_MAX_REGIONS)
        return err_setf(e, ERR_CONFIG, "at most %d regions are supported", ARCHIVE_MAX_REGIONS);
    for (i = 0; i < conf->nregions; i++) {
        const struct region_conf *rc = &conf->regions[i];

        if (rc->mode != REGION_SYNC) {
            spool_queue_name(rc->name, rc->url, rc->endpoint, a->queue[i]);
            continue;
        }
        if (like != NULL && like->bad[i]) {
            a->bad[i] = 1;
            a->bad_err[i] = like->bad_err[i];
            continue;
        }
        if (repo_open(rc, conf, notes, kr, 0, &a->rp[i], &a->bad_err[i]) < 0) {
            a->bad[i] = 1;
            continue;
        }
        if (like != NULL)
            repo_adopt_identity(a->rp[i], like->rp[i]);
        else if (repo_ident_ensure(a->rp[i], cluster, &a->bad_err[i]) < 0)
            a->bad[i] = 1;
    }
    return 0;
}

void archiver_close(struct archiver *a)
{
    int i;

    for (i = 0; i < ARCHIVE_MAX_REGIONS; i++) {
        repo_free(a->rp[i]);
        a->rp[i] = NULL;
    }
}

/* The region refused to publish because it has `key`: is it the same file? */
static int same_content(struct repo *r, const char *key, const char *local_hex, struct err *e)
{
    char hex[65];

    if (repo_hash(r, key, hex, e) < 0)
        return err_prefix(e, "region %s already has \"%s\" and it could not be compared", r->name, key);
    if (strcmp(hex, local_hex) != 0)
        return err_setf(e, ERR_EXISTS,
                        "region %s already has \"%s\" with different content (sha256 %.16s… archived, %.16s… "
                        "here): refusing to overwrite; are two primaries archiving to one prefix?",
                        r->name, key, hex, local_hex);
    return 0;
}

/* Queue `queue` of async region `region` holds NAME already (an earlier
 * push spooled it, or one racing with this one): it counts as queued only
 * if it decodes, bound to this name and cluster, to the same bytes. */
static int same_queued(struct archiver *a, const char *queue, const char *region, const char *name,
                       const char *key, const char *local_hex, struct err *e)
{
    char path[PATH_MAX], hex[65];
    struct obj_bind bind = { key, a->cluster.sysid, 0, "" };

    if (spool_entry_path(a->sp, queue, name, path, sizeof path) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    if (repo_hash_file(path, a->kr, &bind, hex, NULL, e) < 0)
        return err_prefix(e, "region %s: \"%s\" is queued in the spool but could not be checked", region, name);
    if (strcmp(hex, local_hex) != 0)
        return err_setf(e, ERR_EXISTS,
                        "region %s: another \"%s\" is already queued in the spool (sha256 %.16s… queued, "
                        "%.16s… here): refusing to acknowledge it; are two primaries archiving with one spool?",
                        region, name, hex, local_hex);
    return 0;
}

static void report_fail(const struct archiver *a, struct archive_report *rep, const char *region,
                        const struct err *why, struct err *first)
{
    size_t used = strlen(rep->failed_regions);

    snprintf(rep->failed_regions + used, sizeof rep->failed_regions - used, "%s%s", rep->failed ? ", " : "",
             region);
    rep->failed++;
    note(a->notes, LOG_WARNING, "%s", why->msg);
    if (first->code == ERR_OK || (why->code == ERR_EXISTS && first->code != ERR_EXISTS))
        *first = *why;
}

/* A segment whose first page is of an older timeline than its name's must
 * be where that timeline begins, by its history file beside it (PostgreSQL
 * keeps it in pg_wal); without one it cannot be judged and passes.  A
 * segment of the parent renamed to the child's name was archived (and
 * would be served) as the child's (adversarial pass AE). */
static int check_first_of_timeline(const char *path, const struct wal_name *w, const struct wal_long_header *h,
                                   struct err *e)
{
    const char *slash = strrchr(path, '/');
    char hist[PATH_MAX];
    unsigned char *text = NULL;
    size_t len;
    struct err re = ERR_INIT;
    int rc;

    if (h->tli >= w->tli || !wal_seg_size_valid(h->seg_size) ||
        snprintf(hist, sizeof hist, "%.*s%08X.history", slash ? (int)(slash - path + 1) : 0, path,
                 (unsigned)w->tli) >= (int)sizeof hist ||
        read_file_all(hist, TL_HISTORY_MAX, &text, &len, &re) < 0)
        return 0;
    rc = tl_history_begins_in((const char *)text, len, wal_segno(w, h->seg_size) * h->seg_size, h->seg_size,
                              h->tli, &re);
    free(text);
    if (rc != 0)
        return 0;   /* it begins there, or the history cannot be read (wal-push refuses such a one) */
    return err_setf(e, ERR_FOREIGN,
                    "its first page is of timeline %u, but %s puts no switch from timeline %u inside it: a segment "
                    "of an older timeline under this timeline's name (renamed or substituted)", (unsigned)h->tli,
                    hist, (unsigned)h->tli);
}

/* A segment must be the cluster's and the one its name says. */
static int check_segment(struct archiver *a, int fd, const char *path, const char *name, uint64_t size,
                         struct err *e)
{
    unsigned char buf[CLUSTER_WAL_LONG_HEADER_LEN];
    struct wal_long_header h;
    struct wal_name w;
    ssize_t n;

    if (wal_parse(name, &w, e) < 0)
        return -1;
    if (w.kind != WAL_SEGMENT && w.kind != WAL_PARTIAL)
        return 0;
    do
        n = pread(fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return err_errno(e, ERR_IO, errno, "could not read \"%s\"", name);
    if (cluster_parse_wal_header(buf, (size_t)n, &h, e) < 0 ||
        cluster_check_segment(&h, name, size, a->cluster.sysid, a->cluster.pg_major, e) < 0 ||
        check_first_of_timeline(path, &w, &h, e) < 0)
        return err_prefix(e, "refusing to archive \"%s\"", name);
    return 0;
}

struct push {
    int fd;                         /* the file being archived, open */
    const char *path;
    struct stat st;                 /* fd's when it was opened */
    struct sink *spool;             /* the spool's sink: committed after the regions answered */
    struct sink *branches[ARCHIVE_MAX_REGIONS + 1];
    struct multi_result results[ARCHIVE_MAX_REGIONS + 1];
    int region[ARCHIVE_MAX_REGIONS + 1];   /* -1: the spool */
    char *queues[ARCHIVE_MAX_REGIONS];
    int async_region[ARCHIVE_MAX_REGIONS];
    size_t nb, nasync;
};

#define HASH_BUF (1 << 20)

static void slot_take(sem_t *s)
{
    if (s != NULL)
        while (sem_wait(s) < 0 && errno == EINTR)
            ;
}

static void slot_give(sem_t *s)
{
    if (s != NULL)
        sem_post(s);
}

/* The SHA-256 of the file being archived, read again when first needed:
 * only a region or spool that already holds the name asks for it, so the
 * common push does not hash 16 MB it never compares (docs/WAL.md).  It is
 * read from the descriptor the push read, so it is the same file, by
 * offset, so the encoder's reading is not disturbed. */
static int local_hash(const struct push *p, struct archive_report *rep, struct err *e)
{
    unsigned char md[EVP_MAX_MD_SIZE], *buf = NULL;
    unsigned int mdlen = 0;
    struct stat now;
    EVP_MD_CTX *ctx = NULL;
    uint64_t at = 0;
    int rc = -1;

    if (rep->sha256_hex[0] != '\0')
        return 0;
    buf = malloc(HASH_BUF);
    ctx = EVP_MD_CTX_new();
    if (buf == NULL || ctx == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory hashing \"%s\"", p->path);
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto sha_failed;
    for (;;) {
        ssize_t n = pread(p->fd, buf, HASH_BUF, (off_t)at);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err_errno(e, ERR_IO, errno, "could not read \"%s\" again to compare it", p->path);
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            goto sha_failed;
        at += (uint64_t)n;
    }
    /* the same file as encoded, unchanged since it was opened: size,
     * mtime and ctime (a write in place changes them) */
    if (at != rep->size || fstat(p->fd, &now) < 0 || !spool_same_file(&p->st, &now)) {
        err_setf(e, ERR_IO, "\"%s\" changed while it was being archived", p->path);
        goto out;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
        goto sha_failed;
    hex_encode(md, mdlen, rep->sha256_hex);
    rc = 0;
    goto out;
sha_failed:
    err_setf(e, ERR_INTERNAL, "SHA-256 failed");
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

/* Upload sinks for the sync regions, one spool sink for the async ones. */
/* NAME is queued already for async region r: 1 = the same file (counts as
 * spooled), 0 = gone meanwhile (shipped: spool it again, the shipper
 * compares with the region), -1 = another file or unreadable (e set). */
static int queued_same(struct archiver *a, const struct push *p, const char *name, const char *key, int r,
                       struct archive_report *rep, struct err *e)
{
    const struct config *c = a->conf;

    if (local_hash(p, rep, e) < 0)
        return -1;
    if (same_queued(a, a->queue[r], c->regions[r].name, name, key, rep->sha256_hex, e) == 0)
        return 1;
    if (e->code == ERR_NOTFOUND) {
        err_clear(e);
        return 0;
    }
    return -1;
}

static void open_branches(struct archiver *a, const char *name, const char *key, struct push *p,
                          struct archive_report *rep, struct err *first)
{
    const struct config *c = a->conf;
    int r;

    for (r = 0; r < c->nregions; r++) {
        struct err he = ERR_INIT;

        if (c->regions[r].mode == REGION_ASYNC) {
            if (a->sp == NULL)
                continue;
            if (spool_is_queued(a->sp, a->queue[r], name)) {
                struct err qe = ERR_INIT;
                int got = queued_same(a, p, name, key, r, rep, &qe);

                if (got == 1) {
                    rep->spooled++;
                    continue;
                }
                if (got < 0) {
                    report_fail(a, rep, c->regions[r].name, &qe, first);
                    continue;
                }
                /* shipped meanwhile: queue it again below */
            }
            p->async_region[p->nasync] = r;
            p->queues[p->nasync++] = a->queue[r];
            continue;
        }
        if (a->bad[r]) {
            report_fail(a, rep, c->regions[r].name, &a->bad_err[r], first);
            continue;
        }
        p->region[p->nb] = r;
        p->results[p->nb].name = c->regions[r].name;
        if (stor_put(a->rp[r]->st, key, &p->branches[p->nb], &he) == 0) {
            char point[96];

            snprintf(point, sizeof point, "upload.%s", c->regions[r].name);
            p->branches[p->nb] = fault_wrap(p->branches[p->nb], point);
            if (a->recheck_ident &&
                repo_ident_guard_new(a->rp[r], p->branches[p->nb], &p->branches[p->nb], &he) < 0) {
                p->branches[p->nb] = NULL;
                report_fail(a, rep, c->regions[r].name, &he, first);
                continue;
            }
            p->nb++;
        } else {
            report_fail(a, rep, c->regions[r].name, &he, first);
        }
    }
    if (p->nasync > 0) {
        struct err se = ERR_INIT;
        size_t i;

        p->region[p->nb] = -1;
        p->results[p->nb].name = "the spool";
        if (spool_put(a->sp, name, p->queues, p->nasync, rep->size + 65536, &p->spool, &se) == 0 &&
            (p->branches[p->nb] = pass_sink_new(p->spool)) != NULL) {
            p->nb++;
        } else {
            if (se.code == ERR_OK)
                err_setf(&se, ERR_NOMEM, "out of memory");
            sink_free(p->spool);
            p->spool = NULL;
            for (i = 0; i < p->nasync; i++)
                report_fail(a, rep, c->regions[p->async_region[i]].name, &se, first);
        }
    }
}

/* The spool's copy made durable and queued, under a commit slot. */
static int spool_commit(struct archiver *a, struct push *p, struct err *e)
{
    int rc;

    slot_take(a->commit_slots);
    rc = sink_close(p->spool, e);
    slot_give(a->commit_slots);
    return rc;
}

/* The spool's copy is queued only once the sync regions answered: not
 * when one of them holds another file of this name, or the async regions
 * would later receive a history the others do not have. */
static void settle_spool(struct archiver *a, const char *name, const char *key, struct push *p,
                         struct multi_result *res, struct archive_report *rep, struct err *first)
{
    const struct config *c = a->conf;
    struct err se = ERR_INIT;
    size_t k;

    if (res->committed && first->code == ERR_EXISTS) {
        err_setf(&se, ERR_EXISTS, "not queued for the async regions: %s", first->msg);
    } else if (res->committed && spool_commit(a, p, &se) == 0) {
        for (k = 0; k < p->nasync; k++) {
            int r = p->async_region[k];
            struct err qe = ERR_INIT;

            if (!spool_put_existed(p->spool, k) ||
                (local_hash(p, rep, &qe) == 0 &&
                 same_queued(a, a->queue[r], c->regions[r].name, name, key, rep->sha256_hex, &qe) == 0))
                rep->spooled++;
            else {
                if (qe.code == ERR_NOTFOUND)    /* the racing push's copy was shipped meanwhile */
                    qe.code = ERR_IO;           /* PostgreSQL retries; never "not found" */
                report_fail(a, rep, c->regions[r].name, &qe, first);
            }
        }
        return;
    } else if (!res->committed) {
        se = res->err;
    }
    for (k = 0; k < p->nasync; k++)
        report_fail(a, rep, c->regions[p->async_region[k]].name, &se, first);
}

/* Count what each branch did.  A region that refused because it has the
 * name already succeeds only if it holds the same content, and only when
 * the whole file went through the encoder (`whole`). */
static void settle(struct archiver *a, const char *name, const char *key, struct push *p, int chain_rc,
                   const struct err *chain_err, int whole, struct archive_report *rep, struct err *first)
{
    const struct config *c = a->conf;
    size_t i, spool_at = p->nb;

    multi_settle(p->results, p->nb, chain_rc, chain_err);
    for (i = 0; i < p->nb; i++) {
        struct multi_result *res = &p->results[i];
        int r = p->region[i];

        if (r < 0) {
            spool_at = i;
            continue;
        }
        if (res->committed) {
            rep->uploaded++;
            continue;
        }
        if (r >= 0 && res->err.code == ERR_EXISTS && whole) {
            struct err ce = ERR_INIT;

            if (local_hash(p, rep, &ce) == 0 && same_content(a->rp[r], key, rep->sha256_hex, &ce) == 0) {
                note(a->notes, LOG_DEBUG, "region %s already has %s with the same content", c->regions[r].name,
                     key);
                rep->already++;
                continue;
            }
            /* Not compared, or different: the region holds the name either
             * way, so the spool must not queue this file past it. */
            res->err = ce;
            res->err.code = ERR_EXISTS;
        }
        report_fail(a, rep, c->regions[r].name, &res->err, first);
    }
    if (spool_at < p->nb)
        settle_spool(a, name, key, p, &p->results[spool_at], rep, first);
}

/* 1 (with e set) when the open file is not the one fstat'd as `st` any
 * more: size, mtime or ctime moved (ctime too: an mtime set back with
 * utimensat still moves it). */
static int changed_since(int fd, const struct stat *st, const char *path, struct err *e)
{
    struct stat after;

    if (fstat(fd, &after) < 0) {
        err_errno(e, ERR_IO, errno, "could not stat \"%s\" after reading it", path);
        return 1;
    }
    if (spool_same_file(st, &after))
        return 0;
    err_setf(e, ERR_IO, "\"%s\" changed while it was being read (size, mtime or ctime): nothing was archived; "
             "PostgreSQL retries it (a segment still being written is not ready to archive)", path);
    return 1;
}

int archive_push_file(struct archiver *a, const char *path, const char *name, struct archive_report *rep,
                      struct err *e)
{
    struct push p;
    char key[REPO_KEY_MAX];
    struct sink *tee = NULL, *enc = NULL;
    struct obj_opts oo;
    struct err first = ERR_INIT, chain = ERR_INIT;
    struct stat st;
    size_t i;
    int fd = -1, rc = -1, chain_rc, whole = 0;

    memset(rep, 0, sizeof *rep);
    memset(&p, 0, sizeof p);
    if (repo_key_wal(key, sizeof key, name) < 0)
        return err_setf(e, ERR_USAGE, "WAL file name too long: \"%s\"", name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not open \"%s\"", path);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_setf(e, ERR_IO, "\"%s\" is not a regular file", path);
    }
    rep->size = (uint64_t)st.st_size;
    if (check_segment(a, fd, path, name, rep->size, e) < 0)
        goto out;
    p.fd = fd;
    p.path = path;
    p.st = st;

    open_branches(a, name, key, &p, rep, &first);
    if (p.nb == 0)
        goto done;
    if (multi_tee_new(p.branches, p.results, p.nb, &tee, e) < 0) {
        for (i = 0; i < p.nb; i++)
            sink_free(p.branches[i]);
        goto out;
    }
    memset(&oo, 0, sizeof oo);
    oo.level = a->conf->compression_level;
    oo.workers = a->zstd_workers;
    oo.size_hint = rep->size;
    oo.kr = a->kr;
    oo.bind.key = key;
    oo.bind.sysid = a->cluster.sysid;
    if (obj_encoder_new(tee, &oo, &enc, e) < 0)
        goto out;
    tee = NULL;
    /* A write fails only when every destination failed, or reading or
     * encoding failed: either way nothing is committed, and the branches
     * are settled with that error below. */
    /* From a mapping when zstd runs in this thread alone (with its own
     * worker threads a fault could be taken where the guard does not
     * look: mapread.h), else with read(). */
    slot_take(a->encode_slots);
    chain_rc = a->zstd_workers == 0 ? sink_pump_mapped(enc, fd, rep->size, path, &chain) : 1;
    if (chain_rc > 0)
        chain_rc = sink_pump_fd(enc, fd, path, 0, &chain);
    slot_give(a->encode_slots);
    /* The file must be as it was opened once it is read, checked before
     * anything commits: a file changed while it was read (rewritten in
     * place, truncated, even with its mtime set back) leaves no object,
     * so PostgreSQL's retry archives it whole instead of meeting a torn
     * copy under its name forever. */
    if (chain_rc == 0 && changed_since(fd, &st, path, e))
        goto out;
    if (chain_rc == 0) {
        slot_take(a->commit_slots);
        chain_rc = sink_close(enc, &chain);
        slot_give(a->commit_slots);
        /* the whole file went through the encoder unless a branch is left
         * that neither committed nor failed by itself */
        for (i = 0; i < p.nb && chain_rc < 0; i++)
            if (!p.results[i].committed && !p.results[i].failed)
                break;
        if (chain_rc == 0 || i == p.nb) {
            whole = 1;
            chain_rc = 0;
        }
    } else {
        chain_rc = -1;
    }
    settle(a, name, key, &p, chain_rc, &chain, whole, rep, &first);
done:
    if (rep->failed > 0) {
        if (rep->failed == 1)
            *e = first;
        else
            err_setf(e, first.code, "\"%s\" was not archived in %d regions (%s); first: %s", name, rep->failed,
                     rep->failed_regions, first.msg);
        goto out;
    }
    rc = 0;
out:
    sink_free(enc);
    sink_free(tee);
    sink_free(p.spool);     /* not committed above: aborted, nothing queued */
    if (fd >= 0)
        close(fd);
    return rc;
}
