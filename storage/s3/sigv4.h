/*
 * sigv4 — AWS Signature Version 4 for S3, in walship's own code.
 *
 * libcurl's CURLOPT_AWS_SIGV4 (7.88) neither sorts nor re-encodes the query
 * string and signs the empty-body hash for uploads, so we sign here with
 * OpenSSL and keep the canonicalization pinned by the AWS documentation's
 * example signatures (tests/unit/sigv4_test.c).
 *
 * The caller builds the request line itself: the path is URI-encoded once
 * with sigv4_uri_encode(s, 1) (S3 does not double-encode), the query
 * parameters with sigv4_uri_encode(s, 0); the same strings go into the URL
 * that is sent and into struct sigv4_request, so what is signed is exactly
 * what travels.  Every header listed in the request is signed; the caller
 * must send exactly those headers with those values.
 *
 * All functions are pure (no globals, no I/O) and thread-safe.  Strings
 * returned as char * are malloc'd and owned by the caller; NULL means out
 * of memory.  Secrets are never copied anywhere but the signing key.
 */
#ifndef WALSHIP_SIGV4_H
#define WALSHIP_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "err.h"

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_header {
    const char *name;       /* any case; signed lower-cased */
    const char *value;      /* trimmed, inner runs of spaces collapsed */
};

struct sigv4_request {
    const char *method;             /* "GET", "PUT", ... */
    const char *path;               /* URI-encoded path as sent; NULL or "" = "/" */
    const char *query;              /* query as sent, without '?'; NULL or "" = none */
    const struct sigv4_header *headers; /* every header to sign, incl. host, x-amz-date */
    size_t nheaders;
    const char *payload_hash;       /* hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
};

struct sigv4_cred {
    const char *access_key;
    const char *secret_key;
    const char *region;             /* e.g. "us-east-1" */
    const char *service;            /* "s3" */
};

/* S3 URI encoding: A-Z a-z 0-9 - . _ ~ kept, '/' kept when keep_slash,
 * every other byte (UTF-8 included) as %XX with upper-case hex. */
char *sigv4_uri_encode(const char *s, int keep_slash);

/* Canonical query: parameters split on '&', names and values decoded then
 * re-encoded strictly, sorted by name then value, "name=value" joined by
 * '&' (a parameter without '=' becomes "name=").  "" for NULL or "". */
char *sigv4_canonical_query(const char *query);

/* The canonical request; *signed_headers (if not NULL) gets the
 * ';'-joined sorted lower-case header names. */
char *sigv4_canonical_request(const struct sigv4_request *r, char **signed_headers);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<date>/<region>/<service>/aws4_request\n<hex sha256(creq)>" */
char *sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
                           const char *canonical_request);

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, yyyymmdd), region), service), "aws4_request") */
int sigv4_signing_key(const char *secret, const char *yyyymmdd, const char *region,
                      const char *service, unsigned char key[32]);

/* Sign: *authorization gets the Authorization header value
 * ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...");
 * signature (if not NULL) the 64 hex digits.  amz_date is the
 * x-amz-date value (YYYYMMDDTHHMMSSZ) that the request carries. */
int sigv4_sign(const struct sigv4_request *r, const struct sigv4_cred *c, const char *amz_date,
               char **authorization, char signature[65], struct err *e);

/* Hex SHA-256 of a buffer; base64 MD5 (for Content-MD5). */
void sigv4_sha256_hex(const void *buf, size_t len, char out[65]);
void sigv4_md5_base64(const void *buf, size_t len, char out[25]);

/* x-amz-date for a time: YYYYMMDDTHHMMSSZ (UTC). */
void sigv4_amz_date(time_t t, char out[17]);

#endif
