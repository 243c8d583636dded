/* config_check: what the values mean together is checked after reading —
 * absolute paths, timeouts, each region and the spool in a place of their
 * own, files others can write (docs/CONFIG.md, "What is refused after
 * reading"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "tap.h"

static char dir[] = "/tmp/walship-config-check-test-XXXXXX";

/* A file in dir; "@" in `text` is replaced by dir. */
static const char *write_conf(const char *name, const char *text, mode_t mode)
{
    static char path[512];
    char body[4096];
    size_t n = 0;
    const char *p;
    FILE *f;

    for (p = text; *p && n + strlen(dir) + 1 < sizeof body; p++) {
        if (*p == '@') {
            memcpy(body + n, dir, strlen(dir));
            n += strlen(dir);
        } else {
            body[n++] = *p;
        }
    }
    body[n] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL || fputs(body, f) < 0 || fclose(f) != 0)
        diag("could not write %s", path);
    chmod(path, mode);
    return path;
}

static int load(const char *path, struct config **c, struct err *e)
{
    err_clear(e);
    *c = NULL;
    return config_load(path, 1, c, e);
}

/* ---- the helpers ---- */

static void test_normal(void)
{
    static const struct { const char *in, *want; } cases[] = {
        { "/srv/backup", "/srv/backup" },   { "/srv/backup/", "/srv/backup" },
        { "/srv//backup///", "/srv/backup" }, { "/srv/./backup/.", "/srv/backup" },
        { "/srv/x/../backup", "/srv/backup" }, { "/", "/" }, { "//", "/" }, { "/..", "/" },
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = config_path_normal(cases[i].in);

        is_str(got, cases[i].want, "normal form of %s", cases[i].in);
        free(got);
    }
    ok(config_path_within("/srv/a/b", "/srv/a"), "/srv/a/b is within /srv/a");
    ok(config_path_within("/srv/a", "/srv/a"), "/srv/a is within itself");
    ok(!config_path_within("/srv/ab", "/srv/a"), "/srv/ab is not within /srv/a");
    ok(config_path_within("/srv", "/"), "everything is within /");
}

static void test_s3_location(void)
{
    static const struct { const char *u1, *e1, *u2, *e2; int same; } cases[] = {
        { "s3://b/p", NULL, "s3://b/p/", NULL, 1 },
        { "s3://b/p", NULL, "s3://b//p", "https://s3.eu-west-1.amazonaws.com", 1 },
        { "s3://b", NULL, "s3://b/", NULL, 1 },
        { "s3://b/p", "http://127.0.0.1:80", "s3://b/p", "HTTP://127.0.0.1/", 1 },
        { "s3://b/p", "https://minio:443", "s3://b/p", "https://minio", 1 },
        { "s3://b/p", "http://127.0.0.1:9000", "s3://b/p", "http://127.0.0.1:9001", 0 },
        { "s3://b/p", NULL, "s3://b/q", NULL, 0 },
        { "s3://b/p", NULL, "s3://c/p", NULL, 0 },
        { "s3://b/p", NULL, "s3://b/p", "http://127.0.0.1:9000", 0 },
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *a = config_s3_location(cases[i].u1, cases[i].e1), *b = config_s3_location(cases[i].u2, cases[i].e2);

        ok(a && b && (strcmp(a, b) == 0) == cases[i].same, "%s at %s and %s at %s: %s", cases[i].u1,
           cases[i].e1 ? cases[i].e1 : "AWS", cases[i].u2, cases[i].e2 ? cases[i].e2 : "AWS",
           cases[i].same ? "one place" : "two places");
        free(a);
        free(b);
    }
}

/* ---- through config_load ---- */

struct bad {
    const char *name, *text;
    const char *want[3];        /* each must be in the message */
};

