#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 10000
#define COLLECT_DEFAULT (1u << 20)
/* An attempt is cut when less than this moved per second for io_timeout:
 * at "1 byte/s" a server that trickles a byte or two a second (a slow
 * loris, a broken middlebox) held a GET, and wal-fetch under
 * restore_command, for days. */
#define LOW_SPEED_BYTES 1024L
/* ...except for the requests with an io_timeout of their own, whose whole
 * attempt is bounded by this many times it */
#define SLOW_ATTEMPT_FACTOR 4L

enum { X_IDLE = 0, X_RUNNING, X_WAITING, X_DONE };

struct http_engine {
    CURLM *multi;
    struct http_xfer *list;     /* started and not yet handed back */
    long connect_timeout, io_timeout;
    uint64_t deadline_ms;
    char *ca_file;
    uint64_t rnd;
    int busy;                   /* inside curl_multi_perform */
    const struct note_sink *notes;  /* borrowed */
};

int http_status_transient(long status)
{
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

static int curl_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
        return 1;
    default:
        return 0;
    }
}

static uint64_t rnd_next(struct http_engine *h)
{
    /* xorshift64*: jitter only, not security. */
    h->rnd ^= h->rnd >> 12;
    h->rnd ^= h->rnd << 25;
    h->rnd ^= h->rnd >> 27;
    return h->rnd * 2685821657736338717ULL;
}

int http_engine_new(const struct http_opts *o, struct http_engine **out, struct err *e)
{
    struct http_engine *h;
    long maxconn;

    *out = NULL;
    if (s3_dl_load(e) < 0)
        return -1;
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory creating an HTTP engine");
    h->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : 10;
    h->io_timeout = o->io_timeout > 0 ? o->io_timeout : 60;
    h->deadline_ms = (o->retry_deadline > 0 ? o->retry_deadline : 60) * 1000;
    h->notes = o->notes;
    if (o->ca_file != NULL && (h->ca_file = strdup(o->ca_file)) == NULL)
        goto oom;
    if (getrandom(&h->rnd, sizeof h->rnd, GRND_NONBLOCK) != (ssize_t)sizeof h->rnd)
        h->rnd = now_ms() ^ ((uint64_t)getpid() << 32);
    if (h->rnd == 0)
        h->rnd = 0x9e3779b97f4a7c15ULL;
    h->multi = curl_multi_init();
    if (h->multi == NULL)
        goto oom;
    maxconn = (o->parallel > 0 ? o->parallel : 1) * 2L + 2;
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, maxconn);
    *out = h;
    return 0;
oom:
    http_engine_free(h);
    return err_setf(e, ERR_NOMEM, "out of memory creating an HTTP engine");
}

