/*
 * cmd_restore_conf — print and log what restore did to the configuration it
 * found (contract in cmd_restore_conf.h).
 */
#include "cmd_restore_conf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "standby.h"

int restore_conf_outside(const struct manifest *m, int start, const char *pgdata, char *missing, size_t n,
                         struct err *e)
{
    int conf = man_find_file(m, "postgresql.conf") == NULL, hba = man_find_file(m, "pg_hba.conf") == NULL;

    snprintf(missing, n, "%s%s%s", conf ? "postgresql.conf" : "", conf && hba ? " and " : "",
             hba ? "pg_hba.conf" : "");
    if ((conf || hba) && start)
        return err_setf(e, ERR_USAGE,
                        "backup %s has no %s: the cluster keeps its configuration outside its data directory (as "
                        "Debian's /etc/postgresql/VERSION/NAME does), and PostgreSQL cannot start from %s alone, "
                        "so --start cannot work; nothing was fetched.  Restore without --start: it says how to "
                        "start the instance then", m->name, missing, pgdata);
    return 0;
}

void restore_conf_outside_hint(const char *pgdata, const char *missing)
{
    printf("NOTE: the backup has no %s: the cluster kept its configuration outside its data directory (as "
           "Debian's /etc/postgresql/VERSION/NAME does), so PostgreSQL cannot start from %s alone.  Either start "
           "it with that configuration (pg_ctlcluster, its data_directory naming %s), or copy postgresql.conf, "
           "pg_hba.conf and pg_ident.conf into %s without their data_directory, hba_file and ident_file lines.  "
           "Either way that configuration must hold no recovery settings (restore_command, recovery_target*): "
           "restore wrote its own into %s/postgresql.auto.conf and did not see that file.\n",
           missing, pgdata, pgdata, pgdata, pgdata);
}

/* stdout and the restore log, line by line */
struct out2 {
    FILE *log;
};

static void say(struct out2 *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct out2 *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (o->log != NULL) {
        va_start(ap, fmt);
        fprintf(o->log, "walship restore: ");
        vfprintf(o->log, fmt, ap);
        fprintf(o->log, "\n");
        va_end(ap);
    }
}

static void out_open(struct out2 *o, const char *pgdata)
{
    char path[PATH_MAX], ts[64];
    time_t now = time(NULL);
    struct tm tm;

    o->log = NULL;
    if (snprintf(path, sizeof path, "%s/%s", pgdata, RESTORE_CONF_LOG) >= (int)sizeof path)
        return;
    o->log = fopen(path, "ae");
    if (o->log == NULL) {
        log_warning("could not open the restore log \"%s\": what restore changed is printed only", path);
        return;
    }
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(o->log, "walship restore: %s\n", ts);
}

static void out_close(struct out2 *o)
{
    if (o->log != NULL)
        fclose(o->log);
    fflush(stdout);
}

/* "name = 'value'", or the name alone when the value may hold a secret */
static void describe(const struct rconf_change *c, char *out, size_t n)
{
    char q[512];

    if (c->value == NULL)
        snprintf(out, n, "%s", c->name);
    else if (rconf_is_recovery_setting(c->name) && !rconf_value_is_public(c->name))
        snprintf(out, n, "%s (value not shown)", c->name);
    else if (rconf_quote(q, sizeof q, c->value) == 0)
        snprintf(out, n, "%s = %s", c->name, q);
    else
        snprintf(out, n, "%s = (long value)", c->name);
}

int restore_conf_prepare(const char *pgdata, int writes_port, int writes_archive_mode, struct rconf_list *found,
                         struct err *e)
{
    const char *also[3];
    struct out2 o;
    size_t i, k = 0, n = 0;
    char what[640];

    if (writes_port)
        also[k++] = "port";
    if (writes_archive_mode)
        also[k++] = "archive_mode";
    also[k] = NULL;
    if (rconf_neutralise(pgdata, 1, also, found, e) < 0)
        return err_prefix(e, "could not neutralise the recovery settings of the restored configuration");
    out_open(&o, pgdata);
    /* what a warm standby of the backed-up cluster kept, in a backup taken
     * before backups left it out (restore/standby.h): a stale failure
     * would hold a new standby in alarm, a stale promotion mark make it
     * stop */
    for (i = 0; i < 2; i++) {
        static const char *const stale[] = { SBY_STATE_FILE, SBY_PROMOTING_FILE };
        char path[PATH_MAX];

        if (snprintf(path, sizeof path, "%s/%s", pgdata, stale[i]) < (int)sizeof path && unlink(path) == 0)
            say(&o, "  %s from the backup: removed", stale[i]);
    }
    for (i = 0; i < found->n; i++)
        n += found->v[i].what != RCONF_UNREAD &&
             (found->v[i].value == NULL || rconf_is_recovery_setting(found->v[i].name));
    if (n == 0)
        say(&o, "configuration from the backup: no recovery settings found");
    else
        say(&o, "configuration from the backup: %zu recovery setting%s neutralised (restore writes its own):", n,
            n == 1 ? "" : "s");
    for (i = 0; i < found->n; i++) {
        const struct rconf_change *c = &found->v[i];

        describe(c, what, sizeof what);
        switch (c->what) {
        case RCONF_COMMENTED:
            say(&o, "  %s:%u: commented out %s%s", c->file, c->line, what,
                rconf_is_recovery_setting(c->name) ? "" : " (restore writes its own)");
            break;
        case RCONF_REMOVED:
            say(&o, "  %s: removed", c->file);
            break;
        case RCONF_OVERRIDDEN:
            say(&o, "  %s:%u: %s is outside the data directory: left as is, overridden in postgresql.auto.conf",
                c->file, c->line, what);
            break;
        case RCONF_UNREAD:
            say(&o, "  warning: %s is included from outside the data directory and cannot be read: not checked",
                c->file);
            break;
        case RCONF_FOUND:
            break;
        }
    }
    out_close(&o);
    return 0;
}

