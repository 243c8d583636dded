/*
 * s3_xml_fuzz — libFuzzer target for the S3 XML parsers.
 *
 * The input is an S3 answer body; it goes through every parser (error,
 * ListObjectsV2, InitiateMultipartUploadResult, Complete/Copy results,
 * DeleteResult).  Whatever the input, nothing may crash or leak, a parser
 * that fails leaves its outputs empty and says why, and the request bodies
 * built from parsed keys and ETags must parse back.
 *
 * Built with clang by:
 *   clang -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -Istorage $(pkg-config --cflags libxml-2.0) \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/s3_xml_fuzz.c storage/s3/s3_xml.c \
 *     src/common/err.c src/common/util.c $(pkg-config --libs libxml-2.0) -o s3_xml_fuzz
 *   ./s3_xml_fuzz -max_total_time=600 tests/fuzz/corpus/s3_xml
 * and replayed over tests/fuzz/corpus/s3_xml under gcc in `make check`
 * (tests/fuzz/s3_xml_replay.sh).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct s3_error er;
    struct s3_list_page pg;
    struct s3_delete_error *errs = NULL;
    struct err e = ERR_INIT;
    char *id = NULL, *body = NULL;
    size_t n = 0, len = 0, i;

    (void)s3_xml_parse_error(data, size, &er);
    if (s3_xml_parse_list(data, size, &pg, &e) == 0) {
        const char **keys = calloc(pg.n + 1, sizeof *keys);

        if (keys == NULL)
            abort();
        for (i = 0; i < pg.n; i++)
            keys[i] = pg.ents[i].key;
        if (s3_xml_build_delete("p", keys, pg.n, 1, &body, &len, &e) == 0) {
            /* What we build must be well-formed XML with the same keys. */
            if (s3_xml_parse_result(body, len, "Delete", &er, &e) != 0)
                abort();
            free(body);
        }
        free(keys);
        s3_list_page_clear(&pg);
    } else if (pg.n != 0 || pg.ents != NULL || pg.next_token != NULL || e.msg[0] == '\0') {
        abort();
    }
    if (s3_xml_parse_upload_id(data, size, &id, &e) == 0) {
        if (id == NULL || id[0] == '\0')
            abort();
        free(id);
    } else if (id != NULL) {
        abort();
    }
    (void)s3_xml_parse_result(data, size, "CompleteMultipartUploadResult", &er, &e);
    if (s3_xml_parse_delete(data, size, &errs, &n, &e) == 0) {
        struct s3_part *parts = calloc(n + 1, sizeof *parts);

        if (parts == NULL)
            abort();
        for (i = 0; i < n; i++) {
            parts[i].number = (int)i + 1;
            memcpy(parts[i].etag, errs[i].message, sizeof parts[i].etag - 1);
        }
        if (s3_xml_build_complete(parts, n, &body, &len, &e) == 0) {
            if (s3_xml_parse_result(body, len, "CompleteMultipartUpload", &er, &e) != 0)
                abort();
            free(body);
        }
        free(parts);
        s3_delete_errors_free(errs, n);
    } else if (errs != NULL || n != 0) {
        abort();
    }
    return 0;
}
