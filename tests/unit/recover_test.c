/*
 * recover — the end of the archive along the timeline recovery follows
 * (restore/rcv_end.c), against a synthetic file:// region, and reading
 * pg_waldump's output.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "manifest.h"
#include "obj.h"
#include "recover.h"
#include "repo.h"
#include "stor.h"
#include "tap.h"
#include "unit_fixture.h"

static char root[] = "/tmp/walship-recover-test-XXXXXX";
static char root2[] = "/tmp/walship-recover-test2-XXXXXX";
static struct repo *st, *st2;
/* the regions asked: st alone, or st then st2 */
static struct repo *regions[2];
static size_t nregions = 1;

static void seg(unsigned tli, unsigned s)
{
    tf_put_wal(st, tli, 0, s);
}

static void drop(const char *key)
{
    char p[PATH_MAX];

    snprintf(p, sizeof p, "%s/region/%s", root, key);
    unlink(p);
}

static int end_is(const struct manifest *m, const char *tl, const char *newest, uint64_t limit, unsigned long n)
{
    struct rcv_end end;
    struct err e = ERR_INIT;

    if (rcv_archive_end(regions, nregions, m, tl, &end, &e) < 0) {
        diag("rcv_archive_end: %s", e.msg);
        return 0;
    }
    if (strcmp(end.newest, newest) != 0 || end.limit != limit || end.nsegments != n) {
        diag("got %s limit %llx n %lu", end.newest, (unsigned long long)end.limit, end.nsegments);
        return 0;
    }
    return 1;
}

static int end_fails(const struct manifest *m, const char *tl, const char *want)
{
    struct rcv_end end;
    struct err e = ERR_INIT;

    if (rcv_archive_end(regions, nregions, m, tl, &end, &e) == 0) {
        diag("succeeded: %s", end.newest);
        return 0;
    }
    if (strstr(e.msg, want) == NULL) {
        diag("message: %s", e.msg);
        return 0;
    }
    return 1;
}

static void waldump_test(void)
{
    char path[PATH_MAX];
    FILE *f;
    uint64_t lsn = 0;
    struct err e = ERR_INIT;

    snprintf(path, sizeof path, "%s/waldump.out", root);
    f = fopen(path, "w");
    fputs("rmgr: Heap        len (rec/tot):     59/    59, tx:        735, lsn: 0/06000060, prev 0/06000028, desc: "
          "INSERT off 2 flags 0x00, blkref #0: rel 1663/5/16384 blk 0\n"
          "rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/060000A0, prev 0/06000060, desc: "
          "COMMIT 2026-12-02 17:06:31.394585 UTC\n"
          "rmgr: XLOG        len (rec/tot):     24/    24, tx:          0, lsn: 0/060000C8, prev 0/060000A0, desc: "
          "SWITCH \n"
          "pg_waldump: error: could not find file \"000000010000000000000007\": No such file or directory\n",
          f);
    fclose(f);
    ok(rcv_last_record(path, UINT64_MAX, &lsn, &e) == 0 && lsn == 0x60000C8, "the last record's start LSN");
    ok(rcv_last_record(path, 0x60000C8, &lsn, &e) == 0 && lsn == 0x60000A0, "...below a switch point");
    ok(rcv_last_record(path, 0x6000000, &lsn, &e) < 0 && e.code == ERR_NOTFOUND, "...none: not found");
    f = fopen(path, "w");
    fputs("pg_waldump: error: could not find a valid record after 0/6000000\n", f);
    fclose(f);
    ok(rcv_last_record(path, UINT64_MAX, &lsn, &e) < 0, "no record at all is an error");
}

static void drop2(const char *key)
{
    char p[PATH_MAX];

    snprintf(p, sizeof p, "%s/region/%s", root2, key);
    unlink(p);
}

/* restore_command asks every region: the end of the archive is the end of
 * their union (a first region that lags, as an async one does, must not
 * end "latest" short) */
