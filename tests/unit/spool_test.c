/*
 * spool_test — the local queue and the state beside it (src/archive/spool.c,
 * spool_state.c, spool.h): put/list/done/set-aside, usage, the cluster's
 * identity, the shipper's state files, push-ahead markers and their file
 * identity, locks and the PID their holder writes, and isolation: a second
 * cluster's entries are never seen as ours, and an entry that was never
 * completed (a torn put, a crashed writer's temp file) is never listed.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"
#include "util.h"

#define SYS_A 7300000000000000001ULL
#define SYS_B 7300000000000000002ULL
#define SEG1 "000000010000000000000001"
#define SEG2 "000000010000000000000002"

static char root[] = "/tmp/walship-spool-test-XXXXXX";

static int put(struct spool *sp, const char *name, char *const *queues, size_t nq, const char *body,
               struct sink **keep, struct err *e)
{
    struct sink *s;

    if (spool_put(sp, name, queues, nq, strlen(body), &s, e) < 0)
        return -1;
    if (sink_write(s, body, strlen(body), e) < 0 || sink_close(s, e) < 0) {
        sink_free(s);
        return -1;
    }
    if (keep != NULL)
        *keep = s;
    else
        sink_free(s);
    return 0;
}

static size_t count_dir(const char *path)
{
    char **v = NULL;
    size_t n = 0;

    if (dir_list_sorted(path, DIR_NO_HIDDEN, &v, &n, &(struct err)ERR_INIT) < 0)
        return 0;
    dir_list_free(v, n);
    return n;
}

static char *slurp(const char *path)
{
    unsigned char *b = NULL;
    size_t len;
    char *s;

    if (read_file_all(path, 1 << 20, &b, &len, &(struct err)ERR_INIT) < 0)
        return NULL;
    s = malloc(len + 1);
    if (len > 0)
        memcpy(s, b, len);
    s[len] = '\0';
    free(b);
    return s;
}

static void test_open(void)
{
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    char path[PATH_MAX];
    struct stat st;

    ok(spool_open("relative/dir", 0, SYS_A, &sp, &e) < 0 && e.code == ERR_CONFIG, "a relative spool_dir is refused");
    err_clear(&e);
    ok(spool_open(root, 0, 0, &sp, &e) < 0, "a spool without a system identifier is refused");
    err_clear(&e);
    ok(spool_open(root, 0, SYS_A, &sp, &e) == 0, "a cluster's spool opens");
    snprintf(path, sizeof path, "%s/%llu", root, (unsigned long long)SYS_A);
    is_str(spool_dir(sp), path, "in spool_dir/SYSID");
    ok(spool_sysid(sp) == SYS_A, "and knows its cluster");
    snprintf(path, sizeof path, "%s/queue", spool_dir(sp));
    ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 077) == 0, "its queue directory is private");
    spool_free(sp);
}

static void test_queue_name(void)
{
    char a[SPOOL_QUEUE_MAX], b[SPOOL_QUEUE_MAX], c[SPOOL_QUEUE_MAX];

    spool_queue_name("eu", "s3://bucket/p", "https://s3.eu", a);
    spool_queue_name("eu", "s3://bucket/p", "https://s3.eu", b);
    spool_queue_name("eu", "s3://other/p", "https://s3.eu", c);
    is_str(a, b, "a queue's name is stable");
    ok(strncmp(a, "eu-", 3) == 0 && strlen(a) == 3 + 16, "region name, a dash and 16 hex digits");
    ok(strcmp(a, c) != 0, "another url is another queue");
    spool_queue_name("eu", "s3://bucket/p", "https://s3.elsewhere", c);
    ok(strcmp(a, c) != 0, "another endpoint is another queue");
}

static void test_put_list_done(void)
{
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    char *queues[2] = { "r2-aaaa", "r3-bbbb" };
    char **names = NULL, path[PATH_MAX], kept[PATH_MAX], *body;
    size_t n = 0;
    struct spool_usage u;
    struct sink *s = NULL;
    struct stat a, b;

    spool_open(root, 0, SYS_A, &sp, &e);
    ok(put(sp, SEG2, queues, 2, "second segment", NULL, &e) == 0, "put %s into two queues", SEG2);
    ok(put(sp, SEG1, queues, 1, "first", NULL, &e) == 0, "put %s into one", SEG1);
    ok(spool_list(sp, queues[0], &names, &n, &e) == 0 && n == 2, "the first queue lists two names");
    ok(n == 2 && strcmp(names[0], SEG1) == 0 && strcmp(names[1], SEG2) == 0, "sorted: archive order");
    spool_names_free(names, n);
    ok(spool_list(sp, queues[1], &names, &n, &e) == 0 && n == 1 && strcmp(names[0], SEG2) == 0,
       "the second queue lists only what was put there");
    spool_names_free(names, n);
    ok(spool_is_queued(sp, queues[1], SEG2) && !spool_is_queued(sp, queues[1], SEG1), "spool_is_queued agrees");

    spool_entry_path(sp, queues[0], SEG2, path, sizeof path);
    body = slurp(path);
    is_str(body, "second segment", "the entry holds the bytes written");
    free(body);
    stat(path, &a);
    spool_entry_path(sp, queues[1], SEG2, path, sizeof path);
    stat(path, &b);
    ok(a.st_ino == b.st_ino, "one object, linked into both queues");

    ok(spool_usage(sp, NULL, &u, &e) == 0, "usage");
    ok(u.objects == 2 && u.entries == 3 && u.bytes == strlen("second segment") + strlen("first"),
       "counts distinct objects once (2 objects, 3 entries, %llu bytes)", (unsigned long long)u.bytes);
    ok(u.oldest > 0, "and knows the oldest entry's time");
    ok(spool_usage(sp, queues[1], &u, &e) == 0 && u.entries == 1 && u.objects == 1, "usage of one queue");
    snprintf(path, sizeof path, "%s/tmp", spool_dir(sp));
    is_int(count_dir(path), 0, "no temp file is left behind");

    ok(spool_queues(sp, &names, &n, &e) == 0 && n == 2 && strcmp(names[0], queues[0]) == 0, "the queues are listed");
    spool_names_free(names, n);

    /* the same name again: nothing is linked, the caller is told */
    ok(put(sp, SEG1, queues, 2, "first", &s, &e) == 0, "put %s again into both queues", SEG1);
    ok(spool_put_existed(s, 0) && !spool_put_existed(s, 1), "put says the first queue already held it");
    ok(!spool_put_existed(s, 2) && !spool_put_existed(NULL, 0), "and nothing about queues it was not given");
    sink_free(s);

    ok(spool_done(sp, queues[0], SEG1, &e) == 0, "done removes an entry");
    ok(!spool_is_queued(sp, queues[0], SEG1) && spool_is_queued(sp, queues[1], SEG1),
       "from that queue only");
    ok(spool_done(sp, queues[0], SEG1, &e) == 0, "done of an entry already gone succeeds");
    spool_done(sp, queues[1], SEG1, &e);
    spool_done(sp, queues[0], SEG2, &e);
    ok(spool_usage(sp, NULL, &u, &e) == 0 && u.entries == 1 && u.objects == 1, "usage follows");

    ok(spool_set_aside(sp, queues[1], SEG2, kept, sizeof kept, &e) == 0, "set-aside of a refused entry");
    ok(!spool_is_queued(sp, queues[1], SEG2), "takes it out of the queue");
    is_int(spool_conflicts(sp, queues[1]), 1, "into the queue's conflicts");
    is_int(spool_conflicts(sp, queues[0]), 0, "other queues have none");
    ok(str_has_suffix(kept, "/conflicts/r3-bbbb/" SEG2), "kept under its name (%s)", kept);
    err_clear(&e);
    ok(spool_set_aside(sp, queues[1], SEG2, NULL, 0, &e) < 0 && e.code == ERR_IO, "setting aside a missing entry fails");
    ok(spool_usage(sp, NULL, &u, &e) == 0 && u.entries == 0 && u.bytes == 0, "the queues are empty");

    /* the name pushed again with other content and refused again: the copy
     * set aside first must stay (rename() replaced it: an acknowledged copy
     * lost) */
    err_clear(&e);
    ok(put(sp, SEG2, &queues[1], 1, "another second", NULL, &e) == 0, "%s queued again, other content", SEG2);
    ok(spool_set_aside(sp, queues[1], SEG2, kept, sizeof kept, &e) == 0, "set aside again");
    ok(str_has_suffix(kept, "/conflicts/r3-bbbb/" SEG2 ".1"), "beside the first, as NAME.1 (%s)", kept);
    is_int(spool_conflicts(sp, queues[1]), 2, "both copies are in the queue's conflicts");
    body = slurp(kept);
    is_str(body, "another second", "the second copy holds its bytes");
    free(body);
    kept[strlen(kept) - 2] = '\0';
    body = slurp(kept);
    is_str(body, "second segment", "the first copy is intact");
    free(body);
    spool_free(sp);
}

