/*
 * fuzz_dkim_tags.c - libFuzzer target for the DKIM tag-list parsers
 *
 * The whole input is parsed as a DKIM-Signature value and as a key
 * record; then it is treated as a message (header block and body) and
 * run through the verifier with a fixed key record, which exercises
 * header splitting, b= removal and both canonicalisations. Checked: a
 * signature that parses has a lower-case d=, a 32-byte body hash, a
 * non-empty signature, From among h= and x >= t; a key record is
 * revoked exactly when it has no key bytes; parsing twice gives the same
 * answer; the body canonicalisers give the same bytes whole and byte by
 * byte.
 */
#include "util/sys.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "mail/dkim.h"
#include "util/buf.h"

#define SHA256_LEN 32
#define FUZZ_NOW 1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* fuzz_sig - the DKIM-Signature parser */
static void fuzz_sig(const char *s, size_t n)
{
    struct dkim_sig sig, again;
    const char *why, *why2;
    bool from = false;
    int rc = dkim_sig_parse(s, n, &sig, &why);

    check(dkim_sig_parse(s, n, &again, &why2) == rc, "deterministic");
    if (rc < 0) {
        check(why != NULL && strcmp(why, why2) == 0, "a reason");
        return;
    }
    for (const char *p = sig.d; *p; p++)
        check(!isupper((unsigned char)*p), "d= lower case");
    check(*sig.d != 0 && *sig.s != 0, "d= and s=");
    check(sig.bhlen == SHA256_LEN && sig.blen > 0, "hash lengths");
    for (size_t i = 0; i < sig.nh; i++)
        from = from || strcmp(sig.h[i], "from") == 0;
    check(from, "From signed");
    check(!(sig.has_t && sig.has_x) || sig.x >= sig.t, "x >= t");
    check(strcmp(sig.d, again.d) == 0 && sig.nh == again.nh, "same result");
    dkim_sig_free(&sig);
    dkim_sig_free(&again);
}

/* fuzz_key - the key record parser */
static void fuzz_key(const char *s, size_t n)
{
    struct dkim_keyrec k;
    const char *why;

    if (dkim_key_parse(s, n, &k, &why) < 0) {
        check(why != NULL, "a reason");
        return;
    }
    check(k.revoked == (k.p == NULL), "revoked <=> no key");
    check(k.revoked || k.plen > 0, "key bytes");
    dkim_key_free(&k);
}

/* collect_fn - canonical body bytes into a buf */
static void collect_fn(void *ctx, const void *p, size_t n)
{
    buf_append(ctx, p, n);
}

/* fuzz_body - whole and byte-by-byte canonicalisation agree */
static void fuzz_body(enum dkim_canon c, const char *s, size_t n)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    struct dkim_body st;

    dkim_body_init(&st, c, collect_fn, &a);
    dkim_body_update(&st, s, n);
    dkim_body_final(&st);
    dkim_body_init(&st, c, collect_fn, &b);
    for (size_t i = 0; i < n; i++)
        dkim_body_update(&st, s + i, 1);
    dkim_body_final(&st);
    check(a.len == b.len && memcmp(buf_str(&a), buf_str(&b), a.len) == 0, "chunking");
    check(a.len == 0 || (a.len >= 2 && memcmp(a.data + a.len - 2, "\r\n", 2) == 0),
          "ends with CRLF");
    buf_free(&a);
    buf_free(&b);
}

/* key_fn - every selector has the same (bogus but well-formed) key */
static enum dkim_dns key_fn(void *ctx, const char *qname, struct buf *txt)
{
    buf_puts(txt, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    return DKIM_DNS_OK;
}

/* fuzz_verify - the input as a message */
static void fuzz_verify(const char *s, size_t n)
{
    struct dkim_verify *v = dkim_verify_new(0, FUZZ_NOW);
    struct buf ar = BUF_INIT;
    size_t hl = n, nres;

    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == '\n' && s[i + 1] == '\n') {
            hl = i + 2;
            break;
        }
        if (s[i] == '\n' && s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n') {
            hl = i + 3;
            break;
        }
    }
    dkim_verify_header(v, s, hl);
    check(dkim_verify_nsigs(v) <= DKIM_VERIFY_LIMIT_DEFAULT, "limit");
    dkim_verify_body(v, s + hl, n - hl);
    dkim_verify_body_end(v);
    dkim_verify_keys_sync(v, key_fn, NULL);
    dkim_verify_results(v, &nres);
    dkim_verify_ar(v, "\r\n", &ar);
    check(strncmp(buf_str(&ar), "dkim=", 5) == 0, "A-R text");
    buf_free(&ar);
    dkim_verify_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;

    fuzz_sig(s, size);
    fuzz_key(s, size);
    fuzz_body(DKIM_CANON_SIMPLE, s, size);
    fuzz_body(DKIM_CANON_RELAXED, s, size);
    fuzz_verify(s, size);
    return 0;
}
