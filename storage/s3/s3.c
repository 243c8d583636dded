/* s3 — the s3:// driver: opening a region, signed requests, errors.
 * Small operations: s3_ops.c; uploads: s3_upload.c; downloads: s3_get.c. */
#include "s3.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* ---- requests ---- */

static enum http_verdict s3_classify(struct http_xfer *x, char *why, size_t n);

int s3_req_init(struct s3_req *r, struct s3 *s, const char *method, const char *key, const char *query,
                struct err *e)
{
    char *enc = NULL;

    memset(r, 0, sizeof *r);
    r->s3 = s;
    r->key = key;
    r->x.method = method;
    r->x.prepare = s3_req_prepare;
    r->x.classify = s3_classify;
    r->x.arg = r;
    r->x.what = r->what;
    r->x.content_length = -1;
    memcpy(r->payload_hash, SIGV4_EMPTY_SHA256, sizeof r->payload_hash);
    snprintf(r->what, sizeof r->what, "%s %s%s (region %s)", method, key ? key : "bucket ",
             key ? "" : s->bucket, s->base.region);
    if (key != NULL) {
        char *full = s->prefix[0] ? xasprintf("%s/%s", s->prefix, key) : strdup(key);

        enc = full ? sigv4_uri_encode(full, 1) : NULL;
        free(full);
        if (enc != NULL)
            r->path = xasprintf("%s/%s", s->path_base, enc);
    } else {
        r->path = strdup(s->path_base[0] ? s->path_base : "/");
    }
    free(enc);
    if (query != NULL)
        r->query = strdup(query);
    if (r->path == NULL || (query != NULL && r->query == NULL)) {
        s3_req_free(r);
        return err_setf(e, ERR_NOMEM, "out of memory building a request");
    }
    return 0;
}

void s3_req_body(struct s3_req *r, const void *buf, size_t len)
{
    r->x.body = buf;
    r->x.body_len = len;
    if (r->s3->unsigned_payload)
        memcpy(r->payload_hash, SIGV4_UNSIGNED_PAYLOAD, sizeof SIGV4_UNSIGNED_PAYLOAD);
    else
        sigv4_sha256_hex(buf, len, r->payload_hash);
}

int s3_req_header(struct s3_req *r, const char *name, const char *value, struct err *e)
{
    if (r->nhdr >= S3_MAX_HDR)
        return err_setf(e, ERR_INTERNAL, "too many headers for %s", r->what);
    r->hdr[r->nhdr].name = name;
    r->hdr[r->nhdr].value = value;
    r->nhdr++;
    return 0;
}

void s3_req_free(struct s3_req *r)
{
    if (r->s3 != NULL && r->s3->http != NULL)
        http_release(r->s3->http, &r->x);
    http_xfer_clear(&r->x);
    free(r->path);
    free(r->query);
    r->path = r->query = NULL;
}

int s3_req_run(struct s3_req *r, struct err *e)
{
    return http_run(r->s3->http, &r->x, e);
}

