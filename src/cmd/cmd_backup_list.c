/*
 * cmd_backup_list — `walship backup-list [--region R] [--json] [--all]`:
 * the backups of every region (or of R).
 *
 * A backup exists only with its manifest (DESIGN.md §7); --all also shows
 * the incomplete folders (no manifest: a backup in progress or one left by
 * a killed backup-push) with their object count, size and the age of their
 * newest object, for clean-up.  A region that cannot be listed, or a
 * manifest that does not decode, is reported in place and the command exits
 * 3 after listing everything else.  --json prints one JSON array (jansson):
 * one object per region, each with its backups.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "manifest.h"
#include "stor.h"
#include "util.h"

struct list_opts {
    int json, all;
};

static void human(uint64_t n, char *buf, size_t len)
{
    static const char *unit[] = { "B", "kB", "MB", "GB", "TB", "PB" };
    double v = (double)n;
    int u = 0;

    while (v >= 1000.0 && u < 5) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
}

static void fmt_lsn(uint64_t lsn, char buf[24])
{
    snprintf(buf, 24, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

static void fmt_age(int64_t secs, char *buf, size_t len)
{
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(buf, len, "%" PRId64 " s", secs);
    else if (secs < 7200)
        snprintf(buf, len, "%" PRId64 " min", secs / 60);
    else if (secs < 172800)
        snprintf(buf, len, "%" PRId64 " h", secs / 3600);
    else
        snprintf(buf, len, "%" PRId64 " d", secs / 86400);
}

/* ---- text ---- */

/* Stored bytes of backup i and of every ancestor it needs, from the
 * manifests, wherever the ancestors are listed (a parent sorts after its
 * child when a clock went back between the two); UINT64_MAX when a link
 * is not listed, its manifest did not load, or the links loop. */
static uint64_t chain_bytes(const struct catalog *cat, size_t i)
{
    uint64_t sum = 0;
    size_t steps, k;

    for (steps = 0; steps <= cat->n; steps++) {
        const struct manifest *m = cat->v[i].man;

        if (m == NULL)
            return UINT64_MAX;
        sum += m->stored_size;
        if (!m->incremental)
            return sum;
        for (k = 0; k < cat->n && !(cat->v[k].man != NULL && strcmp(cat->v[k].name, m->parent) == 0); k++)
            ;
        if (k == cat->n)
            return UINT64_MAX;
        i = k;
    }
    return UINT64_MAX;
}

static void text_backup(const struct cat_entry *ce, const struct err *merr, uint64_t chain, time_t now)
{
    char a[32], b[32], l1[24], l2[24], s1[32], s2[32], s3[32];

    if (!ce->complete) {
        fmt_age((int64_t)(now - ce->newest), a, sizeof a);
        human(ce->bytes, s1, sizeof s1);
        printf("  %-18s INCOMPLETE (no manifest): %" PRIu64 " object%s, %s, newest object %s old\n", cmd_line(ce->name),
               ce->objects, ce->objects == 1 ? "" : "s", s1, a);
        return;
    }
    if (ce->man == NULL) {
        printf("  %-18s ERROR: %s\n", cmd_line(ce->name), cmd_line(merr->msg));
        return;
    }
    man_format_time(ce->man->start_time, a);
    man_format_time(ce->man->stop_time, b);
    fmt_lsn(ce->man->start_lsn, l1);
    fmt_lsn(ce->man->stop_lsn, l2);
    human(ce->man->original_size, s1, sizeof s1);
    human(ce->man->stored_size, s2, sizeof s2);
    printf("  %-18s %-20s  %-20s  %-13s %-13s %3u  %10s  %10s", cmd_line(ce->name), a, b, l1, l2,
           (unsigned)ce->man->timeline, s1, s2);
    if (!ce->man->incremental) {
        printf("\n");
        return;
    }
    if (chain == UINT64_MAX)
        snprintf(s3, sizeof s3, "unknown (a link is missing)");
    else
        human(chain, s3, sizeof s3);
    printf("  incremental of %s, depth %u, chain %s\n", cmd_line(ce->man->parent), (unsigned)ce->man->depth, s3);
}

