/*
 * rconf — find and neutralise the recovery settings of a restored PGDATA
 * (contract in rconf.h).
 */
#include "rconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define RCONF_MAX_DEPTH 10                  /* PostgreSQL's CONF_FILE_MAX_DEPTH */
#define RCONF_MAX_FILE ((size_t)64 << 20)
#define RCONF_NAME_MAX 128

void rconf_list_free(struct rconf_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->v[i].file);
        free(l->v[i].name);
        free(l->v[i].value);
    }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int add_change(struct rconf_list *l, enum rconf_what what, const char *file, unsigned line, const char *name,
                      const char *value, struct err *e)
{
    struct rconf_change *c;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *nv = realloc(l->v, cap * sizeof *l->v);

        if (nv == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        l->v = nv;
        l->cap = cap;
    }
    c = &l->v[l->n];
    c->what = what;
    c->line = line;
    c->file = xstrdup(file);
    c->name = xstrdup(name);
    c->value = value ? xstrdup(value) : NULL;
    if (c->file == NULL || c->name == NULL || (value && c->value == NULL)) {
        free(c->file);
        free(c->name);
        free(c->value);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    l->n++;
    return 0;
}

/* ---- a growing buffer for the rewritten file ---- */

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *np;

        while (cap < b->len + n + 1)
            cap *= 2;
        np = realloc(b->p, cap);
        if (np == NULL)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int rconf_write_file(const char *path, const char *buf, size_t len, struct err *e)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    mode_t mode = 0600;
    char *slash;
    int fd, keep_owner = 0;

    if (stat(path, &st) == 0) {
        mode = st.st_mode & 07777;
        /* promote run as root must not leave the server's own file to
         * root: PostgreSQL could not read it at its next start */
        keep_owner = st.st_uid != geteuid() || st.st_gid != getegid();
    }
    if (snprintf(tmp, sizeof tmp, "%s.walship-tmp", path) >= (int)sizeof tmp ||
        snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return err_setf(e, ERR_USAGE, "path too long: \"%s\"", path);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    unlink(tmp);    /* a leftover of a killed restore */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create \"%s\"", tmp);
    if ((keep_owner && fchown(fd, st.st_uid, st.st_gid) < 0) || fchmod(fd, mode) < 0 ||
        write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
        int saved = errno;

        close(fd);
        unlink(tmp);
        return err_errno(e, ERR_IO, saved, "could not write \"%s\"", tmp);
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int saved = errno;

        unlink(tmp);
        return err_errno(e, ERR_IO, saved, "could not replace \"%s\"", path);
    }
    return fsync_dir(dir, e);
}

/* ---- the walk over the configuration files ---- */

struct walk {
    char pgdata[PATH_MAX];      /* realpath */
    size_t pgdata_len;
    int apply;
    const char *const *also_auto;
    struct rconf_list *out;
    struct err *e;
};

static int is_inside(const struct walk *w, const char *real)
{
    return strncmp(real, w->pgdata, w->pgdata_len) == 0 &&
           (real[w->pgdata_len] == '/' || real[w->pgdata_len] == '\0');
}

static const char *shown(const struct walk *w, const char *real)
{
    return is_inside(w, real) && real[w->pgdata_len] == '/' ? real + w->pgdata_len + 1 : real;
}

static int listed(const char *const *names, const char *name)
{
    for (; names && *names; names++)
        if (strcmp(*names, name) == 0)
            return 1;
    return 0;
}

