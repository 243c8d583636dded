/* creds_test — credential answers as AWS documents them (container/IMDS
 * JSON, STS XML, credential_process), shared files with several profiles,
 * the refresh margin, the per-process cache, and the integrity headers an
 * upload carries. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "s3.h"
#include "tap.h"

static char dir[256];

static void write_file(const char *name, const char *text)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof p, "%s/%s", dir, name);
    f = fopen(p, "w");
    if (f == NULL)
        exit(99);
    fputs(text, f);
    fclose(f);
}

static void test_json(void)
{
    static const char imds[] =
        "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-12-02T16:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n"
        "  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n  \"SecretAccessKey\" : \"sekrit/abc\",\n  \"Token\" : \"tok==\",\n"
        "  \"Expiration\" : \"2030-01-01T00:00:00Z\"\n}";
    struct creds c = { 0 };
    struct err e = ERR_INIT;

    ok(creds_parse_json(imds, strlen(imds), "imds", &c, &e) == 0, "IMDS JSON parses: %s", e.msg);
    is_str(c.access_key, "ASIAEXAMPLE", "... access key");
    is_str(c.secret_key, "sekrit/abc", "... secret");
    is_str(c.token, "tok==", "... token");
    ok(c.expires == 1893456000, "... expiration 2030-01-01T00:00:00Z");
    ok(creds_parse_json("{\"Code\":\"Failure\"}", 18, "imds", &c, &e) < 0 && e.code == ERR_AUTH,
       "a Code other than Success is refused: %s", e.msg);
    ok(creds_parse_json("{\"AccessKeyId\":\"a\"}", 19, "x", &c, &e) < 0 && strstr(e.msg, "SecretAccessKey"),
       "no secret: refused: %s", e.msg);
    ok(creds_parse_json("[1]", 3, "x", &c, &e) < 0 && strstr(e.msg, "not a JSON object"), "not an object");
    {
        static const char j[] = "{\"AccessKeyId\":\"a\",\"SecretAccessKey\":\"b\",\"Expiration\":\"soon\"}";

        ok(creds_parse_json(j, strlen(j), "x", &c, &e) < 0 && strstr(e.msg, "bad Expiration"), "bad Expiration: %s",
           e.msg);
    }
    {
        static const char j[] = "{\"AccessKeyId\":\"a\",\"SecretAccessKey\":\"b\",\"Token\":\"t\",\"Expiration\":1893456000}";

        ok(creds_parse_json(j, strlen(j), "x", &c, &e) < 0 && strstr(e.msg, "Expiration") != NULL,
           "an Expiration that is a number: refused, not 'never expires'");
    }
    {
        static const char j[] = "{\"AccessKeyId\":\"a\",\"SecretAccessKey\":\"b\",\"Token\":\"t\\r\\nx-injected: 1\"}";

        ok(creds_parse_json(j, strlen(j), "x", &c, &e) < 0 && strstr(e.msg, "session token") != NULL &&
           strstr(e.msg, "injected") == NULL, "a token with a line break: refused (no header of its own), not shown");
        ok(creds_set(&c, "AK", "se cret", NULL, 0, &e) < 0 && strstr(e.msg, "secret key") != NULL,
           "a secret key with a blank: refused");
        ok(creds_set(&c, "test:tester", "a+b/c=", "tok==", 0, &e) == 0, "':' '+' '/' '=' are fine");
    }
    ok(creds_parse_json("{\"Version\":2,\"AccessKeyId\":\"a\",\"SecretAccessKey\":\"b\"}", 52, "x", &c, &e) < 0,
       "Version 2 is refused");
    creds_clear(&c);
}

static void test_sts(void)
{
    static const char good[] =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials><SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE"
        "</SessionToken><SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
        "<Expiration>2014-10-24T23:00:23Z</Expiration><AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>"
        "</Credentials></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>ad4156e9</RequestId>"
        "</ResponseMetadata></AssumeRoleWithWebIdentityResponse>";
    static const char bad[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
        "<Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message>"
        "</Error><RequestId>x</RequestId></ErrorResponse>";
    struct creds c = { 0 };
    struct err e = ERR_INIT;

    ok(creds_parse_sts(good, strlen(good), "sts", &c, &e) == 0, "STS example answer parses: %s", e.msg);
    is_str(c.access_key, "ASgeIAIOSFODNN7EXAMPLE", "... access key");
    is_str(c.token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE", "... session token");
    ok(c.expires == 1414191623, "... expiration");
    ok(creds_parse_sts(bad, strlen(bad), "sts", &c, &e) < 0 && e.code == ERR_AUTH &&
       strstr(e.msg, "AccessDenied: Not authorized") != NULL, "ErrorResponse: ERR_AUTH with code and message: %s",
       e.msg);
    ok(creds_parse_sts("<x", 2, "sts", &c, &e) < 0 && strstr(e.msg, "not XML"), "junk: not XML");
    ok(creds_parse_sts("<a/>", 4, "sts", &c, &e) < 0 && strstr(e.msg, "no Credentials"), "no Credentials");
    creds_clear(&c);
}

static int profile(const char *name, struct creds *c, char *d, size_t n, struct err *e)
{
    struct creds_opts o = { 0 };

    o.source = CREDS_PROFILE;
    o.region_name = "r";
    o.profile = name;
    return creds_src_profile(&o, 1, c, d, n, e);
}

static void test_profiles(void)
{
    char p[4096], d[256];
    struct creds c = { 0 };
    struct err e = ERR_INIT;
    char tok[2000];

    memset(tok, 'T', sizeof tok - 1);
    tok[sizeof tok - 1] = '\0';
    snprintf(p, sizeof p, "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = s1\n\n"
             "# a comment\n[prod]\naws_access_key_id=AKPROD\naws_secret_access_key=s2\naws_session_token = %s\n"
             "[half]\naws_access_key_id = AKHALF\n", tok);
    write_file("credentials", p);
    write_file("config", "[default]\nregion = us-east-1\n[profile prod]\naws_access_key_id = AKNOTTHIS\n"
                         "[profile proc]\ncredential_process = /bin/echo '{\"Version\":1,\"AccessKeyId\":\"AKPROC\","
                         "\"SecretAccessKey\":\"s3\"}'\n[profile exit]\ncredential_process = /bin/false\n"
                         "[profile nover]\ncredential_process = /bin/echo '{\"AccessKeyId\":\"a\","
                         "\"SecretAccessKey\":\"b\"}'\n[profile chain]\nrole_arn = arn:x\nsource_profile = prod\n"
                         "[profile  spaced]\naws_access_key_id = AKSP\naws_secret_access_key = s5\n"
                         "[profile relwi]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = token\n");
    snprintf(p, sizeof p, "%s/credentials", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    snprintf(p, sizeof p, "%s/config", dir);
    setenv("AWS_CONFIG_FILE", p, 1);
    unsetenv("AWS_PROFILE");

    ok(profile(NULL, &c, d, sizeof d, &e) == 0 && strcmp(c.access_key, "AKDEFAULT") == 0,
       "no name, no AWS_PROFILE: [default]: %s", e.msg);
    ok(profile("prod", &c, d, sizeof d, &e) == 0 && strcmp(c.access_key, "AKPROD") == 0 && c.token != NULL &&
       strlen(c.token) == sizeof tok - 1, "[prod]: the credentials file wins, a 2000-byte session token is read");
    setenv("AWS_PROFILE", "spaced", 1);
    ok(profile(NULL, &c, d, sizeof d, &e) == 0 && strcmp(c.access_key, "AKSP") == 0,
       "AWS_PROFILE names a [profile NAME] section of the config file: %s", e.msg);
    unsetenv("AWS_PROFILE");
    ok(profile("proc", &c, d, sizeof d, &e) == 0 && strcmp(c.access_key, "AKPROC") == 0 &&
       strstr(d, "credential_process") != NULL, "credential_process, Version 1: %s", e.msg);
    ok(profile("exit", &c, d, sizeof d, &e) < 0 && e.code == ERR_AUTH && strstr(e.msg, "exit status 1"),
       "credential_process failing: %s", e.msg);
    ok(profile("nover", &c, d, sizeof d, &e) < 0 && strstr(e.msg, "Version"), "no Version: refused: %s", e.msg);
    ok(profile("half", &c, d, sizeof d, &e) < 0 && e.code == ERR_CONFIG, "a key id without secret: %s", e.msg);
    ok(profile("relwi", &c, d, sizeof d, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, "relative path") != NULL,
       "web_identity_token_file relative (read in PGDATA under PostgreSQL): refused: %s", e.msg);
    ok(profile("chain", &c, d, sizeof d, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, "source_profile"),
       "role_arn with source_profile: not supported, said clearly: %s", e.msg);
    ok(profile("nosuch", &c, d, sizeof d, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, "neither"),
       "unknown profile: %s", e.msg);
    {
        struct creds_opts o = { 0 };

        o.region_name = "r";
        o.profile = NULL;
        setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/c", 1);
        setenv("AWS_CONFIG_FILE", "/nonexistent/k", 1);
        ok(creds_src_profile(&o, 0, &c, d, sizeof d, &e) == 1, "auto, no files: not configured (next source)");
        write_file("region-only", "[default]\nregion = us-east-1\noutput = json\n");
        snprintf(p, sizeof p, "%s/region-only", dir);
        setenv("AWS_CONFIG_FILE", p, 1);
        ok(creds_src_profile(&o, 0, &c, d, sizeof d, &e) == 1,
           "auto, a [default] with a region and no credentials: not configured (next source, as the SDKs)");
        ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) < 0 && strstr(e.msg, "has no credentials") != NULL,
           "credentials = profile, the same [default]: an error");
        write_file("sso-config", "[default]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = r\n"
                                 "region = us-east-1\n[sso-session corp]\nsso_start_url = https://x/start\n");
        snprintf(p, sizeof p, "%s/sso-config", dir);
        setenv("AWS_CONFIG_FILE", p, 1);
        ok(creds_src_profile(&o, 0, &c, d, sizeof d, &e) < 0 && strstr(e.msg, "Identity Center") != NULL,
           "auto, an SSO [default]: an error (the SDKs would use SSO), not the instance role");
        setenv("AWS_CONFIG_FILE", "/nonexistent/k", 1);
        write_file("typo-creds", "[default]\naws_acces_key_id = AK\naws_secret_key = s\n");
        snprintf(p, sizeof p, "%s/typo-creds", dir);
        setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
        ok(creds_src_profile(&o, 0, &c, d, sizeof d, &e) < 0 && strstr(e.msg, "has no credentials") != NULL,
           "auto, a [default] of the credentials file with misspelt keys: an error, not the next source");
        setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/c", 1);
        setenv("AWS_CONFIG_FILE", "/nonexistent/k", 1);
        /* fopen() takes a directory; only reading it fails (EISDIR) */
        setenv("AWS_SHARED_CREDENTIALS_FILE", dir, 1);
        ok(creds_src_profile(&o, 0, &c, d, sizeof d, &e) < 0 && e.code == ERR_CONFIG &&
           strstr(e.msg, "could not be read") != NULL,
           "auto, a credentials file that is a directory: an error, not the next source");
        snprintf(p, sizeof p, "%s/loop", dir);
        if (symlink(p, p) == 0) {
            setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
            ok(creds_src_profile(&o, 0, &c, d, sizeof d, &e) < 0 && e.code == ERR_CONFIG &&
               strstr(e.msg, "cannot be read") != NULL,
               "auto, a credentials file that is there and cannot be opened: an error, not the next source: %s",
               e.msg);
        }
    }
    creds_clear(&c);
}

