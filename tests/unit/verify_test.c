/*
 * verify — WAL continuity across timelines (src/maint/verify.c), against a
 * synthetic file:// region: objects encoded without a key, a one-part
 * backup whose part is only checked by size, WAL segments as tiny encoded
 * objects (the default check only lists them), history files decoded.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "config.h"
#include "log.h"
#include "manifest.h"
#include "obj.h"
#include "repo.h"
#include "spool.h"
#include "status.h"
#include "stor.h"
#include "tap.h"
#include "timeline.h"
#include "unit_fixture.h"
#include "verify.h"

static char root[] = "/tmp/walship-verify-test-XXXXXX";
static struct config *conf;
static struct repo *st;

static void seg(unsigned tli, unsigned log, unsigned s)
{
    tf_put_wal(st, tli, log, s);
}

static void drop(const char *key)
{
    char p[PATH_MAX];

    snprintf(p, sizeof p, "%s/region/%s", root, key);
    unlink(p);
}

static void backup(const char *name)
{
    struct manifest *m = tf_manifest_new(name);
    struct man_part mp;
    struct err e = ERR_INIT;
    struct stat sb;
    char key[256], p[PATH_MAX], *json = NULL;
    size_t len;

    snprintf(key, sizeof key, "backups/%s/part-0001", name);
    tf_put_text(st, key, "not really a tar stream");
    snprintf(p, sizeof p, "%s/region/%s", root, key);
    stat(p, &sb);
    snprintf(key, sizeof key, "backups/%s/backup_label", name);
    snprintf(p, sizeof p, "START WAL LOCATION: 1/28 (file 000000010000000100000000)\nLABEL: walship %s\n", name);
    tf_put_text(st, key, p);
    m->start_time = 1700000000;
    m->stop_time = 1700000040;
    m->pg_version = 150004;
    m->compression = strdup("none");
    memset(&mp, 0, sizeof mp);
    mp.number = 1;
    mp.stored_size = (uint64_t)sb.st_size;
    man_add_part(m, &mp, &e);
    m->stored_size = mp.stored_size;
    if (man_to_json(m, &json, &len, &e) < 0)
        diag("man_to_json: %s", e.msg);
    snprintf(key, sizeof key, "backups/%s/manifest.json", name);
    tf_put_text(st, key, json);
    free(json);
    man_free(m);
}

/* Run verify; returns the number of problems, and whether one names `obj`. */
static size_t run(const char *obj, int *named)
{
    struct vfy_report r;
    struct err e = ERR_INIT;
    size_t i, n;

    memset(&r, 0, sizeof r);
    *named = 0;
    if (vfy_region(st, 0, &r, &e) < 0) {
        diag("vfy_region: %s", e.msg);
        return 999;
    }
    for (i = 0; i < r.n; i++) {
        diag("problem %s: %s", r.v[i].object, r.v[i].msg);
        if (obj && strcmp(r.v[i].object, obj) == 0)
            *named = 1;
    }
    n = r.n;
    vfy_report_free(&r);
    return n;
}

