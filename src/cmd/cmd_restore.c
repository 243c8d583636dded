/*
 * cmd_restore — `walship restore`: point-in-time restore into a fresh
 * instance, the command of a DR drill or a real disaster.
 *
 *   choose region and backup → fetch it → write recovery settings →
 *   (--start) start PostgreSQL, wait for the target, report the RTO
 *
 * It never leaves a promoted instance that did not reach its target: for
 * "latest" the target is the archive's last record (recover.h), so
 * PostgreSQL refuses to end recovery before it; with --start PostgreSQL
 * pauses at the target, restore/recover.c checks where it stopped, and only
 * then promotes.  docs/RESTORE.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backup_fetch.h"
#include "bkf_chain.h"
#include "catalog.h"
#include "cluster.h"
#include "cmd.h"
#include "cmd_restore_conf.h"
#include "cmd_restore_end.h"
#include "cmd_restore_pick.h"
#include "cmd_standby.h"
#include "keys.h"
#include "log.h"
#include "mapread.h"
#include "note.h"
#include "paths.h"
#include "pitr.h"
#include "pq_dl.h"
#include "recover.h"
#include "repo.h"
#include "stor.h"
#include "util.h"
#include "wal.h"

#define MAX_TSMAP 16

struct restore_opts {
    const char *pgdata;
    const char *backup;
    const char *pg_bin;
    struct pitr_target target;
    int ntargets;
    int start;
    int port;
    int keep_archive;
    int keep_restore_command;   /* after promotion (docs/RESTORE.md) */
    int standby;                /* --standby: follow the archive until promoted */
    int allow_unmounted;        /* --allow-unmounted: no fstab mount point check (paths.h) */
    int target_opts;            /* --target-action given */
    const char *pg_user;
    int start_timeout, stall_timeout;
    struct bkf_tsmap tsmap[MAX_TSMAP];
    size_t ntsmap;
};

