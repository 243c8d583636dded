#include "multi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tee {
    struct sink base;
    size_t n;
    struct sink **branches;         /* NULL once failed or freed */
    struct multi_result *results;
};

static int tee_all_failed(struct tee *t, struct err *e)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (t->branches[i] != NULL)
            return 0;
    /* Report the first failure; the results hold the rest. */
    for (i = 0; i < t->n; i++) {
        if (t->results[i].failed) {
            *e = t->results[i].err;
            break;
        }
    }
    return 1;
}

static void tee_fail(struct tee *t, size_t i)
{
    t->results[i].failed = 1;
    sink_free(t->branches[i]);
    t->branches[i] = NULL;
}

static int tee_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct tee *t = (struct tee *)s;
    size_t i;

    for (i = 0; i < t->n; i++) {
        if (t->branches[i] == NULL)
            continue;
        if (sink_write(t->branches[i], buf, len, &t->results[i].err) < 0)
            tee_fail(t, i);
    }
    return tee_all_failed(t, e) ? -1 : 0;
}

static int tee_close(struct sink *s, struct err *e)
{
    struct tee *t = (struct tee *)s;
    char names[512] = "";
    size_t i, nfailed = 0;
    size_t first = t->n;

    for (i = 0; i < t->n; i++) {
        if (t->branches[i] != NULL) {
            if (sink_close(t->branches[i], &t->results[i].err) < 0)
                tee_fail(t, i);
            else
                t->results[i].committed = 1;
        }
        if (t->results[i].failed) {
            size_t used = strlen(names);

            snprintf(names + used, sizeof names - used, "%s%s", nfailed ? ", " : "", t->results[i].name);
            if (first == t->n)
                first = i;
            nfailed++;
        }
    }
    if (nfailed == 0)
        return 0;
    if (nfailed == 1) {
        *e = t->results[first].err;
        return -1;
    }
    err_setf(e, t->results[first].err.code, "%zu of %zu destinations failed (%s); first: %s", nfailed, t->n,
             names, t->results[first].err.msg);
    return -1;
}

static void tee_free(struct sink *s)
{
    struct tee *t = (struct tee *)s;
    size_t i;

    for (i = 0; i < t->n; i++)
        sink_free(t->branches[i]);
    free(t->branches);
    free(t);
}

static const struct sink_ops tee_ops = { tee_write, tee_close, tee_free };

int multi_tee_new(struct sink **branches, struct multi_result *results, size_t n, struct sink **out,
                  struct err *e)
{
    struct tee *t;
    size_t i;

    if (n == 0)
        return err_setf(e, ERR_INTERNAL, "fan-out with no destination");
    t = calloc(1, sizeof *t);
    if (t == NULL || (t->branches = calloc(n, sizeof *t->branches)) == NULL) {
        free(t);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    t->base.ops = &tee_ops;
    t->n = n;
    t->results = results;
    for (i = 0; i < n; i++) {
        t->branches[i] = branches[i];
        results[i].failed = 0;
        results[i].committed = 0;
        err_clear(&results[i].err);
    }
    *out = &t->base;
    return 0;
}

size_t multi_settle(struct multi_result *results, size_t n, int chain_rc, const struct err *chain_err)
{
    size_t i, committed = 0;

    for (i = 0; i < n; i++) {
        if (results[i].committed) {
            committed++;
            continue;
        }
        if (results[i].failed)
            continue;
        results[i].failed = 1;
        if (chain_rc < 0 && chain_err != NULL && chain_err->code != ERR_OK)
            results[i].err = *chain_err;
        else
            err_setf(&results[i].err, ERR_INTERNAL, "the object for %s was never completed", results[i].name);
    }
    return committed;
}
