#include "pitr.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "recover.h"
#include "timeline.h"
#include "util.h"
#include "wal.h"

/* 1 to `max` digits, unsigned: sscanf's %d would take a sign (an hour of
 * "-1" that timegm() moves to the day before, and PostgreSQL refuses). */
static int take_num(const char **p, int max, int *v)
{
    int k = 0;

    *v = 0;
    while (k < max && isdigit((unsigned char)(*p)[k]))
        *v = *v * 10 + ((*p)[k++] - '0');
    *p += k;
    return k > 0 ? 0 : -1;
}

static int days_in_month(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return days[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

int pitr_check_xid(const char *s, struct err *e)
{
    unsigned long long v;
    char *end;

    if (s[0] < '0' || s[0] > '9' || strspn(s, "0123456789") != strlen(s))
        return err_setf(e, ERR_USAGE, "bad target xid \"%s\": give a transaction id in decimal (like 748)", s);
    if (s[0] == '0' && s[1] != '\0')
        return err_setf(e, ERR_USAGE, "bad target xid \"%s\": PostgreSQL reads a leading 0 as octal, so it would "
                        "stop at another transaction; write the id without it", s);
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return err_setf(e, ERR_USAGE, "bad target xid \"%s\": too large", s);
    if ((v & 0xffffffffULL) < 3)
        return err_setf(e, ERR_USAGE, "bad target xid \"%s\": no transaction has it (ids below 3 are special)", s);
    return 0;
}

int pitr_check_name(const char *s, struct err *e)
{
    if (s[0] == '\0')
        return err_setf(e, ERR_USAGE, "empty target name: PostgreSQL would read it as no target at all");
    if (strlen(s) > 63)
        return err_setf(e, ERR_USAGE, "target name \"%.20s...\" is %zu bytes: a restore point name has at most "
                        "63 (pg_create_restore_point), so recovery could never reach it", s, strlen(s));
    return 0;
}

int pitr_parse_time(const char *s, int64_t *out, char *normalized, size_t n, struct err *e)
{
    int Y, M, D, h, m, sec, used = 0, zh = 0, zm = 0, sign = 1;
    const char *p = s;
    struct tm tm;
    time_t t;

    if (take_num(&p, 4, &Y) < 0 || p - s != 4 || *p++ != '-' || take_num(&p, 2, &M) < 0 || *p++ != '-' ||
        take_num(&p, 2, &D) < 0 || (*p != ' ' && *p != 'T'))
        return err_setf(e, ERR_USAGE, "bad target time \"%s\" (use \"2026-11-22 05:32:30+00\")", s);
    while (*p == ' ' || *p == 'T')
        p++;
    if (take_num(&p, 2, &h) < 0 || *p++ != ':' || take_num(&p, 2, &m) < 0 || *p++ != ':' ||
        take_num(&p, 2, &sec) < 0)
        return err_setf(e, ERR_USAGE, "bad target time \"%s\" (use \"2026-11-22 05:32:30+00\")", s);
    used = (int)(p - s);
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    while (*p == ' ')
        p++;
    if (*p == '\0' || strcmp(p, "Z") == 0 || strcmp(p, "UTC") == 0 || strcmp(p, "GMT") == 0) {
        zh = zm = 0;
    } else if (*p == '+' || *p == '-') {
        const char *digits;

        sign = *p == '-' ? -1 : 1;
        digits = ++p;
        /* as PostgreSQL reads it (DecodeTimezone): hours, ':' minutes; or
         * run together, three or four digits are HMM or HHMM ("-100" is
         * -01:00: walship read -10:00, a time 9 hours later, and chose a
         * backup taken after the target; adversarial pass S) */
        if (take_num(&p, 4, &zh) < 0)
            return err_setf(e, ERR_USAGE, "bad time zone in target time \"%s\"", s);
        if (*p == ':') {
            if (p++ - digits > 2 || take_num(&p, 2, &zm) < 0)
                return err_setf(e, ERR_USAGE, "bad time zone in target time \"%s\"", s);
        } else if (p - digits > 2) {
            zm = zh % 100;
            zh /= 100;
        }
        if (*p != '\0' || zh > 15 || zm > 59)
            return err_setf(e, ERR_USAGE, "bad time zone in target time \"%s\"", s);
    } else {
        return err_setf(e, ERR_USAGE,
                        "target time \"%s\": give the zone as an offset (+02, -05:30) or UTC, not a name", s);
    }
    if (M >= 1 && M <= 12 && D > days_in_month(Y, M))
        return err_setf(e, ERR_USAGE, "bad target time \"%s\": %04d-%02d has no day %d", s, Y, M, D);
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return err_setf(e, ERR_USAGE, "bad target time \"%s\"", s);
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    t = timegm(&tm);
    *out = (int64_t)t - sign * (zh * 3600 + zm * 60);
    if (normalized != NULL) {
        /* keep the user's text; make a missing zone explicit */
        const char *z = s + used;
        int has_zone = strpbrk(z, "+-Z") != NULL || strstr(z, "UTC") != NULL || strstr(z, "GMT") != NULL;

        if ((size_t)snprintf(normalized, n, "%s%s", s, has_zone ? "" : "+00") >= n)
            return err_setf(e, ERR_USAGE, "target time too long");
    }
    return 0;
}

int pitr_choose(const struct catalog *c, const struct pitr_target *t, const char *name,
                const unsigned char *usable, struct err *e)
{
    int best = -1, oldest = -1;
    size_t i;

    if (name != NULL) {
        int k = cat_find(c, name, e);

        if (k < 0)
            return -1;
        if (t->kind == PITR_TIME && c->v[k].man->stop_time >= t->time)
            return err_setf(e, ERR_NOTFOUND, "backup %s ended after the target time: it cannot reach it", name);
        if (t->kind == PITR_LSN && c->v[k].man->stop_lsn > t->lsn)
            return err_setf(e, ERR_NOTFOUND, "backup %s ended after the target LSN: it cannot reach it", name);
        return k;
    }
    for (i = 0; i < c->n; i++) {
        const struct manifest *m = c->v[i].man;

        if (!c->v[i].complete || m == NULL || (usable != NULL && !usable[i]))
            continue;
        if (oldest < 0)
            oldest = (int)i;
        /* a backup can reach a point only after it became consistent; its
         * stop time is whole seconds (the backup ended somewhere in that
         * second), so a target within that second may lie before its end
         * (PostgreSQL: "requested recovery stop point is before consistent
         * recovery point"): only a backup that ended in an earlier second */
        if (t->kind == PITR_TIME && m->stop_time >= t->time)
            continue;
        if (t->kind == PITR_LSN && m->stop_lsn > t->lsn)
            continue;
        best = (int)i;
    }
    if (best >= 0)
        return best;
    if (oldest < 0)
        return err_setf(e, ERR_NOTFOUND, "there is no complete backup to restore from");
    {
        const struct manifest *m = c->v[oldest].man;
        char ts[32], lsn[24];

        man_format_time(m->stop_time + 1, ts);     /* the first whole second after its end */
        wal_format_lsn(m->stop_lsn, lsn);
        return err_setf(e, ERR_NOTFOUND,
                        "the target is before the oldest backup: the oldest reachable point is %s (LSN %s, end of "
                        "backup %s)",
                        ts, lsn, m->name);
    }
}

int pitr_on_path(struct repo *const *rs, size_t nrs, const struct catalog *c, const char *timeline,
                 unsigned char **usable, uint32_t *tli, char skipped[1024], struct err *e)
{
    struct tl_model tm;
    struct tl_step *p = NULL;
    struct err pe = ERR_INIT;
    uint64_t seg_size = 0;
    size_t i, n = 0;
    char *end, where[544];
    unsigned long v;

    skipped[0] = '\0';
    *usable = NULL;
    *tli = 0;
    if (!isdigit((unsigned char)timeline[0]))
        return 0;   /* latest, current, none: the newest backup, as before */
    errno = 0;
    v = strtoul(timeline, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > UINT32_MAX)
        return 0;   /* parse_args refused it already */
    for (i = 0; i < c->n && seg_size == 0; i++)
        if (c->v[i].complete && c->v[i].man != NULL)
            seg_size = c->v[i].man->wal_segment_size;
    if (seg_size == 0)
        return 0;
    if (rcv_model(rs, nrs, seg_size, &tm, where, skipped, e) < 0) {
        tl_model_free(&tm);
        return -1;
    }
    if (tl_path(&tm, (uint32_t)v, &p, &n, &pe) < 0) {
        tl_model_free(&tm);
        return pe.code == ERR_NOMEM ? err_setf(e, ERR_NOMEM, "out of memory") : 0;
    }
    if ((*usable = calloc(c->n + 1, 1)) == NULL) {
        free(p);
        tl_model_free(&tm);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    for (i = 0; i < c->n; i++) {
        const struct manifest *m = c->v[i].man;

        /* on the path from its start to its end (tl_backup_end) */
        if (c->v[i].complete && m != NULL)
            (*usable)[i] = tl_path_index(p, n, m->timeline, tl_backup_end(m->start_lsn, m->stop_lsn)) >= 0;
    }
    *tli = (uint32_t)v;
    free(p);
    tl_model_free(&tm);
    return 0;
}

/* ---- WAL continuity ---- */

/* The message for a gap: the segment, the last one read before it and the
 * first one after it. */
static int gap_error(const char *region, const struct tl_model *tm, const struct tl_reach *re, struct err *e)
{
    char want[WAL_NAME_LEN + 1], before[WAL_NAME_LEN + 1] = "", after[WAL_NAME_LEN + 1] = "";
    uint64_t s;
    uint32_t t;

    wal_segment_name(re->gap.tli, re->gap.first, tm->seg_size, want);
    if ((t = tl_read_from(tm, re->path, re->npath, re->gap.first - 1, TL_AS_POSTGRES)) != 0)
        wal_segment_name(t, re->gap.first - 1, tm->seg_size, before);
    for (s = re->gap.last + 1; s <= re->last; s++)
        if ((t = tl_read_from(tm, re->path, re->npath, s, TL_AS_POSTGRES)) != 0) {
            wal_segment_name(t, s, tm->seg_size, after);
            break;
        }
    return err_setf(e, ERR_NOTFOUND,
                    "%s: WAL segment %s is missing (the archive has %s and then %s): recovery would stop "
                    "there", region, want, before, after);
}

int pitr_check_wal(struct repo *const *rs, size_t n, const struct manifest *m, const char *timeline,
                   struct pitr_wal *out, struct err *e)
{
    struct tl_model tm;
    struct tl_reach re;
    const struct tl_timeline *t;
    struct tl_branch br;
    uint32_t target;
    int rc = -1;
    char where[544];

    memset(out, 0, sizeof *out);
    memset(&re, 0, sizeof re);
    if (rcv_model(rs, n, m->wal_segment_size, &tm, where, out->skipped, e) < 0)
        goto out;
    if ((target = tl_target(&tm, m->timeline, timeline, e)) == 0)
        goto out;
    out->tli = target;
    if (target > 1 && target != m->timeline && ((t = tl_find(&tm, target)) == NULL || !t->has_history)) {
        out->no_timeline = 1;
        err_setf(e, ERR_NOTFOUND, "%s: timeline %u does not exist: %08X.history is not archived", where,
                 (unsigned)target, (unsigned)target);
        goto out;
    }
    if (tl_reach(&tm, m->timeline, m->start_lsn, target, &re, e) < 0) {
        /* no usable history for the target: recovery may still reach a
         * target before the switch, so the caller only warns */
        if (e->code != ERR_NOMEM) {
            e->code = ERR_NOTFOUND;
            err_prefix(e, "%s", where);
        }
        goto out;
    }
    /* nor before the backup's end: PostgreSQL replays its end-of-backup
     * record on its timeline ("online backup was canceled"; pass AA) */
    if (tl_path_index(re.path, re.npath, m->timeline, tl_backup_end(m->start_lsn, m->stop_lsn)) < 0)
        re.status = TL_REACH_NOT_DESCENDANT;
    if (re.status == TL_REACH_NOT_DESCENDANT) {
        tl_not_child_refuse(target, m->timeline, m->name, where, e);
        out->no_timeline = 1;   /* PostgreSQL refuses it at startup, whatever the target */
        goto out;
    }
    /* before the gaps: a gap is only a warning for these targets, two
     * branches are not */
    if ((timeline == NULL || timeline[0] == '\0') &&
        tl_path_left_branch(&tm, re.path, re.npath, m->start_lsn, &br)) {
        tl_branch_refuse(&tm, &br, target, where, e);
        goto out;
    }
    if (re.status == TL_REACH_NO_START || (re.status == TL_REACH_GAP && re.gap.first == re.first)) {
        out->no_start = 1;
        out->gap_lsn = m->start_lsn - m->start_lsn % tm.seg_size;
        err_setf(e, ERR_NOTFOUND, "%s: WAL segment %s, where backup %s starts, is not archived (an async region "
                 "behind?  An older backup may restore from the WAL there is: --backup NAME, see backup-list)",
                 where, m->start_wal, m->name);
        goto out;
    }
    if (re.status == TL_REACH_GAP) {
        gap_error(where, &tm, &re, e);
        out->gap_lsn = re.gap.first * tm.seg_size;
        goto out;
    }
    out->nsegments = re.nsegments;
    wal_segment_name(re.last_tli, re.last, tm.seg_size, out->newest);
    rc = 0;
out:
    tl_reach_free(&re);
    tl_model_free(&tm);
    return rc;
}

/* ---- recovery settings ---- */

/* Overrides, first in the block: a recovery setting found in a file outside
 * PGDATA (which restore does not change) set back to its default.  They come
 * before the target because PostgreSQL checks "at most one recovery target"
 * as it applies the settings in order. */
static int add_overrides(char *buf, size_t cap, size_t *len, const struct rconf_list *found, struct err *e)
{
    char q[256];
    size_t i, k;

    for (i = 0; found != NULL && i < found->n; i++) {
        const struct rconf_change *c = &found->v[i];
        const char *neutral = rconf_neutral_value(c->name);
        int dup = 0, n;

        if (c->what != RCONF_OVERRIDDEN || neutral == NULL)
            continue;
        for (k = 0; k < i; k++)
            dup |= found->v[k].what == RCONF_OVERRIDDEN && strcmp(found->v[k].name, c->name) == 0;
        if (dup)
            continue;
        rconf_quote(q, sizeof q, neutral);
        n = snprintf(buf + *len, cap - *len, "%s = %s   # overrides a file outside the data directory\n", c->name,
                     q);
        if (n < 0 || (size_t)n >= cap - *len)
            return err_setf(e, ERR_INTERNAL, "recovery settings too long");
        *len += (size_t)n;
    }
    return 0;
}

int pitr_write_recovery(const char *dir, const struct pitr_target *t, const char *restore_command, int keep_archive,
                        int port, const struct rconf_list *found, struct err *e)
{
    char path[PATH_MAX], q[4096], buf[16384];
    unsigned char *old = NULL;
    size_t len = 0, oldlen = 0;
    char *all;
    int fd, rc;

#define ADD(...) do { \
        int n_ = snprintf(buf + len, sizeof buf - len, __VA_ARGS__); \
        if (n_ < 0 || (size_t)n_ >= sizeof buf - len) \
            return err_setf(e, ERR_INTERNAL, "recovery settings too long"); \
        len += (size_t)n_; \
    } while (0)

    ADD("\n" PITR_CONF_MARK "\n");
    if (add_overrides(buf, sizeof buf, &len, found, e) < 0)
        return -1;
    if (rconf_quote(q, sizeof q, restore_command) < 0)
        return err_setf(e, ERR_USAGE, "restore_command too long");
    ADD("restore_command = %s\n", q);
    if (t->kind == PITR_STANDBY) {
        /* no target: only a promotion ends a standby's recovery */
    } else if (t->kind == PITR_IMMEDIATE) {
        ADD("recovery_target = 'immediate'\n");
    } else if (t->kind == PITR_LATEST) {
        /* the end of the archive, when known: recovery must get there */
        if (t->value[0] != '\0') {
            rconf_quote(q, sizeof q, t->value);
            ADD("recovery_target_lsn = %s\n", q);
            ADD("recovery_target_inclusive = 'on'\n");
        }
    } else {
        static const char *const names[] = { "", "recovery_target_time", "recovery_target_lsn",
                                             "recovery_target_xid", "recovery_target_name" };

        rconf_quote(q, sizeof q, t->value);
        ADD("%s = %s\n", names[t->kind], q);
    }
    if (t->kind == PITR_STANDBY)
        ADD("hot_standby = 'on'\n");
    else if (t->kind != PITR_LATEST || t->value[0] != '\0')
        ADD("recovery_target_action = '%s'\n", t->action);
    ADD("recovery_target_timeline = '%s'\n", t->timeline[0] ? t->timeline : "latest");
    if (!keep_archive)
        ADD("archive_mode = 'off'   # walship restore: re-enable to archive from this instance\n");
    if (port > 0)
        ADD("port = %d\n", port);
#undef ADD

    /* one atomic write: what the backup had (already neutralised), then ours */
    if (snprintf(path, sizeof path, "%s/postgresql.auto.conf", dir) >= (int)sizeof path)
        return err_setf(e, ERR_USAGE, "path too long");
    if (access(path, F_OK) == 0 && read_file_all(path, (size_t)64 << 20, &old, &oldlen, e) < 0)
        return -1;
    all = malloc(oldlen + len + 1);
    if (all == NULL) {
        free(old);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (oldlen)
        memcpy(all, old, oldlen);
    memcpy(all + oldlen, buf, len);
    rc = rconf_write_file(path, all, oldlen + len, e);
    free(all);
    free(old);
    if (rc < 0)
        return -1;
    if (snprintf(path, sizeof path, "%s/%s.signal", dir, t->kind == PITR_STANDBY ? "standby" : "recovery") >=
        (int)sizeof path)
        return err_setf(e, ERR_USAGE, "path too long");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create \"%s\"", path);
    fsync(fd);
    close(fd);
    return fsync_dir(dir, e);
}
