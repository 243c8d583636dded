/* util: checked number, size, duration and boolean parsing; hex digits;
 * the growable-array helper and the string list; directory listings. */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "note.h"
#include "tap.h"
#include "utf8.h"
#include "util.h"

static void test_arrays(void)
{
    int *v = NULL;
    size_t cap = 0, i;
    struct strvec sv = { NULL, 0, 0 };
    int good = 1;

    ok(array_reserve(&v, &cap, 1, sizeof *v) == 0 && cap >= 1 && v != NULL, "array_reserve: first room");
    for (i = 0; i < 1000; i++) {
        if (array_reserve(&v, &cap, i + 1, sizeof *v) < 0) {
            good = 0;
            break;
        }
        v[i] = (int)i;
    }
    for (i = 0; good && i < 1000; i++)
        good = v[i] == (int)i;
    ok(good && cap >= 1000, "array_reserve: 1000 elements kept in order (cap %zu)", cap);
    {
        int *keep = v;
        size_t keepcap = cap;

        ok(array_reserve(&v, &cap, SIZE_MAX / 2, sizeof *v) < 0 && v == keep && cap == keepcap,
           "array_reserve: an overflowing size fails and leaves the array alone");
        ok(array_reserve(&v, &cap, 10, sizeof *v) == 0 && v == keep, "array_reserve: no realloc when there is room");
    }
    free(v);
    ok(strvec_push(&sv, "wal/b") == 0 && strvec_push(&sv, "wal/a") == 0 && strvec_push(&sv, "backups/x") == 0,
       "strvec_push: three keys");
    strvec_sort(&sv);
    ok(sv.n == 3 && strcmp(sv.v[0], "backups/x") == 0 && strcmp(sv.v[2], "wal/b") == 0, "strvec_sort: byte order");
    strvec_free(&sv);
    ok(sv.v == NULL && sv.n == 0 && sv.cap == 0, "strvec_free: empty again");
    is_int(hex_digit('0'), 0, "hex_digit 0");
    is_int(hex_digit('f'), 15, "hex_digit f");
    is_int(hex_digit('F'), 15, "hex_digit F");
    is_int(hex_digit('g'), -1, "hex_digit g is not a digit");
    is_int(hex_digit(0xC3), -1, "hex_digit: a byte above 127 is not a digit");
}

struct got_note {
    int n;
    enum log_level level;
    char msg[128];
};

static void collect(void *arg, enum log_level level, const char *msg)
{
    struct got_note *g = arg;

    g->n++;
    g->level = level;
    snprintf(g->msg, sizeof g->msg, "%s", msg);
}

/* The note sink: library messages reach the command's function, formatted,
 * at their level; no sink, no message. */
static void test_notes(void)
{
    struct got_note g = { 0, LOG_ERROR, "" };
    struct note_sink ns = { collect, &g }, none = { NULL, NULL };

    note(&ns, LOG_WARNING, "region %s: %d retries", "eu", 3);
    ok(g.n == 1 && g.level == LOG_WARNING && strcmp(g.msg, "region eu: 3 retries") == 0,
       "a note reaches the sink formatted, at its level: %s", g.msg);
    note(&ns, LOG_DEBUG, "shipped %s", "x");
    ok(g.n == 2 && g.level == LOG_DEBUG, "debug notes too (the sink decides)");
    note(NULL, LOG_ERROR, "dropped %d", 1);
    note(&none, LOG_ERROR, "dropped %d", 2);
    ok(g.n == 2, "no sink, or one without a function: nothing");
}

/* fsync, seen: this definition in the test program takes the place of
 * libc's for libwalship's calls, records which inodes were synced, and
 * syncs them. */
static ino_t synced[64];
static size_t nsynced;

int fsync(int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0 && nsynced < sizeof synced / sizeof synced[0])
        synced[nsynced++] = st.st_ino;
    return (int)syscall(SYS_fsync, fd);
}

static int was_synced(const char *path)
{
    struct stat st;
    size_t i;

    if (stat(path, &st) < 0)
        return 0;
    for (i = 0; i < nsynced; i++)
        if (synced[i] == st.st_ino)
            return 1;
    return 0;
}