/* Without $HOME the shared files are the home directory's from the password
 * database (the SDKs' expanduser), not /.aws: there `auto` found no profile
 * and went on to the container's or the instance's role. */
static void test_no_home(void)
{
    struct passwd *pw = getpwuid(getuid());
    struct creds_opts o = { 0 };
    struct creds c = { 0 };
    struct err e = ERR_INIT;
    char want[600], d[256], *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

    if (pw == NULL || pw->pw_dir[0] == '\0' || strcmp(pw->pw_dir, "/") == 0) {
        ok(1, "# SKIP no home directory in the password database");
        free(home);
        return;
    }
    snprintf(want, sizeof want, "%s/.aws/credentials", pw->pw_dir);
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_CONFIG_FILE");
    o.region_name = "r";
    o.profile = "walship-no-such-profile";
    unsetenv("HOME");
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) < 0 && strstr(e.msg, want) != NULL,
       "HOME unset: the shared files are in the password database's home: %s", e.msg);
    setenv("HOME", "", 1);
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) < 0 && strstr(e.msg, want) != NULL,
       "HOME empty: the same: %s", e.msg);
    if (home != NULL)
        setenv("HOME", home, 1);
    else
        unsetenv("HOME");
    free(home);
    creds_clear(&c);
}

static void test_margin_and_cache(void)
{
    struct creds c = { 0 };
    struct creds_opts o = { 0 };
    struct creds_provider *p1 = NULL, *p2 = NULL;
    struct err e = ERR_INIT;
    unsigned gen = 0;

    c.fetched = 1000;
    c.expires = 1000 + 21600;
    ok(creds_refresh_margin(&c) == 300, "6-hour credentials: refreshed 5 minutes early");
    c.expires = 1008;
    ok(creds_refresh_margin(&c) == 2, "8-second credentials: a quarter of their life early");
    c.expires = 0;
    ok(creds_refresh_margin(&c) == 0, "credentials that do not expire: never refreshed");

    o.source = CREDS_STATIC;
    o.region_name = "r";
    o.access_key_id = "AKSTATIC";
    o.secret_access_key = "secret-static";
    ok(creds_open(&o, &p1, &e) == 0 && creds_open(&o, &p2, &e) == 0 && p1 == p2,
       "the same options share one provider per process");
    ok(creds_fetches(p1) == 1, "... fetched once");
    ok(creds_current(p1, &c, &gen, NULL, &e) == 0 && strcmp(c.access_key, "AKSTATIC") == 0 && gen != 0,
       "creds_current copies them");
    is_str(creds_describe(p1), "static (access key AKSTATIC)", "described without the secret");
    creds_close(p1);
    creds_close(p2);
    o.source = CREDS_ENV;
    ok(creds_open(&o, &p1, &e) < 0 && e.code == ERR_CONFIG, "keys in the region with credentials = env: %s",
       e.msg);
    creds_clear(&c);
}