int main(void)
{
    struct region_conf rc;
    struct err e = ERR_INIT;
    struct tl_hist_entry *h = NULL;
    char url[PATH_MAX];
    size_t nh = 0;
    const char *hist = "1\t1/3000000\tno recovery target specified\n\n# c\n2\t1/5000028\tbefore 2026\n";
    int named;
    unsigned s;

    log_init("verify-test", LOG_ERROR);
    conf = config_new_default();
    if (tf_region_open(root, conf, &st) < 0)
        return 1;
    /* the region as the configuration names it (tf_region_open's) */
    memset(&rc, 0, sizeof rc);
    snprintf(url, sizeof url, "file://%s/region", root);
    rc.name = "t";
    rc.url = url;

    /* history parsing */
    ok(tl_parse_history(hist, strlen(hist), &h, &nh, &e) == 0 && nh == 2 && h[0].tli == 1 &&
           h[0].end_lsn == (((uint64_t)1 << 32) | 0x3000000) &&
           h[1].tli == 2 && h[1].end_lsn == (((uint64_t)1 << 32) | 0x5000028),
       "a history file parses into its switch points");
    free(h);
    ok(tl_parse_history("x\t1/0\n", 6, &h, &nh, &e) < 0, "a bad history line is refused");

    /* timeline 1 only */
    backup("20231114T221320Z");
    for (s = 0; s <= 5; s++)
        seg(1, 1, s);
    is_int((int)run(NULL, &named), 0, "a complete timeline 1 verifies");
    drop("wal/000000010000000100000003");
    is_int((int)run("wal/000000010000000100000003", &named), 1, "a missing segment is one problem");
    ok(named, "... naming the segment");
    seg(1, 1, 3);
    drop("wal/000000010000000100000005");
    is_int((int)run(NULL, &named), 0, "the newest segment missing is no gap");
    seg(1, 1, 5);

    /* timeline 2 branches from 1 at 1/3000000: tli 1 is needed up to 1/2 */
    tf_put_text(st, "wal/00000002.history", "1\t1/3000000\tno recovery target specified\n");
    for (s = 3; s <= 7; s++)
        seg(2, 1, s);
    is_int((int)run(NULL, &named), 0, "timeline 1 then 2 verifies");
    drop("wal/000000010000000100000003");
    drop("wal/000000010000000100000004");
    is_int((int)run(NULL, &named), 0, "timeline 1's segments after the switch are not needed");
    drop("wal/000000010000000100000002");
    is_int((int)run("wal/000000010000000100000002", &named), 1, "a gap before the switch is found");
    ok(named, "... naming the timeline 1 segment");
    seg(1, 1, 2);
    drop("wal/000000020000000100000003");
    is_int((int)run("wal/000000020000000100000003", &named), 1, "the switch segment on timeline 2 is needed");
    ok(named, "... naming it");
    seg(2, 1, 3);
    drop("wal/000000020000000100000005");
    is_int((int)run("wal/000000020000000100000005", &named), 1, "a gap on timeline 2 is found");
    ok(named, "... naming the timeline 2 segment");
    seg(2, 1, 5);
    drop("wal/00000002.history");
    ok(run("wal/00000002.history", &named) >= 1 && named, "a missing history file is named");
    tf_put_text(st, "wal/00000002.history", "1\t1/3000000\tno recovery target specified\n");

    /* timeline 3 branches from 1 at 1/1000000 (before tli 2's switch): latest is 3 */
    tf_put_text(st, "wal/00000003.history", "1\t1/1000000\tno recovery target specified\n");
    seg(3, 1, 1);
    seg(3, 1, 3);
    is_int((int)run("wal/000000030000000100000002", &named), 1, "the newest timeline is followed (gap on 3)");
    ok(named, "... naming the timeline 3 segment");
    seg(3, 1, 2);
    is_int((int)run(NULL, &named), 0, "timeline 3 complete verifies");

    /* a deleted part */
    drop("backups/20231114T221320Z/part-0001");
    is_int((int)run("backups/20231114T221320Z/part-0001", &named), 1, "a missing part is found");
    ok(named, "... naming the part");

    /* status: the shipper's state for a region, from its state file */
    {
        struct spool *sp = NULL;
        struct spool_state ws, rs;
        struct st_region o;
        struct region_conf *async = NULL;
        char p[PATH_MAX], q[SPOOL_QUEUE_MAX];

        snprintf(p, sizeof p, "%s/spool", root);
        ok(spool_open(p, 0, 7311234567890123456ULL, &sp, &e) == 0, "a spool for the shipper's state: %s", e.msg);
        config_add_region_url(conf, "eu-west-1", url, &e);
        async = (struct region_conf *)config_region(conf, "eu-west-1");
        async->mode = REGION_ASYNC;
        spool_queue_name(async->name, async->url, async->endpoint, q);
        memset(&ws, 0, sizeof ws);
        snprintf(ws.region, sizeof ws.region, "eu-west-1");
        ws.updated = ws.last_success = 1700000000;
        ws.last_error_time = 1700000100;
        snprintf(ws.last_error_code, sizeof ws.last_error_code, "network");
        snprintf(ws.last_error, sizeof ws.last_error, "could not ship A to region eu-west-1 (x)");
        ws.backlog_files = 3;
        ok(spool_state_write(sp, q, &ws, &e) == 0 && spool_state_read(sp, q, &rs, &e) == 0 &&
               rs.last_success == ws.last_success && rs.backlog_files == 3 && strcmp(rs.last_error, ws.last_error) == 0 &&
               strcmp(rs.last_error_code, "network") == 0,
           "the shipper's state file reads back as written: %s", e.msg);
        ok(st_region(st, conf, async, NULL, sp, 1700000200, &o, &e) == 0 &&
               strstr(o.last_error, "could not ship A") != NULL && strcmp(o.last_error_code, "network") == 0 &&
               o.ship_success == 1700000000,
           "status reports the last error and its code from the state file, not from log text");
        ok(st_region(st, conf, &rc, NULL, sp, 1700000200, &o, &e) == 0 &&
               o.last_error[0] == '\0',
           "status: no shipper error for a region that has none");
        spool_free(sp);
    }

    repo_free(st);
    config_free(conf);
    tf_rmrf(root);
    return done_testing();
}
