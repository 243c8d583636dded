#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archiver.h"
#include "util.h"

int cat_key(char *buf, size_t len, const char *name, const char *what)
{
    int n = snprintf(buf, len, "backups/%s/%s", name, what);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

void cat_new_name(time_t start, char out[CAT_NAME_MAX])
{
    struct tm tm;

    gmtime_r(&start, &tm);
    strftime(out, CAT_NAME_MAX, "%Y%m%dT%H%M%SZ", &tm);
}

struct cat_walk {
    struct catalog *c;
    struct err *e;
    int failed;
};

static int cat_collect(const struct stor_entry *ent, void *arg)
{
    struct cat_walk *w = arg;
    struct catalog *c = w->c;
    const char *rest = ent->key + strlen("backups/");
    const char *slash = strchr(rest, '/');
    size_t nlen;
    struct cat_entry *ce;

    if (slash == NULL)
        return 0;   /* a stray object directly under backups/ */
    nlen = (size_t)(slash - rest);
    if (nlen == 0 || nlen >= CAT_NAME_MAX)
        return 0;
    ce = c->n ? &c->v[c->n - 1] : NULL;
    if (ce == NULL || strlen(ce->name) != nlen || strncmp(ce->name, rest, nlen) != 0) {
        struct cat_entry *nv = realloc(c->v, (c->n + 1) * sizeof *nv);

        if (nv == NULL) {
            err_setf(w->e, ERR_NOMEM, "out of memory");
            w->failed = 1;
            return 1;
        }
        c->v = nv;
        ce = &c->v[c->n++];
        memset(ce, 0, sizeof *ce);
        memcpy(ce->name, rest, nlen);
        ce->name[nlen] = '\0';
    }
    ce->objects++;
    ce->bytes += ent->size;
    if (ent->mtime > ce->newest)
        ce->newest = ent->mtime;
    if (strcmp(slash + 1, CAT_MANIFEST) == 0)
        ce->complete = 1;
    return 0;
}

int cat_load_manifest(struct stor *s, const struct keyring *kr, const char *name, struct manifest **out,
                      struct err *e)
{
    char key[256], what[300];
    struct sink *mem = mem_sink_new(256u << 20);
    const unsigned char *buf;
    size_t len;
    int rc;

    if (mem == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (cat_key(key, sizeof key, name, CAT_MANIFEST) < 0) {
        sink_free(mem);
        return err_setf(e, ERR_USAGE, "backup name too long");
    }
    {
        struct sink *b = borrow_sink_new(mem);

        if (b == NULL) {
            sink_free(mem);
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
        if (archive_fetch_decoded(s, key, kr, b, e) < 0) {
            err_prefix(e, "backup %s: could not read its manifest", name);
            sink_free(mem);
            return -1;
        }
    }
    buf = mem_sink_data(mem, &len);
    snprintf(what, sizeof what, "backup %s in region %s", name, s->region);
    rc = man_from_json((const char *)buf, len, what, out, e);
    sink_free(mem);
    return rc;
}

int cat_list(struct stor *s, const struct keyring *kr, int load, struct catalog *out, struct err *e)
{
    struct cat_walk w;
    size_t i;

    memset(out, 0, sizeof *out);
    w.c = out;
    w.e = e;
    w.failed = 0;
    if (stor_list(s, "backups/", cat_collect, &w, e) < 0 || w.failed) {
        cat_free(out);
        return -1;
    }
    for (i = 0; load && i < out->n; i++) {
        if (!out->v[i].complete)
            continue;
        if (cat_load_manifest(s, kr, out->v[i].name, &out->v[i].man, e) < 0) {
            cat_free(out);
            return -1;
        }
    }
    return 0;
}

void cat_free(struct catalog *c)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        man_free(c->v[i].man);
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

int cat_find(const struct catalog *c, const char *name, struct err *e)
{
    size_t i;

    if (strcmp(name, "LATEST") == 0) {
        for (i = c->n; i > 0; i--)
            if (c->v[i - 1].complete)
                return (int)(i - 1);
        err_setf(e, ERR_NOTFOUND, "there is no complete backup");
        return -1;
    }
    for (i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].name, name) == 0) {
            if (c->v[i].complete)
                return (int)i;
            err_setf(e, ERR_NOTFOUND, "backup %s is incomplete (it has no manifest): it cannot be used", name);
            return -1;
        }
    }
    err_setf(e, ERR_NOTFOUND, "there is no backup named %s", name);
    return -1;
}
