/* creds_src — the environment, the container endpoint (ECS, EKS Pod
 * Identity) and EC2 instance metadata (IMDSv2). */
#include "creds.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3_dl.h"

#include "log.h"
#include "util.h"

#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_DEFAULT6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL "21600"
#define CONTAINER_HOST "http://169.254.170.2"

static int env_true(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && strcasecmp(v, "true") == 0;
}

int creds_src_env(struct creds *c, char *detail, size_t n, struct err *e)
{
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    const char *tok = getenv("AWS_SESSION_TOKEN");

    /* a secret or a token without its key id is the environment set up
     * halfway: `auto` must not go on to a profile's or a role's identity */
    if ((ak == NULL || ak[0] == '\0') && ((sk != NULL && sk[0] != '\0') || (tok != NULL && tok[0] != '\0')))
        return err_setf(e, ERR_CONFIG, "%s is set but AWS_ACCESS_KEY_ID is not",
                        sk != NULL && sk[0] != '\0' ? "AWS_SECRET_ACCESS_KEY" : "AWS_SESSION_TOKEN");
    if (ak == NULL || ak[0] == '\0')
        return 1;
    if (sk == NULL || sk[0] == '\0')
        return err_setf(e, ERR_CONFIG, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    snprintf(detail, n, "AWS_ACCESS_KEY_ID %s", ak);
    return creds_set(c, ak, sk, tok, 0, e);
}

/* ---- container ---- */

/* http:// only to loopback or the ECS/EKS link-local agents; https anywhere. */
static int container_host_ok(const char *url, struct err *e)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL;
    unsigned char a[16];
    int ok = 0;

    if (s3_dl_load(e) < 0)
        return -1;
    if ((u = curl_url()) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return err_setf(e, ERR_CONFIG, "AWS_CONTAINER_CREDENTIALS_FULL_URI \"%s\" is not a URL", url);
    }
    if (strcmp(scheme, "https") == 0)
        ok = 1;
    else if (strcmp(scheme, "http") == 0)
        ok = strcmp(host, "localhost") == 0 || strcmp(host, "169.254.170.2") == 0 ||
             strcmp(host, "169.254.170.23") == 0 || strcmp(host, "[fd00:ec2::23]") == 0 ||
             strcmp(host, "[::1]") == 0 || (inet_pton(AF_INET, host, a) == 1 && a[0] == 127);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    if (!ok)
        return err_setf(e, ERR_CONFIG, "AWS_CONTAINER_CREDENTIALS_FULL_URI \"%s\": plain http is allowed only "
                        "to loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23", url);
    return 0;
}

