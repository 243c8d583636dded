/*
 * aead — the chunk layer of the object format: AES-256-GCM (or, without a
 * key, a SHA-256 integrity tag) over fixed-size chunks.
 *
 * The byte layout is in docs/FORMAT.md ("Chunks").  In short, the stream is
 * a sequence of chunks, each
 *
 *   index (u64 BE) | length (u32 BE) | flags (u8: 0x01 final) | 3 zero bytes
 *   | payload (length bytes) | tag (16 bytes)
 *
 * where every chunk but the last carries exactly `chunk_size` payload bytes,
 * the last has the final flag (and 0..chunk_size bytes; an empty stream is
 * one empty final chunk).  The tag covers the caller's `aad` (the object
 * header), the 16-byte chunk header and the payload; the GCM nonce is
 * 4 zero bytes || index (u64 BE).  A data key must therefore encrypt one
 * stream only: obj.c draws a fresh random one per object.
 *
 * Encrypt stage: plaintext in; out to `next` go `aad` itself (the object
 * header precedes the chunks), then the chunks, one write per chunk.
 * Memory: one chunk (chunk_size + 32 bytes).
 *
 * Decrypt stage: chunks in, plaintext out.  A chunk's plaintext is written to
 * `next` only after its tag has been verified, and close fails unless the
 * final chunk was seen and nothing followed it, so a consumer that commits
 * only when sink_close() succeeds never sees unauthenticated data.  Errors
 * are ERR_CORRUPT and name the chunk and the fault: failed authentication,
 * out of order (a chunk that authenticates under another index: reordered,
 * duplicated or missing chunks), bad length or flags, truncation, trailing
 * data.  Memory: one chunk, allocated as the chunks declare their length.
 *
 * Without a key (integrity-only mode) the payload is the plaintext and the
 * tag is the first 16 bytes of SHA-256(aad || chunk header || payload): it
 * detects corruption, truncation and reordering, not forgery.
 *
 * Stages are used by one thread at a time.
 */
#ifndef WALSHIP_AEAD_H
#define WALSHIP_AEAD_H

#include <stddef.h>

#include "err.h"
#include "stream.h"

#define AEAD_KEY_LEN 32
#define AEAD_TAG_LEN 16
#define AEAD_CHUNK_HDR_LEN 16
#define AEAD_FLAG_FINAL 0x01
/* Bounds on chunk_size, so that a decoder's buffer stays bounded. */
#define AEAD_CHUNK_MIN ((size_t)1 << 12)
#define AEAD_CHUNK_MAX ((size_t)1 << 24)

/* `key` NULL selects integrity-only mode.  `aad` (up to 1152 bytes) is
 * copied.  On success the new stage owns `next`; on failure the caller still
 * does. */
int aead_encrypt_new(struct sink *next, const unsigned char *key, const void *aad, size_t aad_len,
                     size_t chunk_size, struct sink **out, struct err *e);
int aead_decrypt_new(struct sink *next, const unsigned char *key, const void *aad, size_t aad_len,
                     size_t chunk_size, struct sink **out, struct err *e);

#endif
