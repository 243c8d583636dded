/*
 * log — leveled messages to stderr.
 *
 * Format: "2026-11-22 05:10:03.123 walship[1234] wal-push: LEVEL: message".
 * The level comes from log_level (error, warning, info, debug).  Messages are
 * built by callers from err values and names; they never contain secrets,
 * and every registered secret is replaced by "<redacted>" in each message
 * and, by err.c, in each error (errors reach JSON output and state files
 * too), for the rare text that might hold one (a server's message).
 * Thread-safe: each message is written with one write(2).
 */
#ifndef WALSHIP_LOG_H
#define WALSHIP_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_init(const char *command, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_parse_level(const char *s, enum log_level *out);
/* "error", "warning", "info" or "debug" (what log_parse_level reads). */
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Register a secret (key, token) that must never be printed: any log
 * message or error containing it has it replaced by "<redacted>".  The
 * list grows as needed; secrets shorter than 4 bytes are not registered. */
void log_add_secret(const char *secret);
/* Replace every registered secret in msg (a string in a buffer of cap
 * bytes) by "<redacted>", cutting the end when the replacement is longer. */
void log_redact(char *msg, size_t cap);
/* The same for one string (not registered): each occurrence in msg. */
void log_redact_one(char *msg, size_t cap, const char *secret);

#endif