static void test_torn(void)
{
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    char *queues[1] = { "r2-aaaa" };
    char **names = NULL, path[PATH_MAX];
    size_t n = 0;
    struct sink *s;
    struct spool_usage u;
    struct timespec old[2] = { { 0, 0 }, { 0, 0 } };
    int fd;

    spool_open(root, 0, SYS_A, &sp, &e);
    ok(spool_put(sp, SEG1, queues, 1, 10, &s, &e) == 0 && sink_write(s, "half", 4, &e) == 0,
       "a put that is written to");
    ok(spool_list(sp, queues[0], &names, &n, &e) == 0 && n == 0, "is not listed before its close");
    spool_names_free(names, n);
    sink_free(s);
    ok(spool_list(sp, queues[0], &names, &n, &e) == 0 && n == 0, "nor after it was freed without a close");
    spool_names_free(names, n);
    snprintf(path, sizeof path, "%s/tmp", spool_dir(sp));
    is_int(count_dir(path), 0, "and its temp file is gone");
    ok(spool_usage(sp, NULL, &u, &e) == 0 && u.bytes == 0, "it takes no room");

    /* a crashed writer's temp files: an old one is swept, a fresh one kept */
    snprintf(path, sizeof path, "%s/tmp/%s.1.old", spool_dir(sp), SEG2);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ok(fd >= 0 && write(fd, "torn", 4) == 4, "a crashed writer's old temp file");
    close(fd);
    old[0].tv_sec = old[1].tv_sec = time(NULL) - 7200;
    utimensat(AT_FDCWD, path, old, 0);
    snprintf(path, sizeof path, "%s/tmp/%s.2.new", spool_dir(sp), SEG2);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    /* a hidden file in a queue (an editor's, an interrupted copy) */
    snprintf(path, sizeof path, "%s/queue/%s/.%s.part", spool_dir(sp), queues[0], SEG2);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    spool_free(sp);
    spool_open(root, 0, SYS_A, &sp, &e);
    snprintf(path, sizeof path, "%s/tmp", spool_dir(sp));
    is_int(count_dir(path), 1, "opening the spool sweeps the old temp file, not a live writer's");
    ok(spool_list(sp, queues[0], &names, &n, &e) == 0 && n == 0, "neither temp nor hidden files are listed");
    spool_names_free(names, n);
    snprintf(path, sizeof path, "%s/tmp/%s.2.new", spool_dir(sp), SEG2);
    unlink(path);
    snprintf(path, sizeof path, "%s/queue/%s/.%s.part", spool_dir(sp), queues[0], SEG2);
    unlink(path);
    spool_free(sp);
}

