/*
 * rconf — the recovery settings a restored PGDATA carries, found and
 * neutralised before walship starts the instance (issue 17).
 *
 * A backup copies postgresql.auto.conf, postgresql.conf and the files they
 * include.  When the backed-up cluster was itself made by a restore, those
 * files may still hold recovery_target_time and friends; started beside
 * walship's own settings they would stop recovery early, or refuse to start.
 * So a restore owns the recovery settings: rconf_neutralise() comments out
 * (prefix RCONF_PREFIX) every recovery setting it finds in the configuration
 * files inside PGDATA, removes standby.signal and recovery.signal, and
 * reports each change; settings in files outside PGDATA are left as they are
 * and reported as RCONF_OVERRIDDEN: the caller overrides them in
 * postgresql.auto.conf, which PostgreSQL reads last.  rconf_after_promote()
 * removes the recovery settings from postgresql.auto.conf once the instance
 * is a primary, so a backup of it is clean.
 *
 * The parser follows PostgreSQL's configuration syntax (guc-file.l): one
 * setting per line, `name = value` or `name value`, names case-insensitive,
 * values quoted ('' and backslash escapes) or bare, `#` comments, and the
 * include, include_if_exists and include_dir directives (relative paths are
 * relative to the including file).  A line PostgreSQL could not parse is left
 * alone (PostgreSQL would refuse to start on it anyway).
 *
 * Library code: it returns lists of changes and never prints.  Not
 * thread-safe on one PGDATA; every file it rewrites is replaced atomically
 * (temporary file, fsync, rename, fsync of the directory), keeping its mode.
 */
#ifndef WALSHIP_RCONF_H
#define WALSHIP_RCONF_H

#include <stddef.h>

#include "err.h"

/* What a commented-out line starts with. */
#define RCONF_PREFIX "# walship restore: "

enum rconf_what {
    RCONF_FOUND,        /* scan only: the setting or signal file is there */
    RCONF_COMMENTED,    /* a setting commented out in a file inside PGDATA */
    RCONF_REMOVED,      /* a signal file removed, or (after promotion) a line removed */
    RCONF_OVERRIDDEN,   /* in a file outside PGDATA: left as is, to be overridden */
    RCONF_UNREAD        /* an include outside PGDATA that could not be read */
};

struct rconf_change {
    enum rconf_what what;
    char *file;         /* relative to PGDATA when inside it, else absolute */
    unsigned line;      /* 1-based; 0 for a whole file */
    char *name;         /* the setting, lower case; or the signal file's name */
    char *value;        /* decoded value, or NULL (signal files) */
};

struct rconf_list {
    struct rconf_change *v;
    size_t n, cap;
};

void rconf_list_free(struct rconf_list *l);

/* Is `name` (any case) a recovery setting restore owns?  recovery_target*,
 * restore_command, recovery_end_command, archive_cleanup_command,
 * primary_conninfo, primary_slot_name, recovery_min_apply_delay,
 * promote_trigger_file. */
int rconf_is_recovery_setting(const char *name);

/* Is the value of this setting safe to show (no password can be in it)?
 * True for recovery_target*, false for the commands and primary_conninfo. */
int rconf_value_is_public(const char *name);

/* The value that sets `name` back to PostgreSQL's default when written into
 * postgresql.auto.conf ("" for the strings; the enum/bool defaults). */
const char *rconf_neutral_value(const char *name);

/* Parse one line (without its newline).  1: a setting (name lower-cased
 * into `name`, the decoded value malloc'd into *value); 0: blank or comment;
 * -1: not something PostgreSQL would parse (left alone).  Directives come
 * back as settings named include, include_if_exists, include_dir. */
int rconf_parse_line(const char *line, size_t len, char *name, size_t name_cap, char **value);

/* Quote a value for a PostgreSQL configuration file: '...' with ' doubled,
 * backslash doubled, newline, CR and tab escaped.  -1 when it does not fit. */
int rconf_quote(char *out, size_t n, const char *v);

/* Find every recovery setting and signal file in PGDATA's configuration:
 * postgresql.conf, then postgresql.auto.conf, with their includes.  With
 * `apply`, comment them out and remove the signal files; `also_auto` (NULL
 * or NULL-terminated) names more settings to comment out in
 * postgresql.auto.conf only: the ones the caller is about to write there.
 * Without `apply` nothing is changed and every entry is RCONF_FOUND. */
int rconf_neutralise(const char *pgdata, int apply, const char *const *also_auto, struct rconf_list *out,
                     struct err *e);

/* After promotion: remove from PGDATA/postgresql.auto.conf every line that
 * sets a recovery setting, and the lines RCONF_PREFIX commented out that name
 * one, except restore_command when keep_restore_command.  Each removed
 * setting is listed as RCONF_REMOVED. */
int rconf_after_promote(const char *pgdata, int keep_restore_command, struct rconf_list *out, struct err *e);

/* "name (file:line), signal-file, ..." for the entries inside PGDATA (file
 * not absolute), printable ASCII only, at most `max` bytes; NULL when there
 * are none or out of memory.  Malloc'd. */
char *rconf_summary(const struct rconf_list *l, size_t max);

/* Replace `path` atomically with `len` bytes of `buf` (mode of the old file,
 * or 0600). */
int rconf_write_file(const char *path, const char *buf, size_t len, struct err *e);

#endif
