/*
 * spool_int — the spool's insides, shared by spool.c (the queue) and
 * spool_state.c (the small state files beside it).  Not for other users.
 */
#ifndef WALSHIP_SPOOL_INT_H
#define WALSHIP_SPOOL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

struct spool {
    char *dir;              /* spool_dir/SYSID */
    uint64_t sysid;
    uint64_t max_bytes;
};

/* DIR/A[/B[/C]] into buf; -1 when it does not fit. */
int spool_sub(struct spool *sp, char *buf, size_t len, const char *a, const char *b, const char *c);

#endif
