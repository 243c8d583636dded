/*
 * s3_driver_test — the s3:// storage driver against real Swift s3api
 * regions on loopback (TAP).  Run by s3_driver_test.sh, which starts the
 * servers and passes them in the environment:
 *
 *   S3_PORT_A, S3_PORT_B    region A (us-east-1) and region B (eu-west-1),
 *                           path style on 127.0.0.1 (required)
 *   S3_FAULT_PORT           tests/faultproxy.py in front of region A, and
 *   S3_FAULT_CONTROL        its control port (optional: fault checks)
 *   S3_TLS_PORT, S3_CA_FILE an https swift-proxy of region A and the CA of its
 *                           self-signed certificate (optional: TLS checks)
 *   S3_BUCKET               bucket to use (created here, and BUCKET-f for the
 *                           fault checks; default drvtest)
 *   S3_KEYS_A, S3_KEYS_B    keys for the listing-past-a-page check in each
 *                           region (default 1100: S3 pages hold 1000; the .sh
 *                           gives region B 100-key pages and fewer keys)
 *   S3_THREADS              threads putting those keys (default 4)
 *   S3_SECTIONS             what to run (default "a b err fault tls")
 *   S3_SERIAL=1             one section after the other (by default region B's
 *                           checks and the fault checks run in child processes
 *                           beside region A's, and their results are replayed)
 *
 * Credentials are the harness's: test:tester / testing (admin), test:reader
 * / reading (no access to buckets).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "note.h"
#include "s3.h"
#include "stor.h"
#include "stor_conf.h"
#include "stream.h"
#include "util.h"

#include "../unit/tap.h"

#define MiB (1u << 20)
#define PART (5u * MiB)

struct region {
    const char *name;       /* region name (for messages): also its SigV4 region */
    const char *other;      /* the other region's SigV4 region */
    int port;
    char endpoint[64];
};

static const char *bucket = "drvtest";
static struct config cfg;           /* functional checks */
static unsigned char *big;          /* 4 parts and a tail */
static const size_t bign = 4 * (size_t)PART + 123457;
static const char small[] = "hello, walship";
static int ctl_port;
static int nthreads = 4;
static const char *sections = "a b err fault tls";

/* Is word w in the S3_SECTIONS list? */
static int section(const char *w)
{
    const char *p = sections;
    size_t n = strlen(w);

    while ((p = strstr(p, w)) != NULL) {
        if ((p == sections || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return 1;
        p += n;
    }
    return 0;
}

/* ---- helpers ---- */

static __attribute__((format(printf, 1, 2), noreturn)) void bail(const char *fmt, ...)
{
    va_list ap;

    printf("Bail out! ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(1);
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    char *end;
    long n;

    if (v == NULL || v[0] == '\0')
        return dflt;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0 || n > 1000000)
        bail("bad value in %s", name);
    return (int)n;
}

static void mkrc(struct region_conf *rc, const char *name, const char *aws_region, const char *bkt,
                 const char *prefix, const char *secret, const char *endpoint, int path_style, char *url,
                 size_t urlsz)
{
    memset(rc, 0, sizeof *rc);
    snprintf(url, urlsz, "s3://%s/%s", bkt, prefix);
    rc->name = (char *)name;
    rc->url = url;
    rc->endpoint = (char *)endpoint;
    rc->aws_region = (char *)aws_region;
    rc->path_style = path_style;
    rc->access_key_id = "test:tester";
    rc->secret_access_key = (char *)secret;
    rc->part_size = PART;
}

/* The drivers' notes (drivers never log): to the log as a command's sink
 * would send them, and counted, so that the fault checks see a retry and
 * the giving up reported through struct stor_opts. */
static struct {
    pthread_mutex_t mu;
    int retrying, gave_up;
} seen = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };

static void count_note(void *arg, enum log_level level, const char *msg)
{
    pthread_mutex_lock(&seen.mu);
    if (level == LOG_WARNING && strstr(msg, "; retrying in ") != NULL)
        seen.retrying++;
    if (level == LOG_DEBUG && strstr(msg, "; no retry left within the deadline") != NULL)
        seen.gave_up++;
    pthread_mutex_unlock(&seen.mu);
    note_to_log(arg, level, msg);
}

static const struct note_sink test_notes = { count_note, NULL };

static void seen_counts(int *retrying, int *gave_up)
{
    pthread_mutex_lock(&seen.mu);
    *retrying = seen.retrying;
    *gave_up = seen.gave_up;
    pthread_mutex_unlock(&seen.mu);
}

/* Open or bail out: opening never talks to the server. */
static struct stor *open_c(const char *name, const char *aws_region, const char *bkt, const char *prefix,
                           const char *secret, const char *endpoint, int path_style, const struct config *c)
{
    struct region_conf rc;
    struct stor *s = NULL;
    struct err e = ERR_INIT;
    char url[256];

    mkrc(&rc, name, aws_region, bkt, prefix, secret, endpoint, path_style, url, sizeof url);
    if (stor_open(&rc, c, &test_notes, &s, &e) < 0)
        bail("s3_open: %s", e.msg);
    return s;
}

static void fill(unsigned char *b, size_t n, uint64_t seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        b[i] = (unsigned char)(seed >> 56);
    }
}

/* Put n bytes, written chunk bytes at a time; replacing an existing object
 * or not. */
static int put_buf_r(struct stor *s, const char *key, const unsigned char *b, size_t n, size_t chunk, int replace,
                     struct err *e)
{
    struct sink *k = NULL;
    size_t off = 0;
    int rc = -1;

    if ((replace ? stor_put_replace(s, key, &k, e) : stor_put(s, key, &k, e)) < 0)
        return -1;
    while (off < n) {
        size_t c = n - off < chunk ? n - off : chunk;

        if (sink_write(k, b + off, c, e) < 0)
            goto out;
        off += c;
    }
    if (sink_close(k, e) < 0)
        goto out;
    rc = 0;
out:
    sink_free(k);
    return rc;
}

static int put_buf(struct stor *s, const char *key, const unsigned char *b, size_t n, size_t chunk, struct err *e)
{
    return put_buf_r(s, key, b, n, chunk, 0, e);
}

/* 0: got exactly want; -1: the driver failed (e); -2: wrong content (e). */
static int get_cmp(struct stor *s, const char *key, uint64_t off, uint64_t len, const unsigned char *want,
                   size_t wantlen, struct err *e)
{
    struct sink *m = mem_sink_new(0);
    size_t got = 0;
    const unsigned char *d;
    int rc;

    if (m == NULL)
        bail("%s", "out of memory");
    err_clear(e);
    rc = stor_get_range(s, key, off, len, m, e);
    d = mem_sink_data(m, &got);
    if (rc == 0 && (got != wantlen || (wantlen > 0 && memcmp(d, want, wantlen) != 0))) {
        snprintf(e->msg, sizeof e->msg, "content mismatch: got %zu bytes, want %zu", got, wantlen);
        rc = -2;
    }
    sink_free(m);
    return rc;
}

static int head(struct stor *s, const char *key, struct stor_stat *st, struct err *e)
{
    memset(st, 0, sizeof *st);
    err_clear(e);
    return stor_head(s, key, st, e);
}

struct lctx {
    int n;
    char last[256];
    int order_ok;
    int only_prefix;
    const char *pfx;
};

static void lctx_init(struct lctx *c, const char *pfx)
{
    memset(c, 0, sizeof *c);
    c->order_ok = 1;
    c->only_prefix = 1;
    c->pfx = pfx;
}

static int lcb(const struct stor_entry *ent, void *arg)
{
    struct lctx *c = arg;

    if (c->n > 0 && strcmp(c->last, ent->key) >= 0)
        c->order_ok = 0;
    if (c->pfx != NULL && strncmp(ent->key, c->pfx, strlen(c->pfx)) != 0)
        c->only_prefix = 0;
    snprintf(c->last, sizeof c->last, "%s", ent->key);
    c->n++;
    return 0;
}

