/* s3_integrity — what every upload carries besides its body: an integrity
 * header (Content-MD5, or x-amz-checksum-sha256) that makes S3 verify the
 * body end to end (and that buckets with Object Lock require), the storage
 * class, and server-side encryption; and the check of what S3 answers (the
 * ETag or the checksum must be the one sent). */
#include "s3.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>

#include "log.h"
#include "note.h"
#include "util.h"

static int add(struct s3_req *r, const char *name, const char *value, struct err *e)
{
    return s3_req_header(r, name, value, e);
}

int s3_etag_opaque(const struct s3 *s)
{
    /* SSE-KMS objects have an ETag that is not the MD5 of their body */
    return s->sse != NULL && strncmp(s->sse, "aws:kms", 7) == 0;
}

static void sha256_base64(const void *buf, size_t len, char out[48])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    out[0] = '\0';
    if (EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return;
    EVP_EncodeBlock((unsigned char *)out, md, 32);
}

int s3_upload_headers(struct s3_req *r, enum s3_upload_kind kind, struct err *e)
{
    const struct s3 *s = r->s3;
    enum s3_checksum ck = (enum s3_checksum)s->checksum;   /* read once */

    if (kind != S3_UP_PART) {
        if (s->storage_class != NULL && add(r, "x-amz-storage-class", s->storage_class, e) < 0)
            return -1;
        if (s->sse != NULL && add(r, "x-amz-server-side-encryption", s->sse, e) < 0)
            return -1;
        if (s->sse_kms_key_id != NULL &&
            add(r, "x-amz-server-side-encryption-aws-kms-key-id", s->sse_kms_key_id, e) < 0)
            return -1;
        if (s->sse_bucket_key && add(r, "x-amz-server-side-encryption-bucket-key-enabled", "true", e) < 0)
            return -1;
    }
    if (kind == S3_UP_CREATE)
        return ck == S3_CHECKSUM_SHA256 ? add(r, "x-amz-checksum-algorithm", "SHA256", e) : 0;
    if (ck == S3_CHECKSUM_SHA256) {
        sha256_base64(r->x.body ? r->x.body : (const unsigned char *)"", r->x.body_len, r->checksum);
        if (r->checksum[0] == '\0')
            return err_setf(e, ERR_INTERNAL, "SHA-256 failed for %s", r->what);
        return add(r, "x-amz-checksum-sha256", r->checksum, e);
    }
    sigv4_md5_base64(r->x.body ? r->x.body : (const unsigned char *)"", r->x.body_len, r->content_md5);
    if (r->content_md5[0] == '\0')
        return err_setf(e, ERR_INTERNAL, "MD5 failed for %s", r->what);
    return add(r, "Content-MD5", r->content_md5, e);
}

