/*
 * unit_fixture — what the unit tests that need a repository or WAL share,
 * written once: a file:// region with its identity in a temporary
 * directory, encoded objects put into it, a WAL segment whose first page
 * says which segment of which cluster it is, and removing the directory at
 * the end.  A helper that fails says so with diag() (tap.h) and, where the
 * test can go on, lets it: the test's own checks then fail.
 */
#ifndef WALSHIP_UNIT_FIXTURE_H
#define WALSHIP_UNIT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "repo.h"

#define TF_SYSID 7311234567890123456ULL

/* mkdtemp(root), then ROOT/region as the file:// region "t" holding the
 * repository of cluster TF_SYSID (PostgreSQL 15, 16 MB segments).  0, or
 * -1 after a diag. */
int tf_region_open(char *root, const struct config *conf, struct repo **out);

/* Encode `buf` as the object `key` of repository `r` (bound to the key and
 * the repository's cluster) and publish it. */
void tf_put(struct repo *r, const char *key, const void *buf, size_t len);
void tf_put_text(struct repo *r, const char *key, const char *text);

/* A WAL segment of `seg_size` bytes (malloc'd; the caller frees) whose
 * long page header says it is segment `name` of cluster `sysid`; the rest
 * is filler that differs with `seed`. */
unsigned char *tf_segment(const char *name, uint64_t sysid, uint32_t seg_size, unsigned seed);

/* A WAL object named for segment (tli, log, seg) of repository `r`, whose
 * content is a stand-in (listing and continuity read only names). */
void tf_put_wal(struct repo *r, unsigned tli, unsigned log, unsigned seg);

/* A manifest (caller frees with man_free) of a full backup `name` of
 * cluster TF_SYSID with 16 MB segments, from 1/28 on timeline 1
 * (000000010000000100000000) to 1/1000138 (…0001), made by walship
 * "test"; the test fills in the rest (times, parts, compression). */
struct manifest;
struct manifest *tf_manifest_new(const char *name);

/* rm -rf `dir`, unless $KEEP is set (to look at what a test left). */
void tf_rmrf(const char *dir);

#endif
