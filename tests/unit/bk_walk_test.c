/* bk_walk: what a base backup copies, with pg_basebackup's exclusions. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bk_walk.h"
#include "tap.h"
#include "util.h"

static char dir[] = "/tmp/walship-bkwalk-XXXXXX";

/* A DROP TABLESPACE between the listing of pg_tblspc and the reading of
 * its link: when set, the link is removed just before readlink() reads it
 * (this definition takes the place of libc's for libwalship.a). */
static int drop_before_readlink;

ssize_t readlink(const char *path, char *buf, size_t n)
{
    static ssize_t (*real)(const char *, char *, size_t);

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "readlink");
    if (drop_before_readlink && strstr(path, "/pg_tblspc/") != NULL)
        unlink(path);
    return real(path, buf, n);
}

static void mk(const char *rel, int is_dir)
{
    char p[512];
    struct err e = ERR_INIT;

    snprintf(p, sizeof p, "%s/%s", dir, rel);
    if (is_dir) {
        mkdir_p(p, 0700, &e);
    } else {
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            if (write(fd, "data", 4) != 4)
                diag("short write");
            close(fd);
        }
    }
}

static int listed(const struct bk_list *l, const char *rel)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->items[i].path, rel) == 0)
            return 1;
    return 0;
}

int main(void)
{
    struct bk_list l;
    struct err e = ERR_INIT;
    char **names;
    size_t n;

    if (mkdtemp(dir) == NULL)
        return 1;
    mk("base/1", 1);
    /* an unlogged relation with every fork, and a logged one with a segment */
    mk("base/1/16384", 0);
    mk("base/1/16384_fsm", 0);
    mk("base/1/16384_init", 0);
    mk("base/1/16384_vm", 0);
    mk("base/1/16384.1", 0);
    mk("base/1/16385", 0);
    mk("base/1/16385.1", 0);
    mk("base/1/pg_internal.init", 0);
    mk("base/pgsql_tmp", 1);
    mk("base/pgsql_tmp/pgsql_tmp123.0", 0);
    mk("pg_wal/archive_status", 1);
    mk("pg_wal/000000010000000000000001", 0);
    mk("pg_wal/archive_status/000000010000000000000001.done", 0);
    mk("pg_replslot/slot1", 1);
    mk("pg_stat_tmp", 1);
    mk("pg_stat_tmp/global.stat", 0);
    mk("global", 1);
    mk("global/pg_control", 0);
    mk("postmaster.pid", 0);
    mk("backup_label", 0);
    mk("postgresql.conf", 0);
    mk(".hidden_conf", 0);

    ok(bk_walk(dir, &l, &e) == 0, "walk: %s", e.msg);
    ok(listed(&l, "base/1/16384_init"), "the init fork of an unlogged relation is kept");
    ok(!listed(&l, "base/1/16384") && !listed(&l, "base/1/16384_fsm") && !listed(&l, "base/1/16384_vm") &&
           !listed(&l, "base/1/16384.1"),
       "its main, fsm and vm forks and segments are not");
    ok(listed(&l, "base/1/16385") && listed(&l, "base/1/16385.1"), "a logged relation and its segment are kept");
    ok(!listed(&l, "base/1/pg_internal.init"), "pg_internal.init is skipped");
    ok(!listed(&l, "base/pgsql_tmp") && !listed(&l, "base/pgsql_tmp/pgsql_tmp123.0"), "temp files are skipped");
    ok(listed(&l, "pg_wal") && listed(&l, "pg_wal/archive_status"), "pg_wal and archive_status are kept");
    ok(!listed(&l, "pg_wal/000000010000000000000001") &&
           !listed(&l, "pg_wal/archive_status/000000010000000000000001.done"),
       "their contents are not");
    ok(listed(&l, "pg_replslot") && !listed(&l, "pg_replslot/slot1"), "pg_replslot is kept empty");
    ok(!listed(&l, "pg_stat_tmp/global.stat"), "pg_stat_tmp contents are skipped");
    ok(!listed(&l, "postmaster.pid") && !listed(&l, "backup_label"), "postmaster.pid and backup_label are skipped");
    ok(listed(&l, "global/pg_control") && listed(&l, "postgresql.conf"), "pg_control and configuration are kept");
    ok(listed(&l, ".hidden_conf"), "dot files in PGDATA are kept");
    ok(l.ndirs > 0 && l.items[0].is_dir && !l.items[l.ndirs].is_dir, "directories come first");
    bk_list_free(&l);

    ok(dir_list_sorted(dir, DIR_ONLY_DIRS | DIR_NO_HIDDEN, &names, &n, &e) == 0, "dir_list_sorted");
    ok(n >= 5 && strcmp(names[0], "base") == 0, "directories only, sorted (first: %s)", n ? names[0] : "-");
    dir_list_free(names, n);
    ok(dir_list_sorted("/nonexistent/walship", 0, &names, &n, &e) == 0 && n == 0,
       "a missing directory lists as empty");

    /* tablespaces in pg_tblspc that the tablespace map does not name */
    {
        char first[32], link[600];

        mk("pg_tblspc", 1);
        ok(bk_tablespaces_new(dir, "", first, sizeof first) == 0, "no tablespace: none new");
        snprintf(link, sizeof link, "%s/pg_tblspc/16400", dir);
        if (symlink("/tmp/ts a", link) != 0)
            diag("symlink failed");
        snprintf(link, sizeof link, "%s/pg_tblspc/164001", dir);
        if (symlink("/tmp/ts b", link) != 0)
            diag("symlink failed");
        ok(bk_tablespaces_new(dir, "16400 /tmp/ts a\n164001 /tmp/ts b\n", first, sizeof first) == 0,
           "every tablespace in the map: none new");
        ok(bk_tablespaces_new(dir, "16400 /tmp/ts a\n", first, sizeof first) == 1 && strcmp(first, "164001") == 0,
           "one missing from the map: it is new (%s)", first);
        ok(bk_tablespaces_new(dir, "164001 /tmp/ts b\n", first, sizeof first) == 1 && strcmp(first, "16400") == 0,
           "an OID that is a prefix of another's is not taken for it (%s)", first);
        ok(bk_tablespaces_new(dir, NULL, first, sizeof first) == 2, "no map at all: both new");
        ok(bk_tablespaces_new("/nonexistent/walship", "", first, sizeof first) == 0, "no pg_tblspc: none");
    }

    /* a tablespace dropped while the walk runs is not there to back up,
     * like a dropped relation: not a failure of the backup */
    {
        char link[600];

        snprintf(link, sizeof link, "%s/pg_tblspc/164001", dir);
        unlink(link);
    }
    drop_before_readlink = 1;
    {
        int rc = bk_walk(dir, &l, &e);

        ok(rc == 0, "a tablespace link removed between the listing and readlink: %s", e.msg[0] ? e.msg : "no error");
    }
    ok(l.ntbs == 0 && !listed(&l, "pg_tblspc/16400"), "and it is left out");
    bk_list_free(&l);
    drop_before_readlink = 0;

    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
