/*
 * cmd_verify — `walship verify [--region R] [--full] [--json]`: check that
 * every region (or R) holds complete backups and the WAL they need
 * (src/maint/verify.h, docs/VERIFY.md).  Every problem is printed, naming the
 * object; the exit status is 3 when anything is wrong or a region could
 * not be checked, 0 otherwise.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "mapread.h"
#include "repo.h"
#include "stor.h"
#include "verify.h"

static json_t *report_json(const struct region_conf *rc, const struct vfy_report *r, const struct err *fail,
                           int full)
{
    json_t *jp = json_array(), *jn = json_array(), *jr;
    size_t i;

    if (jp == NULL || jn == NULL) {
        json_decref(jp);
        json_decref(jn);
        return NULL;
    }
    for (i = 0; r && i < r->n; i++)
        json_array_append_new(jp, json_pack("{s:o, s:o}", "object", cmd_json_str(r->v[i].object), "message",
                                            cmd_json_str(r->v[i].msg)));
    for (i = 0; r && i < r->nnotes; i++)
        json_array_append_new(jn, json_pack("{s:o, s:o}", "object", cmd_json_str(r->notes[i].object), "message",
                                            cmd_json_str(r->notes[i].msg)));
    jr = json_pack("{s:s, s:o, s:b, s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "region", rc->name,
                   "url", cmd_json_str(rc->url), "ok", fail == NULL && r->n == 0, "full", full, "error",
                   cmd_json_str(fail ? fail->msg : NULL),
                   "backups", (json_int_t)r->backups, "incomplete_backups", (json_int_t)r->incomplete,
                   "parts", (json_int_t)r->parts, "wal_segments", (json_int_t)r->wal_segments,
                   "wal_segments_needed", (json_int_t)r->wal_needed, "objects_decoded",
                   (json_int_t)r->objects_decoded, "bytes_decoded", (json_int_t)r->bytes_decoded,
                   "files_checked", (json_int_t)r->files_checked, "problems", jp);
    if (jr != NULL)
        json_object_set_new(jr, "notes", jn);
    else
        json_decref(jn);
    return jr;
}

static void report_text(const struct region_conf *rc, const struct vfy_report *r, const struct err *fail, int full)
{
    size_t i;

    printf("region %s (%s): ", rc->name, rc->url);
    if (fail != NULL) {
        printf("COULD NOT VERIFY: %s\n", cmd_line(fail->msg));
        return;
    }
    printf("%s\n", r->n ? "PROBLEMS" : "OK");
    printf("  %" PRIu64 " backup%s (%" PRIu64 " parts), %" PRIu64 " WAL segments archived, %" PRIu64
           " needed by the backups", r->backups, r->backups == 1 ? "" : "s", r->parts, r->wal_segments,
           r->wal_needed);
    if (r->incomplete)
        printf(", %" PRIu64 " incomplete backup%s not checked", r->incomplete, r->incomplete == 1 ? "" : "s");
    printf("\n");
    if (full)
        printf("  --full: %" PRIu64 " objects decoded and authenticated (%" PRIu64 " bytes), %" PRIu64
               " files' SHA-256 checked\n", r->objects_decoded, r->bytes_decoded, r->files_checked);
    for (i = 0; i < r->n; i++)
        printf("  PROBLEM %s: %s\n", cmd_line(r->v[i].object), cmd_line(r->v[i].msg));
    for (i = 0; i < r->nnotes; i++)
        printf("  NOTE %s: %s\n", cmd_line(r->notes[i].object), cmd_line(r->notes[i].msg));
}

/* With every region verified on its own: the regions against each other
 * (verify_cross.c).  1 when they disagree or could not be compared. */
