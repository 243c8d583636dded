/*
 * catalog — the backups a region holds.
 *
 * A backup exists only when backups/NAME/manifest.json does (DESIGN.md §7);
 * folders without one are incomplete (in progress, or left by a killed
 * backup-push) and are listed only on request, for clean-up.  Names sort
 * in time order (cat_new_name).  Manifests are encoded objects bound to
 * their backup's folder: loading one decodes and authenticates it, and a
 * manifest copied from another backup (or another cluster) is refused, as
 * is one whose "name" is not its folder's.
 */
#ifndef WALSHIP_CATALOG_H
#define WALSHIP_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"
#include "keys.h"
#include "manifest.h"
#include "repo.h"

#define CAT_MANIFEST "manifest.json"
/* written first, never replaced: backup-push's claim on the folder's name */
#define CAT_CLAIM "claim"
#define CAT_NAME_MAX 64

struct cat_entry {
    char name[CAT_NAME_MAX];
    int complete;           /* has a manifest */
    uint64_t objects;       /* objects in the folder */
    uint64_t bytes;         /* their stored size */
    time_t newest;          /* newest object's mtime */
    struct manifest *man;   /* loaded by cat_list when asked, else NULL */
};

struct catalog {
    struct cat_entry *v;
    size_t n, cap;
};

/* List backups/ of a region, oldest first.  With `load` the manifests of
 * complete backups are decoded (a manifest that does not decode is an
 * error naming the backup); CAT_LOAD_HEADERS parses no file list (a
 * manifest of 100000 files takes 141 MB and 0.27 s to parse whole, and
 * retention holds every manifest of the region at once). */
#define CAT_LOAD_HEADERS 2
int cat_list(struct repo *r, int load, struct catalog *out, struct err *e);
/* Entry k's manifest loaded again, whole (after CAT_LOAD_HEADERS). */
int cat_reload(struct repo *r, struct catalog *c, size_t k, struct err *e);
void cat_free(struct catalog *c);

int cat_load_manifest(struct repo *r, const char *name, struct manifest **out, struct err *e);
/* The same without the file list (man_headers_from_json): the object is
 * read and authenticated whole, the list is not parsed.  sha_hex, unless
 * NULL: as cat_load_manifest_sha's. */
int cat_load_headers(struct repo *r, const char *name, struct manifest **out, char sha_hex[65], struct err *e);

/* Every part manifest `m` lists is in region `r` under backup `name`, at
 * its stored size (a listing of the backup's folder, nothing decoded):
 * 0, or ERR_CORRUPT naming the first part missing or of another size (an
 * error of the listing as it came). */
int cat_parts_present(struct repo *r, const char *name, const struct manifest *m, struct err *e);
/* The same, and the SHA-256 (hex) of the manifest's plaintext: an
 * incremental backup's manifest binds its parent's by this digest. */
int cat_load_manifest_sha(struct repo *r, const char *name, struct manifest **out, char sha_hex[65],
                          struct err *e);

/* Find a complete backup by name, or "LATEST": index into c->v, or -1
 * (ERR_NOTFOUND). */
int cat_find(const struct catalog *c, const char *name, struct err *e);

/* The index of the entry named `name` (complete or not), or c->n: a binary
 * search, since listings come in byte order, then a scan when it misses (a
 * name that sorts otherwise, or none).  Retention follows every chain link
 * by link with it: a scan per link cost backups² x chain length. */
size_t cat_name_index(const struct catalog *c, const char *name);

/* A new backup's name from its start time: "20261122T053230Z". */
void cat_new_name(time_t start, char out[CAT_NAME_MAX]);

#endif
