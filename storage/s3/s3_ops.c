/* s3_ops — the small operations of the s3:// driver: head, list, remove,
 * remove_many, and bucket creation for tests. */
#include "s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* ---- head ---- */

int s3_head(struct stor *st, const char *key, struct stor_stat *out, struct err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct s3_req r, probe;
    int rc = -1, tries = 0;

    memset(out, 0, sizeof *out);
again:
    if (s3_req_init(&r, s, "HEAD", key, NULL, e) < 0)
        return -1;
    if (s3_req_run(&r, e) < 0) {
        s3_fail(s, &r, "stat", "in", e);
        goto out;
    }
    if (r.x.status == 200) {
        if (r.x.content_length < 0) {
            err_setf(e, ERR_HTTP, "could not stat \"%s\" in region %s (bucket %s): answer without Content-Length",
                     key, st->region, s->bucket);
            goto out;
        }
        out->size = (uint64_t)r.x.content_length;
        out->mtime = r.x.last_modified[0] ? curl_getdate(r.x.last_modified, NULL) : 0;
        if (out->mtime < 0)
            out->mtime = 0;
        strlcopy(out->etag, r.x.etag[0] == '"' ? r.x.etag + 1 : r.x.etag, sizeof out->etag);
        if (out->etag[0] != '\0' && out->etag[strlen(out->etag) - 1] == '"')
            out->etag[strlen(out->etag) - 1] = '\0';
        rc = 0;
        goto out;
    }
    if (r.x.status >= 400 && r.x.status < 500) {
        /* A HEAD answer has no body, so "no such key" and "no such bucket",
         * "access denied" and "signature does not match", or a wrong region
         * look alike; a 1-byte GET tells them apart, and its answer is the
         * verdict (a HEAD's bodiless 404 alone is no definite "not found").
         * Saying "not found" for a missing bucket would let wal-fetch end
         * recovery early. */
        if (s3_req_init(&probe, s, "GET", key, NULL, e) < 0)
            goto out;
        strlcopy(probe.range, "bytes=0-0", sizeof probe.range);
        probe.x.collect_max = 64 << 10;
        if (s3_req_run(&probe, e) == 0 && (probe.x.status == 200 || probe.x.status == 206) && tries++ < 3) {
            /* written between the two requests (the stop segment a backup
             * polls for, a segment being archived): ask again */
            s3_req_free(&probe);
            s3_req_free(&r);
            goto again;
        }
        if (probe.x.status == 200 || probe.x.status == 206)
            err_setf(e, ERR_HTTP, "could not stat \"%s\" in region %s (bucket %s): HEAD says %ld, GET finds it, "
                     "again and again", key, st->region, s->bucket, r.x.status);
        else
            s3_fail(s, &probe, "stat", "in", e);
        s3_req_free(&probe);
        goto out;
    }
    s3_fail(s, &r, "stat", "in", e);
out:
    s3_req_free(&r);
    return rc;
}

/* ---- list ---- */

/* Pages in a row that hold no key yet say there is more: S3 sends some
 * (a run of delete markers in a versioned bucket), a server that goes
 * round (a new token each time, no keys) sends them for ever. */
#define LIST_EMPTY_MAX 10000

/* S3 lists keys in byte order, each once, and every continuation token
 * leads on.  A page that hands back the token it was asked with, or whose
 * keys do not come after the last page's, or too many pages in
 * a row without a key, would make the listing go round for ever (or hand out
 * keys twice): refuse it.  *last keeps the last key seen so far
 * (malloc'd), *empty counts the keyless pages in a row. */