static void test_mkdir_p(void)
{
    char root[] = "/tmp/walship-mkdirp-XXXXXX", path[256], sub[256];
    struct err e = ERR_INIT;

    if (mkdtemp(root) == NULL) {
        ok(0, "mkdtemp");
        return;
    }
    snprintf(path, sizeof path, "%s/a/b/c", root);
    nsynced = 0;
    ok(mkdir_p(path, 0700, &e) == 0, "mkdir_p: three new levels (%s)", e.msg);
    ok(was_synced(root), "... the first new one's entry is synced into the existing parent");
    snprintf(sub, sizeof sub, "%s/a/b", root);
    ok(was_synced(sub), "... and the last one's into the one made before it");
    nsynced = 0;
    ok(mkdir_p(path, 0700, &e) == 0 && nsynced == 0, "mkdir_p: nothing to create, nothing synced");
    snprintf(path, sizeof path, "%s/a/b/c/", root);
    ok(mkdir_p(path, 0700, &e) == 0, "mkdir_p: a trailing slash");
    snprintf(path, sizeof path, "rm -rf %s", root);
    if (system(path) != 0)
        diag("could not remove %s", root);
}

/* utf8_scrub: well-formed UTF-8 stays, every other byte becomes '?' (JSON
 * and Prometheus output of names and paths that are only bytes). */
static void test_utf8(void)
{
    static const struct {
        const char *in, *want;
    } c[] = {
        { "plain ascii", "plain ascii" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
        { "n\xe9w", "n?w" },                       /* Latin-1 */
        { "bad\xff", "bad?" },
        { "\xc0\xaf", "??" },                      /* overlong '/' */
        { "\xe0\x80\xaf", "???" },                 /* overlong, 3 bytes */
        { "\xed\xa0\x80", "???" },                 /* a surrogate */
        { "\xf4\x90\x80\x80", "????" },            /* above U+10FFFF */
        { "cut \xe2\x82", "cut ??" },               /* truncated at the end */
        { "\xe2\x82x", "??x" },
    };
    size_t i;

    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        char buf[64];

        snprintf(buf, sizeof buf, "%s", c[i].in);
        utf8_scrub(buf);
        ok(strcmp(buf, c[i].want) == 0, "utf8_scrub case %zu: \"%s\"", i, buf);
    }
}

#include "eio_fstatat.h"     /* an entry whose stat fails with EIO */

/* A spool queue entry whose stat fails is not "no entry": left out, the
 * shipper reported every file shipped, exit 0, while an acknowledged
 * segment never reached its async region (adversarial pass J). */
/* text_one_line: control bytes escaped, trailing breaks dropped, cut
 * never inside an escape. */
static void test_one_line(void)
{
    char out[64], small[8];

    text_one_line("plain text\twith a tab", out, sizeof out);
    is_str(out, "plain text\twith a tab", "text_one_line keeps printable text and tabs");
    text_one_line("a\nERROR: forged\r\x1b[2J\x7f", out, sizeof out);
    is_str(out, "a\\nERROR: forged\\r\\x1b[2J\\x7f", "line breaks and escape bytes are escaped");
    text_one_line("server closed the connection\n\n  ", out, sizeof out);
    is_str(out, "server closed the connection", "trailing line breaks and blanks are dropped");
    text_one_line("ab\001cdef", small, sizeof small);
    is_str(small, "ab\\x01c", "cut at the buffer, after a whole escape");
    text_one_line("abcd\x01", small, sizeof small);
    is_str(small, "abcd", "never inside an escape");
    text_one_line("n\xe9w", out, sizeof out);
    is_str(out, "n\xe9w", "bytes above 0x7f are left to utf8_scrub's callers");
}

