/*
 * upgrade_test — `walship upgrade` (src/maint/upgrade.c) on repositories and a
 * spool written in walship 0.1.0's format (version 1 objects, no identity),
 * built here with the encoder's legacy mode: the region is refused before,
 * bound after, every object decodes to what it held; a dry run changes
 * nothing; a second run has nothing to do; a segment that is not what its
 * name says, or a manifest of another backup, is not bound; an interrupted
 * upgrade finishes when run again; the spool's entries move into the
 * cluster's spool.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "cluster.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "manifest.h"
#include "obj.h"
#include "repo.h"
#include "spool.h"
#include "stor.h"
#include "tap.h"
#include "unit_fixture.h"
#include "upgrade.h"
#include "util.h"
#include "wal.h"

#define SYSID TF_SYSID
#define SEG (1u << 20)      /* 1 MiB segments: small and valid */

static char root[] = "/tmp/walship-upgrade-test-XXXXXX";
static struct config *conf;
static struct keyring *kr;

static struct region_conf *region(const char *name)
{
    char url[PATH_MAX + 8], dir[PATH_MAX];
    struct err e = ERR_INIT;

    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0700);
    snprintf(url, sizeof url, "file://%s", dir);
    if (config_region(conf, name) == NULL && config_add_region_url(conf, name, url, &e) < 0)
        diag("add region %s: %s", name, e.msg);
    return (struct region_conf *)config_region(conf, name);
}

/* Write `len` bytes as a version 1 object at `key` (or into a file). */
static void put_v1(const char *reg, const char *key, const void *buf, size_t len)
{
    struct obj_opts oo;
    struct stor *s = NULL;
    struct sink *up = NULL, *enc = NULL;
    struct err e = ERR_INIT;

    memset(&oo, 0, sizeof oo);
    oo.level = 3;
    oo.kr = kr;
    oo.version = OBJ_VERSION_LEGACY;
    if (stor_open(region(reg), conf, NULL, &s, &e) < 0 || stor_put(s, key, &up, &e) < 0 ||
        obj_encoder_new(up, &oo, &enc, &e) < 0 || sink_write(enc, buf, len, &e) < 0 || sink_close(enc, &e) < 0)
        diag("put_v1 %s: %s", key, e.msg);
    sink_free(enc ? enc : up);
    stor_free(s);
}

/* A segment whose first page says it is `name` of cluster `sysid`. */
static unsigned char *segment(const char *name, uint64_t sysid, unsigned seed)
{
    return tf_segment(name, sysid, SEG, seed);
}

static char *manifest_json(const char *name, const char *sysid)
{
    struct manifest *m = man_new();
    struct err e = ERR_INIT;
    char *json = NULL;
    size_t len;

    m->format = MAN_FORMAT;
    m->name = strdup(name);
    m->walship_version = strdup("0.1.0");
    m->start_lsn = 0x1000028;
    m->stop_lsn = 0x1000138;
    m->timeline = m->stop_timeline = 1;
    snprintf(m->start_wal, sizeof m->start_wal, "000000010000000000000001");
    snprintf(m->stop_wal, sizeof m->stop_wal, "000000010000000000000001");
    m->pg_version = 150004;
    m->system_identifier = strdup(sysid);
    m->wal_segment_size = SEG;
    m->compression = strdup("zstd:3");
    if (man_to_json(m, &json, &len, &e) < 0)
        diag("man_to_json: %s", e.msg);
    man_free(m);
    return json;
}

/* A 0.1.0 repository: two segments, a history file, one backup. */
static void legacy_repo(const char *reg)
{
    unsigned char *s1 = segment("000000010000000000000001", SYSID, 1);
    unsigned char *s2 = segment("000000010000000000000002", SYSID, 2);
    char *json = manifest_json("20260101T000000Z", "7311234567890123456");
    const char *hist = "1\t0/2000000\tno recovery target specified\n";
    const char *label = "START WAL LOCATION: 0/1000028 (file 000000010000000000000001)\nLABEL: walship "
                        "20260101T000000Z\n";

    put_v1(reg, "wal/000000010000000000000001", s1, SEG);
    put_v1(reg, "wal/000000010000000000000002", s2, SEG);
    put_v1(reg, "wal/00000002.history", hist, strlen(hist));
    put_v1(reg, "backups/20260101T000000Z/part-0001", "a tar stream, really", 20);
    put_v1(reg, "backups/20260101T000000Z/backup_label", label, strlen(label));
    put_v1(reg, "backups/20260101T000000Z/manifest.json", json, strlen(json));
    free(s1);
    free(s2);
    free(json);
}

static int decodes_to(struct repo *r, const char *key, const void *want, size_t n)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    struct err e = ERR_INIT;
    int good = repo_get_buf(r, key, 16u << 20, &buf, &len, &e) == 0 && len == n && memcmp(buf, want, n) == 0;

    if (!good)
        diag("%s: %s (%zu bytes)", key, e.msg, len);
    free(buf);
    return good;
}

