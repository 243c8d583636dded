/*
 * dynlib — load a shared library by its soname when it is first needed.
 *
 * walship links libcrypto, libzstd, libarchive, jansson and inih as usual,
 * but opens libcurl and libxml2 (the S3 driver) with dlopen the first time
 * an S3 region, credential source or S3 answer needs them.  Every
 * archive_command and restore_command call is a new process; loading and
 * relocating libcurl's ~30 dependencies cost 6-7 ms of CPU per call, more
 * than half of a wal-push that finds its file already pushed
 * (docs/WAL.md, "Process start").  A file:// region never pays it.
 *
 * dlopen searches exactly where the dynamic linker would have searched for
 * the same DT_NEEDED entry (LD_LIBRARY_PATH, the ld.so cache, the default
 * directories): no new place a library can come from.  RTLD_NOW: a library
 * that lacks a symbol is refused when loaded, with its name, never later.
 * A library once loaded stays loaded.  Tests make one missing with
 * WALSHIP_FAULT_INJECT="dlopen.SONAME" (as src/io/fault.h).
 */
#ifndef WALSHIP_DYNLIB_H
#define WALSHIP_DYNLIB_H

#include <pthread.h>
#include <stddef.h>

#include "err.h"

struct dynlib_sym {
    const char *name;
    void *slot;     /* where the address goes: a function pointer object */
};

/* One library, loaded at most once per process. */
struct dynlib {
    const char *soname;
    const char *purpose;            /* "s3:// regions", for the message */
    const struct dynlib_sym *syms;
    size_t n;
    pthread_once_t once;
    int rc;                         /* after the once: 0 loaded, -1 not */
    struct err err;                 /* why not */
};
#define DYNLIB(soname, purpose, syms) \
    { (soname), (purpose), (syms), sizeof(syms) / sizeof((syms)[0]), PTHREAD_ONCE_INIT, -1, ERR_INIT }

/* The body of a table's pthread_once routine: dynlib_load into d->rc and
 * d->err. */
void dynlib_open_once(struct dynlib *d);
/* d's outcome: 0, or -1 with e set to why it could not be loaded. */
int dynlib_result(const struct dynlib *d, struct err *e);

/* Define `int FN(struct err *e)`: load `lib` (a static struct dynlib) once
 * per process and return its outcome, e set when it failed (e may be
 * NULL). */
#define DYNLIB_LOADER(FN, lib) \
    static void FN##_once(void) \
    { \
        dynlib_open_once(&(lib)); \
    } \
    int FN(struct err *e) \
    { \
        pthread_once(&(lib).once, FN##_once); \
        return dynlib_result(&(lib), e); \
    }

/* For a table header: a NULL-safe stand-in for the library's function F,
 * which frees its argument of type T: NULL is a no-op that loads nothing;
 * anything else loads the table with LOAD first.  DYNLIB_FREE_RET for a
 * function returning R, OK when nothing was freed. */
#define DYNLIB_FREE(table, LOAD, F, T) \
    static inline void table##_free_##F(T x) \
    { \
        if (x != NULL && LOAD(NULL) == 0) \
            table.F(x); \
    }
#define DYNLIB_FREE_RET(table, LOAD, F, R, T, OK) \
    static inline R table##_free_##F(T x) \
    { \
        return x != NULL && LOAD(NULL) == 0 ? table.F(x) : (OK); \
    }

/* dlopen(soname) and resolve every symbol into its slot; on any failure
 * nothing is kept, every slot is left as it was and e names the library,
 * the missing symbol and what it is needed for (`purpose`). */
int dynlib_load(const char *soname, const char *purpose, const struct dynlib_sym *syms, size_t n,
                struct err *e);

#endif