/* PostgreSQL's AbsoluteConfigLocation: relative to the including file. */
static int resolve(const char *calling, const char *loc, char *out, size_t n)
{
    const char *slash = strrchr(calling, '/');
    int k;

    if (loc[0] == '/')
        k = snprintf(out, n, "%s", loc);
    else if (slash == NULL)
        k = snprintf(out, n, "%s", loc);
    else
        k = snprintf(out, n, "%.*s/%s", (int)(slash - calling), calling, loc);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

static int do_file(struct walk *w, const char *path, int depth, int is_auto);

static int do_dir(struct walk *w, const char *dir, int depth)
{
    char **names = NULL, sub[PATH_MAX];
    size_t n = 0, i;
    struct err le = ERR_INIT;
    int rc = 0;

    if (dir_list_sorted(dir, DIR_ONLY_FILES | DIR_NO_HIDDEN, &names, &n, &le) < 0) {
        char real[PATH_MAX];

        if (realpath(dir, real) != NULL && is_inside(w, real)) {
            *w->e = le;
            return -1;
        }
        return add_change(w->out, RCONF_UNREAD, dir, 0, "include_dir", NULL, w->e);
    }
    for (i = 0; i < n && rc == 0; i++) {
        if (!str_has_suffix(names[i], ".conf"))
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", dir, names[i]) >= (int)sizeof sub)
            continue;
        rc = do_file(w, sub, depth + 1, 0);
    }
    dir_list_free(names, n);
    return rc;
}

/* One line that sets `name`: include it, or record/comment it out.
 * *comment is set when the line is to be commented out. */
static int do_setting(struct walk *w, const char *path, const char *file, unsigned lineno, const char *name,
                      const char *value, int inside, int is_auto, int depth, int *comment)
{
    char sub[PATH_MAX];

    *comment = 0;
    if (strcmp(name, "include") == 0 || strcmp(name, "include_if_exists") == 0 ||
        strcmp(name, "include_dir") == 0) {
        if (resolve(path, value, sub, sizeof sub) < 0)
            return 0;
        if (depth >= RCONF_MAX_DEPTH)
            return err_setf(w->e, ERR_CONFIG, "%s:%u: includes nested deeper than %d levels", file, lineno,
                            RCONF_MAX_DEPTH);
        return strcmp(name, "include_dir") == 0 ? do_dir(w, sub, depth) : do_file(w, sub, depth + 1, 0);
    }
    /* data_directory in a file inside PGDATA: the restored cluster's data
     * directory is PGDATA.  Left in place, PostgreSQL started on the one
     * it names, the backed-up primary's on its own host (adversarial pass
     * S: writable and archiving while restore said "NOT promoted"); and
     * external_pid_file, the primary's, was written by the restored
     * instance and removed when it stopped.  A restore (apply) comments
     * them out; backup-push does not report them */
    if (w->apply && inside && (strcasecmp(name, "data_directory") == 0 ||
                               strcasecmp(name, "external_pid_file") == 0)) {
        *comment = 1;
        return add_change(w->out, RCONF_COMMENTED, file, lineno, name, value, w->e);
    }
    if (!rconf_is_recovery_setting(name) && !(is_auto && listed(w->also_auto, name)))
        return 0;
    if (!w->apply)
        return add_change(w->out, RCONF_FOUND, file, lineno, name, value, w->e);
    if (!inside)
        return add_change(w->out, RCONF_OVERRIDDEN, file, lineno, name, value, w->e);
    *comment = 1;
    return add_change(w->out, RCONF_COMMENTED, file, lineno, name, value, w->e);
}

static int do_file(struct walk *w, const char *path, int depth, int is_auto)
{
    char real[PATH_MAX], name[RCONF_NAME_MAX];
    struct stat st;
    unsigned char *text = NULL;
    size_t len = 0, pos = 0;
    struct buf nb = { NULL, 0, 0 };
    struct err fe = ERR_INIT;
    const char *file;
    unsigned lineno = 0;
    int inside, changed = 0, rc = -1;

    if (realpath(path, real) == NULL) {
        if (errno == ENOENT)
            return 0;   /* include_if_exists, or PostgreSQL's own error at start */
        return add_change(w->out, RCONF_UNREAD, path, 0, "include", NULL, w->e);
    }
    inside = is_inside(w, real);
    file = shown(w, real);
    /* a FIFO or a device (an include naming /run/initctl, /dev/tty on
     * the DR host): opened, it waited for a writer for ever */
    if (stat(real, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (!inside)
            return add_change(w->out, RCONF_UNREAD, real, 0, "include", NULL, w->e);
        return err_setf(w->e, ERR_CONFIG, "%s is included but is not a regular file", file);
    }
    if (read_file_all(real, RCONF_MAX_FILE, &text, &len, &fe) < 0) {
        if (!inside)
            return add_change(w->out, RCONF_UNREAD, real, 0, "include", NULL, w->e);
        *w->e = fe;
        return -1;
    }
    while (pos < len) {
        const char *line = (const char *)text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        char *value = NULL;
        int comment = 0;

        lineno++;
        if (rconf_parse_line(line, ll, name, sizeof name, &value) == 1) {
            int r = do_setting(w, path, file, lineno, name, value, inside, is_auto, depth, &comment);

            free(value);
            if (r < 0)
                goto out;
        }
        if (comment) {
            changed = 1;
            if (buf_add(&nb, RCONF_PREFIX, strlen(RCONF_PREFIX)) < 0)
                goto nomem;
        }
        if (buf_add(&nb, line, nl ? ll + 1 : ll) < 0)
            goto nomem;
        pos += nl ? ll + 1 : ll;
    }
    if (changed && rconf_write_file(real, nb.p, nb.len, w->e) < 0)
        goto out;
    rc = 0;
    goto out;
nomem:
    err_setf(w->e, ERR_NOMEM, "out of memory");
out:
    free(nb.p);
    free(text);
    return rc;
}

int rconf_neutralise(const char *pgdata, int apply, const char *const *also_auto, struct rconf_list *out,
                     struct err *e)
{
    static const char *const signals[] = { "standby.signal", "recovery.signal" };
    struct walk w;
    char path[PATH_MAX];
    size_t i;
    int removed = 0;

    memset(&w, 0, sizeof w);
    if (realpath(pgdata, w.pgdata) == NULL)
        return err_errno(e, ERR_IO, errno, "bad data directory \"%s\"", pgdata);
    w.pgdata_len = strlen(w.pgdata);
    w.apply = apply;
    w.also_auto = also_auto;
    w.out = out;
    w.e = e;
    /* the order PostgreSQL reads them: postgresql.conf, then the auto file */
    snprintf(path, sizeof path, "%s/postgresql.conf", w.pgdata);
    if (do_file(&w, path, 0, 0) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/postgresql.auto.conf", w.pgdata);
    if (do_file(&w, path, 0, 1) < 0)
        return -1;
    for (i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", w.pgdata, signals[i]);
        if (access(path, F_OK) != 0)
            continue;
        if (apply && unlink(path) < 0)
            return err_errno(e, ERR_IO, errno, "could not remove \"%s\"", path);
        removed |= apply;
        if (add_change(out, apply ? RCONF_REMOVED : RCONF_FOUND, signals[i], 0, signals[i], NULL, e) < 0)
            return -1;
    }
    return removed ? fsync_dir(w.pgdata, e) : 0;
}

int rconf_after_promote(const char *pgdata, int keep_restore_command, struct rconf_list *out, struct err *e)
{
    char path[PATH_MAX], name[RCONF_NAME_MAX];
    unsigned char *text = NULL;
    size_t len = 0, pos = 0, plen = strlen(RCONF_PREFIX);
    struct buf nb = { NULL, 0, 0 };
    unsigned lineno = 0;
    int changed = 0, rc = -1;

    if (snprintf(path, sizeof path, "%s/postgresql.auto.conf", pgdata) >= (int)sizeof path)
        return err_setf(e, ERR_USAGE, "path too long");
    if (read_file_all(path, RCONF_MAX_FILE, &text, &len, e) < 0)
        return -1;
    while (pos < len) {
        const char *line = (const char *)text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        char *value = NULL;
        int drop = 0, r;

        lineno++;
        if (ll >= plen && memcmp(line, RCONF_PREFIX, plen) == 0) {
            /* a line restore commented out: gone with the settings */
            r = rconf_parse_line(line + plen, ll - plen, name, sizeof name, &value);
            drop = r == 1 && rconf_is_recovery_setting(name);
        } else if (rconf_parse_line(line, ll, name, sizeof name, &value) == 1 && rconf_is_recovery_setting(name) &&
                   !(keep_restore_command && strcmp(name, "restore_command") == 0)) {
            drop = 1;
            if (add_change(out, RCONF_REMOVED, "postgresql.auto.conf", lineno, name, value, e) < 0) {
                free(value);
                goto out;
            }
        }
        free(value);
        changed |= drop;
        if (!drop && buf_add(&nb, line, nl ? ll + 1 : ll) < 0) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        pos += nl ? ll + 1 : ll;
    }
    if (changed && rconf_write_file(path, nb.p ? nb.p : "", nb.len, e) < 0)
        goto out;
    rc = 0;
out:
    free(nb.p);
    free(text);
    return rc;
}

char *rconf_summary(const struct rconf_list *l, size_t max)
{
    struct buf b = { NULL, 0, 0 };
    size_t i, k;

    for (i = 0; i < l->n; i++) {
        const struct rconf_change *c = &l->v[i];
        char one[PATH_MAX + RCONF_NAME_MAX + 32];
        int n;

        if (c->file[0] == '/' || c->what == RCONF_UNREAD)
            continue;
        if (c->line > 0)
            n = snprintf(one, sizeof one, "%s%s (%s:%u)", b.len ? ", " : "", c->name, c->file, c->line);
        else
            n = snprintf(one, sizeof one, "%s%s", b.len ? ", " : "", c->name);
        if (n < 0 || (size_t)n >= sizeof one)
            continue;
        for (k = 0; k < (size_t)n; k++)
            if ((unsigned char)one[k] < 0x20 || (unsigned char)one[k] > 0x7e)
                one[k] = '?';
        if (b.len + (size_t)n + 4 > max) {
            buf_add(&b, ", ...", b.len + 5 <= max ? 5 : 0);
            break;
        }
        if (buf_add(&b, one, (size_t)n) < 0) {
            free(b.p);
            return NULL;
        }
    }
    return b.p;
}