static void test_dir_list_eio(void)
{
    char dir[] = "/tmp/walship-util-test-XXXXXX", path[600], **names = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;
    const char *const files[] = { "000000010000000000000001", "000000010000000000000002" };
    size_t i;

    if (mkdtemp(dir) == NULL)
        return;
    for (i = 0; i < 2; i++) {
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if ((f = fopen(path, "w")) != NULL)
            fclose(f);
    }
    snprintf(path, sizeof path, "%s/dangling", dir);
    if (symlink("/nonexistent/walship", path) != 0)
        diag("symlink failed");
    eio_name = files[1];
    ok(dir_list_sorted(dir, DIR_ONLY_FILES, &names, &n, &e) < 0,
       "dir_list_sorted: an entry whose stat fails (EIO) fails the listing");
    is_int(e.code, ERR_IO, "... as an I/O error");
    like(e.msg, "000000010000000000000002", "... naming the entry");
    eio_name = NULL;
    ok(dir_list_sorted(dir, DIR_ONLY_FILES, &names, &n, &e) == 0 && n == 2 && strcmp(names[1], files[1]) == 0,
       "... lists it once it can; a link to nothing is still left out");
    dir_list_free(names, n);
    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/dangling", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    struct err e = ERR_INIT;
    uint64_t v = 0;
    int b = -1, i = 0;

    test_mkdir_p();
    test_utf8();
    ok(parse_u64("42", 0, 100, &v, &e) == 0 && v == 42, "parse_u64 42");
    ok(parse_u64("101", 0, 100, &v, &e) < 0, "parse_u64 rejects out of range");
    like(e.msg, "out of range", "range error says so");
    ok(parse_u64("12abc", 0, 100, &v, &e) < 0, "parse_u64 rejects trailing junk");
    ok(parse_u64("-1", 0, 100, &v, &e) < 0, "parse_u64 rejects negative");
    ok(parse_u64("", 0, 100, &v, &e) < 0, "parse_u64 rejects empty");
    ok(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v, &e) < 0, "parse_u64 rejects overflow");
    ok(parse_int("7", 1, 64, &i, &e) == 0 && i == 7, "parse_int 7");

    ok(parse_size("20GB", &v, &e) == 0 && v == 20ULL << 30, "parse_size 20GB");
    ok(parse_size("16MB", &v, &e) == 0 && v == 16ULL << 20, "parse_size 16MB");
    ok(parse_size("64kB", &v, &e) == 0 && v == 64ULL << 10, "parse_size 64kB");
    ok(parse_size("1TiB", &v, &e) == 0 && v == 1ULL << 40, "parse_size 1TiB");
    ok(parse_size("12345", &v, &e) == 0 && v == 12345, "parse_size bare bytes");
    ok(parse_size("10 MB", &v, &e) == 0 && v == 10ULL << 20, "parse_size with a space");
    ok(parse_size("5XB", &v, &e) < 0, "parse_size rejects unknown unit");
    like(e.msg, "unknown unit", "unit error names the problem");
    ok(parse_size("GB", &v, &e) < 0, "parse_size rejects missing number");
    ok(parse_size("99999999999TB", &v, &e) < 0, "parse_size rejects overflow");

    ok(parse_duration("26h", &v, &e) == 0 && v == 26 * 3600, "parse_duration 26h");
    ok(parse_duration("90", &v, &e) == 0 && v == 90, "parse_duration bare seconds");
    ok(parse_duration("15min", &v, &e) == 0 && v == 900, "parse_duration 15min");
    ok(parse_duration("7d", &v, &e) == 0 && v == 7 * 86400, "parse_duration 7d");
    ok(parse_duration("3 fortnights", &v, &e) < 0, "parse_duration rejects unknown unit");
    ok(parse_duration("5m", &v, &e) < 0 && strstr(e.msg, "minutes or months") != NULL,
       "parse_duration refuses \"m\": minutes or months?");
    ok(parse_duration("36500d", &v, &e) == 0 && v == 36500ULL * 86400, "parse_duration: a century is allowed");
    ok(parse_duration("200000000000000d", &v, &e) < 0 && strstr(e.msg, "100 years") != NULL,
       "parse_duration refuses more than a century (it would wrap as int64_t)");
    ok(parse_duration("010min", &v, &e) < 0 && strstr(e.msg, "leading zero") != NULL,
       "parse_duration refuses a leading zero");
    ok(parse_size("010MB", &v, &e) < 0, "parse_size refuses a leading zero");
    ok(parse_size("0", &v, &e) == 0 && v == 0, "parse_size: 0 alone is no leading zero");

    ok(parse_bool("true", &b, &e) == 0 && b == 1, "parse_bool true");
    ok(parse_bool("OFF", &b, &e) == 0 && b == 0, "parse_bool OFF");
    ok(parse_bool("maybe", &b, &e) < 0, "parse_bool rejects maybe");

    {
        char buf[4];
        ok(strlcopy(buf, "abcdef", sizeof buf) < 0 && strcmp(buf, "abc") == 0, "strlcopy truncates and says so");
        ok(strlcopy(buf, "ab", sizeof buf) == 0 && strcmp(buf, "ab") == 0, "strlcopy copies");
    }
    {
        unsigned char in[3] = { 0x00, 0xab, 0xff };
        char out[7];
        hex_encode(in, 3, out);
        is_str(out, "00abff", "hex_encode");
    }
    {
        struct err e2 = ERR_INIT;
        err_setf(&e2, ERR_NOTFOUND, "x");
        is_int(err_exit_status(&e2), 1, "not found exits 1");
        err_setf(&e2, ERR_CONFIG, "x");
        is_int(err_exit_status(&e2), 2, "config error exits 2");
        err_setf(&e2, ERR_NET, "boom");
        is_int(err_exit_status(&e2), 3, "other failure exits 3");
        err_prefix(&e2, "region %s", "eu");
        is_str(e2.msg, "region eu: boom", "err_prefix prepends context");
    }
    test_arrays();
    test_notes();
    test_dir_list_eio();
    test_one_line();
    return done_testing();
}
