/*
 * copy — the engine of `walship copy`: seed a new region, or catch one up
 * after an outage, from another region (docs/COPY.md).
 *
 * Objects are copied byte for byte (stor_get from R1 into R2's
 * upload sink, authenticated on the way by copy_obj.c): nothing is
 * re-encrypted, and the primary is never
 * contacted.  For each complete backup of R1 that R2 has no manifest for,
 * every object of its folder is copied and manifest.json last, so a copy
 * that is interrupted leaves a folder that does not exist for backup-list,
 * restore or retention, and the next run finishes it.  An incremental
 * backup comes with every link of its chain that R2 lacks, parents first;
 * a link R1 lacks refuses the copy before anything is copied.  Before a
 * backup's manifest, the WAL between its start and stop segments
 * (copy_wal.c), so nothing visible in R2 is unrestorable at any point.
 * Then the WAL the selected backups need: every wal/ object from the
 * oldest selected backup's start segment on, and every .history file.  An object R2
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
#include "copy_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap.h"
#include "manifest.h"
#include "note.h"
#include "stor.h"
#include "stream.h"
#include "util.h"

/* ---- backups ---- */

/* Every part the manifest lists is in `l` with its stored size, and the
 * label, block hashes and tablespace map it needs are there?  The first
 * that is not goes into e (ERR_CORRUPT) and -1 is returned: a backup the
 * source region lost a piece of is not made visible in another. */