static void attempt_cleanup(struct http_engine *h, struct http_xfer *x)
{
    if (x->easy != NULL) {
        curl_multi_remove_handle(h->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    free(x->url);
    x->url = NULL;
    curl_slist_free_all(x->headers);
    x->headers = NULL;
}

static void unlink_xfer(struct http_engine *h, struct http_xfer *x)
{
    struct http_xfer **pp;

    for (pp = &h->list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    }
    x->next = NULL;
}

void http_release(struct http_engine *h, struct http_xfer *x)
{
    if (h == NULL || x == NULL || x->state == X_IDLE)
        return;
    attempt_cleanup(h, x);
    unlink_xfer(h, x);
    x->state = X_IDLE;
}

void http_engine_free(struct http_engine *h)
{
    if (h == NULL)
        return;
    while (h->list != NULL)
        http_release(h, h->list);
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    free(h->ca_file);
    free(h);
}

int http_active(const struct http_engine *h)
{
    const struct http_xfer *x;
    int n = 0;

    for (x = h->list; x != NULL; x = x->next)
        n++;
    return n;
}

void http_xfer_clear(struct http_xfer *x)
{
    free(x->resp);
    x->resp = NULL;
    x->resp_len = 0;
    x->finished = x->failed = x->exhausted = 0;
    x->status = 0;
    x->attempts = 0;
    x->delivered = x->got = 0;
    x->content_length = -1;
    x->etag[0] = x->request_id[0] = x->last_modified[0] = '\0';
    x->bucket_region[0] = x->content_range[0] = x->checksum_sha256[0] = '\0';
    err_clear(&x->err);
}

/* ---- curl callbacks ---- */

static void get_header(CURL *easy, const char *name, char *dst, size_t n)
{
    struct curl_header *hd = NULL;

    dst[0] = '\0';
    if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &hd) == CURLHE_OK && hd != NULL)
        strlcopy(dst, hd->value, n);
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct http_xfer *x = arg;
    size_t len = size * n;
    char cl[32];
    uint64_t v;
    struct err tmp = ERR_INIT;

    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new answer (after a 100 Continue, say): forget the last one. */
        x->to_data = 0;
        x->content_length = -1;
        return len;
    }
    if (!(len <= 2 && (line[0] == '\r' || line[0] == '\n')))
        return len;
    /* End of a header block. */
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->status >= 100 && x->status < 200)
        return len;
    get_header(x->easy, "ETag", x->etag, sizeof x->etag);
    get_header(x->easy, "x-amz-request-id", x->request_id, sizeof x->request_id);
    get_header(x->easy, "Last-Modified", x->last_modified, sizeof x->last_modified);
    get_header(x->easy, "x-amz-bucket-region", x->bucket_region, sizeof x->bucket_region);
    get_header(x->easy, "Content-Range", x->content_range, sizeof x->content_range);
    get_header(x->easy, "x-amz-checksum-sha256", x->checksum_sha256, sizeof x->checksum_sha256);
    get_header(x->easy, "Content-Length", cl, sizeof cl);
    if (cl[0] != '\0' && parse_u64(cl, 0, INT64_MAX, &v, &tmp) == 0)
        x->content_length = (int64_t)v;
    if (x->status >= 200 && x->status < 300) {
        x->to_data = x->on_data != NULL;
        if (x->on_headers != NULL && x->on_headers(x, &x->err) < 0) {
            x->cb_failed = 1;
            return 0;
        }
    }
    return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *arg)
{
    struct http_xfer *x = arg;
    size_t len = size * n;
    size_t max = x->collect_max ? x->collect_max : COLLECT_DEFAULT;

    if (x->to_data) {
        if (x->on_data(x, buf, len, &x->err) < 0) {
            x->cb_failed = 1;
            return 0;
        }
        x->delivered += len;
        x->got += len;
        return len;
    }
    if (len > max - x->resp_len) {
        err_setf(&x->err, ERR_HTTP, "the answer to %s is larger than %zu bytes", x->what, max);
        x->cb_failed = 1;
        return 0;
    }
    {
        unsigned char *nb = realloc(x->resp, x->resp_len + len + 1);
        if (nb == NULL) {
            err_setf(&x->err, ERR_NOMEM, "out of memory reading the answer to %s", x->what);
            x->cb_failed = 1;
            return 0;
        }
        x->resp = nb;
    }
    memcpy(x->resp + x->resp_len, buf, len);
    x->resp_len += len;
    x->resp[x->resp_len] = '\0';
    x->got += len;
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct http_xfer *x = arg;
    size_t want = size * n, left = x->body_len - x->body_pos;

    if (want > left)
        want = left;
    if (want > 0)
        memcpy(buf, x->body + x->body_pos, want);
    x->body_pos += want;
    return want;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct http_xfer *x = arg;

    if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->body_len)
        return CURL_SEEKFUNC_FAIL;
    x->body_pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* ---- attempts ---- */

static void finish(struct http_xfer *x)
{
    x->state = X_DONE;
    x->finished = 1;
}

