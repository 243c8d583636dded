/*
 * cmd_delete — `walship delete [--region R] [--dry-run]`: apply each
 * region's retention policy (docs/RETENTION.md).  --dry-run prints every
 * backup and object that would go and deletes nothing; otherwise one
 * summary line per region, and one for objects the bucket keeps under
 * Object Lock (not a failure).  A region that fails is reported and the others
 * still run; the exit status is then 3.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "note.h"
#include "repo.h"
#include "retention.h"

static void print_plan(const struct region_conf *rc, const struct ret_plan *plan)
{
    size_t i;

    for (i = 0; i < plan->nbackups; i++) {
        const struct ret_backup *b = &plan->backups[i];

        printf("region %s: would delete %sbackup %s (%llu objects, %llu bytes)\n", rc->name,
               b->incomplete ? "incomplete " : "", cmd_line(b->name), (unsigned long long)b->objects,
               (unsigned long long)b->bytes);
    }
    for (i = 0; i < plan->nwal; i++)
        printf("region %s: would delete %s (%llu bytes)\n", rc->name, cmd_line(plan->wal[i].key),
               (unsigned long long)plan->wal[i].bytes);
    printf("region %s: would delete %zu backups and %zu WAL files, %llu bytes; keeps %zu backups", rc->name,
           plan->nbackups, plan->nwal, (unsigned long long)plan->bytes, plan->kept);
    if (plan->oldest_kept[0])
        printf(" (oldest %s)", cmd_line(plan->oldest_kept));
    if (plan->have_cut)
        printf(" and WAL from %s", plan->cut_wal);
    printf("\n");
}

/* Objects the bucket keeps under Object Lock are not a failure
 * (docs/S3.md): say how many, and that a later run removes them. */
static void print_locked(const struct region_conf *rc, const struct ret_done *done)
{
    printf("region %s: %llu objects are kept under Object Lock until their retention ends", rc->name,
           (unsigned long long)done->kept_locked);
    if (done->backups_locked)
        printf(" (%zu backups stay whole)", done->backups_locked);
    printf("; a later delete removes them\n");
}

void cmd_ret_branch_warn(const char *region, const struct ret_plan *plan)
{
    size_t i;

    for (i = 0; i < plan->nbranch; i++)
        log_warning("region %s: backup %s is kept beyond the retention policy: it is the only backup from "
                    "which timeline %u can be restored, and timeline %u went on after the newest kept backup "
                    "began (up to %s).  The archive holds two living branches: a drill restored with "
                    "--keep-archive that took a backup here, or an old primary still archiving after a "
                    "failover?  Stop the branch that is not production; retention applies the policy "
                    "again once that branch's WAL ends before a newer backup starts.  (A timeline abandoned "
                    "by a restore to an earlier point looks the same until production's WAL passes %s: "
                    "docs/RETENTION.md, \"Two branches\")",
                    region, plan->branch[i].name, (unsigned)plan->branch[i].tli,
                    (unsigned)plan->branch[i].tli, plan->branch[i].newest_wal, plan->branch[i].newest_wal);
}

/* One configuration, one cluster: never prune another cluster's
 * repository with this one's policy.  The regions delete runs on must
 * hold one cluster's repository, and when this configuration's data
 * directory can be read (pgdata, or the current directory), that
 * cluster's: `--region R` naming a region whose url points at another
 * cluster's prefix was pruned by this policy, exit 0.  A region that
 * cannot be read now fails later, in its turn. */
static int one_cluster(struct cmd_ctx *ctx, const struct keyring *kr, struct err *e)
{
    struct config *c = ctx->conf;
    struct cluster_info ci;
    struct err ce = ERR_INIT;
    int i;

    if (cmd_cluster(ctx, kr, 0, &ci, &ce) < 0) {
        log_debug("the data directory's cluster is not known: %s", ce.msg);
        ci.sysid = 0;
    }
    for (i = 0; i < c->nregions; i++) {
        struct repo *r = NULL;

        if (ctx->region != NULL && strcmp(ctx->region, c->regions[i].name) != 0)
            continue;
        if (cmd_repo_open(ctx, &c->regions[i], kr, REPO_OPEN_IDENTITY, &r, e) == 0) {
            uint64_t got = r->id.sysid;

            repo_free(r);
            if (ci.sysid != 0 && got != ci.sysid)
                return err_setf(e, ERR_FOREIGN, "region %s holds the repository of cluster %llu, not that of "
                                "this configuration's data directory (cluster %llu): not applying this "
                                "configuration's retention to it (is its url right?)", c->regions[i].name,
                                (unsigned long long)got, (unsigned long long)ci.sysid);
        } else if (e->code == ERR_FOREIGN) {
            return -1;
        }
        err_clear(e);
    }
    return 0;
}