static int list_progress(const struct s3_list_page *pg, const char *asked, char **last, int *empty,
                         struct err *e)
{
    *empty = pg->n > 0 ? 0 : *empty + 1;
    if (pg->truncated && *empty >= LIST_EMPTY_MAX)
        return err_setf(e, ERR_HTTP, "%d ListObjectsV2 pages in a row without a key say there is more (a "
                        "continuation token that loops?)", *empty);
    if (pg->n > 0) {
        if (*last != NULL && strcmp(pg->ents[0].key, *last) <= 0)
            return err_setf(e, ERR_HTTP, "a ListObjectsV2 page starts at \"%s\", not after the previous page's "
                            "last key \"%s\" (a continuation token that loops?)", pg->ents[0].key, *last);
        free(*last);
        if ((*last = strdup(pg->ents[pg->n - 1].key)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (pg->truncated && asked != NULL && strcmp(pg->next_token, asked) == 0)
        return err_setf(e, ERR_HTTP, "a ListObjectsV2 page hands back the continuation token it was asked with");
    return 0;
}

int s3_list(struct stor *st, const char *prefix, const char *after, stor_list_fn fn, void *arg, struct err *e)
{
    struct s3 *s = (struct s3 *)st;
    char *full = NULL, *enc_prefix = NULL, *enc_after = NULL, *token = NULL, *query = NULL, *last = NULL;
    size_t plen = s->prefix[0] ? strlen(s->prefix) + 1 : 0, flen = 0;
    struct s3_list_page pg;
    struct s3_req r;
    int rc = -1, stop = 0, empty = 0;

    memset(&pg, 0, sizeof pg);
    memset(&r, 0, sizeof r);
    full = s->prefix[0] ? xasprintf("%s/%s", s->prefix, prefix ? prefix : "") : strdup(prefix ? prefix : "");
    enc_prefix = full ? sigv4_uri_encode(full, 0) : NULL;
    if (enc_prefix == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory listing region %s", st->region);
        goto out;
    }
    flen = strlen(full);
    if (after != NULL) {
        char *full_after = s->prefix[0] ? xasprintf("%s/%s", s->prefix, after) : strdup(after);

        enc_after = full_after ? sigv4_uri_encode(full_after, 0) : NULL;
        free(full_after);
        if (enc_after == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory listing region %s", st->region);
            goto out;
        }
    }
    do {
        char *enc_token = token ? sigv4_uri_encode(token, 0) : NULL;
        size_t i;

        free(query);
        query = token ? (enc_token ? xasprintf("continuation-token=%s&list-type=2&prefix=%s", enc_token, enc_prefix)
                                   : NULL)
                      : enc_after ? xasprintf("list-type=2&prefix=%s&start-after=%s", enc_prefix, enc_after)
                                  : xasprintf("list-type=2&prefix=%s", enc_prefix);
        free(enc_token);
        if (query == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory listing region %s", st->region);
            goto out;
        }
        if (s3_req_init(&r, s, "GET", NULL, query, e) < 0)
            goto out;
        r.key = prefix ? prefix : "";
        r.x.collect_max = 32u << 20;
        if (s3_req_run(&r, e) < 0 || r.x.status != 200) {
            s3_fail(s, &r, "list", "in", e);
            goto out;
        }
        if (s3_xml_parse_list(r.x.resp, r.x.resp_len, &pg, e) < 0) {
            err_prefix(e, "could not list \"%s\" in region %s (bucket %s)", prefix ? prefix : "", st->region,
                       s->bucket);
            goto out;
        }
        s3_req_free(&r);
        if (list_progress(&pg, token, &last, &empty, e) < 0) {
            err_prefix(e, "could not list \"%s\" in region %s (bucket %s)", prefix ? prefix : "", st->region,
                       s->bucket);
            goto out;
        }
        for (i = 0; i < pg.n && !stop; i++) {
            struct stor_entry ent;

            if (strncmp(pg.ents[i].key, full, flen) != 0)
                continue;   /* not under the prefix asked for: never hand it out */
            ent.key = pg.ents[i].key + plen;
            if (after != NULL && strcmp(ent.key, after) <= 0)
                continue;   /* a server that ignores start-after */
            ent.size = pg.ents[i].size;
            ent.mtime = pg.ents[i].mtime;
            stop = fn(&ent, arg) != 0;
        }
        free(token);
        token = pg.truncated ? pg.next_token : NULL;
        pg.next_token = NULL;
        s3_list_page_clear(&pg);
    } while (token != NULL && !stop);
    rc = 0;
out:
    s3_req_free(&r);
    s3_list_page_clear(&pg);
    free(full);
    free(enc_prefix);
    free(enc_after);
    free(token);
    free(query);
    free(last);
    return rc;
}

/* ---- remove ---- */

/* Did the server refuse a delete because the object is under Object Lock
 * (a retention period or a legal hold that has not ended)?  AWS answers
 * 403 AccessDenied "Access Denied because object protected by object
 * lock." (for a DELETE, or as a DeleteObjects <Error> entry); some S3
 * servers say "Object is WORM protected" with AccessDenied or
 * InvalidRequest.  Such an object is kept, not a failure (docs/S3.md). */
int s3_lock_refusal(const char *code, const char *message)
{
    char low[512];
    size_t i;

    if (strcmp(code, "AccessDenied") != 0 && strcmp(code, "InvalidRequest") != 0 &&
        strcmp(code, "ObjectLocked") != 0)
        return 0;
    for (i = 0; message[i] != '\0' && i < sizeof low - 1; i++)
        low[i] = (char)(message[i] >= 'A' && message[i] <= 'Z' ? message[i] - 'A' + 'a' : message[i]);
    low[i] = '\0';
    return strstr(low, "object lock") != NULL || strstr(low, "worm") != NULL;
}

int s3_remove(struct stor *st, const char *key, struct err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct s3_req r;
    int rc = -1;

    if (s3_req_init(&r, s, "DELETE", key, NULL, e) < 0)
        return -1;
    if (s3_req_run(&r, e) < 0) {
        s3_fail(s, &r, "remove", "in", e);
        goto out;
    }
    if (r.x.status == 200 || r.x.status == 204) {
        rc = 0;
    } else if (r.x.status == 403 || r.x.status == 400) {
        struct s3_error er;

        memset(&er, 0, sizeof er);
        if (r.x.resp_len > 0 && s3_xml_parse_error(r.x.resp, r.x.resp_len, &er) == 0 &&
            s3_lock_refusal(er.code, er.message)) {
            note(st->notes, LOG_DEBUG, "region %s: \"%s\" is kept under Object Lock (%s: %s)", st->region, key,
                 er.code, er.message);
            st->kept_locked++;
            rc = 0;
        } else {
            s3_fail(s, &r, "remove", "in", e);
        }
    } else {
        s3_fail(s, &r, "remove", "in", e);
        if (e->code == ERR_NOTFOUND)    /* NoSuchKey: already gone */
            rc = 0;
    }
out:
    s3_req_free(&r);
    if (rc == 0)
        err_clear(e);
    return rc;
}

static int remove_batch(struct s3 *s, const char *const *keys, size_t n, struct err *e)
{
    struct s3_delete_error *errs = NULL;
    struct s3_req r;
    char md5[25];
    char *body = NULL;
    size_t len = 0, nerr = 0, i, bad = 0, first = 0;
    int rc = -1;

    memset(&r, 0, sizeof r);
    if (s3_xml_build_delete(s->prefix, keys, n, 1, &body, &len, e) < 0)
        return -1;
    sigv4_md5_base64(body, len, md5);
    if (s3_req_init(&r, s, "POST", NULL, "delete", e) < 0 || s3_req_header(&r, "Content-MD5", md5, e) < 0 ||
        s3_req_header(&r, "Content-Type", "application/xml", e) < 0)
        goto out;
    s3_req_body(&r, body, len);
    r.result_root = "DeleteResult";
    r.x.collect_max = 16u << 20;
    r.x.io_timeout = s->slow_timeout;
    if (s3_req_run(&r, e) < 0 || r.x.status != 200) {
        s3_fail(s, &r, "remove keys", "in", e);
        goto out;
    }
    if (s3_xml_parse_delete(r.x.resp, r.x.resp_len, &errs, &nerr, e) < 0) {
        struct s3_error er;
        if (s3_xml_parse_error(r.x.resp, r.x.resp_len, &er) == 0) {
            s3_fail(s, &r, "remove keys", "in", e);
            goto out;
        }
        err_prefix(e, "could not remove keys in region %s (bucket %s)", s->base.region, s->bucket);
        goto out;
    }
    for (i = 0; i < nerr; i++) {
        if (strcmp(errs[i].code, "NoSuchKey") == 0)
            continue;
        if (s3_lock_refusal(errs[i].code, errs[i].message)) {
            note(s->base.notes, LOG_DEBUG, "region %s: \"%s\" is kept under Object Lock (%s: %s)", s->base.region,
                 errs[i].key ? errs[i].key : "", errs[i].code, errs[i].message);
            s->base.kept_locked++;
            continue;
        }
        if (bad++ == 0)
            first = i;
    }
    if (bad > 0) {
        size_t plen = s->prefix[0] ? strlen(s->prefix) + 1 : 0;
        const char *k = errs[first].key ? errs[first].key : "";
        enum err_code code;

        if (strlen(k) >= plen)
            k += plen;
        code = s3_code_err(errs[first].code);
        if (code == ERR_NOTFOUND)
            code = ERR_HTTP;
        err_setf(e, code, "could not remove %zu of %zu keys in region %s (bucket %s): \"%s\": %s: %s%s%s%s",
                 bad, n, s->base.region, s->bucket, k, errs[first].code, errs[first].message,
                 r.x.request_id[0] ? " (request id " : "", r.x.request_id, r.x.request_id[0] ? ")" : "");
        e->transient = s3_code_transient(errs[first].code);
        e->http_status = r.x.status;
        goto out;
    }
    rc = 0;
out:
    s3_delete_errors_free(errs, nerr);
    s3_req_free(&r);
    free(body);
    return rc;
}

int s3_remove_many(struct stor *st, const char *const *keys, size_t n, struct err *e)
{
    size_t i;

    for (i = 0; i < n; i += S3_DELETE_BATCH)
        if (remove_batch((struct s3 *)st, keys + i, n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH, e) < 0)
            return -1;
    return 0;
}

/* ---- bucket ---- */

int s3_create_bucket(struct stor *st, struct err *e)
{
    struct s3 *s = (struct s3 *)st;
    struct s3_req r;
    struct s3_error er;
    char *body = NULL;
    size_t len = 0;
    int rc = -1;

    memset(&r, 0, sizeof r);
    if (strcmp(s->aws_region, "us-east-1") != 0 &&
        s3_xml_build_create_bucket(s->aws_region, &body, &len, e) < 0)
        return -1;
    if (s3_req_init(&r, s, "PUT", NULL, NULL, e) < 0)
        goto out;
    s3_req_body(&r, body ? body : "", len);
    if (s3_req_run(&r, e) < 0) {
        s3_fail(s, &r, "create the bucket", "in", e);
        goto out;
    }
    if (r.x.status == 200 ||
        (r.x.status == 409 && s3_xml_parse_error(r.x.resp, r.x.resp_len, &er) == 0 &&
         strcmp(er.code, "BucketAlreadyOwnedByYou") == 0)) {
        rc = 0;
        goto out;
    }
    s3_fail(s, &r, "create the bucket", "in", e);
out:
    s3_req_free(&r);
    free(body);
    return rc;
}

/* ---- sweep: multipart uploads of writers that died ---- */

static int abort_one(struct s3 *s, const char *full_key, const char *upload_id, struct err *e)
{
    struct s3_req r;
    char *enc = sigv4_uri_encode(upload_id, 0), *query;
    size_t plen = s->prefix[0] ? strlen(s->prefix) + 1 : 0;
    int rc = -1;

    query = enc ? xasprintf("uploadId=%s", enc) : NULL;
    free(enc);
    if (query == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (s3_req_init(&r, s, "DELETE", full_key + plen, query, e) < 0) {
        free(query);
        return -1;
    }
    if (s3_req_run(&r, e) == 0 && (r.x.status == 204 || r.x.status == 200))
        rc = 0;
    else {
        s3_fail(s, &r, "abort the multipart upload of", "in", e);
        if (e->code == ERR_HTTP && strstr(e->msg, "NoSuchUpload") != NULL) {
            err_clear(e);   /* completed or aborted meanwhile */
            rc = 0;
        }
    }
    s3_req_free(&r);
    free(query);
    return rc;
}

int s3_sweep(struct stor *st, time_t older_than, uint64_t *removed, struct err *e)
{
    struct s3 *s = (struct s3 *)st;
    char *full = NULL, *enc_prefix = NULL, *query = NULL, *km = NULL, *um = NULL;
    size_t plen = s->prefix[0] ? strlen(s->prefix) + 1 : 0;
    time_t limit = time(NULL) - s->sweep_min_age;
    struct s3_uploads_page pg;
    struct s3_req r;
    int rc = -1, empty = 0;

    if (older_than < limit)
        limit = older_than;
    memset(&pg, 0, sizeof pg);
    memset(&r, 0, sizeof r);
    full = s->prefix[0] ? xasprintf("%s/", s->prefix) : strdup("");
    enc_prefix = full ? sigv4_uri_encode(full, 0) : NULL;
    if (enc_prefix == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    do {
        char *ekm = km ? sigv4_uri_encode(km, 0) : NULL, *eum = um ? sigv4_uri_encode(um, 0) : NULL;
        size_t i;

        free(query);
        /* the canonical query is sorted by sigv4; the order here is only text */
        query = km ? (ekm && eum ? xasprintf("key-marker=%s&prefix=%s&upload-id-marker=%s&uploads=", ekm,
                                             enc_prefix, eum)
                                 : NULL)
                   : xasprintf("prefix=%s&uploads=", enc_prefix);
        free(ekm);
        free(eum);
        if (query == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        if (s3_req_init(&r, s, "GET", NULL, query, e) < 0)
            goto out;
        r.key = "";
        r.x.collect_max = 16u << 20;
        if (s3_req_run(&r, e) < 0 || r.x.status != 200) {
            s3_fail(s, &r, "list the multipart uploads", "in", e);
            goto out;
        }
        if (s3_xml_parse_uploads(r.x.resp, r.x.resp_len, &pg, e) < 0) {
            err_prefix(e, "region %s (bucket %s)", st->region, s->bucket);
            goto out;
        }
        s3_req_free(&r);
        for (i = 0; i < pg.n; i++) {
            if (strlen(pg.ents[i].key) < plen || memcmp(pg.ents[i].key, full, plen) != 0)
                continue;   /* not under our prefix: never ours */
            if (pg.ents[i].initiated >= limit)
                continue;   /* may be a live writer's */
            if (abort_one(s, pg.ents[i].key, pg.ents[i].upload_id, e) < 0)
                goto out;
            (*removed)++;
        }
        if (pg.truncated && pg.next_key != NULL && km != NULL &&
            (strcmp(pg.next_key, km) < 0 ||
             (strcmp(pg.next_key, km) == 0 && um != NULL && pg.next_upload_id != NULL &&
              strcmp(pg.next_upload_id, um) == 0))) {
            /* markers that do not lead on would go round for ever (as a
             * looping ListObjectsV2 token would, s3_list) */
            err_setf(e, ERR_HTTP, "region %s: a ListMultipartUploads page hands back markers that do not lead on "
                     "(key \"%s\")", st->region, pg.next_key);
            goto out;
        }
        /* ... and so would a new upload-id marker with every empty page */
        empty = pg.n > 0 ? 0 : empty + 1;
        if (pg.truncated && empty >= LIST_EMPTY_MAX) {
            err_setf(e, ERR_HTTP, "region %s: %d ListMultipartUploads pages in a row without an upload say there "
                     "is more (markers that do not lead on?)", st->region, empty);
            goto out;
        }
        free(km);
        free(um);
        km = um = NULL;
        if (pg.truncated) {     /* the page's markers become the next query's */
            km = pg.next_key;
            um = pg.next_upload_id;
            pg.next_key = pg.next_upload_id = NULL;
        }
        s3_uploads_page_clear(&pg);
    } while (km != NULL);
    rc = 0;
out:
    s3_req_free(&r);
    s3_uploads_page_clear(&pg);
    free(full);
    free(enc_prefix);
    free(query);
    free(km);
    free(um);
    return rc;
}
