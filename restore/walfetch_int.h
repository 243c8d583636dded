/*
 * walfetch_int.h — what walfetch.c and walfetch_ask.c share: the prefetch
 * directory, a warm connection, and the prefetcher's question server.
 */
#ifndef WALSHIP_WALFETCH_INT_H
#define WALSHIP_WALFETCH_INT_H

#include <pthread.h>
#include <stddef.h>

#include "walfetch.h"

/* How long a prefetcher whose window has closed (end of the archive, or
 * recovery gone) stays to answer questions after the last one. */
#define WALFETCH_ASK_IDLE_MS 15000

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
    pthread_mutex_t *lock;      /* guards *workers_done */
    const int *workers_done;    /* the prefetch window's workers have all ended */
    struct repo **cache;        /* its own connections */
};

/* Thread body: answer ".ask-NAME" questions until the workers are done and
 * either a segment turned up or nobody asked for WALFETCH_ASK_IDLE_MS. */
void *walfetch_ask_serve(void *arg);

#endif
