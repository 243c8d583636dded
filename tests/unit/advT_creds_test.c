/* advT_creds_test — adversarial pass T on the credential provider: a
 * refresh that keeps failing while the old credentials still hold (no
 * retry storm: one try per back-off, not one per signed request), a
 * secret key in the environment without its key id (an error, not a walk
 * on to another identity), and a web identity token that an STS error
 * message quotes back (never in the error). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "log.h"
#include "tap.h"

static char dir[256];

static void write_file(const char *name, const char *text, int mode)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof p, "%s/%s", dir, name);
    f = fopen(p, "w");
    if (f == NULL)
        exit(99);
    fputs(text, f);
    fclose(f);
    chmod(p, (mode_t)mode);
}

static int count_runs(void)
{
    char p[512];
    struct stat st;

    snprintf(p, sizeof p, "%s/runs", dir);
    return stat(p, &st) == 0 ? (int)st.st_size : 0;
}

struct notes {
    int warnings;
};

static void on_note(void *arg, enum log_level level, const char *msg)
{
    struct notes *n = arg;

    (void)msg;
    if (level == LOG_WARNING)
        n->warnings++;
}

/* credential_process hands out credentials for 8 s the first time and
 * fails every time after: in the refresh margin (2 s), each signed request
 * asked it again, a process (or an STS or IMDS round trip with its
 * timeouts, under the provider's lock) per request, and a warning each. */
static void test_refresh_backoff(void)
{
    char p[2048];
    struct creds_opts o = { 0 };
    struct creds_provider *prov = NULL;
    struct creds c = { 0 };
    struct notes n = { 0 };
    struct note_sink sink = { on_note, &n };
    struct err e = ERR_INIT;
    unsigned gen = 0;
    int i, fails = 0, runs;
    time_t exp;

    snprintf(p, sizeof p,
             "#!/bin/sh\nprintf x >> '%s/runs'\n"
             "[ \"$(wc -c < '%s/runs')\" -gt 1 ] && { echo refused >&2; exit 1; }\n"
             "printf '{\"Version\":1,\"AccessKeyId\":\"AKBACKOFF\",\"SecretAccessKey\":\"sk-backoff\","
             "\"Expiration\":\"%%s\"}' \"$(date -u -d @$(($(date +%%s) + 8)) +%%Y-%%m-%%dT%%H:%%M:%%SZ)\"\n",
             dir, dir);
    write_file("proc.sh", p, 0755);
    snprintf(p, sizeof p, "[profile backoff]\ncredential_process = %s/proc.sh\n", dir);
    write_file("config", p, 0600);
    snprintf(p, sizeof p, "%s/config", dir);
    setenv("AWS_CONFIG_FILE", p, 1);
    snprintf(p, sizeof p, "%s/nocredentials", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);

    o.source = CREDS_PROFILE;
    o.region_name = "r";
    o.profile = "backoff";
    ok(creds_open(&o, &prov, &e) == 0, "credential_process: 8-second credentials: %s", e.msg);
    if (prov == NULL)
        return;
    ok(creds_current(prov, &c, &gen, &sink, &e) == 0 && c.expires != 0, "... in use");
    exp = c.expires;
    while (time(NULL) + creds_refresh_margin(&c) < exp)
        usleep(100000);
    /* in the margin: the old credentials hold, the refresh fails */
    for (i = 0; i < 50; i++)
        if (creds_current(prov, &c, &gen, &sink, &e) < 0)
            fails++;
    runs = count_runs();
    ok(fails == 0, "50 requests in the margin: all signed with the credentials that still hold (%d failed)", fails);
    ok(runs <= 3, "... the failing source asked %d times, not once per request", runs - 1);
    ok(n.warnings >= 1 && n.warnings <= 2, "... %d warning(s), not one per request", n.warnings);
    while (time(NULL) < exp)
        usleep(100000);
    e = (struct err)ERR_INIT;
    ok(creds_current(prov, &c, &gen, &sink, &e) < 0 && strstr(e.msg, "expired") != NULL,
       "once expired: a clear error: %s", e.msg);
    ok(count_runs() == runs + 1, "... after asking the source once more");
    for (i = 0, fails = 0; i < 20; i++) {
        e = (struct err)ERR_INIT;
        if (creds_current(prov, &c, &gen, &sink, &e) < 0 && strstr(e.msg, "exit status 1") != NULL)
            fails++;
    }
    ok(fails == 20 && count_runs() == runs + 1,
       "... 20 more requests right after: the same error at once, the source not asked again (%d)",
       count_runs() - runs - 1);
    creds_close(prov);
    creds_clear(&c);
}

