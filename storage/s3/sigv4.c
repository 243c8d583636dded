#include "sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"

/* ---- a tiny growable string, local to this file ---- */

struct sb {
    char *s;
    size_t len, cap;
    int oom;
};

static void sb_addn(struct sb *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *ns;

        while (cap < b->len + n + 1)
            cap *= 2;
        ns = realloc(b->s, cap);
        if (ns == NULL) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_add(struct sb *b, const char *p)
{
    sb_addn(b, p, strlen(p));
}

static void sb_addc(struct sb *b, char c)
{
    sb_addn(b, &c, 1);
}

/* Hand over the string (NULL on out-of-memory). */
static char *sb_take(struct sb *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (b->s == NULL)
        return strdup("");
    return b->s;
}

/* ---- encoding ---- */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static void encode_into(struct sb *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (unreserved(c) || (keep_slash && c == '/')) {
            sb_addc(b, (char)c);
        } else {
            char t[3] = { '%', hex[c >> 4], hex[c & 15] };
            sb_addn(b, t, 3);
        }
    }
}

char *sigv4_uri_encode(const char *s, int keep_slash)
{
    struct sb b = { 0 };

    encode_into(&b, s, strlen(s), keep_slash);
    return sb_take(&b);
}

/* Percent-decode n bytes of s then strictly re-encode them into b.  A '%'
 * not followed by two hex digits is taken literally (and so re-encoded). */
static void reencode_into(struct sb *b, const char *s, size_t n)
{
    struct sb raw = { 0 };
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hex_digit((unsigned char)s[i + 1]) >= 0 && hex_digit((unsigned char)s[i + 2]) >= 0) {
            sb_addc(&raw, (char)(hex_digit((unsigned char)s[i + 1]) * 16 + hex_digit((unsigned char)s[i + 2])));
            i += 2;
        } else {
            sb_addc(&raw, s[i]);
        }
    }
    if (raw.oom)
        b->oom = 1;
    else if (raw.s != NULL)
        encode_into(b, raw.s, raw.len, 0);
    free(raw.s);
}

struct qparam {
    char *name;
    char *value;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    return c != 0 ? c : strcmp(x->value, y->value);
}

char *sigv4_canonical_query(const char *query)
{
    struct qparam *ps = NULL;
    size_t np = 0, cap = 0, i;
    const char *p = query;
    struct sb out = { 0 };
    int oom = 0;

    if (query == NULL || *query == '\0')
        return strdup("");
    while (*p != '\0' && !oom) {
        const char *end = strchr(p, '&');
        const char *eq;
        size_t seglen = end ? (size_t)(end - p) : strlen(p);
        struct sb nb = { 0 }, vb = { 0 };

        if (seglen > 0) {
            eq = memchr(p, '=', seglen);
            reencode_into(&nb, p, eq ? (size_t)(eq - p) : seglen);
            if (eq != NULL)
                reencode_into(&vb, eq + 1, seglen - (size_t)(eq - p) - 1);
            if (np == cap) {
                struct qparam *nps;

                cap = cap ? cap * 2 : 8;
                nps = realloc(ps, cap * sizeof *ps);
                if (nps == NULL) {
                    free(nb.s);
                    free(vb.s);
                    oom = 1;
                    break;
                }
                ps = nps;
            }
            ps[np].name = sb_take(&nb);
            ps[np].value = sb_take(&vb);
            if (ps[np].name == NULL || ps[np].value == NULL)
                oom = 1;
            np++;
        }
        p += seglen;
        if (*p == '&')
            p++;
    }
    if (!oom && np > 0) {
        qsort(ps, np, sizeof *ps, qparam_cmp);
        for (i = 0; i < np; i++) {
            if (i > 0)
                sb_addc(&out, '&');
            sb_add(&out, ps[i].name);
            sb_addc(&out, '=');
            sb_add(&out, ps[i].value);
        }
    }
    for (i = 0; i < np; i++) {
        free(ps[i].name);
        free(ps[i].value);
    }
    free(ps);
    if (oom) {
        free(out.s);
        return NULL;
    }
    return sb_take(&out);
}

/* ---- canonical headers ---- */

struct chdr {
    char *name;             /* lower-cased */
    const char *value;
};

static int chdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct chdr *)a)->name, ((const struct chdr *)b)->name);
}

/* Trim the value and collapse runs of spaces to one. */
static void add_trimmed(struct sb *b, const char *v)
{
    int space = 0;

    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v != '\0'; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space)
            sb_addc(b, ' ');
        space = 0;
        sb_addc(b, *v);
    }
}

