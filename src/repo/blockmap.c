/*
 * blockmap — see blockmap.h.
 */
#include "blockmap.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void bm_map_free(struct bm_map *m)
{
    free(m->runs);
    memset(m, 0, sizeof *m);
}

int bm_map_push(struct bm_map *m, uint32_t depth, uint64_t count, struct err *e)
{
    if (count == 0)
        return 0;
    if (m->n > 0 && m->runs[m->n - 1].depth == depth) {
        m->runs[m->n - 1].count += count;
        return 0;
    }
    if (array_reserve(&m->runs, &m->cap, m->n + 1, sizeof *m->runs) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    m->runs[m->n].depth = depth;
    m->runs[m->n].count = count;
    m->n++;
    return 0;
}

int bm_map_format(const struct bm_map *m, char **out, struct err *e)
{
    size_t cap = m->n * 32 + 1, len = 0, i;
    char *s = malloc(cap);

    if (s == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    s[0] = '\0';
    for (i = 0; i < m->n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%" PRIu32 "*%" PRIu64, i ? "," : "", m->runs[i].depth,
                                m->runs[i].count);
    *out = s;
    return 0;
}

static int parse_num(const char **p, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
        return -1;
    while (*s >= '0' && *s <= '9') {
        if ((uint64_t)(*s - '0') > max || v > (max - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

int bm_map_parse(const char *s, uint64_t nblocks, uint32_t max_depth, struct bm_map *out, struct err *e)
{
    const char *p = s;
    uint64_t total = 0;

    memset(out, 0, sizeof *out);
    while (*p != '\0') {
        uint64_t d, n;

        if (out->n > 0 && *p++ != ',')
            goto bad;
        if (parse_num(&p, max_depth, &d) < 0 || *p++ != '*' || parse_num(&p, UINT64_MAX, &n) < 0 || n == 0 ||
            n > nblocks - total)
            goto bad;
        total += n;
        if (array_reserve(&out->runs, &out->cap, out->n + 1, sizeof *out->runs) < 0) {
            bm_map_free(out);
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
        out->runs[out->n].depth = (uint32_t)d;
        out->runs[out->n].count = n;
        out->n++;
    }
    if (total != nblocks)
        goto bad;
    return 0;
bad:
    bm_map_free(out);
    return err_setf(e, ERR_CORRUPT, "block map \"%.40s%s\" is malformed (it must cover %" PRIu64 " blocks with "
                    "depths up to %" PRIu32 ")", s, strlen(s) > 40 ? "…" : "", nblocks, max_depth);
}

uint64_t bm_map_self_bytes(const struct bm_map *m, uint64_t size, uint32_t bs)
{
    uint64_t b = 0, bytes = 0;
    size_t i;

    for (i = 0; i < m->n; i++) {
        if (m->runs[i].depth == 0) {
            uint64_t last = b + m->runs[i].count - 1;

            bytes += (m->runs[i].count - 1) * bs + bm_block_len(size, bs, last);
        }
        b += m->runs[i].count;
    }
    return bytes;
}

void bm_cursor_init(struct bm_cursor *c, const struct bm_map *m)
{
    c->m = m;
    c->run = 0;
    c->run_first = 0;
}

uint32_t bm_cursor_depth(struct bm_cursor *c, uint64_t b)
{
    while (c->run < c->m->n && b >= c->run_first + c->m->runs[c->run].count) {
        c->run_first += c->m->runs[c->run].count;
        c->run++;
    }
    return c->run < c->m->n ? c->m->runs[c->run].depth : UINT32_MAX;
}

/* ---- block hashes ---- */

void bm_hash_block(const void *data, size_t len, unsigned char out[BM_HASH_LEN])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;

    if (EVP_Digest(data, len, d, &dn, EVP_sha256(), NULL) != 1)
        memset(d, 0xff, sizeof d);  /* never equal to a real hash's use: compared, then refused by SHA-256 */
    memcpy(out, d, BM_HASH_LEN);
}

void bh_set_init(struct bh_set *s, uint32_t block_size)
{
    memset(s, 0, sizeof *s);
    s->block_size = block_size;
}

void bh_set_free(struct bh_set *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        free(s->v[i].path);
        free(s->v[i].h);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

int bh_set_add(struct bh_set *s, const char *path, uint64_t size, unsigned char *h, struct err *e)
{
    char *p = strdup(path);

    if (p == NULL || array_reserve(&s->v, &s->cap, s->n + 1, sizeof *s->v) < 0) {
        free(p);
        free(h);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    s->v[s->n].path = p;
    s->v[s->n].size = size;
    s->v[s->n].h = h;
    s->n++;
    s->sorted = 0;
    return 0;
}

static int bh_cmp(const void *a, const void *b)
{
    return strcmp(((const struct bh_file *)a)->path, ((const struct bh_file *)b)->path);
}

void bh_set_sort(struct bh_set *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, bh_cmp);
    s->sorted = 1;
}

const struct bh_file *bh_set_find(const struct bh_set *s, const char *path)
{
    struct bh_file key;

    key.path = (char *)path;
    return s->n ? bsearch(&key, s->v, s->n, sizeof *s->v, bh_cmp) : NULL;
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

#define BH_HEAD 18

int bh_set_encode(struct bh_set *s, unsigned char **out, size_t *len, struct err *e)
{
    size_t total = BH_HEAD, i, pos;
    unsigned char *b;

    bh_set_sort(s);
    for (i = 0; i < s->n; i++)
        total += 2 + strlen(s->v[i].path) + 8 + bm_nblocks(s->v[i].size, s->block_size) * BM_HASH_LEN;
    b = malloc(total);
    if (b == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    memcpy(b, "WSBH", 4);
    b[4] = 1;
    b[5] = BM_HASH_LEN;
    put_be(b + 6, s->block_size, 4);
    put_be(b + 10, s->n, 8);
    pos = BH_HEAD;
    for (i = 0; i < s->n; i++) {
        size_t pl = strlen(s->v[i].path), hl = bm_nblocks(s->v[i].size, s->block_size) * BM_HASH_LEN;

        put_be(b + pos, pl, 2);
        memcpy(b + pos + 2, s->v[i].path, pl);
        put_be(b + pos + 2 + pl, s->v[i].size, 8);
        memcpy(b + pos + 10 + pl, s->v[i].h, hl);
        pos += 10 + pl + hl;
    }
    *out = b;
    *len = total;
    return 0;
}

int bh_set_decode(const unsigned char *buf, size_t len, const char *what, struct bh_set *out, struct err *e)
{
    uint64_t nfiles, i;
    size_t pos = BH_HEAD;
    uint32_t bs;

    memset(out, 0, sizeof *out);
    if (len < BH_HEAD || memcmp(buf, "WSBH", 4) != 0 || buf[4] != 1 || buf[5] != BM_HASH_LEN)
        return err_setf(e, ERR_CORRUPT, "%s: not a block hash list of this version", what);
    bs = (uint32_t)get_be(buf + 6, 4);
    nfiles = get_be(buf + 10, 8);
    if (bs < 4096 || bs > (1u << 24) || (bs & (bs - 1)) != 0 || nfiles > len / 10)
        return err_setf(e, ERR_CORRUPT, "%s: bad block size %u or file count", what, (unsigned)bs);
    bh_set_init(out, bs);
    for (i = 0; i < nfiles; i++) {
        size_t pl, hl;
        uint64_t size;
        char *path;
        unsigned char *h;

        if (len - pos < 2 || (pl = (size_t)get_be(buf + pos, 2)) == 0 || len - pos - 2 < pl + 8)
            goto bad;
        size = get_be(buf + pos + 2 + pl, 8);
        if (size / bs > (len - pos) / BM_HASH_LEN)
            goto bad;
        hl = (size_t)bm_nblocks(size, bs) * BM_HASH_LEN;
        if (len - pos - 10 - pl < hl || memchr(buf + pos + 2, '\0', pl) != NULL)
            goto bad;
        path = strndup((const char *)buf + pos + 2, pl);
        h = malloc(hl ? hl : 1);
        if (path == NULL || h == NULL) {
            free(path);
            free(h);
            bh_set_free(out);
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
        memcpy(h, buf + pos + 10 + pl, hl);
        if (bh_set_add(out, path, size, h, e) < 0) {
            free(path);
            bh_set_free(out);
            return -1;
        }
        free(path);
        if (i > 0 && strcmp(out->v[i - 1].path, out->v[i].path) >= 0)
            goto bad;
        pos += 10 + pl + hl;
    }
    if (pos != len)
        goto bad;
    out->sorted = 1;
    return 0;
bad:
    bh_set_free(out);
    return err_setf(e, ERR_CORRUPT, "%s: the block hash list is malformed", what);
}