int cmd_delete_run(struct cmd_ctx *ctx)
{
    struct config *c = ctx->conf;
    struct keyring *kr = NULL;
    struct err e = ERR_INIT;
    int i, dry_run = 0, failed = 0;
    time_t now = time(NULL);

    for (i = 1; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--dry-run") == 0 || strcmp(ctx->argv[i], "-n") == 0)
            dry_run = 1;
        else if (ctx->argv[i][0] == '-')
            return cmd_usage("delete", "unknown option \"%s\"", ctx->argv[i]);
        else
            return cmd_usage("delete", "takes no arguments (\"%s\")", ctx->argv[i]);
    }
    if (config_require_regions(c, &e) < 0)
        return cmd_fail(&e);
    if (ctx->region != NULL && config_region(c, ctx->region) == NULL) {
        err_setf(&e, ERR_CONFIG, "no region named \"%s\" is configured", ctx->region);
        return cmd_fail(&e);
    }
    if (cmd_load_keyring(ctx, &kr, &e) < 0)
        return cmd_fail(&e);
    if (one_cluster(ctx, kr, &e) < 0) {
        keys_free(kr);
        return cmd_fail(&e);
    }
    for (i = 0; i < c->nregions; i++) {
        const struct region_conf *rc = &c->regions[i];
        struct ret_plan plan;
        struct ret_done done;

        if (ctx->region != NULL && strcmp(ctx->region, rc->name) != 0)
            continue;
        err_clear(&e);
        if (rc->retain_full == 0 && rc->retain_days == 0)
            printf("region %s: no retention policy (retain_full, retain_days): backups and WAL are kept\n",
                   rc->name);
        if (ret_region(c, rc, kr, &note_log_sink, now, dry_run, NULL, &plan, &done, &e) < 0) {
            printf("region %s: FAILED: %s\n", rc->name, e.msg);
            log_error("region %s: retention failed: %s", rc->name, e.msg);
            if (!dry_run && (done.backups || done.wal))
                printf("region %s: deleted %zu backups and %zu WAL files before the failure\n", rc->name,
                       done.backups, done.wal);
            if (!dry_run && done.kept_locked)
                print_locked(rc, &done);
            failed++;
            ret_plan_free(&plan);
            continue;
        }
        cmd_ret_branch_warn(rc->name, &plan);
        if (dry_run) {
            print_plan(rc, &plan);
        } else {
            size_t j;

            for (j = 0; j < plan.nbackups; j++)
                log_info("region %s: %s %sbackup %s", rc->name,
                         plan.backups[j].locked == 2 ? "kept whole for a backup under Object Lock built on it:"
                         : plan.backups[j].locked ? "kept under Object Lock:" : "deleted",
                         plan.backups[j].incomplete ? "incomplete " : "", plan.backups[j].name);
            printf("region %s: deleted %zu backups and %zu WAL files, %llu bytes freed; %zu backups kept",
                   rc->name, done.backups, done.wal, (unsigned long long)done.bytes, plan.kept);
            if (plan.oldest_kept[0])
                printf(" (oldest %s)", cmd_line(plan.oldest_kept));
            if (plan.spared)
                printf(" (%zu of them because a backup completed meanwhile is built on them)", plan.spared);
            if (done.tmp_swept)
                printf("; %llu temp files of killed writers removed", (unsigned long long)done.tmp_swept);
            if (done.sweep_error[0])
                log_warning("region %s: what killed writers left could not be swept: %s", rc->name,
                            done.sweep_error);
            printf("\n");
            if (done.kept_locked)
                print_locked(rc, &done);
        }
        ret_plan_free(&plan);
    }
    keys_free(kr);
    return failed ? EXIT_FAILURE3 : 0;
}
