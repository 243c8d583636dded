/*
 * stream — push-model byte streams: a sink is a chain of stages.
 *
 * Data flows one way: a producer calls sink_write() on the first stage;
 * each stage transforms and writes to the stage after it (`next`), which it
 * owns.  The last stage is a consumer (a file, a buffer, an upload).
 *
 *   sink_write(s, buf, n, e)   push bytes; 0 or -1 with e filled
 *   sink_close(s, e)           end of stream: flush, verify, commit.  A sink
 *                              is visible to the outside world (renamed into
 *                              place, upload completed) only once close
 *                              returns 0.  Each stage closes its next stage.
 *   sink_free(s)               release the whole chain.  Freeing a chain that
 *                              was not closed successfully aborts it: temp
 *                              files removed, multipart uploads aborted.
 *
 * After any write or close fails, the only valid call is sink_free().
 * A sink is used by one thread at a time.
 */
#ifndef WALSHIP_STREAM_H
#define WALSHIP_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sink;

struct sink_ops {
    int (*write)(struct sink *s, const void *buf, size_t len, struct err *e);
    int (*close)(struct sink *s, struct err *e);
    void (*free)(struct sink *s);   /* frees s and its next stage */
};

struct sink {
    const struct sink_ops *ops;
    struct sink *next;      /* owned; NULL for a terminal sink */
};

int sink_write(struct sink *s, const void *buf, size_t len, struct err *e);
int sink_close(struct sink *s, struct err *e);
void sink_free(struct sink *s);

/* Growable in-memory buffer sink.  `max` bounds its size (0 = no bound; a
 * write past the bound fails with ERR_INTERNAL). */
struct sink *mem_sink_new(size_t max);
/* Keeps the first `keep` bytes written and drops the rest without error:
 * the head of a stream that is still read (and authenticated) whole. */
struct sink *mem_sink_head_new(size_t keep);
const unsigned char *mem_sink_data(const struct sink *s, size_t *len);
/* Take the buffer (caller frees with free()); the sink becomes empty. */
unsigned char *mem_sink_take(struct sink *s, size_t *len);

/* Writes to a file descriptor it does not own and never closes. */
struct sink *fd_sink_new(int fd);
/* The same, its write errors naming `name` (the file as the user knows it). */
struct sink *fd_sink_named(int fd, const char *name);

/* Counts and discards. */
struct sink *null_sink_new(void);
uint64_t null_sink_count(const struct sink *s);

/* Forwards writes and close to `target` but does not own it: freeing the
 * borrow leaves `target` alive, so a caller can keep reading a buffer sink
 * after handing a chain that ends in it to code that frees chains. */
struct sink *borrow_sink_new(struct sink *target);

/* Forwards writes to `target` but neither closes nor frees it: the caller
 * decides afterwards whether to commit it (sink_close) or abort it
 * (sink_free), e.g. a spool entry that must not be queued when a region
 * reported a conflict. */
struct sink *pass_sink_new(struct sink *target);

/* Counts the bytes that pass to `next` into *counter (owned by the caller,
 * which may read it from another thread only after close). */
struct sink *count_sink_new(struct sink *next, uint64_t *counter);

/* Read fd to EOF and push everything into s (does not close s).  Reads in
 * `bufsize` pieces (0 = 1 MiB).  `what` names the input in errors. */
int sink_pump_fd(struct sink *s, int fd, const char *what, size_t bufsize, struct err *e);

#endif
