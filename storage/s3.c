/* Placeholder until the S3 driver lands. */
#include "stor.h"

int s3_open(const struct region_conf *rc, const struct config *c, struct stor **out, struct err *e)
{
    (void)c;
    (void)out;
    return err_setf(e, ERR_CONFIG, "region %s: the s3:// driver is not built yet", rc->name);
}
