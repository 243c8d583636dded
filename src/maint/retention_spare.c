/*
 * retention_spare — the last look before a plan is applied (retention.h).
 *
 * Why: `delete` plans from one listing and applies the plan afterwards;
 * another host's backup-push may complete an incremental in between (a
 * cron on a backup host, a timer on the primary).  When its parent is a
 * backup the plan deletes, apply made that incremental unrestorable while
 * it stayed listed (adversarial pass P).  backup-push checks its parent
 * again after writing its manifest; this is the other side: just before
 * apply, backups/ is listed again and every planned backup that the chain
 * of a backup completed since the plan runs through is dropped from the
 * plan.  What remains is the time apply itself takes.
 */
#include "retention.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap.h"
#include "util.h"

static int was_listed(const struct ret_plan *plan, const char *name)
{
    return name_index(plan->listed, plan->nlisted, sizeof *plan->listed, 0, name) < plan->nlisted;
}

static size_t planned(const struct ret_plan *plan, const char *name)
{
    return name_index(plan->backups, plan->nbackups, sizeof *plan->backups, offsetof(struct ret_backup, name), name);
}

/* Keep planned backup k: out of the plan. */
static void spare(struct ret_plan *plan, size_t k)
{
    plan->bytes -= plan->backups[k].bytes;
    plan->kept += !plan->backups[k].incomplete;
    memmove(&plan->backups[k], &plan->backups[k + 1], (plan->nbackups - k - 1) * sizeof *plan->backups);
    plan->nbackups--;
    plan->spared++;
}

void ret_spare_new(struct ret_plan *plan, const struct catalog *now)
{
    size_t i;

    for (i = 0; i < now->n; i++) {
        const struct cat_entry *ce = &now->v[i];
        char name[CAT_NAME_MAX];
        unsigned steps;

        if (!ce->complete || ce->man == NULL || was_listed(plan, ce->name) || !ce->man->incremental ||
            ce->man->parent == NULL)
            continue;
        strlcopy(name, ce->man->parent, sizeof name);
        for (steps = 0; name[0] != '\0' && steps <= BM_MAX_DEPTH; steps++) {
            size_t k = planned(plan, name), j;

            if (k < plan->nbackups) {
                /* its own parent, as the plan read it, goes on the way */
                char up[CAT_NAME_MAX];

                strlcopy(up, plan->backups[k].parent, sizeof up);
                spare(plan, k);
                strlcopy(name, up, sizeof name);
                continue;
            }
            /* not planned: kept, with its chain (keep_chains), unless it is
             * new too, and then its manifest says where the chain goes on */
            j = cat_name_index(now, name);
            if (j == now->n || now->v[j].man == NULL || was_listed(plan, name) || !now->v[j].man->incremental ||
                now->v[j].man->parent == NULL)
                break;
            strlcopy(name, now->v[j].man->parent, sizeof name);
        }
    }
}

int ret_spare_relist(struct repo *r, struct ret_plan *plan, struct err *e)
{
    struct catalog now;
    size_t i;

    if (plan->nbackups == 0)
        return 0;
    if (cat_list(r, 0, &now, e) < 0)
        return err_prefix(e, "could not list the backups again before deleting (nothing deleted)");
    for (i = 0; i < now.n; i++) {
        struct err le = ERR_INIT;

        /* one that does not load cannot be restored, nor hold a parent */
        if (now.v[i].complete && !was_listed(plan, now.v[i].name) &&
            cat_load_headers(r, now.v[i].name, &now.v[i].man, NULL, &le) < 0)
            now.v[i].man = NULL;
    }
    ret_spare_new(plan, &now);
    cat_free(&now);
    return 0;
}
