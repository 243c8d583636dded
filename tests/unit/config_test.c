/* config: INI parsing, validation, environment overrides, secrets. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static char dir[] = "/tmp/walship-config-test-XXXXXX";

static const char *write_conf(const char *name, const char *text, mode_t mode)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static int load(const char *path, struct config **c, struct err *e)
{
    err_clear(e);
    *c = NULL;
    return config_load(path, 1, c, e);
}

int main(void)
{
    struct config *c;
    struct err e = ERR_INIT;
    const char *p;

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

    /* environment overrides */
    setenv("WALSHIP_PARALLEL", "8", 1);
    setenv("WALSHIP_COMPRESSION", "none", 1);
    ok(load(p, &c, &e) == 0 && c->parallel == 8 && c->compression_level == 0,
       "WALSHIP_PARALLEL and WALSHIP_COMPRESSION override the file");
    config_free(c);
    setenv("WALSHIP_PARALLEL", "lots", 1);
    ok(load(p, &c, &e) < 0, "bad environment value is refused");
    like(e.msg, "WALSHIP_PARALLEL", "error names the variable");
    unsetenv("WALSHIP_PARALLEL");
    unsetenv("WALSHIP_COMPRESSION");

    /* errors name file, line and key */
    p = write_conf("unknown.conf", "[global]\npgdata = /x\nbogus_key = 1\n", 0600);
    ok(load(p, &c, &e) < 0, "unknown key refused");
    is_int(e.code, ERR_CONFIG, "unknown key is a configuration error");
    like(e.msg, "unknown.conf:3", "unknown key error names file and line");
    like(e.msg, "bogus_key", "unknown key error names the key");

    p = write_conf("badval.conf", "[global]\n\nparallel = many\n", 0600);
    ok(load(p, &c, &e) < 0, "bad value refused");
    like(e.msg, "badval.conf:3", "bad value error names the line");
    like(e.msg, "parallel", "bad value error names the key");

    p = write_conf("badcomp.conf", "[global]\ncompression = lz4\n", 0600);
    ok(load(p, &c, &e) < 0, "unknown compression refused");
    like(e.msg, "compression", "compression error names the key");

    p = write_conf("nourl.conf", "[region r1]\nmode = sync\n", 0600);
    ok(load(p, &c, &e) < 0, "region without url refused");
    like(e.msg, "has no url", "no-url error says so");
    like(e.msg, "r1", "no-url error names the region");

    p = write_conf("badurl.conf", "[region r1]\nurl = ftp://x\n", 0600);
    ok(load(p, &c, &e) < 0, "unsupported url scheme refused");

    p = write_conf("relurl.conf", "[region r1]\nurl = file://relative/path\n", 0600);
    ok(load(p, &c, &e) < 0, "relative file:// url refused");

    p = write_conf("dup.conf", "[region r1]\nurl = file:///a\n[region r1]\nurl = file:///b\n", 0600);
    ok(load(p, &c, &e) < 0, "duplicate region refused");
    like(e.msg, "twice", "duplicate region error says so");

    p = write_conf("section.conf", "[regions x]\nurl = file:///a\n", 0600);
    ok(load(p, &c, &e) < 0, "unknown section refused");

    p = write_conf("syntax.conf", "[global]\nthis line has no equals sign\n", 0600);
    ok(load(p, &c, &e) < 0, "syntax error refused");
    like(e.msg, "syntax.conf:2", "syntax error names the line");

    p = write_conf("secret.conf", "[region r1]\nurl = s3://b/p\nsecret_access_key = hunter2secret\n", 0644);
    ok(load(p, &c, &e) < 0, "secret in a world-readable file refused");
    like(e.msg, "chmod 600", "secret error says how to fix it");
    ok(strstr(e.msg, "hunter2secret") == NULL, "secret error does not print the secret");

    p = write_conf("secret-ok.conf", "[region r1]\nurl = s3://b/p\nsecret_access_key = hunter2secret\n", 0600);
    ok(load(p, &c, &e) == 0, "secret in a 0600 file accepted");
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
