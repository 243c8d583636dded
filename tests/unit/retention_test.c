/*
 * retention_test — the retention rules on synthetic catalogs: by count, by
 * days, both, the newest always kept, the WAL cut with two timelines,
 * .history kept, incomplete backups old and recent; retain_days' anchor;
 * the backup just taken protected wherever its name sorts; retain_days
 * refusing a catalog with a backup ahead of the clock; applying a plan on
 * a bucket that keeps some objects under Object Lock (a fake driver).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ret_fixture.h"
#include "retention.h"
#include "tap.h"
#include "wal.h"

#define DAY 86400
#define NOW ((time_t)1800000000)
#define SEG (16u << 20)

/* A complete backup that stopped `age_days` ago and started at segment
 * `segno` of timeline `tli`. */
static void add_full(struct catalog *c, const char *name, double age_days, uint32_t tli, uint64_t segno)
{
    rf_add_full(c, name, NOW - (time_t)(age_days * DAY), tli, segno);
}

#define add rf_add
#define gone rf_gone

static struct ret_policy pol(int full, uint64_t days, uint64_t garbage)
{
    struct ret_policy p;

    memset(&p, 0, sizeof p);
    p.retain_full = full;
    p.retain_days = days;
    p.garbage_hours = garbage;
    p.now = NOW;
    return p;
}

static int plan_of(const struct catalog *c, struct ret_policy p, struct ret_plan *plan)
{
    struct err e = ERR_INIT;

    memset(plan, 0, sizeof *plan);
    return ret_plan_backups(c, &p, NULL, plan, &e);
}

static int expired(const struct ret_plan *plan, uint32_t tli, uint64_t segno, const char *suffix)
{
    char name[WAL_NAME_MAX];

    wal_segment_name(tli, segno, SEG, name);
    strncat(name, suffix, sizeof name - strlen(name) - 1);
    return ret_wal_expired(plan, name);
}

/* ---- a fake driver: keys in memory, deletes of `locked` keys refused the
 * way the s3:// driver reports Object Lock (kept_locked, no failure) ---- */
struct fake {
    struct stor base;
    char *keys[256];
    size_t n;
    const char *locked[8];
    const char *fail;       /* a remove of a key holding this fails */
};

static int fake_locked(const struct fake *f, const char *key)
{
    size_t i;

    for (i = 0; f->locked[i] != NULL; i++)
        if (strstr(key, f->locked[i]) != NULL)
            return 1;
    return 0;
}

static int fake_remove(struct stor *s, const char *key, struct err *e)
{
    struct fake *f = (struct fake *)s;
    size_t i;

    if (f->fail != NULL && strstr(key, f->fail) != NULL)
        return err_setf(e, ERR_NET, "injected failure removing %s", key);
    if (fake_locked(f, key)) {
        s->kept_locked++;
        return 0;
    }
    for (i = 0; i < f->n; i++)
        if (f->keys[i] != NULL && strcmp(f->keys[i], key) == 0) {
            free(f->keys[i]);
            f->keys[i] = NULL;
        }
    return 0;
}

static int fake_remove_many(struct stor *s, const char *const *keys, size_t n, struct err *e)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (fake_remove(s, keys[i], e) < 0)
            return -1;
    return 0;
}

static int fake_list(struct stor *s, const char *prefix, const char *after, stor_list_fn fn, void *arg,
                     struct err *e)
{
    struct fake *f = (struct fake *)s;
    size_t i;

    (void)e;
    (void)after;
    for (i = 0; i < f->n; i++) {
        struct stor_entry ent = { f->keys[i], 100, 0 };

        if (f->keys[i] != NULL && strncmp(f->keys[i], prefix, strlen(prefix)) == 0 && fn(&ent, arg) != 0)
            break;
    }
    return 0;
}

static const struct stor_ops fake_ops = {
    STOR_OPS_VERSION, NULL, NULL, NULL, fake_list, fake_remove, fake_remove_many, NULL, NULL,
};

static int fake_has(const struct fake *f, const char *key)
{
    size_t i;

    for (i = 0; i < f->n; i++)
        if (f->keys[i] != NULL && strcmp(f->keys[i], key) == 0)
            return 1;
    return 0;
}

