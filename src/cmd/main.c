/*
 * main — walship's edge: global options, configuration, dispatch.
 *
 *   walship [--config FILE] [--log-level LEVEL] [--region NAME] COMMAND [ARGS]
 *
 * Global options may stand before or after the command name.  Only this
 * file and the command files print or choose an exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "log.h"
#include "note.h"
#include "stor.h"
#include "stor_conf.h"
#include "util.h"

#include "autoconf.h"

static const struct cmd commands[] = {
    { "config", "check the configuration and show each value with where it comes from",
      "usage: walship config check\n"
      "\n"
      "Reads the configuration (--config FILE, else $WALSHIP_CONFIG, else\n"
      "/etc/walship/walship.conf; then the WALSHIP_<KEY> environment and the\n"
      "global flags) and prints every key as walship understood it, with where\n"
      "its value comes from: FILE:LINE, the environment variable, the flag, or\n"
      "default.  Secrets (secret_access_key, session_token, a password in\n"
      "pg_conninfo) are shown as <redacted>.  Regions are listed in the order\n"
      "wal-push uses them, with their mode.  Then warnings: no key_file (WAL and\n"
      "backups archived UNENCRYPTED), a key file that cannot be loaded, an s3://\n"
      "region without credentials.\n"
      "Exit status: 0 the configuration is valid (warnings or not); 2 it is not\n"
      "(the error names FILE:LINE and the key), or no region is configured.\n",
      0, cmd_config_run },
    { "st", "look inside a region's storage: check, ls, get, put, rm",
      "usage: walship st check [--region R]\n"
      "       walship st ls [PREFIX] [--region R] [--long]\n"
      "       walship st get KEY FILE [--raw] [--region R]\n"
      "       walship st put FILE KEY [--raw] [--region R]\n"
      "       walship st rm KEY [--region R]\n"
      "\n"
      "check  preflight every region (or --region R): open the storage, write a\n"
      "       probe object, read it back, compare, delete it; prints one line per\n"
      "       region and exits 3 if any region failed.\n"
      "ls     list keys under PREFIX (relative to the region's prefix: wal/, backups/).\n"
      "get    download KEY into FILE (- for standard output); decoded unless --raw.\n"
      "put    upload FILE (- for standard input) as KEY; encoded unless --raw.\n"
      "rm     delete KEY.\n"
      "Without --region the first configured region is used (check: all).\n",
      1, cmd_st_run },
    { "keygen", "write a new encryption key file (mode 0600) and print its key id",
      "usage: walship keygen FILE\n"
      "\n"
      "Writes 32 random bytes to FILE (which must not exist) with mode 0600 and\n"
      "prints the key id that objects encrypted with it will carry.  Point\n"
      "key_file at it; keep the previous key in old_key_files to read old objects.\n",
      0, cmd_keygen_run },
    { "wal-push", "archive one WAL file to every region (archive_command = 'walship wal-push %p')",
      "usage: walship wal-push PATH\n"
      "\n"
      "Archives the WAL file PATH (a segment, .partial, .history or .backup file)\n"
      "to every region: encoded once, uploaded to every sync region in parallel\n"
      "and fsync'd into the local spool for every async region.  Exits 0 only\n"
      "when the file is durable in every sync region and in every async region\n"
      "or the spool.  Also pushes ahead the next .ready segments (up to\n"
      "parallel at once), and starts the background shipper for async regions.\n"
      "A file already archived with the same content succeeds; with different\n"
      "content it fails and nothing is overwritten.\n",
      1, cmd_wal_push_run },
    { "wal-fetch", "fetch one WAL file (restore_command = 'walship wal-fetch %f %p')",
      "usage: walship wal-fetch NAME DEST [--region R] [--skip-region R2]... [--no-prefetch]\n"
      "\n"
      "Fetches the archived WAL file NAME into DEST, trying --region R first and\n"
      "then the other regions, less those given with --skip-region (restore\n"
      "writes it for a region it could not reach).  DEST appears only once the whole object has been\n"
      "authenticated.  Prefetches the next segments in the background into\n"
      "DEST's directory (.walship-prefetch/).\n"
      "Exit status: 0 fetched; 1 no region has NAME (every region answered a\n"
      "definite \"no such object\"); 250 anything else (corrupt object, wrong key,\n"
      "region unreachable, bad configuration), which makes PostgreSQL stop\n"
      "recovery instead of promoting early.\n",
      1, cmd_wal_fetch_run },
    { "ship", "drain the async spool to lagging regions",
      "usage: walship ship [--once]\n"
      "\n"
      "Uploads the files waiting in the spool to their async regions, oldest\n"
      "first, retrying regions that fail with backoff, and exits when the spool\n"
      "is empty (or after 10 minutes without progress).  wal-push starts one in\n"
      "the background when needed; only one runs at a time.  --once makes one\n"
      "pass and exits 3 if anything is left.\n",
      1, cmd_ship_run },
    { "backup-push", "take a base backup (full, or --incremental) of the running cluster to every region",
      "usage: walship backup-push [--pgdata DIR] [--pg-conninfo CONNINFO] [--part-size SIZE] [--incremental]\n"
      "\n"
      "Starts a non-exclusive backup (pg_backup_start), copies PGDATA and its\n"
      "tablespaces as pax tar parts (several at once, each compressed and\n"
      "encrypted once and uploaded to every region), stops the backup, checks\n"
      "that every region has the WAL the backup needs, and writes the manifest\n"
      "last.  A region that failed gets no manifest: the command exits 3 and\n"
      "names it.  Only one backup-push runs at a time (lock in spool_dir).\n"
      "Progress is shown on a terminal; one summary line at the end.\n"
      "--incremental stores only the blocks changed since the newest complete\n"
      "backup present in every region (its parent); without one it takes a full\n"
      "backup and says why (docs/BACKUP.md).\n",
      1, cmd_backup_push_run },
    { "backup-list", "list the backups of every region",
      "usage: walship backup-list [--region R] [--json] [--all]\n"
      "\n"
      "For each region (or only R): every complete backup with its start and\n"
      "stop time and LSN, timeline, original and stored size.  --all also lists\n"
      "incomplete backups (no manifest: in progress, or left by a killed\n"
      "backup-push) for clean-up.  --json prints one JSON document.  A region\n"
      "that cannot be listed is reported and the command exits 3.\n",
      1, cmd_backup_list_run },
    { "backup-fetch", "unpack one backup into an empty directory",
      "usage: walship backup-fetch NAME|LATEST DIR [--region R] [--tablespace-map OLD=NEW]... [--allow-unmounted]\n"
      "\n"
      "Downloads the backup's parts in parallel, decodes and authenticates them,\n"
      "and extracts them into DIR (empty or absent), checking every file's\n"
      "SHA-256 against the manifest.  Paths outside DIR, links and devices in a\n"
      "tampered archive are refused.  Tablespaces go to their original paths or\n"
      "to NEW with --tablespace-map.  backup_label is written last, so a failed\n"
      "fetch never looks like a usable backup.  Without --region the first\n"
      "region that has the backup is used.  --allow-unmounted: see restore.\n",
      1, cmd_backup_fetch_run },
    { "restore", "point-in-time restore into a fresh instance (DR drill or failover)",
      "usage: walship restore --pgdata DIR [--region R | --from URL [--endpoint URL] [--path-style] [--ca-file F]]\n"
      "                       [--key-file F] [--backup NAME]\n"
      "                       [--target-time T | --target-lsn L | --target-xid X | --target-name N |\n"
      "                        --target-latest | --target-immediate]\n"
      "                       [--target-action promote|pause|shutdown] [--target-timeline latest|current|N]\n"
      "                       [--tablespace-map OLD=NEW]... [--keep-archive] [--keep-restore-command] [--allow-unmounted]\n"
      "                       [--pg-bin DIR] [--start [--port P] [--pg-user ROLE] [--start-timeout S]\n"
      "                       [--stall-timeout S]]\n"
      "       walship restore --standby --pgdata DIR [...] [--start ...]\n"
      "\n"
      "Picks the newest backup that can reach the target (for a time or LSN: the\n"
      "newest that ended before it), checks that the archive has every WAL\n"
      "segment from that backup on, fetches it into DIR (empty or absent), and\n"
      "writes recovery.signal and the recovery settings: restore_command =\n"
      "walship wal-fetch with the same region and key options, the target, the\n"
      "action (default promote), recovery_target_timeline (default latest).\n"
      "archive_mode is turned off in the restored instance unless --keep-archive,\n"
      "so a drill never writes into the production archive.\n"
      "Restore owns the recovery settings: the ones the backup carries\n"
      "(recovery_target*, restore_command, primary_conninfo, ... in postgresql.conf,\n"
      "postgresql.auto.conf and their includes) are commented out and listed,\n"
      "standby.signal and recovery.signal removed (docs/RESTORE.md).\n"
      "--target-latest asks for the archive's last record (recovery_target_lsn).\n"
      "With --start, starts PostgreSQL paused at the target, checks where it\n"
      "stopped, then ends recovery (resuming: a promotion), and prints the backup used, the\n"
      "recovery point and the time of each phase (the measured RTO).  Once\n"
      "promoted, the recovery settings are removed from postgresql.auto.conf\n"
      "(restore_command stays with --keep-restore-command).  A restore that\n"
      "stops short, a server that exits, a failed login (--pg-user ROLE), no\n"
      "connection within --start-timeout (600 s) or no replay progress for\n"
      "--stall-timeout (300 s): exit 3, not promoted.\n"
      "Without a configuration file: --from s3://BUCKET/PREFIX (or file:///DIR),\n"
      "--region names the region (and the SigV4 region unless --aws-region),\n"
      "credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, --ca-file F for\n"
      "an endpoint whose certificate a private CA signed (kept in restore_command).\n"
      "Target times without a zone are UTC.  DIR below an unmounted /etc/fstab mount\n"
      "point is refused unless --allow-unmounted.\n"
      "--standby makes a warm standby instead: standby.signal, restore_command,\n"
      "hot_standby = on, recovery_target_timeline = latest and no target; it\n"
      "replays the region's archive until promoted (walship promote DIR).  With\n"
      "--start it returns once the standby accepts read-only connections and\n"
      "leaves it running.  No --target-* option goes with it.\n",
      1, cmd_restore_run },
    { "promote", "promote a warm standby made by restore --standby, and time it",
      "usage: walship promote DIR [--pg-user ROLE] [--force] [--keep-restore-command] [--timeout S]\n"
      "\n"
      "Promotes the standby running in DIR (pg_promote): PostgreSQL first replays\n"
      "what the archive still holds, then becomes writable.  Prints the new\n"
      "timeline, where recovery ended and the time from the request until it\n"
      "writes; then checkpoints and removes restore's recovery settings from\n"
      "postgresql.auto.conf (restore_command stays with --keep-restore-command).\n"
      "Refuses while wal-fetch on the standby is failing (it would end recovery\n"
      "short of the archive) unless --force.  Needs no configuration file.\n"
      "Exit status: 0 promoted (or already); 2 usage, or DIR is not a standby;\n"
      "3 any other failure, or wal-fetch failed during the promotion.\n",
      0, cmd_promote_run },
    { "delete", "apply the retention policy: old backups, then WAL no retained backup needs",
      "usage: walship delete [--region R] [--dry-run]\n"
      "\n"
      "For each region (or only R), applies its retention policy (docs/RETENTION.md):\n"
      "a complete backup is kept when it is among the newest retain_full or stopped\n"
      "less than retain_days ago (and so is the newest full backup older than that:\n"
      "the window's anchor); the newest complete backup is always kept, and\n"
      "with neither key set no backup and no WAL is deleted.  With retain_days, a\n"
      "backup stamped more than 300 s ahead of this host's clock makes the region\n"
      "delete nothing (exit 3).  Expired backups lose\n"
      "their manifest first, so a half-deleted backup is invisible.  Then WAL that\n"
      "no retained backup needs goes: segments, .partial and .backup files before\n"
      "the oldest retained backup's start (on that timeline or older ones);\n"
      ".history files are always kept.  Incomplete backups (no manifest) whose\n"
      "newest object is older than garbage_hours are removed (0: any age); a backup\n"
      "in progress is left alone.  --dry-run prints every backup and WAL object that\n"
      "would go and deletes nothing.  A region that fails is reported, the others\n"
      "still run, and the command exits 3.\n",
      1, cmd_delete_run },
    { "verify", "check that every backup is complete and has its WAL (--full: decode everything)",
      "usage: walship verify [--region R] [--full] [--json]\n"
      "\n"
      "For each region (or only R) and each complete backup: every part the\n"
      "manifest lists exists with the stored size it gives, backup_label (and\n"
      "tablespace_map) exist, and the WAL archive holds every segment from the\n"
      "backup's start to the newest archived segment of the newest timeline\n"
      "descending from it, following the .history files.  --full also downloads,\n"
      "decodes and authenticates every object, reads every part as a tar stream\n"
      "and compares every file's size and SHA-256 with the manifest.  Problems\n"
      "are named by object (docs/VERIFY.md); exit 3 when anything is wrong.\n",
      1, cmd_verify_run },
    { "status", "per region: newest backup, newest WAL, lag, spool backlog (a monitoring check)",
      "usage: walship status [--json | --prometheus] [--standby DIR [--pg-user ROLE]]\n"
      "\n"
      "For each region: the newest backup and its age, the newest archived WAL\n"
      "segment and its time, the lag behind the primary (segments, bytes,\n"
      "seconds; from pg_current_wal_lsn() when pg_conninfo is set, and from the\n"
      "age of the oldest spooled file), the spool backlog and the last error the\n"
      "shipper logged.  --prometheus prints node_exporter textfile metrics\n"
      "(walship_*, docs/VERIFY.md).  Exit 2 when a region lags more than\n"
      "rpo_seconds or its newest backup is older than backup_max_age or stamped\n"
      "more than 300 s ahead of this host's clock (a wrong clock: retain_days\n"
      "deletes nothing then), 3 when the status could not be taken, 0 otherwise.\n"
      "--standby DIR adds the warm standby running in DIR (restore --standby):\n"
      "its replay position, its lag behind the first region (or --region) in\n"
      "segments and seconds, and wal-fetch's last answers there (why it stalls);\n"
      "an alarm when it is down, promoted, failing to fetch or lags past\n"
      "rpo_seconds.\n",
      1, cmd_status_run },
    { "copy", "copy backups and WAL from one region to another, byte for byte",
      "usage: walship copy --from R1 --to R2 [--since BACKUP] [--dry-run]\n"
      "\n"
      "Seeds a new region, or catches one up after an outage, from another\n"
      "configured region.  For each complete backup of R1 (or, with --since, that\n"
      "backup and the newer ones) that R2 has no manifest for, copies every object\n"
      "of the backup and its manifest last; then every WAL file from the oldest\n"
      "of those backups' start segment on, and every timeline history file.\n"
      "Objects are copied byte for byte: nothing is decoded or re-encrypted and\n"
      "the primary is not contacted.  An object R2 already has with the same\n"
      "size is skipped, so an interrupted copy is finished by running it again;\n"
      "WAL already in R2 is never overwritten.  --dry-run prints what would be\n"
      "copied.  Prints objects and bytes copied and skipped per kind.\n"
      "Exit status: 0 done; 1 R1 has no backup BACKUP; 2 usage or configuration;\n"
      "3 any other failure (run it again to resume).\n",
      1, cmd_copy_run },
    { "upgrade", "bind a repository written by walship 0.1.0 (once, after installing this version)",
      "usage: walship upgrade [--region R] [--dry-run]\n"
      "\n"
      "Repositories of walship 0.1.0 hold objects that are not bound to their name\n"
      "and cluster, and no repository identity; this version refuses them.  For\n"
      "each region (or only R) without an identity, upgrade learns the cluster\n"
      "from the newest manifest (or a WAL segment), decodes every object still\n"
      "in format 1, checks it (a segment must be the one its name says, of that\n"
      "cluster; a manifest must name its folder), encodes it again bound to its\n"
      "key and cluster with the current key, puts it back in place, and writes\n"
      "the identity last.  Objects already bound are skipped: an interrupted\n"
      "upgrade is finished by running it again.  Then the spool entries 0.1.0\n"
      "left for async regions are moved into the cluster's spool.  --dry-run\n"
      "counts what would be done.  Exit 3 when a region fails (it is named).\n",
      1, cmd_upgrade_run },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *out)
{
    size_t i;

    fprintf(out,
            "walship %s — PostgreSQL WAL and backup shipping to several regions\n"
            "\n"
            "usage: walship [--config FILE] [--log-level LEVEL] [--region NAME] COMMAND [ARGS]\n"
            "       walship --from URL [--endpoint URL] [--path-style] [--aws-region R] [--ca-file F] [--key-file F]\n"
            "               COMMAND ...\n"
            "       walship help COMMAND\n"
            "       walship --version\n"
            "\n"
            "commands:\n",
            PACKAGE_VERSION);
    for (i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "configuration: --config FILE, else $WALSHIP_CONFIG, else /etc/walship/walship.conf;\n"
            "WALSHIP_<KEY> environment variables override global keys.\n"
            "exit status: 0 success, 1 not found, 2 usage or configuration error, 3 other failure.\n");
}

static const struct cmd *find_cmd(const char *name)
{
    size_t i;

    for (i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int cmd_fail(const struct err *e)
{
    /* A failure path that forgot to say why still fails: never exit 0. */
    if (e->code == ERR_OK) {
        log_error("%s", e->msg[0] ? e->msg : "failed (no reason was recorded: a walship bug, please report it)");
        return EXIT_FAILURE3;
    }
    log_error("%s", e->msg);
    return err_exit_status(e);
}

