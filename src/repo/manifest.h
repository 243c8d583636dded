/*
 * manifest — a backup's manifest.json: what a backup holds and how to
 * check it.  Written last (its presence makes the backup exist), encoded
 * like every object, parsed with jansson.
 *
 * A struct manifest owns all its strings and arrays.  man_to_json() and
 * man_from_json() are exact inverses for every field listed here; unknown
 * fields in a newer manifest are ignored, a newer "format" is refused.
 * Not thread-safe while being built; read-only use may be shared.
 */
#ifndef WALSHIP_MANIFEST_H
#define WALSHIP_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

#define MAN_FORMAT 1         /* full backups: still readable by walship 0.2 */
#define MAN_FORMAT_INCR 2    /* incremental backups: older readers refuse them by number */
#define MAN_FORMAT_PIECES 3  /* full backups with files stored as pieces (docs/BACKUP.md) */

/* A piece of a big file of a full backup: bytes [offset, offset + size)
 * of the file, one tar entry (named by the file's path) of part `part`. */
struct man_piece {
    uint32_t part;
    uint64_t offset, size;
    char sha256[65];        /* of the piece's bytes */
};

struct man_file {
    char *path;             /* relative to PGDATA; tablespace files: pg_tblspc/OID/... */
    uint32_t part;          /* 1-based part number */
    uint64_t size;          /* bytes in the archive */
    uint32_t mode;          /* permission bits */
    int64_t mtime;
    char sha256[65];        /* of the whole file as this backup read it */
    /* Incremental backups (docs/BACKUP.md): map != NULL gives, for every
     * block of the file, the depth of the chain's backup that holds it
     * (blockmap.h); this backup's archive then holds only its own blocks
     * (depth 0), `stored` bytes with SHA-256 `stored_sha256`, and part is
     * 0 when there are none.  Whole files: map NULL, stored == size. */
    char *map;
    uint64_t stored;
    char stored_sha256[65];
    /* Format 3: a file of a full backup stored as npieces >= 2 pieces,
     * contiguous from offset 0 to size, each in a part of its own; part
     * and stored are then 0, and sha256 is the SHA-256 of the pieces'
     * 32-byte digests in order (man_pieces_sha).  NULL/0 otherwise. */
    struct man_piece *pieces;
    uint32_t npieces;
};

struct man_part {
    uint32_t number;
    uint64_t raw_size;      /* tar bytes */
    uint64_t stored_size;   /* encoded object bytes */
    uint32_t files;
};

struct man_tablespace {
    uint32_t oid;
    char *path;             /* original location */
};

struct manifest {
    unsigned format;
    char *name;                 /* backup name (folder under backups/) */
    char *walship_version;
    uint64_t start_lsn, stop_lsn;
    uint32_t timeline;          /* of the start point */
    uint32_t stop_timeline;
    char start_wal[25];         /* segment holding start_lsn */
    char stop_wal[25];          /* segment holding stop_lsn */
    int64_t start_time, stop_time;  /* Unix seconds */
    uint32_t pg_version;        /* server_version_num */
    char *system_identifier;    /* decimal, as pg_control_system() gives it */
    uint64_t wal_segment_size;
    char *compression;          /* "none" or "zstd:N" */
    char *key_id;               /* hex, or NULL when not encrypted */
    uint64_t original_size;     /* sum of file sizes */
    uint64_t stored_size;       /* sum of encoded part sizes */
    int has_tablespace_map;
    int incremental;            /* "type": "incr" (else "full") */
    char *parent;               /* incremental: the parent backup's name */
    char parent_sha256[65];     /* ... and the SHA-256 of its manifest.json (plaintext) */
    uint32_t depth;             /* 0 for a full backup, parent's + 1 */
    uint32_t block_size;        /* of the block hashes and maps; 0: none (older backups) */
    uint64_t blockhash_size;    /* backups/NAME/blockhash: plaintext bytes ... */
    char blockhash_sha256[65];  /* ... and SHA-256, or "" when there is none */
    char *recovery_settings;    /* recovery settings the backed-up configuration
                                   carries ("name (file:line), ..."), or NULL:
                                   restore neutralises them (docs/RESTORE.md) */

    struct man_part *parts;
    size_t nparts;
    struct man_tablespace *tablespaces;
    size_t ntablespaces;
    struct man_file *files;
    size_t nfiles, files_cap;
    size_t files_listed;        /* entries of the manifest's file list, also when
                                   the list was not kept (man_headers_from_json) */
};

struct manifest *man_new(void);
void man_free(struct manifest *m);
/* Free the file list (paths, maps, pieces) and leave the rest: for readers
 * of the header fields alone, which hold many manifests at once. */
void man_drop_files(struct manifest *m);

int man_add_file(struct manifest *m, const char *path, uint32_t part, uint64_t size, uint32_t mode,
                 int64_t mtime, const char sha256[65], struct err *e);
/* A file of an incremental backup stored as a block map (see man_file). */
int man_add_file_map(struct manifest *m, const char *path, uint32_t part, uint64_t size, uint32_t mode,
                     int64_t mtime, const char sha256[65], const char *map, uint64_t stored,
                     const char stored_sha256[65], struct err *e);
/* A file stored as pieces (copied; sha256 is computed from them). */
int man_add_file_pieces(struct manifest *m, const char *path, uint64_t size, uint32_t mode, int64_t mtime,
                        const struct man_piece *pieces, uint32_t npieces, struct err *e);
/* The whole-file sha256 of a pieced file: SHA-256 of the pieces' binary
 * digests in order; -1 when a piece's sha256 is not 64 hex digits. */
int man_pieces_sha(const struct man_piece *pieces, uint32_t npieces, char out[65]);
/* The piece of `f` stored in part `part`, or NULL (at most one per part). */
const struct man_piece *man_piece_in(const struct man_file *f, uint32_t part);
/* What the archive holds of a file: bytes and their SHA-256. */
static inline const char *man_file_stored_sha(const struct man_file *f)
{
    return f->map != NULL ? f->stored_sha256 : f->sha256;
}
int man_add_part(struct manifest *m, const struct man_part *p, struct err *e);
int man_add_tablespace(struct manifest *m, uint32_t oid, const char *path, struct err *e);
/* Sort files by (part, path) — the order they are in the archive. */
void man_sort(struct manifest *m);
const struct man_file *man_find_file(const struct manifest *m, const char *path);
/* An index of the files by path for man_lookup (malloc'd, NULL on ENOMEM). */
const struct man_file **man_index(const struct manifest *m);
const struct man_file *man_lookup(const struct manifest *m, const struct man_file **idx, const char *path);

/* Serialize (compact JSON, one line) into a malloc'd string. */
int man_to_json(const struct manifest *m, char **out, size_t *len, struct err *e);
/* Parse and validate; `what` names the source in errors. */
int man_from_json(const char *buf, size_t len, const char *what, struct manifest **out, struct err *e);
/* The same without the file list (files NULL, files_listed counted): for
 * readers of the header fields (backup-list, retention, status), which
 * read many manifests of 100000 files or more.  The list is skipped in the
 * text before it is parsed: for 100000 files 0.014 s and 17 MB of memory,
 * the 15 MB text included, against 0.27 s and 141 MB.  A manifest
 * whose text is laid out otherwise than walship writes it is parsed whole,
 * then its list dropped. */
int man_headers_from_json(const char *buf, size_t len, const char *what, struct manifest **out, struct err *e);

/* ISO 8601 UTC "2026-11-22T05:32:30Z". */
void man_format_time(int64_t t, char out[32]);

#endif