static int parts_complete(const struct manifest *m, const struct objlist *l, const char *region, struct err *e)
{
    const char *extra[3] = { "backup_label", m->blockhash_size > 0 ? "blockhash" : NULL,
                             m->has_tablespace_map ? "tablespace_map" : NULL };
    size_t i;

    for (i = 0; i < 3; i++) {
        char key[REPO_KEY_MAX];

        if (extra[i] == NULL)
            continue;
        if (repo_key_backup(key, sizeof key, m->name, extra[i]) < 0)
            return err_setf(e, ERR_INTERNAL, "backup name too long: \"%s\"", m->name);
        if (objlist_find(l, key) == NULL)
            return err_setf(e, ERR_CORRUPT, "backup %s in region %s: %s is missing", m->name, region, key);
    }

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

/* Just before the manifest makes backup `m` visible in R2: is every part
 * it lists there, at its size, and the WAL it needs?  The parts a resumed copy took as already
 * there may be old enough for a `delete` in R2 to remove as an abandoned
 * incomplete backup while the WAL was being copied (as backup-push checks
 * its own parts before its manifest). */
static int dst_still_whole(struct copy_run *r, const struct manifest *m, struct err *e)
{
    struct objlist now = { NULL, 0, 0, 0 };
    char prefix[CAT_NAME_MAX + 16];
    int rc;

    if (r->dry_run)
        return 0;
    if (repo_key_backup(prefix, sizeof prefix, m->name, "") < 0)
        return err_setf(e, ERR_INTERNAL, "backup name too long: \"%s\"", m->name);
    rc = objlist_load(r->dst, prefix, &now, e) < 0 || parts_complete(m, &now, r->dst->name, e) < 0 ||
         copy_backup_wal_check(r, m, e) < 0 ? -1 : 0;
    objlist_free(&now);
    if (rc < 0)
        err_prefix(e, "not writing the manifest of backup %s into region %s (was a part removed while it was "
                   "copied: a delete there?); run the copy again", m->name, r->dst->name);
    return rc;
}

/* `key` is one of the objects backup `m` consists of (a part it lists,
 * its label, block hashes, tablespace map or manifest)? */
static int of_backup(const struct manifest *m, const char *key)
{
    static const char *const extra[] = { "backup_label", "blockhash", "tablespace_map", CAT_MANIFEST };
    char want[REPO_KEY_MAX];
    size_t i;

    for (i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (repo_key_backup(want, sizeof want, m->name, extra[i]) == 0 && strcmp(want, key) == 0)
            return 1;
    for (i = 0; i < m->nparts; i++)
        if (repo_key_part(want, sizeof want, m->name, m->parts[i].number) == 0 && strcmp(want, key) == 0)
            return 1;
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
        if (copy_object(r, o->key, o->size, there != NULL, &r->res->backups, e) < 0) {
            if ((e->code != ERR_CORRUPT && e->code != ERR_FOREIGN && e->code != ERR_KEY) || of_backup(m, o->key))
                goto out;
            /* not one of the backup's objects, and it does not decode */
            note(r->o->notes, LOG_WARNING, "%s: not one of backup %s's objects, not copied", e->msg, name);
            err_clear(e);
        }
    }
    if (man == NULL) {
        err_setf(e, ERR_NOTFOUND, "backup %s lost its manifest in region %s while being copied", name,
                 r->src->name);
        goto out;
    }
    if (copy_backup_wal(r, m, e) < 0 || dst_still_whole(r, m, e) < 0)
        goto out;
    if (objlist_find(have, man->key) == NULL && copy_object(r, man->key, man->size, 0, &r->res->manifests, e) < 0)
        goto out;
    rc = 0;
out:
    man_free(m);
    objlist_free(&mine);
    return rc;
}

/* ---- identity ---- */

/* Copy R1's identity into the empty R2, under this host's lock on creating
 * it: a wal-push or the shipper of this host may be creating R2's own at
 * this moment (R2 just added to the configuration, copy run by a timer),
 * and a store without conditional writes takes both PUTs; the wal-push
 * whose identity copy replaced would refuse R2 from then on.  Whoever
 * created it meanwhile, it must be this cluster's. */
static int seed_identity(struct copy_run *r, struct err *e)
{
    struct err le = ERR_INIT;
    int lock = -1, rc = -1;

    if (repo_ident_create_lock(r->dst, r->src->id.sysid, &lock, e) < 0)
        return err_prefix(e, "not copying region %s into it", r->src->name);
    if (lock >= 0 && repo_ident_load(r->dst, &le) == 0) {
        rc = 0;     /* created while this copy waited */
    } else if (lock >= 0 && le.code != ERR_NOREPO) {
        *e = le;
        goto out;
    } else if (copy_object(r, REPO_KEY_IDENTITY, 0, 0, &r->res->manifests, e) < 0) {
        if (e->code != ERR_EXISTS)
            goto out;
        err_clear(e);           /* made meanwhile: checked below */
    } else {
        r->res->manifests.copied--;  /* counted as a manifest above; it is not one */
    }
    rc = (rc == 0 || repo_ident_load(r->dst, e) == 0) && repo_ident_check(r->dst, r->src->id.sysid, e) == 0 ? 0 : -1;
out:
    lock_file_release(lock);
    return rc;
}

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
    /* an empty R2 that this host's spool remembers as the cluster's
     * repository is an unmounted file system or a changed prefix, not a
     * region to seed (as for wal-push, docs/WAL.md "Known regions") */
    if (repo_ident_lost(r->dst, r->src->id.sysid, "has no repository identity (identity.json)", e) < 0)
        return err_prefix(e, "not copying region %s into it", r->src->name);
    if (r->dry_run) {
        if (r->o->would_copy != NULL)
            r->o->would_copy(REPO_KEY_IDENTITY, 0, r->o->arg);
        return 0;
    }
    return seed_identity(r, e);
}

/* ---- the backups, then the WAL they need ---- */

/* R2's manifest of backup `name` is R1's (the same plaintext)?  0 yes; -1
 * (ERR_EXISTS) when R2 holds another backup under that name (two hosts of
 * the cluster took one in the same second, a clock set back) or a manifest
 * that cannot be read: its objects are not R1's backup's, and copying
 * parts into it, or taking it for R1's, would leave a visible backup that
 * does not restore (an incremental of R1's on a parent it was not taken
 * against). */
