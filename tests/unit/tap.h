/*
 * tap.h — the smallest TAP producer that serves our unit tests.
 *
 *   plan_lazy();                 (optional; done_testing() prints the plan)
 *   ok(cond, "name %d", i);
 *   is_int(got, want, "name");
 *   is_str(got, want, "name");
 *   is_mem(got, want, n, "name");
 *   return done_testing();
 *
 * Output goes to stdout; automake's tap-driver.sh reads it.
 */
#ifndef WALSHIP_TAP_H
#define WALSHIP_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_vok(int cond, const char *fmt, va_list ap)
{
    tap_n++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    vprintf(fmt, ap);
    printf("\n");
    if (!cond)
        tap_failed++;
    fflush(stdout);
    return cond;
}

static inline __attribute__((format(printf, 2, 3))) int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = tap_vok(cond, fmt, ap);
    va_end(ap);
    return r;
}

#define is_int(got, want, ...) do { \
        long long g_ = (long long)(got), w_ = (long long)(want); \
        if (!ok(g_ == w_, __VA_ARGS__)) \
            printf("#   got %lld, want %lld\n", g_, w_); \
    } while (0)

#define is_str(got, want, ...) do { \
        const char *g_ = (got), *w_ = (want); \
        int c_ = (g_ == NULL && w_ == NULL) || (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0); \
        if (!ok(c_, __VA_ARGS__)) \
            printf("#   got \"%s\"\n#  want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
    } while (0)

#define is_mem(got, want, n, ...) ok(memcmp((got), (want), (n)) == 0, __VA_ARGS__)

/* Assert that a string contains a substring. */
#define like(got, needle, ...) do { \
        const char *g_ = (got); \
        if (!ok(g_ != NULL && strstr(g_, (needle)) != NULL, __VA_ARGS__)) \
            printf("#   \"%s\" does not contain \"%s\"\n", g_ ? g_ : "(null)", (needle)); \
    } while (0)

static inline void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
