/*
 * dynlib: libraries loaded on first use (src/common/dynlib.h) — a missing
 * library or symbol is an error that names it and changes nothing; the S3
 * driver's, libpq's and libarchive's tables fill completely; the program itself does not
 * name libcurl, libxml2, libpq or libarchive as needed libraries (checked by the
 * integration test lazy_libs_test.sh, which runs the binary).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

/* The tables themselves, not the call-site names: no redirection here. */
#define S3_DL_TABLE
#define PQ_DL_TABLE
#define AR_DL_TABLE
#include "ar_dl.h"
#include "dynlib.h"
#include "pginst.h"
#include "pq_dl.h"
#include "s3_dl.h"
#include "tap.h"

static void test_missing_library(void)
{
    unsigned (*fn)(void) = NULL;
    const struct dynlib_sym syms[] = { { "ZSTD_versionNumber", &fn } };
    struct err e = ERR_INIT;

    ok(dynlib_load("libwalship-no-such-library.so.7", "a test", syms, 1, &e) < 0, "a missing library fails");
    like(e.msg, "libwalship-no-such-library.so.7", "the message names the library");
    like(e.msg, "a test", "and what it is needed for");
    ok(fn == NULL, "no slot is touched");
}

static void test_missing_symbol(void)
{
    unsigned (*fn)(void) = NULL;
    void (*missing)(void) = NULL;
    const struct dynlib_sym syms[] = { { "ZSTD_versionNumber", &fn }, { "ZSTD_walship_no_such_symbol", &missing } };
    struct err e = ERR_INIT;

    ok(dynlib_load("libzstd.so.1", "a test", syms, 2, &e) < 0, "a library without one of the symbols fails");
    like(e.msg, "ZSTD_walship_no_such_symbol", "the message names the missing symbol");
    like(e.msg, "libzstd.so.1", "and the library");
    ok(fn == NULL && missing == NULL, "no slot is touched, not even the one that resolved");
}

static void test_loads(void)
{
    unsigned (*fn)(void) = NULL;
    const struct dynlib_sym syms[] = { { "ZSTD_versionNumber", &fn } };
    struct err e = ERR_INIT;

    ok(dynlib_load("libzstd.so.1", "a test", syms, 1, &e) == 0 && fn != NULL, "a present symbol resolves");
    ok(fn != NULL && fn() == ZSTD_versionNumber(), "and is the same function the linker binds");
}

#define NONNULL(f) all = all && s3_dl.f != NULL;
#define PQ_NONNULL(f) all = all && pq_dl.f != NULL;
#define AR_NONNULL(f) all = all && ar_dl.f != NULL;

static void test_tables(void)
{
    struct err e = ERR_INIT;
    int all = 1;

    ok(s3_dl.curl_easy_init == NULL && s3_dl.xmlReadMemory == NULL, "the S3 table is empty before the first use");
    ok(s3_dl_load(&e) == 0, "libcurl and libxml2 load (%s)", e.msg);
    S3_DL_CURL(NONNULL)
    S3_DL_XML(NONNULL)
    ok(all, "every libcurl and libxml2 entry is filled");
    ok(s3_dl_load(&e) == 0, "a second load is the first one's outcome");
    all = 1;
    ok(pq_dl.PQconnectdb == NULL, "the libpq table is empty before the first use");
    ok(pq_dl_load(&e) == 0, "libpq loads (%s)", e.msg);
    PQ_DL_FUNCS(PQ_NONNULL)
    ok(all, "every libpq entry is filled");
    all = 1;
    ok(ar_dl.archive_read_new == NULL, "the libarchive table is empty before the first use");
    ok(ar_dl_load(&e) == 0, "libarchive loads (%s)", e.msg);
    AR_DL_FUNCS(AR_NONNULL)
    ok(all, "every libarchive entry is filled");
}

/* A login without libpq is its own outcome, not a refusal by the server
 * (which restore would answer with a --pg-user hint).  In a child: a
 * failed load is remembered for the life of the process. */
static void test_login_without_libpq(void)
{
    int status = -1;
    pid_t pid = fork();

    if (pid == 0) {
        struct pg_pidfile pf;
        PGconn *c = NULL;
        char msg[512] = "";
        enum pginst_login l;

        memset(&pf, 0, sizeof pf);
        pf.port = 1;
        setenv("WALSHIP_FAULT_INJECT", "dlopen.libpq.so.5", 1);
        l = pginst_connect(&pf, NULL, "postgres", "dynlib_test", &c, msg, sizeof msg);
        _exit(l == PGINST_NOLIB && c == NULL && strstr(msg, "libpq.so.5") != NULL ? 0 : 1);
    }
    ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "a login without libpq says so (PGINST_NOLIB, naming libpq), not that the server refused");
}

int main(void)
{
    test_login_without_libpq();
    test_missing_library();
    test_missing_symbol();
    test_loads();
    test_tables();
    return done_testing();
}
