/*
 * bk_incr_parent — the parent of an incremental backup: chosen as the
 * newest complete backup every region holds alike, its chain checked in
 * each region with that region's own manifests, and checked again just
 * before the child's manifest is written (bk_incr.h).
 */
#include "bk_incr.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int complete_in(const struct catalog *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        if (c->v[i].complete && strcmp(c->v[i].name, name) == 0)
            return 1;
    return 0;
}

/* The newest name complete in every region's catalog, or -1. */
static int pick_common(struct catalog *cats, int ncat)
{
    size_t i;
    int k;

    for (i = cats[0].n; i > 0; i--) {
        if (!cats[0].v[i - 1].complete)
            continue;
        for (k = 1; k < ncat && complete_in(&cats[k], cats[0].v[i - 1].name); k++)
            ;
        if (k == ncat)
            return (int)(i - 1);
    }
    return -1;
}

static int load_hashes(struct bk_incr *inc, struct repo *r, char *why, size_t whylen, struct err *e)
{
    char key[REPO_KEY_MAX], hex[65], what[300];
    unsigned char *buf = NULL, d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    size_t len = 0;
    struct err le = ERR_INIT;
    int rc;

    if (repo_key_backup(key, sizeof key, inc->parent, "blockhash") < 0)
        return err_setf(e, ERR_INTERNAL, "key too long");
    if (repo_get_buf(r, key, (size_t)inc->pman->blockhash_size + 1, &buf, &len, &le) < 0) {
        if (le.code == ERR_NET || le.code == ERR_NOMEM) {
            *e = le;
            return err_prefix(e, "backup %s: could not read its block hashes", inc->parent);
        }
        snprintf(why, whylen, "the block hashes of backup %s cannot be read (%s)", inc->parent, le.msg);
        return 0;
    }
    if (EVP_Digest(buf, len, d, &dn, EVP_sha256(), NULL) == 1)
        hex_encode(d, 32, hex);
    hex[64] = '\0';
    if (len != inc->pman->blockhash_size || strcmp(hex, inc->pman->blockhash_sha256) != 0) {
        free(buf);
        snprintf(why, whylen, "the block hashes of backup %s do not match its manifest (damaged)", inc->parent);
        return 0;
    }
    snprintf(what, sizeof what, "backup %s: blockhash", inc->parent);
    rc = bh_set_decode(buf, len, what, &inc->phash, &le);
    free(buf);
    if (rc < 0) {
        snprintf(why, whylen, "%s", le.msg);
        return 0;
    }
    if (inc->phash.block_size != inc->pman->block_size) {
        snprintf(why, whylen, "the block hashes of backup %s have another block size than its manifest", inc->parent);
        return 0;
    }
    return 1;
}

/* Is the parent's chain whole in region r: every part of every backup
 * from the parent down to its full backup listed at its size, and every
 * link's manifest there the very one its child was taken against?  1 (why
 * set: a full backup instead), 0, or -1 (e: the region could not be
 * asked).  An incremental over a chain that lost a part could never be
 * restored, and the next one would build on it again (adversarial pass,
 * incr_parent.sh); the listing is what plain verify compares too.  Each
 * region is walked with its own manifests, as restore and verify load
 * them there: a link whose manifest one region lost, or holds damaged or
 * replaced, breaks the chain in that region only, and the lead region's
 * copy says nothing about it (adversarial pass C). */
static int chain_damaged_in(const struct bk_incr *inc, struct repo *r, char *why, size_t whylen, struct err *e)
{
    const struct manifest *cur = inc->pman;
    struct manifest *m = NULL;
    int rc = 0;

    for (;;) {
        struct manifest *up = NULL;
        char sha[65];

        if (cat_parts_present(r, cur->name, cur, e) < 0) {
            if (e->code != ERR_CORRUPT) {
                rc = -1;
                break;
            }
            snprintf(why, whylen, "the chain of backup %s is damaged: %s (see `walship verify`)", inc->parent,
                     e->msg);
            err_clear(e);
            rc = 1;
            break;
        }
        if (!cur->incremental)
            break;
        if (cat_load_manifest_sha(r, cur->parent, &up, sha, e) < 0) {
            if (e->code == ERR_NET || e->code == ERR_NOMEM) {
                rc = -1;
                break;
            }
            snprintf(why, whylen, "the chain of backup %s cannot be read in region %s (%s) (see `walship verify`)",
                     inc->parent, r->name, e->msg);
            err_clear(e);
            rc = 1;
            break;
        }
        if (strcmp(sha, cur->parent_sha256) != 0) {
            snprintf(why, whylen, "the chain of backup %s is damaged: region %s: the manifest of backup %s is not the "
                     "one backup %s was taken against (see `walship verify`)", inc->parent, r->name, cur->parent,
                     cur->name);
            man_free(up);
            rc = 1;
            break;
        }
        man_free(m);
        cur = m = up;
    }
    man_free(m);
    return rc;
}

