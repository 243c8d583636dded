/*
 * rconf_parse — one line of PostgreSQL's configuration syntax, the quoting
 * of a value for it, and which settings are recovery settings (rconf.h).
 *
 * The rules are those of PostgreSQL's guc-file.l: a name is a letter or
 * underscore (or any byte >= 0x80) followed by letters, digits and
 * underscores, optionally "qualified.name"; `=` is optional; a quoted value
 * takes '' for a quote and backslash escapes (\b \f \n \r \t, up to three
 * octal digits, any other character stands for itself); a bare value runs
 * to whitespace or `#`; after the value only whitespace and a comment.
 */
#include <stdlib.h>
#include <string.h>

#include "rconf.h"

static int is_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* One identifier at s[*i] into name[*j]; 0, or -1 when it does not fit. */
static int read_id(const char *s, size_t len, size_t *i, char *name, size_t cap, size_t *j)
{
    while (*i < len && (is_letter((unsigned char)s[*i]) || is_digit((unsigned char)s[*i]))) {
        if (*j + 1 >= cap)
            return -1;
        name[(*j)++] = (char)lower((unsigned char)s[(*i)++]);
    }
    name[*j] = '\0';
    return 0;
}

/* A quoted value starting at the quote s[*i]; *i ends past the closing quote. */
static char *read_quoted(const char *s, size_t len, size_t *i)
{
    char *out = malloc(len + 1);
    size_t k = 0, p = *i + 1;

    if (out == NULL)
        return NULL;
    for (;;) {
        unsigned char c;

        if (p >= len)
            goto bad;       /* unterminated */
        c = (unsigned char)s[p];
        if (c == '\'') {
            if (p + 1 < len && s[p + 1] == '\'') {
                out[k++] = '\'';
                p += 2;
                continue;
            }
            p++;
            break;
        }
        if (c != '\\') {
            out[k++] = (char)c;
            p++;
            continue;
        }
        if (p + 1 >= len)
            goto bad;
        c = (unsigned char)s[++p];
        switch (c) {
        case 'b': out[k++] = '\b'; p++; break;
        case 'f': out[k++] = '\f'; p++; break;
        case 'n': out[k++] = '\n'; p++; break;
        case 'r': out[k++] = '\r'; p++; break;
        case 't': out[k++] = '\t'; p++; break;
        default:
            if (c >= '0' && c <= '7') {
                int v = 0, d;

                for (d = 0; d < 3 && p < len && s[p] >= '0' && s[p] <= '7'; d++)
                    v = v * 8 + (s[p++] - '0');
                out[k++] = (char)v;
            } else {
                out[k++] = (char)c;
                p++;
            }
        }
    }
    out[k] = '\0';
    *i = p;
    return out;
bad:
    free(out);
    return NULL;
}

int rconf_parse_line(const char *s, size_t len, char *name, size_t cap, char **value)
{
    size_t i = 0, j = 0, v0;

    *value = NULL;
    if (cap < 2)
        return -1;
    while (i < len && is_space((unsigned char)s[i]))
        i++;
    if (i == len || s[i] == '#')
        return 0;
    if (!is_letter((unsigned char)s[i]) || read_id(s, len, &i, name, cap, &j) < 0)
        return -1;
    if (i + 1 < len && s[i] == '.' && is_letter((unsigned char)s[i + 1])) {
        name[j++] = '.';
        i++;
        if (read_id(s, len, &i, name, cap, &j) < 0)
            return -1;
    }
    while (i < len && is_space((unsigned char)s[i]))
        i++;
    if (i < len && s[i] == '=')
        i++;
    while (i < len && is_space((unsigned char)s[i]))
        i++;
    if (i == len || s[i] == '#')
        return -1;      /* no value */
    if (s[i] == '\'') {
        *value = read_quoted(s, len, &i);
        if (*value == NULL)
            return -1;
    } else {
        v0 = i;
        while (i < len && !is_space((unsigned char)s[i]) && s[i] != '#' && s[i] != '\'' && s[i] != '=')
            i++;
        *value = strndup(s + v0, i - v0);
        if (*value == NULL)
            return -1;
    }
    while (i < len && is_space((unsigned char)s[i]))
        i++;
    if (i < len && s[i] != '#') {
        free(*value);
        *value = NULL;
        return -1;      /* something after the value */
    }
    return 1;
}

int rconf_quote(char *out, size_t n, const char *v)
{
    static const char oct[] = "01234567";
    size_t j = 0;

    if (n < 3)
        return -1;
    out[j++] = '\'';
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;

        if (j + 6 >= n)
            return -1;
        switch (c) {
        case '\'': out[j++] = '\''; out[j++] = '\''; break;
        case '\\': out[j++] = '\\'; out[j++] = '\\'; break;
        case '\n': out[j++] = '\\'; out[j++] = 'n'; break;
        case '\r': out[j++] = '\\'; out[j++] = 'r'; break;
        case '\t': out[j++] = '\\'; out[j++] = 't'; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out[j++] = '\\';
                out[j++] = oct[(c >> 6) & 7];
                out[j++] = oct[(c >> 3) & 7];
                out[j++] = oct[c & 7];
            } else {
                out[j++] = (char)c;  /* UTF-8 and other bytes as they are */
            }
        }
    }
    out[j++] = '\'';
    out[j] = '\0';
    return 0;
}

/* ---- which settings ---- */

static const struct {
    const char *name;
    const char *neutral;
} known[] = {
    { "recovery_target", "" },
    { "recovery_target_time", "" },
    { "recovery_target_lsn", "" },
    { "recovery_target_xid", "" },
    { "recovery_target_name", "" },
    { "recovery_target_action", "pause" },
    { "recovery_target_inclusive", "on" },
    { "recovery_target_timeline", "latest" },
    { "restore_command", "" },
    { "recovery_end_command", "" },
    { "archive_cleanup_command", "" },
    { "primary_conninfo", "" },
    { "primary_slot_name", "" },
    { "recovery_min_apply_delay", "0" },
    { "promote_trigger_file", "" },
};

static int name_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static int has_target_prefix(const char *name)
{
    static const char p[] = "recovery_target";
    size_t i;

    for (i = 0; i < sizeof p - 1; i++)
        if (lower((unsigned char)name[i]) != (unsigned char)p[i])
            return 0;
    return 1;
}

int rconf_is_recovery_setting(const char *name)
{
    size_t i;

    if (has_target_prefix(name))
        return 1;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (name_eq(name, known[i].name))
            return 1;
    return 0;
}

int rconf_value_is_public(const char *name)
{
    return has_target_prefix(name) || name_eq(name, "recovery_min_apply_delay") ||
           name_eq(name, "primary_slot_name");
}

const char *rconf_neutral_value(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (name_eq(name, known[i].name))
            return known[i].neutral;
    return NULL;    /* not a setting PostgreSQL knows: it cannot be overridden */
}
