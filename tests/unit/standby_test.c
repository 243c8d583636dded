/*
 * standby — a warm standby's state file (what wal-fetch noted) and its
 * replay lag behind a synthetic file:// region (restore/standby.c).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "repo.h"
#include "standby.h"
#include "tap.h"
#include "unit_fixture.h"

static char root[] = "/tmp/walship-standby-test-XXXXXX";

/* a segment object stored at `mtime` (listing only reads names and times) */
static void seg(unsigned tli, unsigned s, time_t mtime)
{
    char p[PATH_MAX];
    struct timeval tv[2];
    FILE *f;

    snprintf(p, sizeof p, "%s/region/wal/%08X%08X%08X", root, tli, 0u, s);
    f = fopen(p, "w");
    if (f != NULL) {
        fputs("x", f);
        fclose(f);
    }
    tv[0].tv_sec = tv[1].tv_sec = mtime;
    tv[0].tv_usec = tv[1].tv_usec = 0;
    utimes(p, tv);
}

static int lag_is(struct repo *r, uint64_t lsn, uint64_t segs, uint64_t secs, const char *newest)
{
    struct sby_lag l;
    struct err e = ERR_INIT;

    if (sby_lag(r, lsn, 16u << 20, 10000, &l, &e) < 0) {
        diag("sby_lag: %s", e.msg);
        return 0;
    }
    if (l.segments != segs || l.seconds != secs || strcmp(l.newest, newest) != 0) {
        diag("got %llu segments, %llu s, newest %s", (unsigned long long)l.segments, (unsigned long long)l.seconds,
             l.newest);
        return 0;
    }
    return 1;
}

static void state_test(void)
{
    struct sby_state s;
    struct err e = ERR_INIT;
    char dir[PATH_MAX];

    snprintf(dir, sizeof dir, "%s/pgdata", root);
    mkdir(dir, 0700);
    ok(sby_state_read(dir, &s, &e) < 0 && e.code == ERR_NOTFOUND, "no state yet: not found");
    ok(sby_state_note(dir, SBY_FETCHED, "000000010000000000000003", NULL, 100, &e) == 0, "note a fetch");
    ok(sby_state_read(dir, &s, &e) == 0 && s.fetched_time == 100 &&
       strcmp(s.fetched, "000000010000000000000003") == 0 && !sby_state_failing(&s), "the fetch reads back");
    sby_state_note(dir, SBY_FAILED, "000000010000000000000004", "region dr: \"quoted\" cause", 200, &e);
    ok(sby_state_read(dir, &s, &e) == 0 && sby_state_failing(&s) && s.error_time == 200 &&
       strcmp(s.error, "region dr: \"quoted\" cause") == 0 && strcmp(s.error_name, "000000010000000000000004") == 0,
       "a failure: failing, with its file and cause");
    ok(s.fetched_time == 100, "...the last fetch kept");
    sby_state_note(dir, SBY_MISSING, "000000010000000000000004", NULL, 200, &e);
    ok(sby_state_read(dir, &s, &e) == 0 && !sby_state_failing(&s) && s.error_time == 200,
       "not archived yet, in the same second: waiting, not failing; the failure kept as history");
    sby_state_note(dir, SBY_FETCHED, "000000010000000000000004", NULL, 300, &e);
    ok(sby_state_read(dir, &s, &e) == 0 && !sby_state_failing(&s), "the segment fetched: not failing");
    ok(s.failures == 1, "one failure counted");
    /* promote compares this count, not times: a clock stepped back between
     * two failures still counts both */
    sby_state_note(dir, SBY_FAILED, "000000010000000000000005", "unreachable", 50, &e);
    ok(sby_state_read(dir, &s, &e) == 0 && s.failures == 2, "a failure noted at an earlier time is counted too");
}

static int failing_in(const char *dir)
{
    struct sby_state s;
    struct err e = ERR_INIT;

    return sby_state_read(dir, &s, &e) == 0 && sby_state_failing(&s);
}

