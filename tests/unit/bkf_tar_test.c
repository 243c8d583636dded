/*
 * bkf_tar — the tar path of backup-fetch against forged tar streams whose
 * headers are written by hand here (libarchive does not write GNU sparse
 * entries): old GNU sparse, PAX GNU.sparse 0.1 and 1.0 declaring 8 TiB,
 * declared sizes above the manifest's, files not in the manifest, a file
 * twice, data that stops short.  Each must fail from its header with a
 * clear error, and the work done (file bytes hashed and written, counted by
 * bkf_tar) must stay within what the stream carries and the manifest
 * allows: the measure is bytes, not time.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bkf_tar.h"
#include "tap.h"
#include "unit_fixture.h"
#include "util.h"

#define TIB8 ((uint64_t)8 << 40)
#define MAXTAR (1u << 20)

static char root[] = "/tmp/walship-bkftar-test-XXXXXX";

/* ---- writing tar headers by hand ---- */

struct tarbuf {
    unsigned char *p;
    size_t len;
};

/* An octal field, or base-256 (first byte 0x80) when it does not fit. */
static void num(unsigned char *f, size_t n, uint64_t v)
{
    if (v < ((uint64_t)1 << (3 * (n - 1)))) {
        char tmp[32];

        snprintf(tmp, sizeof tmp, "%0*llo", (int)(n - 1), (unsigned long long)v);
        memcpy(f, tmp, n - 1);
        f[n - 1] = '\0';
        return;
    }
    memset(f, 0, n);
    f[0] = 0x80;
    for (size_t i = n - 1; i > 0 && v; i--, v >>= 8)
        f[i] = (unsigned char)(v & 0xff);
}

