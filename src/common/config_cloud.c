/* config_cloud — setters kept out of config.c for its size: the S3 region
 * keys of issue 15 (credentials source, server-side encryption, integrity
 * checksum), the endpoint and s3:// url, the archiver process's idle time
 * and the old_key_files list.  docs/CONFIG.md lists the keys. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "creds.h"
#include "util.h"

int config_set_credentials(void *t, const char *v, struct err *e)
{
    enum creds_source src;
    char *profile = NULL;

    if (creds_parse_source(v, &src, &profile, e) < 0)
        return -1;
    free(profile);
    return config_set_string(t, v, e);
}

/* sse: AES256 | aws:kms; checksum: md5 | sha256 */
static int set_choice(void *t, const char *v, const char *a, const char *b, struct err *e)
{
    if (strcmp(v, a) != 0 && strcmp(v, b) != 0)
        return err_setf(e, ERR_CONFIG, "bad value \"%s\" (use %s or %s)", v, a, b);
    return config_set_string(t, v, e);
}
int config_set_sse(void *t, const char *v, struct err *e) { return set_choice(t, v, "AES256", "aws:kms", e); }
int config_set_checksum(void *t, const char *v, struct err *e) { return set_choice(t, v, "md5", "sha256", e); }

/* Without a scheme libcurl guesses http://: sts_endpoint = sts.REGION.
 * amazonaws.com sent the web identity token in clear text. */
int config_set_http_url(void *t, const char *v, struct err *e)
{
    size_t n = strncasecmp(v, "https://", 8) == 0 ? 8 : strncasecmp(v, "http://", 7) == 0 ? 7 : 0;

    if (n == 0 || v[n] == '\0' || v[n] == '/')
        return err_setf(e, ERR_CONFIG, "\"%s\" is not a URL like https://host[:port] (give the scheme: "
                        "without one, http:// would be guessed)", v);
    /* USER:PASS@ is never used (requests are signed; the S3 driver refuses
     * it), and `config check` would print the password: refused here, and
     * not echoed */
    if (memchr(v + n, '@', strcspn(v + n, "/?#")) != NULL)
        return err_setf(e, ERR_CONFIG, "a URL with a user name or password (USER:PASS@) is not accepted; S3 "
                        "credentials come from the credentials source");
    return config_set_string(t, v, e);
}

/* An S3 endpoint is scheme, host and port: the driver rebuilds each request's
 * URL from the host, so it refuses a path, a query or a fragment when it
 * opens the region; refused here too, or `config check` said "valid" of a
 * configuration every command refused. */
int config_set_endpoint(void *t, const char *v, struct err *e)
{
    size_t n = strncasecmp(v, "https://", 8) == 0 ? 8 : strncasecmp(v, "http://", 7) == 0 ? 7 : 0;
    const char *rest = v + n + strcspn(v + n, "/?#");

    if (n > 0 && *rest == '/')
        rest++;
    if (n > 0 && *rest != '\0' && memchr(v + n, '@', (size_t)(rest - v - n)) == NULL)
        return err_setf(e, ERR_CONFIG, "an S3 endpoint is http(s)://host[:port]: a %s after it would not be used "
                        "(the bucket and prefix go in url)", *rest == '?' ? "query" : *rest == '#' ? "fragment" :
                        "path");
    return config_set_http_url(t, v, e);
}

/* s3://BUCKET[/PREFIX], as the S3 driver (storage/s3/s3.c) reads it: a
 * bucket of letters, digits, '.', '-', '_' (its length is the driver's to
 * check); a prefix without ".." or
 * an empty segment once its leading and trailing slashes are taken off.
 * Never echoed: a USER:PASS@ in it (config check printed it) is a secret. */
int config_check_s3_url(const char *v, struct err *e)
{
    const char *b = v + 5, *p;
    size_t n = strcspn(b, "/"), i, plen;

    if (memchr(b, '@', n) != NULL)
        return err_setf(e, ERR_CONFIG, "an s3:// url with a user name or password (USER:PASS@) is not accepted; S3 "
                        "credentials come from the credentials source");
    if (n == 0)
        return err_setf(e, ERR_CONFIG, "no bucket name (s3://BUCKET/PREFIX)");
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)b[i]) && b[i] != '.' && b[i] != '-' && b[i] != '_')
            return err_setf(e, ERR_CONFIG, "bad character in the bucket name (letters, digits, ., -, _)");
    for (p = b + n; *p == '/'; p++)
        ;
    for (plen = strlen(p); plen > 0 && p[plen - 1] == '/'; plen--)
        ;
    for (i = 0; i + 1 < plen; i++)
        if ((p[i] == '/' && p[i + 1] == '/') || (p[i] == '.' && p[i + 1] == '.'))
            return err_setf(e, ERR_CONFIG, "the prefix may hold no \"..\" and no \"//\"");
    return 0;
}

/* The archiver process's idle time: at least a second (0 would end it
 * between two of PostgreSQL's calls), at most a day. */
int config_set_idle(void *t, const char *v, struct err *e)
{
    uint64_t *out = t, d;

    if (parse_duration(v, &d, e) < 0)
        return -1;
    if (d < 1 || d > 86400)
        return err_setf(e, ERR_CONFIG, "archive_async_idle \"%s\" is out of range (1s to 1d)", v);
    *out = d;
    return 0;
}

/* old_key_files: paths separated by commas or blanks. */
int config_set_old_keys(void *t, const char *v, struct err *e)
{
    char ***dst = t;
    char **list = NULL;
    size_t n = 0;
    const char *p = v;

    while (*p) {
        const char *end;
        char **nl;

        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        end = p;
        while (*end && *end != ',' && !isspace((unsigned char)*end))
            end++;
        nl = realloc(list, (n + 2) * sizeof *list);
        if (nl == NULL)
            goto nomem;
        list = nl;
        list[n] = strndup(p, (size_t)(end - p));
        if (list[n] == NULL)
            goto nomem;
        list[++n] = NULL;
        p = end;
    }
    /* WALSHIP_OLD_KEY_FILES="$OLD1,$OLD2" with both unset replaced the
     * file's list with none: refused, as an empty value is */
    if (n == 0)
        return err_setf(e, ERR_CONFIG, "no key file in \"%s\" (remove the setting for none)", v);
    if (*dst) {
        for (char **q = *dst; *q; q++)
            free(*q);
        free(*dst);
    }
    *dst = list;
    return 0;
nomem:
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return err_setf(e, ERR_NOMEM, "out of memory");
}