/* The anchor is the newest by stop time, not by name. */
static void test_anchor_by_stop_time(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct ret_plan plan;

    add_full(&c, "A1", 9, 1, 10);
    add_full(&c, "A2", 8, 1, 20);
    add_full(&c, "A3", 1, 1, 30);
    c.v[0].man->stop_time = NOW - 7 * DAY - 3600;      /* A1 ran long: it stopped after A2 */
    plan_of(&c, pol(0, 7, 24), &plan);
    is_str(gone(&plan), "A2", "anchor: the backup that stopped last before the window");
    ret_plan_free(&plan);
    cat_free(&c);
}

static struct cat_entry *find(struct catalog *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        if (strcmp(c->v[i].name, name) == 0)
            return &c->v[i];
    return NULL;
}

/* The backup just taken stays with its WAL and its chain, wherever its
 * name sorts (a clock that went back names it as an old one). */
static void test_protect(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct ret_plan plan;
    struct ret_policy p;
    struct err e = ERR_INIT;
    struct cat_entry *a0;

    add_full(&c, "A0", 0, 1, 60);       /* just taken, with the clock set back */
    add_full(&c, "B1", 3, 1, 10);
    add_full(&c, "B2", 2, 1, 20);
    add_full(&c, "B3", 1, 1, 30);
    plan_of(&c, pol(1, 0, 24), &plan);
    is_str(gone(&plan), "A0,B1,B2", "protect: unprotected, the new backup sorting oldest would go");
    ret_plan_free(&plan);
    p = pol(1, 0, 24);
    p.protect = "A0";
    plan_of(&c, p, &plan);
    is_str(gone(&plan), "B1,B2", "protect: the backup just taken stays");
    is_int(plan.kept, 2, "protect: it and the newest are kept");
    ok(plan.have_cut && plan.cut_segno == 30 && !expired(&plan, 1, 60, ""), "protect: its WAL is kept");
    ret_plan_free(&plan);
    p.retain_full = 0;
    p.retain_days = 1;
    plan_of(&c, p, &plan);
    ok(strstr(gone(&plan), "A0") == NULL, "protect: kept under retain_days too");
    ret_plan_free(&plan);

    /* an incremental just taken whose parent's name sorts after its own */
    a0 = find(&c, "A0");
    a0->man->incremental = 1;
    a0->man->parent = strdup("B2");
    p = pol(1, 0, 24);
    p.protect = "A0";
    plan_of(&c, p, &plan);
    is_str(gone(&plan), "B1", "protect: an incremental keeps its parent, wherever it sorts");
    ok(plan.cut_segno == 20, "protect: WAL from the parent's start");
    ret_plan_free(&plan);

    p.protect = "Z9";
    memset(&plan, 0, sizeof plan);
    ok(ret_plan_backups(&c, &p, NULL, &plan, &e) < 0 && strstr(e.msg, "Z9") != NULL && plan.nbackups == 0,
       "protect: a backup just taken that is not listed fails the plan (%s)", e.msg);
    ret_plan_free(&plan);
    cat_free(&c);
}

/* retain_days refuses a region with a backup ahead of the clock. */
static void test_clock(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct ret_plan plan;
    struct ret_policy p;
    struct err e = ERR_INIT;
    struct cat_entry *f;

    add_full(&c, "B1", 10, 1, 10);
    add_full(&c, "B2", 5, 1, 20);
    add_full(&c, "B3", 1, 1, 30);
    f = find(&c, "B2");
    f->man->stop_time = NOW + RET_CLOCK_SKEW_MAX;
    is_int(ret_backup_ahead(f->man, NOW), RET_CLOCK_SKEW_MAX, "clock: ahead by the stop time");
    ok(plan_of(&c, pol(0, 2, 24), &plan) == 0, "clock: %d s of skew is tolerated", RET_CLOCK_SKEW_MAX);
    ret_plan_free(&plan);
    f->man->stop_time = NOW + RET_CLOCK_SKEW_MAX + 1;
    p = pol(0, 2, 24);
    memset(&plan, 0, sizeof plan);
    ok(ret_plan_backups(&c, &p, NULL, &plan, &e) < 0 && plan.nbackups == 0, "clock: retain_days refuses: %s", e.msg);
    ok(strstr(e.msg, "backup B2") != NULL && strstr(e.msg, "301 s ahead") != NULL, "clock: names the backup and skew");
    ret_plan_free(&plan);
    f->man->stop_time = NOW - 5 * DAY;
    f->man->start_time = NOW + 3600;
    is_int(ret_backup_ahead(f->man, NOW), 3600, "clock: ahead by the start time");
    p = pol(2, 2, 24);
    err_clear(&e);
    ok(ret_plan_backups(&c, &p, NULL, &plan, &e) < 0 && strstr(e.msg, "3600 s ahead") != NULL,
       "clock: with retain_full as well, still refused");
    ret_plan_free(&plan);
    plan_of(&c, pol(2, 0, 24), &plan);
    is_str(gone(&plan), "B1", "clock: retain_full alone does not read the clock");
    ret_plan_free(&plan);
    is_int(ret_backup_ahead(NULL, NOW), 0, "clock: no manifest, not ahead");
    cat_free(&c);
}