static void upgrade_one_region(void)
{
    struct upg_stats st;
    struct repo *r = NULL;
    struct catalog cat;
    struct err e = ERR_INIT;
    unsigned char *s1 = segment("000000010000000000000001", SYSID, 1);
    int rc;

    legacy_repo("r1");
    ok(repo_open(region("r1"), conf, NULL, kr, REPO_OPEN_IDENTITY, &r, &e) < 0 && e.code == ERR_NOREPO &&
           strstr(e.msg, "walship upgrade --region r1") != NULL,
       "a 0.1.0 repository is refused, pointing at upgrade: %s", e.msg);
    rc = upg_region(conf, region("r1"), kr, NULL, 1, NULL, NULL, &st, &e);
    ok(rc == 0 && st.rewritten == 6 && st.skipped == 0, "dry run: 6 objects would be bound (%llu)",
       (unsigned long long)st.rewritten);
    ok(repo_open(region("r1"), conf, NULL, kr, REPO_OPEN_IDENTITY, &r, &e) < 0 && e.code == ERR_NOREPO,
       "dry run: still no identity");
    rc = upg_region(conf, region("r1"), kr, NULL, 0, NULL, NULL, &st, &e);
    ok(rc == 0 && st.rewritten == 6 && !st.already, "upgrade binds 6 objects (%llu)", (unsigned long long)st.rewritten);
    ok(st.ident.sysid == SYSID && st.ident.pg_major == 15 && st.ident.seg_size == SEG,
       "the cluster is learnt from the manifest");
    ok(repo_open(region("r1"), conf, NULL, kr, REPO_OPEN_IDENTITY, &r, &e) == 0 && r->id.sysid == SYSID,
       "the region has an identity now: %s", e.msg);
    if (r != NULL) {
        ok(decodes_to(r, "wal/000000010000000000000001", s1, SEG), "a segment decodes, bound, to what it held");
        ok(decodes_to(r, "wal/00000002.history", "1\t0/2000000\tno recovery target specified\n", 41),
           "the history file too");
        ok(cat_list(r, 1, &cat, &e) == 0 && cat.n == 1 && cat.v[0].man != NULL, "the manifest loads: %s", e.msg);
        cat_free(&cat);
        repo_free(r);
    }
    ok(upg_region(conf, region("r1"), kr, NULL, 0, NULL, NULL, &st, &e) == 0 && st.already && st.rewritten == 0,
       "a second run has nothing to do");
    free(s1);
}

static void refused_objects(void)
{
    struct upg_stats st;
    struct repo *r = NULL;
    struct err e = ERR_INIT;
    unsigned char *bad = segment("000000010000000000000006", SYSID, 5);
    char *json = manifest_json("20260101T000000Z", "7311234567890123456");
    int rc;

    /* a segment stored under another segment's name */
    legacy_repo("r3");
    put_v1("r3", "wal/000000010000000000000005", bad, SEG);
    ok(upg_region(conf, region("r3"), kr, NULL, 0, NULL, NULL, &st, &e) < 0 && e.code == ERR_FOREIGN &&
           strstr(e.msg, "000000010000000000000005") != NULL,
       "a segment that is not what its name says is not bound: %s", e.msg);
    ok(repo_open(region("r3"), conf, NULL, kr, REPO_OPEN_IDENTITY, &r, &e) < 0 && e.code == ERR_NOREPO,
       "...and the region gets no identity");
    repo_free(r);
    r = NULL;
    /* finished once the operator removed it: what was bound is skipped */
    {
        char p[PATH_MAX];

        snprintf(p, sizeof p, "%s/r3/wal/000000010000000000000005", root);
        unlink(p);
    }
    rc = upg_region(conf, region("r3"), kr, NULL, 0, NULL, NULL, &st, &e);
    ok(rc == 0 && st.skipped > 0 && st.rewritten > 0,
       "an interrupted upgrade finishes when run again (%llu skipped, %llu bound)", (unsigned long long)st.skipped,
       (unsigned long long)st.rewritten);

    /* another backup's manifest in this backup's folder */
    legacy_repo("r4");
    put_v1("r4", "backups/20260202T000000Z/manifest.json", json, strlen(json));
    ok(upg_region(conf, region("r4"), kr, NULL, 0, NULL, NULL, &st, &e) < 0 && e.code == ERR_FOREIGN &&
           strstr(e.msg, "20260202T000000Z/manifest.json") != NULL,
       "a manifest copied from another backup is not bound: %s", e.msg);

    /* a v1 object that does not authenticate */
    legacy_repo("r5");
    {
        char p[PATH_MAX];
        FILE *f;

        snprintf(p, sizeof p, "%s/r5/wal/000000010000000000000002", root);
        f = fopen(p, "r+");
        fseek(f, 5000, SEEK_SET);
        fputc('X', f);
        fclose(f);
    }
    ok(upg_region(conf, region("r5"), kr, NULL, 0, NULL, NULL, &st, &e) < 0 && e.code == ERR_CORRUPT &&
           strstr(e.msg, "000000010000000000000002") != NULL,
       "a damaged object is not bound: %s", e.msg);
    free(bad);
    free(json);
}

