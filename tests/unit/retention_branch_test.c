/*
 * retention_branch_test — retention and two living branches, on synthetic
 * catalogs and timeline models: a drill that promoted and took a backup
 * into production's region while production kept writing (production's
 * only backup stays), the drill's branch still archiving later (its backup
 * stays) or ended (it goes), an old primary's last segments after a
 * failover (nothing extra kept), a living timeline whose history cannot be
 * read (nothing planned), and one whose history is not archived.  And a
 * backup whose own WAL is not in the region (an async region behind, a
 * folder from another repository): it takes no retain_full place.
 */
#include <stdlib.h>
#include <string.h>

#include "ret_fixture.h"
#include "retention.h"
#include "tap.h"
#include "timeline.h"
#include "wal.h"

#define NOW ((time_t)1800000000)
#define SEG (16u << 20)

/* A complete full backup, `hours` old, starting at segment `segno` of
 * timeline `tli`. */
static void backup(struct catalog *c, const char *name, int hours, uint32_t tli, uint64_t segno)
{
    rf_add_full(c, name, NOW - hours * 3600, tli, segno);
}

/* Segments first..last of timeline tli. */
static void segs(struct tl_model *m, uint32_t tli, uint64_t first, uint64_t last)
{
    char name[WAL_NAME_MAX];

    for (; first <= last; first++) {
        wal_segment_name(tli, first, SEG, name);
        tl_model_add(m, name);
    }
}

/* Timeline tli forked off its parent (tli - 1) at segment `at`. */
static void fork_at(struct tl_model *m, uint32_t tli, uint64_t at)
{
    char text[128], name[32];
    struct err e = ERR_INIT;
    uint64_t lsn = at * SEG + 0x100;

    snprintf(text, sizeof text, "%u\t%X/%X\tno recovery target specified\n", (unsigned)(tli - 1),
             (unsigned)(lsn >> 32), (unsigned)lsn);
    snprintf(name, sizeof name, "%08X.history", (unsigned)tli);
    tl_model_add(m, name);
    tl_model_set_history(m, tli, text, strlen(text), &e);
}

#define gone rf_gone

static int plan(const struct catalog *c, int full, const struct tl_model *m, struct ret_plan *out, struct err *e)
{
    struct ret_policy p;

    memset(&p, 0, sizeof p);
    p.retain_full = full;
    p.garbage_hours = 24;
    p.now = NOW;
    memset(out, 0, sizeof *out);
    return ret_plan_backups(c, &p, m, out, e);
}

static int expired(const struct ret_plan *p, uint32_t tli, uint64_t segno)
{
    char name[WAL_NAME_MAX];

    wal_segment_name(tli, segno, SEG, name);
    return ret_wal_expired(p, name);
}

/* Production on timeline 1 (A1 at 10, A2 at 20) kept writing to 60; a
 * drill forked at 35 onto timeline 2 and took A3 at 40. */
