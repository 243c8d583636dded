/* config: reading the file exactly as written or refusing it, validation,
 * environment, origins, secrets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static char dir[] = "/tmp/walship-config-test-XXXXXX";

static const char *write_conf_n(const char *name, const char *text, size_t len, mode_t mode)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0)
        diag("could not write %s", path);
    chmod(path, mode);
    return path;
}

static const char *write_conf(const char *name, const char *text, mode_t mode)
{
    return write_conf_n(name, text, strlen(text), mode);
}

static int load(const char *path, struct config **c, struct err *e)
{
    err_clear(e);
    *c = NULL;
    return config_load(path, 1, c, e);
}

/* ---- looking values up through config_walk, as `config check` does ---- */

struct lookup {
    const char *section, *key;
    char *value, *origin;
    int found;
};

static int lookup_fn(void *arg, const struct config_item *it)
{
    struct lookup *l = arg;

    if (strcmp(it->section, l->section) != 0 || strcmp(it->key, l->key) != 0)
        return 0;
    l->found = 1;
    l->value = it->value ? strdup(it->value) : NULL;
    l->origin = strdup(it->origin);
    return 1;
}

/* The value of section.key as walship shows it ("(unset)" when not set). */
static const char *value_of(const struct config *c, const char *section, const char *key, const char **origin)
{
    static char value[256], orig[512];
    struct lookup l = { section, key, NULL, NULL, 0 };
    struct err e = ERR_INIT;

    config_walk(c, lookup_fn, &l, &e);
    snprintf(value, sizeof value, "%s", !l.found ? "(no such key)" : l.value ? l.value : "(unset)");
    snprintf(orig, sizeof orig, "%s", l.origin ? l.origin : "");
    free(l.value);
    free(l.origin);
    if (origin != NULL)
        *origin = orig;
    return value;
}

/* No item of the walk may contain `secret`. */
static int walk_leaks(void *arg, const struct config_item *it)
{
    return it->value != NULL && strstr(it->value, arg) != NULL;
}

/* ---- the tables ---- */

struct good {
    const char *name;
    const char *text;
    const char *section, *key, *want;   /* want: as config_walk shows it */
};

static const struct good goods[] = {
    { "an indented key after another key is its own key (issue 11: it was dropped)",
      "[global]\nspool_dir = /x\n  key_file = /k\n", "global", "key_file", "/k" },
    { "the key above an indented key keeps its own value",
      "[global]\nspool_dir = /x\n  key_file = /k\n", "global", "spool_dir", "/x" },
    { "a tab-indented key", "[global]\npgdata = /a\n\tkey_file = /k\n", "global", "key_file", "/k" },
    { "an indented section header and keys",
      "  [region a]\n    url = file:///a\n    mode = async\n", "a", "mode", "async" },
    { "a # comment after a url is not part of it (issue 11)",
      "[region a]\nurl = s3://bucket/pfx   # primary\n", "a", "url", "s3://bucket/pfx" },
    { "a ; comment after a value", "[region a]\nurl = s3://bucket/pfx ; primary\n", "a", "url", "s3://bucket/pfx" },
    { "a # comment after spool_dir (issue 11: it named the directory)",
      "[global]\nspool_dir = /var/spool/w # c\n", "global", "spool_dir", "/var/spool/w" },
    { "compression = zstd:3 # fast (issue 11: it exited 2)",
      "[global]\ncompression = zstd:3 # fast\n", "global", "compression", "zstd:3" },
    { "a comment after a tab", "[global]\npgdata = /a\t# tab\n", "global", "pgdata", "/a" },
    { "# without a blank before it is part of the value",
      "[region a]\nurl = s3://b/p#frag\n", "a", "url", "s3://b/p#frag" },
    { "; without a blank before it is part of the value",
      "[global]\npgdata = /a;b\n", "global", "pgdata", "/a;b" },
    { "= inside a value (a conninfo)",
      "[global]\npg_conninfo = host=/run/postgresql dbname=postgres\n", "global", "pg_conninfo",
      "host=/run/postgresql dbname=postgres" },
    { "blanks inside a value are kept", "[global]\npgdata = /srv/my data\n", "global", "pgdata", "/srv/my data" },
    { "no blanks around =", "[global]\npgdata=/a\n", "global", "pgdata", "/a" },
    { "trailing blanks are not part of the value", "[global]\npgdata = /a   \n", "global", "pgdata", "/a" },
    { "CRLF line ends", "[global]\r\npgdata = /a\r\n\r\n[region a]\r\nurl = file:///a\r\n", "global", "pgdata", "/a" },
    { "a UTF-8 byte order mark at the start", "\xEF\xBB\xBF[global]\npgdata = /a\n", "global", "pgdata", "/a" },
    { "no newline at the end of the file", "[global]\npgdata = /a", "global", "pgdata", "/a" },
    { "comment lines, indented or not",
      "; one\n# two\n[global]\n   # three\n\t; four\npgdata = /a\n", "global", "pgdata", "/a" },
    { "a comment after a section header", "[global] ; main\npgdata = /a\n", "global", "pgdata", "/a" },
    { "blanks between region and its name", "[region   a]\nurl = file:///a\n", "a", "url", "file:///a" },
    { "a comment line ending in a setting sets nothing",
      "[global]\n# xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxx spool_dir = /elsewhere\n", "global", "spool_dir", "/var/lib/walship/spool" },
    { "sizes and durations are shown normalised",
      "[global]\nspool_max_bytes = 1024MB\nbackup_max_age = 1d\n", "global", "spool_max_bytes", "1GB" },
    { "a key not given is the default", "[global]\npgdata = /a\n", "global", "key_file", "(unset)" },
};

