/*
 * cmd_restore_end — the end of the archive for restore --target-latest
 * (cmd_restore_end.h).
 */
#include "cmd_restore_end.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"
#include "repo.h"
#include "util.h"
#include "wal.h"

/* Region `name` could not be opened: restore judges the archive without
 * it, so recovery's restore_command must not ask it either.  Asked, its
 * first question the others cannot answer (PostgreSQL's probe of the next
 * timeline's history file, at startup) was a 250 and every such restore
 * stopped, after the whole fetch (adversarial pass AC). */
int restore_name_listed(const char *list, const char *name)
{
    size_t len = strlen(name);

    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
    return 0;
}

static void note_unasked(struct cmd_ctx *ctx, const char *name)
{
    size_t k = strlen(ctx->unasked), len = strlen(name);

    if (restore_name_listed(ctx->unasked, name))
        return;     /* noted already (restore opens the regions twice) */
    if (k + len + 2 < sizeof ctx->unasked)
        snprintf(ctx->unasked + k, sizeof ctx->unasked - k, "%s%s", k ? " " : "", name);
}

size_t restore_open_regions(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *first,
                            struct repo *rs[END_MAX_REGIONS])
{
    const struct config *c = ctx->conf;
    size_t n = 0;
    int i;

    rs[n++] = first;
    for (i = 0; i < c->nregions && n < END_MAX_REGIONS; i++) {
        struct err re = ERR_INIT;
        struct repo *r = NULL;

        if (strcmp(c->regions[i].name, first->name) == 0)
            continue;
        if (cmd_repo_open(ctx, &c->regions[i], kr, REPO_OPEN_IDENTITY, &r, &re) < 0) {
            log_warning("region %s cannot be asked where the archive ends (%s): the end is taken from the other "
                        "regions, and recovery may end short of what %s holds; the restore_command written "
                        "does not ask it either (a standby's does)", c->regions[i].name, re.msg, c->regions[i].name);
            note_unasked(ctx, c->regions[i].name);
            repo_free(r);
            continue;
        }
        rs[n++] = r;
    }
    return n;
}

/* 1 when files a and b hold the same bytes, 0 when not, -1 (errno) when
 * one cannot be read. */
static int same_bytes(const char *a, const char *b)
{
    static char x[65536], y[65536];
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    size_t na, nb;
    int rc = -1;

    if (fa != NULL && fb != NULL) {
        do {
            na = fread(x, 1, sizeof x, fa);
            nb = fread(y, 1, sizeof y, fb);
        } while (na == nb && na > 0 && memcmp(x, y, na) == 0);
        rc = ferror(fa) || ferror(fb) ? -1 : na == nb && na == 0;
    }
    if (fa != NULL)
        fclose(fa);
    if (fb != NULL)
        fclose(fb);
    return rc;
}

/* Every other region that gives the newest segment whole must give the
 * same bytes.  Two copies that both decode under its name and this
 * cluster's system identifier but differ mean one was put in place of the
 * other (a copy of the data directory archiving with the same key to
 * another repository, docs/FORMAT.md): the end of the archive would be
 * taken from one and PostgreSQL may read either.  A region without it (an
 * async region behind) or that cannot give it whole is passed over, as
 * wal-fetch passes it over. */
static int others_agree(struct repo *const *rs, size_t n, size_t first, const char *key, const char *path,
                        struct err *e)
{
    char other[PATH_MAX];
    size_t i;
    int same;

    if ((size_t)snprintf(other, sizeof other, "%s.other", path) >= sizeof other)
        return err_setf(e, ERR_INTERNAL, "temporary path too long");
    for (i = first + 1; i < n; i++) {
        struct err fe = ERR_INIT;

        if (repo_get_to_file(rs[i], key, other, &fe) < 0) {
            if (fe.code != ERR_NOTFOUND)
                log_warning("%s; region %s's copy of the newest WAL segment is not compared", fe.msg, rs[i]->name);
            continue;
        }
        same = same_bytes(path, other);
        unlink(other);
        if (same < 0)
            return err_errno(e, ERR_IO, errno, "could not compare the copies of %s", key);
        if (!same)
            return err_setf(e, ERR_CORRUPT,
                            "regions %s and %s hold different copies of %s, the newest WAL segment, and both are "
                            "this cluster's: one of them was put in place of the other (another repository of "
                            "the same cluster written with the same key?); the end of the archive cannot be "
                            "trusted.  Find which copy is production's, remove the other (walship --region R st "
                            "rm %s), or restore to an explicit --target-lsn",
                            rs[first]->name, rs[i]->name, key, key);
    }
    return 0;
}

/* The newest segment into `path`, from the first region that gives it
 * whole (each copy is checked against its key, name and cluster), and the
 * same in every other region that has it.  When none does, the error is
 * the first that is not "not found" (a damaged copy in one region, absent
 * in the async region behind it: that region's "no such file" was the
 * message, exit 1, "does not exist"), and never "not found": the segment
 * was listed, so the end of the archive is not known (adversarial pass AC). */
