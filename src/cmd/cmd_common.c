/*
 * cmd_common — what several commands need at their edge: the keyring with
 * its one warning when nothing is encrypted.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backup_fetch.h"
#include "cluster.h"
#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "note.h"
#include "repo.h"
#include "utf8.h"
#include "util.h"

void cmd_other_region_hint(const struct cmd_ctx *ctx, const char *region, const char *backup, const char *dir,
                           const struct err *e)
{
    const struct config *c = ctx->conf;
    char others[512];
    size_t len = 0;
    int i;

    if (ctx->region != NULL || e->code == ERR_IO || e->code == ERR_NOMEM || e->code == ERR_USAGE ||
        e->code == ERR_CONFIG || e->code == ERR_INTERNAL)
        return;
    others[0] = '\0';
    for (i = 0; i < c->nregions && len < sizeof others; i++) {
        int n;

        if (strcmp(c->regions[i].name, region) == 0)
            continue;
        n = snprintf(others + len, sizeof others - len, "%s%s", len ? ", " : "", c->regions[i].name);
        if (n > 0)
            len += (size_t)n;
    }
    if (others[0] == '\0')
        return;
    log_warning("region %s could not give backup %s whole; another region may hold it: empty %s, then run again "
                "with --region (one of: %s; walship backup-list shows which hold it)", region, backup, dir, others);
}

int cmd_load_keyring(struct cmd_ctx *ctx, struct keyring **out, struct err *e)
{
    const struct config *c = ctx->conf;

    if (keys_load(c->key_file, c->old_key_files, out, e) < 0)
        return -1;
    if (c->key_file == NULL && keys_count(*out) > 0)
        log_warning("old_key_files are configured but no key_file: nothing can be written until key_file "
                    "is set to the current key");
    else if (c->key_file == NULL)
        log_warning("no key_file is configured: objects are written UNENCRYPTED (integrity-checked only); "
                    "run \"walship keygen FILE\" and set key_file");
    return 0;
}

int cmd_repo_open(struct cmd_ctx *ctx, const struct region_conf *rc, const struct keyring *kr, unsigned flags,
                  struct repo **out, struct err *e)
{
    struct repo *r = NULL;

    if (repo_open(rc, ctx->conf, &note_log_sink, kr, flags, &r, e) < 0)
        return -1;
    if (r->have_id) {
        if (ctx->seen_sysid == 0) {
            ctx->seen_sysid = r->id.sysid;
            strlcopy(ctx->seen_region, rc->name, sizeof ctx->seen_region);
        } else if (r->id.sysid != ctx->seen_sysid) {
            err_setf(e, ERR_FOREIGN,
                     "region %s holds the repository of cluster %llu but region %s that of cluster %llu: one "
                     "configuration serves one cluster (choose one with --region)",
                     rc->name, (unsigned long long)r->id.sysid, ctx->seen_region,
                     (unsigned long long)ctx->seen_sysid);
            repo_free(r);
            return -1;
        }
    }
    *out = r;
    return 0;
}

int cmd_cluster(struct cmd_ctx *ctx, const struct keyring *kr, unsigned flags, struct cluster_info *out,
                struct err *e)
{
    const struct config *c = ctx->conf;
    const char *dir = c->pgdata;
    int i;

    memset(out, 0, sizeof *out);
    if (dir == NULL && cluster_is_datadir("."))
        dir = ".";
    if (dir != NULL)
        return cluster_read_datadir(dir, out, e) < 0 ? err_prefix(e, "pgdata \"%s\"", dir) : 0;
    for (i = 0; (flags & CMD_CLUSTER_FROM_REGIONS) && i < c->nregions; i++) {
        struct repo *r = NULL;
        struct err re = ERR_INIT;

        if (cmd_repo_open(ctx, &c->regions[i], kr, REPO_OPEN_IDENTITY, &r, &re) == 0) {
            if (out->sysid == 0) {
                out->sysid = r->id.sysid;
                out->pg_major = r->id.pg_major;
                out->seg_size = r->id.seg_size;
            }
            repo_free(r);
            continue;   /* every region must name the same cluster */
        }
        if (re.code == ERR_FOREIGN) {
            *e = re;
            return -1;
        }
        log_debug("region %s: %s", c->regions[i].name, re.msg);
    }
    if (out->sysid != 0)
        return 0;
    return err_setf(e, ERR_NOREPO, "which cluster this is cannot be told: set pgdata (or run in the data "
                    "directory)%s", (flags & CMD_CLUSTER_FROM_REGIONS) ? ", or archive to a region first" : "");
}

