/* creds — the provider: choosing the source, the per-process cache,
 * refreshing before expiry.  The sources are in creds_src.c (environment,
 * web identity, container, IMDS) and creds_profile.c (shared files). */
#include "creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "s3.h"
#include "sigv4.h"
#include "util.h"

struct creds_provider {
    struct creds_provider *next;
    char *key;                      /* cache key: the options, never a secret */
    int refs;
    pthread_mutex_t lock;
    enum creds_source want;         /* as configured */
    enum creds_source used;         /* what auto resolved to */
    struct creds_opts o;            /* strings owned (copies) */
    char *profile;
    char *ak, *sk, *tok, *aws_region, *sts_endpoint, *ca_file, *region_name;
    struct creds cur;
    unsigned gen;
    unsigned fetches;
    time_t retry_at;                /* after a failed refresh: no new try before */
    int refused;                    /* S3 called them expired: refresh at the next call */
    int expired_failed;             /* ... and the credentials had expired: */
    struct err last;                /* the error then, answered until retry_at */
    char describe[300];
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct creds_provider *cache;

static const char *const names[] = { "auto", "env", "static", "profile", "web-identity", "container", "imds" };

const char *creds_source_name(enum creds_source s)
{
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

int creds_parse_source(const char *s, enum creds_source *src, char **profile, struct err *e)
{
    size_t i;

    *profile = NULL;
    if (strncmp(s, "profile:", 8) == 0) {
        if (s[8] == '\0')
            return err_setf(e, ERR_CONFIG, "\"profile:\" needs a profile name");
        *src = CREDS_PROFILE;
        if ((*profile = strdup(s + 8)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        return 0;
    }
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *src = (enum creds_source)i;
            return 0;
        }
    }
    return err_setf(e, ERR_CONFIG, "unknown credentials source \"%s\" (auto, env, static, profile[:NAME], "
                    "web-identity, container or imds)", s);
}

void creds_clear(struct creds *c)
{
    free(c->access_key);
    free(c->secret_key);
    free(c->token);
    memset(c, 0, sizeof *c);
}

/* Keys and tokens are printable ASCII without blanks (base64, key ids):
 * anything else, a line break above all, went into the Authorization and
 * x-amz-security-token headers as it was, and a token ending in "\r\nX: y"
 * sent a header of its choosing. */
static const char *bad_field(const char *ak, const char *sk, const char *token)
{
    const char *const v[3] = { ak, sk, token }, *const name[3] = { "access key id", "secret key", "session token" };
    const unsigned char *p;
    int i;

    for (i = 0; i < 3; i++)
        for (p = (const unsigned char *)v[i]; p != NULL && *p != '\0'; p++)
            if (*p <= 0x20 || *p >= 0x7f)
                return name[i];
    return NULL;
}

int creds_set(struct creds *c, const char *ak, const char *sk, const char *token, time_t expires, struct err *e)
{
    struct creds n = { 0 };
    const char *bad = bad_field(ak, sk, token);

    if (bad != NULL)
        return err_setf(e, ERR_AUTH, "the %s holds a blank, a line break or another byte that is not printable "
                        "ASCII (not shown)", bad);

    n.access_key = strdup(ak);
    n.secret_key = strdup(sk);
    n.token = token != NULL && token[0] != '\0' ? strdup(token) : NULL;
    n.expires = expires;
    n.fetched = time(NULL);
    if (n.access_key == NULL || n.secret_key == NULL || (token != NULL && token[0] != '\0' && n.token == NULL)) {
        creds_clear(&n);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    log_add_secret(n.secret_key);
    log_add_secret(n.token);
    creds_clear(c);
    *c = n;
    return 0;
}

void creds_err_scrub(struct err *e, const char *secret)
{
    if (secret != NULL && strlen(secret) >= 4)
        log_redact_one(e->msg, sizeof e->msg, secret);
}

time_t creds_refresh_margin(const struct creds *c)
{
    time_t life;

    if (c->expires == 0)
        return 0;
    /* The SDKs refresh 5 to 15 minutes early; short-lived credentials
     * (tests, tight session policies) a quarter of their life early. */
    life = c->expires - c->fetched;
    if (life <= 0)
        return 0;
    return life / 4 < 300 ? life / 4 : 300;
}

int creds_parse_json(const char *buf, size_t len, const char *what, struct creds *c, struct err *e)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je), *v;
    const char *ak = NULL, *sk = NULL, *tok = NULL, *exp = NULL;
    time_t expires = 0;
    int rc = -1;

    if (root == NULL || !json_is_object(root)) {
        err_setf(e, ERR_AUTH, "%s: the answer is not a JSON object", what);
        goto out;
    }
    if ((v = json_object_get(root, "Code")) != NULL && json_is_string(v) &&
        strcmp(json_string_value(v), "Success") != 0) {
        err_setf(e, ERR_AUTH, "%s: the answer says Code \"%.100s\"", what, json_string_value(v));
        goto out;
    }
    if ((v = json_object_get(root, "Version")) != NULL && !(json_is_integer(v) && json_integer_value(v) == 1)) {
        err_setf(e, ERR_AUTH, "%s: unsupported Version (walship reads Version 1)", what);
        goto out;
    }
    ak = json_string_value(json_object_get(root, "AccessKeyId"));
    sk = json_string_value(json_object_get(root, "SecretAccessKey"));
    tok = json_string_value(json_object_get(root, "Token"));
    if (tok == NULL)
        tok = json_string_value(json_object_get(root, "SessionToken"));
    v = json_object_get(root, "Expiration");
    exp = json_string_value(v);
    if (v != NULL && exp == NULL && !json_is_null(v)) {
        /* a number or an object: read as "never expires", the credentials
         * were never refreshed and signed on after their end */
        err_setf(e, ERR_AUTH, "%s: Expiration is not an ISO 8601 string", what);
        goto out;
    }
    if (ak == NULL || ak[0] == '\0' || sk == NULL || sk[0] == '\0') {
        err_setf(e, ERR_AUTH, "%s: the answer has no AccessKeyId and SecretAccessKey", what);
        goto out;
    }
    if (exp != NULL && s3_parse_iso8601(exp, &expires) < 0) {
        err_setf(e, ERR_AUTH, "%s: bad Expiration \"%.40s\"", what, exp);
        goto out;
    }
    if ((rc = creds_set(c, ak, sk, tok, expires, e)) < 0 && e->code == ERR_AUTH)
        err_prefix(e, "%s", what);
out:
    json_decref(root);
    return rc;
}

int creds_need_expiry(struct creds *c, const char *what, struct err *e)
{
    if (c->expires != 0)
        return 0;
    /* read as "never expires", they were never refreshed: a long-running
     * process (archiver, prefetcher, a long backup-push) signed after
     * their end until it stopped */
    creds_clear(c);
    return err_setf(e, ERR_AUTH, "%s: the answer has no Expiration (temporary credentials say when they end)",
                    what);
}

int creds_read_token(const char *path, size_t max, unsigned char **out, size_t *len, struct err *e)
{
    struct stat st;
    int fd, rc;

    /* O_NONBLOCK: a FIFO without a writer blocked the open for ever */
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
        return err_errno(e, ERR_CONFIG, errno, "could not open \"%s\"", path);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_setf(e, ERR_CONFIG, "\"%s\" is not a regular file", path);
    }
    rc = read_fd_all(fd, path, max, out, len, e);
    close(fd);
    return rc;
}