static void text_header(const struct region_conf *rc)
{
    printf("region %s (%s)\n", rc->name, rc->url);
}

/* ---- JSON ---- */

static json_t *json_backup_v(const struct cat_entry *ce, const struct err *merr, time_t now);

/* With the chain: type, chain_size (stored bytes of the backup and its
 * ancestors, null when a link is missing), and for an incremental its
 * parent and depth. */
static json_t *json_backup(const struct cat_entry *ce, const struct err *merr, uint64_t chain, time_t now)
{
    json_t *j = json_backup_v(ce, merr, now);

    if (j != NULL && ce->complete && ce->man != NULL) {
        json_object_set_new(j, "type", json_string(ce->man->incremental ? "incr" : "full"));
        json_object_set_new(j, "chain_size", chain == UINT64_MAX ? json_null() : json_integer((json_int_t)chain));
        if (ce->man->incremental) {
            json_object_set_new(j, "parent", json_string(ce->man->parent));
            json_object_set_new(j, "depth", json_integer(ce->man->depth));
        }
    }
    return j;
}

static json_t *json_backup_v(const struct cat_entry *ce, const struct err *merr, time_t now)
{
    const struct manifest *m = ce->man;
    char a[32], b[32], l1[24], l2[24];

    if (!ce->complete) {
        man_format_time((int64_t)ce->newest, a);
        return json_pack("{s:o, s:b, s:I, s:I, s:s, s:I}", "name", cmd_json_str(ce->name), "complete", 0, "objects",
                         (json_int_t)ce->objects, "bytes", (json_int_t)ce->bytes, "newest_object", a,
                         "age_seconds", (json_int_t)(now - ce->newest));
    }
    if (m == NULL)
        return json_pack("{s:o, s:b, s:o}", "name", cmd_json_str(ce->name), "complete", 1, "error",
                         cmd_json_str(merr->msg));
    man_format_time(m->start_time, a);
    man_format_time(m->stop_time, b);
    fmt_lsn(m->start_lsn, l1);
    fmt_lsn(m->stop_lsn, l2);
    return json_pack("{s:o, s:b, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:s?, s:I, s:I, s:I, s:I,"
                     " s:I, s:s?, s:s?}",
                     "name", cmd_json_str(ce->name), "complete", 1, "start_time", a, "stop_time", b,
                     "start_time_unix", (json_int_t)m->start_time, "stop_time_unix", (json_int_t)m->stop_time,
                     "start_lsn", l1, "stop_lsn", l2, "start_wal", m->start_wal, "stop_wal", m->stop_wal,
                     "timeline", (int)m->timeline, "stop_timeline", (int)m->stop_timeline,
                     "pg_version", (int)m->pg_version, "system_identifier", m->system_identifier,
                     "original_size", (json_int_t)m->original_size, "stored_size", (json_int_t)m->stored_size,
                     "parts", (json_int_t)m->nparts, "files", (json_int_t)m->files_listed,
                     "tablespaces", (json_int_t)m->ntablespaces, "compression", m->compression,
                     "key_id", m->key_id);
}

/* List one region; returns 0, or -1 when the region or a manifest failed
 * (already reported in the output). */
