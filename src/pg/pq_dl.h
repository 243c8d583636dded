/*
 * pq_dl — libpq, loaded on first use (src/common/dynlib.h says why: libpq
 * and its Kerberos, LDAP and SASL dependencies cost an archive_command
 * call ~3-5 ms to load, and wal-push and wal-fetch never connect).
 *
 * Files that call libpq include this header instead of <libpq-fe.h>; the
 * names of the functions they call then go through the table below.  Rule:
 * every function that calls libpq without an open connection in hand (a
 * connect, a connection string parser) calls pq_dl_load() first.
 */
#ifndef WALSHIP_PQ_DL_H
#define WALSHIP_PQ_DL_H

#include <libpq-fe.h>

#include "dynlib.h"
#include "err.h"

#define PQ_DL_FUNCS(X) \
    X(PQconnectdb) X(PQconnectdbParams) X(PQfinish) X(PQstatus) \
    X(PQerrorMessage) X(PQsocket) X(PQuser) X(PQserverVersion) \
    X(PQsetNoticeProcessor) X(PQexec) X(PQexecParams) X(PQsendQueryParams) \
    X(PQconsumeInput) X(PQisBusy) X(PQgetResult) X(PQresultStatus) \
    X(PQresultErrorMessage) X(PQntuples) X(PQgetvalue) X(PQgetisnull) \
    X(PQclear) X(PQfreemem) X(PQconninfoParse) X(PQconninfoFree)


#define PQ_DL_MEMBER(f) __typeof__(f) *f;
struct pq_dl {
    PQ_DL_FUNCS(PQ_DL_MEMBER)
};
#undef PQ_DL_MEMBER

extern struct pq_dl pq_dl;

/* Load libpq once per process; later calls return the first outcome.
 * ERR_INTERNAL naming libpq when it cannot be loaded. */
int pq_dl_load(struct err *e);

#ifndef PQ_DL_TABLE
/* The functions that free are reached on cleanup paths that may never
 * have created anything, with NULL, before the library was ever needed (a
 * recovery that failed before its first login): NULL is a no-op that
 * loads nothing; anything else loads the table first (a pthread_once
 * after the first time), and nothing of the library can exist when it
 * cannot be loaded. */
DYNLIB_FREE(pq_dl, pq_dl_load, PQfinish, PGconn *)
DYNLIB_FREE(pq_dl, pq_dl_load, PQclear, PGresult *)
DYNLIB_FREE(pq_dl, pq_dl_load, PQfreemem, void *)
DYNLIB_FREE(pq_dl, pq_dl_load, PQconninfoFree, PQconninfoOption *)
#define PQconnectdb pq_dl.PQconnectdb
#define PQconnectdbParams pq_dl.PQconnectdbParams
#define PQfinish pq_dl_free_PQfinish
#define PQstatus pq_dl.PQstatus
#define PQerrorMessage pq_dl.PQerrorMessage
#define PQsocket pq_dl.PQsocket
#define PQuser pq_dl.PQuser
#define PQserverVersion pq_dl.PQserverVersion
#define PQsetNoticeProcessor pq_dl.PQsetNoticeProcessor
#define PQexec pq_dl.PQexec
#define PQexecParams pq_dl.PQexecParams
#define PQsendQueryParams pq_dl.PQsendQueryParams
#define PQconsumeInput pq_dl.PQconsumeInput
#define PQisBusy pq_dl.PQisBusy
#define PQgetResult pq_dl.PQgetResult
#define PQresultStatus pq_dl.PQresultStatus
#define PQresultErrorMessage pq_dl.PQresultErrorMessage
#define PQntuples pq_dl.PQntuples
#define PQgetvalue pq_dl.PQgetvalue
#define PQgetisnull pq_dl.PQgetisnull
#define PQclear pq_dl_free_PQclear
#define PQfreemem pq_dl_free_PQfreemem
#define PQconninfoParse pq_dl.PQconninfoParse
#define PQconninfoFree pq_dl_free_PQconninfoFree
#endif

#endif