/* rcv_run_fn: run a program, its output to `out` (or nowhere). */
static int run_cmd(void *arg, char *const argv[], const char *out)
{
    pid_t pid;
    int st;

    (void)arg;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        signal(SIGPIPE, SIG_DFL);   /* (walship ignores it: main.c) */
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void print_stop(const struct rcv_result *r, FILE *f)
{
    fprintf(f, "  recovery stopped at LSN %s%s%s%s%s\n", r->lsn[0] ? r->lsn : "(unknown)",
            r->tli[0] ? ", timeline " : "", r->tli, r->xact_time[0] ? ", last transaction at " : "", r->xact_time);
    if (r->why[0]) {
        const char *p = r->why;

        fprintf(f, "  PostgreSQL said:\n");
        while (*p) {
            size_t k = strcspn(p, "\n");

            fprintf(f, "    %.*s\n", (int)k, p);
            p += k + (p[k] == '\n');
        }
    }
}

/* Start the restored instance and see it through recovery (recover.h). */
static int start_and_check(const struct restore_opts *o, const struct manifest *m, struct rcv_result *r,
                           struct err *e)
{
    struct rcv_opts ro;
    char logpath[PATH_MAX];

    snprintf(logpath, sizeof logpath, "%s/walship-restore.log", o->pgdata);
    memset(&ro, 0, sizeof ro);
    ro.pgdata = o->pgdata;
    ro.pg_bin = o->pg_bin;
    ro.logpath = logpath;
    ro.port = o->port;
    ro.user = o->pg_user;
    ro.start_timeout_s = (unsigned)o->start_timeout;
    ro.stall_timeout_s = (unsigned)o->stall_timeout;
    ro.target = &o->target;
    ro.standby = o->standby;
    ro.promote = !o->standby && strcmp(o->target.action, "promote") == 0;
    ro.shutdown = strcmp(o->target.action, "shutdown") == 0;
    ro.run = run_cmd;
    if (rcv_run(&ro, r, e) == 0)
        return 0;
    fprintf(stderr, "restore failed after %.1f s of recovery:\n", r->seconds);
    print_stop(r, stderr);
    restore_stop_hint(&o->target, m, r->why, stderr);
    return -1;
}

/* One of the --target-* options. */
static int parse_target(int c, const char *arg, struct restore_opts *o)
{
    struct err e = ERR_INIT;

    switch (c) {
    case 't':
        o->target.kind = PITR_TIME;
        o->ntargets++;
        if (pitr_parse_time(arg, &o->target.time, o->target.value, sizeof o->target.value, &e) < 0)
            return cmd_usage("restore", "%s", e.msg);
        break;
    case 'l':
        o->target.kind = PITR_LSN;
        o->ntargets++;
        if (wal_parse_lsn(arg, &o->target.lsn, &e) < 0)
            return cmd_usage("restore", "%s", e.msg);
        snprintf(o->target.value, sizeof o->target.value, "%s", arg);
        break;
    case 'x':
    case 'n':
        o->target.kind = c == 'x' ? PITR_XID : PITR_NAME;
        o->ntargets++;
        if ((c == 'x' ? pitr_check_xid(arg, &e) : pitr_check_name(arg, &e)) < 0)
            return cmd_usage("restore", "%s", e.msg);
        if (strlcopy(o->target.value, arg, sizeof o->target.value) < 0)
            return cmd_usage("restore", "target too long");
        break;
    case 'L': o->target.kind = PITR_LATEST; o->ntargets++; break;
    case 'I': o->target.kind = PITR_IMMEDIATE; o->ntargets++; break;
    case 'a':
        if (strcmp(arg, "promote") != 0 && strcmp(arg, "pause") != 0 && strcmp(arg, "shutdown") != 0)
            return cmd_usage("restore", "--target-action is promote, pause or shutdown");
        snprintf(o->target.action, sizeof o->target.action, "%s", arg);
        o->target_opts++;
        break;
    case 'T':
        if (strlcopy(o->target.timeline, arg, sizeof o->target.timeline) < 0)
            return cmd_usage("restore", "bad --target-timeline");
        if (arg[0] >= '0' && arg[0] <= '9') {
            struct err pe = ERR_INIT;
            int n;

            /* written as the number checked: PostgreSQL reads "010" as
             * octal (strtoul base 0), walship as ten */
            if (parse_int(arg, 1, 0x7fffffff, &n, &pe) < 0)
                return cmd_usage("restore", "bad --target-timeline: %s", pe.msg);
            snprintf(o->target.timeline, sizeof o->target.timeline, "%d", n);
        }
        break;   /* a standby may be told which timeline to follow too */
    }
    return 0;
}

static int parse_args(struct cmd_ctx *ctx, struct restore_opts *o)
{
    static const struct option opts[] = {
        { "pgdata", required_argument, NULL, 'D' },
        { "target-time", required_argument, NULL, 't' },
        { "target-lsn", required_argument, NULL, 'l' },
        { "target-xid", required_argument, NULL, 'x' },
        { "target-name", required_argument, NULL, 'n' },
        { "target-latest", no_argument, NULL, 'L' },
        { "target-immediate", no_argument, NULL, 'I' },
        { "target-action", required_argument, NULL, 'a' },
        { "target-timeline", required_argument, NULL, 'T' },
        { "backup", required_argument, NULL, 'b' },
        { "start", no_argument, NULL, 's' },
        { "port", required_argument, NULL, 'p' },
        { "pg-bin", required_argument, NULL, 'B' },
        { "keep-archive", no_argument, NULL, 'k' },
        { "keep-restore-command", no_argument, NULL, 'K' },
        { "tablespace-map", required_argument, NULL, 'm' },
        { "pg-user", required_argument, NULL, 'U' },
        { "start-timeout", required_argument, NULL, 'W' },
        { "stall-timeout", required_argument, NULL, 'S' },
        { "standby", no_argument, NULL, 'Y' },
        { "allow-unmounted", no_argument, NULL, 'A' },
        { NULL, 0, NULL, 0 },
    };
    struct err e = ERR_INIT;
    const char *why;
    int c, rc, li = 0;

    memset(o, 0, sizeof *o);
    o->target.kind = PITR_LATEST;
    snprintf(o->target.action, sizeof o->target.action, "promote");
    /* empty: not given; written as 'latest', but a branch 'latest' would
     * leave behind is refused (src/repo/timeline_branch.c) */
    o->target.timeline[0] = '\0';
    o->pg_bin = ctx->conf->pg_bin;
    o->start_timeout = RCV_START_TIMEOUT_S;
    o->stall_timeout = RCV_STALL_TIMEOUT_S;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(ctx->argc, ctx->argv, "", opts, &li)) != -1) {
        if (c != '?' && c != ':' && (why = cmd_option_misused(ctx->argv, optind, opts, li)) != NULL)
            return cmd_usage("restore", "%s", why);
        switch (c) {
        case 'D': o->pgdata = optarg; break;
        case 't': case 'l': case 'x': case 'n': case 'L': case 'I': case 'a': case 'T':
            if ((rc = parse_target(c, optarg, o)) != 0)
                return rc;
            break;
        case 'b': o->backup = optarg; break;
        case 's': o->start = 1; break;
        case 'p':
            if (parse_int(optarg, 1, 65535, &o->port, &e) < 0)
                return cmd_usage("restore", "bad --port");
            break;
        case 'B': o->pg_bin = optarg; break;
        case 'k': o->keep_archive = 1; break;
        case 'K': o->keep_restore_command = 1; break;
        case 'Y': o->standby = 1; break;
        case 'A': o->allow_unmounted = 1; break;
        case 'U': o->pg_user = optarg; break;
        case 'W':
        case 'S':
            if (parse_int(optarg, 1, 7 * 86400, c == 'W' ? &o->start_timeout : &o->stall_timeout, &e) < 0)
                return cmd_usage("restore", "--%s takes seconds (1 to 604800)",
                                 c == 'W' ? "start-timeout" : "stall-timeout");
            break;
        case 'm': {
            char *eq = strchr(optarg, '=');

            if (eq == NULL || eq == optarg || eq[1] == '\0' || o->ntsmap >= MAX_TSMAP)
                return cmd_usage("restore", "--tablespace-map takes OLD=NEW");
            *eq = '\0';
            o->tsmap[o->ntsmap].old_path = optarg;
            o->tsmap[o->ntsmap].new_path = eq + 1;
            o->ntsmap++;
            break;
        }
        default:
            return cmd_usage("restore", "unknown or incomplete option \"%s\"", ctx->argv[optind - 1]);
        }
    }
    if (optind < ctx->argc)
        return cmd_usage("restore", "unexpected argument \"%s\"", ctx->argv[optind]);
    if (o->pgdata == NULL)
        return cmd_usage("restore", "--pgdata DIR is required");
    if (o->ntargets > 1)
        return cmd_usage("restore", "give at most one recovery target");
    if (o->standby && (o->ntargets > 0 || o->target_opts > 0))
        return cmd_usage("restore", "--standby follows the archive until it is promoted: no --target-* option but --target-timeline");
    if (o->standby && o->keep_restore_command)
        return cmd_usage("restore", "--keep-restore-command is an option of walship promote for a standby");
    if (o->standby)
        o->target.kind = PITR_STANDBY;
    return 0;
}