/* An interrupted run never leaves a listed incremental whose parent is
 * gone: children go before their parents (newest first). */
static void test_order(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct fake f;
    struct ret_plan plan;
    struct ret_done done;
    struct err e = ERR_INIT;
    char key[256];
    size_t i;

    memset(&f, 0, sizeof f);
    f.base.ops = &fake_ops;
    add_full(&c, "O1", 3, 1, 10);
    add_full(&c, "O2", 2, 1, 20);       /* an incremental of O1 */
    find(&c, "O2")->man->incremental = 1;
    find(&c, "O2")->man->parent = strdup("O1");
    add_full(&c, "O3", 1, 1, 30);
    for (i = 0; i < c.n; i++) {
        snprintf(key, sizeof key, "backups/%s/manifest.json", c.v[i].name);
        f.keys[f.n++] = strdup(key);
        snprintf(key, sizeof key, "backups/%s/part-0001", c.v[i].name);
        f.keys[f.n++] = strdup(key);
    }
    plan_of(&c, pol(1, 0, 24), &plan);
    is_str(gone(&plan), "O1,O2", "order: the expired chain is planned to go");
    f.fail = "backups/O1/";
    ok(ret_apply(&f.base, &plan, &done, &e) < 0, "order: a failure removing the full backup stops the run");
    ok(!fake_has(&f, "backups/O2/manifest.json"), "order: its incremental went before it, so none is left listed "
       "without its parent");
    ok(fake_has(&f, "backups/O1/manifest.json"), "order: the full backup is still whole");
    ret_plan_free(&plan);
    cat_free(&c);
    for (i = 0; i < f.n; i++)
        free(f.keys[i]);
}