static int begin_attempt(struct http_engine *h, struct http_xfer *x, struct err *e)
{
    CURL *c;
    CURLMcode mc;
    int upload = strcmp(x->method, "PUT") == 0 || strcmp(x->method, "POST") == 0;

    x->attempts++;
    x->got = 0;
    x->status = 0;
    x->content_length = -1;
    x->to_data = 0;
    x->cb_failed = 0;
    x->body_pos = 0;
    x->errbuf[0] = '\0';
    x->etag[0] = x->request_id[0] = x->last_modified[0] = '\0';
    x->bucket_region[0] = x->content_range[0] = x->checksum_sha256[0] = '\0';
    free(x->resp);
    x->resp = NULL;
    x->resp_len = 0;
    err_clear(&x->err);
    if (x->prepare(x, e) < 0)
        return -1;
    c = curl_easy_init();
    if (c == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory starting %s", x->what);
    x->easy = c;
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->connect_timeout);
    if (x->io_timeout > 0) {
        /* a server working on its answer (CompleteMultipartUpload,
         * DeleteObjects) may keep the connection alive with a little
         * whitespace now and then, as S3 does: cut below 1 byte/s only, and
         * bound the whole attempt instead */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, x->io_timeout);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, x->io_timeout * SLOW_ATTEMPT_FACTOR);
    } else {
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->io_timeout);
    }
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);    /* the system CA path stays */
    if (strcmp(x->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (upload) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, x);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_len);
        if (strcmp(x->method, "PUT") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        if (strcmp(x->method, "GET") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
    }
    mc = curl_multi_add_handle(h->multi, c);
    if (mc != CURLM_OK) {
        err_setf(e, ERR_INTERNAL, "could not start %s: %s", x->what, curl_multi_strerror(mc));
        return -1;
    }
    x->state = X_RUNNING;
    return 0;
}

int http_start(struct http_engine *h, struct http_xfer *x, struct err *e)
{
    if (x->state != X_IDLE)
        return err_setf(e, ERR_INTERNAL, "%s started twice", x->what);
    http_xfer_clear(x);
    x->next = h->list;
    h->list = x;
    x->deadline_ms = now_ms() + h->deadline_ms;
    if (begin_attempt(h, x, e) < 0) {
        attempt_cleanup(h, x);
        unlink_xfer(h, x);
        x->state = X_IDLE;
        return -1;
    }
    return 0;
}

/* The attempt failed transiently: wait and go again, or give up. */
static void retry_or_finish(struct http_engine *h, struct http_xfer *x, const char *why, int answered)
{
    uint64_t ceiling = BACKOFF_BASE_MS, delay, now = now_ms();
    int i;

    for (i = 1; i < x->attempts && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    delay = rnd_next(h) % (ceiling + 1);
    /* No attempt starts after the deadline; the last one may start at it. */
    if (now < x->deadline_ms && now + delay >= x->deadline_ms && x->deadline_ms - now >= 50)
        delay = x->deadline_ms - now - 1;
    if (now + delay >= x->deadline_ms) {
        note(h->notes, LOG_DEBUG, "%s: %s; no retry left within the deadline (attempt %d)", x->what, why,
             x->attempts);
        if (answered) {
            x->exhausted = 1;
        } else {
            x->failed = 1;
            err_setf(&x->err, ERR_NET, "%s (after %d attempts)", why, x->attempts);
            x->err.transient = 1;
        }
        finish(x);
        return;
    }
    note(h->notes, LOG_WARNING, "%s: %s; retrying in %llu ms (attempt %d)", x->what, why,
         (unsigned long long)delay, x->attempts + 1);
    x->state = X_WAITING;
    x->retry_at_ms = now + delay;
}

static enum http_verdict default_classify(struct http_xfer *x, char *why, size_t n)
{
    snprintf(why, n, "HTTP %ld", x->status);
    return http_status_transient(x->status) ? HTTP_RETRY : HTTP_FINAL;
}

static void attempt_done(struct http_engine *h, struct http_xfer *x, CURLcode rc)
{
    char why[CURL_ERROR_SIZE + 64];

    if (x->status == 0)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    attempt_cleanup(h, x);
    if (x->cb_failed) {
        /* Our own callback said stop (sink failed, answer too big): final. */
        x->failed = 1;
        finish(x);
        return;
    }
    if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        if (curl_transient(rc)) {
            retry_or_finish(h, x, why, 0);
        } else {
            x->failed = 1;
            err_setf(&x->err, ERR_NET, "%s", why);
            finish(x);
        }
        return;
    }
    if (x->status >= 200 && x->status < 300 && strcmp(x->method, "HEAD") != 0 && x->content_length >= 0 &&
        x->got != (uint64_t)x->content_length) {
        snprintf(why, sizeof why, "truncated body: %llu of %lld bytes", (unsigned long long)x->got,
                 (long long)x->content_length);
        retry_or_finish(h, x, why, 0);
        return;
    }
    why[0] = '\0';
    if ((x->classify ? x->classify(x, why, sizeof why) : default_classify(x, why, sizeof why)) == HTTP_RETRY)
        retry_or_finish(h, x, why, 1);
    else
        finish(x);
}