/* The WAL from backup `m` on: for "latest" the archive's end becomes the
 * target; otherwise a gap is a warning, or a failure when no recovery to
 * the target can pass it (restore_target_wal). */
static int check_archive(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *s, const struct manifest *m,
                         struct restore_opts *o, int *no_start, struct err *e)
{
    unsigned long nseg = 0;

    if (o->target.kind == PITR_LATEST)
        return restore_latest_end(ctx, kr, s, m, o->pg_bin, run_cmd, &o->target, &nseg, no_start, e);
    return restore_target_wal(ctx, kr, s, m, &o->target, o->standby, no_start, e);
}

/* An incremental whose chain does not load in region s (a link missing,
 * damaged or replaced there): the fetch would refuse it.  1 (e says why),
 * 0 (whole, or a full backup), -1 (e: the region could not be read). */
static int chain_broken(struct repo *s, const struct manifest *m, struct err *e)
{
    struct bkf_chain ch;

    if (!m->incremental)
        return 0;
    if (bkf_chain_load(s, m, &ch, e) < 0)
        return e->code == ERR_CORRUPT ? 1 : -1;
    bkf_chain_free(&ch);
    return 0;
}

/* The backup whose WAL the archive holds: the chosen one, or, when its
 * own start segment is not archived (an async region whose WAL has not
 * arrived: backup-push needs only the spool to hold it) and it was not
 * named with --backup (nor meant by --target-immediate), the next older
 * one that reaches the target, which recovers from the WAL there is
 * (adversarial pass N).  So too when it is an incremental whose chain is
 * broken in the region (adversarial pass P).  -1 (e) when none. */
static int settle_backup(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *s, struct catalog *cat, int k,
                         struct restore_opts *o, char *miss, size_t nmiss, struct err *e)
{
    unsigned char *excluded = NULL;
    int no_start = 0, rc;