static void test_object_lock(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct fake f;
    struct ret_plan plan;
    struct ret_done done;
    struct err e = ERR_INIT;
    char key[256], name[WAL_NAME_MAX];
    const char *b;
    uint64_t seg;
    size_t i;

    memset(&f, 0, sizeof f);
    f.base.ops = &fake_ops;
    add_full(&c, "B1", 4.5, 1, 10);
    add_full(&c, "B2", 3.5, 1, 20);
    add_full(&c, "B3", 2.5, 1, 30);
    add_full(&c, "B4", 1.5, 1, 40);
    add_full(&c, "B5", 0.5, 1, 50);
    for (i = 0; i < c.n; i++) {
        for (b = "manifest.json\0part-0001\0part-0002\0"; *b; b += strlen(b) + 1) {
            snprintf(key, sizeof key, "backups/%s/%s", c.v[i].name, b);
            f.keys[f.n++] = strdup(key);
        }
    }
    plan_of(&c, pol(2, 0, 24), &plan);
    is_str(gone(&plan), "B1,B2,B3", "lock: the three oldest backups are planned to go");
    for (seg = 10; seg < 50; seg++) {   /* the plan's WAL: segments 10..39 */
        wal_segment_name(1, seg, SEG, name);
        snprintf(key, sizeof key, "wal/%s", name);
        f.keys[f.n++] = strdup(key);
        if (seg < 40) {
            plan.wal = realloc(plan.wal, (plan.nwal + 1) * sizeof *plan.wal);
            plan.wal[plan.nwal].key = strdup(key);
            plan.wal[plan.nwal++].bytes = 100;
        }
    }
    /* B2 under lock (manifest included), one part of B3, one old segment */
    f.locked[0] = "backups/B2/";
    f.locked[1] = "backups/B3/part-0001";
    wal_segment_name(1, 12, SEG, name);
    f.locked[2] = name;
    ok(ret_apply(&f.base, &plan, &done, &e) == 0, "lock: retention succeeds (%s)", e.msg);
    is_int(done.kept_locked, 3, "lock: three objects counted as kept under Object Lock");
    is_int(done.backups_locked, 1, "lock: one backup stays whole");
    ok(!plan.backups[0].locked && plan.backups[1].locked && !plan.backups[2].locked, "lock: the plan marks B2");
    is_int(done.backups, 2, "lock: two backups deleted (B1, B3)");
    ok(fake_has(&f, "backups/B2/manifest.json") && fake_has(&f, "backups/B2/part-0001") &&
       fake_has(&f, "backups/B2/part-0002"), "lock: B2 keeps its manifest and its parts");
    ok(!fake_has(&f, "backups/B1/manifest.json") && !fake_has(&f, "backups/B1/part-0001"), "lock: B1 is gone");
    ok(!fake_has(&f, "backups/B3/manifest.json") && fake_has(&f, "backups/B3/part-0001") &&
       !fake_has(&f, "backups/B3/part-0002"), "lock: of B3 only the locked part stays");
    is_int(done.wal, 9, "lock: WAL below B2's start deleted, but for the locked one");
    snprintf(key, sizeof key, "wal/%s", name);
    ok(fake_has(&f, key), "lock: the locked segment stays");
    wal_segment_name(1, 11, SEG, name);
    snprintf(key, sizeof key, "wal/%s", name);
    ok(!fake_has(&f, key), "lock: an unlocked old segment went");
    for (seg = 20; seg < 40; seg++) {
        wal_segment_name(1, seg, SEG, name);
        snprintf(key, sizeof key, "wal/%s", name);
        if (!fake_has(&f, key))
            break;
    }
    is_int(seg, 40, "lock: the WAL from B2's start on stays (B2 stays whole)");
    is_int(done.bytes, 1000 * 2 + 900, "lock: bytes freed count what went");

    /* No lock: the plan's cut as it is. */
    f.locked[0] = f.locked[1] = f.locked[2] = NULL;
    ret_plan_free(&plan);
    plan_of(&c, pol(2, 0, 24), &plan);
    for (seg = 10; seg < 40; seg++) {
        wal_segment_name(1, seg, SEG, name);
        snprintf(key, sizeof key, "wal/%s", name);
        plan.wal = realloc(plan.wal, (plan.nwal + 1) * sizeof *plan.wal);
        plan.wal[plan.nwal].key = strdup(key);
        plan.wal[plan.nwal++].bytes = 100;
    }
    f.base.kept_locked = 0;
    ok(ret_apply(&f.base, &plan, &done, &e) == 0 && done.kept_locked == 0 && done.backups_locked == 0,
       "unlocked: nothing kept");
    is_int(done.backups, 3, "unlocked: B2 and what B3 left go now");
    ok(!fake_has(&f, "backups/B3/part-0001") && !fake_has(&f, "backups/B2/manifest.json"), "unlocked: gone");
    ret_plan_free(&plan);
    for (i = 0; i < f.n; i++)
        free(f.keys[i]);
    cat_free(&c);
}

/* An incremental kept whole under Object Lock keeps its chain: its lock
 * ends after its parents' (each object is locked from its upload), so a
 * run between the two found the child's manifest refused and deleted its
 * parents, and the incremental it reported as staying "whole" (with its
 * WAL) could never be restored (adversarial pass P).  Also when a clock
 * that went back names the parent after its child. */
