/*
 * cmd_upgrade — `walship upgrade [--region R] [--dry-run]`: bind the
 * repositories and the spool walship 0.1.0 wrote, once, after installing
 * this version (src/maint/upgrade.h; docs/OPERATIONS.md).
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "note.h"
#include "upgrade.h"

struct view {
    const char *region;
    int dry_run;
};

static void on_object(const char *key, int rewritten, void *arg)
{
    const struct view *v = arg;

    if (rewritten)
        log_debug("region %s: %s %s", v->region, v->dry_run ? "would bind" : "bound", key);
}

int cmd_upgrade_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    struct keyring *kr = NULL;
    struct repo_ident ident;
    struct err e = ERR_INIT;
    const char *ident_region = "?";     /* the region `ident` came from */
    int i, dry_run = 0, failed = 0, have_ident = 0;

    for (i = 1; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--dry-run") == 0)
            dry_run = 1;
        else
            return cmd_usage("upgrade", "unknown argument \"%s\"", ctx->argv[i]);
    }
    if (config_require_regions(c, &e) < 0 || cmd_load_keyring(ctx, &kr, &e) < 0)
        return cmd_fail(&e);
    for (i = 0; i < c->nregions; i++) {
        const struct region_conf *rc = &c->regions[i];
        struct view v = { rc->name, dry_run };
        struct upg_stats st;
        struct err re = ERR_INIT;

        if (ctx->region != NULL && strcmp(ctx->region, rc->name) != 0)
            continue;
        if (upg_region(c, rc, kr, &note_log_sink, dry_run, on_object, &v, &st, &re) < 0) {
            printf("region %s: FAILED: %s\n", rc->name, re.msg);
            log_error("%s", re.msg);
            failed++;
            continue;
        }
        if (st.empty) {
            printf("region %s: empty, nothing to upgrade (the first push creates its identity, unless this "
                   "host's spool remembers the region in known/: then the push is refused as an unmounted or "
                   "moved repository)\n",
                   rc->name);
            continue;
        }
        if (have_ident && st.ident.sysid != ident.sysid) {
            printf("region %s: FAILED: it holds cluster %llu, region %s cluster %llu\n", rc->name,
                   (unsigned long long)st.ident.sysid, ident_region, (unsigned long long)ident.sysid);
            failed++;
            continue;
        }
        ident = st.ident;
        ident_region = rc->name;
        have_ident = 1;
        if (st.already)
            printf("region %s: already a format %u repository of cluster %llu\n", rc->name, st.ident.format,
                   (unsigned long long)st.ident.sysid);
        else
            printf("region %s: %s %llu objects (%.1f MB), %llu already bound; cluster %llu, PostgreSQL %u%s\n",
                   rc->name, dry_run ? "would bind" : "bound", (unsigned long long)st.rewritten,
                   (double)st.bytes / (1 << 20), (unsigned long long)st.skipped, (unsigned long long)st.ident.sysid,
                   st.ident.pg_major, dry_run ? " (dry run)" : "");
    }
    if (have_ident && ctx->region == NULL) {
        struct upg_spool_stats ss;

        if (upg_spool(c, kr, &ident, dry_run, &ss, &e) < 0) {
            printf("spool: FAILED: %s\n", e.msg);
            log_error("%s", e.msg);
            failed++;
        } else if (ss.moved || ss.left) {
            printf("spool: %s %llu entries of walship 0.1.0 into the cluster's spool; %llu left for regions not "
                   "configured (in %s/queue)\n",
                   dry_run ? "would move" : "moved", (unsigned long long)ss.moved, (unsigned long long)ss.left,
                   c->spool_dir);
            if (ss.foreign)
                printf("spool: %llu of them are segments of another cluster (or not what their names say): left "
                       "where they are, never moved into this cluster's spool\n",
                       (unsigned long long)ss.foreign);
        }
    }
    fflush(stdout);
    keys_free(kr);
    return failed ? EXIT_FAILURE3 : 0;
}
