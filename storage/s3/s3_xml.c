/* s3_xml — S3 REST XML with libxml2: parse answers, build request bodies. */
#include "s3.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_dl.h"

#include "util.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* Parse without network access, entity expansion or printing. */
static xmlDocPtr parse(const void *buf, size_t len, const char *what, struct err *e)
{
    xmlParserCtxtPtr ctx;
    xmlDocPtr doc;

    if (s3_dl_load(e) < 0)
        return NULL;
    if (buf == NULL || len == 0) {
        err_setf(e, ERR_HTTP, "empty answer where %s XML was expected", what);
        return NULL;
    }
    if (len > INT32_MAX) {
        err_setf(e, ERR_HTTP, "%s XML answer too large", what);
        return NULL;
    }
    ctx = xmlNewParserCtxt();
    if (ctx == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory parsing %s XML", what);
        return NULL;
    }
    doc = xmlCtxtReadMemory(ctx, buf, (int)len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL) {
        const xmlError *xe = xmlCtxtGetLastError(ctx);
        char msg[200] = "not well-formed";
        size_t n;

        if (xe != NULL && xe->message != NULL) {
            strlcopy(msg, xe->message, sizeof msg);
            n = strlen(msg);
            while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                msg[--n] = '\0';
        }
        err_setf(e, ERR_HTTP, "malformed %s XML in the answer: %s (line %d)", what, msg,
                 xe != NULL ? xe->line : 0);
    } else if (xmlDocGetRootElement(doc) == NULL || doc->intSubset != NULL || doc->extSubset != NULL) {
        /* a DOCTYPE: S3 never sends one, and reading a text would expand an
         * internal entity and drop an external one (a key read as another) */
        err_setf(e, ERR_HTTP, "malformed %s XML in the answer: %s", what, xmlDocGetRootElement(doc) == NULL ?
                 "no root element" : "it has a DOCTYPE (entity declarations), which S3 never sends");
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(ctx);
    return doc;
}

static int is_elem(const xmlNode *n, const char *name)
{
    return n != NULL && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(const xmlNode *n, const char *name)
{
    xmlNodePtr c;

    for (c = n->children; c != NULL; c = c->next)
        if (is_elem(c, name))
            return c;
    return NULL;
}

/* Text of child `name` copied into dst; 0 if present, -1 if absent. */
static int child_text(const xmlNode *n, const char *name, char *dst, size_t cap)
{
    xmlNodePtr c = child(n, name);
    xmlChar *t;

    dst[0] = '\0';
    if (c == NULL)
        return -1;
    t = xmlNodeGetContent(c);
    if (t == NULL)
        return -1;
    strlcopy(dst, (const char *)t, cap);
    xmlFree(t);
    return 0;
}

/* Text of child `name` malloc'd (NULL if absent or out of memory; *oom set). */
static char *child_dup(const xmlNode *n, const char *name, int *oom)
{
    xmlNodePtr c = child(n, name);
    xmlChar *t;
    char *s;

    if (c == NULL)
        return NULL;
    t = xmlNodeGetContent(c);
    if (t == NULL) {
        *oom = 1;
        return NULL;
    }
    s = strdup((const char *)t);
    xmlFree(t);
    if (s == NULL)
        *oom = 1;
    return s;
}

static void strip_quotes(char *s)
{
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
}

int s3_parse_iso8601(const char *s, time_t *out)
{
    struct tm tm;
    const char *rest;
    long off = 0;

    memset(&tm, 0, sizeof tm);
    rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return -1;
    if (*rest == '.')
        rest += 1 + strspn(rest + 1, "0123456789");     /* fractions of a second */
    /* "Z", nothing, or an offset: credential_process answers from
     * `aws configure export-credentials` end in "+00:00" (isoformat) */
    if ((*rest == '+' || *rest == '-') && isdigit((unsigned char)rest[1]) && isdigit((unsigned char)rest[2])) {
        int hh = (rest[1] - '0') * 10 + (rest[2] - '0'), mm = 0, k = rest[3] == ':' ? 4 : 3;

        if (isdigit((unsigned char)rest[k]) && isdigit((unsigned char)rest[k + 1]))
            mm = (rest[k] - '0') * 10 + (rest[k + 1] - '0');
        else if (rest[3] != '\0')
            return -1;
        if (hh > 23 || mm > 59 || (rest[3] != '\0' && rest[k + 2] != '\0'))
            return -1;
        off = (rest[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    } else if (!(rest[0] == 'Z' && rest[1] == '\0') && *rest != '\0') {
        return -1;
    }
    *out = timegm(&tm) - off;
    return 0;
}

static void error_from_node(const xmlNode *root, struct s3_error *er)
{
    child_text(root, "Code", er->code, sizeof er->code);
    child_text(root, "Message", er->message, sizeof er->message);
    child_text(root, "RequestId", er->request_id, sizeof er->request_id);
    child_text(root, "Region", er->region, sizeof er->region);
}

int s3_xml_parse_error(const void *buf, size_t len, struct s3_error *er)
{
    struct err tmp = ERR_INIT;
    xmlDocPtr doc;
    xmlNodePtr root;
    int rc = -1;

    memset(er, 0, sizeof *er);
    doc = parse(buf, len, "error", &tmp);
    if (doc == NULL)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (is_elem(root, "Error")) {
        error_from_node(root, er);
        rc = 0;
    }
    xmlFreeDoc(doc);
    return rc;
}

void s3_list_page_clear(struct s3_list_page *pg)
{
    size_t i;

    for (i = 0; i < pg->n; i++)
        free(pg->ents[i].key);
    free(pg->ents);
    free(pg->next_token);
    memset(pg, 0, sizeof *pg);
}

int s3_xml_parse_list(const void *buf, size_t len, struct s3_list_page *pg, struct err *e)
{
    xmlDocPtr doc;
    xmlNodePtr root, c;
    size_t cap = 0;
    char tmp[128];
    int oom = 0, rc = -1;

    memset(pg, 0, sizeof *pg);
    doc = parse(buf, len, "ListObjectsV2", e);
    if (doc == NULL)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "ListBucketResult")) {
        err_setf(e, ERR_HTTP, "unexpected <%s> where ListBucketResult was expected", (const char *)root->name);
        goto out;
    }
    if (child_text(root, "IsTruncated", tmp, sizeof tmp) == 0)
        pg->truncated = strcmp(tmp, "true") == 0;
    pg->next_token = child_dup(root, "NextContinuationToken", &oom);
    for (c = root->children; c != NULL && !oom; c = c->next) {
        struct s3_list_entry *ent;
        struct err ne = ERR_INIT;

        if (!is_elem(c, "Contents"))
            continue;
        if (pg->n == cap) {
            struct s3_list_entry *ne2;

            cap = cap ? cap * 2 : 64;
            ne2 = realloc(pg->ents, cap * sizeof *ne2);
            if (ne2 == NULL) {
                oom = 1;
                break;
            }
            pg->ents = ne2;
        }
        ent = &pg->ents[pg->n];
        memset(ent, 0, sizeof *ent);
        ent->key = child_dup(c, "Key", &oom);
        if (oom)
            break;
        if (ent->key == NULL) {
            err_setf(e, ERR_HTTP, "ListObjectsV2 answer has a <Contents> without <Key>");
            goto out;
        }
        pg->n++;
        if (child_text(c, "Size", tmp, sizeof tmp) < 0 || parse_u64(tmp, 0, UINT64_MAX, &ent->size, &ne) < 0) {
            err_setf(e, ERR_HTTP, "ListObjectsV2 answer has a bad <Size> for \"%s\"", ent->key);
            goto out;
        }
        if (child_text(c, "LastModified", tmp, sizeof tmp) == 0 && s3_parse_iso8601(tmp, &ent->mtime) < 0) {
            err_setf(e, ERR_HTTP, "ListObjectsV2 answer has a bad <LastModified> \"%s\" for \"%s\"", tmp,
                     ent->key);
            goto out;
        }
        child_text(c, "ETag", ent->etag, sizeof ent->etag);
        strip_quotes(ent->etag);
    }
    if (oom) {
        err_setf(e, ERR_NOMEM, "out of memory reading a ListObjectsV2 answer");
        goto out;
    }
    if (pg->truncated && (pg->next_token == NULL || pg->next_token[0] == '\0')) {
        err_setf(e, ERR_HTTP, "ListObjectsV2 answer is truncated but has no NextContinuationToken");
        goto out;
    }
    rc = 0;
out:
    xmlFreeDoc(doc);
    if (rc < 0)
        s3_list_page_clear(pg);
    return rc;
}

void s3_uploads_page_clear(struct s3_uploads_page *pg)
{
    size_t i;

    for (i = 0; i < pg->n; i++) {
        free(pg->ents[i].key);
        free(pg->ents[i].upload_id);
    }
    free(pg->ents);
    free(pg->next_key);
    free(pg->next_upload_id);
    memset(pg, 0, sizeof *pg);
}

int s3_xml_parse_uploads(const void *buf, size_t len, struct s3_uploads_page *pg, struct err *e)
{
    xmlDocPtr doc;
    xmlNodePtr root, c;
    size_t cap = 0;
    char tmp[128];
    int oom = 0, rc = -1;

    memset(pg, 0, sizeof *pg);
    doc = parse(buf, len, "ListMultipartUploads", e);
    if (doc == NULL)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "ListMultipartUploadsResult")) {
        err_setf(e, ERR_HTTP, "unexpected <%s> where ListMultipartUploadsResult was expected",
                 (const char *)root->name);
        goto out;
    }
    if (child_text(root, "IsTruncated", tmp, sizeof tmp) == 0)
        pg->truncated = strcmp(tmp, "true") == 0;
    pg->next_key = child_dup(root, "NextKeyMarker", &oom);
    pg->next_upload_id = child_dup(root, "NextUploadIdMarker", &oom);
    for (c = root->children; c != NULL && !oom; c = c->next) {
        struct s3_upload_entry *ent;

        if (!is_elem(c, "Upload"))
            continue;
        if (array_reserve(&pg->ents, &cap, pg->n + 1, sizeof *pg->ents) < 0) {
            oom = 1;
            break;
        }
        ent = &pg->ents[pg->n];
        memset(ent, 0, sizeof *ent);
        ent->key = child_dup(c, "Key", &oom);
        ent->upload_id = child_dup(c, "UploadId", &oom);
        if (oom)
            break;
        pg->n++;
        if (ent->key == NULL || ent->upload_id == NULL || child_text(c, "Initiated", tmp, sizeof tmp) < 0 ||
            s3_parse_iso8601(tmp, &ent->initiated) < 0) {
            err_setf(e, ERR_HTTP, "ListMultipartUploads answer has an <Upload> without Key, UploadId or a "
                     "readable Initiated");
            goto out;
        }
    }
    if (oom) {
        err_setf(e, ERR_NOMEM, "out of memory reading a ListMultipartUploads answer");
        goto out;
    }
    if (pg->truncated && (pg->next_key == NULL || pg->next_key[0] == '\0')) {
        err_setf(e, ERR_HTTP, "ListMultipartUploads answer is truncated but has no NextKeyMarker");
        goto out;
    }
    rc = 0;
out:
    xmlFreeDoc(doc);
    if (rc < 0)
        s3_uploads_page_clear(pg);
    return rc;
}

