/*
 * catalog_test — cat_parts_present (src/repo/catalog.c), which backup-push
 * runs before it writes a manifest and on every link of an incremental's
 * chain: every part listed at its stored size, a missing one or one of
 * another size named.  It matched each listed object against every part,
 * so a backup of many parts (a large cluster at the default part size)
 * cost parts² comparisons per region and link (an adversarial pass: 40000
 * parts took minutes); now a part is looked up by its number.  And
 * cat_list(CAT_LOAD_HEADERS), retention's: every manifest of the region
 * loaded at once, without its file list (about 25 MB a manifest of 100000
 * files, which retention never reads: 10 such backups made `delete` hold
 * 390 MB).
 */
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "config.h"
#include "log.h"
#include "manifest.h"
#include "repo.h"
#include "tap.h"
#include "unit_fixture.h"
#include "util.h"

#define NPARTS 40000u

static char root[] = "/tmp/walship-catalog-test-XXXXXX";

/* an object of `size` bytes stored as backups/B/NAME (listing reads names and sizes) */
static void stored(const char *name, size_t size)
{
    char p[PATH_MAX];
    FILE *f;

    snprintf(p, sizeof p, "%s/region/backups/B/%s", root, name);
    f = fopen(p, "w");
    if (f == NULL)
        return;
    while (size-- > 0)
        fputc('x', f);
    fclose(f);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int present(struct repo *r, const struct manifest *m, const char *want_msg)
{
    struct err e = ERR_INIT;
    int rc = cat_parts_present(r, "B", m, &e);

    if (rc == 0)
        return want_msg == NULL;
    if (want_msg == NULL || strstr(e.msg, want_msg) == NULL) {
        diag("%s", e.msg);
        return 0;
    }
    return 1;
}

#define NMAN 4
#define NFILES 20000u

/* backup NAME's manifest of NFILES files, put into the region */
static void put_manifest(struct repo *r, const char *name)
{
    struct manifest *m = tf_manifest_new(name);
    struct man_part mp = { 1, 0, 1, NFILES };
    struct err e = ERR_INIT;
    char key[256], path[64], *json = NULL;
    size_t len;
    unsigned i;

    m->start_time = 1700000000;
    m->stop_time = 1700000040;
    m->pg_version = 150004;
    m->compression = strdup("none");
    for (i = 0; i < NFILES; i++) {
        snprintf(path, sizeof path, "base/5/%u", 100000 + i);
        man_add_file(m, path, 1, 8192, 0600, 1700000000,
                     "0000000000000000000000000000000000000000000000000000000000000000", &e);
    }
    man_add_part(m, &mp, &e);
    if (man_to_json(m, &json, &len, &e) < 0)
        diag("man_to_json: %s", e.msg);
    snprintf(key, sizeof key, "backups/%s/manifest.json", name);
    tf_put(r, key, json, len);
    free(json);
    man_free(m);
}

static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}

static void headers_test(struct repo *r)
{
    struct catalog cat;
    struct err e = ERR_INIT;
    char name[32];
    size_t before, full, heads, i, nfiles = 0, kept = 0;
    int k;

    for (k = 0; k < NMAN; k++) {
        snprintf(name, sizeof name, "20261122T05323%dZ", k);
        put_manifest(r, name);
    }
    before = heap_in_use();
    ok(cat_list(r, 1, &cat, &e) == 0, "load every manifest");
    full = heap_in_use() - before;
    for (i = 0; i < cat.n; i++)
        nfiles += cat.v[i].man != NULL ? cat.v[i].man->nfiles : 0;
    ok(nfiles == NMAN * NFILES, "...with their file lists (%zu files, %zu kB held)", nfiles, full / 1024);
    cat_free(&cat);
    before = heap_in_use();
    ok(cat_list(r, CAT_LOAD_HEADERS, &cat, &e) == 0, "load every manifest's header (retention's)");
    heads = heap_in_use() - before;
    for (i = 0; i < cat.n; i++)
        if (cat.v[i].man != NULL && cat.v[i].man->nfiles == 0 && cat.v[i].man->files == NULL &&
            cat.v[i].man->stop_time == 1700000040 && strcmp(cat.v[i].man->start_wal, "000000010000000100000000") == 0 &&
            cat.v[i].man->nparts == 1)
            kept++;
    ok(kept == NMAN, "...each with its fields and parts, without its file list");
    /* under a sanitizer's allocator glibc reports nothing held: the file
     * lists' absence above is the check then */
    ok(full < (1u << 20) || heads * 20 < full, "...holding %zu kB, not %zu kB", heads / 1024, full / 1024);
    /* restore's: the catalog's headers, then the chosen backup whole */
    ok(cat.n > 1 && cat.v[1].complete && cat_reload(r, &cat, 1, &e) == 0 && cat.v[1].man->nfiles == NFILES &&
       cat.v[0].man->nfiles == 0, "the chosen backup's manifest loaded again, whole; the others not");
    cat_free(&cat);
}

int main(void)
{
    struct config *conf;
    struct repo *r = NULL;
    struct manifest *m;
    struct timespec t0;
    char p[PATH_MAX], name[32];
    unsigned i;
    double took;

    log_init("catalog-test", LOG_ERROR);
    conf = config_new_default();
    if (tf_region_open(root, conf, &r) < 0)
        return 1;
    snprintf(p, sizeof p, "%s/region/backups/B", root);
    mkdir_p(p, 0700, &(struct err)ERR_INIT);
    m = tf_manifest_new("B");
    for (i = 1; i <= NPARTS; i++) {
        struct man_part mp = { i, 0, i % 3, 0 };

        man_add_part(m, &mp, &(struct err)ERR_INIT);
        snprintf(name, sizeof name, "part-%04u", i);
        stored(name, i % 3);
    }
    stored("blockhash", 1);
    stored("part-1", 1);        /* not how part 1 is named: ignored */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ok(present(r, m, NULL), "%u parts, each at its size: present", NPARTS);
    took = seconds_since(&t0);
    ok(took < 10.0, "in %.2f s (linear in the parts; parts² took minutes)", took);

    snprintf(p, sizeof p, "%s/region/backups/B/part-0004", root);
    unlink(p);
    stored("part-00004", 1);    /* another spelling of 4: not part 4 */
    ok(present(r, m, "part 4 of backup B is missing"), "a part missing is named");
    stored("part-0004", 2);
    ok(present(r, m, "part 4 of backup B is missing or not at its size"), "a part of another size is named");
    stored("part-0004", 1);
    ok(present(r, m, NULL), "back at its size: present");
    snprintf(p, sizeof p, "%s/region/backups/B/part-%04u", root, NPARTS);
    unlink(p);
    ok(present(r, m, "missing"), "the last part missing is named");

    man_free(m);
    headers_test(r);
    repo_free(r);
    config_free(conf);
    tf_rmrf(root);
    return done_testing();
}
