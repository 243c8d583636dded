/*
 * copy_obj — one object of `walship copy`, byte for byte from R1 into R2,
 * authenticated on the way (docs/COPY.md "Nothing bad is propagated").
 *
 * The bytes read from R1 go to two places: R2's upload, and a decoder
 * bound to the object's key and R1's cluster that discards the plaintext.
 * The decoder sees every byte first and is closed first (its close checks
 * that the object is whole), so an object that does not decode in R1 —
 * truncated, damaged, another cluster's, renamed, or under a key this host
 * lacks — fails before R2's upload commits, and the upload is aborted: R2
 * never gets an object that R1 could not have restored from.
 *
 * Also the sorted listings (keys and sizes) copy works from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "copy_int.h"
#include "note.h"
#include "obj.h"
#include "stor.h"
#include "stream.h"
#include "util.h"

struct check_tee {
    struct sink base;           /* next: R2's upload (owned) */
    struct sink *dec;           /* decoder into a null sink (owned) */
    struct obj_bind bind;
};

static int check_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct check_tee *c = (struct check_tee *)s;

    if (sink_write(c->dec, buf, len, e) < 0)
        return -1;
    return sink_write(s->next, buf, len, e);
}

static int check_close(struct sink *s, struct err *e)
{
    struct check_tee *c = (struct check_tee *)s;

    if (sink_close(c->dec, e) < 0)
        return -1;              /* before the upload commits */
    return sink_close(s->next, e);
}

static void check_free(struct sink *s)
{
    struct check_tee *c = (struct check_tee *)s;

    sink_free(c->dec);
    sink_free(s->next);
    free(c);
}

static const struct sink_ops check_ops = { check_write, check_close, check_free };

/* `up` (owned from here on, also on failure) behind a decoder of `key`
 * as R1 would read it. */
static int check_tee_new(struct repo *src, const char *key, struct sink *up, struct sink **out, struct err *e)
{
    struct check_tee *c = calloc(1, sizeof *c);
    struct sink *ns = null_sink_new();

    if (c == NULL || ns == NULL) {
        free(c);
        sink_free(ns);
        sink_free(up);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    c->bind.key = key;
    c->bind.sysid = src->id.sysid;
    if (obj_decoder_new(ns, src->kr, 0, &c->bind, &c->dec, e) < 0) {
        sink_free(ns);
        sink_free(up);
        free(c);
        return -1;
    }
    c->base.ops = &check_ops;
    c->base.next = up;
    *out = &c->base;
    return 0;
}

int copy_object(struct copy_run *r, const char *key, uint64_t size, int replace, struct copy_tally *t,
                struct err *e)
{
    struct sink *up = NULL;
    uint64_t t0 = now_ms();

    if (r->dry_run) {
        if (r->o->would_copy != NULL)
            r->o->would_copy(key, size, r->o->arg);
    } else {
        if ((replace ? stor_put_replace(r->dst->st, key, &up, e) : stor_put(r->dst->st, key, &up, e)) < 0)
            goto fail;
        if (check_tee_new(r->src, key, up, &up, e) < 0) {
            up = NULL;
            goto fail;
        }
        if (stor_get(r->src->st, key, up, e) < 0 || sink_close(up, e) < 0)
            goto fail;
        sink_free(up);
        note(r->o->notes, LOG_DEBUG, "copied %s (%llu bytes, %llu ms)", key, (unsigned long long)size,
             (unsigned long long)(now_ms() - t0));
    }
    t->copied++;
    t->copied_bytes += size;
    return 0;
fail:
    sink_free(up);
    return err_prefix(e, "could not copy \"%s\" from region %s to region %s", key, r->src->name, r->dst->name);
}

void skip_object(uint64_t size, struct copy_tally *t)
{
    t->skipped++;
    t->skipped_bytes += size;
}

/* ---- a listing: keys and sizes, sorted ---- */

static int objlist_add(const struct stor_entry *ent, void *arg)
{
    struct objlist *l = arg;

    if (array_reserve(&l->v, &l->cap, l->n + 1, sizeof *l->v) < 0 || (l->v[l->n].key = xstrdup(ent->key)) == NULL) {
        l->oom = 1;
        return 1;
    }
    l->v[l->n].size = ent->size;
    l->v[l->n].done = 0;
    l->n++;
    return 0;
}

void objlist_free(struct objlist *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i].key);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int obj_cmp(const void *a, const void *b)
{
    return strcmp(((const struct obj *)a)->key, ((const struct obj *)b)->key);
}

int objlist_load(struct repo *r, const char *prefix, struct objlist *l, struct err *e)
{
    struct stor *s = r->st;

    if (stor_list(s, prefix, objlist_add, l, e) < 0)
        return err_prefix(e, "could not list \"%s\" in region %s", prefix, s->region);
    if (l->oom)
        return err_setf(e, ERR_NOMEM, "out of memory listing region %s", s->region);
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, obj_cmp);
    return 0;
}

const struct obj *objlist_find(const struct objlist *l, const char *key)
{
    struct obj k;

    if (l->n == 0)
        return NULL;
    k.key = (char *)key;
    k.size = 0;
    k.done = 0;
    return bsearch(&k, l->v, l->n, sizeof *l->v, obj_cmp);
}