static int cross_check(struct repo *const *rs, size_t n, int full, json_t *jall)
{
    struct vfy_report r;
    struct err e = ERR_INIT;
    int failed;
    size_t i;

    memset(&r, 0, sizeof r);
    failed = vfy_cross_regions(rs, n, full, &r, &e) < 0;
    if (failed)
        log_error("the regions could not be compared: %s", e.msg);
    if (jall != NULL) {
        json_t *jp = json_array();

        for (i = 0; jp != NULL && i < r.n; i++)
            json_array_append_new(jp, json_pack("{s:o, s:o}", "object", cmd_json_str(r.v[i].object), "message",
                                                cmd_json_str(r.v[i].msg)));
        json_array_append_new(jall, json_pack("{s:b, s:b, s:o, s:I, s:I, s:o}", "across_regions", 1, "ok",
                                              !failed && r.n == 0, "error", cmd_json_str(failed ? e.msg : NULL),
                                              "wal_files_in_common", (json_int_t)r.wal_segments,
                                              "copies_compared", (json_int_t)r.files_checked, "problems", jp));
    } else {
        printf("across regions: %s\n", failed ? "COULD NOT COMPARE" : r.n ? "PROBLEMS" : "OK");
        printf("  %" PRIu64 " WAL files held by two regions, %" PRIu64 " copies decoded and compared (%s)\n",
               r.wal_segments, r.files_checked, full ? "--full: all of them" : "those whose stored sizes differ");
        for (i = 0; i < r.n; i++)
            printf("  PROBLEM %s: %s\n", cmd_line(r.v[i].object), cmd_line(r.v[i].msg));
    }
    failed |= r.n != 0;
    vfy_report_free(&r);
    return failed;
}

int cmd_verify_run(struct cmd_ctx *ctx)
{
    struct keyring *kr = NULL;
    struct err e = ERR_INIT;
    json_t *jall = NULL;
    struct repo **ok_rs;
    size_t nok = 0;
    int i, full = 0, json = 0, bad = 0;

    (void)mapread_install();    /* before any thread: file:// objects read from a mapping (mapread.h) */
    for (i = 1; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--full") == 0)
            full = 1;
        else if (strcmp(ctx->argv[i], "--json") == 0)
            json = 1;
        else if (ctx->argv[i][0] == '-')
            return cmd_usage("verify", "unknown option \"%s\"", ctx->argv[i]);
        else
            return cmd_usage("verify", "takes no arguments (\"%s\")", ctx->argv[i]);
    }
    if (config_require_regions(ctx->conf, &e) < 0)
        return cmd_fail(&e);
    if (cmd_load_keyring(ctx, &kr, &e) < 0)
        return cmd_fail(&e);
    ok_rs = calloc((size_t)ctx->conf->nregions + 1, sizeof *ok_rs);
    if (ok_rs == NULL || (json && (jall = json_array()) == NULL)) {
        free(ok_rs);
        keys_free(kr);
        err_setf(&e, ERR_NOMEM, "out of memory");
        return cmd_fail(&e);
    }
    for (i = 0; i < ctx->conf->nregions; i++) {
        const struct region_conf *rc = &ctx->conf->regions[i];
        struct vfy_report r;
        struct repo *s = NULL;
        struct err re = ERR_INIT;
        int failed;

        if (ctx->region != NULL && strcmp(ctx->region, rc->name) != 0)
            continue;
        memset(&r, 0, sizeof r);
        failed = cmd_repo_open(ctx, rc, kr, REPO_OPEN_IDENTITY, &s, &re) < 0 || vfy_region(s, full, &r, &re) < 0;
        if (failed)
            log_error("%s", re.msg);
        if (failed || r.n)
            bad++;
        if (json)
            json_array_append_new(jall, report_json(rc, &r, failed ? &re : NULL, full));
        else
            report_text(rc, &r, failed ? &re : NULL, full);
        vfy_report_free(&r);
        if (!failed)
            ok_rs[nok++] = s;
        else
            repo_free(s);
    }
    if (nok > 1)
        bad += cross_check(ok_rs, nok, full, jall);
    while (nok > 0)
        repo_free(ok_rs[--nok]);
    free(ok_rs);
    if (json) {
        char *text = json_dumps(jall, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        if (text == NULL) {
            log_error("out of memory");
            bad++;
        } else {
            printf("%s\n", text);
            free(text);
        }
        json_decref(jall);
    }
    fflush(stdout);
    keys_free(kr);
    return bad ? EXIT_FAILURE3 : 0;
}
