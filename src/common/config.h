/*
 * config — walship's configuration: INI file (inih), environment, flags.
 *
 * Precedence, lowest first: built-in defaults, the INI file, WALSHIP_<KEY>
 * environment variables (global keys), command-line flags (applied by the
 * commands through config_set()).  The file is read exactly as written or
 * refused (docs/CONFIG.md, "How the file is read"): every key is validated
 * when read, and an unknown key or section, a key given twice, a bad value,
 * a line libinih would misread, a region without url, an unknown or empty
 * WALSHIP_* variable or a secret in a file that others can read is an
 * ERR_CONFIG naming file, line and key.  Then what the values mean together
 * is checked (config_check.c): relative paths, timeouts of 0, two regions
 * or a region and the spool in one place, files others can write.
 *
 * Every value remembers where it came from ("FILE:LINE", "WALSHIP_KEY",
 * "--flag"; no origin: the built-in default), for `walship config check`.
 *
 * A struct config is built once per process and then only read; it owns all
 * its strings.  config_load() is not thread-safe: it sets libinih's
 * process-wide options.
 */
#ifndef WALSHIP_CONFIG_H
#define WALSHIP_CONFIG_H

#include <stdint.h>

#include "err.h"
#include "log.h"

enum region_mode { REGION_SYNC = 0, REGION_ASYNC };

struct region_conf {
    char *name;             /* section name: [region NAME] */
    char *url;              /* file:///path or s3://bucket/prefix */
    char *endpoint;         /* https://host[:port] (S3 only, optional) */
    char *aws_region;       /* SigV4 region; default: name */
    int path_style;
    enum region_mode mode;
    char *storage_class;
    char *access_key_id;    /* per-region credentials; default: environment */
    char *secret_access_key;
    char *session_token;
    char *credentials;      /* auto | env | static | profile[:NAME] | web-identity | container | imds */
    char *sts_endpoint;     /* STS for web identity; default $AWS_ENDPOINT_URL_STS, then regional */
    int imds_v1;            /* allow IMDSv1 when no IMDSv2 token can be had */
    char *sse;              /* AES256 | aws:kms; NULL = the bucket's default */
    char *sse_kms_key_id;
    int sse_bucket_key;
    char *checksum;         /* md5 (default) | sha256 */
    char *ca_file;
    int unsigned_payload;   /* UNSIGNED-PAYLOAD over TLS instead of hashing */
    uint64_t part_size;     /* multipart part size (bytes) */
    int retain_full;        /* 0 = not set */
    uint64_t retain_days;   /* 0 = not set */
    char **origin;          /* private to config*.c: per key, where its value came from */
};

struct config {
    char *path;             /* file it came from, NULL if none */
    char *pgdata;
    char *pg_conninfo;
    int compression_level;  /* 0 = none */
    char *key_file;
    char **old_key_files;   /* NULL-terminated */
    char *spool_dir;
    uint64_t spool_max_bytes;
    int parallel;
    uint64_t rpo_seconds;
    uint64_t backup_max_age;    /* seconds */
    int delete_after_backup;
    uint64_t garbage_hours;
    enum log_level log_level;
    uint64_t retry_deadline;    /* seconds: total time for retries of one request */
    uint64_t connect_timeout;   /* seconds */
    uint64_t io_timeout;        /* seconds without progress before a transfer is cut */
    uint64_t archive_timeout;   /* seconds backup-push waits for the stop segment to be archived */
    int max_chain;              /* backup-push --incremental: longest chain, else a full backup; 0 = no limit */
    uint64_t full_every;        /* ... and seconds after which a chain's full backup is renewed; 0 = never */
    char *pg_bin;
    int archive_async_process;  /* wal-push hands segments to a local archiver process (docs/WAL.md) */
    uint64_t archive_async_idle;    /* seconds without work after which that process exits */

    struct region_conf *regions;
    int nregions;
    char **origin;          /* private to config*.c: per key, where its value came from */
};

/* Defaults only (no file). */
struct config *config_new_default(void);

/* Load: `path` if not NULL, else $WALSHIP_CONFIG, else
 * /etc/walship/walship.conf.  `required`: a missing file is an error (else
 * a missing default file gives the built-in defaults).  Then applies the
 * WALSHIP_<KEY> environment. */
int config_load(const char *path, int required, struct config **out, struct err *e);

/* Set one global key (flags and environment use this).  `origin` names
 * where the value came from, for errors. */
int config_set(struct config *c, const char *key, const char *value, const char *origin, struct err *e);

/* Set one key of the region named `region`, as config_set(). */
int config_region_set(struct config *c, const char *region, const char *key, const char *value,
                      const char *origin, struct err *e);

/* Add a region from a URL alone (restore --from URL on a bare host); the
 * url's origin is "--from". */
int config_add_region_url(struct config *c, const char *name, const char *url, struct err *e);

/* Forget every configured region (--from replaces them). */
void config_drop_regions(struct config *c);

const struct region_conf *config_region(const struct config *c, const char *name);

/* Check what a command needs before it starts: at least one region, etc. */
int config_require_regions(const struct config *c, struct err *e);

/* One key as walship understood it, for `walship config check`. */
struct config_item {
    int region;             /* index into regions, or -1 for [global] */
    const char *section;    /* "global" or the region's name */
    const char *key;
    const char *value;      /* normalised ("20GB", "zstd:3"); NULL: not set;
                             * secrets and a conninfo password are "<redacted>" */
    const char *origin;     /* "FILE:LINE", "WALSHIP_KEY", "--flag" or "default" */
    int secret;
};

/* Call fn for every key of [global], then of each region in order.  fn
 * returns 0 to go on; anything else stops the walk and is returned.  -1 with
 * `e` set when out of memory. */
typedef int (*config_walk_fn)(void *arg, const struct config_item *item);
int config_walk(const struct config *c, config_walk_fn fn, void *arg, struct err *e);

/* Where the [global] key's value came from ("FILE:LINE", "WALSHIP_KEY",
 * "--flag"), NULL for the built-in default or an unknown key. */
const char *config_origin(const struct config *c, const char *key);

void config_free(struct config *c);

#endif
