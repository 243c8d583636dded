#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "manifest.h"
#include "obj.h"
#include "spool.h"
#include "util.h"
#include "wal.h"

#define MANIFEST_MAX (256u << 20)
#define WAL_HEAD_KEEP 8192       /* a segment's long page header, with room */

/* ---- the region's keys ---- */

struct keylist {
    struct strvec sv;
    int oom;
};

static int keylist_add(const struct stor_entry *ent, void *arg)
{
    struct keylist *l = arg;

    if (strvec_push(&l->sv, ent->key) < 0) {
        l->oom = 1;
        return 1;
    }
    return 0;
}

/* ---- the cluster, from what the region holds ---- */

static int get_legacy(struct stor *s, const struct keyring *kr, const char *key, struct sink *next,
                      struct obj_bind *bind, struct err *e)
{
    struct sink *dec = NULL;
    int rc = -1;

    if (obj_decoder_new(next, kr, OBJ_DEC_ALLOW_LEGACY, bind, &dec, e) < 0) {
        sink_free(next);
        return -1;
    }
    if (stor_get(s, key, dec, e) == 0 && sink_close(dec, e) == 0)
        rc = 0;
    else
        err_prefix(e, "region %s: object \"%s\"", s->region, key);
    sink_free(dec);
    return rc;
}

static int manifest_of(struct stor *s, const struct keyring *kr, const char *key, struct manifest **m,
                       struct err *e)
{
    struct obj_bind bind = { key, OBJ_SYSID_ANY, 0, "" };
    struct sink *mem = mem_sink_new(MANIFEST_MAX), *b;
    const unsigned char *buf;
    size_t len;
    int rc;

    if (mem == NULL || (b = borrow_sink_new(mem)) == NULL) {
        sink_free(mem);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (get_legacy(s, kr, key, b, &bind, e) < 0) {
        sink_free(mem);
        return -1;
    }
    buf = mem_sink_data(mem, &len);
    rc = man_from_json((const char *)buf, len, key, m, e);
    sink_free(mem);
    return rc;
}

static int learn_cluster(struct stor *s, const struct keyring *kr, const struct keylist *l, struct repo_ident *id,
                         struct err *e)
{
    size_t i;