static int same_manifest(struct copy_run *r, const char *name, const char *src_sha, struct err *e)
{
    struct manifest *dm = NULL;
    struct err de = ERR_INIT;
    char dst_sha[65];

    if (cat_load_manifest_sha(r->dst, name, &dm, dst_sha, &de) < 0) {
        if (de.code != ERR_CORRUPT && de.code != ERR_FOREIGN) {
            *e = de;
            return -1;
        }
        return err_setf(e, ERR_EXISTS, "region %s holds a manifest of backup %s that cannot be read (%s): not "
                        "copying backup %s over it; remove it from region %s to copy the backup again",
                        r->dst->name, name, de.msg, name, r->dst->name);
    }
    man_free(dm);
    if (strcmp(src_sha, dst_sha) == 0)
        return 0;
    return err_setf(e, ERR_EXISTS, "region %s holds another backup under the name %s (its manifest is not region "
                    "%s's): not copying backup %s, nor anything of it, over that one (kept as it is)",
                    r->dst->name, name, r->src->name, name);
}

/* Backup `ce` of R1 is already whole in R2 (its manifest and every part it
 * lists)?  A manifest without all its parts is copied again; another
 * backup under the same name in R2 fails the copy (same_manifest). */
static int backup_present(struct copy_run *r, const struct cat_entry *ce, const struct objlist *have, struct err *e)
{
    struct manifest *m = NULL;
    struct err pe = ERR_INIT;
    char mkey[CAT_NAME_MAX + 32], sha[65];
    int whole;

    if (repo_key_backup(mkey, sizeof mkey, ce->name, CAT_MANIFEST) < 0)
        return err_setf(e, ERR_INTERNAL, "backup name too long: \"%s\"", ce->name);
    if (objlist_find(have, mkey) == NULL)
        return 0;
    if (cat_load_manifest_sha(r->src, ce->name, &m, sha, e) < 0)
        return -1;
    if (same_manifest(r, ce->name, sha, e) < 0) {
        man_free(m);
        return -1;
    }
    whole = parts_complete(m, have, r->dst->name, &pe) == 0;
    man_free(m);
    if (whole) {
        note(r->o->notes, LOG_DEBUG, "backup %s is already in region %s", ce->name, r->dst->name);
        return 1;
    }
    note(r->o->notes, LOG_WARNING, "%s: copying its parts again", pe.msg);
    return 0;
}

/* ---- which backups: those asked for, and the ancestors they need ---- */

struct plan {
    size_t *v;                  /* catalog indexes, parents before children */
    size_t n, cap;
    unsigned char *in;          /* per catalog entry: in v */
};

