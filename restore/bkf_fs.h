/*
 * bkf_fs — file-system helpers for backup_fetch: path checks, walking below
 * a directory descriptor without following symlinks, emptiness checks,
 * small files written atomically, and the tablespace_map restore writes.
 *
 * Thread-safe (no shared state); never print.
 */
#ifndef WALSHIP_BKF_FS_H
#define WALSHIP_BKF_FS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "bkf_tar.h"
#include "err.h"
#include "manifest.h"
#include "note.h"

/* A safe relative path: not absolute, no empty, "." or ".." component;
 * when `is_dir`, one trailing '/' is allowed (dropped in `out`).  0 or -1. */
int bkf_clean_path(const char *p, int is_dir, char out[PATH_MAX]);

/* Open directory `rel` below `rootfd` ("" = rootfd itself, dup'd), creating
 * missing components with mode 0700 when `create`.  Every component is
 * opened with O_NOFOLLOW | O_DIRECTORY: a symlink or a file in the way is
 * an error (errno ELOOP / ENOTDIR).  0, or -1 with errno set. */
int bkf_open_dir(int rootfd, const char *rel, int create, int *out);

/* 0 if `path` is absent or an empty directory, 1 if it holds anything,
 * -1 with e filled if it cannot be read or is not a directory. */
int bkf_dir_state(const char *path, struct err *e);

/* Check that `path` is absent or empty (else ERR_USAGE naming `what`),
 * create it (and its parents) mode 0700, open it and flock() it: another
 * restore holding it is ERR_LOCKED; it is checked empty again under the
 * lock, which *fd holds until it is closed. */
int bkf_prepare_dir(const char *path, const char *what, int *fd, struct err *e);

/* Write NAME in the directory `dirfd` (named `dir` in errors) atomically:
 * NAME.walship-tmp, fsync, rename, fsync of the directory.  Mode 0600.
 * On failure NAME is not there (removed again when the directory's fsync
 * failed after the rename). */
int bkf_write_small(int dirfd, const char *dir, const char *name, const void *buf, size_t len, struct err *e);

/* The mode of the restored data directory itself, which no backup holds:
 * 0750 for a cluster with group access (initdb -g), else 0700.
 * PostgreSQL takes group access from that directory's mode alone (and
 * makes every new file by it); it made `global` with the same mode, so
 * that directory's entry (root 0, "global") decides. */
unsigned bkf_data_dir_mode(const struct bkf_dir *dirs, size_t n);

/* Before anything is created: DIR and the tablespaces' directories
 * (targets[0 .. m->ntablespaces-1], absolute) must not overlap, compared
 * as absolute paths with ".", ".." and repeated '/' resolved (not
 * symlinks).  Refused (ERR_USAGE): a tablespace at DIR or containing it,
 * one inside another, and one inside DIR where the backup has files of
 * its own (DIR/base, DIR/pg_tblspc/OID); a tablespace inside DIR
 * elsewhere is PostgreSQL's (warned, allowed) and stays allowed.  Unless
 * `allow_unmounted`, none may be meant for a volume that is not mounted
 * (path_check_mounted, paths.h). */
int bkf_check_roots(const char *dir, const struct manifest *m, const char *const *targets, int allow_unmounted,
                    struct err *e);

/* An absolute path as PostgreSQL keeps a tablespace's LOCATION
 * (canonicalize_path): no empty, "." or ".." component, no trailing '/'.
 * 1 or 0. */
int bkf_abs_path_ok(const char *p);

/* The tablespace_map to restore, from the backup's: lines are "OID PATH"
 * with '\\', '\n' and '\r' in PATH escaped by a backslash (PostgreSQL's
 * do_pg_backup_start; read back as its read_tablespace_map does).  Each
 * line must name a tablespace of the manifest at the manifest's path
 * (else ERR_CORRUPT: PostgreSQL would link the tablespace to the map's
 * path, not to where restore put its files), at most once, and gets that
 * tablespace's target (targets[i], escaped).  A line for a tablespace the
 * manifest does not hold is left out, with a warning to `notes`.  *out is
 * malloc'd and NUL-terminated (*outlen bytes before the NUL). */
int bkf_build_tsmap(const unsigned char *in, size_t len, const struct manifest *m, const char *const *targets,
                    const struct note_sink *notes, char **out, size_t *outlen, struct err *e);

/* The target of each tablespace of `m` (ts_target[i], strdup'd) after
 * o's --tablespace-map, each checked: a manifest path must be absolute
 * and canonical as PostgreSQL keeps a LOCATION (else ERR_CORRUPT); each
 * map entry must name a tablespace of the backup; no two tablespaces may
 * share a target; with o->named_tablespaces (run as root) the backup
 * decides no host path: every tablespace needs its map entry (ERR_USAGE). */
struct bkf_opts;
int bkf_plan_tablespaces(const struct manifest *m, const struct bkf_opts *o, char **ts_target, struct err *e);

#endif
