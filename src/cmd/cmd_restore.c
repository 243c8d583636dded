/*
 * cmd_restore — `walship restore`: point-in-time restore into a fresh
 * instance, the command of a DR drill or a real disaster.
 *
 *   choose region and backup → fetch it → write recovery settings →
 *   (--start) start PostgreSQL, wait for the target, report the RTO
 *
 * It never leaves a promoted instance that did not reach its target:
 * PostgreSQL itself refuses to promote when a recovery target was not
 * reached, and for "latest" walship checks before starting that the archive
 * has no gap after the backup.
 */
#include <errno.h>
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
#include "catalog.h"
#include "cmd.h"
#include "cmd_restore_conf.h"
#include "keys.h"
#include "log.h"
#include "pitr.h"
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
    struct bkf_tsmap tsmap[MAX_TSMAP];
    size_t ntsmap;
};

/* Shell-quote one argument of restore_command into buf: '...' with ' as
 * '\'', and % as %% because PostgreSQL replaces %f, %p, %r and %% in the
 * whole command before the shell sees it (docs/RESTORE.md). */
static int shq(char *buf, size_t n, size_t *len, const char *arg)
{
    if (*len + 3 >= n)
        return -1;
    buf[(*len)++] = ' ';
    buf[(*len)++] = '\'';
    for (; *arg; arg++) {
        if (*arg == '\'') {
            if (*len + 5 >= n)
                return -1;
            memcpy(buf + *len, "'\\''", 4);
            *len += 4;
        } else if (*arg == '%') {
            if (*len + 3 >= n)
                return -1;
            buf[(*len)++] = '%';
            buf[(*len)++] = '%';
        } else {
            if (*len + 2 >= n)
                return -1;
            buf[(*len)++] = *arg;
        }
    }
    buf[(*len)++] = '\'';
    buf[*len] = '\0';
    return 0;
}

/* The restore_command the restored instance runs: this binary, the same
 * configuration or --from options, the region chosen first. */
static int build_restore_command(struct cmd_ctx *ctx, const char *region, char *buf, size_t n, struct err *e)
{
    const struct config *c = ctx->conf;
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    size_t len = 0;
    int bad = 0;

    if (k <= 0)
        return err_errno(e, ERR_IO, errno, "could not find the walship binary");
    exe[k] = '\0';
    buf[0] = '\0';
    bad |= shq(buf, n, &len, exe);
    if (c->path != NULL) {
        char abs[PATH_MAX];

        bad |= shq(buf, n, &len, "--config");
        bad |= shq(buf, n, &len, realpath(c->path, abs) ? abs : c->path);
    } else {
        const struct region_conf *r = &c->regions[0];

        bad |= shq(buf, n, &len, "--from");
        bad |= shq(buf, n, &len, r->url);
        if (r->endpoint) {
            bad |= shq(buf, n, &len, "--endpoint");
            bad |= shq(buf, n, &len, r->endpoint);
        }
        if (r->path_style)
            bad |= shq(buf, n, &len, "--path-style");
        if (r->aws_region) {
            bad |= shq(buf, n, &len, "--aws-region");
            bad |= shq(buf, n, &len, r->aws_region);
        }
        if (c->key_file) {
            char abs[PATH_MAX];

            bad |= shq(buf, n, &len, "--key-file");
            bad |= shq(buf, n, &len, realpath(c->key_file, abs) ? abs : c->key_file);
        }
    }
    bad |= shq(buf, n, &len, "--region");
    bad |= shq(buf, n, &len, region);
    if (bad || len + 32 >= n)
        return err_setf(e, ERR_USAGE, "restore_command would be too long");
    /* %f and %p unquoted: PostgreSQL substitutes them */
    snprintf(buf + len, n - len, " wal-fetch %%f %%p");
    return 0;
}

static int run_cmd(char *const argv[])
{
    pid_t pid = fork();
    int st;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void log_tail(const char *path)
{
    char line[1024];
    char *lines[20];
    int n = 0, i;
    FILE *f = fopen(path, "re");

    if (f == NULL)
        return;
    memset(lines, 0, sizeof lines);
    while (fgets(line, sizeof line, f) != NULL) {
        free(lines[n % 20]);
        lines[n % 20] = strdup(line);
        n++;
    }
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", path);
    for (i = n > 20 ? n - 20 : 0; i < n; i++)
        fputs(lines[i % 20] ? lines[i % 20] : "", stderr);
    for (i = 0; i < 20; i++)
        free(lines[i]);
}

static int server_running(const char *pgdata, pid_t *pid)
{
    char path[PATH_MAX];
    FILE *f;
    long p = 0;

    snprintf(path, sizeof path, "%s/postmaster.pid", pgdata);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &p) != 1)
        p = 0;
    fclose(f);
    *pid = (pid_t)p;
    return p > 0 && kill((pid_t)p, 0) == 0;
}