static void checksum(unsigned char *h)
{
    unsigned sum = 0;

    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* A header block; gnu selects the old GNU magic ("ustar  \0"). */
static unsigned char *hdr(struct tarbuf *t, const char *name, char type, uint64_t size, int gnu)
{
    unsigned char *h = t->p + t->len;

    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    num(h + 100, 8, type == '5' ? 0755 : 0644);
    num(h + 108, 8, 0);
    num(h + 116, 8, 0);
    num(h + 124, 12, size);
    num(h + 136, 12, 1700000000);
    h[156] = (unsigned char)type;
    memcpy(h + 257, gnu ? "ustar  \0" : "ustar\00000", 8);
    t->len += 512;
    return h;
}

/* `n` bytes of data (byte value `c`), padded to a block. */
static void data(struct tarbuf *t, size_t n, int c)
{
    memset(t->p + t->len, c, n);
    t->len += n;
    if (n % 512) {
        memset(t->p + t->len, 0, 512 - n % 512);
        t->len += 512 - n % 512;
    }
}

/* A pax 'x' header holding `recs` (each "key=value"), NULL-terminated. */
static void pax(struct tarbuf *t, const char *const *recs)
{
    char body[4096];
    size_t used = 0;

    for (; *recs != NULL; recs++) {
        size_t base = strlen(*recs) + 2, d = 1;     /* " " and "\n" around it */

        while (snprintf(NULL, 0, "%zu", base + d) != (int)d)
            d++;
        used += (size_t)snprintf(body + used, sizeof body - used, "%zu %s\n", base + d, *recs);
    }
    checksum(hdr(t, "PaxHeaders/x", 'x', used, 0));
    memcpy(t->p + t->len, body, used);
    t->len += used;
    if (used % 512) {
        memset(t->p + t->len, 0, 512 - used % 512);
        t->len += 512 - used % 512;
    }
}

static void end(struct tarbuf *t)
{
    memset(t->p + t->len, 0, 1024);
    t->len += 1024;
}

/* ---- the manifest and the extraction ---- */

static void sha_of(int c, size_t n, char hex[65])
{
    unsigned char *b = malloc(n + 1), d[32];
    unsigned dl = 0;

    memset(b, c, n);
    EVP_Digest(b, n, d, &dl, EVP_sha256(), NULL);
    hex_encode(d, 32, hex);
    free(b);
}

static struct manifest *manifest(uint64_t size, uint64_t raw)
{
    struct manifest *m = man_new();
    struct man_part mp = { 1, raw, 1, 1 };
    struct err e = ERR_INIT;
    char hex[65];

    m->name = strdup("20261202T000000Z");
    man_add_part(m, &mp, &e);
    sha_of('A', size <= MAXTAR ? (size_t)size : 0, hex);
    man_add_file(m, "base/1/16384", 1, size, 0600, 1700000000, hex, &e);
    man_sort(m);
    return m;
}

struct outcome {
    int rc;
    struct err e;
    uint64_t work;
};

static struct outcome extract(const struct manifest *m, const struct tarbuf *t)
{
    static int k;
    struct outcome o = { -1, ERR_INIT, 0 };
    struct bkf_tar bt;
    struct bkf_tar_worker w;
    struct archive *a = archive_read_new();
    char *dir = xasprintf("%s/out%d", root, k++);
    int fd;

    mkdir(dir, 0700);
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (bkf_tar_init(&bt, m, "test", &fd, NULL, &o.e) < 0) {
        bkf_tar_free(&bt);
        goto out;
    }
    bkf_tar_worker_init(&w, &bt);
    archive_read_support_format_tar(a);
    if (archive_read_open_memory(a, t->p, t->len) != ARCHIVE_OK)
        err_setf(&o.e, ERR_CORRUPT, "open: %s", archive_error_string(a));
    else if ((o.rc = bkf_tar_part(&w, a, 1, &o.e)) == 0)
        o.rc = bkf_tar_check_done(&bt, &o.e);
    o.work = atomic_load(&bt.work);
    bkf_tar_worker_free(&w);
    bkf_tar_free(&bt);
out:
    archive_read_free(a);
    close(fd);
    free(dir);
    return o;
}

static void refused(const struct outcome *o, const char *title, const char *needle, uint64_t max_work)
{
    ok(o->rc < 0 && o->e.code == ERR_CORRUPT, "%s: refused as corrupt", title);
    diag("%s", o->e.msg);
    like(o->e.msg, needle, "%s: the error says why", title);
    ok(o->work <= max_work, "%s: %llu bytes hashed and written (at most %llu)", title,
       (unsigned long long)o->work, (unsigned long long)max_work);
}

/* ---- the cases ---- */

static const char *const sparse_01[] = {
    "GNU.sparse.major=0", "GNU.sparse.minor=1", "GNU.sparse.name=base/1/16384", "GNU.sparse.size=8796093022208",
    "GNU.sparse.numblocks=2", "GNU.sparse.map=0,512,8796093021696,512", NULL
};
static const char *const sparse_10[] = {
    "GNU.sparse.major=1", "GNU.sparse.minor=0", "GNU.sparse.name=base/1/16384",
    "GNU.sparse.realsize=8796093022208", NULL
};

/* backup-fetch takes parts largest first, ties in number order */
static void test_part_order(void)
{
    struct man_part parts[5] = {
        { 1, 64u << 20, 0, 0 }, { 2, 1u << 30, 0, 0 }, { 3, 5u << 20, 0, 0 }, { 4, 64u << 20, 0, 0 },
        { 5, 300u << 20, 0, 0 },
    };
    struct manifest m;
    struct err e = ERR_INIT;
    size_t *o;

    memset(&m, 0, sizeof m);
    m.parts = parts;
    m.nparts = 5;
    o = bkf_part_order(&m, &e);
    ok(o != NULL && o[0] == 1 && o[1] == 4 && o[2] == 0 && o[3] == 3 && o[4] == 2,
       "parts are read largest first (2, 5, 1, 4, 3)");
    free(o);
}

int main(void)
{
    struct tarbuf t = { calloc(1, MAXTAR + 65536), 0 };
    struct manifest *m;
    struct outcome o;
    unsigned char *h;

    if (mkdtemp(root) == NULL)
        return 1;
    test_part_order();

    /* a well-formed stream: the control, its work is its size */
    m = manifest(4096, 8192);
    t.len = 0;
    checksum(hdr(&t, "base/1/", '5', 0, 0));
    checksum(hdr(&t, "base/1/16384", '0', 4096, 0));
    data(&t, 4096, 'A');
    end(&t);
    o = extract(m, &t);
    ok(o.rc == 0, "a well-formed part is extracted: %s", o.e.msg);
    is_int((long long)o.work, 4096, "its work is its 4096 bytes");

    /* old GNU sparse ('S'): two 512-byte regions, 8 TiB apart */
    t.len = 0;
    h = hdr(&t, "base/1/16384", 'S', 1024, 1);
    num(h + 386, 12, 0);
    num(h + 398, 12, 512);
    num(h + 410, 12, TIB8 - 512);
    num(h + 422, 12, 512);
    num(h + 483, 12, TIB8);
    checksum(h);
    data(&t, 1024, 'A');
    end(&t);
    o = extract(m, &t);
    refused(&o, "old GNU sparse, 8 TiB declared, manifest 4096", "sparse", 0);
    man_free(m);
    /* even when a (forged) manifest lists the file at 8 TiB */
    m = manifest(TIB8, TIB8 + 4096);
    o = extract(m, &t);
    refused(&o, "old GNU sparse, manifest also says 8 TiB", "sparse entry", 0);

    /* PAX GNU.sparse 0.1 and 1.0 */
    t.len = 0;
    pax(&t, sparse_01);
    checksum(hdr(&t, "GNUSparseFile.0/16384", '0', 1024, 0));
    data(&t, 1024, 'A');
    end(&t);
    o = extract(m, &t);
    refused(&o, "PAX sparse 0.1, 8 TiB", "sparse entry", 0);
    t.len = 0;
    pax(&t, sparse_10);
    checksum(hdr(&t, "GNUSparseFile.0/16384", '0', 1536, 0));
    {
        static const char map[] = "2\n0\n512\n8796093021696\n512\n";

        memset(t.p + t.len, 0, 512);
        memcpy(t.p + t.len, map, sizeof map - 1);
        t.len += 512;
    }
    data(&t, 1024, 'A');
    end(&t);
    o = extract(m, &t);
    refused(&o, "PAX sparse 1.0, 8 TiB", "sparse entry", 0);
    man_free(m);

    /* a plain entry declaring 8 TiB (base-256 size) against 4096 */
    m = manifest(4096, 8192);
    t.len = 0;
    checksum(hdr(&t, "base/1/16384", '0', TIB8, 0));
    data(&t, 4096, 'A');
    end(&t);
    o = extract(m, &t);
    refused(&o, "a declared size of 8 TiB, manifest 4096", "size 8796093022208 differs from the manifest's 4096", 0);

    /* an entry not in the manifest, then one listed twice */
    t.len = 0;
    checksum(hdr(&t, "base/1/99999", '0', 4096, 0));
    data(&t, 4096, 'A');
    end(&t);
    o = extract(m, &t);
    refused(&o, "an entry not in the manifest", "not in the manifest", 0);
    t.len = 0;
    for (int i = 0; i < 2; i++) {
        checksum(hdr(&t, "base/1/16384", '0', 4096, 0));
        data(&t, 4096, 'A');
    }
    end(&t);
    o = extract(m, &t);
    refused(&o, "more entries than the manifest lists (a file twice)", "appears twice", 4096);
    man_free(m);

    /* the manifest says 1 MiB, the header too, the data stops after 4 KiB */
    m = manifest(MAXTAR, MAXTAR + 4096);
    t.len = 0;
    checksum(hdr(&t, "base/1/16384", '0', MAXTAR, 0));
    data(&t, 4096, 'A');
    o = extract(m, &t);
    refused(&o, "data that stops short of the declared size", "Truncated", 4096);
    man_free(m);

    /* a manifest whose files do not fit in their part's tar bytes */
    m = manifest(TIB8, 1 << 20);
    o = extract(m, &t);
    refused(&o, "a manifest listing 8 TiB in a 1 MiB part", "add up to more than its 1048576 tar bytes", 0);
    man_free(m);

    free(t.p);
    tf_rmrf(root);
    return done_testing();
}
