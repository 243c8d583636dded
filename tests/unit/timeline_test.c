/*
 * timeline — the model of WAL continuity across timelines
 * (src/repo/timeline.c) on synthetic archives in memory: branching
 * histories, a switch point in the middle of a segment, gaps on the path
 * and on abandoned branches, missing and unusable history files,
 * timelines beyond the target, 1 MiB segments, retention's need; then PITR
 * planning (restore/pitr.c): which backup a target picks, and which gaps
 * count, against a file:// region.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "config.h"
#include "log.h"
#include "manifest.h"
#include "obj.h"
#include "pitr.h"
#include "repo.h"
#include "stor.h"
#include "tap.h"
#include "timeline.h"
#include "unit_fixture.h"
#include "wal.h"

#define MB16 ((uint64_t)16 << 20)

/* ---- building models ---- */

static void seg(struct tl_model *m, unsigned tli, uint64_t segno)
{
    char name[WAL_NAME_LEN + 1];

    wal_segment_name(tli, segno, m->seg_size, name);
    if (tl_model_add(m, name) != 1)
        diag("could not add %s", name);
}

static void segs(struct tl_model *m, unsigned tli, uint64_t from, uint64_t to)
{
    uint64_t s;

    for (s = from; s <= to; s++)
        seg(m, tli, s);
}

static void hist(struct tl_model *m, unsigned tli, const char *text)
{
    char name[24];
    struct err e = ERR_INIT;

    snprintf(name, sizeof name, "%08X.history", tli);
    tl_model_add(m, name);
    if (tl_model_set_history(m, tli, text, strlen(text), &e) < 0)
        diag("history %u: %s", tli, e.msg);
}

/* The reach from a backup at `start` on `tli` to `target`, as one line:
 * "ok LAST_TLI/LAST n", "gap TLI/FIRST-LAST", "nostart", "notdesc" or
 * "error: MSG". */
static const char *reach(const struct tl_model *m, uint32_t tli, uint64_t start, uint32_t target)
{
    static char buf[512];
    struct tl_reach r;
    struct err e = ERR_INIT;

    if (tl_reach(m, tli, start, target, &r, &e) < 0) {
        snprintf(buf, sizeof buf, "error: %s", e.msg);
        return buf;
    }
    switch (r.status) {
    case TL_REACH_OK:
        snprintf(buf, sizeof buf, "ok %u/%llu %lu", (unsigned)r.last_tli, (unsigned long long)r.last, r.nsegments);
        break;
    case TL_REACH_GAP:
        snprintf(buf, sizeof buf, "gap %u/%llu-%llu", (unsigned)r.gap.tli, (unsigned long long)r.gap.first,
                 (unsigned long long)r.gap.last);
        break;
    case TL_REACH_NO_START:
        snprintf(buf, sizeof buf, "nostart");
        break;
    case TL_REACH_NOT_DESCENDANT:
        snprintf(buf, sizeof buf, "notdesc");
        break;
    }
    tl_reach_free(&r);
    return buf;
}

static void history_parse_test(void)
{
    struct tl_hist_entry *h = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;
    const char *text = "# a comment\n\n1\t0/4800000\tno recovery target specified\r\n  2 0/9000000 after\n";

    ok(tl_parse_history(text, strlen(text), &h, &n, &e) == 0 && n == 2 && h[0].tli == 1 &&
           h[0].end_lsn == 0x4800000 && h[1].tli == 2 && h[1].end_lsn == 0x9000000,
       "history: comments, blank lines, CRLF and spaces");
    free(h);
    ok(tl_parse_history("", 0, &h, &n, &e) == 0 && n == 0 && h == NULL, "history: an empty file has no entries");
    ok(tl_parse_history("1\tnot-an-lsn\n", 13, &h, &n, &e) < 0 && h == NULL && n == 0, "history: a bad LSN is refused");
    ok(tl_parse_history("0\t0/1000000\n", 12, &h, &n, &e) < 0, "history: timeline 0 is refused");
}

/* Timeline 1 to segment 9; timeline 2 forks in the middle of segment 4
 * (0/4800000); timeline 3 forks from 2 at a segment boundary (0/7000000). */