struct bad {
    const char *name;
    const char *text;
    size_t len;             /* 0: strlen(text) */
    int line;               /* 0: the error names no line */
    const char *key;        /* NULL: the error names no key */
    const char *cause;
};

static const struct bad bads[] = {
    { "a second [global]", "[global]\npgdata = /a\n[global]\n", 0, 3, NULL, "[global] is given twice" },
    { "a key given twice", "[global]\npgdata = /a\npgdata = /b\n", 0, 3, "pgdata", "given twice" },
    { "a region key given twice", "[region a]\nurl = file:///a\nmode = sync\nmode = async\n", 0, 4, "mode",
      "given twice" },
    { "a region given twice", "[region a]\nurl = file:///a\n[region a]\nurl = file:///b\n", 0, 3, NULL,
      "defined twice" },
    { "a region given twice, the second without keys", "[region a]\nurl = file:///a\n[region a]\n", 0, 3, NULL,
      "defined twice" },
    { "a setting after a section header", "[region a] url = file:///x\n", 0, 1, NULL,
      "text after the section header" },
    { "an unterminated section header", "[global\npgdata = /a\n", 0, 1, NULL, "without \"]\"" },
    { "blanks inside the brackets", "[ global ]\npgdata = /a\n", 0, 1, NULL, "blanks inside the brackets" },
    { "an upper-case section", "[Global]\npgdata = /a\n", 0, 1, NULL, "unknown section" },
    { "an unknown section without keys", "[global]\n[regoin x]\n", 0, 2, NULL, "unknown section" },
    { "an empty section name", "[]\n", 0, 1, NULL, "empty section name" },
    { "[region] without a name", "[region]\nurl = file:///a\n", 0, 1, NULL, "needs a name" },
    { "a bad region name", "[region a/b]\nurl = file:///a\n", 0, 1, NULL, "bad region name" },
    /* its spool queue would be a hidden directory, which no reader lists */
    { "a region name starting with a dot", "[region .dr]\nurl = file:///a\n", 0, 1, NULL, "starting with a letter" },
    { "a region name that is only dots", "[region ..]\nurl = file:///a\n", 0, 1, NULL, "bad region name" },
    { "a key outside any section", "pgdata = /a\n[global]\n", 0, 1, "pgdata", "outside any section" },
    { "an empty value", "[global]\nkey_file =\n", 0, 2, "key_file", "empty value" },
    { "a value that is only a comment", "[global]\nkey_file = # none yet\n", 0, 2, "key_file", "empty value" },
    { "an upper-case key", "[global]\nKEY_FILE = /k\n", 0, 2, "KEY_FILE", "lower case" },
    { "an unknown key", "[global]\npgdata = /x\nbogus_key = 1\n", 0, 3, "bogus_key", "unknown key" },
    { "a region key in [global]", "[global]\nurl = file:///a\n", 0, 2, "url", "unknown key" },
    { "key: value", "[global]\nkey_file: /k\n", 0, 2, "key_file", "not \"key_file: value\"" },
    { "a line without =", "[global]\nthis line has no equals sign\n", 0, 2, NULL, "expected \"key = value\"" },
    { "a key without a value or =", "[global]\npgdata\n", 0, 2, NULL, "expected \"key = value\"" },
    { "a value without a key", "[global]\n= /a\n", 0, 2, NULL, "no key before" },
    { "an indented continuation line",
      "[global]\nold_key_files = /k/1\n    /k/2\n", 0, 3, NULL, "expected \"key = value\"" },
    { "a quoted value", "[global]\npgdata = \"/a\"\n", 0, 2, "pgdata", "does not remove quotes" },
    { "a quoted value cut by a comment", "[global]\npgdata = \"/a #b\"\n", 0, 2, "pgdata", "quote" },
    { "a comment with no blank before it", "[global]\nkey_file =# none yet\n", 0, 2, "key_file",
      "a comment needs a blank before it" },
    { "a value starting with ;", "[global]\nkey_file=;x\n", 0, 2, "key_file", "starts with \";\"" },
    { "a NUL byte", "[global]\npgdata = /a\0b\n", 21, 2, NULL, "NUL byte" },
    { "a carriage return inside a line", "[global]\npgdata = /a\rb\n", 0, 2, NULL, "carriage return" },
    { "a control character", "[global]\npgdata = /a\x01\n", 0, 2, NULL, "control character 0x01" },
    { "a no-break space", "[global]\npgdata = /a\xC2\xA0\n", 0, 2, NULL, "no-break space" },
    { "a byte order mark after the start", "[global]\n\xEF\xBB\xBFpgdata = /a\n", 0, 2, NULL,
      "byte order mark" },
    { "a bad value", "[global]\n\nparallel = many\n", 0, 3, "parallel", "" },
    { "a number with a leading zero (octal to PostgreSQL)", "[global]\nparallel = 010\n", 0, 2, "parallel",
      "leading zero" },
    { "a duration in \"m\" (minutes or months?)", "[global]\nrpo_seconds = 5m\n", 0, 2, "rpo_seconds",
      "minutes or months" },
    { "an unknown compression", "[global]\ncompression = lz4\n", 0, 2, "compression", "bad compression" },
    { "a conninfo libpq cannot parse", "[global]\npg_conninfo = host=x 'oops\n", 0, 2, "pg_conninfo",
      "libpq cannot parse" },
    { "an unsupported url scheme", "[region r1]\nurl = ftp://x\n", 0, 2, "url", "bad url" },
    { "a relative file:// url", "[region r1]\nurl = file://relative/path\n", 0, 2, "url", "absolute path" },
    { "a region without url", "[region r1]\nmode = sync\n", 0, 0, NULL, "region \"r1\" has no url" },
};

