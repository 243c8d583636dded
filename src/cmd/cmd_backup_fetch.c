/*
 * cmd_backup_fetch — `walship backup-fetch NAME|LATEST DIR [--region R]
 * [--tablespace-map OLD=NEW]...`: unpack one backup into an empty directory.
 *
 * The region: --region R, else the first configured region that has the
 * backup (for LATEST: the first region holding any complete backup).  A
 * region that cannot be listed is skipped with a warning; if no region has
 * the backup the status is 1 when every region answered, 3 when one could
 * not be asked.  The unpacking itself is restore/backup_fetch.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup_fetch.h"
#include "catalog.h"
#include "cmd.h"
#include "cmd_restore_conf.h"
#include "keys.h"
#include "log.h"
#include "mapread.h"
#include "note.h"
#include "stor.h"
#include "util.h"

#define MAX_TSMAP 64

struct fetch_view {
    int tty;
    int shown;
};

static void human(uint64_t n, char *buf, size_t len)
{
    static const char *unit[] = { "B", "kB", "MB", "GB", "TB" };
    double v = (double)n;
    int u = 0;

    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
}

static void show_progress(const struct bkf_progress *p, void *arg)
{
    struct fetch_view *v = arg;
    char done[32], total[32];
    int pct = p->bytes_total ? (int)(p->bytes_done * 100 / p->bytes_total) : 100;

    if (!v->tty)
        return;
    human(p->bytes_done, done, sizeof done);
    human(p->bytes_total, total, sizeof total);
    fprintf(stderr, "\r%3d%%  %s of %s  %llu/%llu files  %u/%u parts   ", pct > 100 ? 100 : pct, done, total,
            (unsigned long long)p->files_done, (unsigned long long)p->files_total, p->parts_done, p->parts_total);
    fflush(stderr);
    v->shown = 1;
}

/* Find the backup: in ctx->region, or in the first region that has it. */
static int locate(struct cmd_ctx *ctx, const struct keyring *kr, const char *want, struct repo **out,
                  const struct region_conf **rcp, char name[CAT_NAME_MAX], struct err *e)
{
    int i, unreachable = 0;

    if (config_require_regions(ctx->conf, e) < 0)
        return -1;
    for (i = 0; i < ctx->conf->nregions; i++) {
        const struct region_conf *rc = &ctx->conf->regions[i];
        struct repo *s = NULL;
        struct catalog cat;
        struct err re = ERR_INIT;
        int idx;

        if (ctx->region != NULL && strcmp(ctx->region, rc->name) != 0)
            continue;
        if (cmd_repo_open(ctx, rc, kr, REPO_OPEN_IDENTITY, &s, &re) < 0 || cat_list(s, 0, &cat, &re) < 0) {
            repo_free(s);
            if (ctx->region != NULL) {
                *e = re;
                return err_prefix(e, "could not list the backups");
            }
            log_warning("could not list the backups (skipping this region): %s", re.msg);
            unreachable++;
            continue;
        }
        idx = cat_find(&cat, want, &re);
        if (idx >= 0) {
            strlcopy(name, cat.v[idx].name, CAT_NAME_MAX);
            cat_free(&cat);
            *out = s;
            *rcp = rc;
            return 0;
        }
        cat_free(&cat);
        repo_free(s);
        if (ctx->region != NULL) {
            *e = re;
            return err_prefix(e, "region %s", rc->name);
        }
        log_info("region %s: %s", rc->name, re.msg);
    }
    if (ctx->region != NULL)
        return err_setf(e, ERR_CONFIG, "no region named \"%s\" is configured", ctx->region);
    if (unreachable)
        return err_setf(e, ERR_NET, "backup %s was not found in the regions that could be listed (%d could not)",
                        want, unreachable);
    if (strcmp(want, "LATEST") == 0)
        return err_setf(e, ERR_NOTFOUND, "no region holds a complete backup");
    return err_setf(e, ERR_NOTFOUND, "no region holds a complete backup named %s", want);
}

struct fetch_args {
    const char *pos[2];             /* NAME (or LATEST), DIR */
    struct bkf_tsmap maps[MAX_TSMAP];
    char *owned[MAX_TSMAP];         /* the maps' old paths */
    int nmaps;
    int allow_unmounted;            /* --allow-unmounted */
};