static void two_regions_test(const struct manifest *m, const struct config *conf)
{
    struct rcv_end end;
    struct err e = ERR_INIT;
    unsigned s;

    if (tf_region_open(root2, conf, &st2) < 0)
        return;
    regions[0] = st;
    regions[1] = st2;
    nregions = 2;
    /* st holds 1-6 on timeline 1, 2.history, 3.history, 2/4-5 (above);
     * st2 the same timeline 1, two segments further */
    for (s = 1; s <= 8; s++)
        tf_put_wal(st2, 1, 0, s);
    ok(end_is(m, "current", "000000010000000000000008", UINT64_MAX, 7),
       "the first region lags: the end is the second one's newest segment");
    drop("wal/000000010000000000000005");
    ok(end_is(m, "current", "000000010000000000000008", UINT64_MAX, 7),
       "a gap in the first region that the second fills is no gap");
    drop2("wal/000000010000000000000005");
    ok(end_fails(m, "current", "000000010000000000000005 is missing"), "a gap in both is one");
    ok(end_fails(m, "current", "regions t, t:"), "...and names the regions asked");
    tf_put_wal(st, 1, 0, 5);
    /* a timeline only the second region has: its history is read there
     * (timeline 5, above, would descend from it: not here) */
    drop("wal/00000005.history");
    tf_put_text(st2, "wal/00000004.history", "1\t0/4800000\tx\n2\t0/5800000\ty\n3\t0/6000000\tz\n");
    tf_put_wal(st2, 4, 0, 6);
    tf_put_wal(st2, 4, 0, 7);
    ok(end_is(m, "latest", "000000040000000000000007", UINT64_MAX, 6),
       "latest follows a timeline whose history only the second region holds");
    /* the two regions hold different 00000004.history files (two
     * promotions to timeline 4, one per region): PostgreSQL follows the
     * one of the region wal-fetch asks first, restore judged the path by
     * the first region that had one; now neither is trusted */
    tf_put_text(st, "wal/00000004.history", "1\t0/4800000\tx\n2\t0/5800000\ty\n3\t0/6800000\tz\n");
    ok(end_fails(m, "4", "holds another 00000004.history than the region before it"),
       "regions that disagree on a history file: refused, not one of them chosen");
    ok(end_fails(m, "latest", "00000004.history is unusable"), "... latest too");
    drop("wal/00000004.history");
    tf_put_text(st, "wal/00000004.history", "1\t0/4800000\tx\n2\t0/5800000\ty\n3\t0/6000000\tz\n");
    ok(end_is(m, "latest", "000000040000000000000007", UINT64_MAX, 6), "the same copy in both: as before");
    drop("wal/00000004.history");
    regions[1] = NULL;
    nregions = 1;
    ok(end_is(m, "latest", "000000020000000000000005", 0x5800000, 4), "the first region alone: as before");
    ok(rcv_archive_end(regions, 1, m, "latest", &end, &e) == 0 && strcmp(end.asked, "t") == 0 &&
       end.skipped[0] == '\0', "the regions asked are named");
    repo_free(st2);
    tf_rmrf(root2);
}

int main(void)
{
    struct manifest m;
    struct config *conf;
    unsigned s;

    log_init("recover-test", LOG_ERROR);
    conf = config_new_default();
    if (tf_region_open(root, conf, &st) < 0)
        return 1;
    regions[0] = st;
    memset(&m, 0, sizeof m);
    m.name = "b1";
    m.timeline = 1;
    m.start_lsn = 0x2000028;
    m.wal_segment_size = 16u << 20;

    ok(end_fails(&m, "latest", "where backup b1 starts, is not archived"), "an empty archive has no end");
    for (s = 1; s <= 5; s++)
        seg(1, s);
    ok(end_is(&m, "latest", "000000010000000000000005", UINT64_MAX, 4), "one timeline: its newest segment");
    drop("wal/000000010000000000000003");
    ok(end_fails(&m, "latest", "000000010000000000000003 is missing"), "a gap names the missing segment");
    ok(end_fails(&m, "latest", "would stop at LSN 0/3000000"), "...and where recovery would stop");
    seg(1, 3);

    /* timeline 2 forks in segment 4; the old primary went on to 6 on 1 */
    seg(1, 6);
    tf_put_text(st, "wal/00000002.history", "1\t0/4800000\tno recovery target specified\n");
    seg(2, 4);
    seg(2, 5);
    ok(end_is(&m, "latest", "000000020000000000000005", UINT64_MAX, 4), "latest follows timeline 2");
    ok(end_is(&m, "current", "000000010000000000000006", UINT64_MAX, 5), "current stays on timeline 1");
    drop("wal/000000020000000000000004");
    ok(end_is(&m, "latest", "000000020000000000000005", UINT64_MAX, 4),
       "segment 4 read from timeline 1 when timeline 2's is not archived (as PostgreSQL does)");
    seg(2, 4);
    drop("wal/000000020000000000000004");
    drop("wal/000000010000000000000004");
    ok(end_fails(&m, "latest", "000000020000000000000004 is missing"), "a gap on the new timeline");
    seg(1, 4);
    seg(2, 4);

    /* timeline 3 forks in segment 5 and has no segment yet */
    tf_put_text(st, "wal/00000003.history", "1\t0/4800000\tx\n2\t0/5800000\ty\n");
    ok(end_is(&m, "latest", "000000020000000000000005", 0x5800000, 4),
       "timeline 3 without segments: the end is its parent's, below the switch point");
    ok(end_is(&m, "2", "000000020000000000000005", UINT64_MAX, 4), "an explicit timeline");
    tf_put_text(st, "wal/00000005.history", "4\t0/4000000\tz\n");
    ok(end_fails(&m, "5", "does not descend"),
       "a timeline that does not descend from the backup's is refused");
    ok(end_fails(&m, "4", "timeline 4 does not exist: 00000004.history is not archived"),
       "a timeline without history does not exist (exit 1 from restore)");

    /* timeline 6 has WAL but its history file is gone: PostgreSQL's latest
     * (3) cannot see it, and "latest" would end before it with exit 0 */
    seg(6, 6);
    ok(end_fails(&m, "", "timeline 6 has WAL (up to 000000060000000000000006) but its history file "
                         "00000006.history is not archived"),
       "latest refuses to leave behind a timeline whose history file is missing");
    ok(end_fails(&m, "", "--target-timeline 3"), "...and names the timeline to choose knowingly");
    ok(end_is(&m, "3", "000000020000000000000005", 0x5800000, 4), "...which an explicit timeline does");
    drop("wal/000000060000000000000006");

    two_regions_test(&m, conf);
    waldump_test();
    repo_free(st);
    config_free(conf);
    tf_rmrf(root);
    return done_testing();
}