    for (;;) {
        const struct manifest *m;
        char ts[32];
        struct err pe = ERR_INIT;

        if (cat_reload(s, cat, (size_t)k, e) < 0) {    /* the catalog holds headers: the candidate whole */
            rc = -1;
            break;
        }
        m = cat->v[k].man;

        man_format_time(m->stop_time, ts);
        log_info("restoring backup %s (consistent at %s) from region %s into %s", m->name, ts, s->name, o->pgdata);
        if (restore_conf_outside(m, o->start, o->pgdata, miss, nmiss, e) < 0) {
            rc = -1;
            break;
        }
        /* --target-immediate means this backup's own consistent point;
         * named or meant, a broken chain fails in the fetch (naming the
         * regions that may hold it whole) */
        if (o->backup == NULL && o->target.kind != PITR_IMMEDIATE && (rc = chain_broken(s, m, e)) != 0) {
            if (rc < 0)
                break;
        } else if ((rc = check_archive(ctx, kr, s, m, o, &no_start, e)) == 0 || !no_start ||
                   o->backup != NULL || o->target.kind == PITR_IMMEDIATE) {
            break;
        }
        if (excluded == NULL && (excluded = calloc(cat->n + 1, 1)) == NULL) {
            rc = err_setf(e, ERR_NOMEM, "out of memory");
            break;
        }
        excluded[k] = 1;
        if ((k = restore_pick_other(ctx, kr, s, cat, &o->target, excluded, &pe)) < 0) {
            char first[ERR_MSG_MAX];

            snprintf(first, sizeof first, "%s", e->msg);
            rc = err_setf(e, pe.code == ERR_NOMEM ? ERR_NOMEM : e->code, "%s; and no older backup of region %s can "
                          "be restored instead (%s)", first, s->name, pe.msg);
            break;
        }
        log_warning("%s: restoring from backup %s instead, the newest before it, from the WAL the region holds",
                    e->msg, cat->v[k].name);
        err_clear(e);
    }
    free(excluded);
    return rc < 0 ? -1 : k;
}

/* restore owns the recovery settings: the backup's go, ours are written
 * once; with --start, walship checks before it promotes, so PostgreSQL
 * pauses at the target */
static int write_recovery(struct cmd_ctx *ctx, const char *region, const struct restore_opts *o,
                          struct rconf_list *found, struct err *e)
{
    struct pitr_target wt = o->target;
    char cmdline[8192];

    if (o->start && strcmp(wt.action, "promote") == 0)
        snprintf(wt.action, sizeof wt.action, "pause");
    /* a standby asks every region: it waits out an outage (DESIGN.md §5) */
    if (restore_conf_command(ctx->conf, region, o->standby ? "" : ctx->unasked, cmdline, sizeof cmdline, e) < 0 ||
        restore_conf_prepare(o->pgdata, o->port > 0, !o->keep_archive, found, e) < 0 ||
        pitr_write_recovery(o->pgdata, &wt, cmdline, o->keep_archive, o->port, found, e) < 0)
        return -1;
    return 0;
}

/* Without --start: how to start it, and how to check where it stopped. */
static void print_how_to_start(const struct restore_opts *o)
{
    char qbin[PATH_MAX * 4 + 16], qdata[PATH_MAX * 4];

    restore_conf_shell_quote(qbin, sizeof qbin, o->pg_bin, "/pg_ctl");
    restore_conf_shell_quote(qdata, sizeof qdata, o->pgdata, "");
    printf("recovery settings written to %s/postgresql.auto.conf; start it with:\n  %s -D %s start\n",
           o->pgdata, qbin, qdata);
    printf("PostgreSQL ends recovery only at its target%s%s (else: FATAL \"recovery ended before configured "
           "recovery target was reached\").\nCheck where it stopped before using it:\n"
           "  grep -E 'recovery stopping|redo done|recovery ended before|FATAL' <its log>\n"
           "  psql -c 'select pg_is_in_recovery(), pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp()'\n",
           o->target.kind == PITR_LATEST ? ", the end of the archive at LSN " : "",
           o->target.kind == PITR_LATEST ? o->target.value : "");
}

