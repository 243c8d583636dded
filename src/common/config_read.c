/*
 * config_read — read the configuration file exactly as written, or refuse it.
 *
 * libinih splits "key = value" and strips comments, but on its own (as
 * Debian 12 builds inih 55) it reads an indented line as the continuation
 * of the previous value, keeps "# comment" in values, cuts lines at 199
 * bytes and parses the tail as a new line, ignores text after "]", keeps
 * only 49 bytes of a section name, never reports a section without keys,
 * takes "key: value", and merges repeated sections and keys.  So this file
 * owns the lines: it reads the whole file, checks each line, tracks the
 * sections itself, hands inih one line at a time without its indentation,
 * and then checks that what inih made of the line is the line: one setting
 * per key line, none from any other line, name and value found where they
 * are written.  docs/CONFIG.md, "How the file is read", says why each check
 * is there.
 */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autoconf.h"
#include "pgconn.h"
#include "utf8.h"
#include "util.h"

#define CONF_MAX_FILE (16u << 20)
#define CONF_MAX_LINE (1u << 20)

enum line_kind { LINE_BLANK, LINE_COMMENT, LINE_SECTION, LINE_KEY };

struct reader {
    struct config *c;
    const char *path;
    const char *buf;            /* the whole file */
    size_t len, pos;
    int eof;                    /* handed inih every line */
    int failed;
    struct err *e;

    /* The line inih is reading: text without indentation or line end, then "\n". */
    int lineno;
    const char *text;
    size_t tlen, served;
    enum line_kind kind;
    int calls;                  /* handler calls for this line */

    int in_section;
    int region;                 /* index of the current region; -1: [global] */
    int global_line;            /* line of [global], 0: none yet */
    int seen[CONFIG_MAX_KEYS];  /* line of each key of the current section */
    int has_secret;
};

static int fail(struct reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct reader *rd, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rd->failed = 1;
    return err_setf(rd->e, ERR_CONFIG, "%s:%d: %s", rd->path, rd->lineno, msg);
}

/* Debian builds libinih with INI_RUNTIME_OPTIONS: set them so that it reads
 * what the checks below accept.  Without them the checks still refuse what
 * the fixed options would misread (lines over 196 bytes, " #" comments). */