int cmd_usage(const char *name, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "walship %s: %s\n", name, msg);
    fprintf(stderr, "Try \"walship help %s\".\n", name);
    return EXIT_USAGE;
}

int cmd_open_region(struct cmd_ctx *ctx, const char *name, struct stor **out, struct err *e)
{
    const struct region_conf *rc;

    if (config_require_regions(ctx->conf, e) < 0)
        return -1;
    if (name == NULL)
        name = ctx->region;
    if (name == NULL) {
        rc = &ctx->conf->regions[0];
    } else {
        rc = config_region(ctx->conf, name);
        if (rc == NULL)
            return err_setf(e, ERR_CONFIG, "no region named \"%s\" is configured", name);
    }
    return stor_open(rc, ctx->conf, &note_log_sink, out, e);
}

/* Take a global option out of argv; returns 1 if argv[*i] was one. */
static int take_opt(int *argc, char **argv, int i, const char *name, const char **value, int *bad)
{
    size_t n = strlen(name);
    int used;

    if (strncmp(argv[i], name, n) != 0)
        return 0;
    if (argv[i][n] != '=' && argv[i][n] != '\0')
        return 0;
    /* given twice, which one was meant?  (the last one used to win); a
     * value that is an option: it was forgotten (--config --region R) */
    if ((argv[i][n] == '\0' && (i + 1 >= *argc || strncmp(argv[i + 1], "--", 2) == 0)) || *value != NULL) {
        fprintf(stderr, "walship: option %s %s\n", name, *value != NULL ? "is given twice" : "needs a value");
        *bad = 1;
        return 1;
    }
    *value = argv[i][n] == '=' ? argv[i] + n + 1 : argv[i + 1];
    used = argv[i][n] == '=' ? 1 : 2;
    memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used + 1) * sizeof *argv);
    *argc -= used;
    return 1;
}

