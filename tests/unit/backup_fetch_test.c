/*
 * backup_fetch — unpacking backups (restore/backup_fetch.c) and the
 * backup-fetch / backup-list commands, against synthetic backups written
 * into a file:// region: parts are pax tar streams made with libarchive and
 * encoded with the object encoder, the manifest comes from man_to_json.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_fetch.h"
#include "bkf_fs.h"
#include "catalog.h"
#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "obj.h"
#include "stor.h"
#include "tap.h"
#include "unit_fixture.h"
#include "util.h"

#define MAXP 4

static char root[] = "/tmp/walship-bkf-test-XXXXXX";
static struct config *conf;
static struct keyring *kr;
static const unsigned char test_key[KEYS_LEN] = "walship backup-fetch test key!!";

/* ---- the command edge that src/cmd/main.c provides in the program ---- */

int cmd_fail(const struct err *e)
{
    log_error("%s", e->msg);
    return err_exit_status(e);
}

int cmd_usage(const char *name, const char *fmt, ...)
{
    (void)name;
    (void)fmt;
    return EXIT_USAGE;
}

int cmd_open_region(struct cmd_ctx *ctx, const char *name, struct stor **out, struct err *e)
{
    const struct region_conf *rc = config_region(ctx->conf, name ? name : ctx->conf->regions[0].name);

    if (rc == NULL)
        return err_setf(e, ERR_CONFIG, "no region named \"%s\"", name);
    return stor_open(rc, ctx->conf, NULL, out, e);
}

/* ---- building backups ---- */

enum { F_NO_MANIFEST = 1, F_BAD_SHA = 2, F_NOT_IN_TAR = 4, F_WRONG_PART = 8, F_BAD_SIZE = 16 };

#define TEST_SYSID 7311234567890123456ULL

struct bb {
    struct repo *s;
    struct manifest *m;
    struct archive *a[MAXP];
    struct sink *up[MAXP];
    uint64_t raw[MAXP], stored[MAXP];     /* counted as written: the manifest's sizes */
    char label[256];
    char tsmap[1024];
    int nparts;
};

static la_ssize_t bb_write(struct archive *a, void *arg, const void *buf, size_t len)
{
    struct sink **up = arg;
    struct err e = ERR_INIT;

    (void)a;
    return sink_write(*up, buf, len, &e) < 0 ? -1 : (la_ssize_t)len;
}

static void sha_hex(const void *data, size_t len, char hex[65])
{
    unsigned char d[32];
    unsigned n = 0;

    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    hex_encode(d, 32, hex);
}

static struct bb *bb_begin(const char *region_dir, const char *name, int nparts, int64_t start)
{
    struct bb *b = calloc(1, sizeof *b);
    struct region_conf rc;
    struct err e = ERR_INIT;
    char url[PATH_MAX];
    int i;

    memset(&rc, 0, sizeof rc);
    snprintf(url, sizeof url, "file://%s", region_dir);
    rc.name = "build";
    rc.url = url;
    {
        struct repo_ident id;

        repo_ident_init(&id, TEST_SYSID, 15, 16u << 20);
        if (repo_open(&rc, conf, NULL, kr, 0, &b->s, &e) < 0 || repo_ident_ensure(b->s, &id, &e) < 0)
            diag("repo: %s", e.msg);
    }
    b->m = tf_manifest_new(name);
    b->m->start_time = start;
    b->m->stop_time = start + 40;
    b->m->pg_version = 150004;
    b->m->compression = strdup("zstd:3");
    b->m->key_id = strdup(keys_current(kr)->id_hex);
    b->nparts = nparts;
    snprintf(b->label, sizeof b->label,
             "START WAL LOCATION: 1/28 (file 000000010000000100000000)\nCHECKPOINT LOCATION: 1/60\n"
             "LABEL: walship %s\nSTART TIMELINE: 1\n", name);
    for (i = 0; i < nparts; i++) {
        struct obj_opts oo;
        struct sink *up = NULL;
        char key[256];

        snprintf(key, sizeof key, "backups/%s/part-%04d", name, i + 1);
        repo_obj_opts(b->s, key, 3, &oo);
        if (stor_put(b->s->st, key, &up, &e) < 0 || (up = count_sink_new(up, &b->stored[i])) == NULL ||
            obj_encoder_new(up, &oo, &b->up[i], &e) < 0 || (b->up[i] = count_sink_new(b->up[i], &b->raw[i])) == NULL)
            diag("part %d: %s", i + 1, e.msg);
        b->a[i] = archive_write_new();
        archive_write_set_format_pax(b->a[i]);
        archive_write_set_bytes_in_last_block(b->a[i], 1);
        archive_write_open(b->a[i], &b->up[i], NULL, bb_write, NULL);
    }
    return b;
}

