/* fs: the file:// driver — atomic put, get with ranges, list, remove. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stor.h"
#include "stor_conf.h"
#include "tap.h"

static char dir[] = "/tmp/walship-fs-test-XXXXXX";

#include "eio_fstatat.h"     /* an entry whose stat fails with EIO */

/* The next fstat fails with EIO; an lstat of a path ending in
 * "/" eio_name too. */
static int eio_fstat;

int fstat(int fd, struct stat *st)
{
    static int (*real)(int, struct stat *);

    if (eio_fstat) {
        eio_fstat = 0;
        errno = EIO;
        return -1;
    }
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "fstat");
    return real(fd, st);
}

int lstat(const char *restrict path, struct stat *restrict st)
{
    static int (*real)(const char *, struct stat *);
    const char *slash = strrchr(path, '/');

    if (eio_name != NULL && slash != NULL && strcmp(slash + 1, eio_name) == 0) {
        errno = EIO;
        return -1;
    }
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "lstat");
    return real(path, st);
}

struct collect {
    char keys[64][128];
    int n;
};

static int collect_fn(const struct stor_entry *ent, void *arg)
{
    struct collect *c = arg;

    if (c->n < 64)
        snprintf(c->keys[c->n++], 128, "%s", ent->key);
    return 0;
}

/* A driver built against another interface version than this walship's. */
static int never_open(const struct stor_opts *o, struct stor **out, struct err *e)
{
    (void)o;
    (void)out;
    return err_setf(e, ERR_IO, "never_open was called");
}

static int old_ops_freed;

static void old_free(struct stor *s)
{
    old_ops_freed++;
    free(s);
}

static const struct stor_ops old_ops_free = {
    STOR_OPS_VERSION - 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, old_free,
};

static int old_ops_open(const struct stor_opts *o, struct stor **out, struct err *e)
{
    struct stor *s = calloc(1, sizeof *s);

    (void)o;
    if (s == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    s->ops = &old_ops_free;
    *out = s;
    return 0;
}

/* Opening with a version that does not match fails clearly, before the
 * driver runs (or, for the ops table, frees what it opened). */
static void versions(const char *url)
{
    struct stor_driver newer = { STOR_DRIVER_VERSION + 1, "file://", never_open };
    struct stor_driver good = { STOR_DRIVER_VERSION, "file://", never_open };
    struct stor_driver oldops = { STOR_DRIVER_VERSION, "file://", old_ops_open };
    struct stor_opts o;
    struct stor *s = (struct stor *)1;
    struct err e = ERR_INIT;

    memset(&o, 0, sizeof o);
    o.version = STOR_OPTS_VERSION;
    o.name = "local";
    o.url = url;
    ok(stor_driver_open(&newer, &o, &s, &e) < 0 && e.code == ERR_INTERNAL && s == NULL,
       "a driver of another interface version is refused");
    like(e.msg, "interface version", "...saying so: %s", e.msg);
    like(e.msg, "local", "...naming the region");

    e = (struct err)ERR_INIT;
    o.version = STOR_OPTS_VERSION + 1;
    ok(stor_driver_open(&good, &o, &s, &e) < 0 && e.code == ERR_INTERNAL, "options of another version are refused");
    like(e.msg, "storage options of version", "...saying so: %s", e.msg);
    e = (struct err)ERR_INIT;
    ok(stor_open_opts(&o, &s, &e) < 0 && e.code == ERR_INTERNAL && s == NULL,
       "...also by the built-in file:// driver");

    e = (struct err)ERR_INIT;
    o.version = STOR_OPTS_VERSION;
    ok(stor_driver_open(&oldops, &o, &s, &e) < 0 && e.code == ERR_INTERNAL && s == NULL && old_ops_freed == 1,
       "a driver handing back an ops table of another version is refused and freed");
    like(e.msg, "operations of version", "...saying so: %s", e.msg);

    e = (struct err)ERR_INIT;
    o.url = "ftp://host/x";
    ok(stor_open_opts(&o, &s, &e) < 0 && e.code == ERR_CONFIG, "an unknown scheme is a configuration error");
    like(e.msg, "unsupported url", "...saying so: %s", e.msg);
}

static int count_tmp(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, ".walship-tmp-", 13) == 0)
            n++;
    closedir(d);
    return n;
}

