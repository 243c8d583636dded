/*
 * config — the keys, their setters, the struct config object, the
 * environment.  The file itself is read by config_read.c.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <strings.h>
#include <unistd.h>

#include "config_int.h"
#include "pgconn.h"
#include "util.h"

#define DEFAULT_CONFIG_PATH "/etc/walship/walship.conf"

/* ---- keys ---- */

static int set_str(void *t, const char *v, struct err *e)
{
    char **dst = t;
    char *s = strdup(v);

    if (s == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    free(*dst);
    *dst = s;
    return 0;
}

int config_set_string(void *t, const char *v, struct err *e)
{
    return set_str(t, v, e);
}

static int set_conninfo(void *t, const char *v, struct err *e)
{
    if (pg_conninfo_check(v, e) < 0)
        return -1;
    return set_str(t, v, e);
}

static int set_bool(void *t, const char *v, struct err *e)
{
    return parse_bool(v, (int *)t, e);
}

static int set_size(void *t, const char *v, struct err *e)
{
    return parse_size(v, (uint64_t *)t, e);
}

static int set_duration(void *t, const char *v, struct err *e)
{
    return parse_duration(v, (uint64_t *)t, e);
}

static int set_hours(void *t, const char *v, struct err *e)
{
    return cfg_no_leading_zero(v, e) < 0 ? -1 : parse_u64(v, 0, 100000, (uint64_t *)t, e);
}

static int set_days(void *t, const char *v, struct err *e)
{
    return cfg_no_leading_zero(v, e) < 0 ? -1 : parse_u64(v, 1, 100000, (uint64_t *)t, e);
}

static int set_parallel(void *t, const char *v, struct err *e)
{
    return cfg_no_leading_zero(v, e) < 0 ? -1 : parse_int(v, 1, 64, (int *)t, e);
}

static int set_max_chain(void *t, const char *v, struct err *e)
{
    return cfg_no_leading_zero(v, e) < 0 ? -1 : parse_int(v, 1, 1000, (int *)t, e);
}

static int set_retain_full(void *t, const char *v, struct err *e)
{
    return cfg_no_leading_zero(v, e) < 0 ? -1 : parse_int(v, 1, 100000, (int *)t, e);
}

static int set_compression(void *t, const char *v, struct err *e)
{
    int *level = t;

    if (strcmp(v, "none") == 0) {
        *level = 0;
        return 0;
    }
    if (strcmp(v, "zstd") == 0) {
        *level = 3;
        return 0;
    }
    if (str_has_prefix(v, "zstd:"))
        return parse_int(v + 5, 1, 19, level, e) < 0
                   ? err_setf(e, ERR_CONFIG, "bad compression \"%s\": the zstd level must be 1 to 19", v)
                   : 0;
    return err_setf(e, ERR_CONFIG, "bad compression \"%s\" (use none, zstd or zstd:LEVEL)", v);
}

static int set_log_level(void *t, const char *v, struct err *e)
{
    if (log_parse_level(v, (enum log_level *)t) < 0)
        return err_setf(e, ERR_CONFIG, "bad log_level \"%s\" (use error, warning, info or debug)", v);
    return 0;
}

static int set_mode(void *t, const char *v, struct err *e)
{
    enum region_mode *m = t;

    if (strcmp(v, "sync") == 0)
        *m = REGION_SYNC;
    else if (strcmp(v, "async") == 0)
        *m = REGION_ASYNC;
    else
        return err_setf(e, ERR_CONFIG, "bad mode \"%s\" (use sync or async)", v);
    return 0;
}

static int set_url(void *t, const char *v, struct err *e)
{
    if (!str_has_prefix(v, "file://") && !str_has_prefix(v, "s3://"))
        return err_setf(e, ERR_CONFIG, "bad url \"%s\" (use file:///PATH or s3://BUCKET/PREFIX)", v);
    if (str_has_prefix(v, "file://") && v[7] != '/')
        return err_setf(e, ERR_CONFIG, "bad url \"%s\": a file:// url needs an absolute path (file:///srv/backup)", v);
    if (str_has_prefix(v, "s3://") && config_check_s3_url(v, e) < 0)
        return -1;
    return set_str(t, v, e);
}

static int set_part_size(void *t, const char *v, struct err *e)
{
    uint64_t *p = t;

    if (parse_size(v, p, e) < 0)
        return -1;
    if (*p < (5u << 20) || *p > (5ULL << 30))
        return err_setf(e, ERR_CONFIG, "part_size \"%s\" must be between 5MB and 5GB", v);
    return 0;
}

#define G(name, field, fn, kind, flags) { name, offsetof(struct config, field), fn, kind, flags }
const struct key_def config_global_keys[] = {
    G("pgdata", pgdata, set_str, KIND_STR, 0),
    G("pg_conninfo", pg_conninfo, set_conninfo, KIND_CONNINFO, 0),
    G("compression", compression_level, set_compression, KIND_COMPRESSION, 0),
    G("key_file", key_file, set_str, KIND_STR, 0),
    G("old_key_files", old_key_files, config_set_old_keys, KIND_LIST, 0),
    G("spool_dir", spool_dir, set_str, KIND_STR, 0),
    G("spool_max_bytes", spool_max_bytes, set_size, KIND_SIZE, 0),
    G("parallel", parallel, set_parallel, KIND_INT, 0),
    G("rpo_seconds", rpo_seconds, set_duration, KIND_DURATION, 0),
    G("backup_max_age", backup_max_age, set_duration, KIND_DURATION, 0),
    G("delete_after_backup", delete_after_backup, set_bool, KIND_BOOL, 0),
    G("garbage_hours", garbage_hours, set_hours, KIND_U64, 0),
    G("log_level", log_level, set_log_level, KIND_LOG_LEVEL, 0),
    G("retry_deadline", retry_deadline, set_duration, KIND_DURATION, 0),
    G("connect_timeout", connect_timeout, set_duration, KIND_DURATION, 0),
    G("io_timeout", io_timeout, set_duration, KIND_DURATION, 0),
    G("archive_timeout", archive_timeout, set_duration, KIND_DURATION, 0),
    G("max_chain", max_chain, set_max_chain, KIND_INT, KEY_ZERO_UNSET),
    G("full_every", full_every, set_duration, KIND_DURATION, KEY_ZERO_UNSET),
    G("pg_bin", pg_bin, set_str, KIND_STR, 0),
    G("archive_async_process", archive_async_process, set_bool, KIND_BOOL, 0),
    G("archive_async_idle", archive_async_idle, config_set_idle, KIND_DURATION, 0),
};
#undef G

#define R(name, field, fn, kind, flags) { name, offsetof(struct region_conf, field), fn, kind, flags }
const struct key_def config_region_keys[] = {
    R("url", url, set_url, KIND_STR, 0),
    R("endpoint", endpoint, config_set_endpoint, KIND_STR, 0),
    R("aws_region", aws_region, set_str, KIND_STR, 0),
    R("path_style", path_style, set_bool, KIND_BOOL, 0),
    R("mode", mode, set_mode, KIND_MODE, 0),
    R("storage_class", storage_class, set_str, KIND_STR, 0),
    R("access_key_id", access_key_id, set_str, KIND_STR, 0),
    R("secret_access_key", secret_access_key, set_str, KIND_STR, KEY_SECRET),
    R("session_token", session_token, set_str, KIND_STR, KEY_SECRET),
    R("credentials", credentials, config_set_credentials, KIND_STR, 0),
    R("sts_endpoint", sts_endpoint, config_set_http_url, KIND_STR, 0),
    R("imds_v1", imds_v1, set_bool, KIND_BOOL, 0),
    R("sse", sse, config_set_sse, KIND_STR, 0),
    R("sse_kms_key_id", sse_kms_key_id, set_str, KIND_STR, 0),
    R("sse_bucket_key", sse_bucket_key, set_bool, KIND_BOOL, 0),
    R("checksum", checksum, config_set_checksum, KIND_STR, 0),
    R("ca_file", ca_file, set_str, KIND_STR, 0),
    R("unsigned_payload", unsigned_payload, set_bool, KIND_BOOL, 0),
    R("part_size", part_size, set_part_size, KIND_SIZE, KEY_ZERO_UNSET),
    R("retain_full", retain_full, set_retain_full, KIND_INT, KEY_ZERO_UNSET),
    R("retain_days", retain_days, set_days, KIND_U64, KEY_ZERO_UNSET),
};
#undef R

#define NGLOBAL (sizeof config_global_keys / sizeof config_global_keys[0])
#define NREGION (sizeof config_region_keys / sizeof config_region_keys[0])
const size_t config_nglobal = NGLOBAL;
const size_t config_nregion = NREGION;
_Static_assert(NGLOBAL <= CONFIG_MAX_KEYS && NREGION <= CONFIG_MAX_KEYS, "raise CONFIG_MAX_KEYS");

const struct key_def *config_find_key(const struct key_def *defs, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

int config_apply(void *base, char **origins, const struct key_def *defs, const struct key_def *k,
                 const char *value, const char *origin, struct err *e)
{
    char *o;

    if (*value == '\0')
        return err_setf(e, ERR_CONFIG, "empty value (remove the setting to get the default)");
    if (k->set((char *)base + k->offset, value, e) < 0)
        return -1;
    if ((o = strdup(origin)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    free(origins[k - defs]);
    origins[k - defs] = o;
    return 0;
}

/* ---- config object ---- */

static char **origins_new(size_t n)
{
    return calloc(n, sizeof(char *));
}

static void origins_free(char **o, size_t n)
{
    size_t i;

    if (o == NULL)
        return;
    for (i = 0; i < n; i++)
        free(o[i]);
    free(o);
}

struct config *config_new_default(void)
{
    struct config *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->compression_level = 3;
    c->spool_dir = strdup("/var/lib/walship/spool");
    c->spool_max_bytes = 20ULL << 30;
    c->parallel = 4;
    c->rpo_seconds = 60;
    c->backup_max_age = 26 * 3600;
    c->delete_after_backup = 1;
    c->garbage_hours = 24;
    c->log_level = LOG_INFO;
    c->retry_deadline = 60;
    c->connect_timeout = 10;
    c->io_timeout = 30;
    c->archive_timeout = 60;
    c->archive_async_idle = 30;    /* archive_async_process stays 0: opt-in */
    c->pg_bin = strdup("/usr/lib/postgresql/15/bin");
    c->origin = origins_new(NGLOBAL);
    if (c->spool_dir == NULL || c->pg_bin == NULL || c->origin == NULL) {
        config_free(c);
        return NULL;
    }
    return c;
}

struct region_conf *config_add_region(struct config *c, const char *name, struct err *e)
{
    struct region_conf *nr;
    struct region_conf *r;

    nr = realloc(c->regions, (size_t)(c->nregions + 1) * sizeof *nr);
    if (nr == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->regions = nr;
    r = &c->regions[c->nregions];
    memset(r, 0, sizeof *r);
    r->name = strdup(name);
    r->origin = origins_new(NREGION);
    if (r->name == NULL || r->origin == NULL) {
        free(r->name);
        free(r->origin);
        err_setf(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->nregions++;
    return r;
}

int config_region_name_valid(const char *name)
{
    const char *p;

    if (!isalnum((unsigned char)*name) || strlen(name) > 63)
        return 0;
    for (p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return 0;
    return 1;
}

int config_set(struct config *c, const char *key, const char *value, const char *origin, struct err *e)
{
    const struct key_def *k = config_find_key(config_global_keys, NGLOBAL, key);

    if (k == NULL)
        return err_setf(e, ERR_CONFIG, "%s: unknown key \"%s\"", origin, key);
    if (config_apply(c, c->origin, config_global_keys, k, value, origin, e) < 0)
        return err_prefix(e, "%s: key \"%s\"", origin, key);
    return 0;
}

int config_region_set(struct config *c, const char *region, const char *key, const char *value,
                      const char *origin, struct err *e)
{
    const struct key_def *k = config_find_key(config_region_keys, NREGION, key);
    struct region_conf *r = (struct region_conf *)config_region(c, region);

    if (r == NULL)
        return err_setf(e, ERR_CONFIG, "%s: no region named \"%s\" is configured", origin, region);
    if (k == NULL)
        return err_setf(e, ERR_CONFIG, "%s: unknown key \"%s\" for [region %s]", origin, key, region);
    if (config_apply(r, r->origin, config_region_keys, k, value, origin, e) < 0)
        return err_prefix(e, "%s: key \"%s\" of [region %s]", origin, key, region);
    return 0;
}

int config_add_region_url(struct config *c, const char *name, const char *url, struct err *e)
{
    if (config_region(c, name) != NULL)
        return err_setf(e, ERR_CONFIG, "region \"%s\" is defined twice", name);
    if (!config_region_name_valid(name))
        return err_setf(e, ERR_CONFIG, "bad region name \"%s\" (letters, digits, - _ . only, starting with a letter or digit)", name);
    if (config_add_region(c, name, e) == NULL)
        return -1;
    return config_region_set(c, name, "url", url, "--from", e);
}

const struct region_conf *config_region(const struct config *c, const char *name)
{
    int i;

    for (i = 0; i < c->nregions; i++)
        if (strcmp(c->regions[i].name, name) == 0)
            return &c->regions[i];
    return NULL;
}

int config_require_regions(const struct config *c, struct err *e)
{
    if (c->nregions == 0)
        return err_setf(e, ERR_CONFIG, "no region is configured%s%s (add a [region NAME] section with a url)",
                        c->path ? " in " : "", c->path ? c->path : "");
    return 0;
}

/* ---- environment ---- */

/* "KEY_FILE", "keyfile", "Key-File" all fold to "keyfile": for suggestions. */
static void fold(const char *in, char *out, size_t cap)
{
    size_t j = 0;

    for (; *in && j + 1 < cap; in++)
        if (isalnum((unsigned char)*in))
            out[j++] = (char)tolower((unsigned char)*in);
    out[j] = '\0';
}

static int unknown_env(const char *name, struct err *e)
{
    char want[64], have[64];
    size_t i, j;

    fold(name + 8, want, sizeof want);
    for (i = 0; i < NGLOBAL; i++) {
        const char *k = config_global_keys[i].name;

        fold(k, have, sizeof have);
        if (strcmp(want, have) != 0)
            continue;
        for (j = 0; k[j] && j + 1 < sizeof have; j++)
            have[j] = (char)toupper((unsigned char)k[j]);
        have[j] = '\0';
        return err_setf(e, ERR_CONFIG, "environment: unknown variable %s (did you mean WALSHIP_%s?)", name, have);
    }
    for (i = 0; i < NREGION; i++) {
        fold(config_region_keys[i].name, have, sizeof have);
        if (strcmp(want, have) == 0)
            return err_setf(e, ERR_CONFIG,
                            "environment: unknown variable %s (region keys cannot come from the environment: "
                            "set %s in [region NAME])",
                            name, config_region_keys[i].name);
    }
    return err_setf(e, ERR_CONFIG,
                    "environment: unknown variable %s (walship reads WALSHIP_CONFIG and WALSHIP_<KEY> for the "
                    "[global] keys, in upper case)",
                    name);
}

/* WALSHIP_<KEY> for every [global] key.  Any other WALSHIP_* variable (a
 * typo such as WALSHIP_KEYFILE, a region key, wrong case) and an empty one
 * are refused: silently ignoring WALSHIP_KEYFILE would archive unencrypted. */
static int apply_env(struct config *c, struct err *e)
{
    extern char **environ;
    int seen[CONFIG_MAX_KEYS] = { 0 };
    char **ep;

    for (ep = environ; ep != NULL && *ep != NULL; ep++) {
        const char *eq = strchr(*ep, '=');
        size_t n = eq ? (size_t)(eq - *ep) : strlen(*ep);
        char name[64], key[64];
        const struct key_def *k = NULL;
        size_t j;

        if (n < 8 || strncasecmp(*ep, "WALSHIP_", 8) != 0)
            continue;
        if (n >= sizeof name)
            n = sizeof name - 1;
        memcpy(name, *ep, n);
        name[n] = '\0';
        /* not configuration: the config file's path, and the test-only
         * fault injection points (src/io/fault.h) */
        if (strcmp(name, "WALSHIP_CONFIG") == 0 || strcmp(name, "WALSHIP_FAULT_INJECT") == 0)
            continue;
        for (j = 8; j <= n; j++)
            key[j - 8] = (char)tolower((unsigned char)name[j]);
        if (strncmp(name, "WALSHIP_", 8) == 0)
            k = config_find_key(config_global_keys, NGLOBAL, key);
        for (j = 8; k != NULL && j < n; j++)
            if (islower((unsigned char)name[j]))
                k = NULL;
        if (k == NULL || eq == NULL)
            return unknown_env(name, e);
        if (seen[k - config_global_keys]++)
            return err_setf(e, ERR_CONFIG, "environment: %s is set twice", name);
        if (eq[1] == '\0')
            return err_setf(e, ERR_CONFIG, "environment: %s is set but empty (unset it to use the file's value)",
                            name);
        if (config_env_value_check(name, eq + 1, e) < 0 || config_set(c, k->name, eq + 1, name, e) < 0)
            return err_prefix(e, "environment");
    }
    return 0;
}

static int finish_regions(struct config *c, struct err *e)
{
    int i;

    for (i = 0; i < c->nregions; i++) {
        struct region_conf *r = &c->regions[i];

        if (r->url == NULL)
            return err_setf(e, ERR_CONFIG, "%s: region \"%s\" has no url", c->path ? c->path : "configuration",
                            r->name);
        if (r->aws_region == NULL && (r->aws_region = strdup(r->name)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        if (r->secret_access_key != NULL)
            log_add_secret(r->secret_access_key);
        if (r->session_token != NULL)
            log_add_secret(r->session_token);
    }
    return 0;
}

int config_load(const char *path, int required, struct config **out, struct err *e)
{
    struct config *c = config_new_default();

    if (c == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (path == NULL && (path = getenv("WALSHIP_CONFIG")) != NULL) {
        if (*path == '\0')
            path = NULL;
        else if (config_check_env_path("WALSHIP_CONFIG", path, e) < 0)
            goto fail;
    }
    if (path == NULL) {
        path = DEFAULT_CONFIG_PATH;
        if (!required && access(path, F_OK) != 0)
            path = NULL;
    }
    if ((path != NULL && config_read_file(c, path, e) < 0) || apply_env(c, e) < 0 || finish_regions(c, e) < 0 ||
        config_check(c, e) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    config_free(c);
    return -1;
}

static void region_free(struct region_conf *r)
{
    free(r->name);
    free(r->url);
    free(r->endpoint);
    free(r->aws_region);
    free(r->storage_class);
    free(r->access_key_id);
    free(r->secret_access_key);
    free(r->session_token);
    free(r->credentials);
    free(r->sts_endpoint);
    free(r->sse);
    free(r->sse_kms_key_id);
    free(r->checksum);
    free(r->ca_file);
    origins_free(r->origin, NREGION);
}

void config_drop_regions(struct config *c)
{
    int i;

    for (i = 0; i < c->nregions; i++)
        region_free(&c->regions[i]);
    free(c->regions);
    c->regions = NULL;
    c->nregions = 0;
}

void config_free(struct config *c)
{
    if (c == NULL)
        return;
    free(c->path);
    free(c->pgdata);
    free(c->pg_conninfo);
    free(c->key_file);
    if (c->old_key_files) {
        for (char **p = c->old_key_files; *p; p++)
            free(*p);
        free(c->old_key_files);
    }
    free(c->spool_dir);
    free(c->pg_bin);
    config_drop_regions(c);
    origins_free(c->origin, NGLOBAL);
    free(c);
}