/* Socket directory the restored instance will use (postgres -C). */
static void socket_dir(const char *pg_bin, const char *pgdata, char *out, size_t n)
{
    char cmd[PATH_MAX * 2];
    FILE *p;

    snprintf(out, n, "/var/run/postgresql");
    snprintf(cmd, sizeof cmd, "'%s/postgres' -D '%s' -C unix_socket_directories 2>/dev/null", pg_bin, pgdata);
    p = popen(cmd, "r");
    if (p == NULL)
        return;
    if (fgets(out, (int)n, p) != NULL) {
        char *comma = strchr(out, ',');
        if (comma)
            *comma = '\0';
        out[strcspn(out, "\n ")] = '\0';
    }
    pclose(p);
    if (out[0] == '\0')
        snprintf(out, n, "/tmp");
}

struct replay_state {
    int in_recovery;
    char pause[16];
    char lsn[32];
    char ts[64];
    char tli[16];
};

static int query_state(const char *sock, int port, struct replay_state *st)
{
    char conninfo[PATH_MAX + 64];
    PGconn *c;
    PGresult *r;
    int ok = 0;

    snprintf(conninfo, sizeof conninfo, "host=%s port=%d dbname=postgres connect_timeout=2", sock, port);
    c = PQconnectdb(conninfo);
    if (PQstatus(c) == CONNECTION_OK) {
        r = PQexec(c, "select pg_is_in_recovery(), "
                      "case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() else '' end, "
                      "coalesce(case when pg_is_in_recovery() then pg_last_wal_replay_lsn() "
                      "else pg_current_wal_lsn() end::text, ''), "
                      "coalesce(pg_last_xact_replay_timestamp()::text, ''), "
                      "(select timeline_id::text from pg_control_checkpoint())");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            st->in_recovery = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
            snprintf(st->pause, sizeof st->pause, "%s", PQgetvalue(r, 0, 1));
            snprintf(st->lsn, sizeof st->lsn, "%s", PQgetvalue(r, 0, 2));
            snprintf(st->ts, sizeof st->ts, "%s", PQgetvalue(r, 0, 3));
            snprintf(st->tli, sizeof st->tli, "%s", PQgetvalue(r, 0, 4));
            ok = 1;
        }
        PQclear(r);
    }
    PQfinish(c);
    return ok;
}