static int cat_index(const struct catalog *cat, const char *name)
{
    size_t i;

    for (i = 0; i < cat->n; i++)
        if (cat->v[i].complete && strcmp(cat->v[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* R2 already holds backup `name` whole (its manifest and every part it
 * lists), and it is the one whose manifest has SHA-256 `sha`?  1 yes (its
 * manifest in *out when out is not NULL), 0 no, -1 when R2 could not be
 * read. */
static int dst_has_link(struct copy_run *r, const char *name, const char *sha, const struct objlist *have,
                        struct manifest **out, struct err *e)
{
    struct manifest *m = NULL;
    struct err le = ERR_INIT;
    char mkey[CAT_NAME_MAX + 32], got[65];
    int whole;

    if (repo_key_backup(mkey, sizeof mkey, name, CAT_MANIFEST) < 0 || objlist_find(have, mkey) == NULL)
        return 0;
    if (cat_load_manifest_sha(r->dst, name, &m, got, &le) < 0) {
        if (le.code == ERR_CORRUPT || le.code == ERR_FOREIGN || le.code == ERR_NOTFOUND)
            return 0;
        *e = le;
        return -1;
    }
    whole = strcmp(got, sha) == 0 && parts_complete(m, have, r->dst->name, &le) == 0;
    if (whole && out != NULL)
        *out = m;
    else
        man_free(m);
    return whole;
}

static int plan_chain(struct copy_run *r, const struct catalog *cat, size_t k, const struct objlist *have,
                      struct plan *p, struct err *e);

/* Selected backup k's chain goes on at link `name` (SHA-256 `sha`, the
 * parent of `kid`), which R1 does not hold.  R2 must hold it whole, and
 * every link under it down to a full backup: each whole in R2, or held by
 * R1 (then planned, with its own ancestors).  Stopping at the first link
 * R2 holds let a copy make an incremental visible in R2 whose full backup
 * R2 lacked and R1 had (exit 0, a backup no restore from R2 could use;
 * adversarial pass P).  0, or -1 (e: refused, naming the link). */
static int dst_chain(struct copy_run *r, const struct catalog *cat, size_t k, const char *kid0, const char *name0,
                     const char *sha0, const struct objlist *have, struct plan *p, struct err *e)
{
    char name[CAT_NAME_MAX], sha[65], kid[CAT_NAME_MAX];
    unsigned steps;

    strlcopy(name, name0, sizeof name);
    strlcopy(sha, sha0, sizeof sha);
    strlcopy(kid, kid0, sizeof kid);
    for (steps = 0; steps <= BM_MAX_DEPTH; steps++) {
        struct manifest *dm = NULL, *sm = NULL;
        char got[65];
        int has, pk = cat_index(cat, name);

        if (steps > 0 && pk >= 0) {
            /* R1 holds this one: the very one the chain needs? */
            if (cat_load_manifest_sha(r->src, name, &sm, got, e) < 0)
                return err_prefix(e, "not copying backup %s: its chain's link %s", cat->v[k].name, name);
            man_free(sm);
            if (strcmp(got, sha) == 0)
                return plan_chain(r, cat, (size_t)pk, have, p, e);
        }
        if ((has = dst_has_link(r, name, sha, have, &dm, e)) < 0)
            return -1;
        if (!has)
            return err_setf(e, ERR_CORRUPT, "not copying backup %s: it needs backup %s (the parent of %s), which "
                            "region %s does not have as a complete backup (nor region %s)", cat->v[k].name, name,
                            kid, r->src->name, r->dst->name);
        if (!dm->incremental || dm->parent == NULL) {
            man_free(dm);
            return 0;
        }
        strlcopy(kid, name, sizeof kid);
        strlcopy(name, dm->parent, sizeof name);
        strlcopy(sha, dm->parent_sha256, sizeof sha);
        man_free(dm);
    }
    return err_setf(e, ERR_CORRUPT, "not copying backup %s: its chain in region %s is longer than %u links",
                    cat->v[k].name, r->dst->name, (unsigned)BM_MAX_DEPTH);
}

/* Backup `k` of R1 into the plan, after every ancestor it needs that is
 * not planned yet.  A link that R1 lacks or holds another backup under
 * (its manifest is not the one the child was taken against), and that R2
 * does not hold whole either, refuses the copy, naming it. */
static int plan_chain(struct copy_run *r, const struct catalog *cat, size_t k, const struct objlist *have,
                      struct plan *p, struct err *e)
{
    size_t *up = NULL, nup = 0, cap = 0, cur = k;
    struct manifest *m = NULL, *pm = NULL;
    char sha[65];
    int pk, rc = -1;

    for (;;) {
        if (array_reserve(&up, &cap, nup + 1, sizeof *up) < 0) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        up[nup++] = cur;
        if (m == NULL && cat_load_manifest(r->src, cat->v[cur].name, &m, e) < 0)
            goto out;
        if (!m->incremental)
            break;
        pk = cat_index(cat, m->parent);
        if (pk < 0) {
            /* R2 must have the rest of the chain, or R1 what R2 lacks of it */
            if (dst_chain(r, cat, k, m->name, m->parent, m->parent_sha256, have, p, e) < 0)
                goto out;
            break;
        }
        if (cat_load_manifest_sha(r->src, m->parent, &pm, sha, e) < 0) {
            err_prefix(e, "not copying backup %s: its chain's link %s", cat->v[k].name, m->parent);
            goto out;
        }
        if (strcmp(sha, m->parent_sha256) != 0 || pm->depth + 1 != m->depth) {
            err_setf(e, ERR_CORRUPT, "not copying backup %s: it needs backup %s (the parent of %s), and region %s "
                     "holds another backup under that name (its manifest is not the one %s was taken against)",
                     cat->v[k].name, m->parent, m->name, r->src->name, m->name);
            goto out;
        }
        man_free(m);
        m = pm;
        pm = NULL;
        cur = (size_t)pk;
        if (p->in[cur])
            break;
    }
    while (nup > 0) {
        size_t j = up[--nup];

        if (p->in[j])
            continue;
        if (array_reserve(&p->v, &p->cap, p->n + 1, sizeof *p->v) < 0) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        p->v[p->n++] = j;
        p->in[j] = 1;
    }
    rc = 0;
out:
    man_free(pm);
    man_free(m);
    free(up);
    return rc;
}

/* The selection (from `first` on) and its ancestors, parents first; all of
 * it is planned, and refused, before anything is copied. */
static int plan_backups(struct copy_run *r, const struct catalog *cat, size_t first, const struct objlist *have,
                        struct plan *p, struct err *e)
{
    size_t i;

    if ((p->in = calloc(cat->n + 1, 1)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = first; i < cat->n; i++)
        if (cat->v[i].complete && !p->in[i] && plan_chain(r, cat, i, have, p, e) < 0)
            return -1;
    return 0;
}

/* One planned backup: skipped when R2 has it whole, else copied (its
 * manifest last, after the WAL it needs). */
static int copy_planned(struct copy_run *r, const struct cat_entry *ce, int ancestor, const struct objlist *have,
                        struct err *e)
{
    int got;

    r->res->nbackups++;
    if ((got = backup_present(r, ce, have, e)) < 0)
        return -1;
    if (got) {
        r->res->present++;
        return 0;
    }
    note(r->o->notes, LOG_INFO, "%s backup %s (%llu objects, %llu bytes)%s from %s to %s",
         r->dry_run ? "would copy" : "copying", ce->name, (unsigned long long)ce->objects,
         (unsigned long long)ce->bytes, ancestor ? ", a link of a selected incremental's chain," : "",
         r->src->name, r->dst->name);
    return copy_backup(r, ce->name, have, e);
}

static int copy_backups(struct copy_run *r, const struct catalog *cat, size_t first, const struct objlist *have,
                        struct err *e)
{
    struct plan p = { NULL, 0, 0, NULL };
    size_t j;
    int rc = -1;

    if (plan_backups(r, cat, first, have, &p, e) < 0)
        goto out;
    for (j = 0; j < p.n; j++) {
        const struct cat_entry *ce = &cat->v[p.v[j]];

        /* The earliest start segment of the selected backups bounds the
         * WAL: by position, not by name (a backup taken after a clock
         * went back sorts first by name, though it starts later). */
        if (p.v[j] >= first) {
            struct manifest *m = NULL;
            const char *f = r->res->floor_wal;

            if (cat_load_manifest(r->src, ce->name, &m, e) < 0)
                goto out;
            if (f[0] == '\0' ||
                (strlen(m->start_wal) == 24 && (strlen(f) != 24 || strcmp(m->start_wal + 8, f + 8) < 0)))
                strlcopy(r->res->floor_wal, m->start_wal, sizeof r->res->floor_wal);
            man_free(m);
        }
        /* a failure stops here: no child is made visible after its parent failed */
        if (copy_planned(r, ce, p.v[j] < first, have, e) < 0)
            goto out;
    }
    rc = 0;
out:
    free(p.v);
    free(p.in);
    return rc;
}

int copy_regions(struct repo *src, struct repo *dst, const struct copy_opts *o, struct copy_result *res,
                 struct err *e)
{
    struct copy_run run = { src, dst, o, o->dry_run, res, { NULL, 0, 0, 0 }, { NULL, 0, 0, 0 } };
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
        objlist_load(src, REPO_WAL_DIR, &run.wsrc, e) < 0 || objlist_load(dst, REPO_WAL_DIR, &run.wdst, e) < 0 ||
        copy_backups(&run, &cat, first, &have, e) < 0 ||
        copy_wal(&run, res->floor_wal[0] ? res->floor_wal : NULL, e) < 0)
        goto out;
    rc = 0;
out:
    objlist_free(&run.wsrc);
    objlist_free(&run.wdst);
    objlist_free(&have);
    cat_free(&cat);
    return rc;
}
