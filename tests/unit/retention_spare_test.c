/*
 * retention_spare_test — the last look before a plan is applied
 * (ret_spare_new, retention_spare.c): a backup completed after the plan
 * was made keeps every planned backup its chain runs through, and only
 * those; backups the plan was made from change nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ret_fixture.h"
#include "retention.h"
#include "tap.h"

#define DAY 86400
#define NOW ((time_t)1800000000)

static void add_full(struct catalog *c, const char *name, double age_days, uint64_t segno)
{
    rf_add_full(c, name, NOW - (time_t)(age_days * DAY), 1, segno);
}

/* Make entry `name` of `c` an incremental of `parent`. */
static void incr_of(struct catalog *c, const char *name, const char *parent)
{
    struct manifest *m = c->v[cat_name_index(c, name)].man;

    m->incremental = 1;
    m->parent = strdup(parent);
}

/* The plan of the catalog F1 <- I1 <- I2, F2 (expired by retain_full 1),
 * F3, as `delete` makes it: F1, I1, I2 and F2 go; what the plan listed. */
static void planned(struct catalog *c, struct ret_plan *plan)
{
    struct ret_policy p;
    struct err e = ERR_INIT;
    size_t i;

    add_full(c, "B1", 5.0, 10);
    add_full(c, "B2", 4.0, 20);
    add_full(c, "B3", 3.0, 30);
    add_full(c, "B4", 2.0, 40);
    add_full(c, "B5", 1.0, 50);
    incr_of(c, "B2", "B1");
    incr_of(c, "B3", "B2");
    memset(&p, 0, sizeof p);
    p.retain_full = 1;
    p.garbage_hours = 24;
    p.now = NOW;
    memset(plan, 0, sizeof *plan);
    ret_plan_backups(c, &p, NULL, plan, &e);
    plan->listed = calloc(c->n, sizeof *plan->listed);
    for (i = 0; i < c->n; i++)
        memcpy(plan->listed[plan->nlisted++], c->v[i].name, CAT_NAME_MAX);
}

/* A backup completed after the plan: its name, how long ago it stopped,
 * its start segment, its parent ("" for a full backup; NULL: its manifest
 * did not load). */
struct late {
    const char *name;
    double age_days;
    uint64_t segno;
    const char *parent;
};

/* Plan, add `late` (up to 2) to the listing, spare: what still goes. */
static const char *after(const struct late *late, size_t n)
{
    struct catalog c = { NULL, 0, 0 };
    struct ret_plan plan;
    static char gone[512];
    size_t i;

    planned(&c, &plan);
    for (i = 0; i < n; i++) {
        add_full(&c, late[i].name, late[i].age_days, late[i].segno);
        if (late[i].parent == NULL) {
            man_free(c.v[c.n - 1].man);
            c.v[c.n - 1].man = NULL;
        } else if (late[i].parent[0] != '\0') {
            incr_of(&c, late[i].name, late[i].parent);
        }
    }
    ret_spare_new(&plan, &c);
    snprintf(gone, sizeof gone, "%s", rf_gone(&plan));
    ret_plan_free(&plan);
    cat_free(&c);
    return gone;
}

int main(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct ret_plan plan;
    size_t kept;
    const struct late on_b3[] = { { "B6", 0.1, 60, "B3" } };
    const struct late on_new[] = { { "B6", 0.2, 60, "B4" }, { "B7", 0.1, 70, "B6" } };
    const struct late on_kept[] = { { "B6", 0.2, 60, "" }, { "B7", 0.1, 70, "B5" } };
    const struct late unloaded[] = { { "B6", 0.1, 60, NULL } };

    planned(&c, &plan);
    is_str(rf_gone(&plan), "B1,B2,B3,B4", "the plan: all but the newest full backup go");
    kept = plan.kept;
    ret_spare_new(&plan, &c);
    is_str(rf_gone(&plan), "B1,B2,B3,B4", "the same listing again: nothing spared");
    is_int(plan.spared, 0, "... none counted");

    /* an incremental of B3 completed meanwhile: its whole chain stays */
    add_full(&c, "B6", 0.1, 60);
    incr_of(&c, "B6", "B3");
    ret_spare_new(&plan, &c);
    is_str(rf_gone(&plan), "B4", "an incremental of B3 pushed meanwhile: B3, B2, B1 stay; B4 still goes");
    is_int(plan.spared, 3, "... three spared");
    is_int(plan.kept, kept + 3, "... and counted as kept");
    is_int(plan.bytes, 1000, "... the bytes freed are B4's alone");
    ret_plan_free(&plan);
    cat_free(&c);

    is_str(after(on_b3, 1), "B4", "the same through after()");
    is_str(after(on_new, 2), "B1,B2,B3", "a new incremental on a new one on B4: B4 stays");
    is_str(after(on_kept, 2), "B1,B2,B3,B4", "a new full backup and an incremental of the kept one spare nothing");
    is_str(after(unloaded, 1), "B1,B2,B3,B4", "a new backup whose manifest did not load holds no parent");
    return done_testing();
}