int bk_incr_recheck(const struct bk_incr *inc, struct repo *r, char *why, size_t whylen, struct err *e)
{
    struct manifest *m = NULL;
    char sha[65];

    if (!inc->have_parent)
        return 0;
    if (cat_load_manifest_sha(r, inc->parent, &m, sha, e) < 0) {
        if (e->code == ERR_NET || e->code == ERR_NOMEM)
            return -1;
        snprintf(why, whylen, "its parent, backup %s, cannot be read in region %s any more (%s)", inc->parent,
                 r->name, e->msg);
        err_clear(e);
        return 1;
    }
    man_free(m);
    if (strcmp(sha, inc->parent_sha) != 0) {
        snprintf(why, whylen, "the manifest of its parent, backup %s, is not the one it was taken against any more in "
                 "region %s", inc->parent, r->name);
        return 1;
    }
    return chain_damaged_in(inc, r, why, whylen, e);
}

int bk_incr_confirm(const struct bk_incr *inc, struct repo *r, const char *name, char *why, size_t whylen,
                    struct err *e)
{
    struct manifest *m = NULL;
    char sha[65], key[REPO_KEY_MAX];
    int gone;

    if (!inc->have_parent)
        return 0;
    if (cat_load_manifest_sha(r, inc->parent, &m, sha, e) < 0) {
        if (e->code == ERR_NET || e->code == ERR_NOMEM)
            return -1;
        snprintf(why, whylen, "its parent, backup %s, went from region %s as its manifest was written (%s)",
                 inc->parent, r->name, e->msg);
        err_clear(e);
        gone = 1;
    } else {
        man_free(m);
        gone = strcmp(sha, inc->parent_sha) != 0;
        if (gone)
            snprintf(why, whylen, "the manifest of its parent, backup %s, in region %s was replaced as its manifest "
                     "was written", inc->parent, r->name);
    }
    if (!gone)
        return 0;
    if (repo_key_backup(key, sizeof key, name, CAT_MANIFEST) < 0)
        return err_setf(e, ERR_INTERNAL, "backup name too long: %s", name);
    if (stor_remove(r->st, key, e) < 0)
        return err_prefix(e, "backup %s cannot be restored from region %s (%s), and its manifest could not be "
                          "removed there", name, r->name, why);
    return 1;
}

/* The chain of the parent, in every region the backup is written to. */
static int chain_damaged(const struct bk_incr *inc, struct repo *const *rp, int n, char *why, size_t whylen,
                         struct err *e)
{
    int r, rc = 0;

    for (r = 0; r < n && rc == 0; r++)
        if (rp[r] != NULL)
            rc = chain_damaged_in(inc, rp[r], why, whylen, e);
    return rc;
}

/* Does the policy want a new full backup rather than a child of inc->pman?
 * 1 (why set), 0, or -1 (e: the chain could not be read). */
