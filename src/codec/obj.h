/*
 * obj — walship's encoded object format (docs/FORMAT.md): the header, and
 * the encoder and decoder chains built from the zst and aead stages.
 *
 *   encode:  plaintext → [zstd compress] → chunks (AES-256-GCM or SHA-256
 *            tags) → next, preceded by the 72-byte header
 *   decode:  header + chunks → verified chunks → [zstd decompress] → next
 *
 * Every object has its own random 256-bit data key, wrapped with the
 * keyring's current key (RFC 3394) and stored in the header with that key's
 * id.  The header is authenticated with every chunk.
 *
 * The encoder reads its input once and produces one byte stream: callers
 * that ship to several regions fan that stream out (or spool it) instead of
 * encoding per region.  To get the plaintext's SHA-256 as well, put a
 * sha256_tee (sha256tee.h) in front of the encoder.
 *
 * The decoder never writes unauthenticated plaintext to `next`, and its
 * close fails unless the whole object was there and verified (see aead.h):
 * commit what `next` received only when sink_close() succeeds.  Errors:
 * ERR_CORRUPT names what is wrong (not a walship object, unsupported
 * version, damaged header, truncation, failed authentication of chunk N,
 * chunks out of order, trailing data); ERR_KEY names the missing key id or
 * the missing key_file, decided from the header before anything is
 * decrypted.  Callers prefix the object's name and region (err_prefix).
 *
 * Memory per stage is bounded and independent of the object's size: one
 * chunk (default 256 KiB, at most 16 MiB as declared by the header) plus the
 * zstd contexts described in zst.h.  Chains are used by one thread at a time;
 * a keyring may be shared between threads.
 */
#ifndef WALSHIP_OBJ_H
#define WALSHIP_OBJ_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "keys.h"
#include "stream.h"

#define OBJ_MAGIC "WSHP"
#define OBJ_VERSION 2               /* what walship writes */
#define OBJ_VERSION_LEGACY 1        /* walship 0.1.0: not bound (read only by `upgrade`) */
#define OBJ_HEADER_V1_LEN 72
#define OBJ_HEADER_FIXED_LEN 74     /* version 2: up to and including the name length */
#define OBJ_BIND_KEY_MAX 1024       /* longest object key a header can carry */
#define OBJ_HEADER_MAX (OBJ_HEADER_FIXED_LEN + OBJ_BIND_KEY_MAX + 8)

#define OBJ_COMP_NONE 0
#define OBJ_COMP_ZSTD 1
#define OBJ_CIPHER_NONE 0           /* integrity only: SHA-256 chunk tags */
#define OBJ_CIPHER_AES256GCM 1      /* data key wrapped with RFC 3394 */

#define OBJ_CHUNK_LOG2_MIN 12
#define OBJ_CHUNK_LOG2_MAX 24
#define OBJ_CHUNK_LOG2_DEFAULT 18   /* 256 KiB */

/* Inputs smaller than this (when the size is known) compress in the calling
 * thread even when workers are allowed: for a 16 MiB WAL segment zstd's
 * threads cost more than they give (measured: 31 ms inline, 43 ms with 2
 * workers, pgbench WAL at level 3), and wal-push compresses several segments
 * at once anyway. */
#define OBJ_MT_MIN_SIZE ((uint64_t)32 << 20)

/* Where an object belongs (docs/FORMAT.md, "Binding"): the key it is stored
 * under, relative to the region's prefix, and the PostgreSQL system
 * identifier of the cluster it belongs to.  Both are written into the
 * header and authenticated with every chunk, so an object renamed,
 * substituted or taken from another cluster's repository does not decode. */
struct obj_bind {
    const char *key;
    uint64_t sysid;             /* decode: OBJ_SYSID_ANY accepts any (the identity object) */
    uint64_t found_sysid;       /* decode: set from the header once it is read */
    char found_key_id[KEYS_ID_HEX_LEN + 1];   /* decode: likewise its key id, "" unencrypted */
};
#define OBJ_SYSID_ANY UINT64_MAX

struct obj_opts {
    int level;                  /* zstd level 1..19; 0 = no compression */
    int workers;                /* zstd worker threads for large inputs; 0 = none */
    uint64_t size_hint;         /* expected plaintext size; 0 = unknown (large) */
    unsigned chunk_log2;        /* 0 = OBJ_CHUNK_LOG2_DEFAULT */
    const struct keyring *kr;   /* its current key encrypts; NULL or none = not encrypted */
    struct obj_bind bind;       /* key (required) and sysid of the object */
    unsigned version;           /* 0 = OBJ_VERSION; OBJ_VERSION_LEGACY only for tests of `upgrade` */
};

/* Decoder flags. */
/* How the decoder words an unencrypted object met while keys are
 * configured (ERR_KEY), for callers that say more about it. */
#define OBJ_MSG_PLAIN "the object is not encrypted, but encryption keys are configured"

#define OBJ_DEC_ALLOW_UNENCRYPTED 0x1   /* accept unencrypted objects even when keys
                                           are configured (see below) */
#define OBJ_DEC_ALLOW_LEGACY 0x2        /* accept version 1 objects, which carry no
                                           binding (`walship upgrade` only) */

struct obj_header_info {
    unsigned version;
    unsigned compression;       /* OBJ_COMP_* */
    unsigned cipher;            /* OBJ_CIPHER_* */
    size_t chunk_size;
    size_t header_len;          /* bytes before the first chunk */
    unsigned char key_id[KEYS_ID_LEN];      /* all zero when not encrypted */
    char key_id_hex[KEYS_ID_HEX_LEN + 1];   /* "" when not encrypted */
    uint64_t sysid;                         /* version 2; 0 for version 1 */
    char key[OBJ_BIND_KEY_MAX + 1];         /* version 2: the key it was written as; "" for 1 */
};

/* Encoder: plaintext in, the encoded object out to `next`.  On success the
 * encoder owns `next`; on failure the caller still does (nothing was written
 * to it).  o->bind.key is required (ERR_INTERNAL without it). */
int obj_encoder_new(struct sink *next, const struct obj_opts *o, struct sink **out, struct err *e);

/* Decoder: encoded bytes in, authenticated plaintext out to `next`.  `kr`
 * (may be NULL) must outlive the decoder.  When `kr` holds any key, an
 * unencrypted object is refused (ERR_KEY) unless `flags` has
 * OBJ_DEC_ALLOW_UNENCRYPTED: otherwise whoever can write to the bucket could
 * replace an encrypted object by an unauthenticated one.  `bind` (required,
 * must outlive the decoder) is where the object must belong: a header that
 * names another key or another cluster is ERR_FOREIGN, naming what was
 * expected and what was found, before any chunk is decoded.  Ownership of
 * `next` as for the encoder. */
int obj_decoder_new(struct sink *next, const struct keyring *kr, unsigned flags, struct obj_bind *bind,
                    struct sink **out, struct err *e);

/* Parse and check a header (the first bytes of an object, at least
 * info->header_len of them: a short buffer is ERR_CORRUPT "truncated")
 * without any key: magic, version, header checksum, algorithm ids, and for
 * version 2 the binding.  For verify, `st` and `upgrade`. */
int obj_peek_header(const void *buf, size_t len, struct obj_header_info *info, struct err *e);

#endif
