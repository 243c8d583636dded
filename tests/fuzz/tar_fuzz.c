/*
 * tar_fuzz — libFuzzer target for the tar path of backup-fetch
 * (restore/bkf_tar.c): the input is the decoded tar stream of part 1 of a
 * fixed manifest (PG_VERSION, base/1/1259, global/pg_control and a file in
 * tablespace 16400), extracted into a fresh directory.
 *
 * Whatever the input, nothing may crash or leak, nothing may appear beside
 * the data and tablespace directories, and the work done (file bytes hashed
 * and written) may exceed neither the input's size nor the manifest's
 * total: a forged part costs what it carries, within what the manifest
 * allows.
 *
 * Every 512-byte block that carries the "ustar" magic gets its header
 * checksum recomputed before libarchive sees it, so that mutations of the
 * header fields (sizes, types, names, sparse maps) reach bkf_tar instead
 * of dying at libarchive's checksum.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined by build-fuzzer.sh;
 * replayed over tests/fuzz/corpus/tar under gcc in `make check`.  Uses
 * $TMPDIR (default /tmp).
 */
#include <archive.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bkf_tar.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct manifest *man;
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f);
static void cleanup(void);
static uint64_t man_total;
static char base[4096];

static void add(const char *path, const unsigned char *buf, size_t len)
{
    unsigned char d[32];
    unsigned dl = 0;
    char hex[65];
    struct err e = ERR_INIT;

    EVP_Digest(buf, len, d, &dl, EVP_sha256(), NULL);
    hex_encode(d, 32, hex);
    if (man_add_file(man, path, 1, len, 0600, 1700000000, hex, &e) < 0)
        abort();
    man_total += len;
}

/* The manifest the seeds in tests/fuzz/corpus/tar were written for
 * (tests/fuzz/gen_tar_corpus.py writes the same bytes). */
static void setup(void)
{
    static unsigned char rel[8192], ctl[512], ts[1000];
    struct man_part mp = { 1, (uint64_t)1 << 30, 1 << 30, 4 };
    struct err e = ERR_INIT;
    const char *tmp = getenv("TMPDIR");
    size_t i;

    man = man_new();
    man->name = strdup("20261202T000000Z");
    if (man_add_part(man, &mp, &e) < 0 || man_add_tablespace(man, 16400, "/nowhere/ts", &e) < 0)
        abort();
    for (i = 0; i < sizeof rel; i++)
        rel[i] = (unsigned char)(i * 31);
    memset(ctl, 'C', sizeof ctl);
    memset(ts, 'T', sizeof ts);
    add("PG_VERSION", (const unsigned char *)"15\n", 3);
    add("base/1/1259", rel, sizeof rel);
    add("global/pg_control", ctl, sizeof ctl);
    add("pg_tblspc/16400/PG_15_202209061/5/16386", ts, sizeof ts);
    man_sort(man);
    snprintf(base, sizeof base, "%s/walship-tarfuzz-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(base) == NULL)
        abort();
    atexit(cleanup);
}

static void cleanup(void)
{
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A copy of the input with the checksum of every ustar-looking block fixed. */
static unsigned char *fix_checksums(const uint8_t *data, size_t size)
{
    unsigned char *b = malloc(size + 1);
    size_t off;

    if (b == NULL)
        abort();
    memcpy(b, data, size);
    for (off = 0; off + 512 <= size; off += 512) {
        unsigned char *h = b + off;
        unsigned sum = 0;
        int i;

        if (memcmp(h + 257, "ustar", 5) != 0)
            continue;
        memset(h + 148, ' ', 8);
        for (i = 0; i < 512; i++)
            sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum);
        h[155] = ' ';
    }
    return b;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int k;
    struct bkf_tar t;
    struct bkf_tar_worker w;
    struct err e = ERR_INIT;
    struct archive *a;
    unsigned char *buf = fix_checksums(data, size);
    char top[4200], d0[4300], d1[4300];
    int fds[2], rc, n = 0;

    DIR *dir;
    struct dirent *de;
    uint64_t work;

    if (man == NULL)
        setup();
    snprintf(top, sizeof top, "%s/%d", base, k++);
    snprintf(d0, sizeof d0, "%s/data", top);
    snprintf(d1, sizeof d1, "%s/ts", top);
    if (mkdir(top, 0700) < 0 || mkdir(d0, 0700) < 0 || mkdir(d1, 0700) < 0)
        abort();
    fds[0] = open(d0, O_RDONLY | O_DIRECTORY);
    fds[1] = open(d1, O_RDONLY | O_DIRECTORY);
    if (fds[0] < 0 || fds[1] < 0 || bkf_tar_init(&t, man, "fuzz", fds, NULL, &e) < 0 ||
        bkf_tar_worker_init(&w, &t) < 0)
        abort();
    a = archive_read_new();
    archive_read_support_format_tar(a);
    if (archive_read_open_memory(a, buf, size) == ARCHIVE_OK) {
        rc = bkf_tar_part(&w, a, 1, &e);
        if (rc == 0)
            rc = bkf_tar_check_done(&t, &e);
        if (rc < 0 && e.msg[0] == '\0')
            abort();    /* every refusal says why */
        if (getenv("TAR_FUZZ_VERBOSE") != NULL)
            fprintf(stderr, "tar_fuzz: %s (%llu bytes hashed)\n", rc == 0 ? "extracted" : e.msg,
                    (unsigned long long)atomic_load(&t.work));
    }
    work = atomic_load(&t.work);
    if (work > size || work > man_total)
        abort();        /* more hashed than the stream carried or the manifest allows */
    archive_read_free(a);
    free(buf);
    bkf_tar_worker_free(&w);
    bkf_tar_free(&t);
    close(fds[0]);
    close(fds[1]);
    dir = opendir(top);
    while (dir != NULL && (de = readdir(dir)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "data") &&
            strcmp(de->d_name, "ts"))
            abort();    /* written outside the restore roots */
        else
            n++;
    if (dir != NULL)
        closedir(dir);
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    (void)n;
    return 0;
}