static void test_full(void)
{
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    char *queues[1] = { "r2-full" };
    struct sink *s = NULL;

    spool_open(root, 20, SYS_A, &sp, &e);
    ok(put(sp, SEG1, queues, 1, "0123456789abcdef", NULL, &e) == 0, "a spool of 20 bytes takes 16");
    ok(spool_put(sp, SEG2, queues, 1, 5, &s, &e) < 0 && e.code == ERR_IO, "and refuses 5 more");
    like(e.msg, "the spool is full", "saying it is full");
    like(e.msg, SEG2, "naming the file not spooled");
    err_clear(&e);
    ok(spool_put(sp, SEG2, queues, 1, 4, &s, &e) == 0, "but takes 4");
    sink_free(s);
    spool_done(sp, queues[0], SEG1, &e);
    spool_free(sp);
}

static void test_second_cluster(void)
{
    struct spool *a = NULL, *b = NULL;
    struct err e = ERR_INIT;
    char *queues[1] = { "r2-aaaa" };
    char **names = NULL, path[PATH_MAX];
    size_t n = 0;
    struct spool_usage u;

    spool_open(root, 0, SYS_A, &a, &e);
    spool_open(root, 0, SYS_B, &b, &e);
    ok(put(b, SEG1, queues, 1, "cluster B's segment", NULL, &e) == 0, "cluster B queues %s in the same region", SEG1);
    ok(spool_list(a, queues[0], &names, &n, &e) == 0 && n == 0, "cluster A's queue does not list it");
    spool_names_free(names, n);
    ok(!spool_is_queued(a, queues[0], SEG1), "nor says it is queued");
    ok(spool_usage(a, NULL, &u, &e) == 0 && u.entries == 0 && u.bytes == 0, "nor counts it");
    ok(spool_done(a, queues[0], SEG1, &e) == 0 && spool_is_queued(b, queues[0], SEG1),
       "A's done of that name leaves B's entry alone");
    spool_mark_pushed(b, SEG2, "00", &(struct stat){ 0 }, &e);
    ok(!spool_has_marker(a, SEG2), "B's push-ahead marker is not A's");

    snprintf(path, sizeof path, "%s/not-a-cluster", root);
    mkdir(path, 0700);
    ok(spool_clusters(root, &names, &n, &e) == 0 && n == 2, "spool_clusters lists the two clusters only");
    ok(n == 2 && strtoull(names[0], NULL, 10) == SYS_A && strtoull(names[1], NULL, 10) == SYS_B, "sorted");
    spool_names_free(names, n);
    rmdir(path);
    spool_done(b, queues[0], SEG1, &e);
    spool_unmark_pushed(b, SEG2);

    /* walship 0.1.0's flat layout: counted for the operator, never ours */
    snprintf(path, sizeof path, "%s/queue/old-region", root);
    mkdir_p(path, 0700, &e);
    snprintf(path, sizeof path, "%s/queue/old-region/%s", root, SEG1);
    close(open(path, O_WRONLY | O_CREAT, 0600));
    is_int(spool_legacy_entries(root), 1, "an entry of the 0.1.0 layout is counted as legacy");
    ok(spool_list(a, "old-region", &names, &n, &e) < 0 || n == 0, "and never listed as a cluster's");
    if (n > 0 || names != NULL)
        spool_names_free(names, n);
    unlink(path);
    spool_free(a);
    spool_free(b);
}

