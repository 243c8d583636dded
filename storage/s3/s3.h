/*
 * s3 — the s3:// storage driver's insides: shared state, signed requests,
 * error mapping (s3.c), head/list/remove/copy (s3_ops.c), the upload sink
 * (s3_upload.c), downloads (s3_get.c) and the XML of S3's REST API
 * (s3_xml.c).
 *
 * The public entry point is stor_driver_s3 in stor.h; what is declared here is
 * for the driver's own files and its tests.  A struct s3 is used by one
 * thread at a time (stor.h), and owns one HTTP engine (http.h).  The XML
 * functions are pure and thread-safe once libxml2 is loaded and
 * initialized (s3_dl_load(), which s3_open() and every parser call).
 */
#ifndef WALSHIP_S3_H
#define WALSHIP_S3_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "creds.h"
#include "err.h"
#include "http.h"
#include "sigv4.h"
#include "stor.h"

#define S3_PART_SIZE_DEFAULT (16u << 20)
#define S3_PART_SIZE_MIN (5u << 20)
#define S3_PART_SIZE_MAX (5ull << 30)
#define S3_MAX_PARTS 10000
#define S3_DELETE_BATCH 1000
/* DeleteObjects, CompleteMultipartUpload and CopyObject may keep the
 * connection silent while the server works: their io timeout is this many
 * times io_timeout, and at least S3_SLOW_MIN seconds. */
#define S3_SLOW_FACTOR 10
#define S3_SLOW_MIN 120

struct s3 {
    struct stor base;
    struct http_engine *http;
    char *bucket;
    char *prefix;           /* "" or "prod" (no leading or trailing '/') */
    char *aws_region;       /* SigV4 region */
    char *storage_class;    /* NULL = bucket default */
    char *url_base;         /* "https://bucket.host:port" or "http://host:port" */
    char *host;             /* Host header value, signed */
    char *path_base;        /* "" (virtual-hosted) or "/bucket" (path style) */
    struct creds_provider *creds;   /* shared, per process (creds.h) */
    struct creds cred;      /* this stor's copy of the current credentials */
    unsigned cred_gen;
    atomic_int checksum;    /* enum s3_checksum; shared by parallel uploads (MD5 once Swift refused part checksums) */
    char *sse;              /* x-amz-server-side-encryption, or NULL */
    char *sse_kms_key_id;   /* NULL = the account's aws/s3 key */
    int sse_bucket_key;
    int unsigned_payload;   /* effective: asked for and the endpoint is https */
    size_t part_size;
    int parallel;
    long slow_timeout;      /* io timeout for requests the server works on before answering */
    time_t sweep_min_age;   /* s3_sweep never aborts a younger upload (S3_SWEEP_MIN_AGE; tests lower it) */
    atomic_int cond_put;    /* shared by parallel uploads; conditional writes (If-None-Match: *): 1 honoured, 0 not tried yet,
                               -1 the server answered 501: check before, read back after */
    atomic_int no_part_checksums; /* the server refused ChecksumSHA256 in CompleteMultipartUpload (Swift's
                               s3api): completed without, and Content-MD5 from then on */
};

#define S3_MAX_HDR 12

/* One signed request: the HTTP transfer plus what signing needs. */
struct s3_req {
    struct http_xfer x;             /* first: the engine hands back &x */
    struct s3 *s3;
    const char *key;                /* relative key for messages, or NULL */
    char *path;                     /* encoded path as sent */
    char *query;                    /* encoded query, or NULL */
    char payload_hash[65];
    struct sigv4_header hdr[S3_MAX_HDR];    /* extra signed headers */
    int nhdr;
    char what[160];
    const char *result_root;        /* a 200 must be this document, not an <Error> */
    /* ranged GET (s3_get.c): recomputed by prepare() before each attempt */
    char range[64];
    char if_match[130];
    int if_none_match;              /* send "If-None-Match: *", unsigned (so a proxy may act on it) */
    char content_md5[25];           /* integrity headers of an upload (s3_integrity.c) */
    char checksum[48];
    void *ctx;                      /* owner's context (upload part, get state) */
};

/* ---- requests (s3.c) ---- */

