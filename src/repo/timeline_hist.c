/*
 * timeline_hist — a timeline history file's text (see timeline.h): read
 * as restore reads it, and judged as PostgreSQL writes it; and whether
 * the model holds a timeline's history at all.
 */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The next whitespace-separated token of `line` from *i into tok. */
static void next_token(const char *line, size_t *i, char *tok, size_t cap)
{
    size_t j = 0;

    while (line[*i] == ' ' || line[*i] == '\t')
        (*i)++;
    while (line[*i] && line[*i] != ' ' && line[*i] != '\t' && line[*i] != '\r' && j < cap - 1)
        tok[j++] = line[(*i)++];
    tok[j] = '\0';
}

int tl_parse_history(const char *text, size_t len, struct tl_hist_entry **out, size_t *n, struct err *e)
{
    struct tl_hist_entry *v = NULL;
    size_t nv = 0, cap = 0, pos = 0;

    *out = NULL;
    *n = 0;
    while (pos < len) {
        char line[512], tok[64];
        size_t end = pos, l, i = 0;
        uint64_t tli, lsn;

        while (end < len && text[end] != '\n')
            end++;
        l = end - pos < sizeof line - 1 ? end - pos : sizeof line - 1;
        memcpy(line, text + pos, l);
        line[l] = '\0';
        pos = end + 1;
        while (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')
            i++;
        if (line[i] == '\0' || line[i] == '#')
            continue;
        next_token(line, &i, tok, sizeof tok);
        if (parse_u64(tok, 1, UINT32_MAX, &tli, e) < 0)
            goto bad;
        next_token(line, &i, tok, sizeof tok);
        if (wal_parse_lsn(tok, &lsn, e) < 0)
            goto bad;
        if (array_reserve(&v, &cap, nv + 1, sizeof *v) < 0) {
            free(v);
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
        v[nv].tli = (uint32_t)tli;
        v[nv].end_lsn = lsn;
        nv++;
    }
    *out = v;
    *n = nv;
    return 0;
bad:
    free(v);
    return err_prefix(e, "bad history line");
}

int tl_history_valid(const char *text, size_t len, uint32_t tli, struct err *e)
{
    struct tl_hist_entry *v = NULL;
    struct err pe = ERR_INIT;
    const char *why = NULL;
    size_t n = 0, i;

    if (memchr(text, '\0', len) != NULL)
        why = "it holds a NUL byte";
    else if (tl_parse_history(text, len, &v, &n, &pe) < 0)
        why = pe.msg;
    else if (n == 0)
        why = "it names no parent timeline";
    for (i = 0; why == NULL && i < n; i++)
        if (v[i].tli >= tli || (i > 0 && (v[i].tli <= v[i - 1].tli || v[i].end_lsn < v[i - 1].end_lsn)))
            why = "its timelines or switch points are out of order";
    free(v);
    if (why == NULL)
        return 0;
    if (pe.code == ERR_NOMEM)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return err_setf(e, ERR_CORRUPT, "%s", why);
}

int tl_history_begins_in(const char *text, size_t len, uint64_t seg_start, uint64_t seg_size, uint32_t page_tli,
                         struct err *e)
{
    struct tl_hist_entry *v = NULL;
    size_t n = 0, i;
    int inside = 0, in_effect = 0;

    if (tl_parse_history(text, len, &v, &n, e) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        if (v[i].end_lsn > seg_start && v[i].end_lsn < seg_start + seg_size)
            inside = 1;
        if (!in_effect && v[i].end_lsn > seg_start)
            in_effect = v[i].tli == page_tli ? 1 : -1;
    }
    free(v);
    return inside && in_effect == 1;
}

int tl_has_history(const struct tl_model *m, uint32_t tli)
{
    const struct tl_timeline *t = tl_find(m, tli);

    return tli <= 1 || (t != NULL && t->has_history);
}