static void branching_test(void)
{
    struct tl_model m;
    struct tl_step *p = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;
    uint64_t newest = 0;

    tl_model_init(&m, MB16);
    segs(&m, 1, 1, 9);
    hist(&m, 2, "1\t0/4800000\tx\n");
    segs(&m, 2, 4, 8);
    hist(&m, 3, "1\t0/4800000\tx\n2\t0/7000000\ty\n");
    segs(&m, 3, 7, 11);
    tl_model_finish(&m);

    is_int(tl_latest_probe(&m, 1), 3, "latest (as PostgreSQL probes) from timeline 1 is 3");
    is_int(tl_latest_descendant(&m, 1, 0x2000028), 3, "the newest descendant of a backup on 1 is 3");
    is_int(tl_latest_descendant(&m, 1, 0x5000028), 1, "a backup on 1 after both forks: only timeline 1 descends");
    is_int(tl_latest_descendant(&m, 2, 0x7800000), 2, "a backup on 2 after 3 forked: 2");
    ok(tl_path(&m, 3, &p, &n, &e) == 0 && n == 3 && p[0].tli == 1 && p[0].end == 0x4800000 && p[1].tli == 2 &&
           p[1].begin == 0x4800000 && p[1].end == 0x7000000 && p[2].tli == 3 && p[2].end == UINT64_MAX,
       "the path to 3: 1, 2, 3 with their switch points");
    is_int(tl_path_index(p, n, 2, 0), 1, "timeline 2 is the path's second step");
    is_int(tl_path_index(p, n, 2, 0x7000000), -1, "...but not after it ended");
    is_int(p[tl_path_owner(&m, p, n, 4)].tli, 2, "the mid-segment switch segment belongs to the child");
    is_int(p[tl_path_owner(&m, p, n, 7)].tli, 3, "a boundary switch: segment 7 is timeline 3's");
    is_int(p[tl_path_owner(&m, p, n, 6)].tli, 2, "segment 6 is still timeline 2's");
    ok(tl_path_newest(&m, p, n, &newest) && newest == 11, "the newest segment on the path: 3/11");
    is_str(reach(&m, 1, 0x2000028, 3), "ok 3/11 10", "from a backup on 1 to 3: no gap, 10 segments");
    free(p);

    ok(tl_path(&m, 2, &p, &n, &e) == 0 && tl_path_newest(&m, p, n, &newest) && newest == 8,
       "timelines beyond the target do not count: the newest to 2 is 2/8");
    free(p);
    is_str(reach(&m, 1, 0x2000028, 2), "ok 2/8 7", "...and its reach ends there");
    is_str(reach(&m, 1, 0x2000028, 1), "ok 1/9 8", "'current' on 1: to 1/9");
    is_str(reach(&m, 2, 0x5000028, 1), "notdesc", "timeline 1 does not descend from 2");
    is_str(reach(&m, 1, 0x5000028, 3), "notdesc", "a backup on 1 after 2 forked off it cannot reach 3");
    is_str(reach(&m, 2, 0x7800000, 3), "notdesc", "a backup on 2 after 3 forked off it cannot reach 3");
    is_str(reach(&m, 2, 0x6000028, 3), "ok 3/11 6", "...one before the fork can");
    tl_model_free(&m);
}

/* Two living branches: a timeline on the path that went on after its
 * switch point (src/repo/timeline_branch.c). */
static void left_branch_case(uint64_t parent_newest, const char *fork, uint64_t from_lsn, int want, const char *what)
{
    struct tl_model m;
    struct tl_step *p = NULL;
    struct tl_branch b;
    size_t n = 0;
    struct err e = ERR_INIT;
    char text[64];
    int got;

    tl_model_init(&m, MB16);
    segs(&m, 1, 1, parent_newest);
    snprintf(text, sizeof text, "1\t%s\tx\n", fork);
    hist(&m, 2, text);
    segs(&m, 2, 4, 8);
    tl_model_finish(&m);
    memset(&b, 0, sizeof b);
    got = tl_path(&m, 2, &p, &n, &e) == 0 ? tl_path_left_branch(&m, p, n, from_lsn, &b) : -1;
    ok(got == want && (!want || (b.parent == 1 && b.child == 2 && b.parent_newest == parent_newest)), "%s", what);
    if (got == 1 && parent_newest == 6 && tl_branch_refuse(&m, &b, 2, "region x", &e) < 0)
        ok(e.code == ERR_USAGE && strstr(e.msg, "at LSN 0/4800000 recovery to the latest timeline (2) goes on as "
                                          "timeline 2, but timeline 1 went on past that point too") &&
               strstr(e.msg, "up to 000000010000000000000006") && strstr(e.msg, "--target-timeline 1"),
           "... the refusal names the fork, the branch and the choice: %s", e.msg);
    free(p);
    tl_model_free(&m);
}

/* With the times the listing gives: timeline 1 went on to segment 6 after
 * a fork at 0/4800000; a backup on timeline 2 starts in segment 7 (so
 * timeline 1 ends below it).  Timeline 1's last segment stored after the
 * backup's first one: it went on after the backup began, two branches (a
 * production slower than a drill whose backup began ahead: adversarial
 * pass M); stored before: the old primary's last segments, one branch. */
