/*
 * stream_test — the sink contract of src/io/stream (stream.h): what each
 * stock stage does with write, close and free; that an error from the
 * stage below reaches the caller unchanged (the first error wins: no stage
 * overwrites it); that stages which own their next free it and those that
 * borrow do not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream.h"
#include "tap.h"

/* A terminal sink that records what was done to it in a state the test
 * owns (so it can be read after the sink is freed). */
struct rec_state {
    unsigned char buf[256];
    size_t len;
    int writes, closes, freed;
    int fail_write, fail_close;     /* fail the Nth write (1-based) / the close */
};

struct rec_sink {
    struct sink base;
    struct rec_state *st;
};

static int rec_write(struct sink *s, const void *b, size_t n, struct err *e)
{
    struct rec_state *st = ((struct rec_sink *)s)->st;

    st->writes++;
    if (st->fail_write == st->writes)
        return err_setf(e, ERR_NET, "the bottom sink failed write %d", st->writes);
    if (st->len + n <= sizeof st->buf)
        memcpy(st->buf + st->len, b, n);
    st->len += n;
    return 0;
}

static int rec_close(struct sink *s, struct err *e)
{
    struct rec_state *st = ((struct rec_sink *)s)->st;

    st->closes++;
    if (st->fail_close)
        return err_setf(e, ERR_CORRUPT, "the bottom sink failed its close");
    return 0;
}

static void rec_free(struct sink *s)
{
    ((struct rec_sink *)s)->st->freed++;
    free(s);
}

static const struct sink_ops rec_ops = { rec_write, rec_close, rec_free };

static struct sink *rec_new(struct rec_state *st)
{
    struct rec_sink *r = calloc(1, sizeof *r);

    r->base.ops = &rec_ops;
    r->st = st;
    return &r->base;
}

static void test_dispatch(void)
{
    struct rec_state st = { 0 };
    struct sink *s = rec_new(&st);
    struct err e = ERR_INIT;

    ok(sink_write(s, "", 0, &e) == 0 && st.writes == 0, "a zero-length write succeeds without reaching the stage");
    ok(sink_write(s, "ab", 2, &e) == 0 && st.writes == 1 && st.len == 2, "sink_write dispatches to the stage");
    ok(sink_close(s, &e) == 0 && st.closes == 1, "sink_close dispatches to the stage");
    sink_free(s);
    is_int(st.freed, 1, "sink_free dispatches to the stage");
    sink_free(NULL);
    ok(1, "sink_free(NULL) is a no-op");
}