int main(void)
{
    struct config *c = config_new_default();
    struct region_conf rc;
    struct stor *s = NULL;
    struct err e = ERR_INIT;
    struct sink *up, *mem;
    struct stor_stat st;
    struct collect col;
    char url[256], path[512];
    const unsigned char *data;
    size_t len;
    unsigned char big[300000];
    size_t i;

    if (mkdtemp(dir) == NULL)
        return 1;
    memset(&rc, 0, sizeof rc);
    rc.name = "local";
    snprintf(url, sizeof url, "file://%s/root", dir);
    rc.url = url;

    ok(stor_open(&rc, c, NULL, &s, &e) == 0 && s->ops->version == STOR_OPS_VERSION, "open file:// region");
    versions(url);
    {
        /* the command's note sink reaches the driver through stor_opts */
        static const struct note_sink sink = { NULL, NULL };
        struct stor *sn = NULL;

        ok(stor_open(&rc, c, &sink, &sn, &e) == 0 && sn->notes == &sink && s->notes == NULL,
           "a driver is given the note sink it was opened with");
        stor_free(sn);
    }

    ok(stor_put_buf(s, "wal/000000010000000000000001", "x", 1, &e) < 0, "put into a missing root fails");
    is_int(e.code, ERR_NOBUCKET, "missing root is like a missing bucket");
    like(e.msg, "local", "error names the region");
    snprintf(path, sizeof path, "%s/root", dir);
    mkdir(path, 0700);

    for (i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7 + (i >> 9));
    ok(stor_put_buf(s, "wal/000000010000000000000001", big, sizeof big, &e) == 0, "put 300 kB: %s", e.msg);
    ok(stor_put_buf(s, "wal/000000010000000000000002", "two", 3, &e) == 0, "put small");
    ok(stor_put_buf(s, "backups/b1/part-0001", "p1", 2, &e) == 0, "put in nested new directory");

    /* an aborted put leaves nothing behind */
    ok(stor_put(s, "wal/000000010000000000000003", &up, &e) == 0, "open a put");
    ok(sink_write(up, "partial", 7, &e) == 0, "write part of it");
    snprintf(path, sizeof path, "%s/root/wal", dir);
    is_int(count_tmp(path), 1, "temp file exists while writing");
    ok(stor_head(s, "wal/000000010000000000000003", &st, &e) < 0 && e.code == ERR_NOTFOUND,
       "object is invisible before close");
    sink_free(up);
    is_int(count_tmp(path), 0, "abort removes the temp file");
    ok(stor_head(s, "wal/000000010000000000000003", &st, &e) < 0 && e.code == ERR_NOTFOUND,
       "aborted object never appears");

    /* get, whole and ranged */
    mem = mem_sink_new(0);
    ok(stor_get(s, "wal/000000010000000000000001", mem, &e) == 0, "get whole");
    data = mem_sink_data(mem, &len);
    ok(len == sizeof big && memcmp(data, big, len) == 0, "get returns the same bytes");
    sink_free(mem);
    mem = mem_sink_new(0);
    ok(stor_get_range(s, "wal/000000010000000000000001", 1000, 50, mem, &e) == 0, "get range");
    data = mem_sink_data(mem, &len);
    ok(len == 50 && memcmp(data, big + 1000, 50) == 0, "range returns bytes 1000..1049");
    sink_free(mem);
    mem = mem_sink_new(0);
    ok(stor_get(s, "wal/nope", mem, &e) < 0, "get of a missing key fails");
    is_int(e.code, ERR_NOTFOUND, "missing key is ERR_NOTFOUND");
    sink_free(mem);

    ok(stor_head(s, "wal/000000010000000000000002", &st, &e) == 0 && st.size == 3, "head gives the size");

    /* list: sorted, prefix-filtered, no temp files */
    memset(&col, 0, sizeof col);
    ok(stor_list(s, "", collect_fn, &col, &e) == 0, "list all");
    is_int(col.n, 3, "three objects");
    if (col.n == 3) {
        is_str(col.keys[0], "backups/b1/part-0001", "sorted first");
        is_str(col.keys[2], "wal/000000010000000000000002", "sorted last");
    }
    memset(&col, 0, sizeof col);
    ok(stor_list(s, "wal/0000000100000000000000", collect_fn, &col, &e) == 0, "list partial-name prefix");
    is_int(col.n, 2, "two WAL objects match");
    memset(&col, 0, sizeof col);
    ok(stor_list_after(s, "wal/", "wal/000000010000000000000001", collect_fn, &col, &e) == 0, "list after a key");
    is_int(col.n, 1, "only the keys after it (start-after is exclusive)");
    if (col.n == 1)
        is_str(col.keys[0], "wal/000000010000000000000002", "the key after it");
    memset(&col, 0, sizeof col);
    ok(stor_list_after(s, "", "backups/b0", collect_fn, &col, &e) == 0 && col.n == 3,
       "a start-after key that is not there: every key that sorts after it");

    /* publishing never replaces: a second put of a name fails, the first
     * object stays, and no temp file is left */
    ok(stor_put_buf(s, "wal/000000010000000000000002", "TWO", 3, &e) < 0 && e.code == ERR_EXISTS,
       "a put over an existing object fails with ERR_EXISTS: %s", e.msg);
    mem = mem_sink_new(0);
    ok(stor_get(s, "wal/000000010000000000000002", mem, &e) == 0, "get after the refused put");
    data = mem_sink_data(mem, &len);
    ok(len == 3 && memcmp(data, "two", 3) == 0, "the first object is unchanged");
    sink_free(mem);
    snprintf(path, sizeof path, "%s/root/wal", dir);
    is_int(count_tmp(path), 0, "the refused put left no temp file");
    {
        struct sink *a = NULL, *b = NULL;

        ok(stor_put(s, "wal/race", &a, &e) == 0 && stor_put(s, "wal/race", &b, &e) == 0, "two writers, one name");
        ok(sink_write(a, "aaa", 3, &e) == 0 && sink_write(b, "bbbb", 4, &e) == 0, "both write");
        ok(sink_close(b, &e) == 0, "the first to close publishes");
        ok(sink_close(a, &e) < 0 && e.code == ERR_EXISTS, "the second is refused: %s", e.msg);
        sink_free(a);
        sink_free(b);
        ok(stor_head(s, "wal/race", &st, &e) == 0 && st.size == 4, "the first writer's object stands");
    }
    ok(stor_put_replace(s, "wal/race", &up, &e) == 0 && sink_write(up, "c", 1, &e) == 0 && sink_close(up, &e) == 0,
       "STOR_PUT_REPLACE replaces");
    sink_free(up);
    ok(stor_head(s, "wal/race", &st, &e) == 0 && st.size == 1, "...with the new content");

    /* remove, remove_many */
    ok(stor_put_buf(s, "wal/copy", "two", 3, &e) == 0, "put another");
    ok(stor_remove(s, "wal/race", &e) == 0, "remove");
    ok(stor_remove(s, "wal/copy", &e) == 0, "remove");
    ok(stor_remove(s, "wal/copy", &e) == 0, "remove of a missing key succeeds");
    {
        const char *keys[] = { "wal/000000010000000000000001", "backups/b1/part-0001" };
        ok(stor_remove_many(s, keys, 2, &e) == 0, "remove_many");
    }
    snprintf(path, sizeof path, "%s/root/backups", dir);
    ok(access(path, F_OK) != 0, "empty directories are tidied after remove");

    /* temp files of killed writers: swept once old, never a live writer's */
    {
        const char *names[] = { ".walship-tmp-999999-1-old", ".walship-tmp-999999-2-new", NULL };
        char live[64];
        struct timespec old[2];
        uint64_t removed = 0;
        int k;

        snprintf(live, sizeof live, ".walship-tmp-%d-3-mine", (int)getpid());
        names[2] = live;
        clock_gettime(CLOCK_REALTIME, &old[0]);
        old[0].tv_sec -= 7200;
        old[1] = old[0];
        for (k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/root/wal/%s", dir, names[k]);
            close(open(path, O_WRONLY | O_CREAT, 0600));
            if (k != 1)
                utimensat(AT_FDCWD, path, old, 0);
        }
        ok(stor_sweep(s, time(NULL) - 3600, &removed, &e) == 0 && removed == 1, "sweep removes one file: %s",
           e.msg);
        snprintf(path, sizeof path, "%s/root/wal/%s", dir, names[0]);
        ok(access(path, F_OK) != 0, "...the old temp file of a dead writer");
        snprintf(path, sizeof path, "%s/root/wal/%s", dir, names[1]);
        ok(access(path, F_OK) == 0, "...not a recent one");
        snprintf(path, sizeof path, "%s/root/wal/%s", dir, names[2]);
        ok(access(path, F_OK) == 0, "...nor an old one whose writer still runs");
        ok(stor_head(s, "wal/000000010000000000000002", &st, &e) == 0, "...and no object");
        unlink(path);
        snprintf(path, sizeof path, "%s/root/wal/%s", dir, names[1]);
        unlink(path);
    }

    /* An entry that cannot be looked at fails the listing: left out, a
     * complete backup whose manifest.json it is looks incomplete, and
     * retention deletes its parts (adversarial pass J). */
    ok(stor_put_buf(s, "backups/b1/manifest.json", "{}", 2, &e) == 0, "put a manifest");
    eio_name = "manifest.json";
    memset(&col, 0, sizeof col);
    ok(stor_list(s, "backups/", collect_fn, &col, &e) < 0, "list fails when an entry's stat fails (EIO)");
    is_int(e.code, ERR_IO, "... as an I/O error");
    like(e.msg, "manifest.json", "... naming the entry");
    eio_name = NULL;
    memset(&col, 0, sizeof col);
    ok(stor_list(s, "backups/", collect_fn, &col, &e) == 0 && col.n >= 1 &&
       strcmp(col.keys[col.n - 1], "backups/b1/manifest.json") == 0, "... and lists it once it can");
    ok(stor_remove(s, "backups/b1/manifest.json", &e) == 0, "remove the manifest");

    /* Nor is a look-up that fails "not found": wal-fetch would answer 1,
     * and PostgreSQL end recovery there. */
    mem = mem_sink_new(0);
    eio_fstat = 1;
    ok(stor_get(s, "wal/000000010000000000000002", mem, &e) < 0 && e.code == ERR_IO,
       "get: an object whose fstat fails is an I/O error, not \"not found\" (%d)", e.code);
    eio_fstat = 0;
    sink_free(mem);
    mem = mem_sink_new(0);
    eio_name = "wal";
    ok(stor_get(s, "wal/00000001000000000000000F", mem, &e) < 0 && e.code == ERR_IO,
       "get: a missing object whose directory cannot be looked at is an I/O error (%d)", e.code);
    eio_name = NULL;
    ok(stor_get(s, "wal/00000001000000000000000F", mem, &e) < 0 && e.code == ERR_NOTFOUND,
       "... and \"not found\" once it can");
    sink_free(mem);

    /* A top-level directory that is a symbolic link is listed through it,
     * as get reads through it; one to nothing (an unmounted target) fails
     * the listing: empty, copy published a backup without its WAL. */
    {
        char target[512], link_path[600];

        snprintf(target, sizeof target, "%s/elsewhere", dir);
        mkdir(target, 0700);
        snprintf(link_path, sizeof link_path, "%s/root/linked", dir);
        ok(symlink(target, link_path) == 0, "linked/ is a symbolic link to a directory");
        ok(stor_put_buf(s, "linked/000000010000000000000001", "L", 1, &e) == 0, "put through it");
        memset(&col, 0, sizeof col);
        ok(stor_list(s, "linked/", collect_fn, &col, &e) == 0 && col.n == 1 &&
           strcmp(col.keys[0], "linked/000000010000000000000001") == 0, "list through it: %s", e.msg);
        snprintf(link_path, sizeof link_path, "%s/root/gone", dir);
        ok(symlink("/nonexistent/walship-fs-test", link_path) == 0, "gone/ is a symbolic link to nothing");
        memset(&col, 0, sizeof col);
        ok(stor_list(s, "gone/", collect_fn, &col, &e) < 0 && e.code == ERR_IO,
           "listing it fails (an I/O error), not an empty listing");
        like(e.msg, "symbolic link to nothing", "... saying why");
        memset(&col, 0, sizeof col);
        ok(stor_list(s, "wal/", collect_fn, &col, &e) == 0, "other prefixes still list");
        unlink(link_path);
    }

    /* bad keys */
    ok(stor_put_buf(s, "../escape", "x", 1, &e) < 0, "key with .. refused");
    ok(stor_put_buf(s, "/abs", "x", 1, &e) < 0, "absolute key refused");
    ok(stor_put_buf(s, "a//b", "x", 1, &e) < 0, "empty segment refused");
    ok(stor_put_buf(s, "wal/", "x", 1, &e) < 0, "key ending in / refused");

    stor_free(s);
    config_free(c);
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
