#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "wal.h"

#define XLP_LONG_HEADER 0x0002

int cluster_is_datadir(const char *dir)
{
    char path[PATH_MAX];

    return snprintf(path, sizeof path, "%s/global/pg_control", dir) < (int)sizeof path && access(path, R_OK) == 0;
}

static int read_prefix(const char *path, unsigned char *buf, size_t want, size_t *got, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not open \"%s\"", path);
    do
        n = pread(fd, buf, want, 0);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return err_errno(e, ERR_IO, errno, "could not read \"%s\"", path);
    *got = (size_t)n;
    return 0;
}

int cluster_read_datadir(const char *dir, struct cluster_info *out, struct err *e)
{
    char path[PATH_MAX];
    unsigned char buf[16];
    size_t got;

    memset(out, 0, sizeof *out);
    if (snprintf(path, sizeof path, "%s/global/pg_control", dir) >= (int)sizeof path)
        return err_setf(e, ERR_USAGE, "path too long: \"%s\"", dir);
    if (read_prefix(path, buf, 8, &got, e) < 0)
        return -1;
    if (got < 8)
        return err_setf(e, ERR_CORRUPT, "\"%s\" is too short to be a pg_control file", path);
    memcpy(&out->sysid, buf, 8);
    if (snprintf(path, sizeof path, "%s/PG_VERSION", dir) < (int)sizeof path &&
        read_prefix(path, buf, sizeof buf - 1, &got, &(struct err)ERR_INIT) == 0) {
        int major;

        buf[got] = '\0';
        buf[strcspn((char *)buf, "\n")] = '\0';
        if (parse_int((char *)buf, 9, 999, &major, &(struct err)ERR_INIT) == 0)
            out->pg_major = (unsigned)major;
    }
    return 0;
}

int cluster_read_redo(const char *dir, uint64_t *sysid, uint64_t *redo, uint32_t *tli, struct err *e)
{
    char path[PATH_MAX];
    unsigned char buf[52];
    size_t got;

    if (snprintf(path, sizeof path, "%s/global/pg_control", dir) >= (int)sizeof path)
        return err_setf(e, ERR_USAGE, "path too long: \"%s\"", dir);
    if (read_prefix(path, buf, sizeof buf, &got, e) < 0)
        return -1;
    if (got < sizeof buf)
        return err_setf(e, ERR_CORRUPT, "\"%s\" is too short to be a pg_control file", path);
    /* system_identifier, pg_control_version, catalog_version_no, state,
     * time, checkPoint, then checkPointCopy: redo, ThisTimeLineID */
    memcpy(sysid, buf, 8);
    memcpy(redo, buf + 40, 8);
    memcpy(tli, buf + 48, 4);
    return 0;
}

int cluster_parse_wal_header(const unsigned char *buf, size_t len, struct wal_long_header *h, struct err *e)
{
    if (len < CLUSTER_WAL_LONG_HEADER_LEN)
        return err_setf(e, ERR_CORRUPT, "too short for a WAL segment (%zu bytes)", len);
    memcpy(&h->magic, buf, 2);
    memcpy(&h->info, buf + 2, 2);
    memcpy(&h->tli, buf + 4, 4);
    memcpy(&h->pageaddr, buf + 8, 8);
    memcpy(&h->sysid, buf + 24, 8);
    memcpy(&h->seg_size, buf + 32, 4);
    memcpy(&h->blcksz, buf + 36, 4);
    if (!(h->info & XLP_LONG_HEADER))
        return err_setf(e, ERR_CORRUPT, "the first page has no long header: not the start of a WAL segment");
    return 0;
}

int cluster_read_wal_header(const char *path, struct wal_long_header *h, struct err *e)
{
    unsigned char buf[CLUSTER_WAL_LONG_HEADER_LEN];
    size_t got;

    if (read_prefix(path, buf, sizeof buf, &got, e) < 0)
        return -1;
    if (cluster_parse_wal_header(buf, got, h, e) < 0)
        return err_prefix(e, "\"%s\"", path);
    return 0;
}

uint16_t cluster_wal_magic(unsigned pg_major)
{
    switch (pg_major) {
    case 13: return 0xD106;
    case 14: return 0xD10D;
    case 15: return 0xD110;
    case 16: return 0xD113;
    case 17: return 0xD116;
    default: return 0;
    }
}

unsigned cluster_major_of_magic(uint16_t magic)
{
    unsigned v;

    for (v = 13; v <= 17; v++)
        if (cluster_wal_magic(v) == magic)
            return v;
    return 0;
}