static int start_and_wait(const struct restore_opts *o, struct replay_state *st, struct err *e)
{
    char pg_ctl[PATH_MAX], logpath[PATH_MAX], sock[PATH_MAX], portopt[32];
    char *argv[12];
    int n = 0, port = o->port > 0 ? o->port : 5432;
    pid_t pid = 0;
    int seen_running = 0;

    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", o->pg_bin);
    snprintf(logpath, sizeof logpath, "%s/walship-restore.log", o->pgdata);
    snprintf(portopt, sizeof portopt, "-p %d", port);
    argv[n++] = pg_ctl;
    argv[n++] = "-D";
    argv[n++] = (char *)o->pgdata;
    argv[n++] = "-l";
    argv[n++] = logpath;
    argv[n++] = "-o";
    argv[n++] = portopt;
    argv[n++] = "-W";
    argv[n++] = "start";
    argv[n] = NULL;
    if (run_cmd(argv) != 0)
        return err_setf(e, ERR_IO, "pg_ctl could not start PostgreSQL in \"%s\" (see %s)", o->pgdata, logpath);
    socket_dir(o->pg_bin, o->pgdata, sock, sizeof sock);
    for (;;) {
        usleep(300000);
        if (server_running(o->pgdata, &pid)) {
            seen_running = 1;
        } else if (seen_running || access(logpath, F_OK) == 0) {
            /* the server went away: shutdown action, or recovery failed */
            FILE *f;
            char line[1024];
            int target_reached = 0;

            usleep(200000);
            if (server_running(o->pgdata, &pid))
                continue;
            f = fopen(logpath, "re");
            while (f != NULL && fgets(line, sizeof line, f) != NULL)
                if (strstr(line, "recovery stopping") != NULL)
                    target_reached = 1;
            if (f != NULL)
                fclose(f);
            if (strcmp(o->target.action, "shutdown") == 0 && target_reached && o->target.kind != PITR_LATEST) {
                snprintf(st->pause, sizeof st->pause, "shut down");
                return 0;
            }
            log_tail(logpath);
            return err_setf(e, ERR_IO,
                            "PostgreSQL stopped before the restore finished: the target was not reached (a WAL "
                            "segment missing or unreadable?); see %s. The instance was NOT promoted.",
                            logpath);
        }
        if (!query_state(sock, port, st))
            continue;
        if (!st->in_recovery)
            return 0;       /* promoted */
        if (strcmp(o->target.action, "pause") == 0 && strcmp(st->pause, "paused") == 0)
            return 0;
    }
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
        { NULL, 0, NULL, 0 },
    };
    struct err e = ERR_INIT;
    int c;

    memset(o, 0, sizeof *o);
    o->target.kind = PITR_LATEST;
    snprintf(o->target.action, sizeof o->target.action, "promote");
    snprintf(o->target.timeline, sizeof o->target.timeline, "latest");
    o->pg_bin = ctx->conf->pg_bin;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(ctx->argc, ctx->argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'D': o->pgdata = optarg; break;
        case 't':
            o->target.kind = PITR_TIME;
            o->ntargets++;
            if (pitr_parse_time(optarg, &o->target.time, o->target.value, sizeof o->target.value, &e) < 0)
                return cmd_usage("restore", "%s", e.msg);
            break;
        case 'l':
            o->target.kind = PITR_LSN;
            o->ntargets++;
            if (wal_parse_lsn(optarg, &o->target.lsn, &e) < 0)
                return cmd_usage("restore", "%s", e.msg);
            snprintf(o->target.value, sizeof o->target.value, "%s", optarg);
            break;
        case 'x':
        case 'n':
            o->target.kind = c == 'x' ? PITR_XID : PITR_NAME;
            o->ntargets++;
            if (strlcopy(o->target.value, optarg, sizeof o->target.value) < 0)
                return cmd_usage("restore", "target too long");
            break;
        case 'L': o->target.kind = PITR_LATEST; o->ntargets++; break;
        case 'I': o->target.kind = PITR_IMMEDIATE; o->ntargets++; break;
        case 'a':
            if (strcmp(optarg, "promote") != 0 && strcmp(optarg, "pause") != 0 && strcmp(optarg, "shutdown") != 0)
                return cmd_usage("restore", "--target-action is promote, pause or shutdown");
            snprintf(o->target.action, sizeof o->target.action, "%s", optarg);
            break;
        case 'T':
            if (strlcopy(o->target.timeline, optarg, sizeof o->target.timeline) < 0)
                return cmd_usage("restore", "bad --target-timeline");
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
    return 0;
}

