/*
 * dynlib — load a shared library by its soname when it is first needed
 * (dynlib.h).
 */
#include "dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Function pointers are stored through memcpy, as POSIX allows: dlsym's
 * void * and a function pointer have the same size and representation. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function and object pointers differ in size");

/* WALSHIP_FAULT_INJECT="dlopen.SONAME" (src/io/fault.h): tests make a
 * library missing without taking it off the machine. */
static int injected(const char *soname)
{
    const char *v = getenv("WALSHIP_FAULT_INJECT");
    char point[128];

    snprintf(point, sizeof point, "dlopen.%s", soname);
    return v != NULL && strstr(v, point) != NULL;
}

int dynlib_load(const char *soname, const char *purpose, const struct dynlib_sym *syms, size_t n,
                struct err *e)
{
    void *h, **addr;
    const char *why;
    size_t i;

    (void)dlerror();
    h = injected(soname) ? NULL : dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        why = injected(soname) ? "injected fault" : dlerror();
        return err_setf(e, ERR_INTERNAL, "%s is needed for %s and could not be loaded: %s", soname, purpose,
                        why ? why : "unknown reason");
    }
    if ((addr = calloc(n ? n : 1, sizeof *addr)) == NULL) {
        dlclose(h);
        return err_setf(e, ERR_NOMEM, "out of memory loading %s", soname);
    }
    for (i = 0; i < n; i++) {
        (void)dlerror();
        addr[i] = dlsym(h, syms[i].name);
        if (addr[i] == NULL) {
            why = dlerror();
            err_setf(e, ERR_INTERNAL, "%s (needed for %s) has no symbol %s: %s; walship was built against a "
                     "newer version", soname, purpose, syms[i].name, why ? why : "it is NULL");
            free(addr);
            dlclose(h);
            return -1;
        }
    }
    for (i = 0; i < n; i++)
        memcpy(syms[i].slot, &addr[i], sizeof addr[i]);
    free(addr);
    return 0;
}

void dynlib_open_once(struct dynlib *d)
{
    d->rc = dynlib_load(d->soname, d->purpose, d->syms, d->n, &d->err);
}

int dynlib_result(const struct dynlib *d, struct err *e)
{
    if (d->rc == 0)
        return 0;
    if (e != NULL)
        *e = d->err;
    return -1;
}
