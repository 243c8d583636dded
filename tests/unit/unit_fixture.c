/* unit_fixture — shared helpers of the unit tests (unit_fixture.h). */
#include "unit_fixture.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest.h"
#include "obj.h"
#include "stor.h"
#include "tap.h"
#include "wal.h"

int tf_region_open(char *root, const struct config *conf, struct repo **out)
{
    struct region_conf rc;
    struct repo_ident id;
    struct err e = ERR_INIT;
    char url[PATH_MAX], p[PATH_MAX];

    *out = NULL;
    if (mkdtemp(root) == NULL) {
        diag("mkdtemp %s failed", root);
        return -1;
    }
    memset(&rc, 0, sizeof rc);
    snprintf(url, sizeof url, "file://%s/region", root);
    snprintf(p, sizeof p, "%s/region", root);
    mkdir(p, 0700);
    rc.name = "t";
    rc.url = url;
    repo_ident_init(&id, TF_SYSID, 15, 16u << 20);
    if (repo_open(&rc, conf, NULL, NULL, 0, out, &e) < 0 || repo_ident_ensure(*out, &id, &e) < 0) {
        diag("repo: %s", e.msg);
        return -1;
    }
    return 0;
}

void tf_put(struct repo *r, const char *key, const void *buf, size_t len)
{
    struct obj_opts oo;
    struct sink *up = NULL, *enc = NULL;
    struct err e = ERR_INIT;

    repo_obj_opts(r, key, 0, &oo);
    if (stor_put(r->st, key, &up, &e) < 0 || obj_encoder_new(up, &oo, &enc, &e) < 0 ||
        sink_write(enc, buf, len, &e) < 0 || sink_close(enc, &e) < 0)
        diag("put %s: %s", key, e.msg);
    sink_free(enc ? enc : up);
}

void tf_put_text(struct repo *r, const char *key, const char *text)
{
    tf_put(r, key, text, strlen(text));
}

void tf_put_wal(struct repo *r, unsigned tli, unsigned log, unsigned seg)
{
    char key[64];

    snprintf(key, sizeof key, "wal/%08X%08X%08X", tli, log, seg);
    tf_put_text(r, key, "segment");
}

struct manifest *tf_manifest_new(const char *name)
{
    struct manifest *m = man_new();

    if (m == NULL) {
        diag("out of memory for manifest %s", name);
        exit(1);
    }
    m->format = MAN_FORMAT;
    m->name = strdup(name);
    m->walship_version = strdup("test");
    m->start_lsn = ((uint64_t)1 << 32) | 0x28;
    m->stop_lsn = ((uint64_t)1 << 32) | 0x1000138;
    m->timeline = m->stop_timeline = 1;
    snprintf(m->start_wal, sizeof m->start_wal, "000000010000000100000000");
    snprintf(m->stop_wal, sizeof m->stop_wal, "000000010000000100000001");
    m->system_identifier = strdup("7311234567890123456");
    m->wal_segment_size = 16u << 20;
    return m;
}

unsigned char *tf_segment(const char *name, uint64_t sysid, uint32_t seg_size, unsigned seed)
{
    unsigned char *b = malloc(seg_size);
    struct wal_name w;
    uint16_t magic = 0xD110, info = 2;  /* PostgreSQL 15's page magic; XLP_LONG_HEADER */
    uint32_t blck = 8192;
    uint64_t addr;
    size_t i;

    if (b == NULL) {
        diag("out of memory for segment %s", name);
        exit(1);
    }
    if (wal_parse(name, &w, &(struct err)ERR_INIT) < 0)
        diag("tf_segment: %s is not a WAL file name", name);
    addr = wal_segno(&w, seg_size) * seg_size;
    for (i = 0; i < seg_size; i++)
        b[i] = (unsigned char)(i * 13 + seed + (i >> 9));
    memset(b, 0, 40);
    memcpy(b, &magic, 2);
    memcpy(b + 2, &info, 2);
    memcpy(b + 4, &w.tli, 4);
    memcpy(b + 8, &addr, 8);
    memcpy(b + 24, &sysid, 8);
    memcpy(b + 32, &seg_size, 4);
    memcpy(b + 36, &blck, 4);
    return b;
}

void tf_rmrf(const char *dir)
{
    char cmd[PATH_MAX + 16];

    if (getenv("KEEP") != NULL)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
}
