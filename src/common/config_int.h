/*
 * config_int — what the configuration modules share, and nobody else.
 *
 * config.c owns the key tables, the setters and the struct config object;
 * config_read.c reads the file (docs/CONFIG.md, "How the file is read");
 * config_show.c formats the effective configuration for `config check`.
 * Other modules use config.h only.
 */
#ifndef WALSHIP_CONFIG_INT_H
#define WALSHIP_CONFIG_INT_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

typedef int (*setter_fn)(void *target, const char *value, struct err *e);

/* How a key's value is stored, so that it can be shown again. */
enum key_kind {
    KIND_STR, KIND_CONNINFO, KIND_BOOL, KIND_SIZE, KIND_DURATION, KIND_U64, KIND_INT,
    KIND_COMPRESSION, KIND_LOG_LEVEL, KIND_MODE, KIND_LIST
};

#define KEY_SECRET 0x1      /* never shown; a file holding it must be private */
#define KEY_ZERO_UNSET 0x2  /* 0 means "not set" */

struct key_def {
    const char *name;
    size_t offset;
    setter_fn set;
    enum key_kind kind;
    unsigned flags;
};

/* Bound on either table, for per-key arrays (checked in config.c). */
#define CONFIG_MAX_KEYS 32

extern const struct key_def config_global_keys[];
extern const size_t config_nglobal;
extern const struct key_def config_region_keys[];
extern const size_t config_nregion;

/* Setters (config.c, config_cloud.c). */
int config_set_string(void *target, const char *value, struct err *e);
int config_set_credentials(void *target, const char *value, struct err *e);
int config_set_sse(void *target, const char *value, struct err *e);
int config_set_checksum(void *target, const char *value, struct err *e);
/* sts_endpoint: http:// or https:// and a host, nothing guessed */
int config_set_http_url(void *target, const char *value, struct err *e);
/* endpoint: the same, and no path, query or fragment (the S3 driver refuses them) */
int config_set_endpoint(void *target, const char *value, struct err *e);
/* url = s3://...: the bucket and prefix the S3 driver accepts; 0 or -1 */
int config_check_s3_url(const char *value, struct err *e);
int config_set_idle(void *target, const char *value, struct err *e);
int config_set_old_keys(void *target, const char *value, struct err *e);

const struct key_def *config_find_key(const struct key_def *defs, size_t n, const char *name);

/* Set key `k` (from `defs`) on `base` (the struct config, or a region) and
 * remember `origin`; `origins` is the array of that object.  An empty value
 * is refused.  The error is the setter's, without context. */
int config_apply(void *base, char **origins, const struct key_def *defs, const struct key_def *k,
                 const char *value, const char *origin, struct err *e);

/* Letters, digits, - _ . and a letter or digit first: a name names spool
 * queues and state files, whose readers skip dot names (".dr": its WAL
 * was acknowledged and never shipped). */
int config_region_name_valid(const char *name);
/* Append a region (no keys yet); NULL on error. */
struct region_conf *config_add_region(struct config *c, const char *name, struct err *e);

/* Read the file at `path` into `c` (config_read.c). */
int config_read_file(struct config *c, const char *path, struct err *e);

/* Where text[0..n) holds a character no configuration may hold (n if none):
 * NUL, control characters but the tab, Unicode spaces other than the space,
 * invisible characters, line separators, text direction controls, a byte
 * order mark; `what` names it ("U+3000"), *why says why. */
size_t config_bad_char(const char *text, size_t n, char *what, size_t cap, const char **why);

/* A WALSHIP_<KEY> value holds none of those, and no blank at either end
 * (the file would drop it; the environment would keep it). */
int config_env_value_check(const char *name, const char *value, struct err *e);

/* What the values mean together, once all are read (config_check.c):
 * absolute paths, timeouts, regions and the spool each in a place of their
 * own, CA files others cannot write.  ERR_CONFIG naming origin and key. */
int config_check(const struct config *c, struct err *e);
/* A path from environment variable `var` must be absolute. */
int config_check_env_path(const char *var, const char *path, struct err *e);
/* A file of `mode` that group or others can write is refused; `what`
 * ("configuration file") and `path` name it. */
int config_check_writable(const char *what, const char *path, mode_t mode, struct err *e);
/* `path` with "//", "." and ".." segments and a trailing "/" taken out,
 * lexically ("/" for the root); owned by the caller, NULL when out of memory. */
char *config_path_normal(const char *path);
/* Is normalised `inner` `outer` or below it? */
int config_path_within(const char *inner, const char *outer);
/* "HOST:PORT BUCKET/PREFIX" for an s3:// url ("aws" for AWS's endpoints and
 * none: bucket names are global there); owned by the caller. */
char *config_s3_location(const char *url, const char *endpoint);

#endif
