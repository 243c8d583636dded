/*
 * chain_test — failures propagate (issue 10): a failure injected at each
 * stage of the encode chain, of the decode chain and of the fan-out fails
 * the operation, and nothing is acknowledged that was not stored: the
 * fan-out alone (multi), wal-push's engine (archive_push_file) over
 * file:// regions, sync and async, the shipper, and decoding (repo_get).
 * Faults are armed through WALSHIP_FAULT_INJECT (src/io/fault.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archiver.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "multi.h"
#include "repo.h"
#include "ship.h"
#include "spool.h"
#include "tap.h"
#include "unit_fixture.h"
#include "util.h"
#include "wal.h"

#define SYSID TF_SYSID
#define SEG (1u << 20)

static char root[] = "/tmp/walship-chain-test-XXXXXX";
static struct config *conf;
static struct keyring *kr;

/* ---- the fan-out alone ---- */

struct fail_sink {
    struct sink base;
    int fail_write, fail_close, closed;
};

static int fs_write(struct sink *s, const void *b, size_t n, struct err *e)
{
    (void)b;
    (void)n;
    return ((struct fail_sink *)s)->fail_write ? err_setf(e, ERR_NET, "branch write failed") : 0;
}

static int fs_close(struct sink *s, struct err *e)
{
    struct fail_sink *f = (struct fail_sink *)s;

    if (f->fail_close)
        return err_setf(e, ERR_NET, "branch close failed");
    f->closed = 1;
    return 0;
}

static void fs_free(struct sink *s)
{
    free(s);
}

static const struct sink_ops fs_ops = { fs_write, fs_close, fs_free };

static struct sink *branch(int fw, int fc)
{
    struct fail_sink *f = calloc(1, sizeof *f);

    f->base.ops = &fs_ops;
    f->fail_write = fw;
    f->fail_close = fc;
    return &f->base;
}

static void fanout(void)
{
    struct multi_result res[3] = { { "a", 0, 0, ERR_INIT }, { "b", 0, 0, ERR_INIT }, { "c", 0, 0, ERR_INIT } };
    struct sink *br[3], *tee = NULL;
    struct err e = ERR_INIT, ce = ERR_INIT;
    int rc;

    br[0] = branch(0, 0);
    br[1] = branch(1, 0);
    br[2] = branch(0, 1);
    ok(multi_tee_new(br, res, 3, &tee, &e) == 0, "a fan-out of three branches");
    ok(sink_write(tee, "x", 1, &e) == 0, "a write succeeds while one branch is alive");
    rc = sink_close(tee, &ce);
    ok(rc < 0 && multi_settle(res, 3, rc, &ce) == 1, "close fails; one branch committed");
    ok(res[0].committed && !res[0].failed, "the healthy branch committed");
    ok(res[1].failed && strstr(res[1].err.msg, "write failed") != NULL, "the branch that failed writing says so");
    ok(res[2].failed && !res[2].committed && strstr(res[2].err.msg, "close failed") != NULL,
       "the branch that failed closing says so");
    sink_free(tee);

    /* the chain above the fan-out fails: the fan-out is never closed */
    br[0] = branch(0, 0);
    br[1] = branch(0, 0);
    memset(res, 0, sizeof res);
    res[0].name = "a";
    res[1].name = "b";
    ok(multi_tee_new(br, res, 2, &tee, &e) == 0, "a fan-out of two healthy branches");
    sink_write(tee, "x", 1, &e);
    err_setf(&ce, ERR_INTERNAL, "zstd exploded");
    ok(multi_settle(res, 2, -1, &ce) == 0, "the chain failed before the fan-out: nothing committed");
    ok(res[0].failed && res[1].failed && strstr(res[0].err.msg, "zstd exploded") != NULL,
       "every branch carries the chain's error, none counts as stored");
    sink_free(tee);
}

/* ---- wal-push's engine ---- */

