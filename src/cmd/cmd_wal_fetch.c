/*
 * cmd_wal_fetch — `walship wal-fetch NAME DEST [--region R]`, PostgreSQL's
 * restore_command.
 *
 * Exit status is what keeps recovery honest (DESIGN.md §5): PostgreSQL
 * treats any status from 1 to 125 as "the archive ends here" and, without a
 * recovery target, promotes.  So 1 means only that every region consulted
 * answered a definite "no such object"; every other failure — a corrupt
 * object, a wrong key, a region unreachable past the retry deadline, even a
 * bad configuration — exits WALFETCH_ABORT_STATUS (above 125), which makes
 * PostgreSQL stop recovery instead of promoting early.
 *
 * A standby is the exception (DESIGN.md §5): in standby mode a missing file
 * never ends recovery, but a status above 125 shuts the standby down.  So
 * when PGDATA (our working directory, where PostgreSQL runs us) holds
 * standby.signal, or --standby is given, a failure is logged with its
 * cause and answered with 1 after every region was tried: PostgreSQL asks
 * again after wal_retrieve_retry_interval, and the standby outlives a
 * region outage.  A standby's answers are also noted in PGDATA's
 * walship-standby.state (restore/standby.h), where `walship status
 * --standby` and `walship promote` read why it stalls.
 *
 * The cluster being recovered is the one in PGDATA's global/pg_control;
 * every object must be bound to it and every segment's page header must
 * name it (restore/walfetch.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "mapread.h"
#include "note.h"
#include "standby.h"
#include "util.h"
#include "wal.h"
#include "walfetch.h"

#define WALFETCH_ABORT_STATUS 250

/* Whether DEST lies in a directory named pg_wal, as PostgreSQL's and
 * pg_rewind's %p always does.  A hand-run `wal-fetch SEG /tmp/x/seg` (for
 * pg_waldump, say) starts no prefetcher: it would leave decrypted segments
 * behind in /tmp/x/.walship-prefetch for no reader. */
static int dest_in_pg_wal(const char *dest)
{
    const char *end = strrchr(dest, '/'), *start;

    while (end != NULL && end > dest && end[-1] == '/')
        end--;
    if (end == NULL || end == dest)
        return 0;
    for (start = end; start > dest && start[-1] != '/'; start--)
        ;
    return end - start == 6 && memcmp(start, "pg_wal", 6) == 0;
}

/* Does the pg_wal DEST lies in already hold history file `name` (a regular
 * file, not empty)?  PostgreSQL asks for the history of the timeline it is
 * on (at startup, and at the end of recovery to write the new timeline's,
 * after the signal file went) and reads its own copy when restore_command
 * gives none: a failure there is a 1, not a 250 that stopped a promotion
 * whose region is gone (promote --force) halfway.  A history file never
 * changes; one pg_wal lacks (a newer timeline's probe) still fails. */