static int left_branch_stored(int64_t parent_stored, int64_t start_stored, int64_t child_last)
{
    struct tl_model m;
    struct tl_step *p = NULL;
    struct tl_branch b;
    size_t n = 0;
    struct err e = ERR_INIT;
    char name[32];
    uint64_t s;
    int got;

    tl_model_init(&m, MB16);
    for (s = 1; s <= 6; s++) {
        wal_segment_name(1, s, MB16, name);
        tl_model_add_stored(&m, name, s == 6 ? parent_stored : 100);
    }
    hist(&m, 2, "1\t0/4800000\tx\n");
    for (s = 4; s <= 8; s++) {
        wal_segment_name(2, s, MB16, name);
        tl_model_add_stored(&m, name, s == 7 ? start_stored : s == 8 ? child_last : 100);
    }
    tl_model_finish(&m);
    memset(&b, 0, sizeof b);
    got = tl_path(&m, 2, &p, &n, &e) == 0 ? tl_path_left_branch(&m, p, n, 0x7000028, &b) : -1;
    free(p);
    tl_model_free(&m);
    return got == 1 ? (b.parent == 1 && b.child == 2 && b.parent_newest == 6) : got;
}

static void left_branch_test(void)
{
    ok(left_branch_stored(1000, 900, 950) == 1,
       "the parent's last segment, below the backup's start, stored after it and after timeline 2's last: two "
       "branches");
    ok(left_branch_stored(800, 900, 950) == 0, "... stored before it (an old primary's last segments): one branch");
    ok(left_branch_stored(1000, 900, 1100) == 0,
       "... stored before timeline 2's last segment (walship copy: the backup's WAL first, the rest by name): one "
       "branch");
    ok(left_branch_stored(1000, 0, 950) == 0,
       "... the backup's start segment's time unknown: by positions, one branch");
    left_branch_case(4, "0/4800000", 0x2000028, 0, "the parent's copy of the switch segment is normal: one branch");
    left_branch_case(3, "0/4800000", 0x2000028, 0, "a parent that ends before the switch segment: one branch");
    left_branch_case(6, "0/4800000", 0x2000028, 1, "a parent with segments after the switch segment: two branches");
    left_branch_case(4, "0/4000000", 0x2000028, 1, "a switch at a segment boundary: the parent's copy of it is after");
    left_branch_case(6, "0/4800000", 0x7000028, 0,
                     "the parent's WAL after the fork ends before the backup starts (a later backup on the new "
                     "timeline after a failover): one branch");
    left_branch_case(8, "0/4800000", 0x5000028, 1,
                     "a backup on the child after the fork while the parent goes on past its start: two branches");
    left_branch_case(6, "0/6000000", 0x6000000, 0, "a fork at the backup's start, the parent's last segment before it");
    left_branch_case(7, "0/6000000", 0x6000000, 1, "a fork at the backup's start, the parent went on: two branches");
    {
        /* a sibling: 'latest' (3) leaves timeline 1 at 0/4000000, timeline 2
         * forked later from 1 and kept writing */
        struct tl_model m;
        struct tl_step *p = NULL;
        struct tl_branch b;
        size_t n = 0;
        struct err e = ERR_INIT;
        int got;

        tl_model_init(&m, MB16);
        segs(&m, 1, 1, 3);
        hist(&m, 2, "1\t0/4800000\tx\n");
        segs(&m, 2, 4, 9);
        hist(&m, 3, "1\t0/4000000\tx\n");
        segs(&m, 3, 4, 5);
        tl_model_finish(&m);
        memset(&b, 0, sizeof b);
        got = tl_path(&m, 3, &p, &n, &e) == 0 ? tl_path_left_branch(&m, p, n, 0x2000028, &b) : -1;
        ok(got == 1 && b.parent == 2 && b.child == 3 && b.fork_lsn == 0x4000000 && b.parent_newest == 9,
           "a sibling forked off the path to latest that went on: two branches (%u from %u at %llx)", b.parent,
           b.child, (unsigned long long)b.fork_lsn);
        free(p);
        p = NULL;
        got = tl_path(&m, 2, &p, &n, &e) == 0 ? tl_path_left_branch(&m, p, n, 0x2000028, &b) : -1;
        ok(got == 1 && b.parent == 3, "... and seen from timeline 2, timeline 3 went on too");
        free(p);
        tl_model_free(&m);
    }
}