/* Multipart uploads in progress in the bucket (ListMultipartUploads). */
static int count_uploads(struct stor *st)
{
    struct s3_req r;
    struct err e = ERR_INIT;
    int n = -1;
    const char *p;

    if (s3_req_init(&r, (struct s3 *)st, "GET", NULL, "uploads", &e) < 0)
        return -1;
    if (s3_req_run(&r, &e) == 0 && r.x.status == 200 && r.x.resp != NULL) {
        n = 0;
        for (p = (const char *)r.x.resp; (p = strstr(p, "<Upload>")) != NULL; p++)
            n++;
    } else {
        diag("list uploads: status %ld %s", r.x.status, e.msg);
    }
    s3_req_free(&r);
    return n;
}

/* The server's first ListObjectsV2 page for a full prefix: its number of
 * keys (-1 on failure), and whether it says more follow. */
static int first_page(struct stor *st, const char *full_prefix, int *truncated)
{
    struct s3_req r;
    struct err e = ERR_INIT;
    char *enc = sigv4_uri_encode(full_prefix, 0), *query;
    const char *p;
    int n = -1;

    *truncated = 0;
    query = enc ? xasprintf("list-type=2&prefix=%s", enc) : NULL;
    free(enc);
    if (query == NULL)
        bail("%s", "out of memory");
    if (s3_req_init(&r, (struct s3 *)st, "GET", NULL, query, &e) < 0)
        bail("s3_req_init: %s", e.msg);
    if (s3_req_run(&r, &e) == 0 && r.x.status == 200 && r.x.resp != NULL) {
        n = 0;
        for (p = (const char *)r.x.resp; (p = strstr(p, "<Key>")) != NULL; p++)
            n++;
        *truncated = strstr((const char *)r.x.resp, "<IsTruncated>true</IsTruncated>") != NULL;
    } else {
        diag("list: status %ld %s", r.x.status, e.msg);
    }
    s3_req_free(&r);
    free(query);
    return n;
}

static long elapsed(uint64_t t0)
{
    return (long)(now_ms() - t0);
}

/* ---- the fault proxy's control port ---- */

/* Send one command, the reply (one line) into buf; 0 if it says OK. */
static int ctl_reply(const char *cmd, char *buf, size_t bufsz)
{
    struct sockaddr_in a;
    struct timeval tv = { 5, 0 };
    size_t n = 0;
    ssize_t r;
    int fd;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)ctl_port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    buf[0] = '\0';
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || dprintf(fd, "%s\n", cmd) < 0) {
        close(fd);
        return -1;
    }
    while (n + 1 < bufsz && (r = read(fd, buf + n, bufsz - 1 - n)) > 0) {
        n += (size_t)r;
        if (memchr(buf, '\n', n) != NULL)
            break;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    close(fd);
    return strncmp(buf, "OK", 2) == 0 ? 0 : -1;
}

static void ctl(const char *cmd)
{
    char buf[256];

    if (ctl_reply(cmd, buf, sizeof buf) < 0)
        bail("fault proxy refused a command: %s", cmd);
}

/* One counter of the proxy's status line, -1 if absent. */
static long fp_stat(const char *key)
{
    char buf[2048], pat[64];
    const char *p;

    if (ctl_reply("status", buf, sizeof buf) < 0)
        return -1;
    snprintf(pat, sizeof pat, " %s=", key);
    p = strstr(buf, pat);
    if (p == NULL)
        return -1;
    return strtol(p + strlen(pat), NULL, 10);
}

/* ---- bulk fill for the listing check: a few threads, one stor each ---- */

struct filler {
    pthread_t th;
    const struct region *R;
    const char *prefix;
    int from, step, n;
    int failed;
    char msg[ERR_MSG_MAX];
};

static void *fill_keys(void *arg)
{
    struct filler *f = arg;
    struct stor *s = open_c(f->R->name, f->R->name, bucket, f->prefix, "testing", f->R->endpoint, 1, &cfg);
    struct err e = ERR_INIT;
    char key[32];
    int i;

    for (i = f->from; i < f->n; i += f->step) {
        snprintf(key, sizeof key, "many/k%05d", i);
        /* listing, not publishing, is under test: skip the no-replace checks */
        if (put_buf_r(s, key, (const unsigned char *)"x", 1, 1, 1, &e) < 0) {
            f->failed = 1;
            snprintf(f->msg, sizeof f->msg, "%s", e.msg);
            break;
        }
    }
    stor_free(s);
    return NULL;
}

/* ---- functional checks, on one region ---- */