static void test_sources(void)
{
    enum creds_source s;
    char *prof = NULL;
    struct err e = ERR_INIT;

    ok(creds_parse_source("profile:prod", &s, &prof, &e) == 0 && s == CREDS_PROFILE && strcmp(prof, "prod") == 0,
       "profile:prod");
    free(prof);
    ok(creds_parse_source("web-identity", &s, &prof, &e) == 0 && s == CREDS_WEB_IDENTITY && prof == NULL,
       "web-identity");
    ok(creds_parse_source("imds", &s, &prof, &e) == 0 && s == CREDS_IMDS, "imds");
    ok(creds_parse_source("profile:", &s, &prof, &e) < 0, "profile: without a name is refused");
    ok(creds_parse_source("instance", &s, &prof, &e) < 0 && e.code == ERR_CONFIG, "unknown source: %s", e.msg);
}

/* libinih keeps 49 bytes of a section name: [NAME-staging] of a 49-byte
 * NAME was read as [NAME], and its keys, first in the file, signed for
 * NAME; a name longer than that was never found. */
static void test_long_profile(void)
{
    static const char n49[] = "DatabaseBackupOperatorReadOnlyAccess-123456789012";
    struct creds_opts o = { 0 };
    struct creds c = { 0 };
    struct err e = ERR_INIT;
    char p[1024], d[256];

    snprintf(p, sizeof p, "\xEF\xBB\xBF[%s-staging]\naws_access_key_id = AKSTAGING\naws_secret_access_key = s1\n"
             "[%s]\naws_access_key_id = AKRIGHT\naws_secret_access_key = s2\n", n49, n49);
    write_file("long-creds", p);
    snprintf(p, sizeof p, "[profile %.41s-staging]\naws_access_key_id = AKSTAGING2\naws_secret_access_key = s3\n"
             "[profile %sx]\naws_access_key_id = AKLONG\naws_secret_access_key = s4\n", n49, n49);
    write_file("long-config", p);
    snprintf(p, sizeof p, "%s/long-creds", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    snprintf(p, sizeof p, "%s/long-config", dir);
    setenv("AWS_CONFIG_FILE", p, 1);
    unsetenv("AWS_PROFILE");
    o.region_name = "r";
    o.profile = n49;
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) == 0 && strcmp(c.access_key, "AKRIGHT") == 0,
       "a 49-byte profile name: its own section, not [NAME-staging]");
    snprintf(p, sizeof p, "%.41s", n49);
    o.profile = p;
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) < 0 && strstr(e.msg, "neither") != NULL,
       "[profile NAME-staging] cut to 49 bytes is not [profile NAME]");
    snprintf(p, sizeof p, "%sx", n49);
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) == 0 && strcmp(c.access_key, "AKLONG") == 0,
       "a profile name longer than inih's section buffer is found");
    /* appended: the second [NAME] or key meant to replace the first */
    write_file("dup-creds", "[prod]\naws_access_key_id = AKOLD\naws_secret_access_key = s1\n[other]\nx = 1\n"
                            "[prod]\naws_access_key_id = AKNEW\naws_secret_access_key = s2\n");
    snprintf(p, sizeof p, "%s/dup-creds", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    o.profile = "prod";
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, ":6:") != NULL &&
       strstr(e.msg, "twice") != NULL, "a profile's section given twice: refused, not the first one's keys");
    write_file("dup-creds", "[prod]\naws_access_key_id = AKOLD\naws_secret_access_key = s1\n"
                            "aws_secret_access_key = s2\n[other]\naws_access_key_id = AKO\naws_secret_access_key = s\n");
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) < 0 && strstr(e.msg, ":4:") != NULL &&
       strstr(e.msg, "aws_secret_access_key is given twice") != NULL, "a key given twice: refused");
    o.profile = "other";
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) == 0 && strcmp(c.access_key, "AKO") == 0,
       "another profile of that file is read as before");
    write_file("dup-config", "[default]\naws_access_key_id = AKD\naws_secret_access_key = s1\n"
                             "[profile default]\naws_access_key_id = AKPD\naws_secret_access_key = s2\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/c", 1);
    snprintf(p, sizeof p, "%s/dup-config", dir);
    setenv("AWS_CONFIG_FILE", p, 1);
    o.profile = "default";
    ok(creds_src_profile(&o, 1, &c, d, sizeof d, &e) == 0, "[default] and [profile default]: two sections, read");
    creds_clear(&c);
}

