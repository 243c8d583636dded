/*
 * copy — the engine of `walship copy`: seed a new region, or catch one up
 * after an outage, from another region (docs/COPY.md).
 *
 * Objects are copied byte for byte (stor_get from R1 straight into R2's
 * upload sink): nothing is decoded or re-encrypted, and the primary is never
 * contacted.  For each complete backup of R1 that R2 has no manifest for,
 * every object of its folder is copied and manifest.json last, so a copy
 * that is interrupted leaves a folder that does not exist for backup-list,
 * restore or retention, and the next run finishes it.  Then the WAL the
 * selected backups need: every wal/ object from the oldest selected
 * backup's start segment on, and every .history file.  An object R2
 * already has with the same size is taken to be a previous copy of it and
 * skipped (docs/COPY.md says why that is sound and where it is not).
 *
 * The repository identity goes first: R1 must have one, and R2 must have
 * the same (a copy between two clusters' repositories is refused), or none
 * and nothing else, in which case R1's identity object is copied before
 * anything.  Every object is bound to its key and cluster, so a byte-for-
 * byte copy stays valid in R2 and nothing can be copied into the wrong
 * place unnoticed.  WAL is never replaced; an object of a backup R2 has no
 * manifest for (an interrupted copy or backup-push) is.
 */
#include "copy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"
#include "manifest.h"
#include "stor.h"
#include "stream.h"
#include "util.h"

/* ---- a listing: keys and sizes, sorted ---- */

struct obj {
    char *key;
    uint64_t size;
};

struct objlist {
    struct obj *v;
    size_t n, cap;
    int oom;
};

static int objlist_add(const struct stor_entry *ent, void *arg)
{
    struct objlist *l = arg;

    if (array_reserve(&l->v, &l->cap, l->n + 1, sizeof *l->v) < 0 || (l->v[l->n].key = xstrdup(ent->key)) == NULL) {
        l->oom = 1;
        return 1;
    }
    l->v[l->n].size = ent->size;
    l->n++;
    return 0;
}

static void objlist_free(struct objlist *l)
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

static int objlist_load(struct repo *r, const char *prefix, struct objlist *l, struct err *e)
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

static const struct obj *objlist_find(const struct objlist *l, const char *key)
{
    struct obj k;

    if (l->n == 0)
        return NULL;
    k.key = (char *)key;
    k.size = 0;
    return bsearch(&k, l->v, l->n, sizeof *l->v, obj_cmp);
}

/* ---- copying one object ---- */

struct copy_run {
    struct repo *src, *dst;
    const struct copy_opts *o;
    int dry_run;
    struct copy_result *res;
};

