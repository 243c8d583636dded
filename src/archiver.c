#include "archiver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "multi.h"
#include "obj.h"
#include "sha256tee.h"
#include "util.h"

int archiver_open(const struct config *conf, const struct keyring *kr, struct spool *sp, struct archiver *a,
                  struct err *e)
{
    int i;

    memset(a, 0, sizeof *a);
    a->conf = conf;
    a->kr = kr;
    a->sp = sp;
    if (conf->nregions > ARCHIVE_MAX_REGIONS)
        return err_setf(e, ERR_CONFIG, "at most %d regions are supported", ARCHIVE_MAX_REGIONS);
    for (i = 0; i < conf->nregions; i++) {
        if (conf->regions[i].mode != REGION_SYNC)
            continue;
        if (stor_open(&conf->regions[i], conf, &a->st[i], e) < 0) {
            archiver_close(a);
            return -1;
        }
    }
    return 0;
}

void archiver_close(struct archiver *a)
{
    int i;

    for (i = 0; i < ARCHIVE_MAX_REGIONS; i++) {
        stor_free(a->st[i]);
        a->st[i] = NULL;
    }
}

int archive_hash_file(const char *path, const struct keyring *decode_kr, char hex[65], uint64_t *size,
                      struct err *e)
{
    unsigned char digest[SHA256_LEN];
    struct sink *ns = null_sink_new(), *tee = NULL, *head;
    int fd, rc = -1;

    if (ns == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (sha256_tee_new(ns, digest, &tee, e) < 0) {
        sink_free(ns);
        return -1;
    }
    head = tee;
    /* a spooled object: hash what it decodes to (it may predate key_file) */
    if (decode_kr != NULL && obj_decoder_new(tee, decode_kr, OBJ_DEC_ALLOW_UNENCRYPTED, &head, e) < 0) {
        sink_free(tee);
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not open \"%s\"", path);
        goto out;
    }
    if (sink_pump_fd(head, fd, path, 0, e) < 0 || sink_close(head, e) < 0)
        goto out;
    hex_encode(digest, SHA256_LEN, hex);
    if (size != NULL)
        *size = null_sink_count(ns);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    sink_free(head);
    return rc;
}

int archive_hash_remote(struct stor *s, const char *key, const struct keyring *kr, char hex[65], struct err *e)
{
    unsigned char digest[SHA256_LEN];
    struct sink *ns = null_sink_new(), *tee = NULL;

    if (ns == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (sha256_tee_new(ns, digest, &tee, e) < 0) {
        sink_free(ns);
        return -1;
    }
    if (archive_fetch_decoded(s, key, kr, tee, e) < 0)
        return -1;
    hex_encode(digest, SHA256_LEN, hex);
    return 0;
}

int archive_fetch_decoded(struct stor *s, const char *key, const struct keyring *kr, struct sink *next,
                          struct err *e)
{
    struct sink *dec = NULL;
    int rc = -1;

    if (obj_decoder_new(next, kr, 0, &dec, e) < 0) {
        sink_free(next);
        return -1;
    }
    if (stor_get(s, key, dec, e) < 0)
        goto out;
    if (sink_close(dec, e) < 0) {
        err_prefix(e, "region %s: object \"%s\"", s->region, key);
        goto out;
    }
    rc = 0;
out:
    sink_free(dec);
    return rc;
}

int archive_fetch_to_fd(struct stor *s, const char *key, const struct keyring *kr, int fd, struct err *e)
{
    struct sink *out = fd_sink_new(fd);
    int rc;

    if (out == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (kr != NULL)
        return archive_fetch_decoded(s, key, kr, out, e);
    rc = stor_get(s, key, out, e) < 0 || sink_close(out, e) < 0 ? -1 : 0;
    sink_free(out);
    return rc;
}

int archive_fetch_to_file(struct stor *s, const char *key, const struct keyring *kr, const char *dest,
                          struct err *e)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    char *slash;
    int fd, rc = -1;

    if (snprintf(tmp, sizeof tmp, "%s.walship-tmp.%d", dest, (int)getpid()) >= (int)sizeof tmp)
        return err_setf(e, ERR_USAGE, "path too long: \"%s\"", dest);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create \"%s\"", tmp);
    if (archive_fetch_to_fd(s, key, kr, fd, e) < 0)
        goto out;
    if (fsync(fd) < 0) {
        err_errno(e, ERR_IO, errno, "could not fsync \"%s\"", tmp);
        goto out;
    }
    if (rename(tmp, dest) < 0) {
        err_errno(e, ERR_IO, errno, "could not rename \"%s\" to \"%s\"", tmp, dest);
        goto out;
    }
    strlcopy(dir, dest, sizeof dir);
    slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        (void)fsync_dir(dir, &(struct err)ERR_INIT);
    } else if (slash == NULL) {
        (void)fsync_dir(".", &(struct err)ERR_INIT);
    }
    rc = 0;
out:
    close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* The region already has `key`: is it the same file? */
static int same_content(struct archiver *a, struct stor *s, const char *key, const char *local_hex,
                        struct err *e)
{
    char hex[65];

    if (archive_hash_remote(s, key, a->kr, hex, e) < 0)
        return err_prefix(e, "could not compare with the archived copy");
    if (strcmp(hex, local_hex) != 0)
        return err_setf(e, ERR_EXISTS,
                        "region %s already has \"%s\" with different content (sha256 %.16s… archived, %.16s… "
                        "here): refusing to overwrite; are two primaries archiving to one prefix?",
                        s->region, key, hex, local_hex);
    return 0;
}

static void report_fail(struct archive_report *rep, const char *region)
{
    size_t used = strlen(rep->failed_regions);

    snprintf(rep->failed_regions + used, sizeof rep->failed_regions - used, "%s%s", rep->failed ? ", " : "",
             region);
    rep->failed++;
}

