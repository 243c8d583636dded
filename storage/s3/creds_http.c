/* creds_http — one blocking HTTP request for the credential endpoints
 * (IMDS, the container endpoint, STS), on its own curl easy handle, with a
 * bounded connect time and a bounded total time so that a dead endpoint
 * never hangs a command. */
#include "creds.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3_dl.h"

#include "http.h"

#define CREDS_RESP_MAX (256u << 10)

struct buf {
    char *p;
    size_t n;
    int over;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    char *np;

    if (b->n + n > CREDS_RESP_MAX) {
        b->over = 1;
        return 0;
    }
    np = realloc(b->p, b->n + n + 1);
    if (np == NULL)
        return 0;
    memcpy(np + b->n, ptr, n);
    b->p = np;
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

void creds_http_clear(struct creds_http *h)
{
    free(h->resp);
    h->resp = NULL;
    h->resp_len = 0;
    h->status = 0;
}

static int attempt(struct creds_http *h, const char *what, struct err *e)
{
    CURL *c;
    struct curl_slist *hl = NULL, *t;
    struct buf b = { NULL, 0, 0 };
    char eb[CURL_ERROR_SIZE] = "";
    CURLcode cc;
    size_t i;
    int rc = -1;

    if (s3_dl_load(e) < 0)
        return -1;
    c = curl_easy_init();
    if (c == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < sizeof h->headers / sizeof h->headers[0] && h->headers[i] != NULL; i++) {
        if ((t = curl_slist_append(hl, h->headers[i])) == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        hl = t;
    }
    if ((t = curl_slist_append(hl, "Expect:")) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    hl = t;
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, h->method);
    if (h->body != NULL || strcmp(h->method, "PUT") == 0 || strcmp(h->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body ? h->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(h->body ? strlen(h->body) : 0));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, eb);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms > 0 ? h->connect_timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms > 0 ? h->timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* IMDS and the container endpoint are link-local or loopback: never via
     * a proxy.  STS is a public endpoint like S3, whose requests follow
     * http_proxy, https_proxy and no_proxy: where the way out is a proxy,
     * it is STS's too (as in the SDKs). */
    if (!h->proxy)
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (h->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    cc = curl_easy_perform(c);
    if (b.over) {
        err_setf(e, ERR_AUTH, "%s: the answer is larger than %u bytes", what, CREDS_RESP_MAX);
        goto out;
    }
    if (cc != CURLE_OK) {
        err_setf(e, ERR_NET, "%s: %s", what, eb[0] ? eb : curl_easy_strerror(cc));
        e->transient = 1;
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
    h->resp = b.p ? b.p : strdup("");
    h->resp_len = b.n;
    b.p = NULL;
    rc = h->resp == NULL ? err_setf(e, ERR_NOMEM, "out of memory") : 0;
out:
    free(b.p);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc;
}

int creds_http_run(struct creds_http *h, const char *what, struct err *e)
{
    int n = h->attempts > 0 ? h->attempts : 1, i;

    for (i = 0; i < n; i++) {
        creds_http_clear(h);
        if (i > 0)
            usleep(200000u << (i - 1));
        if (attempt(h, what, e) < 0) {
            if (e->code != ERR_NET)
                return -1;
            continue;
        }
        if (!http_status_transient(h->status) || i == n - 1)
            return 0;
    }
    return -1;
}
