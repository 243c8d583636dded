#include "zst.h"

#include <stdlib.h>

#include <zstd.h>

#define ZST_SMALL_JOB_LEVEL_MAX 4
#define ZST_SMALL_JOB_SIZE (2 << 20)

struct zst_c {
    struct sink base;
    ZSTD_CCtx *cctx;
    unsigned char *out;
    size_t cap, pos;            /* out[0..pos) is pending for next */
};

struct zst_d {
    struct sink base;
    ZSTD_DCtx *dctx;
    unsigned char *out;
    size_t cap, pos;
    int frame_done;             /* the frame ended: nothing more may come */
};

static int flush_out(struct sink *next, unsigned char *out, size_t *pos, struct err *e)
{
    if (*pos == 0)
        return 0;
    if (sink_write(next, out, *pos, e) < 0)
        return -1;
    *pos = 0;
    return 0;
}

/* ---- compression ---- */

static int zc_run(struct zst_c *z, ZSTD_inBuffer *in, ZSTD_EndDirective mode, struct err *e)
{
    for (;;) {
        ZSTD_outBuffer o = { z->out, z->cap, z->pos };
        size_t r;

        if (z->pos == z->cap) {
            if (flush_out(z->base.next, z->out, &z->pos, e) < 0)
                return -1;
            o.pos = 0;
        }
        r = ZSTD_compressStream2(z->cctx, &o, in, mode);
        z->pos = o.pos;
        if (ZSTD_isError(r))
            return err_setf(e, ERR_INTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(r));
        if (mode == ZSTD_e_end ? r == 0 : in->pos == in->size)
            return 0;
    }
}

static int zc_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    ZSTD_inBuffer in = { buf, len, 0 };

    return zc_run((struct zst_c *)s, &in, ZSTD_e_continue, e);
}

static int zc_close(struct sink *s, struct err *e)
{
    struct zst_c *z = (struct zst_c *)s;
    ZSTD_inBuffer in = { NULL, 0, 0 };

    if (zc_run(z, &in, ZSTD_e_end, e) < 0 || flush_out(s->next, z->out, &z->pos, e) < 0)
        return -1;
    return sink_close(s->next, e);
}

static void zc_free(struct sink *s)
{
    struct zst_c *z = (struct zst_c *)s;

    sink_free(s->next);
    ZSTD_freeCCtx(z->cctx);
    free(z->out);
    free(z);
}

static const struct sink_ops zc_ops = { zc_write, zc_close, zc_free };

int zst_compress_new(struct sink *next, int level, int workers, struct sink **out, struct err *e)
{
    struct zst_c *z;
    size_t r;

    if (level < ZST_LEVEL_MIN || level > ZST_LEVEL_MAX)
        return err_setf(e, ERR_INTERNAL, "zstd level %d is out of range %d..%d",
                        level, ZST_LEVEL_MIN, ZST_LEVEL_MAX);
    z = calloc(1, sizeof *z);
    if (z == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory creating a zstd stage");
    z->cap = ZSTD_CStreamOutSize();
    z->out = malloc(z->cap);
    z->cctx = ZSTD_createCCtx();
    if (z->out == NULL || z->cctx == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory creating a zstd stage");
        goto fail;
    }
    r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r) && workers > 0) {
        r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, workers);
        /* A libzstd built without threads says so here: compress inline. */
        if (ZSTD_isError(r))
            r = 0;
        /* Low levels: jobs of 2 MiB instead of zstd's 8 cut the memory of
         * multithreaded compression by two thirds, at the same speed and
         * ratio (measured on pgbench data, level 3, 2 workers). */
        else if (level <= ZST_SMALL_JOB_LEVEL_MAX)
            r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, ZST_SMALL_JOB_SIZE);
    }
    if (ZSTD_isError(r)) {
        err_setf(e, ERR_INTERNAL, "could not set up zstd: %s", ZSTD_getErrorName(r));
        goto fail;
    }
    z->base.ops = &zc_ops;
    z->base.next = next;
    *out = &z->base;
    return 0;
fail:
    ZSTD_freeCCtx(z->cctx);
    free(z->out);
    free(z);
    return -1;
}

/* ---- decompression ---- */

static int zd_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct zst_d *z = (struct zst_d *)s;
    ZSTD_inBuffer in = { buf, len, 0 };

    while (in.pos < in.size) {
        ZSTD_outBuffer o;
        size_t r;

        if (z->frame_done)
            return err_setf(e, ERR_CORRUPT, "unexpected data after the end of the compressed stream");
        if (z->pos == z->cap && flush_out(s->next, z->out, &z->pos, e) < 0)
            return -1;
        o.dst = z->out;
        o.size = z->cap;
        o.pos = z->pos;
        r = ZSTD_decompressStream(z->dctx, &o, &in);
        z->pos = o.pos;
        if (ZSTD_isError(r))
            return err_setf(e, ERR_CORRUPT, "could not decompress: %s", ZSTD_getErrorName(r));
        if (r == 0)
            z->frame_done = 1;
    }
    return 0;
}

static int zd_close(struct sink *s, struct err *e)
{
    struct zst_d *z = (struct zst_d *)s;

    /* Output the decoder still holds once the input is all in. */
    while (!z->frame_done) {
        ZSTD_inBuffer in = { NULL, 0, 0 };
        ZSTD_outBuffer o;
        size_t r, before;

        if (z->pos == z->cap && flush_out(s->next, z->out, &z->pos, e) < 0)
            return -1;
        o.dst = z->out;
        o.size = z->cap;
        o.pos = before = z->pos;
        r = ZSTD_decompressStream(z->dctx, &o, &in);
        z->pos = o.pos;
        if (ZSTD_isError(r))
            return err_setf(e, ERR_CORRUPT, "could not decompress: %s", ZSTD_getErrorName(r));
        if (r == 0)
            z->frame_done = 1;
        else if (o.pos == before)
            return err_setf(e, ERR_CORRUPT, "the compressed stream is truncated");
    }
    if (flush_out(s->next, z->out, &z->pos, e) < 0)
        return -1;
    return sink_close(s->next, e);
}

static void zd_free(struct sink *s)
{
    struct zst_d *z = (struct zst_d *)s;

    sink_free(s->next);
    ZSTD_freeDCtx(z->dctx);
    free(z->out);
    free(z);
}

static const struct sink_ops zd_ops = { zd_write, zd_close, zd_free };

int zst_decompress_new(struct sink *next, struct sink **out, struct err *e)
{
    struct zst_d *z = calloc(1, sizeof *z);
    size_t r;

    if (z == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory creating a zstd stage");
    z->cap = ZSTD_DStreamOutSize();
    z->out = malloc(z->cap);
    z->dctx = ZSTD_createDCtx();
    if (z->out == NULL || z->dctx == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory creating a zstd stage");
        goto fail;
    }
    r = ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax, ZST_WINDOWLOG_MAX);
    if (ZSTD_isError(r)) {
        err_setf(e, ERR_INTERNAL, "could not set up zstd: %s", ZSTD_getErrorName(r));
        goto fail;
    }
    z->base.ops = &zd_ops;
    z->base.next = next;
    *out = &z->base;
    return 0;
fail:
    ZSTD_freeDCtx(z->dctx);
    free(z->out);
    free(z);
    return -1;
}
