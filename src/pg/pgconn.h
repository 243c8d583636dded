/*
 * pgconn — what walship asks a running PostgreSQL, through libpq.
 *
 * A non-exclusive base backup needs its session kept open from start to
 * stop, so a struct pgconn is one connection.  Versions: pg_backup_start /
 * pg_backup_stop on PostgreSQL 15 and later, pg_start_backup /
 * pg_stop_backup (non-exclusive form) on 13 and 14.  One thread at a time.
 */
#ifndef WALSHIP_PGCONN_H
#define WALSHIP_PGCONN_H

#include <stdint.h>

#include "err.h"
#include "note.h"

struct pgconn;

struct pg_info {
    int version;                    /* server_version_num, e.g. 150018 */
    char system_identifier[32];
    uint64_t wal_segment_size;
    char data_directory[4096];
    int archive_mode;               /* 0 off, 1 on/always */
    int in_recovery;
};

struct pg_backup_stop_result {
    uint64_t lsn;
    char *backup_label;             /* malloc'd */
    char *tablespace_map;           /* malloc'd, NULL or "" when none */
};

/* The server's notices ("all required WAL segments have been archived") go
 * to `notes` at debug level (borrowed for the connection's life; NULL:
 * dropped), never raw to stderr. */
int pg_connect(const char *conninfo, const struct note_sink *notes, struct pgconn **out, struct err *e);
void pg_disconnect(struct pgconn *c);
int pg_get_info(struct pgconn *c, struct pg_info *info, struct err *e);
int pg_backup_begin(struct pgconn *c, const char *label, uint64_t *start_lsn, uint32_t *tli, struct err *e);
/* Stops the backup (the server switches to a new segment) without waiting
 * for archiving: the caller checks the regions for the stop segment.
 * `archive_timeout_s` bounds the call. */
int pg_backup_end(struct pgconn *c, uint64_t archive_timeout_s, struct pg_backup_stop_result *r, struct err *e);
void pg_backup_stop_result_free(struct pg_backup_stop_result *r);
/* Can libpq parse this connection string?  (Nothing is contacted.)  The
 * error does not quote the string: it may hold a password. */
int pg_conninfo_check(const char *conninfo, struct err *e);
/* The connection string for display: as written when it has no password,
 * else as libpq reads it (keyword=value pairs) with the password and the
 * sslpassword shown as <redacted>; NULL when out of memory. */
char *pg_conninfo_redact(const char *conninfo);
/* Does the connection string itself carry a password (password=, the
 * password of a postgresql:// URI, or sslpassword=)?  0 when it cannot be
 * parsed. */
int pg_conninfo_has_password(const char *conninfo);

/* Current WAL insert LSN and timeline (for status). */
int pg_current_lsn(struct pgconn *c, uint64_t *lsn, uint32_t *tli, struct err *e);

/* PostgreSQL's archiver, as pg_stat_archiver shows it (since its last
 * pg_stat_reset_shared('archiver')). */
struct pg_archiver {
    uint64_t archived, failed;      /* archived_count, failed_count */
    char last_archived[64];         /* WAL file names, "" when none */
    char last_failed[64];
    int64_t archived_at, failed_at; /* unix seconds, 0 when never */
    int failing;                    /* the last attempt failed: last_failed_time after last_archived_time */
    int no_command;                 /* archive_command and archive_library are both empty */
};

/* (for status) */
int pg_archiver_stat(struct pgconn *c, struct pg_archiver *a, struct err *e);

#endif
