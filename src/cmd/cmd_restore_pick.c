#include "cmd_restore_pick.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_restore_end.h"
#include "log.h"
#include "repo.h"
#include "wal.h"

/* *usable (NULL: every backup) with the `excluded` ones left out. */
static int leave_out(const struct catalog *cat, const unsigned char *excluded, unsigned char **usable, struct err *e)
{
    size_t i;

    if (*usable == NULL) {
        if ((*usable = malloc(cat->n + 1)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        memset(*usable, 1, cat->n + 1);
    }
    for (i = 0; i < cat->n; i++)
        if (excluded[i])
            (*usable)[i] = 0;
    return 0;
}

/* The region: --region, else the first one from *from on whose catalog
 * answers (*from then names the next one to try). */
static const struct region_conf *choose_region(struct cmd_ctx *ctx, const struct keyring *kr, struct repo **s,
                                               struct catalog *cat, int *from, struct err *e)
{
    const struct config *c = ctx->conf;
    int i;

    for (i = *from; i < c->nregions; i++) {
        struct err re = ERR_INIT;

        if (ctx->region != NULL && strcmp(ctx->region, c->regions[i].name) != 0)
            continue;
        *from = i + 1;
        if (cmd_repo_open(ctx, &c->regions[i], kr, REPO_OPEN_IDENTITY, s, &re) == 0 && cat_list(*s, CAT_LOAD_HEADERS, cat, &re) == 0)
            return &c->regions[i];
        log_warning("region %s cannot be used: %s", c->regions[i].name, re.msg);
        repo_free(*s);
        *s = NULL;
        *e = re;
    }
    return NULL;
}

/* The backup to restore: --backup, or the newest that reaches the target;
 * with a numbered --target-timeline, the newest on that timeline's path (a
 * newer backup on another branch, a drill's, cannot reach it). */
static int choose_backup(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *s, const struct catalog *cat,
                         const struct pitr_target *t, const char *backup, const unsigned char *excluded,
                         struct err *e)
{
    struct repo *rs[END_MAX_REGIONS];
    unsigned char *usable = NULL;
    uint32_t tli = 0;
    size_t i, n = 0, newest = cat->n, nrs;
    char skipped[1024];
    int k;

    if (backup == NULL && isdigit((unsigned char)t->timeline[0])) {
        /* the timeline's history may be in another region only */
        nrs = restore_open_regions(ctx, kr, s, rs);
        k = pitr_on_path(rs, nrs, cat, t->timeline, &usable, &tli, skipped, e);
        for (i = 1; i < nrs; i++)
            repo_free(rs[i]);
        if (k < 0)
            return -1;
        if (skipped[0] != '\0')
            log_warning("the way to timeline %s is judged without: %s; restore_command will ask them too",
                        t->timeline, skipped);
    }
    if (excluded != NULL && (k = leave_out(cat, excluded, &usable, e)) < 0)
        return -1;
    for (i = 0; usable != NULL && i < cat->n; i++) {
        n += usable[i];
        if (cat->v[i].complete && cat->v[i].man != NULL)
            newest = i;
    }
    if (usable != NULL && n == 0 && excluded == NULL) {
        free(usable);
        return err_setf(e, ERR_NOTFOUND, "region %s: no backup starts on the way to timeline %u (on it, or on an "
                        "ancestor before it forked off): name one with --backup, or choose another timeline",
                        s->name, (unsigned)tli);
    }
    k = pitr_choose(cat, t, backup, usable, e);
    if (k >= 0 && tli != 0 && usable != NULL && (size_t)k != newest && !usable[newest])
        log_info("restoring from backup %s, on the way to timeline %u; backup %s, newer, is not (another branch)",
                 cat->v[k].name, (unsigned)tli, cat->v[newest].name);
    free(usable);
    return k;
}

int restore_pick(struct cmd_ctx *ctx, const struct keyring *kr, const struct pitr_target *t, const char *backup,
                 struct repo **s, struct catalog *cat, const struct region_conf **rc, struct err *e)
{
    int k = -1, from = 0;

    while ((*rc = choose_region(ctx, kr, s, cat, &from, e)) != NULL && (k = choose_backup(ctx, kr, *s, cat, t, backup, NULL, e)) < 0) {
        if (ctx->region != NULL || e->code != ERR_NOTFOUND || from >= ctx->conf->nregions)
            return -1;
        log_warning("region %s: %s; trying the next region", (*rc)->name, e->msg);
        cat_free(cat);
        repo_free(*s);
        *s = NULL;
    }
    return *rc == NULL ? -1 : k;
}

int restore_pick_other(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *s, const struct catalog *cat,
                       const struct pitr_target *t, const unsigned char *excluded, struct err *e)
{
    return choose_backup(ctx, kr, s, cat, t, NULL, excluded, e);
}

void restore_stop_hint(const struct pitr_target *t, const struct manifest *m, const char *why, FILE *f)
{
    char ts[32], start[24], stop[24];

    man_format_time(m->start_time, ts);
    wal_format_lsn(m->start_lsn, start);
    wal_format_lsn(m->stop_lsn, stop);
    if (strstr(why, "before consistent recovery point") != NULL)
        fprintf(f, "  the target lies before backup %s was consistent (LSN %s): PostgreSQL cannot stop there from "
                "it; restore from an older backup with --backup NAME (walship backup-list)\n", m->name, stop);
    else if ((t->kind == PITR_XID || t->kind == PITR_NAME) && strstr(why, "recovery ended before") != NULL)
        fprintf(f, "  PostgreSQL looks for the %s only in the WAL after backup %s began (%s, LSN %s): if it lies "
                "before that, restore from an older backup with --backup NAME (walship backup-list); else the "
                "archive does not hold it (%s)\n", t->kind == PITR_XID ? "transaction's end" : "restore point",
                m->name, ts, start, t->kind == PITR_XID ? "a transaction still open when the WAL ends, or a "
                "subtransaction's id: PostgreSQL matches top-level ids only" : "no restore point of that name was "
                "made");
    else if (t->kind == PITR_TIME && strstr(why, "recovery ended before") != NULL)
        fprintf(f, "  PostgreSQL knows it reached a time only at the first transaction that ended after it, and the "
                "archived WAL holds none: no transaction ended after %s, or the WAL where one did is not "
                "archived\n", t->value);
    else if (t->kind == PITR_XID && strstr(why, "recovery stopping after abort of transaction") != NULL)
        fprintf(f, "  note: transaction %s was rolled back: PostgreSQL stopped at its abort, so the restored data "
                "holds the transactions committed before it and none of its changes\n", t->value);
}
