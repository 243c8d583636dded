#include "catalog.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void cat_new_name(time_t start, char out[CAT_NAME_MAX])
{
    struct tm tm;

    gmtime_r(&start, &tm);
    strftime(out, CAT_NAME_MAX, "%Y%m%dT%H%M%SZ", &tm);
}

struct cat_walk {
    struct catalog *c;
    struct err *e;
    int failed;
};

static int cat_collect(const struct stor_entry *ent, void *arg)
{
    struct cat_walk *w = arg;
    struct catalog *c = w->c;
    const char *rest = ent->key + strlen("backups/");
    const char *slash = strchr(rest, '/');
    size_t nlen;
    struct cat_entry *ce;

    if (slash == NULL)
        return 0;   /* a stray object directly under backups/ */
    nlen = (size_t)(slash - rest);
    if (nlen == 0 || nlen >= CAT_NAME_MAX)
        return 0;
    ce = c->n ? &c->v[c->n - 1] : NULL;
    if (ce == NULL || strlen(ce->name) != nlen || strncmp(ce->name, rest, nlen) != 0) {
        if (array_reserve(&c->v, &c->cap, c->n + 1, sizeof *c->v) < 0) {
            err_setf(w->e, ERR_NOMEM, "out of memory");
            w->failed = 1;
            return 1;
        }
        ce = &c->v[c->n++];
        memset(ce, 0, sizeof *ce);
        memcpy(ce->name, rest, nlen);
        ce->name[nlen] = '\0';
    }
    ce->objects++;
    ce->bytes += ent->size;
    if (ent->mtime > ce->newest)
        ce->newest = ent->mtime;
    if (strcmp(slash + 1, CAT_MANIFEST) == 0)
        ce->complete = 1;
    return 0;
}

int cat_load_manifest(struct repo *r, const char *name, struct manifest **out, struct err *e)
{
    return cat_load_manifest_sha(r, name, out, NULL, e);
}

static int load_manifest(struct repo *r, const char *name, int headers, struct manifest **out, char sha_hex[65],
                         struct err *e);

int cat_load_manifest_sha(struct repo *r, const char *name, struct manifest **out, char sha_hex[65],
                          struct err *e)
{
    return load_manifest(r, name, 0, out, sha_hex, e);
}

int cat_load_headers(struct repo *r, const char *name, struct manifest **out, char sha_hex[65], struct err *e)
{
    return load_manifest(r, name, 1, out, sha_hex, e);
}

static int load_manifest(struct repo *r, const char *name, int headers, struct manifest **out, char sha_hex[65],
                         struct err *e)
{
    char key[REPO_KEY_MAX], what[300];
    unsigned char *buf = NULL;
    uint64_t sysid = 0;
    size_t len = 0;
    int rc;

    if (repo_key_backup(key, sizeof key, name, CAT_MANIFEST) < 0)
        return err_setf(e, ERR_USAGE, "backup name too long");
    if (repo_get_buf(r, key, 256u << 20, &buf, &len, e) < 0)
        return err_prefix(e, "backup %s: could not read its manifest", name);
    snprintf(what, sizeof what, "backup %s in region %s", name, r->name);
    if (sha_hex != NULL) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int dn = 0;

        if (EVP_Digest(buf, len, d, &dn, EVP_sha256(), NULL) != 1) {
            free(buf);
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
        hex_encode(d, 32, sha_hex);
        sha_hex[64] = '\0';
    }
    rc = (headers ? man_headers_from_json : man_from_json)((const char *)buf, len, what, out, e);
    free(buf);
    if (rc == 0 && ((*out)->name == NULL || strcmp((*out)->name, name) != 0)) {
        err_setf(e, ERR_FOREIGN, "region %s: the manifest of backup %s names backup %s: refusing it", r->name, name,
                 (*out)->name ? (*out)->name : "(none)");
        man_free(*out);
        *out = NULL;
        rc = -1;
    }
    if (rc == 0 && ((*out)->system_identifier == NULL ||
                    parse_u64((*out)->system_identifier, 1, UINT64_MAX, &sysid, &(struct err)ERR_INIT) < 0 ||
                    sysid != r->id.sysid)) {
        err_setf(e, ERR_FOREIGN, "region %s: backup %s is of cluster %s, not of this repository's cluster %llu",
                 r->name, name, (*out)->system_identifier ? (*out)->system_identifier : "(none)",
                 (unsigned long long)r->id.sysid);
        man_free(*out);
        *out = NULL;
        rc = -1;
    }
    return rc;
}

