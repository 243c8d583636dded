/*
 * verify_full — `verify --full` (docs/VERIFY.md §3): every part streamed
 * through the decoder into libarchive, each file's size and SHA-256
 * compared with the manifest; every other object decoded in full.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bkf_pipe.h"
#include "util.h"
#include "verify_int.h"
#include "ar_dl.h"  /* last: libarchive calls go through its table */

#define VFY_PIPE_CAP ((size_t)4 << 20)

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

/* A file of the part whose name or content does not match the manifest;
 * -1 out of memory. */
static int entry_problem(struct vfy_report *r, const struct manifest *m, const struct man_part *mp, const char *key,
                         const char *path, const struct man_file *f, const struct man_piece *pc, const char *hex,
                         uint64_t size)
{
    uint64_t want = pc != NULL ? pc->size : f != NULL ? f->stored : 0;
    char obj[1200];

    snprintf(obj, sizeof obj, "%s:%s", key, path);
    if (f == NULL || (pc == NULL && f->part != mp->number))
        return vfy_problem(r, obj, "backup %s: part %u holds \"%s\", which the manifest %s", m->name,
                           (unsigned)mp->number, path, f ? "lists in another part" : "does not list");
    return vfy_problem(r, obj, "backup %s: file \"%s\" in part %u is damaged: %s (manifest: %" PRIu64
                       " bytes, sha256 %.16s…; archive: %" PRIu64 " bytes, sha256 %.16s…)%s", m->name, path,
                       (unsigned)mp->number, size != want ? "size differs" : "SHA-256 differs", want,
                       pc != NULL ? pc->sha256 : man_file_stored_sha(f), size, hex,
                       pc != NULL ? " (a piece)" : "");
}

/* Read the tar stream's entries: 1 when it ended well, 0 when it did not
 * (why says how), -1 out of memory. */
static int read_entries(struct archive *a, struct part_read *p, const struct manifest *m, const struct man_part *mp,
                        unsigned char *seen, unsigned char *pseen, struct vfy_report *r, char *why, size_t whysz)
{
    struct archive_entry *ent;

    if (archive_read_open(a, &p->pipe, NULL, bkf_pipe_read, NULL) != ARCHIVE_OK) {
        snprintf(why, whysz, "not a tar stream: %s", archive_error_string(a));
        return 0;
    }
    for (;;) {
        const struct man_file *f;
        const struct man_piece *pc;
        const char *path;
        char hex[65];
        uint64_t size;
        int h = archive_read_next_header(a, &ent);

        if (h == ARCHIVE_EOF)
            return 1;
        if (h != ARCHIVE_OK && h != ARCHIVE_WARN) {
            snprintf(why, whysz, "bad tar stream: %s", archive_error_string(a));
            return 0;
        }
        if (archive_entry_filetype(ent) != AE_IFREG)
            continue;
        path = archive_entry_pathname(ent);
        if (path == NULL)
            path = "";
        f = man_find_file(m, path);
        /* a file stored as pieces: the one the manifest puts in this part */
        pc = f != NULL ? man_piece_in(f, mp->number) : NULL;
        if (f == NULL || (pc == NULL && f->part != mp->number) || (pc != NULL && pseen[f - m->files])) {
            if (entry_problem(r, m, mp, p->key, path, f, NULL, NULL, 0) < 0)
                return -1;
            continue;
        }
        if (pc != NULL)
            pseen[f - m->files] = 1;
        else
            seen[f - m->files] = 1;
        if (hash_entry(a, hex, &size) < 0) {
            snprintf(why, whysz, "could not read \"%s\": %s", path, archive_error_string(a));
            return 0;
        }
        r->files_checked++;
        if ((size != (pc != NULL ? pc->size : f->stored) ||
             strcmp(hex, pc != NULL ? pc->sha256 : man_file_stored_sha(f)) != 0) &&
            entry_problem(r, m, mp, p->key, path, f, pc, hex, size) < 0)
            return -1;
    }
}

/* After the stream: what the download said, the decoded length, and the
 * files the manifest lists that the part did not hold. */