static void test_drill(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct tl_model m;
    struct ret_plan p;
    struct err e = ERR_INIT;

    backup(&c, "A1", 50, 1, 10);
    backup(&c, "A2", 40, 1, 20);
    backup(&c, "A3", 30, 2, 40);
    tl_model_init(&m, SEG);
    segs(&m, 1, 10, 60);
    fork_at(&m, 2, 35);
    segs(&m, 2, 35, 45);
    tl_model_finish(&m);

    ok(plan(&c, 1, NULL, &p, &e) == 0, "drill, without the model: plans");
    is_str(gone(&p), "A1,A2", "drill, without the model: production's only backup would go (the old rule)");
    ret_plan_free(&p);

    ok(plan(&c, 1, &m, &p, &e) == 0, "drill: plans (%s)", e.msg);
    is_str(gone(&p), "A1", "drill: A2, the only way to production's timeline 1, stays");
    ok(p.nbranch == 1 && strcmp(p.branch[0].name, "A2") == 0 && p.branch[0].tli == 1 &&
           strcmp(p.branch[0].newest_wal, "00000001000000000000003C") == 0,
       "drill: recorded as kept for timeline 1 up to its newest segment");
    ok(p.kept == 2 && p.have_cut && p.cut_tli == 1 && p.cut_segno == 20, "drill: WAL kept from A2's start");
    ok(expired(&p, 1, 19) && !expired(&p, 1, 20) && !expired(&p, 1, 60) && !expired(&p, 2, 40),
       "drill: timeline 1 from 20 and the drill's WAL stay");
    ret_plan_free(&p);

    /* a newer incremental on timeline 1 whose parent is gone cannot be
     * restored: A2 is still the one kept */
    {
        struct manifest *bi = rf_add_full(&c, "A2i", NOW - 35 * 3600, 1, 25);
        struct cat_entry t = c.v[3];

        c.v[3] = c.v[2];    /* oldest first: A1, A2, A2i, A3 */
        c.v[2] = t;
        bi->incremental = 1;
        bi->parent = strdup("A0-gone");
        ok(plan(&c, 1, &m, &p, &e) == 0 && p.nbranch == 1 && strcmp(p.branch[0].name, "A2") == 0,
           "drill: an incremental with a broken chain is passed over for A2");
        ret_plan_free(&p);
        free(bi->parent);
        bi->parent = strdup("A2");
        ok(plan(&c, 1, &m, &p, &e) == 0 && p.nbranch == 1 && strcmp(p.branch[0].name, "A2i") == 0 &&
               strcmp(gone(&p), "A1") == 0,
           "drill: a restorable incremental is kept with its parent");
        ret_plan_free(&p);
        man_free(c.v[2].man);
        c.v[2] = c.v[3];
        c.n--;
    }

    /* retain_full 2 keeps A2 by the rules: nothing to record */
    ok(plan(&c, 2, &m, &p, &e) == 0 && strcmp(gone(&p), "A1") == 0 && p.nbranch == 0,
       "drill, retain_full 2: the rules keep A2, nothing recorded");
    ret_plan_free(&p);

    /* production takes A4 at 55; the drill stopped at 45: its branch ended */
    backup(&c, "A4", 10, 1, 55);
    ok(plan(&c, 1, &m, &p, &e) == 0, "drill ended: plans");
    is_str(gone(&p), "A1,A2,A3", "drill ended before A4 began: the policy applies to every backup");
    ok(p.nbranch == 0, "drill ended: nothing kept for a branch");
    ret_plan_free(&p);

    /* ... but the drill is still archiving past A4's start: its A3 stays */
    segs(&m, 2, 46, 70);
    tl_model_finish(&m);
    ok(plan(&c, 1, &m, &p, &e) == 0, "drill living: plans");
    is_str(gone(&p), "A1,A2", "drill still archiving: A3, the only way to timeline 2, stays");
    ok(p.nbranch == 1 && strcmp(p.branch[0].name, "A3") == 0 && p.branch[0].tli == 2,
       "drill living: recorded for timeline 2");
    ret_plan_free(&p);
    tl_model_free(&m);
    cat_free(&c);
}

/* Failover at 30 onto timeline 2; the old primary archived 30 and 31 on
 * timeline 1 before it was stopped; backups on timeline 2 since. */
static void test_failover(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct tl_model m;
    struct ret_plan p;
    struct err e = ERR_INIT;

    backup(&c, "F1", 50, 1, 10);
    backup(&c, "F2", 40, 1, 20);
    backup(&c, "F3", 10, 2, 50);
    tl_model_init(&m, SEG);
    segs(&m, 1, 10, 31);
    fork_at(&m, 2, 30);
    segs(&m, 2, 30, 80);
    tl_model_finish(&m);
    ok(plan(&c, 1, &m, &p, &e) == 0, "failover: plans");
    is_str(gone(&p), "F1,F2", "failover: the old primary's last segments keep no backup");
    ok(p.nbranch == 0 && p.cut_tli == 2 && p.cut_segno == 50, "failover: cut at F3, nothing recorded");
    ret_plan_free(&p);

    /* the new primary's first backup began at 31, before the old primary's last segment 32 */
    segs(&m, 1, 32, 32);
    tl_model_finish(&m);
    c.v[2].man->start_lsn = 31ull * SEG + 0x28;
    wal_segment_name(2, 31, SEG, c.v[2].man->start_wal);
    ok(plan(&c, 1, &m, &p, &e) == 0 && strcmp(gone(&p), "F1") == 0 && p.nbranch == 1,
       "failover, old primary archiving after the new backup began: F2 kept (%s)", gone(&p));
    ret_plan_free(&p);
    tl_model_free(&m);
    cat_free(&c);
}

