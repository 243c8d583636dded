#include "obj.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aead.h"
#include "fault.h"
#include "util.h"
#include "zst.h"

/* Header layout (docs/FORMAT.md).  Offsets 0..63 are the same in both
 * versions; version 1 puts the check at 64, version 2 the system
 * identifier, the bound key and then the check. */
#define H_MAGIC 0
#define H_VERSION 4
#define H_COMP 5
#define H_CIPHER 6
#define H_CHUNK 7
#define H_KEYID 8
#define H_WRAPPED 24
#define H_V1_CHECK 64
#define H_SYSID 64
#define H_KEYLEN 72
#define H_KEY 74
#define WRAPPED_LEN 40              /* RFC 3394 wrap of a 32-byte key */
#define CHECK_LEN 8

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Where the header check sits, from the bytes seen so far: 0 while the
 * length is not known yet. */
static size_t check_offset(const unsigned char *h, size_t len)
{
    if (len <= H_VERSION)
        return 0;
    if (h[H_VERSION] == OBJ_VERSION_LEGACY)
        return H_V1_CHECK;
    if (len < OBJ_HEADER_FIXED_LEN)
        return 0;
    return H_KEY + (size_t)get_be(h + H_KEYLEN, 2);
}

static int header_check(const unsigned char *h, size_t n, unsigned char out[CHECK_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];

    if (EVP_Digest(h, n, md, NULL, EVP_sha256(), NULL) != 1)
        return -1;
    memcpy(out, md, CHECK_LEN);
    return 0;
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
    if (len > H_VERSION && h[H_VERSION] != OBJ_VERSION && h[H_VERSION] != OBJ_VERSION_LEGACY)
        return err_setf(e, ERR_CORRUPT, "unsupported format version %u (this walship reads versions %d and %d)",
                        h[H_VERSION], OBJ_VERSION_LEGACY, OBJ_VERSION);
    if (len >= OBJ_HEADER_FIXED_LEN && h[H_VERSION] == OBJ_VERSION) {
        size_t klen = (size_t)get_be(h + H_KEYLEN, 2);

        if (klen == 0 || klen > OBJ_BIND_KEY_MAX)
            return err_setf(e, ERR_CORRUPT, "the object header is corrupt (bound key of %zu bytes)", klen);
    }
    return 0;
}

