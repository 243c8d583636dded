/*
 * zst — zstd compression and decompression stages.
 *
 * Each stage produces exactly one zstd frame per stream (no content checksum:
 * the object format authenticates every chunk, docs/FORMAT.md).  Contexts and
 * buffers are allocated once per stage; memory does not grow with the data:
 *
 *   compress, workers = 0   the level's own context + a 128 KiB output
 *                           buffer.  Measured peak RSS of a whole encode |
 *                           decode process: level 1 9 MiB, level 3 13 MiB,
 *                           level 9 28 MiB, level 19 105 MiB.
 *   compress, workers = N   zstd's multithreaded mode: compression runs in N
 *                           threads of zstd's own, a few jobs in flight; jobs
 *                           of 2 MiB up to level 4, zstd's default (4
 *                           windows) above.  Measured, N = 2: level 1 24 MiB,
 *                           level 3 28 MiB, level 9 120 MiB.
 *   decompress              a window of at most 2^ZST_WINDOWLOG_MAX bytes
 *                           (8 MiB; a frame asking for more is refused) +
 *                           128 KiB buffers.
 *
 * The compress stage writes to `next` whenever its output buffer is full; the
 * decompress stage likewise, so plaintext leaves it in pieces of up to 128 KiB.
 * Used by one thread at a time (zstd's workers are internal).
 */
#ifndef WALSHIP_ZST_H
#define WALSHIP_ZST_H

#include "err.h"
#include "stream.h"

#define ZST_LEVEL_MIN 1
#define ZST_LEVEL_MAX 19
/* Level 19's window; the decoder refuses frames that need a larger one. */
#define ZST_WINDOWLOG_MAX 23

/* On success the new stage owns `next`; on failure the caller still does.
 * `workers`: 0 compresses in the calling thread, N > 0 uses N zstd workers. */
int zst_compress_new(struct sink *next, int level, int workers, struct sink **out, struct err *e);
int zst_decompress_new(struct sink *next, struct sink **out, struct err *e);

#endif
