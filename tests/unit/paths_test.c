/* paths: path_resolve, path_under, and path_unmounted_volume against fstab
 * and mount tables written by the test (the system's own are not read). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "tap.h"

static char dir[64], fstab[PATH_MAX], mounts[PATH_MAX];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* the fstab and mounts tables, then path_unmounted_volume(p) */
static int check(const char *ft, const char *mt, const char *p, char *where)
{
    char full[PATH_MAX];

    put(fstab, ft);
    put(mounts, mt);
    snprintf(full, sizeof full, "%s%s", p[0] == '/' && strncmp(p, "/proc", 5) != 0 ? dir : "", p);
    where[0] = '\0';
    return path_unmounted_volume(full, fstab, mounts, where, PATH_MAX);
}

int main(void)
{
    char where[PATH_MAX], ft[4 * PATH_MAX], mt[4 * PATH_MAX], out[PATH_MAX], sub[PATH_MAX];
    const char *rel;

    snprintf(dir, sizeof dir, "/tmp/paths_test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return perror("mkdtemp"), 1;
    snprintf(fstab, sizeof fstab, "%s/fstab", dir);
    snprintf(mounts, sizeof mounts, "%s/mounts", dir);
    snprintf(sub, sizeof sub, "%s/srv", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/srv/pg", dir);
    mkdir(sub, 0755);

    ok(path_resolve("/a/./b//c/../d/", out) == 0 && strcmp(out, "/a/b/d") == 0, "path_resolve: lexical (%s)", out);
    ok(path_under("/a/b", "/a/b/c", &rel) && strcmp(rel, "c") == 0, "path_under: below");
    ok(path_under("/a/b", "/a/b", &rel) && rel[0] == '\0', "path_under: at");
    ok(!path_under("/a/b", "/a/bc", &rel), "path_under: /a/bc is not below /a/b");

    snprintf(ft, sizeof ft, "/dev/sdb1 %s/srv/pg ext4 defaults 0 2\n", dir);
    is_int(check(ft, "/dev/sda1 / ext4 rw 0 0\n", "/srv/pg/data", where), 1,
           "a data directory below an fstab mount point that is not mounted");
    snprintf(out, sizeof out, "%s/srv/pg", dir);
    is_str(where, out, "...the mount point is named");
    is_int(check(ft, "/dev/sda1 / ext4 rw 0 0\n", "/srv/pg", where), 1, "...the mount point itself");
    is_int(check(ft, "/dev/sda1 / ext4 rw 0 0\n", "/srv/pg/not/made/yet", where), 1, "...a path not made yet below it");
    is_int(check(ft, "/dev/sda1 / ext4 rw 0 0\n", "/srv/pgx/data", where), 0, "a sibling with a longer name is not below it");
    is_int(check(ft, "/dev/sda1 / ext4 rw 0 0\n", "/srv", where), 0, "its parent is not below it");
    snprintf(mt, sizeof mt, "/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 %s/srv/pg ext4 rw 0 0\n", dir);
    is_int(check(ft, mt, "/srv/pg/data", where), 0, "mounted: no objection");
    snprintf(mt, sizeof mt, "/dev/sda1 / ext4 rw 0 0\nsystemd-1 %s/srv/pg autofs rw 0 0\n", dir);
    is_int(check(ft, mt, "/srv/pg/data", where), 0, "an automount point counts as mounted");

    /* nested: /srv mounted, /srv/pg not */
    snprintf(ft, sizeof ft, "/dev/sdb1 %s/srv ext4 defaults 0 2\n/dev/sdc1 %s/srv/pg xfs noauto 0 0\n", dir, dir);
    snprintf(mt, sizeof mt, "/dev/sdb1 %s/srv ext4 rw 0 0\n", dir);
    is_int(check(ft, mt, "/srv/pg/data", where), 1, "nested: the inner volume is not mounted");
    snprintf(out, sizeof out, "%s/srv/pg", dir);
    is_str(where, out, "...and the inner one is named");
    /* a link to the mount point is seen through */
    snprintf(out, sizeof out, "%s/link", dir);
    snprintf(sub, sizeof sub, "%s/srv/pg", dir);
    ok(symlink(sub, out) == 0, "a link to the mount point");
    is_int(check(ft, mt, "/link/data", where), 1, "...a data directory through the link is refused too");

    /* names with a space are escaped in both tables (\040) */
    snprintf(sub, sizeof sub, "%s/my vol", dir);
    mkdir(sub, 0755);
    snprintf(ft, sizeof ft, "LABEL=x %s/my\\040vol ext4 defaults 0 2\n", dir);
    is_int(check(ft, "/dev/sda1 / ext4 rw 0 0\n", "/my vol/data", where), 1, "a mount point with a space (\\040)");
    snprintf(mt, sizeof mt, "/dev/sdb1 %s/my\\040vol ext4 rw 0 0\n", dir);
    is_int(check(ft, mt, "/my vol/data", where), 0, "...mounted");

    /* what is not a mount point here */
    is_int(check("/dev/sda1 / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\nproc /proc proc defaults 0 0\n",
                 "", "/srv/pg/data", where), 0, "/, swap: not volumes to check");
    is_int(check("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n", "", "/srv/pg/data", where), 0, "an empty fstab");
    put(mounts, "");
    ok(path_unmounted_volume("/x", "/nonexistent/fstab", mounts, where, sizeof where) == 0, "no fstab: no objection");
    snprintf(ft, sizeof ft, "/dev/sdb1 %s/srv/pg ext4 defaults 0 2\n", dir);
    put(fstab, ft);
    ok(path_unmounted_volume(sub, fstab, "/nonexistent/mounts", where, sizeof where) == 0,
       "no mount table: no objection");

    {
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
