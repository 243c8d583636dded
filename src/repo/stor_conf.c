/* stor_conf — a region's configuration turned into its driver's options. */
#include "stor_conf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int stor_opts_from_config(const struct region_conf *rc, const struct config *c, struct stor_opts *o, char **profile,
                          struct err *e)
{
    enum creds_source src = CREDS_AUTO;

    *profile = NULL;
    memset(o, 0, sizeof *o);
    o->version = STOR_OPTS_VERSION;
    o->name = rc->name;
    o->url = rc->url;
    if (rc->url == NULL || strncmp(rc->url, "s3://", 5) != 0)
        return 0;   /* file:// reads nothing else */
    if (rc->credentials != NULL && creds_parse_source(rc->credentials, &src, profile, e) < 0)
        return err_prefix(e, "region %s", rc->name);
    /* an unreadable CA file would surface only as TLS failures, retried
     * until the deadline: refused here, as the configuration error it is */
    if (rc->ca_file != NULL && access(rc->ca_file, R_OK) != 0)
        return err_errno(e, ERR_CONFIG, errno, "region %s: ca_file \"%s\" cannot be read", rc->name, rc->ca_file);
    o->endpoint = rc->endpoint;
    o->aws_region = rc->aws_region && rc->aws_region[0] ? rc->aws_region : rc->name;
    o->path_style = rc->path_style;
    o->storage_class = rc->storage_class;
    o->ca_file = rc->ca_file;
    o->unsigned_payload = rc->unsigned_payload;
    o->part_size = rc->part_size;
    o->parallel = c && c->parallel > 0 ? c->parallel : 1;
    o->connect_timeout = c ? (long)c->connect_timeout : 0;
    o->io_timeout = c ? (long)c->io_timeout : 0;
    o->retry_deadline = c ? c->retry_deadline : 0;
    o->creds = (struct creds_opts){ src, rc->name, *profile, rc->access_key_id, rc->secret_access_key,
                                    rc->session_token, o->aws_region, rc->sts_endpoint, rc->ca_file, rc->imds_v1 };
    o->checksum = rc->checksum != NULL && strcmp(rc->checksum, "sha256") == 0 ? S3_CHECKSUM_SHA256
                                                                               : S3_CHECKSUM_MD5;
    o->sse = rc->sse;
    o->sse_kms_key_id = rc->sse_kms_key_id;
    o->sse_bucket_key = rc->sse_bucket_key;
    return 0;
}

int stor_open(const struct region_conf *rc, const struct config *c, const struct note_sink *notes, struct stor **out,
              struct err *e)
{
    struct stor_opts o;
    char *profile = NULL;
    int ret;

    *out = NULL;
    if (stor_opts_from_config(rc, c, &o, &profile, e) < 0)
        return -1;
    o.notes = notes;
    ret = stor_open_opts(&o, out, e);
    free(profile);
    return ret;
}
