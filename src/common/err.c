#include "err.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

int err_vsetf(struct err *e, enum err_code code, const char *fmt, va_list ap)
{
    if (e == NULL)
        return -1;
    e->code = code;
    e->transient = 0;
    e->http_status = 0;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    /* a server's message may quote a registered secret (a session token):
     * errors reach JSON output and state files, past the log's redaction */
    log_redact(e->msg, sizeof e->msg);
    return -1;
}

int err_setf(struct err *e, enum err_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vsetf(e, code, fmt, ap);
    va_end(ap);
    return -1;
}

int err_errno(struct err *e, enum err_code code, int errnum, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    if (e == NULL)
        return -1;
    va_start(ap, fmt);
    err_vsetf(e, code, fmt, ap);
    va_end(ap);
    n = strlen(e->msg);
    snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(errnum));
    log_redact(e->msg, sizeof e->msg);
    return -1;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
    char head[ERR_MSG_MAX];
    char old[ERR_MSG_MAX];
    va_list ap;

    if (e == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* Context first; the old message fills what room is left. */
    {
        size_t hl = strlen(head), room = sizeof e->msg - 1, ol = strlen(old);

        if (hl > room - 2)
            hl = room - 2;
        memcpy(e->msg, head, hl);
        memcpy(e->msg + hl, ": ", 2);
        if (ol > room - hl - 2)
            ol = room - hl - 2;
        memcpy(e->msg + hl + 2, old, ol);
        e->msg[hl + 2 + ol] = '\0';
    }
    log_redact(e->msg, sizeof e->msg);
    return -1;
}

void err_clear(struct err *e)
{
    e->code = ERR_OK;
    e->transient = 0;
    e->http_status = 0;
    e->msg[0] = '\0';
}

const char *err_code_name(enum err_code code)
{
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_NOTFOUND: return "not found";
    case ERR_USAGE: return "usage";
    case ERR_CONFIG: return "configuration";
    case ERR_IO: return "i/o";
    case ERR_NOMEM: return "out of memory";
    case ERR_HTTP: return "http";
    case ERR_NET: return "network";
    case ERR_AUTH: return "authentication";
    case ERR_NOBUCKET: return "no such bucket";
    case ERR_EXISTS: return "exists";
    case ERR_CORRUPT: return "corrupt";
    case ERR_KEY: return "key";
    case ERR_LOCKED: return "locked";
    case ERR_FOREIGN: return "foreign";
    case ERR_NOREPO: return "no repository";
    case ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

int err_exit_status(const struct err *e)
{
    switch (e->code) {
    case ERR_OK: return 0;
    case ERR_NOTFOUND: return EXIT_NOTFOUND;
    case ERR_USAGE:
    case ERR_CONFIG: return EXIT_USAGE;
    default: return EXIT_FAILURE3;
    }
}