/* The global options, taken out of argv wherever they stand. */
struct global_opts {
    const char *config_path, *level_str, *region;
    const char *from, *key_file, *endpoint, *aws_region, *ca_file;
    int path_style;
};

/* --from URL (a bare DR host: the one region to read from, instead of the
 * configured ones), its options, and --key-file. */
static int apply_dr_options(struct config *c, const struct global_opts *g, struct err *e)
{
    const char *name = g->region ? g->region : "dr";

    if (g->key_file != NULL && config_set(c, "key_file", g->key_file, "--key-file", e) < 0)
        return -1;
    if (g->from == NULL) {
        /* never ignored silently: they would mean something else than they look */
        const char *lone = g->ca_file ? "--ca-file" : g->endpoint ? "--endpoint" : g->aws_region ? "--aws-region" :
                           g->path_style ? "--path-style" : NULL;

        if (lone != NULL)
            return err_setf(e, ERR_USAGE, "%s goes with --from (with a configuration file, set it in the "
                            "region's section)", lone);
        return 0;
    }
    /* (not --aws-region: restore writes it into restore_command for any url) */
    if (str_has_prefix(g->from, "file://") && (g->ca_file || g->endpoint || g->path_style))
        return err_setf(e, ERR_USAGE, "%s is an S3 option: a file:// region would not use it",
                        g->ca_file ? "--ca-file" : g->endpoint ? "--endpoint" : "--path-style");
    config_drop_regions(c);
    if (config_add_region_url(c, name, g->from, e) < 0)
        return -1;
    if (g->path_style && config_region_set(c, name, "path_style", "true", "--path-style", e) < 0)
        return -1;
    if (g->ca_file != NULL && config_region_set(c, name, "ca_file", g->ca_file, "--ca-file", e) < 0)
        return -1;
    if (g->endpoint != NULL && config_region_set(c, name, "endpoint", g->endpoint, "--endpoint", e) < 0)
        return -1;
    return config_region_set(c, name, "aws_region",
                             g->aws_region ? g->aws_region : g->region ? g->region : "us-east-1",
                             g->aws_region ? "--aws-region" : g->region ? "--region" : "default", e);
}

