/*
 * retention — plan and apply the retention policy of one region.
 * The rules are in docs/RETENTION.md; this file only implements them.
 */
#include "retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"
#include "util.h"
#include "wal.h"

void ret_policy_from_conf(const struct config *c, const struct region_conf *rc, time_t now,
                          struct ret_policy *out)
{
    memset(out, 0, sizeof *out);
    out->retain_full = rc->retain_full;
    out->retain_days = rc->retain_days;
    out->garbage_hours = c->garbage_hours;
    out->now = now;
}

void ret_plan_free(struct ret_plan *plan)
{
    size_t i;

    if (plan == NULL)
        return;
    free(plan->backups);
    for (i = 0; i < plan->nwal; i++)
        free(plan->wal[i].key);
    free(plan->wal);
    free(plan->branch);
    free(plan->listed);
    memset(plan, 0, sizeof *plan);
}

static int add_backup(struct ret_plan *plan, const struct cat_entry *ce, struct err *e)
{
    struct ret_backup *nv = realloc(plan->backups, (plan->nbackups + 1) * sizeof *nv);

    if (nv == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    plan->backups = nv;
    nv += plan->nbackups++;
    memset(nv, 0, sizeof *nv);
    memcpy(nv->name, ce->name, sizeof nv->name);
    nv->name[sizeof nv->name - 1] = '\0';
    nv->incomplete = !ce->complete;
    nv->objects = ce->objects;
    nv->bytes = ce->bytes;
    if (ce->man != NULL)
        snprintf(nv->start_wal, sizeof nv->start_wal, "%s", ce->man->start_wal);
    if (ce->complete && ce->man != NULL && ce->man->incremental && ce->man->parent != NULL)
        snprintf(nv->parent, sizeof nv->parent, "%s", ce->man->parent);
    plan->bytes += ce->bytes;
    return 0;
}

static int is_full(const struct cat_entry *ce)
{
    return ce->man == NULL || !ce->man->incremental;
}

static int64_t stop_time(const struct cat_entry *ce)
{
    return ce->man != NULL ? ce->man->stop_time : (int64_t)ce->newest;
}

/* Is the complete backup at index i (of `ncomplete`, counted from the
 * newest: rank 0 is the newest) retained?  `full_rank`: the rank among
 * full backups of the full backup its chain starts from (its own for a
 * full backup; SIZE_MAX for an incremental whose chain is broken). */
static int retained(const struct cat_entry *ce, size_t rank, size_t full_rank, const struct ret_policy *p)
{
    if (rank == 0)
        return 1;   /* never delete the last valid backup */
    if (p->protect != NULL && strcmp(ce->name, p->protect) == 0)
        return 1;   /* the backup just taken, wherever its name sorts */
    if (p->retain_full == 0 && p->retain_days == 0)
        return 1;   /* no policy: keep everything */
    if (p->retain_full > 0 && full_rank < (size_t)p->retain_full)
        return 1;
    if (p->retain_days > 0 && (int64_t)p->now - stop_time(ce) < (int64_t)(p->retain_days * 86400))
        return 1;
    return 0;
}

/* The index of the complete backup named `name`, or cat->n.  Anywhere in
 * the catalog: a parent sorts before its child unless a clock went back
 * between the two, and then it is needed all the same. */
static size_t find_complete(const struct catalog *cat, const char *name)
{
    size_t k = cat_name_index(cat, name);

    return k < cat->n && cat->v[k].complete ? k : cat->n;
}

/* The index of the full backup that i's chain starts from; cat->n when
 * the chain is broken (or loops). */
static size_t chain_base(const struct catalog *cat, size_t i)
{
    size_t steps = 0;

    while (!is_full(&cat->v[i])) {
        size_t k = find_complete(cat, cat->v[i].man->parent);

        if (k == cat->n || k == i || ++steps > cat->n)
            return cat->n;
        i = k;
    }
    return i;
}

int ret_restorable(const struct catalog *cat, size_t i)
{
    return chain_base(cat, i) != cat->n;
}

/* The rank among full backups (newest 0) of the full backup that i's chain
 * starts from; SIZE_MAX when the chain is broken (or loops).  `frank` holds
 * the rank of every full backup. */
static size_t chain_full_rank(const struct catalog *cat, const size_t *frank, size_t i)
{
    size_t b = chain_base(cat, i);

    return b == cat->n ? SIZE_MAX : frank[b];
}

/* retain_days' anchor: the newest full backup that stopped at or before
 * the window's start, the one the oldest point inside the window is
 * restored from (with the WAL from its start); cat->n when none. */
static size_t window_anchor(const struct catalog *cat, const struct ret_policy *p)
{
    int64_t start = (int64_t)p->now - (int64_t)(p->retain_days * 86400);
    size_t i, best = cat->n;

    for (i = 0; i < cat->n; i++) {
        const struct cat_entry *ce = &cat->v[i];

        if (ce->complete && is_full(ce) && stop_time(ce) <= start &&
            (best == cat->n || stop_time(ce) >= stop_time(&cat->v[best])))
            best = i;
    }
    return best;
}

/* A kept incremental keeps its parent, recursively down to its full backup. */
static void keep_chains(const struct catalog *cat, unsigned char *keep)
{
    size_t i, j, k, steps;

    for (i = 0; i < cat->n; i++) {
        if (!keep[i])
            continue;
        for (j = i, steps = 0; !is_full(&cat->v[j]) && steps < cat->n; j = k, steps++) {
            if ((k = find_complete(cat, cat->v[j].man->parent)) == cat->n)
                break;
            keep[k] = 1;
        }
    }
}

/* Which complete backups stay: those the policy retains (retain_full counts
 * full backups: every backup of the newest retain_full chains stays), the
 * protected one, retain_days' anchor, the only way to each living branch
 * (with the model `m`), and every backup a retained incremental needs to
 * be restored (its parent, recursively).  ret_plan loads every manifest
 * (one that does not load fails the plan); without incrementals this is
 * the rule for full backups alone. */
/* A folder a kept backup names as parent lost its manifest: not garbage
 * (a copy from another region mends the chain while the parts are here). */
static int parent_of_kept(const struct catalog *cat, const unsigned char *keep, const char *name)
{
    for (size_t j = 0; j < cat->n; j++)
        if (keep[j] && cat->v[j].complete && cat->v[j].man != NULL && cat->v[j].man->incremental &&
            cat->v[j].man->parent != NULL && strcmp(cat->v[j].man->parent, name) == 0)
            return 1;
    return 0;
}

static unsigned char *keep_set(const struct catalog *cat, const struct ret_policy *p, size_t ncomplete,
                               const struct tl_model *m, struct ret_plan *plan, struct err *e)
{
    unsigned char *keep = calloc(cat->n + 1, 1);
    size_t *frank = calloc(cat->n + 1, sizeof *frank);
    size_t i, rank = ncomplete, nf = 0;

    if (keep == NULL || frank == NULL) {
        free(keep);
        free(frank);
        err_setf(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    rank -= ret_late(cat, m, keep);     /* keep[] holds ret_late's flags until the rules fill it */
    for (i = cat->n; i > 0; i--)
        if (cat->v[i - 1].complete && is_full(&cat->v[i - 1]))
            frank[i - 1] = keep[i - 1] ? SIZE_MAX : nf++;
    for (i = 0; i < cat->n; i++)
        if (cat->v[i].complete)
            keep[i] = (unsigned char)retained(&cat->v[i], keep[i] == 1 ? SIZE_MAX : --rank, chain_full_rank(cat, frank, i), p);
    free(frank);
    if (p->retain_days > 0)
        keep[window_anchor(cat, p)] = 1;    /* keep[cat->n]: none, harmless */
    if ((p->retain_days > 0 &&
         ret_keep_anchors(cat, m, (int64_t)p->now - (int64_t)(p->retain_days * 86400), keep, e) < 0) ||
        ret_keep_branches(cat, m, keep, plan, e) < 0) {
        free(keep);
        return NULL;
    }
    keep_chains(cat, keep);
    return keep;
}

int ret_plan_backups(const struct catalog *cat, const struct ret_policy *p, const struct tl_model *m,
                     struct ret_plan *plan, struct err *e)
{
    size_t i, rank, ncomplete = 0;
    struct tl_need need;
    unsigned char *keep;

    memset(&need, 0, sizeof need);

    plan->policy_set = p->retain_full > 0 || p->retain_days > 0;
    if (p->retain_days > 0 && ret_clock_check(cat, p->now, e) < 0)
        return -1;
    if (p->protect != NULL && find_complete(cat, p->protect) == cat->n)
        return err_setf(e, ERR_INTERNAL, "backup %s, just taken, is not listed as a complete backup of the "
                        "region: retention is not applied (nothing deleted)", p->protect);
    for (i = 0; i < cat->n; i++)
        ncomplete += cat->v[i].complete ? 1 : 0;

    rank = ncomplete;
    if ((keep = keep_set(cat, p, ncomplete, m, plan, e)) == NULL)
        return -1;
    for (i = 0; i < cat->n; i++) {
        const struct cat_entry *ce = &cat->v[i];

        if (!ce->complete) {
            uint64_t age = p->now > ce->newest ? (uint64_t)(p->now - ce->newest) : 0;

            /* Recent: a backup in progress (or one that just failed); leave it. */
            if (age >= p->garbage_hours * 3600 && !parent_of_kept(cat, keep, ce->name) &&
                add_backup(plan, ce, e) < 0) {
                free(keep);
                return -1;
            }
            continue;
        }
        rank--;
        if (!keep[i]) {
            if (add_backup(plan, ce, e) < 0) {
                free(keep);
                return -1;
            }
            continue;
        }
        plan->kept++;
        if (plan->oldest_kept[0] == '\0') {
            memcpy(plan->oldest_kept, ce->name, sizeof plan->oldest_kept);
            plan->oldest_kept[sizeof plan->oldest_kept - 1] = '\0';
        }
        /* The WAL cut is the lowest (timeline, segment) over every retained
         * backup, taken separately: safe even when a newer backup sits on an
         * older timeline or below an older backup's start. */
        if (ce->man == NULL)
            need.unplaceable = 1;
        else
            tl_need_add(&need, ce->man->start_wal, ce->man->wal_segment_size);
    }
    free(keep);
    /* No policy, or a retained backup we cannot place: no WAL goes. */
    plan->seg_size = need.seg_size;
    plan->have_cut = need.have && !need.unplaceable && plan->policy_set;
    if (need.have) {
        plan->cut_tli = need.tli;
        plan->cut_segno = need.segno;
        memcpy(plan->cut_wal, need.start_wal, sizeof plan->cut_wal);
    }
    return 0;
}

/* The plan's cut as the timeline model's need. */
static void plan_need(const struct ret_plan *plan, struct tl_need *n)
{
    memset(n, 0, sizeof *n);
    n->have = plan->have_cut;
    n->tli = plan->cut_tli;
    n->segno = plan->cut_segno;
    n->seg_size = plan->seg_size;
}

int ret_wal_expired(const struct ret_plan *plan, const char *name)
{
    struct tl_need n;

    plan_need(plan, &n);
    return tl_need_expired(&n, name);
}

struct wal_walk {
    struct ret_plan *plan;
    struct err *e;
    int failed;
};

static int wal_collect(const struct stor_entry *ent, void *arg)
{
    struct wal_walk *w = arg;
    struct ret_plan *plan = w->plan;
    const char *name = ent->key + strlen("wal/");

    if (strchr(name, '/') != NULL || !ret_wal_expired(plan, name))
        return 0;
    if (array_reserve(&plan->wal, &plan->wal_cap, plan->nwal + 1, sizeof *plan->wal) < 0)
        goto nomem;
    plan->wal[plan->nwal].key = strdup(ent->key);
    if (plan->wal[plan->nwal].key == NULL)
        goto nomem;
    plan->wal[plan->nwal].bytes = ent->size;
    plan->nwal++;
    plan->bytes += ent->size;
    return 0;
nomem:
    err_setf(w->e, ERR_NOMEM, "out of memory");
    w->failed = 1;
    return 1;
}

/* The segment size of the catalog's first placeable backup (0: none). */
static uint64_t cat_seg_size(const struct catalog *cat)
{
    size_t i;

    for (i = 0; i < cat->n; i++)
        if (cat->v[i].complete && cat->v[i].man != NULL && cat->v[i].man->wal_segment_size)
            return cat->v[i].man->wal_segment_size;
    return 0;
}

/* Plan; when the rules delete a complete backup, plan again with the
 * region's timelines, so that the only way to a living branch stays. */
static int plan_backups(struct repo *r, const struct catalog *cat, const struct ret_policy *p,
                        struct ret_plan *out, struct err *e)
{
    struct tl_model m;
    size_t i;
    int rc;

    if (ret_plan_backups(cat, p, NULL, out, e) < 0)
        return -1;
    for (i = 0; i < out->nbackups && out->backups[i].incomplete; i++)
        ;
    if (i == out->nbackups || cat_seg_size(cat) == 0)
        return 0;
    ret_plan_free(out);
    if (tl_model_load_stored(r, cat_seg_size(cat), &m, e) < 0) {
        tl_model_free(&m);
        return err_prefix(e, "retention needs the region's timelines (nothing deleted)");
    }
    rc = ret_plan_backups(cat, p, &m, out, e);
    tl_model_free(&m);
    return rc;
}

int ret_plan(struct repo *r, const struct ret_policy *p, struct ret_plan *out, struct err *e)
{
    struct catalog cat;
    struct wal_walk w;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (cat_list(r, CAT_LOAD_HEADERS, &cat, e) < 0)
        return -1;
    if (plan_backups(r, &cat, p, out, e) < 0)
        goto out;
    if (cat.n > 0 && (out->listed = calloc(cat.n, sizeof *out->listed)) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (out->nlisted = 0; out->nlisted < cat.n; out->nlisted++)
        memcpy(out->listed[out->nlisted], cat.v[out->nlisted].name, CAT_NAME_MAX);
    if (out->have_cut) {
        w.plan = out;
        w.e = e;
        w.failed = 0;
        if (stor_list(r->st, REPO_WAL_DIR, wal_collect, &w, e) < 0 || w.failed)
            goto out;
    }
    rc = 0;
out:
    cat_free(&cat);
    if (rc < 0)
        ret_plan_free(out);
    return rc;
}

int ret_region(const struct config *c, const struct region_conf *rc, const struct keyring *kr,
               const struct note_sink *notes, time_t now, int dry_run, const char *protect, struct ret_plan *plan,
               struct ret_done *done, struct err *e)
{
    struct ret_policy p;
    struct repo *r = NULL;
    int rc_ = -1;

    memset(plan, 0, sizeof *plan);
    memset(done, 0, sizeof *done);
    ret_policy_from_conf(c, rc, now, &p);
    p.protect = protect;
    if (repo_open(rc, c, notes, kr, REPO_OPEN_IDENTITY, &r, e) < 0)
        return -1;
    if (ret_plan(r, &p, plan, e) < 0)
        goto out;
    if (!dry_run && (ret_spare_relist(r, plan, e) < 0 || ret_apply(r->st, plan, done, e) < 0))
        goto out;
    /* and what killed writers left behind: a failure here (an IAM policy
     * without s3:ListBucketMultipartUploads, say) is reported, and does not
     * fail the retention that was applied */
    if (!dry_run) {
        struct err se = ERR_INIT;

        if (stor_sweep(r->st, now - RET_TMP_AGE, &done->tmp_swept, &se) < 0)
            snprintf(done->sweep_error, sizeof done->sweep_error, "%s", se.msg);
    }
    rc_ = 0;
out:
    repo_free(r);
    return rc_;
}
