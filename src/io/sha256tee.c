#include "sha256tee.h"

#include <stdlib.h>

#include <openssl/evp.h>

struct sha_tee {
    struct sink base;
    EVP_MD_CTX *md;
    unsigned char *digest;
};

static int tee_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct sha_tee *t = (struct sha_tee *)s;

    if (EVP_DigestUpdate(t->md, buf, len) != 1)
        return err_setf(e, ERR_INTERNAL, "sha-256 update failed");
    return sink_write(s->next, buf, len, e);
}

static int tee_close(struct sink *s, struct err *e)
{
    struct sha_tee *t = (struct sha_tee *)s;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (EVP_DigestFinal_ex(t->md, md, &n) != 1 || n != SHA256_LEN)
        return err_setf(e, ERR_INTERNAL, "sha-256 finalization failed");
    for (unsigned i = 0; i < SHA256_LEN; i++)
        t->digest[i] = md[i];
    return sink_close(s->next, e);
}

static void tee_free(struct sink *s)
{
    struct sha_tee *t = (struct sha_tee *)s;

    sink_free(s->next);
    EVP_MD_CTX_free(t->md);
    free(t);
}

static const struct sink_ops tee_ops = { tee_write, tee_close, tee_free };

int sha256_tee_new(struct sink *next, unsigned char digest[SHA256_LEN], struct sink **out, struct err *e)
{
    struct sha_tee *t = calloc(1, sizeof *t);

    if (t == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory creating a sha-256 stage");
    t->md = EVP_MD_CTX_new();
    if (t->md == NULL || EVP_DigestInit_ex(t->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(t->md);
        free(t);
        return err_setf(e, ERR_INTERNAL, "could not initialize sha-256");
    }
    t->base.ops = &tee_ops;
    t->base.next = next;
    t->digest = digest;
    *out = &t->base;
    return 0;
}
