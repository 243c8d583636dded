/* s3_upload — the upload sink: one PutObject, or a multipart upload whose
 * parts travel while the writer keeps writing.
 *
 * Memory is (parallel + 1) part buffers at most: one being filled, up to
 * `parallel` in flight (each kept until its part is acknowledged, so a
 * retry re-sends it).  A full buffer is sent only once more data arrives,
 * so an object of at most one part is a single PutObject at close.
 * write() drives the engine without blocking, and blocks (still driving
 * it) only when every slot is busy.  Any failure, or sink_free() without a
 * successful close, aborts the multipart upload.
 *
 * Never replacing an object (stor.h): the PUT, or the multipart upload's
 * completion, carries If-None-Match: *, which S3 answers with 412 when the
 * key exists.  A server that answers 501 to it (Swift's s3api) is
 * remembered for the life of the driver, and from then on the key is
 * checked with HEAD just before the write and read back with HEAD just
 * after it: a writer that lost a race sees the other's ETag and fails.  Two
 * writers whose check-write-readback sequences interleave exactly can still
 * both succeed there; docs/S3.md describes that window. */
#include "s3.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct slot {
    struct s3_req req;
    unsigned char *buf;
    size_t len;
    int number;
    int busy;
};

struct upload {
    struct sink base;
    struct s3 *s3;
    char *key;
    char *upload_id;
    char *enc_id;
    struct slot *slots;
    int nslots;
    struct slot *cur;
    struct s3_part *parts;      /* index = part number - 1 */
    int nparts;
    uint64_t total;             /* bytes in the parts sent */
    int failed;
    struct err err;
    int closed;
    unsigned flags;             /* STOR_PUT_* */
};

/* A put that must not replace an existing object. */
static int no_replace(const struct upload *u)
{
    return !(u->flags & STOR_PUT_REPLACE);
}

static void unquote(const char *in, char *out, size_t n)
{
    strlcopy(out, in[0] == '"' ? in + 1 : in, n);
    if (out[0] != '\0' && out[strlen(out) - 1] == '"')
        out[strlen(out) - 1] = '\0';
}

static int exists_error(const struct upload *u, const char *how, struct err *e)
{
    return err_setf(e, ERR_EXISTS, "region %s: \"%s\" %s (bucket %s; not replaced)", u->s3->base.region, u->key,
                    how, u->s3->bucket);
}

/* Servers without conditional writes: the key must not exist yet. */
static int check_absent(struct upload *u, struct err *e)
{
    struct stor_stat st;
    struct err he = ERR_INIT;

    if (s3_head(&u->s3->base, u->key, &st, &he) == 0)
        return exists_error(u, "already exists", e);
    if (he.code != ERR_NOTFOUND) {
        *e = he;
        return -1;
    }
    return 0;
}

/* ...and after the write, the object there must be ours (`etag`, as the
 * server gave it or as computed). */
static int check_ours(struct upload *u, const char *etag, struct err *e)
{
    struct stor_stat st;
    char want[128];

    unquote(etag, want, sizeof want);
    if (s3_head(&u->s3->base, u->key, &st, e) < 0)
        return err_prefix(e, "could not read back \"%s\" after writing it", u->key);
    if (want[0] != '\0' && strcmp(st.etag, want) != 0)
        return exists_error(u, "was written by another writer at the same moment", e);
    return 0;
}

static void multipart_etag(const struct upload *u, char *out, size_t n)
{
    s3_multipart_etag(u->s3, u->parts, u->nparts, out, n);
}

static int fail_with(struct upload *u, const struct err *why, struct err *e)
{
    if (!u->failed) {
        u->failed = 1;
        u->err = *why;
    }
    *e = u->err;
    return -1;
}