/* 0, or -1 after a message (exit EXIT_USAGE). */
static int take_global_opts(int *argc, char **argv, struct global_opts *g)
{
    int i, bad = 0;

    memset(g, 0, sizeof *g);
    for (i = 1; i < *argc;) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (take_opt(argc, argv, i, "--config", &g->config_path, &bad) ||
            take_opt(argc, argv, i, "--log-level", &g->level_str, &bad) ||
            take_opt(argc, argv, i, "--region", &g->region, &bad) ||
            /* copy has its own --from REGION (after the command name) */
            (!(i > 1 && strcmp(argv[1], "copy") == 0) && take_opt(argc, argv, i, "--from", &g->from, &bad)) ||
            take_opt(argc, argv, i, "--key-file", &g->key_file, &bad) ||
            take_opt(argc, argv, i, "--endpoint", &g->endpoint, &bad) ||
            take_opt(argc, argv, i, "--ca-file", &g->ca_file, &bad) ||
            take_opt(argc, argv, i, "--aws-region", &g->aws_region, &bad)) {
            if (bad)
                return -1;
            continue;
        }
        if (strcmp(argv[i], "--path-style") == 0) {
            g->path_style = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof *argv);
            (*argc)--;
            continue;
        }
        i++;
    }
    return 0;
}

