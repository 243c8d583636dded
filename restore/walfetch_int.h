/*
 * walfetch_int.h — what walfetch.c and walfetch_ask.c share: the prefetch
 * directory, a warm connection, and the prefetcher's question server.
 */
#ifndef WALSHIP_WALFETCH_INT_H
#define WALSHIP_WALFETCH_INT_H

#include <pthread.h>
#include <stddef.h>

#include "wal.h"
#include "walfetch.h"

/* How long a prefetcher whose window has closed (end of the archive, or
 * recovery gone) stays to answer questions after the last one. */
#define WALFETCH_ASK_IDLE_MS 15000

/* How long a prefetcher follows an archive that grows after its window
 * closed (a standby): it opens a new window from each segment a question
 * finds, up to this long after it started; then the next growth ends it
 * and the next wal-fetch starts a fresh one (new code, keys and
 * configuration are picked up at least this often). */
#define WALFETCH_FOLLOW_MS (3600 * 1000)

/* What the prefetcher's window and its question server share, under lock. */
struct prefetch_ctl {
    pthread_mutex_t lock;
    pthread_cond_t changed;         /* grown set, or the server ended */
    int workers_done;               /* the window's workers have all ended */
    int follow;                     /* growth is reported in grown, not a reason to leave */
    int ended;                      /* the question server has left */
    char grown[WAL_NAME_MAX + 1];   /* newest segment a question found after the window closed */
};

/* DEST's directory's prefetch directory into buf; -1 if too long. */
int walfetch_prefetch_dir(const char *dest, char *buf, size_t len);

/* Open the first region of `order` into cache and read its identity (the
 * cluster learnt into ci when unknown); quietly nothing on failure: the
 * first real fetch reports it. */
struct note_sink;
void walfetch_warm(const struct config *conf, const struct keyring *kr, const struct note_sink *notes, const int *order,
                   int n, struct cluster_info *ci, struct repo **cache);

/* The prefetch directory still holds the lock file this prefetcher locked
 * (device and inode): not a wiped and re-created one. */
#include <sys/types.h>
int walfetch_dir_is_ours(const char *dir, dev_t dev, ino_t ino);

/* Whether wal-fetch may take files from prefetch directory `dir`: a real
 * directory (not a link) of this user's that group and others cannot
 * write to, as the prefetcher makes it (0700).  Any other was made by
 * someone else: a DEST in a shared directory (a hand-run `wal-fetch SEG
 * /tmp/x/seg` as root) would take whatever another user planted there. */
int walfetch_dir_trusted(const char *dir);

/* A segment's first page must say it is NAME of the cluster ci. */
int walfetch_check_header(int fd, const char *name, const struct cluster_info *ci, struct err *e);

/* Move the verified file PATH onto DEST, after checking (a segment) that
 * its first page says it is NAME of the cluster ci (when known). */
int walfetch_serve_file(const char *path, const char *name, const char *dest, const struct cluster_info *ci,
                        struct err *e);

struct ask_server {
    const struct config *conf;
    const struct keyring *kr;
    const struct note_sink *notes;
    const int *order;
    int n;
    struct cluster_info ci;
    const char *dir;
    dev_t lock_dev;             /* the lock file this prefetcher holds */
    ino_t lock_ino;
    char fingerprint[17];       /* walfetch_fingerprint of its configuration */
    struct prefetch_ctl *ctl;
    struct repo **cache;        /* its own connections */
};

/* Thread body: answer ".ask-NAME" questions.  Once the window's workers
 * are done, a question that finds a segment (the archive has grown) is
 * reported in ctl->grown while ctl->follow holds, and ends the server
 * otherwise; so do nobody asking for WALFETCH_ASK_IDLE_MS and a question
 * that failed (then); another cluster's or configuration's question ends it
 * at any time.  Sets ctl->ended and signals ctl->changed when it leaves. */
void *walfetch_ask_serve(void *arg);

#endif