int s3_req_prepare(struct http_xfer *x, struct err *e)
{
    struct s3_req *r = x->arg;
    struct s3 *s = r->s3;
    struct sigv4_header h[S3_MAX_HDR + 6];
    struct sigv4_cred cred;
    struct sigv4_request sr;
    struct curl_slist *l = NULL, *t;
    char date[17];
    char *auth = NULL, *line;
    size_t n = 0, i;
    int rc = -1;

    if (s3_dl_load(e) < 0)
        return -1;

    /* every attempt signs with the current credentials: refreshed here
     * before they expire, so a long upload outlives them */
    if (creds_current(s->creds, &s->cred, &s->cred_gen, s->base.notes, e) < 0) {
        e->transient = 0;
        return -1;
    }
    cred = (struct sigv4_cred){ s->cred.access_key, s->cred.secret_key, s->aws_region, "s3" };
    sigv4_amz_date(time(NULL), date);
    h[n++] = (struct sigv4_header){ "Host", s->host };
    h[n++] = (struct sigv4_header){ "x-amz-content-sha256", r->payload_hash };
    h[n++] = (struct sigv4_header){ "x-amz-date", date };
    if (s->cred.token != NULL)
        h[n++] = (struct sigv4_header){ "x-amz-security-token", s->cred.token };
    if (r->range[0] != '\0')
        h[n++] = (struct sigv4_header){ "Range", r->range };
    if (r->if_match[0] != '\0')
        h[n++] = (struct sigv4_header){ "If-Match", r->if_match };
    for (i = 0; i < (size_t)r->nhdr; i++)
        h[n++] = r->hdr[i];
    sr = (struct sigv4_request){ x->method, r->path, r->query, h, n, r->payload_hash };
    if (sigv4_sign(&sr, &cred, date, &auth, NULL, e) < 0)
        return -1;

    for (i = 0; i <= n + 2; i++) {
        if (i < n)
            line = xasprintf("%s: %s", h[i].name, h[i].value);
        else if (i == n)
            line = xasprintf("Authorization: %s", auth);
        else if (i == n + 1)
            line = strdup("Expect:");   /* no 100-continue round trip */
        else if (r->if_none_match)
            line = strdup("If-None-Match: *");  /* not signed: S3 does not require it */
        else
            break;
        if (line == NULL)
            goto oom;
        t = curl_slist_append(l, line);
        free(line);
        if (t == NULL)
            goto oom;
        l = t;
    }
    x->url = r->query ? xasprintf("%s%s?%s", s->url_base, r->path, r->query)
                      : xasprintf("%s%s", s->url_base, r->path);
    if (x->url == NULL)
        goto oom;
    x->headers = l;
    l = NULL;
    rc = 0;
    goto out;
oom:
    err_setf(e, ERR_NOMEM, "out of memory building %s", r->what);
out:
    curl_slist_free_all(l);
    free(auth);
    return rc;
}

int s3_code_transient(const char *code)
{
    static const char *const codes[] = { "InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout",
                                         "Throttling", "ThrottlingException",
                                         /* a conditional write raced another one in flight: retry */
                                         "ConditionalRequestConflict" };
    size_t i;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return 1;
    return 0;
}

static enum http_verdict s3_classify(struct http_xfer *x, char *why, size_t n)
{
    struct s3_req *r = x->arg;
    struct s3_error er;
    int has_code = 0;

    memset(&er, 0, sizeof er);
    if (x->resp_len > 0 && (x->status >= 300 || r->result_root != NULL))
        has_code = s3_xml_parse_error(x->resp, x->resp_len, &er) == 0 && er.code[0] != '\0';
    snprintf(why, n, "HTTP %ld%s%s", x->status, has_code ? " " : "", has_code ? er.code : "");
    /* temporary credentials S3 holds expired before their Expiration (a
     * revoked session, a clock behind S3's): new ones sign the retry */
    if (has_code && (strcmp(er.code, "ExpiredToken") == 0 || strcmp(er.code, "TokenRefreshRequired") == 0) &&
        creds_refused(r->s3->creds, r->s3->cred_gen))
        return HTTP_RETRY;
    if (x->status >= 200 && x->status < 300)
        return has_code && s3_code_transient(er.code) ? HTTP_RETRY : HTTP_FINAL;
    if (http_status_transient(x->status) || (has_code && s3_code_transient(er.code)))
        return HTTP_RETRY;
    return HTTP_FINAL;
}

/* ---- errors ---- */

struct code_map {
    const char *code;
    enum err_code err;
    const char *text;
};

