/*
 * note — how library code reports what an operator should see while it
 * works (a region retrying, a file kept aside) without printing.
 *
 * A command builds a struct note_sink (note_to_log sends each note to the
 * log at its level) and hands it to the engine; the engine calls note(),
 * which formats the message and passes it on, or drops it when the sink
 * is NULL or has no function (tests, callers that only want the result).
 * What the engine finally did goes into its result struct or its err, not
 * into notes.  Thread-safe as far as the sink's function is.
 */
#ifndef WALSHIP_NOTE_H
#define WALSHIP_NOTE_H

#include "log.h"

struct note_sink {
    void (*fn)(void *arg, enum log_level level, const char *msg);
    void *arg;
};

void note(const struct note_sink *ns, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A sink function for commands: the note goes to the log at its level. */
void note_to_log(void *arg, enum log_level level, const char *msg);

/* The sink commands use: every note to the log. */
extern const struct note_sink note_log_sink;

#endif