static struct region_conf *region(const char *name, enum region_mode mode)
{
    char url[PATH_MAX + 8], dir[PATH_MAX];
    struct region_conf *rc;

    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0700);
    snprintf(url, sizeof url, "file://%s", dir);
    if (config_region(conf, name) == NULL)
        config_add_region_url(conf, name, url, &(struct err)ERR_INIT);
    rc = (struct region_conf *)config_region(conf, name);
    rc->mode = mode;
    return rc;
}

static void write_segment(const char *path, const char *name, unsigned seed)
{
    unsigned char *b = tf_segment(name, SYSID, SEG, seed);
    FILE *f = fopen(path, "wb");

    if (f == NULL || fwrite(b, 1, SEG, f) != SEG)
        diag("could not write %s", path);
    if (f != NULL)
        fclose(f);
    free(b);
}

/* Does region `reg` hold wal/NAME? */
static int stored(const char *reg, const char *name)
{
    char p[PATH_MAX];

    snprintf(p, sizeof p, "%s/%s/wal/%s", root, reg, name);
    return access(p, F_OK) == 0;
}

static int queued(struct spool *sp, const char *name)
{
    const struct region_conf *rc = config_region(conf, "async");
    char q[SPOOL_QUEUE_MAX];

    spool_queue_name(rc->name, rc->url, rc->endpoint, q);
    return spool_is_queued(sp, q, name);
}

static int push(struct spool *sp, const char *fault, const char *name, struct archive_report *rep, struct err *e)
{
    struct archiver a;
    struct repo_ident want;
    char path[PATH_MAX];
    int rc;

    snprintf(path, sizeof path, "%s/%s", root, name);
    write_segment(path, name, (unsigned)name[23]);
    repo_ident_init(&want, SYSID, 15, SEG);
    if (fault != NULL)
        setenv("WALSHIP_FAULT_INJECT", fault, 1);
    rc = archiver_open(conf, kr, NULL, sp, &want, NULL, &a, e);
    if (rc == 0)
        rc = archive_push_file(&a, path, name, rep, e);
    archiver_close(&a);
    unsetenv("WALSHIP_FAULT_INJECT");
    return rc;
}

static void wal_push(struct spool *sp)
{
    static const char *const chain_faults[] = { "obj.zstd:write", "obj.zstd:close", "obj.encode:write",
                                                "obj.encode:close" };
    struct archive_report rep;
    struct err e = ERR_INIT;
    char name[32];
    size_t i;

    ok(push(sp, NULL, "000000010000000000000001", &rep, &e) == 0 && rep.uploaded == 1 && rep.spooled == 1,
       "without a fault: uploaded to the sync region, spooled for the async one: %s", e.msg);
    for (i = 0; i < sizeof chain_faults / sizeof *chain_faults; i++) {
        snprintf(name, sizeof name, "00000001000000000000001%zu", i);
        err_clear(&e);
        ok(push(sp, chain_faults[i], name, &rep, &e) < 0 && strstr(e.msg, "injected fault") != NULL &&
               rep.uploaded == 0 && rep.spooled == 0,
           "wal-push with %s fails: %s", chain_faults[i], e.msg);
        ok(!stored("sync", name) && !queued(sp, name), "...nothing stored, nothing spooled");
    }
    err_clear(&e);
    ok(push(sp, "upload.sync:close", "000000010000000000000020", &rep, &e) < 0 && rep.failed == 1 &&
           strstr(e.msg, "sync") != NULL,
       "the sync region's upload failing at close fails the push, naming it: %s", e.msg);
    ok(!stored("sync", "000000010000000000000020"), "...and the region has no object");
    err_clear(&e);
    ok(push(sp, "upload.sync:write", "000000010000000000000021", &rep, &e) < 0 && rep.failed == 1,
       "the sync region's upload failing at write fails the push: %s", e.msg);
}

/* ---- the shipper and the decoder ---- */