static const struct bad bads[] = {
    { "a relative spool_dir", "[global]\nspool_dir = spool\n", { "case.conf:2: key \"spool_dir\"", "relative path" } },
    { "a relative key_file", "[global]\nkey_file = ./key\n", { "case.conf:2: key \"key_file\"", "relative path" } },
    { "a key_file under ~ (not expanded)", "[global]\nkey_file = ~/key\n", { "key \"key_file\"", "relative" } },
    { "a relative old key file", "[global]\nold_key_files = /k/1, k2\n",
      { "case.conf:2: key \"old_key_files\"", "\"k2\" is a relative path" } },
    { "a relative pgdata", "[global]\npgdata = main\n", { "key \"pgdata\"", "relative path" } },
    { "a relative pg_bin", "[global]\npg_bin = bin\n", { "key \"pg_bin\"", "relative path" } },
    { "a relative ca_file", "[global]\n[region r]\nurl = s3://bkt/p\nca_file = ca.pem\n",
      { "case.conf:4: key \"ca_file\" of [region r]", "relative path" } },
    { "retry_deadline = 0", "[global]\nretry_deadline = 0\n", { "case.conf:2: key \"retry_deadline\"", "at least 1s" } },
    { "connect_timeout = 0", "[global]\nconnect_timeout = 0s\n", { "key \"connect_timeout\"", "at least 1s" } },
    { "io_timeout = 0", "[global]\nio_timeout = 0min\n", { "key \"io_timeout\"", "at least 1s" } },
    { "archive_timeout = 0", "[global]\narchive_timeout = 0\n", { "key \"archive_timeout\"", "at least 1s" } },
    /* dropped without a word: every source signed without it */
    { "a session_token alone", "[global]\n[region r]\nurl = s3://bkt/p\nsession_token = FQoGZX\n",
      { "case.conf:4: key \"session_token\" of [region r]", "would not be used" } },
    /* no scheme: libcurl guessed http:// and sent the web identity token in clear */
    { "an sts_endpoint without a scheme", "[global]\n[region r]\nurl = s3://bkt/p\nsts_endpoint = sts.eu-west-1.amazonaws.com\n",
      { "case.conf:4: key \"sts_endpoint\"", "give the scheme" } },
    { "an endpoint without a scheme", "[global]\n[region r]\nurl = s3://bkt/p\nendpoint = 127.0.0.1:9000\n",
      { "case.conf:4: key \"endpoint\"", "https://host" } },
    { "a negative timeout", "[global]\nio_timeout = -5\n", { "key \"io_timeout\"", "bad duration" } },
    /* past 24 d in ms: refused by PostgreSQL at the end of the backup, by
     * libcurl, or wrapped in 32 bits (adversarial pass) */
    { "archive_timeout = 25d", "[global]\narchive_timeout = 25d\n", { "case.conf:2: key \"archive_timeout\"", "at most 24d" } },
    { "retry_deadline = 50d", "[global]\nretry_deadline = 50d\n", { "key \"retry_deadline\"", "at most 24d" } },
    { "connect_timeout = 25d", "[global]\nconnect_timeout = 2160000\n", { "key \"connect_timeout\"", "at most 24d" } },
    /* past a century: refused by the duration parser itself */
    { "io_timeout = 2^63 ms", "[global]\nio_timeout = 9223372036854776\n", { "key \"io_timeout\"", "too large" } },
    /* 0 was read as "off": no alarm, no limit, never (adversarial pass) */
    { "rpo_seconds = 0", "[global]\nrpo_seconds = 0\n", { "case.conf:2: key \"rpo_seconds\"", "no lag alarm" } },
    { "backup_max_age = 0", "[global]\nbackup_max_age = 0h\n", { "key \"backup_max_age\"", "no backup age alarm" } },
    { "spool_max_bytes = 0", "[global]\nspool_max_bytes = 0GB\n", { "key \"spool_max_bytes\"", "no limit" } },
    { "full_every = 0", "[global]\nfull_every = 0\n", { "key \"full_every\"", "never renewing" } },
    { "two regions, one directory", "[region a]\nurl = file://@/ra\n[region b]\nurl = file://@/ra\n",
      { "region \"a\"", "region \"b\"", "the same place" } },
    { "two regions, one directory with a trailing slash and .",
      "[region a]\nurl = file://@/ra\n[region b]\nurl = file://@//ra/./\n",
      { "region \"a\" (file://", "case.conf:2", "case.conf:4" } },
    { "two regions, one directory through ..", "[region a]\nurl = file://@/ra\n[region b]\nurl = file://@/rb/../ra\n",
      { "region \"a\"", "region \"b\"", "the same place" } },
    { "two regions, one directory through a symlink", "[region a]\nurl = file://@/ra\n[region b]\nurl = file://@/la\n",
      { "region \"a\"", "region \"b\"", "the same place" } },
    { "a region inside another", "[region a]\nurl = file://@/ra\n[region b]\nurl = file://@/ra/sub\n",
      { "region \"b\"", "is inside region \"a\"" } },
    { "a region inside a later one", "[region a]\nurl = file://@/ra/sub\n[region b]\nurl = file://@/ra\n",
      { "region \"a\"", "is inside region \"b\"" } },
    { "a region at the root holds every other", "[region a]\nurl = file:///\n[region b]\nurl = file://@/ra\n",
      { "region \"b\"", "is inside region \"a\"" } },
    { "the spool inside a region", "[global]\nspool_dir = @/ra/spool\n[region a]\nurl = file://@/ra\n",
      { "spool_dir (", "case.conf:2", "is inside region \"a\"" } },
    { "a region inside the spool", "[global]\nspool_dir = @/spool\n[region a]\nurl = file://@/spool/a\n",
      { "region \"a\"", "is inside spool_dir" } },
    { "the spool in a region's directory", "[global]\nspool_dir = @/ra/\n[region a]\nurl = file://@/ra\n",
      { "spool_dir", "region \"a\"", "the same place" } },
    { "two S3 regions, one bucket and prefix",
      "[region a]\nurl = s3://bkt/prod\nendpoint = http://127.0.0.1:9000\n"
      "[region b]\nurl = s3://bkt/prod/\nendpoint = http://127.0.0.1:9000/\n",
      { "region \"a\" (s3://bkt/prod,", "region \"b\" (s3://bkt/prod/,", "the same place" } },
    { "two AWS regions, one bucket (bucket names are global)",
      "[region us-east-1]\nurl = s3://bkt/prod\n[region eu-west-1]\nurl = s3://bkt/prod\n",
      { "region \"us-east-1\"", "region \"eu-west-1\"", "the same place" } },
};