/* A living timeline whose history cannot be read: nothing is planned.
 * One whose history is not archived: no restore reaches it, rules apply. */
static void test_history(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct tl_model m;
    struct ret_plan p;
    struct err e = ERR_INIT;

    backup(&c, "H1", 50, 1, 10);
    backup(&c, "H2", 30, 2, 40);
    tl_model_init(&m, SEG);
    segs(&m, 1, 10, 60);
    tl_model_add(&m, "00000002.history");
    tl_model_history_failed(&m, 2, "authentication failed");
    segs(&m, 2, 35, 45);
    tl_model_add(&m, "00000003.history");
    tl_model_history_failed(&m, 3, "authentication failed");
    segs(&m, 3, 41, 50);
    tl_model_finish(&m);
    ok(plan(&c, 1, &m, &p, &e) < 0 && strstr(e.msg, "timeline 3") != NULL && p.nbackups == 0,
       "unreadable history of a living timeline no kept backup is on: nothing planned (%s)", e.msg);
    ret_plan_free(&p);
    tl_model_free(&m);

    tl_model_init(&m, SEG);
    segs(&m, 1, 10, 60);
    segs(&m, 2, 35, 45);
    segs(&m, 3, 41, 50);
    tl_model_finish(&m);
    e = (struct err)ERR_INIT;
    ok(plan(&c, 1, &m, &p, &e) == 0, "no history archived: plans (%s)", e.msg);
    is_str(gone(&p), "", "timeline 1 went on: H1 stays as its only way");
    ok(p.nbranch == 1 && p.branch[0].tli == 1, "recorded for timeline 1; timelines without history skipped");
    ret_plan_free(&p);
    tl_model_free(&m);
    cat_free(&c);
}

/* An async region behind (adversarial pass N): backup-push has just taken
 * L2, whose start and stop segments (20, 21) are still in the spool; the
 * region holds L1 and the WAL from 10 to 18.  With retain_full = 1 the
 * retention after backup-push deleted L1 and the WAL from its start: the
 * region could restore nothing until the shipper caught up, and nothing
 * at all if the primary's site was lost first. */
static void test_late(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct tl_model m;
    struct ret_policy pol;
    struct ret_plan p;
    struct err e = ERR_INIT;

    backup(&c, "L1", 50, 1, 10);
    backup(&c, "L2", 1, 1, 20);
    tl_model_init(&m, SEG);
    segs(&m, 1, 10, 18);
    tl_model_finish(&m);
    memset(&pol, 0, sizeof pol);
    pol.retain_full = 1;
    pol.garbage_hours = 24;
    pol.now = NOW;
    pol.protect = "L2";

    ok(ret_plan_backups(&c, &pol, NULL, &p, &e) == 0 && strcmp(gone(&p), "L1") == 0,
       "late, without the model: the rules alone delete L1");
    ret_plan_free(&p);
    ok(ret_plan_backups(&c, &pol, &m, &p, &e) == 0, "late: plans (%s)", e.msg);
    is_str(gone(&p), "", "late: L2's WAL is not in the region: L1, the one that restores today, stays");
    ok(p.kept == 2 && !expired(&p, 1, 10) && !expired(&p, 1, 18), "late: both kept, and the WAL from L1's start");
    ret_plan_free(&p);

    pol.protect = NULL;     /* a later walship delete, still before the shipper caught up */
    ok(ret_plan_backups(&c, &pol, &m, &p, &e) == 0 && strcmp(gone(&p), "") == 0,
       "late, walship delete: nothing goes; L2, in flight, stays too");
    ret_plan_free(&p);

    segs(&m, 1, 19, 21);    /* the shipper caught up */
    tl_model_finish(&m);
    ok(ret_plan_backups(&c, &pol, &m, &p, &e) == 0 && strcmp(gone(&p), "L1") == 0 && expired(&p, 1, 19) &&
           !expired(&p, 1, 20),
       "late, caught up: the rules apply (L1 goes, WAL from L2's start stays)");
    ret_plan_free(&p);

    /* an older backup whose WAL is gone for good: no rank, the rules delete it */
    tl_model_free(&m);
    tl_model_init(&m, SEG);
    segs(&m, 1, 20, 30);
    tl_model_finish(&m);
    ok(ret_plan_backups(&c, &pol, &m, &p, &e) == 0 && strcmp(gone(&p), "L1") == 0,
       "late and older than a backup that restores: deleted by the rules");
    ret_plan_free(&p);
    tl_model_free(&m);
    cat_free(&c);
}