/* AWS_WEB_IDENTITY_TOKEN_FILE without AWS_ROLE_ARN is web identity set up
 * halfway: `auto` refuses it (as the SDKs do) rather than go on to the
 * profile, the container or the instance and sign as someone else. */
static void test_web_identity_half(void)
{
    struct creds_opts o = { 0 };
    struct creds_provider *p = NULL;
    struct err e = ERR_INIT;
    char path[512];

    write_file("wi-creds", "[default]\naws_access_key_id = AKOTHER\naws_secret_access_key = s\n");
    write_file("wi-token", "jwt\n");
    snprintf(path, sizeof path, "%s/wi-creds", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    snprintf(path, sizeof path, "%s/wi-token", dir);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    o.source = CREDS_AUTO;
    o.region_name = "r";
    o.aws_region = "wi-half";
    if (creds_open(&o, &p, &e) == 0)
        snprintf(e.msg, sizeof e.msg, "opened: %s", creds_describe(p));
    ok(p == NULL && e.code == ERR_CONFIG && strstr(e.msg, "AWS_ROLE_ARN") != NULL,
       "auto, a web identity token file without AWS_ROLE_ARN: refused, not the profile: %s", e.msg);
    creds_close(p);
    /* no scheme: libcurl would guess http:// and post the token in clear */
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
    setenv("AWS_ENDPOINT_URL_STS", "127.0.0.1:9", 1);
    {
        struct creds c = { 0 };
        char d[100];

        o.source = CREDS_WEB_IDENTITY;
        ok(creds_src_web_identity(&o, path, "arn:aws:iam::1:role/r", NULL, &c, d, sizeof d, &e) < 0 &&
           e.code == ERR_CONFIG && strstr(e.msg, "AWS_ENDPOINT_URL_STS") != NULL,
           "AWS_ENDPOINT_URL_STS without a scheme: refused before any request");
        creds_clear(&c);
    }
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_EC2_METADATA_DISABLED");
}

static void test_integrity(void)
{
    struct s3 s;
    struct s3_req r;
    struct err e = ERR_INIT;
    static const char body[] = "Welcome to Amazon S3.";
    int i, md5 = -1;

    memset(&s, 0, sizeof s);
    s.base.region = "r";
    s.bucket = "b";
    s.prefix = "";
    s.path_base = "";
    s.host = "h";
    s.url_base = "http://h";
    s.aws_region = "us-east-1";
    if (s3_req_init(&r, &s, "PUT", "k", NULL, &e) < 0)
        exit(99);
    s3_req_body(&r, body, sizeof body - 1);
    ok(s3_upload_headers(&r, S3_UP_PART, &e) == 0, "integrity header for a part");
    for (i = 0; i < r.nhdr; i++)
        if (strcmp(r.hdr[i].name, "Content-MD5") == 0)
            md5 = i;
    ok(md5 >= 0 && strcmp(r.hdr[md5].value, "1EfQ6PKJ8WoS/2AnznfCWA==") == 0, "Content-MD5 is base64 MD5 of the body");
    snprintf(r.x.etag, sizeof r.x.etag, "%s", "\"d447d0e8f289f16a12ff6027ce77c25 8\"");
    ok(s3_upload_verify(&r, 1, &e) < 0 && e.code == ERR_CORRUPT, "a different ETag: ERR_CORRUPT");
    snprintf(r.x.etag, sizeof r.x.etag, "%s", "\"d447d0e8f289f16a12ff6027ce77c258\"");
    ok(s3_upload_verify(&r, 1, &e) == 0, "the ETag of the body: accepted");
    s3_req_free(&r);

    s.checksum = S3_CHECKSUM_SHA256;
    s.sse = "aws:kms";
    s.sse_kms_key_id = "key-1";
    s.sse_bucket_key = 1;
    if (s3_req_init(&r, &s, "PUT", "k", NULL, &e) < 0)
        exit(99);
    s3_req_body(&r, body, sizeof body - 1);
    ok(s3_upload_headers(&r, S3_UP_SINGLE, &e) == 0 && r.nhdr == 4, "single PUT: 3 SSE headers and a checksum");
    is_str(r.checksum, "RM591nyVng01JP+sF3Hfu6h9K2tLTpnkIDSouAP4sHI=", "x-amz-checksum-sha256 is base64 SHA-256");
    snprintf(r.x.etag, sizeof r.x.etag, "%s", "\"00000000000000000000000000000000\"");
    ok(s3_upload_verify(&r, 1, &e) == 0, "SSE-KMS: the ETag is opaque, not compared");
    snprintf(r.x.checksum_sha256, sizeof r.x.checksum_sha256, "%s", "AAAA");
    ok(s3_upload_verify(&r, 1, &e) < 0 && e.code == ERR_CORRUPT, "a different checksum answered: ERR_CORRUPT");
    s3_req_free(&r);
    {
        /* a retried Complete under SSE-KMS compares S3's composite checksum */
        struct s3_part parts[2];
        char comp[80];

        memset(parts, 0, sizeof parts);
        parts[0].number = 1;
        parts[1].number = 2;
        snprintf(parts[0].checksum, sizeof parts[0].checksum, "%s", "/tfwXBC8ldWX5vgQMijEwQeYtfdyFfcYqFRTTaVj3J4=");
        snprintf(parts[1].checksum, sizeof parts[1].checksum, "%s", "6laDy6WANfTzuTcCPLpwTwvkdmuspd1N7uRgvdEJF0E=");
        s3_composite_sha256(parts, 2, comp, sizeof comp);
        is_str(comp, "ZcfzJvHWAX9vO7fPKA9XUU5dtZ+mmrAFxgKDQljlC2k=-2",
               "composite checksum: base64 SHA-256 of the parts' SHA-256s, -N");
        parts[1].checksum[0] = '\0';
        s3_composite_sha256(parts, 2, comp, sizeof comp);
        is_str(comp, "", "composite checksum: none when a part has none");
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/creds_test.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 99;
    unsetenv("AWS_ACCESS_KEY_ID");
    test_json();
    test_sts();
    test_profiles();
    test_no_home();
    test_long_profile();
    test_margin_and_cache();
    test_sources();
    test_web_identity_half();
    test_integrity();
    {
        char cmd[600];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