static const struct bad goods[] = {
    { "sibling regions and spool",
      "[global]\nspool_dir = @/spool\n[region a]\nurl = file://@/ra\n[region b]\nurl = file://@/rb\n", { NULL } },
    { "a name that only starts like another (/ra, /ra2)",
      "[global]\nspool_dir = @/spool\n[region a]\nurl = file://@/ra\n[region b]\nurl = file://@/ra2\n", { NULL } },
    { "one bucket and prefix on two endpoints",
      "[region a]\nurl = s3://bkt/prod\nendpoint = http://127.0.0.1:9000\n"
      "[region b]\nurl = s3://bkt/prod\nendpoint = http://127.0.0.1:9001\n", { NULL } },
    { "one bucket, two prefixes", "[region a]\nurl = s3://bkt/a\n[region b]\nurl = s3://bkt/b\n", { NULL } },
    { "alarms, spool limit and full_every of 1", "[global]\nrpo_seconds = 1\nbackup_max_age = 1s\nspool_max_bytes = 1\n"
      "full_every = 1\n", { NULL } },
    { "timeouts of 1s", "[global]\nretry_deadline = 1\nconnect_timeout = 1s\nio_timeout = 1\narchive_timeout = 1\n",
      { NULL } },
    { "timeouts of 24d", "[global]\nretry_deadline = 24d\nconnect_timeout = 24d\nio_timeout = 2073600\n"
      "archive_timeout = 24d\n", { NULL } },
    { "absolute paths everywhere",
      "[global]\npgdata = /a\nkey_file = /k\nold_key_files = /k1 /k2\npg_bin = /b\nspool_dir = /s\n", { NULL } },
};

static void check_case(const struct bad *b, int good)
{
    char text[2048];
    struct config *c;
    struct err e = ERR_INIT;
    const char *p;
    size_t i;

    /* a case without a region gets one, away from everything else */
    snprintf(text, sizeof text, "%s%s", b->text, strstr(b->text, "[region") ? "" : "[region zz]\nurl = file:///zz\n");
    p = write_conf("case.conf", text, 0600);
    if (good) {
        if (!ok(load(p, &c, &e) == 0, "accepted: %s", b->name))
            diag("%s", e.msg);
        config_free(c);
        return;
    }
    if (!ok(load(p, &c, &e) < 0, "refused: %s", b->name)) {
        config_free(c);
        return;
    }
    diag("%s", e.msg);
    is_int(err_exit_status(&e), 2, "  exit status 2");
    for (i = 0; i < 3 && b->want[i] != NULL; i++)
        like(e.msg, b->want[i], "  says %s", b->want[i]);
}

