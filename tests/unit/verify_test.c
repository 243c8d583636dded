/*
 * verify — WAL continuity across timelines (src/maint/verify.c), against a
 * synthetic file:// region: objects encoded without a key, a one-part
 * backup whose part is only checked by size, WAL segments as tiny encoded
 * objects (the default check only lists them), history files decoded.
 */
#include <limits.h>
#include <openssl/evp.h>
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

/* The part and backup_label of backup NAME; the part's stored size. */
static uint64_t put_part_and_label(const char *name, const char *label)
{
    char key[256], p[PATH_MAX];
    struct stat sb;

    snprintf(key, sizeof key, "backups/%s/part-0001", name);
    tf_put_text(st, key, "not really a tar stream");
    snprintf(p, sizeof p, "%s/region/%s", root, key);
    if (stat(p, &sb) < 0)
        sb.st_size = 0;
    snprintf(key, sizeof key, "backups/%s/backup_label", name);
    tf_put_text(st, key, label);
    return (uint64_t)sb.st_size;
}

static void backup(const char *name)
{
    struct manifest *m = tf_manifest_new(name);
    struct man_part mp;
    struct err e = ERR_INIT;
    char key[256], p[PATH_MAX], *json = NULL;
    size_t len;
    uint64_t stored;

    snprintf(p, sizeof p, "START WAL LOCATION: 1/28 (file 000000010000000100000000)\nLABEL: walship %s\n", name);
    stored = put_part_and_label(name, p);
    m->start_time = 1700000000;
    m->stop_time = 1700000040;
    m->pg_version = 150004;
    m->compression = strdup("none");
    memset(&mp, 0, sizeof mp);
    mp.number = 1;
    mp.stored_size = stored;
    man_add_part(m, &mp, &e);
    m->stored_size = mp.stored_size;
    if (man_to_json(m, &json, &len, &e) < 0)
        diag("man_to_json: %s", e.msg);
    snprintf(key, sizeof key, "backups/%s/manifest.json", name);
    tf_put_text(st, key, json);
    free(json);
    man_free(m);
}

/* A backup of a chain with one file "base/1/1" of three 32 KiB blocks:
 * whole in a full backup (map NULL), else a block map.  Its manifest's
 * SHA-256 goes into sha (for its children). */
