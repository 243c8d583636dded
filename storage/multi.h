/*
 * multi — one stream, several destinations: the multi-region fan-out.
 *
 * A tee sink hands every byte it receives to each of its branches (region
 * upload sinks, the local spool file).  A branch that fails is aborted and
 * dropped, its error kept in its result slot, and the others go on: one
 * bad region never stops the healthy ones from receiving the object.  The
 * encoding stages sit before the tee, so compression and encryption are
 * paid once whatever the number of regions.
 *
 * write() fails only when every branch has failed.  close() closes every
 * live branch (each commits its object) and fails if any branch failed,
 * with a message naming every failing branch; the per-branch results say
 * which.  The tee owns its branches.  One thread at a time.
 */
#ifndef WALSHIP_MULTI_H
#define WALSHIP_MULTI_H

#include <stddef.h>

#include "err.h"
#include "stream.h"

struct multi_result {
    const char *name;       /* branch name for messages (not owned) */
    int failed;
    struct err err;
};

/* `branches` and `results` have n entries; results[i].name must be set by
 * the caller.  On success the tee owns the branches; on failure the caller
 * still does.  `results` must outlive the tee. */
int multi_tee_new(struct sink **branches, struct multi_result *results, size_t n, struct sink **out,
                  struct err *e);

#endif
