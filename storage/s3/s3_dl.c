/*
 * s3_dl — libcurl and libxml2, loaded on first use (s3_dl.h).
 */
#define S3_DL_TABLE
#include "s3_dl.h"

#include <pthread.h>

#include "dynlib.h"

struct s3_dl s3_dl;

#define S3_DL_SYM(f) { #f, &s3_dl.f },
static const struct dynlib_sym curl_syms[] = { S3_DL_CURL(S3_DL_SYM) };
static const struct dynlib_sym xml_syms[] = { S3_DL_XML(S3_DL_SYM) };
#undef S3_DL_SYM

/* Sonames of the libraries walship is built against (Debian 12: libcurl4
 * with OpenSSL, libxml2 2.9). */
static struct dynlib curl_lib = DYNLIB("libcurl.so.4", "s3:// regions and cloud credentials", curl_syms);
static struct dynlib xml_lib = DYNLIB("libxml2.so.2", "s3:// regions and STS credentials", xml_syms);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct err init_err = ERR_INIT;
static int init_rc = -1;

static void load_once(void)
{
    CURLcode cc;

    dynlib_open_once(&curl_lib);
    dynlib_open_once(&xml_lib);
    if (dynlib_result(&curl_lib, &init_err) < 0 || dynlib_result(&xml_lib, &init_err) < 0)
        return;
    cc = s3_dl.curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        err_setf(&init_err, ERR_INTERNAL, "could not initialize libcurl: %s", s3_dl.curl_easy_strerror(cc));
        return;
    }
    s3_dl.xmlInitParser();
    init_rc = 0;
}

int s3_dl_load(struct err *e)
{
    pthread_once(&once, load_once);
    if (init_rc == 0)
        return 0;
    if (e != NULL)
        *e = init_err;
    return -1;
}