static int fetch_newest(struct repo *const *rs, size_t n, const char *name, const char *path, struct err *e)
{
    char key[REPO_KEY_MAX];
    struct err first = ERR_INIT;
    size_t i;

    if (repo_key_wal(key, sizeof key, name) < 0)
        return err_setf(e, ERR_INTERNAL, "WAL key too long");
    for (i = 0; i < n; i++) {
        struct err fe = ERR_INIT;

        if (repo_get_to_file(rs[i], key, path, &fe) == 0)
            return others_agree(rs, n, i, key, path, e);
        if (i + 1 < n)
            log_warning("%s; trying region %s", fe.msg, rs[i + 1]->name);
        if (first.code == ERR_OK || (first.code == ERR_NOTFOUND && fe.code != ERR_NOTFOUND)) {
            first = fe;
            if (strncmp(first.msg, "region ", 7) != 0)
                err_prefix(&first, "region %s", rs[i]->name);
        }
    }
    *e = first;
    if (e->code == ERR_NOTFOUND)
        e->code = ERR_IO;
    return err_prefix(e, "could not fetch %s, the newest WAL segment", name);
}

/* pg_waldump's output is a file in TMPDIR, and pg_waldump does not check
 * its writes: a full disk cut it short, silently, and its last record was
 * then an earlier one; restore promoted there, the transactions after it
 * gone.  The record found must be the segment's last one: read again from
 * it, at most two records, it comes alone (a record past `limit` does not
 * count, as in rcv_last_record). */
static int check_last(char *waldump, char *seg, const char *out, uint64_t limit, uint64_t lsn, rcv_run_fn run,
                      const char *newest, struct err *e)
{
    char start[24], again_s[24], limit2[] = "2", opt_s[] = "--start", opt_n[] = "--limit";
    char *argv[] = { waldump, opt_s, start, opt_n, limit2, seg, NULL };
    struct err ce = ERR_INIT;
    uint64_t again = 0;

    wal_format_lsn(lsn, start);
    if (run(NULL, argv, out) >= 0 && rcv_last_record(out, limit, &again, &ce) == 0 && again == lsn)
        return 0;
    wal_format_lsn(again, again_s);
    return err_setf(e, ERR_IO, "pg_waldump's output for %s was cut short (a full TMPDIR?): its last record, at %s, "
                    "is not the segment's last (%s)", newest, start,
                    ce.code != ERR_OK ? ce.msg : again > lsn ? again_s : "pg_waldump failed");
}

static int last_record(struct repo *const *rs, size_t n, const struct rcv_end *end, const char *pg_bin,
                       rcv_run_fn run, struct pitr_target *t, struct err *e)
{
    char dir[PATH_MAX - 64], seg[PATH_MAX], out[PATH_MAX], waldump[PATH_MAX];
    char *argv[3];
    const char *tmp = getenv("TMPDIR");
    int rc = -1;

    snprintf(dir, sizeof dir, "%s/walship-end.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        snprintf(dir, sizeof dir, "/tmp/walship-end.XXXXXX");
        if (mkdtemp(dir) == NULL)
            return err_errno(e, ERR_IO, errno, "could not create a temporary directory");
    }
    snprintf(seg, sizeof seg, "%s/%s", dir, end->newest);
    snprintf(out, sizeof out, "%s/waldump.out", dir);
    snprintf(waldump, sizeof waldump, "%s/pg_waldump", pg_bin);
    if (fetch_newest(rs, n, end->newest, seg, e) < 0)
        goto out;
    argv[0] = waldump;
    argv[1] = seg;
    argv[2] = NULL;
    if (run(NULL, argv, out) < 0 || rcv_last_record(out, end->limit, &t->lsn, e) < 0 ||
        check_last(waldump, seg, out, end->limit, t->lsn, run, end->newest, e) < 0) {
        char why[ERR_MSG_MAX];

        /* the cause copied first: e->msg is written over */
        snprintf(why, sizeof why, "%s", e->msg[0] ? e->msg : "pg_waldump failed");
        err_setf(e, ERR_IO,
                 "could not find the last WAL record of %s, the end of the archive (%s); restore to an explicit "
                 "--target-lsn instead",
                 end->newest, why);
        goto out;
    }
    rc = 0;
out:
    unlink(seg);
    unlink(out);
    rmdir(dir);
    return rc;
}

/* The judged timeline as PostgreSQL must keep it.  The backup's own is
 * written 'current': a number other than 1 makes PostgreSQL demand that
 * timeline's history file (FATAL "recovery target timeline N does not
 * exist"), and a timeline promoted while archiving was off has none in
 * the archive, though its segments and backups are there.  Another
 * timeline was judged through its history file, so it is there. */
static void pin_timeline(struct pitr_target *t, const struct manifest *m, uint32_t tli)
{
    if (tli == m->timeline)
        snprintf(t->timeline, sizeof t->timeline, "current");
    else
        snprintf(t->timeline, sizeof t->timeline, "%u", (unsigned)tli);
}

