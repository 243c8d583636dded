/*
 * parse — numbers, sizes, durations and booleans as the configuration and
 * the command line write them (declared in util.h): decimal only, no
 * leading zero, units as PostgreSQL names them, every value bounded.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, struct err *e)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s == '\0' || !isdigit((unsigned char)*s))
        return err_setf(e, ERR_CONFIG, "\"%s\" is not a number", s ? s : "");
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return err_setf(e, ERR_CONFIG, "\"%s\" is not a valid number", s);
    if (v < min || v > max)
        return err_setf(e, ERR_CONFIG, "%s is out of range (%llu to %llu)", s,
                        (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return 0;
}

int parse_int(const char *s, int min, int max, int *out, struct err *e)
{
    uint64_t v;

    if (min < 0)
        return err_setf(e, ERR_INTERNAL, "parse_int: negative minimum unsupported");
    if (parse_u64(s, (uint64_t)min, (uint64_t)max, &v, e) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

int cfg_no_leading_zero(const char *s, struct err *e)
{
    if (s != NULL && s[0] == '0' && isdigit((unsigned char)s[1]))
        return err_setf(e, ERR_CONFIG, "\"%s\" has a leading zero (PostgreSQL would read it as octal): write it "
                        "without", s);
    return 0;
}

/* Split "123unit" into a number and its unit. */
static int split_unit(const char *s, uint64_t *num, const char **unit, struct err *e)
{
    char digits[32];
    size_t i = 0;

    while (s[i] == ' ')
        s++;
    while (isdigit((unsigned char)s[i]) && i < sizeof digits - 1) {
        digits[i] = s[i];
        i++;
    }
    digits[i] = '\0';
    if (i == 0)
        return err_setf(e, ERR_CONFIG, "\"%s\" does not start with a number", s);
    if (cfg_no_leading_zero(digits, e) < 0)
        return -1;
    if (parse_u64(digits, 0, UINT64_MAX, num, e) < 0)
        return -1;
    *unit = s + i;
    while (**unit == ' ')
        (*unit)++;
    return 0;
}

int parse_size(const char *s, uint64_t *out, struct err *e)
{
    static const struct { const char *u; unsigned shift; } units[] = {
        { "", 0 }, { "B", 0 },
        { "k", 10 }, { "kB", 10 }, { "K", 10 }, { "KB", 10 }, { "KiB", 10 },
        { "M", 20 }, { "MB", 20 }, { "MiB", 20 },
        { "G", 30 }, { "GB", 30 }, { "GiB", 30 },
        { "T", 40 }, { "TB", 40 }, { "TiB", 40 },
    };
    uint64_t n;
    const char *unit;
    size_t i;

    if (s == NULL || split_unit(s, &n, &unit, e) < 0)
        return s == NULL ? err_setf(e, ERR_CONFIG, "missing size") : err_prefix(e, "bad size");
    for (i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(unit, units[i].u) == 0) {
            if (units[i].shift && n > (UINT64_MAX >> units[i].shift))
                return err_setf(e, ERR_CONFIG, "size \"%s\" is too large", s);
            *out = n << units[i].shift;
            return 0;
        }
    }
    return err_setf(e, ERR_CONFIG, "bad size \"%s\": unknown unit \"%s\" (use B, kB, MB, GB or TB)", s, unit);
}

int parse_duration(const char *s, uint64_t *out, struct err *e)
{
    /* no "m": minutes or months?  PostgreSQL has no "m" either */
    static const struct { const char *u; uint64_t mult; } units[] = {
        { "", 1 }, { "s", 1 }, { "sec", 1 }, { "min", 60 },
        { "h", 3600 }, { "d", 86400 }, { "w", 604800 },
    };
    uint64_t n;
    const char *unit;
    size_t i;

    if (s == NULL || split_unit(s, &n, &unit, e) < 0)
        return s == NULL ? err_setf(e, ERR_CONFIG, "missing duration") : err_prefix(e, "bad duration");
    for (i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(unit, units[i].u) == 0) {
            /* a century: every duration also fits the int64_t and time_t it is used as */
            if (n > DURATION_MAX / units[i].mult)
                return err_setf(e, ERR_CONFIG, "duration \"%s\" is too large (at most 100 years)", s);
            *out = n * units[i].mult;
            return 0;
        }
    }
    if (strcmp(unit, "m") == 0)
        return err_setf(e, ERR_CONFIG, "bad duration \"%s\": \"m\" could be minutes or months (write min for "
                        "minutes, d or w for longer)", s);
    return err_setf(e, ERR_CONFIG, "bad duration \"%s\": unknown unit \"%s\" (use s, min, h, d or w)", s, unit);
}

int parse_bool(const char *s, int *out, struct err *e)
{
    static const char *const yes[] = { "true", "on", "yes", "1" };
    static const char *const no[] = { "false", "off", "no", "0" };
    size_t i;

    for (i = 0; s != NULL && i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return err_setf(e, ERR_CONFIG, "\"%s\" is not a boolean (use true or false)", s ? s : "");
}