static const struct code_map code_map[] = {
    { "SignatureDoesNotMatch", ERR_AUTH, "signature does not match (check the secret access key)" },
    { "InvalidAccessKeyId", ERR_AUTH, "the access key id is not known to the server" },
    { "AccessDenied", ERR_AUTH, "access denied" },
    { "AllAccessDisabled", ERR_AUTH, "all access to this bucket is disabled" },
    { "AccountProblem", ERR_AUTH, "the account has a problem" },
    { "ExpiredToken", ERR_AUTH, "the session token has expired" },
    { "InvalidToken", ERR_AUTH, "the session token is invalid" },
    { "TokenRefreshRequired", ERR_AUTH, "the session token must be refreshed" },
    { "RequestTimeTooSkewed", ERR_AUTH, "this host's clock differs too much from the server's" },
    { "MissingSecurityHeader", ERR_AUTH, "a required security header is missing" },
    { "NoSuchBucket", ERR_NOBUCKET, "no such bucket" },
    { "NoSuchKey", ERR_NOTFOUND, "no such key" },
    { "NoSuchUpload", ERR_HTTP, "the multipart upload does not exist (aborted or completed)" },
    { "PreconditionFailed", ERR_HTTP, "the object changed while it was being read" },
    { "EntityTooLarge", ERR_HTTP, "the object is too large for one request" },
    { "EntityTooSmall", ERR_HTTP, "a multipart part is smaller than the minimum of 5 MiB" },
    { "BadDigest", ERR_HTTP, "the body's checksum does not match (data corrupted in transit)" },
    { "XAmzContentSHA256Mismatch", ERR_HTTP, "the body's SHA-256 does not match (data corrupted in transit)" },
    { NULL, ERR_HTTP, NULL },
};

enum err_code s3_code_err(const char *code)
{
    size_t i;

    for (i = 0; code_map[i].code != NULL; i++)
        if (strcmp(code, code_map[i].code) == 0)
            return code_map[i].err;
    return ERR_HTTP;
}

static int is_region_code(const char *code)
{
    return strcmp(code, "AuthorizationHeaderMalformed") == 0 || strcmp(code, "PermanentRedirect") == 0 ||
           strcmp(code, "IllegalLocationConstraintException") == 0 || strcmp(code, "InvalidRegion") == 0;
}

int s3_fail(struct s3 *s, const struct s3_req *r, const char *verb, const char *prep, struct err *e)
{
    const struct http_xfer *x = &r->x;
    char target[600];
    char detail[700];
    char kms[300];
    struct s3_error er;
    enum err_code code = ERR_HTTP;
    const char *text = NULL, *rid;
    int transient = 0;
    size_t i;

    if (r->key != NULL)
        snprintf(target, sizeof target, "\"%s\" %s region %s (bucket %s)", r->key, prep, s->base.region,
                 s->bucket);
    else
        snprintf(target, sizeof target, "%s region %s (bucket %s)", prep, s->base.region, s->bucket);
    if (x->failed) {
        /* No answer: network fault after retries, or our own callback (the
         * sink) refused the data: keep that error's code. */
        struct err why = x->err;
        err_setf(e, why.code, "could not %s %s: %s", verb, target, why.msg);
        e->transient = why.transient;
        e->http_status = x->status;
        return -1;
    }
    memset(&er, 0, sizeof er);
    if (x->resp_len > 0)
        (void)s3_xml_parse_error(x->resp, x->resp_len, &er);
    rid = er.request_id[0] ? er.request_id : x->request_id;
    for (i = 0; code_map[i].code != NULL; i++) {
        if (strcmp(er.code, code_map[i].code) == 0) {
            code = code_map[i].err;
            text = code_map[i].text;
            break;
        }
    }
    if (is_region_code(er.code) || x->status == 301 ||
        (x->bucket_region[0] != '\0' && strcmp(x->bucket_region, s->aws_region) != 0 &&
         (x->status == 400 || x->status == 403))) {
        const char *want = er.region[0] ? er.region : x->bucket_region;

        code = ERR_AUTH;
        if (want[0] != '\0')
            snprintf(detail, sizeof detail, "region mismatch: requests are signed for region %s but the bucket "
                     "expects %s (set aws_region = %s in [region %s])", s->aws_region, want, want, s->base.region);
        else
            snprintf(detail, sizeof detail, "region mismatch: requests are signed for region %s, which the "
                     "server refuses (%s)", s->aws_region, er.message[0] ? er.message : "check aws_region");
        text = detail;
    } else if (text == NULL) {
        if (x->status == 404 && er.code[0] == '\0') {
            /* S3 says NoSuchKey or NoSuchBucket in the body.  A 404 without
             * a code comes from something else (a proxy, a web server at a
             * wrong endpoint): not a definite "no such object", which would
             * let wal-fetch end recovery early. */
            text = "not found, but the answer carries no S3 error code (a proxy or a wrong endpoint?)";
        } else if (x->status == 403 && er.code[0] == '\0') {
            code = ERR_AUTH;
            text = "access denied";
        } else if (er.message[0] != '\0') {
            text = er.message;
        } else if (x->exhausted) {
            text = "server busy or failing";
        } else {
            text = "unexpected answer";
        }
    }
    if (x->exhausted || s3_code_transient(er.code) || http_status_transient(x->status))
        transient = 1;
    kms[0] = '\0';
    if (s3_etag_opaque(s) && (strcmp(er.code, "AccessDenied") == 0 || strncmp(er.code, "KMS.", 4) == 0 ||
                              strstr(er.message, "KMS") != NULL || strstr(er.message, "kms") != NULL)) {
        code = ERR_AUTH;
        snprintf(kms, sizeof kms, " (SSE-KMS key %s: the credentials need kms:GenerateDataKey and "
                 "kms:Decrypt on it)", s->sse_kms_key_id ? s->sse_kms_key_id : "aws/s3 (the account's default)");
    }
    err_setf(e, code, "could not %s %s: HTTP %ld%s%s: %s%s%s%s%s%s", verb, target, x->status,
             er.code[0] ? " " : "", er.code, text, kms, x->exhausted ? " (retried until the deadline)" : "",
             rid[0] ? " (request id " : "", rid, rid[0] ? ")" : "");
    e->transient = transient;
    e->http_status = x->status;
    return -1;
}

