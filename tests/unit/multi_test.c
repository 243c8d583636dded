/*
 * multi_test — the fan-out (src/io/multi, multi.h): every live branch
 * receives the same bytes; a failing branch is dropped (freed at once) and
 * the others finish; close reports every failed branch; and a close error
 * of the chain above the fan-out leaves no branch committed and gives each
 * the chain's error (multi_settle) — issue 10's integrity bug was a chain
 * failure counted as archived.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multi.h"
#include "stream.h"
#include "tap.h"

#define NB 3

struct br_state {
    unsigned char buf[65536];
    size_t len;
    int writes, closes, freed;
    int fail_write;     /* fail the Nth write (1-based) */
    int fail_close;
};

struct br_sink {
    struct sink base;
    struct br_state *st;
    int id;
};

static int br_write(struct sink *s, const void *b, size_t n, struct err *e)
{
    struct br_sink *r = (struct br_sink *)s;

    r->st->writes++;
    if (r->st->fail_write == r->st->writes)
        return err_setf(e, ERR_NET, "branch %d: connection reset", r->id);
    if (r->st->len + n <= sizeof r->st->buf)
        memcpy(r->st->buf + r->st->len, b, n);
    r->st->len += n;
    return 0;
}

static int br_close(struct sink *s, struct err *e)
{
    struct br_sink *r = (struct br_sink *)s;

    r->st->closes++;
    if (r->st->fail_close)
        return err_setf(e, ERR_EXISTS, "branch %d: refused at commit", r->id);
    return 0;
}

static void br_free(struct sink *s)
{
    ((struct br_sink *)s)->st->freed++;
    free(s);
}

static const struct sink_ops br_ops = { br_write, br_close, br_free };

/* A stage above the fan-out whose close fails before it closes its next
 * (a compressor whose final flush fails, an encryptor's finalisation). */
struct above {
    struct sink base;
    int fail_close;
};

static int above_write(struct sink *s, const void *b, size_t n, struct err *e)
{
    return sink_write(s->next, b, n, e);
}

static int above_close(struct sink *s, struct err *e)
{
    if (((struct above *)s)->fail_close)
        return err_setf(e, ERR_INTERNAL, "the compressor's final flush failed");
    return sink_close(s->next, e);
}

static void above_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops above_ops = { above_write, above_close, above_free };

static struct br_state st[NB];
static struct multi_result res[NB];
static const char *names[NB] = { "us-east-1", "eu-west-1", "spool" };
static unsigned char data[20000];

/* A fresh fan-out over NB recording branches. */
static struct sink *fanout(void)
{
    struct sink *br[NB], *tee = NULL;
    struct err e = ERR_INIT;
    int i;

    memset(st, 0, sizeof st);
    memset(res, 0, sizeof res);
    for (i = 0; i < NB; i++) {
        struct br_sink *b = calloc(1, sizeof *b);

        b->base.ops = &br_ops;
        b->st = &st[i];
        b->id = i;
        br[i] = &b->base;
        res[i].name = names[i];
    }
    if (multi_tee_new(br, res, NB, &tee, &e) < 0)
        return NULL;
    return tee;
}

/* Write `data` in uneven pieces. */
static int feed(struct sink *s, struct err *e)
{
    size_t off = 0, piece = 1;

    while (off < sizeof data) {
        size_t n = piece < sizeof data - off ? piece : sizeof data - off;

        if (sink_write(s, data + off, n, e) < 0)
            return -1;
        off += n;
        piece = piece * 3 + 1;
    }
    return 0;
}

static void test_all_healthy(void)
{
    struct sink *t = fanout();
    struct err e = ERR_INIT;
    int i;

    ok(t != NULL, "a fan-out of three branches");
    ok(feed(t, &e) == 0, "writes succeed");
    ok(sink_close(t, &e) == 0, "close succeeds");
    is_int(multi_settle(res, NB, 0, &e), NB, "all three committed");
    for (i = 0; i < NB; i++)
        ok(st[i].len == sizeof data && memcmp(st[i].buf, data, sizeof data) == 0 && st[i].closes == 1,
           "%s received exactly the bytes written, and was closed once", names[i]);
    sink_free(t);
    ok(st[0].freed == 1 && st[1].freed == 1 && st[2].freed == 1, "freeing the fan-out frees every branch once");
}

