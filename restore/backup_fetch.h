/*
 * backup_fetch — unpack one base backup from a region into an empty
 * directory (backup-fetch, and restore's first step).
 *
 * Layout read (DESIGN.md §6): backups/NAME/part-0001 … part-NNNN (encoded
 * pax tar streams), backup_label, tablespace_map (when the manifest says so),
 * manifest.json (already loaded by the caller: cat_load_manifest).
 *
 * bkf_fetch() downloads the parts `parallel` at a time.  Per part, one
 * thread streams the object through the decoder into a bounded in-memory
 * pipe (4 MiB) and another reads it with libarchive and writes the files;
 * memory does not depend on the size of a part.  Each worker thread opens
 * its own struct stor (stor_open) except the first, which borrows r->st
 * (the caller must not use `r` during the call).  Every object is decoded
 * bound to its key and r's cluster, and backup_label must name the backup
 * and its start point.
 *
 * What is refused (ERR_CORRUPT, naming the backup, the part and the entry),
 * before anything is written for that entry: absolute paths, "." or ".."
 * components, empty components, anything but regular files and directories
 * (symlinks, hardlinks, devices, fifos), a file the manifest does not list,
 * a file listed for another part, a file that appears twice, a size that
 * differs from the manifest's, a sparse entry.  A file whose SHA-256
 * differs from the manifest's is an error naming the file and the part (the
 * file stays, the restore fails).  Every manifest file must be found in its
 * part.  The work is bounded by the manifest (restore/bkf_tar.h): each
 * part's object may not exceed its stored_size nor its tar stream its
 * raw_size (both must match exactly), a manifest whose files do not fit in
 * their part's raw_size is refused before anything is created, and file
 * data must arrive in order and without holes.
 *
 * Nothing is written outside DIR and the tablespace directories: every path
 * is resolved component by component from a directory descriptor with
 * O_NOFOLLOW, files are created with O_EXCL, and the only symlinks created
 * (DIR/pg_tblspc/OID → tablespace directory) are made after all parts are
 * extracted.  DIR must be absent (it is created, mode 0700) or empty; each
 * tablespace directory (its original path, or NEW for a mapping OLD=NEW)
 * likewise.  Entries under pg_tblspc/OID/ go to tablespace OID's directory
 * when the manifest lists OID, else they stay inside DIR (in-place
 * tablespaces).
 *
 * Files get the manifest's permission bits (& 0777) and mtime; directories
 * get the tar's mode and mtime once everything is written.  Writeback of
 * file data is started while extracting (sync_file_range); at the end
 * syncfs() flushes DIR's and each tablespace's file system, directories are
 * fsync'd, tablespace_map (mapped paths rewritten) is written, and
 * backup_label is written LAST (temp file, fsync, rename, fsync of DIR):
 * a DIR without backup_label never looks like a complete backup.  On
 * failure DIR is left as it is, without backup_label.
 *
 * Thread safety: bkf_fetch() may be called from any thread; it starts and
 * joins its own threads.  `kr`, `m`, `conf` and `rc` are only read and must
 * not change during the call.  The progress callback is called from the
 * worker threads, one call at a time (serialized), at most every 100 ms
 * plus once at the end.
 */
#ifndef WALSHIP_BACKUP_FETCH_H
#define WALSHIP_BACKUP_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "keys.h"
#include "manifest.h"
#include "note.h"
#include "repo.h"

/* --tablespace-map OLD=NEW: restore the tablespace at OLD into NEW.  Both
 * must be absolute; OLD must be one of the backup's tablespaces. */
struct bkf_tsmap {
    const char *old_path;
    const char *new_path;
};

struct bkf_progress {
    uint64_t bytes_done, bytes_total;   /* file bytes written / manifest original_size */
    uint64_t files_done, files_total;
    uint32_t parts_done, parts_total;
};

typedef void (*bkf_progress_fn)(const struct bkf_progress *p, void *arg);

struct bkf_opts {
    int parallel;                   /* parts at once; < 1 means 1 */
    const struct bkf_tsmap *tsmap;  /* may be NULL when ntsmap == 0 */
    size_t ntsmap;
    bkf_progress_fn progress;       /* may be NULL */
    void *progress_arg;
    const struct note_sink *notes;  /* for the storage the workers open (stor_open); may be NULL */
    int allow_unmounted;            /* DIR may be below an fstab mount point that is not mounted (paths.h) */
    int named_tablespaces;          /* every tablespace needs its tsmap entry (run as root: the backup
                                     * decides no host path, docs/RESTORE.md "Restoring as root") */
};

struct bkf_stats {
    uint64_t files;                 /* regular files written */
    uint64_t bytes;                 /* their bytes */
    uint64_t dirs;                  /* directory entries restored */
    uint32_t parts;
    uint32_t tablespaces;
    uint64_t ms;                    /* wall time of bkf_fetch */
    uint64_t reread;                /* chain: bytes read back to check assembled files */
};

/* Unpack the backup described by `m` (m->name) from region `r` (opened with
 * its identity) into `dir`.
 * `rc` and `conf` open the extra per-thread storage handles (they must
 * describe the same region as `s`).  `st` may be NULL.  Errors:
 * ERR_USAGE (DIR or a tablespace directory not empty, bad mapping),
 * ERR_CORRUPT (a part, label or entry that is wrong), ERR_IO, and whatever
 * the storage or the decoder report, prefixed with backup, region and part. */
int bkf_fetch(struct repo *r, const struct region_conf *rc, const struct config *conf, const struct manifest *m,
              const char *dir, const struct bkf_opts *o, struct bkf_stats *st, struct err *e);

#endif
