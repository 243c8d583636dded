/* rconf: PostgreSQL configuration lines, quoting, and the neutralising of
 * recovery settings in a data directory (issue 17, issue 11 item 2). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pitr.h"
#include "rconf.h"
#include "tap.h"
#include "util.h"

static int parse(const char *line, char *name, char **value)
{
    return rconf_parse_line(line, strlen(line), name, 128, value);
}

static void check_line(const char *line, int want_rc, const char *want_name, const char *want_value)
{
    char name[128] = "";
    char *value = NULL;
    int rc = parse(line, name, &value);

    is_int(rc, want_rc, "parse rc of [%s]", line);
    if (want_rc == 1) {
        is_str(name, want_name, "name of [%s]", line);
        is_str(value ? value : "(null)", want_value, "value of [%s]", line);
    }
    free(value);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX];
    FILE *f;

    snprintf(p, sizeof p, "%s/%s", dir, name);
    f = fopen(p, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static char *read_text(const char *dir, const char *name)
{
    char p[PATH_MAX];
    unsigned char *buf = NULL;
    size_t len;
    struct err e = ERR_INIT;

    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (read_file_all(p, 1 << 20, &buf, &len, &e) < 0)
        return strdup("");
    return (char *)buf;
}

static const struct rconf_change *find(const struct rconf_list *l, const char *file, const char *name)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i].file, file) == 0 && strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

static void test_lines(void)
{
    check_line("recovery_target_time = '2026-01-01 00:00:00+00'", 1, "recovery_target_time",
               "2026-01-01 00:00:00+00");
    check_line("  Recovery_Target_TIME='x'   # a trailing comment", 1, "recovery_target_time", "x");
    check_line("recovery_target_xid 1234", 1, "recovery_target_xid", "1234");
    check_line("recovery_target_xid\t=\t1234\r", 1, "recovery_target_xid", "1234");
    check_line("port=5432#comment", 1, "port", "5432");
    check_line("restore_command = 'cp ''a b'' %p'", 1, "restore_command", "cp 'a b' %p");
    check_line("restore_command = 'C:\\\\dir\\\\x'", 1, "restore_command", "C:\\dir\\x");
    check_line("x = 'a\\'b'", 1, "x", "a'b");
    check_line("x = 'tab\\there\\n'", 1, "x", "tab\there\n");
    check_line("x = '\\101\\60'", 1, "x", "A0");
    check_line("x = '\\q'", 1, "x", "q");
    check_line("primary_conninfo = 'host=a # not a comment'", 1, "primary_conninfo", "host=a # not a comment");
    check_line("walship.custom = on", 1, "walship.custom", "on");
    check_line("include_dir 'conf.d'", 1, "include_dir", "conf.d");
    check_line("x = 'caf\xc3\xa9 \xe2\x82\xac'", 1, "x", "caf\xc3\xa9 \xe2\x82\xac");
    check_line("", 0, NULL, NULL);
    check_line("   \t ", 0, NULL, NULL);
    check_line("# recovery_target_time = 'x'", 0, NULL, NULL);
    check_line("   #recovery_target_lsn = '0/1'", 0, NULL, NULL);
    check_line("recovery_target_time = 'unterminated", -1, NULL, NULL);
    check_line("recovery_target_time = 'a' junk", -1, NULL, NULL);
    check_line("recovery_target_time =", -1, NULL, NULL);
    check_line("recovery_target_time = # nothing", -1, NULL, NULL);
    check_line("1abc = 2", -1, NULL, NULL);
    check_line("= 2", -1, NULL, NULL);
    check_line("x = 'ends in a backslash\\", -1, NULL, NULL);
}

static void test_quote(void)
{
    static const char *const vals[] = {
        "plain", "it's", "back\\slash", "both '\\' and ''", "sp a ce", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98",
        "new\nline\rcr\ttab", "ctl\001\037\177", "#hash", "'", "\\", "",
        "/usr/bin/walship '--config' '/tmp/a'\\''b\\c d \xc3\xa9/w.conf' wal-fetch %f %p",
    };
    char q[1024], name[128];
    size_t i;

    for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char line[1200], *v = NULL;

        ok(rconf_quote(q, sizeof q, vals[i]) == 0, "quote value %zu", i);
        snprintf(line, sizeof line, "restore_command = %s", q);
        ok(strchr(q, '\n') == NULL && strchr(q, '\r') == NULL, "quoted value %zu is one line", i);
        is_int(rconf_parse_line(line, strlen(line), name, sizeof name, &v), 1, "quoted value %zu parses", i);
        is_str(v ? v : "(null)", vals[i], "quoted value %zu reads back exactly", i);
        free(v);
    }
    ok(rconf_quote(q, 8, "0123456789") < 0, "quote says when it does not fit");
}

static void test_names(void)
{
    ok(rconf_is_recovery_setting("RECOVERY_TARGET_LSN"), "names are case-insensitive");
    ok(rconf_is_recovery_setting("recovery_target"), "recovery_target");
    ok(rconf_is_recovery_setting("recovery_target_inclusive"), "recovery_target_inclusive");
    ok(rconf_is_recovery_setting("recovery_target_whatever"), "every recovery_target* name");
    ok(rconf_is_recovery_setting("primary_conninfo") && rconf_is_recovery_setting("primary_slot_name") &&
       rconf_is_recovery_setting("restore_command") && rconf_is_recovery_setting("recovery_end_command") &&
       rconf_is_recovery_setting("archive_cleanup_command"), "the commands and the primary connection");
    ok(!rconf_is_recovery_setting("archive_command") && !rconf_is_recovery_setting("port") &&
       !rconf_is_recovery_setting("recovery_init_sync_method"), "other settings are not recovery settings");
    ok(!rconf_value_is_public("primary_conninfo") && !rconf_value_is_public("restore_command"),
       "values that may hold a password are not shown");
    is_str(rconf_neutral_value("recovery_target_action"), "pause", "neutral recovery_target_action");
    is_str(rconf_neutral_value("recovery_target_time"), "", "neutral recovery_target_time");
    ok(rconf_neutral_value("recovery_target_whatever") == NULL, "an unknown name has no neutral value");
}

static void make_pgdata(const char *d, const char *outside)
{
    char p[PATH_MAX * 2], conf[PATH_MAX * 3];

    snprintf(p, sizeof p, "%s/conf.d", d);
    mkdir(p, 0700);
    snprintf(conf, sizeof conf,
             "# PostgreSQL configuration\n"
             "shared_buffers = 128MB\n"
             "Recovery_Target_Time = '2026-01-01 00:00:00+00'   # left by an operator\n"
             "primary_conninfo 'host=x password=secret'\n"
             "archive_command = 'echo # recovery_target_time = 1'\n"
             "#recovery_target_lsn = '0/1'\n"
             "include 'inc.conf'\n"
             "include_if_exists 'missing.conf'\n"
             "include_dir 'conf.d'\n"
             "include '%s/ext.conf'\n"
             "recovery_target_xid = 'broken line\n"
             "no newline at the end: recovery_target_name = 'x'",
             outside);
    write_text(d, "postgresql.conf", conf);
    snprintf(p, sizeof p, "%s/postgresql.conf", d);
    chmod(p, 0640);
    write_text(d, "inc.conf", "restore_command = 'cp /a/%f %p'\n");
    write_text(d, "conf.d/a.conf", "recovery_end_command = 'true'\nprimary_slot_name = s1\n");
    write_text(d, "conf.d/.hidden.conf", "recovery_target_lsn = '0/5'\n");
    write_text(d, "conf.d/notes.txt", "recovery_target_lsn = '0/6'\n");
    write_text(d, "postgresql.auto.conf",
               "# Do not edit this file manually!\n"
               "recovery_target_action = 'promote'\n"
               "RECOVERY_TARGET_INCLUSIVE = off\n"
               "recovery_target = 'immediate'\n"
               "recovery_target_timeline = '1'\n"
               "archive_cleanup_command = 'x'\n"
               "port = 5433\n"
               "archive_mode = 'off'\n");
    write_text(d, "standby.signal", "");
    write_text(d, "recovery.signal", "");
    write_text(outside, "ext.conf", "recovery_target_xid = '77'\nwork_mem = 4MB\n");
}

static void test_neutralise(const char *d, const char *outside)
{
    struct rconf_list l = { NULL, 0, 0 };
    struct err e = ERR_INIT;
    const char *also[] = { "port", NULL };
    const struct rconf_change *c;
    char *text, ext_before[256];
    struct stat st;
    char p[PATH_MAX + 64];
    size_t i, ncomm = 0;

    make_pgdata(d, outside);
    ok(rconf_neutralise(d, 0, NULL, &l, &e) == 0, "scan: %s", e.msg);
    is_int(l.n, 13, "scan finds 10 settings in PGDATA, 1 outside and 2 signal files");
    for (i = 0; i < l.n; i++)
        ok(l.v[i].what == RCONF_FOUND, "scan changes nothing (%s)", l.v[i].name);
    text = read_text(d, "postgresql.conf");
    ok(strstr(text, RCONF_PREFIX) == NULL, "scan leaves postgresql.conf as it is");
    free(text);
    rconf_list_free(&l);

    text = read_text(outside, "ext.conf");
    snprintf(ext_before, sizeof ext_before, "%s", text);
    free(text);
    ok(rconf_neutralise(d, 1, also, &l, &e) == 0, "neutralise: %s", e.msg);
    c = find(&l, "postgresql.conf", "recovery_target_time");
    ok(c && c->what == RCONF_COMMENTED && c->line == 3 && strcmp(c->value, "2026-01-01 00:00:00+00") == 0,
       "recovery_target_time in postgresql.conf: commented out, line 3, value");
    c = find(&l, "postgresql.conf", "primary_conninfo");
    ok(c && c->what == RCONF_COMMENTED && c->line == 4, "primary_conninfo (no '=')");
    ok(find(&l, "postgresql.conf", "archive_command") == NULL, "a '#' inside quotes is no comment, no setting");
    ok(find(&l, "inc.conf", "restore_command") != NULL, "include: restore_command");
    ok(find(&l, "conf.d/a.conf", "recovery_end_command") != NULL && find(&l, "conf.d/a.conf", "primary_slot_name"),
       "include_dir: recovery_end_command and primary_slot_name");
    ok(find(&l, "conf.d/.hidden.conf", "recovery_target_lsn") == NULL &&
       find(&l, "conf.d/notes.txt", "recovery_target_lsn") == NULL,
       "include_dir reads *.conf only, not hidden files, as PostgreSQL");
    snprintf(p, sizeof p, "%s/ext.conf", outside);
    c = find(&l, p, "recovery_target_xid");
    ok(c && c->what == RCONF_OVERRIDDEN && strcmp(c->value, "77") == 0,
       "a file outside PGDATA: reported as overridden, with its absolute path");
    text = read_text(outside, "ext.conf");
    is_str(text, ext_before, "a file outside PGDATA is never changed");
    free(text);
    ok(find(&l, "postgresql.auto.conf", "recovery_target_inclusive") &&
       find(&l, "postgresql.auto.conf", "recovery_target") &&
       find(&l, "postgresql.auto.conf", "recovery_target_timeline") &&
       find(&l, "postgresql.auto.conf", "archive_cleanup_command") &&
       find(&l, "postgresql.auto.conf", "recovery_target_action"), "every recovery setting in the auto file");
    ok(find(&l, "postgresql.auto.conf", "port") != NULL, "restore's own port: commented out in the auto file");
    ok(find(&l, "postgresql.auto.conf", "archive_mode") == NULL, "a setting not asked for stays");
    ok(find(&l, "standby.signal", "standby.signal") && find(&l, "recovery.signal", "recovery.signal"),
       "both signal files reported");
    snprintf(p, sizeof p, "%s/standby.signal", d);
    ok(access(p, F_OK) != 0, "standby.signal removed");
    snprintf(p, sizeof p, "%s/recovery.signal", d);
    ok(access(p, F_OK) != 0, "recovery.signal removed");
    for (i = 0; i < l.n; i++)
        ncomm += l.v[i].what == RCONF_COMMENTED;
    is_int(ncomm, 11, "11 lines commented out");

    text = read_text(d, "postgresql.conf");
    like(text, "\n" RCONF_PREFIX "Recovery_Target_Time = '2026-01-01 00:00:00+00'   # left by an operator\n",
         "the line is kept whole behind the prefix");
    like(text, "\nrecovery_target_xid = 'broken line\n", "a line PostgreSQL cannot parse is left alone");
    ok(str_has_suffix(text, "\nno newline at the end: recovery_target_name = 'x'"),
       "the last line keeps having no newline");
    like(text, "\n#recovery_target_lsn = '0/1'\n", "a commented line stays as it was");
    free(text);
    snprintf(p, sizeof p, "%s/postgresql.conf", d);
    ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0640, "the file keeps its mode");
    rconf_list_free(&l);

    ok(rconf_neutralise(d, 1, also, &l, &e) == 0, "neutralise again: %s", e.msg);
    is_int(l.n, 1, "a second pass finds only the setting outside PGDATA");
    rconf_list_free(&l);
}

static void test_write_and_promote(const char *d)
{
    struct rconf_list found = { NULL, 0, 0 };
    struct rconf_list l = { NULL, 0, 0 };
    struct pitr_target t;
    struct err e = ERR_INIT;
    const char *cmd = "/usr/bin/walship '--config' '/tmp/it'\\''s \\ d\xc3\xa9j\xc3\xa0/w.conf' wal-fetch %f %p";
    char *text, *xid, *tgt;

    ok(rconf_neutralise(d, 1, NULL, &found, &e) == 0, "neutralise before writing");
    memset(&t, 0, sizeof t);
    t.kind = PITR_TIME;
    snprintf(t.value, sizeof t.value, "2026-12-01 10:00:00+00");
    snprintf(t.action, sizeof t.action, "promote");
    snprintf(t.timeline, sizeof t.timeline, "latest");
    ok(pitr_write_recovery(d, &t, cmd, 0, 5499, &found, &e) == 0, "write the recovery settings: %s", e.msg);
    text = read_text(d, "postgresql.auto.conf");
    xid = strstr(text, "\nrecovery_target_xid = ''");
    tgt = strstr(text, "\nrecovery_target_time = '2026-12-01 10:00:00+00'\n");
    ok(xid != NULL && tgt != NULL && xid < tgt, "the override of the outside target comes before ours");
    like(text, "\nrestore_command = '/usr/bin/walship ''--config'' ''/tmp/it''\\\\''''s \\\\ d\xc3\xa9j\xc3\xa0/w.conf'' "
               "wal-fetch %f %p'\n",
         "restore_command: shell quoting inside, ' doubled and \\ escaped outside");
    ok(str_has_prefix(text, "# Do not edit"), "what the backup had comes first");
    free(text);

    ok(rconf_after_promote(d, 0, &l, &e) == 0, "after promotion: %s", e.msg);
    text = read_text(d, "postgresql.auto.conf");
    ok(strstr(text, "recovery_target") == NULL, "no recovery_target line of any kind is left");
    ok(strstr(text, "restore_command") == NULL, "restore_command removed");
    like(text, "\nport = 5499\n", "other settings stay");
    free(text);
    ok(find(&l, "postgresql.auto.conf", "recovery_target_time") && find(&l, "postgresql.auto.conf", "restore_command"),
       "the removed settings are listed");
    rconf_list_free(&l);

    write_text(d, "postgresql.auto.conf", "restore_command = 'x'\nrecovery_target_lsn = '0/1'\n"
                                          RCONF_PREFIX "restore_command = 'old'\n");
    ok(rconf_after_promote(d, 1, &l, &e) == 0, "after promotion, keeping restore_command");
    text = read_text(d, "postgresql.auto.conf");
    is_str(text, "restore_command = 'x'\n", "only restore_command stays (the old commented one goes)");
    free(text);
    rconf_list_free(&l);
    rconf_list_free(&found);
}

static void test_cycle(const char *base)
{
    struct rconf_list l = { NULL, 0, 0 };
    struct err e = ERR_INIT;
    char d[PATH_MAX];

    snprintf(d, sizeof d, "%s/cycle", base);
    mkdir(d, 0700);
    write_text(d, "postgresql.conf", "include 'postgresql.conf'\n");
    ok(rconf_neutralise(d, 1, NULL, &l, &e) < 0 && strstr(e.msg, "nested deeper") != NULL,
       "a file that includes itself is refused, as PostgreSQL does (%s)", e.msg);
    rconf_list_free(&l);
}

int main(void)
{
    char base[] = "/tmp/rconf_test.XXXXXX", d[PATH_MAX], outside[PATH_MAX], cmd[PATH_MAX + 16];

    if (mkdtemp(base) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    snprintf(d, sizeof d, "%s/data", base);
    snprintf(outside, sizeof outside, "%s/etc", base);
    mkdir(d, 0700);
    mkdir(outside, 0700);

    test_lines();
    test_quote();
    test_names();
    test_neutralise(d, outside);
    test_write_and_promote(d);
    test_cycle(base);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", base);
    return done_testing();
}
