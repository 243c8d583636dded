/*
 * cluster — what walship learns about a PostgreSQL cluster from its files,
 * without a connection: the system identifier in global/pg_control, the
 * major version in PG_VERSION, and the long header on the first page of a
 * WAL segment (system identifier, segment size, timeline, page address).
 *
 * These are the facts the repository identity (repo.h) records and every
 * object is bound to, and the last check wal-fetch makes before handing a
 * segment to PostgreSQL.  WAL and pg_control are in the byte order of the
 * machine that wrote them, which is the only one that can read them.
 *
 * Pure functions and file reads; thread-safe; never print.
 */
#ifndef WALSHIP_CLUSTER_H
#define WALSHIP_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CLUSTER_WAL_LONG_HEADER_LEN 40

struct cluster_info {
    uint64_t sysid;         /* 0 when unknown */
    unsigned pg_major;      /* 15; 0 when unknown */
    uint32_t seg_size;      /* wal_segment_size; 0 when unknown */
};

/* The long header of a segment's first page. */
struct wal_long_header {
    uint16_t magic;
    uint16_t info;
    uint32_t tli;
    uint64_t pageaddr;
    uint64_t sysid;
    uint32_t seg_size;
    uint32_t blcksz;
};

/* Is `dir` a PostgreSQL data directory (global/pg_control exists)? */
int cluster_is_datadir(const char *dir);

/* sysid from DIR/global/pg_control and pg_major from DIR/PG_VERSION (0 when
 * the file is absent or unreadable: PG_VERSION is optional). */
int cluster_read_datadir(const char *dir, struct cluster_info *out, struct err *e);

/* From DIR/global/pg_control: the system identifier, and the redo point
 * and timeline of the last checkpoint (or restartpoint) the files on disk
 * went through (ControlFileData's checkPointCopy.redo and ThisTimeLineID,
 * at the same offsets in every version walship knows). */
int cluster_read_redo(const char *dir, uint64_t *sysid, uint64_t *redo, uint32_t *tli, struct err *e);

/* Parse the long header at the start of a segment (at least
 * CLUSTER_WAL_LONG_HEADER_LEN bytes). */
int cluster_parse_wal_header(const unsigned char *buf, size_t len, struct wal_long_header *h, struct err *e);
int cluster_read_wal_header(const char *path, struct wal_long_header *h, struct err *e);

/* The XLOG_PAGE_MAGIC of a major version, 0 when walship does not know it;
 * and the other way round. */
uint16_t cluster_wal_magic(unsigned pg_major);
unsigned cluster_major_of_magic(uint16_t magic);

/* What a WAL file being archived tells of its cluster: for a segment (or
 * .partial) its long header, checked against `dir`'s pg_control when
 * `dir` (the data directory, or NULL) is known; for a history or backup
 * file, pg_control and any segment beside it.  ERR_FOREIGN when the
 * segment is not the data directory's cluster's. */
int cluster_of_wal_file(const char *dir, const char *path, const char *name, struct cluster_info *out,
                        struct err *e);

/* Check a segment's first page against what it must be: the file named
 * `name` (a segment or .partial) of `size` bytes, for cluster `sysid`
 * (major `pg_major`, 0 = any).  ERR_FOREIGN names the field that differs:
 * another cluster's segment, another timeline's, a segment renamed or
 * recycled (page address), another PostgreSQL version. */
int cluster_check_segment(const struct wal_long_header *h, const char *name, uint64_t size, uint64_t sysid,
                          unsigned pg_major, struct err *e);

#endif
