/*
 * archd_int — what the archiver process (archd.c) and wal-push's side of
 * it (archd_client.c) share: the files in the spool that tie them.
 *
 *   archd.lock        flock()ed by the running process (its PID in it)
 *   archd.id          "PID\nDEV INO\nTAG\n": which process, the device and
 *                     inode of the archive_status directory it serves, the
 *                     tag of its binary and configuration
 *   archd.stop        "PID\n": a wal-push with another tag asks process PID
 *                     to stop
 *   pushed/NAME.fail  the process could not archive NAME (the message):
 *                     wal-push pushes it itself at once
 *   pushed/NAME.acked the marker of a segment wal-push acknowledged, until
 *                     PostgreSQL marks it done (the process removes it then)
 */
#ifndef WALSHIP_ARCHD_INT_H
#define WALSHIP_ARCHD_INT_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config.h"
#include "spool.h"
#include "watch.h"

#define ARCHD_LOCK "archd.lock"

void archd_release_claim(struct spool *sp, const char *name, int lockfd);
void archd_mark_failed(struct spool *sp, const char *name, const char *why);
void archd_unmark_failed(struct spool *sp, const char *name);
int archd_failed(struct spool *sp, const char *name);
/* wal-push acknowledged NAME: its marker becomes pushed/NAME.acked. */
void archd_ack(struct spool *sp, const char *name);
/* wal-push pushed NAME itself (the file at PATH, under its claim; BEFORE
 * its identity before it was read): the acked marker, so that the process
 * does not push it again before PostgreSQL marks it done.  None when the
 * file changed meanwhile. */
void archd_ack_own(struct spool *sp, const struct stat *before, const char *path, const char *name,
                   const char *sha256_hex, const char *tag);
/* -1 no acked marker; 1 it records this very file (st) and tag; 0 not. */
int archd_acked(struct spool *sp, const char *name, const struct stat *st, const char *tag);
int archd_write_id(struct spool *sp, const char *waldir, const char *tag, struct err *e);

/* What the process watches to know it is out of date (watch.h). */
struct archd_watch {
    struct proc_watch pw;
    uint64_t last;
};
void archd_watch_init(struct archd_watch *w, const struct config *c, const struct keyring *kr);
/* 1 when the binary, the configuration, key or credentials files changed,
 * or a wal-push asked this process to stop (checked once a second). */
int archd_watch_changed(struct archd_watch *w, struct spool *sp);

#endif
