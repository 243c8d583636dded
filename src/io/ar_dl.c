/*
 * ar_dl — libarchive, loaded on first use (ar_dl.h).
 */
#define AR_DL_TABLE
#include "ar_dl.h"

#include "dynlib.h"

struct ar_dl ar_dl;

#define AR_DL_SYM(f) { #f, &ar_dl.f },
static const struct dynlib_sym syms[] = { AR_DL_FUNCS(AR_DL_SYM) };
#undef AR_DL_SYM

static struct dynlib lib = DYNLIB("libarchive.so.13", "reading and writing backups", syms);

DYNLIB_LOADER(ar_dl_load, lib)
