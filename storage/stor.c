#include "stor.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

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