void restore_conf_after_promote(const char *pgdata, int keep_restore_command)
{
    struct rconf_list l = { NULL, 0, 0 };
    struct err e = ERR_INIT;
    struct out2 o;
    char what[640];
    size_t i;

    if (rconf_after_promote(pgdata, keep_restore_command, &l, &e) < 0) {
        log_warning("the instance is promoted, but its recovery settings could not be removed from "
                    "postgresql.auto.conf (%s): remove them before backing it up", e.msg);
        rconf_list_free(&l);
        return;
    }
    out_open(&o, pgdata);
    say(&o, "promoted: recovery settings removed from postgresql.auto.conf%s",
        keep_restore_command ? " (restore_command kept: --keep-restore-command)" : "");
    for (i = 0; i < l.n; i++) {
        describe(&l.v[i], what, sizeof what);
        say(&o, "  removed %s", what);
    }
    out_close(&o);
    rconf_list_free(&l);
}

void restore_conf_shell_quote(char *out, size_t n, const char *a, const char *b)
{
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-";
    const char *parts[2] = { a, b };
    size_t j = 0;
    int i, bare = a[strspn(a, safe)] == '\0' && b[strspn(b, safe)] == '\0' && (a[0] || b[0]);

    if (n < 3) {
        if (n)
            out[0] = '\0';
        return;
    }
    if (!bare)
        out[j++] = '\'';
    for (i = 0; i < 2; i++) {
        const char *p;

        for (p = parts[i]; *p && j + 6 < n; p++) {
            if (*p == '\'') {
                memcpy(out + j, "'\\''", 4);
                j += 4;
            } else {
                out[j++] = *p;
            }
        }
    }
    if (!bare)
        out[j++] = '\'';
    out[j] = '\0';
}

/* Shell-quote one argument of restore_command into buf: '...' with ' as
 * '\'', and % as %% because PostgreSQL replaces %f, %p, %r and %% in the
 * whole command before the shell sees it (docs/RESTORE.md). */
static int shq(char *buf, size_t n, size_t *len, const char *arg)
{
    if (*len + 3 >= n)
        return -1;
    buf[(*len)++] = ' ';
    buf[(*len)++] = '\'';
    for (; *arg; arg++) {
        if (*arg == '\'') {
            if (*len + 5 >= n)
                return -1;
            memcpy(buf + *len, "'\\''", 4);
            *len += 4;
        } else if (*arg == '%') {
            if (*len + 3 >= n)
                return -1;
            buf[(*len)++] = '%';
            buf[(*len)++] = '%';
        } else {
            if (*len + 2 >= n)
                return -1;
            buf[(*len)++] = *arg;
        }
    }
    buf[(*len)++] = '\'';
    buf[*len] = '\0';
    return 0;
}

/* A key set by a flag or a WALSHIP_<KEY> variable: the restored instance
 * runs restore_command without either, and reads only the file. */
static int set_outside_file(const struct config *c, const char *key)
{
    const char *o = config_origin(c, key);

    return o != NULL && (strncmp(o, "--", 2) == 0 || strncmp(o, "WALSHIP_", 8) == 0);
}

/* A key file's path made absolute against the working directory, its
 * symbolic links kept: realpath() wrote the file a link named at restore
 * time, so a key rotated by pointing the link at a new file (and the old
 * one named in old_key_files) never reached the restored instance, and a
 * standby stalled on the first segment under the new key (adversarial
 * pass AD). */
static const char *key_path(const char *p, char out[PATH_MAX])
{
    char cwd[PATH_MAX];

    if (p[0] == '/' || getcwd(cwd, sizeof cwd) == NULL ||
        snprintf(out, PATH_MAX, "%s/%s", cwd, p) >= PATH_MAX)
        return p;
    return out;
}

/* WALSHIP_OLD_KEY_FILES='...' before the command when old_key_files came
 * from the environment (there is no flag for it). */
