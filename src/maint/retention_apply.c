/*
 * retention_apply — carrying out a retention plan (ret_apply, retention.h):
 * expired backups, a child before its parent, each losing its manifest
 * first; then the WAL.  Objects the server keeps under Object Lock are
 * not failures (docs/S3.md); a backup kept whole that way keeps the
 * backups its chain needs and the WAL from its start.
 */
#include "retention.h"

#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wal.h"

#define RET_BATCH 1000      /* keys per remove_many (S3 DeleteObjects' limit) */

struct keys_walk {
    struct strvec keys;
    int has_manifest;
    int failed;
};

static int keys_collect(const struct stor_entry *ent, void *arg)
{
    struct keys_walk *k = arg;
    const char *slash = strrchr(ent->key, '/');

    if (slash != NULL && strcmp(slash + 1, CAT_MANIFEST) == 0) {
        k->has_manifest = 1;
        return 0;
    }
    if (strvec_push(&k->keys, ent->key) < 0) {
        k->failed = 1;
        return 1;
    }
    return 0;
}

static int remove_batches(struct stor *s, const char *const *keys, size_t n, struct err *e)
{
    size_t i;

    for (i = 0; i < n; i += RET_BATCH) {
        size_t m = n - i < RET_BATCH ? n - i : RET_BATCH;

        if (stor_remove_many(s, keys + i, m, e) < 0)
            return -1;
    }
    return 0;
}

/* The bytes of `m` keys of the plan's WAL (keys point into plan->wal, in order). */
static uint64_t wal_bytes(const struct ret_plan *plan, const char *const *keys, size_t m)
{
    uint64_t sum = 0;
    size_t j, k = 0;

    for (j = 0; j < plan->nwal && k < m; j++)
        if (plan->wal[j].key == keys[k]) {
            sum += plan->wal[j].bytes;
            k++;
        }
    return sum;
}

/* An object the server keeps under Object Lock is not removed and not a
 * failure: the driver counts it (stor.h kept_locked).  A backup whose
 * manifest is kept stays whole (its other objects too); one whose manifest
 * went but some objects stayed is an incomplete backup that a later run
 * removes once retention allows (docs/S3.md). */
static int delete_backup(struct stor *s, const struct ret_backup *b, int *skipped, int *locked, struct err *e)
{
    struct keys_walk k;
    char prefix[CAT_NAME_MAX + 16], key[CAT_NAME_MAX + 32];
    int rc = -1;

    memset(&k, 0, sizeof k);
    *skipped = *locked = 0;
    snprintf(prefix, sizeof prefix, "backups/%s/", b->name);
    if (!b->incomplete) {
        uint64_t kept = s->kept_locked;

        /* Manifest first: from here on the backup does not exist. */
        if (repo_key_backup(key, sizeof key, b->name, CAT_MANIFEST) < 0)
            return err_setf(e, ERR_INTERNAL, "backup name too long: %s", b->name);
        if (stor_remove(s, key, e) < 0)
            return err_prefix(e, "backup %s: could not delete its manifest", b->name);
        if (s->kept_locked != kept) {
            *skipped = *locked = 1;
            return 0;
        }
    }
    if (stor_list(s, prefix, keys_collect, &k, e) < 0)
        goto out;
    if (k.failed) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (b->incomplete && k.has_manifest) {
        /* It was in progress and has just completed: it is a backup now. */
        *skipped = 1;
        rc = 0;
        goto out;
    }
    if (remove_batches(s, (const char *const *)k.keys.v, k.keys.n, e) < 0) {
        err_prefix(e, "backup %s", b->name);
        goto out;
    }
    rc = 0;
out:
    strvec_free(&k.keys);
    return rc;
}

/* A backup kept whole under Object Lock keeps the WAL from its start: the
 * plan's cut is lowered to it (`cut` starts as the plan's).  Its WAL was
 * written before its manifest, so its lock may end first. */
static void lower_cut(const struct ret_plan *plan, const struct ret_backup *b, struct ret_plan *cut)
{
    struct wal_name w;
    struct err ignored = ERR_INIT;
    uint64_t segno;

    if (wal_parse(b->start_wal, &w, &ignored) < 0 || w.kind != WAL_SEGMENT || plan->seg_size == 0) {
        cut->have_cut = 0;      /* cannot place it: no WAL goes */
        return;
    }
    segno = wal_segno(&w, plan->seg_size);
    if (w.tli < cut->cut_tli)
        cut->cut_tli = w.tli;
    if (segno < cut->cut_segno)
        cut->cut_segno = segno;
}

/* The index in the plan of backup `name`, or plan->nbackups.  The plan
 * is in catalog order (by name). */
