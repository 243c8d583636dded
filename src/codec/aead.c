#include "aead.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define AAD_MAX 1152     /* the longest object header (obj.h: OBJ_HEADER_MAX) */
#define IV_LEN 12

enum dec_state { ST_HDR, ST_PAYLOAD, ST_TAG, ST_DONE, ST_FAILED };

struct aead {
    struct sink base;
    EVP_CIPHER_CTX *cctx;       /* keyed once; NULL in integrity-only mode */
    EVP_MD_CTX *md;             /* integrity-only mode */
    unsigned char aad[AAD_MAX];
    size_t aad_len;
    size_t chunk_size;
    uint64_t index;             /* the chunk being built or expected next */
    unsigned char *buf;
    size_t cap;

    /* encrypt: buf = chunk header | payload[0..fill) | room for the tag */
    /* decrypt: */
    enum dec_state st;
    unsigned char hdr[AEAD_CHUNK_HDR_LEN];
    unsigned char tag[AEAD_TAG_LEN];
    size_t hfill, fill, tfill;
    size_t need;                /* payload length declared by the chunk header */
    uint64_t found;             /* index stored in the chunk header */
    int final;
};

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Start a chunk's tag: nonce from the index, then the object header and the
 * chunk header as additional data. */
static int tag_begin(struct aead *a, int enc, uint64_t index, const unsigned char *chdr)
{
    int l;

    if (a->cctx != NULL) {
        unsigned char iv[IV_LEN] = { 0 };

        put_be64(iv + 4, index);
        return EVP_CipherInit_ex(a->cctx, NULL, NULL, NULL, iv, enc) == 1
            && EVP_CipherUpdate(a->cctx, NULL, &l, a->aad, (int)a->aad_len) == 1
            && EVP_CipherUpdate(a->cctx, NULL, &l, chdr, AEAD_CHUNK_HDR_LEN) == 1 ? 0 : -1;
    }
    return EVP_DigestInit_ex2(a->md, NULL, NULL) == 1
        && EVP_DigestUpdate(a->md, a->aad, a->aad_len) == 1
        && EVP_DigestUpdate(a->md, chdr, AEAD_CHUNK_HDR_LEN) == 1 ? 0 : -1;
}

/* ---- encrypt ---- */

/* Seal the chunk whose plaintext is `src` (n bytes: the buffered a->fill
 * bytes, or a whole chunk straight from the caller) and write it out. */
static int seal(struct aead *a, const unsigned char *src, size_t n, int final, struct err *e)
{
    unsigned char *h = a->buf, *p = a->buf + AEAD_CHUNK_HDR_LEN;
    int l;

    put_be64(h, a->index);
    put_be32(h + 8, (uint32_t)n);
    h[12] = final ? AEAD_FLAG_FINAL : 0;
    h[13] = h[14] = h[15] = 0;
    /* The object header goes out once, ahead of chunk 0. */
    if (a->index == 0 && sink_write(a->base.next, a->aad, a->aad_len, e) < 0)
        return -1;
    if (tag_begin(a, 1, a->index, h) < 0)
        goto fail;
    if (a->cctx != NULL) {
        if ((n > 0 && (EVP_EncryptUpdate(a->cctx, p, &l, src, (int)n) != 1 || (size_t)l != n))
            || EVP_EncryptFinal_ex(a->cctx, p + n, &l) != 1
            || EVP_CIPHER_CTX_ctrl(a->cctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, p + n) != 1)
            goto fail;
    } else {
        unsigned char md[EVP_MAX_MD_SIZE];

        if (EVP_DigestUpdate(a->md, src, n) != 1 || EVP_DigestFinal_ex(a->md, md, NULL) != 1)
            goto fail;
        if (src != p)
            memcpy(p, src, n);
        memcpy(p + n, md, AEAD_TAG_LEN);
    }
    a->index++;
    a->fill = 0;
    return sink_write(a->base.next, h, AEAD_CHUNK_HDR_LEN + n + AEAD_TAG_LEN, e);
fail:
    return err_setf(e, ERR_INTERNAL, "could not seal chunk %" PRIu64, a->index);
}