int obj_peek_header(const void *buf, size_t len, struct obj_header_info *info, struct err *e)
{
    const unsigned char *h = buf;
    unsigned char check[CHECK_LEN];
    size_t at;

    if (check_prefix(h, len, e) < 0)
        return -1;
    at = check_offset(h, len);
    if (at == 0 || len < at + CHECK_LEN)
        return err_setf(e, ERR_CORRUPT, "the object is truncated (header: %zu of %zu bytes)", len,
                        at ? at + CHECK_LEN : (size_t)OBJ_HEADER_FIXED_LEN);
    if (header_check(h, at, check) < 0)
        return err_setf(e, ERR_INTERNAL, "SHA-256 failed");
#ifdef WALSHIP_FUZZ_NO_AUTH
    memcpy(check, h + at, CHECK_LEN);  /* fuzzing builds only: see aead.c */
#endif
    if (CRYPTO_memcmp(check, h + at, CHECK_LEN) != 0)
        return err_setf(e, ERR_CORRUPT, "the object header is corrupt (header checksum mismatch)");
    if (h[H_COMP] > OBJ_COMP_ZSTD)
        return err_setf(e, ERR_CORRUPT, "unknown compression algorithm id %u in the object header",
                        h[H_COMP]);
    if (h[H_CIPHER] > OBJ_CIPHER_AES256GCM)
        return err_setf(e, ERR_CORRUPT, "unknown cipher id %u in the object header", h[H_CIPHER]);
    if (h[H_CHUNK] < OBJ_CHUNK_LOG2_MIN || h[H_CHUNK] > OBJ_CHUNK_LOG2_MAX)
        return err_setf(e, ERR_CORRUPT, "bad chunk size 2^%u in the object header (allowed 2^%d..2^%d)",
                        h[H_CHUNK], OBJ_CHUNK_LOG2_MIN, OBJ_CHUNK_LOG2_MAX);
    if (h[H_CIPHER] == OBJ_CIPHER_NONE && !all_zero(h + H_KEYID, H_WRAPPED + WRAPPED_LEN - H_KEYID))
        return err_setf(e, ERR_CORRUPT, "the object header is corrupt (key fields set without a cipher)");
    memset(info, 0, sizeof *info);
    info->version = h[H_VERSION];
    info->compression = h[H_COMP];
    info->cipher = h[H_CIPHER];
    info->chunk_size = (size_t)1 << h[H_CHUNK];
    info->header_len = at + CHECK_LEN;
    if (info->cipher != OBJ_CIPHER_NONE) {
        memcpy(info->key_id, h + H_KEYID, KEYS_ID_LEN);
        hex_encode(info->key_id, KEYS_ID_LEN, info->key_id_hex);
    }
    if (info->version == OBJ_VERSION) {
        size_t klen = at - H_KEY;

        info->sysid = get_be(h + H_SYSID, 8);
        if (memchr(h + H_KEY, '\0', klen) != NULL)
            return err_setf(e, ERR_CORRUPT, "the object header is corrupt (bound key holds a NUL byte)");
        memcpy(info->key, h + H_KEY, klen);
        info->key[klen] = '\0';
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
    unsigned char h[OBJ_HEADER_MAX];
    unsigned char dk[KEYS_LEN];
    unsigned chunk_log2 = o->chunk_log2 ? o->chunk_log2 : OBJ_CHUNK_LOG2_DEFAULT;
    unsigned version = o->version ? o->version : OBJ_VERSION;
    struct sink *a = NULL, *z = NULL, *w, *az;
    size_t klen = o->bind.key != NULL ? strlen(o->bind.key) : 0, at;
    int workers = 0, rc = -1;

    if (o->level != 0 && (o->level < ZST_LEVEL_MIN || o->level > ZST_LEVEL_MAX))
        return err_setf(e, ERR_CONFIG, "zstd level %d is out of range %d..%d",
                        o->level, ZST_LEVEL_MIN, ZST_LEVEL_MAX);
    if (chunk_log2 < OBJ_CHUNK_LOG2_MIN || chunk_log2 > OBJ_CHUNK_LOG2_MAX)
        return err_setf(e, ERR_INTERNAL, "chunk size 2^%u out of range", chunk_log2);
    if (version != OBJ_VERSION && version != OBJ_VERSION_LEGACY)
        return err_setf(e, ERR_INTERNAL, "cannot write format version %u", version);
    /* Keys but none current (old_key_files without key_file, a rotation
     * half done): an unencrypted object would be refused by every reader
     * holding those keys, this one included. */
    if (k == NULL && keys_count(o->kr) > 0)
        return err_setf(e, ERR_CONFIG, "old_key_files are configured but no key_file: refusing to write an "
                        "unencrypted object that a reader holding those keys refuses (set key_file to the "
                        "current key)");
    if (version == OBJ_VERSION && (klen == 0 || klen > OBJ_BIND_KEY_MAX || o->bind.sysid == OBJ_SYSID_ANY))
        return err_setf(e, ERR_INTERNAL, "an object must be bound to a key (1..%d bytes) and a cluster",
                        OBJ_BIND_KEY_MAX);
    memset(h, 0, sizeof h);
    memcpy(h + H_MAGIC, OBJ_MAGIC, 4);
    h[H_VERSION] = (unsigned char)version;
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
    if (version == OBJ_VERSION) {
        put_be(h + H_SYSID, o->bind.sysid, 8);
        put_be(h + H_KEYLEN, klen, 2);
        memcpy(h + H_KEY, o->bind.key, klen);
        at = H_KEY + klen;
    } else {
        at = H_V1_CHECK;
    }
    if (header_check(h, at, h + at) < 0) {
        err_setf(e, ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }

    /* test builds of the chain can fail here on purpose (fault.h) */
    w = fault_wrap(next, "obj.encode");
    if (aead_encrypt_new(w, k != NULL ? dk : NULL, h, at + CHECK_LEN, (size_t)1 << chunk_log2, &a, e) < 0) {
        if (w != next) {
            w->next = NULL;
            sink_free(w);
        }
        goto out;
    }
    if (o->level > 0) {
        if (o->workers > 0 && (o->size_hint == 0 || o->size_hint >= OBJ_MT_MIN_SIZE))
            workers = o->workers;
        az = fault_wrap(a, "obj.zstd");
        if (zst_compress_new(az, o->level, workers, &z, e) < 0) {
            if (w != next)
                w->next = NULL;
            else
                a->next = NULL;     /* `next` stays the caller's */
            sink_free(az);
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
    struct obj_bind *bind;
    unsigned char h[OBJ_HEADER_MAX];
    size_t hfill;
    int ready, failed;
};

/* The header says where the object belongs: is that where we read it? */
static int check_binding(const struct obj_dec *d, const struct obj_header_info *info, struct err *e)
{
    if (info->version == OBJ_VERSION_LEGACY) {
        if (d->flags & OBJ_DEC_ALLOW_LEGACY)
            return 0;
        return err_setf(e, ERR_FOREIGN,
                        "the object is in format version 1 (walship 0.1.0), which does not bind an object to "
                        "its name and cluster: run \"walship upgrade\" on this region");
    }
    if (strcmp(info->key, d->bind->key) != 0)
        return err_setf(e, ERR_FOREIGN,
                        "the object stored as \"%s\" was written as \"%s\": it was renamed, copied or "
                        "substituted, refusing it",
                        d->bind->key, info->key);
    if (d->bind->sysid != OBJ_SYSID_ANY && info->sysid != d->bind->sysid)
        return err_setf(e, ERR_FOREIGN,
                        "the object \"%s\" belongs to the cluster with system identifier %llu, not to this "
                        "repository's cluster %llu: it comes from another cluster's archive",
                        d->bind->key, (unsigned long long)info->sysid, (unsigned long long)d->bind->sysid);
    d->bind->found_sysid = info->sysid;
    memcpy(d->bind->found_key_id, info->key_id_hex, sizeof d->bind->found_key_id);
    return 0;
}

static int dec_start(struct obj_dec *d, struct err *e)
{
    struct obj_header_info info;
    const struct keys_key *k = NULL;
    unsigned char dk[KEYS_LEN];
    struct sink *chain = d->base.next, *s;
    int rc = -1;

    if (obj_peek_header(d->h, d->hfill, &info, e) < 0 || check_binding(d, &info, e) < 0)
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
        return err_setf(e, ERR_KEY, OBJ_MSG_PLAIN ": refusing an unauthenticated object");
    }
    if (info.compression == OBJ_COMP_ZSTD) {
        if (zst_decompress_new(chain, &s, e) < 0)
            goto out;
        chain = d->base.next = s;
    }
    /* From here on d->base.next owns the caller's sink, whatever happens. */
    if (aead_decrypt_new(chain, k != NULL ? dk : NULL, d->h, info.header_len, info.chunk_size, &s, e) < 0)
        goto out;
    d->base.next = s;
    d->ready = 1;
    rc = 0;
out:
    OPENSSL_cleanse(dk, sizeof dk);
    return rc;
}

/* Header bytes still wanted: the fixed part first, then (version 2) the
 * bound key and the check, whose length the fixed part gives. */
static size_t header_wanted(const struct obj_dec *d)
{
    size_t at = check_offset(d->h, d->hfill);

    if (at == 0)
        return (d->hfill <= H_VERSION ? H_VERSION + 1 : OBJ_HEADER_FIXED_LEN) - d->hfill;
    return at + CHECK_LEN - d->hfill;
}

static int dec_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct obj_dec *d = (struct obj_dec *)s;
    const unsigned char *in = buf;

    if (d->failed)
        return err_setf(e, ERR_INTERNAL, "write to a failed decoder");
    while (!d->ready && len > 0) {
        size_t k = header_wanted(d);

        if (k > len)
            k = len;
        memcpy(d->h + d->hfill, in, k);
        d->hfill += k;
        in += k;
        len -= k;
        if (check_prefix(d->h, d->hfill, e) < 0)
            goto fail;
        if (header_wanted(d) == 0 && dec_start(d, e) < 0)
            goto fail;
    }
    if (len > 0 && sink_write(s->next, in, len, e) < 0)
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
        size_t at = check_offset(d->h, d->hfill);

        d->failed = 1;
        if (check_prefix(d->h, d->hfill, e) < 0)
            return -1;
        return err_setf(e, ERR_CORRUPT, "the object is truncated (header: %zu of %zu bytes)", d->hfill,
                        at ? at + CHECK_LEN : (size_t)OBJ_HEADER_FIXED_LEN);
    }
    return sink_close(s->next, e);
}

static void dec_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops dec_ops = { dec_write, dec_close, dec_free };

int obj_decoder_new(struct sink *next, const struct keyring *kr, unsigned flags, struct obj_bind *bind,
                    struct sink **out, struct err *e)
{
    struct obj_dec *d;

    if (bind == NULL || bind->key == NULL || bind->key[0] == '\0')
        return err_setf(e, ERR_INTERNAL, "an object decoder needs the key the object is read from");
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory creating an object decoder");
    d->base.ops = &dec_ops;
    d->base.next = fault_wrap(next, "obj.decode");
    d->kr = kr;
    d->flags = flags;
    d->bind = bind;
    *out = &d->base;
    return 0;
}