/* ---- open / free ---- */

static void s3_free(struct stor *st)
{
    struct s3 *s = (struct s3 *)st;

    if (s == NULL)
        return;
    http_engine_free(s->http);
    free(s->bucket);
    free(s->prefix);
    free(s->aws_region);
    free(s->storage_class);
    free(s->url_base);
    free(s->host);
    free(s->path_base);
    creds_close(s->creds);
    creds_clear(&s->cred);
    free(s->sse);
    free(s->sse_kms_key_id);
    free(s->base.region);
    free(s->base.where);
    free(s);
}

static const struct stor_ops s3_ops = {
    STOR_OPS_VERSION, s3_put, s3_get, s3_head, s3_list, s3_remove, s3_remove_many, s3_sweep, s3_free,
};

/* s3://BUCKET[/PREFIX] */
static int parse_url(struct s3 *s, const char *name, const char *url, struct err *e)
{
    const char *p = url + 5, *slash;
    size_t n, i;

    if (!str_has_prefix(url, "s3://"))
        return err_setf(e, ERR_CONFIG, "region %s: url \"%s\" is not s3://BUCKET/PREFIX", name, url);
    slash = strchr(p, '/');
    n = slash ? (size_t)(slash - p) : strlen(p);
    s->bucket = strndup(p, n);
    if (s->bucket == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (n < 3 || n > 63)
        return err_setf(e, ERR_CONFIG, "region %s: bucket name \"%s\" must be 3 to 63 characters", name, s->bucket);
    for (i = 0; i < n; i++) {
        char c = s->bucket[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-' || c == '_'))
            return err_setf(e, ERR_CONFIG, "region %s: bad character in bucket name \"%s\"", name, s->bucket);
    }
    p = slash ? slash + 1 : p + n;
    while (*p == '/')
        p++;
    s->prefix = strdup(p);
    if (s->prefix == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    n = strlen(s->prefix);
    while (n > 0 && s->prefix[n - 1] == '/')
        s->prefix[--n] = '\0';
    if (strstr(s->prefix, "//") != NULL || strstr(s->prefix, "..") != NULL)
        return err_setf(e, ERR_CONFIG, "region %s: bad prefix \"%s\" in url", name, s->prefix);
    return 0;
}

static int dns_bucket(const char *b)
{
    for (; *b; b++)
        if ((*b >= 'A' && *b <= 'Z') || *b == '_')
            return 0;
    return 1;
}

static int parse_endpoint(struct s3 *s, const struct stor_opts *rc, struct err *e)
{
    char *def = NULL, *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *user = NULL,
         *pass = NULL;
    const char *ep = rc->endpoint;
    CURLU *u = curl_url();
    unsigned char addr[16];
    int path_style = rc->path_style, rcode = -1, https;
    char *hostport = NULL;

    if (u == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (ep == NULL || ep[0] == '\0') {
        def = xasprintf("https://s3.%s.amazonaws.com", s->aws_region);
        ep = def;
    }
    if (ep == NULL || curl_url_set(u, CURLUPART_URL, ep, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        err_setf(e, ERR_CONFIG, "region %s: endpoint \"%s\" is not a URL like https://host[:port]", rc->name,
                 ep ? ep : "");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        /* never sent (requests are signed, the URL is rebuilt from its
         * host), so it would be dropped in silence; and never echoed */
        err_setf(e, ERR_CONFIG, "region %s: endpoint must not carry a user name or password (USER:PASS@); "
                 "S3 credentials come from the credentials source", rc->name);
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
    (void)curl_url_get(u, CURLUPART_PATH, &path, 0);
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        err_setf(e, ERR_CONFIG, "region %s: endpoint \"%s\" must be http:// or https://", rc->name, ep);
        goto out;
    }
    if ((path != NULL && strcmp(path, "/") != 0 && path[0] != '\0') || query != NULL) {
        err_setf(e, ERR_CONFIG, "region %s: endpoint \"%s\" must not have a path or query", rc->name, ep);
        goto out;
    }
    https = strcmp(scheme, "https") == 0;
    /* Virtual-hosted addressing cannot work on an IP address, with a bucket
     * name that is not a DNS label, or (TLS wildcard) with dots over https. */
    if (host[0] == '[' || inet_pton(AF_INET, host, addr) == 1 || !dns_bucket(s->bucket) ||
        (https && strchr(s->bucket, '.') != NULL)) {
        if (!path_style)
            note(s->base.notes, LOG_DEBUG, "region %s: using path-style addressing for bucket %s at %s", rc->name,
                 s->bucket, host);
        path_style = 1;
    }
    hostport = port ? xasprintf("%s%s%s:%s", path_style ? "" : s->bucket, path_style ? "" : ".", host, port)
                    : xasprintf("%s%s%s", path_style ? "" : s->bucket, path_style ? "" : ".", host);
    s->host = hostport;
    s->url_base = hostport ? xasprintf("%s://%s", scheme, hostport) : NULL;
    s->path_base = path_style ? xasprintf("/%s", s->bucket) : strdup("");
    if (s->url_base == NULL || s->path_base == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (rc->unsigned_payload && !https)
        note(s->base.notes, LOG_WARNING,
             "region %s: unsigned_payload needs an https endpoint; hashing payloads over http", rc->name);
    s->unsigned_payload = rc->unsigned_payload && https;
    rcode = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    free(def);
    return rcode;
}

static int credentials(struct s3 *s, const struct stor_opts *o, struct err *e)
{
    if (creds_open(&o->creds, &s->creds, e) < 0)
        return -1;
    if (creds_current(s->creds, &s->cred, &s->cred_gen, s->base.notes, e) < 0)
        return -1;
    s->base.creds = creds_describe(s->creds);
    return 0;
}

static int sse_options(struct s3 *s, const struct stor_opts *o, struct err *e)
{
    const char *sse = o->sse != NULL && o->sse[0] != '\0' ? o->sse : NULL;

    if (sse != NULL && strcmp(sse, "AES256") != 0 && strcmp(sse, "aws:kms") != 0)
        return err_setf(e, ERR_CONFIG, "region %s: sse = %s: use AES256 or aws:kms", o->name, sse);
    if (o->sse_kms_key_id != NULL && o->sse_kms_key_id[0] != '\0' && (sse == NULL || strcmp(sse, "aws:kms") != 0))
        return err_setf(e, ERR_CONFIG, "region %s: sse_kms_key_id needs sse = aws:kms", o->name);
    if (o->sse_bucket_key && (sse == NULL || strcmp(sse, "aws:kms") != 0))
        return err_setf(e, ERR_CONFIG, "region %s: sse_bucket_key needs sse = aws:kms", o->name);
    s->checksum = o->checksum;
    s->sse_bucket_key = o->sse_bucket_key;
    if ((sse != NULL && (s->sse = strdup(sse)) == NULL) ||
        (o->sse_kms_key_id != NULL && o->sse_kms_key_id[0] != '\0' &&
         (s->sse_kms_key_id = strdup(o->sse_kms_key_id)) == NULL))
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}

static int s3_open(const struct stor_opts *o, struct stor **out, struct err *e)
{
    struct s3 *s;
    struct http_opts ho;

    *out = NULL;
    if (s3_dl_load(e) < 0)
        return err_prefix(e, "region %s", o->name);
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory opening region %s", o->name);
    s->base.ops = &s3_ops;
    s->base.notes = o->notes;
    s->base.region = strdup(o->name);
    s->aws_region = strdup(o->aws_region && o->aws_region[0] ? o->aws_region : o->name);
    if (s->base.region == NULL || s->aws_region == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory opening region %s", o->name);
        goto fail;
    }
    if (parse_url(s, o->name, o->url, e) < 0 || parse_endpoint(s, o, e) < 0 || sse_options(s, o, e) < 0)
        goto fail;
    if (o->storage_class != NULL && o->storage_class[0] != '\0' &&
        (s->storage_class = strdup(o->storage_class)) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory opening region %s", o->name);
        goto fail;
    }
    s->part_size = o->part_size ? (size_t)o->part_size : S3_PART_SIZE_DEFAULT;
    if (o->part_size != 0 && (o->part_size < S3_PART_SIZE_MIN || o->part_size > S3_PART_SIZE_MAX)) {
        err_setf(e, ERR_CONFIG, "region %s: part_size %llu is outside S3's limits (5MB to 5GB)", o->name,
                 (unsigned long long)o->part_size);
        goto fail;
    }
    s->parallel = o->parallel > 0 ? o->parallel : 1;
    s->base.where = s->prefix[0] ? xasprintf("bucket %s prefix %s", s->bucket, s->prefix)
                                 : xasprintf("bucket %s", s->bucket);
    if (s->base.where == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory opening region %s", o->name);
        goto fail;
    }
    memset(&ho, 0, sizeof ho);
    ho.connect_timeout = o->connect_timeout;
    ho.io_timeout = o->io_timeout;
    s->sweep_min_age = S3_SWEEP_MIN_AGE;
    s->slow_timeout = (ho.io_timeout > 0 ? ho.io_timeout : 60) * S3_SLOW_FACTOR;
    if (s->slow_timeout < S3_SLOW_MIN)
        s->slow_timeout = S3_SLOW_MIN;
    ho.retry_deadline = o->retry_deadline;
    ho.ca_file = o->ca_file;
    ho.parallel = s->parallel;
    ho.notes = o->notes;
    if (http_engine_new(&ho, &s->http, e) < 0) {
        err_prefix(e, "region %s", o->name);
        goto fail;
    }
    /* after the engine: curl is initialised; credentials may need HTTP */
    if (credentials(s, o, e) < 0)
        goto fail;
    *out = &s->base;
    return 0;
fail:
    s3_free(&s->base);
    return -1;
}

const struct stor_driver stor_driver_s3 = { STOR_DRIVER_VERSION, "s3://", s3_open };
