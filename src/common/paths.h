/*
 * paths — absolute paths as the kernel will reach them, and the volumes
 * they are meant to be on.
 */
#ifndef WALSHIP_PATHS_H
#define WALSHIP_PATHS_H

#include <limits.h>
#include <stddef.h>

#include "err.h"

/* `p` as the kernel will reach it once it is made: its longest existing
 * prefix through realpath() (a symbolic link is seen for what it is), the
 * part not made yet appended and resolved lexically ("." and ".."), made
 * absolute against the working directory.  -1 when too long. */
int path_resolve(const char *p, char out[PATH_MAX]);

/* Is `p` at or below `base` (both as path_resolve gives them)?  Then *rel
 * is the rest ("" at base). */
int path_under(const char *base, const char *p, const char **rel);

/* Is `p` meant to be on a volume that is not mounted?  A mount point of
 * `fstab` (normally /etc/fstab) at or above `p` that `mounts` (normally
 * /proc/self/mounts) does not list: writing there fills the file system
 * below the mount point, and the volume, once mounted, hides what was
 * written.  1 with the deepest such mount point in `where` (fstab's line
 * as written, and `p` resolved, in the error-free case); 0 when there is
 * none, or when either table cannot be read (nothing to go by: not a
 * reason to refuse).  Swap entries and "/" are not mount points here. */
int path_unmounted_volume(const char *p, const char *fstab, const char *mounts, char *where, size_t wlen);

/* path_unmounted_volume with the system's tables, as an error `code`:
 * "WHAT "P" is on MOUNT POINT, a mount point in /etc/fstab where nothing
 * is mounted: THEN" when `p` is meant to be on a volume that is not
 * mounted; else 0. */
int path_refuse_unmounted(const char *p, enum err_code code, const char *what, const char *then, struct err *e);
/* The same for restore's targets (ERR_USAGE, pointing at --allow-unmounted). */
int path_check_mounted(const char *p, const char *what, struct err *e);

#endif