int s3_xml_parse_upload_id(const void *buf, size_t len, char **upload_id, struct err *e)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    int oom = 0, rc = -1;

    *upload_id = NULL;
    doc = parse(buf, len, "InitiateMultipartUploadResult", e);
    if (doc == NULL)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "InitiateMultipartUploadResult")) {
        err_setf(e, ERR_HTTP, "unexpected <%s> where InitiateMultipartUploadResult was expected",
                 (const char *)root->name);
        goto out;
    }
    *upload_id = child_dup(root, "UploadId", &oom);
    if (oom) {
        err_setf(e, ERR_NOMEM, "out of memory reading an upload id");
        goto out;
    }
    if (*upload_id == NULL || (*upload_id)[0] == '\0') {
        free(*upload_id);
        *upload_id = NULL;
        err_setf(e, ERR_HTTP, "InitiateMultipartUploadResult without an UploadId");
        goto out;
    }
    rc = 0;
out:
    xmlFreeDoc(doc);
    return rc;
}

int s3_xml_parse_result(const void *buf, size_t len, const char *root_name, struct s3_error *er,
                        struct err *e)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    int rc = -1;

    memset(er, 0, sizeof *er);
    doc = parse(buf, len, root_name, e);
    if (doc == NULL)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (is_elem(root, root_name)) {
        rc = 0;
    } else if (is_elem(root, "Error")) {
        error_from_node(root, er);
        rc = 1;
    } else {
        err_setf(e, ERR_HTTP, "unexpected <%s> where %s was expected", (const char *)root->name, root_name);
    }
    xmlFreeDoc(doc);
    return rc;
}