static void test_identity_state(void)
{
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    struct spool_state in, out;
    char *json = NULL, path[PATH_MAX];
    size_t len = 0;
    int fd;

    spool_open(root, 0, SYS_A, &sp, &e);
    ok(spool_load_identity(sp, &json, &len, &e) < 0, "no identity saved yet: an error");
    err_clear(&e);
    ok(spool_save_identity(sp, "{\"id\":1}", 8, &e) == 0, "save the identity");
    ok(spool_load_identity(sp, &json, &len, &e) == 0 && len == 8 && memcmp(json, "{\"id\":1}", 8) == 0,
       "load gives it back");
    free(json);

    err_clear(&e);
    ok(spool_state_read(sp, "r2-aaaa", &out, &e) < 0 && e.code == ERR_NOTFOUND, "no state yet: ERR_NOTFOUND");
    memset(&in, 0, sizeof in);
    strlcopy(in.region, "eu-west-1", sizeof in.region);
    in.updated = 1767225600;
    in.last_success = 1767225000;
    in.last_error_time = 1767225500;
    strlcopy(in.last_error_code, "net", sizeof in.last_error_code);
    strlcopy(in.last_error, "connection \"reset\"\nby peer", sizeof in.last_error);
    in.backlog_files = 12;
    in.backlog_bytes = 5000000000ULL;
    err_clear(&e);
    ok(spool_state_write(sp, "r2-aaaa", &in, &e) == 0, "write the shipper's state");
    ok(spool_state_read(sp, "r2-aaaa", &out, &e) == 0, "read it back");
    ok(memcmp(&in, &out, sizeof in) == 0, "every field survives (quotes, newlines, 64-bit sizes)");
    snprintf(path, sizeof path, "%s/state/r2-torn.json", spool_dir(sp));
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ok(write(fd, "{\"region\":\"eu", 13) == 13, "a torn state file");
    close(fd);
    err_clear(&e);
    ok(spool_state_read(sp, "r2-torn", &out, &e) < 0 && e.code == ERR_CORRUPT, "is refused as corrupt");
    spool_free(sp);
}