/* ---- fetching ---- */

static int fetch_one(struct creds_provider *p, enum creds_source s, struct creds *c, char *d, size_t n,
                     int explicit_, struct err *e)
{
    switch (s) {
    case CREDS_STATIC:
        if (p->ak == NULL)
            return explicit_ ? err_setf(e, ERR_CONFIG, "no access_key_id and secret_access_key in the region "
                                        "section") : 1;
        snprintf(d, n, "access key %s", p->ak);
        return creds_set(c, p->ak, p->sk, p->tok, 0, e);
    case CREDS_ENV: {
        int rc = creds_src_env(c, d, n, e);

        if (rc == 1 && explicit_)
            return err_setf(e, ERR_CONFIG, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
        return rc;
    }
    case CREDS_WEB_IDENTITY: {
        const char *tf = getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), *arn = getenv("AWS_ROLE_ARN");

        /* A token file without a role is web identity set up halfway (the
         * SDKs refuse it): `auto` must not go on to another identity. */
        if (tf != NULL && tf[0] != '\0' && (arn == NULL || arn[0] == '\0'))
            return err_setf(e, ERR_CONFIG, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
        /* and the other half: the role asked for, no token to assume it
         * with (the SDKs go on, to the node's role in an EKS pod) */
        if (arn != NULL && arn[0] != '\0' && (tf == NULL || tf[0] == '\0'))
            return err_setf(e, ERR_CONFIG, "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not (unset "
                            "AWS_ROLE_ARN, or choose the source with credentials = ...)");
        if (tf == NULL || tf[0] == '\0' || arn == NULL || arn[0] == '\0')
            return explicit_ ? err_setf(e, ERR_CONFIG, "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set")
                             : 1;
        return creds_src_web_identity(&p->o, tf, arn, getenv("AWS_ROLE_SESSION_NAME"), c, d, n, e);
    }
    case CREDS_PROFILE:
        return creds_src_profile(&p->o, explicit_, c, d, n, e);
    case CREDS_CONTAINER: {
        int rc = creds_src_container(&p->o, c, d, n, e);

        if (rc == 1 && explicit_)
            return err_setf(e, ERR_CONFIG, "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
                            "AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
        return rc;
    }
    case CREDS_IMDS: {
        int rc = creds_src_imds(&p->o, c, d, n, e);

        if (rc == 1 && explicit_)
            return err_setf(e, ERR_CONFIG, "AWS_EC2_METADATA_DISABLED is set");
        return rc;
    }
    default:
        return err_setf(e, ERR_INTERNAL, "credentials source %d", (int)s);
    }
}

/* A source's file that is not there (a token file, a credential_process
 * program) is a source set up wrongly: ERR_CONFIG.  ERR_NOTFOUND means "the
 * object does not exist" to every caller of a stor (exit 1; a GET whose
 * signing refresh failed would read as an absent object). */
static void not_notfound(struct err *e)
{
    if (e->code == ERR_NOTFOUND)
        e->code = ERR_CONFIG;
}

/* Fetch from p->used, or (auto, first time) walk the chain. */
static int fetch(struct creds_provider *p, struct creds *c, struct err *e)
{
    static const enum creds_source chain[] = { CREDS_STATIC, CREDS_ENV, CREDS_WEB_IDENTITY, CREDS_PROFILE,
                                               CREDS_CONTAINER, CREDS_IMDS };
    char d[200] = "", imds[300] = "";
    size_t i;
    int rc;

    if (p->want != CREDS_AUTO || p->used != CREDS_AUTO) {
        enum creds_source s = p->want != CREDS_AUTO ? p->want : p->used;

        rc = fetch_one(p, s, c, d, sizeof d, 1, e);
        if (rc < 0) {
            not_notfound(e);
            return err_prefix(e, "region %s: credentials from %s", p->region_name, creds_source_name(s));
        }
        goto found;
    }
    for (i = 0; i < sizeof chain / sizeof chain[0]; i++) {
        rc = fetch_one(p, chain[i], c, d, sizeof d, 0, e);
        if (rc < 0 && chain[i] == CREDS_IMDS && (e->code == ERR_NET || strstr(e->msg, "IMDSv2") != NULL)) {
            /* not on EC2, or no IMDSv2 there: the chain ends, saying so */
            snprintf(imds, sizeof imds, " (instance metadata: %.250s)", e->msg);
            rc = 1;
        }
        if (rc < 0) {
            not_notfound(e);
            return err_prefix(e, "region %s: credentials (auto, from %s)", p->region_name,
                              creds_source_name(chain[i]));
        }
        if (rc == 0) {
            p->used = chain[i];
            goto found;
        }
    }
    return err_setf(e, ERR_CONFIG, "region %s: no S3 credentials found: tried access_key_id and "
                    "secret_access_key in [region %s], AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, the profile in ~/.aws, the container "
                    "endpoint and EC2 instance metadata%s (set credentials = ... in the region to choose one)",
                    p->region_name, p->region_name, imds);
found:
    if (c->expires != 0 && c->expires <= time(NULL))
        return err_setf(e, ERR_AUTH, "region %s: the credentials from %s expired already (at %ld, now %ld)",
                        p->region_name, creds_source_name(p->want != CREDS_AUTO ? p->want : p->used),
                        (long)c->expires, (long)time(NULL));
    p->fetches++;
    p->gen++;
    if (p->want == CREDS_AUTO)
        snprintf(p->describe, sizeof p->describe, "auto: %s%s%s%s", creds_source_name(p->used), d[0] ? " (" : "",
                 d, d[0] ? ")" : "");
    else
        snprintf(p->describe, sizeof p->describe, "%s%s%s%s", creds_source_name(p->want), d[0] ? " (" : "", d,
                 d[0] ? ")" : "");
    return 0;
}

/* ---- the cache ---- */

/* The cache key: the options, with static secrets only as a SHA-256 (two
 * regions with the same key id and different secrets are two providers). */
static char *opts_key(const struct creds_opts *o)
{
    char *sec = xasprintf("%s|%s", o->secret_access_key ? o->secret_access_key : "",
                          o->session_token ? o->session_token : "");
    char h[65];

    if (sec == NULL)
        return NULL;
    sigv4_sha256_hex(sec, strlen(sec), h);
    explicit_bzero(sec, strlen(sec));
    free(sec);
    return xasprintf("%d|%s|%s|%s|%s|%s|%s|%d", (int)o->source, o->profile ? o->profile : "",
                     o->access_key_id ? o->access_key_id : "", o->aws_region ? o->aws_region : "",
                     o->sts_endpoint ? o->sts_endpoint : "", o->ca_file ? o->ca_file : "", h, o->imds_v1);
}

static void provider_free(struct creds_provider *p)
{
    creds_clear(&p->cur);
    free(p->key);
    free(p->profile);
    free(p->ak);
    free(p->sk);
    free(p->tok);
    free(p->aws_region);
    free(p->sts_endpoint);
    free(p->ca_file);
    free(p->region_name);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static char *dup_or_null(const char *s, int *oom)
{
    char *d;

    if (s == NULL || s[0] == '\0')
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *oom = 1;
    return d;
}

static struct creds_provider *provider_new(const struct creds_opts *o, char *key)
{
    struct creds_provider *p = calloc(1, sizeof *p);
    int oom = 0;

    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    p->key = key;
    p->refs = 1;
    p->want = o->source;
    p->used = CREDS_AUTO;
    p->profile = dup_or_null(o->profile, &oom);
    p->ak = dup_or_null(o->access_key_id, &oom);
    p->sk = dup_or_null(o->secret_access_key, &oom);
    p->tok = dup_or_null(o->session_token, &oom);
    p->aws_region = dup_or_null(o->aws_region, &oom);
    p->sts_endpoint = dup_or_null(o->sts_endpoint, &oom);
    p->ca_file = dup_or_null(o->ca_file, &oom);
    p->region_name = strdup(o->region_name ? o->region_name : "?");
    if (oom || p->region_name == NULL) {
        provider_free(p);
        return NULL;
    }
    p->o = (struct creds_opts){ o->source, p->region_name, p->profile, p->ak, p->sk, p->tok, p->aws_region,
                                p->sts_endpoint, p->ca_file, o->imds_v1 };
    return p;
}

int creds_open(const struct creds_opts *o, struct creds_provider **out, struct err *e)
{
    struct creds_provider *p;
    char *key;

    *out = NULL;
    if ((o->access_key_id == NULL) != (o->secret_access_key == NULL))
        return err_setf(e, ERR_CONFIG, "region %s: access_key_id and secret_access_key must be set together",
                        o->region_name);
    if (o->session_token != NULL && o->access_key_id == NULL)
        return err_setf(e, ERR_CONFIG, "region %s: session_token is set without access_key_id and "
                        "secret_access_key", o->region_name);
    if (o->source != CREDS_AUTO && o->source != CREDS_STATIC && o->access_key_id != NULL)
        return err_setf(e, ERR_CONFIG, "region %s: access_key_id is set but credentials = %s (use static or "
                        "auto, or remove the keys)", o->region_name, creds_source_name(o->source));
    key = opts_key(o);
    if (key == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&cache_lock);
    for (p = cache; p != NULL; p = p->next) {
        if (strcmp(p->key, key) == 0) {
            p->refs++;
            pthread_mutex_unlock(&cache_lock);
            free(key);
            *out = p;
            return 0;
        }
    }
    p = provider_new(o, key);
    if (p == NULL) {
        pthread_mutex_unlock(&cache_lock);
        free(key);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    /* The first fetch happens under the cache lock, so that threads
     * opening the same region at once ask the endpoint once. */
    if (fetch(p, &p->cur, e) < 0) {
        pthread_mutex_unlock(&cache_lock);
        provider_free(p);
        return -1;
    }
    p->next = cache;
    cache = p;
    pthread_mutex_unlock(&cache_lock);
    *out = p;
    return 0;
}

int creds_current(struct creds_provider *p, struct creds *c, unsigned *gen, const struct note_sink *notes,
                  struct err *e)
{
    time_t now = time(NULL);
    int rc = 0;

    pthread_mutex_lock(&p->lock);
    /* A refresh that failed is tried again after a back-off, not at every
     * signed request: each try is a process or an endpoint round trip with
     * its timeouts (up to 90 s for STS), under this lock, and a warning.
     * Once the credentials have expired, a failed try is answered with its
     * error at once for a few seconds (each worker would otherwise wait out
     * the same timeouts in turn), then tried again. */
    if (p->cur.expires != 0 && now >= p->cur.expires && now < p->retry_at && p->expired_failed) {
        *e = p->last;
        rc = -1;
    } else if (p->cur.expires != 0 && (p->refused || now + creds_refresh_margin(&p->cur) >= p->cur.expires) &&
               now >= p->retry_at) {
        struct creds n = { 0 };
        struct err why = ERR_INIT;

        if (fetch(p, &n, &why) == 0) {
            creds_clear(&p->cur);
            p->cur = n;
            p->retry_at = 0;
            p->expired_failed = 0;
            p->refused = 0;
            note(notes, LOG_DEBUG, "region %s: credentials refreshed from %s, valid for %ld s", p->region_name,
                 p->describe, (long)(p->cur.expires ? p->cur.expires - now : 0));
        } else if (now < p->cur.expires) {
            time_t wait = (p->cur.expires - now) / 4;

            creds_clear(&n);
            p->retry_at = now + (wait < 1 ? 1 : wait > 30 ? 30 : wait);
            note(notes, LOG_WARNING, "%s; the current credentials stay in use until they expire in %ld s (next "
                 "try in %ld s)", why.msg, (long)(p->cur.expires - now), (long)(p->retry_at - now));
        } else {
            creds_clear(&n);
            *e = why;
            err_prefix(e, "the credentials expired and could not be refreshed");
            p->last = *e;
            p->expired_failed = 1;
            p->retry_at = now + 5;
            rc = -1;
        }
    }
    if (rc == 0 && *gen != p->gen) {
        struct creds n = { 0 };

        if (creds_set(&n, p->cur.access_key, p->cur.secret_key, p->cur.token, p->cur.expires, e) < 0) {
            rc = -1;
        } else {
            n.fetched = p->cur.fetched;
            creds_clear(c);
            *c = n;
            *gen = p->gen;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int creds_refused(struct creds_provider *p, unsigned gen)
{
    int rc = 0;

    pthread_mutex_lock(&p->lock);
    if (gen == p->gen && p->cur.expires != 0) {
        p->refused = 1;
        rc = 1;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

const char *creds_describe(const struct creds_provider *p)
{
    return p->describe;
}

unsigned creds_fetches(const struct creds_provider *p)
{
    return p->fetches;
}

void creds_close(struct creds_provider *p)
{
    /* Providers stay cached for the life of the process (a later stor of the
     * same region reuses them); this only drops the reference. */
    if (p == NULL)
        return;
    pthread_mutex_lock(&cache_lock);
    p->refs--;
    pthread_mutex_unlock(&cache_lock);
}
