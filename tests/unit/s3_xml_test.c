/* s3_xml_test — parsing S3 answers and building request bodies. */
#include <stdlib.h>
#include <string.h>

#include "s3.h"
#include "tap.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static void test_list(void)
{
    static const char page1[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult " NS ">"
        "<Name>acme</Name><Prefix>prod/wal/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
        "<IsTruncated>true</IsTruncated>"
        "<Contents><Key>prod/wal/000000010000000000000001</Key>"
        "<LastModified>2009-10-12T17:50:30.000Z</LastModified>"
        "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>16777216</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>prod/wal/a &amp; b &lt;c&gt; \xc3\xa9</Key>"
        "<LastModified>2024-02-29T23:59:59Z</LastModified><ETag>\"abc-3\"</ETag><Size>0</Size></Contents>"
        "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
        "</ListBucketResult>";
    static const char page2[] =
        "<ListBucketResult><Name>acme</Name><IsTruncated>false</IsTruncated>"
        "<Contents><Key>k</Key><Size>5</Size></Contents></ListBucketResult>";
    static const char empty[] = "<ListBucketResult " NS "><IsTruncated>false</IsTruncated></ListBucketResult>";
    static const char trunc_no_token[] = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
    static const char bad_size[] =
        "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>";
    struct s3_list_page pg;
    struct err e = ERR_INIT;

    ok(s3_xml_parse_list(page1, strlen(page1), &pg, &e) == 0, "page 1 parses");
    is_int(pg.n, 2, "page 1 has two keys");
    ok(pg.truncated, "page 1 is truncated");
    is_str(pg.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=", "continuation token");
    if (pg.n == 2) {
        is_str(pg.ents[0].key, "prod/wal/000000010000000000000001", "key 1");
        is_int(pg.ents[0].size, 16777216, "size 1");
        is_int(pg.ents[0].mtime, 1255369830, "mtime 1");
        is_str(pg.ents[0].etag, "fba9dede5f27731c9771645a39863328", "etag 1 unquoted");
        is_str(pg.ents[1].key, "prod/wal/a & b <c> \xc3\xa9", "key 2 unescaped");
        is_int(pg.ents[1].size, 0, "size 2");
        is_int(pg.ents[1].mtime, 1709251199, "mtime 2");
        is_str(pg.ents[1].etag, "abc-3", "etag 2");
    }
    s3_list_page_clear(&pg);

    ok(s3_xml_parse_list(page2, strlen(page2), &pg, &e) == 0, "last page parses");
    ok(!pg.truncated && pg.next_token == NULL && pg.n == 1, "last page: not truncated, no token");
    s3_list_page_clear(&pg);

    ok(s3_xml_parse_list(empty, strlen(empty), &pg, &e) == 0 && pg.n == 0, "empty listing");
    s3_list_page_clear(&pg);

    ok(s3_xml_parse_list(trunc_no_token, strlen(trunc_no_token), &pg, &e) < 0, "truncated without token fails");
    like(e.msg, "NextContinuationToken", "... saying why");
    ok(s3_xml_parse_list(bad_size, strlen(bad_size), &pg, &e) < 0, "bad size fails");
    like(e.msg, "bad <Size>", "... saying why");
}

static void test_errors(void)
{
    static const char sig[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
        "<Message>The request signature we calculated does not match the signature you provided.</Message>"
        "<StringToSign>AWS4-HMAC-SHA256</StringToSign><RequestId>tx123</RequestId><HostId>h</HostId></Error>";
    static const char region[] =
        "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; "
        "the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region>"
        "<RequestId>r2</RequestId></Error>";
    static const char notxml[] = "<html><body>502 Bad Gateway</body></html>";
    struct s3_error er;

    ok(s3_xml_parse_error(sig, strlen(sig), &er) == 0, "error body parses");
    is_str(er.code, "SignatureDoesNotMatch", "code");
    like(er.message, "does not match", "message");
    is_str(er.request_id, "tx123", "request id");
    ok(s3_xml_parse_error(region, strlen(region), &er) == 0, "region error parses");
    is_str(er.region, "eu-west-1", "expected region");
    ok(s3_xml_parse_error(notxml, strlen(notxml), &er) < 0, "an HTML page is not an S3 error");
    ok(s3_xml_parse_error("", 0, &er) < 0, "empty body is not an S3 error");
    ok(s3_xml_parse_error("<Error><Code>X", 14, &er) < 0, "cut error body is not an S3 error");
}

static void test_results(void)
{
    static const char done[] =
        "<CompleteMultipartUploadResult " NS "><Location>http://x/k</Location><Bucket>b</Bucket><Key>k</Key>"
        "<ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag></CompleteMultipartUploadResult>";
    static const char err200[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n\n  <Error><Code>InternalError</Code>"
        "<Message>We encountered an internal error. Please try again.</Message>"
        "<RequestId>656c76696e6727732072657175657374</RequestId></Error>";
    static const char init[] =
        "<InitiateMultipartUploadResult " NS "><Bucket>b</Bucket><Key>k</Key>"
        "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
        "</InitiateMultipartUploadResult>";
    struct s3_error er;
    struct err e = ERR_INIT;
    char *id = NULL;

    is_int(s3_xml_parse_result(done, strlen(done), "CompleteMultipartUploadResult", &er, &e), 0,
           "complete result recognized");
    is_int(s3_xml_parse_result(err200, strlen(err200), "CompleteMultipartUploadResult", &er, &e), 1,
           "200 with <Error> recognized as an error");
    is_str(er.code, "InternalError", "... with its code");
    is_int(s3_xml_parse_result(done, strlen(done), "CopyObjectResult", &er, &e), -1, "wrong root rejected");
    like(e.msg, "unexpected <CompleteMultipartUploadResult>", "... by name");
    is_int(s3_xml_parse_result("<a>", 3, "CopyObjectResult", &er, &e), -1, "malformed rejected");
    like(e.msg, "malformed CopyObjectResult XML", "... clearly");

    ok(s3_xml_parse_upload_id(init, strlen(init), &id, &e) == 0, "upload id parses");
    is_str(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA", "upload id");
    free(id);
    ok(s3_xml_parse_upload_id("<InitiateMultipartUploadResult/>", 32, &id, &e) < 0 && id == NULL,
       "missing upload id fails");
}

static void test_delete(void)
{
    static const char res[] =
        "<DeleteResult " NS "><Deleted><Key>p/a</Key></Deleted>"
        "<Error><Key>p/b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        "<Error><Key>p/c</Key><Code>InternalError</Code><Message>oops</Message></Error></DeleteResult>";
    static const char quiet_ok[] = "<DeleteResult " NS "/>";
    struct s3_delete_error *errs = NULL;
    size_t n = 0;
    struct err e = ERR_INIT;
    const char *keys[] = { "wal/a&b", "x<y>\"z\"" };
    char *body = NULL;
    size_t len = 0;

    ok(s3_xml_parse_delete(res, strlen(res), &errs, &n, &e) == 0, "delete result parses");
    is_int(n, 2, "two errors");
    if (n == 2) {
        is_str(errs[0].key, "p/b", "error 1 key");
        is_str(errs[0].code, "AccessDenied", "error 1 code");
        is_str(errs[1].message, "oops", "error 2 message");
    }
    s3_delete_errors_free(errs, n);
    ok(s3_xml_parse_delete(quiet_ok, strlen(quiet_ok), &errs, &n, &e) == 0 && n == 0, "quiet success");
    s3_delete_errors_free(errs, n);

    ok(s3_xml_build_delete("prod", keys, 2, 1, &body, &len, &e) == 0, "delete body builds");
    like(body, "<Quiet>true</Quiet>", "quiet");
    like(body, "<Object><Key>prod/wal/a&amp;b</Key></Object>", "key escaped and prefixed");
    like(body, "<Key>prod/x&lt;y&gt;&quot;z&quot;</Key>", "angle brackets and quotes escaped");
    is_int(len, strlen(body), "length");
    free(body);
    ok(s3_xml_build_delete("", keys, 1, 0, &body, &len, &e) == 0, "no prefix");
    like(body, "<Key>wal/a&amp;b</Key>", "key unprefixed");
    ok(strstr(body, "Quiet") == NULL, "not quiet");
    free(body);
}

static void test_complete(void)
{
    struct s3_part parts[2] = { { 1, "\"aaa\"", "" }, { 2, "\"bbb\"", "" } };
    struct err e = ERR_INIT;
    char *body = NULL;
    size_t len = 0;

    ok(s3_xml_build_complete(parts, 2, &body, &len, &e) == 0, "complete body builds");
    like(body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">", "root with namespace");
    like(body, "<Part><PartNumber>1</PartNumber><ETag>&quot;aaa&quot;</ETag></Part><Part><PartNumber>2</PartNumber>",
         "parts in order");
    free(body);
}

static void test_malformed(void)
{
    static const char *bad[] = {
        "", "<", "<ListBucketResult>", "<ListBucketResult><Contents><Key>a</Key></ListBucketResult>",
        "\x00\x01\x02", "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        /* a DOCTYPE (S3 never sends one): an external entity read as "" made
         * key "wal/ab" (adversarial pass AF), an internal one is expanded */
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/hostname\">]><ListBucketResult>"
        "<IsTruncated>false</IsTruncated><Contents><Key>wal/a&x;b</Key><Size>1</Size></Contents></ListBucketResult>",
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x \"xxxxxxxx\"><!ENTITY y \"&x;&x;&x;&x;\">]><ListBucketResult>"
        "<IsTruncated>false</IsTruncated><Contents><Key>wal/&y;</Key><Size>1</Size></Contents></ListBucketResult>",
    };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct s3_list_page pg;
        struct err e = ERR_INIT;
        size_t n = strlen(bad[i]);

        if (i == 4)
            n = 3;
        ok(s3_xml_parse_list(bad[i], n, &pg, &e) < 0 && e.msg[0] != '\0', "malformed %zu rejected: %s", i, e.msg);
    }
}

static void test_time(void)
{
    time_t t;

    ok(s3_parse_iso8601("1970-01-01T00:00:00.000Z", &t) == 0 && t == 0, "epoch");
    ok(s3_parse_iso8601("2013-05-24T00:00:00Z", &t) == 0 && t == 1369353600, "no fraction");
    ok(s3_parse_iso8601("yesterday", &t) < 0, "junk");
    /* `aws configure export-credentials` (credential_process) writes
     * Python's isoformat(): an offset, not "Z" */
    ok(s3_parse_iso8601("2013-05-24T00:00:00+00:00", &t) == 0 && t == 1369353600, "+00:00");
    ok(s3_parse_iso8601("2013-05-24T02:30:00.5+02:30", &t) == 0 && t == 1369353600, "+02:30 is 2.5 h ahead of UTC");
    ok(s3_parse_iso8601("2013-05-23T23:00:00-0100", &t) == 0 && t == 1369353600, "-0100");
    ok(s3_parse_iso8601("2013-05-24T00:00:00+00", &t) == 0 && t == 1369353600, "+00");
    ok(s3_parse_iso8601("2013-05-24T00:00:00+00:0", &t) < 0 && s3_parse_iso8601("2013-05-24T00:00:00+24:00", &t) < 0 &&
       s3_parse_iso8601("2013-05-24T00:00:00+00:00x", &t) < 0 && s3_parse_iso8601("2013-05-24T00:00:00Zx", &t) < 0,
       "a bad offset, or anything after the zone: refused");
}

int main(void)
{
    test_list();
    test_errors();
    test_results();
    test_delete();
    test_complete();
    test_malformed();
    test_time();
    return done_testing();
}
