/*
 * manifest_fuzz — libFuzzer target for a backup's manifest.json parser
 * (man_from_json, src/repo/manifest.c).
 *
 * The input is the manifest's decoded text.  Whatever it holds, nothing may
 * crash or leak; a manifest that parses must serialize (man_to_json), parse
 * again, and serialize to the very same text; every file it lists must be
 * in a listed part (or, format 3, have pieces in listed parts that cover
 * it exactly) and have a safe relative path.  The header-only reader
 * (man_headers_from_json, which steps over the file list in the text)
 * must agree: it fails only where the full parse fails, and otherwise
 * gives the same header fields and the number of entries listed.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined by build-fuzzer.sh;
 * replayed over tests/fuzz/corpus/manifest under gcc in `make check`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The header-only reader gives what the full parse gave, file list aside. */
static void headers_agree(const uint8_t *data, size_t size, const struct manifest *full)
{
    struct manifest *h = NULL, *f = NULL;
    struct err e = ERR_INIT;
    char *jh = NULL, *jf = NULL;
    size_t lh = 0, lf = 0;

    if (man_headers_from_json((const char *)data, size, "fuzz", &h, &e) < 0 ||
        man_from_json((const char *)data, size, "fuzz", &f, &e) < 0)
        abort();
    if (h->files != NULL || h->nfiles != 0 || h->files_listed != full->files_listed)
        abort();
    man_drop_files(f);
    if (man_to_json(h, &jh, &lh, &e) < 0 || man_to_json(f, &jf, &lf, &e) < 0 || lh != lf || memcmp(jh, jf, lh) != 0)
        abort();
    free(jh);
    free(jf);
    man_free(h);
    man_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct manifest *m = NULL, *m2 = NULL;
    struct err e = ERR_INIT;
    char *j1 = NULL, *j2 = NULL;
    size_t l1 = 0, l2 = 0, i;

    if (man_from_json((const char *)data, size, "fuzz", &m, &e) < 0) {
        if (m != NULL || e.msg[0] == '\0')
            abort();    /* a failure leaves no manifest and says why */
        err_clear(&e);
        if (man_headers_from_json((const char *)data, size, "fuzz", &m, &e) < 0) {
            if (m != NULL || e.msg[0] == '\0')
                abort();
        } else if (m == NULL || m->files != NULL || m->nfiles != 0) {
            abort();
        }
        man_free(m);
        return 0;
    }
    headers_agree(data, size, m);
    for (i = 0; i < m->nfiles; i++) {
        const struct man_file *f = &m->files[i];
        uint64_t at = 0;
        uint32_t k;

        /* in a listed part; or an incremental's file without blocks of its
         * own; or pieces in listed parts covering the file exactly */
        if ((f->npieces == 0 && !(f->map != NULL && f->part == 0) && (f->part < 1 || f->part > m->nparts)) ||
            f->path[0] == '/' || f->path[0] == '\0' || strlen(f->sha256) != 64)
            abort();
        for (k = 0; k < f->npieces; k++) {
            if (f->pieces[k].part < 1 || f->pieces[k].part > m->nparts || f->pieces[k].offset != at ||
                f->pieces[k].size == 0)
                abort();
            at += f->pieces[k].size;
        }
        if (f->npieces > 0 && (at != f->size || f->part != 0))
            abort();
    }
    if (man_to_json(m, &j1, &l1, &e) < 0)
        abort();
    if (man_from_json(j1, l1, "fuzz again", &m2, &e) < 0)
        abort();        /* what we write, we read */
    if (man_to_json(m2, &j2, &l2, &e) < 0 || l1 != l2 || memcmp(j1, j2, l1) != 0)
        abort();        /* and it means the same */
    free(j1);
    free(j2);
    man_free(m);
    man_free(m2);
    return 0;
}