static int policy_wants_full(const struct bk_incr *inc, struct repo *r, const struct bk_incr_policy *pol, char *why,
                             size_t whylen, struct err *e)
{
    struct manifest *m = NULL;
    const struct manifest *cur = inc->pman;
    int rc = 0;

    if (pol->max_chain > 0 && inc->pman->depth + 1 > (uint32_t)pol->max_chain) {
        snprintf(why, whylen, "it would be incremental number %u on top of a full backup (max_chain = %d)",
                 (unsigned)inc->pman->depth + 1, pol->max_chain);
        return 1;
    }
    if (pol->full_every == 0)
        return 0;
    /* the chain's full backup: its start time */
    while (cur->incremental) {
        struct manifest *up = NULL;

        if (cat_load_manifest(r, cur->parent, &up, e) < 0) {
            man_free(m);
            if (e->code == ERR_NET || e->code == ERR_NOMEM)
                return -1;
            snprintf(why, whylen, "the chain of backup %s cannot be read (%s)", inc->parent, e->msg);
            err_clear(e);
            return 1;
        }
        man_free(m);
        cur = m = up;
    }
    if (pol->now - cur->start_time >= (int64_t)pol->full_every) {
        snprintf(why, whylen, "the chain's full backup %s started more than full_every (%llu s) ago", cur->name,
                 (unsigned long long)pol->full_every);
        rc = 1;
    }
    man_free(m);
    return rc;
}

int bk_incr_choose(struct bk_incr *inc, struct repo *const *rp, int n, const struct bk_incr_policy *pol, char *why,
                   size_t whylen, struct err *e)
{
    struct catalog cats[16];
    int ncat = 0, r, first = -1, idx, rc = -1;

    memset(inc, 0, sizeof *inc);
    why[0] = '\0';
    for (r = 0; r < n && ncat < 16; r++) {
        if (rp[r] == NULL)
            continue;
        if (cat_list(rp[r], 0, &cats[ncat], e) < 0) {
            err_prefix(e, "region %s: could not list its backups to find the parent", rp[r]->name);
            goto out;
        }
        if (first < 0)
            first = r;
        ncat++;
    }
    if (ncat == 0 || (idx = pick_common(cats, ncat)) < 0) {
        snprintf(why, whylen, "no complete backup is present in every region");
        rc = 0;
        goto out;
    }
    snprintf(inc->parent, sizeof inc->parent, "%s", cats[0].v[idx].name);
    for (r = 0; r < n; r++) {
        struct manifest *m = NULL;
        char sha[65];

        if (rp[r] == NULL)
            continue;
        if (cat_load_manifest_sha(rp[r], inc->parent, &m, sha, e) < 0) {
            if (e->code == ERR_NET || e->code == ERR_NOMEM)
                goto out;
            snprintf(why, whylen, "%s", e->msg);
            err_clear(e);
            rc = 0;
            goto out;
        }
        if (inc->pman == NULL) {
            inc->pman = m;
            memcpy(inc->parent_sha, sha, sizeof sha);
        } else {
            int same = strcmp(sha, inc->parent_sha) == 0;

            man_free(m);
            if (!same) {
                snprintf(why, whylen, "backup %s has different manifests in regions %s and %s", inc->parent,
                         rp[first]->name, rp[r]->name);
                rc = 0;
                goto out;
            }
        }
    }
    if (inc->pman->block_size == 0) {
        snprintf(why, whylen, "backup %s has no block hashes (it was taken by an older walship)", inc->parent);
        rc = 0;
        goto out;
    }
    if (inc->pman->depth + 1 > BM_MAX_DEPTH) {
        snprintf(why, whylen, "the chain of backup %s is %u backups long already", inc->parent,
                 (unsigned)inc->pman->depth + 1);
        rc = 0;
        goto out;
    }
    if ((rc = chain_damaged(inc, rp, n, why, whylen, e)) != 0 ||
        (rc = policy_wants_full(inc, rp[first], pol, why, whylen, e)) != 0) {
        rc = rc > 0 ? 0 : -1;
        goto out;
    }
    rc = -1;
    inc->block_size = inc->pman->block_size;
    inc->parent_depth = inc->pman->depth;
    inc->pidx = man_index(inc->pman);
    if (inc->pidx == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = load_hashes(inc, rp[first], why, whylen, e);
    if (rc == 1)
        inc->have_parent = 1;
out:
    for (r = 0; r < ncat; r++)
        cat_free(&cats[r]);
    if (rc != 1) {
        struct err keep = *e;

        bk_incr_free(inc);
        *e = keep;
    }
    return rc;
}

void bk_incr_free(struct bk_incr *inc)
{
    man_free(inc->pman);
    free(inc->pidx);
    bh_set_free(&inc->phash);
    memset(inc, 0, sizeof *inc);
}
