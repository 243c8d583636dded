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
 *
 * A branch's object exists only when its result says `committed`: a stage
 * before the tee that fails (a compression or encryption error) never
 * closes the tee, so no branch commits and none has `failed` set either.
 * Callers count successes by `committed`, never by the absence of
 * `failed`, and give uncommitted branches the chain's own error
 * (multi_settle).
 */
#ifndef WALSHIP_MULTI_H
#define WALSHIP_MULTI_H

#include <stddef.h>

#include "err.h"
#include "stream.h"

struct multi_result {
    const char *name;       /* branch name for messages (not owned) */
    int failed;             /* the branch itself failed: err says why */
    int committed;          /* the branch's close succeeded: its object exists */
    struct err err;
};

/* `branches` and `results` have n entries; results[i].name must be set by
 * the caller.  On success the tee owns the branches; on failure the caller
 * still does.  `results` must outlive the tee. */
int multi_tee_new(struct sink **branches, struct multi_result *results, size_t n, struct sink **out,
                  struct err *e);

/* After the chain that ends in the tee was closed (chain_rc: what
 * sink_close() returned, chain_err its error): every branch that did not
 * commit and has no error of its own gets the chain's error.  Returns the
 * number of committed branches. */
size_t multi_settle(struct multi_result *results, size_t n, int chain_rc, const struct err *chain_err);

#endif
