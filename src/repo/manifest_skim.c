/*
 * manifest_skim — a manifest's header fields without its file list
 * (man_headers_from_json, manifest.h).
 *
 * Why: backup-list, retention, restore's choice of a backup and status read
 * every manifest of a region, or the newest, for their header fields
 * alone.  jansson builds the whole tree first: a manifest of 100000 files
 * (15 MB of JSON) took 0.27 s and 141 MB, for each backup listed; with
 * the list stepped over, 0.014 s and 17 MB, the text included.  Here
 * the top-level "files" array is found in the text and stepped over
 * (strings with their escapes, brackets counted), and what is left, with
 * "[]" in its place, is parsed and validated by man_from_json as ever.
 * The text is the plaintext of an authenticated object that walship wrote
 * with jansson; anything this scan does not follow (another layout, a key
 * spelled with escapes, the text cut short) is parsed whole instead, so
 * the scan can make a load cheaper but never accept more than the full
 * parse of the same text would, file list aside.
 */
#include "manifest.h"

#include <stdlib.h>
#include <string.h>

static void skip_ws(const char *b, size_t len, size_t *i)
{
    while (*i < len && (b[*i] == ' ' || b[*i] == '\t' || b[*i] == '\n' || b[*i] == '\r'))
        (*i)++;
}

/* b[*i] is the opening quote: past the closing one, or -1. */
static int skip_string(const char *b, size_t len, size_t *i)
{
    for ((*i)++; *i < len; (*i)++) {
        if (b[*i] == '\\')
            (*i)++;
        else if (b[*i] == '"') {
            (*i)++;
            return 0;
        }
    }
    return -1;
}

/* Past one value starting at b[*i] (a scalar ends before the ',' or the
 * bracket that follows it); *elems counts the elements of an array value
 * (its top level).  -1 when the text ends first. */
static int skip_value(const char *b, size_t len, size_t *i, size_t *elems)
{
    int depth = 0, seen = 0;

    *elems = 0;
    while (*i < len) {
        char c = b[*i];

        if (depth == 1 && !seen && c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ']' && c != '}') {
            seen = 1;
            (*elems)++;
        }
        if (c == '"') {
            if (skip_string(b, len, i) < 0)
                return -1;
            if (depth == 0)
                return 0;
            continue;
        }
        if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            if (depth == 0)
                return 0;
            if (--depth == 0) {
                (*i)++;
                return 0;
            }
        } else if (c == ',') {
            if (depth == 0)
                return 0;
            if (depth == 1)
                seen = 0;
        }
        (*i)++;
    }
    return depth == 0 ? 0 : -1;
}

/* Where the top-level "files" array lies: [*from, *to), its elements in
 * *count; -1 when the text is not an object laid out so far as that. */
static int files_span(const char *b, size_t len, size_t *from, size_t *to, size_t *count)
{
    size_t i = 0;

    skip_ws(b, len, &i);
    if (i >= len || b[i] != '{')
        return -1;
    i++;
    for (;;) {
        size_t k, v, elems;
        int is_files;

        skip_ws(b, len, &i);
        if (i >= len || b[i] != '"')
            return -1;
        k = i;
        if (skip_string(b, len, &i) < 0)
            return -1;
        is_files = i - k == 7 && memcmp(b + k, "\"files\"", 7) == 0;
        skip_ws(b, len, &i);
        if (i >= len || b[i] != ':')
            return -1;
        i++;
        skip_ws(b, len, &i);
        v = i;
        if (skip_value(b, len, &i, &elems) < 0 || i == v)
            return -1;
        if (is_files) {
            if (b[v] != '[')
                return -1;
            *from = v;
            *to = i;
            *count = elems;
            return 0;
        }
        skip_ws(b, len, &i);
        if (i >= len || b[i] != ',')
            return -1;
        i++;
    }
}

int man_headers_from_json(const char *buf, size_t len, const char *what, struct manifest **out, struct err *e)
{
    size_t from, to, count;
    char *b;
    int rc;

    if (files_span(buf, len, &from, &to, &count) < 0) {
        rc = man_from_json(buf, len, what, out, e);
        if (rc == 0)
            man_drop_files(*out);
        return rc;
    }
    if ((b = malloc(len - (to - from) + 2)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    memcpy(b, buf, from);
    memcpy(b + from, "[]", 2);
    memcpy(b + from + 2, buf + to, len - to);
    rc = man_from_json(b, len - (to - from) + 2, what, out, e);
    free(b);
    if (rc == 0)
        (*out)->files_listed = count;
    return rc;
}