/* --version, --help, help [COMMAND], an unknown command, COMMAND --help:
 * the exit status, or -1 to run *cmd. */
static int help_or_command(int argc, char **argv, const struct cmd **cmd)
{
    int i;

    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("walship %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            print_help(stdout);
            return 0;
        }
        *cmd = find_cmd(argv[2]);
        if (*cmd == NULL) {
            fprintf(stderr, "walship: unknown command \"%s\"\n", argv[2]);
            return EXIT_USAGE;
        }
        fputs((*cmd)->usage, stdout);
        return 0;
    }
    *cmd = find_cmd(argv[1]);
    if (*cmd == NULL) {
        fprintf(stderr, "walship: unknown command \"%s\"\n\n", argv[1]);
        print_help(stderr);
        return wal_fetch_cmdline_fail(argc, argv, "the command line could not be read (see above)");
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "-h") != 0)
            continue;
        /* exit 0 from archive_command or restore_command means "done": help
         * there only when it is the one argument */
        if (argc > 3 && (strcmp((*cmd)->name, "wal-push") == 0 || strcmp((*cmd)->name, "wal-fetch") == 0)) {
            fprintf(stderr, "walship: %s given to %s with other arguments: its exit status 0 would say the "
                    "file was %s (for help: walship help %s)\n", argv[i], (*cmd)->name,
                    strcmp((*cmd)->name, "wal-push") == 0 ? "archived" : "restored", (*cmd)->name);
            return wal_fetch_cmdline_fail(argc, argv, "the command line could not be read (see above)");
        }
        fputs((*cmd)->usage, stdout);
        return 0;
    }
    return -1;
}

