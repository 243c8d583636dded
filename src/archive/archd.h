/*
 * archd — the local archiver process that wal-push hands segments to
 * (`archive_async_process`, docs/WAL.md "Archiving throughput").
 *
 * One per spool (cluster): it holds spool/archd.lock (flock, its PID in
 * it) and says in spool/archd.id which pg_wal/archive_status it serves and
 * the tag of its configuration and binary.  `parallel` threads, each with
 * its own region connections, push the .ready segments oldest first, each
 * under the name's claim lock, exactly as push-ahead does, and write the
 * pushed marker (tagged) once every sync region has the file durably and
 * the spool holds it for every async region.  It never acknowledges
 * anything itself: wal-push returns 0 only when it finds the marker of the
 * very file it was asked for.  It exits after `archive_async_idle` seconds
 * without work, when its binary or configuration file changes, or when a
 * wal-push with another tag asks it to (spool/archd.stop).
 *
 * Library code: archd_run() is the process's body; starting the process
 * is the caller's (src/cmd/spawn.c).
 */
#ifndef WALSHIP_ARCHD_H
#define WALSHIP_ARCHD_H

#include "config.h"
#include "err.h"
#include "keys.h"
#include "note.h"
#include "repo.h"
#include "spool.h"

#define ARCHD_TAG_LEN 64    /* hex of SHA-256 */

/* The tag of this binary and configuration: SHA-256 of the executable's
 * identity, of the key file's identity and of every key's value. */
int archd_tag(const struct config *c, const struct keyring *kr, char tag[ARCHD_TAG_LEN + 1], struct err *e);

struct archd_spawn {
    /* Start archd_run() in a detached process; never waits for it. */
    void (*start)(void *arg, const struct config *c, const struct keyring *kr, struct spool *sp,
                  const struct repo_ident *want, const char *waldir, const char *tag);
    void *arg;
};

/* The body of the archiver process for the WAL directory `waldir`
 * (pg_wal).  Returns 0 when it stopped normally (or another one runs). */
int archd_run(const struct config *c, const struct keyring *kr, struct spool *sp, const struct repo_ident *want,
              const char *waldir, const char *tag, const struct note_sink *notes, struct err *e);

/* wal-push's side: make sure an archiver process with this tag serves
 * `waldir` (starting one through `spawn`), and wait, at most
 * retry_deadline, for the marker of the file at `path`.  1: the marker
 * matches the file exactly (archived); 0: fall back to pushing it here
 * (no process, another tag, a failure, the file changed, time out). */
int archd_handoff(const struct config *c, const struct keyring *kr, struct spool *sp, const struct repo_ident *want,
                  const char *waldir, const char *path, const char *name, const char *tag,
                  const struct archd_spawn *spawn, const struct note_sink *notes);

#endif
