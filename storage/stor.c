#include "stor.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static const struct stor_driver *const drivers[] = { &stor_driver_fs, &stor_driver_s3 };

int stor_driver_open(const struct stor_driver *d, const struct stor_opts *o, struct stor **out, struct err *e)
{
    const char *name = o->name != NULL ? o->name : "?";

    *out = NULL;
    if (d->version != STOR_DRIVER_VERSION)
        return err_setf(e, ERR_INTERNAL,
                        "region %s: the %s storage driver has interface version %u, this walship needs %u",
                        name, d->scheme, d->version, (unsigned)STOR_DRIVER_VERSION);
    if (o->version != STOR_OPTS_VERSION)
        return err_setf(e, ERR_INTERNAL,
                        "region %s: storage options of version %u given to the %s driver, which reads version %u",
                        name, o->version, d->scheme, (unsigned)STOR_OPTS_VERSION);
    if (d->open(o, out, e) < 0)
        return -1;
    (*out)->notes = o->notes;
    if ((*out)->ops == NULL || (*out)->ops->version != STOR_OPS_VERSION) {
        unsigned v = (*out)->ops != NULL ? (*out)->ops->version : 0;

        if ((*out)->ops != NULL)
            (*out)->ops->free(*out);
        *out = NULL;
        return err_setf(e, ERR_INTERNAL,
                        "region %s: the %s storage driver has operations of version %u, this walship needs %u",
                        name, d->scheme, v, (unsigned)STOR_OPS_VERSION);
    }
    return 0;
}

int stor_open_opts(const struct stor_opts *o, struct stor **out, struct err *e)
{
    size_t i;

    *out = NULL;
    for (i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        if (o->url != NULL && str_has_prefix(o->url, drivers[i]->scheme))
            return stor_driver_open(drivers[i], o, out, e);
    return err_setf(e, ERR_CONFIG, "region %s: unsupported url \"%s\"", o->name, o->url ? o->url : "");
}

void stor_free(struct stor *s)
{
    if (s != NULL)
        s->ops->free(s);
}

int stor_put_buf(struct stor *s, const char *key, const void *buf, size_t len, struct err *e)
{
    struct sink *up = NULL;
    int rc = -1;

    if (stor_put(s, key, &up, e) < 0)
        return -1;
    if (sink_write(up, buf, len, e) < 0 || sink_close(up, e) < 0)
        goto out;
    rc = 0;
out:
    sink_free(up);
    return rc;
}

int stor_key_valid(const char *key, struct err *e)
{
    const char *p;

    if (key == NULL || *key == '\0')
        return err_setf(e, ERR_USAGE, "empty object key");
    if (key[0] == '/')
        return err_setf(e, ERR_USAGE, "object key \"%s\" must be relative (no leading /)", key);
    if (strlen(key) > 900)
        return err_setf(e, ERR_USAGE, "object key is too long (%zu bytes)", strlen(key));
    for (p = key; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return err_setf(e, ERR_USAGE, "object key \"%s\" has a control character or backslash", key);
    }
    if (strstr(key, "//") != NULL)
        return err_setf(e, ERR_USAGE, "object key \"%s\" has an empty path segment", key);
    for (p = key; p != NULL; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        if (p[0] == '.' && (p[1] == '/' || p[1] == '\0' || (p[1] == '.' && (p[2] == '/' || p[2] == '\0'))))
            return err_setf(e, ERR_USAGE, "object key \"%s\" has a \".\" or \"..\" segment", key);
    }
    return 0;
}
