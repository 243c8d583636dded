/*
 * gen_corpus DIR — write the seed corpus for obj_fuzz: valid objects under
 * the fixed test key (see obj_fuzz.c), in every mode, and broken ones
 * (truncated, flipped, reordered, unknown key, bad magic and version).
 * Built and run by build-fuzzer.sh --corpus; the output is committed in
 * tests/fuzz/corpus/obj/.  Data keys are random, so each run differs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "keys.h"
#include "obj.h"
#include "stream.h"
#include "util.h"

static const char *dir;

static void put(const char *name, const unsigned char *p, size_t n)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");

    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    free(path);
}

#define FUZZ_KEY "wal/000000010000000000000001"
/* header length of an object bound to FUZZ_KEY */
#define OBJ_HEADER_LEN (OBJ_HEADER_FIXED_LEN + sizeof FUZZ_KEY - 1 + 8)

static unsigned version = 0;

static unsigned char *encode(const unsigned char *in, size_t n, int level, unsigned chunk_log2,
                             const struct keyring *kr, size_t *len)
{
    struct obj_opts o = { level, 0, n, chunk_log2, kr, { FUZZ_KEY, 7311113411111111111ULL, 0, "" }, version };
    struct sink *mem = mem_sink_new(0), *s;
    struct err e = ERR_INIT;

    if (obj_encoder_new(mem, &o, &s, &e) < 0 || sink_write(s, in, n, &e) < 0 || sink_close(s, &e) < 0) {
        fprintf(stderr, "encode: %s\n", e.msg);
        exit(1);
    }
    unsigned char *out = mem_sink_take(mem, len);
    sink_free(s);
    return out;
}

int main(int argc, char **argv)
{
    unsigned char k[KEYS_LEN], text[10000], *o, *b;
    struct keyring *cur = keys_new(), *old = keys_new(), *other = keys_new();
    struct err e = ERR_INIT;
    size_t len, frame = AEAD_CHUNK_HDR_LEN + 4096 + AEAD_TAG_LEN;

    if (argc != 2)
        return 2;
    dir = argv[1];
    for (int i = 0; i < KEYS_LEN; i++)
        k[i] = (unsigned char)i;
    keys_add(cur, k, 1, NULL, &e);
    for (int i = 0; i < KEYS_LEN; i++)
        k[i] = (unsigned char)(0x20 + i);
    keys_add(old, k, 1, NULL, &e);
    for (int i = 0; i < KEYS_LEN; i++)
        k[i] = (unsigned char)(0x40 + i);
    keys_add(other, k, 1, NULL, &e);
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (unsigned char)("0123456789 walship WAL segment\n"[(i * 7 + i / 13) % 31]);

    o = encode(text, 0, 0, 12, cur, &len);          put("enc-empty", o, len); free(o);
    o = encode(text, 0, 3, 12, NULL, &len);         put("plain-zstd-empty", o, len); free(o);
    o = encode(text, 1, 0, 12, NULL, &len);         put("plain-1", o, len); free(o);
    o = encode(text, 100, 3, 12, cur, &len);        put("enc-zstd-100", o, len); free(o);
    o = encode(text, 100, 0, 12, old, &len);        put("old-key-100", o, len); free(o);
    o = encode(text, 100, 0, 12, other, &len);      put("unknown-key-100", o, len); free(o);
    o = encode(text, 4096, 0, 12, NULL, &len);      put("plain-chunk", o, len); free(o);
    o = encode(text, 9000, 1, 12, cur, &len);       put("enc-zstd-9000", o, len); free(o);
    o = encode(text, 9000, 0, 12, cur, &len);       put("enc-3-chunks", o, len);
    b = malloc(len + 1);
    put("trunc-header", o, 40);
    put("trunc-boundary", o, OBJ_HEADER_LEN + frame);
    put("trunc-mid", o, OBJ_HEADER_LEN + frame + 100);
    memcpy(b, o, len);
    b[OBJ_HEADER_LEN + 50] ^= 1;                    put("flip-chunk0", b, len);
    memcpy(b, o, len);
    memcpy(b + OBJ_HEADER_LEN, o + OBJ_HEADER_LEN + frame, frame);
    memcpy(b + OBJ_HEADER_LEN + frame, o + OBJ_HEADER_LEN, frame);
    put("swap-0-1", b, len);
    memcpy(b, o, len);
    b[4] = 9;                                       put("version-9", b, len);
    memcpy(b, o, len);
    b[len] = 'x';                                   put("trailing", b, len + 1);
    free(b);
    free(o);
    o = encode(text, 9000, 0, 12, NULL, &len);      put("plain-3-chunks", o, len); free(o);
    o = encode(text, 9000, 0, 24, NULL, &len);      put("plain-big-chunk-size", o, len); free(o);
    put("bad-magic", (const unsigned char *)"PK\003\004 this is a zip, not ours", 30);
    /* walship 0.1.0's format, read by `upgrade` only */
    version = OBJ_VERSION_LEGACY;
    o = encode(text, 9000, 1, 12, cur, &len);       put("v1-enc-zstd-9000", o, len); free(o);
    o = encode(text, 100, 0, 12, NULL, &len);       put("v1-plain-100", o, len); free(o);
    keys_free(cur);
    keys_free(old);
    keys_free(other);
    return 0;
}