static void gap_test(void)
{
    struct tl_model m;
    struct tl_step *p = NULL;
    size_t n = 0;
    struct tl_gap g;
    struct err e = ERR_INIT;

    /* switch in the middle of segment 4: 2/4 not archived, 1/4 is */
    tl_model_init(&m, MB16);
    segs(&m, 1, 1, 4);
    hist(&m, 2, "1\t0/4800000\tx\n");
    segs(&m, 2, 5, 8);
    tl_model_finish(&m);
    tl_path(&m, 2, &p, &n, &e);
    is_int(tl_read_from(&m, p, n, 4, TL_AS_POSTGRES), 1, "PostgreSQL reads the switch segment from the parent");
    is_int(tl_read_from(&m, p, n, 4, TL_STRICT), 0, "...strictly it is missing from the child");
    ok(tl_first_gap(&m, p, n, 1, 8, TL_STRICT, &g) && g.tli == 2 && g.first == 4 && g.last == 4,
       "strict: the gap is 2/4");
    ok(!tl_first_gap(&m, p, n, 1, 8, TL_AS_POSTGRES, &g), "as PostgreSQL reads: no gap");
    free(p);
    tl_model_free(&m);

    /* a gap on the path, and one on an abandoned branch */
    tl_model_init(&m, MB16);
    segs(&m, 1, 1, 3);
    segs(&m, 1, 6, 9);          /* the old primary went on: 1/4 and 1/5 missing */
    hist(&m, 2, "1\t0/4000000\tx\n");
    segs(&m, 2, 4, 6);
    segs(&m, 2, 9, 10);         /* 2/7 and 2/8 missing */
    tl_model_finish(&m);
    is_str(reach(&m, 1, 0x2000028, 2), "gap 2/7-8",
           "a gap on the path: its first segment and its run (PostgreSQL does not go back to 1/7 once on 2)");
    is_str(reach(&m, 1, 0x2000028, 1), "gap 1/4-5", "on timeline 1 itself 1/4 and 1/5 are a gap");
    seg(&m, 2, 7);
    seg(&m, 2, 8);
    tl_model_finish(&m);
    is_str(reach(&m, 1, 0x2000028, 2), "ok 2/10 9",
           "the abandoned branch's gap (1/4, 1/5) is not a gap for timeline 2");
    is_str(reach(&m, 1, 0x6000028, 1), "ok 1/9 4", "...nor for a backup taken after it on 1");
    is_str(reach(&m, 2, 0xB000028, 2), "nostart", "a backup after the newest segment: nothing from its start");
    is_str(reach(&m, 1, 0xB000028, 2), "notdesc", "a backup on 1 after 2 forked off it: not on 2's path");
    tl_model_free(&m);

    /* a stray object billions of segments ahead (adversarial pass O: the
     * gap was walked one segment at a time, and verify and restore spun
     * for hours); 2/1-3 then a gap, 2/X at the very end */
    tl_model_init(&m, MB16);
    hist(&m, 2, "1\t0/800000\tx\n");
    segs(&m, 2, 0, 3);
    seg(&m, 2, UINT64_C(0xFFFFFFFF00));
    seg(&m, 2, UINT64_C(0xFFFFFFFF05));
    tl_model_finish(&m);
    tl_path(&m, 2, &p, &n, &e);
    ok(tl_first_gap(&m, p, n, 0, UINT64_C(0xFFFFFFFF05), TL_AS_POSTGRES, &g) && g.tli == 2 && g.first == 4 &&
           g.last == UINT64_C(0xFFFFFFFEFF),
       "a gap of a trillion segments: its run found by skipping to the next segment held");
    ok(tl_first_gap(&m, p, n, UINT64_C(0xFFFFFFFF00), UINT64_C(0xFFFFFFFF05), TL_STRICT, &g) &&
           g.first == UINT64_C(0xFFFFFFFF01) && g.last == UINT64_C(0xFFFFFFFF04),
       "...and a short gap after it, as before");
    free(p);
    tl_model_free(&m);
}

static void history_missing_test(void)
{
    struct tl_model m;
    struct tl_step *p = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;

    tl_model_init(&m, MB16);
    segs(&m, 1, 1, 5);
    segs(&m, 2, 4, 6);          /* timeline 2 without a history file */
    hist(&m, 3, "1\t0/4000000\tx\n2\t0/6000000\ty\n");
    tl_model_finish(&m);
    is_int(tl_latest_probe(&m, 1), 1, "probing stops where a history file is missing (2)");
    is_int(tl_latest_descendant(&m, 1, 0x1000028), 3, "the newest descendant is found through history 3");
    ok(tl_path(&m, 2, &p, &n, &e) < 0 && e.code == ERR_NOTFOUND &&
           strstr(e.msg, "history file of timeline 2 is not archived") != NULL,
       "a path to a timeline without history fails: %s", e.msg);
    is_str(reach(&m, 2, 0x4000028, 2), "ok 2/6 3", "...but a backup on that timeline reaches its own newest");
    ok(tl_orphan_above(&m, 1, 1) != NULL && tl_orphan_above(&m, 1, 1)->tli == 2,
       "latest (1) cannot see timeline 2's WAL: an orphan above it");
    ok(tl_orphan_above(&m, 1, 7) == NULL, "...not when its WAL all lies before the backup's start");
    ok(tl_orphan_above(&m, 2, 1) == NULL, "...nor above timeline 2 itself (3 has no WAL)");
    err_clear(&e);
    tl_model_history_failed(&m, 3, "does not decode");
    ok(tl_path(&m, 3, &p, &n, &e) < 0 && strstr(e.msg, "unusable: does not decode") != NULL,
       "an unusable history file fails the path through it: %s", e.msg);
    is_int(tl_latest_descendant(&m, 1, 0x1000028), 1, "...and gives no ancestry: only 1 descends from 1 now");
    tl_model_free(&m);
}