static void test_lock_chain(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct fake f;
    struct ret_plan plan;
    struct ret_done done;
    struct err e = ERR_INIT;
    char key[256];
    const char *b;
    size_t i;

    memset(&f, 0, sizeof f);
    f.base.ops = &fake_ops;
    add_full(&c, "L1", 4.5, 1, 10);
    add_full(&c, "L2", 3.5, 1, 20);     /* an incremental of L1 */
    add_full(&c, "L3", 3.0, 1, 25);     /* an incremental of L2 */
    add_full(&c, "L4", 2.6, 1, 28);     /* an incremental of L6, whose name sorts after its own */
    add_full(&c, "L5", 1.5, 1, 40);
    add_full(&c, "L6", 2.8, 1, 27);     /* taken before L4, clock set forward */
    add_full(&c, "L7", 0.5, 1, 50);
    find(&c, "L2")->man->incremental = 1;
    find(&c, "L2")->man->parent = strdup("L1");
    find(&c, "L3")->man->incremental = 1;
    find(&c, "L3")->man->parent = strdup("L2");
    find(&c, "L4")->man->incremental = 1;
    find(&c, "L4")->man->parent = strdup("L6");
    for (i = 0; i < c.n; i++)
        for (b = "manifest.json\0part-0001\0"; *b; b += strlen(b) + 1) {
            snprintf(key, sizeof key, "backups/%s/%s", c.v[i].name, b);
            f.keys[f.n++] = strdup(key);
        }
    plan_of(&c, pol(1, 0, 24), &plan);
    is_str(gone(&plan), "L1,L2,L3,L4,L5,L6", "lock chain: both expired chains are planned to go");
    f.locked[0] = "backups/L3/manifest.json";   /* the newest link of each chain, under lock */
    f.locked[1] = "backups/L4/manifest.json";
    ok(ret_apply(&f.base, &plan, &done, &e) == 0, "lock chain: retention succeeds (%s)", e.msg);
    ok(fake_has(&f, "backups/L3/part-0001") && fake_has(&f, "backups/L2/manifest.json") &&
       fake_has(&f, "backups/L2/part-0001") && fake_has(&f, "backups/L1/manifest.json") &&
       fake_has(&f, "backups/L1/part-0001"), "lock chain: the locked incremental keeps its parents whole");
    ok(fake_has(&f, "backups/L6/manifest.json") && fake_has(&f, "backups/L6/part-0001"),
       "lock chain: ... also a parent whose name sorts after its child");
    ok(!fake_has(&f, "backups/L5/manifest.json"), "lock chain: the backup nothing kept needs goes");
    is_int(done.backups, 1, "lock chain: one backup deleted (L5)");
    is_int(done.backups_locked, 5, "lock chain: five backups stay whole");
    for (i = 0; i < plan.nbackups; i++)
        if (strcmp(plan.backups[i].name, "L5") != 0 && !plan.backups[i].locked)
            break;
    is_int(i, plan.nbackups, "lock chain: the plan marks every kept one");
    ret_plan_free(&plan);
    for (i = 0; i < f.n; i++)
        free(f.keys[i]);
    cat_free(&c);
}

/* A chain of 3000 (a full backup, then hourly incrementals with no
 * max_chain): retention followed each kept backup's chain link by link,
 * each link found by scanning the catalog (backups² x chain length:
 * 25 s at 3000, 64 s at 4000 on the review host). */