static void bb_entry(struct bb *b, int part, const char *path, unsigned type, unsigned mode, int64_t mtime,
                     const void *data, size_t len, const char *link)
{
    struct archive_entry *ae = archive_entry_new();

    archive_entry_set_pathname(ae, path);
    archive_entry_set_filetype(ae, type);
    archive_entry_set_perm(ae, mode);
    archive_entry_set_mtime(ae, (time_t)mtime, 0);
    archive_entry_set_size(ae, type == AE_IFREG && link == NULL ? (la_int64_t)len : 0);
    if (type == AE_IFLNK)
        archive_entry_set_symlink(ae, link);
    else if (link != NULL)
        archive_entry_set_hardlink(ae, link);
    if (archive_write_header(b->a[part - 1], ae) != ARCHIVE_OK)
        diag("write header %s: %s", path, archive_error_string(b->a[part - 1]));
    if (type == AE_IFREG && link == NULL && len > 0)
        archive_write_data(b->a[part - 1], data, len);
    archive_entry_free(ae);
}

static void bb_dir(struct bb *b, int part, const char *path, unsigned mode, int64_t mtime)
{
    bb_entry(b, part, path, AE_IFDIR, mode, mtime, NULL, 0, NULL);
}

static void bb_file(struct bb *b, int part, const char *path, const void *data, size_t len, unsigned mode,
                    int64_t mtime, int flags)
{
    char hex[65];
    struct err e = ERR_INIT;

    if (!(flags & F_NOT_IN_TAR))
        bb_entry(b, part, path, AE_IFREG, mode, mtime, data, len, NULL);
    if (flags & F_NO_MANIFEST)
        return;
    sha_hex(data, len, hex);
    if (flags & F_BAD_SHA)
        hex[10] = hex[10] == '0' ? '1' : '0';
    if (man_add_file(b->m, path, (uint32_t)((flags & F_WRONG_PART) ? part % b->nparts + 1 : part),
                     (flags & F_BAD_SIZE) ? len + 1 : len, mode, mtime, hex, &e) < 0)
        diag("man_add_file: %s", e.msg);
    b->m->original_size += len;
}

static int bb_put_small(struct bb *b, const char *what, const char *text)
{
    struct obj_opts oo;
    struct sink *up = NULL, *enc = NULL;
    struct err e = ERR_INIT;
    char key[256];
    int rc = -1;

    snprintf(key, sizeof key, "backups/%s/%s", b->m->name, what);
    repo_obj_opts(b->s, key, 3, &oo);
    if (stor_put(b->s->st, key, &up, &e) < 0)
        goto out;
    if (obj_encoder_new(up, &oo, &enc, &e) < 0)
        goto out;
    up = NULL;
    if (sink_write(enc, text, strlen(text), &e) < 0 || sink_close(enc, &e) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        diag("put %s: %s", key, e.msg);
    sink_free(enc);
    sink_free(up);
    return rc;
}

/* Finish the parts, write the label (and tablespace_map) and, unless
 * `incomplete`, the manifest.  Returns the manifest (caller frees). */
static struct manifest *bb_end(struct bb *b, int incomplete)
{
    struct err e = ERR_INIT;
    struct manifest *m = b->m;
    int i;

    for (i = 0; i < b->nparts; i++) {
        struct man_part mp;

        archive_write_close(b->a[i]);
        archive_write_free(b->a[i]);
        if (sink_close(b->up[i], &e) < 0)
            diag("close part %d: %s", i + 1, e.msg);
        sink_free(b->up[i]);
        memset(&mp, 0, sizeof mp);
        mp.number = (uint32_t)i + 1;
        mp.raw_size = b->raw[i];
        mp.stored_size = b->stored[i];
        m->stored_size += b->stored[i];
        man_add_part(m, &mp, &e);
    }
    bb_put_small(b, "backup_label", b->label);
    if (m->ntablespaces > 0) {
        m->has_tablespace_map = 1;
        bb_put_small(b, "tablespace_map", b->tsmap);
    }
    if (!incomplete) {
        char *json = NULL;
        size_t len = 0;

        man_sort(m);
        if (man_to_json(m, &json, &len, &e) < 0)
            diag("man_to_json: %s", e.msg);
        else
            bb_put_small(b, "manifest.json", json);
        free(json);
    }
    repo_free(b->s);
    free(b);
    return m;
}

static void bb_tablespace(struct bb *b, uint32_t oid, const char *path)
{
    struct err e = ERR_INIT;
    size_t n = strlen(b->tsmap);

    man_add_tablespace(b->m, oid, path, &e);
    snprintf(b->tsmap + n, sizeof b->tsmap - n, "%u %s\n", (unsigned)oid, path);
}

/* ---- checking ---- */

static char *path_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path_of(const char *fmt, ...)
{
    static char buf[16][PATH_MAX];
    static int k;
    char *p = buf[k++ % 16];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p, PATH_MAX, fmt, ap);
    va_end(ap);
    return p;
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static int file_is(const char *p, const void *data, size_t len, unsigned mode, int64_t mtime)
{
    unsigned char *got = NULL;
    size_t n = 0;
    struct stat st;
    struct err e = ERR_INIT;
    int r;

    if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
        diag("%s: missing or not a file", p);
        return 0;
    }
    if ((st.st_mode & 07777) != mode || st.st_mtime != mtime) {
        diag("%s: mode %o mtime %lld", p, (unsigned)(st.st_mode & 07777), (long long)st.st_mtime);
        return 0;
    }
    if (read_file_all(p, 64u << 20, &got, &n, &e) < 0)
        return 0;
    r = n == len && (len == 0 || memcmp(got, data, len) == 0);
    free(got);
    return r;
}