static void target_test(void)
{
    struct tl_model m;
    struct err e = ERR_INIT;

    tl_model_init(&m, MB16);
    segs(&m, 1, 1, 2);
    hist(&m, 2, "1\t0/2000000\tx\n");
    tl_model_finish(&m);
    is_int(tl_target(&m, 1, "latest", &e), 2, "target 'latest'");
    is_int(tl_target(&m, 1, "", &e), 2, "target '' is latest");
    is_int(tl_target(&m, 1, NULL, &e), 2, "no target is latest");
    is_int(tl_target(&m, 1, "current", &e), 1, "target 'current'");
    is_int(tl_target(&m, 1, "7", &e), 7, "an explicit timeline");
    ok(tl_target(&m, 1, "x", &e) == 0 && strstr(e.msg, "bad recovery target timeline") != NULL,
       "a bad timeline is refused");
    tl_model_free(&m);
}

/* 1 MiB segments: 4096 to a "log"; a switch mid-segment */
static void small_segment_test(void)
{
    struct tl_model m;
    struct tl_step *p = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;
    const struct tl_timeline *t;

    tl_model_init(&m, (uint64_t)1 << 20);
    ok(tl_model_add(&m, "000000010000000000000FFE") == 1 && tl_model_add(&m, "000000010000000000000FFF") == 1 &&
           tl_model_add(&m, "000000010000000100000000") == 1 && tl_model_add(&m, "000000010000000100000001") == 1,
       "1 MiB segment names across a log boundary");
    ok(tl_model_add(&m, "000000010000000100000001.partial") == 0 && tl_model_add(&m, "backup_label") == 0,
       "partials and other names are not segments");
    hist(&m, 2, "1\t1/180000\tx\n");      /* segment 4097, at half */
    seg(&m, 2, 4097);
    seg(&m, 2, 4098);
    tl_model_finish(&m);
    t = tl_find(&m, 1);
    ok(t != NULL && t->nsegs == 4 && t->oldest == 4094 && t->newest == 4097, "timeline 1 holds segments 4094..4097");
    is_str(reach(&m, 1, 0xFFE00028, 2), "ok 2/4098 5", "contiguous across the log boundary to 2/4098");
    tl_path(&m, 2, &p, &n, &e);
    is_int(p[tl_path_owner(&m, p, n, 4097)].tli, 2, "the switch segment (1 MiB) is the child's");
    is_int(p[tl_path_owner(&m, p, n, 4096)].tli, 1, "the one before is the parent's");
    free(p);
    tl_model_free(&m);
}

static void need_test(void)
{
    struct tl_need n;

    memset(&n, 0, sizeof n);
    tl_need_add(&n, "000000020000000000000030", MB16);
    tl_need_add(&n, "000000010000000000000040", MB16);
    ok(n.have && !n.unplaceable && n.tli == 1 && n.segno == 0x30 && strcmp(n.start_wal, "000000020000000000000030") == 0,
       "need: lowest timeline and lowest start segment, taken separately");
    ok(tl_need_expired(&n, "00000001000000000000002F"), "need: older on timeline 1 goes");
    ok(tl_need_expired(&n, "00000001000000000000002F.partial"), "need: a .partial too");
    ok(tl_need_expired(&n, "00000001000000000000002F.00000028.backup"), "need: a .backup too");
    ok(!tl_need_expired(&n, "000000010000000000000030"), "need: from the lowest start on, kept");
    ok(!tl_need_expired(&n, "00000002000000000000002F"), "need: a newer timeline than the lowest is kept");
    ok(!tl_need_expired(&n, "00000001.history"), "need: history files are kept");
    tl_need_add(&n, "000000010000000000000040", (uint64_t)1 << 20);
    ok(n.unplaceable && !tl_need_expired(&n, "00000001000000000000002F"),
       "need: a backup of another segment size: nothing goes");
    memset(&n, 0, sizeof n);
    tl_need_add(&n, "not-a-segment", MB16);
    ok(n.unplaceable && !tl_need_expired(&n, "000000010000000000000001"), "need: an unparsable start: nothing goes");
}

