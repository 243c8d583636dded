/* sigv4_test — the AWS documentation's example signatures, URI encoding. */
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "tap.h"

#define HOST "examplebucket.s3.amazonaws.com"
#define DATE "20130524T000000Z"

static const struct sigv4_cred cred = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"
};

static void check_sig(const char *name, const struct sigv4_request *r, const char *want)
{
    struct err e = ERR_INIT;
    char *auth = NULL;
    char sig[65] = "";

    if (!ok(sigv4_sign(r, &cred, DATE, &auth, sig, &e) == 0, "%s: signs", name)) {
        diag("%s", e.msg);
        return;
    }
    is_str(sig, want, "%s: signature matches the AWS example", name);
    like(auth, "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request", "%s: scope", name);
    like(auth, want, "%s: authorization carries the signature", name);
    free(auth);
}

static void test_get_object(void)
{
    const struct sigv4_header h[] = {
        { "Host", HOST },
        { "Range", "bytes=0-9" },
        { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
        { "x-amz-date", DATE },
    };
    const struct sigv4_request r = { "GET", "/test.txt", NULL, h, 4, SIGV4_EMPTY_SHA256 };
    char *sh = NULL;
    char *creq = sigv4_canonical_request(&r, &sh);

    is_str(creq,
           "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
           "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
           "host;range;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256,
           "GET object: canonical request");
    is_str(sh, "host;range;x-amz-content-sha256;x-amz-date", "GET object: signed headers");
    free(creq);
    free(sh);
    check_sig("GET object", &r, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_put_object(void)
{
    const char *body = "Welcome to Amazon S3.";
    char hash[65];
    struct sigv4_header h[] = {
        { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
        { "Host", HOST },
        { "x-amz-date", DATE },
        { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
        { "x-amz-content-sha256", NULL },
    };
    struct sigv4_request r = { "PUT", "/test%24file.text", NULL, h, 5, NULL };

    sigv4_sha256_hex(body, strlen(body), hash);
    is_str(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", "PUT: body hash");
    h[4].value = hash;
    r.payload_hash = hash;
    check_sig("PUT object", &r, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_lifecycle(void)
{
    const struct sigv4_header h[] = {
        { "Host", HOST },
        { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
        { "x-amz-date", DATE },
    };
    const struct sigv4_request r = { "GET", "/", "lifecycle", h, 3, SIGV4_EMPTY_SHA256 };

    check_sig("GET ?lifecycle", &r, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_list(void)
{
    const struct sigv4_header h[] = {
        { "Host", HOST },
        { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
        { "x-amz-date", DATE },
    };
    /* Given unsorted, as a caller might: canonicalization sorts. */
    const struct sigv4_request r = { "GET", "/", "prefix=J&max-keys=2", h, 3, SIGV4_EMPTY_SHA256 };

    check_sig("GET ?max-keys=2&prefix=J", &r,
              "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void enc(const char *in, int keep_slash, const char *want)
{
    char *got = sigv4_uri_encode(in, keep_slash);
    is_str(got, want, "uri_encode(\"%s\", %d)", in, keep_slash);
    free(got);
}

static void cq(const char *in, const char *want)
{
    char *got = sigv4_canonical_query(in);
    is_str(got, want, "canonical_query(\"%s\")", in ? in : "(null)");
    free(got);
}

static void test_encoding(void)
{
    enc("a b", 1, "a%20b");
    enc("test$file.text", 1, "test%24file.text");
    enc("~user-name_1.x", 1, "~user-name_1.x");
    enc("wal/0000/x y", 1, "wal/0000/x%20y");
    enc("wal/0000", 0, "wal%2F0000");
    enc("caf\xc3\xa9/\xe2\x82\xac", 1, "caf%C3%A9/%E2%82%AC");
    enc("a+b=c&d*e:f,g@h!", 1, "a%2Bb%3Dc%26d%2Ae%3Af%2Cg%40h%21");
    enc("", 1, "");

    cq(NULL, "");
    cq("", "");
    cq("lifecycle", "lifecycle=");
    cq("uploads", "uploads=");
    cq("b=2&a=1", "a=1&b=2");
    cq("a=2&a=1", "a=1&a=2");
    /* Values given already encoded are decoded and re-encoded the same. */
    cq("prefix=wal%2F&list-type=2", "list-type=2&prefix=wal%2F");
    cq("continuation-token=a%3Db%26c%2Bd", "continuation-token=a%3Db%26c%2Bd");
    /* Loose input gets strict encoding: '/', '~', space, lower-case hex. */
    cq("prefix=a/b~c%2fd%20e", "prefix=a%2Fb~c%2Fd%20e");
    cq("partNumber=3&uploadId=x%7Ey", "partNumber=3&uploadId=x~y");
    cq("k=%zz", "k=%25zz");
    cq("x=&&y", "x=&y=");
}

static void test_trim(void)
{
    const struct sigv4_header h[] = {
        { "X-Amz-Meta-B", "  two   spaces  " },
        { "host", "h" },
        { "x-amz-meta-a", "1" },
    };
    const struct sigv4_request r = { "PUT", "", NULL, h, 3, SIGV4_UNSIGNED_PAYLOAD };
    char *creq = sigv4_canonical_request(&r, NULL);

    is_str(creq, "PUT\n/\n\nhost:h\nx-amz-meta-a:1\nx-amz-meta-b:two spaces\n\n"
                 "host;x-amz-meta-a;x-amz-meta-b\nUNSIGNED-PAYLOAD",
           "headers lower-cased, sorted, values trimmed; empty path is /");
    free(creq);
}

static void test_misc(void)
{
    char d[17], md5[25];

    sigv4_amz_date(1369353600, d);
    is_str(d, "20130524T000000Z", "amz date");
    sigv4_md5_base64("", 0, md5);
    is_str(md5, "1B2M2Y8AsgTpgAmY7PhCfg==", "content-md5 of empty body");
}

int main(void)
{
    test_get_object();
    test_put_object();
    test_lifecycle();
    test_list();
    test_encoding();
    test_trim();
    test_misc();
    return done_testing();
}
