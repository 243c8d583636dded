/* creds_sts — web identity: STS AssumeRoleWithWebIdentity (query API, an
 * unsigned POST) with the token from a file (IRSA, any OIDC provider), and
 * its XML answer read with libxml2. */
#include "creds.h"

#include "s3_dl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "s3.h"
#include "sigv4.h"
#include "util.h"

static const xmlNode *find(const xmlNode *n, const char *name)
{
    for (; n != NULL; n = n->next) {
        const xmlNode *f;

        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)n->name, name) == 0)
            return n;
        if ((f = find(n->children, name)) != NULL)
            return f;
    }
    return NULL;
}

static void text(const xmlNode *parent, const char *name, char *out, size_t n)
{
    const xmlNode *f = parent ? find(parent->children, name) : NULL;
    xmlChar *s = f ? xmlNodeGetContent(f) : NULL;

    out[0] = '\0';
    if (s != NULL) {
        snprintf(out, n, "%s", (const char *)s);
        xmlFree(s);
    }
}

int creds_parse_sts(const char *buf, size_t len, const char *what, struct creds *c, struct err *e)
{
    xmlDoc *doc;
    const xmlNode *root, *cr, *er;
    char ak[256], sk[256], exp[64], code[128], msg[400];
    char *tok = NULL;
    time_t expires = 0;
    int rc = -1;

    if (s3_dl_load(e) < 0)
        return -1;
    if (len > INT32_MAX)
        return err_setf(e, ERR_AUTH, "%s: answer too large", what);
    doc = xmlReadMemory(buf, (int)len, "sts.xml", NULL, XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NONET);
    root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (root == NULL) {
        err_setf(e, ERR_AUTH, "%s: the answer is not XML", what);
        goto out;
    }
    if ((er = find(root, "Error")) != NULL) {
        text(er, "Code", code, sizeof code);
        text(er, "Message", msg, sizeof msg);
        err_setf(e, ERR_AUTH, "%s: %s: %s", what, code[0] ? code : "error", msg[0] ? msg : "(no message)");
        goto out;
    }
    cr = find(root, "Credentials");
    text(cr, "AccessKeyId", ak, sizeof ak);
    text(cr, "SecretAccessKey", sk, sizeof sk);
    text(cr, "Expiration", exp, sizeof exp);
    if (cr == NULL || ak[0] == '\0' || sk[0] == '\0') {
        err_setf(e, ERR_AUTH, "%s: the answer has no Credentials with AccessKeyId and SecretAccessKey", what);
        goto out;
    }
    if (exp[0] == '\0') {
        /* STS's credentials always end: without the time they would never
         * be refreshed, and a long-running process signed after their end */
        err_setf(e, ERR_AUTH, "%s: the answer has no Expiration", what);
        goto out;
    }
    if (s3_parse_iso8601(exp, &expires) < 0) {
        err_setf(e, ERR_AUTH, "%s: bad Expiration \"%.40s\"", what, exp);
        goto out;
    }
    {
        const xmlNode *t = find(cr->children, "SessionToken");
        xmlChar *s = t ? xmlNodeGetContent(t) : NULL;

        if (s != NULL) {
            tok = strdup((const char *)s);
            xmlFree(s);
            if (tok == NULL) {
                err_setf(e, ERR_NOMEM, "out of memory");
                goto out;
            }
        }
    }
    if ((rc = creds_set(c, ak, sk, tok, expires, e)) < 0 && e->code == ERR_AUTH)
        err_prefix(e, "%s", what);
out:
    free(tok);
    xmlFreeDoc(doc);
    return rc;
}