static void test_modes(void)
{
    static const struct { mode_t mode; int refused; const char *says; } cases[] = {
        { 0600, 0, NULL }, { 0644, 0, NULL }, { 0400, 0, NULL },
        { 0660, 1, "writable by its group (mode 0660)" }, { 0664, 1, "writable by its group" },
        { 0606, 1, "writable by others (mode 0606)" }, { 0666, 1, "writable by others" },
    };
    struct config *c;
    struct err e = ERR_INIT;
    const char *p;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = write_conf("mode.conf", "[region a]\nurl = file:///a\n", cases[i].mode);
        if (!cases[i].refused) {
            ok(load(p, &c, &e) == 0, "a configuration file of mode %04o is read", (unsigned)cases[i].mode);
            config_free(c);
            continue;
        }
        ok(load(p, &c, &e) < 0, "a configuration file of mode %04o is refused", (unsigned)cases[i].mode);
        like(e.msg, cases[i].says, "  %s", cases[i].says);
        like(e.msg, "mode.conf", "  names the file");
        is_int(err_exit_status(&e), 2, "  exit status 2");
    }
    write_conf("ca.pem", "not a certificate, nor read here\n", 0664);
    p = write_conf("ca.conf", "[region a]\nurl = s3://bkt/p\nca_file = @/ca.pem\n", 0600);
    ok(load(p, &c, &e) < 0, "a CA file its group can write is refused");
    like(e.msg, "ca.conf:3: key \"ca_file\" of [region a]: ca_file \"", "  naming the line and the key");
    like(e.msg, "ca.pem\" is writable by its group (mode 0664)", "  and the file and its mode");
    write_conf("ca.pem", "not a certificate, nor read here\n", 0644);
    p = write_conf("ca.conf", "[region a]\nurl = s3://bkt/p\nca_file = @/ca.pem\n", 0600);
    if (!ok(load(p, &c, &e) == 0, "a CA file of mode 0644 is taken"))
        diag("%s", e.msg);
    config_free(c);
}

static void test_env(void)
{
    struct config *c;
    struct err e = ERR_INIT;
    const char *p = write_conf("env.conf", "[region a]\nurl = file:///a\n", 0600);
    char cwd[512];

    setenv("WALSHIP_SPOOL_DIR", "spool", 1);
    ok(load(p, &c, &e) < 0, "a relative WALSHIP_SPOOL_DIR is refused");
    like(e.msg, "WALSHIP_SPOOL_DIR: key \"spool_dir\": \"spool\" is a relative path", "  naming the variable");
    unsetenv("WALSHIP_SPOOL_DIR");

    setenv("AWS_SHARED_CREDENTIALS_FILE", "aws/credentials", 1);
    ok(load(p, &c, &e) == 0, "a relative AWS_SHARED_CREDENTIALS_FILE with file:// regions only: not read, not checked");
    config_free(c);
    p = write_conf("env3.conf", "[region a]\nurl = s3://bkt/p\n", 0600);
    ok(load(p, &c, &e) < 0, "... with an s3:// region: refused");
    like(e.msg, "environment: AWS_SHARED_CREDENTIALS_FILE: \"aws/credentials\" is a relative path", "  naming it");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");

    if (getcwd(cwd, sizeof cwd) != NULL && chdir(dir) == 0) {
        setenv("WALSHIP_CONFIG", "env.conf", 1);
        ok(config_load(NULL, 1, &c, &e) < 0, "a relative WALSHIP_CONFIG is refused");
        like(e.msg, "environment: WALSHIP_CONFIG: \"env.conf\" is a relative path", "  and says so");
        is_int(err_exit_status(&e), 2, "  exit status 2");
        unsetenv("WALSHIP_CONFIG");
        if (chdir(cwd) != 0)
            diag("could not go back to %s", cwd);
    }
}

int main(void)
{
    char path[600], target[600];
    size_t i;

    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/ra", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/rb", dir);
    mkdir(path, 0700);
    snprintf(target, sizeof target, "%s/ra", dir);
    snprintf(path, sizeof path, "%s/la", dir);
    if (symlink(target, path) != 0)
        diag("could not make %s", path);

    test_normal();
    test_s3_location();
    for (i = 0; i < sizeof bads / sizeof bads[0]; i++)
        check_case(&bads[i], 0);
    for (i = 0; i < sizeof goods / sizeof goods[0]; i++)
        check_case(&goods[i], 1);
    test_modes();
    test_env();

    snprintf(path, sizeof path, "rm -rf %s", dir);
    if (system(path) != 0)
        diag("could not remove %s", dir);
    return done_testing();
}
