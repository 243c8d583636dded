/*
 * bk_plan_test — the plan of a backup's parts (src/backup/bk_piece.c): a
 * full backup's file above the piece size (the part target rounded up to
 * a block) becomes pieces that cover it exactly, block-aligned, each of
 * more than one block, each in a part of its own; a file at most one
 * block above the piece size, and every file of an incremental, stays
 * whole; directories stay in the first part.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_int.h"
#include "blockmap.h"
#include "tap.h"

#define MB ((uint64_t)1 << 20)
#define BS 32768u

static void list_of(struct bk_list *l, const uint64_t *sizes, size_t n)
{
    size_t i;

    memset(l, 0, sizeof *l);
    l->items = calloc(n + 2, sizeof *l->items);
    l->items[0].path = "base";
    l->items[0].is_dir = 1;
    l->ndirs = 1;
    for (i = 0; i < n; i++) {
        l->items[i + 1].path = "base/f";
        l->items[i + 1].size = sizes[i];
        l->total_bytes += sizes[i];
    }
    l->n = n + 1;
}

/* Plan with part_size 2 MB; 0 when the plan holds together. */
static int plan(struct bk_job *j, struct bk_list *l, int incremental)
{
    struct err e = ERR_INIT;
    static struct bk_incr inc;

    memset(j, 0, sizeof *j);
    j->bs = BS;
    j->inc = incremental ? &inc : NULL;
    j->list = l;
    return bk_plan(j, l, 2 * MB, 2, &e);
}

/* The units of item `item`: count, and whether they cover it exactly in
 * order, block-aligned, each in a part of its own. */
static size_t pieces_of(const struct bk_job *j, size_t item, uint64_t size, int *good)
{
    size_t u, p, n = 0, last_part = SIZE_MAX;
    uint64_t at = 0;

    *good = 1;
    for (p = 0; p < j->nparts; p++)
        for (u = j->parts[p].first; u < j->parts[p].last; u++) {
            if (j->units[u].item != item)
                continue;
            if (j->units[u].off != at || j->units[u].off % BS != 0 || p == last_part ||
                (j->units[u].big >= 0 && j->units[u].len <= BS))
                *good = 0;
            at += j->units[u].len;
            last_part = p;
            n++;
        }
    if (at != size)
        *good = 0;
    return n;
}

int main(void)
{
    static const uint64_t sizes[] = { 100, 7 * MB + 5, 200, 4 * MB + 100, 2 * MB + 100, 2 * MB, 5 * MB, 300 };
    struct bk_job j;
    struct bk_list l;
    int good;
    size_t n, k;

    list_of(&l, sizes, sizeof sizes / sizeof *sizes);
    ok(plan(&j, &l, 0) == 0, "a full backup is planned");
    ok(j.piece_size == 2 * MB && j.nbigs == 3, "piece size 2 MB (the part target); three files above it");
    n = pieces_of(&j, 2, sizes[1], &good);
    ok(n == 4 && good && j.bigs[0].pieces[3].size == MB + 5, "7 MB + 5: four pieces, the last of 1 MB + 5");
    n = pieces_of(&j, 4, sizes[3], &good);
    ok(n == 2 && good && j.bigs[1].pieces[1].size == 2 * MB + 100,
       "4 MB + 100: two pieces, the remainder (one block or less) in the last");
    ok(pieces_of(&j, 5, sizes[4], &good) == 1 && good, "2 MB + 100 stays whole (one piece would be all of it)");
    ok(pieces_of(&j, 6, sizes[5], &good) == 1 && good, "2 MB stays whole");
    n = pieces_of(&j, 7, sizes[6], &good);
    ok(n == 3 && good, "5 MB: three pieces, each in a part of its own");
    ok(pieces_of(&j, 1, sizes[0], &good) == 1 && good && j.parts[0].first == 0, "directories and small files stay");
    for (k = 0, good = 1; k < j.nunits; k++)
        if (j.units[k].big >= 0 && (j.units[k].off != j.bigs[j.units[k].big].pieces[j.units[k].piece].offset ||
                                    j.units[k].len != j.bigs[j.units[k].big].pieces[j.units[k].piece].size))
            good = 0;
    ok(good, "each unit is the piece its file's plan says");
    bk_plan_free(&j);

    ok(plan(&j, &l, 1) == 0 && j.nbigs == 0 && j.nunits == l.n, "an incremental stores no pieces");
    ok(pieces_of(&j, 2, sizes[1], &good) == 1 && good, "its big file is one unit");
    bk_plan_free(&j);
    free(l.items);
    return done_testing();
}
