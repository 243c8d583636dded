/*
 * note — library messages handed to the command that prints them (note.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "note.h"

void note(const struct note_sink *ns, enum log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    if (ns == NULL || ns->fn == NULL)
        return;
    if (level == LOG_DEBUG && ns->fn == note_to_log && log_get_level() < LOG_DEBUG)
        return;     /* not worth formatting */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ns->fn(ns->arg, level, msg);
}

void note_to_log(void *arg, enum log_level level, const char *msg)
{
    (void)arg;
    log_msg(level, "%s", msg);
}

const struct note_sink note_log_sink = { note_to_log, NULL };
