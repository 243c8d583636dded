#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define DEFAULT_CONFIG_PATH "/etc/walship/walship.conf"

/* ---- keys ---- */

typedef int (*setter_fn)(void *target, const char *value, struct err *e);

struct key_def {
    const char *name;
    size_t offset;
    setter_fn set;
    int secret;         /* a file holding it must not be readable by others */
};

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
    return parse_u64(v, 0, 100000, (uint64_t *)t, e);
}

static int set_days(void *t, const char *v, struct err *e)
{
    return parse_u64(v, 1, 100000, (uint64_t *)t, e);
}

static int set_parallel(void *t, const char *v, struct err *e)
{
    return parse_int(v, 1, 64, (int *)t, e);
}

static int set_retain_full(void *t, const char *v, struct err *e)
{
    return parse_int(v, 1, 100000, (int *)t, e);
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
    if (str_has_prefix(v, "s3://") && (v[5] == '\0' || v[5] == '/'))
        return err_setf(e, ERR_CONFIG, "bad url \"%s\": no bucket name", v);
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

static int set_old_keys(void *t, const char *v, struct err *e)
{
    char ***dst = t;
    char **list = NULL;
    size_t n = 0;
    const char *p = v;

    while (*p) {
        const char *end;
        char **nl;

        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        end = p;
        while (*end && *end != ',' && !isspace((unsigned char)*end))
            end++;
        nl = realloc(list, (n + 2) * sizeof *list);
        if (nl == NULL)
            goto nomem;
        list = nl;
        list[n] = strndup(p, (size_t)(end - p));
        if (list[n] == NULL)
            goto nomem;
        list[++n] = NULL;
        p = end;
    }
    if (*dst) {
        for (char **q = *dst; *q; q++)
            free(*q);
        free(*dst);
    }
    *dst = list;
    return 0;
nomem:
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return err_setf(e, ERR_NOMEM, "out of memory");
}

#define G(name, field, fn) { name, offsetof(struct config, field), fn, 0 }
static const struct key_def global_keys[] = {
    G("pgdata", pgdata, set_str),
    G("pg_conninfo", pg_conninfo, set_str),
    G("compression", compression_level, set_compression),
    G("key_file", key_file, set_str),
    G("old_key_files", old_key_files, set_old_keys),
    G("spool_dir", spool_dir, set_str),
    G("spool_max_bytes", spool_max_bytes, set_size),
    G("parallel", parallel, set_parallel),
    G("rpo_seconds", rpo_seconds, set_duration),
    G("backup_max_age", backup_max_age, set_duration),
    G("delete_after_backup", delete_after_backup, set_bool),
    G("garbage_hours", garbage_hours, set_hours),
    G("log_level", log_level, set_log_level),
    G("retry_deadline", retry_deadline, set_duration),
    G("connect_timeout", connect_timeout, set_duration),
    G("io_timeout", io_timeout, set_duration),
    G("archive_timeout", archive_timeout, set_duration),
    G("pg_bin", pg_bin, set_str),
};
#undef G

#define R(name, field, fn, secret) { name, offsetof(struct region_conf, field), fn, secret }
static const struct key_def region_keys[] = {
    R("url", url, set_url, 0),
    R("endpoint", endpoint, set_str, 0),
    R("aws_region", aws_region, set_str, 0),
    R("path_style", path_style, set_bool, 0),
    R("mode", mode, set_mode, 0),
    R("storage_class", storage_class, set_str, 0),
    R("access_key_id", access_key_id, set_str, 0),
    R("secret_access_key", secret_access_key, set_str, 1),
    R("session_token", session_token, set_str, 1),
    R("ca_file", ca_file, set_str, 0),
    R("unsigned_payload", unsigned_payload, set_bool, 0),
    R("part_size", part_size, set_part_size, 0),
    R("retain_full", retain_full, set_retain_full, 0),
    R("retain_days", retain_days, set_days, 0),
};
#undef R

static const struct key_def *find_key(const struct key_def *defs, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

#define NGLOBAL (sizeof global_keys / sizeof global_keys[0])
#define NREGION (sizeof region_keys / sizeof region_keys[0])

/* ---- config object ---- */

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
    c->pg_bin = strdup("/usr/lib/postgresql/15/bin");
    if (c->spool_dir == NULL || c->pg_bin == NULL) {
        config_free(c);
        return NULL;
    }
    return c;
}

static struct region_conf *add_region(struct config *c, const char *name, struct err *e)
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
    if (r->name == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->nregions++;
    return r;
}

static int region_name_valid(const char *name)
{
    const char *p;

    if (*name == '\0' || strlen(name) > 63)
        return 0;
    for (p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return 0;
    return 1;
}

int config_set(struct config *c, const char *key, const char *value, const char *origin, struct err *e)
{
    const struct key_def *k = find_key(global_keys, NGLOBAL, key);

    if (k == NULL)
        return err_setf(e, ERR_CONFIG, "%s: unknown key \"%s\"", origin, key);
    if (k->set((char *)c + k->offset, value, e) < 0)
        return err_prefix(e, "%s: key \"%s\"", origin, key);
    return 0;
}

int config_add_region_url(struct config *c, const char *name, const char *url, struct err *e)
{
    struct region_conf *r;

    if (config_region(c, name) != NULL)
        return err_setf(e, ERR_CONFIG, "region \"%s\" is defined twice", name);
    r = add_region(c, name, e);
    if (r == NULL)
        return -1;
    if (set_url(&r->url, url, e) < 0)
        return err_prefix(e, "region %s", name);
    return 0;
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

/* ---- loading ---- */

struct load_state {
    struct config *c;
    const char *path;
    FILE *fp;
    int lineno;
    int has_secret;
    int failed;
    int new_section;        /* a [header] line was read since the last key */
    struct region_conf *cur;    /* NULL: [global] or before any section */
    char cur_section[128];
    struct err *e;
};

/* inih calls this once per line: count lines so errors can name them. */
static char *counting_reader(char *str, int num, void *stream)
{
    struct load_state *st = stream;
    char *r = fgets(str, num, st->fp);

    if (r != NULL) {
        const char *q = r;

        st->lineno++;
        /* inih reports a section only with its first key; note each
         * header so that a repeated [region X] is seen as a new one. */
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '[')
            st->new_section = 1;
    }
    return r;
}

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct load_state *st = user;
    const struct key_def *k;
    void *base;

    if (st->failed)
        return 0;
    if (st->new_section || strcmp(section, st->cur_section) != 0) {
        st->new_section = 0;
        strlcopy(st->cur_section, section, sizeof st->cur_section);
        st->cur = NULL;
        if (strcmp(section, "global") == 0 || section[0] == '\0') {
            /* global keys */
        } else if (str_has_prefix(section, "region ")) {
            const char *rname = section + 7;

            while (*rname == ' ')
                rname++;
            if (!region_name_valid(rname)) {
                err_setf(st->e, ERR_CONFIG, "%s:%d: bad region name \"%s\" (letters, digits, - _ . only)",
                         st->path, st->lineno, rname);
                st->failed = 1;
                return 0;
            }
            if (config_region(st->c, rname) != NULL) {
                err_setf(st->e, ERR_CONFIG, "%s:%d: region \"%s\" is defined twice", st->path, st->lineno, rname);
                st->failed = 1;
                return 0;
            }
            st->cur = add_region(st->c, rname, st->e);
            if (st->cur == NULL) {
                st->failed = 1;
                return 0;
            }
        } else {
            err_setf(st->e, ERR_CONFIG, "%s:%d: unknown section [%s] (use [global] or [region NAME])",
                     st->path, st->lineno, section);
            st->failed = 1;
            return 0;
        }
    }
    if (st->cur != NULL) {
        k = find_key(region_keys, NREGION, name);
        base = st->cur;
    } else {
        k = find_key(global_keys, NGLOBAL, name);
        base = st->c;
    }
    if (k == NULL) {
        err_setf(st->e, ERR_CONFIG, "%s:%d: unknown key \"%s\" in [%s]", st->path, st->lineno, name,
                 section[0] ? section : "global");
        st->failed = 1;
        return 0;
    }
    if (k->set((char *)base + k->offset, value, st->e) < 0) {
        err_prefix(st->e, "%s:%d: key \"%s\"", st->path, st->lineno, name);
        st->failed = 1;
        return 0;
    }
    if (k->secret)
        st->has_secret = 1;
    return 1;
}

static int apply_env(struct config *c, struct err *e)
{
    size_t i;

    for (i = 0; i < NGLOBAL; i++) {
        char var[64] = "WALSHIP_";
        size_t j, n = strlen(var);
        const char *v;

        for (j = 0; global_keys[i].name[j] && n < sizeof var - 1; j++)
            var[n++] = (char)toupper((unsigned char)global_keys[i].name[j]);
        var[n] = '\0';
        v = getenv(var);
        if (v == NULL)
            continue;
        if (config_set(c, global_keys[i].name, v, var, e) < 0)
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
    struct load_state st;
    struct stat sb;
    int rc;

    if (c == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (path == NULL) {
        path = getenv("WALSHIP_CONFIG");
        if (path != NULL && *path == '\0')
            path = NULL;
    }
    if (path == NULL) {
        path = DEFAULT_CONFIG_PATH;
        if (!required && access(path, F_OK) != 0)
            goto env;
    }
    memset(&st, 0, sizeof st);
    st.c = c;
    st.path = path;
    st.e = e;
    st.fp = fopen(path, "re");
    if (st.fp == NULL) {
        err_errno(e, ERR_CONFIG, errno, "could not open configuration file \"%s\"", path);
        goto fail;
    }
    if (fstat(fileno(st.fp), &sb) < 0 || !S_ISREG(sb.st_mode)) {
        fclose(st.fp);
        err_setf(e, ERR_CONFIG, "configuration file \"%s\" is not a regular file", path);
        goto fail;
    }
    c->path = strdup(path);
    rc = ini_parse_stream(counting_reader, &st, config_ini_line, &st);
    fclose(st.fp);
    if (st.failed)
        goto fail;
    if (rc != 0) {
        err_setf(e, ERR_CONFIG, "%s:%d: syntax error (expected [section], key = value, or a ; comment)", path,
                 rc > 0 ? rc : st.lineno);
        goto fail;
    }
    if (st.has_secret && (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        err_setf(e, ERR_CONFIG,
                 "configuration file \"%s\" holds a secret key but its mode is %04o: others can read it "
                 "(run chmod 600 \"%s\")",
                 path, (unsigned)(sb.st_mode & 07777), path);
        goto fail;
    }
env:
    if (apply_env(c, e) < 0 || finish_regions(c, e) < 0)
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
    free(r->ca_file);
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
    int i;

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
    for (i = 0; i < c->nregions; i++)
        region_free(&c->regions[i]);
    free(c->regions);
    free(c);
}