static int create_upload(struct upload *u, struct err *e)
{
    struct s3 *s = u->s3;
    struct s3_req r;
    int rc = -1;

    if (s3_req_init(&r, s, "POST", u->key, "uploads", e) < 0)
        return -1;
    s3_req_body(&r, "", 0);
    if (s3_upload_headers(&r, S3_UP_CREATE, e) < 0)
        goto out;
    if (s3_req_run(&r, e) < 0 || r.x.status != 200) {
        s3_fail(s, &r, "start a multipart upload of", "to", e);
        goto out;
    }
    if (s3_xml_parse_upload_id(r.x.resp, r.x.resp_len, &u->upload_id, e) < 0) {
        err_prefix(e, "could not start a multipart upload of \"%s\" to region %s (bucket %s)", u->key,
                   s->base.region, s->bucket);
        goto out;
    }
    u->enc_id = sigv4_uri_encode(u->upload_id, 0);
    if (u->enc_id == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    note(s->base.notes, LOG_DEBUG, "multipart upload of \"%s\" to region %s started", u->key, s->base.region);
    rc = 0;
out:
    s3_req_free(&r);
    return rc;
}

/* A part's transfer is finished: record its ETag or the failure. */
static void part_done(struct upload *u, struct slot *sl)
{
    struct s3_req *r = &sl->req;
    struct err e = ERR_INIT;
    char verb[64];

    http_release(u->s3->http, &r->x);
    if (r->x.failed || r->x.status != 200 || r->x.etag[0] == '\0') {
        snprintf(verb, sizeof verb, "upload part %d of", sl->number);
        if (!r->x.failed && r->x.status == 200) {
            err_setf(&e, ERR_HTTP, "could not upload part %d of \"%s\" to region %s (bucket %s): "
                     "answer without ETag", sl->number, u->key, u->s3->base.region, u->s3->bucket);
        } else {
            s3_fail(u->s3, r, verb, "to", &e);
        }
        if (!u->failed) {
            u->failed = 1;
            u->err = e;
        }
    } else {
        if (s3_upload_verify(r, sl->number, &e) < 0 && !u->failed) {
            u->failed = 1;
            u->err = e;
        }
        strlcopy(u->parts[sl->number - 1].etag, r->x.etag, sizeof u->parts[0].etag);
        strlcopy(u->parts[sl->number - 1].checksum, r->checksum, sizeof u->parts[0].checksum);
        u->parts[sl->number - 1].number = sl->number;
    }
    s3_req_free(r);
    sl->busy = 0;
    sl->len = 0;
}

static int nbusy(const struct upload *u)
{
    int i, n = 0;

    for (i = 0; i < u->nslots; i++)
        n += u->slots[i].busy;
    return n;
}

/* Harvest finished parts; with `until` > -1, drive the engine until at
 * most `until` parts are in flight. */
static int reap(struct upload *u, int until, struct err *e)
{
    int i;

    for (;;) {
        for (i = 0; i < u->nslots; i++)
            if (u->slots[i].busy && u->slots[i].req.x.finished)
                part_done(u, &u->slots[i]);
        if (until < 0 || nbusy(u) <= until)
            return 0;
        if (http_step(u->s3->http, 1000, e) < 0)
            return -1;
    }
}

static int send_part(struct upload *u, struct slot *sl, struct err *e)
{
    struct s3 *s = u->s3;
    char query[64];
    char *q;

    if (u->upload_id == NULL && create_upload(u, e) < 0)
        return -1;
    if (u->nparts >= S3_MAX_PARTS)
        return err_setf(e, ERR_INTERNAL, "could not upload \"%s\" to region %s (bucket %s): more than %d parts "
                        "of %zu bytes (raise part_size)", u->key, s->base.region, s->bucket, S3_MAX_PARTS,
                        s->part_size);
    if (reap(u, s->parallel - 1, e) < 0)
        return -1;
    if (u->failed)
        return -1;
    {
        struct s3_part *np = realloc(u->parts, (size_t)(u->nparts + 1) * sizeof *np);
        if (np == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        u->parts = np;
        memset(&u->parts[u->nparts], 0, sizeof *np);
    }
    sl->number = ++u->nparts;
    u->total += sl->len;
    snprintf(query, sizeof query, "partNumber=%d&uploadId=", sl->number);
    q = xasprintf("%s%s", query, u->enc_id);
    if (q == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (s3_req_init(&sl->req, s, "PUT", u->key, q, e) < 0) {
        free(q);
        return -1;
    }
    free(q);
    snprintf(sl->req.what, sizeof sl->req.what, "PUT %s part %d (region %s)", u->key, sl->number,
             s->base.region);
    s3_req_body(&sl->req, sl->buf, sl->len);
    if (s3_upload_headers(&sl->req, S3_UP_PART, e) < 0 || http_start(s->http, &sl->req.x, e) < 0) {
        s3_req_free(&sl->req);
        return -1;
    }
    sl->busy = 1;
    return 0;
}

/* A slot to fill: a free one, waiting for a part to finish if need be. */
static int take_slot(struct upload *u, struct err *e)
{
    int i;

    for (;;) {
        for (i = 0; i < u->nslots; i++) {
            struct slot *sl = &u->slots[i];

            if (sl->busy)
                continue;
            if (sl->buf == NULL && (sl->buf = malloc(u->s3->part_size)) == NULL)
                return err_setf(e, ERR_NOMEM, "out of memory for a %zu-byte upload buffer", u->s3->part_size);
            sl->len = 0;
            u->cur = sl;
            return 0;
        }
        if (reap(u, nbusy(u) - 1, e) < 0)
            return -1;
        if (u->failed)
            return -1;
    }
}

static int up_write(struct sink *sk, const void *buf, size_t len, struct err *e)
{
    struct upload *u = (struct upload *)sk;
    const unsigned char *p = buf;
    struct err tmp = ERR_INIT;

    if (u->closed)
        return err_setf(e, ERR_INTERNAL, "write to the upload of \"%s\" after it was closed", u->key);
    if (u->failed)
        return fail_with(u, &u->err, e);
    if (nbusy(u) > 0) {
        if (http_step(u->s3->http, 0, &tmp) < 0 || reap(u, -1, &tmp) < 0)
            return fail_with(u, &tmp, e);
        if (u->failed)
            return fail_with(u, &u->err, e);
    }
    while (len > 0) {
        size_t n;

        if (u->cur != NULL && u->cur->len == u->s3->part_size) {
            struct slot *full = u->cur;

            u->cur = NULL;
            if (send_part(u, full, &tmp) < 0)
                return fail_with(u, u->failed ? &u->err : &tmp, e);
        }
        if (u->cur == NULL && take_slot(u, &tmp) < 0)
            return fail_with(u, u->failed ? &u->err : &tmp, e);
        n = u->s3->part_size - u->cur->len;
        if (n > len)
            n = len;
        memcpy(u->cur->buf + u->cur->len, p, n);
        u->cur->len += n;
        p += n;
        len -= n;
    }
    return 0;
}

static int put_single(struct upload *u, struct err *e)
{
    struct s3 *s = u->s3;
    const unsigned char *body = u->cur ? u->cur->buf : (const unsigned char *)"";
    size_t len = u->cur ? u->cur->len : 0;
    int cond = no_replace(u);
    int inm = cond && atomic_load(&s->cond_put) >= 0;  /* read once: shared with parallel uploads */
    struct s3_req r;
    int rc = -1;

    if (cond && !inm && check_absent(u, e) < 0)
        return -1;
again:
    if (s3_req_init(&r, s, "PUT", u->key, NULL, e) < 0)
        return -1;
    r.if_none_match = inm;
    s3_req_body(&r, body, len);
    if (s3_upload_headers(&r, S3_UP_SINGLE, e) < 0)
        goto out;
    if (s3_req_run(&r, e) < 0) {
        s3_fail(s, &r, "upload", "to", e);
        goto out;
    }
    if (r.if_none_match && r.x.status == 501) {
        /* no conditional writes here: check, write, read back (test what
         * this request sent: another upload of the same region may have
         * set cond_put since) */
        s->cond_put = -1;
        inm = 0;
        s3_req_free(&r);
        if (check_absent(u, e) < 0)
            return -1;
        goto again;
    }
    if (cond && r.x.status == 412) {
        char md5[33];

        /* a retry after a lost answer finds our own first attempt */
        s3_md5_hex(body, len, md5);
        if (r.x.attempts > 1 && check_ours(u, md5, &(struct err)ERR_INIT) == 0)
            rc = 0;
        else
            exists_error(u, "already exists", e);
        goto out;
    }
    /* S3 answers every PutObject it kept with the object's ETag.  A 200
     * without one (a gateway's 200 with an <Error> body) wrote nothing: with
     * checksum = sha256 and no checksum in the answer, nothing else says so,
     * and wal-push acknowledged a segment that was not there. */
    if (r.x.status != 200 || r.x.etag[0] == '\0') {
        s3_fail(s, &r, "upload", "to", e);
        goto out;
    }
    if (s3_upload_verify(&r, 0, e) < 0)
        goto out;
    if (cond && !r.if_none_match) {
        if (check_ours(u, r.x.etag, e) < 0)
            goto out;
    } else if (cond) {
        s->cond_put = 1;
    }
    rc = 0;
out:
    s3_req_free(&r);
    return rc;
}

static int complete(struct upload *u, struct err *e)
{
    struct s3 *s = u->s3;
    struct s3_error er;
    struct s3_req r;
    char *body = NULL, *q = NULL;
    size_t len = 0;
    int rc = -1, res, inm;

    memset(&r, 0, sizeof r);
    if (s->no_part_checksums)
        s3_drop_part_checksums(u->parts, u->nparts);
rebuild:
    if (s3_xml_build_complete(u->parts, (size_t)u->nparts, &body, &len, e) < 0)
        goto out;
    q = xasprintf("uploadId=%s", u->enc_id);
    if (q == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    inm = no_replace(u) && atomic_load(&s->cond_put) >= 0;     /* read once, as in put_single */
    if (no_replace(u) && !inm && check_absent(u, e) < 0)
        goto out;
again:
    if (s3_req_init(&r, s, "POST", u->key, q, e) < 0 ||
        s3_req_header(&r, "Content-Type", "application/xml", e) < 0)
        goto out;
    r.if_none_match = inm;
    s3_req_body(&r, body, len);
    r.result_root = "CompleteMultipartUploadResult";
    r.x.io_timeout = s->slow_timeout;
    if (s3_req_run(&r, e) < 0) {
        s3_fail(s, &r, "complete the upload of", "to", e);
        goto out;
    }
    if ((r.x.status == 404 || r.x.status == 412) && r.x.attempts > 1 && s3_completed_before(s, u->key, u->parts, u->nparts, u->total)) {
        rc = 0;
        goto out;
    }
    if (s3_refused_part_checksums(s, &r, u->parts, u->nparts, u->key)) {
        s3_req_free(&r);
        memset(&r, 0, sizeof r);
        free(body);
        free(q);
        body = q = NULL;
        goto rebuild;
    }
    if (r.if_none_match && r.x.status == 501) {
        s->cond_put = -1;
        inm = 0;
        s3_req_free(&r);
        memset(&r, 0, sizeof r);
        if (check_absent(u, e) < 0)
            goto out;
        goto again;
    }
    if (no_replace(u) && r.x.status == 412) {
        exists_error(u, "already exists", e);
        goto out;
    }
    if (r.x.status != 200) {
        s3_fail(s, &r, "complete the upload of", "to", e);
        goto out;
    }
    res = s3_xml_parse_result(r.x.resp, r.x.resp_len, "CompleteMultipartUploadResult", &er, e);
    if (res == 1) {
        s3_fail(s, &r, "complete the upload of", "to", e);     /* 200 with an <Error> */
        goto out;
    }
    if (res < 0) {
        err_prefix(e, "could not complete the upload of \"%s\" to region %s (bucket %s)", u->key,
                   s->base.region, s->bucket);
        goto out;
    }
    if (no_replace(u) && !r.if_none_match) {
        char etag[128];

        multipart_etag(u, etag, sizeof etag);
        if (check_ours(u, etag, e) < 0)
            goto out;
    } else if (no_replace(u)) {
        s->cond_put = 1;
    }
    rc = 0;
out:
    s3_req_free(&r);
    free(body);
    free(q);
    return rc;
}

static int up_close(struct sink *sk, struct err *e)
{
    struct upload *u = (struct upload *)sk;
    struct err tmp = ERR_INIT;

    if (u->failed)
        return fail_with(u, &u->err, e);
    if (u->closed)
        return 0;
    if (u->upload_id == NULL) {
        if (put_single(u, &tmp) < 0)
            return fail_with(u, &tmp, e);
    } else {
        if (u->cur != NULL && u->cur->len > 0) {
            struct slot *last = u->cur;

            u->cur = NULL;
            if (send_part(u, last, &tmp) < 0)
                return fail_with(u, u->failed ? &u->err : &tmp, e);
        }
        if (reap(u, 0, &tmp) < 0)
            return fail_with(u, &tmp, e);
        if (u->failed)
            return fail_with(u, &u->err, e);
        if (complete(u, &tmp) < 0)
            return fail_with(u, &tmp, e);
        note(u->s3->base.notes, LOG_DEBUG, "multipart upload of \"%s\" to region %s completed (%d parts)", u->key,
             u->s3->base.region, u->nparts);
    }
    u->closed = 1;
    return 0;
}

static void abort_upload(struct upload *u)
{
    struct s3 *s = u->s3;
    struct err e = ERR_INIT;
    struct s3_req r;
    char *q = xasprintf("uploadId=%s", u->enc_id);

    if (q == NULL || s3_req_init(&r, s, "DELETE", u->key, q, &e) < 0) {
        note(s->base.notes, LOG_WARNING,
             "could not abort the multipart upload of \"%s\" to region %s (bucket %s): out of memory", u->key,
             s->base.region, s->bucket);
        free(q);
        return;
    }
    free(q);
    if (s3_req_run(&r, &e) < 0 || (r.x.status != 204 && r.x.status != 200 && r.x.status != 404)) {
        s3_fail(s, &r, "abort the multipart upload of", "to", &e);
        note(s->base.notes, LOG_WARNING,
             "%s; the incomplete upload stays until a lifecycle rule (AbortIncompleteMultipartUpload) removes it",
             e.msg);
    } else {
        note(s->base.notes, LOG_DEBUG, "multipart upload of \"%s\" to region %s aborted", u->key, s->base.region);
    }
    s3_req_free(&r);
}

static void up_free(struct sink *sk)
{
    struct upload *u = (struct upload *)sk;
    int i;

    for (i = 0; i < u->nslots; i++) {
        if (u->slots[i].busy)
            s3_req_free(&u->slots[i].req);    /* stops the transfer */
        free(u->slots[i].buf);
    }
    if (!u->closed && u->upload_id != NULL)
        abort_upload(u);
    free(u->slots);
    free(u->parts);
    free(u->key);
    free(u->upload_id);
    free(u->enc_id);
    free(u);
}

static const struct sink_ops upload_ops = { up_write, up_close, up_free };

int s3_put(struct stor *st, const char *key, unsigned flags, struct sink **out, struct err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct upload *u;

    *out = NULL;
    u = calloc(1, sizeof *u);
    if (u == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    u->base.ops = &upload_ops;
    u->s3 = s;
    u->flags = flags;
    u->nslots = s->parallel + 1;
    u->key = strdup(key);
    u->slots = calloc((size_t)u->nslots, sizeof *u->slots);
    if (u->key == NULL || u->slots == NULL) {
        free(u->key);
        free(u->slots);
        free(u);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    *out = &u->base;
    return 0;
}