static void check_bad(const struct bad *b, const char *path)
{
    struct config *c;
    struct err e = ERR_INIT;
    char want[600];

    if (!ok(load(path, &c, &e) < 0, "refused: %s", b->name)) {
        config_free(c);
        return;
    }
    diag("%s", e.msg);
    is_int(err_exit_status(&e), 2, "  exit status 2");
    if (b->line > 0) {
        snprintf(want, sizeof want, "%s:%d: ", path, b->line);
        like(e.msg, want, "  names file and line %d", b->line);
    }
    if (b->key != NULL) {
        snprintf(want, sizeof want, "key \"%s\"", b->key);
        like(e.msg, want, "  names the key %s", b->key);
    }
    like(e.msg, b->cause, "  says why");
}

/* A file with `line` as its line 3 ("[global]", a blank line, then it). */
static const char *write_long(const char *name, const char *key, size_t vlen)
{
    size_t n = strlen("[global]\n\n") + strlen(key) + 3 + vlen + 1;
    char *text = malloc(n + 1);
    const char *p;

    snprintf(text, n + 1, "[global]\n\n%s = ", key);
    memset(text + strlen(text), 'a', vlen);
    text[n - 1] = '\n';
    text[n] = '\0';
    p = write_conf_n(name, text, n, 0600);
    free(text);
    return p;
}