/* The timeline's segments were stored, the newest `hours` ago (what
 * tl_model_load_stored() reads from the listing). */
static void stored(struct tl_model *m, uint32_t tli, double hours)
{
    const struct tl_timeline *t = tl_find(m, tli);

    ((struct tl_timeline *)t)->newest_time = (int64_t)(NOW - hours * 3600);
}

/* Production on timeline 1 (A1 at 10, A2 at 20) forked at 35 by a drill
 * that wrote more WAL than production did since: timeline 2 to 100, its
 * backup A3 at 90, while production went on only to 50, but went on
 * after A3 began.  By positions alone timeline 1 (50 < 90) had stopped
 * before A3, and its only backup and its WAL went (adversarial pass M).
 * Its segments' times tell: living unless silent RET_BRANCH_QUIET before
 * A3 began. */
static void test_busy_drill(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct tl_model m;
    struct ret_plan p;
    struct err e = ERR_INIT;

    backup(&c, "A1", 50, 1, 10);
    backup(&c, "A2", 40, 1, 20);
    backup(&c, "A3", 30, 2, 90);      /* began 30 h 1 min ago */
    tl_model_init(&m, SEG);
    segs(&m, 1, 10, 50);
    fork_at(&m, 2, 35);
    segs(&m, 2, 35, 100);
    tl_model_finish(&m);
    stored(&m, 1, 1);                 /* production: an hour ago */
    stored(&m, 2, 0.5);

    ok(plan(&c, 1, &m, &p, &e) == 0, "busy drill: plans (%s)", e.msg);
    is_str(gone(&p), "A1", "busy drill: A2, the only way to production's timeline 1, stays");
    ok(p.nbranch == 1 && strcmp(p.branch[0].name, "A2") == 0 && p.branch[0].tli == 1,
       "busy drill: recorded as kept for timeline 1");
    ok(!expired(&p, 1, 20) && !expired(&p, 1, 50), "busy drill: production's WAL from A2's start stays");
    ret_plan_free(&p);

    /* production archived nothing since A3 began (the drill's own
     * backup-push applying retention at once): may still be living */
    stored(&m, 1, 31);
    ok(plan(&c, 1, &m, &p, &e) == 0 && strcmp(gone(&p), "A1") == 0,
       "busy drill, timeline 1 last stored an hour before A3 began: A2 stays");
    ret_plan_free(&p);
    /* silent for RET_BRANCH_QUIET before A3 began (its manifest's time
     * less its duration): an ended branch, its backups go by the rules */
    ((struct tl_timeline *)tl_find(&m, 1))->newest_time = (int64_t)(NOW - 30 * 3600 - 60 - RET_BRANCH_QUIET);
    ok(plan(&c, 1, &m, &p, &e) == 0, "busy drill, timeline 1 quiet a day before A3: plans");
    is_str(gone(&p), "A1,A2", "busy drill, timeline 1 quiet a day before A3: its backups go by the rules");
    ret_plan_free(&p);
    ((struct tl_timeline *)tl_find(&m, 1))->newest_time = (int64_t)(NOW - 30 * 3600 - 60 - RET_BRANCH_QUIET + 1);
    ok(plan(&c, 1, &m, &p, &e) == 0 && strcmp(gone(&p), "A1") == 0,
       "busy drill, timeline 1 quiet a second less than that: A2 stays");
    ret_plan_free(&p);
    tl_model_free(&m);
    cat_free(&c);
}

