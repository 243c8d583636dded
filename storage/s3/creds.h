/*
 * creds — AWS credentials for the S3 driver, from the sources the AWS SDKs
 * use, in their order: the environment, web identity (STS
 * AssumeRoleWithWebIdentity), the shared config and credentials files
 * (static keys, credential_process, role_arn + web_identity_token_file),
 * the container endpoint (ECS, EKS Pod Identity) and EC2 instance metadata
 * (IMDSv2).  docs/S3.md, "Credentials", is the contract.
 *
 * A provider is opened per region from a struct creds_opts (built by the
 * configuration layer; the driver never sees struct config) and is shared
 * by every stor of the process that asks for the same source: it is cached
 * per process, reference counted and thread-safe.  Temporary credentials
 * are refreshed before they expire, on the first creds_current() call that
 * finds them close to expiry.  Credentials live in memory only; every
 * secret and token is registered with log_add_secret() and never put into
 * an error message.
 *
 * Library code: nothing printed.  credential_process is the one place that
 * starts a process (posix_spawn, no shell), because that is its definition.
 */
#ifndef WALSHIP_CREDS_H
#define WALSHIP_CREDS_H

#include <stddef.h>
#include <time.h>

#include "err.h"
#include "note.h"

enum creds_source {
    CREDS_AUTO = 0,
    CREDS_ENV,
    CREDS_STATIC,
    CREDS_PROFILE,
    CREDS_WEB_IDENTITY,
    CREDS_CONTAINER,
    CREDS_IMDS,
};

struct creds_opts {
    enum creds_source source;
    const char *region_name;        /* [region NAME], for messages */
    const char *profile;            /* profile:NAME; NULL = $AWS_PROFILE, else "default" */
    const char *access_key_id;      /* static keys (region section); NULL = none */
    const char *secret_access_key;
    const char *session_token;
    const char *aws_region;         /* the regional STS endpoint's region */
    const char *sts_endpoint;       /* NULL = $AWS_ENDPOINT_URL_STS, else https://sts.REGION.amazonaws.com */
    const char *ca_file;            /* extra CA bundle for https endpoints */
    int imds_v1;                    /* allow IMDSv1 when no IMDSv2 token can be had */
};

struct creds {
    char *access_key;
    char *secret_key;
    char *token;                    /* NULL when none */
    time_t expires;                 /* 0 = does not expire */
    time_t fetched;
};

struct creds_provider;

/* Parse "auto", "env", "static", "profile", "profile:NAME", "web-identity",
 * "container", "imds"; *profile gets NAME (malloc'd) or NULL. */
int creds_parse_source(const char *s, enum creds_source *src, char **profile, struct err *e);
const char *creds_source_name(enum creds_source s);

/* The provider for these options: resolved (auto walks the chain) and with
 * credentials fetched, or an error naming the source: ERR_CONFIG when no
 * source is configured or a source is set up wrongly, ERR_AUTH when an
 * endpoint refuses or hands out expired credentials, ERR_NET when it cannot
 * be reached. */
int creds_open(const struct creds_opts *o, struct creds_provider **out, struct err *e);
/* Fresh credentials: when *gen differs from the provider's generation,
 * *c is replaced by a copy of the current ones (the old strings freed) and
 * *gen updated.  Refreshes first when they expire within the margin; a
 * refresh, or a failed one while the current credentials still hold (tried
 * again after a back-off, not at every call), is
 * reported to `notes` (the asking stor's sink; the provider is shared). */
int creds_current(struct creds_provider *p, struct creds *c, unsigned *gen, const struct note_sink *notes,
                  struct err *e);
/* S3 refused the credentials of generation `gen` as expired (ExpiredToken,
 * TokenRefreshRequired) although their Expiration is still ahead: the
 * session was revoked, or this host's clock is behind.  The next
 * creds_current() fetches anew (the back-off applies).  1 when that was
 * arranged (temporary credentials of the current generation), else 0. */
int creds_refused(struct creds_provider *p, unsigned gen);
/* "imds (role web)", "profile prod (credential_process)", "auto: env"... */
const char *creds_describe(const struct creds_provider *p);
/* Times fetched so far (tests). */
unsigned creds_fetches(const struct creds_provider *p);
void creds_close(struct creds_provider *p);

