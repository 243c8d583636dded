/*
 * util — checked number parsing and small string helpers.
 *
 * Every number walship reads from a user (config, flags, environment) goes
 * through these parsers: no atoi, no silent truncation, no trailing junk.
 * All functions are thread-safe and never print.
 */
#ifndef WALSHIP_UTIL_H
#define WALSHIP_UTIL_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* Decimal unsigned integer within [min, max]. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, struct err *e);
/* A configuration number written with a leading zero ("010"): ERR_CONFIG,
 * since PostgreSQL reads it as octal and walship would read it as decimal. */
int cfg_no_leading_zero(const char *s, struct err *e);
#define DURATION_MAX (100ULL * 366 * 86400)
int parse_int(const char *s, int min, int max, int *out, struct err *e);
/* Byte size: "1048576", "64kB", "16MB", "20GB", "1TiB" (k/M/G/T, B optional,
 * 1024-based like PostgreSQL's memory units). */
int parse_size(const char *s, uint64_t *out, struct err *e);
/* Duration in seconds: "90", "90s", "15min", "26h", "7d". */
int parse_duration(const char *s, uint64_t *out, struct err *e);
/* true/false, on/off, yes/no, 1/0. */
int parse_bool(const char *s, int *out, struct err *e);

/* Allocate a formatted string; NULL on out-of-memory. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* strdup that returns NULL for NULL. */
char *xstrdup(const char *s);
/* Copy src into dst of size n, always NUL-terminated; returns -1 if cut. */
int strlcopy(char *dst, const char *src, size_t n);
int str_has_prefix(const char *s, const char *prefix);
int str_has_suffix(const char *s, const char *suffix);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int hex_digit(int c);

/* The one growable-array helper: make room for at least `need` elements of
 * `size` bytes in the array whose address is `items_ptr` (a T **), with
 * capacity *cap, doubling from 16.  0, or -1 (array unchanged) when the size
 * overflows or memory runs out. */
/* The index of the element whose name is `name` in an array of `n`
 * elements of `size` bytes, each holding its name as a char array at
 * offset `off`; n when none.  A binary search, since listings come in byte
 * order, then a scan when it misses (a name that sorts otherwise). */
size_t name_index(const void *base, size_t n, size_t size, size_t off, const char *name);
int array_reserve(void *items_ptr, size_t *cap, size_t need, size_t size);

/* A growable list of owned strings (keys collected from a listing, ...). */
struct strvec {
    char **v;
    size_t n, cap;
};
/* Append a copy of s; 0 or -1 (out of memory, list unchanged). */
int strvec_push(struct strvec *sv, const char *s);
void strvec_sort(struct strvec *sv);
void strvec_free(struct strvec *sv);

/* Monotonic clock in milliseconds. */
uint64_t now_ms(void);

/* Write a whole buffer / read a whole small file.  read_file_all fails if the
 * file is bigger than max; *out is NUL-terminated (not counted in *len).
 * read_fd_all reads what is left of an open descriptor (`path` names it in
 * errors) and leaves it open. */
int write_all(int fd, const void *buf, size_t len);
/* The same at offset OFF (pwrite): 0, or -1 with errno. */
int pwrite_all(int fd, const void *buf, size_t len, off_t off);
int read_file_all(const char *path, size_t max, unsigned char **out, size_t *len, struct err *e);
int read_fd_all(int fd, const char *path, size_t max, unsigned char **out, size_t *len, struct err *e);

/* The names in directory `path`, sorted bytewise.  `flags`: DIR_ONLY_DIRS
 * or DIR_ONLY_FILES keep only directories or regular files (following
 * links), DIR_NO_HIDDEN skips names starting with a dot; "." and ".." are
 * never listed.  A directory that does not exist lists as empty. */
#define DIR_ONLY_DIRS 0x1
#define DIR_ONLY_FILES 0x2
#define DIR_NO_HIDDEN 0x4
int dir_list_sorted(const char *path, unsigned flags, char ***names, size_t *n, struct err *e);
void dir_list_free(char **names, size_t n);

/* Whether `path` may be replaced by renaming a temp file over it: yes
 * when it does not exist or is a regular file.  A directory, device, FIFO,
 * socket or symbolic link is refused with ERR_USAGE: `walship st get KEY
 * /dev/null` (or /dev/stdout, a link) run as root must not swap a system
 * file for a regular one.  *is_special (may be NULL) is set when the
 * refusal is for something other than a directory (a device, FIFO, socket
 * or link), which a caller that can stream may open and write instead. */
int dest_replaceable(const char *path, int *is_special, struct err *e);
/* Create a new temp file beside `dest` for a write-then-rename: named
 * "DEST.walship-tmp.PID" (".N" added if that exists), created exclusively
 * and never through a link, so a name planted in a shared directory is
 * neither followed nor reused.  The name goes into tmp; returns the fd
 * (O_RDWR), or -1 with e set. */
int open_tmp_beside(const char *dest, char *tmp, size_t n, struct err *e);
/* Remove the temp files open_tmp_beside made for `dest` by processes that
 * are gone (a kill -9 mid-download): regular files of ours whose PID is
 * not running.  Best effort; returns how many it removed. */
int sweep_dead_tmps(const char *dest);

/* fsync a directory (after a rename inside it). */
int fsync_dir(const char *dir, struct err *e);
/* For a flock()ed lock file the caller holds: write getpid() and a
 * newline into it / empty it just before letting go, so that whoever
 * looks can tell which process holds the lock.  Best effort. */
void lock_note_holder(int fd);
void lock_clear_holder(int fd);
/* flock() `path` (created 0600, never through a link) exclusively, trying
 * for up to wait_ms: 1 with *fd holding the lock (the holder's PID noted
 * in it), 0 if another process still holds it then, -1 with e set when
 * the file cannot be opened or locked.  Let go with lock_file_release. */
int lock_file_wait(const char *path, unsigned wait_ms, int *fd, struct err *e);
/* flock(fd) exclusively, trying for up to wait_ms: 1 locked, 0 still held
 * by another then, -1 (errno) when it cannot be locked at all. */
int lock_fd_wait(int fd, unsigned wait_ms);
void lock_file_release(int fd);
/* mkdir -p with the given mode for created directories; each one created
 * is fsync'd into its parent. */
int mkdir_p(const char *path, unsigned mode, struct err *e);

#endif
