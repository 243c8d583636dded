/*
 * verify_chain — whole chains of incremental backups (docs/VERIFY.md,
 * docs/BACKUP.md "Incremental backups"): every incremental is restorable
 * only with every link of its chain, so each is checked as restore would
 * load it, and a link found damaged makes every chain through it a
 * problem named after the chain's backup and the link.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bkf_chain.h"
#include "catalog.h"
#include "util.h"
#include "verify_int.h"

/* Blocks [b0, b1) of the target's file `tf` come from link d, whose own
 * entry for the file is `lf` (map parsed into `lm`, or whole when lf->map
 * is NULL): that entry must hold every one of them itself (depth 0), the
 * last with the same length.  0 yes, 1 no. */
static int link_holds(const struct man_file *tf, const struct man_file *lf, const struct bm_map *lm, uint32_t bs,
                      uint64_t b0, uint64_t b1)
{
    uint64_t first = 0;
    size_t j;

    if (b1 > bm_nblocks(lf->size, bs) || bm_block_len(lf->size, bs, b1 - 1) != bm_block_len(tf->size, bs, b1 - 1))
        return 1;
    if (lf->map == NULL)
        return 0;
    for (j = 0; j < lm->n && b0 < b1; j++) {
        uint64_t end = first + lm->runs[j].count;

        if (end > b0) {
            if (lm->runs[j].depth != 0)
                return 1;
            b0 = end;
        }
        first = end;
    }
    return b0 < b1;
}

/* Every block the target's map of file i assigns to an older link is held
 * by that link's own entry: why, when not. */
static int file_blocks(const struct bkf_chain *c, size_t i, char *why, size_t whysz, struct err *e)
{
    const struct man_file *tf = &c->links[0]->files[i];
    const struct bm_map *tm = &c->cf[i].map;
    uint64_t b = 0;
    size_t k;

    for (k = 0; k < tm->n; b += tm->runs[k].count, k++) {
        uint32_t d = tm->runs[k].depth;
        const struct man_file *lf;
        struct bm_map lm = { NULL, 0, 0 };
        struct err pe = ERR_INIT;
        int bad;

        if (d == 0)
            continue;
        lf = man_lookup(c->links[d], c->lidx[d], tf->path);
        if (lf == NULL || lf->part == 0) {
            snprintf(why, whysz, "file \"%s\": blocks %" PRIu64 "-%" PRIu64 " are in link %u (%s), which holds no "
                     "block of it", tf->path, b, b + tm->runs[k].count - 1, (unsigned)d, c->links[d]->name);
            return 1;
        }
        if (lf->map != NULL &&
            bm_map_parse(lf->map, bm_nblocks(lf->size, c->bs), c->links[d]->depth, &lm, &pe) < 0) {
            if (pe.code == ERR_NOMEM) {
                *e = pe;
                return -1;
            }
            snprintf(why, whysz, "file \"%s\": the block map of link %u (%s) does not parse: %s", tf->path,
                     (unsigned)d, c->links[d]->name, pe.msg);
            return 1;
        }
        bad = link_holds(tf, lf, &lm, c->bs, b, b + tm->runs[k].count);
        bm_map_free(&lm);
        if (bad) {
            snprintf(why, whysz, "file \"%s\": blocks %" PRIu64 "-%" PRIu64 " are in link %u (%s) by the map, "
                     "but that backup does not hold them itself", tf->path, b, b + tm->runs[k].count - 1,
                     (unsigned)d, c->links[d]->name);
            return 1;
        }
    }
    return 0;
}

/* Index of backup `name` in the catalog, or -1. */
static long cat_pos(const struct catalog *cat, const char *name)
{
    size_t i;

    for (i = 0; i < cat->n; i++)
        if (strcmp(cat->v[i].name, name) == 0)
            return (long)i;
    return -1;
}

int vfy_check_chain(struct repo *rp, const struct catalog *cat, const unsigned char *damaged,
                    const struct manifest *m, struct vfy_report *r, struct err *e)
{
    struct bkf_chain c;
    struct err le = ERR_INIT;
    char key[CAT_NAME_MAX + 32], why[1200] = "", full[CAT_NAME_MAX];
    uint32_t d;
    size_t i;
    int got = 0;

    repo_key_backup(key, sizeof key, m->name, CAT_MANIFEST);
    if (bkf_chain_load(rp, m, &c, &le) < 0) {
        if (le.code == ERR_NOMEM) {
            *e = le;
            return -1;
        }
        if (vfy_problem(r, key, "backup %s cannot be restored: %s", m->name, le.msg) < 0)
            return err_setf(e, ERR_NOMEM, "out of memory");
        return 0;
    }
    strlcopy(full, c.links[c.n - 1]->name, sizeof full);
    for (i = 0; i < m->nfiles && got == 0; i++)
        if (m->files[i].map != NULL)
            got = file_blocks(&c, i, why, sizeof why, e);
    for (d = 1; d < c.n && got == 0; d++) {
        long k = cat_pos(cat, c.links[d]->name);

        if (k >= 0 && damaged[k]) {
            snprintf(why, sizeof why, "link %u (%s) is damaged (see its own problems)", (unsigned)d,
                     c.links[d]->name);
            got = 1;
        }
    }
    bkf_chain_free(&c);
    if (got < 0)
        return -1;
    if (got > 0 && vfy_problem(r, key, "backup %s cannot be restored: its chain (%u backups, full backup %s) is "
                               "broken: %s", m->name, (unsigned)(m->depth + 1), full, why) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}