void creds_clear(struct creds *c);
/* Seconds before expiry at which credentials are refreshed. */
time_t creds_refresh_margin(const struct creds *c);

/* ---- for the source modules (creds_*.c) and unit tests ---- */

/* Take ownership of strings into c (strdup'd); registers the secrets with
 * log_add_secret().  0, or -1 with ERR_NOMEM. */
int creds_set(struct creds *c, const char *ak, const char *sk, const char *token, time_t expires,
              struct err *e);
/* Every occurrence of `secret` (a token walship sent: an endpoint may quote
 * it back) in e->msg replaced by "<redacted>".  Errors also go where the
 * log's redaction does not: JSON output, state files. */
void creds_err_scrub(struct err *e, const char *secret);
/* The JSON of the container endpoint, IMDS and credential_process
 * (AccessKeyId, SecretAccessKey, Token or SessionToken, Expiration).
 * `what` names the source for errors (ERR_AUTH). */
int creds_parse_json(const char *buf, size_t len, const char *what, struct creds *c, struct err *e);
/* For the endpoints whose credentials always end (container, IMDS): an
 * answer without Expiration is refused (ERR_AUTH), c cleared. */
int creds_need_expiry(struct creds *c, const char *what, struct err *e);
/* A token file (web identity, container authorization): a regular file
 * (a symbolic link to one is fine) of at most `max` bytes; anything else,
 * or one that cannot be opened, is ERR_CONFIG.  Never blocks on a FIFO. */
int creds_read_token(const char *path, size_t max, unsigned char **out, size_t *len, struct err *e);
/* STS AssumeRoleWithWebIdentityResponse (or ErrorResponse → ERR_AUTH);
 * Expiration required. */
int creds_parse_sts(const char *buf, size_t len, const char *what, struct creds *c, struct err *e);

/* A blocking HTTP request on its own curl handle (not an S3 engine). */
struct creds_http {
    const char *method;             /* GET PUT POST */
    const char *url;
    const char *headers[4];         /* "Name: value", NULL-terminated */
    const char *body;               /* POST/PUT body or NULL */
    long connect_timeout_ms;
    long timeout_ms;                /* whole request */
    const char *ca_file;
    int attempts;                   /* tries for no answer or 5xx; 0 = 1 */
    int proxy;                      /* 1: http_proxy etc. apply (STS); 0: never (link-local, loopback) */
    /* results */
    long status;
    char *resp;                     /* NUL-terminated, malloc'd */
    size_t resp_len;
};
int creds_http_run(struct creds_http *h, const char *what, struct err *e);
void creds_http_clear(struct creds_http *h);

/* Sources.  Each returns 0 with *c filled, 1 when it is not configured
 * here (auto goes on), -1 on error.  `detail` gets a short description
 * ("role NAME", "http://..."), never a secret. */
int creds_src_env(struct creds *c, char *detail, size_t n, struct err *e);
int creds_src_web_identity(const struct creds_opts *o, const char *token_file, const char *role_arn,
                           const char *session_name, struct creds *c, char *detail, size_t n, struct err *e);
/* The shared credentials and config files as a profile would be read now
 * (AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE, else ~/.aws/): each
 * one's device, inode, size and modification time as text in `out` ("-"
 * for one absent).  A process that keeps a profile's keys read at its
 * start serves only callers that see these very files. */
void creds_profile_files_id(char *out, size_t len);
int creds_src_profile(const struct creds_opts *o, int explicit_, struct creds *c, char *detail, size_t n,
                      struct err *e);
int creds_src_container(const struct creds_opts *o, struct creds *c, char *detail, size_t n, struct err *e);
int creds_src_imds(const struct creds_opts *o, struct creds *c, char *detail, size_t n, struct err *e);
/* credential_process: run `cmd` (split by wordexp: quotes, $VAR, ~ and
 * globs as a shell has them; command substitution refused; no shell) and
 * read Version 1 JSON from its stdout. */
int creds_run_process(const char *cmd, const char *what, struct creds *c, struct err *e);

#endif