/* ---- PITR planning ---- */

static char root[] = "/tmp/walship-timeline-test-XXXXXX";
static struct repo *st;

static void rseg(unsigned tli, unsigned s)
{
    tf_put_wal(st, tli, 0, s);
}

static void rdrop(unsigned tli, unsigned s)
{
    char p[PATH_MAX];

    snprintf(p, sizeof p, "%s/region/wal/%08X%08X%08X", root, tli, 0u, s);
    unlink(p);
}

static int choose_test(void)
{
    struct manifest ms[3];
    struct catalog c;
    struct cat_entry ce[4];
    struct pitr_target t;
    struct err e = ERR_INIT;
    int i;

    memset(ms, 0, sizeof ms);
    memset(ce, 0, sizeof ce);
    for (i = 0; i < 3; i++) {
        ms[i].name = (char *)(i == 0 ? "b1" : i == 1 ? "b2" : "b3");
        ms[i].stop_time = 1000 * (i + 1);
        ms[i].stop_lsn = (uint64_t)0x1000000 * (i + 2);
        snprintf(ce[i].name, sizeof ce[i].name, "%s", ms[i].name);
        ce[i].complete = 1;
        ce[i].man = &ms[i];
    }
    snprintf(ce[3].name, sizeof ce[3].name, "b4");  /* in progress: no manifest */
    c.v = ce;
    c.n = 4;
    c.cap = 4;
    memset(&t, 0, sizeof t);
    t.kind = PITR_LATEST;
    is_int(pitr_choose(&c, &t, NULL, NULL, &e), 2, "latest: the newest complete backup");
    t.kind = PITR_TIME;
    t.time = 2500;
    is_int(pitr_choose(&c, &t, NULL, NULL, &e), 1, "a time: the newest backup that ended before it");
    t.time = 2000;
    is_int(pitr_choose(&c, &t, NULL, NULL, &e), 0,
           "...one whose stop second holds the target does not (it may end after it): the one before");
    t.time = 2001;
    is_int(pitr_choose(&c, &t, NULL, NULL, &e), 1, "...from the next second on it does");
    t.kind = PITR_LSN;
    t.lsn = 0x3800000;
    is_int(pitr_choose(&c, &t, NULL, NULL, &e), 1, "an LSN: the newest backup that ended before it");
    t.kind = PITR_TIME;
    t.time = 10;
    ok(pitr_choose(&c, &t, NULL, NULL, &e) < 0 && e.code == ERR_NOTFOUND && strstr(e.msg, "oldest reachable point") &&
           strstr(e.msg, "backup b1"),
       "before the oldest backup: refused, naming the oldest reachable point");
    err_clear(&e);
    t.time = 2500;
    ok(pitr_choose(&c, &t, "b3", NULL, &e) < 0 && strstr(e.msg, "ended after the target time") != NULL,
       "a named backup that ended after the target is refused");
    return 0;
}

static int no_tl;

static int check_wal(const struct manifest *m, const char *tl, char newest[32], unsigned long *n, struct err *e)
{
    struct pitr_wal w;
    int rc;

    err_clear(e);
    rc = pitr_check_wal(&st, 1, m, tl, &w, e);
    snprintf(newest, 32, "%s", w.newest);
    *n = w.nsegments;
    no_tl = w.no_timeline;
    return rc;
}