/* A failure stands until what it stalled is resolved (standby.h). */
static void standing_test(void)
{
    struct sby_state s;
    struct err e = ERR_INIT;
    char dir[PATH_MAX], p[PATH_MAX + 64];
    FILE *f;

    snprintf(dir, sizeof dir, "%s/pgdata2", root);
    mkdir(dir, 0700);
    /* the stall helper-30 found: a segment corrupt everywhere, and a history
     * file of another timeline in the archive that PostgreSQL fetches while
     * it waits */
    sby_state_note(dir, SBY_FAILED, "000000010000000000000005", "corrupt", 100, &e);
    sby_state_note(dir, SBY_FETCHED, "00000002.history", NULL, 101, &e);
    ok(failing_in(dir), "a segment's failure stands after a history file is fetched");
    sby_state_note(dir, SBY_MISSING, "000000020000000000000005", NULL, 102, &e);
    ok(failing_in(dir), "...and after the segment of another timeline is found missing");
    sby_state_note(dir, SBY_FETCHED, "000000010000000000000004", NULL, 103, &e);
    ok(failing_in(dir), "...and after an earlier segment is fetched");
    sby_state_note(dir, SBY_FETCHED, "000000020000000000000005", NULL, 104, &e);
    ok(!failing_in(dir), "the segment fetched (on a new timeline): resolved");
    sby_state_note(dir, SBY_FAILED, "000000010000000000000007", "corrupt", 105, &e);
    sby_state_note(dir, SBY_MISSING, "000000010000000000000008", NULL, 106, &e);
    ok(!failing_in(dir), "a later segment missing: replay got past it");

    /* a history file's failure alone (the standby waits at the end of the
     * archive): segments found missing meanwhile do not resolve it */
    sby_state_note(dir, SBY_FAILED, "00000003.history", "corrupt", 110, &e);
    sby_state_note(dir, SBY_MISSING, "000000010000000000000009", NULL, 111, &e);
    sby_state_note(dir, SBY_FETCHED, "000000010000000000000009", NULL, 112, &e);
    ok(failing_in(dir), "a history file's failure stands while segments come and go");
    sby_state_note(dir, SBY_MISSING, "00000004.history", NULL, 113, &e);
    ok(failing_in(dir), "...and after another history file is found missing");
    sby_state_note(dir, SBY_MISSING, "00000003.history", NULL, 114, &e);
    ok(sby_state_read(dir, &s, &e) == 0 && !sby_state_failing(&s) && s.missing_time == 111,
       "resolved when that history file is found missing (not a segment: the missing time is kept)");

    /* one outage: the segment and the history probe fail, then it ends */
    sby_state_note(dir, SBY_FAILED, "00000001000000000000000A", "unreachable", 120, &e);
    sby_state_note(dir, SBY_FAILED, "00000002.history", "unreachable", 121, &e);
    ok(failing_in(dir), "an outage: failing");
    sby_state_note(dir, SBY_FETCHED, "00000001000000000000000A", NULL, 122, &e);
    ok(sby_state_read(dir, &s, &e) == 0 && !sby_state_failing(&s) && strcmp(s.error_name, "00000002.history") == 0,
       "the outage over: the segment fetched resolves the history probe that failed with it");

    /* a missing history file that resolves nothing is not written down */
    snprintf(p, sizeof p, "%s/%s", dir, SBY_STATE_FILE);
    unlink(p);
    ok(sby_state_note(dir, SBY_MISSING, "00000005.history", NULL, 130, &e) == 0 && access(p, F_OK) != 0,
       "a probe for a history file no region has writes nothing");

    /* a state written before failures stood: its last failure stands */
    f = fopen(p, "w");
    if (f != NULL) {
        fputs("{\"failing\": true, \"error_unix\": 140, \"error_file\": \"00000001000000000000000B\", "
              "\"error\": \"corrupt\"}", f);
        fclose(f);
    }
    ok(failing_in(dir), "an older state file's failure reads as standing");
    sby_state_note(dir, SBY_FETCHED, "00000002.history", NULL, 141, &e);
    ok(failing_in(dir), "...and a history file fetched does not resolve it");
    sby_state_note(dir, SBY_FETCHED, "00000001000000000000000B", NULL, 142, &e);
    ok(!failing_in(dir), "...the segment fetched does");
}

