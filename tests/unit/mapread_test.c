/*
 * mapread_test — mapped reads (src/io/mapread.h): the bytes a sink gets
 * are the file's; a file cut short while it is pumped is an error, not a
 * SIGBUS; the cases that must fall back to read() do; a fault outside a
 * pumped range still kills the process, as it would have without the
 * guard.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapread.h"
#include "sha256tee.h"
#include "tap.h"

/* A terminal sink that hashes what it gets (it reads every byte, as the
 * compressor does) and, if asked, cuts the file short at its first write. */
struct cut_sink {
    struct sink base;
    int cut_fd;                 /* -1: do not cut */
    off_t cut_to;
    uint64_t got, sum;
    int writes;
};

static int cut_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct cut_sink *c = (struct cut_sink *)s;
    const unsigned char *p = buf;

    (void)e;
    if (c->writes++ == 0 && c->cut_fd >= 0 && ftruncate(c->cut_fd, c->cut_to) < 0)
        return err_setf(e, ERR_IO, "ftruncate failed");
    for (size_t i = 0; i < len; i++)
        c->sum = c->sum * 31 + p[i];
    c->got += len;
    return 0;
}

static int cut_close(struct sink *s, struct err *e)
{
    (void)s;
    (void)e;
    return 0;
}

static void cut_free(struct sink *s)
{
    (void)s;
}

static const struct sink_ops cut_ops = { cut_write, cut_close, cut_free };

static char dir[] = "/tmp/mapread_testXXXXXX";

/* a file of SIZE pseudo-random bytes; its sum as cut_write computes it */
static int make_file(const char *name, size_t size, uint64_t *sum)
{
    char path[256];
    unsigned char *b = malloc(size ? size : 1);
    uint32_t x = 2463534242u;
    int fd;

    *sum = 0;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
        *sum = *sum * 31 + b[i];
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, b, size) != (ssize_t)size) {
        perror("make_file");
        exit(1);
    }
    free(b);
    return fd;
}

static void init_sink(struct cut_sink *c, int cut_fd, off_t cut_to)
{
    memset(c, 0, sizeof *c);
    c->base.ops = &cut_ops;
    c->cut_fd = cut_fd;
    c->cut_to = cut_to;
}