static void functional(const struct region *R, int nkeys)
{
    const char *N = R->name, *prefix = "drv/fn";
    struct stor *s = open_c(N, N, bucket, prefix, "testing", R->endpoint, 1, &cfg);
    struct err e = ERR_INIT;
    struct stor_stat st;
    uint64_t t0;
    long ms;
    int rc;

    ok(s3_create_bucket(s, &e) == 0, "%s: create bucket %s: %s", N, bucket, e.msg);
    err_clear(&e);
    ok(s3_create_bucket(s, &e) == 0, "%s: create bucket again (exists, ours): %s", N, e.msg);

    /* small object, written 4 bytes at a time */
    err_clear(&e);
    ok(put_buf(s, "wal/small", (const unsigned char *)small, strlen(small), 4, &e) == 0, "%s: small put: %s", N,
       e.msg);
    rc = head(s, "wal/small", &st, &e);
    ok(rc == 0 && st.size == strlen(small) && st.mtime > 1600000000 &&
       st.etag[0] != '\0', "%s: head small: size %" PRIu64 " mtime %ld etag %s %s", N, st.size, (long)st.mtime,
       st.etag, e.msg);
    ok(get_cmp(s, "wal/small", 0, STOR_TO_END, (const unsigned char *)small, strlen(small), &e) == 0,
       "%s: get small: %s", N, e.msg);
    ok(get_cmp(s, "wal/small", 7, 7, (const unsigned char *)small + 7, 7, &e) == 0, "%s: get range 7+7: %s", N,
       e.msg);
    ok(get_cmp(s, "wal/small", 7, STOR_TO_END, (const unsigned char *)small + 7, strlen(small) - 7, &e) == 0,
       "%s: get range 7 to the end: %s", N, e.msg);
    ok(get_cmp(s, "wal/small", 0, 100, (const unsigned char *)small, strlen(small), &e) == 0,
       "%s: get range past the end is clipped: %s", N, e.msg);
    ok(get_cmp(s, "wal/small", 100, STOR_TO_END, NULL, 0, &e) == 0, "%s: get range beyond the end gives nothing: %s",
       N, e.msg);

    /* empty object */
    err_clear(&e);
    ok(put_buf(s, "wal/empty", NULL, 0, 1, &e) == 0, "%s: empty put: %s", N, e.msg);
    rc = head(s, "wal/empty", &st, &e);
    ok(rc == 0 && st.size == 0, "%s: head empty: size %" PRIu64 " %s", N, st.size, e.msg);
    ok(get_cmp(s, "wal/empty", 0, STOR_TO_END, NULL, 0, &e) == 0, "%s: get empty: %s", N, e.msg);

    /* multipart: 4 parts of 5 MiB and a tail */
    t0 = now_ms();
    err_clear(&e);
    rc = put_buf(s, "backups/b1/part-0001", big, bign, 131071, &e);
    ms = elapsed(t0);
    ok(rc == 0, "%s: multipart put (4x5MiB+tail, %ld ms): %s", N, ms, e.msg);
    rc = head(s, "backups/b1/part-0001", &st, &e);
    ok(rc == 0 && st.size == bign && strstr(st.etag, "-5") != NULL,
       "%s: multipart head: size %" PRIu64 " etag %s %s", N, st.size, st.etag, e.msg);
    ok(get_cmp(s, "backups/b1/part-0001", 0, STOR_TO_END, big, bign, &e) == 0, "%s: multipart get: %s", N, e.msg);
    ok(get_cmp(s, "backups/b1/part-0001", PART - 10, 20, big + PART - 10, 20, &e) == 0,
       "%s: ranged get across a part boundary: %s", N, e.msg);
    ok(get_cmp(s, "backups/b1/part-0001", bign - 1000, STOR_TO_END, big + bign - 1000, 1000, &e) == 0,
       "%s: ranged get of the tail: %s", N, e.msg);
    err_clear(&e);
    ok(put_buf(s, "backups/b1/exact", big, PART, PART, &e) == 0, "%s: put of exactly one part: %s", N, e.msg);
    ok(head(s, "backups/b1/exact", &st, &e) == 0 && st.size == PART && st.etag[0] != '\0' &&
       strchr(st.etag, '-') == NULL, "%s: exactly one part is a single PutObject (etag %s)", N, st.etag);
    err_clear(&e);
    ok(put_buf(s, "backups/b1/onemore", big, PART + 1, 4096, &e) == 0, "%s: put of one part + 1 byte: %s", N,
       e.msg);
    ok(head(s, "backups/b1/onemore", &st, &e) == 0 && strstr(st.etag, "-2") != NULL,
       "%s: ... is two parts (etag %s)", N, st.etag);
    ok(get_cmp(s, "backups/b1/onemore", 0, STOR_TO_END, big, PART + 1, &e) == 0, "%s: ... content right: %s", N,
       e.msg);

    /* publishing never replaces: a second put fails, the object stands;
     * of two writers racing on one name exactly one wins (a single PUT and
     * a multipart upload, where the server has conditional writes or not) */
    {
        struct sink *a = NULL, *b = NULL;
        int ra, rb;

        err_clear(&e);
        ok(put_buf(s, "wal/small", (const unsigned char *)"other", 5, 5, &e) < 0 && e.code == ERR_EXISTS,
           "%s: a put over an existing object is refused: %s", N, e.msg);
        ok(get_cmp(s, "wal/small", 0, STOR_TO_END, (const unsigned char *)small, strlen(small), &e) == 0,
           "%s: ... and the object is unchanged: %s", N, e.msg);
        err_clear(&e);
        ok(put_buf(s, "backups/b1/part-0001", big + 1, bign - 1, 131071, &e) < 0 && e.code == ERR_EXISTS,
           "%s: a multipart put over an existing object is refused: %s", N, e.msg);
        ok(head(s, "backups/b1/part-0001", &st, &e) == 0 && st.size == bign, "%s: ... and it is unchanged", N);
        err_clear(&e);
        ra = stor_put(s, "wal/race", &a, &e) == 0 && sink_write(a, "aaa", 3, &e) == 0 ? 0 : -1;
        rb = stor_put(s, "wal/race", &b, &e) == 0 && sink_write(b, "bbbb", 4, &e) == 0 ? 0 : -1;
        ok(ra == 0 && rb == 0, "%s: two writers of one name", N);
        ra = sink_close(a, &e);
        rb = sink_close(b, &e);
        ok(ra == 0 && rb < 0 && e.code == ERR_EXISTS, "%s: the first to publish wins, the second is refused: %s", N,
           e.msg);
        sink_free(a);
        sink_free(b);
        ok(head(s, "wal/race", &st, &e) == 0 && st.size == 3, "%s: the winner's object stands", N);
        ok(stor_remove(s, "wal/race", &e) == 0, "%s: remove the race object", N);
    }

    /* an abandoned multipart upload is aborted */
    {
        struct sink *k = NULL;

        err_clear(&e);
        ok(stor_put(s, "backups/b1/abandoned", &k, &e) == 0, "%s: open an upload: %s", N, e.msg);
        ok(k != NULL && sink_write(k, big, 2 * (size_t)PART + 5, &e) == 0, "%s: write 2 parts and more: %s", N,
           e.msg);
        is_int(count_uploads(s), 1, "%s: one multipart upload in progress", N);
        sink_free(k);
        is_int(count_uploads(s), 0, "%s: sink_free without close aborted it", N);
        ok(head(s, "backups/b1/abandoned", &st, &e) < 0 && e.code == ERR_NOTFOUND,
           "%s: and left no object: %s", N, e.msg);
    }

    /* an upload whose writer was killed (never aborted) is swept by age */
    {
        struct s3_req r;
        uint64_t removed = 0;
        int made;

        err_clear(&e);
        made = s3_req_init(&r, (struct s3 *)s, "POST", "backups/b1/killed", "uploads", &e) == 0 &&
               s3_req_run(&r, &e) == 0 && r.x.status == 200;
        s3_req_free(&r);
        ok(made, "%s: a multipart upload left by a killed writer: %s", N, e.msg);
        ok(stor_sweep(s, time(NULL) + 60, &removed, &e) == 0 && removed == 0 && count_uploads(s) == 1,
           "%s: sweep leaves an upload younger than a day (%" PRIu64 " aborted): %s", N, removed, e.msg);
        ((struct s3 *)s)->sweep_min_age = 0;
        sleep(2);   /* Initiated has whole seconds */
        ok(stor_sweep(s, time(NULL) + 60, &removed, &e) == 0 && removed == 1,
           "%s: sweep past the age aborts it (%" PRIu64 " aborted): %s", N, removed, e.msg);
        is_int(count_uploads(s), 0, "%s: no multipart upload left", N);
        ((struct s3 *)s)->sweep_min_age = S3_SWEEP_MIN_AGE;
    }

    /* odd key characters */
    {
        const char *odd = "odd/a b$c~d+e=f&g%h\xc3\xa9(1),;:@!*'?#[x].txt";
        struct lctx lc;

        err_clear(&e);
        ok(put_buf(s, odd, (const unsigned char *)small, 5, 5, &e) == 0, "%s: odd key put: %s", N, e.msg);
        ok(get_cmp(s, odd, 0, STOR_TO_END, (const unsigned char *)small, 5, &e) == 0, "%s: odd key get: %s", N,
           e.msg);
        ok(head(s, odd, &st, &e) == 0 && st.size == 5, "%s: odd key head: %s", N, e.msg);
        lctx_init(&lc, NULL);
        err_clear(&e);
        rc = stor_list(s, "odd/a b$", lcb, &lc, &e);
        ok(rc == 0 && lc.n == 1 && strcmp(lc.last, odd) == 0,
           "%s: odd key listed by an odd prefix: %d %s %s", N, lc.n, lc.last, e.msg);
        lctx_init(&lc, NULL);
        err_clear(&e);
        rc = stor_list_after(s, "odd/", "odd/a b$c~d+e=f&g%h\xc3\xa9(1)", lcb, &lc, &e);
        ok(rc == 0 && lc.n == 1 && strcmp(lc.last, odd) == 0,
           "%s: odd key listed after an odd start-after key: %d %s %s", N, lc.n, lc.last, e.msg);
        lctx_init(&lc, NULL);
        err_clear(&e);
        rc = stor_list_after(s, "odd/", odd, lcb, &lc, &e);
        ok(rc == 0 && lc.n == 0, "%s: ... and not after itself: %d %s", N, lc.n, e.msg);
        err_clear(&e);
        ok(stor_remove(s, odd, &e) == 0 && head(s, odd, &st, &e) < 0 && e.code == ERR_NOTFOUND,
           "%s: odd key removed: %s", N, e.msg);
    }

    /* not found, remove */
    ok(head(s, "wal/nope", &st, &e) < 0 && e.code == ERR_NOTFOUND && e.http_status == 404,
       "%s: head of a missing key: ERR_NOTFOUND: %s", N, e.msg);
    ok(get_cmp(s, "wal/nope", 0, STOR_TO_END, NULL, 0, &e) == -1 && e.code == ERR_NOTFOUND && !e.transient,
       "%s: get of a missing key: ERR_NOTFOUND: %s", N, e.msg);
    err_clear(&e);
    ok(stor_remove(s, "wal/nope", &e) == 0, "%s: remove of a missing key succeeds: %s", N, e.msg);
    err_clear(&e);
    ok(stor_remove(s, "wal/small", &e) == 0, "%s: remove: %s", N, e.msg);
    ok(head(s, "wal/small", &st, &e) < 0 && e.code == ERR_NOTFOUND, "%s: removed key is gone: %s", N, e.msg);

    /* listing past one page, remove_many in batches */
    {
        struct filler f[16];
        const char **kp = calloc((size_t)nkeys + 1, sizeof *kp);
        char (*keys)[32] = calloc((size_t)nkeys + 1, sizeof *keys);
        struct lctx lc;
        int i, okp = 1, before;

        if (kp == NULL || keys == NULL)
            bail("%s", "out of memory");
        lctx_init(&lc, NULL);
        err_clear(&e);
        rc = stor_list(s, "", lcb, &lc, &e);
        ok(rc == 0 && lc.n >= 4 && lc.order_ok, "%s: list of the region before: %d keys: %s", N, lc.n, e.msg);
        before = lc.n;
        for (i = 0; i < nkeys; i++) {
            snprintf(keys[i], sizeof keys[i], "many/k%05d", i);
            kp[i] = keys[i];
        }
        t0 = now_ms();
        for (i = 0; i < nthreads; i++) {
            memset(&f[i], 0, sizeof f[i]);
            f[i].R = R;
            f[i].prefix = prefix;
            f[i].from = i;
            f[i].step = nthreads;
            f[i].n = nkeys;
            if (pthread_create(&f[i].th, NULL, fill_keys, &f[i]) != 0)
                bail("%s", "pthread_create failed");
        }
        for (i = 0; i < nthreads; i++) {
            pthread_join(f[i].th, NULL);
            if (f[i].failed) {
                okp = 0;
                diag("%s", f[i].msg);
            }
        }
        ok(okp, "%s: %d small puts (%d threads, %ld ms)", N, nkeys, nthreads, elapsed(t0));
        lctx_init(&lc, "many/");
        t0 = now_ms();
        err_clear(&e);
        rc = stor_list(s, "many/", lcb, &lc, &e);
        ms = elapsed(t0);
        ok(rc == 0 && lc.n == nkeys && lc.order_ok && lc.only_prefix && strcmp(lc.last, keys[nkeys - 1]) == 0,
           "%s: list of %d keys past the first page: n=%d ordered=%d last=%s (%ld ms) %s", N, nkeys, lc.n,
           lc.order_ok, lc.last, ms, e.msg);
        {
            int trunc, n1 = first_page(s, "drv/fn/many/", &trunc);

            ok(n1 > 0 && n1 < nkeys && trunc, "%s: ... the server's first page held %d of them (truncated: %d)", N, n1,
               trunc);
        }
        lctx_init(&lc, "many/");
        err_clear(&e);
        rc = stor_list_after(s, "many/", keys[10], lcb, &lc, &e);
        ok(rc == 0 && lc.n == nkeys - 11 && lc.order_ok && lc.only_prefix && strcmp(lc.last, keys[nkeys - 1]) == 0,
           "%s: list after %s, past the first page: n=%d (want %d) ordered=%d last=%s %s", N, keys[10], lc.n,
           nkeys - 11, lc.order_ok, lc.last, e.msg);
        lctx_init(&lc, NULL);
        err_clear(&e);
        rc = stor_list(s, "", lcb, &lc, &e);
        ok(rc == 0 && lc.n == nkeys + before && lc.order_ok, "%s: list of everything: %d keys (want %d): %s", N,
           lc.n, nkeys + before, e.msg);
        t0 = now_ms();
        err_clear(&e);
        rc = stor_remove_many(s, kp, (size_t)nkeys, &e);
        ms = elapsed(t0);
        ok(rc == 0, "%s: remove_many of %d keys (%d batches, %ld ms): %s", N, nkeys,
           (nkeys + S3_DELETE_BATCH - 1) / S3_DELETE_BATCH, ms, e.msg);
        lctx_init(&lc, NULL);
        err_clear(&e);
        rc = stor_list(s, "many/", lcb, &lc, &e);
        ok(rc == 0 && lc.n == 0, "%s: all gone: %d left %s", N, lc.n, e.msg);
        err_clear(&e);
        ok(stor_remove_many(s, kp, 3, &e) == 0, "%s: remove_many of missing keys succeeds: %s", N, e.msg);
        free(kp);
        free(keys);
    }

    /* virtual-hosted style: BUCKET.s3.localhost */
    {
        char vep[64];
        struct stor *v;
        struct lctx lc;
        const char *k1[] = { "vh/a b" };

        snprintf(vep, sizeof vep, "http://s3.localhost:%d", R->port);
        v = open_c(N, N, bucket, prefix, "testing", vep, 0, &cfg);
        ok(head(v, "backups/b1/exact", &st, &e) == 0 && st.size == PART, "%s: virtual-hosted head: %s", N, e.msg);
        err_clear(&e);
        ok(put_buf(v, "vh/a b", big, PART + 7, MiB, &e) == 0, "%s: virtual-hosted multipart put: %s", N,
           e.msg);
        lctx_init(&lc, NULL);
        err_clear(&e);
        rc = stor_list(v, "vh/", lcb, &lc, &e);
        ok(rc == 0 && lc.n == 1, "%s: virtual-hosted list: %d %s", N, lc.n, e.msg);
        ok(get_cmp(s, "vh/a b", 0, STOR_TO_END, big, PART + 7, &e) == 0,
           "%s: virtual-hosted object read path style: %s", N, e.msg);
        err_clear(&e);
        ok(stor_remove_many(v, k1, 1, &e) == 0 && head(s, "vh/a b", &st, &e) < 0 && e.code == ERR_NOTFOUND,
           "%s: virtual-hosted remove_many: %s", N, e.msg);
        stor_free(v);
    }
    is_int(count_uploads(s), 0, "%s: no multipart upload left behind", N);
    stor_free(s);
}