static int dir_is(const char *p, unsigned mode, int64_t mtime)
{
    struct stat st;

    if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0;
    if ((st.st_mode & 07777) != mode || st.st_mtime != mtime)
        diag("%s: mode %o mtime %lld", p, (unsigned)(st.st_mode & 07777), (long long)st.st_mtime);
    return (st.st_mode & 07777) == mode && st.st_mtime == mtime;
}

static char *slurp(const char *p)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;
    char *s;

    if (read_file_all(p, 1 << 20, &buf, &n, &e) < 0)
        return NULL;
    s = realloc(buf, n + 1);
    if (s == NULL) {
        free(buf);
        return NULL;
    }
    s[n] = '\0';
    return s;
}

static struct bkf_progress last_progress;
static int progress_calls;

static void on_progress(const struct bkf_progress *p, void *arg)
{
    (void)arg;
    last_progress = *p;
    progress_calls++;
}

static int fetch(const char *region_dir, const struct manifest *m, const char *dir, const struct bkf_tsmap *maps,
                 size_t nmaps, struct err *e)
{
    struct region_conf rc;
    struct repo *s = NULL;
    struct bkf_opts o;
    char url[PATH_MAX];
    int r;

    memset(&rc, 0, sizeof rc);
    snprintf(url, sizeof url, "file://%s", region_dir);
    rc.name = "test";
    rc.url = url;
    if (repo_open(&rc, conf, NULL, kr, REPO_OPEN_IDENTITY, &s, e) < 0)
        return -1;
    memset(&o, 0, sizeof o);
    o.parallel = 2;
    o.tsmap = maps;
    o.ntsmap = nmaps;
    o.progress = on_progress;
    progress_calls = 0;
    r = bkf_fetch(s, &rc, conf, m, dir, &o, NULL, e);
    repo_free(s);
    return r;
}

/* Run a command with stdout captured into *out (caller frees). */
static int run_cmd(char **out, int (*fn)(struct cmd_ctx *), const char *region, ...)
{
    char *argv[16];
    struct cmd_ctx ctx;
    va_list ap;
    int argc = 0, saved, fd, status;
    char *cap = path_of("%s/stdout", root);

    va_start(ap, region);
    while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    memset(&ctx, 0, sizeof ctx);
    ctx.conf = conf;
    ctx.region = region;
    ctx.argc = argc;
    ctx.argv = argv;
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    status = fn(&ctx);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    *out = slurp(cap);
    return status;
}

/* ---- tests ---- */

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (unsigned char)((i % 8192) < 4096 ? 0 : (i * 131 + seed * 7 + (i >> 11)) & 0xff);
    return p;
}

#define T0 1763790000

