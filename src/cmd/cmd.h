/*
 * cmd — the command table and what every command receives.
 *
 * src/cmd/main.c parses global options (--config, --log-level, --region, -h),
 * loads the configuration when the command needs one, and calls the
 * command's run() with the remaining arguments (argv[0] is the command
 * name).  A command returns the process exit status (DESIGN.md §5: 0, 1 not
 * found, 2 usage/config, 3 other failure); commands are the only code below
 * main that prints to stdout or logs errors for the user.
 */
#ifndef WALSHIP_CMD_H
#define WALSHIP_CMD_H

#include <getopt.h>
#include "config.h"

struct cmd_ctx {
    struct config *conf;        /* never NULL: defaults when no file */
    const char *region;         /* --region, or NULL */
    int argc;
    char **argv;
    /* the first repository identity a command met (cmd_repo_open) */
    uint64_t seen_sysid;
    char seen_region[64];
    /* restore: the regions it could not open, space-separated; the
     * restore_command it writes does not ask them (docs/RESTORE.md) */
    char unasked[1024];
};

struct cmd {
    const char *name;
    const char *summary;        /* one line for `walship --help` */
    const char *usage;          /* full text for `walship help NAME` */
    int needs_config;           /* 1: a config file must load */
    int (*run)(struct cmd_ctx *ctx);
};

/* Print an err for the user (log at error level) and return its exit status. */
int cmd_fail(const struct err *e);
/* A JSON string of `s` made valid UTF-8 (utf8.h: a name from a listing, a
 * path or a server's message is only bytes, and jansson drops what is not
 * UTF-8); JSON null when `s` is NULL; NULL when out of memory. */
struct json_t;
struct json_t *cmd_json_str(const char *s);
/* `s` (a name from a listing, a server's message) as one line of text for
 * a command's text output (text_one_line): a line break or an escape
 * sequence in it cannot forge a line.  A buffer of a ring of 8: valid
 * until 8 more calls, enough for one printf. */