/* hex of the base64 MD5 we sent */
static int md5_hex_of(const char *b64, char out[33])
{
    unsigned char md[24];
    int n = EVP_DecodeBlock(md, (const unsigned char *)b64, (int)strlen(b64)), i;

    if (n < 16)
        return -1;
    for (i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int s3_upload_verify(const struct s3_req *r, int part, struct err *e)
{
    const struct s3 *s = r->s3;
    char want[33], got[130], what[600], pn[32] = "";
    size_t n;

    if (part > 0)
        snprintf(pn, sizeof pn, "part %d of ", part);
    snprintf(what, sizeof what, "upload of %s\"%s\" to region %s (bucket %s)", pn, r->key ? r->key : "",
             s->base.region, s->bucket);

    if (r->checksum[0] != '\0') {
        if (r->x.checksum_sha256[0] != '\0' && strcmp(r->x.checksum_sha256, r->checksum) != 0)
            return err_setf(e, ERR_CORRUPT, "%s: the server stored SHA-256 %s, but the body sent has %s",
                            what, r->x.checksum_sha256, r->checksum);
        return 0;
    }
    if (r->content_md5[0] == '\0' || s3_etag_opaque(s) || md5_hex_of(r->content_md5, want) < 0)
        return 0;
    n = strlen(r->x.etag);
    if (n >= 2 && r->x.etag[0] == '"' && r->x.etag[n - 1] == '"')
        snprintf(got, sizeof got, "%.*s", (int)(n - 2), r->x.etag + 1);
    else
        snprintf(got, sizeof got, "%s", r->x.etag);
    if (strcasecmp(got, want) != 0)
        return err_setf(e, ERR_CORRUPT, "%s: the server answered ETag %s, but the MD5 of the body sent is %s",
                        what, got, want);
    return 0;
}

/* MD5 of a buffer, hex: a single PUT's ETag. */
void s3_md5_hex(const unsigned char *buf, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (EVP_Digest(buf, len, md, &n, EVP_md5(), NULL) != 1 || n != 16) {
        out[0] = '\0';
        return;
    }
    hex_encode(md, 16, out);
}

/* A multipart object's ETag: MD5 of the parts' binary MD5s, "-N"; "" when
 * a part's ETag is not an MD5 (server-side encryption with KMS). */
void s3_multipart_etag(const struct s3 *s, const struct s3_part *parts, int nparts, char *out, size_t n)
{
    unsigned char *bin = malloc((size_t)nparts * 16 + 1);
    char hex[33], etag[128];
    int i, j;

    out[0] = '\0';
    if (bin == NULL || s3_etag_opaque(s))
        goto out;
    for (i = 0; i < nparts; i++) {
        size_t l;

        snprintf(etag, sizeof etag, "%s", parts[i].etag[0] == '"' ? parts[i].etag + 1 : parts[i].etag);
        l = strlen(etag);
        if (l > 0 && etag[l - 1] == '"')
            etag[l - 1] = '\0';
        if (strlen(etag) != 32)
            goto out;
        for (j = 0; j < 16; j++) {
            unsigned v;
            if (sscanf(etag + 2 * j, "%2x", &v) != 1)
                goto out;
            bin[i * 16 + j] = (unsigned char)v;
        }
    }
    s3_md5_hex(bin, (size_t)nparts * 16, hex);
    if (hex[0] != '\0')
        snprintf(out, n, "%s-%d", hex, nparts);
out:
    free(bin);
}

void s3_composite_sha256(const struct s3_part *parts, int nparts, char *out, size_t n)
{
    unsigned char *bin = malloc((size_t)nparts * 32 + 1), raw[64], md[EVP_MAX_MD_SIZE], b64[64];
    unsigned int mdlen = 0;
    int i;

    out[0] = '\0';
    if (bin == NULL || nparts <= 0)
        goto out;
    for (i = 0; i < nparts; i++) {
        /* 44 base64 characters (one '=') decode to 33 bytes: the first 32 */
        if (strlen(parts[i].checksum) != 44 ||
            EVP_DecodeBlock(raw, (const unsigned char *)parts[i].checksum, 44) != 33)
            goto out;
        memcpy(bin + (size_t)i * 32, raw, 32);
    }
    if (EVP_Digest(bin, (size_t)nparts * 32, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        goto out;
    EVP_EncodeBlock(b64, md, 32);
    snprintf(out, n, "%s-%d", (const char *)b64, nparts);
out:
    free(bin);
}

/* Stronger than the part count alone: the size always; then the multipart
 * ETag computed from the parts' MD5s, or (SSE-KMS: opaque ETags) the
 * composite SHA-256 that S3 answers to x-amz-checksum-mode: ENABLED when
 * the parts carried x-amz-checksum-sha256.  With SSE-KMS and Content-MD5
 * only, the size and the "-N" suffix are all S3 documents (docs/S3.md). */
int s3_completed_before(struct s3 *s, const char *key, const struct s3_part *parts, int nparts, uint64_t size)
{
    struct s3_req r;
    struct err e = ERR_INIT;
    char etag[128], mine[128], tail[16];
    size_t l, t;
    int yes = 0;

    if (s3_req_init(&r, s, "HEAD", key, NULL, &e) < 0)
        return 0;
    if (nparts > 0 && parts[0].checksum[0] != '\0' && s3_req_header(&r, "x-amz-checksum-mode", "ENABLED", &e) < 0)
        goto out;
    if (s3_req_run(&r, &e) < 0 || r.x.status != 200 || r.x.content_length < 0 ||
        (uint64_t)r.x.content_length != size)
        goto out;
    strlcopy(etag, r.x.etag[0] == '"' ? r.x.etag + 1 : r.x.etag, sizeof etag);
    l = strlen(etag);
    if (l > 0 && etag[l - 1] == '"')
        etag[--l] = '\0';
    s3_multipart_etag(s, parts, nparts, mine, sizeof mine);
    if (mine[0] != '\0') {
        yes = strcmp(etag, mine) == 0;
        goto out;
    }
    s3_composite_sha256(parts, nparts, mine, sizeof mine);
    if (mine[0] != '\0' && r.x.checksum_sha256[0] != '\0') {
        yes = strcmp(r.x.checksum_sha256, mine) == 0;
        goto out;
    }
    snprintf(tail, sizeof tail, "-%d", nparts);
    t = strlen(tail);
    yes = l > t && strcmp(etag + l - t, tail) == 0;
out:
    s3_req_free(&r);
    return yes;
}

void s3_drop_part_checksums(struct s3_part *parts, int nparts)
{
    for (int i = 0; i < nparts; i++)
        parts[i].checksum[0] = '\0';
}

/* Swift's s3api (2.30) validates CompleteMultipartUpload against a schema
 * that knows only PartNumber and ETag, and checks no x-amz-checksum-*:
 * complete without the part checksums, and let it check Content-MD5 (which
 * it does) from now on. */
int s3_refused_part_checksums(struct s3 *s, const struct s3_req *r, struct s3_part *parts, int nparts, const char *key)
{
    struct s3_error er;

    if (r->x.status != 400 || nparts < 1 || parts[0].checksum[0] == '\0' ||
        s3_xml_parse_error(r->x.resp, r->x.resp_len, &er) != 0 || strcmp(er.code, "MalformedXML") != 0)
        return 0;
    note(s->base.notes, LOG_WARNING,
         "region %s: the server refused the part checksums of CompleteMultipartUpload (MalformedXML: "
         "an S3 server without x-amz-checksum-sha256, such as Swift's s3api); completing \"%s\" "
         "without them and using Content-MD5 from now on (set checksum = md5 for this region)",
         s->base.region, key);
    s->no_part_checksums = 1;
    s->checksum = S3_CHECKSUM_MD5;
    s3_drop_part_checksums(parts, nparts);
    return 1;
}