/* With --start: where recovery stopped, and the RTO. */
static void print_result(const struct manifest *m, const char *region, const struct pitr_target *t,
                         const struct rcv_result *st, uint64_t t0, uint64_t t_fetch, uint64_t t_replay)
{
    /* PostgreSQL's own word that it stopped at the target */
    const char *stop = strstr(st->why, "recovery stopping");
    uint64_t lsn = 0;
    struct err le = ERR_INIT;

    printf("restore complete: backup %s from region %s\n", m->name, region);
    printf("  recovery point: LSN %s%s%s, timeline %s, %s\n", st->lsn[0] ? st->lsn : "?",
           st->xact_time[0] ? ", last transaction at " : "", st->xact_time, st->tli[0] ? st->tli : "?",
           st->outcome == RCV_SHUT_DOWN ? "shut down at the target"
           : st->outcome == RCV_PAUSED  ? "paused at the target"
                                        : "checked, then promoted");
    if (stop != NULL)
        printf("  PostgreSQL: %.*s\n", (int)strcspn(stop, "\n"), stop);
    restore_stop_hint(t, m, st->why, stdout);
    if (st->outcome == RCV_PROMOTED && !st->checkpointed)
        log_warning("the CHECKPOINT after promotion failed (role %s): pg_control names the new timeline only "
                    "after PostgreSQL's own checkpoint", st->user[0] ? st->user : "?");
    if (st->outcome == RCV_PROMOTED)
        printf("  promoted%s%s, logged in as %s\n", st->new_tli[0] ? " to timeline " : "", st->new_tli,
               st->user[0] ? st->user : "?");
    if (st->lsn[0] && wal_parse_lsn(st->lsn, &lsn, &le) == 0 && lsn >= m->start_lsn)
        printf("  WAL replayed: about %llu segments\n",
               (unsigned long long)((lsn - m->start_lsn) / m->wal_segment_size + 1));
    printf("  time: fetch %.1f s, replay %.1f s, total (RTO) %.1f s\n", (double)t_fetch / 1000.0,
           (double)t_replay / 1000.0, (double)(now_ms() - t0) / 1000.0);
}

/* --pgdata made (if need be) and made absolute. */
static int pgdata_prepare(struct restore_opts *o, char abs[PATH_MAX], struct err *e)
{
    if (!o->allow_unmounted && path_check_mounted(o->pgdata, "--pgdata", e) < 0)
        return -1;
    if (mkdir(o->pgdata, 0700) < 0 && errno != EEXIST)
        return err_errno(e, ERR_IO, errno, "could not create \"%s\"", o->pgdata);
    if (realpath(o->pgdata, abs) == NULL)
        return err_errno(e, ERR_IO, errno, "bad --pgdata \"%s\"", o->pgdata);
    o->pgdata = abs;
    return 0;
}

/* Start the WAL prefetch before PostgreSQL: recovery's first segments are
 * then on their way while the server starts, instead of each being
 * downloaded by its own restore_command call until the first call's
 * prefetcher has connected (the drill over a 70 ms round trip: three
 * segments at 0.2-0.4 s each).  The prefetcher is the one wal-fetch starts
 * (walfetch.h): verified files in pg_wal/.walship-prefetch, one per
 * directory, gone after two idle minutes; wal-fetch's own finds it there. */
/* (the regions restore_command asks: not those of `unasked`) */
static void prefetch_before_start(const struct config *c, const struct keyring *kr, const struct region_conf *rc,
                                  const struct repo *s, const struct manifest *m, const char *pgdata,
                                  const char *unasked)
{
    struct cluster_info ci = { s->id.sysid, s->id.pg_major, s->id.seg_size };
    char prev[WAL_NAME_LEN + 1], dest[PATH_MAX];
    struct wal_name w;
    struct err e = ERR_INIT;
    int order[64], n = 0, i;
    uint64_t segno;

    if (!s->have_id || wal_parse(m->start_wal, &w, &e) < 0 || w.kind != WAL_SEGMENT || !wal_seg_size_valid(ci.seg_size) ||
        (segno = wal_segno(&w, ci.seg_size)) == 0 ||
        snprintf(dest, sizeof dest, "%s/pg_wal/RECOVERYXLOG", pgdata) >= (int)sizeof dest)
        return;
    wal_segment_name(w.tli, segno - 1, ci.seg_size, prev);
    for (i = 0; i < c->nregions && n < 64; i++)
        if (&c->regions[i] == rc)
            order[n++] = i;
    for (i = 0; i < c->nregions && n < 64; i++)
        if (&c->regions[i] != rc && !restore_name_listed(unasked, c->regions[i].name))
            order[n++] = i;
    prefetch_spawn(c, kr, order, n, &ci, prev, dest, ci.seg_size);
}

