/*
 * s3_dl — libcurl and libxml2, loaded on first use (src/common/dynlib.h
 * says why).  Every file of the S3 driver includes this header instead of
 * <curl/curl.h> and <libxml/...>: the names of the functions it calls then
 * go through the table below, filled by s3_dl_load().
 *
 * Rule: a function that calls libcurl or libxml2 and can be reached
 * without an open S3 driver (a parser, a credential source, the HTTP
 * engine) calls s3_dl_load() first.  It costs a pthread_once after the
 * first call.  Calling through an unfilled table is a NULL call: the
 * unit tests reach every such entry point in a fresh process.
 *
 * curl's type-checking macros for curl_easy_setopt/getinfo are replaced by
 * the table's plain prototypes (the check cannot see through a pointer).
 */
#ifndef WALSHIP_S3_DL_H
#define WALSHIP_S3_DL_H

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "dynlib.h"
#include "err.h"

#define S3_DL_CURL(X) \
    X(curl_global_init) X(curl_easy_init) X(curl_easy_cleanup) X(curl_easy_setopt) \
    X(curl_easy_getinfo) X(curl_easy_perform) X(curl_easy_strerror) X(curl_easy_header) \
    X(curl_multi_init) X(curl_multi_cleanup) X(curl_multi_setopt) X(curl_multi_add_handle) \
    X(curl_multi_remove_handle) X(curl_multi_perform) X(curl_multi_poll) X(curl_multi_info_read) \
    X(curl_multi_strerror) X(curl_slist_append) X(curl_slist_free_all) X(curl_url) \
    X(curl_url_set) X(curl_url_get) X(curl_url_cleanup) X(curl_free) X(curl_getdate)

#define S3_DL_XML(X) \
    X(xmlInitParser) X(xmlNewParserCtxt) X(xmlFreeParserCtxt) X(xmlCtxtReadMemory) \
    X(xmlCtxtGetLastError) X(xmlReadMemory) X(xmlFreeDoc) X(xmlDocGetRootElement) \
    X(xmlNodeGetContent) X(xmlFree) X(xmlBufferCreate) X(xmlBufferFree) X(xmlBufferContent) \
    X(xmlBufferLength) X(xmlNewTextWriterMemory) X(xmlFreeTextWriter) X(xmlTextWriterStartDocument) \
    X(xmlTextWriterEndDocument) X(xmlTextWriterStartElement) X(xmlTextWriterStartElementNS) \
    X(xmlTextWriterEndElement) X(xmlTextWriterWriteElement)

#define S3_DL_MEMBER(f) __typeof__(f) *f;
struct s3_dl {
    S3_DL_CURL(S3_DL_MEMBER)
    S3_DL_XML(S3_DL_MEMBER)
};
#undef S3_DL_MEMBER

extern struct s3_dl s3_dl;

/* Load libcurl and libxml2 and initialize both, once per process; every
 * later call returns the first call's outcome.  ERR_INTERNAL with the
 * library's name when it cannot be loaded. */
int s3_dl_load(struct err *e);

#ifndef S3_DL_TABLE
/* The functions that free are reached on cleanup paths that may never
 * have created anything, with NULL, before the library was ever needed (a
 * recovery that failed before its first login): NULL is a no-op that
 * loads nothing; anything else loads the table first (a pthread_once
 * after the first time), and nothing of the library can exist when it
 * cannot be loaded. */
