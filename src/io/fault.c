#include "fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_WRITE 1
#define FAULT_CLOSE 2

struct fault {
    struct sink base;
    int when;
    char point[96];
};

static int fault_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct fault *f = (struct fault *)s;

    if (f->when == FAULT_WRITE)
        return err_setf(e, ERR_INTERNAL, "injected fault at %s (write)", f->point);
    return sink_write(s->next, buf, len, e);
}

static int fault_close(struct sink *s, struct err *e)
{
    struct fault *f = (struct fault *)s;

    if (f->when == FAULT_CLOSE)
        return err_setf(e, ERR_INTERNAL, "injected fault at %s (close)", f->point);
    return sink_close(s->next, e);
}

static void fault_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops fault_ops = { fault_write, fault_close, fault_free };

/* FAULT_WRITE or FAULT_CLOSE if `point` is armed, else 0. */
static int armed(const char *point)
{
    const char *spec = getenv("WALSHIP_FAULT_INJECT"), *p;
    size_t n = strlen(point);

    if (spec == NULL)
        return 0;
    for (p = spec; *p != '\0';) {
        size_t len = strcspn(p, ",");

        if (len >= n && strncmp(p, point, n) == 0 && (len == n || p[n] == ':')) {
            if (len > n && strncmp(p + n, ":close", len - n) == 0 && len - n == 6)
                return FAULT_CLOSE;
            return FAULT_WRITE;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

struct sink *fault_wrap(struct sink *next, const char *point)
{
    struct fault *f;
    int when = armed(point);

    if (when == 0 || next == NULL)
        return next;
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return next;
    f->base.ops = &fault_ops;
    f->base.next = next;
    f->when = when;
    snprintf(f->point, sizeof f->point, "%s", point);
    return &f->base;
}