static char *sts_url(const struct creds_opts *o, struct err *e)
{
    const char *ep = o->sts_endpoint, *from = "sts_endpoint";
    char *u;

    if (ep == NULL || ep[0] == '\0') {
        ep = getenv("AWS_ENDPOINT_URL_STS");
        from = "AWS_ENDPOINT_URL_STS";
    }
    if (ep != NULL && ep[0] != '\0') {
        /* no scheme: libcurl would guess http:// and send the token in clear */
        if (strncasecmp(ep, "https://", 8) != 0 && strncasecmp(ep, "http://", 7) != 0) {
            err_setf(e, ERR_CONFIG, "%s \"%s\" is not a URL like https://host[:port]", from, ep);
            return NULL;
        }
        if ((u = strdup(ep)) == NULL)
            err_setf(e, ERR_NOMEM, "out of memory");
        return u;
    }
    if (o->aws_region != NULL && o->aws_region[0] != '\0')
        u = xasprintf("https://sts.%s.amazonaws.com/", o->aws_region);
    else
        u = strdup("https://sts.amazonaws.com/");
    if (u == NULL)
        err_setf(e, ERR_NOMEM, "out of memory");
    return u;
}

int creds_src_web_identity(const struct creds_opts *o, const char *token_file, const char *role_arn,
                           const char *session_name, struct creds *c, char *detail, size_t n, struct err *e)
{
    unsigned char *tok = NULL;
    size_t len = 0;
    char *url = NULL, *etok = NULL, *earn = NULL, *ename = NULL, *body = NULL, what[400], sess[64];
    struct creds_http h = { 0 };
    int rc = -1;

    if (creds_read_token(token_file, 65536, &tok, &len, e) < 0)
        return err_prefix(e, "web identity token file");
    while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        len--;
    tok[len] = '\0';
    log_add_secret((char *)tok);
    if (len == 0) {
        err_setf(e, ERR_CONFIG, "web identity token file %s is empty", token_file);
        goto out;
    }
    if (session_name == NULL || session_name[0] == '\0') {
        snprintf(sess, sizeof sess, "walship-%ld", (long)time(NULL));
        session_name = sess;
    }
    if ((url = sts_url(o, e)) == NULL)
        goto out;
    etok = sigv4_uri_encode((char *)tok, 0);
    earn = sigv4_uri_encode(role_arn, 0);
    ename = sigv4_uri_encode(session_name, 0);
    if (etok == NULL || earn == NULL || ename == NULL)
        goto oom;
    body = xasprintf("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s&RoleSessionName=%s"
                     "&WebIdentityToken=%s", earn, ename, etok);
    if (body == NULL)
        goto oom;
    snprintf(what, sizeof what, "STS AssumeRoleWithWebIdentity at %s for role %s", url, role_arn);
    h = (struct creds_http){ .method = "POST", .url = url,
                             .headers = { "Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                                          "Accept: application/xml" },
                             .body = body, .connect_timeout_ms = 5000, .timeout_ms = 30000,
                             .ca_file = o->ca_file, .attempts = 3, .proxy = 1 };
    if (creds_http_run(&h, what, e) < 0)
        goto out;
    if (h.status != 200) {
        if (h.resp_len > 0 && creds_parse_sts(h.resp, h.resp_len, what, c, e) < 0) {
            err_prefix(e, "HTTP %ld", h.status);
        } else {
            creds_clear(c);
            err_setf(e, ERR_AUTH, "%s: HTTP %ld", what, h.status);
        }
        goto out;
    }
    if (creds_parse_sts(h.resp, h.resp_len, what, c, e) < 0)
        goto out;
    snprintf(detail, n, "role %s", role_arn);
    rc = 0;
    goto out;
oom:
    err_setf(e, ERR_NOMEM, "out of memory");
out:
    if (rc < 0) {   /* an STS error message may quote the token it was sent */
        creds_err_scrub(e, (char *)tok);
        creds_err_scrub(e, etok);
    }
    creds_http_clear(&h);
    if (tok != NULL)
        explicit_bzero(tok, len);
    free(tok);
    free(url);
    free(etok);
    free(earn);
    free(ename);
    free(body);
    return rc;
}