/* 0, or the exit status of a usage error (or of running out of memory). */
static int parse_args(struct cmd_ctx *ctx, struct fetch_args *fa)
{
    struct err e = ERR_INIT;
    char *eq;
    int i, npos = 0;

    memset(fa, 0, sizeof *fa);
    for (i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i], *val = NULL;

        if (strcmp(a, "--allow-unmounted") == 0) {
            fa->allow_unmounted = 1;
            continue;
        } else if (strcmp(a, "--tablespace-map") == 0) {
            if (i + 1 >= ctx->argc)
                return cmd_usage("backup-fetch", "--tablespace-map needs OLD=NEW");
            val = ctx->argv[++i];
        } else if (str_has_prefix(a, "--tablespace-map=")) {
            val = a + strlen("--tablespace-map=");
        } else if (a[0] == '-' && a[1] != '\0') {
            return cmd_usage("backup-fetch", "unknown option \"%s\"", a);
        } else {
            if (npos == 2)
                return cmd_usage("backup-fetch", "too many arguments");
            fa->pos[npos++] = a;
            continue;
        }
        eq = strchr(val, '=');
        if (eq == NULL || eq == val || eq[1] == '\0')
            return cmd_usage("backup-fetch", "--tablespace-map wants OLD=NEW, not \"%s\"", val);
        if (fa->nmaps == MAX_TSMAP)
            return cmd_usage("backup-fetch", "too many --tablespace-map options (at most %d)", MAX_TSMAP);
        fa->maps[fa->nmaps].old_path = val;     /* NUL-terminated below, in a copy */
        fa->maps[fa->nmaps].new_path = eq + 1;
        fa->nmaps++;
    }
    if (npos != 2)
        return cmd_usage("backup-fetch", "needs NAME (or LATEST) and DIR");
    for (i = 0; i < fa->nmaps; i++) {
        size_t n = (size_t)(strchr(fa->maps[i].old_path, '=') - fa->maps[i].old_path);

        fa->owned[i] = strndup(fa->maps[i].old_path, n);
        if (fa->owned[i] == NULL) {
            while (i-- > 0)
                free(fa->owned[i]);
            fa->nmaps = 0;
            err_setf(&e, ERR_NOMEM, "out of memory");
            return cmd_fail(&e);
        }
        fa->maps[i].old_path = fa->owned[i];
    }
    return 0;
}

static void print_result(const struct fetch_args *fa, const char *name, const char *region,
                         const struct bkf_stats *st, const struct manifest *m)
{
    char sz[32];

    human(st->bytes, sz, sizeof sz);
    printf("restored backup %s from region %s into %s: %llu files, %llu directories, %s in %.1f s (%.0f MB/s)\n",
           name, region, fa->pos[1], (unsigned long long)st->files, (unsigned long long)st->dirs, sz,
           (double)st->ms / 1000.0, st->ms ? (double)st->bytes / 1e3 / (double)st->ms : 0.0);
    cmd_print_tablespaces(m, fa->maps, (size_t)fa->nmaps);
    printf("start LSN %X/%X (WAL %s, timeline %u); WAL up to %s is needed for a consistent state\n",
           (unsigned)(m->start_lsn >> 32), (unsigned)m->start_lsn, m->start_wal, (unsigned)m->timeline, m->stop_wal);
    fflush(stdout);
}

int cmd_backup_fetch_run(struct cmd_ctx *ctx)
{
    struct fetch_args fa;
    struct keyring *kr = NULL;
    struct repo *s = NULL;
    const struct region_conf *rc = NULL;
    struct manifest *m = NULL;
    struct bkf_opts o;
    struct bkf_stats st;
    struct fetch_view view = { 0, 0 };
    struct err e = ERR_INIT;
    char name[CAT_NAME_MAX];
    int i, status;

    (void)mapread_install();    /* before any thread: file:// objects read from a mapping (mapread.h) */
    if ((status = parse_args(ctx, &fa)) != 0)
        return status;
    if (cmd_load_keyring(ctx, &kr, &e) < 0)
        goto fail;
    if (locate(ctx, kr, fa.pos[0], &s, &rc, name, &e) < 0)
        goto fail;
    if (cat_load_manifest(s, name, &m, &e) < 0) {
        if (e.code == ERR_NOTFOUND)
            e.code = ERR_CORRUPT;   /* it was listed a moment ago */
        goto fail;
    }
    log_info("restoring backup %s from region %s into %s", name, rc->name, fa.pos[1]);
    memset(&o, 0, sizeof o);
    o.parallel = ctx->conf->parallel;
    o.allow_unmounted = fa.allow_unmounted;
    o.named_tablespaces = geteuid() == 0;
    o.notes = &note_log_sink;
    o.tsmap = fa.maps;
    o.ntsmap = (size_t)fa.nmaps;
    view.tty = isatty(STDERR_FILENO);
    o.progress = show_progress;
    o.progress_arg = &view;
    status = bkf_fetch(s, rc, ctx->conf, m, fa.pos[1], &o, &st, &e);
    if (view.shown)
        fputc('\n', stderr);
    if (status < 0) {
        status = cmd_fail(&e);
        cmd_other_region_hint(ctx, rc->name, m->name, fa.pos[1], &e);
        goto out;
    }
    print_result(&fa, name, rc->name, &st, m);
    restore_root_note(fa.pos[1]);
    status = 0;
    goto out;
fail:
    status = cmd_fail(&e);
out:
    for (i = 0; i < fa.nmaps; i++)
        free(fa.owned[i]);
    man_free(m);
    repo_free(s);
    keys_free(kr);
    return status;
}