static int history_held(const char *dest, const char *name)
{
    char path[PATH_MAX];
    const char *slash = strrchr(dest, '/');
    struct stat st;

    if (!dest_in_pg_wal(dest) ||
        snprintf(path, sizeof path, "%.*s/%s", (int)(slash - dest), dest, name) >= (int)sizeof path)
        return 0;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* Prefetch for the PostgreSQL server's recovery only: its %p is always
 * pg_wal/RECOVERYXLOG.  pg_rewind --restore-target-wal passes the
 * segment's own name, in the pg_wal of the data directory it is rewinding:
 * a prefetcher there made and removed files under pg_rewind, whose plan
 * removes every file the source lacks, and pg_rewind failed halfway
 * ("could not remove file .../pg_wal/.walship-prefetch/...": a target left
 * half rewound; adversarial pass AE). */
static void spawn_prefetch(const struct config *c, const struct keyring *kr, const int *order, int n,
                           const struct cluster_info *ci, const char *name, const char *dest)
{
    const char *base = strrchr(dest, '/');
    struct stat st;

    if (dest_in_pg_wal(dest) && base != NULL && strcmp(base, "/RECOVERYXLOG") == 0 && stat(dest, &st) == 0)
        prefetch_spawn(c, kr, order, n, ci, name, dest, (uint64_t)st.st_size);
}

/* The DEST of this call: PostgreSQL's are pg_wal/RECOVERYXLOG and
 * pg_wal/RECOVERYHISTORY.  NULL before it is known (an early failure). */
static const char *fetch_dest;

/* A standby's answer, for status and promote (never fails the fetch).  Only
 * PostgreSQL's own calls tell its progress: an operator's wal-fetch of a
 * later segment by hand, in the data directory, cleared a standing failure,
 * and promote then went ahead.  A failure is noted whoever asked. */
static void note_standby(int standby, enum sby_event ev, const char *name, const char *msg)
{
    struct err e = ERR_INIT;
    const char *base = fetch_dest != NULL ? strrchr(fetch_dest, '/') : NULL;

    if (ev != SBY_FAILED && (base == NULL || !dest_in_pg_wal(fetch_dest) ||
                             (strcmp(base, "/RECOVERYXLOG") != 0 && strcmp(base, "/RECOVERYHISTORY") != 0)))
        return;
    if (standby && name != NULL && cluster_is_datadir(".") &&
        sby_state_note(".", ev, name, msg, (int64_t)time(NULL), &e) < 0)
        log_warning("%s", e.msg);
}

/* The regions a restore told this restore_command not to ask
 * (--skip-region R, repeatable): restore could not reach them, judged the
 * archive without them, and recovery must see that same archive. */
#define SKIP_MAX 64
struct skips {
    const char *name[SKIP_MAX];
    int n;
};

static int skipped(const struct skips *sk, const char *name)
{
    for (int i = 0; i < sk->n; i++)
        if (strcmp(sk->name[i], name) == 0)
            return 1;
    return 0;
}

/* The regions to ask, in order: --region R first, then the others as
 * configured, less the skipped ones; -1 when R is not configured, is
 * skipped, or no region is left. */
static int region_order(const struct config *c, const char *first, const struct skips *sk, int order[64],
                        struct err *e)
{
    int i, n = 0;

    /* a misspelt name would skip nothing: the region meant stays asked */
    for (i = 0; i < sk->n; i++)
        if (config_region(c, sk->name[i]) == NULL)
            return err_setf(e, ERR_USAGE, "--skip-region \"%s\": no region of that name is configured%s%s",
                            sk->name[i], c->path ? " in " : "", c->path ? c->path : "");
    if (first != NULL) {
        for (i = 0; i < c->nregions && n < 64; i++)
            if (strcmp(c->regions[i].name, first) == 0)
                order[n++] = i;
        if (n == 0)
            return err_setf(e, ERR_CONFIG, "no region named \"%s\" is configured", first);
        if (skipped(sk, first))
            return err_setf(e, ERR_USAGE, "region \"%s\" is both --region and --skip-region", first);
    }
    for (i = 0; i < c->nregions && n < 64; i++)
        if ((first == NULL || strcmp(c->regions[i].name, first) != 0) && !skipped(sk, c->regions[i].name))
            order[n++] = i;
    if (n == 0)
        return err_setf(e, ERR_USAGE, "--skip-region leaves no region to ask");
    return n;
}

/* A running prefetcher has its connection open: ask it first
 * (walfetch_ask: 1, WALFETCH_ASK_MISSING, or 0 to fetch for ourselves). */
static int ask_prefetcher(const struct config *c, const int *order, int n, const char *name, const char *dest,
                          const struct cluster_info *ci, struct err *e)
{
    char fp[17];
    int rc;

    err_clear(e);
    walfetch_fingerprint(c, order, n, fp);
    rc = walfetch_ask(name, dest, ci, fp, (unsigned)(c->retry_deadline < 10 ? c->retry_deadline : 10) * 1000, e);
    if (rc < 0)
        log_warning("%s", e->msg);
    return rc;
}

/* NAME DEST [--no-prefetch] [--standby] [--skip-region R]...; a
 * standby.signal in the working directory (PostgreSQL's data directory)
 * also means --standby. */
static int take_args(const struct cmd_ctx *ctx, const char **name, const char **dest, int *prefetch, int *standby,
                     struct skips *sk, struct err *e)
{
    int i;

    for (i = 1; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--no-prefetch") == 0)
            *prefetch = 0;
        else if (strcmp(ctx->argv[i], "--standby") == 0)
            *standby = 1;
        else if (strcmp(ctx->argv[i], "--skip-region") == 0) {
            if (i + 1 >= ctx->argc || sk->n >= SKIP_MAX)
                return err_setf(e, ERR_USAGE, "--skip-region needs a region name");
            sk->name[sk->n++] = ctx->argv[++i];
        }
        else if (*name == NULL)
            *name = ctx->argv[i];
        else if (*dest == NULL)
            *dest = ctx->argv[i];
        else
            err_setf(e, ERR_USAGE, "unexpected argument \"%s\" (usage: wal-fetch NAME DEST [--region R])",
                     ctx->argv[i]);
    }
    if (access("standby.signal", F_OK) == 0)
        *standby = 1;
    return e->code != ERR_OK ? -1 : 0;
}

int cmd_wal_fetch_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    struct keyring *kr = NULL;
    struct wal_name w;
    struct err e = ERR_INIT;
    struct cluster_info ci;
    const char *name = NULL, *dest = NULL;
    struct skips sk = { { NULL }, 0 };
    int order[64], n = 0, rc, by = -1, prefetch = 1, served, standby = 0, parsed = 0;

    (void)mapread_install();    /* before any thread: file:// objects read from a mapping (mapread.h) */
    memset(&ci, 0, sizeof ci);
    if (take_args(ctx, &name, &dest, &prefetch, &standby, &sk, &e) < 0)
        goto abort;
    fetch_dest = dest;
    if (name == NULL || dest == NULL) {
        err_setf(&e, ERR_USAGE, "needs NAME and DEST (restore_command = 'walship wal-fetch %%f %%p')");
        goto abort;
    }
    if (wal_parse(name, &w, &e) < 0)
        goto abort;
    parsed = 1;
    if (config_require_regions(c, &e) < 0 || dest_replaceable(dest, NULL, &e) < 0)
        goto abort;
    if (w.kind == WAL_HISTORY && w.tli == 1) {
        /* Timeline 1 never has a history file: PostgreSQL writes one only
         * for the timeline it creates (2 and up), so no region can hold
         * it.  PostgreSQL asks for it once, at the end of recovery, to
         * copy the parent's history into the new timeline's, after it
         * removed standby.signal/recovery.signal: a 250 there, from a
         * region that is down (promote --force: the region is gone), left
         * the server stopped halfway, no signal file and no new timeline. */
        log_debug("%s: timeline 1 has no history file", name);
        note_standby(standby, SBY_MISSING, name, NULL);
        return 1;
    }
    /* the cluster being recovered: its pg_control, where PostgreSQL runs us */
    if (cluster_is_datadir(".") && cluster_read_datadir(".", &ci, &e) < 0)
        goto abort;
    if ((n = region_order(c, ctx->region, &sk, order, &e)) < 0)
        goto abort;

    served = walfetch_from_prefetch(name, dest, &ci, (unsigned)(c->retry_deadline * 1000), &e);
    if (served < 0)
        log_warning("%s", e.msg);
    if (keys_load(c->key_file, c->old_key_files, &kr, &e) < 0)
        goto abort;
    if (served != 1)
        served = ask_prefetcher(c, order, n, name, dest, &ci, &e);
    if (served == 1) {
        /* keep the prefetch window moving ahead of recovery */
        log_debug("%s served from the prefetch directory", name);
        note_standby(standby, SBY_FETCHED, name, NULL);
        if (prefetch && w.kind == WAL_SEGMENT)
            spawn_prefetch(c, kr, order, n, &ci, name, dest);
        keys_free(kr);
        return 0;
    }
    if (served == WALFETCH_ASK_MISSING) {
        rc = WALFETCH_MISSING;
    } else {
        err_clear(&e);
        /* what a wal-fetch killed mid-download left beside DEST: PostgreSQL
         * never removes it from pg_wal (a directory read, so only here, not
         * when a prefetched file is served) */
        (void)sweep_dead_tmps(dest);
        rc = walfetch_one(c, kr, &note_log_sink, order, n, name, dest, &ci, &by, &e);
    }
    if (rc == WALFETCH_MISSING) {
        /* a standby asks every wal_retrieve_retry_interval: not news */
        if (standby)
            log_debug("%s", e.msg);
        else
            log_info("%s", e.msg);
        note_standby(standby, SBY_MISSING, name, NULL);     /* written only when it matters */
        keys_free(kr);
        return 1;
    }
    if (rc < 0)
        goto abort;
    log_info("fetched %s from region %s", name, c->regions[by].name);
    note_standby(standby, SBY_FETCHED, name, NULL);
    if (prefetch && w.kind == WAL_SEGMENT)
        spawn_prefetch(c, kr, order, n, &ci, name, dest);
    keys_free(kr);
    return 0;
abort:
    keys_free(kr);
    if (parsed && w.kind == WAL_HISTORY && history_held(dest, name)) {
        log_warning("wal-fetch %s: %s; pg_wal holds %s, which PostgreSQL reads instead (exit 1)", name, e.msg,
                    name);
        return 1;
    }
    return wal_fetch_fail(standby, name, e.msg);
}

