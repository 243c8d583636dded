/*
 * config_check — what a configuration means, checked once it is read.
 *
 * config.c and config_read.c check each value on its own; this file checks
 * what the values mean together and where they will be used, and refuses a
 * configuration that would do something other than it looks
 * (docs/CONFIG.md, "What is refused after reading"):
 *
 *   - a path that must be absolute and is not: PostgreSQL runs
 *     archive_command and restore_command in the data directory, so a
 *     relative key_file or spool_dir names another file there than in the
 *     shell where it was tried;
 *   - a timeout or deadline of 0, which the code below would each read
 *     differently (a built-in default, "no limit", "give up at once");
 *   - an alarm threshold, spool limit or full_every of 0, which the code
 *     reads as "off" where the line reads as the strictest value;
 *   - two regions in one place (the second copy is no copy), a file://
 *     region inside another or inside the spool, or the spool inside one;
 *   - a configuration file (or a CA file) that others can write: whoever
 *     can write it can send the archive elsewhere or turn encryption off.
 *
 * Errors name where the value came from (FILE:LINE, WALSHIP_KEY), the key,
 * and for two regions, both.
 */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util.h"

/* Where key `name` of [global] (r == NULL) or of region r came from. */
static const char *origin_of(const struct config *c, const struct region_conf *r, const char *name)
{
    const struct key_def *defs = r ? config_region_keys : config_global_keys;
    const struct key_def *k = config_find_key(defs, r ? config_nregion : config_nglobal, name);
    char *const *origins = r ? r->origin : c->origin;

    return k != NULL && origins != NULL && origins[k - defs] != NULL ? origins[k - defs] : "default";
}

/* "ORIGIN: key "NAME"" or "ORIGIN: key "NAME" of [region R]", as config_set() says it. */
static int key_error(struct err *e, const struct config *c, const struct region_conf *r, const char *name,
                     const char *msg)
{
    if (r != NULL)
        return err_setf(e, ERR_CONFIG, "%s: key \"%s\" of [region %s]: %s", origin_of(c, r, name), name, r->name,
                        msg);
    return err_setf(e, ERR_CONFIG, "%s: key \"%s\": %s", origin_of(c, NULL, name), name, msg);
}

/* ---- absolute paths ---- */

static int relative_error(struct err *e, const char *where, const char *path)
{
    return err_setf(e, ERR_CONFIG,
                    "%s: \"%s\" is a relative path; PostgreSQL runs archive_command and restore_command in the "
                    "data directory, so it would name another file there than where it was tried: write the "
                    "absolute path",
                    where, path);
}

static int need_absolute(struct err *e, const struct config *c, const struct region_conf *r, const char *name,
                         const char *path)
{
    char where[300];

    if (path == NULL || path[0] == '/')
        return 0;
    if (r != NULL)
        snprintf(where, sizeof where, "%s: key \"%s\" of [region %s]", origin_of(c, r, name), name, r->name);
    else
        snprintf(where, sizeof where, "%s: key \"%s\"", origin_of(c, NULL, name), name);
    return relative_error(e, where, path);
}

int config_check_env_path(const char *var, const char *path, struct err *e)
{
    char where[120];

    if (path[0] == '/')
        return 0;
    snprintf(where, sizeof where, "environment: %s", var);
    return relative_error(e, where, path);
}

/* The AWS SDKs' file variables, read by the S3 credential sources. */
static const char *const aws_file_vars[] = {
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
};

static int check_paths(const struct config *c, struct err *e)
{
    static const char *const global_paths[] = { "pgdata", "key_file", "spool_dir", "pg_bin" };
    int i, s3 = 0;
    size_t j;

    for (j = 0; j < sizeof global_paths / sizeof global_paths[0]; j++) {
        const struct key_def *k = config_find_key(config_global_keys, config_nglobal, global_paths[j]);

        if (need_absolute(e, c, NULL, k->name, *(char *const *)((const char *)c + k->offset)) < 0)
            return -1;
    }
    for (j = 0; c->old_key_files != NULL && c->old_key_files[j] != NULL; j++)
        if (need_absolute(e, c, NULL, "old_key_files", c->old_key_files[j]) < 0)
            return -1;
    for (i = 0; i < c->nregions; i++) {
        if (need_absolute(e, c, &c->regions[i], "ca_file", c->regions[i].ca_file) < 0)
            return -1;
        s3 |= c->regions[i].url != NULL && str_has_prefix(c->regions[i].url, "s3://");
    }
    for (j = 0; s3 && j < sizeof aws_file_vars / sizeof aws_file_vars[0]; j++) {
        const char *v = getenv(aws_file_vars[j]);

        if (v != NULL && v[0] != '\0' && config_check_env_path(aws_file_vars[j], v, e) < 0)
            return -1;
    }
    return 0;
}