int cmd_restore_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    struct restore_opts o;
    struct keyring *kr = NULL;
    struct catalog cat = { NULL, 0, 0 };
    struct repo *s = NULL;
    const struct region_conf *rc = NULL;
    struct bkf_opts bo;
    struct bkf_stats bs;
    struct replay_state st;
    struct rconf_list found = { NULL, 0, 0 };
    struct err e = ERR_INIT;
    char cmdline[8192], newest[32], pgdata_abs[PATH_MAX];
    unsigned long nseg = 0;
    uint64_t t0 = now_ms(), t_fetch = 0, t_replay = 0;
    int i, k, rc_ = EXIT_FAILURE3;

    if ((rc_ = parse_args(ctx, &o)) != 0)
        return rc_;
    rc_ = EXIT_FAILURE3;
    if (config_require_regions(c, &e) < 0 || cmd_load_keyring(ctx, &kr, &e) < 0)
        goto fail;
    if (mkdir(o.pgdata, 0700) < 0 && errno != EEXIST) {
        err_errno(&e, ERR_IO, errno, "could not create \"%s\"", o.pgdata);
        goto fail;
    }
    if (realpath(o.pgdata, pgdata_abs) == NULL) {
        err_errno(&e, ERR_IO, errno, "bad --pgdata \"%s\"", o.pgdata);
        goto fail;
    }
    o.pgdata = pgdata_abs;

    /* the region: --region, else the first one whose catalog answers */
    for (i = 0; i < c->nregions; i++) {
        struct err re = ERR_INIT;

        if (ctx->region != NULL && strcmp(ctx->region, c->regions[i].name) != 0)
            continue;
        if (cmd_repo_open(ctx, &c->regions[i], kr, REPO_OPEN_IDENTITY, &s, &re) == 0 && cat_list(s, 1, &cat, &re) == 0) {
            rc = &c->regions[i];
            break;
        }
        log_warning("region %s cannot be used: %s", c->regions[i].name, re.msg);
        repo_free(s);
        s = NULL;
        e = re;
    }
    if (rc == NULL)
        goto fail;
    k = pitr_choose(&cat, &o.target, o.backup, &e);
    if (k < 0)
        goto fail;
    {
        const struct manifest *m = cat.v[k].man;
        char ts[32];

        man_format_time(m->stop_time, ts);
        log_info("restoring backup %s (consistent at %s) from region %s into %s", m->name, ts, rc->name, o.pgdata);
        if (pitr_check_wal(s->st, m, newest, &nseg, &e) < 0) {
            if (o.target.kind == PITR_LATEST || o.target.kind == PITR_IMMEDIATE || e.code != ERR_NOTFOUND)
                goto fail;
            log_warning("%s — recovery fails if the target lies beyond the gap", e.msg);
            err_clear(&e);
        }
        log_info("the archive holds %lu WAL segments from the backup on (newest %s)", nseg, newest);

        memset(&bo, 0, sizeof bo);
        bo.parallel = c->parallel;
        bo.tsmap = o.tsmap;
        bo.ntsmap = o.ntsmap;
        if (bkf_fetch(s, rc, c, m, o.pgdata, &bo, &bs, &e) < 0)
            goto fail;
        t_fetch = now_ms() - t0;
        printf("fetched backup %s: %llu files, %.1f MB in %.1f s\n", m->name, (unsigned long long)bs.files,
               (double)bs.bytes / (1 << 20), (double)t_fetch / 1000.0);
        /* restore owns the recovery settings: the backup's go, ours are written once */
        if (build_restore_command(ctx, rc->name, cmdline, sizeof cmdline, &e) < 0 ||
            restore_conf_prepare(o.pgdata, o.port > 0, !o.keep_archive, &found, &e) < 0 ||
            pitr_write_recovery(o.pgdata, &o.target, cmdline, o.keep_archive, o.port, &found, &e) < 0)
            goto fail;
        if (!o.start) {
            char qbin[PATH_MAX * 4 + 16], qdata[PATH_MAX * 4];

            restore_conf_shell_quote(qbin, sizeof qbin, o.pg_bin, "/pg_ctl");
            restore_conf_shell_quote(qdata, sizeof qdata, o.pgdata, "");
            printf("recovery settings written to %s/postgresql.auto.conf; start it with:\n  %s -D %s start\n",
                   o.pgdata, qbin, qdata);
            rc_ = 0;
            goto out;
        }
        memset(&st, 0, sizeof st);
        if (start_and_wait(&o, &st, &e) < 0)
            goto fail;
        t_replay = now_ms() - t0 - t_fetch;
        /* promoted (not shut down at the target): a backup of it must carry no target */
        if (!st.in_recovery && strcmp(st.pause, "shut down") != 0)
            restore_conf_after_promote(o.pgdata, o.keep_restore_command);
        printf("restore complete: backup %s from region %s\n", m->name, rc->name);
        printf("  recovery point: LSN %s%s%s, timeline %s, %s\n", st.lsn[0] ? st.lsn : "?",
               st.ts[0] ? ", last transaction at " : "", st.ts, st.tli[0] ? st.tli : "?",
               st.in_recovery ? (strcmp(st.pause, "shut down") == 0 ? "shut down at the target" : "paused at the target")
                              : "promoted");
        {
            uint64_t lsn = 0;
            struct err le = ERR_INIT;

            if (st.lsn[0] && wal_parse_lsn(st.lsn, &lsn, &le) == 0 && lsn >= m->start_lsn)
                printf("  WAL replayed: about %llu segments\n",
                       (unsigned long long)((lsn - m->start_lsn) / m->wal_segment_size + 1));
        }
        printf("  time: fetch %.1f s, replay %.1f s, total (RTO) %.1f s\n", (double)t_fetch / 1000.0,
               (double)t_replay / 1000.0, (double)(now_ms() - t0) / 1000.0);
    }
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
