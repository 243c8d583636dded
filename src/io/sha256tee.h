/*
 * sha256tee — a pass-through stage that computes SHA-256 of what flows by.
 *
 * Put it first in an encoding chain to get the checksum of the plaintext on
 * the way in, without a second read:
 *
 *   sha256_tee_new(encoder, digest, &head, e);   ...   sink_close(head, e);
 *
 * Close writes the digest of everything that passed into the caller's
 * array, then closes the next stage: the digest is of the input even when
 * a later stage fails (a fan-out with one failing region), and whether the
 * chain committed is what close returns.  Used by one thread at a time.
 */
#ifndef WALSHIP_SHA256TEE_H
#define WALSHIP_SHA256TEE_H

#include "err.h"
#include "stream.h"

#define SHA256_LEN 32

/* On success the new stage owns `next`; on failure the caller still does.
 * `digest` must stay valid until the stage is closed or freed. */
int sha256_tee_new(struct sink *next, unsigned char digest[SHA256_LEN], struct sink **out, struct err *e);

#endif
