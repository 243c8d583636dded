/*
 * standby — the standby's state file and its replay lag (standby.h).
 */
#include "standby.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rconf.h"
#include "timeline.h"
#include "util.h"

static int is_segment(const char *name)
{
    struct wal_name w;
    struct err e = ERR_INIT;

    return wal_parse(name, &w, &e) == 0 && w.kind == WAL_SEGMENT;
}

static void get_str(json_t *o, const char *key, char *out, size_t n)
{
    const char *v = json_string_value(json_object_get(o, key));

    snprintf(out, n, "%s", v ? v : "");
}

static int64_t get_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int sby_state_read(const char *pgdata, struct sby_state *s, struct err *e)
{
    char path[PATH_MAX];
    json_error_t jerr;
    json_t *o;

    memset(s, 0, sizeof *s);
    if (snprintf(path, sizeof path, "%s/%s", pgdata, SBY_STATE_FILE) >= (int)sizeof path)
        return err_setf(e, ERR_USAGE, "path too long");
    if (access(path, F_OK) != 0)
        return err_setf(e, ERR_NOTFOUND, "no standby state in \"%s\" (wal-fetch has not run there as a standby)",
                        pgdata);
    o = json_load_file(path, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return err_setf(e, ERR_CORRUPT, "unreadable standby state \"%s\": %s", path, jerr.text);
    }
    s->fetched_time = get_int(o, "fetched_unix");
    get_str(o, "fetched", s->fetched, sizeof s->fetched);
    s->missing_time = get_int(o, "missing_unix");
    get_str(o, "missing", s->missing, sizeof s->missing);
    s->error_time = get_int(o, "error_unix");
    get_str(o, "error_file", s->error_name, sizeof s->error_name);
    get_str(o, "error", s->error, sizeof s->error);
    s->failing = json_is_true(json_object_get(o, "failing"));
    get_str(o, "failing_segment", s->failing_seg, sizeof s->failing_seg);
    get_str(o, "failing_other", s->failing_other, sizeof s->failing_other);
    s->other_with_seg = json_is_true(json_object_get(o, "other_with_segment"));
    s->failures = get_int(o, "failures");
    if (s->failing && s->failing_seg[0] == '\0' && s->failing_other[0] == '\0' && s->error_name[0] != '\0') {
        /* a state written before failures stood: its last failure stands */
        if (is_segment(s->error_name))
            snprintf(s->failing_seg, sizeof s->failing_seg, "%s", s->error_name);
        else
            snprintf(s->failing_other, sizeof s->failing_other, "%s", s->error_name);
    }
    s->failing = s->failing_seg[0] != '\0' || s->failing_other[0] != '\0';
    json_decref(o);
    return 0;
}

/* Apply one answer to the failures that stand; 1 when the state changed in
 * a way worth writing down (see standby.h). */
static int apply_event(struct sby_state *s, enum sby_event ev, const char *name)
{
    int seg = is_segment(name), changed = 0;
    /* segment order within one segment size: the log and seg fields */
    int cmp = seg && s->failing_seg[0] ? strcmp(name + 8, s->failing_seg + 8) : 0;

    if (ev == SBY_FAILED) {
        if (seg) {
            snprintf(s->failing_seg, sizeof s->failing_seg, "%s", name);
        } else {
            snprintf(s->failing_other, sizeof s->failing_other, "%s", name);
            s->other_with_seg = s->failing_seg[0] != '\0';
        }
        return 1;
    }
    if (!seg) {
        if (strcmp(name, s->failing_other) != 0)
            return ev == SBY_FETCHED;
        s->failing_other[0] = '\0';
        s->other_with_seg = 0;
        return 1;
    }
    if (s->failing_seg[0] != '\0' && (strcmp(name, s->failing_seg) == 0 || cmp > 0 ||
                                       (ev == SBY_FETCHED && cmp == 0))) {
        s->failing_seg[0] = '\0';
        if (s->other_with_seg) {
            s->failing_other[0] = '\0';
            s->other_with_seg = 0;
        }
        changed = 1;
    }
    return changed || ev == SBY_FETCHED || ev == SBY_MISSING;
}

/* Two wal-fetch noting at once (PostgreSQL's restore_command, an
 * operator's wal-fetch in the data directory) each read the state, changed
 * it and wrote it back: the one that read first replaced the other's
 * change, a failure noted meanwhile included.  The read, change and write
 * happen under a lock on the data directory (waited for a while, then done
 * anyway: the state never holds up a fetch), through a temp file of the
 * writer's own.  -1 when the directory cannot be opened (no lock). */