/* the first hole past the replayed segment, or "" */
static const char *gap_of(struct repo *r, uint64_t lsn)
{
    static struct sby_lag l;
    struct err e = ERR_INIT;

    if (sby_lag(r, lsn, 16u << 20, 10000, &l, &e) < 0)
        return "error";
    return l.have_gap ? l.gap : "";
}

static void gap_test(struct repo *r)
{
    char p[PATH_MAX];

    ok(strcmp(gap_of(r, 0x1000100), "") == 0, "no hole: no gap");
    snprintf(p, sizeof p, "%s/region/wal/%08X%08X%08X", root, 1u, 0u, 3u);
    unlink(p);
    ok(strcmp(gap_of(r, 0x1000100), "000000010000000000000003") == 0,
       "segment 3 gone while 4 is there: a gap at 3, named on the replayed segment's timeline");
    ok(strcmp(gap_of(r, 0x4000100), "") == 0, "replay past the hole: no gap");
    ok(strcmp(gap_of(r, 0x2000100), "000000010000000000000003") == 0, "replay just before it: the gap");
    seg(1, 3, 3000);
    /* timelines: 1 switched to 2 in segment 7 (both hold it); 2 lacks 8
     * while an abandoned 1 went on past the fork */
    seg(1, 7, 7000);
    seg(2, 7, 7100);
    seg(1, 8, 8000);
    seg(2, 9, 9100);
    ok(strcmp(gap_of(r, 0x7000100), "000000020000000000000008") == 0,
       "an abandoned timeline's segment fills no hole; the hole is named on the newer timeline");
    snprintf(p, sizeof p, "%s/region/wal/%08X%08X%08X", root, 1u, 0u, 7u);
    unlink(p);
    snprintf(p, sizeof p, "%s/region/wal/%08X%08X%08X", root, 1u, 0u, 8u);
    unlink(p);
    snprintf(p, sizeof p, "%s/region/wal/%08X%08X%08X", root, 2u, 0u, 7u);
    unlink(p);
    snprintf(p, sizeof p, "%s/region/wal/%08X%08X%08X", root, 2u, 0u, 9u);
    unlink(p);
}