/* One round: start due retries, perform, harvest; then wait up to wait_ms
 * for activity when nothing finished. */
static int step(struct http_engine *h, int wait_ms, struct err *e)
{
    struct http_xfer *x;
    CURLMsg *m;
    CURLMcode mc;
    int running, left, finished = 0;
    uint64_t now = now_ms(), next_retry = UINT64_MAX;

    if (h->busy)
        return err_setf(e, ERR_INTERNAL, "HTTP engine driven from inside its own callback");
    for (x = h->list; x != NULL; x = x->next) {
        if (x->state != X_WAITING)
            continue;
        if (x->retry_at_ms <= now) {
            struct err pe = ERR_INIT;
            if (begin_attempt(h, x, &pe) < 0) {
                attempt_cleanup(h, x);
                x->failed = 1;
                x->err = pe;
                finish(x);
                finished = 1;
            }
        } else if (x->retry_at_ms < next_retry) {
            next_retry = x->retry_at_ms;
        }
    }
    h->busy = 1;
    mc = curl_multi_perform(h->multi, &running);
    h->busy = 0;
    if (mc != CURLM_OK)
        return err_setf(e, ERR_INTERNAL, "curl_multi_perform: %s", curl_multi_strerror(mc));
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x != NULL) {
            attempt_done(h, x, m->data.result);
            if (x->finished)
                finished = 1;
            else if (x->state == X_WAITING && x->retry_at_ms < next_retry)
                next_retry = x->retry_at_ms;
        }
    }
    if (finished || wait_ms <= 0)
        return 0;
    if (next_retry != UINT64_MAX) {
        now = now_ms();
        if (next_retry <= now)
            return 0;
        if (next_retry - now < (uint64_t)wait_ms)
            wait_ms = (int)(next_retry - now);
    }
    h->busy = 1;
    mc = curl_multi_poll(h->multi, NULL, 0, wait_ms, NULL);
    h->busy = 0;
    if (mc != CURLM_OK)
        return err_setf(e, ERR_INTERNAL, "curl_multi_poll: %s", curl_multi_strerror(mc));
    return 0;
}

int http_step(struct http_engine *h, int wait_ms, struct err *e)
{
    return step(h, wait_ms, e);
}

int http_run(struct http_engine *h, struct http_xfer *x, struct err *e)
{
    if (x->state == X_IDLE && http_start(h, x, e) < 0)
        return -1;
    while (!x->finished) {
        if (step(h, 1000, e) < 0)
            return -1;
    }
    unlink_xfer(h, x);
    x->state = X_IDLE;
    if (x->failed) {
        *e = x->err;
        return -1;
    }
    return 0;
}