int cat_list(struct repo *r, int load, struct catalog *out, struct err *e)
{
    struct cat_walk w;
    size_t i;

    memset(out, 0, sizeof *out);
    w.c = out;
    w.e = e;
    w.failed = 0;
    if (stor_list(r->st, REPO_BACKUP_DIR, cat_collect, &w, e) < 0 || w.failed) {
        cat_free(out);
        return -1;
    }
    for (i = 0; load && i < out->n; i++) {
        if (!out->v[i].complete)
            continue;
        if ((load == CAT_LOAD_HEADERS ? cat_load_headers(r, out->v[i].name, &out->v[i].man, NULL, e)
                                     : cat_load_manifest(r, out->v[i].name, &out->v[i].man, e)) < 0) {
            cat_free(out);
            return -1;
        }
    }
    return 0;
}

int cat_reload(struct repo *r, struct catalog *c, size_t k, struct err *e)
{
    man_free(c->v[k].man);
    c->v[k].man = NULL;
    return cat_load_manifest(r, c->v[k].name, &c->v[k].man, e);
}

void cat_free(struct catalog *c)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        man_free(c->v[i].man);
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

size_t cat_name_index(const struct catalog *c, const char *name)
{
    return name_index(c->v, c->n, sizeof *c->v, offsetof(struct cat_entry, name), name);
}

int cat_find(const struct catalog *c, const char *name, struct err *e)
{
    size_t i;

    if (strcmp(name, "LATEST") == 0) {
        for (i = c->n; i > 0; i--)
            if (c->v[i - 1].complete)
                return (int)(i - 1);
        err_setf(e, ERR_NOTFOUND, "there is no complete backup");
        return -1;
    }
    for (i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].name, name) == 0) {
            if (c->v[i].complete)
                return (int)i;
            err_setf(e, ERR_NOTFOUND, "backup %s is incomplete (it has no manifest): it cannot be used", name);
            return -1;
        }
    }
    err_setf(e, ERR_NOTFOUND, "there is no backup named %s", name);
    return -1;
}

struct parts_seen {
    const struct manifest *m;
    unsigned char *seen;            /* per part: listed at its stored size */
    size_t prefix_len;
};

static int part_seen(const struct stor_entry *ent, void *arg)
{
    struct parts_seen *ps = arg;
    const char *rest = ent->key + ps->prefix_len;
    char want[32], *end;
    unsigned long n;
    size_t i;

    if (strncmp(rest, "part-", 5) != 0 || rest[5] < '0' || rest[5] > '9')
        return 0;
    n = strtoul(rest + 5, &end, 10);
    if (*end != '\0' || n == 0 || n > UINT32_MAX ||
        (size_t)snprintf(want, sizeof want, "part-%04lu", n) >= sizeof want || strcmp(rest, want) != 0)
        return 0;   /* not a part's key (another spelling: part-00003, part-1) */
    /* looked up by its number, not compared with every part (parts²
     * with tens of thousands of parts); parts are numbered 1..N */
    i = n - 1;
    if (i >= ps->m->nparts || ps->m->parts[i].number != n)
        for (i = 0; i < ps->m->nparts && ps->m->parts[i].number != n; i++)
            ;
    if (i < ps->m->nparts && ent->size == ps->m->parts[i].stored_size)
        ps->seen[i] = 1;
    return 0;
}

int cat_parts_present(struct repo *r, const char *name, const struct manifest *m, struct err *e)
{
    struct parts_seen ps = { m, NULL, 0 };
    char prefix[REPO_KEY_MAX];
    size_t i;
    int rc = 0;

    if (snprintf(prefix, sizeof prefix, REPO_BACKUP_DIR "%s/", name) >= (int)sizeof prefix)
        return err_setf(e, ERR_INTERNAL, "backup name too long: %s", name);
    if (m->nparts == 0)
        return 0;
    ps.prefix_len = strlen(prefix);
    if ((ps.seen = calloc(m->nparts, 1)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (stor_list(r->st, prefix, part_seen, &ps, e) < 0) {
        free(ps.seen);
        return err_prefix(e, "region %s: could not list backup %s", r->name, name);
    }
    for (i = 0; i < m->nparts && rc == 0; i++)
        if (!ps.seen[i])
            rc = err_setf(e, ERR_CORRUPT, "region %s: part %u of backup %s is missing or not at its size", r->name,
                          (unsigned)m->parts[i].number, name);
    free(ps.seen);
    return rc;
}