static int enc_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct aead *a = (struct aead *)s;
    const unsigned char *in = buf;

    while (len > 0) {
        size_t k;

        /* A full chunk is sealed only when more data shows it is not the last. */
        if (a->fill == a->chunk_size && seal(a, a->buf + AEAD_CHUNK_HDR_LEN, a->fill, 0, e) < 0)
            return -1;
        if (a->fill == 0 && len > a->chunk_size) {
            /* More than a chunk at hand: encrypt from the caller's buffer. */
            if (seal(a, in, a->chunk_size, 0, e) < 0)
                return -1;
            in += a->chunk_size;
            len -= a->chunk_size;
            continue;
        }
        k = a->chunk_size - a->fill;
        if (k > len)
            k = len;
        memcpy(a->buf + AEAD_CHUNK_HDR_LEN + a->fill, in, k);
        a->fill += k;
        in += k;
        len -= k;
    }
    return 0;
}

static int enc_close(struct sink *s, struct err *e)
{
    struct aead *a = (struct aead *)s;

    if (seal(a, a->buf + AEAD_CHUNK_HDR_LEN, a->fill, 1, e) < 0)
        return -1;
    return sink_close(s->next, e);
}

/* ---- decrypt ---- */

static int dec_fail(struct aead *a, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dec_fail(struct aead *a, struct err *e, const char *fmt, ...)
{
    va_list ap;

    a->st = ST_FAILED;
    va_start(ap, fmt);
    err_vsetf(e, ERR_CORRUPT, fmt, ap);
    va_end(ap);
    return -1;
}

static int chunk_begin(struct aead *a, struct err *e)
{
    const unsigned char *h = a->hdr;
    uint32_t n = get_be32(h + 8);

    a->found = get_be64(h);
    a->final = h[12] & AEAD_FLAG_FINAL;
    if ((h[12] & ~AEAD_FLAG_FINAL) != 0 || h[13] != 0 || h[14] != 0 || h[15] != 0)
        return dec_fail(a, e, "chunk %" PRIu64 " has a bad chunk header (flags %02x %02x %02x %02x): "
                        "the object is corrupt", a->index, h[12], h[13], h[14], h[15]);
    if (n > a->chunk_size)
        return dec_fail(a, e, "chunk %" PRIu64 " declares %" PRIu32 " bytes, more than the chunk size "
                        "of %zu: the object is corrupt", a->index, n, a->chunk_size);
    if (!a->final && n != a->chunk_size)
        return dec_fail(a, e, "chunk %" PRIu64 " is not the final chunk but holds %" PRIu32
                        " bytes instead of %zu: the object is corrupt", a->index, n, a->chunk_size);
    if (n > a->cap) {
        size_t cap = a->cap * 2 > n ? a->cap * 2 : n;
        unsigned char *nb;

        if (cap > a->chunk_size)
            cap = a->chunk_size;
        nb = realloc(a->buf, cap);
        if (nb == NULL) {
            a->st = ST_FAILED;
            return err_setf(e, ERR_NOMEM, "out of memory for a chunk of %" PRIu32 " bytes", n);
        }
        a->buf = nb;
        a->cap = cap;
    }
    if (tag_begin(a, 0, a->found, h) < 0) {
        a->st = ST_FAILED;
        return err_setf(e, ERR_INTERNAL, "could not start verifying chunk %" PRIu64, a->index);
    }
    a->need = n;
    a->fill = a->tfill = 0;
    a->st = n > 0 ? ST_PAYLOAD : ST_TAG;
    return 0;
}

static int chunk_payload(struct aead *a, const unsigned char *in, size_t k, struct err *e)
{
    unsigned char *out = a->buf + a->fill;
    int l;

    /* Decrypted into our buffer as it arrives; released only once verified. */
    if (a->cctx != NULL) {
        if (EVP_DecryptUpdate(a->cctx, out, &l, in, (int)k) != 1 || (size_t)l != k) {
            a->st = ST_FAILED;
            return err_setf(e, ERR_INTERNAL, "could not decrypt chunk %" PRIu64, a->index);
        }
    } else {
        if (EVP_DigestUpdate(a->md, in, k) != 1) {
            a->st = ST_FAILED;
            return err_setf(e, ERR_INTERNAL, "could not hash chunk %" PRIu64, a->index);
        }
        memcpy(out, in, k);
    }
    a->fill += k;
    if (a->fill == a->need)
        a->st = ST_TAG;
    return 0;
}

static int chunk_end(struct aead *a, struct err *e)
{
    int good;

    if (a->cctx != NULL) {
        unsigned char dummy[16];
        int l;

        good = EVP_CIPHER_CTX_ctrl(a->cctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, a->tag) == 1
            && EVP_DecryptFinal_ex(a->cctx, dummy, &l) > 0;
    } else {
        unsigned char md[EVP_MAX_MD_SIZE];

        good = EVP_DigestFinal_ex(a->md, md, NULL) == 1
            && CRYPTO_memcmp(md, a->tag, AEAD_TAG_LEN) == 0;
#ifdef WALSHIP_FUZZ_NO_AUTH
        /* Fuzzing builds only (tests/fuzz/build-fuzzer.sh): let unkeyed chunks
         * through unverified, so the fuzzer reaches the framing and zstd. */
        good = 1;
#endif
    }
    if (!good)
        return dec_fail(a, e, "chunk %" PRIu64 " failed authentication: the object is corrupt "
                        "or was tampered with", a->index);
    if (a->found != a->index)
        return dec_fail(a, e, "chunks out of order: found chunk %" PRIu64 " where chunk %" PRIu64
                        " belongs (chunks reordered, duplicated or missing)", a->found, a->index);
    if (a->fill > 0 && sink_write(a->base.next, a->buf, a->fill, e) < 0) {
        a->st = ST_FAILED;
        return -1;
    }
    a->index++;
    a->hfill = 0;
    a->st = a->final ? ST_DONE : ST_HDR;
    return 0;
}

static int dec_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct aead *a = (struct aead *)s;
    const unsigned char *in = buf;

    while (len > 0) {
        size_t k;

        switch (a->st) {
        case ST_HDR:
            k = AEAD_CHUNK_HDR_LEN - a->hfill;
            k = k < len ? k : len;
            memcpy(a->hdr + a->hfill, in, k);
            a->hfill += k;
            if (a->hfill == AEAD_CHUNK_HDR_LEN && chunk_begin(a, e) < 0)
                return -1;
            break;
        case ST_PAYLOAD:
            k = a->need - a->fill;
            k = k < len ? k : len;
            if (chunk_payload(a, in, k, e) < 0)
                return -1;
            break;
        case ST_TAG:
            k = AEAD_TAG_LEN - a->tfill;
            k = k < len ? k : len;
            memcpy(a->tag + a->tfill, in, k);
            a->tfill += k;
            if (a->tfill == AEAD_TAG_LEN && chunk_end(a, e) < 0)
                return -1;
            break;
        case ST_DONE:
            return dec_fail(a, e, "unexpected data after the final chunk (chunk %" PRIu64 ")",
                            a->index - 1);
        default:
            return err_setf(e, ERR_INTERNAL, "write to a failed decoder");
        }
        in += k;
        len -= k;
    }
    return 0;
}

