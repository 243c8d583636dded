/*
 * walship keygen FILE — write a new random 256-bit master key (mode 0600,
 * never over an existing file) and print its key id.
 */
#include <stdio.h>

#include "cmd.h"
#include "keys.h"
#include "log.h"

int cmd_keygen_run(struct cmd_ctx *ctx)
{
    struct err e = ERR_INIT;
    char id[KEYS_ID_HEX_LEN + 1];

    if (ctx->argc != 2)
        return cmd_usage("keygen", "keygen takes exactly one argument: the key file to create");
    if (keys_generate(ctx->argv[1], id, &e) < 0)
        return cmd_fail(&e);
    log_info("wrote a new key to \"%s\" (key id %s): keep a copy of it away from the backups, "
             "they cannot be restored without it", ctx->argv[1], id);
    if (printf("%s\n", id) < 0 || fflush(stdout) != 0) {
        err_setf(&e, ERR_IO, "could not print the key id");
        return cmd_fail(&e);
    }
    return 0;
}