json_t *cmd_json_str(const char *s)
{
    char *c;
    json_t *j;

    if (s == NULL)
        return json_null();
    if ((c = strdup(s)) == NULL)
        return NULL;
    utf8_scrub(c);
    j = json_string(c);
    free(c);
    return j;
}

const char *cmd_line(const char *s)
{
    static char ring[8][2048];
    static unsigned next;
    char *b = ring[next++ % 8];

    text_one_line(s != NULL ? s : "", b, sizeof ring[0]);
    return b;
}

const char *cmd_option_twice(int argc, char **argv)
{
    static char name[64];
    int i, k;

    for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        size_t n = strcspn(argv[i], "=");

        /* --tablespace-map is given once per tablespace */
        if (strncmp(argv[i], "--", 2) != 0 || n < 3 ||
            (n == strlen("--tablespace-map") && strncmp(argv[i], "--tablespace-map", n) == 0))
            continue;
        for (k = i + 1; k < argc && strcmp(argv[k], "--") != 0; k++)
            if (strncmp(argv[k], argv[i], n) == 0 && (argv[k][n] == '\0' || argv[k][n] == '=')) {
                snprintf(name, sizeof name, "%.*s", (int)n, argv[i]);
                return name;
            }
    }
    return NULL;
}

const char *cmd_option_misused(char **argv, int optind, const struct option *opts, int li)
{
    static char why[400];
    const char *name = opts[li].name, *given;
    int separate = optarg != NULL && optarg == argv[optind - 1];
    size_t n = strlen(name);

    given = argv[optind - 1 - separate];
    if (strncmp(given, "--", 2) != 0 || strncmp(given + 2, name, n) != 0 || (given[2 + n] != '\0' &&
                                                                            given[2 + n] != '='))
        snprintf(why, sizeof why, "\"%.80s\" stands for --%s: write it in full", given, name);
    else if (separate && strncmp(optarg, "--", 2) == 0)
        snprintf(why, sizeof why, "--%s needs a value, and \"%.80s\" is an option (write --%s=%.80s if that "
                 "is the value)", name, optarg, name, optarg);
    else
        return NULL;
    return why;
}

int cmd_option_value(const struct cmd_ctx *ctx, int *i, const char **val)
{
    const char *opt = ctx->argv[*i];

    if (*i + 1 >= ctx->argc)
        return cmd_usage(ctx->argv[0], "%s needs a value", opt);
    if (strncmp(ctx->argv[*i + 1], "--", 2) == 0)
        return cmd_usage(ctx->argv[0], "%s needs a value, and \"%s\" is an option", opt, cmd_line(ctx->argv[*i + 1]));
    *val = ctx->argv[++*i];
    return 0;
}

/* Where each tablespace went: a path the backup gave is said, not left
 * to be found later. */
void cmd_print_tablespaces(const struct manifest *m, const struct bkf_tsmap *map, size_t nmap)
{
    size_t i, k;

    for (i = 0; i < m->ntablespaces; i++) {
        const char *target = m->tablespaces[i].path;

        for (k = 0; k < nmap; k++)
            if (strcmp(map[k].old_path, target) == 0)
                target = map[k].new_path;
        printf("tablespace %u: %s (pg_tblspc/%u)%s\n", (unsigned)m->tablespaces[i].oid, target,
               (unsigned)m->tablespaces[i].oid, target == m->tablespaces[i].path ? ", the backup's path" : "");
    }
}