#define SBY_LOCK_WAIT_MS 10000u

static int state_lock(const char *pgdata)
{
    int fd = open(pgdata, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0)
        (void)lock_fd_wait(fd, SBY_LOCK_WAIT_MS);    /* held or not: the fetch goes on */
    return fd;
}

static int state_write(const char *pgdata, const struct sby_state *s, struct err *e);

int sby_state_note(const char *pgdata, enum sby_event ev, const char *name, const char *msg, int64_t now,
                   struct err *e)
{
    struct sby_state s;
    struct err re = ERR_INIT;
    int lock = state_lock(pgdata), rc = 0;

    if (sby_state_read(pgdata, &s, &re) < 0)
        memset(&s, 0, sizeof s);        /* none yet, or unreadable: start again */
    if (!apply_event(&s, ev, name))
        goto out;
    s.failing = s.failing_seg[0] != '\0' || s.failing_other[0] != '\0';
    switch (ev) {
    case SBY_FETCHED:
        s.fetched_time = now;
        snprintf(s.fetched, sizeof s.fetched, "%s", name);
        break;
    case SBY_MISSING:
        if (!is_segment(name))
            break;
        s.missing_time = now;
        snprintf(s.missing, sizeof s.missing, "%s", name);
        break;
    case SBY_FAILED:
        s.failures++;
        s.error_time = now;
        snprintf(s.error_name, sizeof s.error_name, "%s", name);
        snprintf(s.error, sizeof s.error, "%s", msg ? msg : "");
        break;
    }
    rc = state_write(pgdata, &s, e);
out:
    if (lock >= 0)
        close(lock);    /* lets go of the lock */
    return rc;
}

