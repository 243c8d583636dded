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
        return s->checksum == S3_CHECKSUM_SHA256 ? add(r, "x-amz-checksum-algorithm", "SHA256", e) : 0;
    if (s->checksum == S3_CHECKSUM_SHA256) {
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

int s3_upload_verify(const struct s3_req *r, const char *what, struct err *e)
{
    const struct s3 *s = r->s3;
    char want[33], got[130];
    size_t n;

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
