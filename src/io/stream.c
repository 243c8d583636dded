#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sink_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    if (len == 0)
        return 0;
    return s->ops->write(s, buf, len, e);
}

int sink_close(struct sink *s, struct err *e)
{
    return s->ops->close(s, e);
}

void sink_free(struct sink *s)
{
    if (s != NULL)
        s->ops->free(s);
}

/* ---- memory sink ---- */

struct mem_sink {
    struct sink base;
    unsigned char *buf;
    size_t len, cap, max;
    int head;                   /* keep the first max bytes, drop the rest */
};

static int mem_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct mem_sink *m = (struct mem_sink *)s;

    if (m->head && len > m->max - m->len)
        len = m->max - m->len;
    if (m->max != 0 && len > m->max - m->len)
        return err_setf(e, ERR_INTERNAL, "in-memory buffer limit of %zu bytes exceeded", m->max);
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        unsigned char *nb;

        while (cap < m->len + len)
            cap *= 2;
        nb = realloc(m->buf, cap);
        if (nb == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory growing a buffer to %zu bytes", cap);
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, buf, len);
    m->len += len;
    return 0;
}

static int mem_close(struct sink *s, struct err *e)
{
    (void)s;
    (void)e;
    return 0;
}

static void mem_free(struct sink *s)
{
    struct mem_sink *m = (struct mem_sink *)s;
    free(m->buf);
    free(m);
}

static const struct sink_ops mem_ops = { mem_write, mem_close, mem_free };

struct sink *mem_sink_new(size_t max)
{
    struct mem_sink *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->base.ops = &mem_ops;
    m->max = max;
    return &m->base;
}

struct sink *mem_sink_head_new(size_t keep)
{
    struct sink *s = mem_sink_new(keep);

    if (s != NULL)
        ((struct mem_sink *)s)->head = 1;
    return s;
}

const unsigned char *mem_sink_data(const struct sink *s, size_t *len)
{
    const struct mem_sink *m = (const struct mem_sink *)s;
    *len = m->len;
    return m->buf;
}

unsigned char *mem_sink_take(struct sink *s, size_t *len)
{
    struct mem_sink *m = (struct mem_sink *)s;
    unsigned char *b = m->buf;

    *len = m->len;
    m->buf = NULL;
    m->len = m->cap = 0;
    return b;
}

/* ---- fd sink ---- */

struct fd_sink {
    struct sink base;
    int fd;
    char *name;     /* for errors; NULL: "output" */
};

static int fd_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct fd_sink *f = (struct fd_sink *)s;
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (f->name != NULL)
                return err_errno(e, ERR_IO, errno, "could not write \"%s\"", f->name);
            return err_errno(e, ERR_IO, errno, "could not write output");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void fd_free(struct sink *s)
{
    free(((struct fd_sink *)s)->name);
    free(s);
}

static void plain_free(struct sink *s)
{
    free(s);
}

static const struct sink_ops fd_ops = { fd_write, mem_close, fd_free };

struct sink *fd_sink_named(int fd, const char *name)
{
    struct fd_sink *f = calloc(1, sizeof *f);

    if (f == NULL || (name != NULL && (f->name = strdup(name)) == NULL)) {
        free(f);
        return NULL;
    }
    f->base.ops = &fd_ops;
    f->fd = fd;
    return &f->base;
}

struct sink *fd_sink_new(int fd)
{
    return fd_sink_named(fd, NULL);
}

/* ---- null sink ---- */

struct null_sink {
    struct sink base;
    uint64_t count;
};

static int null_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    (void)buf;
    (void)e;
    ((struct null_sink *)s)->count += len;
    return 0;
}

static const struct sink_ops null_ops = { null_write, mem_close, plain_free };

struct sink *null_sink_new(void)
{
    struct null_sink *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->base.ops = &null_ops;
    return &n->base;
}

uint64_t null_sink_count(const struct sink *s)
{
    return ((const struct null_sink *)s)->count;
}

int sink_pump_fd(struct sink *s, int fd, const char *what, size_t bufsize, struct err *e)
{
    unsigned char *buf;
    int rc = -1;

    if (bufsize == 0)
        bufsize = 1 << 20;
    buf = malloc(bufsize);
    if (buf == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory reading \"%s\"", what);
    for (;;) {
        ssize_t n = read(fd, buf, bufsize);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_errno(e, ERR_IO, errno, "could not read \"%s\"", what);
            goto out;
        }
        if (n == 0)
            break;
        if (sink_write(s, buf, (size_t)n, e) < 0)
            goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

/* ---- borrowing sink ---- */

static int borrow_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    return sink_write(s->next, buf, len, e);
}

static int borrow_close(struct sink *s, struct err *e)
{
    return sink_close(s->next, e);
}

static const struct sink_ops borrow_ops = { borrow_write, borrow_close, plain_free };

struct sink *borrow_sink_new(struct sink *target)
{
    struct sink *b = calloc(1, sizeof *b);

    if (b == NULL)
        return NULL;
    b->ops = &borrow_ops;
    b->next = target;
    return b;
}

/* ---- passing sink: writes only ---- */

static int pass_close(struct sink *s, struct err *e)
{
    (void)s;
    (void)e;
    return 0;
}

static const struct sink_ops pass_ops = { borrow_write, pass_close, plain_free };

struct sink *pass_sink_new(struct sink *target)
{
    struct sink *b = borrow_sink_new(target);

    if (b != NULL)
        b->ops = &pass_ops;
    return b;
}

/* ---- counting stage ---- */

struct count_sink {
    struct sink base;
    uint64_t *counter;
};

static int count_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    *((struct count_sink *)s)->counter += len;
    return sink_write(s->next, buf, len, e);
}

static void count_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops count_ops = { count_write, borrow_close, count_free };

struct sink *count_sink_new(struct sink *next, uint64_t *counter)
{
    struct count_sink *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->base.ops = &count_ops;
    c->base.next = next;
    c->counter = counter;
    return &c->base;
}