static void check_wal_test(void)
{
    struct manifest m;
    struct err e = ERR_INIT;
    char newest[32];
    unsigned long n = 0;
    unsigned s;

    memset(&m, 0, sizeof m);
    m.name = "b1";
    m.timeline = 1;
    m.start_lsn = 0x2000028;
    snprintf(m.start_wal, sizeof m.start_wal, "000000010000000000000002");
    m.wal_segment_size = MB16;

    ok(check_wal(&m, "latest", newest, &n, &e) < 0 && e.code == ERR_NOTFOUND &&
           strstr(e.msg, "WAL segment 000000010000000000000002, where backup b1 starts, is not archived") != NULL,
       "pitr: an empty archive: the start is not archived (%s)", e.msg);
    for (s = 1; s <= 6; s++)
        rseg(1, s);
    ok(check_wal(&m, "latest", newest, &n, &e) == 0 && strcmp(newest, "000000010000000000000006") == 0 && n == 5,
       "pitr: one timeline, newest 1/6, 5 segments from the start");
    rdrop(1, 4);
    ok(check_wal(&m, "latest", newest, &n, &e) < 0 && e.code == ERR_NOTFOUND &&
           strstr(e.msg, "WAL segment 000000010000000000000004 is missing (the archive has 000000010000000000000003 "
                         "and then 000000010000000000000005): recovery would stop there") != NULL,
       "pitr: a gap on the path counts, named with its neighbours: %s", e.msg);
    /* timeline 2 forks at 0/4000000; timeline 1's 1/4 is now on an abandoned branch */
    tf_put_text(st, "wal/00000002.history", "1\t0/4000000\tno recovery target specified\n");
    for (s = 4; s <= 7; s++)
        rseg(2, s);
    ok(check_wal(&m, "latest", newest, &n, &e) == 0 && strcmp(newest, "000000020000000000000007") == 0 && n == 6,
       "pitr: a gap on the abandoned branch does not count for latest: %s", e.msg);
    ok(check_wal(&m, "current", newest, &n, &e) < 0 && strstr(e.msg, "000000010000000000000004 is missing") != NULL,
       "pitr: ...but does for timeline 'current'");
    rdrop(2, 6);
    ok(check_wal(&m, "latest", newest, &n, &e) < 0 &&
           strstr(e.msg, "WAL segment 000000020000000000000006 is missing (the archive has 000000020000000000000005 "
                         "and then 000000020000000000000007)") != NULL,
       "pitr: a gap on the new timeline counts: %s", e.msg);
    rseg(2, 6);
    rdrop(1, 2);
    ok(check_wal(&m, "latest", newest, &n, &e) < 0 && strstr(e.msg, "where backup b1 starts, is not archived") != NULL,
       "pitr: the start segment missing: %s", e.msg);
    rseg(1, 2);
    ok(check_wal(&m, "3", newest, &n, &e) < 0 && e.code == ERR_NOTFOUND && no_tl &&
           strstr(e.msg, "timeline 3 does not exist: 00000003.history is not archived") != NULL,
       "pitr: a target timeline without history does not exist (restore refuses, exit 1): %s", e.msg);
    ok(check_wal(&m, "latest", newest, &n, &e) == 0 && !no_tl, "pitr: latest is never a timeline that does not exist");
    /* timeline 1 went on past 0/4000000 (1/5, 1/6): with the timeline not
     * given, two branches; a gap on the path does not hide them */
    ok(check_wal(&m, "", newest, &n, &e) < 0 && e.code == ERR_USAGE && strstr(e.msg, "two branches") != NULL,
       "pitr: the timeline not given and timeline 1 went on after the fork: refused: %s", e.msg);
    rdrop(2, 6);
    ok(check_wal(&m, "", newest, &n, &e) < 0 && e.code == ERR_USAGE,
       "pitr: ... also with a gap on the path (a gap is only a warning for a time target)");
    rseg(2, 6);
}

static int region_setup(struct config **conf)
{
    *conf = config_new_default();
    if (tf_region_open(root, *conf, &st) < 0)
        return -1;
    return 0;
}

/* --target-time as PostgreSQL reads it, or refused before anything is
 * fetched: a value PostgreSQL refuses used to be written, exit 0. */
static void parse_time_test(void)
{
    static const char *const bad[] = {
        "2026-12-06 23:-5:00", "2026-12-06 -1:00:00+00", "2026-02-30 10:00:00", "2026-11-31 10:00:00",
        "2025-02-29 00:00:00", "+026-12-06 10:00:00", "2026-12-06 10:00:00+-3", "26-12-06 10:00:00",
        "2026-12-06 10:00", "2026-12-06 10:00:00 Europe/Paris",
        /* forms PostgreSQL reads otherwise, or refuses */
        "2026-12-06 10:00:00+12345", "2026-12-06 10:00:00+001:30", "2026-12-06 10:00:00+1600",
        "2026-12-06 10:00:00+05:30:00", "2026-12-06 10:00:00+05:",
    };
    /* run-together offsets, as PostgreSQL's DecodeTimezone reads them:
     * three or four digits are [H]HMM (adversarial pass S: "-100" was
     * read as -10:00, PostgreSQL's -01:00) */
    static const struct { const char *s; int64_t off; } zones[] = {
        { "2026-12-06 22:41:30-100", -3600 }, { "2026-12-06 22:41:30+130", 5400 },
        { "2026-12-06 22:41:30+123", 4980 }, { "2026-12-06 22:41:30+0530", 19800 },
        { "2026-12-06 22:41:30-1230", -45000 }, { "2026-12-06 22:41:30+1", 3600 },
        { "2026-12-06 22:41:30+5:3", 18180 }, { "2026-12-06 22:41:30-12", -43200 },
    };
    int64_t t = 0;
    char v[64];
    struct err e = ERR_INIT;
    size_t i;

    ok(pitr_parse_time("2026-12-06 22:41:30", &t, v, sizeof v, &e) == 0 && t == 1796596890 &&
           strcmp(v, "2026-12-06 22:41:30+00") == 0, "a time without a zone is UTC, written with +00");
    ok(pitr_parse_time("2026-12-06T22:41:30.5+05:30", &t, v, sizeof v, &e) == 0 && t == 1796596890 - 19800,
       "ISO T, a fraction, an offset with minutes");
    ok(pitr_parse_time("2028-02-29 00:00:00-02", &t, v, sizeof v, &e) == 0, "a leap day");
    for (i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        err_clear(&e);
        ok(pitr_parse_time(zones[i].s, &t, v, sizeof v, &e) == 0 && t == 1796596890 - zones[i].off,
           "\"%s\" is UTC%+lld s, as PostgreSQL reads it (%s)", zones[i].s, (long long)-zones[i].off, e.msg);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        ok(pitr_parse_time(bad[i], &t, v, sizeof v, &e) < 0 && e.code == ERR_USAGE, "refused: \"%s\"", bad[i]);
    }
}

