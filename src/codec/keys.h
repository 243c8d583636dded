/*
 * keys — master encryption keys: key files, key ids, the keyring.
 *
 * A master key is 256 random bits.  It never encrypts data itself: each
 * object gets its own random data key, wrapped with the master key (see
 * obj.h and docs/FORMAT.md).  A key is named by its key id, the first 16
 * bytes of SHA-256("walship key id v1" || 0x00 || key), shown as 32
 * lower-case hex digits; the id names a key without revealing it.
 *
 * Key file: either 64 hex digits (optionally surrounded by white space; what
 * `walship keygen` writes) or exactly 32 raw bytes.  A key file that group
 * or others may read or write is refused (ERR_CONFIG), as is anything that
 * is not a regular file.
 *
 * The keyring holds the current key (`key_file`: encrypts and decrypts; may
 * be absent, then nothing is encrypted) and the old keys (`old_key_files`:
 * decrypt only, for rotation).  It is built once and then only read, so it
 * may be shared between threads.  Key material is wiped when freed.
 */
#ifndef WALSHIP_KEYS_H
#define WALSHIP_KEYS_H

#include <stddef.h>

#include <sys/stat.h>

#include "err.h"

#define KEYS_LEN 32
#define KEYS_ID_LEN 16
#define KEYS_ID_HEX_LEN (2 * KEYS_ID_LEN)

/* One key, lent by the keyring (valid until keys_free). */
struct keys_key {
    unsigned char key[KEYS_LEN];
    unsigned char id[KEYS_ID_LEN];
    char id_hex[KEYS_ID_HEX_LEN + 1];
    const char *origin;     /* the file it came from, or "(memory)" */
};

struct keyring;

/* Load `key_file` (NULL: no current key) and `old_key_files` (NULL-terminated
 * list, or NULL).  A missing or unreadable file, a bad key or loose
 * permissions is an ERR_CONFIG naming the file and the setting.  With
 * neither, *out is an empty keyring (nothing encrypted). */
int keys_load(const char *key_file, char *const *old_key_files, struct keyring **out, struct err *e);

/* Create `path` (mode 0600; an existing file is never overwritten: ERR_EXISTS)
 * holding a new random key in hex, fsync it and its directory, and return the
 * key id in hex. */
int keys_generate(const char *path, char key_id_hex[KEYS_ID_HEX_LEN + 1], struct err *e);

/* An empty keyring, for callers and tests that hold raw keys; NULL on
 * out-of-memory. */
struct keyring *keys_new(void);
/* Add a raw key; `current` makes it the encrypting key (replacing any). */
int keys_add(struct keyring *kr, const unsigned char key[KEYS_LEN], int current,
             const char *origin, struct err *e);

/* The encrypting key, or NULL (no encryption).  kr may be NULL. */
const struct keys_key *keys_current(const struct keyring *kr);
/* The key with this id, or NULL.  kr may be NULL. */
const struct keys_key *keys_find(const struct keyring *kr, const unsigned char id[KEYS_ID_LEN]);
/* Number of keys (current and old); 0 for NULL. */
size_t keys_count(const struct keyring *kr);
/* The identity (fstat of the descriptor it was read from) of the file the
 * current key was loaded from: 0, or -1 when there is none (no key_file, a
 * key added from memory).  A long-running process compares the path with
 * this, not with a stat() made later: a key file replaced between the load
 * and that stat() looked unchanged, and the process went on encrypting with
 * the replaced key.  kr may be NULL. */
int keys_current_file(const struct keyring *kr, struct stat *st);

/* Compute a key's id; fails (ERR_INTERNAL) only when OpenSSL cannot hash. */
int keys_id(const unsigned char key[KEYS_LEN], unsigned char id[KEYS_ID_LEN], struct err *e);

void keys_free(struct keyring *kr);

#endif
