/*
 * wal — PostgreSQL WAL file names.
 *
 * Names archive_command hands us: a segment "TTTTTTTTXXXXXXXXYYYYYYYY"
 * (timeline, log, segment-in-log, 8 hex digits each), a segment's
 * ".partial", a timeline's "TTTTTTTT.history", and a backup history file
 * "TTTTTTTTXXXXXXXXYYYYYYYY.OOOOOOOO.backup".  Segment arithmetic depends
 * on wal_segment_size (a power of two from 1 MB to 1 GB), which decides
 * how many segments make one "log" (0x100000000 / size).
 *
 * Pure functions; thread-safe.
 */
#ifndef WALSHIP_WAL_H
#define WALSHIP_WAL_H

#include <stdint.h>

#include "err.h"

enum wal_kind {
    WAL_SEGMENT,
    WAL_PARTIAL,
    WAL_HISTORY,
    WAL_BACKUP_LABEL,   /* .backup history file */
};

struct wal_name {
    enum wal_kind kind;
    uint32_t tli;
    uint32_t log;       /* 0 for history files */
    uint32_t seg;
};

#define WAL_NAME_LEN 24             /* segment name without suffix */
#define WAL_NAME_MAX 64

/* Parse a bare file name (no directory). */
int wal_parse(const char *name, struct wal_name *out, struct err *e);
/* Does the name's last 8 digits fit segments of seg_size (below
 * 0x100000000 / seg_size)?  History files always do.  A name past that
 * (000000010000000000000100 for 16 MB) is no file PostgreSQL writes, and
 * its segment number would alias another name's (wal_segno). */
int wal_name_fits(const struct wal_name *w, uint64_t seg_size);
/* Segment number counted from LSN 0: log * segs_per_log + seg. */
uint64_t wal_segno(const struct wal_name *w, uint64_t seg_size);
/* Name of segment `segno` on timeline `tli`. */
void wal_segment_name(uint32_t tli, uint64_t segno, uint64_t seg_size, char out[WAL_NAME_LEN + 1]);
/* The segment after `name` (same timeline); fails for non-segments. */
int wal_next_segment(const char *name, uint64_t seg_size, char out[WAL_NAME_LEN + 1], struct err *e);
/* Segment that holds LSN `lsn` on timeline `tli`. */
void wal_segment_of_lsn(uint32_t tli, uint64_t lsn, uint64_t seg_size, char out[WAL_NAME_LEN + 1]);
/* Parse "16/B374D848" into a 64-bit LSN. */
int wal_parse_lsn(const char *s, uint64_t *out, struct err *e);
void wal_format_lsn(uint64_t lsn, char out[24]);
/* Is seg_size a valid wal_segment_size? */
int wal_seg_size_valid(uint64_t seg_size);

#endif