static int state_write(const char *pgdata, const struct sby_state *s, struct err *e)
{
    char path[PATH_MAX], tmp[PATH_MAX + 64];
    json_t *o;
    int fd, rc;

    if (snprintf(path, sizeof path, "%s/%s", pgdata, SBY_STATE_FILE) >= (int)sizeof path)
        return err_setf(e, ERR_USAGE, "path too long");
    (void)sweep_dead_tmps(path);
    if ((fd = open_tmp_beside(path, tmp, sizeof tmp, e)) < 0)
        return -1;
    o = json_pack("{s:b, s:I, s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:b, s:I}", "failing", s->failing, "fetched_unix",
                  (json_int_t)s->fetched_time, "fetched", s->fetched, "missing_unix", (json_int_t)s->missing_time,
                  "missing", s->missing, "error_unix", (json_int_t)s->error_time, "error_file", s->error_name, "error",
                  s->error, "failing_segment", s->failing_seg, "failing_other", s->failing_other,
                  "other_with_segment", s->other_with_seg, "failures", (json_int_t)s->failures);
    if (o == NULL) {
        close(fd);
        unlink(tmp);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    rc = json_dumpfd(o, fd, JSON_PRESERVE_ORDER);
    json_decref(o);
    if (close(fd) != 0 || rc != 0 || rename(tmp, path) != 0) {
        int en = errno;

        unlink(tmp);
        return err_errno(e, ERR_IO, en, "could not write the standby state \"%s\"", path);
    }
    return 0;
}

int sby_state_failing(const struct sby_state *s)
{
    return s->failing_seg[0] != '\0' || s->failing_other[0] != '\0';
}

/* ---- a promotion under way ---- */

static int promoting_path(const char *pgdata, char *path, size_t n)
{
    return snprintf(path, n, "%s/%s", pgdata, SBY_PROMOTING_FILE) < (int)n ? 0 : -1;
}

/* The running postmaster of `pgdata`, as "PID START" from postmaster.pid
 * (its first and third lines: a PID alone may be the same after a restart
 * in a container). */
static int postmaster_id(const char *pgdata, char *out, size_t n)
{
    char path[PATH_MAX];
    unsigned char *text = NULL;
    size_t len;
    struct err e = ERR_INIT;
    long long pid, start;
    char dir[PATH_MAX];
    int ok;

    if (snprintf(path, sizeof path, "%s/postmaster.pid", pgdata) >= (int)sizeof path ||
        read_file_all(path, 1 << 16, &text, &len, &e) < 0)
        return -1;
    ok = sscanf((char *)text, "%lld\n%4095[^\n]\n%lld", &pid, dir, &start) == 3 && pid > 0;
    free(text);
    return ok && snprintf(out, n, "%lld %lld", pid, start) < (int)n ? 0 : -1;
}

int sby_promoting_begin(const char *pgdata, struct err *e)
{
    char path[PATH_MAX], tmp[PATH_MAX + 64], text[64];
    int fd, n;

    if (promoting_path(pgdata, path, sizeof path) < 0)
        return err_setf(e, ERR_USAGE, "path too long");
    if (postmaster_id(pgdata, text, sizeof text - 1) < 0)
        return err_setf(e, ERR_IO, "cannot read the running server's postmaster.pid in \"%s\"", pgdata);
    n = (int)strlen(text);
    text[n++] = '\n';
    /* a temp name of this process's own: a second promote run at the same
     * time no longer removes or renames this one's file midway */
    (void)sweep_dead_tmps(path);
    if ((fd = open_tmp_beside(path, tmp, sizeof tmp, e)) < 0)
        return -1;
    /* readable by the server's user, which runs wal-fetch: promote may
     * run as another (root) */
    if (fchmod(fd, 0644) < 0 || write_all(fd, text, (size_t)n) < 0 || fsync(fd) < 0) {
        int en = errno;

        close(fd);
        unlink(tmp);
        return err_errno(e, ERR_IO, en, "could not write \"%s\"", tmp);
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int en = errno;

        unlink(tmp);
        return err_errno(e, ERR_IO, en, "could not rename \"%s\"", tmp);
    }
    if (fsync_dir(pgdata, e) < 0) {
        (void)unlink(path);
        return -1;
    }
    return 0;
}

void sby_promoting_end(const char *pgdata)
{
    char path[PATH_MAX];

    if (promoting_path(pgdata, path, sizeof path) == 0 && unlink(path) == 0)
        (void)fsync_dir(pgdata, &(struct err)ERR_INIT);
}

int sby_promoting(const char *pgdata)
{
    char path[PATH_MAX], now[64];
    unsigned char *text = NULL;
    size_t len;
    struct err e = ERR_INIT;
    int standing;

    if (promoting_path(pgdata, path, sizeof path) < 0 || read_file_all(path, 64, &text, &len, &e) < 0)
        return 0;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    standing = postmaster_id(pgdata, now, sizeof now) == 0 && strcmp((char *)text, now) == 0;
    free(text);
    return standing;
}

/* ---- the lag ---- */

struct seg_at {
    uint64_t segno;
    uint32_t tli;
};

struct lag_scan {
    uint64_t seg_size, replayed;        /* the segment replay is in (or finished) */
    int have;
    uint64_t newest_segno;
    uint32_t newest_tli;
    struct sby_lag *out;
    time_t oldest_waiting;              /* 0: none */
    struct seg_at *ahead;               /* segments past the replayed one (for holes) */
    size_t nahead, capahead;
    uint32_t replayed_tli;              /* the timeline of the hole's name */
    int nomem;
};

static int lag_collect(const struct stor_entry *ent, void *arg)
{
    struct lag_scan *ls = arg;
    const char *name = ent->key + strlen(REPO_WAL_DIR);
    struct wal_name w;
    struct err e = ERR_INIT;
    uint64_t segno;

    if (wal_parse(name, &w, &e) < 0 || w.kind != WAL_SEGMENT || !wal_name_fits(&w, ls->seg_size))
        return 0;
    segno = wal_segno(&w, ls->seg_size);
    if (!ls->have || segno > ls->newest_segno || (segno == ls->newest_segno && w.tli > ls->newest_tli)) {
        ls->have = 1;
        ls->newest_segno = segno;
        ls->newest_tli = w.tli;
        ls->out->newest_time = (int64_t)ent->mtime;
        snprintf(ls->out->newest, sizeof ls->out->newest, "%s", name);
    }
    if (segno > ls->replayed && (ls->oldest_waiting == 0 || ent->mtime < ls->oldest_waiting))
        ls->oldest_waiting = ent->mtime;
    if (segno > ls->replayed) {
        if (ls->nahead == ls->capahead) {
            size_t cap = ls->capahead ? ls->capahead * 2 : 256;
            struct seg_at *v = realloc(ls->ahead, cap * sizeof *v);

            if (v == NULL) {
                ls->nomem = 1;
                return -1;
            }
            ls->ahead = v;
            ls->capahead = cap;
        }
        ls->ahead[ls->nahead].segno = segno;
        ls->ahead[ls->nahead++].tli = w.tli;
    }
    if (segno == ls->replayed && w.tli > ls->replayed_tli)
        ls->replayed_tli = w.tli;
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg_at *x = a, *y = b;

    if (x->segno != y->segno)
        return x->segno < y->segno ? -1 : 1;
    return x->tli < y->tli ? -1 : x->tli > y->tli;
}

/* The first segment number past the replayed one missing below the
 * newest the region holds, counting only timelines from the replayed
 * segment's on (an abandoned older timeline's segments past a fork fill no
 * hole); named on the timeline of the segment just below it. */
static void find_gap(struct lag_scan *ls)
{
    uint64_t want = ls->replayed + 1;
    uint32_t below = ls->replayed_tli ? ls->replayed_tli : ls->newest_tli;
    size_t i;

    if (ls->nahead == 0)
        return;         /* nothing past the replayed segment (and qsort must not see NULL) */
    qsort(ls->ahead, ls->nahead, sizeof *ls->ahead, cmp_seg);
    for (i = 0; i < ls->nahead; i++) {
        if (ls->ahead[i].tli < ls->replayed_tli)
            continue;
        if (ls->ahead[i].segno > want) {
            ls->out->have_gap = 1;
            wal_segment_name(below, want, ls->seg_size, ls->out->gap);
            return;
        }
        if (ls->ahead[i].segno == want) {
            want++;
            below = ls->ahead[i].tli;
        } else if (ls->ahead[i].segno + 1 == want) {
            below = ls->ahead[i].tli;   /* the same segment on a later timeline (a switch) */
        }
    }
}

/* List the region's WAL from `after` on (NULL: all of it) into ls. */
static int lag_list(struct repo *r, const char *after, struct lag_scan *ls, struct err *e)
{
    free(ls->ahead);
    ls->ahead = NULL;
    ls->nahead = ls->capahead = 0;
    ls->have = 0;
    ls->oldest_waiting = 0;
    ls->replayed_tli = 0;
    memset(ls->out, 0, sizeof *ls->out);
    if (stor_list_after(r->st, REPO_WAL_DIR, after, lag_collect, ls, e) < 0)
        return ls->nomem ? err_setf(e, ERR_NOMEM, "out of memory") : -1;
    return 0;
}

int sby_lag(struct repo *r, uint64_t replay_lsn, uint64_t seg_size, time_t now, struct sby_lag *out, struct err *e)
{
    struct lag_scan ls;
    char after[sizeof REPO_WAL_DIR + WAL_NAME_MAX];

    memset(out, 0, sizeof *out);
    memset(&ls, 0, sizeof ls);
    if (!wal_seg_size_valid(seg_size))
        return err_setf(e, ERR_INTERNAL, "bad WAL segment size %llu", (unsigned long long)seg_size);
    ls.seg_size = seg_size;
    /* the replay LSN is the end of the last record: at a segment's first
     * byte (after a switch) the segment before it is done, not this one */
    ls.replayed = replay_lsn > 0 ? (replay_lsn - 1) / seg_size : 0;
    ls.out = out;
    /* Names sort by timeline, then segment: what sorts after timeline 1's
     * segment below the replayed one is every segment from the replayed one
     * on, of every timeline (later timelines whole).  A long archive is not
     * listed from its beginning at every status.  A region with nothing
     * there (behind the standby) is listed whole, for its newest segment. */
    snprintf(after, sizeof after, "%s", REPO_WAL_DIR);
    if (ls.replayed > 0)
        wal_segment_name(1, ls.replayed - 1, seg_size, after + strlen(REPO_WAL_DIR));
    if (lag_list(r, ls.replayed > 0 ? after : NULL, &ls, e) < 0 ||
        (!ls.have && ls.replayed > 0 && lag_list(r, NULL, &ls, e) < 0)) {
        free(ls.ahead);
        return -1;
    }
    find_gap(&ls);
    free(ls.ahead);
    out->have_wal = ls.have;
    if (ls.have && ls.newest_segno > ls.replayed) {
        out->segments = ls.newest_segno - ls.replayed;
        out->seconds = ls.oldest_waiting != 0 && now > ls.oldest_waiting ? (uint64_t)(now - ls.oldest_waiting) : 0;
        out->ahead = ls.oldest_waiting > now ? (int64_t)(ls.oldest_waiting - now) : 0;
    }
    return 0;
}

/* ---- a second branch ---- */

/* The timeline the standby reads WAL on (PostgreSQL never goes back to an
 * older one), 0 when the state file names no segment. */
static uint32_t standby_timeline(const char *pgdata)
{
    struct sby_state st;
    struct err e = ERR_INIT;
    const char *names[2];
    uint32_t tli = 0;
    int i;

    if (sby_state_read(pgdata, &st, &e) < 0)
        return 0;
    names[0] = st.fetched;
    names[1] = st.missing;
    for (i = 0; i < 2; i++) {
        struct wal_name w;

        if (names[i][0] != '\0' && wal_parse(names[i], &w, &e) == 0 && w.kind == WAL_SEGMENT && w.tli > tli)
            tli = w.tli;
        err_clear(&e);
    }
    return tli;
}

/* Where the standby's backup starts: backup_label.old, which PostgreSQL
 * leaves once recovery from the label began (0: not known). */
static uint64_t standby_start_lsn(const char *pgdata)
{
    char path[PATH_MAX], lsn[32];
    unsigned char *text = NULL;
    const char *at;
    size_t len;
    uint64_t v = 0;
    struct err e = ERR_INIT;

    if (snprintf(path, sizeof path, "%s/backup_label.old", pgdata) >= (int)sizeof path ||
        read_file_all(path, 1 << 16, &text, &len, &e) < 0)
        return 0;
    at = strstr((char *)text, "START WAL LOCATION: ");
    if (at == NULL || sscanf(at + 20, "%31s", lsn) != 1 || wal_parse_lsn(lsn, &v, &e) < 0)
        v = 0;
    free(text);
    return v;
}

/* Is the standby told which timeline to follow (`restore --standby
 * --target-timeline N` writes recovery_target_timeline = 'N' into
 * postgresql.auto.conf; the last line wins, as in PostgreSQL)?  Then the
 * operator chose the branch already. */
static int timeline_pinned(const char *pgdata)
{
    char path[PATH_MAX], name[64];
    unsigned char *text = NULL;
    const char *line, *next;
    size_t len;
    struct err e = ERR_INIT;
    int pinned = 0;

    if (snprintf(path, sizeof path, "%s/postgresql.auto.conf", pgdata) >= (int)sizeof path ||
        read_file_all(path, 1 << 20, &text, &len, &e) < 0)
        return 0;
    for (line = (const char *)text; line != NULL && *line != '\0'; line = next) {
        size_t n = (next = strchr(line, '\n')) != NULL ? (size_t)(next - line) : strlen(line);
        char *value = NULL;

        if (next != NULL)
            next++;
        if (rconf_parse_line(line, n, name, sizeof name, &value) == 1 && strcmp(name, "recovery_target_timeline") == 0)
            pinned = value[0] >= '0' && value[0] <= '9';
        free(value);
    }
    free(text);
    return pinned;
}

int sby_branch(struct repo *r, const char *pgdata, uint64_t seg_size, struct sby_branch *out, struct err *e)
{
    struct tl_model m;
    struct tl_step *p = NULL;
    struct tl_branch b;
    size_t n = 0;
    int rc = -1;

    memset(out, 0, sizeof *out);
    tl_model_init(&m, seg_size);
    if (timeline_pinned(pgdata))
        return 0;
    if ((out->tli = standby_timeline(pgdata)) == 0)
        return err_setf(e, ERR_NOTFOUND, "which timeline the standby follows is not known yet (no segment in %s)",
                        SBY_STATE_FILE);
    if (tl_model_load(r, seg_size, &m, e) < 0 || tl_path(&m, out->tli, &p, &n, e) < 0)
        goto out;
    rc = tl_path_left_branch(&m, p, n, standby_start_lsn(pgdata), &b);
    if (rc == 1) {
        out->child = b.child;
        out->parent = b.parent;
        wal_format_lsn(b.fork_lsn, out->fork);
        wal_segment_name(b.parent, b.parent_newest, m.seg_size, out->parent_newest);
    }
out:
    free(p);
    tl_model_free(&m);
    return rc;
}
