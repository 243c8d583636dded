/*
 * cmd_copy — `walship copy --from R1 --to R2 [--since BACKUP] [--dry-run]`:
 * seed a new region, or catch one up after an outage, from another region.
 * Parses the arguments, opens both regions and calls the copy engine
 * (src/maint/copy.h, which says how), then prints the tallies.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "note.h"
#include "copy.h"
#include "keys.h"
#include "mapread.h"
#include "repo.h"
#include "util.h"

static void print_tally(const char *what, const struct copy_tally *t, int dry_run)
{
    printf("%-10s %llu %s (%llu bytes), %llu skipped (%llu bytes, already there)\n", what,
           (unsigned long long)t->copied, dry_run ? "to copy" : "copied", (unsigned long long)t->copied_bytes,
           (unsigned long long)t->skipped, (unsigned long long)t->skipped_bytes);
}

static void print_would_copy(const char *key, uint64_t size, void *arg)
{
    (void)arg;
    if (strcmp(key, REPO_KEY_IDENTITY) == 0)
        printf("would copy %s (the repository identity)\n", key);
    else
        printf("would copy %s (%llu bytes)\n", key, (unsigned long long)size);
}

static int parse_args(struct cmd_ctx *ctx, const char **from, const char **to, struct copy_opts *o)
{
    static const struct option opts[] = {
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "since", required_argument, NULL, 's' },
        { "dry-run", no_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    const char *why;
    int c, li = 0;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(ctx->argc, ctx->argv, ":", opts, &li)) != -1) {
        if (c != '?' && c != ':' && (why = cmd_option_misused(ctx->argv, optind, opts, li)) != NULL)
            return cmd_usage("copy", "%s", why);
        switch (c) {
        case 'f': *from = optarg; break;
        case 't': *to = optarg; break;
        case 's': o->since = optarg; break;
        case 'n': o->dry_run = 1; break;
        case ':': return cmd_usage("copy", "option \"%s\" needs a value", ctx->argv[optind - 1]);
        default: return cmd_usage("copy", "unknown option \"%s\"", ctx->argv[optind - 1]);
        }
    }
    if (optind < ctx->argc)
        return cmd_usage("copy", "unexpected argument \"%s\"", ctx->argv[optind]);
    if (*from == NULL || *to == NULL)
        return cmd_usage("copy", "give both --from REGION and --to REGION");
    if (strcmp(*from, *to) == 0)
        return cmd_usage("copy", "--from and --to name the same region (%s)", *from);
    return 0;
}

int cmd_copy_run(struct cmd_ctx *ctx)
{
    struct copy_opts o = { NULL, 0, print_would_copy, NULL, &note_log_sink };
    struct copy_result res;
    struct err e = ERR_INIT;
    struct keyring *kr = NULL;
    struct repo *src = NULL, *dst = NULL;
    const char *from = NULL, *to = NULL;
    uint64_t t0 = now_ms();
    int rc;

    (void)mapread_install();    /* before any thread: file:// objects read from a mapping (mapread.h) */
    if ((rc = parse_args(ctx, &from, &to, &o)) != 0)
        return rc;
    if (config_require_regions(ctx->conf, &e) < 0)
        return cmd_fail(&e);
    if (config_region(ctx->conf, from) == NULL || config_region(ctx->conf, to) == NULL) {
        err_setf(&e, ERR_CONFIG, "no region named \"%s\" is configured",
                 config_region(ctx->conf, from) == NULL ? from : to);
        return cmd_fail(&e);
    }
    /* Keys to read R1's manifests and to authenticate every object on
     * its way (copy_obj.c): nothing is re-encrypted. */
    if (keys_load(ctx->conf->key_file, ctx->conf->old_key_files, &kr, &e) < 0)
        return cmd_fail(&e);
    if (cmd_repo_open(ctx, config_region(ctx->conf, from), kr, REPO_OPEN_IDENTITY, &src, &e) < 0 ||
        repo_open(config_region(ctx->conf, to), ctx->conf, &note_log_sink, kr, 0, &dst, &e) < 0 ||
        copy_regions(src, dst, &o, &res, &e) < 0) {
        rc = cmd_fail(&e);
    } else {
        printf("copy %s -> %s%s: %d backups considered (%d already there), WAL from %s\n", from, to,
               o.dry_run ? " (dry run)" : "", res.nbackups, res.present,
               res.floor_wal[0] ? res.floor_wal : "the beginning");
        print_tally("backups", &res.backups, o.dry_run);
        print_tally("manifests", &res.manifests, o.dry_run);
        print_tally("wal", &res.wal, o.dry_run);
        printf("%s in %.1f s\n", o.dry_run ? "nothing copied (dry run)" : "done", (double)(now_ms() - t0) / 1000.0);
        fflush(stdout);
    }
    repo_free(dst);
    repo_free(src);
    keys_free(kr);
    return rc;
}