/* ---- timeouts ---- */

/* 24 days: in milliseconds, still an int.  Beyond, archive_timeout was a
 * statement_timeout PostgreSQL refuses (backup-push failed once the whole
 * backup was copied), connect_timeout an option libcurl refuses (its own
 * 300 s applied), retry_deadline wrapped around 32 bits in wal-push's and
 * wal-fetch's waits (50d waited 0.7 s). */
#define TIMEOUT_MAX (24 * 86400ULL)

static int check_timeouts(const struct config *c, struct err *e)
{
    static const struct { const char *name; const char *what; } keys[] = {
        { "retry_deadline", "the time a request may spend retrying" },
        { "connect_timeout", "the time to establish a connection" },
        { "io_timeout", "the time a transfer may go without progress" },
        { "archive_timeout", "the time backup-push waits for the backup's last segment to be archived" },
    };
    size_t i;

    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const struct key_def *k = config_find_key(config_global_keys, config_nglobal, keys[i].name);
        char msg[300];

        uint64_t v = *(const uint64_t *)((const char *)c + k->offset);

        if (v != 0 && v <= TIMEOUT_MAX)
            continue;
        if (v == 0)
            snprintf(msg, sizeof msg, "0 is not a limit: %s must be at least 1s (there is no \"no limit\"; "
                     "remove the line for the default)", keys[i].what);
        else
            snprintf(msg, sizeof msg, "%llus is more than 24d: %s can be at most 24d (PostgreSQL's and "
                     "libcurl's limit in milliseconds)", (unsigned long long)v, keys[i].what);
        return key_error(e, c, NULL, k->name, msg);
    }
    return 0;
}

/* A 0 the code reads as "off", where the line reads as the strictest
 * value: rpo_seconds = 0 ("no lag tolerated") silenced the lag alarm, and
 * backup_max_age = 0 the backup age alarm, so status said OK (exit 0) of a
 * region lagging without any backup; spool_max_bytes = 0 lifted the spool's
 * limit; full_every = 0 never renewed a chain's full backup.  Refused when
 * given, file or environment; the defaults stand when the line is gone. */
static int check_zero_off(const struct config *c, struct err *e)
{
    static const struct { const char *name; const char *what; } keys[] = {
        { "rpo_seconds", "a lag of 0 s would be read as no lag alarm at all; give at least 1s" },
        { "backup_max_age", "an age of 0 would be read as no backup age alarm at all; give at least 1s" },
        { "spool_max_bytes", "a size of 0 would be read as no limit on the spool; give a size (20GB)" },
        { "full_every", "0 would be read as never renewing the chain's full backup; give a duration (7d), or "
                        "remove the line for that" },
    };
    size_t i;

    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const struct key_def *k = config_find_key(config_global_keys, config_nglobal, keys[i].name);
        char msg[300];

        if (k == NULL || *(const uint64_t *)((const char *)c + k->offset) != 0 ||
            strcmp(origin_of(c, NULL, k->name), "default") == 0)
            continue;
        snprintf(msg, sizeof msg, "0 is not accepted: %s", keys[i].what);
        return key_error(e, c, NULL, k->name, msg);
    }
    return 0;
}

/* ---- locations ---- */

char *config_path_normal(const char *path)
{
    char *out = malloc(strlen(path) + 2);
    const char *p = path;
    size_t n = 0;

    if (out == NULL)
        return NULL;
    while (*p) {
        const char *seg;
        size_t len;

        while (*p == '/')
            p++;
        seg = p;
        while (*p && *p != '/')
            p++;
        len = (size_t)(p - seg);
        if (len == 0 || (len == 1 && seg[0] == '.'))
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
            continue;
        }
        out[n++] = '/';
        memcpy(out + n, seg, len);
        n += len;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return out;
}

