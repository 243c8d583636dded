/*
 * cmd_restore_conf — print and log what restore did to the configuration it
 * found (contract in cmd_restore_conf.h).
 */
#include "cmd_restore_conf.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

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