/* a fault on a mapping nobody pumps must still be fatal (run in a child) */
static int stray_fault_kills(void)
{
    pid_t pid = fork();
    int st = 0;

    if (pid == 0) {
        uint64_t sum;
        int fd = make_file("stray", 65536, &sum);
        volatile unsigned char *m = mmap(NULL, 65536, PROT_READ, MAP_SHARED, fd, 0);

        if (m == MAP_FAILED || ftruncate(fd, 0) < 0)
            _exit(2);
        (void)m[40000];
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 0;
    /* killed by SIGBUS; under ASan its own handler, which was there
     * before ours, reports the fault and exits non-zero instead */
    return (WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) ||
           (WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 2);
}

int main(void)
{
    struct cut_sink c;
    struct err e = ERR_INIT;
    uint64_t sum;
    size_t size = 3 * 1048576 + 12345;   /* slices of 1 MiB and a tail */
    int fd;

    if (mkdtemp(dir) == NULL)
        return 1;
    fd = make_file("seg", size, &sum);
    init_sink(&c, -1, 0);
    is_int(sink_pump_mapped(&c.base, fd, size, "seg", &e), 1, "before mapread_install: not mapped (the caller reads)");
    is_int(c.writes, 0, "nothing written when not mapped");

    ok(mapread_install() == 0, "mapread_install");
    ok(mapread_install() == 0, "mapread_install twice is harmless");

    init_sink(&c, -1, 0);
    is_int(sink_pump_mapped(&c.base, fd, size, "seg", &e), 0, "a whole file pumped from a mapping");
    ok(c.got == size && c.sum == sum, "the sink got exactly the file's bytes (%llu of %zu)",
       (unsigned long long)c.got, size);
    is_int(c.writes, 4, "in 1 MiB slices");

    init_sink(&c, fd, (off_t)size - 100);
    e = (struct err)ERR_INIT;
    is_int(sink_pump_mapped(&c.base, fd, size, "seg", &e), -1, "a file cut inside its last page: an error too");
    ok(strstr(e.msg, "became shorter") != NULL, "... (no fault there: the bytes past the end read as zeros)");
    close(fd);
    fd = make_file("seg", size, &sum);
    init_sink(&c, fd, 1048576 + 4096);
    e = (struct err)ERR_INIT;
    is_int(sink_pump_mapped(&c.base, fd, size, "seg", &e), -1, "a file cut short while pumped: an error, not SIGBUS");
    is_int(e.code, ERR_IO, "ERR_IO");
    ok(strstr(e.msg, "became shorter while it was read") != NULL && strstr(e.msg, "seg") != NULL,
       "the message names the file: %s", e.msg);
    close(fd);

    fd = make_file("seg2", size, &sum);
    init_sink(&c, fd, 0);
    e = (struct err)ERR_INIT;
    is_int(sink_pump_mapped(&c.base, fd, size, "seg2", &e), -1, "cut to nothing at the first write: an error");
    ok(c.got <= 1048576, "the pump stopped after the slice that met the cut (%llu bytes)", (unsigned long long)c.got);
    init_sink(&c, -1, 0);
    e = (struct err)ERR_INIT;
    is_int(sink_pump_mapped(&c.base, fd, size, "seg2", &e), -1,
           "a file shorter than the size asked for, from the start: an error");
    close(fd);

    fd = make_file("empty", 0, &sum);
    init_sink(&c, -1, 0);
    is_int(sink_pump_mapped(&c.base, fd, 0, "empty", &e), 1, "an empty file is read, not mapped");
    is_int(sink_pump_mapped(&c.base, fd, MAPREAD_MAX + 1, "empty", &e), 1, "a file above MAPREAD_MAX is read");
    close(fd);
    fd = open("/dev/null", O_RDONLY);
    is_int(sink_pump_mapped(&c.base, fd, 4096, "/dev/null", &e), 1, "what cannot be mapped is read");
    close(fd);

    /* ranged pumps (file:// objects): windows of 16 MiB, pread fallbacks */
    {
        size_t big = 17 * 1048576 + 777;
        uint64_t tail_sum = 0;
        unsigned char *want = malloc(big);
        int ok_bytes;

        fd = make_file("object", big, &sum);
        ok(want != NULL && pread(fd, want, big, 0) == (ssize_t)big, "read the object back");
        init_sink(&c, -1, 0);
        e = (struct err)ERR_INIT;
        is_int(sink_pump_range(&c.base, fd, 0, big, "object", &e), 0, "a range across two windows");
        ok(c.got == big && c.sum == sum, "... the sink got exactly the object's bytes");
        for (size_t i = 4096; i < big; i++)
            tail_sum = tail_sum * 31 + want[i];
        init_sink(&c, -1, 0);
        is_int(sink_pump_range(&c.base, fd, 4096, big - 4096, "object", &e), 0, "a range from a page boundary");
        ok(c.got == big - 4096 && c.sum == tail_sum, "... its bytes");
        tail_sum = 0;
        for (size_t i = 1000; i < 1000 + 3 * 1048576; i++)
            tail_sum = tail_sum * 31 + want[i];
        init_sink(&c, -1, 0);
        is_int(sink_pump_range(&c.base, fd, 1000, 3 * 1048576, "object", &e), 0,
               "a range from inside a page (read with pread)");
        ok(c.got == 3 * 1048576 && c.sum == tail_sum, "... its bytes");
        init_sink(&c, -1, 0);
        e = (struct err)ERR_INIT;
        is_int(sink_pump_range(&c.base, fd, 0, big + 10, "object", &e), -1, "a range past the end: an error");
        ok(strstr(e.msg, "became shorter") != NULL, "... the file is shorter than asked: %s", e.msg);
        init_sink(&c, fd, 2 * 1048576);
        e = (struct err)ERR_INIT;
        ok_bytes = sink_pump_range(&c.base, fd, 0, big, "object", &e) == -1 && e.code == ERR_IO;
        ok(ok_bytes, "an object cut short while pumped from a window: an error, not SIGBUS (%s)", e.msg);
        close(fd);
        free(want);
    }

    ok(stray_fault_kills(), "a fault outside any pumped range is still fatal");

    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