DYNLIB_FREE(s3_dl, s3_dl_load, curl_easy_cleanup, CURL *)
DYNLIB_FREE_RET(s3_dl, s3_dl_load, curl_multi_cleanup, CURLMcode, CURLM *, CURLM_OK)
DYNLIB_FREE(s3_dl, s3_dl_load, curl_slist_free_all, struct curl_slist *)
DYNLIB_FREE(s3_dl, s3_dl_load, curl_free, void *)
DYNLIB_FREE(s3_dl, s3_dl_load, curl_url_cleanup, CURLU *)
DYNLIB_FREE(s3_dl, s3_dl_load, xmlFreeDoc, xmlDocPtr)
DYNLIB_FREE(s3_dl, s3_dl_load, xmlFreeParserCtxt, xmlParserCtxtPtr)
DYNLIB_FREE(s3_dl, s3_dl_load, xmlBufferFree, xmlBufferPtr)
DYNLIB_FREE(s3_dl, s3_dl_load, xmlFreeTextWriter, xmlTextWriterPtr)
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init s3_dl.curl_global_init
#define curl_easy_init s3_dl.curl_easy_init
#define curl_easy_cleanup s3_dl_free_curl_easy_cleanup
#define curl_easy_setopt s3_dl.curl_easy_setopt
#define curl_easy_getinfo s3_dl.curl_easy_getinfo
#define curl_easy_perform s3_dl.curl_easy_perform
#define curl_easy_strerror s3_dl.curl_easy_strerror
#define curl_easy_header s3_dl.curl_easy_header
#define curl_multi_init s3_dl.curl_multi_init
#define curl_multi_cleanup s3_dl_free_curl_multi_cleanup
#define curl_multi_setopt s3_dl.curl_multi_setopt
#define curl_multi_add_handle s3_dl.curl_multi_add_handle
#define curl_multi_remove_handle s3_dl.curl_multi_remove_handle
#define curl_multi_perform s3_dl.curl_multi_perform
#define curl_multi_poll s3_dl.curl_multi_poll
#define curl_multi_info_read s3_dl.curl_multi_info_read
#define curl_multi_strerror s3_dl.curl_multi_strerror
#define curl_slist_append s3_dl.curl_slist_append
#define curl_slist_free_all s3_dl_free_curl_slist_free_all
#define curl_url s3_dl.curl_url
#define curl_url_set s3_dl.curl_url_set
#define curl_url_get s3_dl.curl_url_get
#define curl_url_cleanup s3_dl_free_curl_url_cleanup
#define curl_free s3_dl_free_curl_free
#define curl_getdate s3_dl.curl_getdate
#define xmlInitParser s3_dl.xmlInitParser
#define xmlNewParserCtxt s3_dl.xmlNewParserCtxt
#define xmlFreeParserCtxt s3_dl_free_xmlFreeParserCtxt
#define xmlCtxtReadMemory s3_dl.xmlCtxtReadMemory
#define xmlCtxtGetLastError s3_dl.xmlCtxtGetLastError
#define xmlReadMemory s3_dl.xmlReadMemory
#define xmlFreeDoc s3_dl_free_xmlFreeDoc
#define xmlDocGetRootElement s3_dl.xmlDocGetRootElement
#define xmlNodeGetContent s3_dl.xmlNodeGetContent
#define xmlFree (*s3_dl.xmlFree)  /* a variable in libxml2 2.9: its address is in the table */
#define xmlBufferCreate s3_dl.xmlBufferCreate
#define xmlBufferFree s3_dl_free_xmlBufferFree
#define xmlBufferContent s3_dl.xmlBufferContent
#define xmlBufferLength s3_dl.xmlBufferLength
#define xmlNewTextWriterMemory s3_dl.xmlNewTextWriterMemory
#define xmlFreeTextWriter s3_dl_free_xmlFreeTextWriter
#define xmlTextWriterStartDocument s3_dl.xmlTextWriterStartDocument
#define xmlTextWriterEndDocument s3_dl.xmlTextWriterEndDocument
#define xmlTextWriterStartElement s3_dl.xmlTextWriterStartElement
#define xmlTextWriterStartElementNS s3_dl.xmlTextWriterStartElementNS
#define xmlTextWriterEndElement s3_dl.xmlTextWriterEndElement
#define xmlTextWriterWriteElement s3_dl.xmlTextWriterWriteElement
#endif

#endif