static void check_xid_name_test(void)
{
    static const char *const bad_xid[] = { "", "abc", "-5", "+5", " 5", "5 ", "0x10", "1", "2", "4294967296",
                                           "99999999999999999999999", "12a" };
    struct err e = ERR_INIT;
    char name[80];
    size_t i;

    ok(pitr_check_xid("748", &e) == 0, "xid 748");
    ok(pitr_check_xid("3", &e) == 0, "xid 3, the first normal one");
    ok(pitr_check_xid("4294967299", &e) == 0, "an xid8 with an epoch (its low 32 bits: 3)");
    ok(pitr_check_xid("0748", &e) < 0 && strstr(e.msg, "octal") != NULL,
       "xid 0748 refused: PostgreSQL reads a leading 0 as octal (010 would be 8)");
    for (i = 0; i < sizeof bad_xid / sizeof bad_xid[0]; i++) {
        err_clear(&e);
        ok(pitr_check_xid(bad_xid[i], &e) < 0 && e.code == ERR_USAGE, "xid refused: \"%s\" (%s)", bad_xid[i], e.msg);
    }
    memset(name, 'n', 63);
    name[63] = '\0';
    ok(pitr_check_name(name, &e) == 0, "a name of 63 bytes");
    ok(pitr_check_name("before_D", &e) == 0, "before_D");
    name[63] = 'n';
    name[64] = '\0';
    ok(pitr_check_name(name, &e) < 0 && e.code == ERR_USAGE, "a name of 64 bytes: refused (never reachable)");
    ok(pitr_check_name("", &e) < 0 && e.code == ERR_USAGE, "an empty name: refused (no target to PostgreSQL)");
}

/* Where a timeline begins: the only segment of it whose first page may be
 * an older timeline's (adversarial pass AE). */
static void begins_in_test(void)
{
    const char *h2 = "1\t0/5000100\tno recovery target specified\n";
    const char *h3 = "1\t0/5000100\tx\n\n2\t0/5000200\ty\n";
    uint64_t seg = 16u << 20;
    struct err e = ERR_INIT;

    ok(tl_history_begins_in(h2, strlen(h2), 5 * seg, seg, 1, &e) == 1, "TL2: segment 5 holds the switch, page TL1");
    ok(tl_history_begins_in(h2, strlen(h2), 4 * seg, seg, 1, &e) == 0, "TL2: segment 4 (before) does not");
    ok(tl_history_begins_in(h2, strlen(h2), 6 * seg, seg, 1, &e) == 0, "TL2: segment 6 (after) does not");
    ok(tl_history_begins_in(h3, strlen(h3), 5 * seg, seg, 1, &e) == 1,
       "TL3 switching in the same segment as TL2: its first page is TL1's");
    ok(tl_history_begins_in(h3, strlen(h3), 5 * seg, seg, 2, &e) == 0, "... not TL2's");
    ok(tl_history_begins_in("1\t0/5000000\tx\n", 14, 5 * seg, seg, 1, &e) == 0,
       "a switch at the segment's start: PostgreSQL starts a fresh one");
    ok(tl_history_begins_in("garbage\n", 8, 5 * seg, seg, 1, &e) < 0, "an unreadable history: -1");
}

int main(void)
{
    struct config *conf = NULL;

    log_init("timeline-test", LOG_ERROR);
    history_parse_test();
    branching_test();
    left_branch_test();
    gap_test();
    history_missing_test();
    target_test();
    small_segment_test();
    need_test();
    choose_test();
    parse_time_test();
    check_xid_name_test();
    begins_in_test();
    if (region_setup(&conf) < 0)
        return 1;
    check_wal_test();
    repo_free(st);
    config_free(conf);
    tf_rmrf(root);
    return done_testing();
}
