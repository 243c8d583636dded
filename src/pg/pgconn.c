#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"
#include "pq_dl.h"
#include "util.h"
#include "wal.h"

struct pgconn {
    PGconn *conn;
    int version;
};

static void strip_nl(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Run a query with parameters; expect `ntuples` rows (-1: any). */
static PGresult *pg_query(struct pgconn *c, const char *sql, int nparams, const char *const *params, int ntuples,
                          struct err *e)
{
    PGresult *r = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        char msg[512];

        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        strip_nl(msg);
        PQclear(r);
        err_setf(e, ERR_IO, "PostgreSQL: %s", msg);
        return NULL;
    }
    if (ntuples >= 0 && PQntuples(r) != ntuples) {
        err_setf(e, ERR_IO, "PostgreSQL: unexpected answer (%d rows) to \"%.60s\"", PQntuples(r), sql);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Server notices go to the caller's note sink at debug level (pg_connect). */
static void pg_notice(void *arg, const char *msg)
{
    char buf[512];

    snprintf(buf, sizeof buf, "%s", msg);
    strip_nl(buf);
    note(arg, LOG_DEBUG, "PostgreSQL: %s", buf);
}

int pg_connect(const char *conninfo, const struct note_sink *notes, struct pgconn **out, struct err *e)
{
    struct pgconn *c = calloc(1, sizeof *c);
    char msg[512];

    if (c == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (pq_dl_load(e) < 0) {
        free(c);
        return -1;
    }
    c->conn = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(c->conn) != CONNECTION_OK) {
        char *shown = pg_conninfo_redact(conninfo ? conninfo : "");

        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c->conn));
        strip_nl(msg);
        pg_disconnect(c);
        /* a server that is down or refuses us is a failure (exit 3), not a
         * configuration error: the string itself was parsed at load time;
         * and the password never reaches the log */
        err_setf(e, ERR_NET, "could not connect to PostgreSQL (pg_conninfo \"%s\"): %s",
                 shown ? shown : "(not shown)", msg);
        free(shown);
        return -1;
    }
    PQsetNoticeProcessor(c->conn, pg_notice, (void *)notes);
    c->version = PQserverVersion(c->conn);
    *out = c;
    return 0;
}

void pg_disconnect(struct pgconn *c)
{
    if (c == NULL)
        return;
    PQfinish(c->conn);
    free(c);
}

int pg_get_info(struct pgconn *c, struct pg_info *info, struct err *e)
{
    PGresult *r;
    struct err pe = ERR_INIT;

    memset(info, 0, sizeof *info);
    info->version = c->version;
    if (c->version < 130000)
        return err_setf(e, ERR_CONFIG, "PostgreSQL %d is not supported (13 or later is needed)", c->version / 10000);
    r = pg_query(c,
                 "select (select system_identifier::text from pg_control_system()), "
                 "(select setting from pg_settings where name = 'wal_segment_size'), "
                 "current_setting('data_directory'), current_setting('archive_mode'), pg_is_in_recovery()",
                 0, NULL, 1, e);
    if (r == NULL)
        return -1;
    strlcopy(info->system_identifier, PQgetvalue(r, 0, 0), sizeof info->system_identifier);
    if (parse_u64(PQgetvalue(r, 0, 1), 1, UINT64_MAX, &info->wal_segment_size, &pe) < 0 ||
        !wal_seg_size_valid(info->wal_segment_size)) {
        PQclear(r);
        return err_setf(e, ERR_IO, "PostgreSQL reports an unexpected wal_segment_size");
    }
    strlcopy(info->data_directory, PQgetvalue(r, 0, 2), sizeof info->data_directory);
    info->archive_mode = strcmp(PQgetvalue(r, 0, 3), "off") != 0;
    info->in_recovery = strcmp(PQgetvalue(r, 0, 4), "t") == 0;
    PQclear(r);
    return 0;
}

static int parse_lsn_value(PGresult *r, int row, int col, uint64_t *lsn, struct err *e)
{
    if (wal_parse_lsn(PQgetvalue(r, row, col), lsn, e) < 0)
        return err_prefix(e, "PostgreSQL answered an unexpected LSN");
    return 0;
}

