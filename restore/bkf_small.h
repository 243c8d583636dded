/*
 * bkf_small — backup_label and tablespace_map of a backup (bkf_small.c).
 */
#ifndef WALSHIP_BKF_SMALL_H
#define WALSHIP_BKF_SMALL_H

#include "err.h"
#include "manifest.h"
#include "repo.h"
#include "stream.h"

#define LABEL_MAX ((size_t)1 << 20)

/* Object backups/NAME/WHAT of region r into a memory sink (*out). */
int bkf_fetch_small(struct repo *r, const char *name, const char *what, struct sink **out, struct err *e);

/* Does the label describe backup m (its start and its name)? */
int bkf_check_label(const struct manifest *m, struct sink *label, struct err *e);

#endif