/* ---- error mapping, on one region ---- */

static void errors(const struct region *R)
{
    const char *N = R->name, *prefix = "drv/fn";
    struct stor *bad;
    struct err e = ERR_INIT;
    struct stor_stat st;
    struct lctx lc;
    char want[96], name[64];

    /* wrong secret; the region's name is not its SigV4 region, to see
     * which one the messages give */
    snprintf(name, sizeof name, "%s-badkey", N);
    snprintf(want, sizeof want, "region %s (bucket %s)", name, bucket);
    bad = open_c(name, N, bucket, prefix, "wrong-secret", R->endpoint, 1, &cfg);
    ok(head(bad, "backups/b1/exact", &st, &e) < 0 && e.code == ERR_AUTH && !e.transient,
       "%s: head with a wrong secret: ERR_AUTH: %s", N, e.msg);
    err_clear(&e);
    ok(put_buf(bad, "wal/x", (const unsigned char *)"x", 1, 1, &e) < 0 && e.code == ERR_AUTH && e.http_status == 403 &&
       !e.transient, "%s: put with a wrong secret: ERR_AUTH, 403: %s", N, e.msg);
    like(e.msg, "signature does not match", "%s: ... the message says the signature does not match", N);
    like(e.msg, want, "%s: ... and names the region and the bucket", N);
    ok(get_cmp(bad, "backups/b1/exact", 0, STOR_TO_END, NULL, 0, &e) == -1 && e.code == ERR_AUTH,
       "%s: get with a wrong secret: ERR_AUTH: %s", N, e.msg);
    lctx_init(&lc, NULL);
    err_clear(&e);
    ok(stor_list(bad, "", lcb, &lc, &e) < 0 && e.code == ERR_AUTH && lc.n == 0,
       "%s: list with a wrong secret: ERR_AUTH: %s", N, e.msg);
    stor_free(bad);

    /* requests signed for the other region (credential scope) */
    bad = open_c(N, R->other, bucket, prefix, "testing", R->endpoint, 1, &cfg);
    err_clear(&e);
    ok(put_buf(bad, "wal/x", (const unsigned char *)"x", 1, 1, &e) < 0 && e.code == ERR_AUTH && !e.transient,
       "%s: put signed for %s: ERR_AUTH: %s", N, R->other, e.msg);
    like(e.msg, "region mismatch", "%s: ... the message says the region does not match", N);
    snprintf(want, sizeof want, "signed for region %s but the bucket expects %s", R->other, N);
    like(e.msg, want, "%s: ... and names both regions", N);
    snprintf(want, sizeof want, "region %s", N);
    ok(head(bad, "backups/b1/exact", &st, &e) < 0 && e.code == ERR_AUTH,
       "%s: head signed for %s: ERR_AUTH: %s", N, R->other, e.msg);
    stor_free(bad);

    /* missing bucket */
    bad = open_c(N, N, "nobucket", prefix, "testing", R->endpoint, 1, &cfg);
    err_clear(&e);
    ok(put_buf(bad, "wal/x", (const unsigned char *)"x", 1, 1, &e) < 0 && e.code == ERR_NOBUCKET && !e.transient,
       "%s: put to a missing bucket: ERR_NOBUCKET: %s", N, e.msg);
    like(e.msg, "nobucket", "%s: ... the message names the bucket", N);
    ok(head(bad, "wal/x", &st, &e) < 0 && e.code == ERR_NOBUCKET, "%s: head in a missing bucket: ERR_NOBUCKET: %s",
       N, e.msg);
    ok(get_cmp(bad, "wal/x", 0, STOR_TO_END, NULL, 0, &e) == -1 && e.code == ERR_NOBUCKET,
       "%s: get from a missing bucket: ERR_NOBUCKET: %s", N, e.msg);
    lctx_init(&lc, NULL);
    err_clear(&e);
    ok(stor_list(bad, "", lcb, &lc, &e) < 0 && e.code == ERR_NOBUCKET, "%s: list of a missing bucket: ERR_NOBUCKET: %s",
       N, e.msg);
    err_clear(&e);
    ok(stor_remove(bad, "wal/x", &e) < 0 && e.code == ERR_NOBUCKET, "%s: remove in a missing bucket: ERR_NOBUCKET: %s",
       N, e.msg);
    err_clear(&e);
    ok(put_buf(bad, "wal/x", big, PART + 10, MiB, &e) < 0 && e.code == ERR_NOBUCKET,
       "%s: multipart put to a missing bucket: ERR_NOBUCKET: %s", N, e.msg);
    stor_free(bad);

    /* a user without access; no credentials; credentials from the environment */
    {
        struct region_conf rc;
        struct stor *rd = NULL;
        char url[256];

        mkrc(&rc, N, N, bucket, prefix, "reading", R->endpoint, 1, url, sizeof url);
        rc.access_key_id = "test:reader";
        err_clear(&e);
        if (stor_open(&rc, &cfg, &test_notes, &rd, &e) < 0)
            bail("s3_open: %s", e.msg);
        err_clear(&e);
        ok(put_buf(rd, "wal/x", (const unsigned char *)"x", 1, 1, &e) < 0 && e.code == ERR_AUTH,
           "%s: put by a user without access: ERR_AUTH: %s", N, e.msg);
        ok(head(rd, "backups/b1/exact", &st, &e) < 0 && e.code == ERR_AUTH,
           "%s: head by a user without access: ERR_AUTH: %s", N, e.msg);
        stor_free(rd);
        rd = NULL;

        rc.access_key_id = NULL;
        rc.secret_access_key = NULL;
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
        err_clear(&e);
        ok(stor_open(&rc, &cfg, &test_notes, &rd, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, want) != NULL &&
               rd == NULL,
           "%s: no credentials: ERR_CONFIG naming the region: %s", N, e.msg);
        stor_free(rd);
        rd = NULL;
        rc.access_key_id = "test:tester";
        err_clear(&e);
        ok(stor_open(&rc, &cfg, &test_notes, &rd, &e) < 0 && e.code == ERR_CONFIG,
           "%s: access key without secret: ERR_CONFIG: %s", N, e.msg);
        stor_free(rd);
        rd = NULL;
        rc.access_key_id = NULL;
        setenv("AWS_ACCESS_KEY_ID", "test:tester", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
        err_clear(&e);
        ok(stor_open(&rc, &cfg, &test_notes, &rd, &e) == 0, "%s: open with credentials from the environment: %s", N,
           e.msg);
        ok(rd != NULL && head(rd, "backups/b1/exact", &st, &e) == 0 && st.size == PART,
           "%s: credentials from the environment work: %s", N, e.msg);
        stor_free(rd);
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
    }
}

/* ---- faults, through the proxy in front of region A ---- */

/* A sink that replaces the object it is downloading on its first write. */
struct rep_sink {
    struct sink base;
    struct stor *other;
    const unsigned char *alt;
    size_t n, got;
    int fired;
};

static int rep_write(struct sink *k, const void *b, size_t n, struct err *e)
{
    struct rep_sink *r = (struct rep_sink *)k;

    (void)b;
    r->got += n;
    if (!r->fired) {
        r->fired = 1;
        if (put_buf_r(r->other, "f/big", r->alt, r->n, MiB, 1, e) < 0) {
            diag("replacing f/big failed: %s", e->msg);
            return -1;
        }
    }
    return 0;
}

static int rep_close(struct sink *k, struct err *e)
{
    (void)k;
    (void)e;
    return 0;
}

static void rep_free(struct sink *k)
{
    (void)k;
}

static const struct sink_ops rep_ops = { rep_write, rep_close, rep_free };

/* A sink that checks every byte against the expected object as it comes:
 * a byte seen twice or out of place is caught. */
struct cmp_sink {
    struct sink base;
    const unsigned char *want;
    size_t n, got;
    int bad;
};

static int cmp_write(struct sink *k, const void *b, size_t n, struct err *e)
{
    struct cmp_sink *c = (struct cmp_sink *)k;

    (void)e;
    if (c->got + n > c->n || memcmp(b, c->want + c->got, n) != 0)
        c->bad = 1;
    c->got += n;
    return 0;
}

static const struct sink_ops cmp_ops = { cmp_write, rep_close, rep_free };

static void faults(const struct region *A, int fport)
{
    const char *prefix = "drv/fault";
    struct config fcfg = cfg, scfg;
    char pep[64];
    struct stor *s, *p, *ps;
    struct err e = ERR_INIT;
    struct stor_stat st;
    const size_t fsz = 2 * (size_t)PART + 300000;  /* 3 parts */
    char fbucket[80];
    long n0, n1, ms;
    uint64_t t0;
    int rc;

    /* A bucket of its own: these checks may run beside functional(A). */
    snprintf(fbucket, sizeof fbucket, "%s-f", bucket);
    snprintf(pep, sizeof pep, "http://127.0.0.1:%d", fport);
    s = open_c("direct", A->name, fbucket, prefix, "testing", A->endpoint, 1, &cfg);
    fcfg.io_timeout = 2;            /* stalls are cut after 2 s */
    p = open_c("proxied", A->name, fbucket, prefix, "testing", pep, 1, &fcfg);
    scfg = fcfg;                    /* and a short deadline, for giving up */
    scfg.retry_deadline = 3;
    ps = open_c("proxied-short", A->name, fbucket, prefix, "testing", pep, 1, &scfg);
    ctl("clear");
    ok(s3_create_bucket(s, &e) == 0, "fault: create bucket %s: %s", fbucket, e.msg);

    err_clear(&e);
    ok(put_buf(s, "f/big", big, fsz, 100000, &e) == 0, "fault: multipart put of 3 parts, direct: %s", e.msg);

    n0 = fp_stat("errors");
    ctl("error 2 503");
    ok(get_cmp(p, "f/big", 0, STOR_TO_END, big, fsz, &e) == 0, "fault: get after 2x 503 SlowDown: %s", e.msg);
    is_int(fp_stat("errors") - n0, 2, "fault: ... the proxy answered 2 SlowDowns");
    n0 = fp_stat("errors");
    ctl("error 1 500");
    ok(head(p, "f/big", &st, &e) == 0 && st.size == fsz, "fault: head after a 500 InternalError: %s", e.msg);
    is_int(fp_stat("errors") - n0, 1, "fault: ... the proxy answered 1 500");
    /* the HEAD says 404 and the GET that should say why finds the object:
     * written between the two (the stop segment a backup-push polls for) */
    n0 = fp_stat("errors");
    ctl("error 1 404");
    ok(head(p, "f/big", &st, &e) == 0 && st.size == fsz,
       "fault: a HEAD's 404 whose 1-byte GET finds the object: asked again, found: %s", e.msg);
    is_int(fp_stat("errors") - n0, 1, "fault: ... the proxy answered 1 404");

    n0 = fp_stat("truncations");
    ctl("truncate 1 3000000");
    ok(get_cmp(p, "f/big", 0, STOR_TO_END, big, fsz, &e) == 0, "fault: get resumes after a truncated body: %s",
       e.msg);
    is_int(fp_stat("truncations") - n0, 1, "fault: ... the proxy cut one response");

    /* A Complete whose answer is lost and whose retry finds the upload gone
     * (NoSuchUpload): accepted only when the object is the one the parts
     * make (size, and the ETag from the parts' MD5s). */
    n0 = fp_stat("errors");
    ctl("lose ?uploadId= forward 404 NoSuchUpload");
    ok(put_buf(p, "f/retried", big, fsz, 100000, &e) == 0, "fault: a retried Complete that finds its first attempt "
       "done is accepted: %s", e.msg);
    is_int(fp_stat("errors") - n0, 1, "fault: ... the retry was answered NoSuchUpload");
    ok(get_cmp(s, "f/retried", 0, STOR_TO_END, big, fsz, &e) == 0, "fault: ... and the object is whole: %s", e.msg);
    ok(put_buf_r(s, "f/other", big + 1, fsz, 100000, 1, &e) == 0, "fault: another 3-part object: %s", e.msg);
    ctl("lose ?uploadId= drop 404 NoSuchUpload");
    rc = put_buf_r(p, "f/other", big, fsz, 100000, 1, &e);
    ok(rc < 0 && strstr(e.msg, "NoSuchUpload") != NULL, "fault: a retried Complete that finds another object "
       "of as many parts fails: %s", e.msg);
    ctl("clear");
    err_clear(&e);

    /* checksum = sha256: Swift refuses ChecksumSHA256 in the Complete body
     * (MalformedXML); the driver completes without and goes on with
     * Content-MD5, which Swift checks */
    {
        struct region_conf crc;
        char url[256];
        struct stor *cs = NULL;

        mkrc(&crc, "sha256", A->name, fbucket, prefix, "testing", A->endpoint, 1, url, sizeof url);
        crc.checksum = "sha256";
        if (stor_open(&crc, &cfg, &test_notes, &cs, &e) < 0)
            bail("s3_open: %s", e.msg);
        ok(((struct s3 *)cs)->checksum == S3_CHECKSUM_SHA256, "checksum = sha256: the driver starts with SHA-256");
        ok(put_buf(cs, "f/sum1", big, fsz, 100000, &e) == 0, "checksum = sha256: a multipart upload to Swift "
           "completes: %s", e.msg);
        ok(((struct s3 *)cs)->no_part_checksums && ((struct s3 *)cs)->checksum == S3_CHECKSUM_MD5,
           "... without the part checksums, and Content-MD5 from then on");
        ok(put_buf(cs, "f/sum2", big, fsz, 100000, &e) == 0 && get_cmp(s, "f/sum2", 0, STOR_TO_END, big, fsz, &e) == 0,
           "... the next multipart upload completes at once and reads back: %s", e.msg);
        ok(get_cmp(s, "f/sum1", 0, STOR_TO_END, big, fsz, &e) == 0, "... and so does the first: %s", e.msg);
        stor_free(cs);
        err_clear(&e);
    }
    ctl("truncate 2 1000");
    ok(get_cmp(p, "f/big", MiB, PART, big + MiB, PART, &e) == 0,
       "fault: ranged get resumes after 2 truncations: %s", e.msg);
    /* every answer cut: the get must fail, not hand over a short object, and
     * never give a byte twice */
    {
        struct cmp_sink cs;

        memset(&cs, 0, sizeof cs);
        cs.base.ops = &cmp_ops;
        cs.want = big;
        cs.n = fsz;
        n0 = fp_stat("truncations");
        ctl("truncate 1000 100000");
        err_clear(&e);
        t0 = now_ms();
        rc = stor_get(ps, "f/big", &cs.base, &e);
        ms = elapsed(t0);
        ok(rc < 0 && e.transient && cs.got < fsz,
           "fault: every response truncated: the get fails (transient) after %ld ms, %zu of %zu bytes seen: %s",
           ms, cs.got, fsz, e.msg);
        n1 = fp_stat("truncations") - n0;
        ok(!cs.bad && cs.got >= 100000 && n1 >= 2,
           "fault: ... what was delivered is the object's start, each byte once (%zu bytes, %ld truncations)",
           cs.got, n1);
        ctl("pass");
    }

    n0 = fp_stat("resets");
    ctl("reset 2");
    err_clear(&e);
    ok(put_buf(p, "f/small", (const unsigned char *)small, strlen(small), 3, &e) == 0,
       "fault: small put after 2 connection resets: %s", e.msg);
    is_int(fp_stat("resets") - n0, 2, "fault: ... the proxy reset 2 requests");
    ok(get_cmp(s, "f/small", 0, STOR_TO_END, (const unsigned char *)small, strlen(small), &e) == 0,
       "fault: ... content right: %s", e.msg);
    ctl("error 3 503");
    err_clear(&e);
    ok(put_buf(p, "f/big2", big, fsz, 65536, &e) == 0, "fault: multipart put with 3x 503 on the way: %s", e.msg);
    ok(get_cmp(s, "f/big2", 0, STOR_TO_END, big, fsz, &e) == 0, "fault: ... content right: %s", e.msg);
    ctl("reset 3");
    err_clear(&e);
    ok(put_buf(p, "f/big3", big, fsz, 65536, &e) == 0, "fault: multipart put with 3 resets: %s", e.msg);
    ok(get_cmp(s, "f/big3", 0, STOR_TO_END, big, fsz, &e) == 0, "fault: ... content right: %s", e.msg);

    /* faults while parts are in flight */
    {
        static const char *const fl[] = { "error 2 503", "reset 2", "error 1 500", "stall 1" };
        size_t fi;

        for (fi = 0; fi < sizeof fl / sizeof fl[0]; fi++) {
            struct sink *k = NULL;
            size_t off = 0, half = PART + 300000;

            err_clear(&e);
            (void)stor_remove(s, "f/mid", &e);
            rc = stor_put(p, "f/mid", &k, &e);
            while (rc == 0 && off < fsz) {
                size_t c = fsz - off < 65536 ? fsz - off : 65536;

                if (off < half && off + c >= half)
                    ctl(fl[fi]);
                rc = sink_write(k, big + off, c, &e);
                off += c;
            }
            if (rc == 0)
                rc = sink_close(k, &e);
            sink_free(k);
            ok(rc == 0, "fault: multipart put with '%s' while parts fly: %s", fl[fi], e.msg);
            ok(get_cmp(s, "f/mid", 0, STOR_TO_END, big, fsz, &e) == 0 && head(s, "f/mid", &st, &e) == 0 &&
               strstr(st.etag, "-3") != NULL, "fault: ... content right, 3 parts (etag %s): %s", st.etag, e.msg);
            ctl("pass");
        }
    }

    /* the object replaced while a download is resumed: If-Match refuses */
    {
        unsigned char *alt = malloc(fsz);
        struct rep_sink rs;
        if (alt == NULL)
            bail("%s", "out of memory");
        fill(alt, fsz, 99);
        memset(&rs, 0, sizeof rs);
        rs.base.ops = &rep_ops;
        rs.other = s;
        rs.alt = alt;
        rs.n = fsz;
        ctl("truncate 1 3000000");
        err_clear(&e);
        rc = stor_get(p, "f/big", &rs.base, &e);
        ok(rc < 0 && rs.fired && rs.got <= 3000000 && e.http_status == 412,
           "fault: object replaced mid-download: the resume is refused, %zu bytes seen: %s", rs.got, e.msg);
        ctl("pass");
        free(alt);
    }

    /* a silent connection is cut by io_timeout and the request retried */
    n0 = fp_stat("stalls");
    ctl("stall 1");
    t0 = now_ms();
    rc = head(p, "f/small", &st, &e);
    ms = elapsed(t0);
    ok(rc == 0 && st.size == strlen(small), "fault: head after a stall (io_timeout %llus): %s",
       (unsigned long long)fcfg.io_timeout, e.msg);
    {
        is_int(fp_stat("stalls") - n0, 1, "fault: ... the proxy swallowed one request");
        ok(ms >= (long)fcfg.io_timeout * 1000 - 300 && ms < (long)fcfg.io_timeout * 1000 + 8000,
           "fault: ... it took about io_timeout: %ld ms", ms);
    }
    ctl("pass");

    /* 503 forever: give up at the deadline, transient */
    n0 = fp_stat("errors");
    ctl("error 1000 503");
    t0 = now_ms();
    {
        int r0, g0, r1, g1;

        seen_counts(&r0, &g0);
        rc = head(ps, "f/small", &st, &e);
        ms = elapsed(t0);
        ok(rc < 0 && e.transient && e.http_status == 503 && e.code != ERR_NOTFOUND,
           "fault: 503 forever: transient error after %ld ms: %s", ms, e.msg);
        ok(ms >= 2000 && ms < 3000 + 5000, "fault: ... gave up at the 3 s retry deadline (%ld ms)", ms);
        n1 = fp_stat("errors") - n0;
        ok(n1 >= 3, "fault: ... after retrying (%ld attempts)", n1);
        seen_counts(&r1, &g1);
        ok(r1 - r0 >= 2 && r1 - r0 < n1 && g1 - g0 == 1,
           "fault: ... each retry (%d) and the giving up (%d) reported to the driver's note sink", r1 - r0, g1 - g0);
    }
    ctl("pass");
    n0 = fp_stat("errors");
    ctl("error 1000 503");
    err_clear(&e);
    t0 = now_ms();
    rc = put_buf(ps, "f/never", (const unsigned char *)small, strlen(small), 100, &e);
    ms = elapsed(t0);
    ok(rc < 0 && e.transient && e.http_status == 503, "fault: put with 503 forever: transient after %ld ms: %s", ms,
       e.msg);
    ctl("pass");
    ok(head(s, "f/never", &st, &e) < 0 && e.code == ERR_NOTFOUND, "fault: ... and no object: %s", e.msg);

    /* the region goes dark */
    ctl("dark");
    t0 = now_ms();
    {
        rc = head(ps, "f/small", &st, &e);
        ms = elapsed(t0);
        ok(rc < 0 && e.transient && e.code == ERR_NET, "fault: dark region: ERR_NET, transient, after %ld ms: %s", ms,
           e.msg);
        ok(ms < 3000 + 5000, "fault: ... within the retry deadline (%ld ms)", ms);
        err_clear(&e);
    }
    ctl("up");
    ctl("clear");
    ok(head(p, "f/small", &st, &e) == 0, "fault: back up: head works again: %s", e.msg);

    is_int(count_uploads(s), 0, "fault: no multipart upload left behind");
    {
        const char *ks[] = { "f/big", "f/big2", "f/big3", "f/mid", "f/small" };

        err_clear(&e);
        ok(stor_remove_many(s, ks, 5, &e) == 0, "fault: clean up: %s", e.msg);
    }
    stor_free(ps);
    stor_free(p);
    stor_free(s);
}

/* ---- TLS: https swift-proxy of region A with a self-signed certificate ---- */

static void tls(const struct region *A, int port, const char *ca_file)
{
    struct config tcfg = cfg;
    struct region_conf rc;
    struct stor *s = NULL;
    struct err e = ERR_INIT;
    struct stor_stat st;
    char ep[64], url[256];
    size_t n = 2 * (size_t)PART + 99;

    tcfg.parallel = 3;
    tcfg.retry_deadline = 5;
    snprintf(ep, sizeof ep, "https://127.0.0.1:%d", port);
    mkrc(&rc, "tls", A->name, bucket, "drv/tls", "testing", ep, 1, url, sizeof url);

    s = NULL;
    if (stor_open(&rc, &tcfg, &test_notes, &s, &e) < 0)
        bail("s3_open: %s", e.msg);
    ok(head(s, "x", &st, &e) < 0 && e.code == ERR_NET && !e.transient,
       "tls: unknown certificate authority: refused at once, not transient: %s", e.msg);
    stor_free(s);

    rc.ca_file = (char *)ca_file;
    rc.unsigned_payload = 1;
    s = NULL;
    if (stor_open(&rc, &tcfg, &test_notes, &s, &e) < 0)
        bail("s3_open: %s", e.msg);
    {
        struct s3_req r;

        if (s3_req_init(&r, (struct s3 *)s, "PUT", "k", NULL, &e) < 0)
            bail("s3_req_init: %s", e.msg);
        s3_req_body(&r, "abc", 3);
        is_str(r.payload_hash, "UNSIGNED-PAYLOAD", "tls: unsigned_payload over https signs UNSIGNED-PAYLOAD");
        s3_req_free(&r);
    }
    err_clear(&e);
    ok(stor_put_buf(s, "small", "hello", 5, &e) == 0, "tls: https put with ca_file (unsigned payload): %s", e.msg);
    err_clear(&e);
    ok(put_buf(s, "big", big, n, MiB, &e) == 0, "tls: https multipart put (unsigned payload): %s", e.msg);
    ok(get_cmp(s, "big", 0, STOR_TO_END, big, n, &e) == 0, "tls: https get: %s", e.msg);
    ok(get_cmp(s, "big", PART - 3, 6, big + PART - 3, 6, &e) == 0, "tls: https ranged get: %s", e.msg);
    stor_free(s);

    /* virtual-hosted over https: the certificate names *.s3.localhost */
    snprintf(ep, sizeof ep, "https://s3.localhost:%d", port);
    rc.endpoint = ep;
    rc.path_style = 0;
    rc.unsigned_payload = 0;
    s = NULL;
    if (stor_open(&rc, &tcfg, &test_notes, &s, &e) < 0)
        bail("s3_open: %s", e.msg);
    ok(head(s, "big", &st, &e) == 0 && st.size == n, "tls: https virtual-hosted head (%s.s3.localhost): %s", bucket,
       e.msg);
    {
        const char *ks[] = { "big", "small" };

        err_clear(&e);
        ok(stor_remove_many(s, ks, 2, &e) == 0 && head(s, "small", &st, &e) < 0 && e.code == ERR_NOTFOUND,
           "tls: https remove_many: %s", e.msg);
    }
    stor_free(s);

    /* plain http: unsigned_payload is not honoured */
    rc.endpoint = (char *)A->endpoint;
    rc.path_style = 1;
    rc.unsigned_payload = 1;
    s = NULL;
    if (stor_open(&rc, &tcfg, &test_notes, &s, &e) < 0)
        bail("s3_open: %s", e.msg);
    {
        struct s3_req r;

        if (s3_req_init(&r, (struct s3 *)s, "PUT", "k", NULL, &e) < 0)
            bail("s3_req_init: %s", e.msg);
        s3_req_body(&r, "abc", 3);
        ok(strcmp(r.payload_hash, "UNSIGNED-PAYLOAD") != 0 && strlen(r.payload_hash) == 64,
           "tls: unsigned_payload is ignored over plain http (payload hash %s)", r.payload_hash);
        s3_req_free(&r);
    }
    stor_free(s);
}

/* ---- sections run side by side: a child process per section, its TAP
 * output kept in a file and replayed (renumbered) by the parent ---- */

struct child {
    const char *what;
    pid_t pid;
    FILE *out;
};

static const struct region *child_region;
static int child_nkeys, child_fport;

static void run_b(void)
{
    uint64_t t0 = now_ms();

    functional(child_region, child_nkeys);
    diag("functional checks on %s: %ld ms", child_region->name, elapsed(t0));
}

static void run_faults(void)
{
    uint64_t t0 = now_ms();

    faults(child_region, child_fport);
    diag("fault checks: %ld ms", elapsed(t0));
}

static void spawn(struct child *c, const char *what, void (*fn)(void))
{
    c->what = what;
    c->out = tmpfile();
    if (c->out == NULL)
        bail("tmpfile: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    c->pid = fork();
    if (c->pid < 0)
        bail("fork: %s", strerror(errno));
    if (c->pid == 0) {
        if (dup2(fileno(c->out), STDOUT_FILENO) < 0)
            _exit(99);
        tap_n = 0;
        tap_failed = 0;
        int rc;

        fn();
        rc = done_testing();
        fflush(stdout);
        _exit(rc);
    }
}

/* Wait for the child and replay its results as ours. */
static void reap(struct child *c)
{
    char line[4096];
    int status = 0, n = 0, plan = -1;

    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
        ;
    rewind(c->out);
    while (fgets(line, sizeof line, c->out) != NULL) {
        char *text;

        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "ok ", 3) == 0 || strncmp(line, "not ok ", 7) == 0) {
            text = strstr(line, " - ");
            n++;
            ok(line[0] == 'o', "%s", text ? text + 3 : line);
        } else if (strncmp(line, "1..", 3) == 0) {
            plan = (int)strtol(line + 3, NULL, 10);
        } else {
            printf("%s\n", line);
        }
    }
    fclose(c->out);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && n == plan && n > 0,
       "%s: the child process ran its %d checks and exited 0 (status %d, %d results)", c->what, plan, status, n);
}