/* Backup B ran from segment 30 to 40 on timeline 1; a point-in-time
 * restore to segment 35 (from A1: B ended after it) promoted onto
 * timeline 2, which lives.  B cannot be replayed onto timeline 2 (its
 * end-of-backup record is on timeline 1 past the fork): A1 is the only
 * way there and stays (adversarial pass AA; counted by its start, B was). */
static void test_fork_in_backup(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct tl_model m;
    struct ret_plan p;
    struct err e = ERR_INIT;
    struct manifest *b;

    backup(&c, "A1", 50, 1, 10);
    b = rf_add_full(&c, "B", NOW - 40 * 3600, 1, 30);
    b->stop_lsn = 40 * (uint64_t)SEG + 0x100;
    tl_model_init(&m, SEG);
    segs(&m, 1, 10, 60);
    fork_at(&m, 2, 35);
    segs(&m, 2, 35, 45);
    tl_model_finish(&m);

    ok(plan(&c, 1, &m, &p, &e) == 0, "fork inside B: plans (%s)", e.msg);
    is_str(gone(&p), "", "fork inside B: A1, the only way to timeline 2, stays");
    ok(p.nbranch == 1 && strcmp(p.branch[0].name, "A1") == 0 && p.branch[0].tli == 2,
       "fork inside B: recorded as kept for timeline 2");
    ok(!expired(&p, 1, 10), "fork inside B: the WAL from A1's start stays");
    ret_plan_free(&p);
    /* the fork at B's very end (a restore of B to its consistency point) */
    b->stop_lsn = 35 * (uint64_t)SEG + 0x100;
    ok(plan(&c, 1, &m, &p, &e) == 0 && strcmp(gone(&p), "A1") == 0 && p.nbranch == 0,
       "fork at B's end: B leads to timeline 2, A1 goes by the rules");
    ret_plan_free(&p);
    tl_model_free(&m);
    cat_free(&c);
}

/* retain_days = 2 and a drill: production on timeline 1 took B1 (120 h
 * ago, segment 10), B2 (72 h, 20) and B4 (24 h, 40) and is archiving
 * now; a drill restored from B2 forked at 25 onto timeline 2, took B3
 * there (52 h ago, 28) and stopped.  The window (48 h) starts between B3
 * and B4.  Its anchor by stop time alone is B3, on the drill's branch:
 * production's points from the window's start to B4 are reachable only
 * from B2, which went, and the WAL from its start with it (adversarial
 * pass AA).  The timeline written on inside the window keeps the newest
 * full backup before the window on its own path. */
static void test_days_anchor_branch(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct tl_model m;
    struct ret_plan p;
    struct ret_policy pol;
    struct err e = ERR_INIT;

    backup(&c, "B1", 120, 1, 10);
    backup(&c, "B2", 72, 1, 20);
    backup(&c, "B3", 52, 2, 28);
    backup(&c, "B4", 24, 1, 40);
    tl_model_init(&m, SEG);
    segs(&m, 1, 10, 50);
    fork_at(&m, 2, 25);
    segs(&m, 2, 25, 30);
    tl_model_finish(&m);
    stored(&m, 1, 1);
    stored(&m, 2, 52);

    memset(&pol, 0, sizeof pol);
    pol.retain_days = 2;
    pol.garbage_hours = 24;
    pol.now = NOW;
    memset(&p, 0, sizeof p);
    ok(ret_plan_backups(&c, &pol, &m, &p, &e) == 0, "days and a drill: plans (%s)", e.msg);
    is_str(gone(&p), "B1", "days and a drill: B2, production's anchor, stays (B3, the drill's, too)");
    ok(!expired(&p, 1, 20), "days and a drill: production's WAL from B2's start stays");
    ret_plan_free(&p);
    /* production's own line only: B3 is not there, B2 is the anchor */
    stored(&m, 2, 200);
    memset(&p, 0, sizeof p);
    ok(ret_plan_backups(&c, &pol, &m, &p, &e) == 0 && strcmp(gone(&p), "B1") == 0,
       "days, the drill's timeline silent since before the window: the same");
    ret_plan_free(&p);
    tl_model_free(&m);
    cat_free(&c);
}

int main(void)
{
    test_days_anchor_branch();
    test_fork_in_backup();
    test_drill();
    test_busy_drill();
    test_failover();
    test_history();
    test_late();
    return done_testing();
}
