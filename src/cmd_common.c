/*
 * cmd_common — what several commands need at their edge: the keyring with
 * its one warning when nothing is encrypted.
 */
#include "cmd.h"
#include "keys.h"
#include "log.h"

int cmd_load_keyring(struct cmd_ctx *ctx, struct keyring **out, struct err *e)
{
    const struct config *c = ctx->conf;

    if (keys_load(c->key_file, c->old_key_files, out, e) < 0)
        return -1;
    if (c->key_file == NULL)
        log_warning("no key_file is configured: objects are written UNENCRYPTED (integrity-checked only); "
                    "run \"walship keygen FILE\" and set key_file");
    return 0;
}