int wal_fetch_fail(int standby, const char *name, const char *msg)
{
    if (standby) {
        note_standby(standby, SBY_FAILED, name, msg);
        if (!sby_promoting(".")) {
            log_error("wal-fetch %s: %s (standby: exit 1, PostgreSQL asks again after wal_retrieve_retry_interval; "
                      "a standby never promotes on its own)", name ? name : "", msg);
            return 1;
        }
        log_error("wal-fetch %s: %s (exit %d: a promotion is under way, and a 1 now would end recovery before WAL "
                  "the region may hold; PostgreSQL stops instead and the instance stays a standby: start it "
                  "again, then promote again, or with --force to end recovery here)",
                  name ? name : "", msg, WALFETCH_ABORT_STATUS);
        return WALFETCH_ABORT_STATUS;
    }
    log_error("wal-fetch %s: %s (exit %d: PostgreSQL stops recovery rather than treat this as the end of "
              "the archive)", name ? name : "", msg, WALFETCH_ABORT_STATUS);
    return WALFETCH_ABORT_STATUS;
}

/* wal-fetch failed before it ran (argv[first - 1] is the command, then
 * its arguments): its NAME and whether this is a standby, as it would see
 * them. */
int wal_fetch_early_fail(int argc, char **argv, int first, const char *msg)
{
    const char *name = NULL;
    int i, standby = access("standby.signal", F_OK) == 0;

    for (i = first; i < argc; i++) {
        if (strcmp(argv[i], "--standby") == 0)
            standby = 1;
        else if (strcmp(argv[i], "--skip-region") == 0)
            i++;
        else if (strncmp(argv[i], "--", 2) != 0 && name == NULL)
            name = argv[i];
    }
    return wal_fetch_fail(standby, name, msg);
}

/* PostgreSQL's %p in restore_command: pg_wal/RECOVERYXLOG or
 * pg_wal/RECOVERYHISTORY (no other command takes such a path). */
static int is_recovery_dest(const char *arg)
{
    const char *base = strrchr(arg, '/');

    base = base != NULL ? base + 1 : arg;
    return strcmp(base, "RECOVERYXLOG") == 0 || strcmp(base, "RECOVERYHISTORY") == 0;
}

int wal_fetch_cmdline_fail(int argc, char **argv, const char *why)
{
    int i, at = 0;

    for (i = 1; i < argc && at == 0; i++)
        if (strcmp(argv[i], "wal-fetch") == 0)
            at = i;
    /* or a misspelt command given PostgreSQL's %p ('walship wal_fetch %f %p') */
    for (i = 2; i < argc && at == 0; i++)
        if (is_recovery_dest(argv[i]))
            at = 1;
    if (at == 0)
        return EXIT_USAGE;
    log_init("wal-fetch", LOG_INFO);
    return wal_fetch_early_fail(argc, argv, at + 1, why);
}
