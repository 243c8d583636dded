/*
 * config_show — the effective configuration, key by key, as walship
 * understood it and where each value came from (`walship config check`).
 *
 * Secrets never leave this file: a secret key's value and the password of
 * pg_conninfo are handed out as "<redacted>", so no caller can print them.
 */
#include "config_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "util.h"

/* The largest unit that divides v exactly ("20GB", "26h"); bare otherwise. */
static void fmt_units(uint64_t v, const char *const *names, const uint64_t *factors, size_t n, char *buf,
                      size_t cap)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (v != 0 && v % factors[i] == 0) {
            snprintf(buf, cap, "%" PRIu64 "%s", v / factors[i], names[i]);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64, v);
}

static char *fmt_list(char *const *list)
{
    size_t n = 1, i;
    char *out, *p;

    for (i = 0; list[i] != NULL; i++)
        n += strlen(list[i]) + 2;
    if ((p = out = malloc(n)) == NULL)
        return NULL;
    for (i = 0; list[i] != NULL; i++) {
        size_t l = strlen(list[i]);

        if (i > 0) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        memcpy(p, list[i], l);
        p += l;
    }
    *p = '\0';
    return out;
}

/* *out: the value as text (owned), or NULL when the key is not set. */
static int fmt_value(const struct key_def *k, const void *base, char **out, struct err *e)
{
    static const char *const size_names[] = { "TB", "GB", "MB", "kB" };
    static const uint64_t size_factors[] = { 1ULL << 40, 1ULL << 30, 1ULL << 20, 1ULL << 10 };
    static const char *const time_names[] = { "d", "h", "s" };
    static const uint64_t time_factors[] = { 86400, 3600, 1 };
    static const char *const levels[] = { "error", "warning", "info", "debug" };
    const char *p = (const char *)base + k->offset;
    char buf[64];
    const char *s = buf;
    uint64_t u = 0;
    int unset = 0;

    switch (k->kind) {
    case KIND_STR:
        s = *(char *const *)p;
        if (s != NULL && (k->flags & KEY_SECRET))
            s = "<redacted>";
        break;
    case KIND_CONNINFO:
        s = *(char *const *)p;
        if (s == NULL)
            break;
        if ((*out = pg_conninfo_redact(s)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        return 0;
    case KIND_LIST:
        if (*(char **const *)p == NULL)
            s = NULL;
        else if ((*out = fmt_list(*(char **const *)p)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        else
            return 0;
        break;
    case KIND_BOOL:
        s = *(const int *)p ? "true" : "false";
        break;
    case KIND_SIZE:
        u = *(const uint64_t *)p;
        fmt_units(u, size_names, size_factors, 4, buf, sizeof buf);
        unset = u == 0;
        break;
    case KIND_DURATION:
        u = *(const uint64_t *)p;
        fmt_units(u, time_names, time_factors, 3, buf, sizeof buf);
        break;
    case KIND_U64:
        u = *(const uint64_t *)p;
        snprintf(buf, sizeof buf, "%" PRIu64, u);
        unset = u == 0;
        break;
    case KIND_INT:
        snprintf(buf, sizeof buf, "%d", *(const int *)p);
        unset = *(const int *)p == 0;
        break;
    case KIND_COMPRESSION:
        if (*(const int *)p == 0)
            s = "none";
        else
            snprintf(buf, sizeof buf, "zstd:%d", *(const int *)p);
        break;
    case KIND_LOG_LEVEL:
        s = levels[*(const enum log_level *)p];
        break;
    case KIND_MODE:
        s = *(const enum region_mode *)p == REGION_ASYNC ? "async" : "sync";
        break;
    }
    if (unset && (k->flags & KEY_ZERO_UNSET))
        s = NULL;
    *out = NULL;
    if (s != NULL && (*out = strdup(s)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}

static int walk_keys(const struct key_def *defs, size_t n, const void *base, char *const *origins, int region,
                     const char *section, config_walk_fn fn, void *arg, struct err *e)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct config_item it;
        char *value;
        int rc;

        if (fmt_value(&defs[i], base, &value, e) < 0)
            return -1;
        it.region = region;
        it.section = section;
        it.key = defs[i].name;
        it.value = value;
        it.origin = origins[i] != NULL ? origins[i] : "default";
        it.secret = (defs[i].flags & KEY_SECRET) != 0;
        rc = fn(arg, &it);
        free(value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int config_walk(const struct config *c, config_walk_fn fn, void *arg, struct err *e)
{
    int i, rc;

    rc = walk_keys(config_global_keys, config_nglobal, c, c->origin, -1, "global", fn, arg, e);
    for (i = 0; rc == 0 && i < c->nregions; i++)
        rc = walk_keys(config_region_keys, config_nregion, &c->regions[i], c->regions[i].origin, i,
                       c->regions[i].name, fn, arg, e);
    return rc;
}

const char *config_origin(const struct config *c, const char *key)
{
    const struct key_def *k = config_find_key(config_global_keys, config_nglobal, key);

    return k != NULL ? c->origin[k - config_global_keys] : NULL;
}
