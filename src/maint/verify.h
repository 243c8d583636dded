/*
 * verify — is what a region holds enough to restore every backup, and is
 * it intact?  (`walship verify`, docs/VERIFY.md.)
 *
 * vfy_region() checks one region:
 *   - every complete backup's manifest decodes; every part the manifest
 *     lists exists (backups/NAME/part-%04u) with the stored size it gives;
 *     backup_label (and tablespace_map when the manifest says so) exist;
 *   - WAL continuity: from each backup's start segment on its timeline to
 *     the newest archived segment of the newest timeline that descends from
 *     the backup, following the .history files (recovery_target_timeline =
 *     latest): no segment missing on the way, the backup's stop segment
 *     archived, a history file for every timeline above 1 that has WAL;
 *   - with `full`: every object of every backup and every WAL object is
 *     downloaded, decoded and authenticated; every part is read as a tar
 *     stream and every file's size and SHA-256 compared with the manifest;
 *     decoded WAL segments must be wal_segment_size long.
 *
 * Problems (damage, gaps) are collected into the report, each naming the
 * object; the function itself fails (-1) only when the region cannot be
 * checked at all (listing fails, out of memory).  Library code: it never
 * prints.  One thread at a time per struct stor; --full starts one helper
 * thread per part while it reads it.
 */
#ifndef WALSHIP_VERIFY_H
#define WALSHIP_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "repo.h"
#include "keys.h"
#include "stor.h"

struct vfy_problem {
    char *object;           /* key relative to the region prefix, or a segment range */
    char *msg;              /* what is wrong, lowercase, names the backup when relevant */
};

struct vfy_report {
    struct vfy_problem *v;
    size_t n, cap;
    uint64_t backups;           /* complete backups checked */
    uint64_t incomplete;        /* folders without a manifest (not checked) */
    uint64_t parts;             /* parts checked */
    uint64_t wal_segments;      /* segments archived */
    uint64_t wal_needed;        /* segments the backups need (counted once per backup) */
    uint64_t objects_decoded;   /* --full */
    uint64_t bytes_decoded;     /* --full: plaintext bytes */
    uint64_t files_checked;     /* --full: SHA-256 compared */
    /* Notes: worth knowing, not damage (the region still verifies): a
     * backup whose configuration carries recovery settings (manifest
     * "recovery_settings", docs/RESTORE.md). */
    struct vfy_problem *notes;
    size_t nnotes;
};

/* Check a region into `r` (which must be zeroed or freshly vfy_report_free'd).
 * 0 when the check ran (look at r->n), -1 when it could not. */
int vfy_region(struct repo *rp, int full, struct vfy_report *r, struct err *e);
void vfy_report_free(struct vfy_report *r);

/* The regions rs[0..n) against each other (verify_cross.c): every WAL file
 * (wal/) two of them hold must decode to the same bytes.  Copies whose
 * stored sizes differ are decoded and compared, and with `full` every
 * common name is.  A difference is a problem on "wal/NAME" naming both
 * regions.  Counts: wal_segments the names held in common (per pair),
 * objects_decoded, files_checked the copies compared.  -1 when a region
 * cannot be listed or memory runs out. */
int vfy_cross_regions(struct repo *const *rs, size_t n, int full, struct vfy_report *r, struct err *e);

#endif
