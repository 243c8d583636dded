#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"
#include "util.h"

static enum log_level cur_level = LOG_INFO;
static char cur_command[64] = "walship";
static char **secrets;      /* grows: refreshed credentials add new ones */
static int nsecrets, capsecrets;
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(const char *command, enum log_level level)
{
    strlcopy(cur_command, command ? command : "walship", sizeof cur_command);
    cur_level = level;
}

void log_set_level(enum log_level level)
{
    cur_level = level;
}

enum log_level log_get_level(void)
{
    return cur_level;
}

static const char *const level_names[] = { "error", "warning", "info", "debug" };

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "info";
}

int log_parse_level(const char *s, enum log_level *out)
{
    int i;

    for (i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_add_secret(const char *secret)
{
    if (secret == NULL || strlen(secret) < 4)
        return;
    pthread_mutex_lock(&secrets_lock);
    for (int i = 0; i < nsecrets; i++) {
        if (secrets[i] != NULL && strcmp(secrets[i], secret) == 0) {
            pthread_mutex_unlock(&secrets_lock);
            return;
        }
    }
    if (nsecrets == capsecrets) {
        int nc = capsecrets ? 2 * capsecrets : 16;
        char **ns = realloc(secrets, (size_t)nc * sizeof *ns);

        if (ns != NULL) {
            secrets = ns;
            capsecrets = nc;
        }
    }
    if (nsecrets < capsecrets)
        secrets[nsecrets++] = strdup(secret);
    pthread_mutex_unlock(&secrets_lock);
}

void log_redact_one(char *msg, size_t cap, const char *secret)
{
    static const char rep[] = "<redacted>";
    const size_t rl = sizeof rep - 1, sl = secret != NULL ? strlen(secret) : 0;
    char *p = msg;

    if (sl == 0)
        return;
    /* on past each replacement (a secret "acted" is in "<redacted>");
     * a secret too near the end for the replacement cuts the line */
    while ((p = strstr(p, secret)) != NULL) {
        size_t at = (size_t)(p - msg), tail = strlen(p + sl);

        if (at + rl + 1 > cap) {
            *p = '\0';
            break;
        }
        if (at + rl + tail + 1 > cap)
            tail = cap - at - rl - 1;
        memmove(p + rl, p + sl, tail);
        memcpy(p, rep, rl);
        p[rl + tail] = '\0';
        p += rl;
    }
}

void log_redact(char *msg, size_t cap)
{
    int i;

    pthread_mutex_lock(&secrets_lock);
    for (i = 0; i < nsecrets; i++)
        log_redact_one(msg, cap, secrets[i]);
    pthread_mutex_unlock(&secrets_lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = { "ERROR", "WARNING", "INFO", "DEBUG" };
    char body[2048], safe[2048];
    char line[2304];
    struct timeval tv;
    struct tm tm;
    char ts[32];
    va_list ap;
    int n;

    if (level > cur_level)
        return;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    log_redact(body, sizeof body);
    /* one record, one line: a name from a listing or a server's message
     * with a line break in it must not forge a record of its own */
    text_one_line(body, safe, sizeof safe);
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    n = snprintf(line, sizeof line, "%s.%03d walship[%d] %s: %s: %s\n", ts, (int)(tv.tv_usec / 1000),
                 (int)getpid(), cur_command, names[level], safe);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    (void)write_all(STDERR_FILENO, line, (size_t)n);
}