/* segments waiting since a time ahead of the clock: 0 s, and by how much */
static void ahead_test(struct repo *r)
{
    struct sby_lag l;
    struct err e = ERR_INIT;

    ok(sby_lag(r, 0x3000000, 16u << 20, 10000, &l, &e) == 0 && l.ahead == 0, "waiting since the past: not ahead");
    ok(sby_lag(r, 0x3000000, 16u << 20, 2500, &l, &e) == 0 && l.segments == 4 && l.seconds == 0 && l.ahead == 500,
       "the oldest waiting stored 500 s ahead of the clock: 0 s, ahead by 500");
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

/* the promotion mark: stands for the server it names, gone when ended */
/* Two promotes at once: each writes its mark through a temp name of its
 * own (they shared one, and one removed or renamed the other's midway:
 * "could not rename"). */
static void concurrent_begin(const char *dir)
{
    struct err e = ERR_INIT;
    int i, fails = 0, st = 0;
    pid_t child = fork();

    for (i = 0; i < 300; i++)
        fails += sby_promoting_begin(dir, &e) < 0;
    if (child == 0)
        _exit(fails > 255 ? 255 : fails);
    if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st))
        fails = -1;
    ok(fails == 0 && WEXITSTATUS(st) == 0, "two promotes marking at once: every mark is written (%d, %d fail)",
       fails, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void promoting_test(void)
{
    struct err e = ERR_INIT;
    struct stat st;
    char dir[PATH_MAX], p[PATH_MAX + 64], pid[PATH_MAX + 64];

    snprintf(dir, sizeof dir, "%s/pgdata3", root);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/%s", dir, SBY_PROMOTING_FILE);
    snprintf(pid, sizeof pid, "%s/postmaster.pid", dir);
    ok(sby_promoting_begin(dir, &e) < 0, "no postmaster.pid: no mark (nothing runs to promote)");
    write_text(pid, "4242\n/data\n1700000000\n5432\n/tmp\n*\n  1 2\nready\n");
    ok(!sby_promoting(dir), "no mark: no promotion under way");
    ok(sby_promoting_begin(dir, &e) == 0 && sby_promoting(dir), "a mark for the running server stands");
    ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0644, "readable by the server's user (mode 0644)");
    write_text(pid, "4242\n/data\n1700000999\n5432\n/tmp\n*\n  1 2\nready\n");
    ok(!sby_promoting(dir), "the same PID started again (a container): the mark does not stand");
    write_text(pid, "4343\n/data\n1700000000\n5432\n/tmp\n*\n  1 2\nready\n");
    ok(!sby_promoting(dir), "another server: the mark does not stand");
    unlink(pid);
    ok(!sby_promoting(dir), "no server: the mark does not stand");
    write_text(pid, "4343\n/data\n1700000000\n5432\n/tmp\n*\n  1 2\nready\n");
    ok(sby_promoting_begin(dir, &e) == 0 && sby_promoting(dir), "a new mark replaces the old one");
    sby_promoting_end(dir);
    ok(!sby_promoting(dir) && access(p, F_OK) != 0, "ended: gone");
    write_text(p, "garbage\n");
    ok(!sby_promoting(dir), "a mark that names no server does not stand");
    unlink(p);
    concurrent_begin(dir);
    unlink(p);
    unlink(pid);
}

int main(void)
{
    struct config *conf;
    struct repo *r = NULL;
    char p[PATH_MAX];

    log_init("standby-test", LOG_ERROR);
    conf = config_new_default();
    if (tf_region_open(root, conf, &r) < 0)
        return 1;
    snprintf(p, sizeof p, "%s/region/wal", root);
    mkdir(p, 0700);
    seg(1, 1, 1000);
    seg(1, 2, 2000);
    seg(1, 3, 3000);
    seg(1, 4, 4000);
    seg(1, 5, 5000);
    ok(lag_is(r, 0x5000100, 0, 0, "000000010000000000000005"), "replay in the newest segment: no lag");
    ok(lag_is(r, 0x6000000, 0, 0, "000000010000000000000005"),
       "replay at the end of the newest segment (after a switch): no lag");
    ok(lag_is(r, 0x3000000, 3, 7000, "000000010000000000000005"),
       "replay done with segment 2: 3 segments, waiting since segment 3 was stored");
    ok(lag_is(r, 0x3000028, 2, 6000, "000000010000000000000005"), "replay inside segment 3: 2 segments");
    seg(2, 6, 9000);
    ok(lag_is(r, 0x5000100, 1, 1000, "000000020000000000000006"), "a segment of a new timeline counts");
    ok(lag_is(r, 0, 6, 9000, "000000020000000000000006"), "nothing replayed: every segment");
    ok(lag_is(r, 0x9000100, 0, 0, "000000020000000000000006"),
       "a region behind the standby (nothing from the replayed segment on): still its newest segment");
    ok(lag_is(r, 0x7000100, 0, 0, "000000020000000000000006"), "...from just past it too");
    ahead_test(r);
    gap_test(r);
    state_test();
    standing_test();
    promoting_test();
    repo_free(r);
    config_free(conf);
    tf_rmrf(root);
    return done_testing();
}
