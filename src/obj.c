#include "obj.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aead.h"
#include "util.h"
#include "zst.h"

/* Header layout (docs/FORMAT.md). */
#define H_MAGIC 0
#define H_VERSION 4
#define H_COMP 5
#define H_CIPHER 6
#define H_CHUNK 7
#define H_KEYID 8
#define H_WRAPPED 24
#define H_CHECK 64
#define WRAPPED_LEN 40              /* RFC 3394 wrap of a 32-byte key */
#define CHECK_LEN 8

static void header_check(const unsigned char *h, unsigned char out[CHECK_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];

    EVP_Digest(h, H_CHECK, md, NULL, EVP_sha256(), NULL);
    memcpy(out, md, CHECK_LEN);
}

static int all_zero(const unsigned char *p, size_t n)
{
    unsigned char acc = 0;

    while (n-- > 0)
        acc |= *p++;
    return acc == 0;
}

/* Magic and version first, from as many bytes as there are, so that a short
 * object that is not ours is named as such, not as truncated. */
static int check_prefix(const unsigned char *h, size_t len, struct err *e)
{
    size_t m = len < 4 ? len : 4;

    if (memcmp(h, OBJ_MAGIC, m) != 0)
        return err_setf(e, ERR_CORRUPT, "not a walship object (bad magic)");
    if (len > H_VERSION && h[H_VERSION] != OBJ_VERSION)
        return err_setf(e, ERR_CORRUPT, "unsupported format version %u (this walship reads version %d)",
                        h[H_VERSION], OBJ_VERSION);
    return 0;
}

int obj_peek_header(const void *buf, size_t len, struct obj_header_info *info, struct err *e)
{
    const unsigned char *h = buf;
    unsigned char check[CHECK_LEN];

    if (check_prefix(h, len, e) < 0)
        return -1;
    if (len < OBJ_HEADER_LEN)
        return err_setf(e, ERR_CORRUPT, "the object is truncated (header: %zu of %d bytes)",
                        len, OBJ_HEADER_LEN);
    header_check(h, check);
#ifdef WALSHIP_FUZZ_NO_AUTH
    memcpy(check, h + H_CHECK, CHECK_LEN);  /* fuzzing builds only: see aead.c */
#endif
    if (CRYPTO_memcmp(check, h + H_CHECK, CHECK_LEN) != 0)
        return err_setf(e, ERR_CORRUPT, "the object header is corrupt (header checksum mismatch)");
    if (h[H_COMP] > OBJ_COMP_ZSTD)
        return err_setf(e, ERR_CORRUPT, "unknown compression algorithm id %u in the object header",
                        h[H_COMP]);
    if (h[H_CIPHER] > OBJ_CIPHER_AES256GCM)
        return err_setf(e, ERR_CORRUPT, "unknown cipher id %u in the object header", h[H_CIPHER]);
    if (h[H_CHUNK] < OBJ_CHUNK_LOG2_MIN || h[H_CHUNK] > OBJ_CHUNK_LOG2_MAX)
        return err_setf(e, ERR_CORRUPT, "bad chunk size 2^%u in the object header (allowed 2^%d..2^%d)",
                        h[H_CHUNK], OBJ_CHUNK_LOG2_MIN, OBJ_CHUNK_LOG2_MAX);
    if (h[H_CIPHER] == OBJ_CIPHER_NONE && !all_zero(h + H_KEYID, H_CHECK - H_KEYID))
        return err_setf(e, ERR_CORRUPT, "the object header is corrupt (key fields set without a cipher)");
    memset(info, 0, sizeof *info);
    info->version = h[H_VERSION];
    info->compression = h[H_COMP];
    info->cipher = h[H_CIPHER];
    info->chunk_size = (size_t)1 << h[H_CHUNK];
    if (info->cipher != OBJ_CIPHER_NONE) {
        memcpy(info->key_id, h + H_KEYID, KEYS_ID_LEN);
        hex_encode(info->key_id, KEYS_ID_LEN, info->key_id_hex);
    }
    return 0;
}

