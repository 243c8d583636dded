/*
 * copy_wal — the WAL side of `walship copy` (docs/COPY.md): the WAL a
 * backup needs, copied before its manifest makes it visible, then every
 * wal/ object from the oldest selected backup's start on.  A WAL file R2
 * already has is never overwritten with other content that decodes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "copy_int.h"
#include "note.h"
#include "stor.h"
#include "util.h"

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

/* Before a backup's manifest makes it visible in R2, the WAL it cannot be
 * restored without: every wal/ object of R1 whose position lies between
 * its start and stop segments (on any timeline), and every .history file,
 * that R2 did not have.  So a copy interrupted at any point leaves no
 * visible backup that does not restore.  Marked done: copy_wal does not
 * count them again. */
/* A wal/ object backup `m` needs: a segment between its start and stop
 * (on any timeline), or a .history file.  Anything else is left to
 * copy_wal (and a name that is neither does not stop a backup's copy). */
static int needed_by(const struct manifest *m, const struct obj *o)
{
    const char *name = o->key + strlen(REPO_WAL_DIR);
    char lo[17], hi[17], pos[17];
    size_t n = strlen(name);

    if (!wal_position(m->start_wal, lo) || !wal_position(m->stop_wal, hi))
        return 0;               /* not a segment name: left to copy_wal */
    if (wal_position(name, pos))
        return strcmp(pos, lo) >= 0 && strcmp(pos, hi) <= 0;
    return n > 8 && strcmp(name + n - 8, ".history") == 0;
}

/* Just before backup `m`'s manifest: is every wal/ object it needs (that
 * R1 has) in R2?  A `delete` in R2 may have removed what was copied for
 * it: while the backup is not visible there, its WAL can lie before R2's
 * retention cut. */
int copy_backup_wal_check(struct copy_run *r, const struct manifest *m, struct err *e)
{
    size_t i;

    for (i = 0; i < r->wsrc.n && !r->dry_run; i++) {
        const struct obj *o = &r->wsrc.v[i];
        struct stor_stat st;
        struct err he = ERR_INIT;

        if (!needed_by(m, o) || stor_head(r->dst->st, o->key, &st, &he) == 0)
            continue;
        if (he.code != ERR_NOTFOUND) {
            *e = he;
            return -1;
        }
        return err_setf(e, ERR_CORRUPT, "region %s lacks %s, which backup %s needs (removed while it was copied: "
                        "a delete there?)", r->dst->name, o->key, m->name);
    }
    return 0;
}

int copy_backup_wal(struct copy_run *r, const struct manifest *m, struct err *e)
{
    size_t i;

    for (i = 0; i < r->wsrc.n; i++) {
        struct obj *o = &r->wsrc.v[i];

        if (o->done || objlist_find(&r->wdst, o->key) != NULL || !needed_by(m, o))
            continue;
        if (copy_object(r, o->key, o->size, 0, &r->res->wal, e) < 0) {
            if (e->code != ERR_EXISTS)
                return -1;
            err_clear(e);       /* made meanwhile (a wal-push): copy_wal compares it */
            continue;
        }
        o->done = 1;
    }
    return 0;
}

/* ---- WAL ---- */

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

int copy_wal(struct copy_run *r, const char *floor_wal, struct err *e)
{
    struct objlist src = { NULL, 0, 0, 0 }, dst = { NULL, 0, 0, 0 };
    char floor_pos[17] = "", pos[17];
    struct stor_stat st;
    uint64_t differ = 0, bad = 0;
    size_t i;
    int got, rc = -1;

    if (floor_wal != NULL && !wal_position(floor_wal, floor_pos))
        floor_pos[0] = '\0';
    if (objlist_load(r->src, REPO_WAL_DIR, &src, e) < 0 || objlist_load(r->dst, REPO_WAL_DIR, &dst, e) < 0)
        goto out;
    for (i = 0; i < src.n; i++) {
        const struct obj *o = &src.v[i], *there;
        const char *name = o->key + 4;

        if (floor_pos[0] != '\0' && wal_position(name, pos) && strcmp(pos, floor_pos) < 0)
            continue;
        if ((there = objlist_find(&r->wsrc, o->key)) != NULL && there->done)
            continue;           /* copied (and counted) with its backup */
        there = objlist_find(&dst, o->key);
        if (there == NULL) {
            if (copy_object(r, o->key, o->size, 0, &r->res->wal, e) == 0)
                continue;
            if (e->code == ERR_EXISTS) {
                /* made meanwhile (a wal-push racing the copy): compared below */
                err_clear(e);
                if (stor_head(r->dst->st, o->key, &st, e) < 0)
                    goto out;
            } else if (e->code == ERR_CORRUPT || e->code == ERR_FOREIGN || e->code == ERR_KEY) {
                /* R1's copy does not decode: not propagated; the rest goes on */
                note(r->o->notes, LOG_ERROR, "%s: not copied", e->msg);
                err_clear(e);
                bad++;
                continue;
            } else {
                goto out;
            }
        } else {
            st.size = there->size;
        }
        got = st.size == o->size ? 0 : wal_differs(r, o, e);
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
    }
    if (bad > 0) {
        err_setf(e, ERR_CORRUPT, "region %s holds %llu WAL files that do not decode here (damaged, another "
                 "cluster's, or under a key not configured: see above); not copied to region %s", r->src->name, (unsigned long long)bad, r->dst->name);
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