static void test_round_trip(void)
{
    char reg[PATH_MAX], ts1[PATH_MAX], tsnew[PATH_MAX], out[PATH_MAX];
    unsigned char *big = pattern(3u << 20, 1), *mid = pattern(300000, 2), *ctl = pattern(8192, 3);
    struct manifest *m;
    struct bb *b;
    struct err e = ERR_INIT;
    struct bkf_tsmap map;
    char link[PATH_MAX], *s;
    ssize_t n;

    snprintf(reg, sizeof reg, "%s/region", root);
    snprintf(ts1, sizeof ts1, "%s/ts1", root);
    snprintf(tsnew, sizeof tsnew, "%s/ts1new", root);
    snprintf(out, sizeof out, "%s/out1", root);

    b = bb_begin(reg, "20260101T000000Z", 3, T0);
    bb_tablespace(b, 16385, ts1);
    bb_dir(b, 1, "base", 0700, T0 - 100);
    bb_dir(b, 1, "base/1", 0700, T0 - 90);
    bb_dir(b, 1, "global", 0700, T0 - 80);
    bb_dir(b, 1, "pg_wal", 0700, T0 - 70);
    bb_dir(b, 1, "pg_notify", 0750, T0 - 60);
    bb_dir(b, 1, "pg_tblspc", 0700, T0 - 50);
    bb_dir(b, 1, "pg_tblspc/16385", 0700, T0 - 45);
    bb_dir(b, 1, "pg_tblspc/16385/PG_15_202209061", 0700, T0 - 40);
    bb_dir(b, 1, "pg_tblspc/16385/PG_15_202209061/5", 0700, T0 - 30);
    bb_file(b, 1, "PG_VERSION", "15\n", 3, 0600, T0 - 1000, 0);
    bb_file(b, 1, "base/1/1259", mid, 300000, 0600, T0 - 20, 0);
    bb_file(b, 1, "global/pg_control", ctl, 8192, 0600, T0 - 10, 0);
    bb_file(b, 2, "base/1/16384", big, 3u << 20, 0640, T0 - 5, 0);
    bb_file(b, 2, "base/1/empty", "", 0, 0600, T0 - 4, 0);
    /* sizes that are not multiples of a block: 3 MB - 1234 bytes, 2 MB + 1,
     * exactly 1 MB (kept from the O_DIRECT trial, docs/BACKUP.md) */
    bb_file(b, 2, "base/1/16390", big + 7, (3u << 20) - 1234, 0600, T0 - 4, 0);
    bb_file(b, 3, "base/1/16391", big + 1, (2u << 20) + 1, 0600, T0 - 4, 0);
    bb_file(b, 3, "base/1/16392", big + 3, 1u << 20, 0600, T0 - 4, 0);
    bb_file(b, 3, "pg_tblspc/16385/PG_15_202209061/5/16386", mid, 200000, 0600, T0 - 3, 0);
    bb_file(b, 3, "postgresql.auto.conf", "# auto\n", 7, 0600, T0 - 2, 0);
    m = bb_end(b, 0);

    ok(fetch(reg, m, out, NULL, 0, &e) == 0, "round trip: fetch succeeds: %s", e.msg);
    ok(progress_calls > 0, "progress was reported");
    ok(last_progress.bytes_done == m->original_size && last_progress.files_done == m->nfiles &&
       last_progress.parts_done == 3 && last_progress.parts_total == 3, "the last progress report is complete");
    ok(file_is(path_of("%s/PG_VERSION", out), "15\n", 3, 0600, T0 - 1000), "PG_VERSION: bytes, mode, mtime");
    ok(file_is(path_of("%s/base/1/1259", out), mid, 300000, 0600, T0 - 20), "base/1/1259 restored");
    ok(file_is(path_of("%s/global/pg_control", out), ctl, 8192, 0600, T0 - 10), "global/pg_control restored");
    ok(file_is(path_of("%s/base/1/16384", out), big, 3u << 20, 0640, T0 - 5), "3 MB file in part 2, mode 0640");
    ok(file_is(path_of("%s/base/1/empty", out), "", 0, 0600, T0 - 4), "empty file");
    ok(file_is(path_of("%s/base/1/16390", out), big + 7, (3u << 20) - 1234, 0600, T0 - 4),
       "3 MB - 1234 bytes: exact");
    ok(file_is(path_of("%s/base/1/16391", out), big + 1, (2u << 20) + 1, 0600, T0 - 4), "2 MB + 1 byte: exact");
    ok(file_is(path_of("%s/base/1/16392", out), big + 3, 1u << 20, 0600, T0 - 4), "exactly 1 MB: exact");
    ok(file_is(path_of("%s/postgresql.auto.conf", out), "# auto\n", 7, 0600, T0 - 2), "file in part 3");
    ok(dir_is(path_of("%s/base/1", out), 0700, T0 - 90), "directory base/1: mode and mtime");
    ok(dir_is(path_of("%s/pg_notify", out), 0750, T0 - 60), "empty directory pg_notify (0750)");
    ok(dir_is(path_of("%s/pg_wal", out), 0700, T0 - 70), "empty directory pg_wal");
    ok(file_is(path_of("%s/PG_15_202209061/5/16386", ts1), mid, 200000, 0600, T0 - 3),
       "tablespace file restored to the original path");
    ok(dir_is(path_of("%s/PG_15_202209061/5", ts1), 0700, T0 - 30), "tablespace directory with its mtime");
    n = readlink(path_of("%s/pg_tblspc/16385", out), link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    is_str(link, ts1, "pg_tblspc/16385 is a symlink to the tablespace");
    s = slurp(path_of("%s/backup_label", out));
    like(s, "LABEL: walship 20260101T000000Z", "backup_label written");
    free(s);
    s = slurp(path_of("%s/tablespace_map", out));
    is_str(s, path_of("16385 %s\n", ts1), "tablespace_map written unchanged");
    free(s);

    /* the original tablespace directory is now in use */
    ok(fetch(reg, m, path_of("%s/out1b", root), NULL, 0, &e) < 0 && e.code == ERR_USAGE,
       "a non-empty tablespace directory is refused");
    like(e.msg, ts1, "the error names the tablespace directory");
    ok(!exists(path_of("%s/out1b", root)), "nothing was created");

    map.old_path = ts1;
    map.new_path = tsnew;
    ok(fetch(reg, m, path_of("%s/out2", root), &map, 1, &e) == 0, "fetch with --tablespace-map: %s", e.msg);
    ok(file_is(path_of("%s/PG_15_202209061/5/16386", tsnew), mid, 200000, 0600, T0 - 3),
       "tablespace file restored to the mapped path");
    n = readlink(path_of("%s/out2/pg_tblspc/16385", root), link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    is_str(link, tsnew, "the symlink points to the mapped path");
    s = slurp(path_of("%s/out2/tablespace_map", root));
    is_str(s, path_of("16385 %s\n", tsnew), "tablespace_map has the mapped path");
    free(s);
    map.old_path = "/nowhere";
    ok(fetch(reg, m, path_of("%s/out2b", root), &map, 1, &e) < 0 && e.code == ERR_USAGE,
       "a mapping for a tablespace the backup lacks is refused");

    mkdir(path_of("%s/out3", root), 0700);
    close(open(path_of("%s/out3/junk", root), O_WRONLY | O_CREAT, 0600));
    map.old_path = ts1;
    map.new_path = path_of("%s/ts1-other", root);
    ok(fetch(reg, m, path_of("%s/out3", root), &map, 1, &e) < 0 && e.code == ERR_USAGE, "a non-empty DIR is refused");
    like(e.msg, "not empty", "the error says why");
    ok(!exists(path_of("%s/out3/backup_label", root)), "no backup_label in the refused DIR");
    man_free(m);
    free(big);
    free(mid);
    free(ctl);
}

/* One tampered backup: `how` selects the damage. */
static void test_tampered(const char *title, int how, const char *needle)
{
    char reg[PATH_MAX], out[PATH_MAX], name[32];
    struct bb *b;
    struct manifest *m;
    struct err e = ERR_INIT;
    unsigned char *data = pattern(600000, 9), *big = malloc(3000000);
    uint64_t x = 42;
    size_t i;
    static int k;

    snprintf(name, sizeof name, "20260201T0000%02dZ", k);
    snprintf(reg, sizeof reg, "%s/region-bad", root);
    snprintf(out, sizeof out, "%s/bad%02d", root, k++);
    b = bb_begin(reg, name, 2, T0);
    bb_dir(b, 1, "base", 0700, T0);
    bb_file(b, 1, "PG_VERSION", "15\n", 3, 0600, T0, 0);
    switch (how) {
    case 1: bb_file(b, 2, "../escape", "x", 1, 0600, T0, 0); break;
    case 2: bb_file(b, 2, path_of("%s/abs-x", root), "x", 1, 0600, T0, 0); break;
    case 3: bb_entry(b, 2, "base/link", AE_IFLNK, 0777, T0, NULL, 0, root); break;
    case 4: bb_entry(b, 2, "base/hard", AE_IFREG, 0600, T0, NULL, 0, "PG_VERSION"); break;
    case 5: bb_file(b, 2, "base/extra", "x", 1, 0600, T0, F_NO_MANIFEST); break;
    case 6: bb_file(b, 2, "base/damaged", data, 600000, 0600, T0, F_BAD_SHA); break;
    case 7: bb_file(b, 2, "base/missing", "x", 1, 0600, T0, F_NOT_IN_TAR); break;
    case 9: bb_file(b, 2, "base/moved", "x", 1, 0600, T0, F_WRONG_PART); break;
    case 10: bb_file(b, 2, "base/size", "x", 1, 0600, T0, F_BAD_SIZE); break;
    case 11: bb_entry(b, 2, "base/fifo", AE_IFIFO, 0600, T0, NULL, 0, NULL); break;
    case 12: bb_file(b, 2, "base/./dot", "x", 1, 0600, T0, 0); break;
    case 16: {
        /* libarchive's pax writer writes a GNU.sparse 1.0 entry: 1 KB of
         * data declaring 8 TiB, listed in the manifest at 1 KB */
        struct archive_entry *ae = archive_entry_new();
        struct err me = ERR_INIT;

        archive_entry_set_pathname(ae, "base/sparse");
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, 0600);
        archive_entry_set_size(ae, (la_int64_t)8 << 40);
        archive_entry_sparse_add_entry(ae, 0, 512);
        archive_entry_sparse_add_entry(ae, ((la_int64_t)8 << 40) - 512, 512);
        archive_write_header(b->a[1], ae);
        archive_write_data(b->a[1], data, 1024);
        archive_entry_free(ae);
        char zero_sha[65];

        memset(zero_sha, '0', 64);
        zero_sha[64] = '\0';
        man_add_file(b->m, "base/sparse", 2, 1024, 0600, T0, zero_sha, &me);
        break;
    }
    default:
        for (i = 0; i < 3000000; i++)
            big[i] = (unsigned char)((x = x * 6364136223846793005ull + 1442695040888963407ull) >> 56);
        bb_file(b, 2, "base/big", big, 3000000, 0600, T0, 0);
        break;
    }
    m = bb_end(b, 0);
    if (how == 13)
        m->parts[1].raw_size -= 100;        /* the part decodes to more than the manifest says */
    if (how == 14)
        m->parts[1].stored_size -= 1;       /* the object is longer than the manifest says */
    if (how == 15)
        m->parts[1].raw_size += 512;        /* the part decodes to less */
    if (how == 8) {
        /* flip one byte in the middle of part 2 as stored */
        char *p = path_of("%s/backups/%s/part-0002", reg, name);
        int fd = open(p, O_RDWR);
        struct stat st;
        unsigned char c;

        fstat(fd, &st);
        pread(fd, &c, 1, st.st_size / 2);
        c ^= 0x10;
        pwrite(fd, &c, 1, st.st_size / 2);
        close(fd);
    }
    ok(fetch(reg, m, out, NULL, 0, &e) < 0, "%s: refused", title);
    diag("%s", e.msg);
    is_int(e.code, ERR_CORRUPT, "%s: as corrupt", title);
    like(e.msg, needle, "%s: the error names it", title);
    like(e.msg, "part 2", "%s: the error names the part", title);
    ok(!exists(path_of("%s/backup_label", out)), "%s: no backup_label", title);
    if (how == 1)
        ok(!exists(path_of("%s/escape", root)), "%s: nothing written outside DIR", title);
    if (how == 2)
        ok(!exists(path_of("%s/abs-x", root)), "%s: nothing written at the absolute path", title);
    if (how == 3)
        ok(!exists(path_of("%s/base/link", out)), "%s: no symlink created", title);
    if (how == 8)
        like(e.msg, "while writing \"base/big\"", "%s: the error names the file being written", title);
    man_free(m);
    free(data);
    free(big);
}

static void test_commands(void)
{
    char reg2[PATH_MAX], empty[PATH_MAX], *s = NULL;
    struct bb *b;
    struct err e = ERR_INIT;
    json_t *j;
    int st;

    snprintf(reg2, sizeof reg2, "%s/region2", root);
    snprintf(empty, sizeof empty, "%s/region-empty", root);
    mkdir(empty, 0700);
    mkdir(reg2, 0700);
    config_add_region_url(conf, "empty", path_of("file://%s", empty), &e);
    config_add_region_url(conf, "r2", path_of("file://%s", reg2), &e);

    /* the first region holds only an incomplete backup (listing an empty
     * backups/ hits a qsort(NULL, 0) in storage/fs/fs.c under UBSan) */
    b = bb_begin(empty, "20250101T000000Z", 1, T0 - 86400);
    bb_file(b, 1, "PG_VERSION", "15\n", 3, 0600, T0, 0);
    man_free(bb_end(b, 1));
    b = bb_begin(reg2, "20260301T000000Z", 1, T0);
    bb_file(b, 1, "PG_VERSION", "15\n", 3, 0600, T0, 0);
    man_free(bb_end(b, 0));
    b = bb_begin(reg2, "20260302T000000Z", 1, T0 + 86400);
    bb_file(b, 1, "PG_VERSION", "15\n", 3, 0600, T0, 0);
    bb_file(b, 1, "newer", "yes\n", 4, 0600, T0, 0);
    man_free(bb_end(b, 0));
    b = bb_begin(reg2, "20260303T000000Z", 1, T0 + 2 * 86400);
    bb_file(b, 1, "PG_VERSION", "15\n", 3, 0600, T0, 0);
    man_free(bb_end(b, 1));

    st = run_cmd(&s, cmd_backup_fetch_run, NULL, "backup-fetch", "LATEST", path_of("%s/latest", root), NULL);
    is_int(st, 0, "backup-fetch LATEST succeeds (the first region has no complete backup)");
    like(s, "20260302T000000Z", "it reports the newest complete backup");
    like(s, "region r2", "it names the region");
    free(s);
    s = slurp(path_of("%s/latest/backup_label", root));
    like(s, "LABEL: walship 20260302T000000Z", "LATEST skipped the incomplete newer backup");
    free(s);
    ok(exists(path_of("%s/latest/newer", root)), "the newest complete backup's files are there");

    st = run_cmd(&s, cmd_backup_fetch_run, NULL, "backup-fetch", "20260303T000000Z", path_of("%s/inc", root), NULL);
    is_int(st, 1, "backup-fetch of an incomplete backup: not found");
    free(s);
    st = run_cmd(&s, cmd_backup_fetch_run, "empty", "backup-fetch", "LATEST", path_of("%s/inc", root), NULL);
    is_int(st, 1, "backup-fetch --region with no complete backup: not found");
    free(s);
    st = run_cmd(&s, cmd_backup_fetch_run, NULL, "backup-fetch", "LATEST", NULL);
    is_int(st, 2, "backup-fetch without DIR: usage");
    free(s);
    st = run_cmd(&s, cmd_backup_fetch_run, NULL, "backup-fetch", "LATEST", path_of("%s/x", root),
                 "--tablespace-map", "nonsense", NULL);
    is_int(st, 2, "backup-fetch with a bad --tablespace-map: usage");
    free(s);

    st = run_cmd(&s, cmd_backup_list_run, "r2", "backup-list", NULL);
    is_int(st, 0, "backup-list --region r2");
    like(s, "20260302T000000Z", "lists the complete backups");
    ok(s != NULL && strstr(s, "20260303T000000Z") == NULL, "but not the incomplete one");
    like(s, "1/28", "with the start LSN");
    free(s);
    st = run_cmd(&s, cmd_backup_list_run, "r2", "backup-list", "--all", NULL);
    is_int(st, 0, "backup-list --all");
    ok(s != NULL && strstr(s, "20260303T000000Z") != NULL && strstr(s, "INCOMPLETE") != NULL,
       "--all shows the incomplete backup, marked");
    free(s);
    st = run_cmd(&s, cmd_backup_list_run, NULL, "backup-list", "--json", "--all", NULL);
    is_int(st, 0, "backup-list --json --all");
    j = s ? json_loads(s, 0, NULL) : NULL;
    ok(json_is_array(j) && json_array_size(j) == 2, "JSON: an array of the 2 regions");
    {
        json_t *r2 = json_array_get(j, 1), *bk = json_object_get(r2, "backups");

        is_str(json_string_value(json_object_get(r2, "region")), "r2", "JSON: region name");
        is_int(json_array_size(bk), 3, "JSON: r2 has 3 backups with --all");
        ok(json_is_false(json_object_get(json_array_get(bk, 2), "complete")), "JSON: the last is incomplete");
        is_str(json_string_value(json_object_get(json_array_get(bk, 1), "start_lsn")), "1/28", "JSON: start_lsn");
        is_int(json_integer_value(json_object_get(json_array_get(bk, 1), "files")), 2, "JSON: file count");
    }
    json_decref(j);
    free(s);

    config_add_region_url(conf, "dead", path_of("file://%s/no-such-dir", root), &e);
    st = run_cmd(&s, cmd_backup_list_run, NULL, "backup-list", NULL);
    is_int(st, 3, "backup-list with an unreachable region exits 3");
    like(s, "20260302T000000Z", "after listing the other regions");
    like(s, "region dead", "the failed region is reported");
    free(s);
}

/* The tablespace_map restore writes, from a backup's map read as
 * PostgreSQL reads it (escapes, CR LF, a last line without newline). */
static void test_tsmap_build(void)
{
    struct manifest *m = man_new();
    struct err e = ERR_INIT;
    const char *targets[2] = { "/new/a\\b", "/new/line\nbreak" };
    char *out = NULL;
    size_t len = 0;
    static const char good[] = "16385 /old/x\\\\y\r\n16386 /old/nl\\\nz\n77 /elsewhere\n\n";
    static const char moved[] = "16385 /old/x\\\\y\n16386 /etc\n";
    static const char twice[] = "16385 /old/x\\\\y\n16385 /old/x\\\\y";
    static const char junk[] = "16385/old/x\n";

    m->name = strdup("B");
    man_add_tablespace(m, 16385, "/old/x\\y", &e);
    man_add_tablespace(m, 16386, "/old/nl\nz", &e);
    ok(bkf_build_tsmap((const unsigned char *)good, strlen(good), m, targets, NULL, &out, &len, &e) == 0,
       "a map matching the manifest is accepted: %s", e.msg);
    is_str(out != NULL ? out : "", "16385 /new/a\\\\b\n16386 /new/line\\\nbreak\n",
           "each line gets its target, escaped; a tablespace the manifest lacks is left out");
    is_int((int)len, (int)strlen("16385 /new/a\\\\b\n16386 /new/line\\\nbreak\n"), "its length");
    free(out);
    out = NULL;
    e = (struct err)ERR_INIT;
    ok(bkf_build_tsmap((const unsigned char *)moved, strlen(moved), m, targets, NULL, &out, &len, &e) < 0 &&
       e.code == ERR_CORRUPT && strstr(e.msg, "/etc") != NULL, "a map moving a tablespace is refused: %s", e.msg);
    e = (struct err)ERR_INIT;
    ok(bkf_build_tsmap((const unsigned char *)twice, strlen(twice), m, targets, NULL, &out, &len, &e) < 0 &&
       e.code == ERR_CORRUPT, "a map naming a tablespace twice is refused: %s", e.msg);
    e = (struct err)ERR_INIT;
    ok(bkf_build_tsmap((const unsigned char *)junk, strlen(junk), m, targets, NULL, &out, &len, &e) < 0 &&
       e.code == ERR_CORRUPT, "a line that is not OID PATH is refused: %s", e.msg);
    ok(bkf_abs_path_ok("/srv/ts") && bkf_abs_path_ok("/a b/c.d/..e") && !bkf_abs_path_ok("/srv/../x") &&
       !bkf_abs_path_ok("/srv//x") && !bkf_abs_path_ok("/srv/./x") && !bkf_abs_path_ok("/srv/x/") &&
       !bkf_abs_path_ok("srv/x") && !bkf_abs_path_ok("/") && !bkf_abs_path_ok("/srv/.."),
       "tablespace paths: absolute and canonical only");
    man_free(m);
}

int main(void)
{
    struct err e = ERR_INIT;
    char *keyfile, hex[65];
    int fd;

    log_init("backup-fetch-test", LOG_ERROR);
    if (mkdtemp(root) == NULL)
        return 1;
    conf = config_new_default();
    kr = keys_new();
    keys_add(kr, test_key, 1, "test", &e);
    keyfile = path_of("%s/key", root);
    hex_encode(test_key, KEYS_LEN, hex);
    fd = open(keyfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    write(fd, hex, 64);
    close(fd);
    config_set(conf, "key_file", keyfile, "test", &e);
    config_set(conf, "parallel", "2", "test", &e);
    mkdir(path_of("%s/region", root), 0700);
    mkdir(path_of("%s/region-bad", root), 0700);

    test_tsmap_build();
    test_round_trip();
    test_tampered("an entry ../escape", 1, "../escape");
    test_tampered("an absolute path", 2, "abs-x");
    test_tampered("a symlink entry", 3, "base/link");
    test_tampered("a hardlink entry", 4, "base/hard");
    test_tampered("a file not in the manifest", 5, "base/extra");
    test_tampered("a file whose SHA-256 differs", 6, "base/damaged");
    test_tampered("a manifest file missing from every part", 7, "base/missing");
    test_tampered("a flipped byte in a part", 8, "part-0002");
    test_tampered("a file in the wrong part", 9, "base/moved");
    test_tampered("a size that differs from the manifest", 10, "base/size");
    test_tampered("a fifo entry", 11, "base/fifo");
    test_tampered("a . component", 12, "base/./dot");
    test_tampered("a part decoding to more tar bytes than the manifest's", 13, "more than the manifest's");
    test_tampered("a part object longer than the manifest's", 14, "stored part holds more than the manifest's");
    test_tampered("a part decoding to fewer tar bytes than the manifest's", 15, "the manifest says");
    test_tampered("a sparse entry declaring 8 TiB (written by libarchive)", 16, "sparse entry");
    test_commands();

    keys_free(kr);
    config_free(conf);
    tf_rmrf(root);
    return done_testing();
}