static size_t plan_find(const struct ret_plan *plan, const char *name)
{
    return name_index(plan->backups, plan->nbackups, sizeof *plan->backups, offsetof(struct ret_backup, name), name);
}

struct apply_order {
    size_t *parent;             /* per planned backup: its parent's index, or nbackups */
    size_t *kids;               /* planned children not yet handled */
    unsigned char *done;
};

/* Backup k, whose planned children are all handled: deleted, or kept
 * whole when its manifest is under Object Lock or a backup kept whole is
 * built on it (locked 2): an incremental kept under lock must not lose
 * its parents, whose locks end first, nor a listed backup its WAL. */
static int apply_one(struct stor *s, struct ret_plan *plan, size_t k, struct apply_order *o, struct ret_plan *cut,
                     struct ret_done *done, struct err *e)
{
    struct ret_backup *b = &plan->backups[k];
    int skipped = 1, locked = b->locked;

    o->done[k] = 1;
    if (!locked && delete_backup(s, b, &skipped, &locked, e) < 0)
        return -1;
    b->locked = locked;
    if (locked) {
        done->backups_locked++;
        lower_cut(plan, b, cut);
        if (o->parent[k] < plan->nbackups && !plan->backups[o->parent[k]].locked)
            plan->backups[o->parent[k]].locked = 2;
    }
    if (!skipped) {
        done->backups++;
        done->bytes += b->bytes;
    }
    return 0;
}

/* The expired backups, newest first and always a child before its parent
 * (also when a clock that went back named the parent after it), so that
 * an interrupted run never leaves a listed backup whose chain is gone. */
static int apply_backups(struct stor *s, struct ret_plan *plan, struct ret_plan *cut, struct ret_done *done,
                         struct err *e)
{
    struct apply_order o;
    size_t i, n = plan->nbackups;
    int rc = -1;

    o.parent = malloc((n + 1) * sizeof *o.parent);
    o.kids = calloc(n + 1, sizeof *o.kids);
    o.done = calloc(n + 1, 1);
    if (o.parent == NULL || o.kids == NULL || o.done == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        plan->backups[i].locked = 0;
        o.parent[i] = plan->backups[i].parent[0] ? plan_find(plan, plan->backups[i].parent) : n;
        if (o.parent[i] == i)
            o.parent[i] = n;
        o.kids[o.parent[i]]++;
    }
    for (i = n; i-- > 0;) {
        size_t k = i;

        /* k, then each parent it was the last child of, already passed */
        while (k < n && !o.done[k] && o.kids[k] == 0) {
            if (apply_one(s, plan, k, &o, cut, done, e) < 0)
                goto out;
            k = o.parent[k];
            o.kids[k]--;
            if (k < i)
                break;
        }
    }
    for (i = n; i-- > 0;)   /* a parent loop (forged manifests): newest first */
        if (!o.done[i] && apply_one(s, plan, i, &o, cut, done, e) < 0)
            goto out;
    rc = 0;
out:
    free(o.parent);
    free(o.kids);
    free(o.done);
    return rc;
}

int ret_apply(struct stor *s, struct ret_plan *plan, struct ret_done *done, struct err *e)
{
    const char **keys = NULL;
    size_t i, n = 0;
    int rc = -1;
    uint64_t kept0 = s->kept_locked;
    struct ret_plan cut = *plan;

    memset(done, 0, sizeof *done);
    if (apply_backups(s, plan, &cut, done, e) < 0) {
        done->kept_locked = s->kept_locked - kept0;
        return -1;
    }
    done->kept_locked = s->kept_locked - kept0;
    if (plan->nwal == 0)
        return 0;
    keys = malloc(plan->nwal * sizeof *keys);
    if (keys == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < plan->nwal; i++)
        if (done->backups_locked == 0 || ret_wal_expired(&cut, plan->wal[i].key + strlen("wal/")))
            keys[n++] = plan->wal[i].key;
    for (i = 0; i < n; i += RET_BATCH) {
        size_t m = n - i < RET_BATCH ? n - i : RET_BATCH;
        uint64_t kept = s->kept_locked, bytes;

        if (stor_remove_many(s, keys + i, m, e) < 0) {
            done->kept_locked = s->kept_locked - kept0;
            err_prefix(e, "could not delete expired WAL");
            goto out;
        }
        kept = s->kept_locked - kept;
        bytes = wal_bytes(plan, keys + i, m);
        /* the driver counts the kept keys, it does not name them: their
         * bytes are estimated as the batch's average */
        done->wal += m - (size_t)kept;
        done->bytes += kept == 0 ? bytes : bytes / m * (m - (size_t)kept);
    }
    done->kept_locked = s->kept_locked - kept0;
    rc = 0;
out:
    free(keys);
    return rc;
}
