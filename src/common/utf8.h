/*
 * utf8 — text made valid UTF-8 for machine-readable output.  JSON (jansson
 * refuses a string that is not UTF-8: the whole object it was packed into
 * is lost) and the Prometheus text format need UTF-8, while object names
 * from a listing, paths and servers' messages are only bytes.
 */
#ifndef WALSHIP_UTF8_H
#define WALSHIP_UTF8_H

#include <stddef.h>

/* The length of the valid UTF-8 sequence at `s` (1 to 4), or 0 when the
 * bytes there are not one (or *s is '\0'). */
size_t utf8_seq_len(const char *s);

/* Replace, in place, every byte of `s` that is not part of a valid UTF-8
 * sequence with '?' (the length does not change). */
void utf8_scrub(char *s);

/* `in` as one line of text for a terminal or a log: control bytes (below
 * 0x20 but the tab, and 0x7f) written as \n, \r or \xHH, trailing
 * blanks and line breaks dropped; cut at `cap` - 1 bytes, never inside an
 * escape.  A name from a listing ("backups/x\nERROR: ...") or a server's
 * message cannot start a line of its own. */
void text_one_line(const char *in, char *out, size_t cap);

#endif