const char *cmd_line(const char *s);
/* Print usage error and return 2. */
int cmd_usage(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first option (--NAME, or --NAME=VALUE) that argv[0..argc) gives
 * twice, up to "--", as "--NAME"; NULL when none.  Which of the two was
 * meant cannot be known (the last one used to win).  --tablespace-map is
 * given once per tablespace. */
const char *cmd_option_twice(int argc, char **argv);

/* After getopt_long(argc, argv, ..., opts, &li) returned option opts[li],
 * with optind and optarg as it left them: NULL, or why the option cannot be
 * taken as given: abbreviated (--pgd for --pgdata: cmd_option_twice compares
 * spellings, so "--pgdata A --pgd B" silently took B), or its value taken
 * from the next argument that is an option itself ("--pgdata --start": the
 * value was forgotten, and the restore went into ./--start, not started). */
const char *cmd_option_misused(char **argv, int optind, const struct option *opts, int li);
/* For the commands that read their arguments by hand: the value of the
 * option at argv[*i], given as the next argument; 0 with *val set and *i
 * moved on, or the usage status after a message when there is none or it is
 * an option itself ("--pgdata --incremental"). */
int cmd_option_value(const struct cmd_ctx *ctx, int *i, const char **val);
/* cmd_edge.c: descriptors 0-2 put on /dev/null (unusable, as closed ones
 * are) when the caller closed them, before anything is opened; and the
 * exit status once command `name` (NULL: help, version) has printed: a
 * document not written whole is a failure, a change made stays a success,
 * with a warning. */
void cmd_std_fds_taken(void);
int cmd_output_finish(const char *name, int rc);

/* Open the storage of the region named `name`, or the first region if NULL. */
struct stor;
int cmd_open_region(struct cmd_ctx *ctx, const char *name, struct stor **out, struct err *e);

/* Load key_file and old_key_files; warns once when nothing is encrypted. */
struct keyring;
int cmd_load_keyring(struct cmd_ctx *ctx, struct keyring **out, struct err *e);

/* The cluster this configuration serves, for its local state (the spool)
 * and the identities a push checks: global/pg_control and PG_VERSION of
 * `pgdata`, or of the current directory when it is a data directory (where
 * PostgreSQL runs archive_command), else, with `kr` and
 * CMD_CLUSTER_FROM_REGIONS, the identity of the first region that has one.
 * ERR_NOREPO when it cannot be known. */
struct cluster_info;
#define CMD_CLUSTER_FROM_REGIONS 0x1
int cmd_cluster(struct cmd_ctx *ctx, const struct keyring *kr, unsigned flags, struct cluster_info *out,
                struct err *e);

/* Commands (src/cmd_NAME.c). */
/* Detach: fork twice, new session, stdin from /dev/null, stdout and stderr
 * appended to log_path (NULL: /dev/null), the caller's descriptors noted by
 * spawn_note_inherited closed.  1 in the caller (the intermediate child
 * reaped), 0 in the detached process, -1 (errno) if fork failed. */
int daemonize(const char *log_path);
/* Note the descriptors above 2 open at program start: they are the
 * caller's (PostgreSQL's archiver or startup process, a shell), and a
 * detached process closes them.  Called first thing in main. */
void spawn_note_inherited(void);
struct spool;
/* Start a detached `walship ship` for the spool's cluster unless one runs;
 * never fails wal-push (spawn.c). */
void ship_spawn(const struct config *conf, struct spool *sp);
/* wal-push's way to start the archiver process (archd.h): detached, its
 * log in the spool's archd.log. */
struct archd_spawn;
extern const struct archd_spawn archd_spawner;
/* A detached prefetcher of the segments after NAME into DEST's directory
 * (walfetch_prefetch): returns at once in the caller. */
struct keyring;
struct cluster_info;
void prefetch_spawn(const struct config *c, const struct keyring *kr, const int *order, int n,
                    const struct cluster_info *ci, const char *name, const char *dest, uint64_t seg_size);

struct repo;
struct keyring;
/* repo_open, and one configuration is one cluster: a region whose identity
 * names another cluster than a region opened before fails (ERR_FOREIGN,
 * naming both), so no command reads or prunes two clusters as one. */
int cmd_repo_open(struct cmd_ctx *ctx, const struct region_conf *rc, const struct keyring *kr, unsigned flags,
                  struct repo **out, struct err *e);

/* After a backup-fetch or restore from `region` failed on something of the
 * region's (a part missing, corrupt or unreachable; not the local disk):
 * when --region was not given and other regions are configured, say how
 * to take the backup from one of them. */
void cmd_other_region_hint(const struct cmd_ctx *ctx, const char *region, const char *backup, const char *dir,
                           const struct err *e);

/* cmd_delete.c: warn of each backup retention kept as the only way to a
 * living branch (docs/RETENTION.md, "Two branches"). */
struct ret_plan;
void cmd_ret_branch_warn(const char *region, const struct ret_plan *plan);

int cmd_config_run(struct cmd_ctx *ctx);
int cmd_st_run(struct cmd_ctx *ctx);
int cmd_keygen_run(struct cmd_ctx *ctx);
int cmd_wal_push_run(struct cmd_ctx *ctx);
int cmd_ship_run(struct cmd_ctx *ctx);
int cmd_wal_fetch_run(struct cmd_ctx *ctx);
/* How wal-fetch answers a failure, logged: 250 (stop recovery), or 1 on a
 * standby (it waits; noted in its state file), 250 again on a standby
 * whose promotion is under way (see restore/standby.h).  For main's early
 * failures too (a configuration that does not load). */
int wal_fetch_fail(int standby, const char *name, const char *msg);

/* wal-fetch failed before it ran: argv as main got it, argv[first - 1] the
 * command name; answered as wal_fetch_fail. */
int wal_fetch_early_fail(int argc, char **argv, int first, const char *msg);

/* The command line could not be read (said why, on stderr): when it is a
 * restore_command ("wal-fetch" in it, or a misspelt command given
 * PostgreSQL's %p, pg_wal/RECOVERYXLOG), a 2 would end recovery as "not in
 * the archive" ('walship --confg FILE wal-fetch %f %p' did), so answered as
 * wal-fetch's failures; EXIT_USAGE otherwise. */
int wal_fetch_cmdline_fail(int argc, char **argv, const char *why);
int cmd_backup_fetch_run(struct cmd_ctx *ctx);
int cmd_backup_list_run(struct cmd_ctx *ctx);
int cmd_backup_push_run(struct cmd_ctx *ctx);
int cmd_restore_run(struct cmd_ctx *ctx);
int cmd_promote_run(struct cmd_ctx *ctx);
int cmd_delete_run(struct cmd_ctx *ctx);
int cmd_verify_run(struct cmd_ctx *ctx);
int cmd_status_run(struct cmd_ctx *ctx);
int cmd_copy_run(struct cmd_ctx *ctx);
int cmd_upgrade_run(struct cmd_ctx *ctx);

/* Print "tablespace OID: PATH (pg_tblspc/OID)" for each tablespace of a
 * restored backup, where it went after the --tablespace-map entries
 * (", the backup's path" when no entry moved it). */
struct bkf_tsmap;
struct manifest;
void cmd_print_tablespaces(const struct manifest *m, const struct bkf_tsmap *map, size_t nmap);

#endif