static int container_token(char **out, struct err *e)
{
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    unsigned char *buf = NULL;
    size_t len = 0;

    *out = NULL;
    if (file != NULL && file[0] != '\0') {
        if (creds_read_token(file, 16384, &buf, &len, e) < 0)
            return err_prefix(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
            len--;
        *out = strndup((char *)buf, len);
        free(buf);
    } else if (tok != NULL && tok[0] != '\0') {
        *out = strdup(tok);
    } else {
        return 0;
    }
    if (*out == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    log_add_secret(*out);
    if (strpbrk(*out, "\r\n") != NULL) {
        free(*out);
        *out = NULL;
        return err_setf(e, ERR_CONFIG, "the container authorization token has a line break in it");
    }
    return 0;
}

int creds_src_container(const struct creds_opts *o, struct creds *c, char *detail, size_t n, struct err *e)
{
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    struct creds_http h = { 0 };
    char *url = NULL, *tok = NULL, *auth = NULL, what[300];
    int rc = -1;

    if ((rel == NULL || rel[0] == '\0') && (full == NULL || full[0] == '\0')) {
        const char *tf = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        const char *tv = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");

        /* a token for an endpoint not named: EKS Pod Identity set up
         * halfway; going on would sign as the node's instance role */
        if ((tf != NULL && tf[0] != '\0') || (tv != NULL && tv[0] != '\0'))
            return err_setf(e, ERR_CONFIG, "%s is set but neither AWS_CONTAINER_CREDENTIALS_FULL_URI nor "
                            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is", tf != NULL && tf[0] != '\0' ?
                            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" : "AWS_CONTAINER_AUTHORIZATION_TOKEN");
        return 1;
    }
    if (rel != NULL && rel[0] != '\0') {
        url = xasprintf("%s%s%s", CONTAINER_HOST, rel[0] == '/' ? "" : "/", rel);
    } else {
        if (container_host_ok(full, e) < 0)
            return -1;
        url = strdup(full);
    }
    if (url == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (container_token(&tok, e) < 0)
        goto out;
    if (tok != NULL && (auth = xasprintf("Authorization: %s", tok)) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(what, sizeof what, "container credentials endpoint %s", url);
    h = (struct creds_http){ .method = "GET", .url = url, .headers = { "Accept: application/json", auth },
                             .connect_timeout_ms = 2000, .timeout_ms = 5000, .ca_file = o->ca_file,
                             .attempts = 3 };
    if (creds_http_run(&h, what, e) < 0)
        goto out;
    if (h.status != 200) {
        err_setf(e, ERR_AUTH, "%s: HTTP %ld%s%s", what, h.status, h.status == 401 || h.status == 403 ?
                 " (check the authorization token)" : "", "");
        goto out;
    }
    if (creds_parse_json(h.resp, h.resp_len, what, c, e) < 0 || creds_need_expiry(c, what, e) < 0)
        goto out;
    snprintf(detail, n, "%s", url);
    rc = 0;
out:
    creds_http_clear(&h);
    free(url);
    free(tok);
    free(auth);
    return rc;
}

/* ---- EC2 instance metadata ---- */

static char *imds_base(void)
{
    const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    char *b;
    size_t l;

    if (ep == NULL || ep[0] == '\0')
        ep = mode != NULL && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT6 : IMDS_DEFAULT;
    b = strdup(ep);
    if (b == NULL)
        return NULL;
    l = strlen(b);
    while (l > 0 && b[l - 1] == '/')
        b[--l] = '\0';
    return b;
}

static int imds_get(const struct creds_opts *o, const char *url, const char *token, struct creds_http *h,
                    const char *what, struct err *e)
{
    char *hdr = token ? xasprintf("X-aws-ec2-metadata-token: %s", token) : NULL;
    int rc;

    if (token != NULL && hdr == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    *h = (struct creds_http){ .method = "GET", .url = url, .headers = { hdr }, .connect_timeout_ms = 1000,
                              .timeout_ms = 3000, .ca_file = o->ca_file, .attempts = 2 };
    rc = creds_http_run(h, what, e);
    free(hdr);
    return rc;
}

/* PUT /latest/api/token: 0 with *token, or 1 (no token: IMDSv1 only, or
 * refused) with *status, or -1 (no answer). */
static int imds_token(const struct creds_opts *o, const char *base, char **token, long *status, struct err *e)
{
    struct creds_http h;
    char *url = xasprintf("%s/latest/api/token", base);
    int rc;

    *token = NULL;
    if (url == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    h = (struct creds_http){ .method = "PUT", .url = url,
                             .headers = { "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL },
                             .connect_timeout_ms = 1000, .timeout_ms = 3000, .ca_file = o->ca_file,
                             .attempts = 2 };
    rc = creds_http_run(&h, "EC2 instance metadata (IMDSv2 token)", e);
    free(url);
    if (rc < 0)
        return -1;
    *status = h.status;
    if (h.status == 200 && h.resp_len > 0 && h.resp_len < 4096 && strpbrk(h.resp, "\r\n") == NULL) {
        *token = h.resp;
        h.resp = NULL;
        log_add_secret(*token);
        rc = 0;
    } else {
        rc = 1;
    }
    creds_http_clear(&h);
    return rc;
}

int creds_src_imds(const struct creds_opts *o, struct creds *c, char *detail, size_t n, struct err *e)
{
    struct creds_http h = { 0 };
    char *base, *token = NULL, *url = NULL, role[256];
    long st = 0;
    int rc = -1, t;

    if (env_true("AWS_EC2_METADATA_DISABLED"))
        return 1;
    if ((base = imds_base()) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    t = imds_token(o, base, &token, &st, e);
    if (t < 0 && o->imds_v1 && e->code == ERR_NET) {
        /* no answer to the PUT: in a container on EC2 the hop limit of 1
         * drops it, and IMDSv1 is allowed here (the SDKs fall back too);
         * off EC2 the GET below fails the same way */
        t = 1;
        err_clear(e);
    }
    if (t < 0)
        goto out;
    if (t == 1 && !o->imds_v1) {
        err_setf(e, ERR_AUTH, "EC2 instance metadata at %s: no IMDSv2 session token (PUT /latest/api/token: "
                 "HTTP %ld); IMDSv1 is off (imds_v1 = true allows it)", base, st);
        goto out;
    }
    if ((url = xasprintf("%s/latest/meta-data/iam/security-credentials/", base)) == NULL)
        goto oom;
    if (imds_get(o, url, token, &h, "EC2 instance metadata (role name)", e) < 0)
        goto out;
    if (h.status != 200 || h.resp_len == 0) {
        err_setf(e, h.status == 404 ? ERR_CONFIG : ERR_AUTH, "EC2 instance metadata at %s: %s (HTTP %ld)", base,
                 h.status == 404 ? "this instance has no IAM role (instance profile)" :
                 h.status == 401 ? "the session token was refused" : "no role name", h.status);
        goto out;
    }
    snprintf(role, sizeof role, "%.*s", (int)strcspn(h.resp, "\r\n"), h.resp);
    if (role[0] == '\0' || strchr(role, '/') != NULL) {
        err_setf(e, ERR_AUTH, "EC2 instance metadata at %s: bad role name", base);
        goto out;
    }
    free(url);
    creds_http_clear(&h);
    if ((url = xasprintf("%s/latest/meta-data/iam/security-credentials/%s", base, role)) == NULL)
        goto oom;
    if (imds_get(o, url, token, &h, "EC2 instance metadata (credentials)", e) < 0)
        goto out;
    if (h.status != 200) {
        err_setf(e, ERR_AUTH, "EC2 instance metadata at %s: credentials of role %s: HTTP %ld", base, role,
                 h.status);
        goto out;
    }
    if (creds_parse_json(h.resp, h.resp_len, "EC2 instance metadata", c, e) < 0 ||
        creds_need_expiry(c, "EC2 instance metadata", e) < 0)
        goto out;
    snprintf(detail, n, "role %s%s", role, token ? "" : ", IMDSv1");
    rc = 0;
    goto out;
oom:
    err_setf(e, ERR_NOMEM, "out of memory");
out:
    creds_http_clear(&h);
    free(url);
    free(token);
    free(base);
    return rc;
}