static void test_long_lines(void)
{
    static const char head[] = "[region a]\nurl = s3://b/p\naccess_key_id = AK\nsecret_access_key = sk\n"
                               "session_token = ",
                      tail[] = "\nmode = async\n";
    struct config *c;
    struct err e = ERR_INIT;
    const char *p;
    size_t big = 64 * 1024;
    char *tok = malloc(sizeof head + big + sizeof tail);

    /* A 64 KiB session token in a region (a real STS token is 800+ bytes). */
    memcpy(tok, head, sizeof head - 1);
    memset(tok + sizeof head - 1, 'T', big);
    memcpy(tok + sizeof head - 1 + big, tail, sizeof tail);
    p = write_conf("long-token.conf", tok, 0600);
    ok(load(p, &c, &e) == 0, "a 64 KiB session_token loads: %s", e.msg);
    if (c != NULL && c->nregions == 1) {
        ok(c->regions[0].session_token != NULL && strlen(c->regions[0].session_token) == big,
           "  all 65536 bytes of it");
        is_int(c->regions[0].mode, REGION_ASYNC, "  and the key after it is read");
        is_str(value_of(c, "a", "session_token", NULL), "<redacted>", "  config_walk does not show it");
    }
    config_free(c);
    free(tok);

    p = write_long("long-conninfo.conf", "pg_conninfo", 300);
    ok(load(p, &c, &e) < 0, "a 300-byte pg_conninfo is read whole (libpq then refuses the 'aaa' keyword)");
    like(e.msg, ":3: key \"pg_conninfo\"", "  on line 3, as a pg_conninfo, not as a syntax error");

    p = write_long("ten-mb.conf", "session_token", 10u << 20);
    ok(load(p, &c, &e) < 0, "a 10 MB line is refused");
    like(e.msg, "ten-mb.conf:3: key \"session_token\"", "  with its own line number and key");
    like(e.msg, "bytes long", "  saying it is too long");

    p = write_long("huge.conf", "pgdata", 17u << 20);
    ok(load(p, &c, &e) < 0, "a file over 16 MiB is refused");
    is_int(err_exit_status(&e), 2, "  as a configuration error");
}

static void test_env(const char *p)
{
    struct config *c;
    struct err e = ERR_INIT;
    const char *origin;

    setenv("WALSHIP_PARALLEL", "8", 1);
    setenv("WALSHIP_COMPRESSION", "none", 1);
    ok(load(p, &c, &e) == 0 && c->parallel == 8 && c->compression_level == 0,
       "WALSHIP_PARALLEL and WALSHIP_COMPRESSION override the file");
    if (c != NULL) {
        value_of(c, "global", "parallel", &origin);
        is_str(origin, "WALSHIP_PARALLEL", "  the origin names the variable");
    }
    config_free(c);
    setenv("WALSHIP_PARALLEL", "lots", 1);
    ok(load(p, &c, &e) < 0, "bad environment value is refused");
    like(e.msg, "WALSHIP_PARALLEL", "  error names the variable");
    unsetenv("WALSHIP_PARALLEL");
    unsetenv("WALSHIP_COMPRESSION");

    setenv("WALSHIP_KEY_FILE", "", 1);
    ok(load(p, &c, &e) < 0, "an empty WALSHIP_KEY_FILE is refused (not read as \"no encryption\")");
    like(e.msg, "WALSHIP_KEY_FILE is set but empty", "  and says so");
    unsetenv("WALSHIP_KEY_FILE");

    setenv("WALSHIP_KEYFILE", "/k", 1);
    ok(load(p, &c, &e) < 0, "a misspelt WALSHIP_KEYFILE is refused");
    like(e.msg, "did you mean WALSHIP_KEY_FILE", "  with the right name");
    is_int(err_exit_status(&e), 2, "  exit status 2");
    unsetenv("WALSHIP_KEYFILE");

    setenv("walship_key_file", "/k", 1);
    ok(load(p, &c, &e) < 0, "a lower-case walship_key_file is refused");
    unsetenv("walship_key_file");

    setenv("WALSHIP_URL", "file:///x", 1);
    ok(load(p, &c, &e) < 0, "a region key in the environment is refused");
    like(e.msg, "region keys cannot come from the environment", "  and says why");
    unsetenv("WALSHIP_URL");

    setenv("WALSHIP_CONFIG", "", 1);
    ok(load(p, &c, &e) == 0, "an empty WALSHIP_CONFIG is no file, as documented: %s", e.msg);
    config_free(c);
    unsetenv("WALSHIP_CONFIG");
}

