/*
 * verify_cross — the regions against each other: a WAL file (wal/) that
 * two regions both hold must decode to the same bytes.  Each region may be
 * whole on its own while one of them holds another copy under a name (a
 * cold clone of the cluster archiving with the same key, a hand-made
 * repair, two primaries): restore_command takes the first region's copy,
 * so which region a restore runs from would decide which history comes
 * back (adversarial pass N).
 *
 * A push encodes once for every region (and the spool, and copy copies
 * bytes), so copies of one push are byte-identical; a re-push encodes
 * again, to the same size for the same plaintext and settings.  So the
 * stored sizes are compared first and only copies whose sizes differ are
 * decoded; with --full, every name two regions share is (equal sizes prove
 * nothing with compression = none).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"
#include "sha256tee.h"
#include "stream.h"
#include "verify_int.h"

/* The plaintext SHA-256 of `key` in `rp`; a decode failure is a problem
 * (1), not an error. */
static int digest_of(struct repo *rp, const char *key, unsigned char md[SHA256_LEN], struct vfy_report *r,
                     struct err *e)
{
    struct sink *n = null_sink_new(), *b = NULL, *t = NULL;
    struct err de = ERR_INIT;
    int rc;

    if (n == NULL || (b = borrow_sink_new(n)) == NULL || sha256_tee_new(b, md, &t, e) < 0) {
        sink_free(b);
        sink_free(n);
        return e->code == ERR_OK ? err_setf(e, ERR_NOMEM, "out of memory") : -1;
    }
    rc = repo_get(rp, key, t, &de);
    sink_free(n);
    r->objects_decoded++;
    if (rc == 0)
        return 0;
    if (de.code == ERR_NOMEM)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (vfy_problem(r, key, "could not be compared across regions: region %s: %s", rp->name, de.msg) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 1;
}

static int compare_one(struct repo *a, struct repo *b, const char *key, struct vfy_report *r, struct err *e)
{
    unsigned char da[SHA256_LEN], db[SHA256_LEN];
    int k;

    if ((k = digest_of(a, key, da, r, e)) != 0 || (k = digest_of(b, key, db, r, e)) != 0)
        return k < 0 ? -1 : 0;
    r->files_checked++;
    if (memcmp(da, db, SHA256_LEN) == 0)
        return 0;
    if (vfy_problem(r, key, "regions %s and %s hold different copies (their decoded contents differ): a "
                    "substituted object, or two servers archiving under one name; restore_command takes the "
                    "first region's copy, so a restore would depend on the region it runs from",
                    a->name, b->name) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}

/* Both listings are sorted by key (stor_list's order). */
static int compare_pair(struct repo *a, const struct vfy_objs *la, struct repo *b, const struct vfy_objs *lb,
                        int full, struct vfy_report *r, struct err *e)
{
    size_t i = 0, k = 0;

    while (i < la->n && k < lb->n) {
        int c = strcmp(la->v[i].key, lb->v[k].key);

        if (c < 0) {
            i++;
        } else if (c > 0) {
            k++;
        } else {
            r->wal_segments++;      /* here: names the two hold in common */
            if ((full || la->v[i].size != lb->v[k].size) && compare_one(a, b, la->v[i].key, r, e) < 0)
                return -1;
            i++;
            k++;
        }
    }
    return 0;
}

int vfy_cross_regions(struct repo *const *rs, size_t n, int full, struct vfy_report *r, struct err *e)
{
    struct vfy_objs *ls = calloc(n ? n : 1, sizeof *ls);
    size_t i, k;
    int rc = -1;

    if (ls == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < n; i++)
        if (vfy_objs_list(rs[i]->st, REPO_WAL_DIR, &ls[i], e) < 0)
            goto out;
    for (i = 0; i < n; i++)
        for (k = i + 1; k < n; k++)
            if (compare_pair(rs[i], &ls[i], rs[k], &ls[k], full, r, e) < 0)
                goto out;
    rc = 0;
out:
    for (i = 0; i < n; i++)
        vfy_objs_free(&ls[i]);
    free(ls);
    return rc;
}