static void chain_backup(const char *name, const char *parent, const char *parent_sha, uint32_t depth,
                         const char *map, uint64_t stored, char sha[65])
{
    static const char zero[65] = "0000000000000000000000000000000000000000000000000000000000000000";
    struct manifest *m = tf_manifest_new(name);
    struct man_part mp;
    struct err e = ERR_INIT;
    unsigned char d[32];
    unsigned int dn = 0;
    char key[256], *json = NULL;
    size_t len;
    uint64_t part_size = put_part_and_label(name, "START WAL LOCATION: 1/28 (file 000000010000000100000000)\n");

    snprintf(key, sizeof key, "backups/%s/blockhash", name);
    tf_put_text(st, key, "hashes");
    m->format = depth ? MAN_FORMAT_INCR : MAN_FORMAT;
    m->start_time = 1700000000;
    m->stop_time = 1700000040;
    m->pg_version = 150004;
    m->compression = strdup("none");
    m->incremental = depth > 0;
    m->depth = depth;
    m->parent = parent ? strdup(parent) : NULL;
    if (parent_sha)
        snprintf(m->parent_sha256, sizeof m->parent_sha256, "%s", parent_sha);
    m->block_size = 32768;
    m->blockhash_size = 6;
    snprintf(m->blockhash_sha256, sizeof m->blockhash_sha256, "%s", zero);
    memset(&mp, 0, sizeof mp);
    mp.number = 1;
    mp.stored_size = part_size;
    mp.raw_size = 3 * 32768;
    man_add_part(m, &mp, &e);
    m->stored_size = mp.stored_size;
    if ((map ? man_add_file_map(m, "base/1/1", 1, 3 * 32768, 0600, 1700000000, zero, map, stored, zero, &e)
             : man_add_file(m, "base/1/1", 1, 3 * 32768, 0600, 1700000000, zero, &e)) < 0)
        diag("add file: %s", e.msg);
    if (man_to_json(m, &json, &len, &e) < 0)
        diag("man_to_json: %s", e.msg);
    EVP_Digest(json, len, d, &dn, EVP_sha256(), NULL);
    for (dn = 0; dn < 32; dn++)
        snprintf(sha + 2 * dn, 3, "%02x", d[dn]);
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

    /* timeline 3 branches from 1 at 1/2000000 (after the backup's end at
     * 1/1000138, before tli 2's switch): latest is 3 */
    tf_put_text(st, "wal/00000003.history", "1\t1/2000000\tno recovery target specified\n");
    seg(3, 1, 1);
    seg(3, 1, 3);
    is_int((int)run("wal/000000030000000100000002", &named), 1, "the newest timeline is followed (gap on 3)");
    ok(named, "... naming the timeline 3 segment");
    seg(3, 1, 2);
    is_int((int)run(NULL, &named), 0, "timeline 3 complete verifies");
    /* timeline 4 branches from 1 at 1/1000000, while the backup ran: it
     * cannot be replayed from the backup (PostgreSQL: "online backup was
     * canceled"), so it is not its path, and a gap there is not its gap */
    tf_put_text(st, "wal/00000004.history", "1\t1/1000000\tno recovery target specified\n");
    seg(4, 1, 1);
    seg(4, 1, 3);
    is_int((int)run(NULL, &named), 0, "a timeline that forked off inside the backup is not followed");
    drop("wal/000000030000000100000002");
    is_int((int)run("wal/000000030000000100000002", &named), 1, "...timeline 3 still is (gap on 3)");
    ok(named, "... naming the timeline 3 segment");
    seg(3, 1, 2);
    drop("wal/000000040000000100000001");
    drop("wal/000000040000000100000003");
    drop("wal/00000004.history");

    /* a deleted part */
    drop("backups/20231114T221320Z/part-0001");
    is_int((int)run("backups/20231114T221320Z/part-0001", &named), 1, "a missing part is found");
    ok(named, "... naming the part");

    /* whole chains (issue 13): every link there, and holding the blocks its
     * children's maps say it holds */
    backup("20231114T221320Z");
    is_int((int)run(NULL, &named), 0, "the region verifies again");
    {
        char sa[65], sb[65], sc[65];
        const char *ka = "backups/20231115T000000Z/manifest.json";
        const char *kc = "backups/20231115T000002Z/manifest.json";
        const char *kd = "backups/20231115T000003Z/manifest.json";

        chain_backup("20231115T000000Z", NULL, NULL, 0, NULL, 0, sa);
        chain_backup("20231115T000001Z", "20231115T000000Z", sa, 1, "1*2,0*1", 32768, sb);
        chain_backup("20231115T000002Z", "20231115T000001Z", sb, 2, "2*1,0*1,1*1", 32768, sc);
        is_int((int)run(NULL, &named), 0, "a chain of three whose maps hold verifies");
        /* block 1 said to be in the first incremental, which took it from the full backup */
        chain_backup("20231115T000003Z", "20231115T000001Z", sb, 2, "2*1,1*1,0*1", 32768, sc);
        is_int((int)run(kd, &named), 1, "a map pointing at a link that does not hold the block is a problem");
        ok(named, "... on the backup whose chain it breaks");
        drop(kd);
        drop("backups/20231115T000003Z/part-0001");
        drop("backups/20231115T000003Z/backup_label");
        drop("backups/20231115T000003Z/blockhash");
        /* a damaged (here: missing) part of the middle link breaks the chain above it */
        drop("backups/20231115T000001Z/part-0001");
        is_int((int)run(kc, &named), 2, "a damaged link: its own problem and its child's chain");
        ok(named, "... naming the child whose chain it breaks");
        drop("backups/20231115T000001Z/manifest.json");
        drop("backups/20231115T000001Z/backup_label");
        drop("backups/20231115T000001Z/blockhash");
        chain_backup("20231115T000001Z", "20231115T000000Z", sa, 1, "1*1,0*2", 65536, sb);
        is_int((int)run(kc, &named), 1, "a link rewritten with another manifest breaks its child's chain");
        ok(named, "... named on the child");
        /* the full backup missing: both incrementals are named */
        drop(ka);
        ok(run(kc, &named) >= 2 && named, "a missing full backup breaks the whole chain, named on its newest link");
    }

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
