/*
 * walship config check — print the effective configuration: every key as
 * walship understood it and where it came from (FILE:LINE, WALSHIP_KEY,
 * --flag, default), secrets redacted; the regions in order with their mode;
 * then warnings about what would archive unencrypted or fail to connect.
 * A configuration that does not load never gets here: main prints its
 * FILE:LINE: key "..." error and exits 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "keys.h"
#include "util.h"

struct show {
    const struct config *c;
    int region;             /* section printed last; -2: none yet */
};

static int show_item(void *arg, const struct config_item *it)
{
    struct show *sh = arg;

    if (it->region != sh->region) {
        sh->region = it->region;
        if (it->region < 0)
            printf("[global]\n");
        else
            printf("\n[region %s]  # region %d of %d, mode %s\n", it->section, it->region + 1, sh->c->nregions,
                   sh->c->regions[it->region].mode == REGION_ASYNC ? "async" : "sync");
    }
    printf("%-19s = %-32s  # %s\n", it->key, it->value != NULL ? it->value : "(not set)", it->origin);
    return 0;
}

static int warnings(const struct config *c)
{
    struct keyring *kr = NULL;
    struct err e = ERR_INIT;
    int i, n = 0;

    if (c->key_file == NULL && c->old_key_files != NULL && c->old_key_files[0] != NULL) {
        printf("warning: old_key_files is set but key_file is not: wal-push and backup-push will fail "
               "(set key_file to the current key)\n");
        n++;
    } else if (c->key_file == NULL) {
        printf("warning: key_file is not set: WAL and backups are archived UNENCRYPTED "
               "(run \"walship keygen FILE\" and set key_file = FILE)\n");
        n++;
    }
    if (keys_load(c->key_file, c->old_key_files, &kr, &e) < 0) {
        printf("warning: %s: wal-push, backup-push and restore will fail\n", e.msg);
        n++;
    }
    keys_free(kr);
    for (i = 0; i < c->nregions; i++) {
        const struct region_conf *r = &c->regions[i];
        const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");

        if (!str_has_prefix(r->url, "s3://"))
            continue;
        if ((r->access_key_id == NULL) != (r->secret_access_key == NULL)) {
            printf("warning: region %s: access_key_id and secret_access_key must be set together\n", r->name);
            n++;
        } else if (r->credentials != NULL && strcmp(r->credentials, "static") == 0 && r->access_key_id == NULL) {
            printf("warning: region %s: credentials = static but access_key_id and secret_access_key are not "
                   "set\n", r->name);
            n++;
        } else if (r->credentials != NULL && strcmp(r->credentials, "env") == 0 &&
                   (ak == NULL || *ak == '\0' || sk == NULL || *sk == '\0')) {
            printf("warning: region %s: credentials = env but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not "
                   "set\n", r->name);
            n++;
        }
        /* auto and the other sources are resolved when the region is opened:
         * `walship st check` shows which one was used */
    }
    return n;
}

int cmd_config_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    struct show sh = { c, -2 };
    struct err e = ERR_INIT;
    int nwarn;

    if (ctx->argc < 2 || strcmp(ctx->argv[1], "check") != 0)
        return cmd_usage("config", "the only subcommand is \"check\"");
    if (ctx->argc > 2)
        return cmd_usage("config", "config check takes no arguments");
    if (c->path != NULL)
        printf("# configuration file %s\n", c->path);
    else
        printf("# no configuration file: built-in defaults and the environment\n");
    printf("# each value as walship reads it, and where it comes from\n");
    if (config_walk(c, show_item, &sh, &e) < 0)
        return cmd_fail(&e);
    printf("\n");
    nwarn = warnings(c);
    if (config_require_regions(c, &e) < 0)
        return cmd_fail(&e);
    printf("configuration is valid%s\n", nwarn ? ", with the warnings above" : "");
    if (fflush(stdout) != 0) {
        err_setf(&e, ERR_IO, "could not write to standard output");
        return cmd_fail(&e);
    }
    return 0;
}