/* AWS_SECRET_ACCESS_KEY (or AWS_SESSION_TOKEN) without AWS_ACCESS_KEY_ID:
 * the environment set up halfway.  `auto` went on to the profile (or the
 * container's, the instance's role) and signed as another identity. */
static void test_half_env(void)
{
    char p[512];
    struct creds_opts o = { 0 };
    struct creds_provider *prov = NULL;
    struct err e = ERR_INIT;

    write_file("credentials", "[default]\naws_access_key_id = AKPROFILE\naws_secret_access_key = sk-profile\n",
               0600);
    snprintf(p, sizeof p, "%s/credentials", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    o.source = CREDS_AUTO;
    o.region_name = "half";
    setenv("AWS_SECRET_ACCESS_KEY", "sk-env-only", 1);
    ok(creds_open(&o, &prov, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, "AWS_ACCESS_KEY_ID") != NULL,
       "auto, AWS_SECRET_ACCESS_KEY without AWS_ACCESS_KEY_ID: an error, not the profile: %s",
       prov ? creds_describe(prov) : e.msg);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    prov = NULL;
    e = (struct err)ERR_INIT;
    setenv("AWS_SESSION_TOKEN", "tok-env-only", 1);
    o.region_name = "half2";
    ok(creds_open(&o, &prov, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, "AWS_ACCESS_KEY_ID") != NULL,
       "auto, AWS_SESSION_TOKEN without the keys: an error too: %s", prov ? creds_describe(prov) : e.msg);
    unsetenv("AWS_SESSION_TOKEN");
    prov = NULL;
    e = (struct err)ERR_INIT;
    /* web identity and EKS Pod Identity set up halfway, the other way
     * round from the halves creds_test checks */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    o.region_name = "half-arn";
    ok(creds_open(&o, &prov, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, "AWS_ROLE_ARN") != NULL,
       "auto, AWS_ROLE_ARN without a token file: an error, not the profile: %s", e.msg);
    unsetenv("AWS_ROLE_ARN");
    prov = NULL;
    e = (struct err)ERR_INIT;
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent/token", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    o.region_name = "half-pod";
    ok(creds_open(&o, &prov, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, "FULL_URI") != NULL,
       "auto, a container authorization token without an endpoint: an error: %s", e.msg);
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    prov = NULL;
    e = (struct err)ERR_INIT;
    o.region_name = "half3";
    ok(creds_open(&o, &prov, &e) == 0 && strstr(creds_describe(prov), "AKPROFILE") != NULL,
       "with neither, the profile: %s", prov ? creds_describe(prov) : e.msg);
    creds_close(prov);
}

/* creds_err_scrub: a token an endpoint quoted back, also in a message
 * filled to the brim with a token shorter than its replacement. */
static void test_scrub(void)
{
    struct err e = ERR_INIT;
    size_t i;

    snprintf(e.msg, sizeof e.msg, "STS: InvalidIdentityToken: the token eyJ.tok-secret.sig is not valid");
    creds_err_scrub(&e, "eyJ.tok-secret.sig");
    is_str(e.msg, "STS: InvalidIdentityToken: the token <redacted> is not valid", "a quoted token is scrubbed");
    for (i = 0; i + 6 < sizeof e.msg; i += 6)
        memcpy(e.msg + i, "abcde ", 6);
    e.msg[i] = '\0';
    creds_err_scrub(&e, "abcde");
    ok(strlen(e.msg) < sizeof e.msg && strstr(e.msg, "abcde") == NULL && strncmp(e.msg, "<redacted> ", 11) == 0,
       "a short token filling the message: scrubbed everywhere, the message cut, still terminated");
    memset(e.msg, 'x', sizeof e.msg - 1);
    memcpy(e.msg + sizeof e.msg - 6, "abcde", 6);
    creds_err_scrub(&e, "abcde");
    ok(strlen(e.msg) < sizeof e.msg && strstr(e.msg, "abcde") == NULL && strstr(e.msg, "abc") == NULL,
       "a short token at the very end of a full message: gone, no room for the replacement");
    snprintf(e.msg, sizeof e.msg, "token acted, again acted");
    creds_err_scrub(&e, "acted");
    is_str(e.msg, "token <redacted>, again <redacted>", "a token that is part of \"<redacted>\": replaced once");
}

/* The log's redaction, with a secret that is part of "<redacted>" and one
 * at the very end of a line that fills the buffer: it replaced the
 * replacement again and again, and its room computation went below zero. */
static void test_log_redact(void)
{
    char p[512], line[4096], big[2100];
    int fd, saved = dup(2);
    ssize_t n;

    snprintf(p, sizeof p, "%s/log", dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || saved < 0)
        exit(99);
    log_add_secret("acted");
    log_add_secret("zq9-end");
    memset(big, 'x', sizeof big);
    memcpy(big + 2047 - 7, "zq9-end", 8);
    alarm(10);
    dup2(fd, 2);
    log_msg(LOG_ERROR, "token acted here");
    log_msg(LOG_ERROR, "%s", big);
    dup2(saved, 2);
    alarm(0);
    close(fd);
    close(saved);
    fd = open(p, O_RDONLY);
    n = fd >= 0 ? read(fd, line, sizeof line - 1) : -1;
    line[n > 0 ? n : 0] = '\0';
    if (fd >= 0)
        close(fd);
    ok(strstr(line, "token <redacted> here") != NULL, "log: a secret inside \"<redacted>\" replaced once");
    ok(strstr(line, "zq9") == NULL && strstr(line, "xxxx") != NULL, "log: a secret at the end of a full line: cut");
}

/* A token file that is not there is a source set up wrongly (ERR_CONFIG,
 * exit 2), never ERR_NOTFOUND: that is "the object does not exist" to every
 * caller (exit 1, st ls said "not found"; a GET whose signing refresh
 * failed so read as an absent object). */
static void test_missing_token_file(void)
{
    char p[512];
    struct creds_opts o = { 0 };
    struct creds_provider *prov = NULL;
    struct err e = ERR_INIT;

    snprintf(p, sizeof p, "%s/no-such-token", dir);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", p, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    o.source = CREDS_WEB_IDENTITY;
    o.region_name = "wi";
    o.sts_endpoint = "http://127.0.0.1:9/";
    ok(creds_open(&o, &prov, &e) < 0 && e.code == ERR_CONFIG, "web identity, token file missing: ERR_CONFIG: %s", e.msg);
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");
    e = (struct err)ERR_INIT;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", p, 1);
    o.source = CREDS_CONTAINER;
    o.region_name = "ct";
    o.sts_endpoint = NULL;
    ok(creds_open(&o, &prov, &e) < 0 && e.code == ERR_CONFIG,
       "container, authorization token file missing: ERR_CONFIG: %s", e.msg);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
}

/* A registered secret that a server quotes into an error (a session token
 * in an S3 or STS message): errors reach JSON output (backup-list --json,
 * status --json), st check's stdout and the standby state file, none of
 * them through log_msg(): the error itself must not hold it. */
static void test_err_redact(void)
{
    struct err e = ERR_INIT;

    log_add_secret("FwoGZXIvYXdzEXAMPLEsessiontoken");
    err_setf(&e, ERR_AUTH, "S3: InvalidToken: the token FwoGZXIvYXdzEXAMPLEsessiontoken is malformed");
    is_str(e.msg, "S3: InvalidToken: the token <redacted> is malformed", "err_setf: a registered secret is redacted");
    err_setf(&e, ERR_AUTH, "refused");
    err_prefix(&e, "STS said FwoGZXIvYXdzEXAMPLEsessiontoken");
    is_str(e.msg, "STS said <redacted>: refused", "err_prefix: redacted in the context too");
    err_errno(&e, ERR_IO, 2, "open FwoGZXIvYXdzEXAMPLEsessiontoken");
    ok(strstr(e.msg, "EXAMPLEsession") == NULL, "err_errno: redacted too");
}

/* A token file that is a FIFO (or a directory, a device): opening a FIFO
 * without a writer blocked for ever, a wal-push or wal-fetch hung. */
static void test_token_fifo(void)
{
    char p[512];
    struct creds_opts o = { 0 };
    struct creds_provider *prov = NULL;
    struct err e = ERR_INIT;
    int rc;

    snprintf(p, sizeof p, "%s/fifo-token", dir);
    if (mkfifo(p, 0600) < 0)
        exit(99);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", p, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    o.source = CREDS_WEB_IDENTITY;
    o.region_name = "fifo";
    o.sts_endpoint = "http://127.0.0.1:9/";
    alarm(10);
    rc = creds_open(&o, &prov, &e);
    alarm(0);
    ok(rc < 0 && e.code == ERR_CONFIG && strstr(e.msg, "regular file") != NULL,
       "web identity token file is a FIFO: an error at once: %s", e.msg);
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");
    e = (struct err)ERR_INIT;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", dir, 1);
    o.source = CREDS_CONTAINER;
    o.region_name = "ctdir";
    o.sts_endpoint = NULL;
    alarm(10);
    rc = creds_open(&o, &prov, &e);
    alarm(0);
    ok(rc < 0 && e.code == ERR_CONFIG && strstr(e.msg, "regular file") != NULL,
       "container authorization token file is a directory: ERR_CONFIG: %s", e.msg);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
}

/* A hostile STS answer: nested entities (a "billion laughs") in the
 * Credentials, which xmlNodeGetContent() would expand. */
static void test_sts_entities(void)
{
    char doc[4096];
    size_t n = 0;
    struct creds c = { 0 };
    struct err e = ERR_INIT;
    int i, j, rc;

    n += (size_t)snprintf(doc + n, sizeof doc - n, "<?xml version=\"1.0\"?>\n<!DOCTYPE r [\n"
                          "<!ENTITY l0 \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\">\n");
    for (i = 1; i < 10; i++) {
        n += (size_t)snprintf(doc + n, sizeof doc - n, "<!ENTITY l%d \"", i);
        for (j = 0; j < 10; j++)
            n += (size_t)snprintf(doc + n, sizeof doc - n, "&l%d;", i - 1);
        n += (size_t)snprintf(doc + n, sizeof doc - n, "\">\n");
    }
    snprintf(doc + n, sizeof doc - n, "]>\n<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
             "<Credentials><AccessKeyId>AK</AccessKeyId><SecretAccessKey>&l9;</SecretAccessKey>"
             "<SessionToken>&l9;</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>"
             "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>");
    alarm(20);
    rc = creds_parse_sts(doc, strlen(doc), "sts", &c, &e);
    alarm(0);
    ok(rc < 0 || (c.token == NULL || strlen(c.token) < 100000),
       "nested entities in an STS answer: not expanded to gigabytes (%s)", rc < 0 ? e.msg : "parsed");
    creds_clear(&c);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/advT_creds.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 99;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);     /* nothing leaves 127.0.0.0/8 */
    test_refresh_backoff();
    test_half_env();
    test_scrub();
    test_log_redact();
    test_missing_token_file();
    test_err_redact();
    test_token_fifo();
    test_sts_entities();
    {
        char cmd[600];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
