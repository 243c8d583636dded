/*
 * mapread — feed a regular file to a sink from a read-only mapping.
 *
 * Why: compressing a WAL segment read with read() pays the kernel's copy
 * of every byte out of the page cache, and the compressor then reads the
 * copy again; fed from a mapping of the page cache, zstd level 3 used
 * 25-30% less CPU per segment here (docs/WAL.md, "Archiving throughput").
 *
 * The danger of a mapping: a file cut shorter while it is mapped raises
 * SIGBUS on the next read of a page past its new end, which kills the
 * process.  So mapped reads are guarded: mapread_install() (called by the
 * command that archives, wal-push, before it starts a thread; the archiver
 * process it forks inherits it) installs a SIGBUS handler; a fault inside
 * a range a thread is pumping maps zero pages over the rest of that range
 * and returns, so the reader sees zeros instead of dying, and the pump
 * reports the file as changed while it was read (nothing is committed).
 * A fault anywhere else goes to the handler that was there before (or
 * kills the process, as it would have).  No longjmp (STYLE.md): the
 * compressor's frames simply finish on zeros.
 *
 *   mapread_install()            returns 0, or -1 (mapped reads stay off)
 *   sink_pump_mapped(s, fd, size, what, e)
 *       writes the file's first SIZE bytes to s in 1 MiB slices from a
 *       mapping: 0; -1 with e set (ERR_IO when the file became shorter
 *       than SIZE while it was read); 1 when nothing was written because
 *       mapped reads are off or the file cannot be mapped (the caller reads
 *       it with sink_pump_fd instead).
 *
 *   sink_pump_range(s, fd, off, len, what, e)
 *       writes LEN bytes at OFF of the file to s: from mappings of 16 MiB
 *       windows when mapped reads are on, OFF is page-aligned and LEN is
 *       4 MiB or more, else (or for what cannot be mapped) with pread in
 *       1 MiB slices.  0, or -1 with e set (ERR_IO, naming WHAT, when the
 *       file ends before OFF + LEN or cannot be read).  Any size: memory
 *       stays a window.
 *
 * Thread-safe: the guarded range is per thread.
 */
#ifndef WALSHIP_MAPREAD_H
#define WALSHIP_MAPREAD_H

#include <stdint.h>

#include "err.h"
#include "stream.h"

/* files larger than this are read, not mapped (a mapping is populated
 * at once) */
#define MAPREAD_MAX ((uint64_t)64 << 20)

int mapread_install(void);
int sink_pump_mapped(struct sink *s, int fd, uint64_t size, const char *what, struct err *e);
int sink_pump_range(struct sink *s, int fd, uint64_t off, uint64_t len, const char *what, struct err *e);

#endif