static void test_markers(void)
{
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    char file[PATH_MAX], other[PATH_MAX], marker[PATH_MAX];
    struct stat st, st2;
    int fd;

    spool_open(root, 0, SYS_A, &sp, &e);
    snprintf(file, sizeof file, "%s/%s", root, SEG1);
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ok(write(fd, "segment one", 11) == 11, "a WAL file");
    close(fd);
    stat(file, &st);
    ok(!spool_has_marker(sp, SEG1) && !spool_pushed_matches(sp, SEG1, &st), "no marker yet");
    ok(spool_mark_pushed(sp, SEG1, "ab12", &st, &e) == 0, "mark it pushed ahead");
    ok(spool_has_marker(sp, SEG1), "a marker exists");
    ok(spool_pushed_matches(sp, SEG1, &st), "and matches the file as it is");
    stat(file, &st2);
    ok(spool_same_file(&st, &st2), "a file not touched is the same file");

    usleep(20000);
    fd = open(file, O_WRONLY);
    ok(pwrite(fd, "S", 1, 0) == 1, "the file is written to in place (same size)");
    close(fd);
    stat(file, &st2);
    ok(!spool_same_file(&st, &st2), "it is no longer the same file");
    ok(!spool_pushed_matches(sp, SEG1, &st2), "and the marker no longer matches");

    snprintf(other, sizeof other, "%s/replacement", root);
    fd = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ok(write(fd, "segment one", 11) == 11, "a file with the same bytes");
    close(fd);
    spool_mark_pushed(sp, SEG1, "ab12", &st2, &e);
    ok(spool_pushed_matches(sp, SEG1, &st2), "marked again for the written file");
    rename(other, file);
    stat(file, &st);
    ok(!spool_pushed_matches(sp, SEG1, &st), "a replacement (another inode) does not match");

    snprintf(marker, sizeof marker, "%s/pushed/%s", spool_dir(sp), SEG1);
    spool_mark_pushed(sp, SEG1, "ab12", &st, &e);
    truncate(marker, 20);
    ok(!spool_pushed_matches(sp, SEG1, &st), "a torn marker does not match");

    /* a push that never hashed the file (no region held the name) */
    ok(spool_mark_pushed_tag(sp, SEG1, "", &st, "tag-1", &e) == 0, "a marker without a hash is written");
    ok(spool_pushed_matches_tag(sp, SEG1, &st, "tag-1"), "it matches the file and its tag");
    ok(!spool_pushed_matches_tag(sp, SEG1, &st, "tag-2"), "but not another tag");
    {
        unsigned char *body = NULL;
        size_t blen = 0;

        ok(read_file_all(marker, 400, &body, &blen, &e) == 0 && memmem(body, blen, "\n-\ntag-1\n", 9) != NULL,
           "its hash line reads \"-\"");
        free(body);
    }

    spool_unmark_pushed(sp, SEG1);
    ok(!spool_has_marker(sp, SEG1), "unmark removes the marker");
    unlink(file);
    spool_free(sp);
}

static void test_locks(void)
{
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    char path[PATH_MAX], want[32], *got;
    int fd = -1, fd2 = -1;

    spool_open(root, 0, SYS_A, &sp, &e);
    ok(spool_lock(sp, "ship.lock", 0, &fd, &e) == 1 && fd >= 0, "take ship.lock");
    snprintf(path, sizeof path, "%s/ship.lock", spool_dir(sp));
    snprintf(want, sizeof want, "%ld\n", (long)getpid());
    got = slurp(path);
    is_str(got, want, "the lock file names its holder's PID");
    free(got);
    ok(spool_lock(sp, "ship.lock", 0, &fd2, &e) == 0, "a second taker is told it is held");
    ok(spool_lock(sp, "ship.lock", 60, &fd2, &e) == 0, "also after waiting");
    got = slurp(path);
    is_str(got, want, "a refused taker leaves the holder's PID");
    free(got);
    spool_unlock(fd);
    got = slurp(path);
    is_str(got, "", "letting go empties the lock file");
    free(got);
    ok(spool_lock(sp, "ship.lock", 0, &fd2, &e) == 1, "then it can be taken again");
    spool_unlock(fd2);

    ok(spool_lock(sp, "claims/" SEG1, 0, &fd, &e) == 1, "a claim is a lock under claims/");
    snprintf(path, sizeof path, "%s/claims/%s", spool_dir(sp), SEG1);
    got = slurp(path);
    is_str(got, want, "naming its holder too");
    free(got);
    spool_unlock(fd);
    err_clear(&e);
    ok(spool_lock(sp, "no-such-dir/x", 0, &fd, &e) < 0 && e.code == ERR_IO, "a lock that cannot be created fails");
    spool_free(sp);
}

int main(void)
{
    if (mkdtemp(root) == NULL)
        return 1;
    test_open();
    test_queue_name();
    test_put_list_done();
    test_torn();
    test_full();
    test_second_cluster();
    test_identity_state();
    test_markers();
    test_locks();
    if (getenv("KEEP_TMP") == NULL) {
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            diag("could not remove %s", root);
    }
    return done_testing();
}