/* The long header of any segment in `waldir`. */
static int any_segment_header(const char *waldir, struct wal_long_header *h, struct err *e)
{
    char **names = NULL, path[PATH_MAX];
    size_t n = 0, i;
    int rc = -1;

    if (dir_list_sorted(waldir, DIR_ONLY_FILES | DIR_NO_HIDDEN, &names, &n, e) < 0)
        return -1;
    for (i = n; i > 0 && rc < 0; i--) {
        struct wal_name w;

        if (wal_parse(names[i - 1], &w, &(struct err)ERR_INIT) < 0 || w.kind != WAL_SEGMENT ||
            snprintf(path, sizeof path, "%s/%s", waldir, names[i - 1]) >= (int)sizeof path)
            continue;
        if (cluster_read_wal_header(path, h, &(struct err)ERR_INIT) == 0)
            rc = 0;
    }
    dir_list_free(names, n);
    if (rc < 0)
        err_setf(e, ERR_NOTFOUND, "no WAL segment in \"%s\" to learn the segment size from", waldir);
    return rc;
}

int cluster_of_wal_file(const char *dir, const char *path, const char *name, struct cluster_info *out,
                        struct err *e)
{
    struct wal_long_header h;
    struct wal_name w;
    char waldir[PATH_MAX];
    const char *slash = strrchr(path, '/');

    memset(out, 0, sizeof *out);
    if (dir != NULL && cluster_read_datadir(dir, out, e) < 0)
        return err_prefix(e, "data directory \"%s\"", dir);
    if (wal_parse(name, &w, e) < 0)
        return -1;
    if (w.kind == WAL_SEGMENT || w.kind == WAL_PARTIAL) {
        if (cluster_read_wal_header(path, &h, e) < 0)
            return -1;
        if (out->sysid != 0 && h.sysid != out->sysid)
            return err_setf(e, ERR_FOREIGN,
                            "\"%s\" is a segment of the cluster with system identifier %llu, but the data "
                            "directory's cluster is %llu: refusing to archive another cluster's WAL",
                            path, (unsigned long long)h.sysid, (unsigned long long)out->sysid);
    } else {
        if (out->sysid == 0)
            return err_setf(e, ERR_NOREPO, "\"%s\" does not say which cluster it belongs to: set pgdata", path);
        snprintf(waldir, sizeof waldir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (any_segment_header(waldir, &h, e) < 0) {
            /* the identity may exist already: only creating it needs this */
            return 0;
        }
        if (h.sysid != out->sysid)
            return 0;
    }
    out->sysid = h.sysid;
    out->seg_size = h.seg_size;
    if (out->pg_major == 0)
        out->pg_major = cluster_major_of_magic(h.magic);
    return 0;
}

int cluster_check_segment(const struct wal_long_header *h, const char *name, uint64_t size, uint64_t sysid,
                          unsigned pg_major, struct err *e)
{
    struct wal_name w;
    uint16_t magic = cluster_wal_magic(pg_major);
    uint64_t want_addr;

    if (wal_parse(name, &w, e) < 0)
        return -1;
    if (w.kind != WAL_SEGMENT && w.kind != WAL_PARTIAL)
        return 0;
    if ((h->magic & 0xF000) != 0xD000 || (magic != 0 && h->magic != magic))
        return err_setf(e, ERR_FOREIGN, "%s has WAL page magic 0x%04X, not 0x%04X (PostgreSQL %u)", name,
                        h->magic, magic, pg_major);
    if (sysid != 0 && h->sysid != sysid)
        return err_setf(e, ERR_FOREIGN,
                        "%s is a segment of the cluster with system identifier %llu, not of this cluster %llu", name,
                        (unsigned long long)h->sysid, (unsigned long long)sysid);
    if (!wal_seg_size_valid(h->seg_size) || (w.kind == WAL_SEGMENT && size != h->seg_size))
        return err_setf(e, ERR_FOREIGN, "%s: its header gives a segment size of %u bytes, the file has %llu", name,
                        h->seg_size, (unsigned long long)size);
    /* The first segment of a new timeline starts as a copy of the parent's
     * segment up to the switch point (PostgreSQL's XLogInitNewTimeline), so
     * its first page carries an older timeline; a later one never. */
    if (h->tli == 0 || h->tli > w.tli)
        return err_setf(e, ERR_FOREIGN, "%s holds WAL of timeline %u, not %u (renamed or substituted)", name,
                        h->tli, w.tli);
    if (!wal_name_fits(&w, h->seg_size))
        return err_setf(e, ERR_FOREIGN,
                        "%s is no segment name for %u-byte segments (the last 8 digits go up to %08X): a renamed "
                        "file, whose name would stand for another segment's", name, h->seg_size,
                        (unsigned)(0x100000000ULL / h->seg_size - 1));
    want_addr = wal_segno(&w, h->seg_size) * (uint64_t)h->seg_size;
    if (h->pageaddr != want_addr)
        return err_setf(e, ERR_FOREIGN,
                        "%s starts at WAL position %X/%X, not %X/%X: it is another segment (renamed, substituted "
                        "or recycled)",
                        name, (unsigned)(h->pageaddr >> 32), (unsigned)h->pageaddr, (unsigned)(want_addr >> 32),
                        (unsigned)want_addr);
    return 0;
}
