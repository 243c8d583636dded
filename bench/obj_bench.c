/*
 * obj_bench — drive the object encoder and decoder for bench/obj-bench.sh
 * and tests/format/memory.sh.
 *
 *   obj_bench encode [-l LEVEL] [-w WORKERS] [-k KEYFILE] [-c CHUNK_LOG2]  < plain > object
 *   obj_bench decode [-k KEYFILE]                                          < object > plain
 *   obj_bench roundtrip SIZE [-l LEVEL] [-w WORKERS] [-k KEYFILE]
 *       generate SIZE bytes of table-like text in memory, encode, decode and
 *       check the SHA-256 of what came back, without touching the disk
 *   obj_bench gen SIZE > file     write the generated data
 *
 * SIZE takes k/M/G suffixes.  Each run prints one line to stderr:
 *   obj_bench MODE bytes=N out=M seconds=S mbps=R maxrss_kb=K
 * (mbps: plaintext bytes per second, in 10^6).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "obj.h"
#include "sha256tee.h"
#include "stream.h"
#include "util.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Rows of a pgbench-like table dump: compresses about 4:1 at zstd:3. */
static uint64_t rng = 88172645463325252ULL;

static char *put_num(char *q, uint64_t v, int width)
{
    char tmp[24];
    int k = 0;

    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 || k < width);
    while (k > 0)
        *q++ = tmp[--k];
    return q;
}

static void gen(unsigned char *p, size_t n)
{
    static const char *const words[] = { "walship", "pgbench", "accounts", "tellers", "branches",
                                         "history", "abalance", "filler", "COMMIT", "INSERT" };
    size_t i = 0;

    while (i < n) {
        char row[96], *q = row;
        const char *w;

        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        q = put_num(q, rng >> 44, 1);
        *q++ = '\t';
        for (w = words[rng % 10]; *w; w++)
            *q++ = *w;
        *q++ = '\t';
        q = put_num(q, rng >> 20 & 0xffff, 6);
        *q++ = '\t';
        q = put_num(q, (rng >> 8 & 0xff) * 1000, 1);
        *q++ = '\n';
        for (char *r = row; r < q && i < n; r++)
            p[i++] = (unsigned char)*r;
    }
}

/* Pass-through stage that counts bytes. */
struct count_sink {
    struct sink base;
    uint64_t n;
};

static int count_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    ((struct count_sink *)s)->n += len;
    return sink_write(s->next, buf, len, e);
}

static int count_close(struct sink *s, struct err *e)
{
    return sink_close(s->next, e);
}

static void count_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops count_ops = { count_write, count_close, count_free };

static int counter_new(struct sink *next, struct count_sink **out)
{
    struct count_sink *c = calloc(1, sizeof *c);

    if (c == NULL)
        return -1;
    c->base.ops = &count_ops;
    c->base.next = next;
    *out = c;
    return 0;
}

static void die(const struct err *e)
{
    fprintf(stderr, "obj_bench: %s\n", e->msg);
    exit(3);
}

static void report(const char *mode, uint64_t in, uint64_t out, double t)
{
    uint64_t plain = strcmp(mode, "decode") == 0 ? out : in;

    fprintf(stderr, "obj_bench %s bytes=%llu out=%llu seconds=%.3f mbps=%.1f maxrss_kb=%ld\n", mode,
            (unsigned long long)in, (unsigned long long)out, t, t > 0 ? (double)plain / t / 1e6 : 0.0,
            maxrss_kb());
}

