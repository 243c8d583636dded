#include "bk_walk.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* Top-level directories whose contents are not backed up. */
static const char *const skip_contents[] = {
    "pg_wal", "pg_dynshmem", "pg_notify", "pg_replslot", "pg_serial", "pg_snapshots", "pg_stat_tmp",
    "pg_subtrans",
};

/* Top-level files never backed up. */
static const char *const skip_files_top[] = {
    "postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "backup_manifest",
    "current_logfiles", "postgresql.auto.conf.tmp",
    /* a warm standby's own (restore/standby.h): not the cluster's */
    "walship-standby.state", "walship-standby.state.tmp", "walship-promoting", "walship-promoting.tmp",
};

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int bk_excluded(const char *rel, int is_dir)
{
    const char *b = base_name(rel);
    size_t i;

    if (str_has_prefix(b, "pgsql_tmp"))
        return 1;
    if (!is_dir && strcmp(b, "pg_internal.init") == 0)
        return 1;
    if (strchr(rel, '/') == NULL && !is_dir) {
        for (i = 0; i < sizeof skip_files_top / sizeof skip_files_top[0]; i++)
            if (strcmp(rel, skip_files_top[i]) == 0)
                return 1;
    }
    /* contents of the skipped directories (the directories themselves stay) */
    for (i = 0; i < sizeof skip_contents / sizeof skip_contents[0]; i++) {
        size_t n = strlen(skip_contents[i]);

        if (strncmp(rel, skip_contents[i], n) == 0 && rel[n] == '/') {
            /* keep pg_wal/archive_status itself, empty */
            if (is_dir && strcmp(rel, "pg_wal/archive_status") == 0)
                return 0;
            return 1;
        }
    }
    return 0;
}