static int dec_close(struct sink *s, struct err *e)
{
    struct aead *a = (struct aead *)s;

    switch (a->st) {
    case ST_DONE:
        return sink_close(s->next, e);
    case ST_HDR:
        if (a->hfill == 0)
            return dec_fail(a, e, "the object is truncated: no final chunk after %" PRIu64 " chunk%s",
                            a->index, a->index == 1 ? "" : "s");
        return dec_fail(a, e, "the object is truncated in the header of chunk %" PRIu64, a->index);
    case ST_PAYLOAD:
    case ST_TAG:
        return dec_fail(a, e, "the object is truncated in chunk %" PRIu64 " (%zu of %zu bytes)",
                        a->index, AEAD_CHUNK_HDR_LEN + a->fill + a->tfill,
                        AEAD_CHUNK_HDR_LEN + a->need + AEAD_TAG_LEN);
    default:
        return err_setf(e, ERR_INTERNAL, "close of a failed decoder");
    }
}

/* ---- common ---- */

static void aead_free(struct sink *s)
{
    struct aead *a = (struct aead *)s;

    sink_free(s->next);
    EVP_CIPHER_CTX_free(a->cctx);
    EVP_MD_CTX_free(a->md);
    if (a->buf != NULL)
        OPENSSL_cleanse(a->buf, a->cap);
    free(a->buf);
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
}