int main(void)
{
    struct region A = { "us-east-1", "eu-west-1", 0, "" }, B = { "eu-west-1", "us-east-1", 0, "" };
    const char *v, *ca;
    int nkeys_a, nkeys_b, fport, tport, serial;
    struct child cb, cf;
    uint64_t t0;

    A.port = env_int("S3_PORT_A", 0);
    B.port = env_int("S3_PORT_B", 0);
    if (A.port == 0 || B.port == 0) {
        printf("1..0 # SKIP S3_PORT_A and S3_PORT_B are not set (run s3_driver_test.sh)\n");
        return 0;
    }
    snprintf(A.endpoint, sizeof A.endpoint, "http://127.0.0.1:%d", A.port);
    snprintf(B.endpoint, sizeof B.endpoint, "http://127.0.0.1:%d", B.port);
    if ((v = getenv("S3_BUCKET")) != NULL && v[0] != '\0')
        bucket = v;
    nkeys_a = env_int("S3_KEYS_A", 1100);
    nkeys_b = env_int("S3_KEYS_B", 1100);
    nthreads = env_int("S3_THREADS", 4);
    if (nthreads < 1 || nthreads > 16)
        bail("%s", "S3_THREADS must be 1 to 16");
    if ((v = getenv("S3_SECTIONS")) != NULL && v[0] != '\0')
        sections = v;
    serial = env_int("S3_SERIAL", 0);
    if (nkeys_a < 2 || nkeys_b < 2)
        bail("%s", "S3_KEYS_A and S3_KEYS_B must be at least 2");
    fport = env_int("S3_FAULT_PORT", 0);
    ctl_port = env_int("S3_FAULT_CONTROL", 0);
    tport = env_int("S3_TLS_PORT", 0);
    ca = getenv("S3_CA_FILE");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");

    log_init("s3_driver_test", getenv("DEBUG") ? LOG_DEBUG : LOG_WARNING);
    memset(&cfg, 0, sizeof cfg);
    cfg.parallel = 2;
    cfg.retry_deadline = 20;
    cfg.connect_timeout = 5;
    cfg.io_timeout = 5;
    big = malloc(bign);
    if (big == NULL)
        bail("%s", "out of memory");
    fill(big, bign, 42);

    /* Region B's checks and the fault checks (mostly waiting on timers)
     * run in child processes beside region A's: the servers are separate,
     * so is the fault checks' bucket. */
    if (section("b")) {
        child_region = &B;
        child_nkeys = nkeys_b;
        if (serial)
            cb.pid = 0;
        else
            spawn(&cb, "functional checks on eu-west-1", run_b);
    }
    if (!section("fault")) {
    } else if (fport != 0 && ctl_port != 0) {
        if (!serial) {
            child_region = &A;
            child_fport = fport;
            spawn(&cf, "fault checks", run_faults);
        }
    } else {
        diag("fault checks skipped: S3_FAULT_PORT and S3_FAULT_CONTROL are not set");
    }
    if (section("a")) {
        t0 = now_ms();
        functional(&A, nkeys_a);
        diag("functional checks on %s: %ld ms", A.name, elapsed(t0));
    }
    if (section("b")) {
        if (serial) {
            t0 = now_ms();
            functional(&B, nkeys_b);
            diag("functional checks on %s: %ld ms", B.name, elapsed(t0));
        } else {
            reap(&cb);
        }
    }
    if (section("err")) {
        t0 = now_ms();
        errors(&A);
        errors(&B);
        diag("error checks: %ld ms", elapsed(t0));
    }
    if (section("fault") && fport != 0 && ctl_port != 0) {
        if (serial) {
            t0 = now_ms();
            faults(&A, fport);
            diag("fault checks: %ld ms", elapsed(t0));
        } else {
            reap(&cf);
        }
    }
    if (!section("tls")) {
    } else if (tport != 0 && ca != NULL && ca[0] != '\0') {
        t0 = now_ms();
        tls(&A, tport, ca);
        diag("TLS checks: %ld ms", elapsed(t0));
    } else {
        diag("TLS checks skipped: S3_TLS_PORT and S3_CA_FILE are not set");
    }
    free(big);
    return done_testing();
}
