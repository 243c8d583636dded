/* s3_get — streaming GET with resume: the sink never sees a byte twice.
 *
 * The body goes to the sink as it arrives.  When a transient fault cuts
 * the body, the engine retries and prepare() asks for the rest only
 * (Range from the bytes already delivered) of the same object version
 * (If-Match with the first answer's ETag).  Each answer's Content-Length
 * must add up with what was delivered before, and the total must match at
 * the end: a truncated body is never taken as complete. */
#include "s3.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

struct get_state {
    struct sink *out;
    uint64_t off;
    uint64_t len;           /* STOR_TO_END or a count */
    int64_t expected;       /* bytes the whole get delivers; -1 until the first answer */
    char etag[128];
    int ranged;             /* this attempt sent a Range */
    uint64_t start;         /* ... starting at this offset */
};

static int get_prepare(struct http_xfer *x, struct err *e)
{
    struct s3_req *r = x->arg;
    struct get_state *g = r->ctx;
    uint64_t start = g->off + x->delivered;

    r->range[0] = '\0';
    r->if_match[0] = '\0';
    g->ranged = start > 0 || g->len != STOR_TO_END;
    g->start = start;
    if (g->ranged) {
        if (g->len == STOR_TO_END)
            snprintf(r->range, sizeof r->range, "bytes=%" PRIu64 "-", start);
        else
            snprintf(r->range, sizeof r->range, "bytes=%" PRIu64 "-%" PRIu64, start, g->off + g->len - 1);
    }
    if (x->delivered > 0 && g->etag[0] != '\0')
        strlcopy(r->if_match, g->etag, sizeof r->if_match);
    return s3_req_prepare(x, e);
}

static int get_headers(struct http_xfer *x, struct err *e)
{
    struct s3_req *r = x->arg;
    struct get_state *g = r->ctx;

    if (g->ranged && x->status != 206)
        return err_setf(e, ERR_HTTP, "the server answered HTTP %ld to a ranged GET (expected 206)", x->status);
    /* A 206 is part of the object: only what was asked for, from where it
     * was asked, may reach the sink. */
    if (!g->ranged && x->status != 200)
        return err_setf(e, ERR_HTTP, "the server answered HTTP %ld (%s) to a GET of the whole object (expected 200)",
                        x->status, x->content_range[0] ? x->content_range : "no Content-Range");
    if (g->ranged) {
        uint64_t first;

        if (sscanf(x->content_range, "bytes %" SCNu64 "-", &first) != 1 || first != g->start)
            return err_setf(e, ERR_HTTP, "the server answered Content-Range \"%s\" to a GET from byte %" PRIu64,
                            x->content_range, g->start);
    }
    if (x->content_length < 0)
        return err_setf(e, ERR_HTTP, "the answer has no Content-Length");
    if (g->expected < 0) {
        g->expected = (int64_t)x->delivered + x->content_length;
        strlcopy(g->etag, x->etag, sizeof g->etag);
    } else if ((int64_t)x->delivered + x->content_length != g->expected) {
        return err_setf(e, ERR_HTTP, "the object changed while it was being read (%" PRId64 " bytes announced, "
                        "%" PRId64 " expected after %" PRIu64 ")", x->content_length,
                        g->expected - (int64_t)x->delivered, x->delivered);
    }
    return 0;
}

static int get_data(struct http_xfer *x, const void *buf, size_t n, struct err *e)
{
    struct s3_req *r = x->arg;
    struct get_state *g = r->ctx;

    return sink_write(g->out, buf, n, e);
}

int s3_get(struct stor *st, const char *key, uint64_t off, uint64_t len, struct sink *out, struct err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct get_state g;
    struct s3_req r;
    int rc = -1;

    if (len == 0) {
        struct stor_stat sst;
        return st->ops->head(st, key, &sst, e);
    }
    if (len != STOR_TO_END && off + len < off)
        return err_setf(e, ERR_INTERNAL, "bad range %" PRIu64 "+%" PRIu64 " for \"%s\"", off, len, key);
    memset(&g, 0, sizeof g);
    g.out = out;
    g.off = off;
    g.len = len;
    g.expected = -1;
    if (s3_req_init(&r, s, "GET", key, NULL, e) < 0)
        return -1;
    r.ctx = &g;
    r.x.prepare = get_prepare;
    r.x.on_headers = get_headers;
    r.x.on_data = get_data;
    r.x.collect_max = 1u << 20;
    if (s3_req_run(&r, e) < 0) {
        s3_fail(s, &r, "download", "from", e);
        goto out;
    }
    if (r.x.status == 416 && r.x.delivered == 0) {
        /* Range starts at or past the end: nothing to deliver (as pread). */
        rc = 0;
        goto out;
    }
    if (r.x.status != 200 && r.x.status != 206) {
        s3_fail(s, &r, "download", "from", e);
        goto out;
    }
    if (g.expected < 0 || r.x.delivered != (uint64_t)g.expected) {
        err_setf(e, ERR_NET, "could not download \"%s\" from region %s (bucket %s): truncated body: "
                 "%" PRIu64 " of %" PRId64 " bytes", key, st->region, s->bucket, r.x.delivered, g.expected);
        e->transient = 1;
        e->http_status = r.x.status;
        goto out;
    }
    rc = 0;
out:
    s3_req_free(&r);
    return rc;
}