int archive_push_file(struct archiver *a, const char *path, const char *name, struct archive_report *rep,
                      struct err *e)
{
    const struct config *c = a->conf;
    struct sink *branches[ARCHIVE_MAX_REGIONS + 1];
    struct multi_result results[ARCHIVE_MAX_REGIONS + 1];
    int branch_region[ARCHIVE_MAX_REGIONS + 1];
    char *async_names[ARCHIVE_MAX_REGIONS];
    char key[128], local_hex[65] = "";
    unsigned char digest[SHA256_LEN];
    struct sink *tee = NULL, *enc = NULL, *hash = NULL;
    struct obj_opts oo;
    struct err first = ERR_INIT;
    struct stat st;
    size_t nb = 0, nasync = 0, i;
    int fd = -1, rc = -1, r;

    memset(rep, 0, sizeof *rep);
    snprintf(key, sizeof key, "wal/%s", name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not open \"%s\"", path);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_setf(e, ERR_IO, "\"%s\" is not a regular file", path);
    }
    rep->size = (uint64_t)st.st_size;

    /* Which sync regions lack the file? */
    for (r = 0; r < c->nregions; r++) {
        struct stor_stat ss;
        struct err he = ERR_INIT;

        if (c->regions[r].mode == REGION_ASYNC) {
            if (a->sp != NULL && !spool_is_queued(a->sp, c->regions[r].name, name))
                async_names[nasync++] = c->regions[r].name;
            else if (a->sp != NULL)
                rep->spooled++;
            continue;
        }
        if (stor_head(a->st[r], key, &ss, &he) == 0) {
            if (local_hex[0] == '\0' && archive_hash_file(path, NULL, local_hex, &rep->size, &he) < 0) {
                err_prefix(&he, "region %s", c->regions[r].name);
                goto region_failed;
            }
            if (same_content(a, a->st[r], key, local_hex, &he) < 0)
                goto region_failed;
            log_debug("region %s already has %s with the same content", c->regions[r].name, name);
            rep->already++;
            continue;
        }
        if (he.code == ERR_NOTFOUND) {
            branch_region[nb] = r;
            results[nb].name = c->regions[r].name;
            if (stor_put(a->st[r], key, &branches[nb], &he) == 0) {
                nb++;
                continue;
            }
        }
region_failed:
        log_warning("%s", he.msg);
        if (first.code == ERR_OK || he.code == ERR_EXISTS)
            first = he;
        report_fail(rep, c->regions[r].name);
    }
    if (first.code == ERR_EXISTS) {
        /* Another file of this name is archived: upload it nowhere, spool
         * nothing, so no region ends up with a different history. */
        for (i = 0; i < nb; i++)
            sink_free(branches[i]);
        nb = 0;
        *e = first;
        goto out;
    }
    if (nasync > 0) {
        struct err se = ERR_INIT;

        branch_region[nb] = -1;
        results[nb].name = "the spool";
        if (spool_put(a->sp, name, async_names, nasync, rep->size + 65536, &branches[nb], &se) == 0) {
            nb++;
        } else {
            log_warning("%s", se.msg);
            if (first.code == ERR_OK)
                first = se;
            for (i = 0; i < nasync; i++)
                report_fail(rep, async_names[i]);
        }
    }
    if (nb == 0)
        goto done;

    if (multi_tee_new(branches, results, nb, &tee, e) < 0) {
        for (i = 0; i < nb; i++)
            sink_free(branches[i]);
        goto out;
    }
    memset(&oo, 0, sizeof oo);
    oo.level = c->compression_level;
    oo.workers = a->zstd_workers;
    oo.size_hint = rep->size;
    oo.kr = a->kr;
    if (obj_encoder_new(tee, &oo, &enc, e) < 0)
        goto out;
    tee = NULL;
    if (sha256_tee_new(enc, digest, &hash, e) < 0)
        goto out;
    enc = NULL;
    if (sink_pump_fd(hash, fd, path, 0, e) < 0) {
        /* every destination failed, or reading failed */
        goto out;
    }
    if (sink_close(hash, e) < 0) {
        /* per-branch results tell which; others committed */
        err_clear(e);
    }
    hex_encode(digest, SHA256_LEN, rep->sha256_hex);
    if (local_hex[0] != '\0' && strcmp(local_hex, rep->sha256_hex) != 0) {
        err_setf(e, ERR_IO, "\"%s\" changed while it was being archived", path);
        goto out;
    }
    for (i = 0; i < nb; i++) {
        if (results[i].failed) {
            log_warning("%s", results[i].err.msg);
            if (first.code == ERR_OK)
                first = results[i].err;
            if (branch_region[i] < 0) {
                size_t k;
                for (k = 0; k < nasync; k++)
                    report_fail(rep, async_names[k]);
            } else {
                report_fail(rep, c->regions[branch_region[i]].name);
            }
        } else if (branch_region[i] < 0) {
            rep->spooled += (int)nasync;
        } else {
            rep->uploaded++;
        }
    }
done:
    if (rep->sha256_hex[0] == '\0' && local_hex[0] != '\0')
        memcpy(rep->sha256_hex, local_hex, sizeof local_hex);
    if (rep->failed > 0) {
        if (rep->failed == 1)
            *e = first;
        else
            err_setf(e, first.code, "\"%s\" was not archived in %d regions (%s); first: %s", name, rep->failed,
                     rep->failed_regions, first.msg);
        goto out;
    }
    rc = 0;
out:
    sink_free(hash);
    sink_free(enc);
    sink_free(tee);
    if (fd >= 0)
        close(fd);
    return rc;
}