int cmd_restore_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    struct restore_opts o;
    struct keyring *kr = NULL;
    struct catalog cat = { NULL, 0, 0 };
    struct repo *s = NULL;
    const struct region_conf *rc = NULL;
    const struct manifest *m;
    struct bkf_opts bo;
    struct bkf_stats bs;
    struct rcv_result st;
    struct rconf_list found = { NULL, 0, 0 };
    struct err e = ERR_INIT;
    char pgdata_abs[PATH_MAX], miss[64] = "";
    uint64_t t0 = now_ms(), t_fetch = 0, t_replay = 0;
    int k = -1, rc_ = EXIT_FAILURE3;

    (void)mapread_install();    /* before any thread: file:// objects read from a mapping (mapread.h) */
    if ((rc_ = parse_args(ctx, &o)) != 0)
        return rc_;
    rc_ = EXIT_FAILURE3;
    if (o.standby)
        restore_standby_env_warning(c);
    /* --start logs in to PostgreSQL: libpq must load before anything is fetched */
    if (config_require_regions(c, &e) < 0 || (o.start && pq_dl_load(&e) < 0) ||
        restore_root_check(o.start, o.pgdata, &e) < 0 || cmd_load_keyring(ctx, &kr, &e) < 0 || pgdata_prepare(&o, pgdata_abs, &e) < 0)
        goto fail;
    if ((k = restore_pick(ctx, kr, &o.target, o.backup, &s, &cat, &rc, &e)) < 0 ||
        (k = settle_backup(ctx, kr, s, &cat, k, &o, miss, sizeof miss, &e)) < 0)
        goto fail;
    m = cat.v[k].man;
    memset(&bo, 0, sizeof bo);
    bo.parallel = c->parallel;
    bo.notes = &note_log_sink;
    bo.tsmap = o.tsmap;
    bo.ntsmap = o.ntsmap;
    bo.allow_unmounted = o.allow_unmounted;
    bo.named_tablespaces = geteuid() == 0;
    if (bkf_fetch(s, rc, c, m, o.pgdata, &bo, &bs, &e) < 0) {
        rc_ = cmd_fail(&e);
        cmd_other_region_hint(ctx, rc->name, m->name, o.pgdata, &e);
        goto out;
    }
    t_fetch = now_ms() - t0;
    printf("fetched backup %s: %llu files, %.1f MB in %.1f s\n", m->name, (unsigned long long)bs.files,
           (double)bs.bytes / (1 << 20), (double)t_fetch / 1000.0);
    cmd_print_tablespaces(m, o.tsmap, o.ntsmap);
    if (write_recovery(ctx, rc->name, &o, &found, &e) < 0)
        goto fail;
    restore_root_note(o.pgdata);
    if (!o.start && o.standby) {
        restore_standby_not_started(o.pg_bin, o.pgdata);
        if (miss[0] != '\0')
            restore_conf_outside_hint(o.pgdata, miss);
        rc_ = 0;
        goto out;
    }
    if (!o.start) {
        print_how_to_start(&o);
        if (miss[0] != '\0')
            restore_conf_outside_hint(o.pgdata, miss);
        rc_ = 0;
        goto out;
    }
    memset(&st, 0, sizeof st);
    prefetch_before_start(c, kr, rc, s, m, o.pgdata, o.standby ? "" : ctx->unasked);
    if (start_and_check(&o, m, &st, &e) < 0)
        goto fail;
    t_replay = now_ms() - t0 - t_fetch;
    if (st.outcome == RCV_STANDBY) {
        restore_standby_started(&st, m->name, rc->name, o.pgdata, (double)t_fetch / 1000.0,
                                (double)t_replay / 1000.0);
        rc_ = 0;
        goto out;
    }
    /* promoted (not shut down at the target): a backup of it must carry no target */
    if (st.outcome == RCV_PROMOTED)
        restore_conf_after_promote(o.pgdata, o.keep_restore_command);
    print_result(m, rc->name, &o.target, &st, t0, t_fetch, t_replay);
    rc_ = 0;
    goto out;
fail:
    rc_ = cmd_fail(&e);
out:
    rconf_list_free(&found);
    cat_free(&cat);
    repo_free(s);
    keys_free(kr);
    return rc_;
}
