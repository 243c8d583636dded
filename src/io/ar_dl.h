/*
 * ar_dl — libarchive, loaded on first use (src/common/dynlib.h says why:
 * libarchive and what it pulls in, libxml2 and ICU among them, cost an
 * archive_command call 1.5-3 ms to load, and only backups read or write
 * tar streams).
 *
 * The library files that call libarchive include this header after their
 * own; the names of the functions they call then go through the table
 * below.  Rule: every function that calls libarchive and can be reached
 * with a `struct archive` it did not create here (the tar readers and
 * writers' entry points, which unit tests drive with archives of their
 * own) or that creates one calls ar_dl_load() first.  Headers that only
 * need libarchive's types include <archive.h> itself.
 */
#ifndef WALSHIP_AR_DL_H
#define WALSHIP_AR_DL_H

#include <archive.h>
#include <archive_entry.h>

#include "dynlib.h"
#include "err.h"

#define AR_DL_FUNCS(X) \
    X(archive_read_new) X(archive_read_free) X(archive_read_support_format_tar) \
    X(archive_read_open) X(archive_read_next_header) X(archive_read_data_block) \
    X(archive_read_data_skip) X(archive_write_new) X(archive_write_free) \
    X(archive_write_close) X(archive_write_open2) X(archive_write_header) \
    X(archive_write_data) X(archive_write_set_format_option) X(archive_write_set_format_pax_restricted) X(archive_write_set_bytes_per_block) \
    X(archive_write_set_bytes_in_last_block) X(archive_error_string) X(archive_set_error) \
    X(archive_entry_new) X(archive_entry_free) X(archive_entry_filetype) \
    X(archive_entry_hardlink) X(archive_entry_mtime) X(archive_entry_pathname) \
    X(archive_entry_pathname_utf8) X(archive_entry_perm) X(archive_entry_size) \
    X(archive_entry_size_is_set) X(archive_entry_sparse_count) X(archive_entry_set_filetype) \
    X(archive_entry_set_mtime) X(archive_entry_set_pathname) X(archive_entry_set_perm) \
    X(archive_entry_set_size)

#define AR_DL_MEMBER(f) __typeof__(f) *f;
struct ar_dl {
    AR_DL_FUNCS(AR_DL_MEMBER)
};
#undef AR_DL_MEMBER

extern struct ar_dl ar_dl;

/* Load libarchive once per process; later calls return the first outcome
 * (e may be NULL). */
int ar_dl_load(struct err *e);

#ifndef AR_DL_TABLE
/* The functions that free are reached on cleanup paths that may never
 * have created anything, with NULL, before the library was ever needed (a
 * recovery that failed before its first login): NULL is a no-op that
 * loads nothing; anything else loads the table first (a pthread_once
 * after the first time), and nothing of the library can exist when it
 * cannot be loaded. */
DYNLIB_FREE_RET(ar_dl, ar_dl_load, archive_read_free, int, struct archive *, ARCHIVE_OK)
DYNLIB_FREE_RET(ar_dl, ar_dl_load, archive_write_free, int, struct archive *, ARCHIVE_OK)
DYNLIB_FREE(ar_dl, ar_dl_load, archive_entry_free, struct archive_entry *)
#define archive_read_new ar_dl.archive_read_new
#define archive_read_free ar_dl_free_archive_read_free
#define archive_read_support_format_tar ar_dl.archive_read_support_format_tar
#define archive_read_open ar_dl.archive_read_open
#define archive_read_next_header ar_dl.archive_read_next_header
#define archive_read_data_block ar_dl.archive_read_data_block
#define archive_read_data_skip ar_dl.archive_read_data_skip
#define archive_write_new ar_dl.archive_write_new
#define archive_write_free ar_dl_free_archive_write_free
#define archive_write_close ar_dl.archive_write_close
#define archive_write_open2 ar_dl.archive_write_open2
#define archive_write_header ar_dl.archive_write_header
#define archive_write_data ar_dl.archive_write_data
#define archive_write_set_format_option ar_dl.archive_write_set_format_option
#define archive_write_set_format_pax_restricted ar_dl.archive_write_set_format_pax_restricted
#define archive_write_set_bytes_per_block ar_dl.archive_write_set_bytes_per_block
#define archive_write_set_bytes_in_last_block ar_dl.archive_write_set_bytes_in_last_block
#define archive_error_string ar_dl.archive_error_string
#define archive_set_error ar_dl.archive_set_error
#define archive_entry_new ar_dl.archive_entry_new
#define archive_entry_free ar_dl_free_archive_entry_free
#define archive_entry_filetype ar_dl.archive_entry_filetype
#define archive_entry_hardlink ar_dl.archive_entry_hardlink
#define archive_entry_mtime ar_dl.archive_entry_mtime
#define archive_entry_pathname ar_dl.archive_entry_pathname
#define archive_entry_pathname_utf8 ar_dl.archive_entry_pathname_utf8
#define archive_entry_perm ar_dl.archive_entry_perm
#define archive_entry_size ar_dl.archive_entry_size
#define archive_entry_size_is_set ar_dl.archive_entry_size_is_set
#define archive_entry_sparse_count ar_dl.archive_entry_sparse_count
#define archive_entry_set_filetype ar_dl.archive_entry_set_filetype
#define archive_entry_set_mtime ar_dl.archive_entry_set_mtime
#define archive_entry_set_pathname ar_dl.archive_entry_set_pathname
#define archive_entry_set_perm ar_dl.archive_entry_set_perm
#define archive_entry_set_size ar_dl.archive_entry_set_size
#endif

#endif
