/*
 * obj_fuzz — libFuzzer target for the object decoder.
 *
 * The input is an object, fed to a decoder that holds the fixed test key
 * (the same one tests/fuzz/gen_corpus.c encrypts the seed corpus with) and
 * an old key, in pieces whose sizes come from the input's last byte, so the
 * decoder's state machines are exercised across every split.  Whatever the
 * input, the decoder must not crash or leak, must not release plaintext
 * after failing, and a successful decode must re-encode and decode to the
 * same plaintext.
 *
 * Built with clang -fsanitize=fuzzer,address by build-fuzzer.sh; replayed
 * over the corpus under gcc by replay.c in `make check`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "obj.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fixed test key: bytes 0x00..0x1f.  Its old companion: 0x20..0x3f. */
static struct keyring *test_keyring(void)
{
    static struct keyring *kr;

    if (kr == NULL) {
        unsigned char k[KEYS_LEN];
        struct err e = ERR_INIT;

        kr = keys_new();
        if (kr == NULL)
            abort();
        for (int i = 0; i < KEYS_LEN; i++)
            k[i] = (unsigned char)i;
        keys_add(kr, k, 1, "test key", &e);
        for (int i = 0; i < KEYS_LEN; i++)
            k[i] = (unsigned char)(0x20 + i);
        keys_add(kr, k, 0, "old test key", &e);
    }
    return kr;
}

#define FUZZ_KEY "wal/000000010000000000000001"

static int decode(const uint8_t *data, size_t size, size_t piece, unsigned flags,
                  unsigned char **out, size_t *outlen)
{
    struct sink *mem = mem_sink_new((size_t)64 << 20), *dec;
    /* the corpus is bound to FUZZ_KEY; any cluster */
    struct obj_bind bind = { FUZZ_KEY, OBJ_SYSID_ANY, 0, "" };
    struct err e = ERR_INIT;
    size_t off = 0;
    int rc = -1;

    if (mem == NULL || obj_decoder_new(mem, test_keyring(), flags, &bind, &dec, &e) < 0) {
        sink_free(mem);
        return -1;
    }
    while (off < size) {
        size_t k = size - off < piece ? size - off : piece;
        if (sink_write(dec, data + off, k, &e) < 0)
            goto out;
        off += k;
    }
    if (sink_close(dec, &e) < 0)
        goto out;
    rc = 0;
out:
    /* An error always names itself. */
    if (rc < 0 && (e.code == ERR_OK || e.msg[0] == '\0'))
        abort();
    *out = mem_sink_take(mem, outlen);
    sink_free(dec);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[] = { SIZE_MAX, 1, 7, 16, 72, 4096, 65536, 100000 };
    size_t piece = size > 0 ? pieces[data[size - 1] % 8] : SIZE_MAX;
    unsigned flags = (size > 1 && (data[size - 2] & 1) ? OBJ_DEC_ALLOW_UNENCRYPTED : 0) |
                     (size > 1 && (data[size - 2] & 2) ? OBJ_DEC_ALLOW_LEGACY : 0);
    unsigned char *out = NULL, *again = NULL, *enc = NULL;
    size_t outlen = 0, againlen = 0, enclen = 0;

    if (decode(data, size, piece, flags, &out, &outlen) == 0) {
        /* Round trip what decoded: encode with the test key, decode again. */
        struct obj_opts o = { 1, 0, outlen, 12, test_keyring(), { FUZZ_KEY, 42, 0, "" }, 0 };
        struct sink *mem = mem_sink_new(0), *s;
        struct err e = ERR_INIT;

        if (mem == NULL || obj_encoder_new(mem, &o, &s, &e) < 0)
            abort();
        if (sink_write(s, out, outlen, &e) < 0 || sink_close(s, &e) < 0)
            abort();
        enc = mem_sink_take(mem, &enclen);
        sink_free(s);
        if (decode(enc, enclen, 4096, 0, &again, &againlen) < 0 || againlen != outlen
            || (outlen > 0 && memcmp(out, again, outlen) != 0))
            abort();
    }
    free(out);
    free(again);
    free(enc);
    return 0;
}
