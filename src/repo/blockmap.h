/*
 * blockmap — the pieces of block-level incremental backups that both sides
 * share (docs/BACKUP.md "Incremental backups"):
 *
 *   - a block map: for every block of a file, which backup of the chain
 *     holds it, as a depth (0 = the backup whose manifest lists the map, 1 =
 *     its parent, ...).  Encoded in the manifest as runs "D*N,D*N,..."
 *     that cover blocks 0..nblocks-1 in order;
 *   - the block hashes of a backup (the object backups/NAME/blockhash): for
 *     every file larger than one block, the first 8 bytes of the SHA-256 of
 *     each of its blocks as the backup read it.
 *
 * Library code: never prints.  Not thread-safe per object.
 */
#ifndef WALSHIP_BLOCKMAP_H
#define WALSHIP_BLOCKMAP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BM_BLOCK_SIZE ((uint32_t)32768)   /* default block size of a new chain */
#define BM_HASH_LEN 8
#define BM_MAX_DEPTH 1000                 /* longest chain a reader accepts */

struct bm_run {
    uint32_t depth;
    uint64_t count;
};

struct bm_map {
    struct bm_run *runs;
    size_t n, cap;
};

static inline uint64_t bm_nblocks(uint64_t size, uint32_t bs)
{
    return (size + bs - 1) / bs;
}

/* Bytes of block b of a file of `size` bytes. */
static inline uint32_t bm_block_len(uint64_t size, uint32_t bs, uint64_t b)
{
    uint64_t off = b * bs;
    return off >= size ? 0 : (size - off < bs ? (uint32_t)(size - off) : bs);
}

void bm_map_free(struct bm_map *m);
/* Append `count` blocks held at `depth` (merged with the last run). */
int bm_map_push(struct bm_map *m, uint32_t depth, uint64_t count, struct err *e);
/* "D*N,D*N": a malloc'd string. */
int bm_map_format(const struct bm_map *m, char **out, struct err *e);
/* Parse `s`; the runs must cover exactly `nblocks` blocks, every depth
 * must be <= max_depth, no run may be empty.  ERR_CORRUPT otherwise. */
int bm_map_parse(const char *s, uint64_t nblocks, uint32_t max_depth, struct bm_map *out, struct err *e);
/* Bytes the backup at depth 0 stores for this map (its own blocks). */
uint64_t bm_map_self_bytes(const struct bm_map *m, uint64_t size, uint32_t bs);

/* A cursor over a map, block by block, increasing. */
struct bm_cursor {
    const struct bm_map *m;
    size_t run;
    uint64_t run_first;     /* first block of m->runs[run] */
};

void bm_cursor_init(struct bm_cursor *c, const struct bm_map *m);
/* Depth of block b (b never decreasing between calls); UINT32_MAX past the end. */
uint32_t bm_cursor_depth(struct bm_cursor *c, uint64_t b);

/* ---- block hashes ---- */

struct bh_file {
    char *path;
    uint64_t size;
    unsigned char *h;       /* bm_nblocks(size) * BM_HASH_LEN bytes */
};

struct bh_set {
    uint32_t block_size;
    struct bh_file *v;
    size_t n, cap;
    int sorted;
};

void bh_set_init(struct bh_set *s, uint32_t block_size);
void bh_set_free(struct bh_set *s);
/* Takes ownership of `h` (malloc'd) even on failure. */
int bh_set_add(struct bh_set *s, const char *path, uint64_t size, unsigned char *h, struct err *e);
void bh_set_sort(struct bh_set *s);
/* After bh_set_sort: the file, or NULL. */
const struct bh_file *bh_set_find(const struct bh_set *s, const char *path);

/* Serialise (sorts first): "WSBH" 1 hash_len block_size(u32) nfiles(u64),
 * then per file: path length (u16), path, size (u64), hashes.  Big-endian. */
int bh_set_encode(struct bh_set *s, unsigned char **out, size_t *len, struct err *e);
int bh_set_decode(const unsigned char *buf, size_t len, const char *what, struct bh_set *out, struct err *e);

/* The hash of one block. */
void bm_hash_block(const void *data, size_t len, unsigned char out[BM_HASH_LEN]);

#endif