static void test_long_chain(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct ret_plan plan;
    struct timespec t0, t1;
    char name[CAT_NAME_MAX], prev[CAT_NAME_MAX] = "";
    double took;
    int i, n = 3000;

    for (i = 0; i < n; i++) {
        struct manifest *m;

        cat_new_name(NOW - (time_t)(n - i) * 3600, name);
        m = rf_add_full(&c, name, NOW - (time_t)(n - i) * 3600 + 60, 1, 10 + (uint64_t)i);
        if (i > 0) {
            m->incremental = 1;
            m->parent = strdup(prev);
        }
        snprintf(prev, sizeof prev, "%s", name);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    is_int(plan_of(&c, pol(0, 365, 24), &plan), 0, "a chain of %d: plan", n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ok(plan.kept == (size_t)n && plan.nbackups == 0, "a chain of %d: every link kept", n);
    ok(took < 5.0, "a chain of %d: planned in %.2f s", n, took);
    ret_plan_free(&plan);
    /* a catalog out of name order (a name that sorts otherwise in a
     * listing): a parent is still found */
    snprintf(c.v[0].name, sizeof c.v[0].name, "zz-first");
    free(c.v[1].man->parent);
    c.v[1].man->parent = strdup("zz-first");
    ok(cat_name_index(&c, "zz-first") == 0 && cat_name_index(&c, "nothing") == c.n, "out of order: found by a scan");
    plan_of(&c, pol(0, 365, 24), &plan);
    ok(plan.kept == (size_t)n && plan.nbackups == 0, "out of order: the chain is whole, every link kept");
    ret_plan_free(&plan);
    cat_free(&c);
}

int main(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct ret_plan plan;

    /* Five dailies, one a day, oldest first; segments 10, 20, ... */
    add_full(&c, "B1", 4.5, 1, 10);
    add_full(&c, "B2", 3.5, 1, 20);
    add_full(&c, "B3", 2.5, 1, 30);
    add_full(&c, "B4", 1.5, 1, 40);
    add_full(&c, "B5", 0.5, 1, 50);

    /* By count. */
    is_int(plan_of(&c, pol(2, 0, 24), &plan), 0, "count: plan");
    is_str(gone(&plan), "B1,B2,B3", "count 2: the three oldest go");
    is_int(plan.kept, 2, "count 2: two kept");
    is_str(plan.oldest_kept, "B4", "count 2: oldest kept is B4");
    ok(plan.have_cut && plan.cut_segno == 40 && plan.cut_tli == 1, "count 2: WAL cut at B4's start");
    ret_plan_free(&plan);

    /* By days: stopped less than 3 days ago, and the window's anchor: B2
     * (3.5 days), the newest that stopped before the window, from which
     * the oldest point inside it is restored. */
    plan_of(&c, pol(0, 3, 24), &plan);
    is_str(gone(&plan), "B1", "days 3: older than 3 days go, but for the anchor");
    is_str(plan.oldest_kept, "B2", "days 3: B2 kept as the window's anchor");
    ok(plan.have_cut && plan.cut_segno == 20, "days 3: WAL kept from the anchor's start");
    ret_plan_free(&plan);

    /* Both: kept if either keeps it. */
    plan_of(&c, pol(4, 1, 24), &plan);
    is_str(gone(&plan), "B1", "count 4 or 1 day: count wins");
    ret_plan_free(&plan);
    plan_of(&c, pol(1, 2, 24), &plan);
    is_str(gone(&plan), "B1,B2", "count 1 or 2 days: days (with its anchor B3) wins");
    ret_plan_free(&plan);
    plan_of(&c, pol(0, 4, 24), &plan);
    is_str(gone(&plan), "", "days 4: B1 (4.5 days) is the anchor and stays");
    ret_plan_free(&plan);

    /* No policy: nothing goes, no WAL cut. */
    plan_of(&c, pol(0, 0, 24), &plan);
    is_int(plan.nbackups, 0, "no policy: no backup goes");
    is_int(plan.kept, 5, "no policy: all five kept");
    ok(!plan.have_cut && !expired(&plan, 1, 1, ""), "no policy: no WAL goes");
    ok(!plan.policy_set, "no policy: reported as not set");
    ret_plan_free(&plan);

    /* The newest is kept even when every backup is past retain_days. */
    {
        struct catalog old = { NULL, 0, 0 };

        add_full(&old, "O1", 40, 1, 10);
        add_full(&old, "O2", 35, 1, 20);
        plan_of(&old, pol(0, 7, 24), &plan);
        is_str(gone(&plan), "O1", "days 7, all older: the newest is still kept");
        is_str(plan.oldest_kept, "O2", "newest kept");
        ok(expired(&plan, 1, 19, "") && !expired(&plan, 1, 20, ""), "WAL before the kept backup goes, its start stays");
        ret_plan_free(&plan);
        cat_free(&old);
    }

    /* WAL cut: segments, .partial, .backup before the cut go; .history stays. */
    plan_of(&c, pol(2, 0, 24), &plan);
    ok(expired(&plan, 1, 39, ""), "segment before the cut goes");
    ok(!expired(&plan, 1, 40, ""), "the start segment stays");
    ok(!expired(&plan, 1, 41, ""), "segments after the start stay");
    ok(expired(&plan, 1, 12, ".partial"), ".partial before the cut goes");
    ok(expired(&plan, 1, 39, ".00000028.backup"), ".backup before the cut goes");
    ok(!expired(&plan, 1, 40, ".00000028.backup"), ".backup of the kept backup stays");
    ok(!ret_wal_expired(&plan, "00000001.history"), ".history stays");
    ok(!ret_wal_expired(&plan, "not-a-wal-name"), "an unknown name stays");
    ok(!expired(&plan, 2, 39, ""), "a newer timeline before the cut stays");
    ret_plan_free(&plan);

    /* Two timelines: promoted at segment 45 onto timeline 2; B6 and B7 on it. */
    add_full(&c, "B6", 0.3, 2, 60);
    add_full(&c, "B7", 0.1, 2, 70);
    plan_of(&c, pol(2, 0, 24), &plan);
    is_str(gone(&plan), "B1,B2,B3,B4,B5", "two timelines: keeps B6, B7");
    ok(plan.cut_tli == 2 && plan.cut_segno == 60, "cut at B6 on timeline 2");
    ok(expired(&plan, 1, 50, "") && expired(&plan, 1, 45, ".partial"), "old timeline 1 WAL before the cut goes");
    ok(expired(&plan, 2, 45, ""), "timeline 2 WAL before B6 goes");
    ok(!expired(&plan, 2, 60, "") && !expired(&plan, 2, 65, ""), "timeline 2 WAL from B6 on stays");
    ok(!expired(&plan, 1, 61, ""), "timeline 1 WAL past the cut stays");
    ok(!ret_wal_expired(&plan, "00000002.history"), "timeline 2 history stays");
    ret_plan_free(&plan);
    plan_of(&c, pol(3, 0, 24), &plan);
    ok(plan.cut_tli == 1 && plan.cut_segno == 50, "keeping B5 on timeline 1: cut at B5");
    ok(!expired(&plan, 2, 45, ""), "timeline 2 WAL (newer timeline) stays");
    ok(expired(&plan, 1, 49, "") && !expired(&plan, 1, 50, ""), "timeline 1 cut at B5's start");
    ret_plan_free(&plan);
    cat_free(&c);

    /* A retained backup on an older timeline with a lower start than an
     * older-named one (split brain): the cut takes the lowest of all. */
    add_full(&c, "X1", 3, 2, 80);
    add_full(&c, "X2", 2, 1, 60);
    add_full(&c, "X3", 1, 2, 90);
    plan_of(&c, pol(2, 0, 24), &plan);
    is_str(gone(&plan), "X1", "split brain: X1 goes");
    ok(plan.cut_tli == 1 && plan.cut_segno == 60, "cut is the lowest timeline and segment of X2, X3");
    ok(!expired(&plan, 2, 70, ""), "timeline 2 WAL kept");
    ret_plan_free(&plan);
    cat_free(&c);

    /* Incomplete backups: old ones go, recent ones (in progress) stay,
     * and a failed newest backup does not count as the newest. */
    add_full(&c, "C1", 3, 1, 10);
    add(&c, "C2", 0, NOW - 48 * 3600);     /* killed two days ago */
    add_full(&c, "C3", 1, 1, 30);
    add(&c, "C4", 0, NOW - 600);           /* in progress, or just failed */
    plan_of(&c, pol(1, 0, 24), &plan);
    is_str(gone(&plan), "C1,C2", "garbage 24h: old incomplete goes, recent stays");
    ok(plan.backups[1].incomplete && !plan.backups[0].incomplete, "the incomplete one is marked");
    is_str(plan.oldest_kept, "C3", "the last valid backup is kept though a newer one failed");
    is_int(plan.bytes, 2000, "bytes of what goes");
    ret_plan_free(&plan);
    plan_of(&c, pol(1, 0, 0), &plan);
    is_str(gone(&plan), "C1,C2,C4", "garbage 0: any incomplete goes");
    ret_plan_free(&plan);
    plan_of(&c, pol(0, 0, 24), &plan);
    is_str(gone(&plan), "C2", "no policy: only garbage goes");
    ret_plan_free(&plan);
    cat_free(&c);

    /* A full backup whose manifest was lost, under a kept incremental: a
     * broken link (copy can mend it from another region), not garbage. */
    add(&c, "E1", 0, NOW - 48 * 3600);
    add_full(&c, "E2", 1, 1, 30);
    find(&c, "E2")->man->incremental = 1;
    find(&c, "E2")->man->parent = strdup("E1");
    add(&c, "E3", 0, NOW - 48 * 3600);     /* killed two days ago, nobody's parent */
    plan_of(&c, pol(1, 0, 24), &plan);
    is_str(gone(&plan), "E3", "an old folder without manifest that a kept incremental names as parent stays");
    ret_plan_free(&plan);
    find(&c, "E2")->man->parent[0] = 'X';
    plan_of(&c, pol(1, 0, 24), &plan);
    is_str(gone(&plan), "E1,E3", "... and goes once nothing kept names it");
    ret_plan_free(&plan);
    cat_free(&c);

    /* A region with only an incomplete backup: no cut, nothing else. */
    add(&c, "D1", 0, NOW - 60);
    plan_of(&c, pol(1, 0, 24), &plan);
    ok(plan.nbackups == 0 && plan.kept == 0 && !plan.have_cut, "only a backup in progress: nothing goes");
    ret_plan_free(&plan);
    cat_free(&c);

    test_anchor_by_stop_time();
    test_protect();
    test_clock();
    test_object_lock();
    test_order();
    test_lock_chain();
    test_long_chain();
    return done_testing();
}