static void ship_and_decode(struct spool *sp)
{
    struct ship_opts o = { 1, 0, NULL, 0 };
    struct ship_stats st;
    struct repo *r = NULL;
    struct err e = ERR_INIT;
    char dest[PATH_MAX];

    {
        char p[PATH_MAX];

        snprintf(p, sizeof p, "%s/async", root);
        mkdir(p, 0700);
    }
    {
        /* --once while another shipper holds the lock all along: a failure
         * while files are left, not "another shipper is running", exit 0 */
        struct ship_opts ow = { 1, 0, NULL, 200 };
        int fd = -1;

        ok(spool_lock(sp, "ship.lock", 0, &fd, &e) == 1, "another shipper holds the lock");
        ok(ship_run(conf, kr, sp, &ow, &st, &e) < 0 && strstr(e.msg, "still waiting") != NULL && !st.ran,
           "ship --once that never gets the lock fails while files are left: %s", e.msg);
        spool_unlock(fd);
        err_clear(&e);
    }
    setenv("WALSHIP_FAULT_INJECT", "ship.upload:close", 1);
    ok(ship_run(conf, kr, sp, &o, &st, &e) < 0 && st.shipped == 0, "ship with its upload failing fails: %s",
       e.msg);
    unsetenv("WALSHIP_FAULT_INJECT");
    ok(queued(sp, "000000010000000000000001") && !stored("async", "000000010000000000000001"),
       "...the entry stays queued, the region has nothing");
    err_clear(&e);
    ok(ship_run(conf, kr, sp, &o, &st, &e) == 0 && st.shipped >= 1, "without the fault it ships: %s", e.msg);
    ok(!queued(sp, "000000010000000000000001"), "...and drops the entry");

    ok(repo_open(config_region(conf, "sync"), conf, NULL, kr, REPO_OPEN_IDENTITY, &r, &e) == 0, "open the sync region");
    snprintf(dest, sizeof dest, "%s/fetched", root);
    setenv("WALSHIP_FAULT_INJECT", "obj.decode:write", 1);
    ok(repo_get_to_file(r, "wal/000000010000000000000001", dest, &e) < 0 && access(dest, F_OK) != 0,
       "a fault in the decode chain fails the fetch and writes no file: %s", e.msg);
    setenv("WALSHIP_FAULT_INJECT", "obj.decode:close", 1);
    ok(repo_get_to_file(r, "wal/000000010000000000000001", dest, &e) < 0 && access(dest, F_OK) != 0,
       "...at close too: %s", e.msg);
    unsetenv("WALSHIP_FAULT_INJECT");
    ok(repo_get_to_file(r, "wal/000000010000000000000001", dest, &e) == 0, "without it the fetch succeeds");
    repo_free(r);
}

int main(void)
{
    static const unsigned char key[KEYS_LEN] = "walship chain test key 12345678";
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    char p[PATH_MAX];

    log_init("chain-test", LOG_ERROR);
    unsetenv("WALSHIP_FAULT_INJECT");
    if (mkdtemp(root) == NULL)
        return 1;
    conf = config_new_default();
    kr = keys_new();
    keys_add(kr, key, 1, "test", &e);
    region("sync", REGION_SYNC);
    region("async", REGION_ASYNC);
    snprintf(p, sizeof p, "%s/spool", root);
    if (spool_open(p, 0, SYSID, &sp, &e) < 0)
        diag("spool: %s", e.msg);
    {
        struct repo_ident id;
        char *json = NULL;
        size_t len;

        repo_ident_init(&id, SYSID, 15, SEG);
        repo_ident_to_json(&id, &json, &len, &e);
        spool_save_identity(sp, json, len, &e);
        free(json);
    }
    fanout();
    wal_push(sp);
    ship_and_decode(sp);
    spool_free(sp);
    keys_free(kr);
    config_free(conf);
    snprintf(p, sizeof p, "rm -rf %s", root);
    if (system(p) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