int main(int argc, char **argv)
{
    struct obj_opts o;
    struct obj_bind bind = { "bench/object", OBJ_SYSID_ANY, 0, "" };
    struct keyring *kr = NULL;
    const char *keyfile = NULL, *mode;
    struct err e = ERR_INIT;
    uint64_t size = 0;
    int c;

    memset(&o, 0, sizeof o);
    o.level = 3;
    o.bind.key = bind.key;
    o.bind.sysid = 1;
    if (argc < 2) {
        fprintf(stderr, "usage: obj_bench encode|decode|roundtrip SIZE|gen SIZE [-l L] [-w N] [-k KEY] [-c LOG2]\n");
        return 2;
    }
    mode = argv[1];
    optind = 2;
    if (strcmp(mode, "roundtrip") == 0 || strcmp(mode, "gen") == 0) {
        if (argc < 3 || parse_size(argv[2], &size, &e) < 0) {
            fprintf(stderr, "obj_bench: %s needs a SIZE\n", mode);
            return 2;
        }
        optind = 3;
    }
    while ((c = getopt(argc, argv, "l:w:k:c:")) != -1) {
        switch (c) {
        case 'l': if (parse_int(optarg, 0, 19, &o.level, &e) < 0) die(&e); break;
        case 'w': if (parse_int(optarg, 0, 64, &o.workers, &e) < 0) die(&e); break;
        case 'k': keyfile = optarg; break;
        case 'c': {
            int v;
            if (parse_int(optarg, 12, 24, &v, &e) < 0) die(&e);
            o.chunk_log2 = (unsigned)v;
            break;
        }
        default: return 2;
        }
    }
    if (keys_load(keyfile, NULL, &kr, &e) < 0)
        die(&e);
    o.kr = kr;

    if (strcmp(mode, "gen") == 0) {
        unsigned char *buf = malloc(1 << 20);
        for (uint64_t done = 0; done < size;) {
            size_t k = size - done < (1 << 20) ? (size_t)(size - done) : (1 << 20);
            gen(buf, k);
            if (write_all(1, buf, k) < 0)
                return 3;
            done += k;
        }
        free(buf);
    } else if (strcmp(mode, "encode") == 0 || strcmp(mode, "decode") == 0) {
        struct sink *out = fd_sink_new(1), *s, *cnt;
        struct count_sink *cs, *co;
        double t0 = now();

        if (counter_new(out, &co) < 0)
            return 3;
        if (mode[0] == 'e' ? obj_encoder_new(&co->base, &o, &s, &e) < 0
                           : obj_decoder_new(&co->base, kr, OBJ_DEC_ALLOW_UNENCRYPTED, &bind, &s, &e) < 0)
            die(&e);
        if (counter_new(s, &cs) < 0)
            return 3;
        cnt = &cs->base;
        if (sink_pump_fd(cnt, 0, "stdin", 1 << 20, &e) < 0 || sink_close(cnt, &e) < 0)
            die(&e);
        report(mode, cs->n, co->n, now() - t0);
        sink_free(cnt);
    } else if (strcmp(mode, "roundtrip") == 0) {
        unsigned char d_in[SHA256_LEN], d_out[SHA256_LEN];
        struct sink *null = null_sink_new(), *tee_out, *dec, *enc, *tee_in;
        struct count_sink *mid;
        size_t bs = 1 << 20;
        unsigned char *buf = malloc(bs);
        double t0;

        /* generate → sha256 → encode → count → decode → sha256 → discard */
        if (sha256_tee_new(null, d_out, &tee_out, &e) < 0
            || obj_decoder_new(tee_out, kr, OBJ_DEC_ALLOW_UNENCRYPTED, &bind, &dec, &e) < 0)
            die(&e);
        if (counter_new(dec, &mid) < 0)
            return 3;
        if (obj_encoder_new(&mid->base, &o, &enc, &e) < 0 || sha256_tee_new(enc, d_in, &tee_in, &e) < 0)
            die(&e);
        t0 = now();
        for (uint64_t done = 0; done < size;) {
            size_t k = size - done < bs ? (size_t)(size - done) : bs;
            gen(buf, k);
            if (sink_write(tee_in, buf, k, &e) < 0)
                die(&e);
            done += k;
        }
        if (sink_close(tee_in, &e) < 0)
            die(&e);
        if (memcmp(d_in, d_out, SHA256_LEN) != 0 || null_sink_count(null) != size) {
            fprintf(stderr, "obj_bench: round trip mismatch\n");
            return 3;
        }
        report(mode, size, mid->n, now() - t0);
        sink_free(tee_in);
        free(buf);
    } else {
        fprintf(stderr, "obj_bench: unknown mode %s\n", mode);
        return 2;
    }
    keys_free(kr);
    return 0;
}
