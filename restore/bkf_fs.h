/*
 * bkf_fs — file-system helpers for backup_fetch: path checks, walking below
 * a directory descriptor without following symlinks, emptiness checks,
 * small files written atomically, and rewriting tablespace_map.
 *
 * Thread-safe (no shared state); never print.
 */
#ifndef WALSHIP_BKF_FS_H
#define WALSHIP_BKF_FS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

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
 * create it (and its parents) mode 0700, and open it. */
int bkf_prepare_dir(const char *path, const char *what, int *fd, struct err *e);

/* Write NAME in the directory `dirfd` (named `dir` in errors) atomically:
 * NAME.walship-tmp, fsync, rename, fsync of the directory.  Mode 0600. */
int bkf_write_small(int dirfd, const char *dir, const char *name, const void *buf, size_t len, struct err *e);

/* Rewrite a tablespace_map: lines are "OID PATH" with '\\', '\n' and '\r'
 * in PATH escaped by a backslash (PostgreSQL's do_pg_backup_start).  The
 * line of oids[k] gets newpaths[k] (escaped) when newpaths[k] is not NULL;
 * every other byte is kept.  A malloc'd buffer, or NULL on out-of-memory. */
char *bkf_rewrite_tsmap(const unsigned char *in, size_t len, const uint32_t *oids, const char *const *newpaths,
                        size_t n, size_t *outlen);

#endif