void s3_delete_errors_free(struct s3_delete_error *errs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(errs[i].key);
    free(errs);
}

int s3_xml_parse_delete(const void *buf, size_t len, struct s3_delete_error **errs, size_t *n, struct err *e)
{
    xmlDocPtr doc;
    xmlNodePtr root, c;
    struct s3_delete_error *v = NULL;
    size_t nv = 0, cap = 0;
    int oom = 0, rc = -1;

    *errs = NULL;
    *n = 0;
    doc = parse(buf, len, "DeleteResult", e);
    if (doc == NULL)
        return -1;
    root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "DeleteResult")) {
        err_setf(e, ERR_HTTP, "unexpected <%s> where DeleteResult was expected", (const char *)root->name);
        goto out;
    }
    for (c = root->children; c != NULL; c = c->next) {
        if (!is_elem(c, "Error"))
            continue;
        if (nv == cap) {
            struct s3_delete_error *nv2;

            cap = cap ? cap * 2 : 8;
            nv2 = realloc(v, cap * sizeof *nv2);
            if (nv2 == NULL) {
                oom = 1;
                break;
            }
            v = nv2;
        }
        memset(&v[nv], 0, sizeof v[nv]);
        v[nv].key = child_dup(c, "Key", &oom);
        child_text(c, "Code", v[nv].code, sizeof v[nv].code);
        child_text(c, "Message", v[nv].message, sizeof v[nv].message);
        nv++;
        if (oom)
            break;
    }
    if (oom) {
        err_setf(e, ERR_NOMEM, "out of memory reading a DeleteResult");
        goto out;
    }
    *errs = v;
    *n = nv;
    v = NULL;
    nv = 0;
    rc = 0;