int config_path_within(const char *inner, const char *outer)
{
    size_t n = strlen(outer);

    if (strcmp(outer, "/") == 0)
        return 1;
    return strncmp(inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

/* Where an S3 region's objects are: "ENDPOINT BUCKET/PREFIX".  Bucket names
 * are global in AWS, so every amazonaws.com endpoint (and none) is "aws". */
char *config_s3_location(const char *url, const char *endpoint)
{
    const char *b = url + 5, *slash = strchr(b, '/'), *pfx = slash ? slash : "", *p = endpoint;
    char host[300], hostport[320];
    size_t n = 0, plen, blen = slash ? (size_t)(slash - b) : strlen(b);
    int https = 1;

    if (p != NULL && strncasecmp(p, "http://", 7) == 0) {
        https = 0;
        p += 7;
    } else if (p != NULL && strncasecmp(p, "https://", 8) == 0) {
        p += 8;
    }
    for (; p != NULL && *p && *p != '/' && n + 1 < sizeof host; p++)
        host[n++] = (char)tolower((unsigned char)*p);
    host[n] = '\0';
    snprintf(hostport, sizeof hostport, "%s%s", host, strchr(host, ':') ? "" : https ? ":443" : ":80");
    n = strlen(hostport);
    if (host[0] == '\0' || (https && n > 18 && strcmp(hostport + n - 18, ".amazonaws.com:443") == 0))
        snprintf(hostport, sizeof hostport, "aws");
    while (*pfx == '/')
        pfx++;
    plen = strlen(pfx);
    while (plen > 0 && pfx[plen - 1] == '/')
        plen--;
    return xasprintf("%s %.*s/%.*s", hostport, (int)blen, b, (int)plen, pfx);
}

/* One place a region or the spool takes. */
struct place {
    const char *what;           /* "region \"a\"" or "spool_dir" */
    const char *shown;          /* the url or path as written */
    const char *origin;
    int file;                   /* a local directory (else S3) */
    char *norm;                 /* normalised path, or S3 location */
    char *real;                 /* realpath() when it exists, else NULL */
    int have_id;                /* dev and ino of `real` */
    dev_t dev;
    ino_t ino;
};

static int place_set(struct place *pl, const char *what, const char *shown, const char *origin, int file,
                     struct err *e)
{
    char buf[PATH_MAX];
    struct stat st;

    pl->what = what;
    pl->shown = shown;
    pl->origin = origin;
    pl->file = file;
    pl->norm = file ? config_path_normal(str_has_prefix(shown, "file://") ? shown + 7 : shown) : NULL;
    pl->real = file && realpath(pl->norm ? pl->norm : "", buf) != NULL ? strdup(buf) : NULL;
    if (pl->norm == NULL && file)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (pl->real != NULL && stat(pl->real, &st) == 0) {
        pl->have_id = 1;
        pl->dev = st.st_dev;
        pl->ino = st.st_ino;
    }
    return 0;
}

static int same_or_within(const struct place *a, const struct place *b, int within)
{
    if (within)
        return config_path_within(a->norm, b->norm) || (a->real && b->real && config_path_within(a->real, b->real));
    /* one directory under two paths (a bind mount) is the same place too */
    return strcmp(a->norm, b->norm) == 0 || (a->real && b->real && strcmp(a->real, b->real) == 0) ||
           (a->have_id && b->have_id && a->dev == b->dev && a->ino == b->ino);
}

/* Two places that overlap: an error naming both, else 0. */
static int overlap_error(const struct place *a, const struct place *b, struct err *e)
{
    static const char fix[] = "each region needs a place of its own, and the spool one outside every region";
    const struct place *in = NULL, *out = NULL;

    if (a->file != b->file)
        return 0;
    if (a->file ? same_or_within(a, b, 0) : strcmp(a->norm, b->norm) == 0)
        return err_setf(e, ERR_CONFIG, "%s (%s, %s) and %s (%s, %s) are the same place: %s", a->what, a->shown,
                        a->origin, b->what, b->shown, b->origin, fix);
    if (!a->file)
        return 0;
    if (same_or_within(a, b, 1)) {
        in = a;
        out = b;
    } else if (same_or_within(b, a, 1)) {
        in = b;
        out = a;
    } else {
        return 0;
    }
    return err_setf(e, ERR_CONFIG, "%s (%s, %s) is inside %s (%s, %s): %s", in->what, in->shown, in->origin,
                    out->what, out->shown, out->origin, fix);
}

static int check_locations(const struct config *c, struct err *e)
{
    int n = c->nregions + 1, i, j, rc = 0;
    struct place *pl = calloc((size_t)n, sizeof *pl);
    char **names = calloc((size_t)n, sizeof *names);

    if (pl == NULL || names == NULL) {
        rc = err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < c->nregions && rc == 0; i++) {
        const struct region_conf *r = &c->regions[i];
        int file = str_has_prefix(r->url, "file://");

        if ((names[i] = xasprintf("region \"%s\"", r->name)) == NULL)
            rc = err_setf(e, ERR_NOMEM, "out of memory");
        else if (place_set(&pl[i], names[i], r->url, origin_of(c, r, "url"), file, e) < 0)
            rc = -1;
        else if (!file && (pl[i].norm = config_s3_location(r->url, r->endpoint)) == NULL)
            rc = err_setf(e, ERR_NOMEM, "out of memory");
    }
    /* the spool last: with no region it has nothing to overlap */
    if (rc == 0 && c->spool_dir != NULL)
        rc = place_set(&pl[n - 1], "spool_dir", c->spool_dir, origin_of(c, NULL, "spool_dir"), 1, e);
    else
        n--;
    for (i = 0; i < n && rc == 0; i++)
        for (j = i + 1; j < n && rc == 0; j++)
            rc = overlap_error(&pl[i], &pl[j], e);
out:
    for (i = 0; pl != NULL && i < c->nregions + 1; i++) {
        free(pl[i].norm);
        free(pl[i].real);
    }
    for (i = 0; names != NULL && i < c->nregions + 1; i++)
        free(names[i]);
    free(pl);
    free(names);
    return rc;
}

/* ---- files others can write ---- */

int config_check_writable(const char *what, const char *path, mode_t mode, struct err *e)
{
    if ((mode & (S_IWGRP | S_IWOTH)) == 0)
        return 0;
    return err_setf(e, ERR_CONFIG,
                    "%s \"%s\" is writable by %s (mode %04o): whoever can write it can send the archive "
                    "elsewhere or turn encryption off (run chmod go-w \"%s\")",
                    what, path, (mode & S_IWOTH) ? "others" : "its group", (unsigned)(mode & 07777), path);
}

static int check_ca_files(const struct config *c, struct err *e)
{
    int i;

    for (i = 0; i < c->nregions; i++) {
        const struct region_conf *r = &c->regions[i];
        struct stat sb;

        /* a missing CA file is refused when the region is opened */
        if (r->ca_file == NULL || stat(r->ca_file, &sb) < 0)
            continue;
        if (config_check_writable("ca_file", r->ca_file, sb.st_mode, e) < 0)
            return err_prefix(e, "%s: key \"ca_file\" of [region %s]", origin_of(c, r, "ca_file"), r->name);
    }
    return 0;
}

/* session_token belongs to the region's static keys: alone, every source
 * (the environment's keys, a profile, the instance) signed without it, and
 * the line was dropped without a word. */
static int check_session_token(const struct config *c, struct err *e)
{
    int i;

    for (i = 0; i < c->nregions; i++) {
        const struct region_conf *r = &c->regions[i];

        if (r->session_token != NULL && r->access_key_id == NULL)
            return key_error(e, c, r, "session_token", "a session token without access_key_id and "
                             "secret_access_key in the section would not be used: give all three, or remove it");
    }
    return 0;
}

/* Keys that do nothing where they stand were dropped without a word: an S3
 * key in a file:// region (sse = aws:kms, credentials, endpoint over a local
 * directory), and the KMS keys without sse = aws:kms, which config check
 * called valid and the S3 driver refused when it opened the region. */
static int check_unused_keys(const struct config *c, struct err *e)
{
    static const char *const file_keys[] = { "url", "mode", "retain_full", "retain_days" };
    size_t j, f;
    int i;

    for (i = 0; i < c->nregions; i++) {
        const struct region_conf *r = &c->regions[i];
        int kms = r->sse != NULL && strcmp(r->sse, "aws:kms") == 0;

        if (!kms && (r->sse_kms_key_id != NULL || r->sse_bucket_key))
            return key_error(e, c, r, r->sse_kms_key_id != NULL ? "sse_kms_key_id" : "sse_bucket_key",
                             "needs sse = aws:kms in the section, else it would not be used");
        if (r->url == NULL || !str_has_prefix(r->url, "file://"))
            continue;
        for (j = 0; j < config_nregion; j++) {
            const char *k = config_region_keys[j].name;

            for (f = 0; f < sizeof file_keys / sizeof file_keys[0] && strcmp(k, file_keys[f]) != 0; f++)
                ;
            if (f == sizeof file_keys / sizeof file_keys[0] && strcmp(origin_of(c, r, k), "default") != 0)
                return key_error(e, c, r, k, "an S3 setting in a file:// region would not be used: remove it");
        }
    }
    return 0;
}

int config_check(const struct config *c, struct err *e)
{
    if (check_paths(c, e) < 0 || check_timeouts(c, e) < 0 || check_zero_off(c, e) < 0 || check_ca_files(c, e) < 0 ||
        check_session_token(c, e) < 0 || check_unused_keys(c, e) < 0 || check_locations(c, e) < 0)
        return -1;
    return 0;
}