static void tune_inih(void)
{
#ifdef HAVE_INI_RUNTIME_OPTIONS
    static char comment_chars[] = ";#";

    ini_allow_multiline = false;
    ini_allow_bom = false;                      /* the reader strips it */
    ini_start_comment_prefixes = comment_chars;
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = comment_chars;
    ini_use_stack = false;                      /* no 1 MiB array on the stack */
    ini_allow_realloc = true;
    ini_initial_alloc = 4096;
    ini_max_line = CONF_MAX_LINE + 3;           /* the line, "\n", NUL, and one spare */
    ini_stop_on_first_error = false;            /* the reader stops it */
    ini_allow_no_value = false;
#endif
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* The key a line starts with ("session_token = ..."), for errors about
 * lines too long to read; "" if it does not look like one. */
static void key_hint(const char *t, size_t n, char *out, size_t cap)
{
    size_t i = 0, j;

    while (i < n && is_blank(t[i]))
        i++;
    for (j = 0; i < n && j + 1 < cap && (islower((unsigned char)t[i]) || t[i] == '_'); i++)
        out[j++] = t[i];
    out[j] = '\0';
    while (i < n && is_blank(t[i]))
        i++;
    if (i >= n || t[i] != '=')
        out[0] = '\0';
}

/* The code point of the 2- or 3-byte UTF-8 sequence at s, or 0. */
static unsigned utf8_cp(const unsigned char *s, size_t n)
{
    if (n >= 2 && s[0] >= 0xc2 && s[0] <= 0xdf && (s[1] & 0xc0) == 0x80)
        return (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    if (n >= 3 && (s[0] & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80)
        return (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    return 0;
}

/* The length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    char b[5] = { 0 };

    memcpy(b, s, n < 4 ? n : 4);
    return utf8_seq_len(b);
}

/* Why the code point cp cannot be in a configuration file, or NULL: it
 * looks like a blank (a blank before "#" starts a comment; this one would
 * keep the comment in the value), like nothing, like a line break, or it
 * changes the order in which the line is displayed. */
static const char *unseen_cp(unsigned cp)
{
    if (cp >= 0x80 && cp <= 0x9f)
        return "control character";
    if (cp == 0xa0)
        return "no-break space: it looks like a space but is not one (a comment needs a space or a tab before it)";
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return "Unicode space: it looks like a space but is not one (a comment needs a space or a tab before it)";
    if ((cp >= 0x200b && cp <= 0x200d) || cp == 0x2060)
        return "invisible character";
    if (cp == 0x2028 || cp == 0x2029)
        return "line or paragraph separator: an editor may show a line break where there is none";
    if (cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
        (cp >= 0x2066 && cp <= 0x2069))
        return "text direction control: the line would be displayed in another order than it is read";
    if (cp == 0xfeff)
        return "byte order mark: only the file may start with one";
    return NULL;
}

size_t config_bad_char(const char *text, size_t n, char *what, size_t cap, const char **why)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned cp;
    size_t i, len;

    for (i = 0; i < n; i++) {
        *why = "it does not show";
        if (s[i] == '\0' || s[i] == '\r') {
            if (s[i] == '\r')
                *why = "lines end with \\n or \\r\\n; elsewhere it does not show";
            snprintf(what, cap, "%s", s[i] == '\0' ? "NUL byte" : "carriage return");
            return i;
        }
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
            snprintf(what, cap, "control character 0x%02x", s[i]);
            return i;
        }
        if (s[i] < 0x80)
            continue;
        if ((len = seq_len(s + i, n - i)) == 0 && s[i] == 0xa0) {
            /* not UTF-8 (taken as written), but a no-break space too */
            *why = "a no-break space in Latin-1 or Windows-1252: it looks like a space but is not one (save the "
                   "file as UTF-8, and write a space)";
            snprintf(what, cap, "byte 0xA0");
            return i;
        }
        if ((cp = utf8_cp(s + i, n - i)) != 0 && (*why = unseen_cp(cp)) != NULL) {
            snprintf(what, cap, "U+%04X", cp);
            return i;
        }
        if (len > 1)
            i += len - 1;       /* 0xA0 inside a character is no space */
    }
    return n;
}

static int check_bytes(struct reader *rd, const char *s, size_t n)
{
    char what[64];
    const char *why;
    size_t at = config_bad_char(s, n, what, sizeof what, &why);

    return at < n ? fail(rd, "%s at column %zu: %s", what, at + 1, why) : 0;
}

int config_env_value_check(const char *name, const char *v, struct err *e)
{
    char what[64];
    const char *why;
    size_t n = strlen(v), at = config_bad_char(v, n, what, sizeof what, &why);

    if (at < n)
        return err_setf(e, ERR_CONFIG, "%s holds a %s at character %zu: %s", name, what, at + 1, why);
    if (n > 0 && (is_blank(v[0]) || is_blank(v[n - 1])))
        return err_setf(e, ERR_CONFIG, "%s %s with a blank, which would be part of the value (the "
                        "configuration file would drop it): remove it", name, is_blank(v[0]) ? "starts" : "ends");
    return 0;
}

/* A "[...]" line: the reader, not inih, decides what section follows. */
static int section(struct reader *rd)
{
    const char *t = rd->text, *end = t + rd->tlen;
    const char *close = memchr(t, ']', rd->tlen), *rest;
    const char *rname;
    char name[128];
    size_t n;

    if (close == NULL)
        return fail(rd, "section header without \"]\"");
    for (rest = close + 1; rest < end && is_blank(*rest); rest++)
        ;
    if (rest < end && *rest != '#' && *rest != ';')
        return fail(rd, "text after the section header %.*s: put each setting on a line of its own",
                    (int)(close + 1 - t), t);
    n = (size_t)(close - t - 1);
    if (n == 0)
        return fail(rd, "empty section name \"[]\"");
    if (n >= sizeof name)
        return fail(rd, "section name longer than %zu bytes", sizeof name - 1);
    memcpy(name, t + 1, n);
    name[n] = '\0';
    if (is_blank(name[0]) || is_blank(name[n - 1]))
        return fail(rd, "blanks inside the brackets of [%s]: write [global] or [region NAME]", name);
    if (strcmp(name, "global") == 0) {
        if (rd->global_line != 0)
            return fail(rd, "section [global] is given twice (first on line %d): keep one", rd->global_line);
        rd->global_line = rd->lineno;
        rd->region = -1;
    } else if (strncmp(name, "region", 6) == 0 && (name[6] == '\0' || is_blank(name[6]))) {
        for (rname = name + 6; is_blank(*rname); rname++)
            ;
        if (*rname == '\0')
            return fail(rd, "[region] needs a name: [region NAME]");
        if (!config_region_name_valid(rname))
            return fail(rd, "bad region name \"%s\" (up to 63 letters, digits, - _ ., starting with a letter or digit)", rname);
        if (config_region(rd->c, rname) != NULL)
            return fail(rd, "region \"%s\" is defined twice", rname);
        for (int i = 0; i < rd->c->nregions; i++)
            if (strcasecmp(rd->c->regions[i].name, rname) == 0)    /* labels, logs, a spool on vfat */
                return fail(rd, "region \"%s\" differs from region \"%s\" only in case: rename one",
                            rname, rd->c->regions[i].name);
        if (config_add_region(rd->c, rname, rd->e) == NULL) {
            rd->failed = 1;
            return -1;
        }
        rd->region = rd->c->nregions - 1;
    } else {
        return fail(rd, "unknown section [%s] (use [global] or [region NAME], in lower case)", name);
    }
    rd->in_section = 1;
    memset(rd->seen, 0, sizeof rd->seen);
    return 0;
}

/* Take the next line of the file: check it, classify it.  0 at the end. */
static int next_line(struct reader *rd)
{
    const char *s, *nl;
    size_t n;

    if (rd->pos >= rd->len) {
        rd->eof = 1;
        return 0;
    }
    s = rd->buf + rd->pos;
    nl = memchr(s, '\n', rd->len - rd->pos);
    n = nl != NULL ? (size_t)(nl - s) : rd->len - rd->pos;
    rd->pos += n + (nl != NULL);
    rd->lineno++;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (rd->lineno == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
    }
    if (n > CONF_MAX_LINE) {
        char key[64];

        key_hint(s, n < 256 ? n : 256, key, sizeof key);
        return fail(rd, "%s%s%sthe line is %zu bytes long; walship reads lines of up to %u bytes", key[0] ? "key \"" : "",
                    key, key[0] ? "\": " : "", n, CONF_MAX_LINE);
    }
    if (check_bytes(rd, s, n) < 0)
        return -1;
    while (n > 0 && is_blank(*s)) {
        s++;
        n--;
    }
    rd->text = s;
    rd->tlen = n;
    rd->served = 0;
    rd->calls = 0;
    if (n == 0)
        rd->kind = LINE_BLANK;
    else if (*s == '#' || *s == ';')
        rd->kind = LINE_COMMENT;
    else if (*s == '[')
        rd->kind = LINE_SECTION;
    else
        rd->kind = LINE_KEY;
    if (rd->kind == LINE_SECTION && section(rd) < 0)
        return -1;
    return 1;
}

/* inih's reader: the current line (and its "\n"), in as many pieces as
 * inih's buffer needs.  A new line starts only once inih has had all of the
 * previous one, and after checking that inih made a setting of it if it was
 * a key line (else inih refused it: a syntax error). */
static char *feed(char *str, int num, void *stream)
{
    struct reader *rd = stream;
    size_t room, left, n, text_n;

    if (rd->failed || rd->eof || num < 2)
        return NULL;
    if (rd->lineno == 0 || rd->served == rd->tlen + 1) {
        if (rd->lineno > 0 && rd->kind == LINE_KEY && rd->calls == 0) {
            fail(rd, "expected \"key = value\", a [section] or a comment");
            return NULL;
        }
        if (next_line(rd) <= 0)
            return NULL;
    }
    room = (size_t)num - 1;
    left = rd->tlen + 1 - rd->served;
    n = left < room ? left : room;
    text_n = rd->served + n > rd->tlen ? rd->tlen - rd->served : n;
    memcpy(str, rd->text + rd->served, text_n);
    if (text_n < n)
        str[text_n] = '\n';
    str[n] = '\0';
    rd->served += n;
    return str;
}

/* Is (name, value) what the line says?  The line is "name = value", blanks
 * around "=" optional, then blanks and a comment, or nothing. */
static int check_split(struct reader *rd, const char *name, const char *value)
{
    const char *t = rd->text, *end = t + rd->tlen, *p, *q;
    size_t nl = strlen(name), vl = strlen(value), i;

    if (nl == 0)
        return fail(rd, "no key before \"=\"");
    if (nl > rd->tlen || memcmp(t, name, nl) != 0)
        return fail(rd, "libinih misread the key of this line");
    for (p = t + nl; p < end && is_blank(*p); p++)
        ;
    if (p < end && *p == ':')
        return fail(rd, "key \"%s\": write \"%s = value\", not \"%s: value\"", name, name, name);
    if (p == end || *p != '=')
        return fail(rd, "libinih misread the key of this line");
    for (p++; p < end && is_blank(*p); p++)
        ;
    if (vl > (size_t)(end - p) || memcmp(p, value, vl) != 0)
        return fail(rd, "key \"%s\": libinih misread the value", name);
    for (q = p + vl; q < end && is_blank(*q); q++)
        ;
    if (q < end && !((*q == '#' || *q == ';') && is_blank(q[-1])))
        return fail(rd, "key \"%s\": libinih misread the value", name);
    for (i = 1; i < vl; i++)
        if ((value[i] == '#' || value[i] == ';') && is_blank(value[i - 1]))
            return fail(rd, "key \"%s\": \"%c\" after a blank starts a comment, but this libinih kept it in "
                        "the value: remove the comment", name, value[i]);
    return 0;
}

static int apply(struct reader *rd, const char *name, const char *value)
{
    const struct key_def *defs = rd->region < 0 ? config_global_keys : config_region_keys;
    size_t ndefs = rd->region < 0 ? config_nglobal : config_nregion, i;
    struct region_conf *r = rd->region < 0 ? NULL : &rd->c->regions[rd->region];
    const struct key_def *k;
    char sec[80], *origin;
    int rc;

    if (!rd->in_section)
        return fail(rd, "key \"%s\" is outside any section: put [global] above it", name);
    snprintf(sec, sizeof sec, "%s%s", r ? "region " : "global", r ? r->name : "");
    k = config_find_key(defs, ndefs, name);
    if (k == NULL) {
        for (i = 0; i < ndefs && strcasecmp(defs[i].name, name) != 0; i++)
            ;
        if (i < ndefs)
            return fail(rd, "unknown key \"%s\" in [%s] (keys are lower case: %s)", name, sec, defs[i].name);
        return fail(rd, "unknown key \"%s\" in [%s]", name, sec);
    }
    if (rd->seen[k - defs] != 0)
        return fail(rd, "key \"%s\" is given twice in [%s] (first on line %d): keep one", name, sec,
                    rd->seen[k - defs]);
    rd->seen[k - defs] = rd->lineno;
    if (*value == '"' || *value == '\'')
        return fail(rd, "key \"%s\": the value starts with a quote; walship does not remove quotes, so write "
                    "the value without them", name);
    if (*value == '#' || *value == ';')
        return fail(rd, "key \"%s\": the value starts with \"%c\"; a comment needs a blank before it, and no "
                    "value may start with # or ;", name, *value);
    if ((origin = xasprintf("%s:%d", rd->path, rd->lineno)) == NULL)
        return fail(rd, "out of memory");
    rc = config_apply(r ? (void *)r : (void *)rd->c, r ? r->origin : rd->c->origin, defs, k, value, origin, rd->e);
    free(origin);
    if (rc < 0) {
        rd->failed = 1;
        return err_prefix(rd->e, "%s:%d: key \"%s\"", rd->path, rd->lineno, name);
    }
    /* a libpq password is as secret as an S3 key (DESIGN.md §4) */
    if ((k->flags & KEY_SECRET) || (k->kind == KIND_CONNINFO && pg_conninfo_has_password(value)))
        rd->has_secret = 1;
    return 0;
}

static int on_key(void *user, const char *section_name, const char *name, const char *value)
{
    struct reader *rd = user;

    (void)section_name;     /* cut at 49 bytes by inih: the reader tracks sections itself */
    if (rd->failed)
        return 0;
    if (rd->served != rd->tlen + 1)
        fail(rd, "libinih read part of this line as a whole one: its buffer is too small");
    else if (rd->kind != LINE_KEY)
        fail(rd, "libinih read a setting \"%s\" from a line that is not one", name);
    else if (++rd->calls > 1)
        fail(rd, "libinih read two settings from one line");
    else if (check_split(rd, name, value) == 0)
        apply(rd, name, value);
    return !rd->failed;
}

int config_read_file(struct config *c, const char *path, struct err *e)
{
    struct reader rd;
    struct stat sb;
    unsigned char *buf = NULL;
    size_t len;
    int fd, rc, ret = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return err_errno(e, ERR_CONFIG, errno, "could not open configuration file \"%s\"", path);
    if (fstat(fd, &sb) < 0) {
        err_errno(e, ERR_CONFIG, errno, "could not stat configuration file \"%s\"", path);
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        err_setf(e, ERR_CONFIG, "configuration file \"%s\" is not a regular file%s", path,
                 S_ISDIR(sb.st_mode) ? " (it is a directory)" : "");
        goto out;
    }
    if (config_check_writable("configuration file", path, sb.st_mode, e) < 0)
        goto out;
    if (read_fd_all(fd, path, CONF_MAX_FILE, &buf, &len, e) < 0) {
        err_prefix(e, "configuration file");
        e->code = e->code == ERR_NOMEM ? ERR_NOMEM : ERR_CONFIG;
        goto out;
    }
    free(c->path);
    if ((c->path = strdup(path)) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    memset(&rd, 0, sizeof rd);
    rd.c = c;
    rd.path = path;
    rd.buf = (const char *)buf;
    rd.len = len;
    rd.e = e;
    rd.region = -1;
    tune_inih();
    rc = ini_parse_stream(feed, &rd, on_key, &rd);
    if (rd.failed)
        goto out;
    if (rc == -2) {
        err_setf(e, ERR_NOMEM, "out of memory reading \"%s\"", path);
        goto out;
    }
    if (rc != 0 || !rd.eof) {
        err_setf(e, ERR_CONFIG, "%s:%d: libinih stopped reading here", path, rc > 0 ? rc : rd.lineno);
        goto out;
    }
    if (rd.has_secret && (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        err_setf(e, ERR_CONFIG,
                 "configuration file \"%s\" holds a secret (secret_access_key, session_token or a password in "
                 "pg_conninfo) but its mode is %04o: others can read it (run chmod 600 \"%s\")",
                 path, (unsigned)(sb.st_mode & 07777), path);
        goto out;
    }
    ret = 0;
out:
    free(buf);
    close(fd);
    return ret;
}