char *sigv4_canonical_request(const struct sigv4_request *r, char **signed_headers)
{
    struct chdr *hs = NULL;
    struct sb out = { 0 }, sh = { 0 };
    char *cq = NULL;
    size_t i, j;
    int ok = 0;

    if (signed_headers != NULL)
        *signed_headers = NULL;
    hs = calloc(r->nheaders ? r->nheaders : 1, sizeof *hs);
    cq = sigv4_canonical_query(r->query);
    if (hs == NULL || cq == NULL)
        goto out;
    for (i = 0; i < r->nheaders; i++) {
        hs[i].name = strdup(r->headers[i].name);
        if (hs[i].name == NULL)
            goto out;
        for (j = 0; hs[i].name[j] != '\0'; j++)
            hs[i].name[j] = (char)tolower((unsigned char)hs[i].name[j]);
        hs[i].value = r->headers[i].value ? r->headers[i].value : "";
    }
    qsort(hs, r->nheaders, sizeof *hs, chdr_cmp);

    sb_add(&out, r->method);
    sb_addc(&out, '\n');
    sb_add(&out, (r->path != NULL && r->path[0] != '\0') ? r->path : "/");
    sb_addc(&out, '\n');
    sb_add(&out, cq);
    sb_addc(&out, '\n');
    for (i = 0; i < r->nheaders; i++) {
        /* A repeated header is one line with the values comma-joined. */
        if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) {
            out.len--;  /* drop the '\n' */
            sb_addc(&out, ',');
        } else {
            sb_add(&out, hs[i].name);
            sb_addc(&out, ':');
            if (sh.len > 0)
                sb_addc(&sh, ';');
            sb_add(&sh, hs[i].name);
        }
        add_trimmed(&out, hs[i].value);
        sb_addc(&out, '\n');
    }
    sb_addc(&out, '\n');
    sb_add(&out, sh.s ? sh.s : "");
    sb_addc(&out, '\n');
    sb_add(&out, r->payload_hash ? r->payload_hash : SIGV4_EMPTY_SHA256);
    ok = !out.oom && !sh.oom;
out:
    if (hs != NULL)
        for (i = 0; i < r->nheaders; i++)
            free(hs[i].name);
    free(hs);
    free(cq);
    if (!ok) {
        free(out.s);
        free(sh.s);
        return NULL;
    }
    if (signed_headers != NULL) {
        *signed_headers = sb_take(&sh);
        if (*signed_headers == NULL) {
            free(out.s);
            return NULL;
        }
    } else {
        free(sh.s);
    }
    return sb_take(&out);
}

/* ---- hashing ---- */

void sigv4_sha256_hex(const void *buf, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        out[0] = '\0';
        return;
    }
    hex_encode(md, 32, out);
}

void sigv4_md5_base64(const void *buf, size_t len, char out[25])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    out[0] = '\0';
    if (EVP_Digest(buf, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
        return;
    EVP_EncodeBlock((unsigned char *)out, md, 16);
}

static int hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned int n = 0;

    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &n) == NULL ||
        n != 32)
        return -1;
    return 0;
}

char *sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
                           const char *canonical_request)
{
    char h[65];

    sigv4_sha256_hex(canonical_request, strlen(canonical_request), h);
    return xasprintf("AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date, region,
                     service, h);
}

int sigv4_signing_key(const char *secret, const char *yyyymmdd, const char *region,
                      const char *service, unsigned char key[32])
{
    char *k0 = xasprintf("AWS4%s", secret);
    unsigned char a[32], b[32];
    int rc = -1;

    if (k0 == NULL)
        return -1;
    if (hmac(k0, strlen(k0), yyyymmdd, a) == 0 && hmac(a, 32, region, b) == 0 &&
        hmac(b, 32, service, a) == 0 && hmac(a, 32, "aws4_request", key) == 0)
        rc = 0;
    OPENSSL_cleanse(k0, strlen(k0));
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    free(k0);
    return rc;
}

int sigv4_sign(const struct sigv4_request *r, const struct sigv4_cred *c, const char *amz_date,
               char **authorization, char signature[65], struct err *e)
{
    char *creq = NULL, *sh = NULL, *sts = NULL;
    unsigned char key[32], sig[32];
    char sighex[65];
    char day[9];
    int rc = -1;

    *authorization = NULL;
    if (strlen(amz_date) != 16) {
        err_setf(e, ERR_INTERNAL, "bad x-amz-date \"%s\"", amz_date);
        goto out;
    }
    memcpy(day, amz_date, 8);
    day[8] = '\0';
    creq = sigv4_canonical_request(r, &sh);
    if (creq == NULL)
        goto oom;
    sts = sigv4_string_to_sign(amz_date, c->region, c->service, creq);
    if (sts == NULL)
        goto oom;
    if (sigv4_signing_key(c->secret_key, day, c->region, c->service, key) < 0 ||
        hmac(key, sizeof key, sts, sig) < 0) {
        err_setf(e, ERR_INTERNAL, "could not compute an HMAC-SHA256 with OpenSSL");
        goto out;
    }
    hex_encode(sig, 32, sighex);
    *authorization = xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
                               "SignedHeaders=%s, Signature=%s",
                               c->access_key, day, c->region, c->service, sh, sighex);
    if (*authorization == NULL)
        goto oom;
    if (signature != NULL)
        memcpy(signature, sighex, 65);
    rc = 0;
    goto out;
oom:
    err_setf(e, ERR_NOMEM, "out of memory signing a request");
out:
    OPENSSL_cleanse(key, sizeof key);
    free(creq);
    free(sh);
    free(sts);
    return rc;
}

void sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