/* RFC 3394 key wrap (AES-256) of a 32-byte data key; enc = 0 unwraps and
 * fails if the integrity check value does not match. */
static int key_wrap(const unsigned char *kek, const unsigned char *in, unsigned char *out, int enc)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0, l2 = 0, inlen = enc ? KEYS_LEN : WRAPPED_LEN, want = enc ? WRAPPED_LEN : KEYS_LEN;
    int ok;

    if (c == NULL)
        return -1;
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    ok = EVP_CipherInit_ex(c, EVP_aes_256_wrap(), NULL, kek, NULL, enc) == 1
        && EVP_CipherUpdate(c, out, &l, in, inlen) == 1 && l == want
        && EVP_CipherFinal_ex(c, out + l, &l2) == 1 && l2 == 0;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

/* ---- encoder ---- */

int obj_encoder_new(struct sink *next, const struct obj_opts *o, struct sink **out, struct err *e)
{
    const struct keys_key *k = keys_current(o->kr);
    unsigned char h[OBJ_HEADER_LEN];
    unsigned char dk[KEYS_LEN];
    unsigned chunk_log2 = o->chunk_log2 ? o->chunk_log2 : OBJ_CHUNK_LOG2_DEFAULT;
    struct sink *a = NULL, *z = NULL;
    int workers = 0, rc = -1;

    if (o->level != 0 && (o->level < ZST_LEVEL_MIN || o->level > ZST_LEVEL_MAX))
        return err_setf(e, ERR_CONFIG, "zstd level %d is out of range %d..%d",
                        o->level, ZST_LEVEL_MIN, ZST_LEVEL_MAX);
    if (chunk_log2 < OBJ_CHUNK_LOG2_MIN || chunk_log2 > OBJ_CHUNK_LOG2_MAX)
        return err_setf(e, ERR_INTERNAL, "chunk size 2^%u out of range", chunk_log2);
    memset(h, 0, sizeof h);
    memcpy(h + H_MAGIC, OBJ_MAGIC, 4);
    h[H_VERSION] = OBJ_VERSION;
    h[H_COMP] = o->level > 0 ? OBJ_COMP_ZSTD : OBJ_COMP_NONE;
    h[H_CIPHER] = k != NULL ? OBJ_CIPHER_AES256GCM : OBJ_CIPHER_NONE;
    h[H_CHUNK] = (unsigned char)chunk_log2;
    if (k != NULL) {
        if (RAND_bytes(dk, sizeof dk) != 1)
            return err_setf(e, ERR_INTERNAL, "could not get random bytes for a data key");
        memcpy(h + H_KEYID, k->id, KEYS_ID_LEN);
        if (key_wrap(k->key, dk, h + H_WRAPPED, 1) < 0) {
            err_setf(e, ERR_INTERNAL, "could not wrap the data key with key id %s", k->id_hex);
            goto out;
        }
    }
    header_check(h, h + H_CHECK);

    if (aead_encrypt_new(next, k != NULL ? dk : NULL, h, sizeof h, (size_t)1 << chunk_log2, &a, e) < 0)
        goto out;
    if (o->level > 0) {
        if (o->workers > 0 && (o->size_hint == 0 || o->size_hint >= OBJ_MT_MIN_SIZE))
            workers = o->workers;
        if (zst_compress_new(a, o->level, workers, &z, e) < 0) {
            a->next = NULL;     /* `next` stays the caller's */
            sink_free(a);
            goto out;
        }
        a = z;
    }
    *out = a;
    rc = 0;
out:
    OPENSSL_cleanse(dk, sizeof dk);
    return rc;
}

/* ---- decoder ---- */

struct obj_dec {
    struct sink base;           /* next: the caller's sink until the header is in,
                                   then the chunk stage that leads to it */
    const struct keyring *kr;
    unsigned flags;
    unsigned char h[OBJ_HEADER_LEN];
    size_t hfill;
    int ready, failed;
};