out:
    s3_delete_errors_free(v, nv);
    xmlFreeDoc(doc);
    return rc;
}

/* ---- building ---- */

struct wr {
    xmlBufferPtr buf;
    xmlTextWriterPtr w;
    int bad;
};

static int wr_open(struct wr *w, const char *root)
{
    memset(w, 0, sizeof *w);
    w->buf = xmlBufferCreate();
    if (w->buf == NULL)
        return -1;
    w->w = xmlNewTextWriterMemory(w->buf, 0);
    if (w->w == NULL)
        return -1;
    if (xmlTextWriterStartDocument(w->w, NULL, "UTF-8", NULL) < 0 ||
        xmlTextWriterStartElementNS(w->w, NULL, BAD_CAST root, BAD_CAST S3_NS) < 0)
        w->bad = 1;
    return w->bad ? -1 : 0;
}

static void wr_elem(struct wr *w, const char *name, const char *text)
{
    if (!w->bad && xmlTextWriterWriteElement(w->w, BAD_CAST name, BAD_CAST text) < 0)
        w->bad = 1;
}

static void wr_start(struct wr *w, const char *name)
{
    if (!w->bad && xmlTextWriterStartElement(w->w, BAD_CAST name) < 0)
        w->bad = 1;
}

static void wr_end(struct wr *w)
{
    if (!w->bad && xmlTextWriterEndElement(w->w) < 0)
        w->bad = 1;
}

/* Finish and hand over the text; frees the writer either way. */
static int wr_close(struct wr *w, char **out, size_t *len, const char *what, struct err *e)
{
    int rc = -1;

    if (w->w != NULL) {
        if (!w->bad && xmlTextWriterEndDocument(w->w) < 0)
            w->bad = 1;
        xmlFreeTextWriter(w->w);    /* flushes into buf */
    }
    if (w->buf == NULL || w->w == NULL || w->bad) {
        err_setf(e, ERR_NOMEM, "could not build the %s XML body", what);
        goto out;
    }
    *len = (size_t)xmlBufferLength(w->buf);
    *out = malloc(*len + 1);
    if (*out == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory building the %s XML body", what);
        goto out;
    }
    memcpy(*out, xmlBufferContent(w->buf), *len);
    (*out)[*len] = '\0';
    rc = 0;
out:
    if (w->buf != NULL)
        xmlBufferFree(w->buf);
    return rc;
}

int s3_xml_build_complete(const struct s3_part *parts, size_t n, char **out, size_t *len, struct err *e)
{
    struct wr w;
    size_t i;
    char num[16];

    *out = NULL;
    if (s3_dl_load(e) < 0)
        return -1;
    if (wr_open(&w, "CompleteMultipartUpload") == 0) {
        for (i = 0; i < n; i++) {
            snprintf(num, sizeof num, "%d", parts[i].number);
            wr_start(&w, "Part");
            wr_elem(&w, "PartNumber", num);
            wr_elem(&w, "ETag", parts[i].etag);
            if (parts[i].checksum[0] != '\0')
                wr_elem(&w, "ChecksumSHA256", parts[i].checksum);
            wr_end(&w);
        }
    }
    return wr_close(&w, out, len, "CompleteMultipartUpload", e);
}

int s3_xml_build_delete(const char *prefix, const char *const *keys, size_t n, int quiet, char **out,
                        size_t *len, struct err *e)
{
    struct wr w;
    size_t i;

    *out = NULL;
    if (s3_dl_load(e) < 0)
        return -1;
    if (wr_open(&w, "Delete") == 0) {
        if (quiet)
            wr_elem(&w, "Quiet", "true");
        for (i = 0; i < n && !w.bad; i++) {
            char *full = (prefix != NULL && prefix[0] != '\0') ? xasprintf("%s/%s", prefix, keys[i])
                                                                : strdup(keys[i]);
            if (full == NULL) {
                w.bad = 1;
                break;
            }
            wr_start(&w, "Object");
            wr_elem(&w, "Key", full);
            wr_end(&w);
            free(full);
        }
    }
    return wr_close(&w, out, len, "Delete", e);
}

int s3_xml_build_create_bucket(const char *region, char **out, size_t *len, struct err *e)
{
    struct wr w;

    *out = NULL;
    if (s3_dl_load(e) < 0)
        return -1;
    if (wr_open(&w, "CreateBucketConfiguration") == 0)
        wr_elem(&w, "LocationConstraint", region);
    return wr_close(&w, out, len, "CreateBucketConfiguration", e);
}
