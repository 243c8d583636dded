#include "wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* PostgreSQL writes WAL file names in upper case only. */
static int hexval(char c)
{
    return (c >= 'a' && c <= 'f') ? -1 : hex_digit((unsigned char)c);
}

static int parse_hex8(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        int d = hexval(s[i]);
        if (d < 0)
            return -1;
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return 0;
}

int wal_parse(const char *name, struct wal_name *out, struct err *e)
{
    size_t len = strlen(name);
    const char *p;

    memset(out, 0, sizeof *out);
    if (len == 16 && strcmp(name + 8, ".history") == 0) {
        if (parse_hex8(name, &out->tli) < 0)
            goto bad;
        out->kind = WAL_HISTORY;
        return out->tli == 0 ? err_setf(e, ERR_USAGE, "\"%s\": timeline 0 does not exist", name) : 0;
    }
    if (len < WAL_NAME_LEN)
        goto bad;
    if (parse_hex8(name, &out->tli) < 0 || parse_hex8(name + 8, &out->log) < 0 ||
        parse_hex8(name + 16, &out->seg) < 0 || out->tli == 0)
        goto bad;
    p = name + WAL_NAME_LEN;
    if (*p == '\0') {
        out->kind = WAL_SEGMENT;
        return 0;
    }
    if (strcmp(p, ".partial") == 0) {
        out->kind = WAL_PARTIAL;
        return 0;
    }
    if (len == WAL_NAME_LEN + 16 && p[0] == '.' && strcmp(p + 9, ".backup") == 0) {
        uint32_t off;
        if (parse_hex8(p + 1, &off) < 0)
            goto bad;
        out->kind = WAL_BACKUP_LABEL;
        return 0;
    }
bad:
    return err_setf(e, ERR_USAGE, "\"%s\" is not a WAL file name (segment, .partial, .history or .backup)", name);
}

int wal_name_fits(const struct wal_name *w, uint64_t seg_size)
{
    return w->kind == WAL_HISTORY || (wal_seg_size_valid(seg_size) && w->seg < 0x100000000ULL / seg_size);
}

uint64_t wal_segno(const struct wal_name *w, uint64_t seg_size)
{
    return (uint64_t)w->log * (0x100000000ULL / seg_size) + w->seg;
}

void wal_segment_name(uint32_t tli, uint64_t segno, uint64_t seg_size, char out[WAL_NAME_LEN + 1])
{
    uint64_t per_log = 0x100000000ULL / seg_size;

    snprintf(out, WAL_NAME_LEN + 1, "%08X%08X%08X", tli, (uint32_t)(segno / per_log),
             (uint32_t)(segno % per_log));
}

int wal_next_segment(const char *name, uint64_t seg_size, char out[WAL_NAME_LEN + 1], struct err *e)
{
    struct wal_name w;

    if (wal_parse(name, &w, e) < 0)
        return -1;
    if (w.kind != WAL_SEGMENT)
        return err_setf(e, ERR_USAGE, "\"%s\" is not a WAL segment", name);
    wal_segment_name(w.tli, wal_segno(&w, seg_size) + 1, seg_size, out);
    return 0;
}

void wal_segment_of_lsn(uint32_t tli, uint64_t lsn, uint64_t seg_size, char out[WAL_NAME_LEN + 1])
{
    wal_segment_name(tli, lsn / seg_size, seg_size, out);
}

/* 1 to 8 hex digits, as PostgreSQL's pg_lsn input takes them (sscanf's %X
 * would also take a sign, spaces, "0x" and too many digits, which
 * PostgreSQL refuses, or reads as another number). */
static const char *lsn_half(const char *p, uint32_t *v)
{
    size_t k = strspn(p, "0123456789abcdefABCDEF");

    if (k == 0 || k > 8)
        return NULL;
    *v = (uint32_t)strtoul(p, NULL, 16);
    return p + k;
}

int wal_parse_lsn(const char *s, uint64_t *out, struct err *e)
{
    uint32_t hi, lo;
    const char *p = lsn_half(s, &hi);

    if (p == NULL || *p != '/' || (p = lsn_half(p + 1, &lo)) == NULL || *p != '\0')
        return err_setf(e, ERR_USAGE, "\"%s\" is not an LSN (like 16/B374D848)", s);
    *out = ((uint64_t)hi << 32) | lo;
    return 0;
}

void wal_format_lsn(uint64_t lsn, char out[24])
{
    snprintf(out, 24, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xffffffffu));
}

int wal_seg_size_valid(uint64_t seg_size)
{
    return seg_size >= (1u << 20) && seg_size <= (1u << 30) && (seg_size & (seg_size - 1)) == 0;
}