static int part_verdict(const struct part_read *p, int refused, int ok, const char *why, const struct manifest *m,
                        const struct man_part *mp, const unsigned char *seen, const unsigned char *pseen,
                        struct vfy_report *r)
{
    size_t i;

    r->objects_decoded++;
    if (p->dl_rc < 0 && !refused)
        return vfy_problem(r, p->key, "backup %s: part %u does not decode: %s", m->name, (unsigned)mp->number,
                           p->dl_err.msg);
    if (!ok)
        return vfy_problem(r, p->key, "backup %s: part %u: %s", m->name, (unsigned)mp->number, why);
    r->bytes_decoded += p->decoded;
    if (p->decoded != mp->raw_size &&
        vfy_problem(r, p->key, "backup %s: part %u decodes to %" PRIu64 " bytes, the manifest says %" PRIu64,
                    m->name, (unsigned)mp->number, p->decoded, mp->raw_size) < 0)
        return -1;
    for (i = 0; i < m->nfiles; i++) {
        char obj[1200];

        if (m->files[i].npieces > 0 ? man_piece_in(&m->files[i], mp->number) == NULL || pseen[i]
                                    : m->files[i].part != mp->number || seen[i])
            continue;
        snprintf(obj, sizeof obj, "%s:%s", p->key, m->files[i].path);
        if (vfy_problem(r, obj, "backup %s: file \"%s\" is missing from part %u", m->name, m->files[i].path,
                        (unsigned)mp->number) < 0)
            return -1;
    }
    return 0;
}

int vfy_full_part(struct repo *rp, const struct manifest *m, const struct man_part *mp, const char *key,
                  unsigned char *seen, struct vfy_report *r, struct err *e)
{
    struct part_read p;
    struct archive *a = NULL;
    unsigned char *pseen = calloc(m->nfiles + 1, 1);    /* this part's pieces */
    pthread_t th;
    char why[1024] = "";
    int ok = 0, refused;

    if (pseen == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (ar_dl_load(e) < 0) {
        free(pseen);
        return -1;
    }
    memset(&p, 0, sizeof p);
    p.rp = rp;
    p.key = key;
    atomic_init(&p.abort, 0);
    if (bkf_pipe_init(&p.pipe, VFY_PIPE_CAP, &p.abort) < 0) {
        free(pseen);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (pthread_create(&th, NULL, part_download, &p) != 0) {
        bkf_pipe_destroy(&p.pipe);
        free(pseen);
        return err_setf(e, ERR_INTERNAL, "could not start a download thread");
    }
    a = archive_read_new();
    if (a == NULL || archive_read_support_format_tar(a) != ARCHIVE_OK)
        ok = -1;
    else
        ok = read_entries(a, &p, m, mp, seen, pseen, r, why, sizeof why);
    bkf_pipe_reader_done(&p.pipe, ok == 1 ? BKF_PIPE_DISCARD : BKF_PIPE_ABORT);
    pthread_join(th, NULL);
    archive_read_free(a);
    refused = bkf_pipe_writer_refused(&p.pipe);
    bkf_pipe_destroy(&p.pipe);
    if (ok < 0 || part_verdict(&p, refused, ok, why, m, mp, seen, pseen, r) < 0)
        ok = -1;
    free(pseen);
    return ok < 0 ? err_setf(e, ERR_NOMEM, "out of memory") : 0;
}

/* Decode an object fully and count its plaintext; a decode failure is a
 * problem, not an error.  With `segment` (a WAL segment's name) the first
 * page must also say it is that segment of this region's cluster. */
int vfy_full_object(struct repo *rp, const char *key, uint64_t want, const char *segment, const char *what,
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
        return vfy_problem(r, key, "%s does not decode: %s", what, de.msg) < 0 ? err_setf(e, ERR_NOMEM, "out of memory")
                                                                          : 0;
    }
    got = null_sink_count(n);
    sink_free(n);
    r->bytes_decoded += got;
    if (want && got != want &&
        vfy_problem(r, key, "%s decodes to %" PRIu64 " bytes instead of %" PRIu64, what, got, want) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}
