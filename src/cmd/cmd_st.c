/*
 * cmd_st — `walship st`: look inside a region's storage.
 *
 * check: the preflight an operator runs after editing the configuration;
 * ls/get/put/rm: hands-on access for debugging and repairs.  Keys are
 * relative to the region's prefix.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "note.h"
#include "obj.h"
#include "repo.h"
#include "stor.h"
#include "stream.h"
#include "util.h"

/* ---- check ---- */

struct check_times {
    uint64_t put_ms, get_ms, list_ms, rm_ms;
};

struct probe_find {
    const char *key;
    int found;
};

static int probe_seen(const struct stor_entry *ent, void *arg)
{
    struct probe_find *pf = arg;

    if (strcmp(ent->key, pf->key) == 0) {
        pf->found = 1;
        return 1;
    }
    return 0;
}

static int check_region(struct cmd_ctx *ctx, const struct region_conf *reg, struct check_times *t,
                        struct err *e)
{
    struct stor *s = NULL;
    struct sink *back = NULL;
    unsigned char payload[4096];
    char key[256], host[64] = "host";
    struct probe_find pf;
    const unsigned char *got;
    size_t gotlen, i;
    uint64_t t0;
    int rc = -1, written = 0;

    if (stor_open(reg, ctx->conf, &note_log_sink, &s, e) < 0)
        return -1;
    if (s->creds != NULL) {
        printf("region %s: credentials: %s\n", reg->name, s->creds);
        fflush(stdout);
    }
    gethostname(host, sizeof host - 1);
    srandom((unsigned)(now_ms() ^ (uint64_t)getpid()));
    for (i = 0; i < sizeof payload; i++)
        payload[i] = (unsigned char)(random() & 0xff);
    snprintf(key, sizeof key, "walship-probe/%s-%d-%lx", host, (int)getpid(), (unsigned long)random());

    t0 = now_ms();
    if (stor_put_buf(s, key, payload, sizeof payload, e) < 0) {
        err_prefix(e, "could not write a probe object");
        goto out;
    }
    written = 1;
    t->put_ms = now_ms() - t0;

    t0 = now_ms();
    back = mem_sink_new(sizeof payload + 1);
    if (back == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (stor_get(s, key, back, e) < 0) {
        err_prefix(e, "could not read the probe object back");
        goto out;
    }
    got = mem_sink_data(back, &gotlen);
    if (gotlen != sizeof payload || memcmp(got, payload, sizeof payload) != 0) {
        err_setf(e, ERR_CORRUPT, "region %s: the probe object \"%s\" read back differs from what was written",
                 reg->name, key);
        goto out;
    }
    t->get_ms = now_ms() - t0;

    t0 = now_ms();
    pf.key = key;
    pf.found = 0;
    if (stor_list(s, "walship-probe/", probe_seen, &pf, e) < 0) {
        err_prefix(e, "could not list");
        goto out;
    }
    if (!pf.found) {
        err_setf(e, ERR_INTERNAL, "region %s: the probe object \"%s\" was written but is not listed", reg->name, key);
        goto out;
    }
    t->list_ms = now_ms() - t0;

    t0 = now_ms();
    written = 0;
    if (stor_remove(s, key, e) < 0) {
        err_prefix(e, "could not delete the probe object");
        goto out;
    }
    if (s->kept_locked)
        printf("region %s: the bucket keeps objects under Object Lock: the probe object \"%s\" stays until its "
               "retention ends\n", reg->name, key);
    t->rm_ms = now_ms() - t0;
    rc = 0;
out:
    if (written) {
        struct err ignored = ERR_INIT;
        (void)stor_remove(s, key, &ignored);
    }
    sink_free(back);
    stor_free(s);
    return rc;
}

/* The region's repository identity, shown; a region not yet written to is
 * fine, one of walship 0.1.0 or an unreadable identity is not. */
static int check_identity(struct cmd_ctx *ctx, const struct region_conf *rc, const struct keyring *kr,
                          struct err *e)
{
    struct repo *r = NULL;
    char when[32] = "?";
    struct tm tm;
    time_t t;