static void test_one_fails(void)
{
    struct sink *t = fanout();
    struct err e = ERR_INIT;

    st[1].fail_write = 3;
    ok(feed(t, &e) == 0, "a write succeeds while other branches live");
    is_int(st[1].freed, 1, "the failing branch was dropped (aborted) at once");
    is_int(st[1].writes, 3, "and got no write after its failure");
    ok(st[0].len == sizeof data && st[2].len == sizeof data && memcmp(st[0].buf, st[2].buf, sizeof data) == 0 &&
           memcmp(st[0].buf, data, sizeof data) == 0,
       "the other branches received every byte, the same bytes");
    ok(sink_close(t, &e) < 0, "close fails: one destination failed");
    is_int(e.code, ERR_NET, "with that branch's error code");
    is_str(e.msg, "branch 1: connection reset", "and its message");
    ok(res[1].failed && !res[1].committed, "its result says failed, not committed");
    ok(res[0].committed && res[2].committed && st[0].closes == 1 && st[2].closes == 1,
       "the others finished: closed and committed");
    is_int(multi_settle(res, NB, -1, &e), 2, "two committed");
    like(res[1].err.msg, "connection reset", "settle keeps the branch's own error");
    sink_free(t);
    is_int(st[1].freed, 1, "the dropped branch is not freed twice");
}

static void test_two_fail(void)
{
    struct sink *t = fanout();
    struct err e = ERR_INIT;

    st[0].fail_write = 1;
    st[2].fail_close = 1;
    ok(feed(t, &e) == 0, "one branch fails writing, the fan-out goes on");
    ok(sink_close(t, &e) < 0, "close fails");
    like(e.msg, "2 of 3 destinations failed (us-east-1, spool)", "naming both failed destinations");
    like(e.msg, "first: branch 0: connection reset", "and the first failure");
    is_int(e.code, ERR_NET, "the code is the first failure's");
    ok(res[1].committed && !res[1].failed, "the healthy branch committed");
    ok(res[2].failed && !res[2].committed && strstr(res[2].err.msg, "refused at commit") != NULL,
       "a branch whose close failed is not committed");
    is_int(multi_settle(res, NB, -1, &e), 1, "one committed");
    sink_free(t);
}

static void test_all_fail(void)
{
    struct sink *t = fanout();
    struct err e = ERR_INIT;

    st[0].fail_write = 2;
    st[1].fail_write = 1;
    st[2].fail_write = 4;
    ok(feed(t, &e) < 0, "a write fails once every branch has failed");
    like(e.msg, "branch 0: connection reset", "reporting the first branch's failure");
    is_int(st[0].writes + st[1].writes + st[2].writes, 2 + 1 + 4, "no branch was written after it failed");
    is_int(multi_settle(res, NB, -1, &e), 0, "nothing committed");
    sink_free(t);
}

static void test_chain_above_fails(void)
{
    struct sink *t = fanout();
    struct above *a = calloc(1, sizeof *a);
    struct err e = ERR_INIT;
    int rc, i;

    a->base.ops = &above_ops;
    a->base.next = t;
    a->fail_close = 1;
    ok(feed(&a->base, &e) == 0, "writes through a stage above the fan-out");
    rc = sink_close(&a->base, &e);
    ok(rc < 0, "the stage above fails its close");
    is_int(multi_settle(res, NB, rc, &e), 0, "no branch counts as committed");
    for (i = 0; i < NB; i++) {
        ok(res[i].failed && !res[i].committed && res[i].err.code == ERR_INTERNAL &&
               strstr(res[i].err.msg, "final flush failed") != NULL,
           "%s fails with the chain's error", names[i]);
        is_int(st[i].closes, 0, "%s was never closed (no object committed)", names[i]);
    }
    sink_free(&a->base);
    ok(st[0].freed == 1 && st[1].freed == 1 && st[2].freed == 1, "freeing the chain aborts every branch");

    /* the tee never closed, and the caller has no error to give */
    t = fanout();
    is_int(multi_settle(res, NB, 0, NULL), 0, "a fan-out never closed: nothing committed, even without an error");
    ok(res[0].failed && strstr(res[0].err.msg, "never completed") != NULL, "each branch says it never completed");
    sink_free(t);
}

static void test_new(void)
{
    struct sink *tee = NULL;
    struct err e = ERR_INIT;

    ok(multi_tee_new(NULL, NULL, 0, &tee, &e) < 0 && e.code == ERR_INTERNAL && tee == NULL,
       "a fan-out with no destination is refused");
}

int main(void)
{
    size_t i;

    for (i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)((i * 2654435761u) >> 13);
    test_all_healthy();
    test_one_fails();
    test_two_fail();
    test_all_fail();
    test_chain_above_fails();
    test_new();
    return done_testing();
}