static void test_origins_and_secrets(void)
{
    struct config *c;
    struct err e = ERR_INIT;
    const char *p, *origin;
    char want[600];

    p = write_conf("origins.conf",
                   "[global]\n"
                   "pgdata = /a\n"
                   "pg_conninfo = host=/run/pg password=hunter2pw dbname=postgres\n"
                   "\n"
                   "[region r1]\n"
                   "url = s3://b/p\n"
                   "secret_access_key = hunter2secret\n"
                   "access_key_id = AKIA1\n",
                   0600);
    ok(load(p, &c, &e) == 0, "origins.conf loads: %s", e.msg);
    if (c == NULL)
        return;
    value_of(c, "global", "pgdata", &origin);
    snprintf(want, sizeof want, "%s:2", p);
    is_str(origin, want, "a value from the file has FILE:LINE as origin");
    value_of(c, "r1", "secret_access_key", &origin);
    snprintf(want, sizeof want, "%s:7", p);
    is_str(origin, want, "  also in a region");
    value_of(c, "global", "parallel", &origin);
    is_str(origin, "default", "a default has \"default\"");
    is_str(value_of(c, "r1", "aws_region", &origin), "r1", "aws_region defaults to the region's name");
    is_str(origin, "default", "  and says it is the default");
    ok(config_set(c, "key_file", "/k", "--key-file", &e) == 0, "config_set from a flag");
    is_str(value_of(c, "global", "key_file", &origin), "/k", "  sets the value");
    is_str(origin, "--key-file", "  with the flag as origin");
    ok(config_region_set(c, "r1", "endpoint", "http://127.0.0.1:9", "--endpoint", &e) == 0, "config_region_set");
    value_of(c, "r1", "endpoint", &origin);
    is_str(origin, "--endpoint", "  records its origin");
    ok(config_set(c, "pgdata", "", "--pgdata", &e) < 0, "an empty flag value is refused");
    is_str(value_of(c, "r1", "secret_access_key", NULL), "<redacted>", "a secret is shown as <redacted>");
    like(value_of(c, "global", "pg_conninfo", NULL), "password=<redacted>", "a conninfo password is redacted");
    like(value_of(c, "global", "pg_conninfo", NULL), "dbname=postgres", "  the rest of it is shown");
    is_int(config_walk(c, walk_leaks, (void *)"hunter2secret", &e), 0, "no item shows the secret key");
    is_int(config_walk(c, walk_leaks, (void *)"hunter2pw", &e), 0, "no item shows the conninfo password");
    config_free(c);

    p = write_conf("conn-pw.conf", "[global]\npg_conninfo = host=x password=pw1 zq8xv\n", 0600);
    ok(load(p, &c, &e) < 0, "an unparsable conninfo is refused");
    ok(strstr(e.msg, "zq8xv") == NULL, "  without quoting the password");
}

