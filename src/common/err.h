/*
 * err — error values that carry context.
 *
 * Every fallible function in walship returns 0 on success or -1 on failure
 * and fills a caller-provided struct err.  The message is lowercase, names
 * the object, the region and the cause, and never holds a secret.  Only
 * src/cmd/main.c and the command files turn an err into output and an exit code.
 *
 * A struct err is plain data owned by the caller; no allocation, so it is
 * safe to use on any thread and after out-of-memory.
 */
#ifndef WALSHIP_ERR_H
#define WALSHIP_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum err_code {
    ERR_OK = 0,
    ERR_NOTFOUND,   /* the object, backup or key does not exist (exit 1) */
    ERR_USAGE,      /* bad command line (exit 2) */
    ERR_CONFIG,     /* bad configuration (exit 2) */
    ERR_IO,         /* local file system error */
    ERR_NOMEM,
    ERR_HTTP,       /* an HTTP answer we cannot use (not retryable) */
    ERR_NET,        /* network failure: connect, reset, timeout */
    ERR_AUTH,       /* credentials, signature, permission */
    ERR_NOBUCKET,   /* bucket or region does not exist */
    ERR_EXISTS,     /* refusing to overwrite different content */
    ERR_CORRUPT,    /* object failed authentication or parsing */
    ERR_KEY,        /* wrong or missing encryption key */
    ERR_LOCKED,     /* another process holds the lock */
    ERR_FOREIGN,    /* an object or region that belongs elsewhere: written under
                       another name, for another cluster, or another repository */
    ERR_NOREPO,     /* a region without a readable repository identity: an
                       empty or unmounted directory, a wrong prefix (never
                       "not found": exit 3) */
    ERR_INTERNAL
};

#define ERR_MSG_MAX 1024

struct err {
    enum err_code code;
    int transient;          /* retrying later may succeed */
    long http_status;       /* 0 when no HTTP answer was had */
    char msg[ERR_MSG_MAX];
};

#define ERR_INIT { ERR_OK, 0, 0, "" }

/* Set the error and return -1, so callers can `return err_setf(...)`. */
int err_setf(struct err *e, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int err_vsetf(struct err *e, enum err_code code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* err_setf with ": strerror(errnum)" appended. */
int err_errno(struct err *e, enum err_code code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prepend context ("while doing X: ") to an existing message; returns -1. */
int err_prefix(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void err_clear(struct err *e);
const char *err_code_name(enum err_code code);

/* Process exit status for an error (DESIGN.md §5): 1 not found, 2 usage or
 * configuration, 3 anything else. */
int err_exit_status(const struct err *e);

#define EXIT_NOTFOUND 1
#define EXIT_USAGE    2
#define EXIT_FAILURE3 3

#endif
