/*
 * bkf_pipe — a bounded in-memory byte pipe from a sink chain (producer
 * thread) to libarchive's read callback (consumer thread), used by
 * backup_fetch to extract a part while it is being downloaded and decoded.
 *
 * The producer writes through bkf_pipe_sink_new() (which blocks while the
 * pipe is full) and reports the end with bkf_pipe_writer_done(ok): only
 * ok = 1 gives the consumer an end of file; ok = 0 makes its next read fail,
 * so a stream whose decoder did not verify to the end never looks complete.
 * The consumer passes bkf_pipe_read to archive_read_open(); the piece it
 * returns stays valid until the next call (no copy).  When the consumer is
 * finished it calls bkf_pipe_reader_done(): BKF_PIPE_DISCARD lets the
 * producer run to its end (the rest is dropped, so the decoder still checks
 * the whole object), BKF_PIPE_ABORT makes the producer's next write fail.
 * `*abort` (shared by all pipes of one fetch) stops both sides; after
 * setting it, call bkf_pipe_wake() on every pipe.
 *
 * One producer and one consumer thread per pipe; the memory is `cap` bytes.
 * A side that has to sleep is woken once cap/8 bytes of data (the reader)
 * or of room (the writer) are there, not at every write: one wake-up per
 * 512 KiB instead of one per decoder block (the profile of a restore showed
 * a tenth of its CPU in the scheduler).
 */
#ifndef WALSHIP_BKF_PIPE_H
#define WALSHIP_BKF_PIPE_H

#include <archive.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

enum { BKF_PIPE_RUNNING = 0, BKF_PIPE_DISCARD, BKF_PIPE_ABORT };

struct bkf_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *buf;
    size_t cap, head, tail, used, lent;
    size_t batch;               /* a side sleeping waits for this much (data or room) */
    int eof, failed, reader, writer_refused;
    int rwait, wwait;           /* the reader, the writer is sleeping */
    atomic_int *abort;
};

/* 0, or -1 on out-of-memory. */
int bkf_pipe_init(struct bkf_pipe *p, size_t cap, atomic_int *abort);
void bkf_pipe_destroy(struct bkf_pipe *p);
/* Empty the pipe for the next stream (no thread may be using it). */
void bkf_pipe_reset(struct bkf_pipe *p);
/* A sink writing into the pipe; it does not own the pipe, its close does
 * nothing.  NULL on out-of-memory. */
struct sink *bkf_pipe_sink_new(struct bkf_pipe *p);
void bkf_pipe_writer_done(struct bkf_pipe *p, int ok);
void bkf_pipe_reader_done(struct bkf_pipe *p, int how);
/* 1 if a write failed because the consumer aborted (the producer's error is
 * then a consequence, not a cause). */
int bkf_pipe_writer_refused(struct bkf_pipe *p);
void bkf_pipe_wake(struct bkf_pipe *p);
/* archive_read_open() read callback; `arg` is the pipe. */
la_ssize_t bkf_pipe_read(struct archive *a, void *arg, const void **out);

/* A stage that passes bytes to `next` (owned) and counts them in *count
 * (set to 0 here): a write that would pass `max` fails with ERR_CORRUPT
 * before anything of it is passed, and close fails unless exactly `max`
 * bytes passed.  `what` ("part 3, encoded") names the stream in errors and
 * must outlive the sink.  backup_fetch bounds each part by the manifest's
 * stored_size and raw_size with it.  NULL on out-of-memory. */
struct sink *bkf_limit_sink_new(struct sink *next, uint64_t max, uint64_t *count, const char *what);

#endif