static void spool(void)
{
    struct upg_spool_stats ss;
    struct repo_ident id;
    struct err e = ERR_INIT;
    struct region_conf *r2 = region("r2");
    char p[PATH_MAX], q[SPOOL_QUEUE_MAX];
    unsigned char *text = segment("000000010000000000000003", SYSID, 3);
    unsigned char *other = segment("000000010000000000000004", SYSID + 1, 4);
    struct obj_opts oo;
    struct sink *up, *enc;
    FILE *f;

    r2->mode = REGION_ASYNC;
    snprintf(p, sizeof p, "%s/spool/queue/r2", root);
    mkdir_p(p, 0700, &e);
    snprintf(p, sizeof p, "%s/spool/queue/gone", root);
    mkdir_p(p, 0700, &e);
    /* three 0.1.0 entries: one for r2, one for a region no longer
     * configured, and one of another cluster of the host in r2's queue */
    for (int i = 0; i < 3; i++) {
        int fd;

        snprintf(p, sizeof p, "%s/spool/queue/%s/00000001000000000000000%d", root, i == 1 ? "gone" : "r2",
                 i == 2 ? 4 : 3);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        memset(&oo, 0, sizeof oo);
        oo.kr = kr;
        oo.version = OBJ_VERSION_LEGACY;
        up = fd_sink_new(fd);
        if (obj_encoder_new(up, &oo, &enc, &e) < 0 || sink_write(enc, i == 2 ? other : text, SEG, &e) < 0 ||
            sink_close(enc, &e) < 0)
            diag("spool entry: %s", e.msg);
        sink_free(enc);
        close(fd);
    }
    repo_ident_init(&id, SYSID, 15, SEG);
    ok(upg_spool(conf, kr, &id, 0, &ss, &e) == 0 && ss.moved == 1 && ss.left == 2 && ss.foreign == 1,
       "the spool: 1 entry moved, 1 of an unconfigured region and 1 of another cluster left: %s", e.msg);
    snprintf(p, sizeof p, "%s/spool/queue/r2/000000010000000000000004", root);
    ok(access(p, F_OK) == 0, "...the other cluster's segment stays where it was");
    spool_queue_name(r2->name, r2->url, r2->endpoint, q);
    snprintf(p, sizeof p, "%s/spool/%llu/queue/%s/000000010000000000000004", root, (unsigned long long)SYSID, q);
    ok(access(p, F_OK) != 0, "...and is not in this cluster's queue");
    snprintf(p, sizeof p, "%s/spool/%llu/identity.json", root, (unsigned long long)SYSID);
    ok(access(p, F_OK) == 0, "the cluster's spool holds its identity for the shipper");
    spool_queue_name(r2->name, r2->url, r2->endpoint, q);
    snprintf(p, sizeof p, "%s/spool/%llu/queue/%s/000000010000000000000003", root, (unsigned long long)SYSID, q);
    ok(access(p, F_OK) == 0, "...into the cluster's queue for r2");
    {
        struct obj_bind bind = { "wal/000000010000000000000003", SYSID, 0, "" };
        unsigned char *buf = NULL;
        size_t len = 0;
        struct sink *mem = mem_sink_new(0), *dec;

        f = fopen(p, "r");
        if (f != NULL && obj_decoder_new(mem, kr, 0, &bind, &dec, &e) == 0) {
            char chunk[4096];
            size_t n;

            while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
                sink_write(dec, chunk, n, &e);
            ok(sink_close(dec, &e) == 0, "...bound to its key and the cluster: %s", e.msg);
            buf = mem_sink_take(mem, &len);
            ok(len == SEG && memcmp(buf, text, len) == 0, "...holding the same WAL");
            sink_free(dec);
        }
        if (f != NULL)
            fclose(f);
        free(buf);
    }
    snprintf(p, sizeof p, "%s/spool/queue/r2/000000010000000000000003", root);
    ok(access(p, F_OK) != 0, "the old entry is gone");
    free(text);
    free(other);
}

int main(void)
{
    static const unsigned char key[KEYS_LEN] = "walship upgrade test key 123456";
    struct err e = ERR_INIT;
    char p[PATH_MAX];

    log_init("upgrade-test", LOG_ERROR);
    if (mkdtemp(root) == NULL)
        return 1;
    conf = config_new_default();
    kr = keys_new();
    keys_add(kr, key, 1, "test", &e);
    snprintf(p, sizeof p, "%s/spool", root);
    free(conf->spool_dir);
    conf->spool_dir = strdup(p);
    upgrade_one_region();
    refused_objects();
    spool();
    keys_free(kr);
    config_free(conf);
    snprintf(p, sizeof p, "rm -rf %s", root);
    if (system(p) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