static int copy_object(struct copy_run *r, const char *key, uint64_t size, int replace, struct copy_tally *t,
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

static void skip_object(uint64_t size, struct copy_tally *t)
{
    t->skipped++;
    t->skipped_bytes += size;
}

/* ---- backups ---- */

/* Every part the manifest lists is in `l` with its stored size?  The first
 * that is not goes into e (ERR_CORRUPT) and -1 is returned. */
static int parts_complete(const struct manifest *m, const struct objlist *l, const char *region, struct err *e)
{
    size_t i;

    for (i = 0; i < m->nparts; i++) {
        char key[REPO_KEY_MAX];
        const struct obj *o;

        if (repo_key_part(key, sizeof key, m->name, m->parts[i].number) < 0)
            return err_setf(e, ERR_INTERNAL, "backup name too long: \"%s\"", m->name);
        o = objlist_find(l, key);
        if (o == NULL || o->size != m->parts[i].stored_size)
            return err_setf(e, ERR_CORRUPT, "backup %s in region %s: %s is %s (the manifest lists %llu bytes)",
                            m->name, region, key, o == NULL ? "missing" : "of another size",
                            (unsigned long long)m->parts[i].stored_size);
    }
    return 0;
}

static int copy_backup(struct copy_run *r, const char *name, const struct objlist *have, struct err *e)
{
    struct objlist mine = { NULL, 0, 0, 0 };
    char prefix[CAT_NAME_MAX + 16], mkey[CAT_NAME_MAX + 32];
    const struct obj *man = NULL;
    struct manifest *m = NULL;
    size_t i;
    int rc = -1;

    if (repo_key_backup(prefix, sizeof prefix, name, "") < 0 || repo_key_backup(mkey, sizeof mkey, name, CAT_MANIFEST) < 0)
        return err_setf(e, ERR_INTERNAL, "backup name too long: \"%s\"", name);
    if (objlist_load(r->src, prefix, &mine, e) < 0)
        goto out;
    /* A backup is copied only whole: the manifest makes it visible, so it
     * goes last and only when every part it lists is there to copy. */
    if (cat_load_manifest(r->src, name, &m, e) < 0 || parts_complete(m, &mine, r->src->name, e) < 0) {
        err_prefix(e, "not copying backup %s", name);
        goto out;
    }
    for (i = 0; i < mine.n; i++) {
        const struct obj *o = &mine.v[i], *there;

        if (strcmp(o->key, mkey) == 0) {
            man = o;
            continue;
        }
        there = objlist_find(have, o->key);
        if (there != NULL && there->size == o->size) {
            skip_object(o->size, &r->res->backups);
            continue;
        }
        /* R2 has no manifest for it: its objects there are leftovers */
        if (copy_object(r, o->key, o->size, there != NULL, &r->res->backups, e) < 0)
            goto out;
    }
    if (man == NULL) {
        err_setf(e, ERR_NOTFOUND, "backup %s lost its manifest in region %s while being copied", name,
                 r->src->name);
        goto out;
    }
    if (objlist_find(have, man->key) == NULL && copy_object(r, man->key, man->size, 0, &r->res->manifests, e) < 0)
        goto out;
    rc = 0;
out:
    man_free(m);
    objlist_free(&mine);
    return rc;
}

/* ---- WAL ---- */

/* The position of a WAL file name in the WAL stream, across timelines: the
 * 16 hex digits after the timeline.  0 when `name` is not a segment-based
 * name (history files and anything unexpected: always copied). */
static int wal_position(const char *name, char pos[17])
{
    size_t i;

    for (i = 0; i < 24; i++) {
        char ch = name[i];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F')))
            return 0;
    }
    memcpy(pos, name + 8, 16);
    pos[16] = '\0';
    return 1;
}

/* R2 has a WAL file of this name with another size (wal-push with other
 * settings, or damage): 0 = same content, 1 = other content (R2's own,
 * kept; the copy fails), 2 = R2's copy does not decode (to be replaced),
 * -1 = error (R1's copy does not decode, or a read failed). */
static int wal_differs(struct copy_run *r, const struct obj *o, struct err *e)
{
    char hs[65], hd[65];
    struct err de = ERR_INIT;

    if (repo_hash(r->src, o->key, hs, e) < 0)
        return err_prefix(e, "region %s", r->src->name);
    if (repo_hash(r->dst, o->key, hd, &de) < 0) {
        if (de.code != ERR_CORRUPT && de.code != ERR_FOREIGN) {
            *e = de;
            return -1;
        }
        note(r->o->notes, LOG_WARNING, "region %s: %s does not decode (%s): replacing it with region %s's copy",
             r->dst->name, o->key, de.msg, r->src->name);
        return 2;
    }
    if (strcmp(hs, hd) == 0)
        return 0;
    note(r->o->notes, LOG_ERROR, "region %s already has %s with other content than region %s: kept as it is (are "
         "two clusters archiving to one prefix?)", r->dst->name, o->key, r->src->name);
    return 1;
}

static int copy_wal(struct copy_run *r, const char *floor_wal, struct err *e)
{
    struct objlist src = { NULL, 0, 0, 0 }, dst = { NULL, 0, 0, 0 };
    char floor_pos[17] = "", pos[17];
    uint64_t differ = 0;
    size_t i;
    int rc = -1;

    if (floor_wal != NULL && !wal_position(floor_wal, floor_pos))
        floor_pos[0] = '\0';
    if (objlist_load(r->src, REPO_WAL_DIR, &src, e) < 0 || objlist_load(r->dst, REPO_WAL_DIR, &dst, e) < 0)
        goto out;
    for (i = 0; i < src.n; i++) {
        const struct obj *o = &src.v[i], *there;
        const char *name = o->key + 4;

        if (floor_pos[0] != '\0' && wal_position(name, pos) && strcmp(pos, floor_pos) < 0)
            continue;
        there = objlist_find(&dst, o->key);
        if (there != NULL) {
            int got = there->size == o->size ? 0 : wal_differs(r, o, e);

            if (got < 0)
                goto out;
            if (got == 2) {
                /* R2's copy does not decode: replace it with R1's good one */
                if (copy_object(r, o->key, o->size, 1, &r->res->wal, e) < 0)
                    goto out;
                continue;
            }
            differ += (uint64_t)got;
            skip_object(o->size, &r->res->wal);
            continue;
        }
        if (copy_object(r, o->key, o->size, 0, &r->res->wal, e) < 0)
            goto out;
    }
    if (differ > 0) {
        err_setf(e, ERR_EXISTS, "region %s holds %llu WAL files with other content than region %s (kept, not "
                 "overwritten; see above)", r->dst->name, (unsigned long long)differ, r->src->name);
        goto out;
    }
    rc = 0;
out:
    objlist_free(&src);
    objlist_free(&dst);
    return rc;
}

/* ---- identity ---- */

/* R2 must be R1's cluster's repository, or be made one by copying R1's
 * identity object (byte for byte, like everything else). */
static int carry_identity(struct copy_run *r, struct err *e)
{
    struct err le = ERR_INIT;

    if (repo_ident_load(r->dst, &le) == 0) {
        if (repo_ident_check(r->dst, r->src->id.sysid, e) < 0)
            return err_prefix(e, "refusing to copy region %s into it", r->src->name);
        return 0;
    }
    if (le.code != ERR_NOREPO || strstr(le.msg, "walship upgrade") != NULL) {
        *e = le;
        return -1;
    }
    if (r->dry_run) {
        if (r->o->would_copy != NULL)
            r->o->would_copy(REPO_KEY_IDENTITY, 0, r->o->arg);
        return 0;
    }
    if (copy_object(r, REPO_KEY_IDENTITY, 0, 0, &r->res->manifests, e) < 0) {
        if (e->code != ERR_EXISTS)
            return -1;
        err_clear(e);           /* made meanwhile: checked below */
    } else {
        r->res->manifests.copied--;  /* counted as a manifest above; it is not one */
    }
    return repo_ident_load(r->dst, e) < 0 || repo_ident_check(r->dst, r->src->id.sysid, e) < 0 ? -1 : 0;
}

/* ---- the backups, then the WAL they need ---- */

/* Backup `ce` of R1 is already whole in R2 (its manifest and every part it
 * lists)?  A manifest without all its parts is copied again. */
static int backup_present(struct copy_run *r, const struct cat_entry *ce, const struct objlist *have, struct err *e)
{
    struct manifest *m = NULL;
    struct err pe = ERR_INIT;
    char mkey[CAT_NAME_MAX + 32];
    int whole;

    if (repo_key_backup(mkey, sizeof mkey, ce->name, CAT_MANIFEST) < 0)
        return err_setf(e, ERR_INTERNAL, "backup name too long: \"%s\"", ce->name);
    if (objlist_find(have, mkey) == NULL)
        return 0;
    if (cat_load_manifest(r->src, ce->name, &m, e) < 0)
        return -1;
    whole = parts_complete(m, have, r->dst->name, &pe) == 0;
    man_free(m);
    if (whole) {
        note(r->o->notes, LOG_DEBUG, "backup %s is already in region %s", ce->name, r->dst->name);
        return 1;
    }
    note(r->o->notes, LOG_WARNING, "%s: copying its parts again", pe.msg);
    return 0;
}

static int copy_backups(struct copy_run *r, const struct catalog *cat, size_t first, const struct objlist *have,
                        struct err *e)
{
    size_t i;

    for (i = first; i < cat->n; i++) {
        const struct cat_entry *ce = &cat->v[i];
        int got;

        if (!ce->complete)
            continue;
        /* The oldest selected backup's start segment bounds the WAL. */
        if (r->res->floor_wal[0] == '\0') {
            struct manifest *m = NULL;

            if (cat_load_manifest(r->src, ce->name, &m, e) < 0)
                return -1;
            strlcopy(r->res->floor_wal, m->start_wal, sizeof r->res->floor_wal);
            man_free(m);
        }
        r->res->nbackups++;
        if ((got = backup_present(r, ce, have, e)) < 0)
            return -1;
        if (got) {
            r->res->present++;
            continue;
        }
        note(r->o->notes, LOG_INFO, "%s backup %s (%llu objects, %llu bytes) from %s to %s",
             r->dry_run ? "would copy" : "copying", ce->name, (unsigned long long)ce->objects,
             (unsigned long long)ce->bytes, r->src->name, r->dst->name);
        if (copy_backup(r, ce->name, have, e) < 0)
            return -1;
    }
    return 0;
}

int copy_regions(struct repo *src, struct repo *dst, const struct copy_opts *o, struct copy_result *res,
                 struct err *e)
{
    struct copy_run run = { src, dst, o, o->dry_run, res };
    struct catalog cat = { NULL, 0, 0 };
    struct objlist have = { NULL, 0, 0, 0 };
    size_t first = 0;
    int rc = -1;

    memset(res, 0, sizeof *res);
    /* Which backups: every complete one of R1, or from --since on. */
    if (cat_list(src, 0, &cat, e) < 0)
        goto out;
    if (o->since != NULL) {
        int k = cat_find(&cat, o->since, e);

        if (k < 0) {
            err_prefix(e, "region %s", src->name);
            goto out;
        }
        first = (size_t)k;
    }
    if (carry_identity(&run, e) < 0 || objlist_load(dst, REPO_BACKUP_DIR, &have, e) < 0 ||
        copy_backups(&run, &cat, first, &have, e) < 0 ||
        copy_wal(&run, res->floor_wal[0] ? res->floor_wal : NULL, e) < 0)
        goto out;
    rc = 0;
out:
    objlist_free(&have);
    cat_free(&cat);
    return rc;
}