static int dec_start(struct obj_dec *d, struct err *e)
{
    struct obj_header_info info;
    const struct keys_key *k = NULL;
    unsigned char dk[KEYS_LEN];
    struct sink *chain = d->base.next, *s;
    int rc = -1;

    if (obj_peek_header(d->h, sizeof d->h, &info, e) < 0)
        return -1;
    if (info.cipher != OBJ_CIPHER_NONE) {
        k = keys_find(d->kr, info.key_id);
        if (k == NULL) {
            if (keys_count(d->kr) == 0)
                return err_setf(e, ERR_KEY, "the object is encrypted (key id %s) but no key_file "
                                "is configured", info.key_id_hex);
            return err_setf(e, ERR_KEY, "the object was encrypted with key id %s, which is not among "
                            "the configured keys (key_file, old_key_files)", info.key_id_hex);
        }
        /* The id matched, so only a damaged or forged header fails here. */
        if (key_wrap(k->key, d->h + H_WRAPPED, dk, 0) < 0)
            return err_setf(e, ERR_CORRUPT, "could not unwrap the data key with key id %s: the object "
                            "header is corrupt or was tampered with", info.key_id_hex);
    } else if (keys_count(d->kr) > 0 && !(d->flags & OBJ_DEC_ALLOW_UNENCRYPTED)) {
        return err_setf(e, ERR_KEY, "the object is not encrypted, but encryption keys are configured: "
                        "refusing an unauthenticated object");
    }
    if (info.compression == OBJ_COMP_ZSTD) {
        if (zst_decompress_new(chain, &s, e) < 0)
            goto out;
        chain = d->base.next = s;
    }
    /* From here on d->base.next owns the caller's sink, whatever happens. */
    if (aead_decrypt_new(chain, k != NULL ? dk : NULL, d->h, sizeof d->h, info.chunk_size, &s, e) < 0)
        goto out;
    d->base.next = s;
    d->ready = 1;
    rc = 0;
out:
    OPENSSL_cleanse(dk, sizeof dk);
    return rc;
}

static int dec_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct obj_dec *d = (struct obj_dec *)s;
    const unsigned char *in = buf;

    if (d->failed)
        return err_setf(e, ERR_INTERNAL, "write to a failed decoder");
    if (!d->ready) {
        size_t k = sizeof d->h - d->hfill;

        if (k > len)
            k = len;
        memcpy(d->h + d->hfill, in, k);
        d->hfill += k;
        in += k;
        len -= k;
        if (d->hfill < sizeof d->h) {
            if (check_prefix(d->h, d->hfill, e) < 0)
                goto fail;
            return 0;
        }
        if (dec_start(d, e) < 0)
            goto fail;
    }
    if (sink_write(s->next, in, len, e) < 0)
        goto fail;
    return 0;
fail:
    d->failed = 1;
    return -1;
}

static int dec_close(struct sink *s, struct err *e)
{
    struct obj_dec *d = (struct obj_dec *)s;

    if (d->failed)
        return err_setf(e, ERR_INTERNAL, "close of a failed decoder");
    if (!d->ready) {
        d->failed = 1;
        if (check_prefix(d->h, d->hfill, e) < 0)
            return -1;
        return err_setf(e, ERR_CORRUPT, "the object is truncated (header: %zu of %d bytes)",
                        d->hfill, OBJ_HEADER_LEN);
    }
    return sink_close(s->next, e);
}

static void dec_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops dec_ops = { dec_write, dec_close, dec_free };

int obj_decoder_new(struct sink *next, const struct keyring *kr, unsigned flags,
                    struct sink **out, struct err *e)
{
    struct obj_dec *d = calloc(1, sizeof *d);

    if (d == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory creating an object decoder");
    d->base.ops = &dec_ops;
    d->base.next = next;
    d->kr = kr;
    d->flags = flags;
    *out = &d->base;
    return 0;
}
