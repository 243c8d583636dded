/* advT_creds_test — adversarial pass T on the credential provider: a
 * refresh that keeps failing while the old credentials still hold (no
 * retry storm: one try per back-off, not one per signed request), a
 * secret key in the environment without its key id (an error, not a walk
 * on to another identity), and a web identity token that an STS error
 * message quotes back (never in the error). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
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
       "once expired: a clear error, even within the back-off: %s", e.msg);
    ok(count_runs() == runs + 1, "... after asking the source once more");
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
    o.region_name = "half3";
    ok(creds_open(&o, &prov, &e) == 0 && strstr(creds_describe(prov), "AKPROFILE") != NULL,
       "with neither, the profile: %s", prov ? creds_describe(prov) : e.msg);
    creds_close(prov);
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
    test_refresh_backoff();
    test_half_env();
    {
        char cmd[600];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