    if (repo_open(rc, ctx->conf, &note_log_sink, kr, REPO_OPEN_IDENTITY, &r, e) < 0) {
        if (e->code == ERR_NOREPO && strstr(e->msg, "walship upgrade") == NULL) {
            printf("region %s: identity: none: an empty repository (the first wal-push or backup-push creates "
                   "one; if this region held a repository before, it is not mounted or its bucket or prefix is "
                   "wrong)\n",
                   rc->name);
            err_clear(e);
            return 0;
        }
        return -1;
    }
    t = (time_t)r->id.created;
    if (gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("region %s: identity: cluster %llu, PostgreSQL %u, %u-byte WAL segments, repository format %u, "
           "created %s by %s\n",
           rc->name, (unsigned long long)r->id.sysid, r->id.pg_major, r->id.seg_size, r->id.format, when,
           r->id.created_by);
    /* the key it is read with: one that must stay configured (docs/FORMAT.md, "Keys") */
    if (r->id_key[0] == '\0')
        printf("region %s: identity: not encrypted\n", rc->name);
    else if (keys_current(kr) == NULL || strcmp(keys_current(kr)->id_hex, r->id_key) != 0)
        printf("region %s: identity: encrypted with key id %s, an old key (old_key_files): keep that key for as "
               "long as this repository is used\n", rc->name, r->id_key);
    else
        printf("region %s: identity: encrypted with key id %s (key_file)\n", rc->name, r->id_key);
    repo_free(r);
    return 0;
}

/* Two regions whose urls differ but reach one place (an S3 endpoint under
 * two host names, one NFS export mounted twice): the configuration's check
 * cannot tell them apart, an object written to one that the other then
 * holds can.  Each such pair is printed as FAILED; returns their number. */
static int cross_probe(struct cmd_ctx *ctx, const unsigned char *usable)
{
    const struct config *c = ctx->conf;
    struct stor **s = calloc((size_t)c->nregions, sizeof *s);
    char key[256], host[64] = "host";
    int i, j, same = 0;

    if (s == NULL)
        return 0;
    gethostname(host, sizeof host - 1);
    for (i = 0; i < c->nregions; i++)    /* only regions that passed their check: no retries */
        if (!usable[i] || stor_open(&c->regions[i], c, &note_log_sink, &s[i], &(struct err)ERR_INIT) < 0)
            s[i] = NULL;
    for (i = 0; i < c->nregions; i++) {
        if (s[i] == NULL)
            continue;
        snprintf(key, sizeof key, "walship-probe/same-%s-%d-%lx", host, (int)getpid(), (unsigned long)random());
        if (stor_put_buf(s[i], key, "x", 1, &(struct err)ERR_INIT) < 0)
            continue;
        for (j = 0; j < c->nregions; j++) {
            struct stor_stat st;

            if (j == i || s[j] == NULL || stor_head(s[j], key, &st, &(struct err)ERR_INIT) < 0)
                continue;
            printf("region %s: FAILED: an object written to region %s is in region %s too: their urls (%s, %s) "
                   "reach one place, and a second copy there is no copy\n", c->regions[j].name,
                   c->regions[i].name, c->regions[j].name, c->regions[i].url, c->regions[j].url);
            log_error("regions %s and %s are one place", c->regions[i].name, c->regions[j].name);
            same++;
        }
        (void)stor_remove(s[i], key, &(struct err)ERR_INIT);
    }
    for (i = 0; i < c->nregions; i++)
        if (s[i] != NULL)
            stor_free(s[i]);
    free(s);
    return same;
}

static int st_check(struct cmd_ctx *ctx)
{
    struct err e = ERR_INIT;
    struct keyring *kr = NULL;
    unsigned char *usable;
    int i, failed = 0, worst = 0;

    if (config_require_regions(ctx->conf, &e) < 0)
        return cmd_fail(&e);
    if (keys_load(ctx->conf->key_file, ctx->conf->old_key_files, &kr, &e) < 0)
        return cmd_fail(&e);
    usable = calloc((size_t)ctx->conf->nregions, 1);
    for (i = 0; i < ctx->conf->nregions; i++) {
        const struct region_conf *rc = &ctx->conf->regions[i];
        struct check_times t = { 0, 0, 0, 0 };

        if (ctx->region != NULL && strcmp(ctx->region, rc->name) != 0)
            continue;
        err_clear(&e);
        if (check_region(ctx, rc, &t, &e) < 0) {
            int st = err_exit_status(&e);

            printf("region %s: FAILED: %s\n", rc->name, e.msg);
            log_error("%s", e.msg);
            failed++;
            if (st > worst)
                worst = st;
            continue;
        }
        if (usable != NULL)
            usable[i] = 1;
        printf("region %s (%s, %s): ok (write %llu ms, read %llu ms, list %llu ms, delete %llu ms)\n", rc->name,
               rc->url, rc->mode == REGION_SYNC ? "sync" : "async", (unsigned long long)t.put_ms,
               (unsigned long long)t.get_ms, (unsigned long long)t.list_ms, (unsigned long long)t.rm_ms);
        if (check_identity(ctx, rc, kr, &e) < 0) {
            printf("region %s: FAILED: %s\n", rc->name, e.msg);
            log_error("%s", e.msg);
            failed++;
            worst = EXIT_FAILURE3;
        }
    }
    if (ctx->region == NULL && ctx->conf->nregions > 1 && usable != NULL && cross_probe(ctx, usable) > 0) {
        failed++;
        worst = EXIT_FAILURE3;
    }
    free(usable);
    fflush(stdout);
    keys_free(kr);
    if (failed)
        return worst == EXIT_USAGE ? EXIT_USAGE : EXIT_FAILURE3;
    return 0;
}

/* ---- ls ---- */

struct ls_state {
    int long_format;
    uint64_t count, bytes;
};

static int ls_print(const struct stor_entry *ent, void *arg)
{
    struct ls_state *st = arg;

    if (st->long_format) {
        char ts[32] = "-";
        struct tm tm;

        if (ent->mtime > 0 && gmtime_r(&ent->mtime, &tm) != NULL)
            strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%12llu  %s  %s\n", (unsigned long long)ent->size, ts, ent->key);
    } else {
        printf("%s\n", ent->key);
    }
    st->count++;
    st->bytes += ent->size;
    return 0;
}

/* ---- get / put ---- */

/* Stream KEY into an open descriptor: decoded and authenticated unless raw.
 * Bytes reach FD before the end-of-object tag is checked; the exit status
 * is the verdict, as for any pipe. */
static int st_get_to_fd(struct repo *r, const char *key, int fd, int raw, struct err *e)
{
    struct sink *out;
    int rc;

    if (!raw)
        return repo_get_to_fd(r, key, fd, e);
    if ((out = fd_sink_new(fd)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    rc = stor_get(r->st, key, out, e) < 0 || sink_close(out, e) < 0 ? -1 : 0;
    sink_free(out);
    return rc;
}

/* A device, FIFO or symbolic link named as FILE (/dev/null, a named pipe,
 * /dev/stdout) is opened and written, never replaced: through a link, what
 * it points to is truncated and written, as cp does. */
static int st_get_to_special(struct repo *r, const char *key, const char *file, int raw, struct err *e)
{
    int fd = open(file, O_WRONLY | O_TRUNC | O_NOCTTY | O_CLOEXEC), rc;

    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not open \"%s\"", file);
    rc = st_get_to_fd(r, key, fd, raw, e);
    if (close(fd) < 0 && rc == 0)
        rc = err_errno(e, ERR_IO, errno, "could not write \"%s\"", file);
    return rc;
}

/* Download into a temp file beside FILE, rename only when complete (and,
 * unless raw, authenticated and bound to KEY and this repository). */
static int st_get_to_file(struct repo *r, const char *key, const char *file, int raw, struct err *e)
{
    char tmp[PATH_MAX];
    struct sink *out;
    int fd, special, rc = -1;

    if (strcmp(file, "-") == 0)
        return st_get_to_fd(r, key, STDOUT_FILENO, raw, e);
    if (dest_replaceable(file, &special, e) < 0) {
        if (!special)
            return -1;
        err_clear(e);
        return st_get_to_special(r, key, file, raw, e);
    }
    if (!raw)
        return repo_get_to_file(r, key, file, e);
    if ((fd = open_tmp_beside(file, tmp, sizeof tmp, e)) < 0)
        return -1;
    out = fd_sink_new(fd);
    if (out != NULL && stor_get(r->st, key, out, e) == 0 && sink_close(out, e) == 0 && fsync(fd) == 0 &&
        rename(tmp, file) == 0)
        rc = 0;
    else if (out == NULL)
        err_setf(e, ERR_NOMEM, "out of memory");
    else if (e->code == ERR_OK)
        err_errno(e, ERR_IO, errno, "could not write \"%s\"", file);
    sink_free(out);
    close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int st_put_from_file(struct repo *r, const char *file, const char *key, int raw, int level, struct err *e)
{
    struct sink *up = NULL;
    int fd, rc = -1, from_stdin = strcmp(file, "-") == 0;

    fd = from_stdin ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not open \"%s\"", file);
    if (stor_put(r->st, key, &up, e) < 0)
        goto out;
    if (!raw) {
        struct obj_opts oo;
        struct sink *enc;

        repo_obj_opts(r, key, level, &oo);
        if (obj_encoder_new(up, &oo, &enc, e) < 0)
            goto out;
        up = enc;
    }
    if (sink_pump_fd(up, fd, file, 0, e) < 0 || sink_close(up, e) < 0)
        goto out;
    rc = 0;
out:
    sink_free(up);
    if (!from_stdin)
        close(fd);
    return rc;
}

/* A key that is not there is exit 1, as for get: removing it is no
 * error to the storage (an S3 DELETE answers 204 either way), but a
 * repair by hand that names the wrong key must not read as done. */
static int st_rm(struct repo *r, const char *key, struct err *e)
{
    struct stor_stat st;

    if (stor_head(r->st, key, &st, e) < 0 || stor_remove(r->st, key, e) < 0)
        return -1;
    if (r->st->kept_locked)
        printf("%s: kept under Object Lock until its retention ends\n", key);
    return 0;
}

static int open_region(struct cmd_ctx *ctx, const struct keyring *kr, unsigned flags, struct repo **out,
                       struct err *e)
{
    const struct region_conf *rc;

    if (config_require_regions(ctx->conf, e) < 0)
        return -1;
    rc = ctx->region ? config_region(ctx->conf, ctx->region) : &ctx->conf->regions[0];
    if (rc == NULL)
        return err_setf(e, ERR_CONFIG, "no region named \"%s\" is configured", ctx->region);
    return repo_open(rc, ctx->conf, &note_log_sink, kr, flags, out, e);
}

/* ---- dispatch ---- */

int cmd_st_run(struct cmd_ctx *ctx)
{
    static const struct option opts[] = {
        { "raw", no_argument, NULL, 'r' },
        { "long", no_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    struct err e = ERR_INIT;
    struct repo *r = NULL;
    const char *sub;
    char **args;
    int nargs, raw = 0, long_format = 0, c, rc;

    if (ctx->argc < 2)
        return cmd_usage("st", "missing subcommand (check, ls, get, put or rm)");
    sub = ctx->argv[1];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(ctx->argc - 1, ctx->argv + 1, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'r': raw = 1; break;
        case 'l': long_format = 1; break;
        default: return cmd_usage("st", "unknown option \"%s\"", ctx->argv[optind]);
        }
    }
    /* getopt with "+" stops at the first non-option: collect the rest,
     * allowing options after positional arguments too. */
    args = ctx->argv + 1 + optind;
    nargs = ctx->argc - 1 - optind;
    for (c = 0; c < nargs; c++) {
        if (strcmp(args[c], "--raw") == 0 || strcmp(args[c], "--long") == 0) {
            if (args[c][2] == 'r')
                raw = 1;
            else
                long_format = 1;
            memmove(&args[c], &args[c + 1], (size_t)(nargs - c) * sizeof *args);
            nargs--;
            c--;
        } else if (args[c][0] == '-' && args[c][1] == '-') {
            return cmd_usage("st", "unknown option \"%s\"", args[c]);
        }
    }

    if (strcmp(sub, "check") == 0) {
        if (nargs != 0)
            return cmd_usage("st", "check takes no arguments");
        return st_check(ctx);
    }
    if (strcmp(sub, "ls") == 0) {
        struct ls_state st = { long_format, 0, 0 };

        if (nargs > 1)
            return cmd_usage("st", "ls takes at most one PREFIX");
        if (open_region(ctx, NULL, 0, &r, &e) < 0)
            return cmd_fail(&e);
        rc = stor_list(r->st, nargs ? args[0] : "", ls_print, &st, &e);
        repo_free(r);
        fflush(stdout);
        if (rc < 0)
            return cmd_fail(&e);
        if (long_format)
            printf("%llu objects, %llu bytes\n", (unsigned long long)st.count, (unsigned long long)st.bytes);
        return 0;
    }
    if (strcmp(sub, "get") == 0 || strcmp(sub, "put") == 0 || strcmp(sub, "rm") == 0) {
        int want = sub[0] == 'r' ? 1 : 2;

        if (nargs != want)
            return cmd_usage("st", "%s needs %s", sub,
                             sub[0] == 'g' ? "KEY FILE" : sub[0] == 'p' ? "FILE KEY" : "KEY");
        if (stor_key_valid(sub[0] == 'p' ? args[1] : args[0], &e) < 0)
            return cmd_fail(&e);
        struct keyring *kr = NULL;

        if (!raw && sub[0] != 'r' && cmd_load_keyring(ctx, &kr, &e) < 0)
            return cmd_fail(&e);
        /* decoding and encoding bind an object to this repository's cluster */
        if (open_region(ctx, kr, !raw && sub[0] != 'r' ? REPO_OPEN_IDENTITY : 0, &r, &e) < 0) {
            keys_free(kr);
            return cmd_fail(&e);
        }
        if (sub[0] == 'g')
            rc = st_get_to_file(r, args[0], args[1], raw, &e);
        else if (sub[0] == 'p')
            rc = st_put_from_file(r, args[0], args[1], raw, ctx->conf->compression_level, &e);
        else
            rc = st_rm(r, args[0], &e);
        repo_free(r);
        keys_free(kr);
        return rc < 0 ? cmd_fail(&e) : 0;
    }
    return cmd_usage("st", "unknown subcommand \"%s\" (check, ls, get, put or rm)", sub);
}