int restore_latest_end(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *first, const struct manifest *m,
                       const char *pg_bin, rcv_run_fn run, struct pitr_target *t, unsigned long *nseg,
                       int *no_start, struct err *e)
{
    struct repo *rs[END_MAX_REGIONS];
    struct rcv_end end;
    char lsn[24];
    size_t n = restore_open_regions(ctx, kr, first, rs), i;
    int rc = -1;

    *no_start = 0;
    if (rcv_archive_end(rs, n, m, t->timeline, &end, e) < 0) {
        *no_start = end.no_start;
        if (e->code == ERR_NOTFOUND && !end.no_timeline)
            e->code = ERR_IO;   /* "latest" would end short: a failure, not "not found" */
        goto out;
    }
    if (end.skipped[0] != '\0')
        log_warning("the end of the archive is taken without: %s; recovery may end short of what they hold",
                    end.skipped);
    *nseg = end.nsegments;
    if (last_record(rs, n, &end, pg_bin, run, t, e) < 0)
        goto out;
    wal_format_lsn(t->lsn, lsn);
    snprintf(t->value, sizeof t->value, "%s", lsn);
    /* the timeline judged, as a number: 'latest' is PostgreSQL's pick at
     * its start, and a history file archived meanwhile (a drill promoting
     * with --keep-archive while this restore fetched) was followed, the
     * LSN above reached on its branch, its rows restored (pass AC).  A
     * timeline given, 'latest' included, is the operator's choice */
    if (t->timeline[0] == '\0')
        pin_timeline(t, m, end.tli);
    log_info("the archive (%s %s) ends on timeline %u in %s, its last record at LSN %s: recovery must reach it",
             n > 1 ? "regions" : "region", end.asked, (unsigned)end.tli, end.newest, lsn);
    rc = 0;
out:
    for (i = 1; i < n; i++)
        repo_free(rs[i]);
    return rc;
}

/* A gap at `gap_lsn` (0: none) that no recovery to `t` from backup `m` can
 * get past: before the backup is consistent, or before an LSN target.
 * -1 with e set (ERR_IO: nothing fetched, exit 3, e's message about the
 * gap kept), else 0. */
static int gap_refuse(const struct manifest *m, const struct pitr_target *t, uint64_t gap_lsn, struct err *e)
{
    int before_end = gap_lsn > 0 && gap_lsn <= m->stop_lsn;

    if (!before_end && !(gap_lsn > 0 && t->kind == PITR_LSN && gap_lsn <= t->lsn))
        return 0;
    e->code = ERR_IO;
    return err_prefix(e, "%s %s is past a gap in the archive, so recovery cannot reach it (nothing was fetched; %s, "
                      "or from a region that has the segment)", before_end ? "the end of backup" : "target LSN",
                      before_end ? m->name : t->value,
                      before_end ? "restore from another backup (--backup)" : "restore to an LSN before the gap");
}

int restore_target_wal(struct cmd_ctx *ctx, const struct keyring *kr, struct repo *first, const struct manifest *m,
                       struct pitr_target *t, int standby, int *no_start, struct err *e)
{
    struct repo *rs[END_MAX_REGIONS];
    struct pitr_wal w;
    int rc;
    size_t n, i;

    /* every region restore_command asks: a history file only another
     * region holds decides the path PostgreSQL takes (a drill's timeline
     * archived to the DR region only was followed, unchecked) */
    n = restore_open_regions(ctx, kr, first, rs);
    rc = pitr_check_wal(rs, n, m, t->timeline, &w, e);
    for (i = 1; i < n; i++)
        repo_free(rs[i]);
    *no_start = w.no_start;
    if (w.skipped[0] != '\0')
        log_warning("the archive is checked without: %s; restore_command will ask them too, and what they hold "
                    "may change the way recovery takes", w.skipped);
    if (rc < 0 && w.no_start && !standby) {
        e->code = ERR_IO;       /* recovery could not even begin: a failure, not "not found" */
        return -1;
    }
    if (rc < 0) {
        /* a gap no recovery to the target can pass fails before the fetch;
         * a standby waits there */
        if (t->kind == PITR_IMMEDIATE || e->code != ERR_NOTFOUND || w.no_timeline ||
            (!standby && gap_refuse(m, t, w.gap_lsn, e) < 0))
            return -1;
        log_warning("%s — %s", e->msg, standby ? "the standby will wait there"
                                               : "recovery fails if the target lies beyond the gap");
        err_clear(e);
    }
    log_info("the archive holds %lu WAL segments from the backup on (newest %s)", w.nsegments, w.newest);
    /* the timeline the path was judged for, as a number (as for latest):
     * a history file archived after this check must not change the path
     * PostgreSQL takes.  A standby follows new timelines; a timeline
     * given, 'latest' included, is the operator's */
    if (!standby && t->timeline[0] == '\0' && w.tli != 0)
        pin_timeline(t, m, w.tli);
    return 0;
}
