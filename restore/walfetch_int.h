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

struct ask_server {
    const struct config *conf;
    const struct keyring *kr;
    const struct note_sink *notes;
    const int *order;
    int n;
    struct cluster_info ci;
    const char *dir;
    pthread_mutex_t *lock;      /* guards *workers_done */
    const int *workers_done;    /* the prefetch window's workers have all ended */
    struct repo **cache;        /* its own connections */
};

/* Thread body: answer ".ask-NAME" questions until the workers are done and
 * either a segment turned up or nobody asked for WALFETCH_ASK_IDLE_MS. */
void *walfetch_ask_serve(void *arg);

#endif
