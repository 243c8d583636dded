/*
 * http — an HTTP engine over libcurl's multi interface, with retries.
 *
 * An engine is one curl multi handle: its connection cache keeps
 * connections alive between requests, and several transfers can be in
 * flight at once (multipart parts).  Transfers move only while the engine
 * is driven (http_run, http_step): there is no background
 * thread.  An engine belongs to one thread at a time; the S3 driver keeps
 * one per struct stor ("one engine per thread, passed around" — a stor is
 * used by one thread at a time).  Engines share nothing, so two of them may
 * be driven from the same thread, one inside the other's callback (a get
 * from one region streaming into an upload to another).  Driving an engine
 * from inside one of its own callbacks is refused (ERR_INTERNAL).
 *
 * A transfer is a caller-owned struct http_xfer.  Its prepare() callback
 * runs before every attempt and sets the URL and the (signed) headers, so a
 * retry is signed afresh.  The request body is a buffer the caller keeps
 * until the transfer is finished: a retry re-sends it.
 *
 * Retries: a connection refused or reset, a timeout (connect, or io_timeout
 * seconds without a byte moving), a truncated body, HTTP 408, 429, 500,
 * 502, 503 and 504 (and whatever classify() calls transient, e.g. S3's
 * RequestTimeout, InternalError, or a 200 carrying an <Error>) are retried
 * with exponential backoff and full jitter (100 ms doubling, capped at
 * 10 s) until retry_deadline seconds after the transfer started.  Anything
 * else is final at once.  A 2xx body streamed through on_data() is counted
 * in x->delivered over all attempts; a prepare() that can resume (Range)
 * uses it so the consumer never sees a byte twice.
 *
 * TLS peers are always verified; ca_file adds a CA bundle to the system
 * store.  Nothing is printed or logged: retries are reported to the
 * engine's note sink (http_opts.notes) with the transfer's `what` (never a
 * URL with credentials, never a header).
 */
#ifndef WALSHIP_HTTP_H
#define WALSHIP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "s3_dl.h"

#include "err.h"
#include "note.h"

struct http_engine;

struct http_opts {
    long connect_timeout;       /* seconds; 0 = 10 */
    long io_timeout;            /* seconds without progress; 0 = 60 */
    uint64_t retry_deadline;    /* seconds for all attempts of a transfer; 0 = 60 */
    const char *ca_file;        /* extra CA bundle (PEM), or NULL */
    int parallel;               /* transfers expected at once (sizes the connection cache) */
    const struct note_sink *notes;  /* retries are reported here (borrowed; NULL: dropped) */
};

enum http_verdict { HTTP_FINAL = 0, HTTP_RETRY = 1 };

struct http_xfer {
    /* ---- set by the caller before http_start() / http_run() ---- */
    const char *method;         /* GET HEAD PUT POST DELETE */
    const unsigned char *body;  /* request body for PUT/POST (may be NULL with len 0) */
    size_t body_len;
    size_t collect_max;         /* bound on a collected body; 0 = 1 MiB */
    long io_timeout;            /* seconds without progress for this transfer; 0 = the
                                 * engine's (longer for requests the server works on
                                 * before it answers: DeleteObjects, Complete, Copy) */
    const char *what;           /* "PUT wal/0000..." for log lines */
    /* Every attempt: set url and headers (malloc'd / curl_slist; the engine frees them). */
    int (*prepare)(struct http_xfer *x, struct err *e);
    /* Optional: a 2xx answer's headers are complete; -1 (e filled) aborts with no retry. */
    int (*on_headers)(struct http_xfer *x, struct err *e);
    /* Optional: body bytes of a 2xx answer; NULL = collect them into resp. */
    int (*on_data)(struct http_xfer *x, const void *buf, size_t n, struct err *e);
    /* Optional: verdict on a complete answer; `why` gets a short reason for the log.
     * NULL = retry 408, 429, 5xx. */
    enum http_verdict (*classify)(struct http_xfer *x, char *why, size_t whylen);
    void *arg;

    /* ---- set by prepare() ---- */
    char *url;
    struct curl_slist *headers;

    /* ---- results (valid when finished) ---- */
    int finished;
    int failed;                 /* no usable answer: err says why */
    struct err err;             /* ERR_NET (transient set) or a callback's error */
    int exhausted;              /* last answer was transient, deadline passed */
    long status;                /* last answer's HTTP status, 0 if none */
    int attempts;
    uint64_t delivered;         /* bytes given to on_data, all attempts */
    uint64_t got;               /* body bytes of the last attempt */
    int64_t content_length;     /* of the last answer, -1 if absent */
    char etag[128];
    char request_id[128];       /* x-amz-request-id */
    char last_modified[64];
    char bucket_region[64];     /* x-amz-bucket-region */
    char content_range[128];
    char checksum_sha256[64];   /* x-amz-checksum-sha256 (a multipart object's: BASE64-N) */
    unsigned char *resp;        /* collected body, NUL-terminated; owned */
    size_t resp_len;

    /* ---- engine-private ---- */
    struct http_xfer *next;
    CURL *easy;
    int state;
    int to_data;
    int cb_failed;
    size_t body_pos;
    uint64_t deadline_ms;
    uint64_t retry_at_ms;
    char errbuf[CURL_ERROR_SIZE];
};

int http_engine_new(const struct http_opts *o, struct http_engine **out, struct err *e);
void http_engine_free(struct http_engine *h);   /* cancels what is still in flight */

/* Start a transfer; it moves when the engine is driven. */
int http_start(struct http_engine *h, struct http_xfer *x, struct err *e);
/* Start x (unless started) and drive the engine until x is finished.
 * 0 = an HTTP answer is in x->status (any status: the caller judges it);
 * -1 = no usable answer (e copied from x->err) or an engine fault. */
int http_run(struct http_engine *h, struct http_xfer *x, struct err *e);
/* Drive the engine once: start due retries, move data, finish transfers;
 * when none finished, wait up to wait_ms for activity (0 = do not block:
 * lets in-flight uploads move while the caller produces data).  Check
 * x->finished on your own transfers afterwards, then http_release() them.
 * Returns -1 only for an engine fault. */
int http_step(struct http_engine *h, int wait_ms, struct err *e);
/* Forget a transfer: a finished one is handed back, a running one is
 * stopped (its connection closed). */
void http_release(struct http_engine *h, struct http_xfer *x);
/* Number of transfers started and not yet handed back. */
int http_active(const struct http_engine *h);

/* Free a transfer's results (resp) and reset it for reuse; keeps the
 * caller's settings. */
void http_xfer_clear(struct http_xfer *x);

/* Would this answer be retried by default?  (408, 429, 500, 502, 503, 504) */
int http_status_transient(long status);

#endif