static const struct sink_ops enc_ops = { enc_write, enc_close, aead_free };
static const struct sink_ops dec_ops = { dec_write, dec_close, aead_free };

static int aead_new(struct sink *next, const unsigned char *key, const void *aad, size_t aad_len,
                    size_t chunk_size, int enc, struct sink **out, struct err *e)
{
    struct aead *a;
    int ok;

    if (aad_len > AAD_MAX || chunk_size < AEAD_CHUNK_MIN || chunk_size > AEAD_CHUNK_MAX)
        return err_setf(e, ERR_INTERNAL, "bad chunk stage parameters (aad %zu, chunk %zu)",
                        aad_len, chunk_size);
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory creating a chunk stage");
    memcpy(a->aad, aad, aad_len);
    a->aad_len = aad_len;
    a->chunk_size = chunk_size;
    if (enc) {
        /* The encoder fills whole chunks: take the buffer now. */
        a->cap = AEAD_CHUNK_HDR_LEN + chunk_size + AEAD_TAG_LEN;
        a->buf = malloc(a->cap);
        if (a->buf == NULL) {
            free(a);
            return err_setf(e, ERR_NOMEM, "out of memory for a chunk of %zu bytes", chunk_size);
        }
    }
    if (key != NULL) {
        a->cctx = EVP_CIPHER_CTX_new();
        ok = a->cctx != NULL
            && EVP_CipherInit_ex(a->cctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1
            && EVP_CIPHER_CTX_ctrl(a->cctx, EVP_CTRL_AEAD_SET_IVLEN, IV_LEN, NULL) == 1
            && EVP_CipherInit_ex(a->cctx, NULL, NULL, key, NULL, enc) == 1;
    } else {
        a->md = EVP_MD_CTX_new();
        ok = a->md != NULL && EVP_DigestInit_ex(a->md, EVP_sha256(), NULL) == 1;
    }
    a->base.ops = enc ? &enc_ops : &dec_ops;
    if (!ok) {
        aead_free(&a->base);
        return err_setf(e, ERR_INTERNAL, "could not set up %s", key ? "AES-256-GCM" : "SHA-256");
    }
    a->base.next = next;
    a->st = ST_HDR;
    *out = &a->base;
    return 0;
}

int aead_encrypt_new(struct sink *next, const unsigned char *key, const void *aad, size_t aad_len,
                     size_t chunk_size, struct sink **out, struct err *e)
{
    return aead_new(next, key, aad, aad_len, chunk_size, 1, out, e);
}

int aead_decrypt_new(struct sink *next, const unsigned char *key, const void *aad, size_t aad_len,
                     size_t chunk_size, struct sink **out, struct err *e)
{
    return aead_new(next, key, aad, aad_len, chunk_size, 0, out, e);
}