static int old_keys_env(const struct config *c, char *buf, size_t n, size_t *len)
{
    char **p;

    if (c->old_key_files == NULL || c->old_key_files[0] == NULL || !set_outside_file(c, "old_key_files"))
        return 0;
    for (p = c->old_key_files; *p; p++) {
        char abs[PATH_MAX];
        const char *v = key_path(*p, abs);

        /* no quoting needed, none possible: PostgreSQL replaces %, the shell ' */
        if (*len + strlen(v) + 32 >= n || strpbrk(v, "'%, \t\n") != NULL)
            return -1;
        *len += (size_t)snprintf(buf + *len, n - *len, "%s%s", p == c->old_key_files ? "WALSHIP_OLD_KEY_FILES='" : ",", v);
    }
    *len += (size_t)snprintf(buf + *len, n - *len, "'");
    return 0;
}

/* The restore_command the restored instance runs: this binary, the same
 * configuration or --from options (and the keys a flag or the environment
 * gave), the region chosen first, and --skip-region for each region of
 * `unasked` (space-separated: those restore could not reach). */
int restore_conf_command(const struct config *c, const char *region, const char *unasked, char *buf, size_t n,
                         struct err *e)
{
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    size_t len = 0;
    int bad = 0;

    if (k <= 0)
        return err_errno(e, ERR_IO, errno, "could not find the walship binary");
    exe[k] = '\0';
    buf[0] = '\0';
    bad |= old_keys_env(c, buf, n, &len);
    bad |= shq(buf, n, &len, exe);
    if (c->path != NULL) {
        char abs[PATH_MAX];

        bad |= shq(buf, n, &len, "--config");
        bad |= shq(buf, n, &len, realpath(c->path, abs) ? abs : c->path);
        if (c->key_file != NULL && set_outside_file(c, "key_file")) {
            bad |= shq(buf, n, &len, "--key-file");
            bad |= shq(buf, n, &len, key_path(c->key_file, abs));
        }
    } else {
        const struct region_conf *r = &c->regions[0];

        bad |= shq(buf, n, &len, "--from");
        bad |= shq(buf, n, &len, r->url);
        if (r->endpoint) {
            bad |= shq(buf, n, &len, "--endpoint");
            bad |= shq(buf, n, &len, r->endpoint);
        }
        if (r->path_style)
            bad |= shq(buf, n, &len, "--path-style");
        if (r->ca_file) {
            char abs[PATH_MAX];

            bad |= shq(buf, n, &len, "--ca-file");
            bad |= shq(buf, n, &len, realpath(r->ca_file, abs) ? abs : r->ca_file);
        }
        if (r->aws_region) {
            bad |= shq(buf, n, &len, "--aws-region");
            bad |= shq(buf, n, &len, r->aws_region);
        }
        if (c->key_file) {
            char abs[PATH_MAX];

            bad |= shq(buf, n, &len, "--key-file");
            bad |= shq(buf, n, &len, key_path(c->key_file, abs));
        }
    }
    bad |= shq(buf, n, &len, "--region");
    bad |= shq(buf, n, &len, region);
    if (bad || len + 32 >= n)
        return err_setf(e, ERR_USAGE, "restore_command would be too long");
    /* %f and %p unquoted: PostgreSQL substitutes them */
    len += (size_t)snprintf(buf + len, n - len, " wal-fetch %%f %%p");
    for (const char *p = unasked; p != NULL && *p != '\0';) {
        size_t w = strcspn(p, " ");
        char name[64];

        snprintf(name, sizeof name, "%.*s", (int)(w < sizeof name ? w : sizeof name - 1), p);
        bad |= shq(buf, n, &len, "--skip-region");
        bad |= shq(buf, n, &len, name);
        p += w + (p[w] == ' ');
    }
    if (bad || len + 1 >= n)
        return err_setf(e, ERR_USAGE, "restore_command would be too long");
    return 0;
}

/* Files restored by root belong to root, and PostgreSQL runs only as its
 * own user, on a data directory that user owns ("data directory has wrong
 * ownership"): the fetch of a large backup would be done for a start that
 * cannot be. */
int restore_root_check(int start, const char *pgdata, struct err *e)
{
    if (geteuid() != 0 || !start)
        return 0;
    return err_setf(e, ERR_USAGE,
                    "--start as root: PostgreSQL does not run as root, and the files restored would belong to root; "
                    "nothing was fetched.  Run walship as the user the server runs as (sudo -u postgres walship "
                    "... restore ... --start), or restore without --start, give %s (and each tablespace "
                    "directory) to that user with chown -R, and start it as that user", pgdata);
}

void restore_root_note(const char *pgdata)
{
    struct stat st;

    if (geteuid() == 0 && stat(pgdata, &st) == 0 && st.st_uid == 0)
        log_warning("the restored files belong to root, and PostgreSQL starts only on a data directory its own "
                    "user owns: before starting it, run chown -R postgres: %s (and the same for each tablespace "
                    "directory), with the user and group the server runs as", pgdata);
}