static int list_region(struct cmd_ctx *ctx, const struct region_conf *rc, const struct keyring *kr,
                       const struct list_opts *lo, json_t *jregions)
{
    struct repo *s = NULL;
    struct catalog cat = { NULL, 0, 0 };
    struct err e = ERR_INIT;
    json_t *jr = NULL, *jb = NULL;
    struct err *merr = NULL;    /* per backup: why its manifest did not load */
    time_t now = time(NULL);
    size_t i, shown = 0;
    int rc_ = 0;

    if (lo->json) {
        jr = json_pack("{s:s, s:o, s:n, s:o}", "region", rc->name, "url", cmd_json_str(rc->url), "error", "backups",
                       json_array());
        if (jr == NULL || json_array_append_new(jregions, jr) < 0) {
            log_error("out of memory");
            return -1;
        }
        jb = json_object_get(jr, "backups");
    } else {
        text_header(rc);
    }
    if (cmd_repo_open(ctx, rc, kr, REPO_OPEN_IDENTITY, &s, &e) < 0 || cat_list(s, 0, &cat, &e) < 0) {
        log_error("%s", e.msg);
        if (lo->json)
            json_object_set_new(jr, "error", cmd_json_str(e.msg));
        else
            printf("  ERROR: %s\n", cmd_line(e.msg));
        repo_free(s);
        return -1;
    }
    merr = calloc(cat.n + 1, sizeof *merr);
    if (!lo->json && cat.n > 0)
        printf("  %-18s %-20s  %-20s  %-13s %-13s %3s  %10s  %10s\n", "NAME", "START", "STOP", "START LSN",
               "STOP LSN", "TL", "ORIGINAL", "STORED");
    /* every manifest first: a chain's sizes need its parents' */
    for (i = 0; i < cat.n; i++) {
        struct cat_entry *ce = &cat.v[i];

        if (ce->complete && cat_load_headers(s, ce->name, &ce->man, NULL, merr != NULL ? &merr[i] : &e) < 0) {
            log_error("%s", merr != NULL ? merr[i].msg : e.msg);
            ce->man = NULL;
            rc_ = -1;
        }
    }
    for (i = 0; i < cat.n; i++) {
        struct cat_entry *ce = &cat.v[i];
        const struct err *me = merr != NULL ? &merr[i] : &e;
        uint64_t cb = chain_bytes(&cat, i);

        if (!ce->complete && !lo->all)
            continue;
        if (lo->json)
            json_array_append_new(jb, json_backup(ce, me, cb, now));
        else
            text_backup(ce, me, cb, now);
        shown++;
    }
    if (!lo->json && shown == 0)
        printf("  (no backups)\n");
    free(merr);
    cat_free(&cat);
    repo_free(s);
    return rc_;
}

int cmd_backup_list_run(struct cmd_ctx *ctx)
{
    struct list_opts lo = { 0, 0 };
    struct keyring *kr = NULL;
    struct err e = ERR_INIT;
    json_t *jregions = NULL;
    int i, failed = 0, listed = 0;

    for (i = 1; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--json") == 0)
            lo.json = 1;
        else if (strcmp(ctx->argv[i], "--all") == 0)
            lo.all = 1;
        else if (ctx->argv[i][0] == '-')
            return cmd_usage("backup-list", "unknown option \"%s\"", ctx->argv[i]);
        else
            return cmd_usage("backup-list", "takes no arguments (\"%s\")", ctx->argv[i]);
    }
    if (config_require_regions(ctx->conf, &e) < 0)
        return cmd_fail(&e);
    if (cmd_load_keyring(ctx, &kr, &e) < 0)
        return cmd_fail(&e);
    if (lo.json && (jregions = json_array()) == NULL) {
        keys_free(kr);
        err_setf(&e, ERR_NOMEM, "out of memory");
        return cmd_fail(&e);
    }
    for (i = 0; i < ctx->conf->nregions; i++) {
        const struct region_conf *rc = &ctx->conf->regions[i];

        if (ctx->region != NULL && strcmp(ctx->region, rc->name) != 0)
            continue;
        if (!lo.json && listed++)
            printf("\n");
        if (list_region(ctx, rc, kr, &lo, jregions) < 0)
            failed++;
    }
    if (lo.json) {
        char *text = json_dumps(jregions, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        if (text == NULL) {
            log_error("out of memory");
            failed++;
        } else {
            printf("%s\n", text);
            free(text);
        }
        json_decref(jregions);
    }
    fflush(stdout);
    keys_free(kr);
    return failed ? EXIT_FAILURE3 : 0;
}
