/*
 * stor_conf — a region's configuration turned into its storage driver's
 * options (struct stor_opts): the one place that does it, so that drivers
 * (storage/) never see struct config.
 */
#ifndef WALSHIP_STOR_CONF_H
#define WALSHIP_STOR_CONF_H

#include "config.h"
#include "err.h"
#include "stor.h"

/* The driver options of region `rc` (c may be NULL: the engine's defaults).
 * The strings point into rc, except *profile (a credentials profile name),
 * which the caller frees after the driver is open. */
int stor_opts_from_config(const struct region_conf *rc, const struct config *c, struct stor_opts *o, char **profile,
                          struct err *e);

/* Open the driver of a region's url.  `notes` (the command's sink, may be
 * NULL) is where the driver reports as it works (stor_opts.notes). */
int stor_open(const struct region_conf *rc, const struct config *c, const struct note_sink *notes, struct stor **out,
              struct err *e);

#endif
