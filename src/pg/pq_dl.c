/*
 * pq_dl — libpq, loaded on first use (pq_dl.h).
 */
#define PQ_DL_TABLE
#include "pq_dl.h"

#include "dynlib.h"

struct pq_dl pq_dl;

#define PQ_DL_SYM(f) { #f, &pq_dl.f },
static const struct dynlib_sym syms[] = { PQ_DL_FUNCS(PQ_DL_SYM) };
#undef PQ_DL_SYM

static struct dynlib lib = DYNLIB("libpq.so.5", "connecting to PostgreSQL", syms);

DYNLIB_LOADER(pq_dl_load, lib)