int main(void)
{
    struct config *c;
    struct err e = ERR_INIT;
    const char *p;
    size_t i;

    if (mkdtemp(dir) == NULL)
        return 1;

    p = write_conf("good.conf",
                   "[global]\n"
                   "pgdata        = /var/lib/postgresql/15/main\n"
                   "compression   = zstd:5            ; inline comment\n"
                   "spool_max_bytes = 20GB\n"
                   "parallel      = 2\n"
                   "backup_max_age = 26h\n"
                   "old_key_files = /k/old1, /k/old2\n"
                   "\n"
                   "[region us-east-1]\n"
                   "url        = s3://acme-pg-use1/prod\n"
                   "endpoint   = https://s3.us-east-1.amazonaws.com\n"
                   "mode       = sync\n"
                   "retain_full = 7\n"
                   "\n"
                   "[region eu-west-1]\n"
                   "url = file:///srv/backup/euw1\n"
                   "mode = async\n"
                   "retain_days = 30\n",
                   0644);
    ok(load(p, &c, &e) == 0, "good config loads: %s", e.msg);
    if (c != NULL) {
        is_str(c->pgdata, "/var/lib/postgresql/15/main", "pgdata");
        is_int(c->compression_level, 5, "compression zstd:5 with inline comment");
        ok(c->spool_max_bytes == 20ULL << 30, "spool_max_bytes 20GB");
        is_int(c->parallel, 2, "parallel");
        ok(c->backup_max_age == 26 * 3600, "backup_max_age 26h");
        ok(c->old_key_files && c->old_key_files[0] && c->old_key_files[1] && !c->old_key_files[2],
           "two old key files");
        if (c->old_key_files && c->old_key_files[1])
            is_str(c->old_key_files[1], "/k/old2", "second old key file");
        is_str(value_of(c, "global", "old_key_files", NULL), "/k/old1, /k/old2", "old_key_files shown as a list");
        is_int(c->nregions, 2, "two regions");
        if (c->nregions == 2) {
            is_str(c->regions[0].name, "us-east-1", "first region name");
            is_str(c->regions[0].aws_region, "us-east-1", "aws_region defaults to the section name");
            is_int(c->regions[0].mode, REGION_SYNC, "sync mode");
            is_int(c->regions[0].retain_full, 7, "retain_full");
            is_int(c->regions[1].mode, REGION_ASYNC, "async mode");
            ok(c->regions[1].retain_days == 30, "retain_days");
            ok(config_region(c, "eu-west-1") == &c->regions[1], "config_region finds by name");
        }
        is_int(c->rpo_seconds, 60, "rpo_seconds default");
        config_free(c);
    }
    test_env(p);

    for (i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        char text[2048];

        /* Every case gets a region, so that the file is complete. */
        snprintf(text, sizeof text, "%s%s", goods[i].text,
                 strstr(goods[i].text, "[region") ? "" : "\n[region zz]\nurl = file:///zz\n");
        p = write_conf("case.conf", text, 0600);
        if (!ok(load(p, &c, &e) == 0, "loads: %s", goods[i].name)) {
            diag("%s", e.msg);
            continue;
        }
        is_str(value_of(c, goods[i].section, goods[i].key, NULL), goods[i].want, "  %s.%s", goods[i].section,
               goods[i].key);
        config_free(c);
    }
    p = write_conf("chars.conf", "[region a]\nurl = s3://b/p\nsecret_access_key = ab#c;d\n", 0600);
    ok(load(p, &c, &e) == 0 && strcmp(c->regions[0].secret_access_key, "ab#c;d") == 0,
       "a secret with # and ; not after a blank is read whole");
    config_free(c);
    p = write_conf("conn.conf", "[global]\npg_conninfo = host=/run/pg dbname=x\n", 0600);
    ok(load(p, &c, &e) == 0 && strcmp(c->pg_conninfo, "host=/run/pg dbname=x") == 0,
       "pg_conninfo keeps its = signs");
    config_free(c);

    for (i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        char name[32];

        snprintf(name, sizeof name, "bad%02zu.conf", i);
        p = write_conf_n(name, bads[i].text, bads[i].len ? bads[i].len : strlen(bads[i].text), 0600);
        check_bad(&bads[i], p);
    }

    test_long_lines();
    test_origins_and_secrets();

    p = write_conf("secret.conf", "[region r1]\nurl = s3://b/p\nsecret_access_key = hunter2secret\n", 0644);
    ok(load(p, &c, &e) < 0, "secret in a world-readable file refused");
    like(e.msg, "chmod 600", "secret error says how to fix it");
    ok(strstr(e.msg, "hunter2secret") == NULL, "secret error does not print the secret");

    p = write_conf("secret-ok.conf", "[region r1]\nurl = s3://b/p\nsecret_access_key = hunter2secret\n", 0600);
    ok(load(p, &c, &e) == 0, "secret in a 0600 file accepted");
    config_free(c);

    ok(load(dir, &c, &e) < 0, "a directory as configuration file is refused");
    like(e.msg, "is a directory", "  and says so");
    is_int(err_exit_status(&e), 2, "  exit status 2");

    p = write_conf("unreadable.conf", "[global]\npgdata = /a\n", 0);
    if (geteuid() != 0) {
        ok(load(p, &c, &e) < 0, "an unreadable file is refused");
        is_int(err_exit_status(&e), 2, "  exit status 2");
    } else {
        ok(1, "an unreadable file: not testable as root, who reads everything");
    }

    p = write_conf("empty.conf", "", 0600);
    ok(load(p, &c, &e) == 0 && c->nregions == 0, "an empty file gives the defaults");
    config_free(c);

    ok(load("/nonexistent/walship.conf", &c, &e) < 0, "missing --config file is an error");
    is_int(err_exit_status(&e), 2, "missing config file exits 2");

    ok(config_load(NULL, 0, &c, &e) == 0 || access("/etc/walship/walship.conf", F_OK) == 0,
       "no file and not required gives defaults");
    if (c != NULL && access("/etc/walship/walship.conf", F_OK) != 0) {
        ok(config_require_regions(c, &e) < 0, "defaults have no region, and commands say so");
        config_free(c);
    }

    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