static int add_item(struct bk_list *l, const char *rel, const char *src, const struct stat *st, struct err *e)
{
    struct bk_item *it;

    if (array_reserve(&l->items, &l->cap, l->n + 1, sizeof *l->items) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory listing PGDATA");
    it = &l->items[l->n];
    memset(it, 0, sizeof *it);
    it->path = strdup(rel);
    it->src = strdup(src);
    if (it->path == NULL || it->src == NULL) {
        free(it->path);
        free(it->src);
        return err_setf(e, ERR_NOMEM, "out of memory listing PGDATA");
    }
    it->is_dir = S_ISDIR(st->st_mode);
    it->size = it->is_dir ? 0 : (uint64_t)st->st_size;
    it->mode = st->st_mode & 07777;
    it->mtime = st->st_mtime;
    if (!it->is_dir)
        l->total_bytes += it->size;
    l->n++;
    return 0;
}

/* relfilenode of a relation file name: digits before '_' or '.'; 0 if none. */
static int relnode_of(const char *name, char *out, size_t n)
{
    size_t i = 0;

    while (isdigit((unsigned char)name[i]) && i + 1 < n) {
        out[i] = name[i];
        i++;
    }
    out[i] = '\0';
    return i > 0 && (name[i] == '\0' || name[i] == '_' || name[i] == '.');
}


static int walk_dir(struct bk_list *l, const char *src, const char *rel, int depth, struct err *e);

/* Names in a directory, sorted; unlogged relations' non-init forks removed
 * (a database directory holds files named NNN, NNN_init, NNN_fsm, NNN.1). */
static int read_names(const char *src, char ***names, size_t *n, struct err *e)
{
    char **v;
    size_t cnt, i, j;

    /* a directory removed while we walk lists as empty: nothing to back up */
    if (dir_list_sorted(src, 0, &v, &cnt, e) < 0)
        return -1;
    /* unlogged relations */
    for (i = 0; i < cnt; i++) {
        char node[32];
        size_t len;

        if (v[i] == NULL)
            continue;   /* a fork already dropped */
        len = strlen(v[i]);
        if (len < 6 || strcmp(v[i] + len - 5, "_init") != 0 || !relnode_of(v[i], node, sizeof node))
            continue;
        for (j = 0; j < cnt; j++) {
            char other[32];

            if (v[j] == NULL || j == i || !relnode_of(v[j], other, sizeof other) || strcmp(node, other) != 0)
                continue;
            if (str_has_suffix(v[j], "_init") || strstr(v[j], "_init.") != NULL)
                continue;
            free(v[j]);
            v[j] = NULL;
        }
    }
    for (i = 0, j = 0; i < cnt; i++)
        if (v[i] != NULL)
            v[j++] = v[i];
    *names = v;
    *n = j;
    return 0;
}

static int walk_tablespaces(struct bk_list *l, const char *pgdata, struct err *e)
{
    char dir[PATH_MAX];
    char **names = NULL;
    size_t n = 0, i;
    int rc = -1;

    if (snprintf(dir, sizeof dir, "%s/pg_tblspc", pgdata) >= (int)sizeof dir)
        return err_setf(e, ERR_IO, "path too long");
    if (read_names(dir, &names, &n, e) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        char link[PATH_MAX], target[PATH_MAX], rel[PATH_MAX];
        uint64_t oid;
        struct err pe = ERR_INIT;
        struct stat st;
        ssize_t len;
        struct bk_tablespace *nt;

        if (parse_u64(names[i], 1, UINT32_MAX, &oid, &pe) < 0)
            continue;   /* not a tablespace link */
        if (snprintf(link, sizeof link, "%s/%s", dir, names[i]) >= (int)sizeof link)
            continue;
        len = readlink(link, target, sizeof target - 1);
        if (len < 0 && errno == ENOENT)
            continue;   /* dropped since the listing (DROP TABLESPACE): like a dropped relation */
        if (len < 0) {
            if (errno == EINVAL && lstat(link, &st) == 0 && S_ISDIR(st.st_mode)) {
                /* in-place tablespace (allow_in_place_tablespaces): a real directory */
                strlcopy(target, link, sizeof target);
            } else {
                err_errno(e, ERR_IO, errno, "could not read tablespace link \"%s\"", link);
                goto out;
            }
        } else {
            target[len] = '\0';
        }
        nt = realloc(l->tbs, (l->ntbs + 1) * sizeof *nt);
        if (nt == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        l->tbs = nt;
        nt[l->ntbs].oid = (uint32_t)oid;
        nt[l->ntbs].target = strdup(target);
        if (nt[l->ntbs].target == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        l->ntbs++;
        if (stat(target, &st) < 0) {
            err_errno(e, ERR_IO, errno, "tablespace %s points to \"%s\", which is not usable", names[i], target);
            goto out;
        }
        nt[l->ntbs - 1].dev = st.st_dev;
        nt[l->ntbs - 1].ino = st.st_ino;
        if (snprintf(rel, sizeof rel, "pg_tblspc/%s", names[i]) >= (int)sizeof rel)
            continue;
        if (add_item(l, rel, target, &st, e) < 0 || walk_dir(l, target, rel, 1, e) < 0)
            goto out;
    }
    rc = 0;
out:
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* A tablespace's directory inside PGDATA: it is walked as the tablespace. */
static int is_tablespace(const struct bk_list *l, const struct stat *st)
{
    size_t i;

    for (i = 0; i < l->ntbs; i++)
        if (l->tbs[i].dev == st->st_dev && l->tbs[i].ino == st->st_ino)
            return 1;
    return 0;
}

/* Where PostgreSQL keeps the cluster's data: a symbolic link there (pg_wal
 * on another disk, a database directory base/OID moved to one, pg_xact, a
 * directory inside a tablespace) holds data the cluster needs.  Left out
 * with a warning, a backup of a cluster whose base/OID was a link came
 * back "restored" without that database (adversarial pass AH). */
static const char *const data_dirs[] = {
    "base", "global", "pg_commit_ts", "pg_dynshmem", "pg_logical", "pg_multixact", "pg_notify", "pg_replslot",
    "pg_serial", "pg_snapshots", "pg_stat", "pg_stat_tmp", "pg_subtrans", "pg_twophase", "pg_wal", "pg_xact",
};

static int in_data_dir(const char *rel)
{
    size_t i, n = strcspn(rel, "/");

    /* inside a tablespace (pg_tblspc/OID/...), not pg_tblspc itself */
    if (n == strlen("pg_tblspc") && strncmp(rel, "pg_tblspc", n) == 0)
        return rel[n] == '/';
    for (i = 0; i < sizeof data_dirs / sizeof data_dirs[0]; i++)
        if (strlen(data_dirs[i]) == n && strncmp(rel, data_dirs[i], n) == 0)
            return 1;
    return 0;
}

/* Note a directory as walked: 0, or 1 when it was already (-1 on error). */
static int add_walked(struct bk_list *l, const struct stat *st, struct err *e)
{
    struct bk_dirid *nw;
    size_t i;

    for (i = 0; i < l->nwalked; i++)
        if (l->walked[i].dev == st->st_dev && l->walked[i].ino == st->st_ino)
            return 1;
    nw = realloc(l->walked, (l->nwalked + 1) * sizeof *nw);
    if (nw == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory listing PGDATA");
    l->walked = nw;
    l->walked[l->nwalked].dev = st->st_dev;
    l->walked[l->nwalked++].ino = st->st_ino;
    return 0;
}

/* A symbolic link in one of the data directories: what it points to is
 * backed up under the link's name (a directory and its files, or a file
 * through its real path, since files are opened with O_NOFOLLOW).  1 when
 * followed (or excluded like anything else at that path), 0 when it is to
 * be left out with the other links. */
static int follow_link(struct bk_list *l, const char *src, const char *rel, int depth, struct err *e)
{
    char real[PATH_MAX];
    struct stat st;

    if (!in_data_dir(rel) || stat(src, &st) < 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
        return 0;
    if (bk_excluded(rel, S_ISDIR(st.st_mode)) || (S_ISDIR(st.st_mode) && is_tablespace(l, &st)))
        return 1;
    if (S_ISDIR(st.st_mode)) {
        int seen = add_walked(l, &st, e);

        if (seen != 0)
            return seen < 0 ? -1 : 0;   /* PGDATA again, or a loop: left out with the links */
        return add_item(l, rel, src, &st, e) < 0 || walk_dir(l, src, rel, depth + 1, e) < 0 ? -1 : 1;
    }
    if (realpath(src, real) == NULL)
        return errno == ENOENT ? 1 : err_errno(e, ERR_IO, errno, "could not resolve \"%s\"", src);
    return add_item(l, rel, real, &st, e) < 0 ? -1 : 1;
}

static int walk_dir(struct bk_list *l, const char *src, const char *rel, int depth, struct err *e)
{
    char **names = NULL;
    size_t n = 0, i;
    int rc = -1;

    if (depth > 64)
        return err_setf(e, ERR_IO, "directory tree too deep at \"%s\"", src);
    if (read_names(src, &names, &n, e) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        char csrc[PATH_MAX], crel[PATH_MAX];
        struct stat st;

        if (snprintf(csrc, sizeof csrc, "%s/%s", src, names[i]) >= (int)sizeof csrc ||
            snprintf(crel, sizeof crel, "%s%s%s", rel, *rel ? "/" : "", names[i]) >= (int)sizeof crel) {
            err_setf(e, ERR_IO, "path too long under \"%s\"", src);
            goto out;
        }
        if (lstat(csrc, &st) < 0) {
            if (errno == ENOENT)
                continue;   /* deleted meanwhile: fine (WAL replay recreates it) */
            err_errno(e, ERR_IO, errno, "could not stat \"%s\"", csrc);
            goto out;
        }
        if (strcmp(crel, "pg_tblspc") == 0 && S_ISDIR(st.st_mode)) {
            if (add_item(l, crel, csrc, &st, e) < 0)
                goto out;
            continue;   /* its links are walked by walk_tablespaces */
        }
        if (S_ISLNK(st.st_mode)) {
            int got = follow_link(l, csrc, crel, depth, e);

            if (got < 0)
                goto out;
            if (got > 0)
                continue;   /* followed: not a link left out */
            /* other links are not PostgreSQL's (pg_basebackup would carry
             * the link itself): left out, and counted for a warning */
            if (l->nlinks_skipped++ == 0)
                strlcopy(l->first_link_skipped, crel, sizeof l->first_link_skipped);
            continue;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            continue;
        if (bk_excluded(crel, S_ISDIR(st.st_mode)) || (S_ISDIR(st.st_mode) && is_tablespace(l, &st)))
            continue;
        if (add_item(l, crel, csrc, &st, e) < 0)
            goto out;
        if (S_ISDIR(st.st_mode) && walk_dir(l, csrc, crel, depth + 1, e) < 0)
            goto out;
    }
    rc = 0;
out:
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int item_cmp(const void *a, const void *b)
{
    const struct bk_item *x = a, *y = b;

    if (x->is_dir != y->is_dir)
        return x->is_dir ? -1 : 1;
    return strcmp(x->path, y->path);
}

int bk_walk(const char *pgdata, struct bk_list *out, struct err *e)
{
    struct stat st;

    memset(out, 0, sizeof *out);
    if (stat(pgdata, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_errno(e, ERR_CONFIG, errno ? errno : ENOTDIR, "pgdata \"%s\" is not a directory", pgdata);
    /* the tablespaces first: walk_dir skips their directories */
    if (add_walked(out, &st, e) < 0 || walk_tablespaces(out, pgdata, e) < 0 ||
        walk_dir(out, pgdata, "", 0, e) < 0) {
        bk_list_free(out);
        return -1;
    }
    if (out->n > 1)
        qsort(out->items, out->n, sizeof *out->items, item_cmp);
    for (out->ndirs = 0; out->ndirs < out->n && out->items[out->ndirs].is_dir; out->ndirs++)
        ;
    return 0;
}

void bk_list_free(struct bk_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->items[i].path);
        free(l->items[i].src);
    }
    for (i = 0; i < l->ntbs; i++)
        free(l->tbs[i].target);
    free(l->items);
    free(l->tbs);
    free(l->walked);
    memset(l, 0, sizeof *l);
}

/* Is `oid` at the start of a line of the tablespace map ("OID PATH")? */
static int in_spcmap(const char *spcmap, const char *oid)
{
    size_t n = strlen(oid);
    const char *p = spcmap;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, oid, n) == 0 && p[n] == ' ')
            return 1;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return 0;
}

size_t bk_tablespaces_new(const char *pgdata, const char *spcmap, char *first, size_t n)
{
    char dir[PATH_MAX], **names = NULL;
    size_t cnt = 0, i, found = 0;
    struct err e = ERR_INIT;

    first[0] = '\0';
    if (snprintf(dir, sizeof dir, "%s/pg_tblspc", pgdata) >= (int)sizeof dir ||
        dir_list_sorted(dir, 0, &names, &cnt, &e) < 0)
        return 0;
    for (i = 0; i < cnt; i++) {
        uint64_t oid;
        struct err pe = ERR_INIT;
        char path[PATH_MAX];
        struct stat st;

        /* a link, as PostgreSQL makes for a LOCATION; an in-place
         * tablespace (a directory) is never in the map, and inside PGDATA */
        if (parse_u64(names[i], 1, UINT32_MAX, &oid, &pe) == 0 && !in_spcmap(spcmap ? spcmap : "", names[i]) &&
            snprintf(path, sizeof path, "%s/%s", dir, names[i]) < (int)sizeof path && lstat(path, &st) == 0 &&
            S_ISLNK(st.st_mode) && found++ == 0)
            strlcopy(first, names[i], n);
        free(names[i]);
    }
    free(names);
    return found;
}