/* Prepare a request for `key` (relative to the region prefix; NULL = the
 * bucket itself) with an encoded query (may be NULL). */
int s3_req_init(struct s3_req *r, struct s3 *s, const char *method, const char *key, const char *query,
                struct err *e);
/* Request body: kept by the caller until the request is done; hashed here
 * (or UNSIGNED-PAYLOAD). */
void s3_req_body(struct s3_req *r, const void *buf, size_t len);
/* Add a signed header; name and value must outlive the request. */
int s3_req_header(struct s3_req *r, const char *name, const char *value, struct err *e);
/* Run to completion.  0 = an answer (check r->x.status), -1 = none. */
int s3_req_run(struct s3_req *r, struct err *e);
void s3_req_free(struct s3_req *r);
/* The prepare() callback every S3 request uses (signs the request). */
int s3_req_prepare(struct http_xfer *x, struct err *e);

/* Turn a failed request into an error naming verb, key, region, bucket,
 * status, S3 code and request id; maps codes to ERR_AUTH, ERR_NOBUCKET,
 * ERR_NOTFOUND, ERR_HTTP; sets e->transient and e->http_status.
 * `verb` reads "upload \"%s\" to", "download \"%s\" from" style: the driver
 * passes the verb ("upload") and the preposition ("to").  Returns -1. */
int s3_fail(struct s3 *s, const struct s3_req *r, const char *verb, const char *prep, struct err *e);

/* S3 error code → err_code (ERR_HTTP for codes not in the table), and
 * whether the code names a fault worth retrying (InternalError, SlowDown...). */
enum err_code s3_code_err(const char *code);
int s3_code_transient(const char *code);

/* Create the bucket (tests and `st check` on fresh servers).  Succeeds if
 * the bucket already exists and is ours. */
int s3_create_bucket(struct stor *st, struct err *e);

/* ---- integrity and encryption headers (s3_integrity.c) ---- */

enum s3_upload_kind { S3_UP_SINGLE, S3_UP_CREATE, S3_UP_PART };
/* Add the headers an upload carries: storage class and SSE on a single PUT
 * and on CreateMultipartUpload; Content-MD5 (or x-amz-checksum-sha256) of
 * the body on a single PUT and on each part.  Call after s3_req_body(). */
int s3_upload_headers(struct s3_req *r, enum s3_upload_kind kind, struct err *e);
/* A 200 answer to a single PUT (part 0) or a part: its ETag (MD5 of the
 * body, unless SSE-KMS makes it opaque) or checksum must be what was sent.
 * -1 with ERR_CORRUPT naming the key, part and region when not. */
int s3_upload_verify(const struct s3_req *r, int part, struct err *e);
struct s3_part;
/* Hex MD5 of a buffer (a single PUT's ETag); a multipart object's ETag from
 * its parts' ETags ("" when they are not MD5s, e.g. SSE-KMS). */
void s3_md5_hex(const unsigned char *buf, size_t len, char out[33]);
void s3_multipart_etag(const struct s3 *s, const struct s3_part *parts, int nparts, char *out, size_t n);
/* A multipart object's composite x-amz-checksum-sha256: base64 of the
 * SHA-256 of the parts' binary SHA-256s, "-N"; "" when a part has none. */
void s3_composite_sha256(const struct s3_part *parts, int nparts, char *out, size_t n);
/* A retried CompleteMultipartUpload answered NoSuchUpload (or 412): is the
 * object at `key` the one these parts make (so the first attempt
 * completed it)?  1 yes, 0 no or cannot tell. */
/* Part checksums: dropped from an upload's parts; and whether R is the
 * server refusing them in CompleteMultipartUpload (Swift's s3api), in which
 * case they are dropped and Content-MD5 used from then on (1). */
void s3_drop_part_checksums(struct s3_part *parts, int nparts);
int s3_refused_part_checksums(struct s3 *s, const struct s3_req *r, struct s3_part *parts, int nparts, const char *key);
int s3_completed_before(struct s3 *s, const char *key, const struct s3_part *parts, int nparts, uint64_t size);
/* The multipart ETag is opaque (SSE-KMS): do not compare it with MD5s. */
int s3_etag_opaque(const struct s3 *s);