static void test_mem(void)
{
    struct err e = ERR_INIT;
    struct sink *m = mem_sink_new(0);
    const unsigned char *d;
    unsigned char *taken;
    unsigned char big[10000];
    size_t len, i;

    for (i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    ok(m != NULL, "an unbounded memory sink");
    ok(sink_write(m, "hello ", 6, &e) == 0 && sink_write(m, big, sizeof big, &e) == 0,
       "writes that grow it past its first allocation");
    ok(sink_close(m, &e) == 0, "closes");
    d = mem_sink_data(m, &len);
    is_int(len, 6 + sizeof big, "holds every byte written");
    ok(memcmp(d, "hello ", 6) == 0 && memcmp(d + 6, big, sizeof big) == 0, "in order");
    taken = mem_sink_take(m, &len);
    is_int(len, 6 + sizeof big, "take gives the buffer");
    mem_sink_data(m, &len);
    is_int(len, 0, "and leaves the sink empty");
    free(taken);
    sink_free(m);

    m = mem_sink_new(8);
    ok(sink_write(m, "12345678", 8, &e) == 0, "a bounded sink takes up to its bound");
    ok(sink_write(m, "9", 1, &e) < 0 && e.code == ERR_INTERNAL, "a write past the bound fails with ERR_INTERNAL");
    like(e.msg, "limit of 8 bytes", "naming the bound");
    mem_sink_data(m, &len);
    is_int(len, 8, "and adds nothing");
    sink_free(m);

    m = mem_sink_head_new(8);
    ok(sink_write(m, "12345", 5, &e) == 0 && sink_write(m, "6789", 4, &e) == 0 &&
       sink_write(m, big, sizeof big, &e) == 0 && sink_close(m, &e) == 0,
       "a head sink takes any amount without error");
    d = mem_sink_data(m, &len);
    ok(len == 8 && memcmp(d, "12345678", 8) == 0, "and keeps only the first 8 bytes");
    sink_free(m);
}

static void test_null_fd(void)
{
    struct err e = ERR_INIT;
    struct sink *n = null_sink_new();
    char path[] = "/tmp/walship-stream-test-XXXXXX";
    char back[16] = "";
    int fd, ro;

    sink_write(n, "abc", 3, &e);
    sink_write(n, "defg", 4, &e);
    ok(sink_close(n, &e) == 0 && null_sink_count(n) == 7, "the null sink counts what it discards");
    sink_free(n);

    fd = mkstemp(path);
    n = fd_sink_new(fd);
    ok(sink_write(n, "walship", 7, &e) == 0 && sink_close(n, &e) == 0, "the fd sink writes and closes");
    sink_free(n);
    ok(fcntl(fd, F_GETFD) != -1, "it leaves the descriptor open (the caller owns it)");
    ok(pread(fd, back, sizeof back, 0) == 7 && memcmp(back, "walship", 7) == 0, "the bytes are in the file");
    close(fd);

    ro = open(path, O_RDONLY);
    n = fd_sink_new(ro);
    err_clear(&e);
    ok(sink_write(n, "x", 1, &e) < 0 && e.code == ERR_IO, "a write the descriptor refuses fails with ERR_IO");
    like(e.msg, "could not write output", "saying so");
    sink_free(n);
    close(ro);
    unlink(path);
}

static void test_borrow_pass(void)
{
    struct rec_state st = { 0 };
    struct sink *target = rec_new(&st), *b;
    struct err e = ERR_INIT;

    b = borrow_sink_new(target);
    ok(sink_write(b, "xy", 2, &e) == 0 && st.len == 2, "a borrow forwards writes");
    ok(sink_close(b, &e) == 0 && st.closes == 1, "and close");
    sink_free(b);
    is_int(st.freed, 0, "freeing the borrow leaves its target alive");

    st.fail_close = 1;
    b = borrow_sink_new(target);
    ok(sink_close(b, &e) < 0 && e.code == ERR_CORRUPT, "a borrow passes its target's close error up");
    sink_free(b);

    b = pass_sink_new(target);
    st.closes = 0;
    ok(sink_write(b, "z", 1, &e) == 0 && st.len == 3, "a pass stage forwards writes");
    ok(sink_close(b, &e) == 0 && st.closes == 0, "but its close does not close the target");
    sink_free(b);
    is_int(st.freed, 0, "nor does its free free it");
    st.fail_write = st.writes + 1;
    b = pass_sink_new(target);
    err_clear(&e);
    ok(sink_write(b, "w", 1, &e) < 0 && e.code == ERR_NET, "a pass stage passes its target's write error up");
    sink_free(b);
    sink_free(target);
    is_int(st.freed, 1, "the owner frees the target once");
}

static void test_count(void)
{
    struct rec_state st = { 0 };
    uint64_t counter = 0;
    struct sink *c = count_sink_new(rec_new(&st), &counter);
    struct err e = ERR_INIT;

    ok(sink_write(c, "12345", 5, &e) == 0 && sink_write(c, "678", 3, &e) == 0, "a counting stage forwards");
    is_int(counter, 8, "and counts");
    is_int(st.len, 8, "the next stage got every byte");
    ok(sink_close(c, &e) == 0 && st.closes == 1, "its close closes the next stage");
    sink_free(c);
    is_int(st.freed, 1, "its free frees the next stage (it owns it)");

    memset(&st, 0, sizeof st);
    st.fail_write = 2;
    counter = 0;
    c = count_sink_new(rec_new(&st), &counter);
    sink_write(c, "a", 1, &e);
    err_clear(&e);
    ok(sink_write(c, "b", 1, &e) < 0, "a write error below fails the write above");
    is_int(e.code, ERR_NET, "with the error of the stage that failed");
    is_str(e.msg, "the bottom sink failed write 2", "unchanged: the first error wins");
    sink_free(c);
    ok(st.freed == 1 && st.closes == 0, "a failed chain is freed, never closed");

    memset(&st, 0, sizeof st);
    st.fail_close = 1;
    c = count_sink_new(count_sink_new(rec_new(&st), &counter), &counter);
    err_clear(&e);
    ok(sink_close(c, &e) < 0 && e.code == ERR_CORRUPT, "a close error two stages down reaches the top");
    is_str(e.msg, "the bottom sink failed its close", "unchanged");
    sink_free(c);
    is_int(st.freed, 1, "freeing the top frees the whole chain");
}

static void test_pump(void)
{
    char path[] = "/tmp/walship-stream-pump-XXXXXX";
    unsigned char data[5000];
    struct rec_state st = { 0 };
    struct sink *m;
    struct err e = ERR_INIT;
    const unsigned char *d;
    size_t len, i;
    int fd;

    for (i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i ^ (i >> 8));
    fd = mkstemp(path);
    ok(write(fd, data, sizeof data) == (ssize_t)sizeof data, "a 5000-byte file");
    lseek(fd, 0, SEEK_SET);
    m = mem_sink_new(0);
    ok(sink_pump_fd(m, fd, "the file", 777, &e) == 0, "pumped in 777-byte pieces");
    d = mem_sink_data(m, &len);
    ok(len == sizeof data && memcmp(d, data, len) == 0, "every byte arrives, in order");
    sink_free(m);

    lseek(fd, 0, SEEK_SET);
    st.fail_write = 3;
    m = rec_new(&st);
    err_clear(&e);
    ok(sink_pump_fd(m, fd, "the file", 1000, &e) < 0, "a sink error stops the pump");
    is_str(e.msg, "the bottom sink failed write 3", "with the sink's own error (not a read error)");
    is_int(st.writes, 3, "nothing is written after the failure");
    sink_free(m);
    close(fd);

    fd = open(path, O_WRONLY);
    m = mem_sink_new(0);
    err_clear(&e);
    ok(sink_pump_fd(m, fd, "unreadable input", 0, &e) < 0 && e.code == ERR_IO, "an unreadable input fails with ERR_IO");
    like(e.msg, "unreadable input", "naming the input");
    sink_free(m);
    close(fd);
    unlink(path);
}

int main(void)
{
    test_dispatch();
    test_mem();
    test_null_fd();
    test_borrow_pass();
    test_count();
    test_pump();
    return done_testing();
}
