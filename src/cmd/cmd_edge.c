/*
 * cmd_edge — the process's own edges, for main: standard descriptors a
 * caller closed, and whether what a command printed was written whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "err.h"
#include "log.h"

/* Descriptors 0, 1 and 2 taken when the caller closed them (cron,
 * 'wal-push %p <&- >&- 2>&-'): else the next file or socket opened gets
 * the number, and a log line meant for stderr lands in a WAL object, a
 * restored file or an HTTP stream.  /dev/null opened the wrong way round,
 * so that each still reads or writes nothing, as a closed one did (EBADF):
 * 'st put -' never uploads an empty file for a closed stdin, and a
 * document written to a closed stdout is not taken for written. */
void cmd_std_fds_taken(void)
{
    static const int flags[3] = { O_WRONLY, O_RDONLY, O_RDONLY };
    int i;

    /* in order: a closed one is then the lowest free number */
    for (i = STDIN_FILENO; i <= STDERR_FILENO; i++)
        if (fcntl(i, F_GETFD) < 0 && errno == EBADF && open("/dev/null", flags[i]) != i)
            _exit(EXIT_FAILURE3);   /* no /dev/null: nothing safe to write to */
}

/* The commands whose work is a change (in the regions, a data directory,
 * a key file), not the document they print. */
static int changes_state(const char *name)
{
    static const char *const v[] = { "wal-push", "wal-fetch", "ship", "backup-push", "backup-fetch", "restore",
                                     "promote", "delete", "copy", "upgrade", "keygen" };
    size_t i;

    for (i = 0; name != NULL && i < sizeof v / sizeof v[0]; i++)
        if (strcmp(name, v[i]) == 0)
            return 1;
    return 0;
}

/* The exit status once the output is out.  A document that could not be
 * written whole (a full disk, a reader gone: SIGPIPE is ignored, so that
 * '| head' never kills a restore or a delete between two changes) is a
 * failure, never exit 0; a change that was made stays a success, said. */
int cmd_output_finish(const char *name, int rc)
{
    const char *why;

    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return rc;
    why = errno != 0 ? strerror(errno) : "an earlier write failed";
    if (changes_state(name)) {
        log_warning("could not write to standard output (%s): what is printed above is incomplete; the %s itself "
                    "ended with status %d", why, name, rc);
        return rc;
    }
    log_error("could not write to standard output (%s): the output is incomplete", why);
    return rc == 0 ? EXIT_FAILURE3 : rc;
}