/* ---- operations: s3_ops.c, s3_upload.c (put), s3_get.c ---- */

int s3_head(struct stor *st, const char *key, struct stor_stat *out, struct err *e);
int s3_list(struct stor *st, const char *prefix, const char *after, stor_list_fn fn, void *arg, struct err *e);
int s3_remove(struct stor *st, const char *key, struct err *e);
int s3_remove_many(struct stor *st, const char *const *keys, size_t n, struct err *e);
/* 1 when an S3 error (code, message) refuses a delete because of Object Lock. */
int s3_lock_refusal(const char *code, const char *message);
/* Abort the multipart uploads under the region's prefix that writers which
 * died left behind: those initiated before `older_than`, and never younger
 * than S3_SWEEP_MIN_AGE (a live backup part may upload for a long time). */
#define S3_SWEEP_MIN_AGE (24 * 3600)
int s3_sweep(struct stor *st, time_t older_than, uint64_t *removed, struct err *e);
int s3_put(struct stor *st, const char *key, unsigned flags, struct sink **out, struct err *e);
int s3_get(struct stor *st, const char *key, uint64_t off, uint64_t len, struct sink *out, struct err *e);

/* ---- XML (s3_xml.c) ---- */

struct s3_error {
    char code[64];
    char message[512];
    char request_id[128];
    char region[64];        /* <Region> of AuthorizationHeaderMalformed */
};

struct s3_list_entry {
    char *key;              /* full key, as S3 has it */
    uint64_t size;
    time_t mtime;
    char etag[80];
};

struct s3_list_page {
    struct s3_list_entry *ents;
    size_t n;
    int truncated;
    char *next_token;       /* NextContinuationToken, or NULL */
};

/* ListMultipartUploads: one page of uploads in progress. */
struct s3_upload_entry {
    char *key;              /* full key, as in the bucket */
    char *upload_id;
    time_t initiated;
};
struct s3_uploads_page {
    struct s3_upload_entry *ents;
    size_t n;
    int truncated;
    char *next_key, *next_upload_id;    /* NextKeyMarker, NextUploadIdMarker */
};

struct s3_part {
    int number;
    char etag[128];
    char checksum[48];      /* base64 SHA-256 of the part (checksum = sha256), or "" */
};

struct s3_delete_error {
    char *key;
    char code[64];
    char message[256];
};

/* 0 if the body is an <Error> document (er filled), -1 otherwise. */
int s3_xml_parse_error(const void *buf, size_t len, struct s3_error *er);
int s3_xml_parse_list(const void *buf, size_t len, struct s3_list_page *pg, struct err *e);
void s3_list_page_clear(struct s3_list_page *pg);
int s3_xml_parse_uploads(const void *buf, size_t len, struct s3_uploads_page *pg, struct err *e);
void s3_uploads_page_clear(struct s3_uploads_page *pg);
int s3_xml_parse_upload_id(const void *buf, size_t len, char **upload_id, struct err *e);
/* A 200 answer that should be a `root` document (CompleteMultipartUploadResult,
 * CopyObjectResult): 0 if it is, 1 if it is an <Error> (er filled), -1 if
 * it is neither (e filled). */
int s3_xml_parse_result(const void *buf, size_t len, const char *root, struct s3_error *er, struct err *e);
/* DeleteResult: the <Error> entries (quiet mode lists only those). */
int s3_xml_parse_delete(const void *buf, size_t len, struct s3_delete_error **errs, size_t *n,
                        struct err *e);
void s3_delete_errors_free(struct s3_delete_error *errs, size_t n);
/* Request bodies (malloc'd, *len bytes, NUL-terminated). */
int s3_xml_build_complete(const struct s3_part *parts, size_t n, char **out, size_t *len, struct err *e);
/* keys are relative; prefix (may be "") is joined with '/' in front. */
int s3_xml_build_delete(const char *prefix, const char *const *keys, size_t n, int quiet, char **out,
                        size_t *len, struct err *e);
int s3_xml_build_create_bucket(const char *region, char **out, size_t *len, struct err *e);
/* "2009-10-12T17:50:30.000Z" → time_t; -1 on junk. */
int s3_parse_iso8601(const char *s, time_t *out);

#endif