int pg_backup_begin(struct pgconn *c, const char *label, uint64_t *start_lsn, uint32_t *tli, struct err *e)
{
    const char *params[1] = { label };
    PGresult *r;
    struct wal_name w;

    if (c->version >= 150000)
        r = pg_query(c, "select lsn, pg_walfile_name(lsn) from pg_backup_start($1, true) as lsn", 1, params, 1,
                     e);
    else
        r = pg_query(c, "select lsn, pg_walfile_name(lsn) from pg_start_backup($1, true, false) as lsn", 1,
                     params, 1, e);
    if (r == NULL)
        return err_prefix(e, "could not start the backup");
    if (parse_lsn_value(r, 0, 0, start_lsn, e) < 0 || wal_parse(PQgetvalue(r, 0, 1), &w, e) < 0) {
        PQclear(r);
        return -1;
    }
    *tli = w.tli;
    PQclear(r);
    return 0;
}

int pg_backup_end(struct pgconn *c, uint64_t archive_timeout_s, struct pg_backup_stop_result *res, struct err *e)
{
    PGresult *r;
    char set[64];

    memset(res, 0, sizeof *res);
    /* pg_backup_stop waits for archiving with no limit of its own */
    snprintf(set, sizeof set, "set statement_timeout = '%llus'", (unsigned long long)archive_timeout_s);
    r = pg_query(c, set, 0, NULL, -1, e);
    if (r == NULL)
        return -1;
    PQclear(r);
    /* wait_for_archive off: PostgreSQL would check the archive only once a
     * second; the caller polls the regions for the stop segment itself */
    if (c->version >= 150000)
        r = pg_query(c, "select lsn, labelfile, spcmapfile from pg_backup_stop(false)", 0, NULL, 1, e);
    else
        r = pg_query(c, "select lsn, labelfile, spcmapfile from pg_stop_backup(false, false)", 0, NULL, 1, e);
    if (r == NULL)
        return err_prefix(e, "could not stop the backup (WAL archiving must succeed within archive_timeout = "
                          "%llu s)", (unsigned long long)archive_timeout_s);
    if (parse_lsn_value(r, 0, 0, &res->lsn, e) < 0) {
        PQclear(r);
        return -1;
    }
    res->backup_label = strdup(PQgetvalue(r, 0, 1));
    res->tablespace_map = PQgetisnull(r, 0, 2) ? strdup("") : strdup(PQgetvalue(r, 0, 2));
    PQclear(r);
    if (res->backup_label == NULL || res->tablespace_map == NULL) {
        pg_backup_stop_result_free(res);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

void pg_backup_stop_result_free(struct pg_backup_stop_result *r)
{
    free(r->backup_label);
    free(r->tablespace_map);
    r->backup_label = r->tablespace_map = NULL;
}

/* The timeline: on a primary the one it inserts WAL on (the name of its
 * current segment).  pg_control_checkpoint() gives it only once the first
 * checkpoint after a promotion completed, a spread checkpoint that can take
 * minutes, and status judged the lag on the old timeline's path meanwhile
 * (adversarial pass AE).  In recovery, the last restartpoint's. */
int pg_current_lsn(struct pgconn *c, uint64_t *lsn, uint32_t *tli, struct err *e)
{
    PGresult *r = pg_query(c,
                           "select case when pg_is_in_recovery() then pg_last_wal_replay_lsn() "
                           "else pg_current_wal_lsn() end, "
                           "(select timeline_id from pg_control_checkpoint()), "
                           "case when pg_is_in_recovery() then null else pg_walfile_name(pg_current_wal_lsn()) end",
                           0, NULL, 1, e);
    struct wal_name w;
    uint64_t t;

    if (r == NULL)
        return -1;
    if (parse_lsn_value(r, 0, 0, lsn, e) < 0 || parse_u64(PQgetvalue(r, 0, 1), 1, UINT32_MAX, &t, e) < 0 ||
        (!PQgetisnull(r, 0, 2) && wal_parse(PQgetvalue(r, 0, 2), &w, e) < 0)) {
        PQclear(r);
        return -1;
    }
    *tli = PQgetisnull(r, 0, 2) ? (uint32_t)t : w.tli;
    PQclear(r);
    return 0;
}

int pg_archiver_stat(struct pgconn *c, struct pg_archiver *a, struct err *e)
{
    /* the comparison is PostgreSQL's, on microsecond timestamps: a failure
     * and a success in one second are told apart */
    PGresult *r = pg_query(c,
                           "select archived_count, coalesce(last_archived_wal, ''), "
                           "coalesce(floor(extract(epoch from last_archived_time))::bigint, 0), "
                           "failed_count, coalesce(last_failed_wal, ''), "
                           "coalesce(floor(extract(epoch from last_failed_time))::bigint, 0), "
                           "coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false), "
                           "current_setting('archive_command') = '' and "
                           "coalesce(current_setting('archive_library', true), '') = '' "
                           "from pg_stat_archiver",
                           0, NULL, 1, e);
    int64_t t[2];
    int k;

    memset(a, 0, sizeof *a);
    if (r == NULL)
        return -1;
    for (k = 0; k < 2; k++)
        t[k] = strtoll(PQgetvalue(r, 0, 2 + 3 * k), NULL, 10);
    if (parse_u64(PQgetvalue(r, 0, 0), 0, UINT64_MAX, &a->archived, e) < 0 ||
        parse_u64(PQgetvalue(r, 0, 3), 0, UINT64_MAX, &a->failed, e) < 0 ||
        (t[0] < 0 && err_setf(e, ERR_IO, "a time before 1970") < 0) ||
        (t[1] < 0 && err_setf(e, ERR_IO, "a time before 1970") < 0)) {
        PQclear(r);
        return err_prefix(e, "pg_stat_archiver");
    }
    strlcopy(a->last_archived, PQgetvalue(r, 0, 1), sizeof a->last_archived);
    strlcopy(a->last_failed, PQgetvalue(r, 0, 4), sizeof a->last_failed);
    a->archived_at = t[0];
    a->failed_at = t[1];
    a->failing = strcmp(PQgetvalue(r, 0, 6), "t") == 0;
    a->no_command = strcmp(PQgetvalue(r, 0, 7), "t") == 0;
    PQclear(r);
    return 0;
}

int pg_conninfo_check(const char *conninfo, struct err *e)
{
    char *errmsg = NULL;
    PQconninfoOption *opts;

    if (pq_dl_load(e) < 0)
        return -1;
    opts = PQconninfoParse(conninfo, &errmsg);
    /* libpq's message may quote a piece of an unquoted password: not shown. */
    PQfreemem(errmsg);
    if (opts == NULL)
        return err_setf(e, ERR_CONFIG, "libpq cannot parse this connection string (keyword=value pairs, values "
                        "with blanks in single quotes, or a postgresql:// URI)");
    PQconninfoFree(opts);
    return 0;
}

/* The keywords whose values are secrets: the password, and the passphrase
 * of the client's SSL key (shown in clear by config check before). */
static int secret_keyword(const char *k)
{
    return strcmp(k, "password") == 0 || strcmp(k, "sslpassword") == 0;
}

int pg_conninfo_has_password(const char *conninfo)
{
    PQconninfoOption *opts, *o;
    char *errmsg = NULL;
    int has = 0;

    if (pq_dl_load(NULL) < 0)
        return 0;
    opts = PQconninfoParse(conninfo, &errmsg);
    PQfreemem(errmsg);
    for (o = opts; o != NULL && o->keyword != NULL; o++)
        if (secret_keyword(o->keyword) && o->val != NULL && o->val[0] != '\0')
            has = 1;
    PQconninfoFree(opts);
    return has;
}

/* Append s to out, in single quotes with \ and ' escaped when it needs them. */
static char *put_conn_value(char *out, const char *s)
{
    int quote = *s == '\0' || strpbrk(s, " \t\n'\\") != NULL;

    if (quote)
        *out++ = '\'';
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            *out++ = '\\';
        *out++ = *s;
    }
    if (quote)
        *out++ = '\'';
    return out;
}

char *pg_conninfo_redact(const char *conninfo)
{
    PQconninfoOption *opts, *o;
    char *errmsg = NULL, *out, *p;
    size_t cap = 1;

    if (pq_dl_load(NULL) < 0)
        return strdup("<not shown: libpq could not be loaded>");
    opts = PQconninfoParse(conninfo, &errmsg);
    PQfreemem(errmsg);
    if (opts == NULL)
        return strdup("<not shown: libpq cannot parse it>");
    for (o = opts; o->keyword != NULL && !(secret_keyword(o->keyword) && o->val != NULL); o++)
        ;
    if (o->keyword == NULL) {
        /* No password: shown as written. */
        PQconninfoFree(opts);
        return strdup(conninfo);
    }
    for (o = opts; o->keyword != NULL; o++)
        if (o->val != NULL)
            cap += strlen(o->keyword) + 2 + 2 * strlen(o->val) + sizeof "'<redacted>'";
    p = out = malloc(cap);
    for (o = opts; out != NULL && o->keyword != NULL; o++) {
        size_t kl = strlen(o->keyword);

        if (o->val == NULL)
            continue;
        if (p != out)
            *p++ = ' ';
        memcpy(p, o->keyword, kl);
        p += kl;
        *p++ = '=';
        p = put_conn_value(p, secret_keyword(o->keyword) ? "<redacted>" : o->val);
    }
    if (out != NULL)
        *p = '\0';
    PQconninfoFree(opts);
    return out;
}