    /* the newest manifest says it all */
    for (i = l->sv.n; i > 0; i--) {
        struct manifest *m = NULL;
        uint64_t sysid;
        int rc;

        if (!str_has_prefix(l->sv.v[i - 1], REPO_BACKUP_DIR) || !str_has_suffix(l->sv.v[i - 1], "/manifest.json"))
            continue;
        if (manifest_of(s, kr, l->sv.v[i - 1], &m, e) < 0)
            return -1;
        rc = m->system_identifier != NULL &&
             parse_u64(m->system_identifier, 1, UINT64_MAX - 1, &sysid, &(struct err)ERR_INIT) == 0;
        if (rc)
            repo_ident_init(id, sysid, m->pg_version / 10000, (uint32_t)m->wal_segment_size);
        man_free(m);
        if (rc)
            return 0;
        return err_setf(e, ERR_CORRUPT, "region %s: %s has no system identifier", s->region, l->sv.v[i - 1]);
    }
    /* else a segment's page header */
    for (i = 0; i < l->sv.n; i++) {
        struct obj_bind bind = { l->sv.v[i], OBJ_SYSID_ANY, 0, "" };
        struct sink *mem, *b;
        struct wal_long_header h;
        struct wal_name w;
        const unsigned char *buf;
        size_t len;

        if (!str_has_prefix(l->sv.v[i], REPO_WAL_DIR) || wal_parse(l->sv.v[i] + strlen(REPO_WAL_DIR), &w, e) < 0 ||
            w.kind != WAL_SEGMENT) {
            err_clear(e);
            continue;
        }
        mem = mem_sink_head_new(WAL_HEAD_KEEP);   /* a segment may be 1 GiB: its page header is enough */
        if (mem == NULL || (b = borrow_sink_new(mem)) == NULL) {
            sink_free(mem);
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
        if (get_legacy(s, kr, l->sv.v[i], b, &bind, e) < 0) {
            sink_free(mem);
            return -1;
        }
        buf = mem_sink_data(mem, &len);
        if (cluster_parse_wal_header(buf, len, &h, e) < 0) {
            sink_free(mem);
            return err_prefix(e, "region %s: %s", s->region, l->sv.v[i]);
        }
        sink_free(mem);
        repo_ident_init(id, h.sysid, cluster_major_of_magic(h.magic), h.seg_size);
        return 0;
    }
    return err_setf(e, ERR_NOTFOUND, "region %s: neither a manifest nor a WAL segment says which cluster it is",
                    s->region);
}

/* ---- one object ---- */

/* Bind `key` in place.  1 rewritten, 0 already bound. */
static int rebind(struct repo *r, const char *key, int level, int dry_run, uint64_t *bytes, struct err *e)
{
    struct obj_header_info info;
    struct obj_bind bind = { key, OBJ_SYSID_ANY, 0, "" };
    struct sink *mem = mem_sink_new(OBJ_HEADER_MAX), *up = NULL, *enc = NULL, *head;
    struct obj_opts oo;
    struct wal_name w;
    const unsigned char *buf;
    size_t len;
    uint64_t counted = 0;
    int rc = -1;

    if (mem == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (stor_get_range(r->st, key, 0, OBJ_HEADER_MAX, mem, e) < 0)
        goto out;
    buf = mem_sink_data(mem, &len);
    if (obj_peek_header(buf, len, &info, e) < 0) {
        err_prefix(e, "region %s: \"%s\"", r->name, key);
        goto out;
    }
    if (info.version == OBJ_VERSION) {
        if (strcmp(info.key, key) != 0 || info.sysid != r->id.sysid) {
            err_setf(e, ERR_FOREIGN, "region %s: \"%s\" is bound to \"%s\" of cluster %llu", r->name, key, info.key,
                     (unsigned long long)info.sysid);
            goto out;
        }
        rc = 0;
        goto out;
    }
    if (dry_run) {
        rc = 1;
        goto out;
    }
    /* decode the old object, check it, encode it bound, put it back */
    if (stor_put_replace(r->st, key, &up, e) < 0)
        goto out;
    repo_obj_opts(r, key, level, &oo);
    if (obj_encoder_new(up, &oo, &enc, e) < 0) {
        sink_free(up);
        goto out;
    }
    if ((head = count_sink_new(enc, &counted)) == NULL) {
        sink_free(enc);
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (str_has_prefix(key, REPO_WAL_DIR) && wal_parse(key + strlen(REPO_WAL_DIR), &w, &(struct err)ERR_INIT) == 0 &&
        (w.kind == WAL_SEGMENT || w.kind == WAL_PARTIAL)) {
        struct sink *chk;

        if (repo_segment_check_new(head, key + strlen(REPO_WAL_DIR), r->id.sysid, r->id.pg_major, &chk, e) < 0)
            goto out;
        head = chk;
    }
    if (get_legacy(r->st, r->kr, key, head, &bind, e) < 0)
        goto out;
    *bytes += counted;
    rc = 1;
out:
    sink_free(mem);
    return rc;
}

/* A manifest is bound only if it is its folder's and the cluster's. */
static int check_manifest(struct repo *r, const char *key, struct err *e)
{
    struct manifest *m = NULL;
    char want[REPO_KEY_MAX];
    uint64_t sysid = 0;
    int rc = 0;

    if (manifest_of(r->st, r->kr, key, &m, e) < 0)
        return -1;
    if (m->name == NULL || repo_key_backup(want, sizeof want, m->name, "manifest.json") < 0 || strcmp(want, key) != 0 ||
        m->system_identifier == NULL || parse_u64(m->system_identifier, 1, UINT64_MAX - 1, &sysid, e) < 0 ||
        sysid != r->id.sysid)
        rc = err_setf(e, ERR_FOREIGN, "region %s: %s names backup %s of cluster %s: not binding it", r->name, key,
                      m->name ? m->name : "(none)", m->system_identifier ? m->system_identifier : "(none)");
    man_free(m);
    return rc;
}

int upg_region(const struct config *c, const struct region_conf *reg, const struct keyring *kr,
               const struct note_sink *notes, int dry_run, upg_progress_fn progress, void *arg, struct upg_stats *st,
               struct err *e)
{
    struct keylist l = { { NULL, 0, 0 }, 0 };
    struct repo *r = NULL;
    struct err le = ERR_INIT;
    char *json = NULL;
    size_t i, len;
    int rc = -1;

    memset(st, 0, sizeof *st);
    if (repo_open(reg, c, notes, kr, 0, &r, e) < 0)
        return -1;
    if (repo_ident_load(r, &le) == 0) {
        st->already = 1;
        st->ident = r->id;
        rc = 0;
        goto out;
    }
    if (le.code != ERR_NOREPO) {
        *e = le;
        goto out;
    }
    if (stor_list(r->st, REPO_WAL_DIR, keylist_add, &l, e) < 0 || stor_list(r->st, REPO_BACKUP_DIR, keylist_add, &l, e) < 0)
        goto out;
    if (l.oom) {
        err_setf(e, ERR_NOMEM, "out of memory listing region %s", reg->name);
        goto out;
    }
    if (l.sv.n == 0) {
        st->empty = 1;
        rc = 0;
        goto out;
    }
    if (learn_cluster(r->st, kr, &l, &st->ident, e) < 0)
        goto out;
    /* A region this host's spool remembers as this cluster's repository
     * lost its identity (an unmounted file system, a wal-push or shipper
     * that wrote into the empty directory): not 0.1.0's, never bound. */
    if (repo_ident_lost(r, st->ident.sysid, "holds WAL or backups but no repository identity (identity.json)", e) < 0)
        goto out;
    r->id = st->ident;
    /* the identity written below is the current key's (repo_put_buf) */
    snprintf(r->id_key, sizeof r->id_key, "%s", keys_current(kr) != NULL ? keys_current(kr)->id_hex : "");
    r->have_id = 1;
    /* WAL first, then each backup, its manifest after its other objects
     * (backups/ lists in order, and "manifest.json" sorts after the parts
     * and backup_label but before tablespace_map: keep manifests for last) */
    for (int pass = 0; pass < 2; pass++) {
        for (i = 0; i < l.sv.n; i++) {
            int is_man = str_has_suffix(l.sv.v[i], "/manifest.json"), got;

            if (is_man != pass)
                continue;
            if (is_man && check_manifest(r, l.sv.v[i], e) < 0)
                goto out;
            got = rebind(r, l.sv.v[i], c->compression_level, dry_run, &st->bytes, e);
            if (got < 0)
                goto out;
            if (got)
                st->rewritten++;
            else
                st->skipped++;
            if (progress != NULL)
                progress(l.sv.v[i], got, arg);
        }
    }
    if (dry_run) {
        rc = 0;
        goto out;
    }
    /* last: from now on the region is a format 2 repository */
    if (repo_ident_to_json(&st->ident, &json, &len, e) < 0 || repo_put_buf(r, REPO_KEY_IDENTITY, 0, json, len, e) < 0)
        goto out;
    rc = 0;
out:
    free(json);
    strvec_free(&l.sv);
    repo_free(r);
    return rc;
}

/* ---- the spool of 0.1.0 ---- */

static int move_entry(struct spool *sp, const struct keyring *kr, const struct repo_ident *id, int level,
                      const char *path, const char *name, char *queue, struct err *e)
{
    char key[REPO_KEY_MAX];
    struct obj_bind bind = { NULL, OBJ_SYSID_ANY, 0, "" };
    struct obj_opts oo;
    struct sink *out = NULL, *enc = NULL, *dec = NULL;
    int fd, rc = -1;

    if (repo_key_wal(key, sizeof key, name) < 0)
        return err_setf(e, ERR_USAGE, "bad spool entry \"%s\"", path);
    bind.key = key;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not open \"%s\"", path);
    if (spool_put(sp, name, &queue, 1, 0, &out, e) < 0)
        goto done;
    memset(&oo, 0, sizeof oo);
    oo.level = level;
    oo.kr = kr;
    oo.bind.key = key;
    oo.bind.sysid = id->sysid;
    if (obj_encoder_new(out, &oo, &enc, e) < 0) {
        sink_free(out);
        goto done;
    }
    {
        struct wal_name wn;
        struct err pe = ERR_INIT;

        /* 0.1.0's spool was shared by every cluster of the host: a segment
         * moves into this cluster's spool only if its first page says it
         * is this cluster's (and this segment); anything else stays put */
        if (wal_parse(name, &wn, &pe) == 0 && (wn.kind == WAL_SEGMENT || wn.kind == WAL_PARTIAL) &&
            repo_segment_check_new(enc, name, id->sysid, id->pg_major, &enc, e) < 0)
            goto done;
    }
    if (obj_decoder_new(enc, kr, OBJ_DEC_ALLOW_LEGACY, &bind, &dec, e) < 0) {
        sink_free(enc);
        goto done;
    }
    if (sink_pump_fd(dec, fd, path, 0, e) < 0 || sink_close(dec, e) < 0)
        goto done;
    rc = 0;
done:
    sink_free(dec);
    close(fd);
    return rc;
}

int upg_spool(const struct config *c, const struct keyring *kr, const struct repo_ident *ident, int dry_run,
              struct upg_spool_stats *st, struct err *e)
{
    char qdir[PATH_MAX], path[PATH_MAX];
    char **regions = NULL, **names = NULL;
    size_t nr = 0, nn = 0, i, k;
    struct spool *sp = NULL;
    int rc = -1;

    memset(st, 0, sizeof *st);
    if (c->spool_dir == NULL || snprintf(qdir, sizeof qdir, "%s/queue", c->spool_dir) >= (int)sizeof qdir)
        return 0;
    if (dir_list_sorted(qdir, DIR_ONLY_DIRS | DIR_NO_HIDDEN, &regions, &nr, e) < 0)
        return -1;
    if (nr > 0 && !dry_run && spool_open(c->spool_dir, c->spool_max_bytes, ident->sysid, &sp, e) < 0)
        goto out;
    if (sp != NULL) {
        /* the shipper needs the cluster's identity beside the queues */
        char *json = NULL;
        size_t len = 0;
        int bad = repo_ident_to_json(ident, &json, &len, e) < 0 || spool_save_identity(sp, json, len, e) < 0;

        free(json);
        if (bad)
            goto out;
    }
    for (i = 0; i < nr; i++) {
        const struct region_conf *rc_ = config_region(c, regions[i]);
        char queue[SPOOL_QUEUE_MAX], *q = queue;

        if (snprintf(path, sizeof path, "%s/%s", qdir, regions[i]) >= (int)sizeof path) {
            err_setf(e, ERR_IO, "spool path too long");
            goto out;
        }
        if (dir_list_sorted(path, DIR_ONLY_FILES | DIR_NO_HIDDEN, &names, &nn, e) < 0)
            goto out;
        if (rc_ == NULL || rc_->mode != REGION_ASYNC) {
            st->left += nn;
        } else {
            spool_queue_name(rc_->name, rc_->url, rc_->endpoint, queue);
            for (k = 0; k < nn; k++) {
                if (snprintf(path, sizeof path, "%s/%s/%s", qdir, regions[i], names[k]) >= (int)sizeof path) {
                    err_setf(e, ERR_IO, "spool path too long");
                    goto out;
                }
                if (!dry_run) {
                    struct err me = ERR_INIT;

                    if (move_entry(sp, kr, ident, c->compression_level, path, names[k], q, &me) < 0) {
                        if (me.code != ERR_FOREIGN && me.code != ERR_CORRUPT) {
                            *e = me;
                            goto out;
                        }
                        /* another cluster's, or not what its name says: left */
                        st->left++;
                        st->foreign++;
                        continue;
                    }
                    if (unlink(path) < 0) {
                        err_errno(e, ERR_IO, errno, "could not remove \"%s\"", path);
                        goto out;
                    }
                }
                st->moved++;
            }
        }
        dir_list_free(names, nn);
        names = NULL;
        nn = 0;
    }
    rc = 0;
out:
    dir_list_free(names, nn);
    dir_list_free(regions, nr);
    spool_free(sp);
    return rc;
}
