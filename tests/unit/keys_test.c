/*
 * keys_test — key files: generation, loading, permissions, rotation.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "keys.h"
#include "tap.h"
#include "util.h"

static char dir[64];

static char *path(const char *name)
{
    static char buf[4][128];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void put_file(const char *p, const void *data, size_t len, mode_t mode)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || write_all(fd, data, len) < 0)
        diag("cannot write %s", p);
    if (fd >= 0)
        close(fd);
    chmod(p, mode);
}

int main(void)
{
    struct err e = ERR_INIT;
    struct keyring *kr = NULL;
    char id[KEYS_ID_HEX_LEN + 1] = "", id2[KEYS_ID_HEX_LEN + 1] = "";
    struct stat st;
    unsigned char *content = NULL, raw[KEYS_LEN];
    size_t len = 0;
    char *old[3];

    strlcopy(dir, "/tmp/walship-keys-XXXXXX", sizeof dir);
    if (mkdtemp(dir) == NULL)
        return 1;
    umask(022);

    /* keygen */
    ok(keys_generate(path("k1"), id, &e) == 0, "generate a key");
    is_int(strlen(id), 32, "key id is 32 hex digits");
    ok(stat(path("k1"), &st) == 0 && (st.st_mode & 07777) == 0600, "key file has mode 0600");
    ok(read_file_all(path("k1"), 1000, &content, &len, &e) == 0 && len == 65 && content[64] == '\n',
       "key file holds 64 hex digits and a newline");
    free(content);
    ok(keys_generate(path("k1"), id2, &e) < 0 && e.code == ERR_EXISTS
       && strstr(e.msg, "refusing to overwrite") != NULL, "generate refuses an existing file: %s", e.msg);
    ok(read_file_all(path("k1"), 1000, &content, &len, &e) == 0 && len == 65, "... which is unchanged");
    free(content);
    ok(keys_generate(path("no/such/dir/k"), id2, &e) < 0 && e.code == ERR_IO, "generate into a missing "
       "directory fails: %s", e.msg);
    /* a keygen killed halfway leaves its temp file, never an empty key file */
    {
        char tmp[512];
        int fd;

        snprintf(tmp, sizeof tmp, "%s.walship-tmp.2147483646", path("k0"));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd >= 0)
            close(fd);
        ok(keys_generate(path("k0"), id2, &e) == 0, "generate beside a killed keygen's empty temp file");
        ok(access(tmp, F_OK) != 0, "... which is swept");
        ok(read_file_all(path("k0"), 1000, &content, &len, &e) == 0 && len == 65, "... and the key file is whole");
        free(content);
        snprintf(tmp, sizeof tmp, "%s.walship-tmp.%d", path("k0"), (int)getpid());
        ok(access(tmp, F_OK) != 0, "... and no temp file of this run is left");
        ok(symlink("nowhere", path("klink")) == 0 && keys_generate(path("klink"), id2, &e) < 0 &&
           e.code == ERR_EXISTS && access(path("nowhere"), F_OK) != 0,
           "a dangling symbolic link at the path is refused, nothing made where it points");
    }

    /* load */
    ok(keys_load(path("k1"), NULL, &kr, &e) == 0, "load the key");
    ok(keys_current(kr) != NULL && strcmp(keys_current(kr)->id_hex, id) == 0,
       "loaded key has the id keygen printed");
    is_int(keys_count(kr), 1, "one key");
    keys_free(kr);
    kr = NULL;

    chmod(path("k1"), 0640);
    ok(keys_load(path("k1"), NULL, &kr, &e) < 0 && e.code == ERR_CONFIG
       && strstr(e.msg, "accessible by group or others (mode 0640)") != NULL,
       "a group-readable key file is refused: %s", e.msg);
    chmod(path("k1"), 0604);
    ok(keys_load(path("k1"), NULL, &kr, &e) < 0 && e.code == ERR_CONFIG, "a world-readable key file is refused");
    chmod(path("k1"), 0400);
    ok(keys_load(path("k1"), NULL, &kr, &e) == 0, "mode 0400 is fine");
    keys_free(kr);
    kr = NULL;

    ok(keys_load(path("missing"), NULL, &kr, &e) < 0 && e.code == ERR_CONFIG
       && strstr(e.msg, "key_file") != NULL, "a missing key file: %s", e.msg);
    put_file(path("bad"), "hello\n", 6, 0600);
    ok(keys_load(path("bad"), NULL, &kr, &e) < 0 && e.code == ERR_CONFIG
       && strstr(e.msg, "does not hold a key") != NULL, "a file that is no key: %s", e.msg);
    put_file(path("badhex"), "zz23456789012345678901234567890123456789012345678901234567890123\n", 65, 0600);
    ok(keys_load(path("badhex"), NULL, &kr, &e) < 0 && e.code == ERR_CONFIG, "bad hex digits are refused");
    ok(keys_load(dir, NULL, &kr, &e) < 0 && e.code == ERR_CONFIG, "a directory is refused: %s", e.msg);
    /* 32 bytes of hex digits are a hex key cut short, not a raw key
     * (adversarial pass AD); a FIFO is refused without waiting for a writer */
    put_file(path("cut"), "0123456789abcdef0123456789abcdef", 32, 0600);
    ok(keys_load(path("cut"), NULL, &kr, &e) < 0 && e.code == ERR_CONFIG && strstr(e.msg, "cut short") != NULL,
       "32 hex digits are refused as a key cut short: %s", e.msg);
    put_file(path("cut"), "0123456789abcdef0123456789abcde\n", 32, 0600);
    ok(keys_load(path("cut"), NULL, &kr, &e) < 0 && e.code == ERR_CONFIG, "31 hex digits and a newline too");
    ok(mkfifo(path("fifo"), 0600) == 0 && keys_load(path("fifo"), NULL, &kr, &e) < 0 && e.code == ERR_CONFIG
       && strstr(e.msg, "not a regular file") != NULL, "a FIFO is refused at once: %s", e.msg);

    /* Raw 32 bytes and hex of the same key have the same id. */
    for (int i = 0; i < KEYS_LEN; i++)
        raw[i] = (unsigned char)(i * 7 + 3);
    put_file(path("raw"), raw, sizeof raw, 0600);
    {
        char hex[2 * KEYS_LEN + 4];
        hex_encode(raw, KEYS_LEN, hex + 2);
        hex[0] = ' ';
        hex[1] = '\n';
        memcpy(hex + 2 + 2 * KEYS_LEN, "\r\n", 2);
        put_file(path("hex"), hex, sizeof hex, 0600);
    }
    {
        struct keyring *a = NULL, *b = NULL;
        ok(keys_load(path("raw"), NULL, &a, &e) == 0 && keys_load(path("hex"), NULL, &b, &e) == 0
           && strcmp(keys_current(a)->id_hex, keys_current(b)->id_hex) == 0
           && memcmp(keys_current(a)->key, raw, KEYS_LEN) == 0,
           "a raw key file and its hex form load the same key");
        keys_free(a);
        keys_free(b);
    }

    /* Rotation: key_file plus old_key_files. */
    ok(keys_generate(path("k2"), id2, &e) == 0, "generate a second key");
    old[0] = path("k1");
    old[1] = path("raw");
    old[2] = NULL;
    ok(keys_load(path("k2"), old, &kr, &e) == 0, "load key_file and two old_key_files");
    is_int(keys_count(kr), 3, "three keys");
    is_str(keys_current(kr)->id_hex, id2, "the current key is key_file");
    {
        unsigned char bin[KEYS_ID_LEN];
        for (int i = 0; i < KEYS_ID_LEN; i++) {
            unsigned hi = (unsigned)(id[2 * i] <= '9' ? id[2 * i] - '0' : id[2 * i] - 'a' + 10);
            unsigned lo = (unsigned)(id[2 * i + 1] <= '9' ? id[2 * i + 1] - '0' : id[2 * i + 1] - 'a' + 10);
            bin[i] = (unsigned char)(hi << 4 | lo);
        }
        ok(keys_find(kr, bin) != NULL && strcmp(keys_find(kr, bin)->origin, path("k1")) == 0,
           "an old key is found by its id, and names its file");
        bin[0] ^= 1;
        ok(keys_find(kr, bin) == NULL, "an unknown id is not found");
    }
    keys_free(kr);
    kr = NULL;
    old[0] = path("missing");
    old[1] = NULL;
    ok(keys_load(path("k2"), old, &kr, &e) < 0 && strstr(e.msg, "old_key_files") != NULL,
       "a missing old key file is named as such: %s", e.msg);
    ok(keys_load(NULL, NULL, &kr, &e) == 0 && keys_current(kr) == NULL && keys_count(kr) == 0,
       "no key_file: an empty keyring, nothing encrypted");
    keys_free(kr);

    /* Many keys (growth of the ring). */
    kr = keys_new();
    for (int i = 0; i < 20; i++) {
        raw[0] = (unsigned char)i;
        keys_add(kr, raw, i == 5, NULL, &e);
    }
    is_int(keys_count(kr), 20, "twenty keys");
    raw[0] = 5;
    {
        unsigned char kid[KEYS_ID_LEN];
        keys_id(raw, kid, &e);
        ok(keys_current(kr) == keys_find(kr, kid), "current key survives growth");
    }
    keys_free(kr);

    /* OpenSSL failing to hash is an error, not a silent garbage id: a default
     * property query that no provider satisfies makes every fetch fail. */
    {
        unsigned char kid[KEYS_ID_LEN];

        ok(EVP_set_default_properties(NULL, "provider=walship-no-such-provider") == 1,
           "default properties that no provider satisfies");
        err_clear(&e);
        ok(keys_id(raw, kid, &e) < 0 && e.code == ERR_INTERNAL && strstr(e.msg, "key id") != NULL,
           "a failing SHA-256 fails keys_id: %s", e.msg);
        kr = keys_new();
        err_clear(&e);
        ok(keys_add(kr, raw, 1, NULL, &e) < 0 && e.code == ERR_INTERNAL && keys_count(kr) == 0
               && keys_current(kr) == NULL,
           "and keys_add, adding nothing");
        keys_free(kr);
        ok(EVP_set_default_properties(NULL, "") == 1, "default properties restored");
        err_clear(&e);
        ok(keys_id(raw, kid, &e) == 0, "keys_id works again");
    }

    for (const char *const *n = (const char *const[]){ "k1", "k2", "bad", "badhex", "raw", "hex", "cut", "fifo", NULL };
         *n; n++)
        unlink(path(*n));
    rmdir(dir);
    return done_testing();
}
