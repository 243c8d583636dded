/*
 * config — walship's configuration: INI file (inih), environment, flags.
 *
 * Precedence, lowest first: built-in defaults, the INI file, WALSHIP_<KEY>
 * environment variables (global keys), command-line flags (applied by the
 * commands through config_set()).  Every key is validated when read; an
 * unknown key, a bad value, a region without url or a secret in a file that
 * others can read is an ERR_CONFIG naming file, line and key.
 *
 * A struct config is built once per process and then only read; it owns all
 * its strings.
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
    char *ca_file;
    int unsigned_payload;   /* UNSIGNED-PAYLOAD over TLS instead of hashing */
    uint64_t part_size;     /* multipart part size (bytes) */
    int retain_full;        /* 0 = not set */
    uint64_t retain_days;   /* 0 = not set */
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
    char *pg_bin;

    struct region_conf *regions;
    int nregions;
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

/* Add a region from a URL alone (restore --from URL on a bare host). */
int config_add_region_url(struct config *c, const char *name, const char *url, struct err *e);

/* Forget every configured region (--from replaces them). */
void config_drop_regions(struct config *c);

const struct region_conf *config_region(const struct config *c, const char *name);

/* Check what a command needs before it starts: at least one region, etc. */
int config_require_regions(const struct config *c, struct err *e);

void config_free(struct config *c);

#endif