/* The commands that work on every region and had --region ignored without
 * a word ('walship --region eu backup-push' backed up to all); with --from,
 * --region names the one region. */
static int region_ignored(const char *cmd)
{
    static const char *const all[] = { "config", "keygen", "wal-push", "ship", "backup-push", "copy" };
    size_t i;

    for (i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(cmd, all[i]) == 0)
            return 1;
    return 0;
}

/* The configuration with the global options applied, checked for what
 * `cmd` needs; 0 or -1 with e set (ctx->conf freed). */
static int load_config(const struct global_opts *g, const struct cmd *cmd, struct cmd_ctx *ctx, struct err *e)
{
    enum log_level level = LOG_INFO;

    if (config_load(g->config_path, g->config_path != NULL, &ctx->conf, e) < 0)
        return -1;
    if (g->level_str != NULL)
        (void)log_parse_level(g->level_str, &level);    /* checked by the caller */
    if ((g->from != NULL || g->key_file != NULL || g->ca_file != NULL || g->endpoint != NULL ||
         g->aws_region != NULL || g->path_style || g->level_str != NULL) &&
        (apply_dr_options(ctx->conf, g, e) < 0 ||
         (g->level_str != NULL && config_set(ctx->conf, "log_level", g->level_str, "--log-level", e) < 0)))
        goto fail;
    if (cmd->needs_config && ctx->conf->path == NULL && ctx->conf->nregions == 0) {
        err_setf(e, ERR_CONFIG,
                 "no configuration: give --config FILE or set WALSHIP_CONFIG (default /etc/walship/walship.conf)");
        goto fail;
    }
    log_set_level(g->level_str != NULL ? level : ctx->conf->log_level);
    if (g->region != NULL && g->from == NULL && region_ignored(cmd->name)) {
        err_setf(e, ERR_USAGE, "%s does not take --region: it would be ignored (remove it)", cmd->name);
        goto fail;
    }
    if (g->region != NULL && config_region(ctx->conf, g->region) == NULL && cmd->needs_config) {
        err_setf(e, ERR_CONFIG, "no region named \"%s\" is configured%s%s", g->region,
                 ctx->conf->path ? " in " : "", ctx->conf->path ? ctx->conf->path : "");
        goto fail;
    }
    return 0;
fail:
    config_free(ctx->conf);
    ctx->conf = NULL;
    return -1;
}

