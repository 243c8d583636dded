#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util.h"

/* A key file is tiny; anything bigger is not one of ours. */
#define KEY_FILE_MAX 256

static const char key_id_domain[] = "walship key id v1";   /* hashed with its NUL */

struct keyring {
    struct keys_key *keys;      /* keys[0..n); each origin is an owned copy */
    size_t n, cap;
    ssize_t current;            /* index into keys, or -1 */
    struct stat current_st;     /* the key_file's identity when loaded */
    int have_current_st;
};

int keys_id(const unsigned char key[KEYS_LEN], unsigned char id[KEYS_ID_LEN], struct err *e)
{
    unsigned char in[sizeof key_id_domain + KEYS_LEN];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok;

    memcpy(in, key_id_domain, sizeof key_id_domain);
    memcpy(in + sizeof key_id_domain, key, KEYS_LEN);
    ok = EVP_Digest(in, sizeof in, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32;
    OPENSSL_cleanse(in, sizeof in);
    if (!ok)
        return err_setf(e, ERR_INTERNAL, "could not compute a key id: SHA-256 failed in OpenSSL");
    memcpy(id, md, KEYS_ID_LEN);
    return 0;
}

struct keyring *keys_new(void)
{
    struct keyring *kr = calloc(1, sizeof *kr);

    if (kr != NULL)
        kr->current = -1;
    return kr;
}

void keys_free(struct keyring *kr)
{
    if (kr == NULL)
        return;
    for (size_t i = 0; i < kr->n; i++)
        free((char *)kr->keys[i].origin);
    if (kr->keys != NULL)
        OPENSSL_cleanse(kr->keys, kr->cap * sizeof *kr->keys);
    free(kr->keys);
    free(kr);
}

int keys_add(struct keyring *kr, const unsigned char key[KEYS_LEN], int current,
             const char *origin, struct err *e)
{
    struct keys_key *k;
    char *o;

    if (kr->n == kr->cap) {
        size_t cap = kr->cap ? 2 * kr->cap : 4;
        struct keys_key *nk = calloc(cap, sizeof *nk);

        if (nk == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory adding a key");
        /* Not realloc: the old array is wiped before it is freed. */
        if (kr->keys != NULL) {
            memcpy(nk, kr->keys, kr->n * sizeof *nk);
            OPENSSL_cleanse(kr->keys, kr->cap * sizeof *kr->keys);
            free(kr->keys);
        }
        kr->keys = nk;
        kr->cap = cap;
    }
    o = strdup(origin != NULL ? origin : "(memory)");
    if (o == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory adding a key");
    k = &kr->keys[kr->n];
    if (keys_id(key, k->id, e) < 0) {
        free(o);
        return -1;
    }
    memcpy(k->key, key, KEYS_LEN);
    hex_encode(k->id, KEYS_ID_LEN, k->id_hex);
    k->origin = o;
    if (current)
        kr->current = (ssize_t)kr->n;
    kr->n++;
    return 0;
}

const struct keys_key *keys_current(const struct keyring *kr)
{
    if (kr == NULL || kr->current < 0)
        return NULL;
    return &kr->keys[kr->current];
}

const struct keys_key *keys_find(const struct keyring *kr, const unsigned char id[KEYS_ID_LEN])
{
    if (kr == NULL)
        return NULL;
    for (size_t i = 0; i < kr->n; i++)
        if (CRYPTO_memcmp(kr->keys[i].id, id, KEYS_ID_LEN) == 0)
            return &kr->keys[i];
    return NULL;
}

size_t keys_count(const struct keyring *kr)
{
    return kr == NULL ? 0 : kr->n;
}

int keys_current_file(const struct keyring *kr, struct stat *st)
{
    if (kr == NULL || !kr->have_current_st || kr->current < 0)
        return -1;
    *st = kr->current_st;
    return 0;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* 32 bytes of hex digits and blanks are a hex key cut short (a key file
 * read while it was being written, or truncated), not 32 random bytes:
 * taken as a raw key they were a different key, and wal-push encrypted
 * with it WAL that no configured key could read (adversarial pass AD). */
static int looks_like_text(const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (hex_digit(buf[i]) < 0 && !is_space(buf[i]))
            return 0;
    return 1;
}

/* Raw 32 bytes, or 64 hex digits with optional surrounding white space. */
static int parse_key(const unsigned char *buf, size_t len, unsigned char key[KEYS_LEN])
{
    size_t b = 0, end = len;

    if (len == KEYS_LEN && !looks_like_text(buf, len)) {
        memcpy(key, buf, KEYS_LEN);
        return 0;
    }
    while (b < end && is_space(buf[b]))
        b++;
    while (end > b && is_space(buf[end - 1]))
        end--;
    if (end - b != 2 * KEYS_LEN)
        return -1;
    for (size_t i = 0; i < KEYS_LEN; i++) {
        int hi = hex_digit(buf[b + 2 * i]), lo = hex_digit(buf[b + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int load_one(struct keyring *kr, const char *path, const char *setting, int current,
                    struct err *e)
{
    unsigned char buf[KEY_FILE_MAX + 1];
    unsigned char key[KEYS_LEN];
    struct stat st;
    size_t len = 0;
    int fd, rc = -1;

    /* O_NONBLOCK: a FIFO in its place opened without it waited for a
     * writer for ever, and wal-push with it (adversarial pass AD) */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return err_errno(e, ERR_CONFIG, errno, "could not open %s \"%s\"", setting, path);
    if (fstat(fd, &st) < 0) {
        err_errno(e, ERR_CONFIG, errno, "could not stat %s \"%s\"", setting, path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err_setf(e, ERR_CONFIG, "%s \"%s\" is not a regular file", setting, path);
        goto out;
    }
    if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        err_setf(e, ERR_CONFIG,
                 "%s \"%s\" is accessible by group or others (mode %04o): "
                 "refusing to use it; run chmod 600 on it",
                 setting, path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_errno(e, ERR_CONFIG, errno, "could not read %s \"%s\"", setting, path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf)
            break;
    }
    if (len > KEY_FILE_MAX || parse_key(buf, len, key) < 0) {
        err_setf(e, ERR_CONFIG,
                 "%s \"%s\" does not hold a key (64 hex digits or 32 raw bytes%s; "
                 "create one with walship keygen)", setting, path,
                 len > 0 && len <= 2 * KEYS_LEN && looks_like_text(buf, len)
                     ? "; too few hex digits: cut short, or still being written? A raw key that is 32 hex "
                       "characters is the same key written as 64 digits by xxd -p -c 32 FILE" : "");
        goto out;
    }
    rc = keys_add(kr, key, current, path, e);
    if (rc == 0 && current) {
        kr->current_st = st;
        kr->have_current_st = 1;
    }
out:
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(key, sizeof key);
    close(fd);
    return rc;
}

int keys_load(const char *key_file, char *const *old_key_files, struct keyring **out, struct err *e)
{
    struct keyring *kr = keys_new();

    if (kr == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory loading keys");
    if (key_file != NULL && load_one(kr, key_file, "key_file", 1, e) < 0)
        goto fail;
    for (char *const *p = old_key_files; p != NULL && *p != NULL; p++)
        if (load_one(kr, *p, "old_key_files entry", 0, e) < 0)
            goto fail;
    *out = kr;
    return 0;
fail:
    keys_free(kr);
    return -1;
}

/* Written beside PATH, fsync'd, then linked into place: link(2) never
 * replaces, so an existing key file is never overwritten, and a keygen
 * killed halfway leaves a temp file, never an empty or short PATH that a
 * second run calls "already exists" and a load "does not hold a key". */
int keys_generate(const char *path, char key_id_hex[KEYS_ID_HEX_LEN + 1], struct err *e)
{
    unsigned char key[KEYS_LEN], id[KEYS_ID_LEN];
    char hex[2 * KEYS_LEN + 2], tmp[PATH_MAX];
    char *dcopy = NULL;
    struct stat st;
    int fd, rc = -1;

    if (lstat(path, &st) == 0)
        return err_setf(e, ERR_EXISTS, "\"%s\" already exists: refusing to overwrite a key file", path);
    (void)sweep_dead_tmps(path);
    if (RAND_bytes(key, sizeof key) != 1)
        return err_setf(e, ERR_INTERNAL, "could not get random bytes for a new key");
    if ((fd = open_tmp_beside(path, tmp, sizeof tmp, e)) < 0) {
        OPENSSL_cleanse(key, sizeof key);
        return err_prefix(e, "could not create key file \"%s\"", path);
    }
    hex_encode(key, KEYS_LEN, hex);
    hex[2 * KEYS_LEN] = '\n';
    hex[2 * KEYS_LEN + 1] = '\0';
    /* umask can only take bits away; make sure the owner can read it back. */
    if (fchmod(fd, 0600) < 0 || write_all(fd, hex, 2 * KEYS_LEN + 1) < 0 || fsync(fd) < 0) {
        err_errno(e, ERR_IO, errno, "could not write key file \"%s\"", tmp);
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        err_errno(e, ERR_IO, errno, "could not write key file \"%s\"", tmp);
        goto fail;
    }
    fd = -1;
    if (link(tmp, path) < 0) {
        if (errno == EEXIST)
            err_setf(e, ERR_EXISTS, "\"%s\" already exists: refusing to overwrite a key file", path);
        else
            err_errno(e, ERR_IO, errno, "could not create key file \"%s\"", path);
        goto fail;
    }
    unlink(tmp);
    tmp[0] = '\0';
    dcopy = strdup(path);
    if (dcopy == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto fail_linked;
    }
    if (fsync_dir(dirname(dcopy), e) < 0 || keys_id(key, id, e) < 0)
        goto fail_linked;
    hex_encode(id, KEYS_ID_LEN, key_id_hex);
    rc = 0;
    goto out;
fail_linked:
    unlink(path);   /* its id was never shown: nobody can be using it */
fail:
    if (fd >= 0)
        close(fd);
    if (tmp[0] != '\0')
        unlink(tmp);
out:
    free(dcopy);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(hex, sizeof hex);
    return rc;
}