int main(int argc, char **argv)
{
    struct global_opts g;
    const struct cmd *cmd = NULL;
    struct cmd_ctx ctx;
    struct err e = ERR_INIT;
    enum log_level level;
    const char *twice;
    int rc, is_fetch;

    cmd_std_fds_taken();
    signal(SIGPIPE, SIG_IGN);
    spawn_note_inherited();
    if (take_global_opts(&argc, argv, &g) < 0)
        return wal_fetch_cmdline_fail(argc, argv, "a global option could not be read (see above)");
    if ((rc = help_or_command(argc, argv, &cmd)) >= 0)
        return cmd_output_finish(NULL, rc);
    /* restore_command: a status of 1..125 would end recovery (cmd_wal_fetch.c),
     * so an early failure of wal-fetch is answered as any of its failures
     * (wal_fetch_fail): noted on a standby, which waits, and 250 elsewhere. */
    is_fetch = strcmp(cmd->name, "wal-fetch") == 0;
    if (!is_fetch && (twice = cmd_option_twice(argc - 2, argv + 2)) != NULL)
        return cmd_usage(cmd->name, "%s is given twice", twice);

    log_init(cmd->name, LOG_INFO);
    if (g.level_str != NULL && log_parse_level(g.level_str, &level) < 0) {
        if (is_fetch) {
            err_setf(&e, ERR_USAGE, "bad --log-level \"%s\" (use error, warning, info or debug)", g.level_str);
            return wal_fetch_early_fail(argc, argv, 2, e.msg);
        }
        fprintf(stderr, "walship: bad --log-level \"%s\" (use error, warning, info or debug)\n", g.level_str);
        return EXIT_USAGE;
    }
    memset(&ctx, 0, sizeof ctx);
    if (load_config(&g, cmd, &ctx, &e) < 0)
        return is_fetch ? wal_fetch_early_fail(argc, argv, 2, e.msg) : cmd_fail(&e);
    ctx.region = g.region;
    ctx.argc = argc - 1;
    ctx.argv = argv + 1;
    rc = cmd->run(&ctx);
    config_free(ctx.conf);
    return cmd_output_finish(cmd->name, rc);
}
